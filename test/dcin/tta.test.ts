/**
 * Test-time adaptation: AdaBN statistics against hand-computed per-channel means and
 * unbiased variances (float64 in JS; float32 rounding of values of magnitude <= 5 stays
 * below 2e-6, the tolerance is 2e-5), bit-exact restore, per-image mixing against the
 * formula, flip TTA against the mean of flipped predictions computed by hand, no leaks.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { BatchNorm2d, Conv2d, Dropout, Module, ReLU, Sequential } from '../../src/nn';
import { TinyUnet, Unet } from '../../src/models';
import { dcinPredict } from '../../src/dcin';
import { adaBnDomain, adaBnImage, bnLayers, flipTta, withAdaBnImage, withFlipTta } from '../../src/dcin/tta';
import { assertClose, assertNoLeak } from '../helpers/assert';

const EPS = 1e-5;

/** Deterministic float32 data (N, C, H, W), channel c centred near c - 1. */
function data(shape: number[], seed = 0): Float32Array {
  const [, c, h, w] = shape;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    const ch = Math.floor(i / (h * w)) % c;
    out[i] = ch - 1 + 2 * Math.sin(1.7 * i + seed) * (1 + 0.5 * ch);
  }
  return out;
}

/** Per-channel mean and unbiased variance (float64) over the given images of (N, C, H, W) data. */
function channelStats(x: Float32Array, shape: number[], images?: number[]): { mean: number[]; var: number[] } {
  const [n, c, h, w] = shape;
  const imgs = images ?? [...Array(n).keys()];
  const mean: number[] = [];
  const vars: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const vals: number[] = [];
    for (const i of imgs) for (let k = 0; k < h * w; k++) vals.push(x[(i * c + ch) * h * w + k]);
    const m = vals.reduce((a, b) => a + b, 0) / vals.length;
    mean.push(m);
    vars.push(vals.reduce((a, b) => a + (b - m) ** 2, 0) / (vals.length - 1));
  }
  return { mean, var: vars };
}

function set(t: T.Tensor, values: number[]): void {
  T.noGrad(() => T.tidy(() => { t.copy_(T.tensor(values, t.shape)); }));
}

/** Sequential(conv 1x1 identity, BatchNorm2d, ...rest) with non-trivial source statistics. */
function idConvBn(c: number, ...rest: Module[]): { model: Sequential; bn: BatchNorm2d } {
  const conv = new Conv2d(c, c, 1, { bias: false });
  T.noGrad(() => T.tidy(() => { conv.weight.copy_(T.eye(c).reshape([c, c, 1, 1])); }));
  const bn = new BatchNorm2d(c);
  set(bn.runningMean!, [0.1, -0.2, 0.3].slice(0, c));
  set(bn.runningVar!, [1.5, 0.5, 2].slice(0, c));
  set(bn.weight!, [1, 2, 0.5].slice(0, c));
  set(bn.bias!, [0, 0.3, -0.1].slice(0, c));
  T.noGrad(() => bn.numBatchesTracked!.fill_(7));
  return { model: new Sequential(conv, bn, ...rest), bn };
}

/** Every state tensor's values (int64 via float64), for bit-exact comparison. */
function snapshot(m: Module): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, T.tidy(() => (t.dtype === 'int64' ? t.to('float64') : t).toArray())]));
}

async function* asyncBatches(xs: T.Tensor[]): AsyncGenerator<T.Tensor> {
  for (const x of xs) yield x;
}

test('adaBnDomain: one batch gives its per-channel mean and unbiased variance; restore is bit-exact', async () => {
  const shape = [2, 3, 4, 5];
  const raw = data(shape);
  const x = T.tensor(raw, shape);
  const { model, bn } = idConvBn(3);
  model.train();
  const before = snapshot(model);
  const live = T.memory().liveTensors;
  const h = await adaBnDomain(model, [x]);
  const s = channelStats(raw, shape);
  assertClose(bn.runningMean!, s.mean, 2e-5, 0, 'running_mean');
  assertClose(bn.runningVar!, s.var, 2e-5, 1e-6, 'running_var');
  assert.equal(bn.numBatchesTracked!.item(), 1);
  assert.deepEqual([h.layers, h.batches, h.images], [['1'], 1, 2]);
  // weights untouched, modes and momentum as they were
  const after = snapshot(model);
  for (const k of ['0.weight', '1.weight', '1.bias']) assert.deepEqual(after.get(k), before.get(k), k);
  assert.ok(model.namedModules().every(([, m]) => m.training));
  assert.equal(bn.momentum, 0.1);
  h.restore();
  assert.deepEqual(snapshot(model), before);
  assert.equal(T.memory().liveTensors, live);
  assert.throws(() => h.restore(), /already restored or disposed/);
  h.dispose();
  T.dispose([x, model]);
});

