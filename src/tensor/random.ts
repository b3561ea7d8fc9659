/** Random numbers from libtorch's generators, seeded by manualSeed (as torch.manual_seed). */
import { checkInt, checkShape, checkTensor } from './check';
import { DTYPE_CODES } from './dtype';
import { callT, callV } from './call';
import { CreateOptions } from './ops';
import { Tensor } from './tensor';

const code = (o?: CreateOptions): number | undefined => (o?.dtype ? DTYPE_CODES[o.dtype] : undefined);

/** Seeds the CPU (and CUDA) default generators. */
export function manualSeed(seed: number): void {
  callV('manualSeed', checkInt(seed, 'seed', 'manualSeed', 0));
}
/** Uniform [0, 1). */
export const rand = (shape: number[], opts?: CreateOptions): Tensor => callT('rand', checkShape(shape, 'shape', 'rand'), code(opts), opts?.device);
/** Standard normal. */
export const randn = (shape: number[], opts?: CreateOptions): Tensor => callT('randn', checkShape(shape, 'shape', 'randn'), code(opts), opts?.device);
/** Integers in [low, high), int64 unless dtype says otherwise. */
export const randint = (low: number, high: number, shape: number[], opts?: CreateOptions): Tensor =>
  callT('randint', checkInt(low, 'low', 'randint'), checkInt(high, 'high', 'randint'), checkShape(shape, 'shape', 'randint'), code(opts) ?? DTYPE_CODES.int64, opts?.device);
export const randperm = (n: number, opts?: CreateOptions): Tensor =>
  callT('randperm', checkInt(n, 'n', 'randperm', 0), code(opts) ?? DTYPE_CODES.int64, opts?.device);
/** Draws 0/1 with probabilities x (or p for every element of x's shape). */
export const bernoulli = (x: Tensor, p?: number): Tensor => callT('bernoulli', checkTensor(x, 'x', 'bernoulli').handle, p);
export const multinomial = (probs: Tensor, numSamples: number, replacement = false): Tensor =>
  callT('multinomial', checkTensor(probs, 'probs', 'multinomial').handle, checkInt(numSamples, 'numSamples', 'multinomial', 1), replacement);
/** The CPU generator's state (a uint8 tensor) to save with a checkpoint. */
export const getRngState = (): Tensor => callT('getRngState');
export const setRngState = (state: Tensor): void => {
  callV('setRngState', checkTensor(state, 'state', 'setRngState').handle);
};
