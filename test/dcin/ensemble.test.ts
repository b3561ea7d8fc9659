/**
 * Ensembles against the same composition (exact) and known entropies: float32 rounding uses at
 * most 0.4% of a tolerance (measured against float64).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { agreementScores, ensemble, labelAgreement, meanEntropy, selectByEntropy, selectSafe } from '../../src/dcin';
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

test('labelAgreement: Dice macro of the argmax labels, classes absent from both left out', () => {
  T.tidy(() => {
    // labels a = [0, 0, 1, 1], b = [0, 1, 1, 1] (C = 3, class 2 in neither):
    // class 0: 2*1 / (2 + 1), class 1: 2*2 / (2 + 3) -> mean 0.7333...
    const onehot = (labels: number[]): T.Tensor => T.oneHot(T.tensor(labels, [1, 1, 4], { dtype: 'int64' }), 3).permute([0, 3, 1, 2]).to('float32');
    const a = onehot([0, 0, 1, 1]);
    const b = onehot([0, 1, 1, 1]);
    assertClose(labelAgreement(a, b), [(2 / 3 + 4 / 5) / 2], 1e-12);
    assertClose(labelAgreement(a, a), [1], 0);
    const ab = T.cat([a, b], 0);
    assertClose(labelAgreement(ab, T.cat([b, b], 0)), [(2 / 3 + 4 / 5) / 2, 1], 1e-12, 0, 'per image');
    assertClose(agreementScores([a, b, b]).map((v) => v[0]), [(2 / 3 + 4 / 5) / 2, (1 + (2 / 3 + 4 / 5) / 2) / 2, (1 + (2 / 3 + 4 / 5) / 2) / 2], 1e-12);
  });
});

/**
 * The case auto-entropy gets wrong: `none` confidently wrong (every pixel background at
 * p = 0.99), the normalised candidates right but less sure (p = 0.7) and differing from
 * each other on a pixel or two.
 */
function confidentWrong(): { truth: T.Tensor; cands: T.Tensor[] } {
  const h = 6;
  const w = 6;
  const truth = T.tidy(() => {
    const ys = T.arange(h).reshape([h, 1]);
    const xs = T.arange(w).reshape([1, w]);
    return ys.sub(2.5).square().add(xs.sub(2.5).square()).lt(5).to('int64').reshape([1, h, w]); // a disc of class 1
  });
  const soft = (labels: T.Tensor, p: number): T.Tensor => T.tidy(() => {
    const oh = T.oneHot(labels, 2).permute([0, 3, 1, 2]).to('float32');
    return oh.mul(p).add(oh.logicalNot().to('float32').mul(1 - p));
  });
  const flip = (labels: T.Tensor, idx: number[]): T.Tensor => T.tidy(() => {
    const flat = labels.reshape([-1]).clone();
    for (const i of idx) flat.narrow(0, i, 1).copy_(flat.narrow(0, i, 1).neg().add(1));
    return flat.reshape(labels.shape);
  });
  const none = soft(T.zerosLike(truth), 0.99);
  const gris = soft(flip(truth, [0]), 0.7);
  const lris = soft(flip(truth, [35, 14]), 0.7);
  const full = T.tidy(() => gris.add(lris).div(2));
  return { truth, cands: [none, gris, lris, full] };
}

test('auto (selectSafe): out of distribution, a confidently wrong none loses to the agreeing normalised candidates; in distribution, none is kept', () => {
  T.tidy(() => {
    const { truth, cands } = confidentWrong();
    assert.deepEqual(selectByEntropy(cands).choice, [0], 'auto-entropy keeps the confident wrong none');
    const r = selectSafe(cands, [true], [3, 1, 2, 0]);
    assert.notEqual(r.choice[0], 0);
    assert.deepEqual(r.reason, ['agreement']);
    const dice = labelAgreement(r.probs, T.oneHot(truth, 2).permute([0, 3, 1, 2]).to('float32'))[0];
    assert.ok(dice > 0.9, `the kept candidate is right (Dice ${dice})`);
    assert.ok(r.agreement[0][0] < Math.min(r.agreement[1][0], r.agreement[2][0], r.agreement[3][0]), 'none agrees least');
    assert.deepEqual(selectSafe(cands, [null]).choice, r.choice, 'unknown (no calibration) is treated as outside');
    const inside = selectSafe(cands, [false]);
    assert.deepEqual([inside.choice, inside.reason], [[0], ['in distribution']]);
    assertClose(inside.probs, cands[0].toArray(), 0);
    // two images, one inside and one outside
    const two = cands.map((c) => T.cat([c, c], 0));
    assert.deepEqual(selectSafe(two, [false, true], [3, 1, 2, 0]).choice, [0, r.choice[0]]);
    assert.throws(() => selectSafe(cands, [true, false]), /one flag per image \(1\), got 2/);
    assert.throws(() => selectSafe(cands, [true], [0, 1, 1, 2]), /must order the 4 candidates/);
  });
});

test('auto (selectSafe) keepMargin: none is kept when it agrees with the others nearly as well as the medoid; a confidently wrong none still loses', () => {
  T.tidy(() => {
    const { truth, cands } = confidentWrong();
    assert.notEqual(selectSafe(cands, [true], [3, 1, 2, 0], 0.05).choice[0], 0, 'none agrees far less: the medoid wins with the margin too');
    // four candidates equal to the truth but for one pixel each (36 pixels, disc of 21)
    const soft = (l: T.Tensor): T.Tensor => T.oneHot(l, 2).permute([0, 3, 1, 2]).to('float32');
    const off = (i: number): T.Tensor => {
      const flat = truth.reshape([-1]).clone();
      flat.narrow(0, i, 1).copy_(flat.narrow(0, i, 1).neg().add(1));
      return soft(flat.reshape(truth.shape));
    };
    const near = [off(0), soft(truth), off(35), off(14)];
    const pure = selectSafe(near, [true]);
    assert.equal(pure.choice[0], 1, 'without a margin: the medoid (the untouched one)');
    const gap = pure.agreement[1][0] - pure.agreement[0][0];
    assert.ok(gap > 0 && gap < 0.05, `none agrees within 0.05 of the medoid (gap ${gap})`);
    assert.equal(selectSafe(near, [true], undefined, 0.05).choice[0], 0, 'with the margin: none');
    assert.equal(selectSafe(near, [true], undefined, gap / 2).choice[0], 1, 'a margin below the gap: the medoid');
    assert.throws(() => selectSafe(near, [true], undefined, -1), /'keepMargin' passed to 'selectSafe' must be a number in \[0, 1\], got -1/);
  });
});

test('no leak', () => {
  const a = T.rand([1, 3, 4, 4]);
  assertNoLeak(() => { T.tidy(() => { ensemble([a, a]); selectByEntropy([a, a]); }); });
  assertNoLeak(() => { T.tidy(() => { selectSafe([a, a, a], [true]); labelAgreement(a, a); }); });
  a.dispose();
});