test("adaBnDomain: several batches, 'batch' (torch momentum=None) and 'image' weighting; async iterables", async () => {
  const shape = [3, 2, 3, 4];
  const raw = data(shape, 1);
  const x = T.tensor(raw, shape);
  const b1 = x.narrow(0, 0, 2);
  const b2 = x.narrow(0, 2, 1);
  const s1 = channelStats(raw, shape, [0, 1]);
  const s2 = channelStats(raw, shape, [2]);
  for (const [weighting, m2] of [['batch', 1 / 2], ['image', 1 / 3]] as const) {
    const { model, bn } = idConvBn(2);
    const h = await adaBnDomain(model, asyncBatches([b1, b2]), { weighting });
    const mix = (a: number[], b: number[]): number[] => a.map((v, i) => (1 - m2) * v + m2 * b[i]);
    assertClose(bn.runningMean!, mix(s1.mean, s2.mean), 2e-5, 0, `${weighting} mean`);
    assertClose(bn.runningVar!, mix(s1.var, s2.var), 2e-5, 1e-6, `${weighting} var`);
    assert.equal(bn.numBatchesTracked!.item(), 2);
    assert.deepEqual([h.batches, h.images], [2, 3]);
    h.dispose(); // keeps the target statistics
    assertClose(bn.runningMean!, mix(s1.mean, s2.mean), 2e-5);
    model.dispose();
  }
  T.dispose([x, b1, b2]);
});

test('adaBnDomain: BatchNorm alone in training mode (dropout off), later layers see adapted inputs', async () => {
  const shape = [2, 3, 4, 4];
  const raw = data(shape, 2);
  const x = T.tensor(raw, shape);
  const bn2 = new BatchNorm2d(3);
  const { model, bn } = idConvBn(3, new Dropout(0.9), bn2);
  model.eval();
  const h = await adaBnDomain(model, [x]);
  // bn2's input: bn1 with batch statistics (biased variance), weight w, bias b, no dropout:
  // mean b, unbiased variance w^2 vu / (vb + eps)
  const s = channelStats(raw, shape);
  const count = 2 * 4 * 4;
  const w = [1, 2, 0.5];
  const b = [0, 0.3, -0.1];
  assertClose(bn2.runningMean!, b, 2e-5, 0, 'bn2 mean');
  assertClose(bn2.runningVar!, s.var.map((vu, c) => (w[c] ** 2 * vu) / (vu * (count - 1) / count + EPS)), 2e-5, 1e-5, 'bn2 var');
  assertClose(bn.runningMean!, s.mean, 2e-5);
  assert.ok(model.namedModules().every(([, m]) => !m.training));
  h.restore();
  T.dispose([x, model]);
});

test('adaBnDomain: errors name the argument and leave the source statistics in place', async () => {
  const { model } = idConvBn(2);
  const before = snapshot(model);
  const x = T.tensor(data([2, 2, 3, 3]), [2, 2, 3, 3]);
  const bad = T.zeros([2, 3]);
  const live = T.memory().liveTensors;
  await assert.rejects(adaBnDomain(new Sequential(new ReLU()), [x]), /Argument 'model' passed to 'adaBnDomain' has no BatchNorm2d/);
  await assert.rejects(adaBnDomain(model, 5 as unknown as T.Tensor[]), /Argument 'batches' passed to 'adaBnDomain'/);
  await assert.rejects(adaBnDomain(model, [x], { weighting: 'pixel' as 'batch' }), /Argument 'opts.weighting' passed to 'adaBnDomain'/);
  await assert.rejects(adaBnDomain(model, []), /'batches' passed to 'adaBnDomain' yielded no batch/);
  await assert.rejects(adaBnDomain(model, [x, bad]), /Argument 'batches\[1\]' passed to 'adaBnDomain' must be 4-D/);
  let calls = 0;
  const failing = (y: T.Tensor): T.Tensor => {
    if (++calls === 2) throw new Error('decode failed');
    return model.forward(y);
  };
  await assert.rejects(adaBnDomain(model, [x, x], { forward: failing }), /decode failed/);
  assert.deepEqual(snapshot(model), before);
  assert.equal(bnLayers(model)[0][1].momentum, 0.1);
  assert.ok(model.namedModules().every(([, m]) => m.training));
  assert.equal(T.memory().liveTensors, live);
  T.dispose([x, bad, model]);
});

