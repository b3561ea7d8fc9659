/**
 * Out-of-distribution (OOD) distance of test images to the training set, from what the
 * reference bank already holds (beyond the paper).
 *
 * Two components, each a k-nearest-neighbour distance to the bank's M images:
 * - embedding: 1 - the mean of the k highest cosine similarities between the image's unit
 *   embedding (the bank's embedder: by default the model's own encoder) and the bank's;
 *   it sees what the model sees (content, blur, noise, color);
 * - color: the mean of the k smallest Euclidean distances between the image's Lab
 *   statistics (8-bit Lab, per channel mean and std: 6 numbers, `labStats`) and the
 *   bank's, each of the 6 standardised by the bank's own mean and std (a diagonal
 *   Mahalanobis distance; std floored at 1 Lab unit); it sees exactly what DCIN changes.
 * Calibration (`calibrateOod`, run when a bank is built): each component's leave-one-out
 * distances of the training images themselves (each image against the M - 1 others),
 * and the threshold = their `quantile` (default 0.99, linear interpolation as NumPy's
 * default). k = min(3, M - 1). The embedding threshold is at least the float32 resolution
 * of a cosine of unit vectors of width D, 4 D 2^-24 (Higham's bound on a dot product, with
 * a margin): below it distances are rounding noise (an untrained encoder maps every image
 * to nearly the same direction, and would otherwise flag images at random).
 * The image's `distance` is the larger of the two component distances, each divided by
 * its threshold, so the threshold of `distance` is 1 and `flagged` = distance > 1
 * (about 1% of images like the training ones, per component, are flagged). A bank
 * without calibration (version 1) gives the raw component distances and no flag.
 *
 * Leave-one-out is optimistic when the training set holds near-duplicates (video frames
 * of one patient): then held-out images of new patients are flagged more often than
 * `1 - quantile`; the share of flagged validation images shows it (experiment report).
 *
 *   const cal = calibrateOod(bank);                       // stored in the bank file
 *   const s = oodScores({ ...bank, ood: cal }, { embeddings: q, labStats: labStats(x) });
 *   s[0].flagged   // true: beyond the 99th percentile of the training images' own distances
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';

/** What produced a calibration: the method's name and version. */
export const OOD_METHOD = 'knn-embedding-cosine+lab-stats-standardised:v1';
export const OOD_DEFAULT_K = 3;
export const OOD_DEFAULT_QUANTILE = 0.99;
/** Floor of the color component's per-feature std (8-bit Lab units). */
const MIN_SCALE = 1;

export interface OodComponentCalibration {
  /** the `quantile` of the leave-one-out distances */
  threshold: number;
  /** median and maximum of the leave-one-out distances (for reports) */
  median: number;
  max: number;
}

export interface OodCalibration {
  method: string;
  /** neighbours averaged */
  k: number;
  quantile: number;
  /** training images it was calibrated on */
  images: number;
  embedding: OodComponentCalibration;
  /** plus the standardisation of the 6 Lab features (L, a, b means then stds) */
  color: OodComponentCalibration & { mean: number[]; scale: number[] };
}

/** The parts of a bank the distances need. */
export interface OodBank {
  embeddings: T.Tensor;
  labStats: T.Tensor;
  ood?: OodCalibration;
}

export interface OodScore {
  /** max over components of distance / threshold (> 1: out of distribution); null without calibration */
  distance: number | null;
  flagged: boolean | null;
  /** raw component distances (null when not computed: no embedding given) */
  embedding: number | null;
  color: number | null;
}

/** k for a bank of m images: min(k, m - 1), at least 1. */
export function oodK(m: number, k = OOD_DEFAULT_K): number {
  return Math.max(1, Math.min(k, m - 1));
}

/** Rows per block so that a (rows, M) float64 block stays near 32 MB. */
const blockRows = (m: number): number => Math.max(1, Math.floor(4_194_304 / Math.max(1, m)));

/**
 * k-NN over a bank in blocks: `score(q0, n)` gives a (n, M) float64 block (higher =
 * nearer when `largest`); with `loo`, row i of block q0 leaves out bank column q0 + i.
 * Returns the mean of the k best per row, as a Float64Array.
 */
function knnMean(total: number, m: number, k: number, largest: boolean, loo: boolean, score: (q0: number, n: number) => T.Tensor): Float64Array {
  const out = new Float64Array(total);
  const bs = blockRows(m);
  for (let q0 = 0; q0 < total; q0 += bs) {
    const n = Math.min(bs, total - q0);
    const v = T.tidy(() => {
      let s = score(q0, n);
      if (loo) {
        const self = T.arange(q0, q0 + n, 1, { dtype: 'int64' }).reshape([n, 1]).eq(T.arange(m, undefined, undefined, { dtype: 'int64' }).reshape([1, m]));
        s = T.where(self, largest ? -Infinity : Infinity, s);
      }
      return T.topk(s, k, 1, largest)[0].mean(1).dataSync() as Float64Array;
    });
    out.set(v, q0);
  }
  return out;
}

