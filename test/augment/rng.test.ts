import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/augment';

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
