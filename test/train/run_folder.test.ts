/**
 * The run folder as `train` guards it: one writer at a time (lock), --resume refuses
 * settings that change the model, the data or the optimisation, nothing is created
 * before the settings are checked, and temp files of killed writers are removed.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { resolveConfig, TrainConfig } from '../../src/train/config';
import { resumeConflicts, runtimeChanges, train, TrainError } from '../../src/train/trainer';
import { blasLibrary, torchVersion } from '../../src/tensor';
import { LOCK_FILE } from '../../src/util/lock';
import { makeDiscDataset } from '../helpers/tiny_dataset';
import { writeLockFile } from '../helpers/run_folder';

let data = '';
let val = '';
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-runfolder-'));

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  val = await makeDiscDataset(2, [64, 64], 2);
});

function config(over: Partial<TrainConfig>): TrainConfig {
  return resolveConfig({ data, out: tmp(), encoder: 'efficientnet-test', size: [64, 64], batchSize: 2, epochs: 1, valFraction: 0, threads: 1, mode: 'baseline', ...over });
}

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** Runs fn with stderr captured. */
async function withStderr<V>(fn: () => Promise<V>): Promise<{ value: V; err: string }> {
  const se = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  try {
    return { value: await fn(), err };
  } finally {
    process.stderr.write = se;
  }
}

test('--resume refuses a changed size, lr and val, naming each with its old and new value; config.json is untouched', async () => {
  const cfg = config({ size: [128, 128] });
  await train(cfg, { progress: false });
  const file = path.join(cfg.out, 'config.json');
  const saved = fs.readFileSync(file, 'utf8');
  const changed = { ...cfg, epochs: 2, size: [64, 64] as [number, number], lr: 0.01, val };
  await assert.rejects(train(changed, { progress: false }, true), (err: Error) => {
    assert.ok(err instanceof TrainError);
    assert.match(err.message, /'size' was 128x128, now 64x64/);
    assert.match(err.message, /'lr' was 0\.001, now 0\.01/);
    assert.match(err.message, new RegExp(`'val' was \\(not set\\), now "${val.replace(/[/\\.]/g, '\\$&')}"`));
    assert.doesNotMatch(err.message, /'epochs'/);
    return true;
  });
  assert.equal(fs.readFileSync(file, 'utf8'), saved, 'config.json not rewritten');
  await assert.rejects(train({ ...cfg, classWeights: [1, 2], bestBy: 'dice' }, { progress: false }, true), /'classWeights' was \(not set\), now \[1,2\].*'bestBy' was "loss", now "dice"/);
});

test('--resume allows more epochs, another maxStepsPerEpoch and threads, and writes only those to config.json', async () => {
  const cfg = config({});
  await train(cfg, { progress: false });
  const file = path.join(cfg.out, 'config.json');
  const before0 = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  // the same data named by a relative path is the same setting
  const rel = path.relative(process.cwd(), data);
  const r = await train({ ...cfg, data: rel, epochs: 2, maxStepsPerEpoch: 1, threads: 2 }, { progress: false }, true);
  assert.deepEqual(r.epochs.map((e) => e.epoch), [2]);
  const after0 = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(after0, { ...before0, epochs: 2, maxStepsPerEpoch: 1, threads: 2 });
});

test('an unknown encoder fails before anything is created on disk', async () => {
  const out = path.join(tmp(), 'run');
  await assert.rejects(train(config({ out, encoder: 'resnet19' }), { progress: false }), /unknown encoder 'resnet19'; known: .*resnet18/);
  assert.equal(fs.existsSync(out), false, 'no run folder left behind');
  await assert.rejects(train(config({ out, classWeights: [1, 1, 1] }), { progress: false }), /'classWeights' has 3 values, the dataset has 2 classes/);
  assert.equal(fs.existsSync(out), false, 'no run folder after a dataset-level check either');
});

