/**
 * `npm run bench -- loader [--images N] [--steps N] [--tiny]`: decode + resize throughput of the
 * data loader at the paper's training size (512x768) from JPEG and from PNG sources
 * (1080x1440 camera-sized images rendered by the synthetic benchmark), and whether
 * training would wait on it: training steps of the paper's model (Unet(efficientnet-b2);
 * --tiny: a small U-Net) run while the loader prefetches, and the time spent waiting for
 * batches is reported. Ends with one JSON line.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as T from '../src/tensor';
import { Module, Adam } from '../src/nn';
import { decodeImage, encodePng, Loader, openFolderDataset, synthSample, writeFileAtomic, SYNTH_CLASSES, classMapJson, Size } from '../src/data';

const SIZE: Size = [512, 768];
const SRC: Size = [1080, 1440];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

async function makeFixtures(dir: string, n: number): Promise<void> {
  for (const fmt of ['jpg', 'png']) {
    fs.mkdirSync(path.join(dir, fmt, 'images'), { recursive: true });
    fs.mkdirSync(path.join(dir, fmt, 'masks'), { recursive: true });
    fs.writeFileSync(path.join(dir, fmt, 'classes.json'), classMapJson(SYNTH_CLASSES));
  }
  for (let i = 0; i < n; i++) {
    const s = synthSample('hq', 7, i, [270, 360]);
    const raw = Buffer.from(s.image.dataSync() as Uint8Array);
    const big = sharp(raw, { raw: { width: 360, height: 270, channels: 3 } }).resize(SRC[1], SRC[0], { kernel: 'cubic' });
    const maskBig = T.tidy(() => T.interpolate(s.mask.reshape([1, 1, 270, 360]).to('float32'), { size: SRC, mode: 'nearest' }).reshape(SRC).to('uint8'));
    const maskPng = await encodePng(maskBig);
    await writeFileAtomic(path.join(dir, 'jpg', 'images', `b${i}.jpg`), await big.clone().jpeg({ quality: 90 }).toBuffer());
    await writeFileAtomic(path.join(dir, 'png', 'images', `b${i}.png`), await big.clone().png().toBuffer());
    for (const fmt of ['jpg', 'png']) await writeFileAtomic(path.join(dir, fmt, 'masks', `b${i}.png`), maskPng);
    T.dispose([s.image, s.mask, maskBig]);
  }
}

function makeModel(tiny: boolean): { model: Module; name: string } {
  if (!tiny) try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const models = require('../src/models') as { createUnet?: (o: { classes: number }) => Module };
    if (typeof models.createUnet === 'function') return { model: models.createUnet({ classes: 5 }), name: 'Unet(efficientnet-b2)' };
  } catch (err) {
    console.log(`src/models Unet unavailable (${(err as Error).message}); using TinyUnet`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TinyUnet } = require('../src/models/tiny_unet') as { TinyUnet: new (i: number, c: number, ch: number[]) => Module };
  return { model: new TinyUnet(3, 5, [32, 64, 128, 256]), name: tiny ? 'TinyUnet [32,64,128,256] (--tiny)' : 'STAND-IN TinyUnet [32,64,128,256]' };
}

/** Images/s of the loader alone (no compute), batch 4, default prefetch. */
async function loaderRate(root: string): Promise<number> {
  const loader = new Loader(openFolderDataset(root), { batchSize: 4, size: SIZE, seed: 0 });
  const t0 = performance.now();
  let count = 0;
  for await (const b of loader.epoch(0)) {
    count += b.stems.length;
    T.dispose(b);
  }
  return (count / (performance.now() - t0)) * 1000;
}

async function decodeOnlyRate(root: string): Promise<number> {
  const files = fs.readdirSync(path.join(root, 'images')).map((f) => path.join(root, 'images', f));
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < files.length) await decodeImage(files[next++], { size: SIZE });
  }));
  return (files.length / (performance.now() - t0)) * 1000;
}