function checkEmbeddings(x: T.Tensor, arg: string, op: string): void {
  if (!(x instanceof T.Tensor) || x.ndim !== 2) throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be (N, D) unit embeddings, got ${x instanceof T.Tensor ? `[${x.shape.join(',')}]` : typeof x}`);
}

function checkStats(x: T.Tensor, arg: string, op: string): void {
  if (!(x instanceof T.Tensor) || x.ndim !== 3 || x.shape[1] !== 3 || x.shape[2] !== 2) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be (N, 3, 2) Lab statistics (labStats), got ${x instanceof T.Tensor ? `[${x.shape.join(',')}]` : typeof x}`);
  }
}

/**
 * Embedding distance 1 - mean of the k highest cosine similarities to the bank.
 * queries (N, D), bank (M, D) unit rows -> float64 (N); `loo`: queries are the bank
 * itself, each left out of its own neighbours.
 *   const d = embeddingDistance(q, bank.embeddings, 3)
 */
export function embeddingDistance(queries: T.Tensor, bank: T.Tensor, k = OOD_DEFAULT_K, loo = false): Float64Array {
  checkEmbeddings(queries, 'queries', 'embeddingDistance');
  checkEmbeddings(bank, 'bank', 'embeddingDistance');
  if (queries.shape[1] !== bank.shape[1]) throw new ArgumentError(`'embeddingDistance' needs embeddings of one width, got ${queries.shape[1]} and ${bank.shape[1]}`);
  const m = bank.shape[0];
  const kk = Math.min(k, loo ? m - 1 : m);
  if (kk < 1) throw new ArgumentError(`'embeddingDistance' needs at least ${loo ? 2 : 1} bank images, got ${m}`);
  const bt = T.keep(T.tidy(() => bank.to('float32').transpose(0, 1).contiguous()));
  try {
    const sim = knnMean(queries.shape[0], m, kk, true, loo, (q0, n) => T.matmul(queries.narrow(0, q0, n).to('float32'), bt).to('float64'));
    return sim.map((s) => Math.max(0, 1 - s));
  } finally {
    bt.dispose();
  }
}

/** Lab statistics (N, 3, 2) -> float64 (N, 6): L, a, b means, then L, a, b stds. */
export function labFeatures(stats: T.Tensor): T.Tensor {
  checkStats(stats, 'stats', 'labFeatures');
  return T.tidy(() => {
    const s = stats.to('float64');
    return T.cat([s.select(2, 0), s.select(2, 1)], 1);
  });
}

/** The bank's standardisation of the 6 Lab features: mean and population std (floored). */
export function colorStandardisation(bankStats: T.Tensor): { mean: number[]; scale: number[] } {
  checkStats(bankStats, 'bankStats', 'colorStandardisation');
  return T.tidy(() => {
    const f = labFeatures(bankStats);
    const mean = Array.from(f.mean(0).dataSync() as Float64Array);
    const scale = Array.from(T.std(f, 0, { unbiased: false }).dataSync() as Float64Array, (v) => Math.max(MIN_SCALE, v));
    return { mean, scale };
  });
}

/**
 * Color distance: mean of the k smallest Euclidean distances between standardised Lab
 * features. queryStats (N, 3, 2), bankStats (M, 3, 2) -> float64 (N).
 *   const d = colorDistance(labStats(x), bank.labStats, colorStandardisation(bank.labStats))
 */
export function colorDistance(queryStats: T.Tensor, bankStats: T.Tensor, std: { mean: number[]; scale: number[] }, k = OOD_DEFAULT_K, loo = false): Float64Array {
  checkStats(queryStats, 'queryStats', 'colorDistance');
  checkStats(bankStats, 'bankStats', 'colorDistance');
  const m = bankStats.shape[0];
  const kk = Math.min(k, loo ? m - 1 : m);
  if (kk < 1) throw new ArgumentError(`'colorDistance' needs at least ${loo ? 2 : 1} bank images, got ${m}`);
  const z = (s: T.Tensor): T.Tensor => labFeatures(s).sub(T.tensor(std.mean, [1, 6], { dtype: 'float64' })).div(T.tensor(std.scale, [1, 6], { dtype: 'float64' }));
  const [zq, zb] = T.tidy(() => [T.keep(z(queryStats)), T.keep(z(bankStats))]);
  try {
    const nb = T.keep(T.tidy(() => zb.square().sum(1).reshape([1, m])));
    const zbt = T.keep(T.tidy(() => zb.transpose(0, 1).contiguous()));
    try {
      // squared distance |a|^2 + |b|^2 - 2 a.b in float64, clamped at 0; negated so that nearer = larger
      const neg = knnMean(zq.shape[0], m, kk, true, loo, (q0, n) => {
        const a = zq.narrow(0, q0, n);
        return a.square().sum(1, { keepdim: true }).add(nb).sub(T.matmul(a, zbt).mul(2)).clamp(0).sqrt().neg();
      });
      return neg.map((v) => -v);
    } finally {
      T.dispose([nb, zbt]);
    }
  } finally {
    T.dispose([zq, zb]);
  }
}

