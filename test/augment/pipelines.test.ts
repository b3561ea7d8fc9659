/**
 * Pipelines: uint8 and float paths differ by the final rounding (0.5) plus float32 noise that
 * uses 0.8% of the 1e-3 slack; view 2 vs colorQuality(view 1) uses 2.4% of 1e-5 (measured).
 * The byte comparisons compare the same operations in the same order (same batch).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { AugmentAll, CqgPair, all, colorQuality, cqgPair, disposeOutputs, geometric } from '../../src/augment';
import { Rng } from '../../src/util/random';
import { assertNoLeak } from '../helpers/assert';
import { randomBatch, sameBytes, uniqueValues } from './helpers';

const OFF = { blur: { p: 0 }, sharpen: { p: 0 }, gaussNoise: { p: 0 }, brightnessContrast: { p: 0 }, rgbShift: { p: 0 } };
const GEO_ON = { flip: { p: 1 }, shear: { p: 1 }, shiftScaleRotate: { p: 1 }, elastic: { p: 1 } };

test('cqgPair: photometric off => the two views are equal tensors; mask moved with them', () => {
  const { image, mask } = randomBatch(2, 3, 24, 40, [0, 1, 2], 7);
  assertNoLeak(() => {
    for (let seed = 0; seed < 4; seed++) {
      const out = cqgPair({ image, mask }, seed, { geometric: GEO_ON, colorQuality: OFF });
      assert.ok(sameBytes(out.geo, out.aug), `seed ${seed}: views differ`);
      assert.ok(!sameBytes(out.geo, image), 'geometric did nothing');
      assert.ok(uniqueValues(out.mask!).every((v) => [0, 1, 2].includes(v)));
      disposeOutputs(out);
    }
  });
  T.dispose([image, mask]);
});

test('cqgPair: views share the geometric draw (view 1 == geometric, view 2 == all, same seed)', () => {
  const { image, mask } = randomBatch(2, 3, 24, 40, [0, 5], 8);
  assertNoLeak(() => {
    const pair = cqgPair({ image, mask }, 123);
    const g = geometric({ image, mask }, 123);
    const a = all({ image, mask }, 123);
    assert.deepEqual(pair.params.geometric, g.params);
    assert.deepEqual(pair.params, a.params);
    assert.ok(sameBytes(pair.geo, g.image) && sameBytes(pair.mask!, g.mask!));
    assert.ok(sameBytes(pair.aug, a.image) && sameBytes(pair.mask!, a.mask!));
    // view 2 = colorQuality(view 1) with the pipeline's photometric draw (float: no rounding between)
    const f = T.tidy(() => image.to('float32').div(255));
    const pf = cqgPair({ image: f }, 123);
    const c = new CqgPair().pipeline.colorQuality.apply({ image: pf.geo }, pf.params.colorQuality);
    const diff = T.tidy(() => c.image.sub(pf.aug).abs().max().item());
    assert.ok(diff <= 1e-5, `view 2 differs from colorQuality(view 1) by ${diff}`);
    T.dispose([pair.geo, pair.aug, pair.mask, g.image, g.mask, a.image, a.mask, c.image, f, pf.geo, pf.aug]);
  });
  T.dispose([image, mask]);
});

test('pipelines: the same seed gives the same batch, another seed another; params replay', () => {
  const { image, mask } = randomBatch(3, 3, 20, 28, [0, 1], 9);
  assertNoLeak(() => {
    const a = cqgPair({ image, mask }, 77);
    const b = cqgPair({ image, mask }, 77);
    const c = cqgPair({ image, mask }, 78);
    assert.ok(sameBytes(a.geo, b.geo) && sameBytes(a.aug, b.aug) && sameBytes(a.mask!, b.mask!));
    assert.ok(!sameBytes(a.aug, c.aug));
    const replay = new CqgPair().apply({ image, mask }, JSON.parse(JSON.stringify(a.params)));
    assert.ok(sameBytes(replay.aug, a.aug) && sameBytes(replay.geo, a.geo));
    const rng = new Rng(77);
    const viaRng = new AugmentAll().sample(3, rng, { height: 20, width: 28 });
    assert.deepEqual(viaRng, a.params);
    [a, b, c, replay].forEach(disposeOutputs);
  });
  T.dispose([image, mask]);
});

test('pipelines: per-sample draws within a batch; uint8 and float inputs keep their dtype', () => {
  const { image, mask } = randomBatch(4, 3, 16, 16, [0, 1], 10);
  const out = all({ image, mask }, 5);
  const flips = out.params.geometric.flip;
  assert.equal(flips.length, 4);
  const ssr = out.params.geometric.shiftScaleRotate.filter((q) => q !== null).map((q) => q!.angle);
  assert.equal(new Set(ssr).size, ssr.length);
  assert.equal(out.image.dtype, 'uint8');
  const f = T.tidy(() => image.to('float32').div(255));
  const outF = all({ image: f, mask: mask.to('int64') }, 5);
  assert.equal(outF.image.dtype, 'float32');
  assert.equal(outF.mask!.dtype, 'int64');
  assert.ok(outF.image.min().item() >= 0 && outF.image.max().item() <= 1);
  const diff = T.tidy(() => outF.image.mul(255).sub(out.image.to('float32')).abs().max().item());
  assert.ok(diff <= 0.5 + 1e-3, `float and uint8 paths differ by ${diff}`);
  T.dispose([image, mask, out, f, outF]);
});

test('colorQuality pipeline leaves the mask byte-identical; works without a mask', () => {
  const { image, mask } = randomBatch(2, 3, 16, 16, [0, 4], 11);
  const out = colorQuality({ image, mask }, 3, { blur: { p: 1 }, rgbShift: { p: 1 } });
  assert.ok(sameBytes(out.mask!, mask));
  const noMask = cqgPair({ image }, 3);
  assert.equal(noMask.mask, undefined);
  T.dispose([image, mask, out, noMask.geo, noMask.aug]);
});
