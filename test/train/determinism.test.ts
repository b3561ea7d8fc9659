/**
 * A seed fixes a run: the same seed, machine and thread count give bit-identical weights,
 * optimizer state and metrics, whatever else the machine is doing and whatever the memory
 * held before. Two trainings (cqg mode: both augmentation views, drop-connect, the fused
 * and hand-written kernels, two libtorch threads, three epochs with validation and
 * checkpoints between them) in processes of their own; the second with two busy processes
 * beside it (a loaded machine changes thread timing: a reduction whose split or order
 * follows timing would show), glibc's heap instead of the caching allocator and every
 * fresh allocation filled with a byte pattern (MALLOC_PERTURB_: a kernel that reads memory
 * it did not write would show).
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const CHILD = path.join(__dirname, '..', 'helpers', 'train_child.js');

function trainIn(out: string, data: string, env: NodeJS.ProcessEnv): { steps: Record<string, number>[] } {
  const cfg = { data, out, mode: 'cqg', encoder: 'efficientnet-test', size: [64, 64], batchSize: 2, epochs: 3, lr: 3e-3, valFraction: 0.25, seed: 11, threads: 2 };
  const r = spawnSync(process.execPath, [CHILD, JSON.stringify(cfg)], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `training in ${out} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { steps: Record<string, number>[] };
}

/** metrics.jsonl without the wall-clock seconds */
function metrics(run: string): unknown[] {
  return fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const m = JSON.parse(l) as Record<string, unknown>;
    delete m.seconds;
    return m;
  });
}

test('same seed and thread count: bit-identical weights, optimizer state and metrics, on a loaded machine and another allocator', async () => {
  const data = await makeDiscDataset(8, [64, 64]);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-determinism-'));
  try {
    const a = trainIn(path.join(root, 'a'), data, {});
    const busy = [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    let b: { steps: Record<string, number>[] };
    try {
      b = trainIn(path.join(root, 'b'), data, { CQSEG_MALLOC: 'heap', MALLOC_PERTURB_: '165' });
    } finally {
      for (const p of busy) p.kill('SIGKILL');
    }
    assert.equal(a.steps.length, 3 * 3, 'steps trained');
    assert.deepEqual(b.steps, a.steps, 'per-step losses');
    assert.deepEqual(metrics(path.join(root, 'b')), metrics(path.join(root, 'a')), 'metrics.jsonl');
    for (const f of ['model.safetensors', 'last.safetensors']) {
      assert.ok(fs.readFileSync(path.join(root, 'a', f)).equals(fs.readFileSync(path.join(root, 'b', f))), `${f} differs`);
    }
    const ckpt = (r: string): string[] => fs.readdirSync(path.join(root, r, 'checkpoint')).filter((f) => f.endsWith('.safetensors')).sort();
    assert.deepEqual(ckpt('b'), ckpt('a'));
    for (const f of ckpt('a')) {
      assert.ok(fs.readFileSync(path.join(root, 'a', 'checkpoint', f)).equals(fs.readFileSync(path.join(root, 'b', 'checkpoint', f))), `checkpoint ${f} differs`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(data, { recursive: true, force: true });
  }
});
