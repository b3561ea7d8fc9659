/**
 * OOD distances against brute force in float64 (JS), calibration and flags on a small
 * bank of textured disc images, old (version 1) banks.
 * Tolerances: embedding distances come from a float32 matrix product of unit vectors of
 * width 6: error <= D u |q||b| = 6 * 6e-8 (Higham's bound), so 1e-6; color distances are
 * float64 throughout (1e-9, measured 1e-14).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, releaseColorTables } from '../../src/color';
import {
  BANK_FORMAT, buildBank, calibrateOod, colorDistance, colorStandardisation, disposeBank, Embedder, embeddingDistance, embeddingResolution,
  loadBank, OOD_METHOD, oodReport, oodScores, quantile, ReferenceBank, saveBank,
} from '../../src/dcin';
import { writeSafetensors } from '../../src/nn/safetensors';
import { assertClose } from '../helpers/assert';

/** Mean and std of each RGB channel, normalised: an embedder that sees color and contrast. */
const statsEmbedder: Embedder = {
  id: 'rgb-stats:v1',
  embed: async (x: T.Tensor) => T.tidy(() => {
    const f = x.to('float32').div(255);
    const feat = T.cat([f.mean([2, 3]), T.std(f, [2, 3]), T.ones([x.shape[0], 1]).mul(0.5)], 1);
    return feat.div(feat.square().sum(1, { keepdim: true }).sqrt());
  }),
  dispose: () => undefined,
};

/** uint8 (H, W, 3) textured discs like an endoscope's view: reddish disc on a dark background, jittered. */
function disc(i: number, size = 24): T.Tensor {
  return T.tidy(() => {
    T.manualSeed(100 + i);
    const ys = T.arange(size).reshape([size, 1]);
    const xs = T.arange(size).reshape([1, size]);
    const r = size * (0.25 + 0.03 * (i % 4));
    const inside = ys.sub(size / 2 + (i % 3) - 1).square().add(xs.sub(size / 2 - (i % 5) + 2).square()).lt(r * r);
    const j = (i % 7) * 3;
    const fg = T.tensor([190 + j, 70 - j / 2, 60], [1, 1, 3]);
    const bg = T.tensor([45, 30 + j / 3, 35], [1, 1, 3]);
    return T.where(inside.unsqueeze(2), fg, bg).add(T.rand([size, size, 3]).mul(30)).clamp(0, 255).to('uint8');
  });
}

async function discBank(n: number): Promise<{ bank: ReferenceBank; images: T.Tensor[]; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-ood-'));
  const images = Array.from({ length: n }, (_, i) => disc(i));
  const paths = images.map((_, i) => path.join(dir, `d${i}.raw`));
  paths.forEach((p) => fs.writeFileSync(p, p));
  const bank = await buildBank(paths, async (p) => images[paths.indexOf(p)].clone(), statsEmbedder);
  return { bank, images, dir };
}

const nchw = (img: T.Tensor): T.Tensor => T.tidy(() => img.permute([2, 0, 1]).unsqueeze(0).contiguous());

async function scoreOf(bank: ReferenceBank, img: T.Tensor): Promise<ReturnType<typeof oodScores>[0]> {
  const x = nchw(img);
  const q = await statsEmbedder.embed(x);
  const st = labStats(x);
  try {
    return oodScores(bank, { embeddings: q, labStats: st })[0];
  } finally {
    T.dispose([x, q, st]);
  }
}

test('quantile: linear interpolation between order statistics (NumPy default)', () => {
  assert.equal(quantile([4, 1, 3, 2], 0.99), 3 + 0.97);
  assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
  assert.equal(quantile([7], 0.3), 7);
  assert.equal(quantile([1, 2], 1), 2);
  assert.throws(() => quantile([1], 1.5), /'q' passed to 'quantile' must be in 0\.\.1/);
});

