/**
 * Fused ops: one op for what a model computes as two or three (batch norm + activation,
 * batch norm + activation + convolution, nearest upsampling + concatenation +
 * convolution, scaling + convolution), with the values of the composition. On float32
 * CPU tensors they are single native nodes that keep less for backward (recomputing the
 * rest); elsewhere they compose libtorch's ops. Layers (src/nn/fused.ts) call them;
 * their convolutions take convKernel's choice.
 */
import { ArgumentError, checkInt, checkTensor, oneOf, pair } from './check';
import { callT } from './call';
import { convKernel, float32OnCpu, nativeAlgorithm, trainsOnCpu } from './conv_kernel';
import { BatchNormOptions, Conv2dOptions, batchNorm, conv2d, interpolate } from './functional';
import { cat, relu } from './ops';
import { Tensor } from './tensor';

/**
 * silu(batchNorm(x, ...)): the same values, and in training with autograd on float32 CPU
 * tensors one fused node (native/src/kernels/) that keeps only x for backward (the
 * two-op form also keeps the batch-norm output) and recomputes the rest. Other cases
 * compose batchNorm and silu. x (N, C, ...).
 *   y = batchNormSilu(x, bn.runningMean, bn.runningVar, { weight, bias, training: true, momentum: 0.01, eps: 1e-3 })
 */
export function batchNormSilu(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  checkTensor(x, 'x', 'batchNormSilu');
  if ((opts.training ?? false) && opts.weight && opts.bias && x.ndim >= 2 && trainsOnCpu(x, opts.weight, opts.bias)) {
    return callT('batchNormSilu', x.handle, opts.weight!.handle, opts.bias!.handle, runningMean?.handle, runningVar?.handle, opts.momentum ?? 0.1, opts.eps ?? 1e-5);
  }
  const y = batchNorm(x, runningMean, runningVar, opts);
  try {
    return callT('silu', y.handle);
  } finally {
    y.dispose();
  }
}

export interface FusedConvOptions {
  stride?: number | number[];
  /** zero padding [left, right, top, bottom] before the convolution (default none) */
  pads?: number[];
  groups?: number;
  /** the activation between batch norm and convolution (default 'silu') */
  activation?: 'silu' | 'relu';
}

/**
 * conv2d(pad(act(batchNorm(x, ...)), pads), convWeight, convBias, { stride, groups }) with
 * act silu or relu: the same values, and in training with autograd on float32 CPU tensors
 * one fused node (native/src/kernels/) that keeps x but not the activation between
 * the two (recomputed in backward by one elementwise pass): EfficientNet's BN + swish +
 * depthwise convolution, and a Unet decoder block's BN + ReLU + second convolution, keep
 * one activation-sized tensor instead of two.
 *   y = batchNormActConv2d(x, rm, rv, { weight, bias, training: true }, dw.weight, null, { stride: 2, pads: [0, 1, 0, 1], groups: c })
 */
export function batchNormActConv2d(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions,
  convWeight: Tensor, convBias: Tensor | null, conv: FusedConvOptions = {}): Tensor {
  checkTensor(x, 'x', 'batchNormActConv2d', 4, '(N,C,H,W)');
  checkTensor(convWeight, 'convWeight', 'batchNormActConv2d', 4, '(Cout,Cin/groups,kH,kW)');
  const stride = pair(conv.stride ?? 1, 'stride', 'batchNormActConv2d');
  const pads = conv.pads ?? [0, 0, 0, 0];
  if (pads.length !== 4 || pads.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new ArgumentError(`Argument 'pads' passed to 'batchNormActConv2d' must be 4 non-negative integers [left, right, top, bottom], got [${pads.join(',')}]`);
  }
  const groups = checkInt(conv.groups ?? 1, 'groups', 'batchNormActConv2d', 1);
  const act = oneOf(conv.activation ?? 'silu', ['silu', 'relu'] as const, 'activation', 'batchNormActConv2d');
  if ((opts.training ?? false) && opts.weight && opts.bias && trainsOnCpu(x, opts.weight, opts.bias, convWeight)) {
    const [l, r, t, b] = pads;
    const kernel = convKernel(x, convWeight, { stride, padding: l === r && t === b ? [t, l] : [-1, -1], dilation: [1, 1], groups });
    return callT('batchNormActConv2d', x.handle, opts.weight!.handle, opts.bias!.handle, runningMean?.handle, runningVar?.handle,
      opts.momentum ?? 0.1, opts.eps ?? 1e-5, convWeight.handle, convBias?.handle, stride, pads, groups, act, nativeAlgorithm(kernel));
  }
  const y = act === 'silu' ? batchNormSilu(x, runningMean, runningVar, opts) : reluOf(batchNorm(x, runningMean, runningVar, opts));
  const [l, r, t, b] = pads;
  const symmetric = l === r && t === b;
  const yp = symmetric ? y : callT('pad', y.handle, pads, 'constant', 0);
  try {
    return conv2d(yp, convWeight, convBias, { stride, padding: symmetric ? [t, l] : 0, groups });
  } finally {
    y.dispose();
    if (yp !== y) yp.dispose();
  }
}

