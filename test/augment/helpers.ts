/** Fixtures for the augmentation tests: crafted images, masks and byte comparisons. */
import * as T from '../../src/tensor';

/** (1, 1, H, W) uint8 with pixel (y, x) = y * W + x + 1 (all distinct, none 0). */
export function rampImage(h: number, w: number, dtype: T.DType = 'uint8'): T.Tensor {
  const v = Array.from({ length: h * w }, (_, i) => i + 1);
  return T.tensor(v, [1, 1, h, w], { dtype });
}

/** Row-major 2-D array of a (1, 1, H, W) or (1, H, W) tensor. */
export function grid2d(x: T.Tensor): number[][] {
  const [h, w] = x.shape.slice(-2);
  const a = x.toArray();
  return Array.from({ length: h }, (_, y) => a.slice(y * w, (y + 1) * w));
}

/** A random uint8 batch (N, C, H, W) and a mask (N, H, W) of the given class ids. */
export function randomBatch(n: number, c: number, h: number, w: number, classes: number[], seed = 0): { image: T.Tensor; mask: T.Tensor } {
  T.manualSeed(seed);
  return T.tidy(() => {
    const image = T.rand([n, c, h, w]).mul(255).round().to('uint8');
    // blocky masks so nearest resampling has regions to move
    const idx = T.randint(0, classes.length, [n, 1, Math.ceil(h / 4), Math.ceil(w / 4)]).to('float32');
    const big = T.interpolate(idx, { size: [h, w], mode: 'nearest' }).squeeze(1).to('int64');
    const lut = T.tensor(classes, [classes.length], { dtype: 'int64' });
    const mask = T.indexSelect(lut, 0, big.reshape([-1])).reshape([n, h, w]).to('uint8');
    return { image, mask };
  });
}

export function sameBytes(a: T.Tensor, b: T.Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const x = a.dataSync();
  const y = b.dataSync();
  const u = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const v = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
  if (u.length !== v.length) return false;
  for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  return true;
}

export function uniqueValues(x: T.Tensor): number[] {
  return [...new Set(x.toArray())].sort((a, b) => a - b);
}
