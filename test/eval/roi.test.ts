/**
 * Dice inside a region of interest (issue 15): only pixels inside the ROI mask count,
 * in the confusion matrix and in evaluateDataset at the model's size and at the original
 * resolution. Hand-computed fractions from integer counts: exact to 1e-12 in float64.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { openDataset } from '../../src/data';
import { openSession } from '../../src/dcin/session';
import { evaluateDataset } from '../../src/eval/evaluate';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { ConfusionMatrix } from '../../src/eval/metrics';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';
import { quadImage, rawImage, tempDir } from '../helpers/data';

const tmp = tempDir('cqseg-roi-');
after(tmp.cleanup);
const at = (...p: string[]): string => path.join(tmp.dir, ...p);
const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

test('ConfusionMatrix counts only pixels inside the ROI (bool or 0/1)', () => {
  // pred   0 1 1 | target 0 1 0 | roi 1 1 0     inside: (p0,t0) (p1,t1) (p0,t1) (p0,t0)
  //        1 0 0 |        1 1 0 |     0 1 1     class 0: TP 2 FP 1 FN 0 -> 4/5; class 1: TP 1 FP 0 FN 1 -> 2/3
  const pred = T.tensor([[0, 1, 1], [1, 0, 0]], undefined, { dtype: 'int64' });
  const target = T.tensor([[0, 1, 0], [1, 1, 0]], undefined, { dtype: 'int64' });
  const roi = T.tensor([[1, 1, 0], [0, 1, 1]], undefined, { dtype: 'uint8' });
  const roiBool = T.tidy(() => roi.to('bool'));
  const a = new ConfusionMatrix(2);
  const b = new ConfusionMatrix(2);
  assertNoLeak(() => a.update(pred, target, roi));
  assertNoLeak(() => b.update(pred, target, roiBool));
  assert.deepEqual(Array.from(a.counts), [2, 0, 1, 1]);
  assert.deepEqual(Array.from(b.counts), Array.from(a.counts));
  close(a.dicePerClass()[0], 4 / 5, 'dice 0');
  close(a.dicePerClass()[1], 2 / 3, 'dice 1');
  close(a.diceMacro(), (4 / 5 + 2 / 3) / 2, 'dice macro');
  const wrong = T.ones([3, 2], { dtype: 'bool' });
  assert.throws(() => a.update(pred, target, wrong), /roi \[3,2\] and target \[2,3\] differ in shape/);
  T.dispose([pred, target, roi, roiBool, wrong]);
});

// 16 x 16 images: vessel in rows 0-3 (mask), field of view columns 0-11 (ROI); the
// predictor says vessel in the left half of its 8 x 8 output, which is columns 0-7 at
// 16 x 16 after bilinear upsampling (the boundary blends 0.75 / 0.25, no ties).
// Inside the ROI (8 x 8 equivalents: 48 of 64 pixels): vessel TP 8 FP 24 FN 4 -> 16/44;
// background TP 12 FP 4 FN 24 -> 24/52. Whole image: vessel 16/48, background 48/80.
const DICE_ROI = (16 / 44 + 24 / 52) / 2;
const DICE_ALL = (16 / 48 + 48 / 80) / 2;

before(async () => {
  for (const d of ['images', 'labels', 'fov']) fs.mkdirSync(at(d), { recursive: true });
  const S = 16;
  for (const id of ['a', 'b']) {
    await sharp(quadImage(S, S), { raw: { width: S, height: S, channels: 3 } }).png().toFile(at('images', `${id}.png`));
    await sharp(rawImage(S, S, 1, (y) => (y < 4 ? 1 : 0)), { raw: { width: S, height: S, channels: 1 } }).png().toFile(at('labels', `${id}_vessels.png`));
    await sharp(rawImage(S, S, 1, (_y, x) => (x < 12 ? 255 : 0)), { raw: { width: S, height: S, channels: 1 } }).png().toFile(at('fov', `${id}_fov.png`));
  }
  const desc = { images: 'images/{id}.png', masks: 'labels/{id}_vessels.png', classes: ['background', 'vessel'], maskMode: 'binary' };
  fs.writeFileSync(at('roi.json'), JSON.stringify({ ...desc, roi: 'fov/{id}_fov.png' }));
  fs.writeFileSync(at('whole.json'), JSON.stringify(desc));
});

/** Vessel probability 1 in the left half of an 8 x 8 output, whatever the image. */
async function leftHalf(images: T.Tensor): Promise<T.Tensor> {
  const n = images.shape[0];
  const data = new Float32Array(n * 2 * 64);
  for (let k = 0; k < n; k++) for (let i = 0; i < 64; i++) data[(k * 2 + (i % 8 < 4 ? 1 : 0)) * 64 + i] = 1;
  return T.tensor(data, [n, 2, 8, 8]);
}

test('evaluateDataset: Dice inside the ROI at the model size and at the original resolution; roi: true', async () => {
  const ds = openDataset(at('roi.json'));
  const before = T.memory().liveTensors;
  for (const originalResolution of [false, true]) {
    const r = await evaluateDataset(ds, leftHalf, 2, { size: [8, 8], originalResolution, bootstrap: 0, progress: false });
    assert.equal(r.roi, true);
    assert.equal(r.images, 2);
    close(r.dice, DICE_ROI, `dice (original resolution ${originalResolution})`);
    close(r.dicePerClass[1], 16 / 44, 'vessel dice');
    for (const p of r.perImage) close(p.dice, DICE_ROI, `per-image dice ${p.stem}`);
    // every counted pixel lies inside the ROI: 48 of 64 at 8 x 8, 192 of 256 at 16 x 16
    assert.equal(r.confusion.reduce((s, c) => s + c, 0), 2 * (originalResolution ? 192 : 48));
  }
  const whole = await evaluateDataset(openDataset(at('whole.json')), leftHalf, 2, { size: [8, 8], bootstrap: 0, progress: false });
  assert.equal(whole.roi, false);
  close(whole.dice, DICE_ALL, 'whole-image dice');
  assert.equal(T.memory().liveTensors, before);
});

test("training's validation Dice counts inside the ROI too: it equals evaluateDataset's on the same model", async () => {
  const cfg = resolveConfig({
    data: at('roi.json'), val: at('roi.json'), out: at('run'), mode: 'baseline', encoder: 'efficientnet-test', size: [32, 32],
    batchSize: 2, epochs: 1, bestBy: 'dice', threads: 1,
  });
  const r = await train(cfg, { progress: false });
  const s = openSession(r.runDir);
  try {
    const e = await evaluateDataset(openDataset(at('roi.json')), async (x) => s.forward(x), 2, { size: [32, 32], bootstrap: 0, progress: false });
    assert.equal(e.roi, true);
    close(r.epochs[0].valDice, e.dice, 'validation Dice of epoch 1 vs evaluation of its model');
  } finally {
    s.dispose();
  }
});
