/**
 * Prediction columns (DCIN + test-time adaptation): the grammar, and each adapted column
 * against the same computation done by hand with the tta.ts functions: withBnStats equals
 * the model adapted in place by adaBnDomain; 'flip' equals flipTta; 'adabn-image' equals
 * adaBnImage; 'gris+flip' equals flipTta of the GRIS-transferred images. The same ops run
 * on both sides (equal to float32 rounding of the order of the reductions: tolerance 1e-6
 * on probabilities, 0% to 3% used, measured).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, labTransferToStats } from '../../src/color';
import { TinyUnet, Unet } from '../../src/models';
import {
  adaBnDomain, adaBnDomainStats, adaBnImage, bnLayers, columnTitle, domainBnStats, flipTta, needsBank, needsDomainStats, normalizeEmbeddings, parseColumn, parseColumns,
  predictColumns, ReferenceBank, withBnStats,
} from '../../src/dcin';
import { assertClose } from '../helpers/assert';

test('parseColumn: DCIN[+adabn|+adabn-image][+flip]; errors say what is wrong and suggest', () => {
  assert.deepEqual(parseColumn('auto'), { name: 'auto', dcin: 'auto', adapt: null, flip: false });
  assert.deepEqual(parseColumn('flip'), { name: 'flip', dcin: 'none', adapt: null, flip: true });
  assert.deepEqual(parseColumn('adabn'), { name: 'adabn', dcin: 'none', adapt: 'adabn', flip: false });
  assert.deepEqual(parseColumn('auto+adabn-image+flip'), { name: 'auto+adabn-image+flip', dcin: 'auto', adapt: 'adabn-image', flip: true });
  assert.deepEqual(parseColumn('full-robust+adabn'), { name: 'full-robust+adabn', dcin: 'full-robust', adapt: 'adabn', flip: false });
  assert.throws(() => parseColumn('grys'), /column 'grys': unknown DCIN mode 'grys' \(did you mean 'gris'\?\); a column is DCIN\[\+adabn\|\+adabn-image\]\[\+flip\]/);
  assert.throws(() => parseColumn('auto+fl1p'), /unknown part 'fl1p' \(did you mean 'flip'\?\)/);
  assert.throws(() => parseColumn('flip+auto'), /the DCIN mode 'auto' must come first/);
  assert.throws(() => parseColumn('adabn+adabn-image'), /'adabn' and 'adabn-image' together/);
  assert.throws(() => parseColumn('auto+flip+adabn'), /'flip' must come last/);
  assert.throws(() => parseColumn('flip+flip'), /'flip' twice/);
  assert.throws(() => parseColumn(''), /column '': empty/);
  assert.throws(() => parseColumns(['auto', 'none', 'auto']), /column 'auto' is given twice/);
  assert.throws(() => parseColumns(['flip', 'none+flip']), /column 'none\+flip' is given twice/);
  assert.equal(needsBank(parseColumns(['none', 'adabn', 'flip'])), false);
  assert.equal(needsBank(parseColumns(['none', 'lris+flip'])), true);
  assert.equal(needsDomainStats(parseColumns(['auto+adabn-image', 'flip'])), false);
  assert.equal(needsDomainStats(parseColumns(['gris+adabn+flip'])), true);
  assert.equal(columnTitle('auto+adabn+flip'), 'auto + AdaBN + flip TTA');
  assert.equal(columnTitle('adabn-image'), 'AdaBN per image');
  assert.equal(columnTitle('full'), 'GRIS+LRIS');
});

function net(): Unet {
  T.manualSeed(3);
  return new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: [16, 16, 8, 8, 8] }).eval();
}
const toInput = (x: T.Tensor): T.Tensor => T.tidy(() => x.to('float32').div(255));

test('withBnStats(adaBnDomainStats) equals the model adapted in place by adaBnDomain; the model keeps its source statistics', async () => {
  const model = net();
  const forward = (x: T.Tensor): T.Tensor => model.forward(toInput(x));
  const imgs = T.tidy(() => T.rand([3, 3, 64, 64]).mul(255).to('uint8'));
  const batches = (): T.Tensor[] => [imgs.narrow(0, 0, 2), imgs.narrow(0, 2, 1)];
  const source = T.tidy(() => T.noGrad(() => forward(imgs)));
  const live = T.memory().liveTensors;
  const stats = await adaBnDomainStats(model, batches(), { forward, weighting: 'image', disposeBatches: true });
  assert.equal(stats.images, 3);
  assert.equal(stats.batches, 2);
  assert.deepEqual(stats.layers, bnLayers(model).map(([n]) => n));
  const sourceAgain = T.tidy(() => T.noGrad(() => forward(imgs)));
  assertClose(sourceAgain, source.toArray(), 0, 0, 'the model is back to its source statistics');
  const viaStats = withBnStats(model, stats, forward)(imgs);
  const h = await adaBnDomain(model, batches(), { forward, weighting: 'image', disposeBatches: true });
  const inPlace = T.tidy(() => T.noGrad(() => forward(imgs)));
  h.restore();
  assertClose(viaStats, inPlace.toArray(), 1e-6, 1e-6, 'withBnStats == adapted in place');
  const diff = T.tidy(() => viaStats.sub(source).abs().max().item());
  assert.ok(diff > 1e-3, `the adaptation changes the logits (max change ${diff})`);
  T.dispose([viaStats, inPlace, sourceAgain]);
  stats.dispose();
  stats.dispose();
  assert.equal(T.memory().liveTensors, live, 'no leak');
  const other = new TinyUnet(3, 2, [4, 8]);
  const st2 = await adaBnDomainStats(model, [imgs], { forward });
  assert.throws(() => withBnStats(other, st2), /Argument 'stats' passed to 'withBnStats' holds \d+ BatchNorm layers that are not the model's \d+/);
  st2.dispose();
  T.dispose([imgs, source, model, other]);
});

test('predictColumns: each adapted column equals its hand-made composition; OOD scores on every column; no leak', async () => {
  const model = net();
  const forward = (x: T.Tensor): T.Tensor => model.forward(toInput(x));
  T.manualSeed(9);
  const refs = T.tidy(() => T.rand([4, 3, 8, 8]).mul(255).to('uint8'));
  const bank = T.tidy(() => ({
    images: [0, 1, 2, 3].map((i) => ({ path: `r${i}`, sha256: '' })),
    histograms: T.zeros([4, 512]), embeddings: normalizeEmbeddings(refs.to('float32').mean([2, 3])), labStats: labStats(refs),
    gris: { index: 2, path: 'r2', meanDistance: 0 }, embedder: 'mean',
  }) as ReferenceBank);
  const embedder = { id: 'mean', embed: async (x: T.Tensor) => T.tidy(() => normalizeEmbeddings(x.to('float32').mean([2, 3]))), dispose: () => undefined };
  const x = T.tidy(() => T.rand([2, 3, 64, 64]).mul(255).to('uint8'));
  const domainStats = await domainBnStats(model, forward, [x]);
  const live = T.memory().liveTensors;
  const cols = parseColumns(['none', 'flip', 'adabn', 'adabn-image', 'gris+flip', 'adabn+flip', 'auto+adabn-image+flip']);
  const out = await predictColumns(x, cols, { net: model, forward, bank, embedder, domainStats, alpha: 0.5, ood: true });
  assert.deepEqual([...out.keys()], cols.map((c) => c.name));
  const want = T.noGrad(() => T.tidy(() => {
    const adapted = withBnStats(model, domainStats, forward);
    const gris = labTransferToStats(x, bank.labStats.narrow(0, 2, 1));
    return {
      none: T.softmax(forward(x), 1),
      flip: flipTta(forward, x),
      adabn: T.softmax(adapted(x), 1),
      'adabn-image': T.softmax(adaBnImage(model, x, 0.5, { forward }), 1),
      'gris+flip': flipTta(forward, gris),
      'adabn+flip': flipTta(adapted, x),
    } as Record<string, T.Tensor>;
  }));
  for (const [name, t] of Object.entries(want)) assertClose(out.get(name)!.probs, t.toArray(), 1e-6, 1e-6, name);
  const auto = out.get('auto+adabn-image+flip')!;
  assert.equal(auto.auto?.rule, 'ood-gate+agreement');
  T.tidy(() => assertClose(auto.probs.sum(1), new Array(2 * 64 * 64).fill(1), 1e-5, 0, 'auto+adabn-image+flip gives probabilities'));
  for (const [name, r] of out) assert.equal(r.ood?.length, 2, `${name} carries the OOD scores`);
  T.dispose([...Object.values(want), ...[...out.values()].map((r) => r.probs)]);
  assert.equal(T.memory().liveTensors, live, 'no leak');
  await assert.rejects(predictColumns(x, parseColumns(['adabn']), { net: model, forward }), /column 'adabn' needs the domain's BatchNorm statistics/);
  assert.equal(T.memory().liveTensors, live, 'no leak after an error');
  domainStats.dispose();
  T.dispose([x, refs, bank.histograms, bank.embeddings, bank.labStats, model]);
});
