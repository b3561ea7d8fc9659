/**
 * `npm run bench -- train [--threads N] [--steps N] [--rounds N] [--size HxW] [--mode M] [--device D] [--precision P] [--blas-default] [--quick]`: training throughput of
 * Unet(efficientnet-b2, classes 5), batch 2, Adam, in `cqg` mode (cqgPair augmentation of
 * uint8 batches included, two forward passes, CQG loss) and `baseline` mode (DiceCE), at
 * 512x768 and 256x384; the same steps in PyTorch (Debian's python3-torch, smp's Unet as
 * tools/golden/smp_ref.py rebuilds it, default allocator) in the same run. Each side and
 * configuration runs in its own process, so peak RSS is per configuration; with --rounds N
 * the two sides alternate N times (medians of the rounds' medians, best steps, largest RSS).
 * Both sides run N threads: libtorch's intra-op threads and OpenBLAS's (OPENBLAS_NUM_THREADS,
 * which libtorch's set_num_threads does not reach; OpenBLAS otherwise takes every core, and
 * both sides' 1x1 convolutions and cqseg's 'gemm'/'winograd' products run in it);
 * --blas-default leaves OpenBLAS at its default on both sides, as users run it.
 * --device (auto | cpu | cuda | cuda:N, default cpu) and --precision (fp32 | bf16 | fp16, default
 * fp32: autocast on both sides, as torch.autocast) apply to both sides; on CUDA each step ends
 * with the loss read back (a synchronisation on both sides). The PyTorch side is
 * $CQSEG_PYTHON (default /usr/bin/python3).
 * Ends with one JSON line of every figure.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { CqgPair } from '../src/augment';
import { toRng } from '../src/util/random';
import { normalize } from '../src/models/preprocess';
import { Unet } from '../src/models/unet/model';
import { Adam } from '../src/nn';
import * as T from '../src/tensor';
import { cqgLoss, diceCELoss } from '../src/train/losses';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const quick = args.includes('--quick');
const blasDefault = args.includes('--blas-default');

interface SideResult { ms: number[]; peak_rss_mb: number; augment_ms?: number[] }

/** Worker: one configuration in this process; prints one JSON line. */
function worker(mode: string, h: number, w: number, steps: number, warmup: number, threads: number, device: string, precision: string): void {
  T.setNumThreads(threads);
  T.useCachingAllocator(); // as cqseg train does
  T.manualSeed(0);
  const model = new Unet({ encoderName: 'efficientnet-b2', classes: 5 }).train();
  if (device !== 'cpu') model.to(device);
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const images = T.keep(T.randint(0, 256, [2, 3, h, w], { dtype: 'uint8' }).to(device));
  const masks = T.keep(T.randint(0, 5, [2, h, w]).to(device));
  const amp = precision === 'fp32' ? null : { type: (device.startsWith('cuda') ? 'cuda' : 'cpu') as 'cuda' | 'cpu', dtype: (precision === 'bf16' ? 'bfloat16' : 'float16') as 'bfloat16' | 'float16' };
  const fwd = (x: T.Tensor): T.Tensor => (amp ? T.withAutocast(amp.type, amp.dtype, () => model.forward(x)).to('float32') : model.forward(x));
  const pair = new CqgPair();
  const augMs: number[] = [];
  const step = (k: number): void => T.tidy(() => {
    let loss: T.Tensor;
    if (mode === 'cqg') {
      const t0 = performance.now();
      const v = pair.apply({ image: images, mask: masks }, pair.sample(2, toRng(k), { height: h, width: w }));
      augMs.push(performance.now() - t0);
      loss = cqgLoss(fwd(normalize(v.geo)), fwd(normalize(v.aug)), v.mask!.to('int64')).loss;
    } else {
      loss = diceCELoss(fwd(normalize(images)), masks).loss;
    }
    loss.backward();
    opt.step();
    opt.zeroGrad();
    loss.item();
  });
  for (let i = 0; i < warmup; i++) step(i);
  augMs.length = 0;
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step(warmup + i);
    ms.push(performance.now() - t0);
  }
  const out: SideResult = { ms, peak_rss_mb: process.resourceUsage().maxRSS / 1024, augment_ms: mode === 'cqg' ? augMs : undefined };
  console.log(JSON.stringify(out));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function lastJson(out: string): SideResult {
  return JSON.parse(out.trim().split('\n').pop()!) as SideResult;
}

