/**
 * nn functional ops against PyTorch goldens (test/golden/core.json, made by
 * tools/golden/core.py with torch in float64). Each case runs in float64
 * (atol/rtol 1e-10) and float32 (atol/rtol 1e-5); every case leaks no tensor.
 * Against the float64 goldens float32 rounding uses at most 9.5% of the float32 tolerance
 * (gridSample bilinear reflection) and float64 rounding 0.001% of 1e-10 (measured on 1 and 4
 * threads, and with ATen and oneDNN held to AVX2 and to no SIMD).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';
import { assertGolden, GoldenCase, loadGolden, makeInputs, TOL } from '../helpers/golden';

const golden = loadGolden('core');
const DTYPES = ['float64', 'float32'] as const;

type Runner = (x: Record<string, T.Tensor>, p: Record<string, any>, dtype: T.DType) => Record<string, T.Tensor>;

function casesOf(prefix: string): [string, GoldenCase][] {
  const list = Object.entries(golden.cases).filter(([name]) => name.startsWith(`${prefix}.`));
  assert.ok(list.length > 0, `no golden cases for ${prefix}`);
  return list;
}

/** Runs every case of an op in float64 and float32 and compares each named output. */
function checkOp(prefix: string, run: Runner, tol32 = TOL.float32): void {
  for (const [name, c] of casesOf(prefix)) {
    for (const dtype of DTYPES) {
      assertNoLeak(() => T.tidy(() => {
        const outs = run(makeInputs(c, dtype), c.params as Record<string, any>, dtype);
        const keys = Object.keys(c.out);
        assert.deepEqual(Object.keys(outs).sort(), [...keys].sort(), `${name}: outputs`);
        for (const k of keys) {
          assert.equal(outs[k].dtype, dtype, `${name} ${k} dtype`);
          assertGolden(outs[k], c.out[k], `${name} ${k} (${dtype})`, dtype === 'float32' ? tol32 : TOL.float64);
        }
      }));
    }
  }
}

test('golden file header names torch and the command that made it', () => {
  assert.match(golden.header.torch, /^\d+\.\d+/);
  assert.match(golden.header.command, /tools\/golden\/core\.py/);
  assert.ok(Object.keys(golden.cases).length > 50);
});

test('conv2d: stride, padding (numbers, same, valid), dilation, groups, bias', () => {
  checkOp('conv2d', (x, p) => ({ y: T.conv2d(x.x, x.weight, x.bias ?? null, p) }));
});

test('convTranspose2d: stride, padding, outputPadding, groups, dilation', () => {
  checkOp('convTranspose2d', (x, p) => ({ y: T.convTranspose2d(x.x, x.weight, x.bias, p) }));
});

test('batchNorm: training output and updated running stats; eval output', () => {
  checkOp('batchNorm', (x, p) => {
    const y = T.batchNorm(x.x, x.runningMean, x.runningVar, { weight: x.weight, bias: x.bias, ...p });
    return { y, runningMean: x.runningMean, runningVar: x.runningVar };
  });
});

test('maxPool2d, avgPool2d, adaptiveAvgPool2d, adaptiveMaxPool2d', () => {
  checkOp('maxPool2d', (x, p) => ({ y: T.maxPool2d(x.x, p.kernelSize, p) }));
  checkOp('avgPool2d', (x, p) => ({ y: T.avgPool2d(x.x, p.kernelSize, p) }));
  checkOp('adaptiveAvgPool2d', (x, p) => ({ y: T.adaptiveAvgPool2d(x.x, p.outputSize) }));
  checkOp('adaptiveMaxPool2d', (x, p) => ({ y: T.adaptiveMaxPool2d(x.x, p.outputSize) }));
});

test('interpolate: nearest, nearest-exact, bilinear and bicubic, by size and by scaleFactor, alignCorners both', () => {
  checkOp('interpolate', (x, p) => ({ y: T.interpolate(x.x, p) }));
});

test('affineGrid and gridSample: bilinear/nearest/bicubic, zeros/border/reflection, alignCorners both', () => {
  checkOp('affineGrid', (x, p) => ({ grid: T.affineGrid(x.theta, p.size, p.alignCorners) }));
  checkOp('gridSample', (x, p) => ({ y: T.gridSample(x.x, T.affineGrid(x.theta, p.size, p.alignCorners), p) }));
});

test('softmax and logSoftmax over each dim', () => {
  checkOp('softmax', (x, p) => ({ y: T.softmax(x.x, p.dim) }));
  checkOp('logSoftmax', (x, p) => ({ y: x.x.logSoftmax(p.dim) }));
});

