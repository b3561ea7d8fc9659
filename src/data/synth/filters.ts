/**
 * Small image filters for the synthetic benchmark, as batched tensor ops on
 * (N, 3, H, W) float images in 0..1. Kernels are built in JS (a few dozen numbers)
 * and applied with depthwise conv2d (groups = 3), reflect padding.
 */
import { conv2d, interpolate, pad, randn, tensor, Tensor, tidy, arange } from '../../tensor';

/** Normalised 1-D Gaussian taps, radius ceil(3 sigma). */
export function gaussianTaps(sigma: number): number[] {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const t = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const s = t.reduce((a, b) => a + b, 0);
  return t.map((v) => v / s);
}

/** Depthwise 2-D convolution of every channel with one (kh, kw) kernel, reflect-padded, same size out. */
export function filter2d(x: Tensor, kernel: number[], kh: number, kw: number): Tensor {
  return tidy(() => {
    const c = x.shape[1];
    const w = tensor(kernel, [1, 1, kh, kw]).expand([c, 1, kh, kw]).contiguous();
    const py = (kh - 1) / 2;
    const px = (kw - 1) / 2;
    const canReflect = py < x.shape[2] && px < x.shape[3];
    const xp = pad(x, [px, px, py, py], canReflect ? 'reflect' : 'replicate');
    return conv2d(xp, w, null, { groups: c });
  });
}

/** Separable Gaussian blur with standard deviation `sigma` pixels. */
export function gaussianBlur(x: Tensor, sigma: number): Tensor {
  const t = gaussianTaps(sigma);
  return tidy(() => filter2d(filter2d(x, t, 1, t.length), t, t.length, 1));
}

/** Linear motion blur: a line of `length` pixels at `angle` radians, drawn with bilinear weights. */
export function motionBlur(x: Tensor, length: number, angle: number): Tensor {
  const r = Math.ceil(length / 2);
  const k = 2 * r + 1;
  const ker = new Array(k * k).fill(0);
  const steps = Math.max(2, Math.ceil(length * 4));
  for (let s = 0; s <= steps; s++) {
    const t = (s / steps - 0.5) * (length - 1);
    const px = r + t * Math.cos(angle);
    const py = r + t * Math.sin(angle);
    const x0 = Math.floor(px), y0 = Math.floor(py);
    const fx = px - x0, fy = py - y0;
    const add = (yy: number, xx: number, wgt: number): void => {
      if (yy >= 0 && yy < k && xx >= 0 && xx < k) ker[yy * k + xx] += wgt;
    };
    add(y0, x0, (1 - fx) * (1 - fy));
    add(y0, x0 + 1, fx * (1 - fy));
    add(y0 + 1, x0, (1 - fx) * fy);
    add(y0 + 1, x0 + 1, fx * fy);
  }
  const sum = ker.reduce((a, b) => a + b, 0);
  return filter2d(x, ker.map((v) => v / sum), k, k);
}

/** Smooth noise (N, C, H, W): standard normal on a coarse grid of `cells` rows, bicubic-upsampled. Uses torch's generator. */
export function smoothNoise(n: number, c: number, h: number, w: number, cells: number): Tensor {
  const gh = Math.max(2, Math.round(cells));
  const gw = Math.max(2, Math.round((cells * w) / h));
  return tidy(() => interpolate(randn([n, c, gh, gw]), { size: [h, w], mode: 'bicubic', alignCorners: false }));
}

/** Pixel-centre coordinate grids: ys (1, 1, H, 1) and xs (1, 1, 1, W), in pixels. */
export function grids(h: number, w: number): { ys: Tensor; xs: Tensor } {
  return { ys: arange(h).add(0.5).reshape([1, 1, h, 1]), xs: arange(w).add(0.5).reshape([1, 1, 1, w]) };
}

/** Down- then up-sampling by `factor` (area-like antialiasing by a Gaussian first): lost resolution. */
export function lowResolution(x: Tensor, factor: number): Tensor {
  const [, , h, w] = x.shape;
  return tidy(() => {
    const pre = gaussianBlur(x, 0.5 * factor);
    const small = interpolate(pre, { size: [Math.max(2, Math.round(h / factor)), Math.max(2, Math.round(w / factor))], mode: 'bilinear', alignCorners: false });
    return interpolate(small, { size: [h, w], mode: 'bilinear', alignCorners: false });
  });
}

/** (1, 3, H, W) float 0..1 -> (H, W, 3) uint8. */
export function toUint8Hwc(x: Tensor): Tensor {
  return tidy(() => x.squeeze(0).permute([1, 2, 0]).clamp(0, 1).mul(255).round().to('uint8').contiguous());
}
