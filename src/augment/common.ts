/**
 * Shared pieces of the augmentation layer: the transform interface (sample, then
 * apply), input checks, dtype handling, reflect-101 padding, per-sample tensors and
 * seeded per-pixel noise fields.
 *
 * Dtype rules (all transforms):
 * - image: (N, C, H, W), uint8 with values 0..255 or floating (float32/float64/float16)
 *   with values 0..1. The output has the input's dtype: uint8 results are rounded
 *   and clamped to 0..255, float results clamped to 0..1 (photometric) or left as
 *   resampled (geometric; bicubic may overshoot and is clamped to the input's range).
 * - mask: (N, H, W) or (N, 1, H, W), any integer or bool dtype (class indices); it keeps
 *   its shape and dtype. Geometric transforms resample it by nearest neighbour with
 *   fill 0; image-only transforms return a byte-identical copy.
 * - Photometric parameters are on the 0..255 scale (as albumentations for uint8);
 *   float images are scaled by 255 for the computation and back.
 * Outputs are always new tensors: inputs are never mutated or disposed.
 */
import * as T from '../tensor';
import { ArgumentError, Tensor } from '../tensor';
import { Rng } from '../util/random';

/** Named inputs of a transform; `mask` is optional. */
export interface AugmentInputs {
  image: Tensor;
  mask?: Tensor;
}
export interface AugmentOutputs {
  image: Tensor;
  mask?: Tensor;
}

/**
 * What a transform does to a target: 'resample' moves pixels (images interpolated,
 * masks by nearest), 'pixel' changes values in place of each pixel, 'none' leaves it
 * byte-identical (albumentations DualTransform vs ImageOnlyTransform).
 */
export type Effect = 'resample' | 'pixel' | 'none';

export interface ImageSize {
  height: number;
  width: number;
}

/**
 * Every transform: `sample` draws per-sample parameters (plain JSON-able data, null
 * for a sample the transform skips), `apply` replays them exactly.
 */
export interface Transform<P> {
  readonly name: string;
  readonly targets: { readonly image: Effect; readonly mask: Effect };
  sample(batch: number, rng: Rng, size: ImageSize): P;
  apply(inputs: AugmentInputs, params: P): AugmentOutputs;
}

export interface Checked {
  n: number;
  c: number;
  h: number;
  w: number;
}

/** Checks image (N,C,H,W) and the optional mask ((N,H,W) or (N,1,H,W), same N,H,W). */
export function checkInputs(inputs: AugmentInputs, op: string): Checked {
  if (inputs === null || typeof inputs !== 'object') {
    throw new ArgumentError(`Argument 'inputs' passed to '${op}' must be { image, mask? }, got ${String(inputs)}`);
  }
  const { image, mask } = inputs;
  if (!(image instanceof Tensor)) throw new ArgumentError(`Argument 'image' passed to '${op}' must be a Tensor, got ${String(image)}`);
  if (image.isDisposed) throw new ArgumentError(`Argument 'image' passed to '${op}': Tensor is disposed`);
  if (image.ndim !== 4) throw new ArgumentError(`Argument 'image' passed to '${op}' must be 4-D (N,C,H,W), got [${image.shape.join(',')}]`);
  const dt = image.dtype;
  if (dt !== 'uint8' && !T.isFloating(dt)) {
    throw new ArgumentError(`Argument 'image' passed to '${op}' must be uint8 (0..255) or floating (0..1), got ${dt}`);
  }
  const [n, c, h, w] = image.shape;
  if (mask !== undefined) {
    if (!(mask instanceof Tensor)) throw new ArgumentError(`Argument 'mask' passed to '${op}' must be a Tensor, got ${String(mask)}`);
    if (mask.isDisposed) throw new ArgumentError(`Argument 'mask' passed to '${op}': Tensor is disposed`);
    const s = mask.shape;
    const ok = (s.length === 3 && s[0] === n && s[1] === h && s[2] === w) || (s.length === 4 && s[0] === n && s[1] === 1 && s[2] === h && s[3] === w);
    if (!ok) {
      throw new ArgumentError(`Argument 'mask' passed to '${op}' must be (N,H,W) or (N,1,H,W) matching image [${image.shape.join(',')}], got [${s.join(',')}]`);
    }
  }
  return { n, c, h, w };
}

