/**
 * The embedded synthetic domain-shift benchmark: throat-like scenes in three camera
 * domains, written as folder datasets. Deterministic: the same options give
 * byte-identical files (geometry from the JS PRNG, texture and sensor noise from torch's
 * CPU generator seeded per image; the caller's generator state is restored).
 *
 * Layout:
 *   OUT/classes.json, OUT/manifest.json (seed, size, counts, every image's parameters)
 *   OUT/hq/train/{images,masks,classes.json}  OUT/hq/val/...   (clean, PNG)
 *   OUT/lq/{images,masks,classes.json}                       (old cameras, JPEG)
 *   OUT/sp/{images,masks,classes.json}                       (smartphones, JPEG)
 *
 *   await writeSynth({ out: 'synth', size: [128, 192], count: 160, seed: 0 });
 */
import { z } from 'zod';
import * as path from 'path';
import { ArgumentError, getRngState, manualSeed, setRngState, tidy, dispose, Tensor } from '../../tensor';
import { classMapJson, ClassMap, PAPER_CLASSES } from '../classes';
import { encodeJpeg, encodePng, Size, writeFileAtomic } from '../image_io';
import { stream } from '../../util/random';
import { applyDomain, Domain, DomainParams, drawDomain } from './domains';
import { toUint8Hwc } from './filters';
import { drawScene, renderScene } from './scene';

export * from './domains';
export * from './scene';
export * from './filters';

export interface SynthOptions {
  out: string;
  /** [H, W] (default [128, 192]) */
  size?: Size;
  /** hq images (default 160); lq and sp get 3/8 of it each (60 by default) */
  count?: number;
  /** share of hq images in hq/val (default 0.2) */
  valFraction?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The synthetic benchmark's class map: the paper's classes with gray levels = indices. */
export const SYNTH_CLASSES: ClassMap = {
  source: 'synth',
  classes: PAPER_CLASSES.classes.map((c, i) => ({ ...c, gray: i })),
};

export interface SynthImage {
  domain: Domain;
  split: 'train' | 'val' | 'test';
  stem: string;
  image: string;
  mask: string;
  degradation: DomainParams;
}

export interface SynthManifest {
  generator: string;
  version: number;
  seed: number;
  size: Size;
  counts: Record<string, number>;
  classes: string[];
  images: SynthImage[];
}

/** The manifest's version: 2 since scenes draw from util/random's named streams (xoshiro128**). */
export const SYNTH_VERSION = 2;

/** What a reader may rely on in manifest.json (the images' parameters are SynthImage's). */
export const SYNTH_MANIFEST = z.object({
  generator: z.literal('cqseg synth'),
  version: z.number().int(),
  seed: z.number(),
  size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  counts: z.record(z.number().int().nonnegative()),
  classes: z.array(z.string()),
  images: z.array(z.object({}).passthrough()),
}).strict();

/** One rendered sample: image (H, W, 3) uint8 and mask (H, W) uint8 (caller disposes). */
export function synthSample(domain: Domain, seed: number, index: number, size: Size): { image: Tensor; mask: Tensor; params: DomainParams } {
  const rng = stream(seed, 'synth', domain, index);
  const scene = drawScene(rng, size[0], size[1]);
  const params = drawDomain(domain, rng);
  const saved = getRngState();
  try {
    manualSeed(scene.noiseSeed);
    const out = tidy(() => {
      const { image, mask } = renderScene(scene, size[0], size[1]);
      return { image: toUint8Hwc(applyDomain(domain, image, params)), mask };
    });
    return { ...out, params };
  } finally {
    setRngState(saved);
    saved.dispose();
  }
}

function plan(count: number, valFraction: number): { domain: Domain; split: SynthImage['split']; index: number }[] {
  const nVal = Math.round(count * valFraction);
  const nTarget = Math.round((count * 3) / 8);
  const jobs: { domain: Domain; split: SynthImage['split']; index: number }[] = [];
  for (let i = 0; i < count; i++) jobs.push({ domain: 'hq', split: i < count - nVal ? 'train' : 'val', index: i });
  for (const d of ['lq', 'sp'] as Domain[]) for (let i = 0; i < nTarget; i++) jobs.push({ domain: d, split: 'test', index: i });
  return jobs;
}

/** Writes the benchmark; returns its manifest. Each file is written to a temp file and renamed. */
export async function writeSynth(opts: SynthOptions): Promise<SynthManifest> {
  const size = opts.size ?? [128, 192];
  const count = opts.count ?? 160;
  const seed = opts.seed ?? 0;
  if (!size.every((s) => Number.isInteger(s) && s >= 16)) throw new ArgumentError(`synth size must be HxW integers >= 16, got ${size.join('x')}`);
  if (!Number.isInteger(count) || count < 2) throw new ArgumentError(`synth count must be an integer >= 2, got ${count}`);
  const jobs = plan(count, opts.valFraction ?? 0.2);
  const classesJson = classMapJson(SYNTH_CLASSES);
  const dirs = new Set<string>();
  const images: SynthImage[] = [];
  const pending: Promise<void>[] = [];
  let done = 0;
  for (const job of jobs) {
    const dir = job.domain === 'hq' ? path.join('hq', job.split) : job.domain;
    dirs.add(dir);
    const stem = `${job.domain}_${job.split === 'test' ? '' : job.split + '_'}${String(job.index).padStart(4, '0')}`;
    const s = synthSample(job.domain, seed, job.index, size);
    const ext = s.params.format === 'png' ? 'png' : 'jpg';
    const rec: SynthImage = { domain: job.domain, split: job.split, stem, image: `${dir}/images/${stem}.${ext}`, mask: `${dir}/masks/${stem}.png`, degradation: s.params };
    images.push(rec);
    const write = async (): Promise<void> => {
      try {
        const img = ext === 'png' ? await encodePng(s.image) : await encodeJpeg(s.image, s.params.jpegQuality as number);
        await writeFileAtomic(path.join(opts.out, rec.image), img);
        await writeFileAtomic(path.join(opts.out, rec.mask), await encodePng(s.mask));
      } finally {
        dispose([s.image, s.mask]);
      }
      opts.onProgress?.(++done, jobs.length);
    };
    pending.push(write());
    if (pending.length >= 8) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  for (const d of dirs) await writeFileAtomic(path.join(opts.out, d, 'classes.json'), classesJson);
  await writeFileAtomic(path.join(opts.out, 'classes.json'), classesJson);
  const counts: Record<string, number> = {};
  for (const im of images) counts[im.domain + (im.domain === 'hq' ? '/' + im.split : '')] = (counts[im.domain + (im.domain === 'hq' ? '/' + im.split : '')] ?? 0) + 1;
  const manifest: SynthManifest = {
    generator: 'cqseg synth', version: SYNTH_VERSION, seed, size, counts, classes: SYNTH_CLASSES.classes.map((c) => c.name), images,
  };
  await writeFileAtomic(path.join(opts.out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return manifest;
}
