/**
 * Finite-difference gradient checks (torch.autograd.gradcheck, simplified): for a
 * function of float64 tensors, compares the gradient that backward() gives for a fixed
 * upstream gradient with central differences (f(x + eps) - f(x - eps)) / (2 eps).
 */
import * as T from '../../src/tensor';

export interface GradcheckOptions {
  /** finite-difference step (default 1e-6) */
  eps?: number;
  /** absolute and relative tolerance of the comparison (defaults 1e-5, 1e-4) */
  atol?: number;
  rtol?: number;
  /** names of inputs not to differentiate (e.g. int64 targets) */
  skip?: string[];
}

/** A deterministic upstream gradient for an output shape (a fixed formula, not random). */
function upstreamValues(n: number): number[] {
  return Array.from({ length: n }, (_, k) => Math.cos(0.61 * k + 0.3) + 0.1);
}

/** sum(fn(inputs) * upstream), as a JS number, without recording gradients. */
function weightedOutput(fn: (xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[], up: number[]): number {
  return T.tidy(() => T.noGrad(() => {
    const y = fn(xs);
    const v = y.to('float64').toArray();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] * up[i];
    return s;
  }));
}

/**
 * Checks d(sum(fn(x) * upstream))/dx for every input not in `skip`. Inputs are given as
 * float64 (or int64) tensors and are not modified. Throws naming the input and element
 * where analytic and numeric gradients disagree. Frees every tensor it makes.
 */
export function gradcheck(fn: (xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-4;
  const skip = new Set(opts.skip ?? []);
  T.tidy(() => {
    const leaves = inputs.map((x, i) => {
      if (skip.has(String(i)) || !T.isFloating(x.dtype)) return x;
      if (x.dtype !== 'float64') throw new Error(`gradcheck: input ${i} must be float64, got ${x.dtype}`);
      return x.detach().requiresGrad_(true);
    });
    const y = fn(leaves);
    const up = upstreamValues(y.size);
    const g = T.tensor(Float64Array.from(up), y.shape).to(y.dtype);
    y.backward(g);
    leaves.forEach((leaf, i) => {
      if (leaf === inputs[i]) return;
      const grad = leaf.grad;
      const analytic = grad === undefined ? new Array<number>(leaf.size).fill(0) : grad.toArray();
      const base = Float64Array.from(inputs[i].toArray());
      const shape = inputs[i].shape;
      for (let k = 0; k < base.length; k++) {
        const at = (delta: number): number => T.tidy(() => {
          const v = Float64Array.from(base);
          v[k] += delta;
          const xs = inputs.map((x, j) => (j === i ? T.tensor(v, shape) : x));
          return weightedOutput(fn, xs, up);
        });
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        const err = Math.abs(analytic[k] - numeric);
        if (!(err <= atol + rtol * Math.abs(numeric))) {
          throw new Error(`gradcheck: input ${i} element ${k}: backward gives ${analytic[k]}, finite differences ${numeric} (|diff| ${err})`);
        }
      }
    });
  });
}
