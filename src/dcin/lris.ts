/**
 * LRIS (local reference image selection): for each test image, the training image
 * whose embedding has the highest cosine similarity with the test image's.
 *
 * Exact: the answer is the argmax of float64 dot products of the float32 embeddings
 * (ties: the lowest index). A fast first pass only narrows the field, and every
 * reference it could have misranked is re-scored in float64:
 * - matrix product (lrisSelect, and LrisIndex for many queries): float32 scores s^;
 *   each is within beta = gamma_D |q| |b| of the true score (gamma_D = D u / (1 - D u),
 *   u = 2^-24, the recursive-summation bound, Higham 2002, sec. 3.1), so every
 *   reference with s^ >= max s^ - 2 beta is re-scored;
 * - LrisIndex for a few queries on the CPU: each reference row b is stored as int8
 *   codes c1 with a per-row scale s1, and its remainder b - s1 c1 again as int8 codes c2
 *   with scale s2 (remainder e2); the query is rounded to int16 codes u with scale t
 *   (remainder eq). Then q.b = s1 t (u.c1) + s2 t (u.c2) + s1 (eq.c1) + s2 (eq.c2) + q.e2,
 *   so with the integer dot products exact, the first-level estimate s1 t (u.c1) is
 *   within |eq| s1 |c1| + |q| |b - s1 c1| and the second-level one within
 *   |eq| (s1 |c1| + s2 |c2|) + |q| |e2| (Cauchy-Schwarz). Each level keeps the
 *   references whose interval reaches the best lower end. The first level reads a
 *   quarter of the float32 bank's bytes (it fits in cache where the bank does not).
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';

/** Absolute slack added to every bound (float64 rounding of the bound terms themselves). */
const SLACK = 1e-9;
/** Up to this many queries, LrisIndex on the CPU uses the int8 codes. */
const CODED_MAX_QUERIES = 8;

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
  /** per query, its cosine similarity (float64 dot product) */
  similarities: number[];
}

/** int64 (K) of row indices. */
const rows = (xs: number[]): T.Tensor => T.tensor(xs, [xs.length], { dtype: 'int64' });

/** The float64-exact best of `cands` (ascending) for query row q64 (D, 1) float64. */
function rerank(bank: T.Tensor, q64: T.Tensor, cands: number[]): [number, number] {
  const s = T.tidy(() => T.matmul(T.indexSelect(bank, 0, rows(cands)).to('float64'), q64).dataSync() as Float64Array);
  let k = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[k]) k = i;
  return [cands[k], s[k]];
}

/** Rows (references) of bank (M, D) float32, their largest L2 norm. */
function maxRowNorm(bank: T.Tensor): number {
  return T.tidy(() => bank.to('float64').square().sum(1).sqrt().max().item());
}

/** Matrix-product search with float64 re-scoring of every reference within 2 beta of the best. */
function searchProduct(queries: T.Tensor, bank: T.Tensor, bNorm: number, bs: number): LrisResult {
  const indices: number[] = [];
  const similarities: number[] = [];
  const d = bank.shape[1];
  const u = 2 ** -24;
  const gamma = (d * u) / (1 - d * u);
  for (let q0 = 0; q0 < queries.shape[0]; q0 += bs) {
    const nq = Math.min(bs, queries.shape[0] - q0);
    T.tidy(() => {
      const q = queries.narrow(0, q0, nq).to('float32');
      const qNorm = q.to('float64').square().sum(1).sqrt().dataSync() as Float64Array;
      const s = T.matmul(q, bank.transpose(0, 1)); // (nq, M)
      const top = s.max(1, true).to('float64').dataSync() as Float64Array;
      const margin = T.tensor(Float64Array.from(qNorm, (n) => 2 * gamma * n * bNorm + SLACK), [nq, 1], { dtype: 'float64' });
      const within = T.nonzero(s.to('float64').ge(T.tensor(top, [nq, 1], { dtype: 'float64' }).sub(margin))).dataSync() as BigInt64Array; // (K, 2) row-major, rows ascending
      const cands: number[][] = Array.from({ length: nq }, () => []);
      for (let k = 0; k < within.length; k += 2) cands[Number(within[k])].push(Number(within[k + 1]));
      for (let j = 0; j < nq; j++) {
        const q64 = q.narrow(0, j, 1).to('float64').transpose(0, 1);
        const [i, v] = rerank(bank, q64, cands[j]);
        indices.push(i);
        similarities.push(v);
      }
    });
  }
  return { indices, similarities };
}