test('a second train into a locked run folder fails naming the holder; the lock is gone after a run', async () => {
  const cfg = config({});
  fs.mkdirSync(cfg.out, { recursive: true });
  const since = new Date(Date.now() - 3 * 60000).toISOString();
  const holder = { pid: process.pid, hostname: os.hostname(), since, command: 'cqseg train --data D --out R' };
  fs.writeFileSync(path.join(cfg.out, LOCK_FILE), JSON.stringify(holder));
  await assert.rejects(train(cfg, { progress: false }), (err: Error) => {
    assert.ok(err instanceof TrainError);
    assert.match(err.message, new RegExp(`in use by another cqseg process: pid ${process.pid} on host ${os.hostname()}, since ${since} \\(3 min ago\\)`));
    assert.match(err.message, /wait for it to finish or stop it, or write elsewhere \(another --out\)/);
    assert.match(err.message, /delete .*cqseg\.lock/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(cfg.out), [LOCK_FILE], 'nothing written next to the lock');
  fs.rmSync(path.join(cfg.out, LOCK_FILE));
  await train(cfg, { progress: false });
  assert.equal(fs.existsSync(path.join(cfg.out, LOCK_FILE)), false, 'released at the end');
});

test('a lock left by a dead process is taken over, with a note on stderr', async () => {
  const cfg = config({});
  fs.mkdirSync(cfg.out, { recursive: true });
  const pid = deadPid();
  writeLockFile(cfg.out, 'cqseg train (killed)', pid);
  const { value, err } = await withStderr(() => train(cfg, { progress: false }));
  assert.equal(value.epochs.length, 1);
  assert.match(err, new RegExp(`taking over the lock of pid ${pid} \\(cqseg train \\(killed\\), since .*\\), which is no longer running`));
  assert.equal(fs.existsSync(path.join(cfg.out, LOCK_FILE)), false);
});

test('temp files of a dead writer are removed at the next train start; those of a live process are left alone', async () => {
  const cfg = config({});
  const ckpt = path.join(cfg.out, 'checkpoint');
  fs.mkdirSync(ckpt, { recursive: true });
  const dead = deadPid();
  const stale = [path.join(cfg.out, `.model.safetensors.${dead}.k3j9x1.tmp`), path.join(ckpt, `.state.json.${dead}.1717171717171.tmp`),
    path.join(cfg.out, `metrics.jsonl.tmp-${dead}-ab12cd`)];
  const live = path.join(cfg.out, `.last.safetensors.${process.ppid}.zz0000.tmp`);
  for (const f of [...stale, live]) fs.writeFileSync(f, 'half-written');
  await train(cfg, { progress: false });
  for (const f of stale) assert.equal(fs.existsSync(f), false, `${path.basename(f)} removed`);
  assert.equal(fs.existsSync(live), true, 'a live process\'s temp file is left alone');
});

test('resumeConflicts: a setting missing from an older config.json counts as its default', () => {
  const cfg = config({});
  const saved: Record<string, unknown> = { ...cfg };
  delete saved.bestBy;
  assert.deepEqual(resumeConflicts(saved, cfg), []);
  assert.deepEqual(resumeConflicts(saved, { ...cfg, bestBy: 'dice' }), ["'bestBy' was (not set), now \"dice\""]);
});

test('runtimeChanges: a resume under another BLAS or libtorch is told that its figures will differ', () => {
  assert.deepEqual(runtimeChanges({ libtorch: torchVersion(), blas: blasLibrary() }), []);
  assert.deepEqual(runtimeChanges({}), [], 'a run from a version that did not record them');
  const msgs = runtimeChanges({ libtorch: torchVersion(), blas: '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.elsewhere' });
  assert.equal(msgs.length, 1);
  assert.match(msgs[0], /started with blas \/usr\/lib\/x86_64-linux-gnu\/blas\/libblas\.so\.3\.elsewhere, this process has .*differ slightly/);
});
