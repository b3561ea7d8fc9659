/**
 * Photometric (image-only) transforms on batches: Blur, Sharpen, GaussNoise,
 * RandomBrightnessContrast, RGBShift with albumentations 1.4.21 ranges, p=0.5 each.
 * Masks are returned byte-identical. The arithmetic runs in float32 on the 0..255
 * scale (see common.ts for dtype rules); every transform clips to 0..255 as
 * albumentations does for uint8. Differences from albumentations: no rounding or
 * truncation to uint8 between chained transforms (one rounding at the end), and
 * float images use the same 0..255 parameters scaled by 1/255.
 */
import * as T from '../tensor';
import { Tensor } from '../tensor';
import {
  AugmentInputs, AugmentOutputs, assemble, checkInputs, checkP, checkParamCount, checkRange, copyMask, drawPerSample,
  fromWorking, ImageSize, padReflect101, perSample, toWorking, Transform,
} from './common';
import { PerSample } from './geometric';
import { Rng } from '../util/random';

/** An image-only transform: per-sample params; `applyWorking` maps float32 0..255 -> 0..255. */
export abstract class PhotometricTransform<P> implements Transform<PerSample<P>> {
  abstract readonly name: string;
  readonly targets = { image: 'pixel', mask: 'none' } as const;
  constructor(readonly p: number) {}
  abstract draw(rng: Rng): P;
  /** x: (N, C, H, W) float32 on 0..255; returns a new tensor clipped to 0..255. */
  abstract applyWorking(x: Tensor, params: PerSample<P>): Tensor;
  sample(batch: number, rng: Rng, _size?: ImageSize): PerSample<P> {
    return drawPerSample(batch, rng, this.p, () => this.draw(rng));
  }
  apply(inputs: AugmentInputs, params: PerSample<P>): AugmentOutputs {
    const { n } = checkInputs(inputs, this.name);
    checkParamCount(params, n, this.name, this.name);
    const image = T.tidy(() => fromWorking(this.applyWorking(toWorking(inputs.image), params), inputs.image.dtype));
    return { image, mask: copyMask(inputs.mask) };
  }
}

/**
 * Sums over a sliding window of k along `dim` of an already padded tensor (length
 * n + k - 1 -> n): k - 1 shifted adds for small k, else a running sum (cumsum, then
 * S[j + k - 1] - S[j - 1]), O(1) per pixel. Depthwise convolutions are slow on the CPU.
 * The running sum is float32: callers centre values (x - 128) to keep its rounding
 * error far below a grey level.
 */
function windowSum(x: Tensor, dim: number, k: number): Tensor {
  return T.tidy(() => {
    const len = x.shape[dim] - k + 1;
    if (k === 1) return x.clone();
    if (k <= 3) {
      const acc = x.narrow(dim, 0, len).add(x.narrow(dim, 1, len));
      for (let j = 2; j < k; j++) acc.add_(x.narrow(dim, j, len));
      return acc;
    }
    const s = T.pad(T.cumsum(x, dim), dim === 3 ? [1, 0] : [0, 0, 1, 0]);
    return s.narrow(dim, k, len).sub(s.narrow(dim, 0, len));
  });
}

/** k x k box sum with cv2's BORDER_REFLECT_101: x (N, C, H, W) float32. */
export function boxSum(x: Tensor, k: number): Tensor {
  const r = (k - 1) / 2;
  return T.tidy(() => windowSum(windowSum(padReflect101(x, r, r), 3, k), 2, k));
}

/** Kernel size per sample (odd). */
export type BlurParams = number;

/**
 * albumentations Blur(blur_limit=(3, 11), p=0.5): a box mean over ksize x ksize,
 * ksize drawn from the odd values 3, 5, 7, 9, 11 (random.choice), cv2.blur with
 * BORDER_REFLECT_101. Computed as separable running sums (see windowSum), per applied sample.
 */
