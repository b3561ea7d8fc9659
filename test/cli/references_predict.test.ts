import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { decodeMask, readImage, writeImage } from '../../src/data';
import { BANK_FORMAT, disposeBank, loadBank, ReferenceBank } from '../../src/dcin';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors';
import { disposePrediction, encoderEmbedder, ImagePrediction, openBank, openSession, overlay, predictImage, Session } from '../../src/dcin/session';
import * as T from '../../src/tensor';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { assertClose } from '../helpers/assert';
import { cli } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-cli-refs-'));
let data = '';
let runA = '';
let runB = '';
let bankA = '';
let odd = ''; // a non-square image of odd size, 45 x 71
const [OH, OW] = [45, 71];

async function trainRun(seed: number): Promise<string> {
  const out = path.join(root, `run${seed}`);
  await train(resolveConfig({ data, out, encoder: 'efficientnet-test', size: [64, 64], epochs: 1, maxStepsPerEpoch: 2, valFraction: 0, threads: 1, seed }), { progress: false });
  return out;
}

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  runA = await trainRun(0);
  runB = await trainRun(1);
  bankA = path.join(root, 'bankA.safetensors');
  odd = path.join(root, 'inputs', 'odd.png');
  const img = T.tidy(() => T.rand([OH, OW, 3]).mul(255).to('uint8'));
  await writeImage(odd, img);
  img.dispose();
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

