/**
 * Several processes training one model, on libtorch's distributed package c10d
 * (native/src/ops/dist.cc): a TCPStore rendezvous and a ProcessGroupGloo (CPU) or
 * ProcessGroupNCCL (CUDA builds), as torch.distributed.init_process_group makes them.
 *
 *   initProcessGroup({ rank, worldSize, masterAddr, masterPort });
 *   broadcast(model.stateTensors());          // everyone starts from rank 0's weights
 *   const ddp = new GradientReducer(model.parameters());
 *   ddp.prepareForBackward(); loss.backward(); // gradients arrive averaged over the processes
 *   const s = globalSum(x);                    // differentiable sum over the processes
 *
 * One process group per process; every process must make the same calls in the same order.
 * A peer that dies makes the next collective throw (a closed connection) or time out.
 */
import { callT, callV } from './call';
import { ArgumentError, checkTensor } from './check';
import { Tensor } from './tensor';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** where rank 0's TCPStore listens (default 127.0.0.1) */
  masterAddr?: string;
  masterPort: number;
  /** a collective, or the rendezvous, that takes longer fails (default 300 s) */
  timeoutMs?: number;
  /** 'gloo' (CPU, default) or 'nccl' (CUDA builds with NCCL) */
  backend?: 'gloo' | 'nccl';
}

/** Whether this build has c10d (Gloo headers found at build time). */
export const distAvailable = (): boolean => callV('distAvailable');

let group: { rank: number; worldSize: number } | null = null;

/** Joins the process group (blocks until all `worldSize` processes have joined, or the timeout). */
export function initProcessGroup(o: ProcessGroupOptions): void {
  callV('distInit', o.rank, o.worldSize, o.masterAddr ?? '127.0.0.1', o.masterPort, o.timeoutMs ?? 300_000, o.backend ?? 'gloo');
  group = { rank: o.rank, worldSize: o.worldSize };
}

/** Leaves the process group (and frees its gradient reducers). */
export function destroyProcessGroup(): void {
  callV('distDestroy');
  group = null;
}

/** This process's rank and the world size; null outside a process group. */
export const processGroup = (): { rank: number; worldSize: number } | null => group;

/** Waits until every process reaches the barrier. */
export const barrier = (): void => callV('distBarrier');

/** Overwrites `tensors` on every process with rank `root`'s values (one coalesced buffer). */
export function broadcast(tensors: Tensor[], root = 0): void {
  tensors.forEach((t, i) => checkTensor(t, `tensors[${i}]`, 'broadcast'));
  callV('distBroadcast', tensors.map((t) => t.handle), root);
}

/**
 * The sum of `x` over the processes, differentiable: each input's gradient is the sum of
 * the output's gradients over the processes (as SyncBatchNorm's backward reduces), so a
 * loss every process computes from global sums backpropagates the full batch's gradient,
 * times the world size (which GradientReducer's average undoes).
 */
export function globalSum(x: Tensor): Tensor {
  return callT('distGlobalSum', checkTensor(x, 'x', 'globalSum').handle);
}

/**
 * Every process's `x` (K) as rows of a (world, K) tensor (row r from rank r), differentiable:
 * the gradient of x is its row of the output's gradient summed over the processes.
 * SyncBatchNorm gathers each process's count, mean and squared deviations this way.
 */
export function allGather(x: Tensor): Tensor {
  const t = checkTensor(x, 'x', 'allGather');
  if (t.ndim !== 1) throw new ArgumentError(`Argument 'x' passed to 'allGather' must be 1-D, got [${t.shape.join(',')}]`);
  return callT('distGather', t.handle);
}

/**
 * DDP's gradient engine (c10d::Reducer): the parameters' gradients are all-reduced in
 * buckets (about `bucketMb` MiB; the first 1 MiB) as backward produces them, overlapping
 * the backward pass, and averaged over the processes. Call prepareForBackward() once per
 * step before backward; every parameter must receive a gradient.
 */
export class GradientReducer {
  private id: number | null;
  constructor(params: Tensor[], opts: { bucketMb?: number } = {}) {
    params.forEach((t, i) => checkTensor(t, `params[${i}]`, 'GradientReducer'));
    this.id = callV('ddpCreate', params.map((p) => p.handle), Math.round((opts.bucketMb ?? 25) * 2 ** 20));
  }

  prepareForBackward(): void {
    if (this.id === null) throw new Error('GradientReducer is disposed');
    callV('ddpPrepare', this.id);
  }

  dispose(): void {
    if (this.id !== null && group) callV('ddpDestroy', this.id);
    this.id = null;
  }
}
