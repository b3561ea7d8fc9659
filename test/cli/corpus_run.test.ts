/**
 * Bad-input corpus of issue 14: run folders and outputs. One case per defect (and its
 * variants): the input, the exit code, what the message must say, and what is left on
 * disk. Tiny fixtures: a 64x64 efficientnet-test run trained once.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { readSafetensors, writeSafetensors } from '../../src/nn';
import * as T from '../../src/tensor';
import { LOCK_FILE } from '../../src/util/lock';
import { cli, CorpusCase, runCase } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';
import { writeLockFile } from '../helpers/run_folder';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-corpus-run-'));
let data = '';
let run = '';
let bank = '';
let image = '';
const TRAIN = ['--encoder', 'efficientnet-test', '--size', '64x64', '--epochs', '1', '--threads', '1', '--val-fraction', '0', '--mode', 'baseline'];

const fresh = (name: string): string => fs.mkdtempSync(path.join(root, `${name}-`));
const temps = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.includes('.tmp'));
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

/** A copy of the bank with `edit` applied to its tensors and metadata. */
function badBank(name: string, edit: (tensors: Map<string, T.Tensor>, meta: Record<string, string>) => void): string {
  const b = readSafetensors(bank);
  edit(b.tensors, b.metadata);
  const file = path.join(fresh('bank'), name);
  writeSafetensors(file, b.tensors, b.metadata);
  T.dispose([...b.tensors.values()]);
  return file;
}

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  run = path.join(root, 'run');
  let r = await cli(['train', '--data', data, '--out', run, ...TRAIN]);
  assert.equal(r.code, 0, r.err);
  bank = path.join(root, 'bank.safetensors');
  r = await cli(['references', '--data', data, '--model', run, '--out', bank, '--quiet']);
  assert.equal(r.code, 0, r.err);
  image = path.join(data, 'images', 's000.png');
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

const cases: CorpusCase[] = [];

// 1. two writers into one run folder
{
  let out = '';
  cases.push({
    name: '1. train into a run folder locked by a live process',
    args: () => {
      out = fresh('locked');
      writeLockFile(out, 'cqseg train --out first');
      return ['train', '--data', data, '--out', out, ...TRAIN];
    },
    code: 1,
    says: ['is in use by another cqseg process', `pid ${process.pid} on host ${os.hostname()}`, 'since', "running 'cqseg train --out first'", 'another --out', LOCK_FILE],
    after: () => assert.deepEqual(fs.readdirSync(out), [LOCK_FILE], 'nothing written beside the lock'),
  });
  let exp = '';
  cases.push({
    name: '1b. experiment into an experiment folder locked by a live process',
    args: () => {
      exp = fresh('exp');
      writeLockFile(exp, 'cqseg experiment (out first)');
      const cfg = path.join(fresh('expcfg'), 'experiment.json');
      fs.writeFileSync(cfg, JSON.stringify({ out: exp, source: { train: data, val: data }, targets: {}, modes: ['baseline'], dcin: ['none'],
        train: { encoder: 'efficientnet-test', size: [64, 64], epochs: 1 } }));
      return ['experiment', cfg];
    },
    code: 1,
    says: ['experiment folder', 'is in use by another cqseg process', `pid ${process.pid}`, "running 'cqseg experiment (out first)'"],
    after: () => assert.deepEqual(fs.readdirSync(exp), [LOCK_FILE], 'nothing trained or written'),
  });
}

// 2. --resume with settings that change the model, the data or the optimisation
{
  let saved = '';
  cases.push({
    name: '2. train --resume with another --size and --lr',
    args: () => {
      saved = fs.readFileSync(path.join(run, 'config.json'), 'utf8');
      return ['train', '--data', data, '--out', run, ...TRAIN, '--epochs', '2', '--size', '128x128', '--lr', '0.01', '--resume'];
    },
    code: 1,
    says: ["'size' was 64x64, now 128x128", "'lr' was 0.001, now 0.01", 'only epochs, maxStepsPerEpoch, threads, distTimeout, device, channelsLast may change'],
    after: () => assert.equal(fs.readFileSync(path.join(run, 'config.json'), 'utf8'), saved, 'config.json untouched'),
  });
}

