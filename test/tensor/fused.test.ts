/**
 * The training kernels that replace libtorch's where it is slow or keeps more memory:
 * depthwise convolution backward, the fused batch norm + SiLU node, and the im2col + GEMM
 * convolution algorithm. Each must give libtorch's own composition's values and gradients.
 *
 * Convolution-only cases draw their inputs on a grid of 1/4 (randq; scales on 1/8): every
 * product and partial sum is exact in float32 (sums of |terms| stay below 2^24 grid steps),
 * so kernel, twin and a float64 run agree exactly on any CPU, instruction set and thread
 * count: float32 rounding uses 0% of those tolerances (checks that a path is libtorch's own
 * compare bits off the grid: randn, or +1/3). Cases with batch norm (sqrt, SiLU) cannot be
 * exact; their inputs avoid cancellation (no 3-value batch statistics, x off zero mean, conv
 * weights >= 0), and float32 rounding uses at most 18% of their tolerances against a float64
 * run of the same case (23% for batchNormActConv2d's plain 3x3 output, from the libtorch
 * convolution both sides share) (measured on these inputs, each twin run in float64).
 */
import { testing } from '../../src/tensor/testing';
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { callT } from '../../src/tensor/call';
import { convKernel } from '../../src/tensor/conv_kernel';
import { assertClose, assertNoLeak } from '../helpers/assert';

/** Relative max difference of two tensors (to the second's largest magnitude). */
const rel = (a: T.Tensor, b: T.Tensor): number => T.tidy(() => a.sub(b).abs().max().item() / Math.max(1e-12, b.abs().max().item()));

/** randn on a grid of 1/4 (rand on 1/8): the same draws as randn (rand), exact products and sums below. */
const randq = (shape: number[]): T.Tensor => T.tidy(() => T.randn(shape).mul(4).round().div(4));
const randq01 = (shape: number[]): T.Tensor => T.tidy(() => T.rand(shape).mul(8).round().div(8));

interface Grads { y: T.Tensor; grads: T.Tensor[] }

/** y = f(leaves), backward with g; returns y and the leaves' gradients. */
function run(leaves: T.Tensor[], f: (xs: T.Tensor[]) => T.Tensor, g: T.Tensor | null): Grads {
  const xs = leaves.map((l) => l.detach().clone().requiresGrad_());
  const y = f(xs);
  y.backward(g ?? T.onesLike(y));
  return { y, grads: xs.map((x) => x.grad!) };
}

test('depthwise conv2d: the same values and gradients as libtorch (k 3/5/7, stride 1/2/3, padding 0-3, bias, odd sizes)', () => {
  T.tidy(() => {
    T.manualSeed(3);
    for (const [c, h, w, k, s, p] of [[3, 9, 11, 3, 1, 1], [4, 10, 7, 3, 2, 0], [5, 12, 13, 5, 1, 2], [6, 13, 10, 5, 2, 0], [6, 13, 10, 5, 2, 1], [2, 8, 8, 3, 2, 1], [3, 5, 6, 5, 1, 0], [3, 17, 19, 7, 1, 3], [4, 17, 19, 7, 3, 2], [2, 14, 23, 3, 3, 1]]) {
      const leaves = [randq([2, c, h, w]), randq([c, 1, k, k]), randq([c])];
      const probe = T.conv2d(leaves[0], leaves[1], leaves[2], { stride: s, padding: p, groups: c });
      const g = randq(probe.shape);
      const f = ([x, wt, b]: T.Tensor[]): T.Tensor => T.conv2d(x, wt, b, { stride: s, padding: p, groups: c });
      const fr = ([x, wt, b]: T.Tensor[]): T.Tensor => callT('conv2d', x.handle, wt.handle, b.handle, [s, s], [p, p], [1, 1], c);
      const ours = run(leaves, f, g);
      const ref = run(leaves, fr, g);
      const what = `c${c} ${h}x${w} k${k} s${s} p${p}`;
      ['x', 'weight', 'bias'].forEach((name, i) => assert.ok(rel(ours.grads[i], ref.grads[i]) < 2e-6, `${what}: grad of ${name} ${rel(ours.grads[i], ref.grads[i])}`));
      // off the grid (+1/3), where another forward would differ in the last bits: libtorch's exactly
      const off = leaves.map((t) => t.add(1 / 3));
      assert.equal(rel(run(off, f, g).y, run(off, fr, g).y), 0, `${what}: forward is libtorch's`);
    }
  });
});