/** Checks that params were drawn for this batch size. */
export function checkParamCount(list: unknown[], n: number, what: string, op: string): void {
  if (!Array.isArray(list) || list.length !== n) {
    throw new ArgumentError(`Params '${what}' passed to '${op}' hold ${Array.isArray(list) ? list.length : 'no'} samples, the batch has ${n}`);
  }
}

/** image -> float32 on the 0..255 scale (uint8 as is, floats times 255). */
export function toWorking(image: Tensor): Tensor {
  if (image.dtype === 'uint8') return image.to('float32');
  return T.tidy(() => image.to('float32').mul(255));
}

/** float32 0..255 -> the dtype of `like`: uint8 rounded and clamped, floats /255 clamped to 0..1. */
export function fromWorking(x: Tensor, like: T.DType): Tensor {
  return T.tidy(() => {
    const c = x.clamp(0, 255);
    if (like === 'uint8') return c.round().to('uint8');
    const f = c.div(255);
    return like === 'float32' ? f : f.to(like);
  });
}

/** Index list of cv2's BORDER_REFLECT_101 padding by r on each side of a length-n axis. */
export function reflect101Indices(n: number, r: number): number[] {
  const out: number[] = [];
  for (let i = -r; i < n + r; i++) {
    let j = i;
    if (n === 1) j = 0;
    else {
      const period = 2 * (n - 1);
      j = ((j % period) + period) % period;
      if (j >= n) j = period - j;
    }
    out.push(j);
  }
  return out;
}

/** Pads (N, C, H, W) by r on H and W with cv2's BORDER_REFLECT_101 (any r, any size). */
export function padReflect101(x: Tensor, rh: number, rw = rh): Tensor {
  return T.tidy(() => {
    const [, , h, w] = x.shape;
    // torch's 'reflect' is cv2's REFLECT_101; it needs r < size, else index by hand
    if (rh < h && rw < w && x.dtype !== 'uint8') return T.pad(x, [rw, rw, rh, rh], 'reflect');
    let y = x;
    if (rh > 0) y = y.indexSelect(2, T.tensor(reflect101Indices(h, rh), undefined, { dtype: 'int64', device: x.device }));
    if (rw > 0) y = y.indexSelect(3, T.tensor(reflect101Indices(w, rw), undefined, { dtype: 'int64', device: x.device }));
    return y === x ? x.clone() : y;
  });
}

/** A float32 tensor of per-sample values with the given shape (e.g. [N,1,1,1]) on a device. */
export function perSample(values: number[], shape: number[], device: string): Tensor {
  return T.tensor(Float32Array.from(values), shape, { device: device === 'cpu' ? undefined : device });
}

/**
 * Builds a batch sample by sample: fn(i) gives sample i's new (1, ...) slice, or null
 * to keep x's sample i. Used where only some samples of a batch are transformed.
 */
export function assemble(x: Tensor, fn: (i: number) => Tensor | null): Tensor {
  return T.tidy(() => {
    const n = x.shape[0];
    const parts: Tensor[] = [];
    let changed = false;
    for (let i = 0; i < n; i++) {
      const r = fn(i);
      if (r !== null) changed = true;
      parts.push(r ?? x.narrow(0, i, 1));
    }
    return changed ? T.cat(parts, 0) : x.clone();
  });
}

/** A byte-identical copy of the mask (image-only transforms), or undefined. */
export function copyMask(mask: Tensor | undefined): Tensor | undefined {
  return mask === undefined ? undefined : mask.clone();
}

/** Checks a probability. */
export function checkP(p: number, op: string): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new ArgumentError(`Argument 'p' passed to '${op}' must be in [0, 1], got ${String(p)}`);
  return p;
}

/** Checks a [lo, hi] range. */
export function checkRange(r: readonly [number, number], arg: string, op: string): [number, number] {
  if (!Array.isArray(r) || r.length !== 2 || !(r[0] <= r[1]) || !r.every(Number.isFinite)) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be [lo, hi] with lo <= hi, got ${JSON.stringify(r)}`);
  }
  return [r[0], r[1]];
}

/** Per-sample draw with albumentations' order: coin `random() < p`, then the parameters. */
export function drawPerSample<P>(n: number, rng: Rng, p: number, draw: () => P): (P | null)[] {
  const out: (P | null)[] = [];
  for (let i = 0; i < n; i++) out.push(rng.bool(p) ? draw() : null);
  return out;
}