test('gelu (exact and tanh) and layerNorm', () => {
  checkOp('gelu', (x, p) => ({ y: T.gelu(x.x, p.approximate) }));
  checkOp('layerNorm', (x, p) => ({ y: T.layerNorm(x.x, p.normalizedShape, x.weight, x.bias, p.eps ?? 1e-5) }));
});

test('var and std: all or some dims, unbiased or not, keepdim', () => {
  checkOp('var', (x, p) => ({
    var: T.variance(x.x, p.dim, { unbiased: p.unbiased, keepdim: p.keepdim }),
    std: x.x.std(p.dim, { unbiased: p.unbiased, keepdim: p.keepdim }),
  }));
});

test('crossEntropy: class weights, ignoreIndex, label smoothing, reduction none/mean/sum', () => {
  checkOp('crossEntropy', (x, p) => ({ loss: T.crossEntropy(x.input, x.target, { weight: x.weight, ...p }) }));
});

test('mseLoss (none/mean/sum), l1Loss, nllLoss, binaryCrossEntropyWithLogits (weight, posWeight)', () => {
  checkOp('mseLoss', (x, p) => ({ loss: T.mseLoss(x.input, x.target, p.reduction) }));
  checkOp('l1Loss', (x, p) => ({ loss: T.l1Loss(x.input, x.target, p.reduction) }));
  checkOp('nllLoss', (x, p) => ({ loss: T.nllLoss(T.logSoftmax(x.input, 1), x.target, { weight: x.weight, reduction: p.reduction }) }));
  checkOp('bceWithLogits', (x, p) => ({ loss: T.binaryCrossEntropyWithLogits(x.input, x.target, p.reduction, x.weight, x.posWeight) }));
});

test('groupNorm with and without affine parameters', () => {
  checkOp('groupNorm', (x, p) => ({ y: T.groupNorm(x.x, p.numGroups, x.weight, x.bias) }));
});

/** Runs a grad.* case: forward, backward with the stored upstream gradient, then each input's grad. */
function gradCase(fn: (x: Record<string, T.Tensor>, p: Record<string, any>) => T.Tensor): Runner {
  return (x, p) => {
    const wrt = ['x', 'weight', 'bias', 'grid', 'input'];
    for (const k of wrt) if (x[k] !== undefined && !(k === 'weight' && x.target !== undefined)) x[k].requiresGrad_(true);
    const y = fn(x, p);
    if (x.upstream !== undefined) y.backward(x.upstream);
    else y.backward();
    const out: Record<string, T.Tensor> = { y };
    for (const k of wrt) {
      const g = x[k]?.requiresGrad ? x[k].grad : undefined;
      if (g !== undefined) out[`grad_${k}`] = g;
    }
    return out;
  };
}

test('gradients of conv2d, batchNorm (training), interpolate, gridSample and crossEntropy equal PyTorch\'s', () => {
  const runners: Record<string, (x: Record<string, T.Tensor>, p: Record<string, any>) => T.Tensor> = {
    'grad.conv2d': (x, p) => T.conv2d(x.x, x.weight, x.bias, p),
    'grad.batchNorm_train': (x, p) => T.batchNorm(x.x, null, null, { weight: x.weight, bias: x.bias, ...p }),
    'grad.interpolate_bilinear': (x, p) => T.interpolate(x.x, p),
    'grad.interpolate_bilinear_ac': (x, p) => T.interpolate(x.x, p),
    'grad.gridSample_bilinear_zeros': (x, p) => T.gridSample(x.x, x.grid, p),
    'grad.gridSample_bilinear_border_ac': (x, p) => T.gridSample(x.x, x.grid, p),
    'grad.crossEntropy_weighted': (x, p) => T.crossEntropy(x.input, x.target, { weight: x.weight, ...p }),
  };
  const names = casesOf('grad').map(([n]) => n);
  assert.deepEqual(names.sort(), Object.keys(runners).sort());
  for (const [name, fn] of Object.entries(runners)) {
    const c = golden.cases[name];
    for (const dtype of DTYPES) {
      assertNoLeak(() => T.tidy(() => {
        const outs = gradCase(fn)(makeInputs(c, dtype), c.params as Record<string, any>, dtype);
        assert.deepEqual(Object.keys(outs).sort(), Object.keys(c.out).sort(), `${name}: outputs`);
        for (const k of Object.keys(c.out)) assertGolden(outs[k], c.out[k], `${name} ${k} (${dtype})`, dtype === 'float32' ? TOL.float32 : TOL.float64);
      }));
    }
  }
});

