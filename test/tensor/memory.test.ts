import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { dispose, keep, memory, native } from '../helpers/core';
import * as T from '../../src/tensor';
import { callV } from '../../src/tensor/ops';

test('tidy frees intermediates and keeps what it returns', () => {
  const before = memory().liveTensors;
  const x = T.ones([2, 3]);
  const y = T.tidy(() => x.mul(2).add(1).sum());
  assert.equal(y.item(), 18);
  assert.equal(memory().liveTensors, before + 2);
  dispose([x, y]);
  assert.equal(memory().liveTensors, before);
});

test('tidy keeps tensors inside returned arrays and objects; nested scopes hand results up', () => {
  const before = memory().liveTensors;
  const out = T.tidy(() => {
    const inner = T.tidy(() => ({ a: T.zeros([1]), b: [T.ones([1])] }));
    T.ones([4]);
    return inner;
  });
  assert.equal(memory().liveTensors, before + 2);
  dispose(out);
  assert.equal(memory().liveTensors, before);
});

test('keep() exempts a tensor from tidy; the caller disposes it', () => {
  const before = memory().liveTensors;
  let kept: T.Tensor | undefined;
  T.tidy(() => {
    kept = keep(T.ones([3]));
  });
  assert.equal(kept!.isDisposed, false);
  kept!.dispose();
  assert.equal(memory().liveTensors, before);
});

test('tidy disposes on throw and refuses async functions', () => {
  const before = memory().liveTensors;
  assert.throws(() => T.tidy(() => {
    T.ones([3]);
    throw new Error('boom');
  }), /boom/);
  assert.throws(() => T.tidy((async () => T.ones([1])) as unknown as () => T.Tensor), /synchronous/);
  assert.equal(memory().liveTensors, before);
});

test('dispose twice is fine; use after dispose throws "Tensor is disposed"', () => {
  const x = T.ones([2]);
  x.dispose();
  x.dispose();
  assert.throws(() => x.add(1), /Tensor is disposed/);
  assert.throws(() => x.shape, /Tensor is disposed/);
  assert.throws(() => T.add(T.ones([1]), x), /Tensor is disposed/);
});

test('a foreign or disposed handle reaching the addon is an error, not a crash', () => {
  const id = native.opNames().indexOf('neg');
  assert.throws(() => native.call(id, {}), /expected a tensor/);
  assert.throws(() => native.call(id, Object.create(native.NativeTensor.prototype)), /Error|handle/);
  const h = native.fromBuffer(new Float32Array([1]), [1], 0);
  h.dispose();
  assert.throws(() => native.call(id, h), /Tensor is disposed/);
  assert.throws(() => native.call(9999), /unknown op id/);
});

test('libtorch errors become TorchError with libtorch\'s message and a code', () => {
  const a = T.ones([3, 4]);
  const b = T.ones([3, 4]);
  assert.throws(() => T.matmul(a, b), (err: Error & { code?: string }) => {
    assert.ok(err instanceof T.TorchError);
    assert.equal(err.code, 'ERR_TORCH');
    assert.match(err.message, /cannot be multiplied/);
    return true;
  });
  dispose([a, b]);
});

test('memory stays flat over many steps inside tidy', () => {
  const w = keep(T.randn([16, 16]).requiresGrad_());
  const step = () => T.tidy(() => {
    const loss = T.matmul(T.randn([8, 16]), w).relu().square().mean();
    loss.backward();
    w.grad = undefined;
  });
  step();
  const before = memory();
  for (let i = 0; i < 200; i++) step();
  const after = memory();
  assert.equal(after.liveTensors, before.liveTensors);
  assert.equal(after.liveBytes, before.liveBytes);
  w.dispose();
});

test('native bytes are reported and released', () => {
  const before = memory().liveBytes;
  const x = T.zeros([1000], { dtype: 'float64' });
  assert.equal(memory().liveBytes - before, 8000);
  x.dispose();
  assert.equal(memory().liveBytes, before);
});

const cacheOn = !process.env.CQSEG_MALLOC || process.env.CQSEG_MALLOC === 'cache';

test('the caching allocator is off until asked for (unless CQSEG_MALLOC=cache); useCachingAllocator switches it on', () => {
  if (process.env.CQSEG_MALLOC === 'cache') return assert.equal(T.useCachingAllocator(), true);
  T.zeros([1 << 20]).dispose(); // 4 MiB: not through the cache yet
  if (!process.env.CQSEG_MALLOC) assert.deepEqual(callV<number[]>('allocatorStats'), [0, 0, 0, 0]);
  assert.equal(T.useCachingAllocator(), cacheOn);
  assert.equal(T.useCachingAllocator(), cacheOn, 'a second call is harmless');
});

test(`caching allocator: ${cacheOn ? 'a freed large block serves the next request of its size; emptyCache unmaps; values intact' : `off under CQSEG_MALLOC=${process.env.CQSEG_MALLOC}`}`, () => {
  const stats = (): number[] => callV<number[]>('allocatorStats');
  if (!cacheOn) {
    T.full([3 << 18], 7).dispose();
    assert.deepEqual(stats(), [0, 0, 0, 0], 'the cache is not installed');
    return;
  }
  callV('allocatorEmptyCache');
  const [, mapped0, hits0, misses0] = stats();
  const a = T.full([3 << 18], 7); // 3 MiB
  const [, mapped1, , misses1] = stats();
  assert.equal(misses1, misses0 + 1, 'a new size maps a new block');
  assert.ok(mapped1 >= mapped0 + 3 * (1 << 20));
  a.dispose();
  assert.ok(stats()[0] >= 3 * (1 << 20), 'the freed block is cached');
  const b = T.arange(0, 3 << 18); // same byte size: reuses it
  assert.equal(stats()[2], hits0 + 1);
  assert.equal(b.narrow(0, (3 << 18) - 1, 1).item(), (3 << 18) - 1);
  b.dispose();
  callV('allocatorEmptyCache');
  assert.equal(stats()[0], 0, 'emptyCache leaves nothing cached');
  const small = T.ones([100]); // small blocks bypass the cache
  const [, , hits2, misses2] = stats();
  small.dispose();
  T.ones([100]).dispose();
  assert.deepEqual(stats().slice(2), [hits2, misses2]);
});
