/**
 * Geometric transforms: the exact cases sample at whole pixels, so float32 grid noise (1e-6 px,
 * 1e-4 level) stays 0.5 level / 0.5 px from any rounding tie; byte comparisons repeat the same
 * operations, except one sample against its batch: the batch's elastic field is one convolution
 * over all samples and differs from one sample's by up to 1.4e-6 px (9.5e-4 level here, while a
 * value lies 1.2e-4 from a tie), so that check allows one level (measured against float64 runs).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import {
  ElasticTransform, Geometric, HorizontalFlip, Shear, ShiftScaleRotate, warp, IDENTITY, compose, invert,
} from '../../src/augment';
import { Rng } from '../../src/util/random';
import { assertNoLeak } from '../helpers/assert';
import { grid2d, rampImage, randomBatch, sameBytes, uniqueValues } from './helpers';

const ALWAYS = { flip: { p: 1 }, shear: { p: 1 }, shiftScaleRotate: { p: 1 }, elastic: { p: 1 } };

test('HorizontalFlip with fixed params mirrors columns exactly (image bilinear, mask nearest, float and uint8)', () => {
  assertNoLeak(() => {
    const img = rampImage(3, 4);
    const mask = T.tidy(() => rampImage(3, 4).squeeze(1));
    const out = new HorizontalFlip().apply({ image: img, mask }, [true]);
    const want = grid2d(img).map((row) => [...row].reverse());
    assert.deepEqual(grid2d(out.image), want);
    assert.deepEqual(grid2d(out.mask!), want);
    assert.deepEqual(out.mask!.shape, [1, 3, 4]);
    const f = T.tidy(() => img.to('float32').div(255));
    const outF = new HorizontalFlip().apply({ image: f }, [true]);
    const got = outF.image.toArray().map((v) => Math.round(v * 255));
    assert.deepEqual(got, want.flat());
    const skipped = new HorizontalFlip().apply({ image: img }, [null]);
    assert.ok(sameBytes(skipped.image, img));
    T.dispose([img, mask, out, f, outF, skipped]);
  });
});

test('ShiftScaleRotate by 90 degrees (fixed params) rotates a square image exactly', () => {
  const img = rampImage(5, 5);
  const src = grid2d(img);
  const out = new ShiftScaleRotate().apply({ image: img, mask: img.squeeze(1) }, [{ angle: 90, scale: 1, dx: 0, dy: 0 }]);
  // cv2.getRotationMatrix2D(centre, 90, 1): x' = y, y' = 4 - x  =>  out[r][q] = src[q][4 - r]
  const want = Array.from({ length: 5 }, (_, r) => Array.from({ length: 5 }, (_, q) => src[q][4 - r]));
  assert.deepEqual(grid2d(out.image), want);
  assert.deepEqual(grid2d(out.mask!), want);
  T.dispose([img, out]);
});

test('ShiftScaleRotate shift by whole pixels moves content and fills 0 (border constant)', () => {
  const img = rampImage(4, 8);
  const src = grid2d(img);
  // dx = 0.25 of W = 2 px right, dy = -0.25 of H = 1 px up
  const out = new ShiftScaleRotate().apply({ image: img }, [{ angle: 0, scale: 1, dx: 0.25, dy: -0.25 }]);
  const want = Array.from({ length: 4 }, (_, y) => Array.from({ length: 8 }, (_, x) => {
    const sx = x - 2;
    const sy = y + 1;
    return sx >= 0 && sy < 4 ? src[sy][sx] : 0;
  }));
  assert.deepEqual(grid2d(out.image), want);
  T.dispose([img, out]);
});

test('Shear x by 45 degrees (fixed params) shifts each row by its distance from the centre row', () => {
  const img = rampImage(5, 7);
  const src = grid2d(img);
  const out = new Shear().apply({ image: img, mask: img.squeeze(1) }, [{ x: 45, y: 0 }]);
  // forward x' = x + tan(45) (y - 2): out(x', y) = src(x' - (y - 2), y), 0 outside
  const want = Array.from({ length: 5 }, (_, y) => Array.from({ length: 7 }, (_, x) => {
    const sx = x - (y - 2);
    return sx >= 0 && sx < 7 ? src[y][sx] : 0;
  }));
  assert.deepEqual(grid2d(out.image), want);
  assert.deepEqual(grid2d(out.mask!), want);
  // shear y: columns move
  const outY = new Shear().apply({ image: img }, [{ x: 0, y: 45 }]);
  const wantY = Array.from({ length: 5 }, (_, y) => Array.from({ length: 7 }, (_, x) => {
    const sy = y - (x - 3);
    return sy >= 0 && sy < 5 ? src[sy][x] : 0;
  }));
  assert.deepEqual(grid2d(outY.image), wantY);
  T.dispose([img, out, outY]);
});

test('the composed matrix equals the transforms applied one after another (exact cases)', () => {
  const img = rampImage(6, 6);
  const g = new Geometric();
  const params = { flip: [true as const], shear: [null], shiftScaleRotate: [{ angle: 90, scale: 1, dx: 0, dy: 0 }], elastic: [null] };
  const once = g.apply({ image: img }, params);
  const a = new HorizontalFlip().apply({ image: img }, [true]);
  const b = new ShiftScaleRotate().apply({ image: a.image }, params.shiftScaleRotate);
  assert.deepEqual(grid2d(once.image), grid2d(b.image));
  const m = compose([1, 2, 3, 4, 5, 7], [2, 0, 1, 1, 1, 0]);
  const back = compose(invert(m), m);
  back.forEach((v, i) => assert.ok(Math.abs(v - IDENTITY[i]) < 1e-12));
  T.dispose([img, once, a, b]);
});

test('mask values stay within the class set (plus fill 0) after every geometric transform', () => {
  const classes = [0, 1, 2, 7];
  const { image, mask } = randomBatch(3, 3, 24, 32, classes, 1);
  assertNoLeak(() => {
    const transforms = [new HorizontalFlip({ p: 1 }), new Shear({ p: 1 }), new ShiftScaleRotate({ p: 1 }), new ElasticTransform({ p: 1 }),
      new Geometric(ALWAYS), new Geometric({ ...ALWAYS, mode: 'bicubic' })];
    for (const t of transforms) {
      for (let s = 0; s < 3; s++) {
        const params = t.sample(3, new Rng(s), { height: 24, width: 32 });
        const out = t.apply({ image, mask }, params as never);
        const vals = uniqueValues(out.mask!);
        assert.ok(vals.every((v) => classes.includes(v)), `${t.name}: mask values ${vals}`);
        assert.equal(out.mask!.dtype, 'uint8');
        assert.equal(out.image.dtype, 'uint8');
        assert.deepEqual(out.image.shape, image.shape);
        T.dispose(out);
      }
    }
  });
  T.dispose([image, mask]);
});

test('drawn geometric parameters stay within their ranges and reach both ends', () => {
  const g = new Geometric();
  const p = g.sample(4000, new Rng(3), { height: 64, width: 64 });
  const shear = p.shear.filter((q) => q !== null);
  const ssr = p.shiftScaleRotate.filter((q) => q !== null);
  const span = (v: number[], lo: number, hi: number, what: string): void => {
    const tol = (hi - lo) * 0.01;
    assert.ok(Math.min(...v) >= lo && Math.max(...v) <= hi, `${what} out of [${lo}, ${hi}]`);
    assert.ok(Math.min(...v) < lo + tol && Math.max(...v) > hi - tol, `${what} does not reach both ends: ${Math.min(...v)}..${Math.max(...v)}`);
  };
  span(shear.map((q) => q.x), -20, 20, 'shear.x');
  span(shear.map((q) => q.y), -20, 20, 'shear.y');
  span(ssr.map((q) => q.angle), -20, 20, 'angle');
  span(ssr.map((q) => q.scale), 0.5, 1.5, 'scale');
  span(ssr.map((q) => q.dx), -0.0625, 0.0625, 'dx');
  span(ssr.map((q) => q.dy), -0.0625, 0.0625, 'dy');
  for (const [k, list] of Object.entries(p)) {
    const rate = (list as unknown[]).filter((q) => q !== null).length / 4000;
    assert.ok(Math.abs(rate - 0.5) < 0.04, `${k} applied at rate ${rate}`);
  }
});

test('elastic: alpha 0 is the identity; the field is smooth, seeded and about alpha * 0.05 px in size', () => {
  const img = rampImage(8, 8);
  const e0 = new ElasticTransform({ alpha: 0, p: 1 });
  const out = e0.apply({ image: img }, [{ seed: 5 }]);
  assert.ok(sameBytes(out.image, img));
  const e = new ElasticTransform({ p: 1 });
  assertNoLeak(() => {
    const f1 = e.field([{ seed: 9 }, null], { height: 64, width: 96 }, 'cpu')!;
    const f2 = e.field([{ seed: 9 }, null], { height: 64, width: 96 }, 'cpu')!;
    assert.ok(sameBytes(f1, f2));
    assert.deepEqual(f1.shape, [2, 2, 64, 96]);
    const second = f1.narrow(0, 1, 1);
    assert.equal(T.tidy(() => second.abs().max().item()), 0);
    const std = T.tidy(() => f1.narrow(0, 0, 1).std().item());
    // U(-1,1) (var 1/3) through a unit-sum Gaussian of sigma 5: std ~ sqrt(1/3 / (4 pi 25)) * 35 ~ 1.14
    assert.ok(std > 0.6 && std < 2, `field std ${std}`);
    T.dispose([f1, f2, second]);
  });
  T.dispose([img, out]);
});

test('geometric: same seed gives the same batch; params replay from JSON; inputs are not mutated', () => {
  const { image, mask } = randomBatch(2, 3, 32, 48, [0, 1, 2], 2);
  const before = image.clone();
  const g = new Geometric(ALWAYS);
  const p1 = g.sample(2, new Rng(11), { height: 32, width: 48 });
  const p2 = g.sample(2, new Rng(11), { height: 32, width: 48 });
  assert.deepEqual(p1, p2);
  const a = g.apply({ image, mask }, p1);
  const b = g.apply({ image, mask }, JSON.parse(JSON.stringify(p1)));
  assert.ok(sameBytes(a.image, b.image) && sameBytes(a.mask!, b.mask!));
  const c = g.apply({ image, mask }, g.sample(2, new Rng(12), { height: 32, width: 48 }));
  assert.ok(!sameBytes(a.image, c.image));
  assert.ok(sameBytes(image, before));
  // per-sample params: sample 0 alone gives the batch's sample 0 (within the one level a rounding
  // tie can move: the elastic field of a batch is one convolution, not bit-identical per sample)
  const one = g.apply({ image: image.narrow(0, 0, 1), mask: mask.narrow(0, 0, 1) }, {
    flip: [p1.flip[0]], shear: [p1.shear[0]], shiftScaleRotate: [p1.shiftScaleRotate[0]], elastic: [p1.elastic[0]],
  });
  const gap = T.tidy(() => one.image.to('float32').sub(a.image.narrow(0, 0, 1).to('float32')).abs().max().item());
  assert.ok(gap <= 1, `sample 0 alone differs from the batch's by ${gap} levels`);
  T.dispose([image, mask, before, a, b, c, one]);
});

test('geometric errors name the argument', () => {
  const img = T.zeros([1, 3, 4, 4], { dtype: 'uint8' });
  const g = new Geometric();
  const p = g.sample(1, new Rng(0), { height: 4, width: 4 });
  assert.throws(() => g.apply({ image: T.zeros([3, 4, 4]) }, p), /'image' passed to 'Geometric' must be 4-D/);
  assert.throws(() => g.apply({ image: img, mask: T.zeros([1, 4, 5]) }, p), /'mask' passed to 'Geometric'/);
  assert.throws(() => g.apply({ image: T.zeros([2, 3, 4, 4]) }, p), /hold 1 samples, the batch has 2/);
  assert.throws(() => g.apply({ image: T.zeros([1, 3, 4, 4], { dtype: 'int64' }) }, p), /uint8 .* or floating/);
  assert.throws(() => warp({ image: img }, [[0, 0, 0, 0, 0, 0]], null), /singular/);
  const badField = T.zeros([1, 2, 4, 5]);
  assert.throws(() => warp({ image: img }, [IDENTITY], badField), /'field' passed to 'warp' must be \(N,2,H,W\)/);
  badField.dispose();
  assert.throws(() => new Shear({ p: 2 }), /'p' passed to 'Shear'/);
  img.dispose();
});

test('geometric transforms declare dual targets; (N, 1, H, W) masks keep their layout and dtype', () => {
  for (const t of [new HorizontalFlip(), new Shear(), new ShiftScaleRotate(), new ElasticTransform(), new Geometric()]) {
    assert.deepEqual(t.targets, { image: 'resample', mask: 'resample' });
  }
  const img = rampImage(4, 6);
  const mask4 = T.tidy(() => rampImage(4, 6).to('int32'));
  const out = new HorizontalFlip().apply({ image: img, mask: mask4 }, [true]);
  assert.deepEqual(out.mask!.shape, [1, 1, 4, 6]);
  assert.equal(out.mask!.dtype, 'int32');
  assert.deepEqual(grid2d(out.mask!), grid2d(img).map((r) => [...r].reverse()));
  T.dispose([img, mask4, out]);
});
