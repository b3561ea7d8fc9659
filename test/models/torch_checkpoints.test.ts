/**
 * PyTorch checkpoints read as people save them (test/data/torch-checkpoints, written by
 * Debian's python3-torch through tools/golden/torch_checkpoints.py): the file is read by
 * libtorch's unpickler, the state dict found at the top or under its container key
 * ('module.' prefixes dropped), loaded through the name maps, and the Unet's output
 * compared with PyTorch's on the same input. Tolerance: 1e-4 of the output's range (both
 * sides float32; measured 2.4e-7 of it, for all three dtypes). Files libtorch cannot read, and
 * files that are no checkpoint or do not fit, give a WeightsError naming the file and the fix.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Unet, importWeights } from '../../src/models';
import { WeightsError, readWeightsFile } from '../../src/nn';
import * as T from '../../src/tensor';
import { ROOT } from '../helpers/models';

const DIR = path.join(ROOT, 'test', 'data', 'torch-checkpoints');
const file = (name: string): string => path.join(DIR, name);
const expected = JSON.parse(fs.readFileSync(file('expected.json'), 'utf8')) as {
  input_shape: number[]; input: number[]; output_shape: number[]; outputs: Record<'float32' | 'float16' | 'bfloat16', number[]>;
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-pth-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const unet = (): Unet => new Unet({ encoderName: 'efficientnet-test', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
/** libtorch 2.6 and later read OrderedDicts (pytorch/pytorch#139750) */
const readsOrderedDict = (() => {
  const [major, minor] = T.torchVersion().split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 6);
})();

/** max |cqseg - PyTorch| over the output's range, for the model loaded from `name` */
function outputError(model: Unet, kind: 'float32' | 'float16' | 'bfloat16'): number {
  return T.tidy(() => {
    model.eval();
    const x = T.tensor(Float64Array.from(expected.input), expected.input_shape).to('float32');
    const y = T.noGrad(() => model.forward(x)).to('float64');
    const ref = T.tensor(Float64Array.from(expected.outputs[kind]), expected.output_shape);
    const range = ref.max().item() - ref.min().item();
    return y.sub(ref).abs().max().item() / range;
  });
}

function loads(name: string, kind: 'float32' | 'float16' | 'bfloat16', map = 'smp'): void {
  const m = unet();
  try {
    const plan = importWeights(m, file(name));
    assert.equal(plan.map, map, name);
    assert.deepEqual([plan.missing, plan.mismatched], [[], []], name);
    const err = outputError(m, kind);
    assert.ok(err < 1e-4, `${name}: output differs from PyTorch's by ${err} of its range`);
  } finally {
    T.dispose(m);
  }
}

test('a bare state dict, and checkpoints holding one under state_dict (with module. prefixes) or model, give PyTorch\'s output', () => {
  const before = T.memory().liveTensors;
  loads('dict.pth', 'float32');
  loads('wrapped.pt', 'float32');
  loads('model_key.bin', 'float32');
  assert.equal(T.memory().liveTensors, before, 'no tensor left behind');
  const w = readWeightsFile(file('wrapped.pt'));
  try {
    assert.equal(w.format, 'pytorch');
    assert.equal(w.container, 'state_dict');
    assert.ok([...w.tensors.keys()].every((k) => k.startsWith('module.')));
    assert.ok(w.others.includes('epoch: Int'), w.others.join(', '));
    assert.ok(w.others.some((o) => /^4 tensors outside the state dict/.test(o)), w.others.join(', '));
  } finally {
    T.dispose([...w.tensors.values()]);
  }
});

test('float16 and bfloat16 checkpoints load into the float32 model with PyTorch\'s output for the rounded weights', () => {
  loads('fp16.pth', 'float16');
  loads('bf16.pth', 'bfloat16');
  const w = readWeightsFile(file('bf16.pth'));
  assert.equal(w.tensors.get('segmentation_head.0.weight')!.dtype, 'bfloat16');
  T.dispose([...w.tensors.values()]);
});

test('an efficientnet_pytorch encoder file fits the smp-encoder map and sets the encoder alone', () => {
  const a = unet();
  const b = unet();
  try {
    importWeights(a, file('dict.pth'));
    const plan = importWeights(b, file('encoder.pth'));
    assert.equal(plan.map, 'smp-encoder');
    const sa = a.stateDict();
    const same = [...b.stateDict()].filter(([n]) => n.startsWith('encoder.')).every(([n, t]) => T.tidy(() => t.sub(sa.get(n)!).abs().max().item() === 0));
    assert.ok(same, 'encoder values equal the whole model file\'s');
  } finally {
    T.dispose([a, b]);
  }
});