export class Blur extends PhotometricTransform<BlurParams> {
  readonly name = 'Blur';
  readonly sizes: number[];
  constructor(opts: { blurLimit?: [number, number]; p?: number } = {}) {
    super(checkP(opts.p ?? 0.5, 'Blur'));
    const [lo, hi] = checkRange(opts.blurLimit ?? [3, 11], 'blurLimit', 'Blur');
    this.sizes = [];
    for (let k = lo | 1; k <= hi; k += 2) this.sizes.push(k);
    if (this.sizes.length === 0) throw new T.ArgumentError(`Argument 'blurLimit' passed to 'Blur' holds no odd size: ${JSON.stringify(opts.blurLimit)}`);
  }
  draw(rng: Rng): BlurParams {
    return rng.choice(this.sizes);
  }
  /** cv2.blur: each applied sample's k x k box mean (reflect-101 border). */
  applyWorking(x: Tensor, params: PerSample<BlurParams>): Tensor {
    return assemble(x, (i) => {
      const k = params[i];
      return k === null ? null : boxSum(x.narrow(0, i, 1).sub(128), k).div(k * k).add(128).clamp(0, 255);
    });
  }
}

export interface SharpenParams {
  alpha: number;
  lightness: number;
}

/**
 * albumentations Sharpen(alpha=(0.3, 0.9), lightness=(0.5, 1.0), p=0.5), method 'kernel':
 * kernel = (1 - alpha) * identity + alpha * [[-1,-1,-1],[-1, 8 + lightness, -1],[-1,-1,-1]],
 * cv2.filter2D (BORDER_REFLECT_101), clipped.
 */
export class Sharpen extends PhotometricTransform<SharpenParams> {
  readonly name = 'Sharpen';
  readonly alpha: [number, number];
  readonly lightness: [number, number];
  constructor(opts: { alpha?: [number, number]; lightness?: [number, number]; p?: number } = {}) {
    super(checkP(opts.p ?? 0.5, 'Sharpen'));
    this.alpha = checkRange(opts.alpha ?? [0.3, 0.9], 'alpha', 'Sharpen');
    this.lightness = checkRange(opts.lightness ?? [0.5, 1.0], 'lightness', 'Sharpen');
  }
  draw(rng: Rng): SharpenParams {
    const alpha = rng.uniform(...this.alpha);
    return { alpha, lightness: rng.uniform(...this.lightness) };
  }
  static kernel(q: SharpenParams): number[] {
    const k = new Array<number>(9).fill(-q.alpha);
    k[4] = (1 - q.alpha) + q.alpha * (8 + q.lightness);
    return k;
  }
  /**
   * The 3x3 kernel split as (1 + alpha (8 + lightness)) x - alpha * boxSum3(x), which is
   * the same filter (reflect-101 border) without a depthwise convolution.
   */
  applyWorking(x: Tensor, params: PerSample<SharpenParams>): Tensor {
    return assemble(x, (i) => {
      const q = params[i];
      if (q === null) return null;
      const xi = x.narrow(0, i, 1);
      return xi.mul(1 + q.alpha * (8 + q.lightness)).sub(boxSum(xi, 3), q.alpha).clamp(0, 255);
    });
  }
}

export interface GaussNoiseParams {
  /** standard deviation on the 0..255 scale, sqrt(var) */
  std: number;
  /** seed of the private libtorch generator drawing this sample's N(0, 1) field */
  seed: number;
}

/**
 * albumentations GaussNoise(var_limit=(30, 90), mean=0, per_channel=True, p=0.5):
 * var ~ U(30, 90), std = sqrt(var), independent N(0, std) per pixel and channel,
 * added and clipped to 0..255.
 */