/** relu(x), disposing x. */
function reluOf(x: Tensor): Tensor {
  try {
    return relu(x);
  } finally {
    x.dispose();
  }
}

/**
 * conv2d(cat([interpolate(x, x2 nearest), skip]), weight, bias, { padding }) (a Unet decoder
 * block's first convolution; skip may be null): the same values, and on float32 CPU
 * tensors one native node (in training it keeps x and skip but not the upsampled
 * concatenation). There, with a 3x3 kernel and padding 1, x's part is
 * convolved polyphase, in training and inference alike: four 2x2 kernels on x itself, one
 * per output pixel parity (16 multiplications a pixel instead of 36, the same sums up to
 * float rounding), and the skip's part by its own convolution; other cases form the
 * concatenation (remade in backward) and take convKernel's choice; other devices and
 * dtypes compose libtorch's ops. x (N, C, H, W), skip (N, Cs, 2H, 2W).
 *   y = upCatConv2d(x, skip, conv1.weight, null, { padding: 1 })
 */
export function upCatConv2d(x: Tensor, skip: Tensor | null, weight: Tensor, bias: Tensor | null, opts: { padding?: number | number[] } = {}): Tensor {
  checkTensor(x, 'x', 'upCatConv2d', 4, '(N,C,H,W)');
  if (skip) checkTensor(skip, 'skip', 'upCatConv2d', 4, '(N,C,2H,2W)');
  const padding = pair(opts.padding ?? 0, 'padding', 'upCatConv2d');
  if (float32OnCpu(x, weight, ...(skip ? [skip] : []))) {
    // 'auto': the addon convolves x's part polyphase where that applies (3x3, padding 1)
    return callT('upCatConv2d', x.handle, skip?.handle, weight.handle, bias?.handle, padding, 'auto');
  }
  const u = interpolate(x, { scaleFactor: 2, mode: 'nearest' });
  const c = skip ? cat([u, skip], 1) : u;
  try {
    return conv2d(c, weight, bias, { padding });
  } finally {
    u.dispose();
    if (c !== u) c.dispose();
  }
}

/**
 * conv2d(x * scale, weight, bias, opts) with scale (N, C, 1, 1) or (1, C, 1, 1), as
 * squeeze-and-excitation feeds a projection: the same values, and in training with
 * autograd on float32 CPU tensors one node (native/src/kernels/) that keeps x and
 * scale but not their product (recomputed in backward). Other cases compose the two.
 *   y = scaledConv2d(x, sigmoid(se), project.weight, null)
 */
export function scaledConv2d(x: Tensor, scale: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  checkTensor(x, 'x', 'scaledConv2d', 4, '(N,C,H,W)');
  checkTensor(scale, 'scale', 'scaledConv2d', 4, '(N,C,1,1)');
  const p = opts.padding ?? 0;
  const simple = (opts.groups ?? 1) === 1 && (opts.dilation ?? 1) === 1 && typeof p !== 'string' && scale.shape[2] === 1 && scale.shape[3] === 1;
  if (simple && trainsOnCpu(x, scale, weight)) {
    return callT('scaledConv2d', x.handle, scale.handle, weight.handle, bias?.handle, pair(opts.stride ?? 1, 'stride', 'scaledConv2d'), pair(p, 'padding', 'scaledConv2d'));
  }
  const xs = callT('mul', x.handle, scale.handle);
  try {
    return conv2d(xs, weight, bias, opts);
  } finally {
    xs.dispose();
  }
}