test('depthwise conv2d without bias, and the raw kernels against libtorch on a larger map', () => {
  T.tidy(() => {
    const x = randq([2, 4, 40, 52]);
    const wt = randq([4, 1, 5, 5]);
    const ours = run([x, wt], ([a, b]) => T.conv2d(a, b, null, { padding: 2, groups: 4 }), null);
    const ref = run([x, wt], ([a, b]) => callT('conv2d', a.handle, b.handle, null, [1, 1], [2, 2], [1, 1], 4), null);
    assert.ok(rel(ours.grads[1], ref.grads[1]) < 2e-6);
    const g = randq([2, 4, 20, 26]);
    const gw = testing.callT('depthwiseWeightGrad', g.handle, x.handle, 3, 3, [2, 2], [1, 1]);
    const gx = testing.callT('depthwiseInputGrad', g.handle, randq([4, 1, 3, 3]).handle, 40, 52, [2, 2], [1, 1]);
    assert.deepEqual(gw.shape, [4, 1, 3, 3]);
    assert.deepEqual(gx.shape, [2, 4, 40, 52]);
    const xr = x.detach().clone().requiresGrad_();
    const wr = randq([4, 1, 3, 3]).requiresGrad_();
    callT('conv2d', xr.handle, wr.handle, null, [2, 2], [1, 1], [1, 1], 4).backward(g);
    assert.ok(rel(gw, wr.grad!) < 2e-6, 'weight kernel');
    const gx2 = testing.callT('depthwiseInputGrad', g.handle, wr.handle, 40, 52, [2, 2], [1, 1]);
    assert.ok(rel(gx2, xr.grad!) < 2e-6, 'input kernel');
    // a map whose weight-gradient sums span several float blocks of rows (22,500 terms
    // each, exact on the grid), against float64 libtorch: a lost or doubled block shows
    const xb = randq([1, 2, 90, 250]);
    const wb = randq([2, 1, 3, 3]).to('float64').requiresGrad_();
    const gb = randq([1, 2, 90, 250]);
    callT('conv2d', xb.to('float64').handle, wb.handle, null, [1, 1], [1, 1], [1, 1], 2).backward(gb.to('float64'));
    assert.ok(rel(testing.callT('depthwiseWeightGrad', gb.handle, xb.handle, 3, 3, [1, 1], [1, 1]).to('float64'), wb.grad!) < 1e-6, 'weight kernel, several blocks');
  });
});

test('depthwise conv2d: no autograd or no float32 CPU -> plain libtorch; errors are TorchErrors', () => {
  T.tidy(() => {
    const x = randq([1, 2, 6, 6]);
    const w = randq([2, 1, 3, 3]);
    assertClose(T.conv2d(x, w, null, { groups: 2, padding: 1 }), T.conv2d(x.to('float64'), w.to('float64'), null, { groups: 2, padding: 1 }).toArray(), 1e-5);
    assert.throws(() => callT('depthwiseConv2d', x.handle, T.randn([3, 1, 3, 3]).handle, null, [1, 1], [0, 0]), /x must be \(N,C,H,W\) and w \(C,1,kH,kW\)/);
  });
});

test('batchNormSilu equals silu(batchNorm) in values, gradients and running statistics; eval and no-grad compose', () => {
  T.tidy(() => {
    T.manualSeed(4);
    for (const shape of [[2, 3, 5, 7], [2, 16, 33, 40], [1, 4, 1, 33], [3, 2, 17, 9]]) {
      const c = shape[1];
      const leaves = [T.randn(shape).mul(3).add(1), T.randn([c]), T.randn([c])];
      const g = T.randn(shape);
      const stats = (): T.Tensor[] => [T.randn([c]).mul(0.1), T.rand([c]).add(0.5)];
      const [rm1, rv1] = stats();
      const [rm2, rv2] = [rm1.clone(), rv1.clone()];
      const opts = (xs: T.Tensor[]): T.BatchNormOptions => ({ weight: xs[1], bias: xs[2], training: true, momentum: 0.1, eps: 1e-3 });
      const ours = run(leaves, (xs) => T.batchNormSilu(xs[0], rm1, rv1, opts(xs)), g);
      const ref = run(leaves, (xs) => T.silu(T.batchNorm(xs[0], rm2, rv2, opts(xs))), g);
      const what = `[${shape.join(',')}]`;
      assert.ok(rel(ours.y, ref.y) < 1e-6, `${what} y ${rel(ours.y, ref.y)}`);
      ['x', 'weight', 'bias'].forEach((name, i) => assert.ok(rel(ours.grads[i], ref.grads[i]) < 2e-6, `${what} grad of ${name} ${rel(ours.grads[i], ref.grads[i])}`));
      assert.ok(rel(rm1, rm2) < 1e-6 && rel(rv1, rv2) < 1e-6, `${what} running statistics`);
    }
    // eval mode and no-grad take the composed path: the same numbers
    const x = T.randn([2, 3, 4, 4]);
    const [rm, rv, w, b] = [T.randn([3]), T.rand([3]).add(0.5), T.randn([3]), T.randn([3])];
    assertClose(T.batchNormSilu(x, rm, rv, { weight: w, bias: b }), T.silu(T.batchNorm(x, rm, rv, { weight: w, bias: b })).toArray(), 0);
    assert.throws(() => T.batchNormSilu(x, null, null, { training: false }), /eval mode needs 'runningMean' and 'runningVar'/);
  });
});

