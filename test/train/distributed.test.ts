/**
 * Data-parallel training (train/distributed.ts, tensor/dist.ts, c10d Gloo over loopback).
 *
 * Equivalence: two workers with half of each batch each against one process with the whole
 * batch, the trainer's own step (trainStep, CQG mode: two views, DiceCE + MSE) with SyncBatchNorm
 * and c10d's gradient reducer (test/helpers/ddp_steps.ts), three SGD steps:
 * - in float64 the losses and weights agree within 1e-10 (measured: 1e-14 for the weights,
 *   1e-15 relative for the losses): the same arithmetic in another order;
 * - in float32, after one step, the two differ by no more than 4x the larger of their own
 *   distances from the float64 run (measured: 1.5e-6 against float32 errors of about 1e-6),
 *   i.e. by float32 rounding. Later steps are not compared in float32: a few steps at this
 *   learning rate amplify rounding 100-fold per step (as between two thread counts).
 * SGD, not the trainer's Adam: Adam's first steps are nearly lr * sign(g) per element, which
 * turns the rounding of a gradient near zero into a 2 lr difference of its weight.
 * The same data-parallel run twice gives identical weights (Gloo's ring all-reduce and the
 * reducer's buckets sum in a fixed order). Also: shards are disjoint and cover each epoch; the
 * trainer's --nproc run writes its run folder from rank 0 and resumes; a killed worker ends
 * the job with an error naming it.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Loader, openDataset } from '../../src/data';
import { readSafetensors } from '../../src/nn';
import * as T from '../../src/tensor';
import { freePort, workerFromEnv } from '../../src/train/distributed';
import { cli } from '../helpers/cli';
import { ROOT } from '../helpers/models';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-ddp-'));
const HELPER = path.join(ROOT, 'dist', 'test', 'helpers', 'ddp_steps.js');
const CQSEG = path.join(ROOT, 'bin', 'cqseg');
let data = '';
const skip = T.distAvailable() ? false : 'this build has no c10d (apt-get install libgloo-dev, then npm run build)';

before(async () => {
  data = await makeDiscDataset(8, [64, 64]);
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

/** Runs the helper as one process (world 1) or as `world` workers; returns the losses and the weights file. */
async function steps(name: string, world: number, env: Record<string, string>): Promise<{ losses: number[]; weights: string }> {
  const out = path.join(root, name);
  const batch = String(4 / world);
  if (world === 1) {
    execFileSync(process.execPath, [HELPER, data, out, batch, env.STEPS], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  } else {
    const port = String(await freePort());
    const runs = Array.from({ length: world }, (_, rank) => new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, [HELPER, data, out, batch, env.STEPS], {
        env: { ...process.env, ...env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }, stdio: ['ignore', 'ignore', 'inherit'],
      });
      c.on('exit', (code) => resolve(code));
    }));
    assert.deepEqual(await Promise.all(runs), Array(world).fill(0));
  }
  return { losses: (JSON.parse(fs.readFileSync(`${out}.json`, 'utf8')) as { losses: number[] }).losses, weights: `${out}.safetensors` };
}

/** Largest |a - b| over the weights (parameters and batch-norm statistics) of two files, relative for the statistics. */
function weightDiff(a: string, b: string): number {
  const [x, y] = [readSafetensors(a).tensors, readSafetensors(b).tensors];
  let worst = 0;
  try {
    for (const [n, t] of x) {
      if (n.endsWith('num_batches_tracked')) continue;
      worst = Math.max(worst, T.tidy(() => {
        const d = t.to('float64').sub(y.get(n)!.to('float64')).abs().max().item();
        return n.includes('running') ? d / Math.max(1, t.abs().max().item()) : d;
      }));
    }
  } finally {
    T.dispose([...x.values(), ...y.values()]);
  }
  return worst;
}

