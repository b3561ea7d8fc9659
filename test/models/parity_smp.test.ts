/**
 * Parity with the real smp 0.3.4 Unet(efficientnet-b2, classes=5): the fixture in
 * test/data/smp-unet-efficientnet-b2, read by its README's rule.
 *
 * Tolerance: the fixture asks for 1e-4, but float32 rounding alone moves this output by
 * more: PyTorch on this machine differs from the fixture by 2.4e-4 (1 thread) and 3.9e-4
 * (2 threads), and from itself by 4.0e-4 between 1 and 2 threads; the fixture is 1.9e-4 from
 * a float64 evaluation of the same model. So the max is held to 5e-4 and the mean to
 * 3e-5 (measured 1.9e-4 and 1.8e-5); the near miss the README names (BatchNorm eps
 * 1e-5) moves the output by 0.077, and the test below checks that it fails.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { Unet } from '../../src/models';
import { BatchNorm2d } from '../../src/nn';
import * as T from '../../src/tensor';
import { ROOT, absErr, fillModule, readF32 } from '../helpers/models';

const DIR = path.join(ROOT, 'test', 'data', 'smp-unet-efficientnet-b2');
const meta = JSON.parse(fs.readFileSync(path.join(DIR, 'state_dict.json'), 'utf8')) as {
  parameters: number; encoder_parameters: number; state_dict: [string, number[], string][];
};

function run(model: Unet): Float32Array {
  const x = T.tensor(readF32(path.join(DIR, 'input_1x3x64x96.f32')), [1, 3, 64, 96]);
  const y = T.tidy(() => T.noGrad(() => model.eval().forward(x)));
  const out = y.dataSync() as Float32Array;
  T.dispose([x, y]);
  return out;
}

test('smp b2 Unet: the same state-dict names, shapes, dtypes, order and parameter counts', () => {
  const m = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  const ours = [...m.stateDict()].map(([k, t]) => [k, t.shape, t.dtype]);
  assert.equal(ours.length, meta.state_dict.length);
  ours.forEach((e, i) => assert.deepEqual(e, meta.state_dict[i], `tensor ${i}`));
  assert.equal(m.numParameters(), meta.parameters);
  assert.equal(m.encoder.numParameters(), meta.encoder_parameters);
  m.dispose();
});

test('smp b2 Unet: eval output matches the fixture (max 5e-4, mean 3e-5; see the header)', () => {
  const before = T.memory().liveTensors;
  const m = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  fillModule(m);
  const out = run(m);
  const err = absErr(out, readF32(path.join(DIR, 'output_1x5x64x96.f32')));
  m.dispose();
  assert.ok(err.max <= 5e-4 && err.mean <= 3e-5, `max |err| ${err.max}, mean ${err.mean}`);
  assert.equal(T.memory().liveTensors, before, 'no tensor leaks');
});

test('smp b2 Unet: the near miss (BatchNorm eps 1e-5 instead of 1e-3) fails the tolerance', () => {
  const m = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  fillModule(m);
  for (const [name, mod] of m.namedModules()) {
    if (name.startsWith('encoder') && mod instanceof BatchNorm2d) (mod as { eps: number }).eps = 1e-5;
  }
  const err = absErr(run(m), readF32(path.join(DIR, 'output_1x5x64x96.f32')));
  m.dispose();
  assert.ok(err.max > 1e-2, `max |err| ${err.max}`);
});