// 3. an unknown encoder leaves no run folder
{
  let out = '';
  cases.push({
    name: '3. train --encoder resnet19',
    args: () => {
      out = path.join(fresh('enc'), 'run');
      return ['train', '--data', data, '--out', out, ...TRAIN, '--encoder', 'resnet19'];
    },
    code: 1,
    says: ["unknown encoder 'resnet19'", 'known:', 'resnet18'],
    after: () => assert.equal(fs.existsSync(out), false, 'no run folder created'),
  });
}

// 3b. test-time adaptation and CQG warm-up settings out of range
{
  let out = '';
  cases.push({
    name: '3b. train --cqg-warmup -2',
    args: () => {
      out = path.join(fresh('warm'), 'run');
      return ['train', '--data', data, '--out', out, ...TRAIN, '--mode', 'cqg', '--cqg-warmup', '-2'];
    },
    code: 1,
    says: ["'cqgDiffWarmup' must be"],
    after: () => assert.equal(fs.existsSync(out), false, 'no run folder created'),
  });
  cases.push({
    name: '3c. predict --dcin auto+flip+adabn (flip must come last)',
    args: () => ['predict', '--model', path.join(fresh('tta'), 'run'), '--dcin', 'auto+flip+adabn', path.join(data, 'images'), '--out', path.join(fresh('tta2'), 'out')],
    code: 2,
    says: ["column 'auto+flip+adabn'", "'flip' must come last"],
  });
  cases.push({
    name: '3d. evaluate --dcin flip --alpha abc',
    args: () => ['evaluate', '--model', path.join(fresh('tta3'), 'run'), '--data', data, '--dcin', 'adabn-image', '--alpha', 'abc'],
    code: 2,
    says: ["--alpha must be a number from 0 to 1, got 'abc'"],
  });
}

// 4. no temp file left behind
{
  let parent = '';
  cases.push({
    name: '4a. references --out naming a folder fails and leaves no temp file',
    args: () => {
      parent = fresh('refs');
      fs.mkdirSync(path.join(parent, 'bank'));
      fs.writeFileSync(path.join(parent, 'bank', 'x'), 'x');
      return ['references', '--data', data, '--model', run, '--out', path.join(parent, 'bank'), '--quiet'];
    },
    code: 1,
    says: ['bank file', 'is a folder: give a file name to --out'],
    after: () => assert.deepEqual([...temps(parent), ...temps(path.join(parent, 'bank'))], []),
  });
  let out = '';
  let stale = '';
  cases.push({
    name: '4b. predict into a folder with the temp file of a killed predict removes it',
    args: () => {
      out = fresh('pred-stale');
      stale = path.join(out, `.s000_mask.png.${deadPid()}.a1b2c3.tmp`);
      fs.writeFileSync(stale, 'half');
      return ['predict', '--model', run, '--dcin', 'none', image, '--out', out, '--quiet'];
    },
    code: 0,
    says: [],
    after: () => {
      assert.equal(fs.existsSync(stale), false, 'stale temp removed');
      assert.deepEqual(temps(out), []);
      assert.ok(fs.existsSync(path.join(out, 's000_mask.png')));
    },
  });
}

