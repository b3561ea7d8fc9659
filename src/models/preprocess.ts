/**
 * Model input preprocessing, stored in a run's config so prediction repeats training's:
 * uint8 RGB (N, 3, H, W) -> float32 in [0, 1] -> (x - mean) / std per channel.
 * The default is ImageNet's statistics, as smp's encoders expect.
 */
import { Tensor, tensor, tidy } from '../tensor';
import { ArgumentError } from '../tensor/check';

export interface Preprocessing {
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET: Preprocessing = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** (N, 3, H, W) uint8 or float in 0..255 -> normalised float32 on the same device. */
export function normalize(images: Tensor, p: Preprocessing = IMAGENET): Tensor {
  if (images.ndim !== 4 || images.shape[1] !== 3) {
    throw new ArgumentError(`Argument 'images' passed to 'normalize' must be (N,3,H,W), got [${images.shape.join(',')}]`);
  }
  return tidy(() => {
    const dev = images.device;
    const scale = tensor(p.std.map((s) => 1 / (255 * s)), [1, 3, 1, 1], { device: dev });
    const shift = tensor(p.mean.map((m, i) => -m / p.std[i]), [1, 3, 1, 1], { device: dev });
    return images.to('float32').mul(scale).add(shift);
  });
}