export class GaussNoise extends PhotometricTransform<GaussNoiseParams> {
  readonly name = 'GaussNoise';
  readonly varLimit: [number, number];
  constructor(opts: { varLimit?: [number, number]; p?: number } = {}) {
    super(checkP(opts.p ?? 0.5, 'GaussNoise'));
    this.varLimit = checkRange(opts.varLimit ?? [30, 90], 'varLimit', 'GaussNoise');
    if (this.varLimit[0] < 0) throw new T.ArgumentError(`Argument 'varLimit' passed to 'GaussNoise' must be >= 0, got ${JSON.stringify(this.varLimit)}`);
  }
  draw(rng: Rng): GaussNoiseParams {
    return { std: Math.sqrt(rng.uniform(...this.varLimit)), seed: rng.seed() };
  }
  applyWorking(x: Tensor, params: PerSample<GaussNoiseParams>): Tensor {
    const [, c, h, w] = x.shape;
    return assemble(x, (i) => {
      const q = params[i];
      if (q === null) return null;
      const noise = T.seededNormal([c, h, w], [q.seed], 0, q.std, x.device);
      return x.narrow(0, i, 1).add(noise).clamp(0, 255);
    });
  }
}

export interface BrightnessContrastParams {
  /** contrast factor, 1 + U(-limit, limit) */
  alpha: number;
  /** brightness offset as a fraction of the max value (brightness_by_max) */
  beta: number;
}

/**
 * albumentations RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2,
 * brightness_by_max=True, p=0.5): out = clip(alpha * x + beta * 255).
 */
export class RandomBrightnessContrast extends PhotometricTransform<BrightnessContrastParams> {
  readonly name = 'RandomBrightnessContrast';
  readonly brightness: [number, number];
  readonly contrast: [number, number];
  constructor(opts: { brightnessLimit?: number; contrastLimit?: number; p?: number } = {}) {
    super(checkP(opts.p ?? 0.5, 'RandomBrightnessContrast'));
    const b = opts.brightnessLimit ?? 0.2;
    const c = opts.contrastLimit ?? 0.2;
    this.brightness = checkRange([-b, b], 'brightnessLimit', 'RandomBrightnessContrast');
    this.contrast = checkRange([1 - c, 1 + c], 'contrastLimit', 'RandomBrightnessContrast');
  }
  draw(rng: Rng): BrightnessContrastParams {
    // albumentations draws alpha (contrast) first, then beta
    const alpha = rng.uniform(...this.contrast);
    return { alpha, beta: rng.uniform(...this.brightness) };
  }
  applyWorking(x: Tensor, params: PerSample<BrightnessContrastParams>): Tensor {
    if (params.every((q) => q === null)) return x.clone();
    const n = x.shape[0];
    return T.tidy(() => {
      const a = perSample(params.map((q) => q?.alpha ?? 1), [n, 1, 1, 1], x.device);
      const b = perSample(params.map((q) => (q?.beta ?? 0) * 255), [n, 1, 1, 1], x.device);
      return x.mul(a).add(b).clamp(0, 255);
    });
  }
}

/** Shifts of the R, G, B channels on the 0..255 scale. */
export type RgbShiftParams = [number, number, number];

/**
 * albumentations RGBShift(r_shift_limit=20, g_shift_limit=20, b_shift_limit=20, p=0.5):
 * per-channel offsets U(-20, 20) added, clipped. Needs 3 channels (RGB order).
 */
export class RgbShift extends PhotometricTransform<RgbShiftParams> {
  readonly name = 'RGBShift';
  readonly limits: [number, number, number];
  constructor(opts: { rShiftLimit?: number; gShiftLimit?: number; bShiftLimit?: number; p?: number } = {}) {
    super(checkP(opts.p ?? 0.5, 'RGBShift'));
    this.limits = [opts.rShiftLimit ?? 20, opts.gShiftLimit ?? 20, opts.bShiftLimit ?? 20];
    this.limits.forEach((l, i) => checkRange([-l, l], ['rShiftLimit', 'gShiftLimit', 'bShiftLimit'][i], 'RGBShift'));
  }
  draw(rng: Rng): RgbShiftParams {
    return this.limits.map((l) => rng.uniform(-l, l)) as RgbShiftParams;
  }
  applyWorking(x: Tensor, params: PerSample<RgbShiftParams>): Tensor {
    const [n, c] = x.shape;
    if (c !== 3) throw new T.ArgumentError(`Argument 'image' passed to 'RGBShift' must have 3 channels (RGB), got ${c}`);
    if (params.every((q) => q === null)) return x.clone();
    return T.tidy(() => x.add(perSample(params.flatMap((q) => q ?? [0, 0, 0]), [n, 3, 1, 1], x.device)).clamp(0, 255));
  }
}