// 5. unclear errors: --out a file or a looping link, a broken bank, a folder without masks/
{
  let file = '';
  cases.push({
    name: '5a. train --out naming a file',
    args: () => {
      file = path.join(fresh('file'), 'run');
      fs.writeFileSync(file, 'not a folder');
      return ['train', '--data', data, '--out', file, ...TRAIN];
    },
    code: 1,
    says: ['exists and is a file, not a folder', 'choose another --out'],
    after: () => assert.equal(fs.readFileSync(file, 'utf8'), 'not a folder'),
  });
  cases.push({
    name: '5b. train --out under a file',
    args: () => ['train', '--data', data, '--out', path.join(file, 'sub'), ...TRAIN],
    code: 1,
    says: ['is a file, not a folder', 'cannot be created'],
  });
  cases.push({
    name: '5c. predict --out a symbolic link that loops',
    args: () => {
      const loop = path.join(fresh('loop'), 'out');
      fs.symlinkSync(loop, loop);
      return ['predict', '--model', run, '--dcin', 'none', image, '--out', loop, '--quiet'];
    },
    code: 1,
    says: ['output folder', 'symbolic link that loops back on itself', 'remove the link or choose another --out'],
  });
  let gris = '';
  cases.push({
    name: '5d. predict with a bank whose GRIS index is out of range',
    args: () => {
      gris = badBank('gris.safetensors', (_t, meta) => {
        meta.gris = JSON.stringify({ ...JSON.parse(meta.gris), index: 99 });
      });
      return ['predict', '--model', run, '--refs', gris, '--dcin', 'gris', image, '--out', fresh('pred-gris'), '--quiet'];
    },
    code: 1,
    says: ['gris.safetensors', 'GRIS index 99 is out of range: the bank holds 4 images', 'rebuild it with cqseg references'],
  });
  cases.push({
    name: '5e. evaluate with a bank holding NaN Lab statistics',
    args: () => {
      const nan = badBank('nan.safetensors', (t) => {
        const s = t.get('lab_stats')!;
        t.set('lab_stats', T.tidy(() => T.where(T.arange(s.size).reshape(s.shape).eq(3), Number.NaN, s)));
        s.dispose();
      });
      return ['evaluate', '--model', run, '--refs', nan, '--data', data, '--dcin', 'gris', '--bootstrap', '0', '--json', path.join(fresh('eval'), 'e.json')];
    },
    code: 1,
    says: ['nan.safetensors', "tensor 'lab_stats' holds 1 NaN or infinite value(s) (Lab statistics)", 'rebuild it with cqseg references'],
  });
  cases.push({
    name: '5f. data check on a folder with images/ but no masks/',
    args: () => {
      const dir = fresh('nomasks');
      fs.mkdirSync(path.join(dir, 'images'));
      for (const f of ['s000.png', 's001.png']) fs.copyFileSync(path.join(data, 'images', f), path.join(dir, 'images', f));
      return ['data', 'check', dir];
    },
    code: 1,
    says: ['expected images/ and masks/', 'found images/ (2 images)', 'add masks/ beside images/'],
  });
}

// 6. large images: the mask at the input's size with bounded memory, and the pixel limit
{
  let big = '';
  let out = '';
  cases.push({
    name: '6a. predict a 3000x2000 image: mask and overlay at its size',
    args: async () => {
      big = path.join(fresh('big'), 'big.jpg');
      await sharp({ create: { width: 2000, height: 3000, channels: 3, background: { r: 40, g: 30, b: 35 }, noise: { type: 'gaussian', mean: 90, sigma: 30 } } })
        .jpeg({ quality: 80 }).toFile(big);
      out = fresh('pred-big');
      return ['predict', '--model', run, '--dcin', 'none', big, '--out', out, '--quiet'];
    },
    code: 0,
    says: [],
    after: async () => {
      const m = await sharp(path.join(out, 'big_mask.png')).metadata();
      assert.deepEqual([m.height, m.width, m.channels], [3000, 2000, 1]);
      const o = await sharp(path.join(out, 'big_overlay.png')).metadata();
      assert.deepEqual([o.height, o.width], [3000, 2000]);
      const j = JSON.parse(fs.readFileSync(path.join(out, 'big.json'), 'utf8')) as { classes: { pixels: number }[] };
      assert.equal(j.classes.reduce((a, c) => a + c.pixels, 0), 3000 * 2000);
    },
  });
  cases.push({
    name: '6b. predict an image over the pixel limit (CQSEG_MAX_PIXELS=1000)',
    args: () => {
      out = fresh('pred-limit');
      process.env.CQSEG_MAX_PIXELS = '1000';
      return ['predict', '--model', run, '--dcin', 'none', image, '--out', out, '--quiet'];
    },
    code: 1,
    says: ['s000.png', 'image of 64x64 (WxH) = 0.0 Mpx is larger than the limit', '(CQSEG_MAX_PIXELS)', 'downscale it', 'raise CQSEG_MAX_PIXELS'],
    after: () => {
      delete process.env.CQSEG_MAX_PIXELS;
      assert.deepEqual(fs.readdirSync(out), [], 'nothing written for the refused image');
    },
  });
}

for (const c of cases) {
  test(c.name, async () => {
    try {
      await runCase(c);
    } finally {
      delete process.env.CQSEG_MAX_PIXELS;
    }
  });
}