test('references writes a bank with paths, hashes, histograms, embeddings, GRIS and the run-tied embedder id', async () => {
  const r = await cli(['references', '--data', data, '--model', runA, '--out', bankA]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /references 100% 4\/4/, 'progress bar');
  assert.match(r.out, /wrote .*bankA\.safetensors: 4 images, GRIS s00\d\.png/);
  assert.match(r.out, /OOD thresholds: embedding \d\S*, color \d\S* \(99th percentile of the leave-one-out 3-NN distances of the 4 training images/);
  const bank = loadBank(bankA);
  try {
    assert.equal(bank.ood?.images, 4, 'the OOD calibration is stored with the bank');
    assert.equal(bank.images.length, 4);
    assert.ok(bank.images.every((im) => /^[0-9a-f]{64}$/.test(im.sha256) && fs.existsSync(im.path)));
    assert.deepEqual(bank.histograms.shape, [4, 512]);
    assert.equal(bank.embeddings.shape[0], 4);
    assert.deepEqual(bank.labStats.shape, [4, 3, 2]);
    assert.ok(bank.gris.index >= 0 && bank.gris.index < 4);
    const s = openSession(runA);
    try {
      assert.equal(bank.embedder, encoderEmbedder(s.model, s.info, s.weightsSha256).id);
      assert.match(bank.embedder, new RegExp(`^encoder:${s.weightsSha256.slice(0, 16)}\\|`));
    } finally {
      s.dispose();
    }
  } finally {
    disposeBank(bank);
  }
});

test('predict writes mask, overlay and JSON at the original size of a non-square odd-sized image, for every mode', async () => {
  const exri = path.join(data, 'images', 's001.png');
  for (const mode of ['none', 'exri', 'gris', 'lris', 'full', 'auto']) {
    const out = path.join(root, `pred-${mode}`);
    const extra = mode === 'exri' ? ['--exri', exri] : mode === 'none' ? [] : ['--refs', bankA];
    const r = await cli(['predict', '--model', runA, '--dcin', mode, ...extra, odd, '--out', out, '--quiet']);
    assert.equal(r.code, 0, `${mode}: ${r.err}`);
    const mask = await sharp(path.join(out, 'odd_mask.png')).metadata();
    assert.deepEqual([mask.height, mask.width, mask.channels], [OH, OW, 1], `${mode}: mask is single-channel at the original size`);
    const ov = await sharp(path.join(out, 'odd_overlay.png')).metadata();
    assert.deepEqual([ov.height, ov.width, ov.channels], [OH, OW, 3]);
    const j = JSON.parse(fs.readFileSync(path.join(out, 'odd.json'), 'utf8'));
    assert.equal(j.input, path.resolve(odd));
    assert.deepEqual(j.size, { height: OH, width: OW });
    assert.equal(j.dcin.mode, mode);
    assert.equal(j.classes.length, 2);
    assert.equal(j.classes[0].pixels + j.classes[1].pixels, OH * OW);
    assertClose([j.classes[0].fraction + j.classes[1].fraction], [1], 1e-9);
    assert.ok(j.confidence >= 0.5 && j.confidence <= 1, `confidence ${j.confidence}`);
    if (mode === 'gris' || mode === 'full' || mode === 'auto') assert.ok(j.references.gris.path.startsWith(data), JSON.stringify(j.references));
    if (mode === 'lris' || mode === 'full' || mode === 'auto') assert.ok(j.references.lris.path.startsWith(data), JSON.stringify(j.references));
    if (mode === 'auto') assert.ok(['none', 'gris', 'lris', 'full'].includes(j.references.auto.choice));
    if (mode === 'exri') assert.equal(j.dcin.exri, path.resolve(exri));
    // the mask agrees with the JSON's areas
    const m = await readMaskValues(path.join(out, 'odd_mask.png'));
    assert.equal(m.filter((v) => v === 1).length, j.classes[1].pixels);
  }
  const leftovers = fs.readdirSync(path.join(root, 'pred-full')).filter((f) => f.includes('.tmp'));
  assert.deepEqual(leftovers, [], 'no temp files left');
});

test('predict with test-time adaptation: adabn over all the images given, adabn-image, flip, and with DCIN; the JSON says what ran', async () => {
  const images = path.join(data, 'images');
  for (const [col, extra] of [['adabn', []], ['adabn-image', ['--alpha', '0.3']], ['flip', []], ['auto+adabn+flip', ['--refs', bankA]]] as [string, string[]][]) {
    const out = path.join(root, `pred-tta-${col}`);
    const r = await cli(['predict', '--model', runA, '--dcin', col, ...extra, images, '--out', out, '--quiet']);
    assert.equal(r.code, 0, `${col}: ${r.err}`);
    assert.match(r.out, new RegExp(`wrote 4 prediction\\(s\\) \\(${col.replace(/\+/g, '\\+')}\\)`));
    const j = JSON.parse(fs.readFileSync(path.join(out, 's001.json'), 'utf8'));
    assert.equal(j.tta.column, col);
    assert.equal(j.dcin.mode, col.startsWith('auto') ? 'auto' : 'none');
    if (col.includes('adabn-image')) assert.equal(j.tta.alpha, 0.3);
    else if (col.includes('adabn')) assert.equal(j.tta.adabnImages, 4, 'statistics over all 4 images given');
    if (col.endsWith('flip')) assert.deepEqual(j.tta.flips, ['none', 'h']);
    if (col.startsWith('auto')) assert.ok(j.references.auto.choice);
    assert.equal(j.classes[0].pixels + j.classes[1].pixels, 64 * 64);
  }
  const r = await cli(['predict', '--model', runA, '--dcin', 'auto+adabn', images, '--out', path.join(root, 'x')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dcin auto\+adabn needs --refs BANK/);
});

async function readMaskValues(file: string): Promise<number[]> {
  const m = await decodeMask(file);
  assert.equal(m.channels, 1);
  return Array.from(m.data);
}

test('full DCIN equals the mean of the GRIS and LRIS probabilities (softmax), and the CLI reports the same confidence', async () => {
  const before0 = T.memory().liveTensors;
  const s = openSession(runA);
  const emb = encoderEmbedder(s.model, s.info, s.weightsSha256);
  const bank = openBank(bankA, { embedder: emb });
  const img = await readImage(odd);
  try {
    const g = await predictImage(s, img, { mode: 'gris', bank, embedder: emb });
    const l = await predictImage(s, img, { mode: 'lris', bank, embedder: emb });
    const f = await predictImage(s, img, { mode: 'full', bank, embedder: emb });
    const lg = await predictImage(s, img, { mode: 'full', bank, embedder: emb, ensemble: 'logits' });
    const mean = T.tidy(() => g.probs.add(l.probs).div(2));
    assertClose(f.probs, mean.toArray(), 1e-6, 0, 'full vs mean(gris, lris)');
    assert.deepEqual(f.labels.shape, [OH, OW]);
    assert.equal(f.labels.dtype, 'uint8');
    assert.deepEqual(f.summary.references.gris, g.summary.references.gris);
    assert.deepEqual(f.summary.references.lris, l.summary.references.lris);
    const j = JSON.parse(fs.readFileSync(path.join(root, 'pred-full', 'odd.json'), 'utf8'));
    assertClose([j.confidence], [f.summary.confidence], 1e-9, 0, 'CLI confidence');
    const want = T.tidy(() => T.argmax(T.interpolate(f.probs, { size: [OH, OW], mode: 'bilinear', alignCorners: false }), 1).select(0, 0).to('uint8'));
    assert.deepEqual(f.labels.toArray(), want.toArray(), 'mask = argmax of the bilinearly resized probabilities');
    want.dispose();
    assert.deepEqual(lg.probs.shape, f.probs.shape);
    assertClose(T.tidy(() => lg.probs.sum(1).reshape([-1]).toArray()), new Array(64 * 64).fill(1), 1e-5, 0, 'logits ensemble sums to 1');
    T.dispose(mean);
    for (const p of [g, l, f, lg]) disposePrediction(p);
  } finally {
    img.dispose();
    disposeBank(bank);
    s.dispose();
  }
  assert.equal(T.memory().liveTensors, before0, 'no tensor leaks');
});

test('predict JSON carries the OOD distance and flag for every mode with --refs; a far image gets a warning, a training image none; old banks and no bank say why there is no flag', async () => {
  const far = path.join(root, 'ood-inputs', 'gray.png');
  const gray = T.full([64, 64, 3], 128, { dtype: 'uint8' });
  await writeImage(far, gray);
  gray.dispose();
  const own = path.join(data, 'images', 's000.png');
  for (const mode of ['none', 'gris', 'auto']) {
    const out = path.join(root, `pred-ood-${mode}`);
    const r = await cli(['predict', '--model', runA, '--refs', bankA, '--dcin', mode, own, far, '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.err);
    const inside = JSON.parse(fs.readFileSync(path.join(out, 's000.json'), 'utf8'));
    assert.equal(inside.ood.flagged, false, `${mode}: a training image is inside: ${JSON.stringify(inside.ood)}`);
    assert.ok(inside.ood.distance >= 0 && inside.ood.distance <= 1 && inside.ood.threshold === 1);
    assert.ok(inside.ood.embedding.distance >= 0 && inside.ood.embedding.threshold > 0 && inside.ood.color.threshold > 0);
    assert.match(inside.ood.calibration, /99th percentile .* 4 training images/);
    const outside = JSON.parse(fs.readFileSync(path.join(out, 'gray.json'), 'utf8'));
    assert.equal(outside.ood.flagged, true, `${mode}: a constant gray image is outside: ${JSON.stringify(outside.ood)}`);
    assert.ok(outside.ood.distance > 1);
    assert.ok(r.err.includes(`warning: ${far} is out of the training distribution (distance `), r.err);
    assert.ok(!r.err.includes(`warning: ${own}`), r.err);
    if (mode === 'auto') {
      assert.deepEqual([inside.references.auto.choice, inside.references.auto.reason], ['none', 'in distribution']);
      assert.equal(outside.references.auto.reason, 'agreement');
    }
  }
  // without a bank: no distance, a note
  let out = path.join(root, 'pred-ood-nobank');
  let r = await cli(['predict', '--model', runA, '--dcin', 'none', far, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.err);
  let j = JSON.parse(fs.readFileSync(path.join(out, 'gray.json'), 'utf8'));
  assert.deepEqual([j.ood.distance, j.ood.flagged], [null, null]);
  assert.match(j.ood.note, /no reference bank/);
  // a bank written before OOD calibration (version 1): raw distances, no flag, a note in the JSON and on stderr
  const v1 = path.join(root, 'bank-v1.safetensors');
  const { tensors, metadata } = readSafetensors(bankA);
  const { ood: _ood, ...rest } = metadata;
  writeSafetensors(v1, [...tensors.entries()], { ...rest, format: BANK_FORMAT, version: '1' });
  T.dispose([...tensors.values()]);
  out = path.join(root, 'pred-ood-v1');
  r = await cli(['predict', '--model', runA, '--refs', v1, '--dcin', 'full', far, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.err);
  j = JSON.parse(fs.readFileSync(path.join(out, 'gray.json'), 'utf8'));
  assert.deepEqual([j.ood.distance, j.ood.flagged, j.ood.threshold], [null, null, null]);
  assert.ok(j.ood.embedding.distance >= 0 && j.ood.color.distance > 0, 'raw distances reported');
  assert.match(j.ood.note, /no OOD calibration \(bank version 1\)/);
  assert.match(r.err, /note: .*bank-v1\.safetensors: the bank has no OOD calibration/);
  assert.ok(!r.err.includes('warning:'), r.err);
});

test('--robust-foreground leaves the foreground of a first prediction without DCIN out of the statistics', async () => {
  const out = path.join(root, 'pred-robust');
  const r = await cli(['predict', '--model', runA, '--refs', bankA, '--dcin', 'full', '--robust-foreground', odd, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(fs.readFileSync(path.join(out, 'odd.json'), 'utf8'));
  assert.equal(j.dcin.robust, true);
  assert.equal(j.dcin.robustForeground, true);
  // the same through the session: the foreground of a first prediction without DCIN is left out
  await withSession(async (s, bank, keep) => {
    const img = keep(await readImage(odd));
    const none = keep(await predictImage(s, img, { mode: 'none' }));
    const fg = T.tidy(() => T.argmax(none.probs, 1).gt(0).to('float32').mean().item());
    const robust = keep(await predictImage(s, img, { mode: 'gris', bank, robust: true }));
    const fore = keep(await predictImage(s, img, { mode: 'gris', bank, robustForeground: true }));
    const diff = T.tidy(() => robust.probs.sub(fore.probs).abs().max().item());
    if (fg > 0.01 && fg < 0.99) assert.ok(diff > 1e-6, `foreground ${fg} left out: predictions differ (${diff})`);
    else assert.ok(diff < 1e-7, `foreground ${fg}: nothing (or too much) to leave out, same prediction (${diff})`);
  });
});

/** Opens run A and bank A; everything handed to `keep` is freed afterwards, pass or fail. */
async function withSession(fn: (s: Session, bank: ReferenceBank, keep: <V extends T.Tensor | ImagePrediction>(v: V) => V) => Promise<void>): Promise<void> {
  const s = openSession(runA);
  const bank = openBank(bankA, { verify: 'none' });
  const kept: (T.Tensor | ImagePrediction)[] = [];
  try {
    await fn(s, bank, (v) => (kept.push(v), v));
  } finally {
    for (const v of kept) (v instanceof T.Tensor ? v.dispose() : disposePrediction(v));
    disposeBank(bank);
    s.dispose();
  }
}

test('--robust leaves specular highlights out of the statistics: a white patch no longer shifts the transfer', async () => {
  await withSession(async (s, bank, keep) => {
    const img = keep(T.tidy(() => {
      const base = T.rand([OH, OW, 3]).mul(60).add(60);
      const top = T.arange(OH).reshape([OH, 1, 1]).lt(15).expand([OH, OW, 3]); // rows 0..14: specular white
      return T.where(top, T.full([OH, OW, 3], 250), base).to('uint8');
    }));
    const plain = keep(await predictImage(s, img, { mode: 'gris', bank }));
    const robust = keep(await predictImage(s, img, { mode: 'gris', bank, robust: true }));
    const diff = T.tidy(() => plain.probs.sub(robust.probs).abs().max().item());
    assert.ok(diff > 1e-4, `robust statistics change the prediction (max diff ${diff})`);
  });
});

test('overlay blends classes > 0 with their color and leaves the background untouched', () => {
  const img = T.tensor([10, 20, 30, 100, 100, 100], [1, 2, 3], { dtype: 'uint8' });
  const lab = T.tensor([0, 1], [1, 2], { dtype: 'uint8' });
  const o = overlay(img, lab, [[0, 0, 0], [200, 0, 50]]);
  assert.deepEqual(o.toArray(), [10, 20, 30, 150, 50, 75]);
  T.dispose([img, lab, o]);
});

test('IMAGES may be a folder or a .txt list', async () => {
  const list = path.join(root, 'list.txt');
  fs.writeFileSync(list, `${path.join(data, 'images', 's000.png')}\n# comment\n`);
  const out = path.join(root, 'pred-list');
  const live = T.memory().liveTensors;
  const r = await cli(['predict', '--model', runA, '--refs', bankA, '--dcin', 'full', list, path.join(root, 'inputs'), '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.err);
  assert.equal(T.memory().liveTensors, live, 'the command frees its tensors (model, bank, predictions)');
  for (const f of ['s000_mask.png', 's000.json', 'odd_mask.png', 'odd_overlay.png']) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.match(r.out, /wrote 2 prediction/);
});

test('a bank built with another model is refused, naming the bank', async () => {
  const r = await cli(['predict', '--model', runB, '--refs', bankA, '--dcin', 'lris', odd, '--out', path.join(root, 'pred-other'), '--quiet']);
  assert.equal(r.code, 1);
  assert.match(r.err, /bankA\.safetensors: stale bank: built with embedder encoder:[0-9a-f]{16}.*another model/);
  assert.ok(!fs.existsSync(path.join(root, 'pred-other', 'odd_mask.png')));
});

test('an ONNX embedder: the bank records it, and predict needs the same --embedder onnx:FILE for LRIS', async () => {
  const onnx = path.resolve(__dirname, '..', '..', '..', 'test', 'golden', 'tiny_embedder.onnx');
  const bank = path.join(root, 'bank-onnx.safetensors');
  let r = await cli(['references', '--data', data, '--model', runA, '--embedder', `onnx:${onnx}`, '--out', bank, '--quiet']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /embedder onnx:[0-9a-f]{64}/);
  const out = path.join(root, 'pred-onnx');
  r = await cli(['predict', '--model', runA, '--refs', bank, '--dcin', 'lris', odd, '--out', out, '--quiet']);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`${bank} was built with an ONNX embedder: pass --embedder onnx:FILE`), r.err);
  r = await cli(['predict', '--model', runA, '--refs', bank, '--dcin', 'lris', '--embedder', 'encoder', odd, '--out', out, '--quiet']);
  assert.equal(r.code, 1);
  assert.match(r.err, /stale bank: built with embedder onnx:/);
  r = await cli(['predict', '--model', runA, '--refs', bank, '--dcin', 'full', '--embedder', `onnx:${onnx}`, odd, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(path.join(out, 'odd_mask.png')));
});

test('a bank whose image changed is refused, naming the image', async () => {
  const copy = path.join(root, 'data-copy');
  fs.cpSync(data, copy, { recursive: true });
  const bank = path.join(root, 'bank-copy.safetensors');
  assert.equal((await cli(['references', '--data', copy, '--model', runA, '--out', bank, '--quiet'])).code, 0);
  const victim = path.join(copy, 'images', 's002.png');
  const img = T.tidy(() => T.full([64, 64, 3], 128, { dtype: 'uint8' }));
  await writeImage(victim, img);
  img.dispose();
  const r = await cli(['predict', '--model', runA, '--refs', bank, '--dcin', 'gris', odd, '--out', path.join(root, 'pred-stale'), '--quiet']);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`reference image ${victim} changed`), r.err);
  fs.rmSync(victim);
  const r2 = await cli(['predict', '--model', runA, '--refs', bank, '--dcin', 'full', odd, '--out', path.join(root, 'pred-stale'), '--quiet']);
  assert.equal(r2.code, 1);
  assert.ok(r2.err.includes(`reference image ${victim} no longer exists`), r2.err);
});

test('every error is a clear message naming the file, with a non-zero exit', async () => {
  const out = path.join(root, 'pred-err');
  const missingRun = path.join(root, 'no-such-run');
  let r = await cli(['predict', '--model', missingRun, '--dcin', 'none', odd, '--out', out]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(missingRun), r.err);

  const missingBank = path.join(root, 'no-such-bank.safetensors');
  r = await cli(['predict', '--model', runA, '--refs', missingBank, '--dcin', 'full', odd, '--out', out]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`${missingBank}: reference bank not found`), r.err);

  const bad = path.join(root, 'inputs-bad', 'broken.png');
  fs.mkdirSync(path.dirname(bad), { recursive: true });
  fs.writeFileSync(bad, 'not a png');
  r = await cli(['predict', '--model', runA, '--dcin', 'none', bad, odd, '--out', out, '--quiet']);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(bad) && /cannot read image/.test(r.err), r.err);
  assert.ok(fs.existsSync(path.join(out, 'odd_mask.png')), 'the readable image is still predicted');
  assert.ok(!fs.existsSync(path.join(out, 'broken_mask.png')));

  r = await cli(['predict', '--model', runA, '--dcin', 'exri', odd, '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dcin exri needs --exri IMAGE/);

  const noExri = path.join(root, 'no-such-exri.png');
  r = await cli(['predict', '--model', runA, '--dcin', 'exri', '--exri', noExri, odd, '--out', out]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(noExri), r.err);

  r = await cli(['predict', '--model', runA, '--dcin', 'magic', odd, '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dcin: column 'magic': unknown DCIN mode 'magic'; a column is .*DCIN one of none, exri, gris, lris, full, full-robust, auto, auto-entropy/);

  r = await cli(['predict', '--model', runA, '--dcin', 'gris', odd, '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dcin gris needs --refs BANK/);

  const noImage = path.join(root, 'nothing.png');
  r = await cli(['predict', '--model', runA, '--dcin', 'none', noImage, '--out', out]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`input '${noImage}' does not exist`), r.err);

  r = await cli(['references', '--data', path.join(root, 'no-such-data'), '--model', runA, '--out', path.join(root, 'x.safetensors')]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes('no-such-data'), r.err);

  r = await cli(['references', '--data', data, '--model', missingRun, '--out', path.join(root, 'x.safetensors')]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(missingRun), r.err);

  r = await cli(['references', '--data', data, '--model', runA, '--embedder', 'magic', '--out', path.join(root, 'x.safetensors')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /embedder must be 'encoder' or 'onnx:FILE', got 'magic'/);
  assert.ok(!fs.existsSync(path.join(root, 'x.safetensors')), 'nothing written on error');
});