test('batchNormSilu: one value per channel is refused by name; no leak', () => {
  const w = T.ones([2]).requiresGrad_();
  const b = T.zeros([2]).requiresGrad_();
  assert.throws(() => T.tidy(() => T.batchNormSilu(T.randn([1, 2, 1, 1]), null, null, { weight: w, bias: b, training: true })), /more than 1 value per channel/);
  const x = T.randn([2, 2, 3, 3]);
  assertNoLeak(() => T.tidy(() => { T.batchNormSilu(x, null, null, { weight: w, bias: b, training: true }).sum().backward(); }));
  T.dispose([w, b, x]);
});

test("conv2d on the 'gemm' kernel gives libtorch's values and gradients", () => {
  T.tidy(() => {
    for (const [s, p] of [[1, 1], [2, 1], [1, 0]]) {
      const leaves = [randq([2, 8, 10, 12]), randq([16, 8, 3, 3]), randq([16])];
      const gemm = run(leaves, ([x, w, b]) => T.withConvKernel('gemm', () => T.conv2d(x, w, b, { stride: s, padding: p })), null);
      const auto = run(leaves, ([x, w, b]) => T.withConvKernel('libtorch', () => T.conv2d(x, w, b, { stride: s, padding: p })), null);
      assert.ok(rel(gemm.y, auto.y) < 1e-5);
      gemm.grads.forEach((gr, i) => assert.ok(rel(gr, auto.grads[i]) < 1e-5, `s${s} p${p} grad ${i}`));
    }
  });
});

test("conv2d on the 'winograd' kernel gives libtorch's values and gradients (odd sizes, 1x1 maps, bias); other shapes and no autograd take libtorch's", () => {
  T.tidy(() => {
    T.manualSeed(11);
    for (const [n, c, h, w, co] of [[2, 8, 10, 12, 16], [1, 5, 7, 9, 3], [2, 3, 1, 1, 4], [2, 6, 2, 3, 5], [1, 130, 5, 6, 70], [2, 4, 33, 47, 6]]) {
      const leaves = [randq([n, c, h, w]), randq([co, c, 3, 3]), randq([co])];
      const g = randq([n, co, h, w]);
      const wino = run(leaves, ([x, wt, b]) => T.withConvKernel('winograd', () => T.conv2d(x, wt, b, { padding: 1 })), g);
      const auto = run(leaves, ([x, wt, b]) => T.withConvKernel('libtorch', () => T.conv2d(x, wt, b, { padding: 1 })), g);
      const what = `${n}x${c}x${h}x${w} -> ${co}`;
      ['x', 'weight', 'bias'].forEach((name, i) => assert.ok(rel(wino.grads[i], auto.grads[i]) < 1e-5, `${what}: grad of ${name} ${rel(wino.grads[i], auto.grads[i])}`));
      const off = leaves.map((t) => t.add(1 / 3)); // off the grid: libtorch's forward exactly
      assert.equal(rel(run(off, ([x, wt, b]) => T.withConvKernel('winograd', () => T.conv2d(x, wt, b, { padding: 1 })), g).y, run(off, ([x, wt, b]) => T.withConvKernel('libtorch', () => T.conv2d(x, wt, b, { padding: 1 })), g).y), 0, `${what}: the forward is libtorch's`);
    }
    // stride 2 and 5x5 kernels are not Winograd's: libtorch's values exactly (randn, off the grid)
    for (const [k, s, p] of [[3, 2, 1], [5, 1, 2], [3, 1, 0]]) {
      const leaves = [T.randn([2, 4, 9, 10]), T.randn([6, 4, k, k])];
      const a = run(leaves, ([x, wt]) => T.withConvKernel('winograd', () => T.conv2d(x, wt, null, { stride: s, padding: p })), null);
      const b = run(leaves, ([x, wt]) => T.conv2d(x, wt, null, { stride: s, padding: p }), null);
      a.grads.forEach((gr, i) => assert.equal(rel(gr, b.grads[i]), 0, `k${k} s${s} p${p} grad ${i}`));
    }
    // on more than one libtorch thread the gradients are libtorch's own
    const threads = T.getNumThreads();
    T.setNumThreads(2);
    try {
      const leaves = [T.randn([2, 8, 10, 12]), T.randn([16, 8, 3, 3])];
      const a = run(leaves, ([x, wt]) => T.withConvKernel('winograd', () => T.conv2d(x, wt, null, { padding: 1 })), null);
      const b = run(leaves, ([x, wt]) => T.conv2d(x, wt, null, { padding: 1 }), null);
      a.grads.forEach((gr, i) => assert.equal(rel(gr, b.grads[i]), 0, `two threads: grad ${i}`));
    } finally {
      T.setNumThreads(threads);
    }
    const [x, wt] = [T.randn([1, 2, 4, 4]), T.randn([3, 2, 3, 3])];
    T.noGrad(() => assert.equal(rel(T.withConvKernel('winograd', () => T.conv2d(x, wt, null, { padding: 1 })), T.conv2d(x, wt, null, { padding: 1 })), 0));
  });
});

