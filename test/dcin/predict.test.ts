/**
 * Predictions against the composition they are made of (the same ops in the same order):
 * equal, 0% of the 1e-6 tolerance (measured, also on 1 and 4 threads).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, labTransferToStats } from '../../src/color';
import { agreementScores, calibrateOod, dcinPredict, lrisNeighbours, Embedder, ensemble, normalizeEmbeddings, oodScores, ReferenceBank } from '../../src/dcin';
import { assertClose } from '../helpers/assert';

/** A fixed "model": per-pixel linear map of the RGB values to 3 class logits. */
const W = [[0.03, -0.02, 0.01], [-0.01, 0.02, 0.0], [0.0, -0.01, 0.025]];
function model(x: T.Tensor): T.Tensor {
  return T.tidy(() => T.einsum('kc,nchw->nkhw', T.tensor(W), x.to('float32')));
}

function makeBank(): { bank: ReferenceBank; refs: T.Tensor } {
  return T.tidy(() => {
    const refs = T.rand([4, 3, 6, 6]).mul(255).to('uint8');
    const emb = normalizeEmbeddings(refs.to('float32').mean([2, 3]));
    const bank: ReferenceBank = {
      images: [0, 1, 2, 3].map((i) => ({ path: `r${i}`, sha256: '' })),
      histograms: T.zeros([4, 512]),
      embeddings: emb,
      labStats: labStats(refs),
      gris: { index: 2, path: 'r2', meanDistance: 0 },
      embedder: 'mean',
    };
    return { bank, refs };
  });
}
const embedder: Embedder = {
  id: 'mean',
  embed: async (x) => normalizeEmbeddings(T.tidy(() => x.to('float32').mean([2, 3]))),
  dispose: () => undefined,
};