test('adaBnDomain on a Unet (fused BN paths, drop-connect off: deterministic), forward option, disposeBatches', async () => {
  const net = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: [16, 16, 8, 8, 8] }).eval();
  const before = snapshot(net);
  const live = T.memory().liveTensors;
  const img = T.tidy(() => T.mul(T.rand([2, 3, 64, 64]), 255).to('uint8'));
  const run = async (seed: number): Promise<Map<string, number[]>> => {
    const batches = [{ images: img.clone() }, { images: T.ones([1, 3, 64, 64], { dtype: 'uint8' }) }];
    T.manualSeed(seed); // another random state each run: drop-connect, were it on, would differ
    const h = await adaBnDomain(net, batches, { forward: (x) => net.forward(T.tidy(() => x.to('float32').div(255))), disposeBatches: true, weighting: 'image' });
    assert.ok(batches.every((b) => b.images.isDisposed));
    const s = snapshot(net);
    h.restore();
    return s;
  };
  const a = await run(1);
  const b = await run(2);
  img.dispose();
  assert.deepEqual(a, b, 'drop-connect and dropout must be off');
  const bns = bnLayers(net);
  assert.ok(bns.length > 10);
  // every BatchNorm the forward runs is re-estimated; encoder._bn1 (the EfficientNet head's, unused by smp's encoder) is not
  const same = bns.map(([n]) => n).filter((n) => JSON.stringify(a.get(`${n}.running_mean`)) === JSON.stringify(before.get(`${n}.running_mean`)));
  assert.deepEqual(same, ['encoder._bn1']);
  assert.deepEqual(snapshot(net), before);
  assert.equal(T.memory().liveTensors, live);
  net.dispose();
});

test('adaBnImage: (1 - alpha) source + alpha image statistics, per image, eval mode, buffers untouched', () => {
  const shape = [2, 3, 4, 5];
  const raw = data(shape, 3);
  const x = T.tensor(raw, shape);
  const { model, bn } = idConvBn(3, new Dropout(0.5));
  model.train();
  const before = snapshot(model);
  const alpha = 0.3;
  const rm = [0.1, -0.2, 0.3];
  const rv = [1.5, 0.5, 2];
  const w = [1, 2, 0.5];
  const b = [0, 0.3, -0.1];
  const hw = 4 * 5;
  const expected = Array.from(raw, (v, i) => {
    const img = Math.floor(i / (3 * hw));
    const c = Math.floor(i / hw) % 3;
    const s = channelStats(raw, shape, [img]);
    const mu = (1 - alpha) * rm[c] + alpha * s.mean[c];
    const va = (1 - alpha) * rv[c] + alpha * s.var[c];
    return ((v - mu) / Math.sqrt(va + EPS)) * w[c] + b[c];
  });
  assertNoLeak(() => T.tidy(() => {
    const y = adaBnImage(model, x, alpha);
    assertClose(y, expected, 2e-5, 1e-5, 'mixed');
    // per image: the same as each image alone
    const y1 = adaBnImage(model, x.narrow(0, 1, 1), alpha);
    assert.deepEqual(y1.toArray(), y.narrow(0, 1, 1).toArray());
    // alpha 0: eval-mode inference, bit for bit
    const y0 = adaBnImage(model, x, 0);
    model.eval();
    const ref = T.noGrad(() => model.forward(x));
    model.train();
    assert.deepEqual(y0.toArray(), ref.toArray());
    // the default alpha (0.5) and the wrapper form agree
    assert.deepEqual(adaBnImage(model, x).toArray(), withAdaBnImage(model, { alpha: 0.5 })(x).toArray());
  }));
  assert.deepEqual(snapshot(model), before);
  assert.ok(model.namedModules().every(([, m]) => m.training));
  assert.ok(!Object.prototype.hasOwnProperty.call(bn, 'apply'));
  T.dispose([x, model]);
});