function main(): void {
  const threads = flag('--threads', T.getNumThreads());
  const steps = flag('--steps', quick ? 1 : 3);
  const rounds = flag('--rounds', 1);
  const warmup = 1;
  const root = path.join(__dirname, '..', '..');
  const py = process.env.CQSEG_PYTHON ?? '/usr/bin/python3';
  const device = T.resolveDevice(args.indexOf('--device') >= 0 ? args[args.indexOf('--device') + 1] : 'cpu').device;
  const precision = args.indexOf('--precision') >= 0 ? args[args.indexOf('--precision') + 1] : 'fp32';
  let havePy = true;
  try {
    execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    havePy = false;
  }
  console.log(`cqseg train benchmark: Unet(efficientnet-b2, 5 classes), batch 2, Adam, ${threads} thread(s) (OpenBLAS: ${blasDefault ? 'its default' : threads}), ${steps} timed steps after ${warmup} warm-up; libtorch ${T.torchVersion()}`);
  const blasEnv = blasDefault ? {} : { OPENBLAS_NUM_THREADS: String(threads) };
  console.log(havePy ? 'PyTorch side: /usr/bin/python3 bench/train_torch.py (smp_ref Unet, default allocator; no augmentation timed on that side)' : 'PyTorch side: not available (apt-get install python3-torch)');
  console.log(`device ${device}, precision ${precision}`);
  const result: Record<string, unknown> = { bench: 'train', sides: ['cqseg', 'pytorch'], threads, openblas_threads: blasDefault ? 'default' : threads, steps, device, precision };
  const sizeArg = args.indexOf('--size') >= 0 ? args[args.indexOf('--size') + 1] : null;
  const sizes: [number, number][] = sizeArg ? [sizeArg.split('x').map(Number) as [number, number]] : quick ? [[256, 384]] : [[512, 768], [256, 384]];
  const modes = args.indexOf('--mode') >= 0 ? [args[args.indexOf('--mode') + 1]] : ['cqg', 'baseline'];
  for (const [h, w] of sizes) {
    for (const mode of modes) {
      // rounds alternate the sides, so a slow spell of this shared machine hits both
      const cs: SideResult[] = [];
      const ps: SideResult[] = [];
      for (let r = 0; r < rounds; r++) {
        cs.push(lastJson(execFileSync(process.execPath, [__filename, '--worker', mode, String(h), String(w), String(steps), String(warmup), String(threads), device, precision], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...blasEnv } })));
        if (havePy) {
          ps.push(lastJson(execFileSync(py, [path.join(root, 'bench', 'train_torch.py'), '--mode', mode, '--height', String(h), '--width', String(w),
            '--steps', String(steps), '--warmup', String(warmup), '--threads', String(threads), '--device', device, '--precision', precision], { encoding: 'utf8', env: { ...process.env, ...blasEnv, CQSEG_MALLOC: undefined } })));
        }
      }
      const key = `${mode}_${h}x${w}`;
      const cMs = median(cs.map((c) => median(c.ms)));
      const cBest = Math.min(...cs.flatMap((c) => c.ms));
      const cRss = Math.max(...cs.map((c) => c.peak_rss_mb));
      const aug = cs[0].augment_ms ? median(cs.flatMap((c) => c.augment_ms!)) : null;
      result[`${key}_cqseg_ms_per_step`] = cMs;
      result[`${key}_cqseg_best_ms_per_step`] = cBest;
      result[`${key}_cqseg_images_per_s`] = 2000 / cMs;
      result[`${key}_cqseg_peak_rss_mb`] = cRss;
      if (aug !== null) result[`${key}_cqseg_augment_ms`] = aug;
      let line = `${mode.padEnd(8)} ${h}x${w}: cqseg ${(cMs / 1000).toFixed(2)} s/step (best ${(cBest / 1000).toFixed(2)}; ${(2000 / cMs).toFixed(2)} img/s${aug !== null ? `, augmentation ${aug.toFixed(0)} ms` : ''}), peak RSS ${(cRss / 1024).toFixed(2)} GB`;
      if (havePy) {
        const pMs = median(ps.map((p) => median(p.ms)));
        const pBest = Math.min(...ps.flatMap((p) => p.ms));
        const pRss = Math.max(...ps.map((p) => p.peak_rss_mb));
        Object.assign(result, {
          [`${key}_pytorch_ms_per_step`]: pMs, [`${key}_pytorch_best_ms_per_step`]: pBest, [`${key}_pytorch_images_per_s`]: 2000 / pMs, [`${key}_pytorch_peak_rss_mb`]: pRss,
          [`${key}_time_ratio_cqseg_over_pytorch`]: cMs / pMs, [`${key}_best_time_ratio_cqseg_over_pytorch`]: cBest / pBest, [`${key}_rss_ratio_cqseg_over_pytorch`]: cRss / pRss,
        });
        line += ` | PyTorch ${(pMs / 1000).toFixed(2)} s/step (best ${(pBest / 1000).toFixed(2)}), peak RSS ${(pRss / 1024).toFixed(2)} GB | time ratio ${(cMs / pMs).toFixed(3)} (best/best ${(cBest / pBest).toFixed(3)}; target <= 0.80), RSS ratio ${(cRss / pRss).toFixed(3)} (target <= 0.70)`;
      }
      console.log(line);
    }
  }
  console.log(JSON.stringify(result));
}

if (args[0] === '--worker') {
  worker(args[1], Number(args[2]), Number(args[3]), Number(args[4]), Number(args[5]), Number(args[6]), args[7] ?? 'cpu', args[8] ?? 'fp32');
} else {
  main();
}
