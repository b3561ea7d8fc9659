/**
 * `npm run bench -- core [--threads N] [--quick]`: the native core's cost.
 * Trains a small U-Net (3 levels, batch 2, Adam) at 128x128 and 256x256 for a fixed number
 * of steps in cqseg and, in the same run, the same network in PyTorch (Debian's
 * python3-torch, a subprocess), and prints ms/step and their ratio; per-op call overhead
 * (a tiny add from JS minus the same add looped in C++); peak RSS; RSS growth from step 50
 * to step 500. Ends with one JSON line of every figure.
 */
import { testing } from '../src/tensor/testing';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { TinyUnet } from '../src/models/tiny_unet';
import { Adam } from '../src/nn';
import * as T from '../src/tensor';
import { native, opId } from '../src/tensor/native';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const quick = args.includes('--quick');
const threads = flag('--threads', T.getNumThreads());
const CHANNELS = [16, 32, 64];
T.setNumThreads(threads);

const rssMb = (): number => process.memoryUsage().rss / 2 ** 20;
const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

function trainer(size: number): { step: () => number; dispose: () => void } {
  T.manualSeed(0);
  const model = new TinyUnet(3, 2, CHANNELS);
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const x = T.keep(T.randn([2, 3, size, size]));
  const y = T.keep(T.randint(0, 2, [2, size, size]));
  return {
    step: () => T.tidy(() => {
      const loss = T.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    }),
    dispose: () => {
      T.dispose([model, x, y]);
      opt.dispose();
    },
  };
}

function cqsegMsPerStep(size: number, steps: number, warmup: number): number {
  const t = trainer(size);
  for (let i = 0; i < warmup; i++) t.step();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) t.step();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / steps;
  t.dispose();
  return ms;
}

function findPython(): string | null {
  for (const p of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(p, ['-c', 'import torch'], { stdio: 'ignore' });
      return p;
    } catch { /* try next */ }
  }
  return null;
}

interface TorchResult { ms_per_step: number; op_us: number; peak_rss_mb: number; torch: string; threads: number }
function torchRun(py: string, size: number, steps: number, warmup: number): TorchResult {
  const script = path.join(__dirname, '..', '..', 'bench', 'core_torch.py');
  const out = execFileSync(py, [script, '--size', String(size), '--steps', String(steps), '--warmup', String(warmup),
    '--threads', String(threads), '--channels', CHANNELS.join(',')], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as TorchResult;
}

function opOverhead(): { jsOpUs: number; cppOpUs: number; overheadUs: number; noopCallUs: number } {
  const a = T.zeros([1]);
  const n = quick ? 20000 : 200000;
  for (let i = 0; i < 1000; i++) a.add(a).dispose();
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) a.add(a).dispose();
  const jsOpUs = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  const cppOpUs = testing.callV('benchAddLoop', a.handle, a.handle, n) / 1e3;
  const numel = opId('numel');
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) native.call(numel, a.handle);
  const noopCallUs = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  a.dispose();
  return { jsOpUs, cppOpUs, overheadUs: jsOpUs - cppOpUs, noopCallUs };
}

function rssGrowth(size: number, steps: number): { rssAt50Mb: number; rssAtEndMb: number; growthPct: number; liveTensorsDelta: number } {
  const t = trainer(size);
  let at50 = 0;
  let live50 = 0;
  for (let i = 1; i <= steps; i++) {
    t.step();
    if (i === 50) {
      (global as { gc?: () => void }).gc?.();
      at50 = rssMb();
      live50 = T.memory().liveTensors;
    }
  }
  (global as { gc?: () => void }).gc?.();
  const end = rssMb();
  const liveEnd = T.memory().liveTensors;
  t.dispose();
  return { rssAt50Mb: at50, rssAtEndMb: end, growthPct: ((end - at50) / at50) * 100, liveTensorsDelta: liveEnd - live50 };
}

function main(): void {
  const py = findPython();
  console.log(`cqseg core benchmark: libtorch ${T.torchVersion()}, ${threads} thread(s), TinyUnet channels ${CHANNELS.join('/')}, batch 2, Adam`);
  console.log(py ? `PyTorch side: ${py}` : 'PyTorch side: not available (apt-get install python3-torch)');
  const result: Record<string, unknown> = { bench: 'core', threads, libtorch: T.torchVersion(), sides: ['cqseg', 'pytorch'] };
  const plan: [number, number][] = quick ? [[128, 5], [256, 3]] : [[128, 30], [256, 12]];
  for (const [size, steps] of plan) {
    // alternate sides twice and keep each side's best, to damp machine noise
    let c = Infinity;
    let p: TorchResult | null = null;
    for (let rep = 0; rep < 2; rep++) {
      c = Math.min(c, cqsegMsPerStep(size, steps, 3));
      if (py) {
        const r = torchRun(py, size, steps, 3);
        if (!p || r.ms_per_step < p.ms_per_step) p = r;
      }
    }
    const line = `${size}x${size}: cqseg ${c.toFixed(1)} ms/step` + (p ? `, PyTorch ${p.ms_per_step.toFixed(1)} ms/step, ratio cqseg/PyTorch ${(c / p.ms_per_step).toFixed(3)} (target <= 1.10)` : '');
    console.log(line);
    result[`ms_per_step_${size}_cqseg`] = c;
    if (p) {
      result[`ms_per_step_${size}_pytorch`] = p.ms_per_step;
      result[`ratio_${size}_cqseg_over_pytorch`] = c / p.ms_per_step;
      result[`peak_rss_mb_${size}_pytorch`] = p.peak_rss_mb;
      result.pytorch_version = p.torch;
      result.pytorch_op_us = p.op_us;
    }
  }
  const o = opOverhead();
  console.log(`per-op: tiny add from JS ${o.jsOpUs.toFixed(2)} us, same add looped in C++ ${o.cppOpUs.toFixed(2)} us => overhead ${o.overheadUs.toFixed(2)} us (target < 10); bare addon call ${o.noopCallUs.toFixed(2)} us` +
    (result.pytorch_op_us ? `; PyTorch eager tiny add ${(result.pytorch_op_us as number).toFixed(2)} us` : ''));
  Object.assign(result, { op_js_us: o.jsOpUs, op_cpp_us: o.cppOpUs, op_overhead_us: o.overheadUs, addon_call_us: o.noopCallUs });
  const g = rssGrowth(128, quick ? 60 : 500);
  console.log(`RSS over ${quick ? 60 : 500} steps at 128x128: ${g.rssAt50Mb.toFixed(1)} MB at step 50 -> ${g.rssAtEndMb.toFixed(1)} MB (${g.growthPct.toFixed(2)}%, target < 5%), live tensors ${g.liveTensorsDelta >= 0 ? '+' : ''}${g.liveTensorsDelta}`);
  Object.assign(result, { rss_step50_mb: g.rssAt50Mb, rss_end_mb: g.rssAtEndMb, rss_growth_pct: g.growthPct, live_tensors_delta: g.liveTensorsDelta });
  result.peak_rss_mb_cqseg = peakRssMb();
  console.log(`peak RSS: cqseg ${peakRssMb().toFixed(0)} MB (whole run)`);
  console.log(JSON.stringify(result));
}

if (!fs.existsSync(path.join(__dirname, '..', '..', 'bench', 'core_torch.py'))) throw new Error('bench/core_torch.py missing');
main();
