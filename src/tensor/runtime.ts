/** Process-wide libtorch settings: threads, devices, versions. */
import { checkInt } from './check';
import { native } from './native';
import { callV } from './call';

/** Intra-op threads libtorch uses for CPU kernels. */
export function setNumThreads(n: number): void {
  callV('setNumThreads', checkInt(n, 'n', 'setNumThreads', 1));
}
export const getNumThreads = (): number => callV('getNumThreads');
/** Whether cqseg's hand-vectorized AVX2 kernels run (false without AVX2+FMA, or with env CQSEG_CPU=plain). */
export const cpuHasAvx2 = (): boolean => callV('cpuHasAvx2');
export const cudaIsAvailable = (): boolean => callV('cudaIsAvailable');
export const cudaDeviceCount = (): number => callV('cudaDeviceCount');
/**
 * The BLAS library mapped into this process (Linux: from /proc/self/maps), e.g.
 * '/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3'; 'unknown' elsewhere. libtorch
 * runs some convolutions (one small image) and every matrix product through it, so it is
 * part of what fixes a run's figures, beside the CPU and the thread count.
 */
export function blasLibrary(): string {
  try {
    const maps = require('fs').readFileSync('/proc/self/maps', 'utf8') as string;
    const hit = maps.split('\n').map((l) => l.slice(l.indexOf('/'))).find((p) => /\/lib(open)?blas[^/]*\.so|\/libmkl_rt[^/]*\.so/.test(p));
    return hit && hit.startsWith('/') ? hit : 'unknown';
  } catch {
    return 'unknown';
  }
}
/** libtorch's version string, e.g. '1.13.0' or '2.11.0'. */
export const torchVersion = (): string => native.torchVersion;
/** libtorch's report of its thread pools and kernels (torch.__config__.parallel_info). */
export const parallelInfo = (): string => callV('parallelInfo');
/**
 * Switches CPU blocks of 1 MiB and more to cqseg's caching allocator (native/src/allocator.cc:
 * mapped once, reused by best fit), as training does: a step frees and reallocates the same
 * activation sizes, and the cache keeps peak memory lower than glibc's heap at the same speed.
 * Does nothing when env CQSEG_MALLOC names another policy. Returns whether the cache is in use.
 */
export const useCachingAllocator = (): boolean => callV('useCachingAllocator');
