/**
 * src/util/random.ts: the generator's ranges and state, and named streams (a stream
 * depends on its seed and name only; names, seeds and types of name parts all separate).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, stream, toRng } from '../../src/util/random';

test('Rng: same seed gives the same stream, other seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xa = Array.from({ length: 100 }, () => a.next());
  const xb = Array.from({ length: 100 }, () => b.next());
  const xc = Array.from({ length: 100 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  assert.ok(xa.every((v) => v >= 0 && v < 1));
});

test('Rng: uniform, int and choice cover their ranges; bool follows p', () => {
  const r = new Rng(7);
  const u = Array.from({ length: 20000 }, () => r.uniform(-20, 20));
  assert.ok(Math.min(...u) >= -20 && Math.max(...u) <= 20);
  assert.ok(Math.min(...u) < -19.9 && Math.max(...u) > 19.9);
  const mean = u.reduce((s, v) => s + v, 0) / u.length;
  assert.ok(Math.abs(mean) < 0.5, `mean ${mean}`);
  const ints = new Set(Array.from({ length: 2000 }, () => r.int(3, 5)));
  assert.deepEqual([...ints].sort(), [3, 4, 5]);
  const ch = new Set(Array.from({ length: 2000 }, () => r.choice([3, 5, 7, 9, 11])));
  assert.equal(ch.size, 5);
  const heads = Array.from({ length: 20000 }, () => r.bool(0.5)).filter(Boolean).length;
  assert.ok(Math.abs(heads / 20000 - 0.5) < 0.02, `heads ${heads}`);
});

test('Rng: state round trip, forks are independent of later draws', () => {
  const r = new Rng(1);
  r.next();
  const s = r.getState();
  const x = r.next();
  r.setState(s);
  assert.equal(r.next(), x);
  const f1 = new Rng(5).fork().next();
  const f2 = new Rng(5).fork().next();
  assert.equal(f1, f2);
  const seeds = new Set(Array.from({ length: 1000 }, () => r.seed()));
  assert.equal(seeds.size, 1000);
  assert.ok([...seeds].every((v) => Number.isSafeInteger(v) && v >= 0));
  assert.throws(() => new Rng(Number.NaN), /finite number/);
  assert.throws(() => r.setState([1, 2]), /four uint32/);
});

test('stream: the same seed and name give the same numbers, whatever other streams drew before', () => {
  const take = (r: Rng, n = 8): number[] => Array.from({ length: n }, () => r.next());
  const first = take(stream(3, 'synth', 'lq', 12));
  const other = stream(3, 'synth', 'lq', 11);
  take(other, 1000);
  take(stream(3, 'augment', 0, 5), 50);
  assert.deepEqual(take(stream(3, 'synth', 'lq', 12)), first);
  // each part of the name, the seed, and the type of a part separate streams
  const variants = [stream(4, 'synth', 'lq', 12), stream(3, 'synth', 'sp', 12), stream(3, 'synth', 'lq', 13), stream(3, 'synth', 'lq'),
    stream(3, 'synth', 'lq', '12'), stream(3, 'synthlq', 12), stream(3, 'loader', 12)].map((r) => take(r));
  for (const v of variants) assert.notDeepEqual(v, first);
  assert.equal(new Set(variants.map((v) => v[0])).size, variants.length);
});

test('stream: seeds up to 2^53 keep all their bits; fractional and negative seeds are their own streams; bad seeds are refused', () => {
  const a = stream(2 ** 52 + 1, 'x').next();
  assert.notEqual(a, stream(2 ** 52, 'x').next());
  assert.notEqual(stream(-1, 'x').next(), stream(1, 'x').next());
  assert.notEqual(stream(0.5, 'x').next(), stream(0, 'x').next());
  assert.throws(() => stream(Number.NaN, 'x'), /'seed' passed to 'stream' must be a finite number/);
  assert.throws(() => stream(1, 'x', Infinity), /numeric part of stream/);
  // 10,000 streams of one name family: distinct first draws, uniform in [0, 1)
  const firsts = Array.from({ length: 10000 }, (_, i) => stream(0, 'synth', 'hq', i).next());
  assert.equal(new Set(firsts).size, firsts.length);
  const mean = firsts.reduce((s, v) => s + v, 0) / firsts.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  assert.ok(firsts.every((v) => v >= 0 && v < 1));
});

test('normal draws have mean 0 and variance 1; shuffle is a permutation; toRng passes a generator through', () => {
  const r = stream(9, 'test');
  const xs = Array.from({ length: 20000 }, () => r.normal());
  const m = xs.reduce((s, v) => s + v, 0) / xs.length;
  const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
  assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m} var ${v}`);
  const p = r.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...p].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(toRng(r), r);
  assert.equal(toRng(5).next(), new Rng(5).next());
});
