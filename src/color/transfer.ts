/**
 * Reinhard color transfer in Lab (DCIN's normalisation step), batched.
 *
 * The paper's reference is python-color-transfer's `lab_transfer`:
 *   lab = cv2.cvtColor(img, COLOR_BGR2LAB)            # uint8, L 0..255, a/b + 128
 *   out = (lab - mean_in) / std_in * std_ref + mean_ref  # per channel, float64, population std
 *   out = clip(out, 0, 255).astype(uint8)              # truncation, still in Lab
 *   rgb = cv2.cvtColor(out, COLOR_LAB2BGR)
 * Here that recipe runs on tensors: the 8-bit Lab conversion is OpenCV's, bit-exact
 * (see lab.ts); the statistics come from a 256-bin histogram per image and channel
 * (exact in float64); the per-pixel map is a 256-entry table per image and channel
 * (computed with NumPy's float64 operation order, then clipped and truncated) applied
 * with one gather.
 *
 * Modes:
 * - 'cqseg' (default): true Lab (RGB channel order) and a guarded division: an input
 *   channel with zero variance gets gain 1, i.e. out = x - mean_in + mean_ref (the
 *   channel becomes the reference's mean), where the reference would divide 0 by 0.
 * - 'reference': reproduces the reference's two quirks: it hands RGB arrays (PIL) to
 *   the BGR function, so its "Lab" is computed on channel-swapped data (R and B
 *   exchanged before and after), and it divides with no guard (0/0 = NaN, which
 *   NumPy's astype(uint8) turns into 0 on x86; reproduced as 0).
 * Precision: 'uint8' (default, as the reference) or 'float' (float Lab, no uint8
 * truncation; returns float32 RGB in 0..1).
 * Robust statistics (beyond the paper, off by default): leave specular highlights
 * and/or given pixels (e.g. a first prediction's foreground) out of the mean/std;
 * the transfer itself still maps every pixel.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { channelOffsets, fromPlanar, ImageDims, imageDims, lab8, labIndexToRgb8, labPlanesToRgbF, Layout, mapChunks, rgbPlanesToLab8, rgbPlanesToLabF, rowChunks, toPlanar } from './lab';

export type TransferMode = 'cqseg' | 'reference';
export type LabPrecision = 'uint8' | 'float';

export interface SpecularOptions {
  /** a pixel is specular when max(R,G,B) >= value (0..255) ... */
  value?: number;
  /** ... and its HSV saturation (max - min) / max <= saturation (0..1) */
  saturation?: number;
}

export interface LabStatsOptions {
  layout?: Layout;
  /** 'cqseg' (default) or 'reference' (channel-swapped Lab, unguarded division) */
  mode?: TransferMode;
  /** 'uint8' (default): OpenCV 8-bit Lab; 'float': float Lab (L 0..100) */
  precision?: LabPrecision;
  /** leave specular highlights out of the statistics (default false; true = { value: 235, saturation: 0.2 }) */
  excludeSpecular?: boolean | SpecularOptions;
  /** (N, H, W) bool or 0/1 tensor: pixels to leave out of the statistics (e.g. predicted foreground) */
  exclude?: T.Tensor;
  /** when fewer than this fraction of an image's pixels remain, its statistics use all pixels (default 0.01) */
  minFraction?: number;
}

export type LabTransferOptions = LabStatsOptions;

interface Prepared {
  d: ImageDims;
  /** (N, 3, H, W) Lab planes: uint8 (8-bit path) or float64 (float path) */
  lab: T.Tensor;
  eight: boolean;
  /** (N, 1, H, W) float64 weights, or undefined for all pixels */
  weights: T.Tensor | undefined;
}

const DEFAULT_SPECULAR = { value: 235, saturation: 0.2 };

function checkOpts(op: string, opts: LabStatsOptions): void {
  if (opts.mode !== undefined && opts.mode !== 'cqseg' && opts.mode !== 'reference') {
    throw new ArgumentError(`Argument 'mode' passed to '${op}' must be 'cqseg' or 'reference', got ${String(opts.mode)}`);
  }
  if (opts.precision !== undefined && opts.precision !== 'uint8' && opts.precision !== 'float') {
    throw new ArgumentError(`Argument 'precision' passed to '${op}' must be 'uint8' or 'float', got ${String(opts.precision)}`);
  }
}

/**
 * Specular highlight mask: bright, unsaturated pixels. rgb uint8 (N,3,H,W) (or NHWC
 * with layout) -> bool (N, H, W). A pixel is specular when max(R,G,B) >= value and
 * (max - min) / max <= saturation (defaults 235 and 0.2).
 *   const m = specularMask(images) // bool (N,H,W)
 */
