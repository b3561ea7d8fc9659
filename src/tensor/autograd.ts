/** Autograd controls: noGrad / enableGrad scopes, backward, gradients. */
import { checkTensor } from './check';
import { callV } from './call';
import { Tensor } from './tensor';

export function isGradEnabled(): boolean {
  return callV('isGradEnabled');
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = isGradEnabled();
  callV('setGradEnabled', enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('noGrad/enableGrad: fn must be synchronous (it returned a Promise)');
    return r;
  } finally {
    callV('setGradEnabled', prev);
  }
}

/** Runs fn with gradient recording off (torch.no_grad). Synchronous only. */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs fn with gradient recording on (torch.enable_grad). */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);

/** Accumulates d(output)/d(leaf) into every leaf's .grad. A non-scalar output needs `grad`. */
export function backward(output: Tensor, grad?: Tensor, retainGraph?: boolean): void {
  checkTensor(output, 'output', 'backward');
  if (grad === undefined && output.size !== 1) {
    throw new TypeError(`'backward' of a non-scalar output [${output.shape.join(',')}] needs 'grad'`);
  }
  callV('backward', output.handle, grad?.handle, retainGraph);
}

/** Sets .grad to none for each tensor (torch's zero_grad(set_to_none=True)). */
export function zeroGrads(params: Tensor[]): void {
  callV('zeroGrads', params.map((p) => p.handle));
}

/** Turns gradient recording on or off (torch.set_grad_enabled); prefer noGrad scopes. */
export function setGradEnabled(enabled: boolean): void {
  callV('setGradEnabled', enabled);
}

/**
 * noGrad for an async function: recording is off until its promise settles, then
 * restored. Other work interleaved at its awaits also runs without recording.
 */
export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const prev = isGradEnabled();
  setGradEnabled(false);
  try {
    return await fn();
  } finally {
    setGradEnabled(prev);
  }
}
