/**
 * degrade: the float and uint8 paths round the same area means before JPEG (each at least
 * 0.056 level from a .5 tie), then differ by the final rounding: 0.50 of 1 level (measured).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { degrade } from '../../src/augment';
import { memory } from '../helpers/core';
import { randomBatch, sameBytes } from './helpers';

test('degrade keeps shape, dtype; a flat image gets the fog haze; JPEG is a real round trip', async () => {
  const before = memory().liveTensors;
  const flat = T.full([2, 3, 30, 45], 100, { dtype: 'uint8' });
  const out = await degrade(flat);
  assert.deepEqual(out.shape, [2, 3, 30, 45]);
  assert.equal(out.dtype, 'uint8');
  // 0.85 * 100 + 0.15 * 255 = 123.25; JPEG keeps a flat image within a level or two
  assert.ok(Math.abs(T.tidy(() => out.to('float32').mean().item()) - 123.25) < 2);
  const { image, mask } = randomBatch(1, 3, 36, 48, [0], 12);
  mask.dispose();
  const withJpeg = await degrade(image);
  const without = await degrade(image, { jpegQuality: null });
  assert.ok(!sameBytes(withJpeg, without), 'JPEG step changed nothing');
  const err = T.tidy(() => withJpeg.to('float32').sub(without.to('float32')).abs().mean().item());
  assert.ok(err > 0.1 && err < 30, `JPEG error ${err}`);
  const f = T.tidy(() => image.to('float32').div(255));
  const outF = await degrade(f);
  assert.equal(outF.dtype, 'float32');
  const gap = T.tidy(() => outF.mul(255).sub(withJpeg.to('float32')).abs().max().item());
  assert.ok(gap <= 1, `float and uint8 degrade differ by ${gap}`);
  // detail is lost: the degraded image is smoother than the input
  const rough = (x: T.Tensor): number => T.tidy(() => { const d = x.to('float32'); return d.narrow(3, 1, d.shape[3] - 1).sub(d.narrow(3, 0, d.shape[3] - 1)).abs().mean().item(); });
  assert.ok(rough(withJpeg) < rough(image) / 2);
  T.dispose([flat, out, image, withJpeg, without, f, outF]);
  assert.equal(memory().liveTensors, before);
});

test('degrade validates its options', async () => {
  const x = T.zeros([1, 3, 6, 6], { dtype: 'uint8' });
  await assert.rejects(degrade(x, { jpegQuality: 0 }), /'jpegQuality' passed to 'degrade'/);
  await assert.rejects(degrade(x, { fog: 2 }), /'fog' passed to 'degrade'/);
  await assert.rejects(degrade(x, { factor: 1.5 }), /'factor' passed to 'degrade'/);
  const four = T.zeros([1, 4, 6, 6], { dtype: 'uint8' });
  await assert.rejects(degrade(four), /1 or 3 channels/);
  T.dispose([x, four]);
});
