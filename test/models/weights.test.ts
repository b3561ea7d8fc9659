/** Weight import through name maps, and `cqseg weights inspect`. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import { main } from '../../src/cli/main';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import { Unet, chooseMap, importWeights, mapNames } from '../../src/models';
import { SafetensorsError, WeightsError, writeSafetensors } from '../../src/nn';
import * as T from '../../src/tensor';
import { ROOT } from '../helpers/models';

const SMALL = [16, 16, 8, 8, 8];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-weights-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const small = (classes = 2): Unet => new Unet({ encoderName: 'efficientnet-test', classes, decoderChannels: SMALL });

function sameValues(a: Unet, b: Unet, prefix = ''): boolean {
  const sb = b.stateDict();
  return T.tidy(() => [...a.stateDict()].filter(([n]) => n.startsWith(prefix)).every(([n, t]) => T.max(t.to('float64').sub(sb.get(n)!.to('float64')).abs()).item() === 0));
}

test('a whole smp state dict loads with the identity map; values equal', () => {
  const a = small();
  const b = small();
  const file = path.join(tmp, 'full.safetensors');
  writeSafetensors(file, a.stateDict());
  const before = T.memory().liveTensors;
  const plan = importWeights(b, file);
  assert.equal(T.memory().liveTensors, before, 'no leaks');
  assert.equal(plan.map, 'smp');
  assert.deepEqual([plan.missing, plan.unused, plan.mismatched, plan.notCovered], [[], [], [], []]);
  assert.ok(sameValues(a, b));
  T.dispose([a, b]);
});

test("a DataParallel 'module.' prefix is dropped", () => {
  const a = small();
  const b = small();
  const file = path.join(tmp, 'module.safetensors');
  writeSafetensors(file, [...a.stateDict()].map(([n, t]) => [`module.${n}`, t] as [string, T.Tensor]));
  const plan = importWeights(b, file);
  assert.equal(plan.strippedPrefix, 'module.');
  assert.ok(sameValues(a, b));
  T.dispose([a, b]);
});

test('an encoder alone (smp encoder / efficientnet_pytorch with _fc) loads the encoder only', () => {
  const a = small();
  const b = small();
  const file = path.join(tmp, 'encoder.safetensors');
  const fc = [['_fc.weight', T.zeros([1000, 48])], ['_fc.bias', T.zeros([1000])]] as [string, T.Tensor][];
  writeSafetensors(file, [...a.encoder.stateDict(), ...fc]);
  const plan = importWeights(b, file);
  assert.equal(plan.map, 'smp-encoder');
  assert.deepEqual(plan.unused, ['_fc.weight', '_fc.bias']);
  assert.ok(plan.notCovered.every((n) => !n.startsWith('encoder.')) && plan.notCovered.includes('segmentation_head.0.weight'));
  assert.ok(sameValues(a, b, 'encoder.'));
  assert.ok(!sameValues(a, b, 'decoder.'), 'the decoder keeps its own initialisation');
  T.dispose([a, b, fc.map(([, t]) => t)]);
});

test("timm EfficientNet names: blocks.S.R.conv_dw / conv_pw / conv_pwl / bn3, se.conv_reduce, conv_head, bn2", () => {
  const m = new Unet({ encoderName: 'efficientnet-b0', classes: 1 });
  const src = mapNames(m, 'timm-efficientnet');
  assert.equal(src.get('encoder._conv_stem.weight'), 'conv_stem.weight');
  assert.equal(src.get('encoder._bn0.running_var'), 'bn1.running_var');
  assert.equal(src.get('encoder._blocks.0._depthwise_conv.weight'), 'blocks.0.0.conv_dw.weight');
  assert.equal(src.get('encoder._blocks.0._project_conv.weight'), 'blocks.0.0.conv_pw.weight');
  assert.equal(src.get('encoder._blocks.0._bn2.bias'), 'blocks.0.0.bn2.bias');
  assert.equal(src.get('encoder._blocks.2._expand_conv.weight'), 'blocks.1.1.conv_pw.weight');
  assert.equal(src.get('encoder._blocks.2._bn0.weight'), 'blocks.1.1.bn1.weight');
  assert.equal(src.get('encoder._blocks.2._bn1.weight'), 'blocks.1.1.bn2.weight');
  assert.equal(src.get('encoder._blocks.2._se_reduce.bias'), 'blocks.1.1.se.conv_reduce.bias');
  assert.equal(src.get('encoder._blocks.2._project_conv.weight'), 'blocks.1.1.conv_pwl.weight');
  assert.equal(src.get('encoder._blocks.15._bn2.num_batches_tracked'), 'blocks.6.0.bn3.num_batches_tracked');
  assert.equal(src.get('encoder._conv_head.weight'), 'conv_head.weight');
  assert.equal(src.get('encoder._bn1.bias'), 'bn2.bias');
  assert.equal(src.has('decoder.blocks.0.conv1.0.weight'), false);
  m.dispose();
});

test('a timm-named checkpoint round-trips into the encoder; classifier unused', () => {
  const a = small();
  const b = small();
  const names = mapNames(a, 'timm-efficientnet');
  const sd = a.stateDict();
  const cls = [['classifier.weight', T.zeros([10, 48])], ['classifier.bias', T.zeros([10])]] as [string, T.Tensor][];
  const file = path.join(tmp, 'timm.safetensors');
  writeSafetensors(file, [...[...names].map(([to, from]) => [from, sd.get(to)!] as [string, T.Tensor]), ...cls]);
  const plan = importWeights(b, file);
  assert.equal(plan.map, 'timm-efficientnet');
  assert.deepEqual(plan.unused, ['classifier.weight', 'classifier.bias']);
  assert.ok(sameValues(a, b, 'encoder.'));
  T.dispose([a, b, cls.map(([, t]) => t)]);
});

test("torchvision checkpoints (names and shapes from torchvision itself) fit; only the classifier is unused", () => {
  const tv = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'golden', 'models_torchvision.json'), 'utf8')) as { stateDicts: Record<string, [string, number[]][]> };
  const cases: [string, string, string, string[]][] = [
    ['efficientnet_b0', 'efficientnet-b0', 'torchvision-efficientnet', ['classifier.1.weight', 'classifier.1.bias']],
    ['efficientnet_b2', 'efficientnet-b2', 'torchvision-efficientnet', ['classifier.1.weight', 'classifier.1.bias']],
    ['resnet18', 'resnet18', 'smp-encoder', ['fc.weight', 'fc.bias']],
    ['resnet50', 'resnet50', 'smp-encoder', ['fc.weight', 'fc.bias']],
  ];
  for (const [tvName, enc, mapId, unused] of cases) {
    const m = new Unet({ encoderName: enc, classes: 1, decoderChannels: SMALL });
    const source = new Map(tv.stateDicts[tvName]);
    const plan = chooseMap(source, m);
    assert.ok(plan, `${tvName}: a map fits`);
    assert.equal(plan.map, mapId, tvName);
    assert.deepEqual(plan.unused, unused, tvName);
    assert.equal(plan.pairs.length, m.encoder.stateDict().size, tvName);
    m.dispose();
  }
});

test('a checkpoint for other classes or another encoder is refused, naming the file and the tensors', () => {
  const a = small(3);
  const b = small(2);
  const file = path.join(tmp, 'classes3.safetensors');
  writeSafetensors(file, a.stateDict());
  assert.throws(() => importWeights(b, file), (err: Error) => {
    assert.ok(err instanceof WeightsError && (err as WeightsError).code === 'ERR_WEIGHTS');
    assert.match(err.message, /classes3\.safetensors/);
    assert.match(err.message, /segmentation_head\.0\.weight/);
    return true;
  });
  assert.throws(() => importWeights(b, file, { map: 'smp' }), /map 'smp' does not fit .*shape mismatch 2/);
  assert.throws(() => importWeights(b, file, { map: 'nope' }), /unknown weight map 'nope'/);
  const r = new Unet({ encoderName: 'resnet18', classes: 3, decoderChannels: SMALL });
  assert.throws(() => importWeights(r, file), /no name map fits Unet\(resnet18, classes=3\)/);
  T.dispose([a, b, r]);
});

const CLI = path.join(ROOT, 'bin', 'cqseg');
/** Runs `cqseg ARGS` in this process (stdout/stderr captured): no libtorch reload per call. */
async function cli(...args: string[]): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const w = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const status = await main(args);
    return { status, out: out.join(''), err: err.join('') };
  } finally {
    [process.stdout.write, process.stderr.write] = w as [typeof process.stdout.write, typeof process.stderr.write];
  }
}

