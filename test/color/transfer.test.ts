/**
 * Reinhard transfer against the OpenCV + NumPy recipe. Bit-exact on every CPU: Lab is exact
 * integer arithmetic and every table value that a golden pixel uses lies at least 7.1e-4
 * from a uint8 truncation boundary (float64 noise ~1e-13), except zero-variance references,
 * whose table is their integer mean exactly. Statistics: 0.006% of their tolerance (float64);
 * float transfer 7.5% of 1e-6 (float32 RGB output); uint8 round trips 0.54 of 1.5 levels.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, labTransfer, LabTransfer, labTransferToStats, releaseColorTables, specularMask } from '../../src/color';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { agreement, goldenMeta, goldenTensor } from '../helpers/color_golden';

const nchw = (x: T.Tensor): T.Tensor => x.permute([0, 3, 1, 2]).contiguous();

for (const mode of ['cqseg', 'reference'] as const) {
  test(`labTransfer '${mode}' equals the OpenCV+NumPy lab_transfer recipe (golden, incl. zero variance)`, () => {
    T.tidy(() => {
      const inp = goldenTensor('transfer_in');
      const ref = goldenTensor('transfer_ref');
      const out = labTransfer(inp, ref, { layout: 'NHWC', mode });
      assert.equal(out.dtype, 'uint8');
      const a = agreement(out, goldenTensor(`transfer_out_${mode}`));
      assert.ok(a.within1 >= 0.999, `within +-1: ${a.within1}`);
      assert.equal(a.exact, 1, `bit-exact fraction ${a.exact}, max diff ${a.maxDiff}`);
      // batched NCHW gives the same as one image at a time
      const b = labTransfer(nchw(inp), nchw(ref), { mode });
      for (let i = 0; i < 4; i++) {
        const one = labTransfer(nchw(inp.narrow(0, i, 1)), nchw(ref.narrow(0, i, 1)), { mode });
        assert.deepEqual(one.toArray(), b.narrow(0, i, 1).contiguous().toArray(), `image ${i}`);
      }
    });
  });

  test(`labStats '${mode}' equals NumPy's mean and population std of the golden Lab`, () => {
    T.tidy(() => {
      const st = labStats(goldenTensor('transfer_in'), { layout: 'NHWC', mode }).toArray();
      goldenMeta().transfer_stats[mode].forEach((g, i) => {
        const want = [0, 1, 2].flatMap((c) => [g.in[0][c], g.in[1][c]]);
        assertClose(st.slice(i * 6, i * 6 + 6), want, 1e-9, 1e-12, `image ${i}`);
      });
    });
  });
}

function smooth(n: number, h: number, w: number, seed: number): T.Tensor {
  return T.tidy(() => {
    const y = T.arange(h).reshape([1, 1, h, 1]);
    const x = T.arange(w).reshape([1, 1, 1, w]);
    const c = T.arange(3).reshape([1, 3, 1, 1]);
    const k = T.arange(n).reshape([n, 1, 1, 1]);
    return T.sin(x.mul(0.21).add(y.mul(0.13)).add(c.mul(1.7)).add(k.mul(seed))).mul(50).add(120).add(k.mul(5)).to('uint8');
  });
}

test('transferred Lab mean/std equal the reference statistics (float path exactly, uint8 up to truncation)', () => {
  T.tidy(() => {
    const img = smooth(2, 24, 32, 0.7);
    const ref = T.tidy(() => smooth(2, 20, 28, 1.9).to('float32').mul(0.8).add(20).to('uint8'));
    const f = labTransfer(img, ref, { precision: 'float' });
    assert.equal(f.dtype, 'float32');
    const want = labStats(ref, { precision: 'float' }).toArray();
    assertClose(labStats(f, { precision: 'float' }), want, 1e-6, 1e-6, 'float Lab stats');
    const u = labTransfer(img, ref);
    const got8 = labStats(u).toArray();
    const want8 = labStats(ref).toArray();
    for (let i = 0; i < got8.length; i++) {
      // truncation lowers the mean by about 0.5; the Lab -> RGB -> Lab round trip adds about 1
      assert.ok(Math.abs(got8[i] - want8[i]) <= 1.5, `stat ${i}: ${got8[i]} vs ${want8[i]}`);
    }
  });
});

test("guarded division: a zero-variance channel moves to the reference's mean, no NaN", () => {
  T.tidy(() => {
    const flat = T.full([1, 3, 8, 8], 100, { dtype: 'uint8' });
    const ref = smooth(1, 8, 8, 0.3);
    const out = labTransfer(flat, ref);
    const lab = labStats(out).toArray();
    const want = labStats(ref).toArray();
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(lab[c * 2] - want[c * 2]) <= 1.5, `channel ${c} mean ${lab[c * 2]} vs ${want[c * 2]}`);
      assert.equal(lab[c * 2 + 1], 0);
    }
    // stats given directly, (3,2) broadcast to the batch; module form
    const s = labStats(ref).squeeze(0);
    assert.deepEqual(labTransferToStats(flat, s).toArray(), out.toArray());
    assert.deepEqual(new LabTransfer().forward(flat, ref).toArray(), out.toArray());
  });
});

test('robust statistics: specular pixels and excluded pixels leave the mean/std', () => {
  T.tidy(() => {
    const base = smooth(1, 16, 16, 0.5);
    // top 4 rows become specular white
    const white = T.full([1, 3, 4, 16], 250, { dtype: 'uint8' });
    const img = T.cat([white, base.narrow(2, 4, 12)], 2);
    const m = specularMask(img);
    assert.deepEqual(m.shape, [1, 16, 16]);
    assert.equal(m.to('float32').sum().item(), 64);
    const crop = base.narrow(2, 4, 12).contiguous();
    assertClose(labStats(img, { excludeSpecular: true }), labStats(crop).toArray(), 1e-9, 0, 'specular');
    const excl = T.cat([T.ones([1, 4, 16]), T.zeros([1, 12, 16])], 1);
    assertClose(labStats(img, { exclude: excl }), labStats(crop).toArray(), 1e-9, 0, 'exclude');
    assert.notDeepEqual(labStats(img).toArray(), labStats(crop).toArray());
    // everything excluded: falls back to all pixels
    assertClose(labStats(img, { exclude: T.ones([1, 16, 16]) }), labStats(img).toArray(), 0, 0, 'fallback');
  });
});

test('errors name the argument and op', () => {
  T.tidy(() => {
    const x = T.zeros([1, 3, 4, 4], { dtype: 'uint8' });
    assert.throws(() => labTransfer(x.to('float32'), x), /'images' passed to 'labTransfer' must be uint8 for precision 'uint8'/);
    assert.throws(() => labTransferToStats(x, T.zeros([2, 3, 2])), /'refStats' passed to 'labTransfer' must be \(N,3,2\)/);
    assert.throws(() => labTransfer(x, x, { mode: 'paper' as 'cqseg' }), /'mode' passed to 'labTransfer' must be 'cqseg' or 'reference'/);
    assert.throws(() => labStats(x, { exclude: T.zeros([1, 3, 3]) }), /'exclude' passed to 'labStats' must be \(N,H,W\)/);
  });
});

test('no leak', () => {
  const x = smooth(2, 8, 8, 0.1);
  releaseColorTables();
  assertNoLeak(() => {
    T.tidy(() => {
      labTransfer(x, x);
      labTransfer(x, x, { mode: 'reference', precision: 'float', excludeSpecular: true });
    });
    releaseColorTables();
  });
  x.dispose();
});
