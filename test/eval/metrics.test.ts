/**
 * Metrics from integer confusion counts: exact in float64 (ratios within 1e-12 of the
 * exact fractions).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrapCI } from '../../src/eval/evaluate';
import { ConfusionMatrix } from '../../src/eval/metrics';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';

const long = (rows: number[][]): T.Tensor => T.tensor(rows, undefined, { dtype: 'int64' });

test('Dice and IoU per class and macro equal hand-computed values; a class absent from both is left out', () => {
  // pred  0 0 1 | target 0 1 1      class 0: TP 1 FP 1 FN 1 -> Dice 2/4, IoU 1/3
  //       1 2 2 |        1 2 0      class 1: TP 2 FP 0 FN 1 -> 4/5, 2/3
  //                                 class 2: TP 1 FP 1 FN 0 -> 2/3, 1/2; class 3 absent
  const cm = new ConfusionMatrix(4);
  const pred = long([[0, 0, 1], [1, 2, 2]]);
  const target = long([[0, 1, 1], [1, 2, 0]]);
  assertNoLeak(() => cm.update(pred, target));
  const d = cm.dicePerClass();
  assert.deepEqual(d.slice(0, 3).map((v) => +v.toFixed(12)), [0.5, 0.8, +(2 / 3).toFixed(12)]);
  assert.ok(Number.isNaN(d[3]));
  assert.ok(Math.abs(cm.diceMacro() - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12);
  assert.ok(Math.abs(cm.iouMacro() - (1 / 3 + 2 / 3 + 1 / 2) / 3) < 1e-12);
  T.dispose([pred, target]);
});

test('a class present only in the truth scores 0 and counts in the macro mean', () => {
  const cm = new ConfusionMatrix(3);
  const pred = long([[0, 0]]);
  const target = long([[0, 2]]);
  cm.update(pred, target);
  // class 0: TP 1 FP 1 FN 0 -> 2/3; class 1 absent; class 2: TP 0 FN 1 -> 0
  assert.ok(Math.abs(cm.diceMacro() - (2 / 3 + 0) / 2) < 1e-12);
  T.dispose([pred, target]);
});

test('accumulating batches equals one pass over everything (global reduction)', () => {
  T.manualSeed(3);
  const p = T.randint(0, 3, [4, 5, 6]);
  const t = T.randint(0, 3, [4, 5, 6]);
  const whole = new ConfusionMatrix(3);
  whole.update(p, t);
  const parts = new ConfusionMatrix(3);
  for (let i = 0; i < 4; i++) T.tidy(() => parts.update(p.select(0, i), t.select(0, i)));
  assert.deepEqual(Array.from(parts.counts), Array.from(whole.counts));
  assert.throws(() => whole.update(p, T.zeros([4, 5], { dtype: 'int64' })), /differ in shape/);
  assert.throws(() => whole.update(p, T.full([4, 5, 6], 7, { dtype: 'int64' })), /outside 0\.\.2/);
  T.dispose([p, t]);
});

test('bootstrap intervals are seeded, ordered and contain the estimate of an even set', () => {
  const per: ConfusionMatrix[] = [];
  for (let i = 0; i < 20; i++) {
    const cm = new ConfusionMatrix(2);
    cm.counts.set([50 + i, 5, 3 + (i % 4), 40]);
    per.push(cm);
  }
  const total = new ConfusionMatrix(2);
  per.forEach((c) => total.merge(c));
  const a = bootstrapCI(per, (c) => c.diceMacro(), 500, 1)!;
  const b = bootstrapCI(per, (c) => c.diceMacro(), 500, 1)!;
  assert.deepEqual(a, b);
  assert.ok(a[0] <= total.diceMacro() && total.diceMacro() <= a[1], `${a} around ${total.diceMacro()}`);
  assert.ok(a[0] < a[1]);
  assert.equal(bootstrapCI(per.slice(0, 1), (c) => c.diceMacro(), 500), null);
});
