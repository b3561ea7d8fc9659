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
    const e = normalizeEmbeddings(T.tensor([[3, 4], [0, 0], [1, 0]]));
    assertClose(e, [0.6, 0.8, 0, 0, 1, 0], 1e-7);
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