test('the raw Winograd kernels equal libtorch on a larger map (values and both gradients)', () => {
  T.tidy(() => {
    const x = randq([2, 16, 33, 47]).requiresGrad_();
    const wt = randq([24, 16, 3, 3]).div(4).requiresGrad_();
    const g = randq([2, 24, 33, 47]);
    const ref = T.conv2d(x, wt, null, { padding: 1 });
    ref.backward(g);
    const y = T.noGrad(() => testing.callT('winogradConv2d', x.handle, wt.handle));
    assert.ok(rel(y, ref.detach()) < 1e-5, `y ${rel(y, ref.detach())}`);
    const [gx, gw] = testing.callTs('winogradConv2dGrads', g.handle, x.handle, wt.handle);
    assert.ok(rel(gx, x.grad!) < 1e-5, `dx ${rel(gx, x.grad!)}`);
    assert.ok(rel(gw, wt.grad!) < 1e-5, `dw ${rel(gw, wt.grad!)}`);
  });
});

test('batchNormActConv2d equals conv2d(pad(silu(batchNorm))) in values, gradients and running statistics', () => {
  T.tidy(() => {
    T.manualSeed(5);
    const cases: [number[], number, number, number[], boolean][] = [
      // shape, k, stride, pads [l, r, t, b], depthwise
      [[2, 6, 12, 14], 3, 2, [0, 1, 0, 1], true],
      [[2, 6, 12, 14], 5, 2, [1, 2, 1, 2], true],
      [[2, 4, 9, 11], 5, 1, [2, 2, 2, 2], true],
      [[2, 4, 9, 11], 3, 1, [1, 1, 1, 1], false],
    ];
    for (const [shape, k, s, pads, dw] of cases) {
      const c = shape[1];
      const cout = dw ? c : 5;
      // x off zero mean (the running mean is no cancellation), conv weights >= 0 (outputs no cancellation)
      const leaves = [T.randn(shape).mul(2).add(1), T.randn([c]), T.randn([c]), T.randn([cout, dw ? 1 : c, k, k]).abs(), T.randn([cout])];
      const conv = { stride: s, pads, groups: dw ? c : 1 };
      const [rm1, rv1, rm2, rv2] = [T.zeros([c]), T.ones([c]), T.zeros([c]), T.ones([c])];
      const bn = (xs: T.Tensor[]): T.BatchNormOptions => ({ weight: xs[1], bias: xs[2], training: true, momentum: 0.1, eps: 1e-3 });
      const ours = run(leaves, (xs) => T.batchNormActConv2d(xs[0], rm1, rv1, bn(xs), xs[3], xs[4], conv), null);
      const ref = run(leaves, (xs) => T.conv2d(T.pad(T.silu(T.batchNorm(xs[0], rm2, rv2, bn(xs))), pads), xs[3], xs[4], { stride: s, groups: conv.groups }), null);
      const what = `k${k} s${s} pads [${pads.join(',')}]${dw ? ' depthwise' : ''}`;
      assert.deepEqual(ours.y.shape, ref.y.shape);
      assert.ok(rel(ours.y, ref.y) < 1e-6, `${what} y ${rel(ours.y, ref.y)}`);
      ['x', 'bn weight', 'bn bias', 'conv weight', 'conv bias'].forEach((name, i) => assert.ok(rel(ours.grads[i], ref.grads[i]) < 5e-6, `${what} grad of ${name} ${rel(ours.grads[i], ref.grads[i])}`));
      assert.ok(rel(rm1, rm2) < 1e-6 && rel(rv1, rv2) < 1e-6, `${what} running statistics`);
    }
    assert.throws(() => T.batchNormActConv2d(T.randn([2, 3, 4, 4]), null, null, { training: true }, T.randn([3, 1, 3, 3]), null, { pads: [1, 1] }), /'pads' passed to 'batchNormActConv2d' must be 4 non-negative integers/);
  });
});

