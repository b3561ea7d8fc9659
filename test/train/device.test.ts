/**
 * --device, --precision, --channels-last. On a machine without a GPU: auto and cpu resolve
 * to the CPU, cuda is refused by name, bf16 trains on the CPU (libtorch's CPU autocast) and
 * records itself, fp16 and channels-last are refused with the reason. The CUDA tests run
 * where libtorch sees a GPU (npm run check:gpu), and are skipped with the reason elsewhere:
 * a training step and DCIN prediction on the GPU against the CPU.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { readImage } from '../../src/data';
import { disposePrediction, openSession, predictImage } from '../../src/dcin/session';
import { Unet } from '../../src/models';
import { normalize } from '../../src/models/preprocess';
import { GradScaler, readSafetensors, SGD } from '../../src/nn';
import * as T from '../../src/tensor';
import { diceCELoss } from '../../src/train/losses';
import { cli } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-device-'));
let data = '';
const CUDA = T.cudaIsAvailable() ? false : 'no CUDA device (these run in npm run check:gpu on a machine with an NVIDIA GPU)';

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

test('resolveDevice: auto and cpu on this machine, cuda refused by name when libtorch sees no GPU', () => {
  const gpus = T.cudaIsAvailable() ? T.cudaDeviceCount() : 0;
  assert.equal(T.resolveDevice('cpu').device, 'cpu');
  assert.equal(T.resolveDevice('auto').device, gpus > 0 ? 'cuda:0' : 'cpu');
  if (gpus === 0) assert.throws(() => T.resolveDevice('cuda'), /--device cuda: libtorch sees no CUDA device/);
  assert.throws(() => T.resolveDevice(`cuda:${gpus}`), /--device cuda:\d+: libtorch sees/);
  assert.throws(() => T.resolveDevice('gpu'), /--device must be auto \| cpu \| cuda \| cuda:N, got 'gpu'/);
});

test('cqseg train --device cpu --precision bf16: trains under autocast, records device and precision; fp16 and channels-last refused on the CPU', async () => {
  const out = path.join(root, 'bf16');
  const r = await cli(['train', '--data', data, '--out', out, '--encoder', 'efficientnet-test', '--size', '64x64', '--epochs', '1', '--max-steps', '2', '--val-fraction', '0', '--device', 'cpu', '--precision', 'bf16']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /device: cpu \(asked for\), precision bf16/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { device: string; precision: string };
  assert.deepEqual([cfg.device, cfg.precision], ['cpu', 'bf16']);
  const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim()) as { train: { loss: number } };
  assert.ok(Number.isFinite(m.train.loss));
  const st = readSafetensors(path.join(out, 'model.safetensors')).tensors;
  const dtypes = new Set([...st.values()].filter((t) => t.dtype.startsWith('float') || t.dtype.startsWith('bfloat')).map((t) => t.dtype));
  T.dispose([...st.values()]);
  assert.deepEqual([...dtypes], ['float32'], 'weights and checkpoints stay float32');
  if (!T.cudaIsAvailable()) {
    const fp16 = await cli(['train', '--data', data, '--out', path.join(root, 'x'), '--precision', 'fp16', '--device', 'cpu']);
    assert.equal(fp16.code, 1);
    assert.match(fp16.err, /--precision fp16 needs CUDA/);
    const cl = await cli(['train', '--data', data, '--out', path.join(root, 'x'), '--channels-last', '--device', 'cpu']);
    assert.match(cl.err, /--channels-last is for CUDA/);
  }
});

test('GradScaler: an overflowing step is skipped and halves the scale; a finite one is unscaled and taken; the scale doubles after its interval', () => {
  const p = T.tensor([1, 2], [2], { requiresGrad: true });
  const opt = new SGD([p], { lr: 1 });
  const s = new GradScaler(8, 2);
  T.tidy(() => s.scale(p.mul(T.tensor([Infinity, 1], [2])).sum()).backward());
  assert.equal(s.step(opt), false);
  assert.deepEqual([p.toArray(), s.scaleValue], [[1, 2], 4]);
  opt.zeroGrad();
  for (const expected of [[0, 1], [-1, 0]]) {
    T.tidy(() => s.scale(p.sum()).backward()); // gradient 1 each, scaled by 4 then unscaled
    assert.equal(s.step(opt), true);
    assert.deepEqual(p.toArray(), expected);
    opt.zeroGrad();
  }
  assert.equal(s.scaleValue, 8, 'two good steps in a row (interval 2) double it');
  T.dispose(p);
});

test('--device refused by name, as a flag and as a config key', async () => {
  const predict = await cli(['predict', '--model', path.join(root, 'bf16'), '--dcin', 'none', '--device', 'gpu', 'x.png', '--out', path.join(root, 'p')]);
  assert.equal(predict.code, 2);
  assert.match(predict.err, /--device must be auto \| cpu \| cuda \| cuda:N, got 'gpu'/);
  const tr = await cli(['train', '--data', data, '--out', path.join(root, 'y'), '--device', 'gpu']);
  assert.notEqual(tr.code, 0);
  assert.match(tr.err, /device.*'auto', 'cpu', 'cuda' or 'cuda:N'/);
});

test('withAutocast bf16 on the CPU: convolutions in bfloat16, gradients and weights float32, loss within bfloat16 rounding', () => {
  T.manualSeed(0);
  const m = new Unet({ encoderName: 'resnet18', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
  m.train();
  const x = T.tidy(() => T.rand([2, 3, 64, 64]).mul(255).floor().to('uint8'));
  const y = T.tidy(() => T.rand([2, 64, 64]).mul(2).floor().to('int64'));
  try {
    const [full, half] = [false, true].map((bf) => T.tidy(() => {
      const logits = bf ? T.withAutocast('cpu', 'bfloat16', () => m.forward(normalize(x))) : m.forward(normalize(x));
      assert.equal(logits.dtype, bf ? 'bfloat16' : 'float32');
      const l = diceCELoss(logits.to('float32'), y).loss;
      l.backward();
      assert.equal(m.parameters()[0].grad!.dtype, 'float32');
      m.zeroGrad();
      return l.item();
    }));
    // bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 2e-3 per op); measured 1e-4 here
    assert.ok(Math.abs(full - half) <= 2e-2 * full, `fp32 ${full}, bf16 ${half}`);
    assert.throws(() => T.withAutocast('cpu', 'float16', () => 0), /float16 needs CUDA/);
  } finally {
    T.dispose([m, x, y]);
  }
});

test('CUDA: a training step on the GPU gives the CPU\'s loss and gradients within TF32 rounding', { skip: CUDA }, () => {
  const step = (device: string): [number, Float32Array] => T.tidy(() => {
    T.manualSeed(0);
    const m = new Unet({ encoderName: 'resnet18', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
    m.train();
    if (device !== 'cpu') m.to(device);
    T.manualSeed(1);
    const x = T.rand([2, 3, 64, 64]).mul(255).floor().to('uint8').to(device);
    const y = T.rand([2, 64, 64]).mul(2).floor().to('int64').to(device);
    const l = diceCELoss(m.forward(normalize(x)), y).loss;
    l.backward();
    const g = m.parameters()[0].grad!.to('cpu').dataSync() as Float32Array;
    const v = l.item();
    T.dispose(m);
    return [v, Float32Array.from(g)];
  });
  const [lc, gc] = step('cpu');
  const [lg, gg] = step('cuda:0');
  assert.ok(Math.abs(lc - lg) <= 1e-3 * lc, `loss cpu ${lc}, cuda ${lg}`);
  let num = 0;
  let den = 0;
  gc.forEach((v, i) => { num += (v - gg[i]) ** 2; den += v * v; });
  assert.ok(Math.sqrt(num / den) <= 1e-2, `first conv's gradient differs by ${Math.sqrt(num / den)} (relative)`);
});

test('CUDA: cqseg train --device cuda --precision bf16 and fp16 (loss scaling) run and record the device', { skip: CUDA }, async () => {
  for (const p of ['bf16', 'fp16']) {
    const out = path.join(root, `cuda-${p}`);
    const r = await cli(['train', '--data', data, '--out', out, '--encoder', 'efficientnet-test', '--size', '64x64', '--epochs', '1', '--max-steps', '2', '--device', 'cuda', '--precision', p, '--channels-last']);
    assert.equal(r.code, 0, r.err);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { device: string };
    assert.equal(cfg.device, 'cuda:0');
  }
});

test('CUDA: DCIN prediction on the GPU gives the CPU\'s mask on >= 99.9% of pixels', { skip: CUDA }, async () => {
  const out = path.join(root, 'run');
  assert.equal((await cli(['train', '--data', data, '--out', out, '--encoder', 'resnet18', '--size', '64x64', '--epochs', '1', '--max-steps', '2', '--device', 'cpu'])).code, 0);
  const img = await readImage(path.join(data, 'images', fs.readdirSync(path.join(data, 'images'))[0]));
  const masks: Uint8Array[] = [];
  for (const device of ['cpu', 'cuda:0']) {
    const s = openSession(out, { device });
    const p = await predictImage(s, img, { mode: 'none' });
    masks.push(Uint8Array.from(p.labels.dataSync() as Uint8Array));
    disposePrediction(p);
    s.dispose();
  }
  img.dispose();
  let same = 0;
  masks[0].forEach((v, i) => { if (v === masks[1][i]) same++; });
  assert.ok(same / masks[0].length >= 0.999);
});
