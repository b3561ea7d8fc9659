/**
 * Bad-input corpus for data, config and weights (issue 14): one case per defect, each
 * input built in a temp folder, with the exit status and what stderr must say.
 *   - 16-bit PNG masks were divided by 256 (class 1 read as 0) and `data check` passed;
 *   - `--mask-mode threshold:T` took T modulo 256;
 *   - config files were not checked (unknown keys ignored, arrays run the defaults,
 *     "epochs": "1" reported as "got 1");
 *   - a model with NaN weights predicted all background with exit status 0.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { writeImage } from '../../src/data';
import * as T from '../../src/tensor';
import { CorpusCase, runCase } from '../helpers/cli';
import { writeFolderDataset } from '../helpers/data';
import { writeRunFolder } from '../helpers/run_folder';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-corpus-data-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const at = (...p: string[]): string => path.join(root, ...p);
const POISONED = 'decoder.blocks.2.conv1.0.weight';

/** A 16 x 16 folder dataset of `n` samples whose masks are 16-bit PNGs of `values(i)` (2 classes unless said). */
async function dataset16(name: string, values: (i: number) => number, classes = ['bg', 'fg']): Promise<string> {
  const dir = at(name);
  await writeFolderDataset(dir, 2, 16, 16, 2);
  fs.writeFileSync(path.join(dir, 'classes.json'), JSON.stringify(classes));
  await sharp(Uint16Array.from({ length: 16 * 16 }, (_, i) => values(i)), { raw: { width: 16, height: 16, channels: 1 } })
    .toColourspace('grey16').png().toFile(path.join(dir, 'masks', 's0.png'));
  return dir;
}

