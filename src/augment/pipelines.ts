/**
 * The paper's augmentation pipelines, as batched transforms with replayable draws:
 * - `geometric`: flip, shear, shift-scale-rotate, elastic (image + mask, one resampling);
 * - `colorQuality`: blur, sharpen, Gaussian noise, brightness/contrast, RGB shift (image only);
 * - `all`: geometric then colorQuality, one output (the augmentation-only training mode);
 * - `cqgPair`: (geometric view, geometric + colorQuality view, mask) from one geometric draw.
 *
 * Draws: a pipeline forks its Rng once per stage (geometric first, then colorQuality),
 * so for one seed `all`'s output equals `cqgPair`'s second view and `geometric`'s output
 * equals its first view. For uint8 images the stages chain in float32 with a single
 * rounding at the end.
 *   const { geo, aug, mask } = cqgPair({ image, mask }, 42);
 */
import * as T from '../tensor';
import { Tensor } from '../tensor';
import { AugmentInputs, AugmentOutputs, checkInputs, fromWorking, ImageSize, toWorking, Transform } from './common';
import { Geometric, GeometricOptions, GeometricParams } from './geometric';
import { ColorQuality, ColorQualityOptions, ColorQualityParams } from './photometric';
import { Rng, toRng } from '../util/random';

export interface PipelineOptions {
  geometric?: GeometricOptions;
  colorQuality?: ColorQualityOptions;
}

/** Parameters of a two-stage pipeline (all, cqgPair). */
export interface PipelineParams {
  geometric: GeometricParams;
  colorQuality: ColorQualityParams;
}

/**
 * The draws of samples [start, end) of a batch's params: what sample(end - start) would
 * have drawn for them as part of the whole batch (every stage's params are per sample).
 * Data-parallel training draws the global batch's params on every process and slices its own.
 */
export function sliceParams(p: PipelineParams, start: number, end: number): PipelineParams {
  const slice = <O extends object>(o: O): O => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, (v as unknown[]).slice(start, end)])) as O;
  return { geometric: slice(p.geometric), colorQuality: slice(p.colorQuality) };
}

/** Geometric then ColorQuality with one output: the augmentation-only training mode. */
export class AugmentAll implements Transform<PipelineParams> {
  readonly name = 'AugmentAll';
  readonly targets = { image: 'resample', mask: 'resample' } as const;
  readonly geometric: Geometric;
  readonly colorQuality: ColorQuality;
  constructor(opts: PipelineOptions = {}) {
    this.geometric = new Geometric(opts.geometric);
    this.colorQuality = new ColorQuality(opts.colorQuality);
  }
  sample(batch: number, rng: Rng, size: ImageSize): PipelineParams {
    const g = rng.fork();
    const c = rng.fork();
    return { geometric: this.geometric.sample(batch, g, size), colorQuality: this.colorQuality.sample(batch, c) };
  }
  apply(inputs: AugmentInputs, params: PipelineParams): AugmentOutputs {
    checkInputs(inputs, this.name);
    const dtype = inputs.image.dtype;
    return T.tidy(() => {
      const moved = this.geometric.applyWorking({ image: toWorking(inputs.image), mask: inputs.mask }, params.geometric);
      const image = fromWorking(this.colorQuality.applyWorking(moved.image, params.colorQuality), dtype);
      return moved.mask === undefined ? { image } : { image, mask: moved.mask };
    });
  }
}

/** The CQG loss's inputs: two views sharing one geometric draw, and the moved mask. */
export interface CqgPairOutputs {
  /** geometric view (view 1) */
  geo: Tensor;
  /** geometric + color/quality view (view 2) */
  aug: Tensor;
  mask?: Tensor;
}

/**
 * The CQG view pair: view 1 = geometric(x), view 2 = colorQuality(view 1), both from
 * the same geometric draw, so with colorQuality off they are equal tensors.
 */
