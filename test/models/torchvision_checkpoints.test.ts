/**
 * torchvision's own resnet18() and efficientnet_b0() state dicts (random weights), written
 * by Debian's python3-torch/torchvision at test time (tools/golden/torchvision_checkpoints.py;
 * too large to keep in the repository), loaded through the name maps: ResNet's deepest
 * feature map equals torchvision's on the same input (within 1e-4 of its range; both sides
 * float32 on the same machine's libtorch 1.13: measured 0, CQSEG_SHOW_ERRORS=1 prints it), and every EfficientNet tensor lands where the torchvision-efficientnet map puts
 * it (values equal). Skipped, with the reason, where python3-torchvision is not installed.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Unet, importWeights, mapNames } from '../../src/models';
import { readWeightsFile } from '../../src/nn';
import * as T from '../../src/tensor';
import { ROOT } from '../helpers/models';

const PY = '/usr/bin/python3';
const hasTorchvision = fs.existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
const skip = hasTorchvision ? false : 'needs Debian\'s python3-torch and python3-torchvision (apt-get install python3-torchvision)';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-tv-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function make(): { input_shape: number[]; input: number[]; layer4_shape: number[]; layer4: number[] } {
  if (!fs.existsSync(path.join(dir, 'expected.json'))) {
    const r = spawnSync(PY, [path.join(ROOT, 'tools', 'golden', 'torchvision_checkpoints.py'), dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  return JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
}

test("torchvision's resnet18 state dict: the encoder's deepest features equal torchvision's", { skip }, () => {
  const e = make();
  const m = new Unet({ encoderName: 'resnet18', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
  try {
    const plan = importWeights(m, path.join(dir, 'resnet18.pth'));
    assert.equal(plan.map, 'smp-encoder');
    assert.deepEqual(plan.unused.sort(), ['fc.bias', 'fc.weight']);
    m.eval();
    const err = T.tidy(() => {
      const x = T.tensor(Float64Array.from(e.input), e.input_shape).to('float32');
      const deepest = T.noGrad(() => m.encoder.forward(x)).to('float64'); // the deepest feature map (layer4)
      const ref = T.tensor(Float64Array.from(e.layer4), e.layer4_shape);
      return deepest.sub(ref).abs().max().item() / (ref.max().item() - ref.min().item());
    });
    if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`resnet18 layer4: ${err.toExponential(2)}\n`);
    assert.ok(err < 1e-4, `layer4 differs from torchvision's by ${err} of its range`);
  } finally {
    T.dispose(m);
  }
});

test("torchvision's efficientnet_b0 state dict: every tensor lands where the torchvision-efficientnet map puts it", { skip }, () => {
  make();
  const file = path.join(dir, 'efficientnet_b0.pth');
  const m = new Unet({ encoderName: 'efficientnet-b0', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
  const w = readWeightsFile(file);
  try {
    const plan = importWeights(m, file);
    assert.equal(plan.map, 'torchvision-efficientnet');
    assert.deepEqual(plan.missing, []);
    const sd = m.stateDict();
    const pairs = [...mapNames(m, 'torchvision-efficientnet')];
    assert.ok(pairs.length > 200, `${pairs.length} tensors mapped`);
    for (const [ours, theirs] of pairs) {
      const same = T.tidy(() => sd.get(ours)!.to('float64').sub(w.tensors.get(theirs)!.to('float64')).abs().max().item());
      assert.equal(same, 0, `${ours} <- ${theirs}`);
    }
  } finally {
    T.dispose([m, ...w.tensors.values()]);
  }
});
