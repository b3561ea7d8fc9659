/**
 * RGB <-> Lab against OpenCV. The uint8 paths are OpenCV's fixed-point algorithm in exact
 * arithmetic (every product and partial sum of the float32 1x1 convolutions is an integer
 * below 2^24, or a multiple of 4 below 2^26), so bit-exactness holds on every CPU; float Lab
 * is float64 (round trip: 0.0014% of 1e-9); its gap to OpenCV's 8-bit Lab (1.78 of 2) is
 * OpenCV's fixed point, not rounding (float64 noise ~1e-13).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labToRgb, LabToRgb, releaseColorTables, rgbToLab, RgbToLab } from '../../src/color';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { agreement, colorSamples, goldenTensor } from '../helpers/color_golden';

const N = 16384;

test('rgbToLab uint8 equals OpenCV COLOR_RGB2LAB on 16,384 golden colors', () => {
  T.tidy(() => {
    const x = colorSamples(N).reshape([1, N, 1, 3]);
    const lab = rgbToLab(x, { layout: 'NHWC' });
    const a = agreement(lab, goldenTensor('rgb2lab'));
    assert.ok(a.within1 >= 0.999, `within +-1: ${a.within1}`);
    assert.equal(a.exact, 1, `bit-exact fraction ${a.exact}, max diff ${a.maxDiff}`);
  });
});

test('labToRgb uint8 equals OpenCV COLOR_LAB2RGB on 16,384 golden Lab triples', () => {
  T.tidy(() => {
    const x = colorSamples(N).reshape([1, N, 1, 3]);
    const rgb = labToRgb(x, { layout: 'NHWC' });
    const a = agreement(rgb, goldenTensor('lab2rgb'));
    assert.ok(a.within1 >= 0.999, `within +-1: ${a.within1}`);
    assert.equal(a.exact, 1, `bit-exact fraction ${a.exact}, max diff ${a.maxDiff}`);
  });
});

test('layouts and ranks agree: (N,3,H,W), (3,H,W) and (N,H,W,3)', () => {
  T.tidy(() => {
    const nhwc = colorSamples(2 * 4 * 6).reshape([2, 4, 6, 3]);
    const nchw = nhwc.permute([0, 3, 1, 2]).contiguous();
    const a = rgbToLab(nchw);
    assert.deepEqual(a.shape, [2, 3, 4, 6]);
    assert.equal(a.dtype, 'uint8');
    const b = rgbToLab(nhwc, { layout: 'NHWC' });
    assert.deepEqual(b.permute([0, 3, 1, 2]).contiguous().toArray(), a.toArray());
    const one = rgbToLab(nchw.select(0, 1));
    assert.deepEqual(one.shape, [3, 4, 6]);
    assert.deepEqual(one.toArray(), a.select(0, 1).contiguous().toArray());
    assert.deepEqual(labToRgb(a).toArray(), labToRgb(b, { layout: 'NHWC' }).permute([0, 3, 1, 2]).contiguous().toArray());
  });
});

test('function == module; the input is not mutated', () => {
  T.tidy(() => {
    const x = colorSamples(5 * 7).reshape([1, 5, 7, 3]).permute([0, 3, 1, 2]).contiguous();
    const before = x.toArray();
    assert.deepEqual(new RgbToLab().forward(x).toArray(), rgbToLab(x).toArray());
    assert.deepEqual(new LabToRgb().forward(x).toArray(), labToRgb(x).toArray());
    assert.deepEqual(x.toArray(), before);
  });
});

test('float Lab: round trip is the identity and it agrees with the 8-bit path', () => {
  T.tidy(() => {
    const u8 = colorSamples(4096).reshape([1, 64, 64, 3]).permute([0, 3, 1, 2]).contiguous();
    const f = u8.to('float64').div(255);
    const lab = rgbToLab(f);
    assert.equal(lab.dtype, 'float64');
    assertClose(labToRgb(lab), f.toArray(), 1e-9, 0, 'round trip');
    // L in 0..100 vs 8-bit L*255/100; a, b offset by 128 (OpenCV's fixed point: measured max 1.78)
    const scaled = lab.mul(T.tensor([2.55, 1, 1], [1, 3, 1, 1], { dtype: 'float64' })).add(T.tensor([0, 128, 128], [1, 3, 1, 1], { dtype: 'float64' }));
    const diff = scaled.sub(rgbToLab(u8).to('float64')).abs().max().item();
    assert.ok(diff <= 2, `float Lab vs OpenCV 8-bit: max diff ${diff}`);
    // known value: white is L=100, a=b=0
    assertClose(rgbToLab(T.ones([3, 1, 1])), [100, 0, 0], 1e-3, 0, 'white');
  });
});

test('bad input: named argument and op', () => {
  T.tidy(() => {
    assert.throws(() => rgbToLab(T.zeros([1, 4, 5, 5], { dtype: 'uint8' })), /Argument 'image' passed to 'rgbToLab' must have 3 channels/);
    assert.throws(() => rgbToLab(T.zeros([5, 5], { dtype: 'uint8' })), /must be \(N,3,H,W\) or \(3,H,W\)/);
    assert.throws(() => labToRgb(T.zeros([3, 2, 2], { dtype: 'int32' })), /must be uint8 .* or float32\/float64, got int32/);
    assert.throws(() => rgbToLab(T.zeros([3, 2, 2], { dtype: 'uint8' }), { layout: 'HWC' as 'NHWC' }), /'layout' passed to 'rgbToLab'/);
  });
});

test('no tensors leak (tables released)', () => {
  const x = T.tidy(() => colorSamples(20).reshape([1, 4, 5, 3]).permute([0, 3, 1, 2]).contiguous());
  rgbToLab(x).dispose();
  releaseColorTables();
  assertNoLeak(() => {
    T.tidy(() => {
      labToRgb(rgbToLab(x));
      labToRgb(rgbToLab(x.to('float32').div(255)));
    });
    releaseColorTables();
  });
  x.dispose();
});
