/**
 * Typed wrappers of the addon's project-specific ops, for the layers above tensor/:
 * the optimizers' fused parameter updates, seeded per-sample random fields, the LRIS
 * int8 coarse search and the joint RGB histogram. Each checks its tensors here (naming
 * the argument and the op); the native side checks dtypes, devices and ranges.
 */
import { callT, callV } from './call';
import { checkInt, checkShape, checkTensor, checkTensors } from './check';
import { NativeHandle } from './native';
import { Tensor } from './tensor';

/** handles of a list of tensors, which may be empty (no amsgrad slots, no momentum buffers) */
const handles = (xs: Tensor[], arg: string, op: string): NativeHandle[] =>
  (Array.isArray(xs) && xs.length === 0 ? [] : checkTensors(xs, arg, op).map((t) => t.handle));

/** 1 where the parameter has a gradient, else 0, in order. */
export function hasGrads(params: Tensor[]): number[] {
  return callV('hasGrads', handles(params, 'params', 'hasGrads'));
}

export interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW's decoupled weight decay */
  decoupled: boolean;
  amsgrad: boolean;
}

/**
 * One Adam/AdamW update of every parameter with a gradient, in place (torch.optim.Adam's
 * single-tensor formulas): m, v (and vmax with amsgrad) are its state slots, steps its
 * per-parameter step counts after this step.
 */
export function adamStep(params: Tensor[], m: Tensor[], v: Tensor[], vmax: Tensor[], steps: number[], s: AdamSettings): void {
  callV('adamStep', handles(params, 'params', 'adamStep'), handles(m, 'm', 'adamStep'), handles(v, 'v', 'adamStep'),
    handles(vmax, 'vmax', 'adamStep'), steps, s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.decoupled, s.amsgrad);
}

export interface SgdSettings {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** One SGD update in place (torch.optim.SGD); bufs are the momentum buffers, initialized[i] 1 once buffer i holds a value. */
export function sgdStep(params: Tensor[], bufs: Tensor[], initialized: number[], s: SgdSettings): void {
  callV('sgdStep', handles(params, 'params', 'sgdStep'), handles(bufs, 'bufs', 'sgdStep'), initialized, s.lr, s.momentum,
    s.dampening, s.weightDecay, s.nesterov);
}

const dev = (device: string): string | undefined => (device === 'cpu' ? undefined : device);

/**
 * Fields drawn from private libtorch CPU generators, one per seed, stacked to
 * (seeds.length, ...shape) float32 on `device`. The global generators are untouched
 * and a seed gives the same numbers on every device.
 */
export function seededUniform(shape: number[], seeds: number[], lo: number, hi: number, device = 'cpu'): Tensor {
  return callT('augSeededUniform', checkShape(shape, 'shape', 'seededUniform'), seeds, lo, hi, dev(device));
}
export function seededNormal(shape: number[], seeds: number[], mean: number, std: number, device = 'cpu'): Tensor {
  return callT('augSeededNormal', checkShape(shape, 'shape', 'seededNormal'), seeds, mean, std, dev(device));
}

/**
 * Integer dot products of int16 queries (Q, d) with int8 rows (M, d), exact in float64
 * (Q, M); `rows` (int64) restricts it to those rows, in that order (LRIS's coarse search).
 */
export function int8Dot(codes: Tensor, queries: Tensor, rows: Tensor | null = null): Tensor {
  const r = rows === null ? null : checkTensor(rows, 'rows', 'int8Dot').handle;
  return callT('int8Dot', checkTensor(codes, 'codes', 'int8Dot', 2).handle, checkTensor(queries, 'queries', 'int8Dot', 2).handle, r);
}

/** int64 (N, bins^3) joint RGB histogram counts of uint8 (N,3,H,W) or (N,H,W,3) CPU images, bins = 256 >> shift. */
export function rgbHistogramCounts(images: Tensor, nhwc: boolean, shift: number): Tensor {
  return callT('rgbHistogramCounts', checkTensor(images, 'images', 'rgbHistogramCounts', 4).handle, nhwc,
    checkInt(shift, 'shift', 'rgbHistogramCounts', 0));
}