export class CqgPair {
  readonly name = 'CqgPair';
  readonly pipeline: AugmentAll;
  constructor(opts: PipelineOptions = {}) {
    this.pipeline = new AugmentAll(opts);
  }
  /** Same draws as AugmentAll.sample for the same Rng state. */
  sample(batch: number, rng: Rng, size: ImageSize): PipelineParams {
    return this.pipeline.sample(batch, rng, size);
  }
  apply(inputs: AugmentInputs, params: PipelineParams): CqgPairOutputs {
    checkInputs(inputs, this.name);
    const dtype = inputs.image.dtype;
    return T.tidy(() => {
      const moved = this.pipeline.geometric.applyWorking({ image: toWorking(inputs.image), mask: inputs.mask }, params.geometric);
      const geo = fromWorking(moved.image, dtype);
      const aug = fromWorking(this.pipeline.colorQuality.applyWorking(moved.image, params.colorQuality), dtype);
      return moved.mask === undefined ? { geo, aug } : { geo, aug, mask: moved.mask };
    });
  }
}

function sizeOf(inputs: AugmentInputs, op: string): { n: number; size: ImageSize } {
  const { n, h, w } = checkInputs(inputs, op);
  return { n, size: { height: h, width: w } };
}

/** Samples with `seed` (a number or an Rng whose stream advances), applies, and returns the params too. */
export function run<P>(transform: Transform<P>, inputs: AugmentInputs, seed: number | Rng): AugmentOutputs & { params: P } {
  const { n, size } = sizeOf(inputs, transform.name);
  const params = transform.sample(n, toRng(seed), size);
  return { ...transform.apply(inputs, params), params };
}

/** geometric({ image, mask }, seed): flip, shear, shift-scale-rotate, elastic on image and mask. */
export function geometric(inputs: AugmentInputs, seed: number | Rng, opts: GeometricOptions = {}): AugmentOutputs & { params: GeometricParams } {
  const g = new Geometric(opts);
  const { n, size } = sizeOf(inputs, 'geometric');
  const params = g.sample(n, toRng(seed).fork(), size);
  return { ...g.apply(inputs, params), params };
}

/** colorQuality({ image, mask }, seed): photometric stage; the mask comes back byte-identical. */
export function colorQuality(inputs: AugmentInputs, seed: number | Rng, opts: ColorQualityOptions = {}): AugmentOutputs & { params: ColorQualityParams } {
  const c = new ColorQuality(opts);
  const { n, size } = sizeOf(inputs, 'colorQuality');
  const rng = toRng(seed);
  rng.fork(); // skip the geometric stage's stream, so the draws match all/cqgPair's
  const params = c.sample(n, rng.fork(), size);
  return { ...c.apply(inputs, params), params };
}

/** all({ image, mask }, seed): geometric then colorQuality, one output. */
export function all(inputs: AugmentInputs, seed: number | Rng, opts: PipelineOptions = {}): AugmentOutputs & { params: PipelineParams } {
  return run(new AugmentAll(opts), inputs, seed);
}

/**
 * cqgPair({ image, mask }, seed) -> { geo, aug, mask, params }: the CQG loss's two views
 * from one geometric draw. image (N, C, H, W) uint8 0..255 or float 0..1; mask (N, H, W)
 * or (N, 1, H, W) class indices.
 *   const { geo, aug, mask } = cqgPair({ image: batch.image, mask: batch.mask }, step);
 */
export function cqgPair(inputs: AugmentInputs, seed: number | Rng, opts: PipelineOptions = {}): CqgPairOutputs & { params: PipelineParams } {
  const pair = new CqgPair(opts);
  const { n, size } = sizeOf(inputs, 'cqgPair');
  const params = pair.sample(n, toRng(seed), size);
  return { ...pair.apply(inputs, params), params };
}

/** Disposes the tensors of a pipeline's outputs (params are plain data). */
export function disposeOutputs(out: AugmentOutputs | CqgPairOutputs): void {
  T.dispose([(out as AugmentOutputs).image, (out as CqgPairOutputs).geo, (out as CqgPairOutputs).aug, out.mask]);
}
