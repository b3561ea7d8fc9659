/**
 * What a prediction looks like: class colors (the run's class map, else a fixed palette
 * and golden-angle hues), the overlay of a mask on its image, and the mask PNG.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { writeImage } from '../data';
import { BAND_BYTES } from '../eval/upsample';

export type Rgb = [number, number, number];

/** Colors for classes without one in the run's class map (class 0 is never painted). */
export const DEFAULT_PALETTE: Rgb[] = [[0, 0, 0], [230, 80, 80], [80, 200, 80], [80, 120, 230], [230, 200, 60], [200, 80, 200], [80, 200, 200]];

/** Golden-angle hues for classes past the fixed palette. */
export function paletteColor(i: number): Rgb {
  if (i < DEFAULT_PALETTE.length) return DEFAULT_PALETTE[i];
  const h = (i * 137.508) % 360;
  const f = (n: number): number => {
    const k = (n + h / 60) % 6;
    return Math.round(255 * (0.85 - 0.6 * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

/**
 * The image with every pixel of class > 0 blended half-and-half with its class color;
 * class 0 (background) is left as it is. image uint8 (H, W, 3), labels (H, W) -> uint8 (H, W, 3).
 * Made in bands of rows, so a large image needs little more than its output.
 */
export function overlay(image: T.Tensor, labels: T.Tensor, palette: Rgb[], alpha = 0.5): T.Tensor {
  const [H, W] = [image.shape[0], image.shape[1]];
  const out = T.empty([H, W, 3], { dtype: 'uint8' });
  const rows = Math.max(1, Math.floor(BAND_BYTES / (W * 64)));
  try {
    T.tidy(() => {
      const pal = T.tensor(palette.flat(), [palette.length, 3]);
      for (let r0 = 0; r0 < H; r0 += rows) {
        const n = Math.min(rows, H - r0);
        T.tidy(() => {
          const lab = labels.narrow(0, r0, n);
          const colors = pal.indexSelect(0, lab.reshape([-1]).to('int64')).reshape([n, W, 3]);
          const img = image.narrow(0, r0, n).to('float32');
          const mixed = img.mul(1 - alpha).add(colors.mul(alpha));
          out.narrow(0, r0, n).copy_(T.where(lab.gt(0).unsqueeze(2), mixed, img).round().clamp(0, 255).to('uint8'));
        });
      }
    });
  } catch (err) {
    out.dispose();
    throw err;
  }
  return out;
}

/** Writes class indices (H, W) uint8 as a single-channel 8-bit PNG (temp file + rename). */
export async function writeMask(file: string, labels: T.Tensor): Promise<void> {
  if (labels.ndim !== 2 || labels.dtype !== 'uint8') throw new ArgumentError(`writeMask needs uint8 (H, W) class indices, got ${labels.dtype} [${labels.shape.join(',')}]`);
  await writeImage(file, labels);
}