test('full DCIN equals the mean of the GRIS and LRIS single-reference predictions', async () => {
  T.manualSeed(11);
  const { bank, refs } = makeBank();
  const x = T.tidy(() => T.rand([3, 3, 5, 7]).mul(255).to('uint8'));
  const g = await dcinPredict(x, { mode: 'gris', model, bank });
  const l = await dcinPredict(x, { mode: 'lris', model, bank, embedder });
  const f = await dcinPredict(x, { mode: 'full', model, bank, embedder });
  assert.equal(f.gris, 2);
  assert.deepEqual(f.lris, l.lris);
  assertClose(f.probs, T.tidy(() => g.probs.add(l.probs).div(2)).toArray(), 1e-6, 0, 'full vs mean');
  // the GRIS prediction is the model on the image transferred toward reference 2's statistics
  const want = T.tidy(() => T.softmax(model(labTransferToStats(x, bank.labStats.narrow(0, 2, 1))), 1));
  assertClose(g.probs, want.toArray(), 1e-6);
  // the reference's mean of logits
  const fl = await dcinPredict(x, { mode: 'full', model, bank, embedder, ensemble: 'logits' });
  const wantL = T.tidy(() => ensemble([model(labTransferToStats(x, bank.labStats.narrow(0, 2, 1))),
    model(labTransferToStats(x, T.indexSelect(bank.labStats, 0, T.tensor(new BigInt64Array(l.lris!.map(BigInt)), [3]))))], 'logits'));
  assertClose(fl.probs, wantL.toArray(), 1e-6);
  // auto-entropy picks, per image, the candidate of lowest mean entropy
  const a = await dcinPredict(x, { mode: 'auto-entropy', model, bank, embedder });
  assert.equal(a.auto!.choice.length, 3);
  assert.equal(a.auto!.rule, 'entropy');
  for (let i = 0; i < 3; i++) {
    const e = a.auto!.entropies!.map((c) => c[i]);
    assert.equal(a.auto!.choice[i], ['none', 'gris', 'lris', 'full'][e.indexOf(Math.min(...e))]);
  }
  // auto without calibration in the bank: every image by agreement among none, gris and
  // the transfers toward its 3 nearest bank images (lris, lris-2, lris-3)
  const s = await dcinPredict(x, { mode: 'auto', model, bank, embedder });
  assert.equal(s.auto!.rule, 'ood-gate+agreement');
  assert.deepEqual(s.ood!.map((o) => o.flagged), [null, null, null]);
  const cos = T.tidy(() => T.matmul(normalizeEmbeddings(x.to('float32').mean([2, 3])), bank.embeddings.transpose(0, 1)).toArray() as number[]);
  for (let i = 0; i < 3; i++) {
    const order = [0, 1, 2, 3].sort((p, q) => cos[i * 4 + q] - cos[i * 4 + p]);
    assert.deepEqual(s.auto!.neighbours![i], order.slice(0, 3), `image ${i}: the 3 nearest bank images, LRIS's first`);
    assert.equal(s.auto!.neighbours![i][0], l.lris![i]);
    const xi = x.narrow(0, i, 1);
    const toRef = (r: number): T.Tensor => T.tidy(() => T.softmax(model(labTransferToStats(xi, bank.labStats.narrow(0, r, 1))), 1));
    const cands = [T.tidy(() => T.softmax(model(xi), 1)), toRef(2), ...s.auto!.neighbours![i].map(toRef)];
    const agree = agreementScores(cands).map((v) => v[0]);
    const names = ['none', 'gris', 'lris', 'lris-2', 'lris-3'];
    assert.deepEqual(s.auto!.agreement![i], Object.fromEntries(names.map((c, k) => [c, agree[k]])), `image ${i}`);
    const best = Math.max(...agree);
    const k = [2, 1, 3, 4, 0].find((c) => agree[c] === best)!;
    assert.equal(s.auto!.choice[i], names[k], `image ${i}: the medoid, ties to lris, gris, lris-2, lris-3, none`);
    assert.equal(s.auto!.reason![i], 'agreement');
    assertClose(s.probs.narrow(0, i, 1), cands[k].toArray(), 1e-6);
    T.dispose(cands);
  }
  // fewer bank images than neighbours asked for: as many as there are, LRIS's first
  const q2 = T.tidy(() => normalizeEmbeddings(x.to('float32').mean([2, 3])));
  const two = T.tidy(() => bank.embeddings.narrow(0, 0, 2));
  const nb = lrisNeighbours(q2, two, [1, 0, 1], 3);
  assert.deepEqual(nb, [[1, 0], [0, 1], [1, 0]]);
  assert.deepEqual(lrisNeighbours(q2, two.narrow(0, 0, 1), [0, 0, 0], 3), [[0], [0], [0]]);
  T.dispose([q2, two]);
  // with calibration: the bank's own images are inside the training distribution and keep none
  bank.ood = calibrateOod(bank);
  const own = await dcinPredict(refs, { mode: 'auto', model, bank, embedder });
  assert.deepEqual(own.ood!.map((o) => o.flagged), [false, false, false, false]);
  assert.deepEqual(own.auto!.choice, ['none', 'none', 'none', 'none']);
  assertClose(own.probs, T.tidy(() => T.softmax(model(refs), 1)).toArray(), 0);
  // ood: true with any mode carries the scores: here mode none, with and without an embedder
  const nOod = await dcinPredict(refs, { mode: 'none', model, bank, embedder, ood: true });
  assert.deepEqual(nOod.ood, T.tidy(() => oodScores(bank, { embeddings: normalizeEmbeddings(refs.to('float32').mean([2, 3])), labStats: labStats(refs) })));
  const cOod = await dcinPredict(refs, { mode: 'gris', model, bank, ood: true });
  assert.ok(cOod.ood!.every((o) => o.embedding === null && o.color !== null && o.flagged === false));
  T.dispose([s.probs, own.probs, nOod.probs, cOod.probs]);
  const n = await dcinPredict(x, { mode: 'none', model });
  assertClose(n.probs, T.tidy(() => T.softmax(model(x), 1)).toArray(), 1e-6);
  await assert.rejects(dcinPredict(x, { mode: 'lris', model, bank }), /DCIN mode 'lris' needs an embedder/);
  await assert.rejects(dcinPredict(x, { mode: 'exri', model }), /needs 'exriStats'/);
  T.dispose([bank.histograms, bank.embeddings, bank.labStats, refs, x, g.probs, l.probs, f.probs, fl.probs, a.probs, n.probs]);
});
