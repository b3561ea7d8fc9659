/**
 * GRIS (global reference image selection): the training image whose RGB histogram
 * has the smallest mean Euclidean distance to all others (the medoid).
 *
 * Exact and memory-bounded: histograms (M, 512) are streamed from an image source
 * one image at a time (only the 2 KB histogram of each is kept), and the M x M
 * distance matrix is never held: blocks of it are made with the matrix product
 * sqrt(max(0, |a|^2 + |b|^2 - 2 a.b)) in float64, only the upper triangle (each block
 * adds to the row sums of both sides), with zeros on the diagonal.
 * The product form can be off by up to about 3e-8 per distance (cancellation for
 * near-identical histograms), so every candidate whose mean lies within 1e-6 of the
 * smallest is re-evaluated with direct differences sqrt(sum((a - b)^2)) in float64
 * (scipy's cdist formula); the answer is the smallest of those, ties broken by the
 * lowest index.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { rgbHistogram } from '../color';
import { DataError } from '../data/image_io';

/** Loads one image as uint8 (H, W, 3) RGB (sharp's layout); the caller disposes it. */
export type ImageSource = (path: string) => Promise<T.Tensor>;

export interface GrisOptions {
  /** rows per block of the distance matrix (default 256: 0.5 MB of float64 per block; only blocks on and above the diagonal are computed, so smaller blocks skip more of the symmetric half) */
  blockSize?: number;
  /** candidates within this of the smallest mean are recomputed exactly (default 1e-6) */
  tolerance?: number;
}

export interface GrisResult {
  /** index of the chosen image */
  index: number;
  /** its mean distance to all other images (divided by M - 1) */
  meanDistance: number;
  /** every image's mean distance to the others (product form, float64) */
  meanDistances: Float64Array;
}

function exactMean(h: T.Tensor, i: number): number {
  return T.tidy(() => h.sub(h.narrow(0, i, 1)).square().sum(1).sqrt().sum().item());
}

/**
 * The medoid of histograms (M, D) under Euclidean distance (GRIS).
 *   const { index } = grisSelect(rgbHistogram(images))
 */
export function grisSelect(histograms: T.Tensor, opts: GrisOptions = {}): GrisResult {
  if (!(histograms instanceof T.Tensor) || histograms.ndim !== 2 || histograms.shape[0] < 1) {
    throw new ArgumentError(`Argument 'histograms' passed to 'grisSelect' must be a non-empty (M, D) tensor, got ${histograms instanceof T.Tensor ? `[${histograms.shape.join(',')}]` : typeof histograms}`);
  }
  const bs = opts.blockSize ?? 256;
  if (!Number.isInteger(bs) || bs < 1) throw new ArgumentError(`Argument 'blockSize' passed to 'grisSelect' must be a positive integer, got ${String(bs)}`);
  const tol = opts.tolerance ?? 1e-6;
  const m = histograms.shape[0];
  if (m === 1) return { index: 0, meanDistance: 0, meanDistances: new Float64Array(1) };
  const sums = new Float64Array(m);
  const h = T.keep(T.tidy(() => histograms.to('float64').contiguous()));
  try {
    const sq = T.keep(T.tidy(() => h.square().sum(1)));
    try {
      for (let i0 = 0; i0 < m; i0 += bs) {
        const bi = Math.min(bs, m - i0);
        T.tidy(() => {
          const a = h.narrow(0, i0, bi);
          const na = sq.narrow(0, i0, bi).unsqueeze(1);
          for (let j0 = i0; j0 < m; j0 += bs) {
            const bj = Math.min(bs, m - j0);
            T.tidy(() => {
              const b = h.narrow(0, j0, bj);
              let d2 = T.matmul(a, b.transpose(0, 1)).mul(-2).add(na).add(sq.narrow(0, j0, bj).unsqueeze(0));
              if (j0 === i0) d2 = d2.mul(T.eye(bi, bj, { dtype: 'float64' }).logicalNot());
              const d = d2.clamp(0).sqrt();
              const rs = d.sum(1).dataSync() as Float64Array;
              for (let k = 0; k < bi; k++) sums[i0 + k] += rs[k];
              if (j0 !== i0) {
                const cs = d.sum(0).dataSync() as Float64Array;
                for (let k = 0; k < bj; k++) sums[j0 + k] += cs[k];
              }
            });
          }
        });
      }
    } finally {
      sq.dispose();
    }
    const means = sums.map((s) => s / (m - 1));
    let best = Infinity;
    for (const v of means) best = Math.min(best, v);
    let index = -1;
    let bestExact = Infinity;
    for (let i = 0; i < m; i++) {
      if (means[i] > best + tol) continue;
      const e = exactMean(h, i) / (m - 1);
      if (e < bestExact) {
        bestExact = e;
        index = i;
      }
    }
    return { index, meanDistance: bestExact, meanDistances: means };
  } finally {
    h.dispose();
  }
}

export interface HistogramStreamOptions {
  /** called after each image with (done, total, path) */
  onProgress?: (done: number, total: number, path: string) => void;
  /** images decoded ahead while the current one is binned (default 2) */
  prefetch?: number;
}

/**
 * RGB histograms (M, 512) float32 of images loaded one by one from `load`; at most
 * `prefetch` + 1 decoded images are alive at once, so M can be tens of thousands.
 * A load error names the file.
 *   const h = await histogramsFromSource(paths, decode)
 */
export async function histogramsFromSource(paths: string[], load: ImageSource, opts: HistogramStreamOptions = {}): Promise<T.Tensor> {
  const rows = new Float32Array(paths.length * 512);
  const ahead = Math.max(0, opts.prefetch ?? 2);
  const pending: Promise<T.Tensor>[] = [];
  const start = (i: number): void => {
    if (i >= paths.length) return;
    const pr = load(paths[i]).catch((e: Error) => {
      throw new DataError(`${paths[i]}: cannot read image: ${e.message}`, 'unreadable', paths[i]);
    });
    pr.catch(() => undefined); // handled when awaited, or drained below
    pending.push(pr);
  };
  try {
    for (let i = 0; i <= ahead; i++) start(i);
    for (let i = 0; i < paths.length; i++) {
      const img = await pending.shift()!;
      start(i + ahead + 1);
      try {
        if (img.ndim !== 3 || img.shape[2] !== 3) throw new ArgumentError(`${paths[i]}: expected an (H, W, 3) RGB image, got [${img.shape.join(',')}]`);
        const hist = rgbHistogram(img, { layout: 'NHWC' });
        rows.set(hist.dataSync() as Float32Array, i * 512);
        hist.dispose();
      } finally {
        img.dispose();
      }
      opts.onProgress?.(i + 1, paths.length, paths[i]);
    }
  } catch (e) {
    // free images already decoded ahead
    for (const pr of pending.splice(0)) pr.then((t) => t.dispose(), () => undefined);
    throw e;
  }
  return T.tensor(rows, [paths.length, 512]);
}

/** GRIS over image files: histograms streamed from `load`, then grisSelect. */
export async function grisFromSource(paths: string[], load: ImageSource, opts: GrisOptions & HistogramStreamOptions = {}): Promise<GrisResult & { path: string; histograms: T.Tensor }> {
  if (paths.length === 0) throw new ArgumentError("Argument 'paths' passed to 'grisFromSource' must list at least one image");
  const histograms = await histogramsFromSource(paths, load, opts);
  const r = grisSelect(histograms, opts);
  return { ...r, path: paths[r.index], histograms };
}