test('argument errors name the argument and the op', () => {
  T.tidy(() => {
    const x3 = T.zeros([3, 8, 8]);
    const x = T.zeros([1, 3, 8, 8]);
    const w = T.zeros([4, 3, 3, 3]);
    assert.throws(() => T.conv2d(x3, w), /Argument 'x' passed to 'conv2d' must be 4-D \(N,C,H,W\), got \[3,8,8\]/);
    assert.throws(() => T.conv2d(x, T.zeros([4, 3, 3])), /Argument 'weight' passed to 'conv2d' must be 4-D/);
    assert.throws(() => T.conv2d(x, w, T.zeros([4, 1])), /Argument 'bias' passed to 'conv2d' must be 1-D/);
    assert.throws(() => T.conv2d(x, T.zeros([4, 2, 3, 3])), /Argument 'x' passed to 'conv2d' has 3 channels/);
    assert.throws(() => T.conv2d(x, w, null, { stride: [1, 2, 3] }), /Argument 'stride' passed to 'conv2d'/);
    assert.throws(() => T.conv2d(x, w, null, { groups: 0 }), /Argument 'groups' passed to 'conv2d' must be an integer >= 1/);
    assert.throws(() => T.conv2d('x' as unknown as T.Tensor, w), /Argument 'x' passed to 'conv2d' must be a Tensor, got string x/);
    assert.throws(() => T.convTranspose2d(x3, w), /Argument 'x' passed to 'convTranspose2d' must be 4-D/);
    assert.throws(() => T.interpolate(x3, { size: 4 }), /Argument 'x' passed to 'interpolate' must be 4-D/);
    assert.throws(() => T.interpolate(x, {}), /'interpolate' needs exactly one of 'size' and 'scaleFactor'/);
    assert.throws(() => T.interpolate(x, { size: 4, scaleFactor: 2 }), /exactly one of/);
    assert.throws(() => T.interpolate(x, { size: 4, mode: 'area' as 'nearest' }), /Argument 'mode' passed to 'interpolate' must be one of 'nearest'/);
    assert.throws(() => T.interpolate(x, { size: 4, alignCorners: true }), /'alignCorners' passed to 'interpolate' only applies/);
    assert.throws(() => T.interpolate(x, { scaleFactor: -1 }), /Argument 'scaleFactor' passed to 'interpolate' must be a positive/);
    assert.throws(() => T.gridSample(x, T.zeros([1, 4, 4])), /Argument 'grid' passed to 'gridSample' must be 4-D \(N,Ho,Wo,2\)/);
    assert.throws(() => T.gridSample(x, T.zeros([1, 4, 4, 2]), { paddingMode: 'wrap' as 'zeros' }), /Argument 'paddingMode' passed to 'gridSample'/);
    assert.throws(() => T.affineGrid(T.zeros([2, 3]), [1, 1, 4, 4]), /Argument 'theta' passed to 'affineGrid' must be 3-D/);
    assert.throws(() => T.affineGrid(T.zeros([1, 2, 3]), [1, 4, 4]), /Argument 'size' passed to 'affineGrid' must be \[N,C,H,W\]/);
    assert.throws(() => T.softmax(x, 4), /Argument 'dim' passed to 'softmax' must be a dim in \[-4, 3\], got 4/);
    assert.throws(() => T.batchNorm(T.zeros([3]), null, null), /Argument 'x' passed to 'batchNorm' must be at least 2-D/);
    assert.throws(() => T.batchNorm(x, null, null, { training: false }), /'batchNorm' in eval mode needs 'runningMean' and 'runningVar'/);
    assert.throws(() => T.maxPool2d(x, [2, 2, 2]), /Argument 'kernelSize' passed to 'maxPool2d'/);
    assert.throws(() => T.crossEntropy(x, T.zeros([1, 8, 8], { dtype: 'int32' })), /Argument 'target' passed to 'crossEntropy' must be int64/);
    assert.throws(() => T.crossEntropy(x, T.zeros([1, 8, 8], { dtype: 'int64' }), { reduction: 'avg' as 'mean' }), /Argument 'reduction' passed to 'crossEntropy'/);
    assert.throws(() => T.mseLoss(x, x3), /'mseLoss' needs input and target of one shape, got \[1,3,8,8\] and \[3,8,8\]/);
    assert.throws(() => T.dropout(x, 1.5), /Argument 'p' passed to 'dropout' must be in \[0, 1\], got 1.5/);
  });
});

test('libtorch shape errors in functional ops become TorchError', () => {
  T.tidy(() => {
    const x = T.zeros([1, 3, 2, 2]);
    assert.throws(() => T.conv2d(x, T.zeros([4, 3, 5, 5])), (e: Error & { code?: string }) => e instanceof T.TorchError && e.code === 'ERR_TORCH');
    assert.throws(() => T.crossEntropy(T.zeros([2, 3]), T.tensor([0, 5], [2], { dtype: 'int64' })), T.TorchError);
  });
});