test('scaledConv2d equals conv2d(x * scale) in values and gradients (per-sample and shared scale, 1x1 and others)', () => {
  T.tidy(() => {
    // 1x1 stride 1 unpadded (per-sample weights, no product formed), then libtorch's path
    for (const [sn, k, s, p, h] of [[2, 1, 1, 0, 9], [1, 1, 1, 0, 9], [3, 1, 1, 0, 130], [1, 3, 2, 1, 9], [2, 1, 2, 0, 9]]) {
      const leaves = [randq([sn === 3 ? 3 : 2, 6, h, 10]), randq01([sn, 6, 1, 1]), randq([4, 6, k, k]), randq([4])];
      const ours = run(leaves, ([x, sc, w, b]) => T.scaledConv2d(x, sc, w, b, { stride: s, padding: p }), null);
      const ref = run(leaves, ([x, sc, w, b]) => T.conv2d(x.mul(sc), w, b, { stride: s, padding: p }), null);
      assert.ok(rel(ours.y, ref.y) < 1e-6);
      ['x', 'scale', 'weight', 'bias'].forEach((name, i) => assert.ok(rel(ours.grads[i], ref.grads[i]) < 2e-6, `k${k} grad of ${name} ${rel(ours.grads[i], ref.grads[i])}`));
    }
    assert.throws(() => T.scaledConv2d(T.randn([1, 2, 3, 3]), T.randn([2]), T.randn([1, 2, 1, 1]), null), /'scale' passed to 'scaledConv2d' must be 4-D/);
  });
});

test("batchNormActConv2d with 'relu' (on each conv kernel) equals conv2d(relu(batchNorm))", () => {
  T.tidy(() => {
    for (const kernel of ['libtorch', 'gemm', 'winograd'] as const) {
      const leaves = [T.randn([2, 4, 9, 11]), T.randn([4]), T.randn([4]), T.randn([6, 4, 3, 3]), T.randn([6])];
      const [rm1, rv1, rm2, rv2] = [T.zeros([4]), T.ones([4]), T.zeros([4]), T.ones([4])];
      const bn = (xs: T.Tensor[]): T.BatchNormOptions => ({ weight: xs[1], bias: xs[2], training: true, momentum: 0.1, eps: 1e-5 });
      const ours = run(leaves, (xs) => T.withConvKernel(kernel, () => T.batchNormActConv2d(xs[0], rm1, rv1, bn(xs), xs[3], xs[4], { pads: [1, 1, 1, 1], activation: 'relu' })), null);
      const ref = run(leaves, (xs) => T.withConvKernel('libtorch', () => T.conv2d(T.relu(T.batchNorm(xs[0], rm2, rv2, bn(xs))), xs[3], xs[4], { padding: 1 })), null);
      assert.ok(rel(ours.y, ref.y) < 1e-5, `${kernel} y`);
      ['x', 'bn weight', 'bn bias', 'conv weight', 'conv bias'].forEach((name, i) => assert.ok(rel(ours.grads[i], ref.grads[i]) < 1e-5, `${kernel} grad of ${name} ${rel(ours.grads[i], ref.grads[i])}`));
      assert.ok(rel(rv1, rv2) < 1e-6);
    }
    assert.throws(() => T.batchNormActConv2d(T.randn([2, 3, 4, 4]), null, null, { training: true }, T.randn([3, 3, 3, 3]), null, { activation: 'tanh' as 'relu' }), /'activation' passed to 'batchNormActConv2d'/);
  });
});

