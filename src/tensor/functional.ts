/**
 * Neural-network functional ops (torch.nn.functional), linear algebra and losses.
 * Shapes follow torch: images are (N, C, H, W).
 */
import { ArgumentError, checkInt, checkTensor, normDim, oneOf, pair } from './check';
import { callT } from './call';
import { convKernel } from './conv_kernel';
import { to } from './ops';
import { Tensor } from './tensor';

export interface Conv2dOptions {
  stride?: number | number[];
  /** numbers, or 'same' / 'valid' as torch (same needs stride 1) */
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

/**
 * 2-D convolution. x (N, Cin, H, W), weight (Cout, Cin/groups, kH, kW), bias (Cout).
 *   conv2d(x, w, b, { stride: 2, padding: 1 })
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  checkTensor(x, 'x', 'conv2d', 4, '(N,C,H,W)');
  checkTensor(weight, 'weight', 'conv2d', 4, '(Cout,Cin/groups,kH,kW)');
  if (bias) checkTensor(bias, 'bias', 'conv2d', 1);
  const groups = checkInt(opts.groups ?? 1, 'groups', 'conv2d', 1);
  if (x.shape[1] !== weight.shape[1] * groups) {
    throw new ArgumentError(`Argument 'x' passed to 'conv2d' has ${x.shape[1]} channels, but weight [${weight.shape.join(',')}] with groups=${groups} expects ${weight.shape[1] * groups}`);
  }
  const stride = pair(opts.stride ?? 1, 'stride', 'conv2d');
  const dilation = pair(opts.dilation ?? 1, 'dilation', 'conv2d');
  const p = opts.padding ?? 0;
  if (p === 'same' || p === 'valid') {
    return callT('conv2dPadMode', x.handle, weight.handle, bias?.handle, stride, p, dilation, groups);
  }
  const padding = pair(p, 'padding', 'conv2d');
  switch (convKernel(x, weight, { stride, padding, dilation, groups })) {
    case 'depthwise': return callT('depthwiseConv2d', x.handle, weight.handle, bias?.handle, stride, padding);
    case 'winograd': return callT('conv2dWinograd', x.handle, weight.handle, bias?.handle);
    case 'gemm': return callT('thnnConv2d', x.handle, weight.handle, bias?.handle, stride, padding);
    default: break;
  }
  return callT('conv2d', x.handle, weight.handle, bias?.handle, stride, padding, dilation, groups);
}

export interface ConvTranspose2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  outputPadding?: number | number[];
  groups?: number;
  dilation?: number | number[];
}

/** Transposed 2-D convolution. weight (Cin, Cout/groups, kH, kW). */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvTranspose2dOptions = {}): Tensor {
  checkTensor(x, 'x', 'convTranspose2d', 4, '(N,C,H,W)');
  checkTensor(weight, 'weight', 'convTranspose2d', 4, '(Cin,Cout/groups,kH,kW)');
  return callT('convTranspose2d', x.handle, weight.handle, bias?.handle, pair(opts.stride ?? 1, 'stride', 'convTranspose2d'),
    pair(opts.padding ?? 0, 'padding', 'convTranspose2d'), pair(opts.outputPadding ?? 0, 'outputPadding', 'convTranspose2d'),
    checkInt(opts.groups ?? 1, 'groups', 'convTranspose2d', 1), pair(opts.dilation ?? 1, 'dilation', 'convTranspose2d'));
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * torch.nn.functional.batch_norm. In training, batch statistics normalise x and the
 * running stats (if given) are updated in place: r = (1 - momentum) r + momentum * stat
 * (running_var with the unbiased batch variance).
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  checkTensor(x, 'x', 'batchNorm');
  if (x.ndim < 2) throw new ArgumentError(`Argument 'x' passed to 'batchNorm' must be at least 2-D (N,C,...), got [${x.shape.join(',')}]`);
  const training = opts.training ?? false;
  if (!training && (!runningMean || !runningVar)) {
    throw new ArgumentError("'batchNorm' in eval mode needs 'runningMean' and 'runningVar'");
  }
  return callT('batchNorm', x.handle, opts.weight?.handle, opts.bias?.handle, runningMean?.handle, runningVar?.handle,
    training, opts.momentum ?? 0.1, opts.eps ?? 1e-5);
}

