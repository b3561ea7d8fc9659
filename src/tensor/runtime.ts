/** Process-wide libtorch settings: threads, devices, versions. */
import { ArgumentError, checkInt, checkTensor } from './check';
import { Tensor } from './tensor';
import { native } from './native';
import { DTYPE_CODES } from './dtype';
import { callT, callV } from './call';

/** Intra-op threads libtorch uses for CPU kernels. */
export function setNumThreads(n: number): void {
  callV('setNumThreads', checkInt(n, 'n', 'setNumThreads', 1));
}
export const getNumThreads = (): number => callV('getNumThreads');
/** Whether cqseg's hand-vectorized AVX2 kernels run (false without AVX2+FMA, or with env CQSEG_CPU=plain). */
export const cpuHasAvx2 = (): boolean => callV('cpuHasAvx2');
export const cudaIsAvailable = (): boolean => callV('cudaIsAvailable');
export const cudaDeviceCount = (): number => callV('cudaDeviceCount');

/** What `--device` accepts. */
export const DEVICE_SPECS = 'auto | cpu | cuda | cuda:N';

/**
 * The device a `--device` value names, checked against what libtorch sees: 'auto' is the
 * first GPU when libtorch sees one, else the CPU; 'cuda' is 'cuda:0'. `why` says how it was
 * chosen (printed and recorded by the commands).
 *   resolveDevice('auto') // { device: 'cpu', why: 'auto: libtorch sees no CUDA device' }
 */
export function resolveDevice(spec = 'auto'): { device: string; why: string } {
  const gpus = cudaIsAvailable() ? cudaDeviceCount() : 0;
  const none = 'libtorch sees no CUDA device (no GPU, or a CPU-only libtorch: for a GPU, build against PyTorch\'s with LIBTORCH=<its torch folder> npm run build)';
  if (spec === 'auto') return gpus > 0 ? { device: 'cuda:0', why: `auto: ${gpus} CUDA device(s), the first` } : { device: 'cpu', why: 'auto: libtorch sees no CUDA device' };
  if (spec === 'cpu') return { device: 'cpu', why: 'asked for' };
  const m = /^cuda(?::(\d+))?$/.exec(spec);
  if (!m) throw new ArgumentError(`--device must be ${DEVICE_SPECS}, got '${spec}'`);
  const index = Number(m[1] ?? 0);
  if (gpus === 0) throw new ArgumentError(`--device ${spec}: ${none}; use --device cpu (or auto)`);
  if (index >= gpus) throw new ArgumentError(`--device ${spec}: libtorch sees ${gpus} CUDA device(s), cuda:0 to cuda:${gpus - 1}`);
  return { device: `cuda:${index}`, why: 'asked for' };
}
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

/**
 * Runs fn under libtorch's autocast for `deviceType` (torch.autocast): convolutions and matrix
 * products in `dtype` (bfloat16, or float16 on CUDA), reductions, losses and batch-norm
 * statistics in float32, by libtorch's own op lists. cqseg's hand kernels are float32 only and
 * take libtorch's path for other dtypes. Synchronous; autocast is off again afterwards (not nestable).
 *   const logits = withAutocast('cpu', 'bfloat16', () => model.forward(x)).to('float32')
 */
export function withAutocast<R>(deviceType: 'cpu' | 'cuda', dtype: 'bfloat16' | 'float16', fn: () => R): R {
  if (deviceType === 'cpu' && dtype !== 'bfloat16') throw new ArgumentError("autocast on the CPU takes bfloat16 only (libtorch's CPU autocast); float16 needs CUDA");
  callV('autocast', deviceType, true, DTYPE_CODES[dtype]);
  try {
    return fn();
  } finally {
    callV('autocast', deviceType, false, DTYPE_CODES[dtype]);
  }
}

/** x (4-D) in the channels-last memory layout (torch.channels_last): same shape and values. */
export const channelsLast = (x: Tensor): Tensor => callT('channelsLast', checkTensor(x, 'x', 'channelsLast').handle);

/** t on `device`: t itself when already there, else a copy, and t is freed. */
export function moveTo(t: Tensor, device: string): Tensor {
  if (t.device === device) return t;
  const moved = t.to(device);
  t.dispose();
  return moved;
}
