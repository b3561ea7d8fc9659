/**
 * Selections are decided in float64: the closest best/second-best gap (6.4e-9, near-duplicate
 * bank) is 1e6 times float64 dot-product noise (4e-15); similarities equal the float64 brute
 * force here (a reordered sum would use 0.4% of 1e-12); normalised rows are exact in float32.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { LrisIndex, lrisSelect, normalizeEmbeddings } from '../../src/dcin';
import { assertClose, assertNoLeak } from '../helpers/assert';

test('LRIS picks the exact cosine nearest neighbour (brute force), batched', () => {
  T.tidy(() => {
    T.manualSeed(5);
    const refs = normalizeEmbeddings(T.randn([500, 48]));
    const noise = T.randn([40, 48]).mul(0.05);
    const picks = Array.from({ length: 40 }, (_, i) => (i * 37) % 500);
    const q = normalizeEmbeddings(T.indexSelect(refs, 0, T.tensor(new BigInt64Array(picks.map(BigInt)), [40])).add(noise));
    const r = lrisSelect(q, refs, { blockSize: 7 });
    const R = refs.toArray();
    const Q = q.toArray();
    for (let i = 0; i < 40; i++) {
      let best = -1;
      let bs = -Infinity;
      for (let j = 0; j < 500; j++) {
        let s = 0;
        for (let k = 0; k < 48; k++) s += Q[i * 48 + k] * R[j * 48 + k];
        if (s > bs) { bs = s; best = j; }
      }
      assert.equal(r.indices[i], best, `query ${i}`);
      assert.ok(Math.abs(r.similarities[i] - bs) < 1e-5);
    }
    // the perturbed copies find their source
    assert.deepEqual(r.indices, picks);
    const index = new LrisIndex(refs);
    assert.deepEqual(index.search(q).indices, picks);
    index.dispose();
    assert.throws(() => index.search(q), /disposed/);
  });
});

test('normalizeEmbeddings gives unit rows; ties go to the lowest index; errors', () => {
  T.tidy(() => {
    const e = normalizeEmbeddings(T.tensor([[1, -1, 1, 1], [0, 0, 0, 0], [0, 3, 0, 0]])); // unit rows exact in float32
    assertClose(e, [0.5, -0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 1, 0, 0], 1e-7);
    const refs = T.tensor([[0, 1], [1, 0], [1, 0]]);
    assert.deepEqual(lrisSelect(T.tensor([[1, 0]]), refs).indices, [1]);
    assert.throws(() => lrisSelect(T.ones([1, 3]), refs), /one dimension, got 3 and 2/);
    assert.throws(() => lrisSelect(T.ones([3]), refs), /'queries' passed to 'lrisSelect' must be \(M, D\)/);
  });
});

test('no leak', () => {
  const r = T.rand([20, 8]);
  assertNoLeak(() => { T.tidy(() => { lrisSelect(r.narrow(0, 0, 3), r); }); });
  r.dispose();
});

/** float64 brute force: [index, similarity] of the best row of r (M, D) for q (D), lowest index on ties */
function bruteForce(q: Float32Array, r: Float32Array, d: number): [number, number] {
  let best = -1;
  let bs = -Infinity;
  for (let j = 0; j < r.length / d; j++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += q[k] * r[j * d + k];
    if (s > bs) { bs = s; best = j; }
  }
  return [best, bs];
}

test('LrisIndex (int8 codes for few queries, product for many) equals float64 brute force on near-duplicate banks', () => {
  T.tidy(() => {
    T.manualSeed(11);
    for (const d of [50, 1536]) {
      // cosines of 0.999+ between references: the first pass can rank nothing alone
      const base = T.randn([1, d]);
      const refs = normalizeEmbeddings(T.cat([base.add(T.randn([600, d]).mul(0.01)), T.randn([200, d])], 0));
      const dup = T.cat([refs, refs.narrow(0, 5, 1)], 0); // row 800 duplicates row 5: ties go to 5
      const q = normalizeEmbeddings(T.cat([base.add(T.randn([9, d]).mul(0.01)), dup.narrow(0, 5, 1), T.randn([2, d])], 0));
      const R = dup.dataSync() as Float32Array;
      const Q = q.dataSync() as Float32Array;
      const index = new LrisIndex(dup);
      const few = q.narrow(0, 0, 4); // coded path, one query at a time
      const coded = index.search(few);
      const many = index.search(q); // 12 queries: the product path
      const one = lrisSelect(q, dup, { blockSize: 5 });
      for (let i = 0; i < 12; i++) {
        const [bi, bs] = bruteForce(Q.subarray(i * d, (i + 1) * d), R, d);
        assert.equal(many.indices[i], bi, `d ${d} query ${i} (product)`);
        assert.equal(one.indices[i], bi, `d ${d} query ${i} (lrisSelect)`);
        assert.ok(Math.abs(many.similarities[i] - bs) < 1e-12);
        if (i < 4) assert.equal(coded.indices[i], bi, `d ${d} query ${i} (codes)`);
      }
      assert.equal(index.search(q.narrow(0, 9, 1)).indices[0], 5, 'a duplicate row ties: the lowest index wins');
      index.dispose();
    }
  });
});

test('int8 codes: the native integer dot products are exact, at the int32 block limits too', () => {
  T.tidy(() => {
    for (const d of [15, 16, 2048, 4100]) {
      const c = T.full([5, d], 127).to('int8');
      const q = T.cat([T.full([1, d], 32767), T.full([1, d], -32767), T.randint(-32767, 32768, [1, d])], 0).to('int16');
      const rows = T.tensor(new BigInt64Array([4n, 0n]), [2], { dtype: 'int64' });
      const got = T.int8Dot(c, q);
      const want = T.matmul(q.to('float64'), c.to('float64').transpose(0, 1));
      assert.deepEqual(got.toArray(), want.toArray(), `d ${d}`);
      assert.deepEqual(T.int8Dot(c, q, rows).toArray(), T.indexSelect(want, 1, rows).toArray());
      const mixed = T.randint(-127, 128, [7, d]).to('int8');
      assert.deepEqual(T.int8Dot(mixed, q).toArray(), T.matmul(q.to('float64'), mixed.to('float64').transpose(0, 1)).toArray(), `random d ${d}`);
    }
    assert.throws(() => T.int8Dot(T.zeros([2, 3]), T.zeros([1, 3]).to('int16')), /codes must be int8/);
    assert.throws(() => T.int8Dot(T.zeros([2, 3]).to('int8'), T.zeros([1, 3]).to('int16'), T.tensor(new BigInt64Array([2n]), [1], { dtype: 'int64' })), /out of range/);
  });
});

test('LrisIndex does not leak', () => {
  const r = normalizeEmbeddings(T.rand([40, 20]));
  assertNoLeak(() => {
    const index = new LrisIndex(r);
    T.tidy(() => { index.search(r.narrow(0, 0, 2)); index.search(r); });
    index.dispose();
  });
  r.dispose();
});