async function main(): Promise<void> {
  const n = arg('--images', 24);
  const steps = arg('--steps', 2);
  const tiny = process.argv.includes('--tiny');
  const batch = 2;
  const threads = T.getNumThreads();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bench-loader-'));
  try {
    console.log(`fixtures: ${n} images ${SRC[0]}x${SRC[1]} as JPEG (q90) and PNG, masks PNG; training size ${SIZE[0]}x${SIZE[1]}`);
    await makeFixtures(dir, n);
    const rates: Record<string, number> = {};
    for (const fmt of ['jpg', 'png']) {
      rates[`${fmt}_decode_resize`] = await decodeOnlyRate(path.join(dir, fmt));
      rates[`${fmt}_loader`] = await loaderRate(path.join(dir, fmt));
      console.log(`${fmt.toUpperCase()}: decode+resize ${rates[`${fmt}_decode_resize`].toFixed(1)} images/s; loader (image + mask, batches of 4) ${rates[`${fmt}_loader`].toFixed(1)} images/s`);
    }
    const { model, name } = makeModel(tiny);
    model.train();
    const opt = new Adam(model.parameters(), { lr: 1e-4 });
    const step = (images: T.Tensor, masks: T.Tensor): void => T.tidy(() => {
      const x = images.to('float32').div(255).sub(0.5).div(0.25);
      const loss = T.crossEntropy(model.forward(x), masks);
      loss.backward();
      opt.step();
      opt.zeroGrad();
    });
    // the loader prefetches (JPEG) while steps run; the first batch's wait and step (warm-up) are not counted
    const loader = new Loader(openFolderDataset(path.join(dir, 'jpg')), { batchSize: batch, size: SIZE, seed: 1, prefetch: 2 });
    const stepTimes: number[] = [];
    const waitTimes: number[] = [];
    let lastWait = 0;
    for await (const b of loader.epoch(0)) {
      waitTimes.push(loader.stats.waitMs - lastWait);
      const t = performance.now();
      step(b.images, b.masks!);
      stepTimes.push(performance.now() - t);
      lastWait = loader.stats.waitMs;
      T.dispose(b);
      if (stepTimes.length >= steps + 1) break;
    }
    const stepMs = stepTimes.slice(1).reduce((a, v) => a + v, 0) / Math.max(1, stepTimes.length - 1);
    const waitPerStep = waitTimes.slice(1).reduce((a, v) => a + v, 0) / Math.max(1, waitTimes.length - 1);
    const trainRate = (batch / stepMs) * 1000;
    const waits = waitPerStep > 0.05 * stepMs;
    console.log(`training step of ${name}: ${stepMs.toFixed(0)} ms (batch ${batch}, ${SIZE[0]}x${SIZE[1]}, Adam, ${threads} threads, while the loader decodes) = ${trainRate.toFixed(2)} images/s`);
    console.log(`waited for data ${waitPerStep.toFixed(0)} ms per step after the first (first batch: ${waitTimes[0].toFixed(0)} ms)`);
    console.log(`training would ${waits ? 'WAIT on' : 'not wait on'} the loader: it needs ${trainRate.toFixed(2)} images/s, JPEG loader gives ${rates.jpg_loader.toFixed(1)}, PNG ${rates.png_loader.toFixed(1)}`);
    T.dispose(model);
    (opt as unknown as { dispose?: () => void }).dispose?.();
    console.log(JSON.stringify({
      bench: 'loader', device: 'cpu', threads, height: SIZE[0], width: SIZE[1], source_height: SRC[0], source_width: SRC[1], images: n,
      jpeg_decode_resize_images_per_s: rates.jpg_decode_resize, png_decode_resize_images_per_s: rates.png_decode_resize,
      jpeg_loader_images_per_s: rates.jpg_loader, png_loader_images_per_s: rates.png_loader,
      train_step_model: name, train_batch: batch, train_step_ms: stepMs, train_images_per_s: trainRate,
      first_batch_wait_ms: waitTimes[0], wait_ms_per_step: waitPerStep, training_waits_on_loader: waits,
      loader_over_training_rate_jpeg: rates.jpg_loader / trainRate, loader_over_training_rate_png: rates.png_loader / trainRate,
      reference: null,
    }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
