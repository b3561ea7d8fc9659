/**
 * Geometric (dual) transforms on batches: image and mask move together with the same
 * per-sample draw. Images are resampled bilinearly (or bicubically) with border 0,
 * masks by nearest neighbour with fill 0, so mask values stay within the class set
 * plus 0.
 *
 * The affine parts (flip, shear, shift-scale-rotate) are composed into one 3x3 matrix
 * per sample and the elastic displacement is added to the sampling grid, so a batch
 * is resampled once (one grid_sample) however many parts are on. albumentations
 * resamples once per transform; composing avoids repeated interpolation blur and is
 * otherwise the same mapping (borders are 0 either way).
 *
 * Conventions follow albumentations 1.4.21 / OpenCV: pixel centres at integer
 * coordinates, matrices map source pixels to output pixels (cv2.warpAffine without
 * WARP_INVERSE_MAP), centre ((W-1)/2, (H-1)/2).
 */
import * as T from '../tensor';
import { Tensor } from '../tensor';
import {
  AugmentInputs, AugmentOutputs, checkInputs, checkP, checkParamCount, checkRange, drawPerSample, Effect, ImageSize,
  padReflect101, perSample, Transform,
} from './common';
import { Rng } from '../util/random';

/** Row-major 2x3 affine [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/** m2 after m1 (m2 * m1). */
export function compose(m2: Affine, m1: Affine): Affine {
  const [a, b, c, d, e, f] = m2;
  const [A, B, C, D, E, F] = m1;
  return [a * A + b * D, a * B + b * E, a * C + b * F + c, d * A + e * D, d * B + e * E, d * C + e * F + f];
}

export function invert(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (!(Math.abs(det) > 1e-12)) throw new RangeError(`affine matrix [${m.join(', ')}] is singular`);
  return [e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det];
}

/** Conjugates m by a shift to the image centre ((W-1)/2, (H-1)/2). */
function aboutCentre(m: Affine, size: ImageSize): Affine {
  const cx = (size.width - 1) / 2;
  const cy = (size.height - 1) / 2;
  return compose([1, 0, cx, 0, 1, cy], compose(m, [1, 0, -cx, 0, 1, -cy]));
}

/** A geometric part: per-sample parameters and their forward pixel matrix. */
interface AffinePart<P> {
  readonly p: number;
  draw(rng: Rng, size: ImageSize): P;
  matrix(params: P, size: ImageSize): Affine;
}

export type InterpolationMode = 'bilinear' | 'bicubic';
export interface WarpOptions {
  /** image interpolation; masks always use nearest */
  mode?: InterpolationMode;
  /** float images: the top of the value range bicubic overshoot is clamped to (default 1) */
  valueMax?: number;
}

/**
 * Resamples image and mask once: output pixel p reads source pixel M^-1 (p + d(p)),
 * M the forward matrix of each sample, d an optional (N, 2, H, W) displacement in
 * pixels (dx, dy), as cv2.remap after cv2.warpAffine.
 */
export function warp(inputs: AugmentInputs, matrices: Affine[], field: Tensor | null, opts: WarpOptions = {}): AugmentOutputs {
  const { n, h, w } = checkInputs(inputs, 'warp');
  checkParamCount(matrices, n, 'matrices', 'warp');
  const { image, mask } = inputs;
  if (field !== null && (!(field instanceof Tensor) || field.shape.join() !== [n, 2, h, w].join())) {
    throw new T.ArgumentError(`Argument 'field' passed to 'warp' must be (N,2,H,W) = [${[n, 2, h, w].join(',')}], got ${field instanceof Tensor ? `[${field.shape.join(',')}]` : String(field)}`);
  }
  if (field === null && matrices.every((m) => m.every((v, i) => v === IDENTITY[i]))) {
    return { image: image.clone(), mask: mask?.clone() }; // nothing moves: exact copies
  }
  return T.tidy(() => {
    const dev = image.device;
    // normalised (alignCorners=false) <- pixel: n = (2p + 1)/W - 1
    const toN: Affine = [2 / w, 0, 1 / w - 1, 0, 2 / h, 1 / h - 1];
    const toP = invert(toN);
    const theta = new Float32Array(n * 6);
    matrices.forEach((m, i) => theta.set(compose(toN, compose(invert(m), toP)), i * 6));
    const th = T.tensor(theta, [n, 2, 3], { device: dev === 'cpu' ? undefined : dev });
    let grid = T.affineGrid(th, [n, 1, h, w], false);
    if (field !== null) {
      // d in normalised units, then through each sample's linear part: grid += (d_n) @ A^T
      const dn = field.permute([0, 2, 3, 1]).mul(perSample([2 / w, 2 / h], [2], dev)).reshape([n, h * w, 2]);
      const lin = th.narrow(2, 0, 2).transpose(1, 2);
      grid = grid.add(T.bmm(dn, lin).reshape([n, h, w, 2]));
    }
    const out: AugmentOutputs = { image: resampleImage(image, grid, opts.mode ?? 'bilinear', opts.valueMax ?? 1) };
    if (mask !== undefined) out.mask = resampleMask(mask, grid);
    return out;
  });
}

