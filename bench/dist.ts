/**
 * `npm run bench -- dist [--encoder NAME] [--size HxW] [--batch N] [--steps N]`: data-parallel
 * training on this machine's cores, through `cqseg train` itself: one worker with 2 threads
 * against 2 Gloo workers (`--nproc 2`) with 1 thread each, the same global batch (--batch,
 * default 4, split 2 + 2) and CQG mode, SyncBatchNorm on. Each run trains 2 epochs of --steps
 * steps (default 6) on synthetic data; the second epoch's time (metrics.jsonl) is measured.
 * Prints samples per second of each and the scaling efficiency (2 workers' throughput over
 * 1 worker's, the same cores), and the 2 workers without SyncBatchNorm; ends with one JSON line.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSynth } from '../src/data';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : dflt);
const ENCODER = opt('--encoder', 'resnet18');
const SIZE = opt('--size', '128x192');
const BATCH = Number(opt('--batch', '4'));
const STEPS = Number(opt('--steps', '6'));

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bench-dist-'));
  const cqseg = path.join(__dirname, '..', '..', 'bin', 'cqseg');
  try {
    const [h, w] = SIZE.split('x').map(Number);
    await writeSynth({ out: path.join(root, 'data'), size: [h, w], count: Math.ceil((BATCH * STEPS) / 0.8) + BATCH, seed: 0 }); // hq/train: 80%
    const data = path.join(root, 'data', 'hq', 'train');
    const run = (name: string, extra: string[]): number => {
      const out = path.join(root, name);
      execFileSync(process.execPath, [cqseg, 'train', '--data', data, '--out', out, '--encoder', ENCODER, '--size', SIZE, '--epochs', '2', '--max-steps', String(STEPS),
        '--val-fraction', '0', ...extra], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CQSEG_TESTING_OPS: undefined } });
      const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seconds: number; globalStep: number });
      const second = lines[1];
      const steps = second.globalStep - lines[0].globalStep;
      return (steps * BATCH) / second.seconds;
    };
    process.stdout.write(`dist bench: Unet(${ENCODER}) ${SIZE}, CQG, global batch ${BATCH}, ${STEPS} steps an epoch (the second epoch timed), ${os.cpus().length} cores (${os.cpus()[0].model})\n`);
    const one = run('one', ['--batch', String(BATCH), '--threads', '2', '--sync-bn']);
    process.stdout.write(`1 worker x 2 threads: ${one.toFixed(2)} samples/s\n`);
    const two = run('two', ['--batch', String(BATCH / 2), '--threads', '1', '--nproc', '2', '--sync-bn']);
    process.stdout.write(`2 Gloo workers x 1 thread: ${two.toFixed(2)} samples/s\n`);
    const twoLocal = run('two-local', ['--batch', String(BATCH / 2), '--threads', '1', '--nproc', '2']);
    process.stdout.write(`2 Gloo workers x 1 thread, batch norm per worker (no --sync-bn): ${twoLocal.toFixed(2)} samples/s\n`);
    process.stdout.write(`scaling efficiency (2 workers over 1, same cores): ${(two / one).toFixed(2)}\n`);
    process.stdout.write(JSON.stringify({ bench: 'dist', encoder: ENCODER, size: SIZE, global_batch: BATCH, steps: STEPS, one_worker_2_threads_samples_per_s: one, two_workers_1_thread_samples_per_s: two, scaling_efficiency: two / one, two_workers_no_sync_bn_samples_per_s: twoLocal, scaling_efficiency_no_sync_bn: twoLocal / one }) + '\n');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench dist: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
