/**
 * `npm run bench -- models [--threads N[,M]] [--reps N] [--train-reps N] [--size HxW] [--no-tuned]`
 *
 * Unet(efficientnet-b2, classes=5), as smp 0.3.4 builds it, at 512x768 on the CPU:
 *   eval   forward latency, batch 1, eval mode, no grad
 *   train  forward + backward (cross-entropy), batch 2, train mode (batch-norm batch
 *          statistics, drop-connect), gradients reset between steps
 * against PyTorch in the same run: bench/models_torch.py under Debian's python3-torch
 * (/usr/bin/python3) running tools/golden/smp_ref.py, the reference proven against the real
 * smp fixture. Two PyTorch variants:
 *   pytorch        as a user runs smp: efficientnet_pytorch's MemoryEfficientSwish (a Python
 *                  autograd Function), glibc's default malloc (large blocks mmap'ed and
 *                  returned on free, so every step page-faults its activations in again)
 *   pytorch-tuned  the strict baseline: torch's fused silu, as cqseg, and the malloc policy
 *                  cqseg's addon sets (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ = 1 GiB),
 *                  so only the kernels and the per-op overhead differ
 * All sides use the same thread count and alternate round by round; figures are medians.
 * Target: cqseg / PyTorch <= 1.10.
 * Ends with one JSON line holding every figure.
 */
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { createInterface, Interface } from 'readline';
import { Unet } from '../src/models';
import * as T from '../src/tensor';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const THREADS = opt('--threads', '1').split(',').map(Number);
const REPS = Number(opt('--reps', '3'));
const TRAIN_REPS = Number(opt('--train-reps', '2'));
const [H, W] = opt('--size', '512x768').split('x').map(Number);
const WITH_TUNED = !args.includes('--no-tuned');
const MALLOC_LIKE_CQSEG = { MALLOC_MMAP_THRESHOLD_: String(2 ** 30), MALLOC_TRIM_THRESHOLD_: String(2 ** 30) };
const PY = '/usr/bin/python3';
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The PyTorch server (bench/models_torch.py): one JSON line per command. */
class Torch {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly queue: ((line: string) => void)[] = [];
  private readonly pending: string[] = [];

  constructor(threads: number, swish: string, env: Record<string, string> = {}) {
    const script = path.join(__dirname, '..', '..', 'bench', 'models_torch.py');
    this.proc = spawn(PY, [script, '--threads', String(threads), '--swish', swish, '--height', String(H), '--width', String(W)],
      { env: { ...process.env, ...env } });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.lines = createInterface({ input: this.proc.stdout });
    this.lines.on('line', (l) => {
      const waiter = this.queue.shift();
      if (waiter) waiter(l);
      else this.pending.push(l); // a line before anyone asked (the 'ready' line)
    });
    this.proc.on('exit', (code) => {
      for (const w of this.queue.splice(0)) w(JSON.stringify({ error: `models_torch.py exited with ${code}` }));
    });
  }