test('upCatConv2d equals conv2d(cat([upsample x2, skip])), with and without skip (auto: polyphase)', () => {
  T.tidy(() => {
    for (const [n, cx, cs, co, h, w] of [[2, 5, 3, 7, 4, 6], [1, 9, 4, 3, 7, 5], [3, 2, 6, 5, 1, 1]]) {
    for (const withSkip of [true, false]) {
      for (const kernel of ['libtorch', 'gemm', 'winograd'] as const) {
        const leaves = [randq([n, cx, h, w]), randq([n, cs, 2 * h, 2 * w]), randq([co, withSkip ? cx + cs : cx, 3, 3]), randq([co])];
        const ours = run(leaves, ([x, s, w, b]) => T.withConvKernel(kernel, () => T.upCatConv2d(x, withSkip ? s : null, w, b, { padding: 1 })), null);
        const ref = run(leaves, ([x, s, w, b]) => {
          const u = T.interpolate(x, { scaleFactor: 2, mode: 'nearest' });
          return T.conv2d(withSkip ? T.cat([u, s], 1) : u, w, b, { padding: 1 });
        }, null);
        const what = `${n}x${cx}x${h}x${w} ${withSkip ? 'skip' : 'no skip'} ${kernel}`;
        assert.ok(rel(ours.y, ref.y) < 1e-5, `${what} y`);
        ['x', 'skip', 'weight', 'bias'].forEach((name, i) => {
          if (!withSkip && i === 1) return; // unused leaf: no gradient on either side
          assert.ok(rel(ours.grads[i], ref.grads[i]) < 1e-5, `${what} grad of ${name}`);
        });
      }
    }
    }
    // inference (no autograd) takes the same polyphase node; float64 composes libtorch's ops
    T.noGrad(() => {
      const [x, s, w] = [randq([2, 6, 5, 7]), randq([2, 3, 10, 14]), randq([4, 9, 3, 3])];
      const ref = T.conv2d(T.cat([T.interpolate(x, { scaleFactor: 2, mode: 'nearest' }), s], 1), w, null, { padding: 1 });
      assert.ok(rel(T.upCatConv2d(x, s, w, null, { padding: 1 }), ref) < 1e-5, 'no-grad polyphase');
      const [xd, sd, wd] = [x, s, w].map((t) => t.to('float64'));
      assert.ok(rel(T.upCatConv2d(xd, sd, wd, null, { padding: 1 }).to('float32'), ref) < 1e-5, 'float64');
    });
    assert.throws(() => T.tidy(() => T.upCatConv2d(T.randn([1, 2, 3, 3]).requiresGrad_(), T.randn([1, 2, 5, 6]), T.randn([4, 4, 3, 3]), null, { padding: 1 })), /skip must be \(N, C, 2H, 2W\)/);
  });
});

