import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { loadRun } from '../../src/train/run';
import { resolveConfig, TrainConfig } from '../../src/train/config';
import { cqgDiffRamp, explainOom, train, TrainError } from '../../src/train/trainer';
import { readSafetensors, saveStateDict, writeSafetensors } from '../../src/nn';
import { buildModel } from '../../src/models/spec';
import * as T from '../../src/tensor';
import { makeDiscDataset } from '../helpers/tiny_dataset';
import { Loader, openDataset } from '../../src/data';
import { ConfusionMatrix } from '../../src/eval/metrics';
import { normalize } from '../../src/models/preprocess';

let data = '';
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-run-'));

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
});

function config(over: Partial<TrainConfig>): TrainConfig {
  return resolveConfig({ data, out: tmp(), encoder: 'efficientnet-test', size: [64, 64], batchSize: 2, epochs: 1, lr: 3e-3, valFraction: 0, threads: 1, ...over });
}

/** Dice macro of a run's last weights on the unaugmented training images. */
async function diceOnTrain(runDir: string): Promise<number> {
  const { model, info } = loadRun(runDir, 'last.safetensors');
  const cm = new ConfusionMatrix(info.model.classes);
  for await (const b of new Loader(openDataset(data), { batchSize: 4, size: info.size, shuffle: false }).epoch(0)) {
    T.tidy(() => T.noGrad(() => cm.update(T.argmax(model.forward(normalize(b.images, info.preprocessing)), 1), b.masks!.to('int64'))));
    T.dispose(b);
  }
  model.dispose();
  return cm.diceMacro();
}

for (const mode of ['baseline', 'aug', 'cqg'] as const) {
  test(`${mode} mode overfits a tiny dataset (Dice > 0.9 on it)`, async () => {
    const cfg = config({ mode, epochs: mode === 'baseline' ? 25 : 40, lr: 1e-2 });
    const r = await train(cfg, { progress: false });
    assert.equal(r.epochs.length, cfg.epochs);
    for (const f of ['config.json', 'model.safetensors', 'last.safetensors', 'metrics.jsonl', 'checkpoint/state.json']) {
      assert.ok(fs.existsSync(path.join(r.runDir, f)), `${f} written`);
    }
    assert.equal(fs.readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, cfg.epochs);
    const dice = await diceOnTrain(r.runDir);
    assert.ok(dice > 0.9, `${mode}: Dice ${dice}`);
  });
}

test('cqgDiffWarmup: the consistency weight follows the sigmoid ramp-up, step by step, then the paper\'s weight', async () => {
  assert.equal(cqgDiffRamp(3, 0), 1, 'no warm-up');
  assert.equal(cqgDiffRamp(0, 4), Math.exp(-5));
  assert.equal(cqgDiffRamp(2, 4), Math.exp(-1.25));
  assert.equal(cqgDiffRamp(4, 4), 1);
  assert.equal(cqgDiffRamp(9, 4), 1);
  const seen: Record<string, number>[] = [];
  // 4 images, batch 2, 3 epochs: steps at 0, 0.5, ..., 2.5 epochs into training
  await train(config({ mode: 'cqg', epochs: 3, cqgDiffWarmup: 2 }), { progress: false, onStep: (_s, t) => seen.push(t) });
  assert.equal(seen.length, 6);
  seen.forEach((t, i) => {
    const want = 0.3 * t.geo + 0.7 * t.aug + cqgDiffRamp(i / 2, 2) * t.diff;
    // the terms are float32 values of order 1: the sum agrees to float32 rounding
    assert.ok(Math.abs(t.loss - want) < 1e-5, `step ${i}: loss ${t.loss}, 0.3 geo + 0.7 aug + ramp diff = ${want}`);
  });
});

test('a resumed run continues exactly: its next-step loss equals the uninterrupted run\'s', async () => {
  const base = { mode: 'cqg' as const, epochs: 3, seed: 7 };
  const full: number[] = [];
  await train(config(base), { progress: false, onStep: (_s, t) => full.push(t.loss) });
  const cfg = config(base);
  const killed: number[] = [];
  // stop in the middle of epoch 2, as a kill would: only epoch 1's checkpoint is on disk
  const r1 = await train(cfg, { progress: false, stopAfterSteps: 3, onStep: (_s, t) => killed.push(t.loss) });
  assert.equal(r1.stoppedEarly, true);
  const state = JSON.parse(fs.readFileSync(path.join(cfg.out, 'checkpoint', 'state.json'), 'utf8')) as { epoch: number; globalStep: number };
  assert.equal(state.epoch, 1);
  const resumed: number[] = [];
  await train(cfg, { progress: false, onStep: (_s, t) => resumed.push(t.loss) }, true);
  assert.deepEqual(killed, full.slice(0, 3));
  assert.equal(resumed.length, full.length - state.globalStep);
  assert.equal(resumed[0], full[state.globalStep], 'next-step loss after resume');
  assert.deepEqual(resumed, full.slice(state.globalStep));
});