function resampleImage(image: Tensor, grid: Tensor, mode: InterpolationMode, valueMax: number): Tensor {
  const dt = image.dtype;
  const x = dt === 'float32' || dt === 'float64' ? image : image.to('float32');
  let y = T.gridSample(x, grid.dtype === x.dtype ? grid : grid.to(x.dtype), { mode, paddingMode: 'zeros', alignCorners: false });
  if (dt === 'uint8') return y.round().clamp(0, 255).to('uint8');
  if (mode === 'bicubic') y = y.clamp(0, valueMax);
  return y.dtype === dt ? y : y.to(dt);
}

function resampleMask(mask: Tensor, grid: Tensor): Tensor {
  const four = mask.ndim === 3 ? mask.unsqueeze(1) : mask;
  const y = T.gridSample(four.to('float32'), grid.to('float32'), { mode: 'nearest', paddingMode: 'zeros', alignCorners: false });
  const back = y.to(mask.dtype);
  return mask.ndim === 3 ? back.squeeze(1) : back;
}

/** Per-sample parameters of one transform: null where the sample is skipped. */
export type PerSample<P> = (P | null)[];

/** An affine transform alone: sample per-sample params, apply = one warp. */
abstract class AffineTransform<P> implements Transform<PerSample<P>>, AffinePart<P> {
  abstract readonly name: string;
  readonly targets: { image: Effect; mask: Effect } = { image: 'resample', mask: 'resample' };
  constructor(readonly p: number, readonly mode: InterpolationMode) {}
  abstract draw(rng: Rng, size: ImageSize): P;
  abstract matrix(params: P, size: ImageSize): Affine;
  sample(batch: number, rng: Rng, size: ImageSize): PerSample<P> {
    return drawPerSample(batch, rng, this.p, () => this.draw(rng, size));
  }
  apply(inputs: AugmentInputs, params: PerSample<P>): AugmentOutputs {
    const { n, h, w } = checkInputs(inputs, this.name);
    checkParamCount(params, n, this.name, this.name);
    const size = { height: h, width: w };
    return warp(inputs, params.map((q) => (q === null ? IDENTITY : this.matrix(q, size))), null, { mode: this.mode });
  }
}

/** albumentations HorizontalFlip(p=0.5): x -> (W-1) - x. Params: true per flipped sample. */
export class HorizontalFlip extends AffineTransform<true> {
  readonly name = 'HorizontalFlip';
  constructor(opts: { p?: number; mode?: InterpolationMode } = {}) {
    super(checkP(opts.p ?? 0.5, 'HorizontalFlip'), opts.mode ?? 'bilinear');
  }
  draw(): true {
    return true;
  }
  matrix(_p: true, size: ImageSize): Affine {
    return [-1, 0, size.width - 1, 0, 1, 0];
  }
}

export interface ShearParams {
  /** degrees */
  x: number;
  /** degrees */
  y: number;
}

/**
 * albumentations Affine(shear=(-20, 20), p=0.5) with no scale, translation or rotation:
 * shear x and y drawn independently in the range (1.4.21 turns a scalar range into
 * {x: range, y: range}); matrix about the centre [[1, tan(sx), 0], [tan(sy), 1, 0]]
 * (1.4.21's create_affine_transformation_matrix).
 */
