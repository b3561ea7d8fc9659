/**
 * The one place where a convolution's kernel is chosen: by shape, dtype, device and
 * whether autograd records it. Every convolution of tensor/ (conv2d and the fused ops
 * of fused.ts) asks `convKernel`; model and layer code never names a kernel. The choices
 * give libtorch's values up to float rounding (test/tensor/fused.test.ts); their
 * timings are in bench/models.ts and the README, not here.
 *
 *   'libtorch'   at::conv2d (oneDNN on the CPU, cuDNN on CUDA)
 *   'depthwise'  libtorch's forward with cqseg's backward kernels for depthwise float32
 *                convolutions (groups = channels), where libtorch's CPU backward is slow
 *   'winograd'   libtorch's forward, gradients by Winograd F(2x2, 3x3), for 3x3 stride-1
 *                padding-1 convolutions from 128 input and 64 output channels (below that
 *                the transforms cost more than they save); the addon itself falls back to
 *                libtorch's gradients when libtorch runs more than one thread
 *   'gemm'       im2col + GEMM through BLAS; never chosen, kept for comparisons
 */
import { callV } from './call';
import { Tensor } from './tensor';

export type ConvKernel = 'libtorch' | 'depthwise' | 'winograd' | 'gemm';

export interface ConvGeometry {
  stride: number[];
  /** [top, left] symmetric padding (the fused ops' explicit pads are folded in by the caller) */
  padding: number[];
  dilation: number[];
  groups: number;
}

let forced: ConvKernel | null = null;

/**
 * Runs fn with every applicable convolution on `kernel` (tests and benchmarks compare the
 * kernels this way); a kernel that does not apply to a shape leaves it to the rule.
 */
export function withConvKernel<R>(kernel: ConvKernel, fn: () => R): R {
  const prev = forced;
  forced = kernel;
  try {
    return fn();
  } finally {
    forced = prev;
  }
}

/** float32 tensors on the CPU (the first one's device is theirs): the native kernels' inputs. */
export function float32OnCpu(...ts: Tensor[]): boolean {
  return ts.every((t) => t.dtype === 'float32') && ts[0].device === 'cpu';
}

/**
 * Whether autograd records an op of these float32 CPU tensors: the condition for the
 * native training kernels and fused nodes; other cases take libtorch's plain ops.
 */
export function trainsOnCpu(...ts: Tensor[]): boolean {
  return ts.some((t) => t.requiresGrad) && float32OnCpu(...ts) && callV('isGradEnabled');
}

/** The kernel for conv2d(x, weight) with geometry g (x (N, Cin, H, W), weight (Cout, Cin/groups, kH, kW)). */
export function convKernel(x: Tensor, weight: Tensor, g: ConvGeometry): ConvKernel {
  const unit = (v: number[]): boolean => v.every((d) => d === 1);
  if (!unit(g.dilation) || !trainsOnCpu(x, weight) || forced === 'libtorch') return 'libtorch';
  const [cout, , kh, kw] = weight.shape;
  if (g.groups > 1) return g.groups === x.shape[1] && cout === g.groups ? 'depthwise' : 'libtorch';
  const winogradShape = kh === 3 && kw === 3 && unit(g.stride) && unit(g.padding);
  if (forced === 'gemm') return 'gemm';
  if (forced === 'winograd') return winogradShape ? 'winograd' : 'libtorch';
  return winogradShape && x.shape[1] >= 128 && cout >= 64 ? 'winograd' : 'libtorch';
}

/** The fused native ops' name for a kernel ('auto' leaves libtorch's or the depthwise kernels to the addon). */
export const nativeAlgorithm = (k: ConvKernel): 'auto' | 'gemm' | 'winograd' => (k === 'gemm' || k === 'winograd' ? k : 'auto');
