import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { memory } from '../../src/tensor';
import { cli } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-cli-eval-'));
let data = '';
let run = '';
let bank = '';

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  run = path.join(root, 'run');
  await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 2, lr: 1e-2, valFraction: 0, threads: 1 }), { progress: false });
  bank = path.join(root, 'bank.safetensors');
  const r = await cli(['references', '--data', data, '--model', run, '--out', bank, '--quiet']);
  assert.equal(r.code, 0, r.err);
});

test('cqseg evaluate prints a table and writes every figure as JSON, without leaking tensors', async () => {
  const before = memory().liveTensors;
  const json = path.join(root, 'eval.json');
  const exri = path.join(data, 'images', fs.readdirSync(path.join(data, 'images')).sort()[0]);
  const r = await cli(['evaluate', '--model', run, '--refs', bank, '--data', data, '--dcin', 'none,exri,gris,lris,full,auto',
    '--exri', exri, '--bootstrap', '50', '--json', json]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Dice macro %/);
  assert.match(r.out, /none\s+exri\s+gris\s+lris\s+full\s+auto/);
  const res = JSON.parse(fs.readFileSync(json, 'utf8')) as { configs: string[]; results: { dcin: string; result: { dice: number; images: number; dicePerClass: number[]; diceCI: number[] } }[] };
  assert.deepEqual(res.configs, ['none', 'exri', 'gris', 'lris', 'full', 'auto']);
  for (const x of res.results) {
    assert.equal(x.result.images, 4);
    assert.ok(x.result.dice >= 0 && x.result.dice <= 1);
    assert.equal(x.result.dicePerClass.length, 2);
    assert.ok(x.result.diceCI[0] <= x.result.diceCI[1]);
  }
  assert.equal(memory().liveTensors, before);
  // every image's OOD distance and flag, the same on every configuration; the training images are inside
  const full = JSON.parse(fs.readFileSync(json, 'utf8')) as { results: { dcin: string; result: { perImage: { stem: string; ood: { distance: number; flagged: boolean } }[] } }[]; ood: { images: number; flagged: number }[] };
  for (const x of full.results) {
    assert.equal(x.result.perImage.length, 4);
    assert.deepEqual(x.result.perImage.map((p) => p.ood), full.results[0].result.perImage.map((p) => p.ood), x.dcin);
    for (const p of x.result.perImage) assert.equal(p.ood.flagged, false, `${p.stem}: ${JSON.stringify(p.ood)}`);
  }
  assert.deepEqual(full.ood.map((o) => [o.images, o.flagged]), [[4, 0]]);
  assert.match(r.out, /OOD flagged: \S+ 0\/4/);
  const orig = await cli(['evaluate', '--model', run, '--data', data, '--dcin', 'none', '--original-resolution', '--bootstrap', '0', '--json', json]);
  assert.equal(orig.code, 0, orig.err);
});

test('cqseg evaluate errors name what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['evaluate', '--data', data], /--model RUN is required/],
    [['evaluate', '--model', run], /at least one --data/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'none,magic'], /--dcin: column 'magic': unknown DCIN mode 'magic'; a column is DCIN\[\+adabn\|\+adabn-image\]\[\+flip\], DCIN one of none, exri, gris/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'gris'], /need --refs BANK/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'none,lris+flip'], /configurations lris\+flip need --refs BANK/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'adabn-image', '--alpha', '1.5'], /--alpha must be a number from 0 to 1, got '1.5'/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'flip,none+flip'], /column 'none\+flip' is given twice/],
    [['evaluate', '--model', run, '--data', data, '--dcin', 'exri'], /'exri' needs --exri IMAGE/],
    [['evaluate', '--model', path.join(root, 'nope'), '--data', data, '--dcin', 'none'], /does not exist/],
    [['evaluate', '--model', run, '--data', path.join(root, 'nodata'), '--dcin', 'none'], /does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, re, args.join(' '));
  }
});

test('cqseg evaluate: test-time adaptation columns beside DCIN; the JSON says how AdaBN was estimated', async () => {
  const before = memory().liveTensors;
  const json = path.join(root, 'eval-tta.json');
  const cols = ['none', 'adabn', 'adabn-image', 'flip', 'auto+adabn+flip'];
  const r = await cli(['evaluate', '--model', run, '--refs', bank, '--data', data, '--dcin', cols.join(','), '--alpha', '0.25', '--bootstrap', '0', '--json', json]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /none\s+adabn\s+adabn-image\s+flip\s+auto\+adabn\+flip/);
  const res = JSON.parse(fs.readFileSync(json, 'utf8')) as {
    configs: string[]; results: { dcin: string; result: { dice: number; images: number } }[];
    adabn: { weighting: string; domains: { images: number; layers: number }[] }; adabnImageAlpha: number;
  };
  assert.deepEqual(res.configs, cols);
  assert.deepEqual(res.results.map((x) => x.dcin), cols);
  for (const x of res.results) assert.ok(x.result.images === 4 && x.result.dice >= 0 && x.result.dice <= 1, `${x.dcin}: ${JSON.stringify(x.result)}`);
  assert.equal(res.adabn.weighting, 'image');
  assert.equal(res.adabn.domains[0].images, 4);
  assert.ok(res.adabn.domains[0].layers > 10);
  assert.equal(res.adabnImageAlpha, 0.25);
  assert.equal(memory().liveTensors, before);
});
