/**
 * Reads test/golden/*.json (made by tools/golden/*.py with real PyTorch) and rebuilds
 * their inputs: floating inputs from the fill formula
 *   x[k] = shift + scale * sin(0.37 * k + offset)
 * (made in float64, then cast), integer inputs from stored data.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as T from '../../src/tensor';
import { assertClose } from './assert';

/** The repository root: the first folder above this file holding package.json and test/golden. */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test', 'golden'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the repository root above ${__dirname}`);
}

export interface InputSpec {
  shape: number[];
  offset?: number;
  scale?: number;
  shift?: number;
  dtype?: 'int64';
  data?: number[];
}

export interface OutputSpec {
  shape: number[];
  data: number[];
}

export interface GoldenCase {
  inputs: Record<string, InputSpec>;
  params: Record<string, unknown>;
  out: Record<string, OutputSpec>;
}

export interface GoldenFile {
  header: { torch: string; command: string; fill: string };
  cases: Record<string, GoldenCase>;
  /** [name, shape, dtype] of a nested PyTorch model's state_dict, in order (core.json) */
  stateDictKeys?: [string, number[], string][];
}

const cache = new Map<string, GoldenFile>();

/** Loads test/golden/NAME.json once. */
export function loadGolden(name = 'core'): GoldenFile {
  let g = cache.get(name);
  if (g === undefined) {
    g = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'golden', `${name}.json`), 'utf8')) as GoldenFile;
    cache.set(name, g);
  }
  return g;
}

/** The values of the fill formula for a shape. */
export function fillValues(spec: InputSpec): number[] {
  const n = spec.shape.reduce((a, s) => a * s, 1);
  const out = new Array<number>(n);
  const { offset = 0, scale = 1, shift = 0 } = spec;
  for (let k = 0; k < n; k++) out[k] = shift + scale * Math.sin(0.37 * k + offset);
  return out;
}

/** A tensor for an input spec: int64 data as stored, floating inputs in `dtype`. */
export function makeInput(spec: InputSpec, dtype: T.DType = 'float64'): T.Tensor {
  if (spec.dtype === 'int64') return T.tensor(spec.data!, spec.shape, { dtype: 'int64' });
  if (spec.data !== undefined) return T.tidy(() => T.tensor(Float64Array.from(spec.data!), spec.shape).to(dtype));
  return T.tidy(() => T.tensor(Float64Array.from(fillValues(spec)), spec.shape).to(dtype));
}

/** Every input of a case as tensors (caller disposes). */
export function makeInputs(c: GoldenCase, dtype: T.DType = 'float64'): Record<string, T.Tensor> {
  const out: Record<string, T.Tensor> = {};
  for (const [k, spec] of Object.entries(c.inputs)) out[k] = makeInput(spec, dtype);
  return out;
}

/** Tolerances per dtype used against float64 PyTorch goldens (atol, rtol). */
export const TOL: Record<'float64' | 'float32', { atol: number; rtol: number }> = {
  float64: { atol: 1e-10, rtol: 1e-10 },
  float32: { atol: 1e-5, rtol: 1e-5 },
};

/** Asserts a tensor has the golden shape and values within the dtype's tolerance. */
export function assertGolden(actual: T.Tensor, expected: OutputSpec, what: string, tol?: { atol: number; rtol: number }): void {
  const shape = actual.shape;
  if (shape.join(',') !== expected.shape.join(',')) {
    throw new Error(`${what}: shape [${shape.join(',')}], expected [${expected.shape.join(',')}]`);
  }
  const t = tol ?? TOL[actual.dtype === 'float64' ? 'float64' : 'float32'];
  const values = actual.dtype === 'float64' ? actual.toArray() : T.tidy(() => actual.to('float64').toArray());
  assertClose(values, expected.data, t.atol, t.rtol, what);
}