/** The q-quantile of values, linear interpolation between order statistics (NumPy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new ArgumentError(`Argument 'q' passed to 'quantile' must be in 0..1, got ${q}`);
  const v = Array.from(values).sort((a, b) => a - b);
  if (v.length === 0) throw new ArgumentError("Argument 'values' passed to 'quantile' must not be empty");
  const pos = q * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(v.length - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

function component(loo: Float64Array, q: number, floor = 0): OodComponentCalibration {
  return { threshold: Math.max(floor, quantile(loo, q)), median: quantile(loo, 0.5), max: quantile(loo, 1) };
}

/** The float32 resolution of 1 - cos for unit vectors of width d: 4 d 2^-24. */
export function embeddingResolution(d: number): number {
  return 4 * d * 2 ** -24;
}

export interface CalibrateOptions {
  /** neighbours averaged (default 3; at most M - 1) */
  k?: number;
  /** quantile of the leave-one-out distances taken as threshold (default 0.99) */
  quantile?: number;
}

/**
 * Calibrates the OOD thresholds on the bank's own images (leave-one-out). Needs at least
 * 2 images; returns undefined for a bank of one (nothing to calibrate against).
 *   bank.ood = calibrateOod(bank)
 */
export function calibrateOod(bank: OodBank, opts: CalibrateOptions = {}): OodCalibration | undefined {
  checkEmbeddings(bank.embeddings, 'bank.embeddings', 'calibrateOod');
  checkStats(bank.labStats, 'bank.labStats', 'calibrateOod');
  const q = opts.quantile ?? OOD_DEFAULT_QUANTILE;
  if (!(q > 0 && q <= 1)) throw new ArgumentError(`Argument 'quantile' passed to 'calibrateOod' must be in (0, 1], got ${q}`);
  const kReq = opts.k ?? OOD_DEFAULT_K;
  if (!Number.isInteger(kReq) || kReq < 1) throw new ArgumentError(`Argument 'k' passed to 'calibrateOod' must be an integer >= 1, got ${kReq}`);
  const m = bank.embeddings.shape[0];
  if (m < 2) return undefined;
  const k = oodK(m, kReq);
  const std = colorStandardisation(bank.labStats);
  return {
    method: OOD_METHOD,
    k,
    quantile: q,
    images: m,
    embedding: component(embeddingDistance(bank.embeddings, bank.embeddings, k, true), q, embeddingResolution(bank.embeddings.shape[1])),
    color: { ...component(colorDistance(bank.labStats, bank.labStats, std, k, true), q), ...std },
  };
}

/**
 * Per query image, its distances to the bank and the flag. `embeddings` (N, D) unit
 * (the bank's embedder) and `labStats` (N, 3, 2); either may be left out (its component
 * is then null and the other decides). Without calibration in the bank (version 1): raw
 * distances (color standardised by the bank itself, k = min(3, M)), no distance, no flag.
 *   const [s] = oodScores(bank, { embeddings: q, labStats: labStats(x) })
 */
export function oodScores(bank: OodBank, queries: { embeddings?: T.Tensor; labStats?: T.Tensor }): OodScore[] {
  const n = queries.embeddings?.shape[0] ?? queries.labStats?.shape[0];
  if (n === undefined) throw new ArgumentError("'oodScores' needs the images' 'embeddings' or 'labStats' (or both)");
  if (queries.embeddings && queries.labStats && queries.labStats.shape[0] !== n) {
    throw new ArgumentError(`'oodScores' got ${n} embeddings but ${queries.labStats.shape[0]} Lab statistics`);
  }
  const cal = bank.ood;
  const m = bank.embeddings.shape[0];
  const k = cal?.k ?? Math.min(OOD_DEFAULT_K, m);
  const emb = queries.embeddings ? embeddingDistance(queries.embeddings, bank.embeddings, Math.min(k, m)) : undefined;
  const col = queries.labStats ? colorDistance(queries.labStats, bank.labStats, cal?.color ?? colorStandardisation(bank.labStats), Math.min(k, m)) : undefined;
  const ratio = (d: number, t: number): number => d / Math.max(t, 1e-12);
  return Array.from({ length: n }, (_, i) => {
    const e = emb ? emb[i] : null;
    const c = col ? col[i] : null;
    let distance: number | null = null;
    if (cal) {
      const rs = [e === null ? -Infinity : ratio(e, cal.embedding.threshold), c === null ? -Infinity : ratio(c, cal.color.threshold)];
      distance = Math.max(...rs);
    }
    return { distance, flagged: distance === null ? null : distance > 1, embedding: e, color: c };
  });
}