test('embedding and color k-NN distances equal brute force, leave-one-out included', () => {
  T.manualSeed(3);
  const [emb, stats, q] = T.tidy(() => {
    const e = T.randn([9, 6]);
    const qq = T.randn([4, 6]);
    const n = (x: T.Tensor): T.Tensor => x.div(x.square().sum(1, { keepdim: true }).sqrt());
    return [T.keep(n(e)), T.keep(T.rand([9, 3, 2]).mul(60).add(T.tensor([0, 5], [1, 1, 2]))), T.keep(n(qq))];
  });
  const E = emb.toArray() as number[];
  const Q = q.toArray() as number[];
  const cos = (a: number[], ai: number, b: number[], bi: number): number => {
    let s = 0;
    for (let d = 0; d < 6; d++) s += a[ai * 6 + d] * b[bi * 6 + d];
    return s;
  };
  const knn = (vals: number[], k: number, largest: boolean): number => {
    const v = [...vals].sort((x, y) => (largest ? y - x : x - y)).slice(0, k);
    return v.reduce((a, b) => a + b, 0) / k;
  };
  const wantQ = Array.from({ length: 4 }, (_, i) => 1 - knn(Array.from({ length: 9 }, (_, j) => cos(Q, i, E, j)), 3, true));
  assertClose(embeddingDistance(q, emb, 3), wantQ, 1e-6, 0, 'queries');
  const wantL = Array.from({ length: 9 }, (_, i) => 1 - knn(Array.from({ length: 9 }, (_, j) => cos(E, i, E, j)).filter((_, j) => j !== i), 3, true));
  assertClose(embeddingDistance(emb, emb, 3, true), wantL, 1e-6, 0, 'leave-one-out');

  const std = colorStandardisation(stats);
  const S = stats.toArray() as number[];
  const feat = (i: number): number[] => [0, 1, 2].map((c) => S[i * 6 + c * 2]).concat([0, 1, 2].map((c) => S[i * 6 + c * 2 + 1])).map((v, d) => (v - std.mean[d]) / std.scale[d]);
  const dist = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, v, d) => s + (v - b[d]) ** 2, 0));
  const wantC = Array.from({ length: 9 }, (_, i) => knn(Array.from({ length: 9 }, (_, j) => dist(feat(i), feat(j))).filter((_, j) => j !== i), 2, false));
  assertClose(colorDistance(stats, stats, std, 2, true), wantC, 1e-9, 0, 'color leave-one-out');
  assert.throws(() => embeddingDistance(q, emb.narrow(1, 0, 5)), /embeddings of one width/);
  assert.throws(() => colorDistance(emb, stats, std), /'queryStats' passed to 'colorDistance' must be \(N, 3, 2\)/);
  T.dispose([emb, stats, q]);
});

test('calibration: training images and near copies pass, a constant image and inverted colors are flagged; no leaks', async () => {
  const { bank, images, dir } = await discBank(12);
  releaseColorTables();
  const before = T.memory().liveTensors;
  const cal = bank.ood!;
  assert.equal(cal.method, OOD_METHOD);
  assert.equal(cal.k, 3);
  assert.equal(cal.quantile, 0.99);
  assert.equal(cal.images, 12);
  assert.ok(cal.embedding.threshold > 0 && cal.embedding.threshold <= cal.embedding.max && cal.embedding.median <= cal.embedding.threshold);
  assert.ok(cal.color.threshold > 0 && cal.color.scale.every((s) => s >= 1));
  for (let i = 0; i < images.length; i++) {
    const s = await scoreOf(bank, images[i]);
    assert.equal(s.flagged, false, `training image ${i}: ${JSON.stringify(s)}`);
    const near = T.tidy(() => images[i].to('float32').add(T.rand(images[i].shape).mul(4).sub(2)).clamp(0, 255).to('uint8'));
    const sn = await scoreOf(bank, near);
    near.dispose();
    assert.equal(sn.flagged, false, `near copy of ${i}: ${JSON.stringify(sn)}`);
  }
  const gray = T.full([24, 24, 3], 128, { dtype: 'uint8' });
  const inverted = T.tidy(() => T.full([24, 24, 3], 255).sub(images[0].to('float32')).to('uint8'));
  for (const [name, img] of [['constant gray', gray], ['inverted colors', inverted]] as const) {
    const s = await scoreOf(bank, img);
    assert.equal(s.flagged, true, `${name}: ${JSON.stringify(s)}`);
    assert.ok(s.distance! > 1);
  }
  T.dispose([gray, inverted]);
  releaseColorTables();
  assert.equal(T.memory().liveTensors, before, 'no tensor leaks');
  T.dispose(images);
  disposeBank(bank);
  fs.rmSync(dir, { recursive: true });
});

