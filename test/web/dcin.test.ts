/**
 * The in-browser DCIN (src/web/) against cqseg's own, in Node:
 * - the 8-bit Lab transfer and statistics equal color/transfer.ts's byte for byte
 *   (both are OpenCV's integer recipe: no tolerance);
 * - the resize equals sharp's within 6 levels, 1 on average (measured on white noise, the
 *   worst case: at most 3, on average 0.18-0.47; sharp's fixed-point coefficients are not
 *   reproduced, and its SIMD paths may round otherwise on another CPU: the margin is 2x; a
 *   wrong kernel or offset is off by tens of levels on average);
 * - the label upsampling equals eval/upsample.ts's on at least 99.9% of pixels (float64
 *   here, float32 there: only near-ties can flip; measured 100% on these cases);
 * - segment() with the exported model in onnxruntime-node gives `cqseg predict`'s mask on
 *   at least 99.5% of pixels in modes none, gris, lris and full, with the same references,
 *   for images smaller and larger than the model's input.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { labStats, labTransferToStats } from '../../src/color';
import { readImage, resizeImage } from '../../src/data';
import { dcinData } from '../../src/export/dcin_data';
import { exportRun, bundleInfo } from '../../src/export/bundle';
import { upsampleArgmax } from '../../src/eval/upsample';
import { disposeBank, disposePrediction, openBank, openEmbedder, openSession, predictImage, Session } from '../../src/dcin/session';
import { ReferenceBank } from '../../src/dcin/bank';
import { Embedder } from '../../src/dcin/embedders';
import * as T from '../../src/tensor';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import * as web from '../../src/web/dcin';
import { labStats8, labTransfer8 } from '../../src/web/lab8';
import { cli } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-web-'));
let data = '';
let session: Session;
let bank: ReferenceBank;
let embedder: Embedder;
let ortSession: ort.InferenceSession;

before(async () => {
  data = await makeDiscDataset(6, [64, 64]);
  const run = path.join(root, 'run');
  await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 6, maxStepsPerEpoch: 3, lr: 0.01, valFraction: 0, threads: 1, seed: 0 }), { progress: false });
  const bankFile = path.join(root, 'bank.safetensors');
  const r = await cli(['references', '--data', data, '--model', run, '--out', bankFile, '--quiet']);
  assert.equal(r.code, 0, r.err);
  session = openSession(run);
  embedder = await openEmbedder('encoder', session);
  bank = openBank(bankFile, { embedder });
  ortSession = await ort.InferenceSession.create(exportRun(session));
});

after(async () => {
  await ortSession?.release();
  if (bank) disposeBank(bank);
  embedder?.dispose();
  session?.dispose();
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

const rows = (flat: number[]): number[][] => [[flat[0], flat[1]], [flat[2], flat[3]], [flat[4], flat[5]]];

test('Lab transfer and statistics: the same bytes as labTransferToStats and labStats (RGB and RGBA, a flat channel)', () => {
  T.manualSeed(11);
  for (const [h, w, flat] of [[37, 53, false], [64, 96, false], [16, 16, true]] as [number, number, boolean][]) {
    const [img, ref] = T.tidy(() => {
      let x = T.rand([h, w, 3]).mul(256).floor();
      if (flat) x = T.cat([x.narrow(2, 0, 2), T.fullLike(x.narrow(2, 2, 1), 77)], 2); // blue constant: a, b spreads differ, guard path
      return [T.keep(x.to('uint8')), T.keep(T.rand([1, 3, 20, 24]).mul(180).add(40).floor().to('uint8'))];
    });
    const rs = labStats(ref);
    const refRows = rows(rs.toArray() as number[]);
    const ours = T.tidy(() => labTransferToStats(img.permute([2, 0, 1]).unsqueeze(0).contiguous(), rs).squeeze(0).permute([1, 2, 0]).contiguous().dataSync() as Uint8Array);
    const bytes = img.dataSync() as Uint8Array;
    assert.deepEqual(Buffer.from(labTransfer8(bytes, 3, refRows)), Buffer.from(ours), `${h}x${w} RGB`);
    const rgba = new Uint8Array(h * w * 4);
    for (let p = 0; p < h * w; p++) rgba.set([bytes[p * 3], bytes[p * 3 + 1], bytes[p * 3 + 2], 200], p * 4);
    const out4 = labTransfer8(rgba, 4, refRows);
    assert.ok(out4.every((v, i) => (i % 4 === 3 ? v === 200 : v === ours[Math.floor(i / 4) * 3 + (i % 4)])), `${h}x${w} RGBA`);
    const s = T.tidy(() => labStats(img.permute([2, 0, 1]).unsqueeze(0).contiguous()).toArray() as number[]);
    labStats8(bytes, 3).flat().forEach((v, i) => assert.ok(Math.abs(v - s[i]) <= 1e-12 * Math.max(1, Math.abs(s[i])), `stat ${i}: ${v} vs ${s[i]}`));
    T.dispose([img, ref, rs]);
  }
  assert.throws(() => labTransfer8(new Uint8Array(6), 3, [[1, 2], [3, 4]]), /must be \[\[meanL, stdL\]/);
  assert.throws(() => labTransfer8(new Uint8Array(7), 3, [[1, 2], [3, 4], [5, 6]]), /positive multiple of 3 bytes/);
  assert.throws(() => labTransfer8(new Uint8Array(8), 2, [[1, 2], [3, 4], [5, 6]]), /Argument 'channels' passed to 'labTransfer8' must be 3 or 4, got 2/);
});

test('resize: within 6 levels of sharp\'s, 1 on average, shrinking, enlarging and both at once', async () => {
  T.manualSeed(12);
  const img = T.tidy(() => T.rand([30, 40, 3]).mul(256).floor().to('uint8'));
  const bytes = img.dataSync() as Uint8Array;
  try {
    for (const size of [[20, 25], [45, 70], [15, 60], [30, 57], [64, 64]] as [number, number][]) {
      const theirs = await resizeImage(img, size);
      const a = theirs.dataSync() as Uint8Array;
      const b = web.resizeLikeSharp({ data: bytes, width: 40, height: 30, channels: 3 }, size).data;
      theirs.dispose();
      let worst = 0;
      let total = 0;
      for (let i = 0; i < a.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - b[i]));
        total += Math.abs(a[i] - b[i]);
      }
      assert.ok(worst <= 6, `${size.join('x')}: ${worst} levels from sharp`);
      assert.ok(total / a.length <= 1, `${size.join('x')}: ${total / a.length} levels from sharp on average`);
    }
  } finally {
    img.dispose();
  }
});

test('label upsampling: eval/upsample.ts\'s labels', () => {
  T.manualSeed(13);
  for (const [c, h, w, H, W] of [[2, 16, 16, 37, 53], [3, 32, 24, 32, 24], [4, 20, 30, 13, 17]]) {
    const probs = T.tidy(() => T.softmax(T.randn([1, c, h, w]).mul(3), 1));
    const ours = T.tidy(() => upsampleArgmax(probs, [H, W]).dataSync() as Uint8Array);
    const theirs = web.upsampleArgmax(probs.dataSync() as Float32Array, c, h, w, H, W);
    let same = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] === theirs[i]) same++;
    assert.ok(same / ours.length >= 0.999, `${c}x${h}x${w} -> ${H}x${W}: ${same} of ${ours.length}`);
    probs.dispose();
  }
});

test('segment() with the exported model: cqseg predict\'s mask on >= 99.5% of pixels, modes none, gris, lris, full', async () => {
  const model: web.WebModel = {
    run: async (x, n, h, w) => {
      const out = await ortSession.run({ image: new ort.Tensor('float32', x, [n, 3, h, w]) });
      return { logits: out.logits.data as Float32Array, embedding: out.embedding.data as Float32Array };
    },
  };
  const info = bundleInfo(session, true) as unknown as web.ModelInfo;
  const dcin = JSON.parse(JSON.stringify(dcinData(bank))) as web.DcinFile;
  const file = path.join(data, 'images', fs.readdirSync(path.join(data, 'images')).sort()[1]);
  for (const size of [[80, 96], [48, 40], [64, 64]] as [number, number][]) {
    const full = await readImage(file);
    const image = size[0] === 64 ? full : await resizeImage(full, size);
    if (image !== full) full.dispose();
    const bytes = image.dataSync() as Uint8Array;
    for (const mode of web.WEB_MODES) {
      const p = await predictImage(session, image, { mode, bank, embedder });
      try {
        const r = await web.segment({ data: bytes, width: size[1], height: size[0], channels: 3 }, { mode, model, info, dcin });
        const ours = p.labels.dataSync() as Uint8Array;
        let same = 0;
        for (let i = 0; i < ours.length; i++) if (ours[i] === r.labels[i]) same++;
        const share = same / ours.length;
        if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`${size.join("x")} ${mode}: ${(100 * share).toFixed(2)}% of pixels agree (classes ${r.pixels.join("/")})\n`);
        assert.ok(share >= 0.995, `${size.join('x')} ${mode}: ${(100 * share).toFixed(2)}% of pixels agree`);
        assert.equal(r.gris, p.summary.references.gris?.index, `${mode}: GRIS`);
        assert.equal(r.lris, p.summary.references.lris?.index, `${mode}: LRIS`);
        assert.deepEqual(r.pixels.reduce((a, b) => a + b, 0), size[0] * size[1]);
      } finally {
        disposePrediction(p);
      }
    }
    image.dispose();
  }
  const tiny = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 as const };
  await assert.rejects(web.segment(tiny, { mode: 'full', model, info }), /needs the DCIN data file/);
  await assert.rejects(web.segment(tiny, { mode: 'auto' as web.WebMode, model, info, dcin }), /mode must be one of none, gris, lris, full, got auto/);
  await assert.rejects(web.segment(tiny, { mode: 'gris', model, info, dcin: { ...dcin, format: 'other' } as unknown as web.DcinFile }), /not a cqseg DCIN data file \(format other/);
  assert.throws(() => web.decodeEmbeddings({ ...dcin, embeddings: { ...dcin.embeddings, dims: [dcin.embeddings.dims[0] + 1, dcin.embeddings.dims[1]] } }), /DCIN file: embeddings hold \d+ values, dims say/);
  const short: web.WebModel = { run: async (x, n, h, w) => ({ ...(await model.run(x, n, h, w)), embedding: new Float32Array(3) }) };
  await assert.rejects(web.segment({ data: new Uint8Array(64 * 64 * 3), width: 64, height: 64, channels: 3 }, { mode: 'lris', model: short, info, dcin }), /the model's embedding has 3 values, the DCIN file's \d+: a DCIN file made for another model/);
});