export function specularMask(rgb: T.Tensor, opts: SpecularOptions & { layout?: Layout } = {}): T.Tensor {
  const d = imageDims(rgb, 'rgb', 'specularMask', opts.layout);
  const value = opts.value ?? DEFAULT_SPECULAR.value;
  const sat = opts.saturation ?? DEFAULT_SPECULAR.saturation;
  return T.tidy(() => {
    const x = (rgb.ndim === 3 ? rgb.unsqueeze(0) : rgb).to('float32');
    const cdim = d.layout === 'NCHW' ? 1 : 3;
    const mx = x.max(cdim);
    const mn = x.min(cdim);
    return T.logicalAnd(mx.ge(value), mx.sub(mn).le(mx.mul(sat)));
  });
}

function weightsOf(rgb: T.Tensor, d: ImageDims, opts: LabStatsOptions, op: string): T.Tensor | undefined {
  if (!opts.excludeSpecular && opts.exclude === undefined) return undefined;
  let excluded: T.Tensor | undefined;
  if (opts.excludeSpecular) {
    const so = opts.excludeSpecular === true ? {} : opts.excludeSpecular;
    excluded = specularMask(rgb, { ...so, layout: d.layout });
  }
  if (opts.exclude !== undefined) {
    const e = opts.exclude;
    const want = [d.n, d.h, d.w];
    const got = e.ndim === 2 ? [1, ...e.shape] : e.shape;
    if (got.join() !== want.join()) {
      throw new ArgumentError(`Argument 'exclude' passed to '${op}' must be (N,H,W) = [${want.join(',')}], got [${e.shape.join(',')}]`);
    }
    const eb = e.reshape(want).ne(0);
    excluded = excluded === undefined ? eb : T.logicalOr(excluded, eb);
  }
  const w = excluded!.logicalNot().to('float64').reshape([d.n, 1, d.h, d.w]);
  const frac = w.mean([1, 2, 3], { keepdim: true });
  return T.where(frac.lt(opts.minFraction ?? 0.01), T.onesLike(w), w);
}

/** RGB (any layout) -> Lab rows, with the mode's channel swap applied. */
function prepare(rgb: T.Tensor, op: string, opts: LabStatsOptions): Prepared {
  const d = imageDims(rgb, 'images', op, opts.layout);
  checkOpts(op, opts);
  const eight = (opts.precision ?? 'uint8') === 'uint8';
  if (eight && rgb.dtype !== 'uint8') throw new ArgumentError(`Argument 'images' passed to '${op}' must be uint8 for precision 'uint8', got ${rgb.dtype}`);
  let x = toPlanar(rgb, d);
  if (opts.mode === 'reference') x = x.flip(1);
  let lab: T.Tensor;
  if (eight) {
    lab = rgbPlanesToLab8(x);
  } else {
    lab = rgbPlanesToLabF(rgb.dtype === 'uint8' ? x.to('float64').div(255) : x.to('float64'));
  }
  return { d, lab, eight, weights: weightsOf(rgb, d, opts, op) };
}

/**
 * (N, 3, 256) per-image, per-channel histograms of 8-bit Lab planes (weighted when
 * weights (N, 1, H, W) are given), one bincount per row block (see mapChunks).
 */
function labHistogram(lab: T.Tensor, weights: T.Tensor | undefined): T.Tensor {
  const n = lab.shape[0];
  const off = channelOffsets(lab.device);
  const hs: T.Tensor[] = Array.from({ length: n }, () => T.zeros([3 * 256], { dtype: 'float64', device: lab.device }));
  for (const [i, r, rows] of rowChunks(lab.shape)) {
    const next = T.tidy(() => {
      const idx = lab.narrow(0, i, 1).narrow(2, r, rows).add(off).reshape([-1]); // uint8 + int32 -> int32
      const w = weights === undefined ? undefined : weights.narrow(0, i, 1).narrow(2, r, rows).expand([1, 3, rows, lab.shape[3]]).reshape([-1]);
      return hs[i].add(T.bincount(idx, w, 3 * 256));
    });
    hs[i].dispose();
    hs[i] = next;
  }
  off.dispose();
  return n === 0 ? T.zeros([0, 3 * 256], { dtype: 'float64', device: lab.device }) : T.stack(hs); // (N, 768)
}

function statsOf(p: Prepared): T.Tensor {
  const { lab, weights } = p;
  const n = lab.shape[0];
  if (p.eight) {
    const h = labHistogram(lab, weights).reshape([n, 3, 256]);
    const v = T.arange(256, undefined, 1, { dtype: 'float64', device: lab.device });
    const cnt = h.sum(2, { keepdim: true });
    const mean = h.mul(v).sum(2, { keepdim: true }).div(cnt);
    const variance = h.mul(v.sub(mean).square()).sum(2, { keepdim: true }).div(cnt);
    return T.cat([mean, variance.sqrt()], 2);
  }
  const x = lab.reshape([n, 3, -1]);
  const w = weights === undefined ? T.onesLike(x.narrow(1, 0, 1)) : weights.reshape([n, 1, -1]);
  const cnt = w.sum(2, { keepdim: true });
  const mean = x.mul(w).sum(2, { keepdim: true }).div(cnt);
  const variance = x.sub(mean).square().mul(w).sum(2, { keepdim: true }).div(cnt);
  return T.cat([mean, variance.sqrt()], 2);
}