test('adaBnImage: errors name the argument; a failing forward leaves the model as it was', () => {
  const { model, bn } = idConvBn(2);
  const x = T.tensor(data([1, 2, 3, 3]), [1, 2, 3, 3]);
  const dot = T.ones([1, 2, 1, 1]);
  const flat = T.zeros([2, 3]);
  assertNoLeak(() => {
    assert.throws(() => adaBnImage(model, x, 1.5), /Argument 'alpha' passed to 'adaBnImage' must be a number in \[0, 1\], got 1.5/);
    assert.throws(() => adaBnImage(model, x, NaN), /'alpha'/);
    assert.throws(() => adaBnImage(model, flat, 0.5), /Argument 'images' passed to 'adaBnImage' must be 4-D/);
    assert.throws(() => adaBnImage(new Sequential(new ReLU()), x), /Argument 'model' passed to 'withAdaBnImage' has no BatchNorm2d/);
    assert.throws(() => withAdaBnImage(model, { forward: 3 as unknown as (t: T.Tensor) => T.Tensor }), /Argument 'opts.forward' passed to 'withAdaBnImage'/);
    assert.throws(() => adaBnImage(model, dot), /BatchNorm '1' sees 1 value per channel/);
    const nested = withAdaBnImage(model, { forward: (y) => adaBnImage(model, y) });
    assert.throws(() => nested(x), /already being adapted/);
  });
  assert.ok(!Object.prototype.hasOwnProperty.call(bn, 'apply'));
  assert.ok(model.training);
  T.dispose([x, dot, flat, model]);
});

test('adaBnImage on a Unet: alpha 0 is eval inference bit for bit; composes with flip TTA', () => {
  const net = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: [16, 16, 8, 8, 8] }).eval();
  const x = T.rand([2, 3, 64, 64]);
  const before = snapshot(net);
  assertNoLeak(() => T.tidy(() => {
    // per image, as adaBnImage runs (a batch of 2 and two of 1 differ in convolution rounding)
    const ref = T.noGrad(() => T.cat([0, 1].map((i) => net.forward(x.narrow(0, i, 1))), 0));
    assert.deepEqual(adaBnImage(net, x, 0).toArray(), ref.toArray());
    const y = adaBnImage(net, x, 0.5);
    assert.ok(y.sub(ref).abs().max().item() > 1e-4, 'mixed statistics change the output');
    const p = withFlipTta(withAdaBnImage(net, { alpha: 0.5 }))(x);
    assertClose(p.sum(1), new Array(2 * 64 * 64).fill(1), 1e-5);
  }));
  assert.deepEqual(snapshot(net), before);
  T.dispose([x, net]);
});

// ---------------------------------------------------------------------------------------

const FLIP: Record<string, [boolean, boolean]> = { none: [false, false], h: [false, true], v: [true, false], hv: [true, true] };

/** Flips (N, C, H, W) flat data in JS. */
function flipData(x: ArrayLike<number>, shape: number[], f: string): number[] {
  const [n, c, h, w] = shape;
  const [fv, fh] = FLIP[f];
  const out = new Array<number>(x.length);
  for (let i = 0; i < n * c; i++) {
    for (let r = 0; r < h; r++) {
      for (let q = 0; q < w; q++) out[(i * h + r) * w + q] = x[(i * h + (fv ? h - 1 - r : r)) * w + (fh ? w - 1 - q : q)];
    }
  }
  return out;
}

function softmaxC(x: number[], shape: number[]): number[] {
  const [n, c, h, w] = shape;
  const out = new Array<number>(x.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < h * w; k++) {
      const idx = (ch: number): number => (i * c + ch) * h * w + k;
      const m = Math.max(...Array.from({ length: c }, (_, ch) => x[idx(ch)]));
      const z = Array.from({ length: c }, (_, ch) => Math.exp(x[idx(ch)] - m)).reduce((a, b) => a + b, 0);
      for (let ch = 0; ch < c; ch++) out[idx(ch)] = Math.exp(x[idx(ch)] - m) / z;
    }
  }
  return out;
}

test('flipTta: the mean of flipped-back softmax predictions, computed by hand', () => {
  const shape = [2, 2, 3, 4];
  const raw = data(shape, 4);
  const wRaw = data([1, 2, 3, 4], 5);
  const x = T.tensor(raw, shape);
  const wt = T.tensor(wRaw, [1, 2, 3, 4]);
  const forward = (y: T.Tensor): T.Tensor => y.mul(wt); // position-dependent: not flip-equivariant
  const byHand = (flips: string[]): number[] => {
    const sum = new Array<number>(raw.length).fill(0);
    for (const f of flips) {
      const xf = flipData(raw, shape, f);
      const logits = xf.map((v, i) => v * wRaw[i % wRaw.length]);
      const back = flipData(softmaxC(logits, shape), shape, f);
      back.forEach((v, i) => { sum[i] += v; });
    }
    return sum.map((v) => v / flips.length);
  };
  assertNoLeak(() => T.tidy(() => {
    const p = flipTta(forward, x);
    assertClose(p, byHand(['none', 'h']), 1e-6, 0, 'the default: identity and horizontal');
    assertClose(flipTta(forward, x, ['none', 'h', 'v', 'hv']), byHand(['none', 'h', 'v', 'hv']), 1e-6, 0, 'four flips');
    assertClose(flipTta(forward, x, ['h', 'v']), byHand(['h', 'v']), 1e-6, 0, 'h, v');
    assertClose(flipTta(forward, x, ['none']), softmaxC(Array.from(raw, (v, i) => v * wRaw[i % wRaw.length]), shape), 1e-6);
    assert.ok(Math.abs(p.sub(T.softmax(forward(x), 1)).abs().max().item()) > 1e-3, 'the flips matter here');
    // the wrapper: same values; log-probabilities give the probabilities back through softmax
    assert.deepEqual(withFlipTta(forward)(x).toArray(), p.toArray());
    assertClose(T.softmax(withFlipTta(forward, { output: 'logProbs' })(x), 1), p.toArray(), 1e-6);
  }));
  T.dispose([x, wt]);
});