test('shards: every process gets its part of each global batch, disjoint, covering the epoch (a short tail merged)', () => {
  const ds = openDataset(data, {});
  for (const [world, batch] of [[2, 2], [3, 1], [2, 3]]) {
    const whole = new Loader(ds, { batchSize: batch * world, seed: 4, size: [64, 64] }).groups(1);
    const parts = Array.from({ length: world }, (_, rank) => new Loader(ds, { batchSize: batch, seed: 4, size: [64, 64], shard: { rank, world } }).groups(1));
    assert.ok(parts.every((p) => p.length === parts[0].length), 'every process takes as many steps');
    const seen = parts.flat(2).sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 8 }, (_, i) => i), `world ${world}, batch ${batch}: each sample once`);
    // the one-process batches of batch x world samples, a tail too short to share merged into the one before
    const expected = whole.map((g) => [...g]);
    if (expected[expected.length - 1].length < world) expected[expected.length - 2].push(...expected.pop()!);
    assert.equal(parts[0].length, expected.length);
    for (let k = 0; k < expected.length; k++) {
      const step = parts.map((p) => p[k]).flat().sort((a, b) => a - b);
      assert.deepEqual(step, expected[k].sort((a, b) => a - b), `world ${world}, batch ${batch}: step ${k} is the one-process batch`);
    }
  }
  assert.throws(() => new Loader(ds, { shard: { rank: 2, world: 2 } }), /0 <= rank < world/);
  assert.throws(() => new Loader(ds, { shard: { rank: 0, world: 9 } }).groups(0), /8 samples cannot be shared among 9 processes/);
});

test('two Gloo workers with half a batch each = one process with the whole batch (float64: 1e-10; float32: rounding)', { skip }, async () => {
  const f64 = { STEPS: '3', DTYPE: 'float64', MODE: 'cqg', LR: '0.05' };
  const one = await steps('one64', 1, f64);
  const two = await steps('two64', 2, f64);
  one.losses.forEach((l, i) => assert.ok(Math.abs(l - two.losses[i]) <= 1e-10 * Math.abs(l), `float64 step ${i + 1}: loss ${l} vs ${two.losses[i]}`));
  const d64 = weightDiff(one.weights, two.weights);
  assert.ok(d64 <= 1e-10, `float64: weights differ by ${d64}`);
  const ref = await steps('ref64', 1, { ...f64, STEPS: '1' });
  const f32 = { STEPS: '1', DTYPE: 'float32', MODE: 'cqg', LR: '0.05' };
  const one32 = await steps('one32', 1, f32);
  const two32 = await steps('two32', 2, f32);
  const rounding = Math.max(weightDiff(ref.weights, one32.weights), weightDiff(ref.weights, two32.weights));
  const d32 = weightDiff(one32.weights, two32.weights);
  if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`float64: ${d64.toExponential(2)}; float32 after one step: ${d32.toExponential(2)} (float32 vs float64: ${rounding.toExponential(2)})\n`);
  assert.ok(d32 <= 4 * rounding + 1e-12, `float32: workers and one process differ by ${d32}, float32 rounding is ${rounding}`);
  assert.ok(Math.abs(one32.losses[0] - two32.losses[0]) <= 1e-6 * one32.losses[0]);
  // a seed fixes a data-parallel run too: the same two workers again give the same bytes
  const again = await steps('two32b', 2, f32);
  assert.deepEqual(again.losses, two32.losses);
  assert.equal(weightDiff(two32.weights, again.weights), 0, 'the same run twice: identical weights');
});

test('cqseg train --nproc 2 --sync-bn: rank 0 writes the run (nproc recorded), --resume continues it', { skip }, async () => {
  const out = path.join(root, 'run');
  const args = ['train', '--data', data, '--out', out, '--encoder', 'resnet18', '--size', '64x64', '--batch', '2', '--val-fraction', '0.25', '--max-steps', '2', '--nproc', '2', '--sync-bn'];
  const r = await cli([...args, '--epochs', '1']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /trained cqg model: best epoch 1/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { nproc: number; syncBn: boolean };
  assert.deepEqual([cfg.nproc, cfg.syncBn], [2, true]);
  const again = await cli([...args, '--epochs', '2', '--resume']);
  assert.equal(again.code, 0, again.err);
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; valDice: number });
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2]);
  assert.ok(lines.every((l) => Number.isFinite(l.valDice)), 'validation over both workers\' shards');
  const lone = await cli(['train', '--data', data, '--out', path.join(root, 'x'), '--nproc', '2', '--resume', '--encoder', 'nope']);
  assert.notEqual(lone.code, 0);
});