  next(): Promise<Record<string, unknown>> {
    const parse = (l: string): Record<string, unknown> => {
      const r = JSON.parse(l) as Record<string, unknown>;
      if (r.error) throw new Error(String(r.error));
      return r;
    };
    const early = this.pending.shift();
    if (early !== undefined) return Promise.resolve().then(() => parse(early));
    return new Promise((resolve, reject) => {
      this.queue.push((l) => {
        try {
          resolve(parse(l));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  async run(cmd: 'eval' | 'train', n: number): Promise<number[]> {
    const reply = this.next();
    this.proc.stdin.write(`${cmd} ${n}\n`);
    return (await reply).ms as number[];
  }

  close(): void {
    this.proc.stdin.write('quit\n');
    this.lines.close();
  }
}

function cqsegSide(): { eval: (n: number) => number[]; train: (n: number) => number[]; dispose: () => void } {
  T.manualSeed(0);
  const model = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  const x1 = T.keep(T.randn([1, 3, H, W]));
  const x2 = T.keep(T.randn([2, 3, H, W]));
  const t2 = T.keep(T.randint(0, 5, [2, H, W]));
  const timed = (n: number, fn: () => void): number[] => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      fn();
      ms.push(now() - t0);
    }
    return ms;
  };
  return {
    eval: (n) => timed(n, () => {
      model.eval();
      T.tidy(() => T.noGrad(() => model.forward(x1)));
    }),
    train: (n) => timed(n, () => {
      model.train();
      T.tidy(() => T.crossEntropy(model.forward(x2), t2).backward());
      model.zeroGrad();
    }),
    dispose: () => T.dispose([model, x1, x2, t2]),
  };
}

async function main(): Promise<void> {
  const pyOk = fs.existsSync(PY);
  console.log(`models bench: Unet(efficientnet-b2, classes=5) at ${H}x${W}; eval batch 1, train (forward+backward) batch 2`);
  console.log(`cqseg on libtorch ${T.torchVersion()}; PyTorch side: ${pyOk ? `${PY} bench/models_torch.py` : 'not available'}`);
  console.log(`threads ${THREADS.join(', ')}; ${REPS} eval and ${TRAIN_REPS} train reps per side, alternating; medians`);
  const figures: Record<string, number | string> = { model: 'smp Unet(efficientnet-b2, classes=5)', size: `${H}x${W}`, sideA: 'cqseg', sideB: 'pytorch (smp_ref.py as smp runs: MemoryEfficientSwish, default malloc)', sideC: 'pytorch-tuned (smp_ref.py with F.silu and cqseg\'s malloc policy)' };
  for (const threads of THREADS) {
    T.setNumThreads(threads);
    const ours = cqsegSide();
    const sides: [string, Torch][] = pyOk ? [['pytorch', new Torch(threads, 'memory-efficient')]] : [];
    if (pyOk && WITH_TUNED) sides.push(['pytorch-tuned', new Torch(threads, 'silu', MALLOC_LIKE_CQSEG)]);
    for (const [, t] of sides) await t.next(); // ready
    const times: Record<string, { eval: number[]; train: number[] }> = { cqseg: { eval: [], train: [] } };
    for (const [name] of sides) times[name] = { eval: [], train: [] };
    // warm-up: one eval each (allocator, oneDNN primitive caches)
    ours.eval(1);
    for (const [, t] of sides) await t.run('eval', 1);
    for (let r = 0; r < REPS; r++) {
      for (const [name, t] of sides) times[name].eval.push(...(await t.run('eval', 1)));
      times.cqseg.eval.push(...ours.eval(1));
    }
    for (let r = 0; r < TRAIN_REPS + 1; r++) {
      for (const [name, t] of sides) times[name].train.push(...(await t.run('train', 1)));
      times.cqseg.train.push(...ours.train(1));
    }
    for (const [, t] of sides) t.close();
    ours.dispose();
    for (const kind of ['eval', 'train'] as const) {
      for (const side of Object.keys(times)) {
        const v = kind === 'train' ? times[side].train.slice(1) : times[side].eval; // first train step warms up
        const ms = median(v);
        figures[`${kind}_ms_${side}_t${threads}`] = Number(ms.toFixed(1));
        console.log(`threads ${threads}  ${kind.padEnd(5)}  ${side.padEnd(13)} ${ms.toFixed(1).padStart(9)} ms  (runs: ${v.map((x) => x.toFixed(0)).join(', ')})`);
      }
      for (const side of Object.keys(times).filter((s) => s !== 'cqseg')) {
        const ratio = (figures[`${kind}_ms_cqseg_t${threads}`] as number) / (figures[`${kind}_ms_${side}_t${threads}`] as number);
        figures[`${kind}_ratio_cqseg_over_${side}_t${threads}`] = Number(ratio.toFixed(3));
        console.log(`threads ${threads}  ${kind.padEnd(5)}  cqseg / ${side}: ${ratio.toFixed(3)} (target <= 1.10)`);
      }
    }
  }
  console.log(JSON.stringify(figures));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
