/**
 * `npm run bench -- export [--reps N] [--size HxW]`: the paper's model, Unet(efficientnet-b2,
 * 5 classes) at 512x768 (default), batch 1, on the CPU: its ONNX export (src/export/onnx.ts)
 * run by onnxruntime-node against cqseg's own forward (libtorch, eval, no grad), at 1 and 2
 * threads each (onnxruntime's intra-op threads; libtorch's set_num_threads), alternating,
 * medians of --reps (default 5) after one warm-up: milliseconds per image and their ratio.
 * The in-browser (WebAssembly) time is not measured: the browser mode is not built yet.
 * Ends with one JSON line.
 */
import * as ort from 'onnxruntime-node';
import { exportUnet } from '../src/export/onnx';
import { Unet } from '../src/models';
import { IMAGENET, normalize } from '../src/models/preprocess';
import * as T from '../src/tensor';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const REPS = Number(opt('--reps', '5'));
const [H, W] = opt('--size', '512x768').split('x').map(Number);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  T.manualSeed(0);
  const model = new Unet({ encoderName: 'efficientnet-b2', classes: 5 });
  model.eval();
  const t0 = performance.now();
  const bytes = exportUnet(model, { classNames: ['a', 'b', 'c', 'd', 'e'], colors: [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], size: [H, W], mean: IMAGENET.mean, std: IMAGENET.std, version: 'bench' });
  process.stdout.write(`export bench: Unet(efficientnet-b2, 5 classes) at ${H}x${W}, batch 1, CPU; export ${(bytes.length / 2 ** 20).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s; libtorch ${T.torchVersion()}, onnxruntime-node\n`);
  const x = T.tidy(() => T.rand([1, 3, H, W]).mul(255).round());
  const feed = { image: new ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), [1, 3, H, W]) };
  const figures: Record<string, number> = { export_mb: bytes.length / 2 ** 20 };
  for (const threads of [1, 2]) {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    T.setNumThreads(threads);
    const ours = (): number => {
      const s = performance.now();
      T.tidy(() => T.noGrad(() => model.forward(normalize(x, IMAGENET))));
      return performance.now() - s;
    };
    const theirs = async (): Promise<number> => {
      const s = performance.now();
      await session.run(feed);
      return performance.now() - s;
    };
    ours();
    await theirs();
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < REPS; r++) {
      a.push(ours());
      b.push(await theirs());
    }
    await session.release();
    const [ma, mb] = [median(a), median(b)];
    Object.assign(figures, { [`cqseg_ms_threads${threads}`]: ma, [`onnxruntime_ms_threads${threads}`]: mb, [`ratio_onnxruntime_over_cqseg_threads${threads}`]: mb / ma });
    process.stdout.write(`${threads} thread${threads > 1 ? 's' : ' '}: cqseg (libtorch) ${ma.toFixed(0)} ms/image, onnxruntime-node ${mb.toFixed(0)} ms/image, ratio onnxruntime/cqseg ${(mb / ma).toFixed(2)}\n`);
  }
  process.stdout.write('in-browser WebAssembly: not measured (the browser mode of issue 19 is not built yet)\n');
  T.dispose([x, model]);
  process.stdout.write(JSON.stringify({ bench: 'export', size: [H, W], reps: REPS, ...figures }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench export: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
