/**
 * cqseg's transforms against OpenCV (test/golden/augment_cv2.json, made by
 * tools/golden/augment_cv2.py): the calls albumentations 1.4.21 makes for the same
 * parameters. Tolerances: 1 grey level where cv2 uses fixed-point bilinear weights or
 * rounds differently; for warps, up to 4 levels on the few pixels that blend with the
 * zero border (cv2 quantises coordinates to 1/32 px, and the step to 0 is steep there);
 * at most 3% of mask pixels where a sampling point lands within that quantisation of a
 * class boundary.
 * Rounding decisions are away from their boundaries (the script refuses parameters that put
 * an exact value within 2.5e-3 of a .5 tie, or a mask's source coordinate within 1e-3; JSON
 * `margins`): float32 rounding uses at most 13% of the closest margin (warp values 3.7e-4,
 * coordinates 1.3e-6; filters 0.3%), so cqseg's uint8 output is its float64 run's on every CPU
 * and the agreement measured here holds everywhere: warps within 3 of 4 levels (float64 gap
 * 3.22 < 4.5), 2.8% of 5% beyond 1 level, masks 0% of 3%; blur and sharpen equal; area +
 * linear within 1 level (float64 gap 1.11 < 1.5) (measured against a float64 run of each case).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { Blur, Sharpen, Shear, ShiftScaleRotate, degrade, gaussianKernel1d } from '../../src/augment';
import { assertClose } from '../helpers/assert';
import { repoRoot } from '../helpers/golden';

interface Golden {
  height: number;
  width: number;
  image: number[];
  mask: number[];
  ssr: { params: { angle: number; scale: number; dx: number; dy: number }; image: number[]; mask: number[] };
  shear: { params: { x: number; y: number }; image: number[]; mask: number[] };
  blur5: number[];
  blur11: number[];
  sharpen: { params: { alpha: number; lightness: number }; image: number[] };
  gaussianKernel41: number[];
  gaussianBlurAutoEquals41: boolean;
  areaDown: number[];
  linearUp: number[];
}

const G = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'golden', 'augment_cv2.json'), 'utf8')) as Golden;
const shape = [1, 1, G.height, G.width];

/** Within 4 levels everywhere and within 1 level on at least 95% of the pixels. */
function closeWarp(got: number[], want: number[], what: string): void {
  assertClose(got, want, 4, 0, what);
  const far = got.filter((v, i) => Math.abs(v - want[i]) > 1).length / got.length;
  assert.ok(far <= 0.05, `${what}: ${(far * 100).toFixed(1)}% of pixels differ by more than 1`);
}

function mismatch(a: number[], b: number[]): number {
  return a.filter((v, i) => v !== b[i]).length / a.length;
}

test('golden: ShiftScaleRotate and Shear match cv2.warpAffine (image within 1 level, mask nearest)', () => {
  const image = T.tensor(G.image, shape, { dtype: 'uint8' });
  const mask = T.tensor(G.mask, [1, G.height, G.width], { dtype: 'uint8' });
  const ssr = new ShiftScaleRotate().apply({ image, mask }, [G.ssr.params]);
  closeWarp(ssr.image.toArray(), G.ssr.image, 'ssr image');
  assert.ok(mismatch(ssr.mask!.toArray(), G.ssr.mask) <= 0.03, `ssr mask mismatch ${mismatch(ssr.mask!.toArray(), G.ssr.mask)}`);
  const sh = new Shear().apply({ image, mask }, [G.shear.params]);
  closeWarp(sh.image.toArray(), G.shear.image, 'shear image');
  assert.ok(mismatch(sh.mask!.toArray(), G.shear.mask) <= 0.03, `shear mask mismatch ${mismatch(sh.mask!.toArray(), G.shear.mask)}`);
  T.dispose([image, mask, ssr, sh]);
});

test('golden: Blur and Sharpen match cv2.blur and cv2.filter2D (reflect-101)', () => {
  const image = T.tensor(G.image, shape, { dtype: 'uint8' });
  const b5 = new Blur().apply({ image }, [5]);
  const b11 = new Blur().apply({ image }, [11]);
  assertClose(b5.image.toArray(), G.blur5, 1, 0, 'blur 5');
  assertClose(b11.image.toArray(), G.blur11, 1, 0, 'blur 11');
  assert.ok(mismatch(b5.image.toArray(), G.blur5) < 0.1);
  const s = new Sharpen().apply({ image }, [G.sharpen.params]);
  assert.deepEqual(s.image.toArray(), G.sharpen.image, 'sharpen: no value near a rounding tie, so equal');
  T.dispose([image, b5, b11, s]);
});

test('golden: the elastic smoothing kernel is cv2.getGaussianKernel(41, 5), what GaussianBlur(ksize (0,0)) uses', () => {
  assert.equal(G.gaussianBlurAutoEquals41, true);
  assertClose(gaussianKernel1d(41, 5), G.gaussianKernel41, 1e-9, 0, 'gaussian kernel');
});

test('golden: degrade without JPEG and fog is cv2 INTER_AREA down by 3, INTER_LINEAR back up', async () => {
  const image = T.tensor(G.image, shape, { dtype: 'uint8' });
  const out = await degrade(image, { jpegQuality: null, fog: 0 });
  assertClose(out.toArray(), G.linearUp, 1, 0, 'area down + linear up');
  T.dispose([image, out]);
});