test('flipTta: a flip-equivariant model gives the same as no TTA', () => {
  const x = T.tensor(data([2, 3, 5, 6], 6), [2, 3, 5, 6]);
  // a 3x3 kernel symmetric under both flips, zero padding: conv commutes with h and v flips
  const conv = new Conv2d(3, 4, 3, { padding: 1 });
  T.noGrad(() => T.tidy(() => { conv.weight.copy_(conv.weight.add(conv.weight.flip([2])).add(conv.weight.flip([3])).add(conv.weight.flip([2, 3]))); }));
  const pointwise = new Conv2d(3, 4, 1);
  assertNoLeak(() => T.tidy(() => T.noGrad(() => {
    for (const m of [conv, pointwise]) assertClose(flipTta(m, x), T.softmax(m.forward(x), 1).toArray(), 1e-6, 1e-6);
  })));
  T.dispose([x, conv, pointwise]);
});

test('withFlipTta as the DCIN model (logProbs): dcinPredict none == flipTta', async () => {
  const x = T.tensor(data([1, 3, 4, 4], 7), [1, 3, 4, 4]);
  const wt = T.tensor(data([1, 3, 4, 4], 8), [1, 3, 4, 4]);
  const forward = (y: T.Tensor): T.Tensor => y.mul(wt);
  const live = T.memory().liveTensors;
  const { probs } = await dcinPredict(x, { mode: 'none', model: withFlipTta(forward, { output: 'logProbs' }) });
  const ref = flipTta(forward, x);
  assertClose(probs, ref.toArray(), 1e-6);
  T.dispose([probs, ref]);
  assert.equal(T.memory().liveTensors, live);
  T.dispose([x, wt]);
});

test('flipTta: errors name the argument', () => {
  const x = T.zeros([1, 2, 3, 3]);
  const flat = T.zeros([2, 3]);
  const id = (y: T.Tensor): T.Tensor => y.mul(1);
  assertNoLeak(() => {
    assert.throws(() => flipTta(id, x, ['x' as 'h']), /Argument 'flips' passed to 'flipTta' must hold only none, h, v, hv, got 'x' at 0/);
    assert.throws(() => flipTta(id, x, ['h', 'h']), /'flips' passed to 'flipTta' holds 'h' twice/);
    assert.throws(() => flipTta(id, x, []), /'flips' passed to 'flipTta' must be a non-empty array/);
    assert.throws(() => flipTta(id, flat), /Argument 'images' passed to 'flipTta' must be 4-D/);
    assert.throws(() => flipTta('net' as unknown as Module, x), /Argument 'model' passed to 'flipTta' must be a function/);
    assert.throws(() => flipTta((y) => y.sum(1), x), /'forward\(images\)' passed to 'flipTta' must be 4-D/);
    assert.throws(() => withFlipTta(id, { output: 'logits' as 'probs' }), /Argument 'opts.output' passed to 'withFlipTta'/);
    assert.throws(() => withFlipTta(id, { flips: ['d' as 'h'] }), /'flips' passed to 'withFlipTta'/);
  });
  T.dispose([x, flat]);
});

test('TinyUnet: adaBnDomain then flip TTA on the adapted model, restore, no leak', async () => {
  const net = new TinyUnet(3, 2, [4, 8]).eval();
  const x = T.rand([2, 3, 16, 16]);
  const before = snapshot(net);
  const live = T.memory().liveTensors;
  const h = await adaBnDomain(net, [x]);
  const p = flipTta(net, x);
  T.tidy(() => assertClose(p.sum(1), new Array(2 * 16 * 16).fill(1), 1e-5));
  p.dispose();
  h.restore();
  assert.deepEqual(snapshot(net), before);
  assert.equal(T.memory().liveTensors, live);
  T.dispose([x, net]);
});