export const layerNorm = (x: Tensor, normalizedShape: number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor =>
  callT('layerNorm', checkTensor(x, 'x', 'layerNorm').handle, normalizedShape, weight?.handle, bias?.handle, eps);
export const groupNorm = (x: Tensor, numGroups: number, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor =>
  callT('groupNorm', checkTensor(x, 'x', 'groupNorm').handle, checkInt(numGroups, 'numGroups', 'groupNorm', 1), weight?.handle, bias?.handle, eps);

export interface Pool2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number;
}

/** 2-D max pooling; stride defaults to the kernel size. */
export function maxPool2d(x: Tensor, kernelSize: number | number[], opts: Pool2dOptions = {}): Tensor {
  checkTensor(x, 'x', 'maxPool2d');
  const k = pair(kernelSize, 'kernelSize', 'maxPool2d');
  return callT('maxPool2d', x.handle, k, pair(opts.stride ?? k, 'stride', 'maxPool2d'), pair(opts.padding ?? 0, 'padding', 'maxPool2d'),
    pair(opts.dilation ?? 1, 'dilation', 'maxPool2d'), opts.ceilMode ?? false);
}
export function avgPool2d(x: Tensor, kernelSize: number | number[], opts: Pool2dOptions = {}): Tensor {
  checkTensor(x, 'x', 'avgPool2d');
  const k = pair(kernelSize, 'kernelSize', 'avgPool2d');
  return callT('avgPool2d', x.handle, k, pair(opts.stride ?? k, 'stride', 'avgPool2d'), pair(opts.padding ?? 0, 'padding', 'avgPool2d'),
    opts.ceilMode ?? false, opts.countIncludePad ?? true, opts.divisorOverride);
}
export const adaptiveAvgPool2d = (x: Tensor, outputSize: number | number[]): Tensor =>
  callT('adaptiveAvgPool2d', checkTensor(x, 'x', 'adaptiveAvgPool2d').handle, pair(outputSize, 'outputSize', 'adaptiveAvgPool2d'));
export const adaptiveMaxPool2d = (x: Tensor, outputSize: number | number[]): Tensor =>
  callT('adaptiveMaxPool2d', checkTensor(x, 'x', 'adaptiveMaxPool2d').handle, pair(outputSize, 'outputSize', 'adaptiveMaxPool2d'));

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'bilinear' | 'bicubic';
export interface InterpolateOptions {
  size?: number | number[];
  scaleFactor?: number | number[];
  mode?: InterpolateMode;
  alignCorners?: boolean;
  recomputeScaleFactor?: boolean;
}

/**
 * torch.nn.functional.interpolate for (N, C, H, W). With scaleFactor the output is
 * floor(in * scale) and the scale itself drives the sampling (as torch when
 * recomputeScaleFactor is not set).
 *   interpolate(x, { scaleFactor: 2, mode: 'nearest' })
 */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  checkTensor(x, 'x', 'interpolate', 4, '(N,C,H,W)');
  const mode = oneOf(opts.mode ?? 'nearest', ['nearest', 'nearest-exact', 'bilinear', 'bicubic'] as const, 'mode', 'interpolate');
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) {
    throw new ArgumentError("'interpolate' needs exactly one of 'size' and 'scaleFactor'");
  }
  if (opts.alignCorners !== undefined && mode.startsWith('nearest')) {
    throw new ArgumentError("'alignCorners' passed to 'interpolate' only applies to 'bilinear' and 'bicubic'");
  }
  let size: number[];
  let scales: (number | undefined)[] = [undefined, undefined];
  if (opts.size !== undefined) {
    size = pair(opts.size, 'size', 'interpolate');
  } else {
    const sf = typeof opts.scaleFactor === 'number' ? [opts.scaleFactor, opts.scaleFactor] : opts.scaleFactor!;
    if (!Array.isArray(sf) || sf.length !== 2 || sf.some((s) => !(s > 0))) {
      throw new ArgumentError(`Argument 'scaleFactor' passed to 'interpolate' must be a positive number or [sh, sw], got ${JSON.stringify(opts.scaleFactor)}`);
    }
    size = [Math.floor(x.shape[2] * sf[0]), Math.floor(x.shape[3] * sf[1])];
    if (!opts.recomputeScaleFactor) scales = sf;
  }
  switch (mode) {
    case 'nearest': return callT('upsampleNearest2d', x.handle, size, scales[0], scales[1]);
    case 'nearest-exact': return callT('upsampleNearestExact2d', x.handle, size, scales[0], scales[1]);
    case 'bilinear': return callT('upsampleBilinear2d', x.handle, size, opts.alignCorners ?? false, scales[0], scales[1]);
    case 'bicubic': return callT('upsampleBicubic2d', x.handle, size, opts.alignCorners ?? false, scales[0], scales[1]);
  }
}

export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest' | 'bicubic';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}

/** torch.nn.functional.grid_sample: x (N, C, H, W), grid (N, Ho, Wo, 2) in [-1, 1] (x, y). */
export function gridSample(x: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  checkTensor(x, 'x', 'gridSample', 4, '(N,C,H,W)');
  checkTensor(grid, 'grid', 'gridSample', 4, '(N,Ho,Wo,2)');
  const modes = ['bilinear', 'nearest', 'bicubic'] as const;
  const pads = ['zeros', 'border', 'reflection'] as const;
  const m = modes.indexOf(oneOf(opts.mode ?? 'bilinear', modes, 'mode', 'gridSample'));
  const p = pads.indexOf(oneOf(opts.paddingMode ?? 'zeros', pads, 'paddingMode', 'gridSample'));
  return callT('gridSample', x.handle, grid.handle, m, p, opts.alignCorners ?? false);
}