function checkPair(queries: T.Tensor, d: number, op: string): void {
  if (!(queries instanceof T.Tensor) || queries.ndim !== 2) throw new ArgumentError(`Argument 'queries' passed to '${op}' must be (M, D), got ${queries instanceof T.Tensor ? `[${queries.shape.join(',')}]` : typeof queries}`);
  if (queries.shape[1] !== d) throw new ArgumentError(`'${op}' needs queries and references of one dimension, got ${queries.shape[1]} and ${d}`);
}

/** Two-level int8 codes of a bank (see the file comment). */
interface Codes {
  c1: T.Tensor;
  c2: T.Tensor;
  s1: Float64Array;
  s2: Float64Array;
  /** s1 |c1| and s2 |c2| */
  n1: Float64Array;
  n2: Float64Array;
  /** |b - s1 c1| and |e2| */
  r1: Float64Array;
  r2: Float64Array;
}

/** Per-row symmetric int8 codes of x (n, D) float64: [codes (float64 integers), scale (n, 1)]. */
function rowCodes(x: T.Tensor): [T.Tensor, T.Tensor] {
  const a = x.abs().max(1, true).div(127);
  const scale = T.where(a.eq(0), T.onesLike(a), a);
  return [x.div(scale).round().clamp(-127, 127), scale];
}

function quantize(bank: T.Tensor, block = 2048): Codes {
  const m = bank.shape[0];
  const f = (): Float64Array => new Float64Array(m);
  const out = { s1: f(), s2: f(), n1: f(), n2: f(), r1: f(), r2: f() };
  const c1: T.Tensor[] = [];
  const c2: T.Tensor[] = [];
  const norm = (x: T.Tensor): Float64Array => x.square().sum(1).sqrt().dataSync() as Float64Array;
  for (let i = 0; i < m; i += block) {
    const n = Math.min(block, m - i);
    T.tidy(() => {
      const b = bank.narrow(0, i, n).to('float64');
      const [k1, t1] = rowCodes(b);
      const e1 = b.sub(k1.mul(t1));
      const [k2, t2] = rowCodes(e1);
      const e2 = e1.sub(k2.mul(t2));
      out.s1.set(t1.dataSync() as Float64Array, i);
      out.s2.set(t2.dataSync() as Float64Array, i);
      out.n1.set(norm(k1.mul(t1)), i);
      out.n2.set(norm(k2.mul(t2)), i);
      out.r1.set(norm(e1), i);
      out.r2.set(norm(e2), i);
      c1.push(T.keep(k1.to('int8')));
      c2.push(T.keep(k2.to('int8')));
    });
  }
  const cat = (xs: T.Tensor[]): T.Tensor => {
    const r = xs.length === 1 ? xs[0] : T.cat(xs, 0);
    if (xs.length > 1) T.dispose(xs);
    return r;
  };
  return { c1: cat(c1), c2: cat(c2), ...out };
}

/** Indices whose interval [est - bound, est + bound] reaches the best lower end. */
function survivors(est: Float64Array, bound: Float64Array, rows: number[] | null): number[] {
  let lower = -Infinity;
  for (let k = 0; k < est.length; k++) lower = Math.max(lower, est[k] - bound[k]);
  const keep: number[] = [];
  for (let k = 0; k < est.length; k++) if (est[k] + bound[k] >= lower) keep.push(rows ? rows[k] : k);
  return keep;
}