test('cqseg weights inspect: tensors, the fitting map, missing and unused', async () => {
  const a = small(3);
  const file = path.join(tmp, 'inspect.safetensors');
  const fc = [['_fc.weight', T.zeros([1000, 48])]] as [string, T.Tensor][];
  writeSafetensors(file, [...a.encoder.stateDict(), ...fc]);
  const r = await cli('weights', 'inspect', file);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /_conv_stem\.weight\s+F32\s+\[8, 3, 3, 3\]/);
  assert.match(r.out, /Unet\(encoder efficientnet-test, classes 1/);
  assert.match(r.out, /smp-encoder\s+FITS: 160 tensors mapped/);
  assert.match(r.out, /unused in the file 1: _fc\.weight/);
  assert.match(r.out, /smp\s+does not fit/);
  const j = await cli('weights', 'inspect', file, '--json', '--classes', '3');
  const info = JSON.parse(j.out) as { fits: boolean; candidates: { classes: number; plans: { map: string; fits: boolean }[] }[] };
  assert.equal(info.fits, true);
  assert.equal(info.candidates[0].classes, 3);
  assert.deepEqual(info.candidates[0].plans.filter((p) => p.fits).map((p) => p.map), ['smp-encoder']);
  T.dispose([a, fc[0][1]]);
});