/** torch.nn.functional.affine_grid: theta (N, 2, 3), size [N, C, H, W] -> grid (N, H, W, 2). */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  checkTensor(theta, 'theta', 'affineGrid', 3, '(N,2,3)');
  if (size.length !== 4) throw new ArgumentError(`Argument 'size' passed to 'affineGrid' must be [N,C,H,W], got ${JSON.stringify(size)}`);
  return callT('affineGrid', theta.handle, size, alignCorners);
}

export const softmax = (x: Tensor, dim: number): Tensor =>
  callT('softmax', checkTensor(x, 'x', 'softmax').handle, normDim(dim, x.ndim, 'dim', 'softmax'));
export const logSoftmax = (x: Tensor, dim: number): Tensor =>
  callT('logSoftmax', checkTensor(x, 'x', 'logSoftmax').handle, normDim(dim, x.ndim, 'dim', 'logSoftmax'));
/** Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p) when training. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkTensor(x, 'x', 'dropout');
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`Argument 'p' passed to 'dropout' must be in [0, 1], got ${p}`);
  return callT('dropout', x.handle, p, training);
}
/** int64 class indices (any shape) -> int64 one-hot with a new last dim. */
export function oneHot(x: Tensor, numClasses = -1): Tensor {
  checkTensor(x, 'x', 'oneHot');
  const idx = x.dtype === 'int64' ? x : to(x, 'int64');
  try {
    return callT('oneHot', idx.handle, numClasses);
  } finally {
    if (idx !== x) idx.dispose();
  }
}

export type Reduction = 'mean' | 'sum' | 'none';
export interface CrossEntropyOptions {
  weight?: Tensor;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}

/**
 * torch.nn.functional.cross_entropy: logits (N, C, ...) and int64 targets (N, ...),
 * optional class weights (C); 'mean' divides by the summed weights of non-ignored targets.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  checkTensor(logits, 'input', 'crossEntropy');
  checkTensor(target, 'target', 'crossEntropy');
  if (target.dtype !== 'int64' && !target.dtype.startsWith('float')) {
    throw new ArgumentError(`Argument 'target' passed to 'crossEntropy' must be int64 class indices or float probabilities, got ${target.dtype}`);
  }
  return callT('crossEntropy', logits.handle, target.handle, opts.weight?.handle, oneOf(opts.reduction ?? 'mean', ['mean', 'sum', 'none'] as const, 'reduction', 'crossEntropy'),
    opts.ignoreIndex ?? -100, opts.labelSmoothing ?? 0);
}
export const nllLoss = (logProbs: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor =>
  callT('nllLoss', checkTensor(logProbs, 'input', 'nllLoss').handle, checkTensor(target, 'target', 'nllLoss').handle, opts.weight?.handle, opts.reduction ?? 'mean', opts.ignoreIndex ?? -100);
/** Mean squared error; a and b of the same shape. */
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkTensor(a, 'input', 'mseLoss');
  checkTensor(b, 'target', 'mseLoss');
  if (a.shape.join() !== b.shape.join()) {
    throw new ArgumentError(`'mseLoss' needs input and target of one shape, got [${a.shape.join(',')}] and [${b.shape.join(',')}]`);
  }
  return callT('mseLoss', a.handle, b.handle, oneOf(reduction, ['mean', 'sum', 'none'] as const, 'reduction', 'mseLoss'));
}
export const l1Loss = (a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor =>
  callT('l1Loss', checkTensor(a, 'input', 'l1Loss').handle, checkTensor(b, 'target', 'l1Loss').handle, reduction);
export const binaryCrossEntropyWithLogits = (logits: Tensor, target: Tensor, reduction: Reduction = 'mean', weight?: Tensor, posWeight?: Tensor): Tensor =>
  callT('bceWithLogits', checkTensor(logits, 'input', 'bceWithLogits').handle, checkTensor(target, 'target', 'bceWithLogits').handle, weight?.handle, posWeight?.handle, reduction);

export const matmul = (a: Tensor, b: Tensor): Tensor => callT('matmul', checkTensor(a, 'a', 'matmul').handle, checkTensor(b, 'b', 'matmul').handle);
export const mm = (a: Tensor, b: Tensor): Tensor => callT('mm', checkTensor(a, 'a', 'mm', 2).handle, checkTensor(b, 'b', 'mm', 2).handle);
export const bmm = (a: Tensor, b: Tensor): Tensor => callT('bmm', checkTensor(a, 'a', 'bmm', 3).handle, checkTensor(b, 'b', 'bmm', 3).handle);
/** x W^T + b: x (..., in), weight (out, in). */
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor =>
  callT('linear', checkTensor(x, 'x', 'linear').handle, checkTensor(weight, 'weight', 'linear', 2).handle, bias?.handle);
export const einsum = (equation: string, ...xs: Tensor[]): Tensor =>
  callT('einsum', equation, xs.map((x, i) => checkTensor(x, `operands[${i}]`, 'einsum').handle));
/** Pairwise p-norm distances: a (B, P, M), b (B, R, M) -> (B, P, R). */
export const cdist = (a: Tensor, b: Tensor, p = 2): Tensor =>
  callT('cdist', checkTensor(a, 'x1', 'cdist').handle, checkTensor(b, 'x2', 'cdist').handle, p);
