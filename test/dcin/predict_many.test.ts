/**
 * Batched predictions against single ones (the same ops per image): equal, 0% of the 1e-6
 * tolerance (measured, also on 1 and 4 threads).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats } from '../../src/color';
import { dcinPredict, dcinPredictMany, DcinMode, Embedder, normalizeEmbeddings, ReferenceBank } from '../../src/dcin';
import { assertClose } from '../helpers/assert';

const W = [[0.03, -0.02, 0.01], [-0.01, 0.02, 0.0], [0.0, -0.01, 0.025]];
let calls = 0;
function model(x: T.Tensor): T.Tensor {
  calls++;
  return T.tidy(() => T.einsum('kc,nchw->nkhw', T.tensor(W), x.to('float32')));
}
const embedder: Embedder = {
  id: 'mean',
  embed: async (x) => T.tidy(() => normalizeEmbeddings(x.to('float32').mean([2, 3]))),
  dispose: () => undefined,
};

test('dcinPredictMany gives each column exactly what dcinPredict gives, with fewer forward passes', async () => {
  T.manualSeed(5);
  const bank = T.tidy(() => {
    const refs = T.rand([4, 3, 6, 6]).mul(255).to('uint8');
    return {
      images: [0, 1, 2, 3].map((i) => ({ path: `r${i}`, sha256: '' })),
      histograms: T.zeros([4, 512]), embeddings: normalizeEmbeddings(refs.to('float32').mean([2, 3])), labStats: labStats(refs),
      gris: { index: 1, path: 'r1', meanDistance: 0 }, embedder: 'mean',
    } as ReferenceBank;
  });
  const x = T.tidy(() => T.rand([3, 3, 5, 7]).mul(255).to('uint8'));
  // a white patch: specular pixels, so the robust column differs from full
  const exriStats = T.tidy(() => labStats(T.rand([1, 3, 6, 6]).mul(255).to('uint8')).select(0, 0));
  const before = T.memory().liveTensors;
  const cols: DcinMode[] = ['none', 'exri', 'gris', 'lris', 'full', 'full-robust', 'auto', 'auto-entropy'];
  calls = 0;
  const many = await dcinPredictMany(x, cols, { model, bank, embedder, exriStats });
  assert.equal(calls, 8, "none, exri, gris, lris, the two robust inputs and auto's lris-2 and lris-3 (every image counts as outside: the bank has no calibration): one forward each");
  T.dispose([...many.values()].map((r) => r.probs));
  assert.equal(T.memory().liveTensors, before, 'dcinPredictMany leaks nothing');
  const again = await dcinPredictMany(x, cols, { model, bank, embedder, exriStats });
  for (const c of cols) {
    const single = await dcinPredict(x, c === 'full-robust'
      ? { mode: 'full', model, bank, embedder, exriStats, transfer: { excludeSpecular: true } }
      : { mode: c, model, bank, embedder, exriStats });
    assertClose(again.get(c)!.probs, single.probs.toArray(), 1e-6, 0, c);
    assert.deepEqual(again.get(c)!.auto, single.auto, `${c}: the same choices from the same figures`);
    const plain = await dcinPredict(x, { mode: 'none', model, bank, embedder, ood: true });
    assert.deepEqual(again.get(c)!.ood, plain.ood, `${c}: every column carries the OOD scores (auto asks for them)`);
    plain.probs.dispose();
    single.probs.dispose();
  }
  T.dispose([...again.values()].map((r) => r.probs));
  T.dispose([x, exriStats, bank.histograms, bank.embeddings, bank.labStats]);
});