export class Shear extends AffineTransform<ShearParams> {
  readonly name = 'Shear';
  readonly range: [number, number];
  constructor(opts: { shear?: [number, number]; p?: number; mode?: InterpolationMode } = {}) {
    super(checkP(opts.p ?? 0.5, 'Shear'), opts.mode ?? 'bilinear');
    this.range = checkRange(opts.shear ?? [-20, 20], 'shear', 'Shear');
  }
  draw(rng: Rng): ShearParams {
    return { x: rng.uniform(...this.range), y: rng.uniform(...this.range) };
  }
  matrix(q: ShearParams, size: ImageSize): Affine {
    const rad = Math.PI / 180;
    return aboutCentre([1, Math.tan(q.x * rad), 0, Math.tan(q.y * rad), 1, 0], size);
  }
}

export interface ShiftScaleRotateParams {
  /** degrees, counter-clockwise on screen (cv2.getRotationMatrix2D) */
  angle: number;
  /** zoom factor */
  scale: number;
  /** shift as a fraction of W and H */
  dx: number;
  dy: number;
}

/**
 * albumentations ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.5, rotate_limit=20,
 * border constant 0, p=0.5): angle ~ U(-20, 20), scale ~ U(0.5, 1.5) (scale_limit is
 * biased by 1), dx, dy ~ U(-0.0625, 0.0625); matrix = cv2.getRotationMatrix2D(centre,
 * angle, scale) then translation (dx W, dy H).
 */
export class ShiftScaleRotate extends AffineTransform<ShiftScaleRotateParams> {
  readonly name = 'ShiftScaleRotate';
  readonly shift: [number, number];
  readonly scale: [number, number];
  readonly rotate: [number, number];
  constructor(opts: { shiftLimit?: number; scaleLimit?: number; rotateLimit?: number; p?: number; mode?: InterpolationMode } = {}) {
    super(checkP(opts.p ?? 0.5, 'ShiftScaleRotate'), opts.mode ?? 'bilinear');
    const s = opts.shiftLimit ?? 0.0625;
    const z = opts.scaleLimit ?? 0.5;
    const r = opts.rotateLimit ?? 20;
    this.shift = checkRange([-s, s], 'shiftLimit', 'ShiftScaleRotate');
    this.scale = checkRange([1 - z, 1 + z], 'scaleLimit', 'ShiftScaleRotate');
    this.rotate = checkRange([-r, r], 'rotateLimit', 'ShiftScaleRotate');
  }
  draw(rng: Rng): ShiftScaleRotateParams {
    // albumentations' order: angle, scale, dx, dy
    const angle = rng.uniform(...this.rotate);
    const scale = rng.uniform(...this.scale);
    return { angle, scale, dx: rng.uniform(...this.shift), dy: rng.uniform(...this.shift) };
  }
  matrix(q: ShiftScaleRotateParams, size: ImageSize): Affine {
    const a = q.scale * Math.cos((q.angle * Math.PI) / 180);
    const b = q.scale * Math.sin((q.angle * Math.PI) / 180);
    const cx = (size.width - 1) / 2;
    const cy = (size.height - 1) / 2;
    return [a, b, (1 - a) * cx - b * cy + q.dx * size.width, -b, a, b * cx + (1 - a) * cy + q.dy * size.height];
  }
}

export interface ElasticParams {
  /** seed of the private libtorch generator drawing this sample's two U(-1, 1) fields */
  seed: number;
}

/** cv2.getGaussianKernel(ksize, sigma) as a list. */
export function gaussianKernel1d(ksize: number, sigma: number): number[] {
  const c = (ksize - 1) / 2;
  const k = Array.from({ length: ksize }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
  const s = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / s);
}

/**
 * Valid 1-D correlation of every row of x (B, 1, H, W) with kernel k (length K) ->
 * (B, 1, H, W - K + 1), as a polyphase convolution: the row is cut into blocks of 8,
 * the 8 phases become channels and the K-tap filter an 8 -> 8 channel filter of
 * ceil((K + 7) / 8) taps. Same sums as conv2d with a (1, 1, 1, K) kernel, but a dense
 * GEMM instead of a 1-channel convolution (faster on the CPU for long kernels; bench/augment.ts).
 */
