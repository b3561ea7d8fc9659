/**
 * `npm run bench -- export [--reps N] [--size HxW]`: the paper's model, Unet(efficientnet-b2,
 * 5 classes) at 512x768 (default), batch 1, on the CPU: its ONNX export (src/export/onnx.ts)
 * run by onnxruntime-node against cqseg's own forward (libtorch, eval, no grad), at 1 and 2
 * threads each (onnxruntime's intra-op threads; libtorch's set_num_threads), alternating,
 * medians of --reps (default 5) after one warm-up: milliseconds per image and their ratio.
 * Then the in-browser time: the same model in a bundle (src/export/bundle.ts) hosted on
 * 127.0.0.1, in Debian's Chromium (headless, no GPU: onnxruntime-web's WebAssembly, one
 * thread, as on a static host without cross-origin isolation), mode none, medians of --reps
 * page runs of a 512x768 PNG after one warm-up: milliseconds of model time per image, as the
 * page reports it (skipped, with the reason, when Chromium is missing).
 * Ends with one JSON line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { staticFiles, writeBundle } from '../src/export/bundle';
import { exportUnet } from '../src/export/onnx';
import { findChromium, launchChromium } from '../test/helpers/browser';
import { serveFolder } from '../test/helpers/static_server';
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

/** Median model time per image of the bundle's page in Chromium, or undefined (printed why) without Chromium. */
async function browserMs(bytes: Uint8Array, x: T.Tensor): Promise<number | undefined> {
  if (!findChromium()) {
    process.stdout.write('in-browser WebAssembly: not measured (no Chromium: apt-get install chromium)\n');
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bench-bundle-'));
  const classes = ['a', 'b', 'c', 'd', 'e'].map((name, index) => ({ index, name, color: [index * 50, 0, 0] }));
  writeBundle(path.join(dir, 'site'), [...staticFiles(), { name: 'model.onnx', data: Buffer.from(bytes) },
    { name: 'model.json', data: JSON.stringify({ title: 'bench', encoder: 'efficientnet-b2', version: 'bench', size: [H, W], classes, model: 'model.onnx', dcin: null, modes: ['none'] }) }]);
  const host = await serveFolder(path.join(dir, 'site'));
  const browser = await launchChromium();
  try {
    const hwc = T.tidy(() => x.squeeze(0).permute([1, 2, 0]).to('uint8').contiguous().dataSync() as Uint8Array);
    const png = await sharp(Buffer.from(hwc), { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    const page = await browser.newPage();
    await page.goto(host.url + '/');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
    const times: number[] = [];
    for (let r = 0; r <= REPS; r++) {
      const name = `bench-${r}.png`;
      await page.setInputFiles('#files', { name, mimeType: 'image/png', buffer: png });
      await page.waitForFunction((n) => (globalThis as unknown as { cqsegLast?: { name: string } }).cqsegLast?.name === n, name, { timeout: 300_000 });
      const ms = await page.evaluate(() => (globalThis as unknown as { cqsegLast: { modelMs: number } }).cqsegLast.modelMs);
      if (r > 0) times.push(ms); // the first run warms up
    }
    return median(times);
  } finally {
    await browser.close();
    await host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

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
  const wasm = await browserMs(bytes, x);
  if (wasm !== undefined) {
    Object.assign(figures, { browser_wasm_ms: wasm, ratio_browser_wasm_over_onnxruntime_threads1: wasm / figures.onnxruntime_ms_threads1 });
    process.stdout.write(`in-browser (Chromium, onnxruntime-web WebAssembly, 1 thread): ${wasm.toFixed(0)} ms/image of model time, ${(wasm / figures.onnxruntime_ms_threads1).toFixed(2)}x onnxruntime-node at 1 thread\n`);
  }
  T.dispose([x, model]);
  process.stdout.write(JSON.stringify({ bench: 'export', size: [H, W], reps: REPS, ...figures }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench export: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