/** One query (1, D) float32 against the codes: the exact best [index, similarity]. */
function searchCoded(q: T.Tensor, bank: T.Tensor, codes: Codes): [number, number] {
  return T.tidy(() => {
    const qf = q.dataSync() as Float32Array;
    let amax = 0;
    let qn = 0;
    for (const v of qf) {
      amax = Math.max(amax, Math.abs(v));
      qn += v * v;
    }
    const t = amax > 0 ? amax / 32767 : 1;
    const u = new Int16Array(qf.length);
    let en = 0;
    for (let k = 0; k < qf.length; k++) {
      u[k] = Math.max(-32767, Math.min(32767, Math.round(qf[k] / t)));
      const e = qf[k] - t * u[k];
      en += e * e;
    }
    qn = Math.sqrt(qn);
    en = Math.sqrt(en);
    const ut = T.tensor(u, [1, u.length], { dtype: 'int16' });
    // level 1: every reference
    const d1 = T.int8Dot(codes.c1, ut).dataSync() as Float64Array;
    const m = d1.length;
    const est1 = new Float64Array(m);
    const b1 = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      est1[i] = codes.s1[i] * t * d1[i];
      b1[i] = en * codes.n1[i] + qn * codes.r1[i] + SLACK;
    }
    const l1 = survivors(est1, b1, null);
    // level 2: the survivors, with the remainders' codes
    const d2 = T.int8Dot(codes.c2, ut, rows(l1)).dataSync() as Float64Array;
    const est2 = new Float64Array(l1.length);
    const b2 = new Float64Array(l1.length);
    l1.forEach((i, k) => {
      est2[k] = est1[i] + codes.s2[i] * t * d2[k];
      b2[k] = en * (codes.n1[i] + codes.n2[i]) + qn * codes.r2[i] + SLACK;
    });
    return rerank(bank, q.to('float64').transpose(0, 1), survivors(est2, b2, l1));
  });
}

/**
 * A search index over reference embeddings (M, D) (unit rows), built once for many
 * searches: on the CPU it also holds the two-level int8 codes (half the float32 bank's
 * bytes again) so that a single query reads about a quarter of the bank. Dispose it.
 *   const index = new LrisIndex(bank.embeddings); index.search(q); index.dispose()
 */
export class LrisIndex {
  private bank: T.Tensor | null;
  private codes: Codes | null;
  private readonly bNorm: number;
  readonly size: number;
  readonly dim: number;
  constructor(references: T.Tensor) {
    if (!(references instanceof T.Tensor) || references.ndim !== 2 || references.shape[0] === 0) {
      throw new ArgumentError(`Argument 'references' passed to 'LrisIndex' must be a non-empty (M, D) tensor, got ${references instanceof T.Tensor ? `[${references.shape.join(',')}]` : typeof references}`);
    }
    [this.size, this.dim] = references.shape;
    this.bank = T.keep(T.tidy(() => references.to('float32').contiguous()));
    this.bNorm = maxRowNorm(this.bank);
    this.codes = this.bank.device === 'cpu' ? quantize(this.bank) : null;
  }
  /** Nearest reference of each query (Q, D); `blockSize` queries per product (default 256). */
  search(queries: T.Tensor, opts: { blockSize?: number } = {}): LrisResult {
    if (this.bank === null) throw new Error('LrisIndex is disposed');
    checkPair(queries, this.dim, 'LrisIndex.search');
    const codes = this.codes;
    if (codes === null || queries.shape[0] > CODED_MAX_QUERIES || queries.device !== 'cpu') {
      return searchProduct(queries, this.bank, this.bNorm, opts.blockSize ?? 256);
    }
    const indices: number[] = [];
    const similarities: number[] = [];
    for (let j = 0; j < queries.shape[0]; j++) {
      const [i, v] = T.tidy(() => searchCoded(queries.narrow(0, j, 1).to('float32').contiguous(), this.bank!, codes));
      indices.push(i);
      similarities.push(v);
    }
    return { indices, similarities };
  }
  dispose(): void {
    this.bank?.dispose();
    if (this.codes) T.dispose([this.codes.c1, this.codes.c2]);
    this.bank = null;
    this.codes = null;
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
  const bank = T.keep(T.tidy(() => references.to('float32')));
  try {
    return searchProduct(queries, bank, maxRowNorm(bank), opts.blockSize ?? 256);
  } finally {
    bank.dispose();
  }
}
