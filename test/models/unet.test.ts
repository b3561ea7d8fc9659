/** smp's Unet: names, the multiple-of-32 rule, padded forward, registry, initialisation, memory. */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Unet, createEncoder, createUnet, encoderChannels, encoderNames } from '../../src/models';
import * as T from '../../src/tensor';
import { assertNoLeak } from '../helpers/assert';

const SMALL = [16, 16, 8, 8, 8];
const slow = process.env.CQSEG_SLOW_TESTS === '1';

test('smp names: decoder.blocks.0.conv1.0.weight, segmentation_head.0.*; decoder input channels', () => {
  const m = new Unet({ encoderName: 'efficientnet-test', classes: 3, decoderChannels: SMALL });
  const sd = m.stateDict();
  assert.deepEqual(sd.get('decoder.blocks.0.conv1.0.weight')!.shape, [16, 40 + 32, 3, 3]);
  assert.deepEqual(sd.get('decoder.blocks.4.conv1.0.weight')!.shape, [8, 8, 3, 3]); // no skip for the last block
  assert.deepEqual(sd.get('segmentation_head.0.weight')!.shape, [3, 8, 3, 3]);
  assert.ok(sd.has('segmentation_head.0.bias'));
  assert.ok(!sd.has('decoder.blocks.0.conv1.0.bias'), 'decoder convs have no bias (batch norm follows)');
  assert.deepEqual([...sd.keys()].filter((k) => k.startsWith('decoder.blocks.0.')).slice(0, 6), [
    'decoder.blocks.0.conv1.0.weight', 'decoder.blocks.0.conv1.1.weight', 'decoder.blocks.0.conv1.1.bias',
    'decoder.blocks.0.conv1.1.running_mean', 'decoder.blocks.0.conv1.1.running_var', 'decoder.blocks.0.conv1.1.num_batches_tracked',
  ]);
  m.dispose();
});

test('input sides must be multiples of 32: forward says so and gives the padded size', () => {
  const m = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: SMALL }).eval();
  const x = T.zeros([1, 3, 50, 64]);
  assertNoLeak(() => {
    assert.throws(() => m.forward(x), /height 50 and width 64; both must be multiples of 32\. Pad to \[1,3,64,64\] or call forwardPadded/);
  });
  const g = T.zeros([1, 1, 64, 64]);
  assert.throws(() => m.forward(g), /must have 3 channels/);
  T.dispose([x, g, m]);
});

test('forwardPadded pads to the next multiple of 32 (reflect, centred) and crops back', () => {
  const m = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: SMALL }).eval();
  const x = T.randn([1, 3, 50, 70]);
  assertNoLeak(() => T.tidy(() => T.noGrad(() => {
    const y = m.forwardPadded(x);
    assert.deepEqual(y.shape, [1, 2, 50, 70]);
    // the same as padding by hand: 64x96 -> pads (13, 13) left/right, (7, 7) top/bottom
    const full = m.forward(T.pad(x, [13, 13, 7, 7], 'reflect'));
    const crop = full.slice(2, 7, 57).slice(3, 13, 83);
    assert.equal(T.max(y.sub(crop).abs()).item(), 0);
    // sizes already fine: the same as forward
    const x64 = T.randn([1, 3, 64, 32]);
    assert.equal(T.max(m.forwardPadded(x64).sub(m.forward(x64)).abs()).item(), 0);
    // too small to reflect: falls back to replicate; constant padding on request
    assert.deepEqual(m.forwardPadded(T.randn([1, 3, 9, 40])).shape, [1, 2, 9, 40]);
    assert.deepEqual(m.forwardPadded(x, { mode: 'constant' }).shape, [1, 2, 50, 70]);
  })));
  T.dispose([x, m]);
});

test('registry: every encoder has smp\'s channels and returns them at strides 1..32', () => {
  assert.deepEqual(encoderNames(), [
    'efficientnet-b0', 'efficientnet-b1', 'efficientnet-b2', 'efficientnet-b3', 'efficientnet-b4', 'efficientnet-b5',
    'efficientnet-b6', 'efficientnet-b7', 'resnet18', 'resnet34', 'resnet50',
  ]);
  assert.deepEqual(encoderChannels('efficientnet-b2'), [3, 32, 24, 48, 120, 352]);
  assert.deepEqual(encoderChannels('resnet50'), [3, 64, 256, 512, 1024, 2048]);
  assert.throws(() => createEncoder('vgg16'), /'encoderName' must be one of .*'resnet34'.*got 'vgg16'/);
  // the goldens cover b0-b3 and the ResNets already; here the rest, all with CQSEG_SLOW_TESTS=1
  const quick = ['efficientnet-test', 'efficientnet-b0', 'resnet18'];
  for (const name of encoderNames({ includeTest: true })) {
    if (!quick.includes(name) && !slow) continue;
    const enc = createEncoder(name).eval();
    assertNoLeak(() => T.tidy(() => T.noGrad(() => {
      const f = enc.features(T.zeros([1, 3, 32, 64]));
      assert.deepEqual(f.map((t) => t.shape), [1, 2, 4, 8, 16, 32].map((s, i) => [1, encoderChannels(name)[i], 32 / s, 64 / s]), name);
    })));
    enc.dispose();
  }
});

test('initialisation as smp: decoder kaiming-uniform (fan_in, relu), head xavier with zero bias', () => {
  T.manualSeed(3);
  const m = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: SMALL });
  const sd = m.stateDict();
  const w = sd.get('decoder.blocks.0.conv1.0.weight')!;
  const bound = Math.sqrt(6 / (72 * 9));
  const absMax = T.tidy(() => T.max(w.abs()).item());
  assert.ok(absMax <= bound && absMax > 0.9 * bound, `max |w| ${absMax}, bound ${bound}`);
  const hb = Math.sqrt(6 / (8 * 9 + 2 * 9));
  const h = T.tidy(() => T.max(sd.get('segmentation_head.0.weight')!.abs()).item());
  assert.ok(h <= hb && h > 0.8 * hb, `head max ${h}, bound ${hb}`);
  assert.deepEqual(sd.get('segmentation_head.0.bias')!.toArray(), [0, 0]);
  m.dispose();
});

test('training step: gradients reach the encoder stem; memory flat over steps', () => {
  const m = new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: SMALL }).train();
  const x = T.randn([2, 3, 64, 64]);
  const t = T.randint(0, 2, [2, 64, 64]);
  const step = (): void => {
    T.tidy(() => T.crossEntropy(m.forward(x), t).backward());
    m.zeroGrad();
  };
  step();
  const before = T.memory();
  for (let i = 0; i < 5; i++) step();
  assert.equal(T.memory().liveTensors, before.liveTensors);
  T.tidy(() => T.crossEntropy(m.forward(x), t).backward());
  const g = m.encoder.stateDict().get('_conv_stem.weight')!.grad!;
  assert.ok(T.tidy(() => g.abs().sum().item()) > 0);
  g.dispose();
  T.dispose([m, x, t]);
});

test('createUnet defaults to the paper\'s efficientnet-b2; bad options are refused', () => {
  const m = createUnet({ classes: 4 });
  assert.equal(m.encoderName, 'efficientnet-b2');
  assert.equal(m.stateDict().get('segmentation_head.0.weight')!.shape[0], 4);
  m.dispose();
  assert.throws(() => new Unet({ encoderName: 'efficientnet-test', decoderChannels: [16, 8] }), /5 positive integers/);
  assert.throws(() => new Unet({ encoderName: 'efficientnet-test', classes: 0 }), /'classes'/);
});