/** Parameters of the composed photometric stage, one list entry per sample. */
export interface ColorQualityParams {
  blur: PerSample<BlurParams>;
  sharpen: PerSample<SharpenParams>;
  gaussNoise: PerSample<GaussNoiseParams>;
  brightnessContrast: PerSample<BrightnessContrastParams>;
  rgbShift: PerSample<RgbShiftParams>;
}

export interface ColorQualityOptions {
  blur?: { blurLimit?: [number, number]; p?: number };
  sharpen?: { alpha?: [number, number]; lightness?: [number, number]; p?: number };
  gaussNoise?: { varLimit?: [number, number]; p?: number };
  brightnessContrast?: { brightnessLimit?: number; contrastLimit?: number; p?: number };
  rgbShift?: { rShiftLimit?: number; gShiftLimit?: number; bShiftLimit?: number; p?: number };
}

const STAGES = ['blur', 'sharpen', 'gaussNoise', 'brightnessContrast', 'rgbShift'] as const;

/**
 * The paper's color/quality stage: Blur, Sharpen, GaussNoise, RandomBrightnessContrast,
 * RGBShift (p=0.5 each, in that order), image only, one dtype round trip.
 *   const cq = new ColorQuality();
 *   const out = cq.apply({ image, mask }, cq.sample(2, new Rng(1)));
 */
export class ColorQuality implements Transform<ColorQualityParams> {
  readonly name = 'ColorQuality';
  readonly targets = { image: 'pixel', mask: 'none' } as const;
  readonly blur: Blur;
  readonly sharpen: Sharpen;
  readonly gaussNoise: GaussNoise;
  readonly brightnessContrast: RandomBrightnessContrast;
  readonly rgbShift: RgbShift;
  constructor(opts: ColorQualityOptions = {}) {
    this.blur = new Blur(opts.blur);
    this.sharpen = new Sharpen(opts.sharpen);
    this.gaussNoise = new GaussNoise(opts.gaussNoise);
    this.brightnessContrast = new RandomBrightnessContrast(opts.brightnessContrast);
    this.rgbShift = new RgbShift(opts.rgbShift);
  }
  sample(batch: number, rng: Rng, _size?: ImageSize): ColorQualityParams {
    const out: ColorQualityParams = { blur: [], sharpen: [], gaussNoise: [], brightnessContrast: [], rgbShift: [] };
    for (let i = 0; i < batch; i++) {
      for (const k of STAGES) {
        const t = this[k] as PhotometricTransform<unknown>;
        (out[k] as unknown[]).push(rng.bool(t.p) ? t.draw(rng) : null);
      }
    }
    return out;
  }
  /** x float32 0..255 -> new float32 0..255. */
  applyWorking(x: Tensor, params: ColorQualityParams): Tensor {
    return T.tidy(() => {
      let y = x;
      for (const k of STAGES) y = (this[k] as PhotometricTransform<unknown>).applyWorking(y, params[k]);
      return y;
    });
  }
  apply(inputs: AugmentInputs, params: ColorQualityParams): AugmentOutputs {
    const { n } = checkInputs(inputs, this.name);
    for (const k of STAGES) checkParamCount(params[k], n, k, this.name);
    const image = T.tidy(() => fromWorking(this.applyWorking(toWorking(inputs.image), params), inputs.image.dtype));
    return { image, mask: copyMask(inputs.mask) };
  }
}