/**
 * Per-image Lab statistics: images uint8 (N,3,H,W) (float 0..1 allowed for precision
 * 'float') -> float64 (N, 3, 2): [..., 0] the mean and [..., 1] the population std of
 * L, a, b (L in 0..255 for 'uint8', 0..100 for 'float'). In 'reference' mode the
 * channels are those of the reference's swapped "Lab".
 *   const s = labStats(refs) // (N,3,2)
 */
export function labStats(images: T.Tensor, opts: LabStatsOptions = {}): T.Tensor {
  return T.tidy(() => statsOf(prepare(images, 'labStats', opts)));
}

function checkStats(stats: T.Tensor, n: number, op: string): T.Tensor {
  const s = stats.ndim === 2 ? stats.unsqueeze(0) : stats;
  if (s.ndim !== 3 || s.shape[1] !== 3 || s.shape[2] !== 2 || (s.shape[0] !== n && s.shape[0] !== 1)) {
    throw new ArgumentError(`Argument 'refStats' passed to '${op}' must be (N,3,2) or (3,2) with N = ${n} or 1, got [${stats.shape.join(',')}]`);
  }
  return s.to('float64');
}

/**
 * Color transfer toward given Lab statistics (from labStats, e.g. stored in a
 * reference bank). images uint8 (N,3,H,W); refStats (N,3,2), (1,3,2) or (3,2).
 * Returns uint8 RGB of the images' shape and layout, or float32 RGB in 0..1 for
 * precision 'float'.
 *   const out = labTransferToStats(images, labStats(ref))
 */
export function labTransferToStats(images: T.Tensor, refStats: T.Tensor, opts: LabTransferOptions = {}): T.Tensor {
  return T.tidy(() => {
    const p = prepare(images, 'labTransfer', opts);
    const ref = checkStats(refStats, p.d.n, 'labTransfer');
    const inp = statsOf(p);
    const [mIn, sIn] = [inp.narrow(2, 0, 1), inp.narrow(2, 1, 1)];
    const [mRef, sRef] = [ref.narrow(2, 0, 1), ref.narrow(2, 1, 1)];
    const guarded = opts.mode !== 'reference';
    let rgb: T.Tensor;
    if (p.eight) {
      // one 256-entry table per image and channel, in NumPy's operation order
      const v = T.arange(256, undefined, 1, { dtype: 'float64', device: images.device });
      let lut = v.sub(mIn).div(sIn).mul(sRef).add(mRef);
      if (guarded) lut = T.where(sIn.eq(0).expand(lut.shape), v.sub(mIn).add(mRef), lut);
      else lut = T.nanToNum(lut, 0, 0, 0); // NumPy's astype(uint8) of NaN/inf is 0 on x86
      lut = lut.clamp(0, 255).to('int32').add(T.tensor(new Int32Array([0, 256, 512]), [1, 3, 1], { device: images.device })); // to int32 truncates
      // composed with the first table of Lab -> RGB, so the transferred Lab is never materialised
      const composed = T.indexSelect(lab8(images.device).stage1, 0, lut.reshape([-1]));
      const off = channelOffsets(images.device);
      rgb = mapChunks(p.lab, (b, i) => labIndexToRgb8(b.add(off), composed.narrow(0, i * 768, 768)));
    } else {
      const n = p.d.n;
      const sh = [n, 3, 1, 1];
      const mi = mIn.expand([n, 3, 1]).reshape(sh);
      const si = sIn.expand([n, 3, 1]).reshape(sh);
      const sr = sRef.expand([n, 3, 1]).reshape(sh);
      const mr = mRef.expand([n, 3, 1]).reshape(sh);
      const gain = guarded ? T.where(si.eq(0), T.onesLike(si), sr.div(T.where(si.eq(0), T.onesLike(si), si))) : sr.div(si);
      rgb = labPlanesToRgbF(p.lab.sub(mi).mul(gain).add(mr)).to('float32');
    }
    if (opts.mode === 'reference') rgb = rgb.flip(1);
    return fromPlanar(rgb, p.d).contiguous();
  });
}

/**
 * Reinhard color transfer in Lab of each image toward its reference (paper's DCIN
 * step; python-color-transfer's lab_transfer). images uint8 (N,3,H,W); references
 * uint8 (N,3,H',W') or (1,3,H',W') (any size: only their statistics are used).
 *   const out = labTransfer(images, gris.expand([n, 3, h, w]))
 */
export function labTransfer(images: T.Tensor, references: T.Tensor, opts: LabTransferOptions = {}): T.Tensor {
  checkOpts('labTransfer', opts);
  return T.tidy(() => {
    const refOpts = { ...opts, exclude: undefined };
    return labTransferToStats(images, labStats(references, refOpts), opts);
  });
}

/** Module form of labTransfer; the options are fixed at construction. */
export class LabTransfer {
  constructor(readonly opts: LabTransferOptions = {}) {}
  forward(images: T.Tensor, references: T.Tensor): T.Tensor {
    return labTransfer(images, references, this.opts);
  }
}
