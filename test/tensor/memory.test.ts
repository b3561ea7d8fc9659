import * as assert from 'node:assert/strict';
import { testing } from '../../src/tensor/testing';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { dispose, keep, memory, native } from '../helpers/core';
import { opId } from '../../src/tensor/native';
import * as T from '../../src/tensor';

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
  const id = opId('neg');
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
  if (!process.env.CQSEG_MALLOC) assert.deepEqual(testing.callV('allocatorStats'), [0, 0, 0, 0, 0, 0, 0]);
  assert.equal(T.useCachingAllocator(), cacheOn);
  assert.equal(T.useCachingAllocator(), cacheOn, 'a second call is harmless');
});

interface ArenaStats { idle: number; mapped: number; hits: number; misses: number; peakMapped: number; peakInUse: number; freeRanges: number }
function runChild(env: Record<string, string | undefined>): Record<string, ArenaStats> & { installed: boolean; eValues: number[]; guardValue: number; hugeError: string } {
  const child = path.join(__dirname, 'allocator_child.js');
  const r = spawnSync(process.execPath, [child], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `allocator child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
const MiB = 1 << 20;

test(`caching allocator: ${cacheOn ? 'freed ranges are split for smaller requests and merged with free neighbours; no new memory for reuse; values intact' : `off under CQSEG_MALLOC=${process.env.CQSEG_MALLOC}`}`, () => {
  const o = runChild({});
  if (!cacheOn) {
    assert.equal(o.installed, false);
    assert.deepEqual(o.afterBig, o.start, 'the cache is not installed');
    return;
  }
  assert.equal(o.installed, true);
  assert.equal(o.afterFreeA.freeRanges, 1, 'the 8 MiB block freed below the guard is a free range');
  assert.ok(o.afterFreeA.idle >= 8 * MiB);
  assert.equal(o.afterFreeA.peakInUse, 10 * MiB, 'peak in use: 8 + 2 MiB');
  assert.equal(o.afterSplit.mapped, o.afterFreeA.mapped, '3 + 4 MiB cut from the freed 8 MiB: no new memory');
  assert.equal(o.afterSplit.misses, o.afterFreeA.misses);
  assert.equal(o.afterSplit.hits, o.afterFreeA.hits + 2);
  assert.equal(o.afterSplit.freeRanges, 1, 'the 1 MiB remainder');
  assert.equal(o.afterMerge.freeRanges, 1, 'the two freed blocks merge with the remainder into one range');
  assert.equal(o.afterReuse.freeRanges, 0, 'an 8 MiB request takes the merged range whole');
  assert.equal(o.afterReuse.mapped, o.afterFreeA.mapped);
  assert.equal(o.afterReuse.misses, o.afterFreeA.misses);
  assert.deepEqual(o.eValues, [0, 2 * MiB - 1]);
  assert.equal(o.guardValue, 2);
  assert.equal(o.afterAllFree.freeRanges, 0, 'everything merged back into the top');
  assert.equal(o.afterAllFree.idle, o.afterAllFree.mapped);
  assert.equal(o.afterEmpty.mapped, 0, 'emptyCache gives the idle tail back');
  assert.equal(o.afterEmpty.idle, 0);
  assert.deepEqual([o.afterSmall.hits, o.afterSmall.misses], [o.afterEmpty.hits, o.afterEmpty.misses], 'small blocks bypass the cache');
  assert.equal(o.afterBig.mapped, 16 * MiB, 'the default limit keeps 16 MiB idle');
  assert.ok(o.afterBig.peakMapped >= 16 * MiB);
  assert.match(String(o.hugeError), /not enough memory: you tried to allocate 1125899906842624 bytes/, 'an impossible request is an error, not a crash');
  assert.equal(o.afterHuge.mapped, o.afterBig.mapped, 'and leaves nothing behind');
});

test('caching allocator: CQSEG_CACHE_MIB bounds the idle memory kept after a free', () => {
  if (!cacheOn) return;
  const o = runChild({ CQSEG_CACHE_MIB: '4' });
  assert.ok(o.afterBig.idle <= 4 * MiB, `idle ${o.afterBig.idle} bytes after freeing 16 MiB with a 4 MiB limit`);
  assert.equal(o.afterBig.mapped, o.afterBig.idle);
});
