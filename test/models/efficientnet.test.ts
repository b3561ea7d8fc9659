/** EfficientNet building blocks: spec decoding, scaling, "same" padding, drop-connect, blocks. */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EFFICIENTNET_BLOCKS, EfficientNetEncoder, decodeBlock, dropConnect, efficientNetConfig, roundFilters, roundRepeats, samePadding,
} from '../../src/models';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';

test('decodeBlock reads efficientnet_pytorch block strings', () => {
  assert.deepEqual(decodeBlock('r2_k5_s22_e6_i24_o40_se0.25'), {
    repeats: 2, kernel: 5, stride: 2, expand: 6, inChannels: 24, outChannels: 40, seRatio: 0.25, idSkip: true,
  });
  assert.equal(decodeBlock('r1_k3_s11_e1_i32_o16_noskip').idSkip, false);
  assert.equal(decodeBlock('r1_k3_s11_e1_i32_o16').seRatio, null);
  assert.throws(() => decodeBlock('r1_k3_s12_e1_i32_o16'), /stride '12'/);
  assert.throws(() => decodeBlock('r1_k3_e1_i32_o16'), /lacks 's'/);
});

test('roundFilters / roundRepeats give efficientnet_pytorch channels and depths', () => {
  // b2 (width 1.1): smp out_channels (32, 24, 48, 120, 352), head 1408
  assert.deepEqual([32, 24, 40, 112, 320, 1280].map((c) => roundFilters(c, 1.1)), [32, 24, 48, 120, 352, 1408]);
  // b7 (width 2.0)
  assert.deepEqual([32, 48 / 2, 80 / 2, 224 / 2, 640 / 2].map((c) => roundFilters(c, 2.0)), [64, 48, 80, 224, 640]);
  assert.equal(roundFilters(12, 1.0), 16); // multiples of 8 even at width 1
  assert.deepEqual([1, 2, 2, 3, 3, 4, 1].map((r) => roundRepeats(r, 1.2)), [2, 3, 3, 4, 4, 5, 2]);
  const blocks = ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'].map((b) => {
    const c = efficientNetConfig(`efficientnet-${b}`);
    return c.blocks.map(decodeBlock).reduce((n, s) => n + roundRepeats(s.repeats, c.depth), 0);
  });
  assert.deepEqual(blocks, [16, 23, 23, 26, 32, 39, 45, 55]);
  assert.equal(EFFICIENTNET_BLOCKS.length, 7);
});

test('samePadding is TF "same": max((ceil(i/s)-1)*s + (k-1)*d + 1 - i, 0), left = p // 2', () => {
  assert.deepEqual(samePadding(260, 3, 2), [0, 1]); // b2 stem
  assert.deepEqual(samePadding(65, 5, 2), [2, 2]); // odd side, k5 s2
  assert.deepEqual(samePadding(64, 5, 2), [1, 2]);
  assert.deepEqual(samePadding(33, 3, 2), [1, 1]);
  assert.deepEqual(samePadding(17, 3, 1), [1, 1]);
  assert.deepEqual(samePadding(10, 1, 1), [0, 0]);
  assert.deepEqual(samePadding(10, 3, 1, 2), [2, 2]);
});

test('padding is static: fixed by the nominal image size, not by the input', () => {
  const enc = new EfficientNetEncoder(efficientNetConfig('efficientnet-b2'));
  // stem at 260: [0,1]; block 5 (first of stage 3, k5 s2) sees 65 -> [2,2] where a 64x64
  // input has 16 (dynamic padding would give [1,2]); block 8 (k3 s2) sees 33 -> [1,1]
  assert.deepEqual(enc.convStem.pads(), [0, 1, 0, 1]);
  assert.deepEqual(enc.blocks.at(5).depthwiseConv.pads(), [2, 2, 2, 2]);
  assert.deepEqual(enc.blocks.at(8).depthwiseConv.pads(), [1, 1, 1, 1]);
  assert.deepEqual(enc.blocks.at(2).depthwiseConv.pads(), [0, 1, 0, 1]); // k3 s2 at 130
  assert.deepEqual(enc.blocks.at(1).depthwiseConv.pads(), [1, 1, 1, 1]); // k3 s1
  enc.dispose();
});

test('residuals: none on a stage\'s first block, on every repeat', () => {
  const enc = new EfficientNetEncoder(efficientNetConfig('efficientnet-b2'));
  const skips = enc.blocks.items.map((b) => b.hasSkip);
  assert.deepEqual(skips.map((s, i) => (s ? i : -1)).filter((i) => i >= 0), [1, 3, 4, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20, 22]);
  enc.dispose();
});

test('dropConnect: identity in eval; in training whole samples are zeroed or scaled by 1/(1-p)', () => {
  assertNoLeak(() => {
    const x = T.ones([64, 2, 3, 3]);
    assert.equal(dropConnect(x, 0.5, false), x);
    T.manualSeed(1);
    const y = dropConnect(x, 0.25, true);
    const per = T.tidy(() => y.reshape([64, -1]));
    const rows = per.toArray();
    const vals = new Set(rows.map((v) => v.toFixed(6)));
    assert.deepEqual([...vals].sort(), ['0.000000', (1 / 0.75).toFixed(6)]);
    for (let i = 0; i < 64; i++) assert.equal(new Set(rows.slice(i * 18, i * 18 + 18)).size, 1, 'one draw per sample');
    const kept = rows.filter((v) => v > 0).length / 18;
    assert.ok(kept > 32 && kept < 64, `kept ${kept} of 64 at p = 0.25`);
    // bit for bit efficientnet_pytorch's x / keep * mask from the same draw, signs of zero,
    // infinities and NaN included
    const special = [Infinity, -Infinity, NaN, -0, 0, -1, 2, -3, 4, -5, 6, -7, 8, -9, 10, -11, 12, -13];
    const z = T.tidy(() => T.cat([T.tensor(special).reshape([1, 2, 3, 3]), T.randn([63, 2, 3, 3])], 0));
    T.manualSeed(5);
    const ours = dropConnect(z, 0.3, true);
    T.manualSeed(5);
    const ref = T.tidy(() => z.div(0.7).mul(T.rand([64, 1, 1, 1]).add(0.7).floor()));
    const [a, b] = [ours.toArray(), ref.toArray()];
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `element ${i}: ${a[i]} vs ${b[i]}`);
    T.dispose([x, y, per, z, ours, ref]);
  });
});

test('encoder features: six, at strides 1..32, with smp\'s channels; no leaks; frees intermediates', () => {
  const enc = new EfficientNetEncoder(efficientNetConfig('efficientnet-test'));
  enc.eval();
  const x = T.randn([2, 3, 64, 96]);
  assertNoLeak(() => {
    const f = T.noGrad(() => enc.features(x));
    assert.deepEqual(f.map((t) => t.shape), [1, 2, 4, 8, 16, 32].map((s, i) => [2, enc.outChannels[i], 64 / s, 96 / s]));
    T.dispose(f.slice(1));
  });
  assertNoLeak(() => {
    const y = T.noGrad(() => enc.forward(x));
    assert.deepEqual(y.shape, [2, 40, 2, 3]);
    y.dispose();
  });
  T.dispose([x, enc]);
});

test('EfficientNet config errors name the problem', () => {
  assert.throws(() => efficientNetConfig('efficientnet-b9'), /unknown EfficientNet 'efficientnet-b9'/);
  assert.throws(() => new EfficientNetEncoder({ ...efficientNetConfig('efficientnet-test'), stageIdxs: [3, 4, 6, 9] }), /stageIdxs \[3,4,6,9\] must rise to the block count 7/);
});
