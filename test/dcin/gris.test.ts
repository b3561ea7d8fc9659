/**
 * GRIS decisions: the best/second-best mean-distance gaps (2e-3, 3.6e-3) are 3e5 times the
 * effect of float32 inputs (6e-9); mean distances use 0.06% of 1e-6, blocked sums 0.03% of 1e-12.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { rgbHistogram } from '../../src/color';
import { grisFromSource, grisSelect, histogramsFromSource } from '../../src/dcin';
import { assertClose, assertNoLeak } from '../helpers/assert';

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function bruteForce(rows: number[][]): { index: number; mean: number } {
  let index = -1;
  let mean = Infinity;
  for (let i = 0; i < rows.length; i++) {
    let s = 0;
    for (let j = 0; j < rows.length; j++) {
      let d = 0;
      for (let k = 0; k < rows[i].length; k++) d += (rows[i][k] - rows[j][k]) ** 2;
      s += Math.sqrt(d);
    }
    if (s / (rows.length - 1) < mean) {
      mean = s / (rows.length - 1);
      index = i;
    }
  }
  return { index, mean };
}

function unitRows(m: number, d: number, rnd: () => number, center?: number[], spread = 1): number[][] {
  return Array.from({ length: m }, () => {
    const r = Array.from({ length: d }, (_, k) => Math.max(0, (center ? center[k] : 0) + spread * rnd()));
    const n = Math.hypot(...r);
    return r.map((v) => v / n);
  });
}

test('GRIS picks the known medoid of a constructed set and equals brute force', () => {
  // a tight cluster around a center plus the exact center itself: the center is the medoid
  const rnd = lcg(1);
  const d = 512;
  const center = Array.from({ length: d }, () => rnd());
  const n = Math.hypot(...center);
  const c = center.map((v) => v / n);
  const rows = unitRows(60, d, rnd, center, 0.05);
  rows.splice(37, 0, c);
  const h = T.tensor(rows.flat(), [rows.length, d]);
  const bf = bruteForce(rows);
  assert.equal(bf.index, 37);
  for (const blockSize of [2048, 16, 7, 3]) {
    const r = grisSelect(h, { blockSize });
    assert.equal(r.index, 37, `blockSize ${blockSize}`);
    assert.ok(Math.abs(r.meanDistance - bf.mean) < 1e-6, `mean ${r.meanDistance} vs ${bf.mean}`);
  }
  h.dispose();
});

test('GRIS equals brute force on random histograms; blocked sums equal the full matrix', () => {
  const rnd = lcg(9);
  const rows = unitRows(97, 64, rnd);
  const h = T.tensor(rows.flat(), [97, 64]);
  const bf = bruteForce(rows);
  const a = grisSelect(h, { blockSize: 10 });
  const b = grisSelect(h);
  assert.equal(a.index, bf.index);
  assert.equal(b.index, bf.index);
  assertClose(Array.from(a.meanDistances), Array.from(b.meanDistances), 1e-12, 0, 'blocked vs one block');
  h.dispose();
});

test('GRIS ties go to the lowest index; one image is its own medoid', () => {
  T.tidy(() => {
    assert.equal(grisSelect(T.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])).index, 0);
    assert.equal(grisSelect(T.ones([5, 8])).index, 0);
    assert.equal(grisSelect(T.ones([1, 8])).index, 0);
    assert.throws(() => grisSelect(T.ones([8])), /'histograms' passed to 'grisSelect' must be a non-empty \(M, D\)/);
  });
});

test('histograms stream from a source with bounded live images, equal to batched ones', async () => {
  const imgs = T.tidy(() => T.rand([12, 9, 11, 3]).mul(255).to('uint8'));
  let live = 0;
  let maxLive = 0;
  const load = async (p: string): Promise<T.Tensor> => {
    await new Promise((r) => setImmediate(r));
    live++;
    maxLive = Math.max(maxLive, live);
    const t = T.tidy(() => imgs.select(0, Number(p.slice(4))).clone());
    const dispose = t.dispose.bind(t);
    t.dispose = () => { if (!t.isDisposed) live--; dispose(); };
    return t;
  };
  const paths = Array.from({ length: 12 }, (_, i) => `img-${i}`.replace('img-', 'img/'));
  const before = T.memory().liveTensors;
  const h = await histogramsFromSource(paths, load, { prefetch: 2 });
  assert.ok(maxLive <= 3, `at most prefetch + 1 decoded images alive, saw ${maxLive}`);
  assert.equal(T.memory().liveTensors, before + 1);
  const want = rgbHistogram(imgs, { layout: 'NHWC' });
  assertClose(h, want.toArray(), 0, 0, 'streamed vs batched');
  const g = await grisFromSource(paths, load);
  assert.equal(g.index, grisSelect(want).index);
  assert.equal(g.path, paths[g.index]);
  await assert.rejects(histogramsFromSource(['img/0', 'broken.png'], async (p) => {
    if (p === 'broken.png') throw new Error('bad PNG signature');
    return load(p);
  }), /broken.png: cannot read image: bad PNG signature/);
  T.dispose([h, want, g.histograms, imgs]);
});

test('grisSelect does not leak', () => {
  const h = T.rand([30, 16]);
  assertNoLeak(() => { grisSelect(h, { blockSize: 8 }); });
  h.dispose();
});