test('errors: missing or empty dataset, size not divisible by 32, existing run, resume without checkpoint', async () => {
  await assert.rejects(train(config({ data: '/nonexistent/data' })), /does not exist/);
  const empty = tmp();
  fs.mkdirSync(path.join(empty, 'images'));
  fs.mkdirSync(path.join(empty, 'masks'));
  await assert.rejects(train(config({ data: empty })), /empty|no images/);
  assert.throws(() => config({ size: [64, 70] }), /'size' 64x70 is not divisible by 32.*64x64/);
  const cfg = config({ epochs: 1 });
  await train(cfg, { progress: false });
  await assert.rejects(train(cfg, { progress: false }), /already holds a run.*--resume/);
  await assert.rejects(train(config({}), { progress: false }, true), /no checkpoint to resume from/);
  await assert.rejects(train(config({ mode: 'aug', out: cfg.out }), { progress: false }, true), /'mode' was "cqg", now "aug"/);
});

test('a NaN loss stops training, names the step and keeps the last good checkpoint', async () => {
  const cfg = config({ mode: 'baseline', epochs: 1 });
  await train(cfg, { progress: false });
  // a weight of the checkpoint turned NaN (class weights or lr, which would do it too, may not change on resume)
  const ckpt = path.join(cfg.out, 'checkpoint', 'epoch-1', 'model.safetensors');
  const st = readSafetensors(ckpt);
  const [name, w] = [...st.tensors].find(([, t]) => t.dtype === 'float32' && t.ndim === 4)!;
  st.tensors.set(name, T.fullLike(w, Number.NaN));
  writeSafetensors(ckpt, st.tensors, st.metadata);
  T.dispose([...st.tensors.values(), w]);
  const bad = { ...cfg, epochs: 2 };
  await assert.rejects(train(bad, { progress: false }, true), (err: Error) => {
    assert.ok(err instanceof TrainError);
    assert.match(err.message, /loss became NaN at epoch 2, step 1 \(global step 3\)/);
    assert.match(err.message, /last good checkpoint is epoch 1/);
    return true;
  });
  const state = JSON.parse(fs.readFileSync(path.join(cfg.out, 'checkpoint', 'state.json'), 'utf8')) as { epoch: number };
  assert.equal(state.epoch, 1);
});

test('weights for another class count are refused with a clear message', async () => {
  const dir = tmp();
  const other = buildModel({ arch: 'unet', encoder: 'efficientnet-test', classes: 5 });
  const file = path.join(dir, 'five.safetensors');
  saveStateDict(other, file);
  other.dispose();
  await assert.rejects(train(config({ encoderWeights: file }), { progress: false }), /trained for 5 classes, the dataset has 2/);
});

test('out-of-memory errors from libtorch are recognised and explained', async () => {
  let err: unknown;
  try {
    T.empty([2 ** 26, 2 ** 26]);
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'a 16 PiB allocation fails');
  const msg = explainOom(err, { epoch: 1, step: 4, batchSize: 2, size: [512, 768] });
  assert.match(msg ?? '', /out of memory at epoch 1, step 4 \(batch 2, size 512x768\): lower --batch or --size/);
  assert.equal(explainOom(new Error('other'), { epoch: 1, step: 1, batchSize: 2, size: [64, 64] }), null);
});

test('cqseg train killed with SIGKILL resumes with --resume and finishes every epoch', async () => {
  const { spawn, spawnSync } = await import('node:child_process');
  const out = tmp();
  const bin = path.join(__dirname, '..', '..', '..', 'bin', 'cqseg');
  const args = ['train', '--data', data, '--out', out, '--encoder', 'efficientnet-test', '--size', '64x64', '--epochs', '4',
    '--mode', 'baseline', '--val-fraction', '0', '--threads', '1'];
  const child = spawn(process.execPath, [bin, ...args], { stdio: 'ignore' });
  const state = path.join(out, 'checkpoint', 'state.json');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (fs.existsSync(state)) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(timer);
      if (!fs.existsSync(state)) reject(new Error('training ended before its first checkpoint'));
      resolve();
    });
  });
  await new Promise((r) => child.on('close', r));
  const r = spawnSync(process.execPath, [bin, ...args, '--resume'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number });
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3, 4]);
  assert.deepEqual(fs.readdirSync(path.join(out, 'checkpoint')).sort(), ['epoch-4', 'state.json']);
});
