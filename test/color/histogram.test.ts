/**
 * Against cv2.calcHist + cv2.normalize (float32): cqseg's and OpenCV's float32 rounding each
 * use 5.5% of 1e-7 against the float64 counts / L2 norm (measured); counts are exact.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { rgbHistogram, RgbHistogram } from '../../src/color';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { colorSamples, goldenTensor } from '../helpers/color_golden';

test('rgbHistogram equals cv2.calcHist 8x8x8 + cv2.normalize (L2), batched', () => {
  T.tidy(() => {
    const imgs = goldenTensor('hist_images'); // (2, 16, 24, 3)
    const third = colorSamples(4096).reshape([1, 64, 64, 3]);
    const want = goldenTensor('hist').toArray();
    const a = rgbHistogram(imgs, { layout: 'NHWC' });
    assert.deepEqual(a.shape, [2, 512]);
    assert.equal(a.dtype, 'float32');
    assertClose(a, want.slice(0, 1024), 1e-7, 0, 'hist 0-1');
    assertClose(rgbHistogram(third, { layout: 'NHWC' }), want.slice(1024), 1e-7, 0, 'hist 2');
    const nchw = rgbHistogram(imgs.permute([0, 3, 1, 2]).contiguous());
    assertClose(nchw, a.toArray(), 0, 0, 'NCHW == NHWC');
    assertClose(new RgbHistogram({ layout: 'NHWC' }).forward(imgs), a.toArray(), 0, 0, 'module');
  });
});

test('raw counts: bin = v >> 5, index (r * 8 + g) * 8 + b, total = pixels', () => {
  T.tidy(() => {
    const x = T.tensor([[[[0, 31, 32, 255]], [[0, 0, 64, 255]], [[0, 224, 96, 255]]]], [1, 3, 1, 4], { dtype: 'uint8' });
    const h = rgbHistogram(x, { normalize: 'none' }).toArray();
    const expect = new Array(512).fill(0);
    expect[0] += 1; // (0,0,0)
    expect[7] += 1; // (31 -> 0, 0 -> 0, 224 -> 7)
    expect[(1 * 8 + 2) * 8 + 3] += 1;
    expect[511] += 1;
    assert.deepEqual(h, expect);
    assert.equal(rgbHistogram(x, { bins: 4, normalize: 'none' }).sum().item(), 4);
  });
});

test('errors name the argument', () => {
  T.tidy(() => {
    assert.throws(() => rgbHistogram(T.zeros([1, 3, 2, 2])), /'images' passed to 'rgbHistogram' must be uint8, got float32/);
    assert.throws(() => rgbHistogram(T.zeros([1, 3, 2, 2], { dtype: 'uint8' }), { bins: 7 }), /'bins' passed to 'rgbHistogram' must be a power of two from 1 to 256/);
  });
});

test('no leak', () => {
  const x = T.zeros([2, 3, 4, 4], { dtype: 'uint8' });
  assertNoLeak(() => rgbHistogram(x).dispose());
  x.dispose();
});

test('one bin per channel counts every pixel in bin 0', () => {
  const x = T.tensor(new Uint8Array([0, 255, 128, 7, 200, 1]), [1, 3, 1, 2], { dtype: 'uint8' });
  const h = rgbHistogram(x, { bins: 1, normalize: 'none' });
  assert.deepEqual(h.toArray(), [2]);
  T.dispose([x, h]);
});

test('counts equal a direct count on images larger than one pixel chunk, any layout, bins 2 to 64 (the AVX2 planar path up to 16)', () => {
  T.tidy(() => {
    const [h, w] = [601, 511]; // 307,111 pixels: two chunks of the CPU kernel and a tail
    const x = T.rand([2, 3, h, w]).mul(256).floor().to('uint8');
    const px = x.dataSync() as Uint8Array;
    for (const bins of [2, 4, 8, 16, 64]) {
      const shift = Math.log2(256 / bins);
      const got = rgbHistogram(x, { bins, normalize: 'none' });
      const nhwc = rgbHistogram(x.permute([0, 2, 3, 1]), { bins, normalize: 'none', layout: 'NHWC' }); // a non-contiguous view
      for (let n = 0; n < 2; n++) {
        const want = new Float64Array(bins ** 3);
        const base = n * 3 * h * w;
        for (let i = 0; i < h * w; i++) {
          want[((px[base + i] >> shift) * bins + (px[base + h * w + i] >> shift)) * bins + (px[base + 2 * h * w + i] >> shift)]++;
        }
        assert.deepEqual(got.select(0, n).toArray(), Array.from(want), `bins ${bins} image ${n}`);
        assert.deepEqual(nhwc.select(0, n).toArray(), Array.from(want), `bins ${bins} image ${n} NHWC`);
      }
    }
  });
});
