/** cqseg tensor layer: Tensor over libtorch, ops, autograd, random, memory scopes. */
import './methods';

export { Tensor, tidy, keep, dispose, memory } from './tensor';
export type { Device, TensorContainer } from './tensor';
export type { DType, TypedArray } from './dtype';
export { DTYPES, DTYPE_BYTES, isFloating } from './dtype';
export { TorchError } from './native';
export { ArgumentError } from './check';
export * from './ops';
export * from './kernels';
export { torchLoad } from './serialize';
export type { TorchFile } from './serialize';
export * from './functional';
export * from './fused';
export { withConvKernel } from './conv_kernel';
export type { ConvKernel } from './conv_kernel';
export * from './random';
export * from './autograd';
export * from './runtime';
export * from './dist';
