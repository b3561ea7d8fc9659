/**
 * Joint RGB histograms, batched (GRIS's image descriptor).
 *
 * As cv2.calcHist([img], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
 * followed by cv2.normalize(hist, hist) (defaults: NORM_L2, alpha 1): a uint8 value v
 * falls in bin floor(v * bins / 256) (v >> 5 for 8 bins); the flat index is
 * (r * bins + g) * bins + b; counts are scaled to unit L2 norm over the bins^3 values
 * and returned as float32 (the norm is taken in float64).
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { ImageDims, imageDims, Layout, rowChunks, toPlanar } from './lab';

export interface HistogramOptions {
  layout?: Layout;
  /** bins per channel, a power of two dividing 256 (default 8 -> 512 values) */
  bins?: number;
  /** 'l2' (default, cv2.normalize's default) or 'none' (raw counts) */
  normalize?: 'l2' | 'none';
}

/** int64 (N, nb) counts on the CPU: one fused pass per image (native kernel, 4-8x libtorch's shift + bincount). */
function cpuCounts(images: T.Tensor, d: ImageDims, shift: number): T.Tensor {
  const x = d.batched ? images : images.unsqueeze(0);
  return T.rgbHistogramCounts(x, d.layout === 'NHWC', shift);
}

/** int64 (N, nb) counts on other devices: bin per channel by a uint8 shift, the flat index by a 1x1 convolution (exact in float32), then bincount per row block. */
function deviceCounts(images: T.Tensor, d: ImageDims, shift: number, nb: number): T.Tensor {
  const bins = 256 >> shift;
  const dev = images.device;
  const x = toPlanar(images, d);
  const w = T.tensor([bins * bins, bins, 1], [1, 3, 1, 1], { device: dev });
  const hs: T.Tensor[] = Array.from({ length: d.n }, () => T.zeros([nb], { dtype: 'int64', device: dev }));
  for (const [i, r, rows] of rowChunks(x.shape)) {
    const next = T.tidy(() => {
      const q = T.bitwiseRightShift(x.narrow(0, i, 1).narrow(2, r, rows), shift).to('float32');
      const bin = T.conv2d(q, w, null).to('int32');
      return hs[i].add(T.bincount(bin.reshape([-1]), undefined, nb));
    });
    hs[i].dispose();
    hs[i] = next;
  }
  return hs.length === 0 ? T.zeros([0, nb], { dtype: 'int64', device: dev }) : T.stack(hs);
}

/**
 * images uint8 (N,3,H,W) (or (N,H,W,3) with layout 'NHWC') -> float32 (N, bins^3).
 *   const h = rgbHistogram(images) // (N, 512), each row of unit L2 norm
 */
export function rgbHistogram(images: T.Tensor, opts: HistogramOptions = {}): T.Tensor {
  const d = imageDims(images, 'images', 'rgbHistogram', opts.layout);
  if (images.dtype !== 'uint8') throw new ArgumentError(`Argument 'images' passed to 'rgbHistogram' must be uint8, got ${images.dtype}`);
  const bins = opts.bins ?? 8;
  if (!Number.isInteger(bins) || bins < 1 || bins > 256 || 256 % bins !== 0) {
    throw new ArgumentError(`Argument 'bins' passed to 'rgbHistogram' must be a power of two from 1 to 256, got ${String(bins)}`);
  }
  const norm = opts.normalize ?? 'l2';
  if (norm !== 'l2' && norm !== 'none') throw new ArgumentError(`Argument 'normalize' passed to 'rgbHistogram' must be 'l2' or 'none', got ${String(norm)}`);
  const nb = bins * bins * bins;
  const shift = Math.log2(256 / bins);
  return T.tidy(() => {
    const counts = (images.device === 'cpu' ? cpuCounts(images, d, shift) : deviceCounts(images, d, shift, nb)).to('float64');
    if (norm === 'none') return counts.to('float32');
    const l2 = counts.square().sum(1, { keepdim: true }).sqrt();
    return counts.div(T.where(l2.eq(0), T.onesLike(l2), l2)).to('float32');
  });
}

/** Module form of rgbHistogram. */
export class RgbHistogram {
  constructor(readonly opts: HistogramOptions = {}) {}
  forward(images: T.Tensor): T.Tensor {
    return rgbHistogram(images, this.opts);
  }
}