test('without calibration: raw distances, no flag; without embeddings: color decides; the JSON form says so', async () => {
  const { bank, images, dir } = await discBank(5);
  const raw: ReferenceBank = { ...bank, ood: undefined };
  const x = nchw(images[1]);
  const st = labStats(x);
  const [s] = oodScores(raw, { labStats: st });
  assert.equal(s.distance, null);
  assert.equal(s.flagged, null);
  assert.equal(s.embedding, null);
  assert.ok(s.color !== null && s.color >= 0);
  const j = oodReport(s, undefined);
  assert.equal(j.threshold, null);
  assert.match(j.note!, /no OOD calibration/);
  assert.match(j.note!, /embedding distance not computed/);
  const [c] = oodScores(bank, { labStats: st });
  assert.equal(c.flagged, false);
  assert.equal(c.distance, c.color! / bank.ood!.color.threshold);
  assert.match(oodReport(undefined, undefined).note!, /no reference bank/);
  assert.equal(calibrateOod({ embeddings: bank.embeddings.narrow(0, 0, 1), labStats: bank.labStats.narrow(0, 0, 1) }), undefined, 'one image: nothing to calibrate against');
  // an encoder mapping every image to one direction (untrained): the threshold is the float32 resolution, not rounding noise
  const same = T.tidy(() => bank.embeddings.narrow(0, 0, 1).expand([5, bank.embeddings.shape[1]]).contiguous());
  const flat = calibrateOod({ embeddings: same, labStats: bank.labStats })!;
  assert.equal(flat.embedding.threshold, embeddingResolution(bank.embeddings.shape[1]));
  assert.ok(flat.embedding.max < flat.embedding.threshold);
  same.dispose();
  T.dispose([x, st, ...images]);
  disposeBank(bank);
  fs.rmSync(dir, { recursive: true });
});

test('the calibration is stored in the bank (version 2) and reloaded; a version 1 bank still loads, without it; a damaged one is refused', async () => {
  const { bank, images, dir } = await discBank(4);
  const file = path.join(dir, 'bank.safetensors');
  saveBank(bank, file);
  const back = loadBank(file, { verify: 'none' });
  assert.deepEqual(back.ood, bank.ood);
  disposeBank(back);
  // a bank as cqseg wrote it before OOD calibration: version 1, no 'ood' metadata
  const v1 = path.join(dir, 'v1.safetensors');
  writeSafetensors(v1, [['histograms', bank.histograms], ['embeddings', bank.embeddings], ['lab_stats', bank.labStats]], {
    format: BANK_FORMAT, version: '1', images: JSON.stringify(bank.images), gris: JSON.stringify(bank.gris), embedder: bank.embedder,
  });
  const old = loadBank(v1, { verify: 'none', embedder: statsEmbedder });
  assert.equal(old.ood, undefined);
  assert.equal(old.images.length, 4);
  const [s] = oodScores(old, { embeddings: old.embeddings.narrow(0, 0, 1), labStats: old.labStats.narrow(0, 0, 1) });
  assert.equal(s.flagged, null);
  assert.ok(s.embedding !== null && s.color !== null);
  disposeBank(old);
  const bad = path.join(dir, 'bad.safetensors');
  saveBank({ ...bank, ood: { ...bank.ood!, images: 7 } }, bad);
  assert.throws(() => loadBank(bad, { verify: 'none' }), /bad\.safetensors: the OOD calibration \(metadata 'ood'\) was calibrated on 7 images, the bank holds 4/);
  const v9 = path.join(dir, 'v9.safetensors');
  writeSafetensors(v9, [['histograms', bank.histograms], ['embeddings', bank.embeddings], ['lab_stats', bank.labStats]], {
    format: BANK_FORMAT, version: '9', images: JSON.stringify(bank.images), gris: JSON.stringify(bank.gris), embedder: bank.embedder,
  });
  assert.throws(() => loadBank(v9, { verify: 'none' }), /bank version 9 is not supported \(expected 1 or 2\)/);
  T.dispose(images);
  disposeBank(bank);
  fs.rmSync(dir, { recursive: true });
});