function configFile(name: string, json: unknown): string {
  const file = at(name);
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

const notCreated = (...p: string[]) => (): void => assert.ok(!fs.existsSync(at(...p)), `${p.join('/')} was created`);
const trainArgs = (out: string): string[] =>
  ['train', '--data', at('plain'), '--out', at(out), '--encoder', 'efficientnet-test', '--size', '64x64', '--epochs', '1', '--threads', '1'];

before(async () => {
  await writeFolderDataset(at('plain'), 2, 16, 16, 2);
  const img = T.tidy(() => T.rand([32, 32, 3]).mul(255).to('uint8'));
  await writeImage(at('img.png'), img);
  img.dispose();
  writeRunFolder(at('run-nan'), { poison: POISONED });
  writeRunFolder(at('run-inf'), { poison: 'encoder._conv_stem.weight', value: Number.POSITIVE_INFINITY });
  const experiment = { source: { train: 'plain', val: 'plain' }, dcin: ['none'], train: { encoder: 'efficientnet-test', size: [64, 64], batch_size: 2 } };
  configFile('experiment.json', experiment);
});

/** A corpus case; `out`: fragments stdout must hold (the data check report is printed there). */
type Case = CorpusCase & { out?: string[] };

const CASES: Case[] = [
  // 1. 16-bit masks
  {
    name: '16-bit mask with a value of 300: data check fails naming the file',
    args: async () => ['data', 'check', await dataset16('wide300', (i) => (i === 7 ? 300 : 1)), '--size', '16x16'],
    code: 1, says: [], out: ['s0.png', '16-bit with values up to 300', 'FAILED: 1 error'],
  },
  {
    name: '16-bit mask of classes 0..2 under a 2-class map: value 2 is outside (read / 256 it was all 0 and passed)',
    args: async () => ['data', 'check', await dataset16('wide012', (i) => i % 3), '--size', '16x16'],
    code: 1, says: [], out: ['values outside', 's0.png: 2 (85 px)'],
  },
  {
    name: '16-bit mask with a value of 300: train stops before training',
    args: () => [...trainArgs('run-wide'), '--data', at('wide300')],
    code: 1, says: ['has errors', 's0.png', '16-bit with values up to 300'], after: notCreated('run-wide', 'model.safetensors'),
  },
  // 2. threshold T out of range
  ...['256', '999', '0', '-5'].map((t): Case => ({
    name: `data check --mask-mode threshold:${t}`,
    args: () => ['data', 'check', at('plain'), '--mask-mode', `threshold:${t}`],
    code: 1, says: ['threshold T must be an integer 1..255', `got '${t}'`],
  })),
  {
    name: 'train --mask-mode threshold:256',
    args: () => [...trainArgs('run-thr'), '--mask-mode', 'threshold:256'],
    code: 1, says: ["'maskMode'", '1..255', "got '256'"], after: notCreated('run-thr'),
  },
  // 3. config files
  {
    name: 'train --config with unknown keys batch_size and learningRate',
    args: () => [...trainArgs('run-keys'), '--config', configFile('keys.json', { batch_size: 2, learningRate: 0.1 })],
    code: 1, says: ["keys.json'", "unknown key 'batch_size' (did you mean 'batchSize'?)", "unknown key 'learningRate'; known keys:"],
    after: notCreated('run-keys'),
  },
  {
    name: 'train --config holding a JSON array',
    args: () => [...trainArgs('run-array'), '--config', configFile('array.json', [{ epochs: 1 }])],
    code: 1, says: ["array.json' must hold a JSON object of settings", '(an array)'], after: notCreated('run-array'),
  },
  {
    name: 'train --config with "epochs": "1"',
    // no --epochs flag: the file's value is the one read (before, the error said "got 1")
    args: () => [...trainArgs('run-str').filter((a, i, all) => a !== '--epochs' && all[i - 1] !== '--epochs'), '--config', configFile('string.json', { epochs: '1' })],
    code: 1, says: ["string.json'", `'epochs' must be a positive integer, got "1" (a string)`], after: notCreated('run-str'),
  },
  {
    name: 'experiment config with an unknown key in "train"',
    args: () => ['experiment', at('experiment.json')],
    code: 1, says: ["experiment.json'", "unknown key 'train.batch_size' (did you mean 'train.batchSize'?)"], after: notCreated('experiment'),
  },
  {
    name: 'experiment config holding a JSON number',
    args: () => ['experiment', configFile('number.json', '42')],
    code: 1, says: ['must hold a JSON object of settings', '42 (a number)'],
  },
  // 4. non-finite weights
  {
    name: 'predict with a run whose weights hold NaN',
    args: () => ['predict', '--model', at('run-nan'), '--out', at('pred-nan'), '--dcin', 'none', '--threads', '1', '--quiet', at('img.png')],
    code: 1, says: [`tensor '${POISONED}' holds NaN`, path.join(at('run-nan'), 'model.safetensors')], after: notCreated('pred-nan'),
  },
  {
    name: 'predict with a run whose weights hold Inf',
    args: () => ['predict', '--model', at('run-inf'), '--out', at('pred-inf'), '--dcin', 'none', '--threads', '1', '--quiet', at('img.png')],
    code: 1, says: ["tensor 'encoder._conv_stem.weight' holds NaN or infinite values", 'model.safetensors'], after: notCreated('pred-inf'),
  },
  {
    name: 'evaluate with a run whose weights hold NaN',
    args: () => ['evaluate', '--model', at('run-nan'), '--data', at('plain'), '--dcin', 'none', '--bootstrap', '0', '--threads', '1'],
    code: 1, says: [`tensor '${POISONED}' holds NaN`, 'model.safetensors'], after: notCreated('run-nan', 'evaluation.json'),
  },
];

for (const c of CASES) {
  test(c.name, async () => {
    const liveBefore = T.memory().liveTensors;
    const r = await runCase(c);
    for (const s of c.out ?? []) assert.ok(r.out.includes(s), `${c.name}: stdout lacks '${s}': ${r.out}`);
    assert.equal(T.memory().liveTensors, liveBefore, `${c.name}: live tensors`);
  });
}

test('the same run folder without the poisoned value predicts (exit 0): the corpus cases fail for the NaN alone', async () => {
  writeRunFolder(at('run-ok'));
  const r = await runCase({
    name: 'predict with finite weights', code: 0, says: [],
    args: () => ['predict', '--model', at('run-ok'), '--out', at('pred-ok'), '--dcin', 'none', '--threads', '1', '--quiet', at('img.png')],
  });
  assert.match(r.out, /wrote 1 prediction/);
  assert.ok(fs.existsSync(at('pred-ok', 'img.png')) || fs.readdirSync(at('pred-ok')).length > 0);
});

test('the plain dataset passes data check: the threshold cases fail for T alone', async () => {
  const r = await runCase({ name: 'plain', code: 0, says: [], args: () => ['data', 'check', at('plain'), '--size', '16x16', '--mask-mode', 'threshold:255'] });
  assert.match(r.out, /OK: no errors/);
});
