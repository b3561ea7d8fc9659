/**
 * Class labels at an image's own size from probabilities at the model's size, with
 * bounded memory: argmax over classes of the probabilities bilinearly upsampled
 * (align_corners false), without ever holding the (C, H, W) upsampled probabilities.
 *
 * The upsampling runs in two passes, widths first (C, h, W), then heights in bands of
 * columns (C, H, band); each band is reduced to labels at once. This is bit-identical to
 * one interpolate of the whole: libtorch computes each output as the height blend of two
 * width blends, and a pass whose size does not change is the identity. Memory: about
 * C * h * W * 4 bytes for the first pass, BAND_BYTES for a band, and the (H, W) uint8
 * labels (an 8000 x 8000 image: 64 MB instead of the 1.5 GB of float32 probabilities
 * of two classes plus their int64 argmax).
 *   const labels = upsampleArgmax(probs, [4000, 6000]);  // uint8 (4000, 6000)
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';

/** Bytes of work per band (the band's probabilities, maxima, indices and sums). */
export const BAND_BYTES = 64 * 2 ** 20;

export interface LabelBand {
  /** first column of the band and its width */
  col: number;
  width: number;
  /** (H, width) int64 class indices and float32 max-probabilities of the band */
  labels: T.Tensor;
  maxProb: T.Tensor;
}

/**
 * argmax of bilinearly upsampled probabilities (1, C, h, w) -> uint8 (H, W); `visit`
 * sees every band (its tensors live only during the call), e.g. to count pixels per
 * class or fill a confusion matrix at full size.
 */
export function upsampleArgmax(probs: T.Tensor, size: [number, number], visit?: (band: LabelBand) => void): T.Tensor {
  if (probs.ndim !== 4 || probs.shape[0] !== 1) {
    throw new ArgumentError(`Argument 'probs' passed to 'upsampleArgmax' must be (1, C, h, w), got [${probs.shape.join(',')}]`);
  }
  const [c, h, w] = probs.shape.slice(1);
  const [H, W] = size;
  const opts = { mode: 'bilinear' as const, alignCorners: false };
  const labels = T.zeros([H, W], { dtype: 'uint8' });
  const wide = T.keep(T.tidy(() => (w === W ? probs.clone() : T.interpolate(probs, { size: [h, W], ...opts }))));
  try {
    const band = Math.max(1, Math.floor(BAND_BYTES / (H * (4 * c + 29))));
    for (let col = 0; col < W; col += band) {
      const n = Math.min(band, W - col);
      T.tidy(() => {
        const cols = wide.narrow(3, col, n).contiguous();
        const up = h === H ? cols : T.interpolate(cols, { size: [H, n], ...opts });
        const [maxProb, idx] = T.maxDim(up.select(0, 0), 0);
        labels.narrow(1, col, n).copy_(idx.to('uint8'));
        visit?.({ col, width: n, labels: idx, maxProb });
      });
    }
  } catch (err) {
    labels.dispose();
    throw err;
  } finally {
    wide.dispose();
  }
  return labels;
}