test('cqseg weights inspect: errors', async () => {
  const noFile = await cli('weights', 'inspect');
  assert.equal(noFile.status, 2);
  assert.match(noFile.err, /missing FILE/);
  const none = await cli('weights', 'inspect', path.join(tmp, 'nope.safetensors'));
  assert.equal(none.status, 1);
  assert.match(none.err, /no such file/);
  const other = path.join(tmp, 'other.safetensors');
  const t = T.zeros([2]);
  writeSafetensors(other, [['foo.bar', t]]);
  const o = await cli('weights', 'inspect', other);
  assert.equal(o.status, 1);
  assert.match(o.out, /No known encoder layout/);
  assert.match((await cli('weights', 'inspect', other, '--encoder', 'vgg')).err, /--encoder must be one of/);
  t.dispose();
});

test('bin/cqseg weights inspect runs end to end (exit status 0 when a map fits)', () => {
  const a = small(2);
  const file = path.join(tmp, 'e2e.safetensors');
  writeSafetensors(file, a.stateDict());
  const r = spawnSync(process.execPath, [CLI, 'weights', 'inspect', file, '--summary'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /smp\s+FITS: 222 tensors mapped/);
  a.dispose();
});

test('importWeights refuses a tensor it takes holding NaN, naming it; an unused one may hold anything', () => {
  const a = small();
  const b = small();
  const file = path.join(tmp, 'nan.safetensors');
  const before = T.memory().liveTensors;
  T.tidy(() => {
    const poison = (t: T.Tensor): T.Tensor => T.where(T.arange(t.size).eq(0).reshape(t.shape), Number.NaN, t);
    const sd = [...a.stateDict()].map(([k, t]): [string, T.Tensor] => [k, k === 'decoder.blocks.1.conv1.0.weight' ? poison(t) : t]);
    writeSafetensors(file, sd);
    assert.throws(() => importWeights(b, file), (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${file}: tensor 'decoder.blocks.1.conv1.0.weight' holds NaN`));
    assert.ok(!sameValues(a, b, 'encoder.'), 'nothing loaded');
    writeSafetensors(file, [...a.stateDict(), ['_fc.weight', T.full([3, 3], Number.NaN)] as [string, T.Tensor]]);
    assert.equal(importWeights(b, file).map, 'smp');
  });
  assert.equal(T.memory().liveTensors, before, 'no leaks');
  T.dispose([a, b]);
});
