/** Test helpers: numeric closeness and leak checks. */
import * as assert from 'node:assert/strict';
import { memory, Tensor } from '../../src/tensor';

/** Asserts |a - b| <= atol + rtol * |b| elementwise. */
export function assertClose(actual: ArrayLike<number> | Tensor, expected: ArrayLike<number>, atol = 1e-5, rtol = 0, what = 'value'): void {
  const a = actual instanceof Tensor ? actual.toArray() : Array.from(actual);
  const e = Array.from(expected);
  assert.equal(a.length, e.length, `${what}: length ${a.length} != ${e.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - e[i]) - rtol * Math.abs(e[i]);
    if (!(err <= atol) && (Number.isNaN(err) || err > worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      at = i;
    }
  }
  if (at >= 0) assert.fail(`${what}: element ${at} is ${a[at]}, expected ${e[at]} (atol ${atol}, rtol ${rtol})`);
}

/** Runs fn and asserts the live native tensor count is unchanged afterwards. */
export function assertNoLeak(fn: () => void): void {
  const before = memory().liveTensors;
  fn();
  const after = memory().liveTensors;
  assert.equal(after, before, `live tensors ${before} -> ${after}`);
}
