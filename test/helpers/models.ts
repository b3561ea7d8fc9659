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

/**
 * n values in [0, 1) from a 32-bit integer hash of (index k, stream j), as
 * tools/golden/smp_ref.py hash_uniform: h = k * 0x9E3779B1 + j * 0x85EBCA77 + 0x165667B1
 * (mod 2^32), then three xorshift-multiply rounds; exact in both languages.
 */
export function hashUniform(n: number, j: number): Float64Array {
  const out = new Float64Array(n);
  const jm = Math.imul(j, 0x85ebca77);
  for (let k = 0; k < n; k++) {
    let h = (Math.imul(k, 0x9e3779b1) + jm + 0x165667b1) >>> 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d) >>> 0;
    h ^= h >>> 12;
    h = Math.imul(h, 0x297a2d39) >>> 0;
    h ^= h >>> 15;
    out[k] = (h >>> 0) / 4294967296;
  }
  return out;
}

/**
 * smp_ref.py fill_tensor_hash: u = 2 * hashUniform - 1; weights of 2+ dims
 * u * sqrt(6 / fan_in), BatchNorm near identity. Uncorrelated neighbours keep training-mode
 * BatchNorm from amplifying rounding (see tools/golden/models_golden.py).
 */
export function fillTensorHash(name: string, t: T.Tensor, j: number): T.Tensor {
  return T.tidy(() => {
    const n = t.size;
    const u = T.tensor(hashUniform(n, j), [n]).mul(2).sub(1);
    let v: T.Tensor;
    if (name.endsWith('num_batches_tracked')) v = T.zerosLike(u);
    else if (name.endsWith('running_var')) v = u.square().mul(0.25).add(1);
    else if (name.endsWith('running_mean')) v = u.mul(0.1);
    else if (t.ndim >= 2) v = u.mul(Math.sqrt(6 / (n / t.shape[0])));
    else if (name.endsWith('.weight')) v = u.mul(0.1).add(1);
    else v = u.mul(0.1);
    return v.to(t.dtype).reshape(t.shape);
  });
}

/** smp_ref.py hash_input: 2 * hashUniform(stream 1000003) - 1, made in float64, stored float32. */
export function hashInput(shape: number[]): T.Tensor {
  const n = shape.reduce((a, s) => a * s, 1);
  return T.tidy(() => T.tensor(hashUniform(n, 1000003), [n]).mul(2).sub(1).to('float32').reshape(shape));
}

/** Fills every tensor of a module's state dict in order (in place) by the hash rule. */
export function fillModuleHash(m: Module): void {
  let j = 0;
  for (const [name, t] of m.stateDict()) {
    const v = fillTensorHash(name, t, j++);
    T.noGrad(() => t.copy_(v));
    v.dispose();
  }
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
