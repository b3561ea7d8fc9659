/**
 * Predictions against the composition they are made of (the same ops in the same order):
 * equal, 0% of the 1e-6 tolerance (measured, also on 1 and 4 threads).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, labTransferToStats } from '../../src/color';
import { dcinPredict, Embedder, ensemble, normalizeEmbeddings, ReferenceBank } from '../../src/dcin';
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
  // auto picks, per image, the candidate of lowest mean entropy
  const a = await dcinPredict(x, { mode: 'auto', model, bank, embedder });
  assert.equal(a.auto!.choice.length, 3);
  for (let i = 0; i < 3; i++) {
    const e = a.auto!.entropies.map((c) => c[i]);
    assert.equal(a.auto!.choice[i], ['none', 'gris', 'lris', 'full'][e.indexOf(Math.min(...e))]);
  }
  const n = await dcinPredict(x, { mode: 'none', model });
  assertClose(n.probs, T.tidy(() => T.softmax(model(x), 1)).toArray(), 1e-6);
  await assert.rejects(dcinPredict(x, { mode: 'lris', model, bank }), /DCIN mode 'lris' needs an embedder/);
  await assert.rejects(dcinPredict(x, { mode: 'exri', model }), /needs 'exriStats'/);
  T.dispose([bank.histograms, bank.embeddings, bank.labStats, refs, x, g.probs, l.probs, f.probs, fl.probs, a.probs, n.probs]);
});
