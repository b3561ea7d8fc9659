import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { BAND_BYTES, upsampleArgmax } from '../../src/eval/upsample';

test('upsampleArgmax equals argmax of one bilinear interpolate, bit for bit, across bands', () => {
  const before = T.memory().liveTensors;
  for (const [c, h, w, H, W] of [[2, 64, 64, 45, 71], [3, 32, 48, 3000, 1500], [2, 64, 64, 64, 64], [4, 16, 16, 8, 300]]) {
    T.manualSeed(c + H);
    const probs = T.tidy(() => T.softmax(T.randn([1, c, h, w]), 1));
    const cols: number[] = [];
    const labels = upsampleArgmax(probs, [H, W], (b) => {
      assert.deepEqual(b.labels.shape, [H, b.width]);
      cols.push(b.col, b.width);
    });
    const want = T.tidy(() => T.argmax(T.interpolate(probs, { size: [H, W], mode: 'bilinear', alignCorners: false }), 1).select(0, 0).to('uint8'));
    assert.equal(labels.dtype, 'uint8');
    assert.deepEqual(labels.shape, [H, W]);
    assert.equal(T.tidy(() => labels.ne(want).sum().item()), 0, `${c}x${h}x${w} -> ${H}x${W}`);
    const band = Math.max(1, Math.floor(BAND_BYTES / (H * (4 * c + 29))));
    assert.equal(cols.length / 2, Math.ceil(W / band), 'bands');
    assert.equal(cols.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0), W, 'every column once');
    T.dispose([probs, labels, want]);
  }
  assert.equal(T.memory().liveTensors, before);
});