export function correlateRows(x: Tensor, k: number[]): Tensor {
  const P = 8;
  const K = k.length;
  const taps = Math.ceil((K + P - 1) / P);
  const wts = new Float32Array(P * P * taps);
  for (let o = 0; o < P; o++) {
    for (let c = 0; c < P; c++) {
      for (let t = 0; t < taps; t++) {
        const j = t * P + c - o;
        if (j >= 0 && j < K) wts[(o * P + c) * taps + t] = k[j];
      }
    }
  }
  return T.tidy(() => {
    const [b, , h, w] = x.shape;
    const outLen = w - K + 1;
    const blocks = Math.ceil(outLen / P);
    const need = (blocks + taps - 1) * P;
    const weight = perSample(Array.from(wts), [P, P, 1, taps], x.device);
    const phases = T.pad(x, [0, need - w]).reshape([b * h, need / P, P]).permute([2, 0, 1]).unsqueeze(0);
    const y = T.conv2d(phases, weight);
    return y.squeeze(0).permute([1, 2, 0]).reshape([b, 1, h, blocks * P]).narrow(3, 0, outLen).contiguous();
  });
}

/**
 * albumentations ElasticTransform(alpha=35, sigma=5, approximate=False, p=0.5), 1.4.21:
 * dx, dy = GaussianBlur(U(-1, 1) field, ksize (0, 0) -> 8 sigma + 1 = 41 for float32,
 * sigma, BORDER_REFLECT_101) * alpha; output(p) = input(p + d(p)). No affine part
 * (1.4.21 ignores alpha_affine). Border 0 (the paper's settings; albumentations'
 * default would be reflect-101).
 */
export class ElasticTransform implements Transform<PerSample<ElasticParams>> {
  readonly name = 'ElasticTransform';
  readonly targets = { image: 'resample', mask: 'resample' } as const;
  readonly p: number;
  readonly alpha: number;
  readonly sigma: number;
  readonly mode: InterpolationMode;
  constructor(opts: { alpha?: number; sigma?: number; p?: number; mode?: InterpolationMode } = {}) {
    this.p = checkP(opts.p ?? 0.5, 'ElasticTransform');
    this.alpha = opts.alpha ?? 35;
    this.sigma = opts.sigma ?? 5;
    if (!(this.sigma > 0)) throw new T.ArgumentError(`Argument 'sigma' passed to 'ElasticTransform' must be > 0, got ${this.sigma}`);
    this.mode = opts.mode ?? 'bilinear';
  }
  draw(rng: Rng): ElasticParams {
    return { seed: rng.seed() };
  }
  sample(batch: number, rng: Rng): PerSample<ElasticParams> {
    return drawPerSample(batch, rng, this.p, () => this.draw(rng));
  }
  /** (N, 2, H, W) float32 displacement in pixels (zeros for skipped samples), or null if none applies. */
  field(params: PerSample<ElasticParams>, size: ImageSize, device: string): Tensor | null {
    const seeds = params.filter((q): q is ElasticParams => q !== null).map((q) => q.seed);
    if (seeds.length === 0) return null;
    return T.tidy(() => {
      const { height: h, width: w } = size;
      const ks = Math.round(this.sigma * 8 + 1) | 1;
      const r = (ks - 1) / 2;
      const k = gaussianKernel1d(ks, this.sigma);
      const raw = T.seededUniform([2, h, w], seeds, -1, 1, device).reshape([seeds.length * 2, 1, h, w]);
      // sample by sample: the convolution's algorithm, and so its rounding, may change with the
      // batch's size, and a sample's field must not depend on its batch (data-parallel shards)
      const smooth = T.cat(seeds.map((_, i) => {
        const rows = correlateRows(padReflect101(raw.narrow(0, 2 * i, 2), r, r), k);
        return correlateRows(rows.transpose(2, 3), k).transpose(2, 3).mul(this.alpha).reshape([1, 2, h, w]);
      }), 0);
      if (seeds.length === params.length) return smooth;
      let j = 0;
      const zero = T.zeros([1, 2, h, w], { device: device === 'cpu' ? undefined : device });
      return T.cat(params.map((q) => (q === null ? zero : smooth.narrow(0, j++, 1))), 0);
    });
  }
  apply(inputs: AugmentInputs, params: PerSample<ElasticParams>): AugmentOutputs {
    const { n, h, w } = checkInputs(inputs, this.name);
    checkParamCount(params, n, this.name, this.name);
    return T.tidy(() => warp(inputs, new Array<Affine>(n).fill(IDENTITY), this.field(params, { height: h, width: w }, inputs.image.device), { mode: this.mode }));
  }
}

