/**
 * Random ops: shapes, dtypes and value ranges; seeding determinism (manualSeed twice
 * gives equal tensors, different seeds differ); getRngState/setRngState replay.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';

const vals = (t: T.Tensor): number[] => t.toArray();

/** One draw of every random op, as plain arrays. */
function drawAll(): number[][] {
  return T.tidy(() => [
    vals(T.rand([5])),
    vals(T.randn([2, 3])),
    vals(T.randint(0, 10, [6])),
    vals(T.randperm(7)),
    vals(T.bernoulli(T.full([8], 0.5))),
    vals(T.multinomial(T.tensor([0.1, 0.2, 0.7]), 4, true)),
    vals(T.noGrad(() => T.empty([4]).normal_(1, 2))),
    vals(T.noGrad(() => T.empty([4]).uniform_(-3, 3))),
    vals(T.noGrad(() => T.empty([6]).bernoulli_(0.3))),
    vals(T.dropout(T.ones([8]), 0.5, true)),
  ]);
}

test('rand, randn, randint, randperm: shapes, dtypes and ranges', () => {
  assertNoLeak(() => T.tidy(() => {
    T.manualSeed(1);
    const u = T.rand([100, 10]);
    assert.deepEqual([u.shape, u.dtype], [[100, 10], 'float32']);
    const uv = vals(u);
    assert.ok(uv.every((v) => v >= 0 && v < 1));
    const mean = uv.reduce((a, b) => a + b, 0) / uv.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `rand mean ${mean}`);
    assert.equal(T.rand([2], { dtype: 'float64' }).dtype, 'float64');
    const n = vals(T.randn([4000], { dtype: 'float64' }));
    const m = n.reduce((a, b) => a + b, 0) / n.length;
    const sd = Math.sqrt(n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length);
    assert.ok(Math.abs(m) < 0.06 && Math.abs(sd - 1) < 0.06, `randn mean ${m} sd ${sd}`);
    const i = T.randint(-2, 3, [1000]);
    assert.equal(i.dtype, 'int64');
    const iv = vals(i);
    assert.ok(iv.every((v) => Number.isInteger(v) && v >= -2 && v < 3));
    assert.deepEqual([...new Set(iv)].sort((x, y) => x - y), [-2, -1, 0, 1, 2]);
    assert.equal(T.randint(0, 5, [3], { dtype: 'uint8' }).dtype, 'uint8');
    const p = T.randperm(10);
    assert.deepEqual([...vals(p)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(p.dtype, 'int64');
    assert.deepEqual(T.rand([0, 3]).shape, [0, 3]);
    assert.throws(() => T.rand([2, -2]), /Argument 'shape' passed to 'rand'/);
    assert.throws(() => T.randint(0.5, 3, [2]), /Argument 'low' passed to 'randint' must be an integer, got number 0.5/);
    assert.throws(() => T.randint(3, 3, [2]), T.TorchError);
    assert.throws(() => T.randperm(-1), /Argument 'n' passed to 'randperm' must be an integer >= 0/);
    assert.throws(() => T.manualSeed(-1), /Argument 'seed' passed to 'manualSeed' must be an integer >= 0, got number -1/);
  }));
});

test('bernoulli, multinomial, normal_, uniform_, bernoulli_, dropout', () => {
  assertNoLeak(() => T.tidy(() => {
    T.manualSeed(2);
    const b = vals(T.bernoulli(T.tensor([0, 1, 0, 1])));
    assert.deepEqual(b, [0, 1, 0, 1]);
    const bp = vals(T.bernoulli(T.zeros([2000]), 0.25));
    const frac = bp.reduce((a, v) => a + v, 0) / bp.length;
    assert.ok(bp.every((v) => v === 0 || v === 1) && Math.abs(frac - 0.25) < 0.04, `bernoulli p ${frac}`);
    const mn = T.multinomial(T.tensor([0, 0, 1, 0]), 3, true);
    assert.deepEqual([mn.dtype, vals(mn)], ['int64', [2, 2, 2]]);
    const noRep = vals(T.multinomial(T.tensor([1, 1, 1, 1]), 4));
    assert.deepEqual([...noRep].sort(), [0, 1, 2, 3]);
    assert.throws(() => T.multinomial(T.tensor([1, 1]), 3), T.TorchError);
    assert.throws(() => T.multinomial(T.tensor([1, 1]), 0), /Argument 'numSamples' passed to 'multinomial' must be an integer >= 1/);
    const u = T.noGrad(() => T.empty([500], { dtype: 'float64' }).uniform_(-3, -1));
    assert.ok(vals(u).every((v) => v >= -3 && v < -1));
    const g = vals(T.noGrad(() => T.empty([4000], { dtype: 'float64' }).normal_(5, 0.5)));
    const m = g.reduce((a, v) => a + v, 0) / g.length;
    assert.ok(Math.abs(m - 5) < 0.05, `normal_ mean ${m}`);
    const d = vals(T.dropout(T.ones([1000]), 0.2, true));
    assert.ok(d.every((v) => v === 0 || Math.abs(v - 1.25) < 1e-6));
    assert.deepEqual(vals(T.dropout(T.ones([3]), 0.9, false)), [1, 1, 1]);
    assert.deepEqual(vals(T.dropout(T.ones([3]), 1, true)), [0, 0, 0]);
  }));
});

test('manualSeed(s) twice gives equal draws of every random op; another seed differs', () => {
  assertNoLeak(() => {
    T.manualSeed(1234);
    const a = drawAll();
    T.manualSeed(1234);
    const b = drawAll();
    assert.deepEqual(a, b);
    T.manualSeed(1235);
    const c = drawAll();
    assert.notDeepEqual(a[0], c[0]);
    assert.notDeepEqual(a[1], c[1]);
    // consecutive draws without reseeding differ
    T.manualSeed(1234);
    drawAll();
    assert.notDeepEqual(drawAll()[0], a[0]);
  });
});

test('getRngState/setRngState replay the same draws and leave later draws in step', () => {
  assertNoLeak(() => {
    T.manualSeed(7);
    T.tidy(() => {
      T.rand([3]);
    });
    const state = T.getRngState();
    assert.equal(state.dtype, 'uint8');
    assert.ok(state.size > 100);
    const first = drawAll();
    const after = T.tidy(() => vals(T.rand([4])));
    T.setRngState(state);
    assert.deepEqual(drawAll(), first);
    assert.deepEqual(T.tidy(() => vals(T.rand([4]))), after);
    // the saved state survives a dataSync/tensor round trip (as in a checkpoint)
    const copy = T.tensor(state.dataSync(), state.shape, { dtype: 'uint8' });
    T.manualSeed(99);
    T.setRngState(copy);
    assert.deepEqual(drawAll(), first);
    T.tidy(() => assert.throws(() => T.setRngState(T.zeros([3], { dtype: 'uint8' })), T.TorchError));
    assert.throws(() => T.setRngState(undefined as unknown as T.Tensor), /Argument 'state' passed to 'setRngState' must be a Tensor, got undefined/);
    T.dispose([state, copy]);
  });
});