/** Checks a calibration read from a file; returns a problem or null. */
export function calibrationProblem(c: unknown, images: number): string | null {
  const o = c as OodCalibration;
  if (!o || typeof o !== 'object') return 'is not an object';
  if (typeof o.method !== 'string') return "has no 'method'";
  if (!Number.isInteger(o.k) || o.k < 1) return `has k ${JSON.stringify(o.k)}, expected an integer >= 1`;
  if (!(typeof o.quantile === 'number' && o.quantile > 0 && o.quantile <= 1)) return `has quantile ${JSON.stringify(o.quantile)}, expected a number in (0, 1]`;
  if (o.images !== images) return `was calibrated on ${JSON.stringify(o.images)} images, the bank holds ${images}`;
  for (const key of ['embedding', 'color'] as const) {
    const p = o[key];
    if (!p || ![p.threshold, p.median, p.max].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) return `'${key}' needs finite non-negative threshold, median and max`;
  }
  const ok = (v: unknown): boolean => Array.isArray(v) && v.length === 6 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!ok(o.color.mean) || !ok(o.color.scale) || o.color.scale.some((s) => s <= 0)) return "'color' needs 6 finite means and 6 positive scales";
  return null;
}

/** One line describing a calibration (for JSON and reports). */
export function describeCalibration(c: OodCalibration): string {
  return `${Math.round(c.quantile * 1000) / 10}th percentile of the leave-one-out ${c.k}-NN distances of the ${c.images} training images (${c.method})`;
}

/** An image's OOD figures as written in prediction and evaluation JSON. */
export interface OodReport {
  /** max over components of distance / threshold; > 1 = out of distribution (null: no calibration) */
  distance: number | null;
  /** the threshold of `distance`: 1 when calibrated */
  threshold: number | null;
  flagged: boolean | null;
  embedding: { distance: number | null; threshold: number | null };
  color: { distance: number | null; threshold: number | null };
  /** how the thresholds were made (describeCalibration), null without calibration */
  calibration: string | null;
  note?: string;
}

/** Notes for the cases where the figures are partial. */
export const OOD_NOTES = {
  noBank: 'no reference bank (--refs BANK): no distance to the training distribution',
  noCalibration: 'the bank has no OOD calibration (bank version 1): raw distances, no flag; rebuild it with cqseg references to calibrate',
  noEmbedder: "embedding distance not computed (no embedder: pass the bank's --embedder); the color distance alone decides",
};

/**
 * The JSON form of an image's OOD score against a bank (`cal` its calibration), or, with
 * no score, the figures of an image predicted without a bank.
 */
export function oodReport(score: OodScore | undefined, cal: OodCalibration | undefined): OodReport {
  if (!score) {
    return { distance: null, threshold: null, flagged: null, embedding: { distance: null, threshold: null }, color: { distance: null, threshold: null }, calibration: null, note: OOD_NOTES.noBank };
  }
  const r: OodReport = {
    distance: score.distance,
    threshold: cal ? 1 : null,
    flagged: score.flagged,
    embedding: { distance: score.embedding, threshold: cal ? cal.embedding.threshold : null },
    color: { distance: score.color, threshold: cal ? cal.color.threshold : null },
    calibration: cal ? describeCalibration(cal) : null,
  };
  const notes = [cal ? '' : OOD_NOTES.noCalibration, score.embedding === null ? OOD_NOTES.noEmbedder : ''].filter(Boolean);
  if (notes.length) r.note = notes.join('; ');
  return r;
}

/** One line for a flagged image: its distance and each component against its threshold. */
export function oodWarning(what: string, r: OodReport): string {
  const part = (name: string, c: { distance: number | null; threshold: number | null }): string =>
    (c.distance === null ? '' : `, ${name} ${c.distance.toPrecision(3)}${c.threshold === null ? '' : ` (threshold ${c.threshold.toPrecision(3)})`}`);
  return `warning: ${what} is out of the training distribution (distance ${r.distance?.toFixed(2)} > 1${part('embedding', r.embedding)}${part('color', r.color)}): ` +
    'the segmentation may be unreliable';
}
