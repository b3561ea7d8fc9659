/**
 * Parity with the real smp 0.3.4 Unet(efficientnet-b2, classes=5): the fixture in
 * test/data/smp-unet-efficientnet-b2, read by its README's rule.
 *
 * Tolerance: the fixture asks for 1e-4, but its README's fill (gain 6) makes the model
 * sensitive to rounding: the fixture (float32, made by smp) is 1.9e-4 from a float64
 * evaluation of the same model, and a float32 run here is 1.6e-4 from it, so a float32
 * comparison would rest on a margin that another CPU's rounding can eat. So the parity
 * check runs cqseg in float64: its distance to the fixture is then the fixture's own
 * rounding (1.9e-4 max, 1.8e-5 mean, fixed, the same on every CPU), held to 5e-4 and
 * 3e-5. cqseg's float32 run is checked against its float64 run at 2e-3 (measured
 * 1.6e-4: a 12x margin). The near miss the README names (BatchNorm eps 1e-5) moves the
 * output by 0.077, and the test below checks that it fails.
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

function run(model: Unet, dtype: 'float32' | 'float64' = 'float32'): Float64Array {
  const x = T.tidy(() => T.tensor(readF32(path.join(DIR, 'input_1x3x64x96.f32')), [1, 3, 64, 96]).to(dtype));
  model.to(dtype);
  const y = T.tidy(() => T.noGrad(() => model.eval().forward(x).to('float64')));
  const out = y.dataSync() as Float64Array;
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

test('smp b2 Unet: eval output matches the fixture (float64: max 5e-4, mean 3e-5; float32: 2e-3 of float64; see the header)', () => {
  const before = T.memory().liveTensors;
  const m = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  fillModule(m);
  const out32 = run(m);
  const out64 = run(m, 'float64');
  const err = absErr(out64, readF32(path.join(DIR, 'output_1x5x64x96.f32')));
  const err32 = absErr(out32, out64);
  m.dispose();
  assert.ok(err.max <= 5e-4 && err.mean <= 3e-5, `float64 vs fixture: max |err| ${err.max}, mean ${err.mean}`);
  assert.ok(err32.max <= 2e-3, `float32 vs float64: max |err| ${err32.max}`);
  assert.equal(T.memory().liveTensors, before, 'no tensor leaks');
});

test('smp b2 Unet: the near miss (BatchNorm eps 1e-5 instead of 1e-3) fails the tolerance', () => {
  const m = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  fillModule(m);
  for (const [name, mod] of m.namedModules()) {
    if (name.startsWith('encoder') && mod instanceof BatchNorm2d) (mod as { eps: number }).eps = 1e-5;
  }
  const err = absErr(run(m, 'float64'), readF32(path.join(DIR, 'output_1x5x64x96.f32')));
  m.dispose();
  assert.ok(err.max > 1e-2, `max |err| ${err.max}`);
});
