/**
 * LRIS (local reference image selection): for each test image, the training image
 * whose embedding has the highest cosine similarity with the test image's.
 * Embeddings are unit rows, so cosine similarity is a dot product and the search is
 * exact: one matrix product (Q, D) x (D, M) per block of queries, then argmax
 * (ties: the lowest index, as torch.argmax).
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';

/**
 * Scales each row to unit L2 norm (rows of zeros stay zero). x (M, D) float -> float32 (M, D).
 *   const e = normalizeEmbeddings(features)
 */
export function normalizeEmbeddings(x: T.Tensor): T.Tensor {
  if (!(x instanceof T.Tensor) || x.ndim !== 2) throw new ArgumentError(`Argument 'x' passed to 'normalizeEmbeddings' must be (M, D), got ${x instanceof T.Tensor ? `[${x.shape.join(',')}]` : typeof x}`);
  return T.tidy(() => {
    const f = x.to('float32');
    const n = f.square().sum(1, { keepdim: true }).sqrt();
    return f.div(T.where(n.eq(0), T.onesLike(n), n));
  });
}

export interface LrisResult {
  /** per query, the index of the nearest reference */
  indices: number[];
  /** per query, its cosine similarity */
  similarities: number[];
}

function searchT(queries: T.Tensor, refT: T.Tensor, bs: number): LrisResult {
  const indices: number[] = [];
  const similarities: number[] = [];
  for (let q0 = 0; q0 < queries.shape[0]; q0 += bs) {
    const nq = Math.min(bs, queries.shape[0] - q0);
    T.tidy(() => {
      const s = T.matmul(queries.narrow(0, q0, nq).to('float32'), refT);
      const i = T.argmax(s, 1, true); // the first maximum on ties
      indices.push(...i.toArray());
      similarities.push(...T.gather(s, 1, i).toArray());
    });
  }
  return { indices, similarities };
}

function checkPair(queries: T.Tensor, d: number, op: string): void {
  if (!(queries instanceof T.Tensor) || queries.ndim !== 2) throw new ArgumentError(`Argument 'queries' passed to '${op}' must be (M, D), got ${queries instanceof T.Tensor ? `[${queries.shape.join(',')}]` : typeof queries}`);
  if (queries.shape[1] !== d) throw new ArgumentError(`'${op}' needs queries and references of one dimension, got ${queries.shape[1]} and ${d}`);
}

/**
 * A search index over reference embeddings (M, D) (unit rows): keeps them as one
 * contiguous (D, M) float32 matrix, so each query block is a single matrix product.
 * Dispose it when done.
 *   const index = new LrisIndex(bank.embeddings); index.search(q); index.dispose()
 */
export class LrisIndex {
  private refT: T.Tensor | null;
  readonly size: number;
  readonly dim: number;
  constructor(references: T.Tensor) {
    if (!(references instanceof T.Tensor) || references.ndim !== 2 || references.shape[0] === 0) {
      throw new ArgumentError(`Argument 'references' passed to 'LrisIndex' must be a non-empty (M, D) tensor, got ${references instanceof T.Tensor ? `[${references.shape.join(',')}]` : typeof references}`);
    }
    [this.size, this.dim] = references.shape;
    this.refT = T.keep(T.tidy(() => references.to('float32').transpose(0, 1).contiguous()));
  }
  /** Nearest reference of each query (Q, D); `blockSize` queries per product (default 256). */
  search(queries: T.Tensor, opts: { blockSize?: number } = {}): LrisResult {
    if (this.refT === null) throw new Error('LrisIndex is disposed');
    checkPair(queries, this.dim, 'LrisIndex.search');
    return searchT(queries, this.refT, opts.blockSize ?? 256);
  }
  dispose(): void {
    this.refT?.dispose();
    this.refT = null;
  }
}

/**
 * Exact cosine nearest neighbours: queries (Q, D) and references (M, D), both unit rows
 * (normalizeEmbeddings). Queries are processed `blockSize` at a time (default 256).
 *   const { indices } = lrisSelect(embed(test), bank.embeddings)
 */
export function lrisSelect(queries: T.Tensor, references: T.Tensor, opts: { blockSize?: number } = {}): LrisResult {
  for (const [x, arg] of [[queries, 'queries'], [references, 'references']] as const) {
    if (!(x instanceof T.Tensor) || x.ndim !== 2) throw new ArgumentError(`Argument '${arg}' passed to 'lrisSelect' must be (M, D), got ${x instanceof T.Tensor ? `[${x.shape.join(',')}]` : typeof x}`);
  }
  if (queries.shape[1] !== references.shape[1]) {
    throw new ArgumentError(`'lrisSelect' needs queries and references of one dimension, got ${queries.shape[1]} and ${references.shape[1]}`);
  }
  if (references.shape[0] === 0) throw new ArgumentError("Argument 'references' passed to 'lrisSelect' is empty");
  const refT = T.keep(T.tidy(() => references.to('float32').transpose(0, 1)));
  try {
    return searchT(queries, refT, opts.blockSize ?? 256);
  } finally {
    refT.dispose();
  }
}
