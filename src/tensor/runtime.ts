/** Process-wide libtorch settings: threads, devices, versions. */
import { checkInt } from './check';
import { native } from './native';
import { callV } from './ops';

/** Intra-op threads libtorch uses for CPU kernels. */
export function setNumThreads(n: number): void {
  callV('setNumThreads', checkInt(n, 'n', 'setNumThreads', 1));
}
export const getNumThreads = (): number => callV<number>('getNumThreads');
export const cudaIsAvailable = (): boolean => callV<boolean>('cudaIsAvailable');
export const cudaDeviceCount = (): number => callV<number>('cudaDeviceCount');
/** libtorch's version string, e.g. '1.13.0' or '2.11.0'. */
export const torchVersion = (): string => native.torchVersion;
/** libtorch's report of its thread pools and kernels (torch.__config__.parallel_info). */
export const parallelInfo = (): string => callV<string>('parallelInfo');
