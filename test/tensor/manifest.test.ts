/**
 * The native op manifest (src/tensor/manifest.ts) against the addon: the tables match
 * (checked when the addon loads), a stale or undeclared op is refused by name, a call
 * with more arguments than declared is refused, and a C++ body that reads an argument
 * other than as declared fails with the op, the argument and both kinds named.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { OPS } from '../../src/tensor/manifest';
import { native, opId } from '../../src/tensor/native';
import { TESTING_OPS, testing } from '../../src/tensor/testing';
import * as T from '../../src/tensor';

const entries = (m: Record<string, { args: readonly string[] }>): [string, readonly string[]][] => Object.entries(m).map(([n, s]) => [n, s.args]);

test('the addon binds exactly the manifest: an op it lacks (a stale build) and an op it has undeclared are refused by name', () => {
  assert.deepEqual(native.bind(entries(OPS) as never).length, Object.keys(OPS).length);
  assert.throws(() => native.bind([...entries(OPS), ['noSuchOp', ['T']]] as never), /lacks ops that src\/tensor\/manifest.ts declares \(a stale build\): noSuchOp/);
  assert.throws(() => native.bind(entries(OPS).filter(([n]) => n !== 'cumsum') as never), /has ops that src\/tensor\/manifest.ts does not declare: cumsum/);
  assert.throws(() => native.bind([['neg', ['tensor']]] as never), /unknown argument kind 'tensor'/);
  native.bind(entries(OPS) as never);
  assert.equal(T.neg(T.ones([2])).sum().item(), -2, 'the table still works after the refusals');
});

test('test-only ops are not in the production table', () => {
  for (const name of Object.keys(TESTING_OPS)) assert.ok(!(name in OPS), name);
  assert.throws(() => native.bind([...entries(OPS), ['benchAddLoop', ['T', 'T', 'i']]] as never), /stale build\): benchAddLoop/);
});

test('more arguments than declared are refused, naming the op', () => {
  const x = T.ones([2]);
  assert.throws(() => native.call(opId('neg'), x.handle, 1), /native op 'neg' takes at most 1 arguments \(src\/tensor\/manifest.ts\), got 2/);
  x.dispose();
});

test('a C++ body reading an argument other than as declared fails with op, argument and kinds', () => {
  const x = T.ones([2]);
  testing.callV('benchAddLoop', x.handle, x.handle, 1); // binds the tests' table first
  try {
    // benchAddLoop reads (T, T, i): declare its count a string and its second tensor a number
    native.testingBind!([...entries(TESTING_OPS).filter(([n]) => n !== 'benchAddLoop'), ['benchAddLoop', ['T', 'T', 's']]] as never);
    assert.throws(() => testing.callV('benchAddLoop', x.handle, x.handle, 3), /native op 'benchAddLoop' reads argument 2 as an integer, but src\/tensor\/manifest.ts declares it 's'/);
    native.testingBind!([...entries(TESTING_OPS).filter(([n]) => n !== 'benchAddLoop'), ['benchAddLoop', ['T', 'T']]] as never);
    assert.throws(() => (testing.callV as (op: string, ...a: unknown[]) => unknown)('benchAddLoop', x.handle, x.handle), /reads argument 2 \(an integer\), which src\/tensor\/manifest.ts does not declare/);
  } finally {
    native.testingBind!(entries(TESTING_OPS) as never);
  }
  assert.equal(testing.callV('benchAddLoop', x.handle, x.handle, 3) >= 0, true);
  x.dispose();
});
