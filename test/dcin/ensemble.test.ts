/**
 * Ensembles against the same composition (exact) and known entropies: float32 rounding uses at
 * most 0.4% of a tolerance (measured against float64).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { ensemble, meanEntropy, selectByEntropy } from '../../src/dcin';
import { assertClose, assertNoLeak } from '../helpers/assert';

test('ensemble: mean of softmax (default) and the reference mean of logits', () => {
  T.tidy(() => {
    const a = T.tensor([2, 0, 0, 1], [1, 2, 1, 2]);
    const b = T.tensor([0, 0, 1, 3], [1, 2, 1, 2]);
    const sa = T.softmax(a, 1);
    const sb = T.softmax(b, 1);
    assertClose(ensemble([a, b]), sa.add(sb).div(2).toArray(), 1e-7);
    assertClose(ensemble([a, b], 'logits'), T.softmax(a.add(b).div(2), 1).toArray(), 1e-7);
    assert.throws(() => ensemble([a, T.zeros([1, 3, 1, 2])]), /one shape/);
    assert.throws(() => ensemble([a], 'max' as 'softmax'), /'mode' passed to 'ensemble'/);
  });
});

test('meanEntropy and the auto rule (lowest mean entropy, ties to the first)', () => {
  T.tidy(() => {
    const uniform = T.full([2, 4, 3, 3], 0.25);
    const sure = T.cat([T.ones([2, 1, 3, 3]), T.zeros([2, 3, 3, 3])], 1);
    assertClose(meanEntropy(uniform), [Math.log(4), Math.log(4)], 1e-6);
    assertClose(meanEntropy(sure), [0, 0], 1e-7);
    const mixed = T.cat([uniform.narrow(0, 0, 1), sure.narrow(0, 1, 1)], 0);
    const r = selectByEntropy([uniform, mixed, sure]);
    assert.deepEqual(r.choice, [2, 1]);
    assertClose(r.probs, sure.toArray(), 0);
    assert.deepEqual(selectByEntropy([sure, sure]).choice, [0, 0]);
  });
});

test('no leak', () => {
  const a = T.rand([1, 3, 4, 4]);
  assertNoLeak(() => { T.tidy(() => { ensemble([a, a]); selectByEntropy([a, a]); }); });
  a.dispose();
});