test('a killed worker ends the job within seconds, with an error naming its rank', { skip }, async () => {
  const out = path.join(root, 'killed');
  const job: ChildProcess = spawn(process.execPath, [CQSEG, 'train', '--data', data, '--out', out, '--encoder', 'resnet18', '--size', '64x64', '--batch', '2',
    '--val-fraction', '0', '--epochs', '200', '--nproc', '2', '--dist-timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  job.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ended = new Promise<number | null>((resolve) => job.on('exit', (code) => resolve(code)));
  try {
    // wait for the first epoch, then kill rank 1
    const t0 = Date.now();
    while (!fs.existsSync(path.join(out, 'metrics.jsonl')) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 200));
    const kids = spawnSync('pgrep', ['-P', String(job.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').map(Number);
    const rank1 = kids.find((pid) => fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1'));
    assert.ok(rank1, `rank 1 among the launcher's children ${kids.join(', ')}`);
    const killedAt = Date.now();
    process.kill(rank1!, 'SIGKILL');
    const code = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
    assert.notEqual(code, 'timeout', 'the job ended');
    assert.notEqual(code, 0);
    assert.ok(Date.now() - killedAt < 30_000);
    assert.match(err, /data-parallel training failed: rank 1 \(pid \d+\) was killed by SIGKILL/);
  } finally {
    if (job.exitCode === null) job.kill('SIGKILL');
  }
});

test('refusals: nproc without a launcher, several machines without a master, no process group', async () => {
  const { resolveConfig } = await import('../../src/train/config');
  const { train } = await import('../../src/train/trainer');
  const { launchWorkers } = await import('../../src/train/distributed');
  await assert.rejects(train(resolveConfig({ data, out: path.join(root, 'nolaunch'), nproc: 2 }), { progress: false }), /nproc 2: start data-parallel training with cqseg train --nproc N/);
  const argv = [process.execPath, '-e', ''];
  await assert.rejects(launchWorkers({ argv, nproc: 2, env: { NNODES: '2', NODE_RANK: '2' } }), /NODE_RANK 2 is not below NNODES 2/);
  await assert.rejects(launchWorkers({ argv, nproc: 2, env: { NNODES: '2', NODE_RANK: '1' } }), /several machines \(NNODES > 1\) needs MASTER_ADDR and MASTER_PORT/);
  if (!skip) {
    assert.throws(() => T.barrier(), /no process group: initProcessGroup first/);
    assert.throws(() => T.allGather(T.zeros([2, 2])), /Argument 'x' passed to 'allGather' must be 1-D, got \[2,2\]/);
  }
  assert.equal(fs.existsSync(path.join(root, 'nolaunch')), false, 'nothing written');
});

test('torchrun\'s variables: read and checked', () => {
  assert.equal(workerFromEnv({}), null);
  assert.equal(workerFromEnv({ WORLD_SIZE: '1' }), null);
  assert.deepEqual(workerFromEnv({ WORLD_SIZE: '2', RANK: '1', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500' }),
    { rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, masterAddr: '10.0.0.1', masterPort: 29500 });
  assert.throws(() => workerFromEnv({ WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }), /RANK is not set/);
  assert.throws(() => workerFromEnv({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }), /RANK 2 is not below WORLD_SIZE 2/);
  assert.throws(() => workerFromEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1' }), /MASTER_ADDR is not set/);
  assert.throws(() => workerFromEnv({ WORLD_SIZE: 'two' }), /WORLD_SIZE must be an integer/);
});
