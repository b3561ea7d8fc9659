/**
 * Test helpers for models: the deterministic fills of the smp fixture's README (and of
 * tools/golden/smp_ref.py), little-endian float32 files, and the golden index.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Module } from '../../src/nn';
import * as T from '../../src/tensor';

/** The repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * The fixture README's rule for the j-th state-dict tensor; `gain` replaces the 6 of
 * sqrt(6 / fan_in) for weights of 2+ dims (the goldens use 3: less float32 noise).
 */
export function fillTensor(name: string, t: T.Tensor, j: number, gain = 6): T.Tensor {
  return T.tidy(() => {
    const n = t.size;
    const base = T.sin(T.arange(0, n, 1, { dtype: 'float64' }).mul(0.37).add(0.11 * j));
    let v: T.Tensor;
    if (name.endsWith('num_batches_tracked')) v = T.zerosLike(base);
    else if (name.endsWith('running_var')) v = base.square().mul(0.25).add(1);
    else if (name.endsWith('running_mean')) v = base.mul(0.1);
    else if (t.ndim >= 2) v = base.mul(Math.sqrt(gain / (n / t.shape[0])));
    else if (name.endsWith('.weight')) v = base.mul(0.1).add(1);
    else v = base.mul(0.1);
    return v.to(t.dtype).reshape(t.shape);
  });
}

/** Fills every tensor of a module's state dict in order (in place). */
export function fillModule(m: Module, gain = 6): void {
  let j = 0;
  for (const [name, t] of m.stateDict()) {
    const v = fillTensor(name, t, j++, gain);
    T.noGrad(() => t.copy_(v));
    v.dispose();
  }
}

/** x[k] = sin(scale * k) over the row-major flattening, made in float64, stored float32. */
export function sineInput(shape: number[], scale = 0.01): T.Tensor {
  const n = shape.reduce((a, s) => a * s, 1);
  return T.tidy(() => T.sin(T.arange(0, n, 1, { dtype: 'float64' }).mul(scale)).to('float32').reshape(shape));
}

export function readF32(file: string, offset = 0, count?: number): Float32Array {
  const buf = fs.readFileSync(file);
  const n = count ?? (buf.length / 4 - offset);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readFloatLE((offset + i) * 4);
  return out;
}

/** max and mean of |a - b|. */
export function absErr(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= max)) max = Number.isNaN(e) ? Infinity : e;
    sum += e;
  }
  return { max, mean: sum / a.length };
}