test('what libtorch cannot read, what is no checkpoint, and what does not fit: a WeightsError naming the file and the fix', () => {
  const refuses = (f: string, re: RegExp): void => {
    assert.throws(() => readWeightsFile(f), (e: unknown) => e instanceof WeightsError && e.message.startsWith(`${f}: `) && re.test(e.message), f);
  };
  if (readsOrderedDict) loads('ordered.pth', 'float32');
  else refuses(file('ordered.pth'), /holds an OrderedDict \(what model\.state_dict\(\) returns\).*pytorch\/pytorch#37213.*torch\.save\(dict\(state_dict\), 'new\.pth'\)/);
  refuses(file('legacy.pth'), /legacy format .*_use_new_zipfile_serialization=False.*re-save it from Python/);
  refuses(file('no_tensors.pth'), /holds no tensors; it holds: epoch: Int, lr: Double, name: String/);
  if (!readsOrderedDict) refuses(file('single_entry.pth'), /a dict or list of a single entry.*SETITEM, APPEND.*torch\.save\(dict\(model\.state_dict\(\)\)/);
  const text = path.join(tmp, 'notes.pth');
  fs.writeFileSync(text, 'not a checkpoint\n');
  refuses(text, /is not a PyTorch checkpoint/);
  const cut = path.join(tmp, 'cut.pth');
  fs.writeFileSync(cut, fs.readFileSync(file('dict.pth')).subarray(0, 4000));
  refuses(cut, /is not a readable PyTorch checkpoint \(/);
  const empty = path.join(tmp, 'empty.pt');
  fs.writeFileSync(empty, '');
  refuses(empty, /is empty/);
  refuses(path.join(tmp, 'missing.pth'), /cannot be read/);
  const m = unet();
  try {
    assert.throws(() => importWeights(m, file('wrong_shape.pth')), (e: unknown) => e instanceof WeightsError && /segmentation_head\.0\.weight/.test((e as Error).message));
  } finally {
    T.dispose(m);
  }
});

const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cqseg'), ...args], { encoding: 'utf8', env: { ...process.env, CQSEG_THREADS: '1' } });

test('cqseg weights inspect reads a .pt checkpoint; weights convert writes safetensors that load the same (with --map: cqseg names)', () => {
  const r = cli('weights', 'inspect', file('wrapped.pt'), '--summary');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /PyTorch checkpoint, state dict under 'state_dict'; 222 tensors/);
  assert.match(r.stdout, /also held \(not weights\): epoch: Int/);
  assert.match(r.stdout, /smp\s+FITS: 222 tensors mapped \(prefix 'module\.' dropped\)/);
  const plain = path.join(tmp, 'plain.safetensors');
  const c1 = cli('weights', 'convert', file('wrapped.pt'), plain);
  assert.equal(c1.status, 0, c1.stderr);
  assert.match(c1.stdout, /222 tensors from .*wrapped\.pt \(pytorch, under 'state_dict'\), names as in the file/);
  const mapped = path.join(tmp, 'mapped.safetensors');
  const c2 = cli('weights', 'convert', file('encoder.pth'), mapped, '--map', 'smp-encoder', '--classes', '2');
  assert.equal(c2.status, 0, c2.stderr);
  assert.match(c2.stdout, /names of Unet\(efficientnet-test, classes 2\) through map 'smp-encoder'/);
  const w = readWeightsFile(mapped);
  assert.ok([...w.tensors.keys()].every((k) => k.startsWith('encoder.')));
  T.dispose([...w.tensors.values()]);
  loads(path.relative(DIR, plain), 'float32');
  assert.equal(fs.readdirSync(tmp).filter((f) => f.includes('.tmp')).length, 0, 'no temp file left');
  const bad = cli('weights', 'convert', file('dict.pth'), path.join(tmp, 'x.bin'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /OUT must end in \.safetensors/);
  const refusals: [string[], number, RegExp][] = [
    [[file('dict.pth')], 2, /convert takes IN and OUT\.safetensors, got 1 file\(s\)/],
    [[file('dict.pth'), path.join(tmp, 'y.safetensors'), '--map', 'nope'], 2, /--map must be auto or one of smp, /],
    [[file('encoder.pth'), path.join(tmp, 'z.safetensors'), '--map', 'timm-efficientnet'], 1, /map 'timm-efficientnet' fits no Unet this file may be for \(efficientnet-test\)/],
    [[path.join(tmp, 'none.pth'), path.join(tmp, 'w.safetensors')], 1, /no such file/],
  ];
  for (const [args, status, re] of refusals) {
    const r = cli('weights', 'convert', ...args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});