/** Parameters of the composed geometric stage; each list has one entry per sample. */
export interface GeometricParams {
  flip: PerSample<true>;
  shear: PerSample<ShearParams>;
  shiftScaleRotate: PerSample<ShiftScaleRotateParams>;
  elastic: PerSample<ElasticParams>;
}

export interface GeometricOptions {
  /** image interpolation (masks: nearest); default 'bilinear' */
  mode?: InterpolationMode;
  flip?: { p?: number };
  shear?: { shear?: [number, number]; p?: number };
  shiftScaleRotate?: { shiftLimit?: number; scaleLimit?: number; rotateLimit?: number; p?: number };
  elastic?: { alpha?: number; sigma?: number; p?: number };
}

/**
 * The paper's geometric stage: HorizontalFlip, Affine(shear), ShiftScaleRotate,
 * ElasticTransform (all p=0.5, in that order), composed and resampled once.
 *   const g = new Geometric();
 *   const params = g.sample(2, new Rng(0), { height: 512, width: 768 });
 *   const { image, mask } = g.apply({ image, mask }, params);
 */
export class Geometric implements Transform<GeometricParams> {
  readonly name = 'Geometric';
  readonly targets = { image: 'resample', mask: 'resample' } as const;
  readonly flip: HorizontalFlip;
  readonly shear: Shear;
  readonly shiftScaleRotate: ShiftScaleRotate;
  readonly elastic: ElasticTransform;
  readonly mode: InterpolationMode;
  constructor(opts: GeometricOptions = {}) {
    this.mode = opts.mode ?? 'bilinear';
    this.flip = new HorizontalFlip({ ...opts.flip, mode: this.mode });
    this.shear = new Shear({ ...opts.shear, mode: this.mode });
    this.shiftScaleRotate = new ShiftScaleRotate({ ...opts.shiftScaleRotate, mode: this.mode });
    this.elastic = new ElasticTransform({ ...opts.elastic, mode: this.mode });
  }
  sample(batch: number, rng: Rng, size: ImageSize): GeometricParams {
    const out: GeometricParams = { flip: [], shear: [], shiftScaleRotate: [], elastic: [] };
    for (let i = 0; i < batch; i++) {
      out.flip.push(rng.bool(this.flip.p) ? this.flip.draw() : null);
      out.shear.push(rng.bool(this.shear.p) ? this.shear.draw(rng) : null);
      out.shiftScaleRotate.push(rng.bool(this.shiftScaleRotate.p) ? this.shiftScaleRotate.draw(rng) : null);
      out.elastic.push(rng.bool(this.elastic.p) ? this.elastic.draw(rng) : null);
    }
    return out;
  }
  /** Each sample's forward matrix: ShiftScaleRotate * Shear * Flip. */
  matrices(params: GeometricParams, size: ImageSize): Affine[] {
    return params.flip.map((f, i) => {
      let m = f === null ? IDENTITY : this.flip.matrix(f, size);
      const s = params.shear[i];
      if (s !== null) m = compose(this.shear.matrix(s, size), m);
      const r = params.shiftScaleRotate[i];
      if (r !== null) m = compose(this.shiftScaleRotate.matrix(r, size), m);
      return m;
    });
  }
  apply(inputs: AugmentInputs, params: GeometricParams): AugmentOutputs {
    return this.run(inputs, params, 1);
  }
  /** apply() for an image already float32 on 0..255 (pipelines chain stages with one rounding). */
  applyWorking(inputs: AugmentInputs, params: GeometricParams): AugmentOutputs {
    return this.run(inputs, params, 255);
  }
  private run(inputs: AugmentInputs, params: GeometricParams, valueMax: number): AugmentOutputs {
    const { n, h, w } = checkInputs(inputs, this.name);
    for (const k of ['flip', 'shear', 'shiftScaleRotate', 'elastic'] as const) checkParamCount(params[k], n, k, this.name);
    const size = { height: h, width: w };
    return T.tidy(() => warp(inputs, this.matrices(params, size), this.elastic.field(params.elastic, size, inputs.image.device), { mode: this.mode, valueMax }));
  }
}