test('the native kernels and fused nodes refuse bad arguments by name (a TorchError, never a native fault)', () => {
  T.tidy(() => {
    const f = (): T.Tensor => T.randn([2, 3, 4, 4]);
    const cases: [() => unknown, RegExp][] = [
      [() => callT('rgbHistogramCounts', f().handle, false, 5), /uint8 images only/],
      [() => callT('rgbHistogramCounts', T.zeros([1, 3, 2, 2], { dtype: 'uint8' }).handle, false, 9), /shift must be 0\.\.8/],
      [() => callT('rgbHistogramCounts', T.zeros([1, 4, 2, 2], { dtype: 'uint8' }).handle, false, 5), /images must be \(N,3,H,W\) or \(N,H,W,3\)/],
      [() => callT('int8Dot', T.zeros([4, 8], { dtype: 'int8' }).handle, T.zeros([1, 8], { dtype: 'int32' }).handle, null), /queries must be int16/],
      [() => callT('int8Dot', T.zeros([4, 8], { dtype: 'int8' }).handle, T.zeros([1, 7], { dtype: 'int16' }).handle, null), /codes and queries differ in D/],
      [() => callT('int8Dot', T.zeros([4, 8], { dtype: 'int8' }).handle, T.zeros([1, 8], { dtype: 'int16' }).handle, T.zeros([1], { dtype: 'int32' }).handle), /rows must be int64/],
      [() => callT('depthwiseConv2d', f().to('float64').handle, T.randn([3, 1, 3, 3]).to('float64').handle, null, [1, 1], [1, 1]), /float32 CPU tensors only/],
      [() => callT('depthwiseConv2d', f().handle, T.randn([3, 1, 3, 3]).handle, null, [1], [1, 1]), /stride and padding take 2 values/],
      [() => testing.callT('depthwiseWeightGrad', T.randn([1, 3, 4, 4]).handle, f().handle, 3, 3, [1, 1], [1, 1]), /gradOutput and x must be float32 \(N,C,H,W\) of one N and C/],
      [() => testing.callT('depthwiseWeightGrad', f().handle, f().handle, 3, 3, [1], [1, 1]), /stride takes 2 values >= 1 and padding 2 values >= 0/],
      [() => testing.callT('depthwiseInputGrad', f().handle, T.randn([2, 1, 3, 3]).handle, 4, 4, [1, 1], [1, 1]), /w must be \(C,1,kH,kW\) for gradOutput's C/],
      [() => callT('batchNormSilu', f().handle, T.ones([2]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5), /weight and bias must be float32 \(C\)/],
      [() => callT('batchNormSilu', f().to('float64').handle, T.ones([3]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5), /x must be a float32 CPU tensor/],
      [() => callT('batchNormActConv2d', f().handle, T.ones([3]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5, T.randn([3, 1, 3, 3]).handle, null, [1, 1], [1, 1, 1, 1], 3, 'tanh', 'auto'), /activation must be 'silu' or 'relu', got 'tanh'/],
      [() => callT('batchNormActConv2d', f().handle, T.ones([3]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5, T.randn([3, 1, 3, 3]).handle, null, [1, 1], [1, 1, 1], 3, 'silu', 'auto'), /stride takes 2 values and pads 4/],
      [() => callT('batchNormActConv2d', f().handle, T.ones([2]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5, T.randn([3, 1, 3, 3]).handle, null, [1, 1], [1, 1, 1, 1], 3, 'silu', 'auto'), /weight and bias must be \(C\)/],
      [() => callT('batchNormActConv2d', T.randn([3, 4, 4]).handle, T.ones([3]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5, T.randn([3, 1, 3, 3]).handle, null, [1, 1], [1, 1, 1, 1], 3, 'silu', 'auto'), /x must be a float32 CPU tensor \(N,C,H,W\)/],
      [() => callT('upCatConv2d', f().handle, null, T.randn([4, 3, 3, 3]).handle, null, [1], 'auto'), /padding takes 2 values/],
      [() => callT('upCatConv2d', f().to('float64').handle, null, T.randn([4, 3, 3, 3]).handle, null, [1, 1], 'auto'), /x must be a float32 CPU tensor/],
      [() => callT('upCatConv2d', f().handle, f().to('float64').handle, T.randn([4, 6, 3, 3]).handle, null, [1, 1], 'auto'), /skip must be \(N, C, 2H, 2W\)/],
      [() => callT('upCatConv2d', f().handle, T.randn([2, 3, 8, 8]).to('float64').handle, T.randn([4, 6, 3, 3]).handle, null, [1, 1], 'auto'), /skip must be a float32 CPU tensor like x/],
      [() => callT('batchNormActConv2d', f().handle, T.ones([3]).handle, T.zeros([3]).handle, null, null, 0.1, 1e-5, T.randn([3, 3, 3, 3]).handle, null, [1, 1], [1, 1, 1, 1], 1, 'relu', 'fft'), /batchNormActConv2d: algorithm must be 'auto', 'gemm' or 'winograd', got 'fft'/],
      [() => callT('upCatConv2d', f().handle, null, T.randn([4, 3, 3, 3]).handle, null, [1, 1], 'fft'), /upCatConv2d: algorithm must be 'auto', 'gemm' or 'winograd', got 'fft'/],
      [() => callT('conv2dWinograd', f().handle, T.randn([4, 3, 5, 5]).handle, null), /conv2dWinograd: x must be float32 \(N,C,H,W\) on the CPU and w \(Co,C,3,3\)/],
      [() => callT('conv2dWinograd', f().handle, T.randn([4, 2, 3, 3]).handle, null), /conv2dWinograd: x must be float32/],
      [() => testing.callT('winogradConv2d', f().handle, T.randn([4, 2, 3, 3]).handle), /winograd: input \[2, 3, 4, 4\] does not match transformed kernels \[16, 4, 2\]/],
      [() => testing.callT('winogradConv2d', f().handle, T.randn([4, 3, 2, 2]).handle), /winograd: expected float32 3x3 kernels/],
      [() => testing.callTs('winogradConv2dGrads', T.randn([2, 4, 5, 4]).handle, f().handle, T.randn([4, 3, 3, 3]).handle), /winograd: output gradient \[2, 4, 5, 4\] does not match input \[2, 3, 4, 4\]/],
      [() => callT('scaledConv2d', f().handle, T.rand([2, 3, 2, 2]).handle, T.randn([4, 3, 1, 1]).handle, null, [1, 1], [0, 0]), /x must be \(N,C,H,W\) and scale \(N,C,1,1\)/],
    ];
    for (const [fn, re] of cases) assert.throws(fn, (e: Error) => e instanceof T.TorchError && re.test(e.message), String(re));
  });
});

test('the hand kernels and fused nodes agree on one and two libtorch threads', () => {
  T.tidy(() => {
    const cases: Array<[string, T.Tensor[], (xs: T.Tensor[]) => T.Tensor]> = [
      ['depthwise k5 s1', [randq([2, 24, 20, 22]), randq([24, 1, 5, 5])], ([x, w]) => T.conv2d(x, w, null, { padding: 2, groups: 24 })],
      ['depthwise k3 s2', [randq([2, 24, 20, 22]), randq([24, 1, 3, 3])], ([x, w]) => T.conv2d(x, w, null, { stride: 2, padding: 1, groups: 24 })],
      ['upCatConv2d polyphase', [randq([2, 40, 6, 7]), randq([2, 8, 12, 14]), randq([16, 48, 3, 3])], ([x, s, w]) => T.upCatConv2d(x, s, w, null, { padding: 1 })],
      ['scaledConv2d 1x1', [randq([2, 40, 9, 10]), randq01([2, 40, 1, 1]), randq([12, 40, 1, 1])], ([x, sc, w]) => T.scaledConv2d(x, sc, w, null)],
    ];
    const threads = T.getNumThreads();
    try {
      for (const [what, leaves, f] of cases) {
        T.setNumThreads(1);
        const one = run(leaves, f, null);
        T.setNumThreads(2);
        const two = run(leaves, f, null);
        assert.ok(rel(two.y, one.y) < 1e-6, `${what}: values`);
        one.grads.forEach((gr, i) => assert.ok(rel(two.grads[i], gr) < 1e-6, `${what}: grad ${i} ${rel(two.grads[i], gr)}`));
      }
    } finally {
      T.setNumThreads(threads);
    }
  });
});

test('convKernel, the one kernel choice: Winograd from 128 input and 64 output channels (3x3, stride 1, padding 1, training), depthwise for depthwise convolutions, libtorch otherwise', () => {
  T.tidy(() => {
    const g = (stride = 1, padding = 1, groups = 1) => ({ stride: [stride, stride], padding: [padding, padding], dilation: [1, 1], groups });
    const leaf = (shape: number[]) => T.randn(shape).requiresGrad_();
    assert.equal(convKernel(leaf([1, 128, 4, 4]), leaf([64, 128, 3, 3]), g()), 'winograd');
    assert.equal(convKernel(leaf([1, 127, 4, 4]), leaf([64, 127, 3, 3]), g()), 'libtorch');
    assert.equal(convKernel(leaf([1, 128, 4, 4]), leaf([63, 128, 3, 3]), g()), 'libtorch');
    assert.equal(convKernel(leaf([1, 128, 4, 4]), leaf([64, 128, 3, 3]), g(2)), 'libtorch');
    assert.equal(convKernel(leaf([1, 128, 4, 4]), leaf([64, 128, 3, 3]), g(1, 0)), 'libtorch');
    assert.equal(convKernel(leaf([1, 8, 4, 4]), leaf([8, 1, 3, 3]), g(1, 1, 8)), 'depthwise');
    assert.equal(convKernel(leaf([1, 8, 4, 4]), leaf([16, 2, 3, 3]), g(1, 1, 4)), 'libtorch');
    T.noGrad(() => assert.equal(convKernel(leaf([1, 128, 4, 4]), leaf([64, 128, 3, 3]), g()), 'libtorch'));
    assert.equal(convKernel(T.randn([1, 128, 4, 4]), T.randn([64, 128, 3, 3]), g()), 'libtorch', 'nothing recorded by autograd');
    assert.equal(convKernel(leaf([1, 128, 4, 4]).to('float64'), leaf([64, 128, 3, 3]).to('float64'), g()), 'libtorch', 'float64');
    assert.equal(T.withConvKernel('libtorch', () => convKernel(leaf([1, 128, 4, 4]), leaf([64, 128, 3, 3]), g())), 'libtorch');
  });
});
