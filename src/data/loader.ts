/**
 * Seeded, shuffled batches at a training size, decoded ahead of compute.
 *
 * Decoding and image resizing (lanczos3) run in sharp's worker threads; the loader keeps
 * `prefetch` batches in flight while the caller computes, so training does not wait on
 * files unless decoding is slower than a step. Masks are resized with nearest (never
 * interpolated), and so are region-of-interest masks when the dataset has them
 * (`ds.roi`: b.roi, (N, H, W) bool). Batches hold new tensors the caller disposes
 * (dispose(batch)).
 *
 *   const loader = new Loader(ds, { batchSize: 4, size: [512, 768], seed: 0 });
 *   for await (const b of loader.epoch(0)) { ... b.images (N,3,H,W) uint8, b.masks (N,H,W) int64; dispose(b); }
 */
import { dispose, stack, Tensor, tensor, tidy } from '../tensor';
import { SegDataset } from './dataset';
import { DataError, decodeImage, RawImage, resizeMask, Size } from './image_io';
import { readRoi } from './pairing';
import { stream } from '../util/random';

/** The paper's input size [H, W], every command's default (written here only). */
export const PAPER_SIZE: Size = [512, 768];

export interface LoaderOptions {
  batchSize?: number;
  /** [H, W] every sample is resized to (default PAPER_SIZE) */
  size?: Size;
  shuffle?: boolean;
  seed?: number;
  /** batches decoded ahead (default 2) */
  prefetch?: number;
  /** drop a last, smaller batch (default false) */
  dropLast?: boolean;
  /** read region-of-interest masks into Batch.roi when the dataset has them (default true) */
  roi?: boolean;
  /**
   * data-parallel training: this process's share of every batch. Each step's global batch
   * is batchSize x world samples of the epoch's order (the same on every process: same
   * seed); process `rank` takes its contiguous part, so the processes together see each
   * sample once per epoch. A last global batch too small to give every process a sample is
   * merged into the one before.
   */
  shard?: { rank: number; world: number };
}

export interface Batch {
  /** (N, 3, H, W) uint8 RGB */
  images: Tensor;
  /** (N, H, W) int64 class indices; absent for unlabelled datasets */
  masks?: Tensor;
  /** (N, H, W) bool, true inside the region of interest; only for datasets with ROI masks (`ds.roi`) */
  roi?: Tensor;
  stems: string[];
  /** indices into the dataset's items */
  indices: number[];
  /** with a shard: where this process's samples start in the step's global batch, and its size */
  shard?: { start: number; total: number };
}

export interface LoaderStats {
  /** ms the consumer waited for data (time inside next() not covered by prefetch) */
  waitMs: number;
  batches: number;
  samples: number;
}

interface Decoded {
  image: RawImage;
  mask?: Tensor;
  /** (H, W) uint8, 1 inside the region of interest */
  roi?: Tensor;
}

/**
 * One sample at `size`: image (H, W, 3) uint8 via sharp; mask (H, W) uint8
 * nearest-resized; with `roi` and a dataset with ROI masks, roi (H, W) bool.
 */
export async function loadSample(ds: SegDataset, i: number, size?: Size, opts: { roi?: boolean } = {}): Promise<{ image: Tensor; mask?: Tensor; roi?: Tensor }> {
  const d = await decodeSample(ds, i, size, Boolean(opts.roi));
  const roi = d.roi ? tidy(() => d.roi!.to('bool')) : undefined;
  d.roi?.dispose();
  return { image: tensor(d.image.data, [d.image.height, d.image.width, 3], { dtype: 'uint8' }), mask: d.mask, ...(roi ? { roi } : {}) };
}

const fitted = (t: Tensor, size?: Size): Tensor => {
  if (!size || (t.shape[0] === size[0] && t.shape[1] === size[1])) return t;
  const r = resizeMask(t, size);
  t.dispose();
  return r;
};

async function decodeSample(ds: SegDataset, i: number, size: Size | undefined, withRoi: boolean): Promise<Decoded> {
  const it = ds.items[i];
  const imageP = decodeImage(it.image, { size });
  if (!ds.labelled) return { image: await imageP };
  const roiP = withRoi && ds.roi && it.roi ? readRoi(it.roi, size) : Promise.resolve(undefined);
  const [image, m, roi] = await Promise.allSettled([imageP, ds.readMask(i, size), roiP]);
  const got = <T>(r: PromiseSettledResult<T>): T | undefined => (r.status === 'fulfilled' ? r.value : undefined);
  const bad = [image, m, roi].find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  const outside = [...(got(m)?.outside.keys() ?? [])];
  if (bad || outside.length > 0) {
    dispose([got(m)?.mask, got(roi)]);
    if (bad) throw bad.reason;
    throw new DataError(`mask '${it.mask ?? it.image}' has values outside class map '${ds.classes.source}': ${outside.slice(0, 6).join(', ')} (run cqseg data check)`, 'values-outside', it.mask ?? it.image);
  }
  const r = got(roi);
  return { image: got(image)!, mask: fitted(got(m)!.mask, size), ...(r ? { roi: fitted(r, size) } : {}) };
}

export class Loader {
  readonly size: Size;
  readonly batchSize: number;
  readonly stats: LoaderStats = { waitMs: 0, batches: 0, samples: 0 };
  private readonly opts: Required<LoaderOptions>;

  constructor(readonly dataset: SegDataset, opts: LoaderOptions = {}) {
    this.opts = { batchSize: 4, size: PAPER_SIZE, shuffle: true, seed: 0, prefetch: 2, dropLast: false, roi: true, ...opts, shard: opts.shard ?? { rank: 0, world: 1 } };
    const { rank, world } = this.opts.shard;
    if (!Number.isInteger(world) || world < 1 || !Number.isInteger(rank) || rank < 0 || rank >= world) {
      throw new DataError(`Loader shard must be { rank, world } with 0 <= rank < world, got ${JSON.stringify(this.opts.shard)}`, 'argument');
    }
    this.size = this.opts.size;
    this.batchSize = this.opts.batchSize;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new DataError(`Loader batchSize must be a positive integer, got ${this.batchSize}`, 'argument');
    if (!this.size.every((s) => Number.isInteger(s) && s > 0)) throw new DataError(`Loader size must be [H, W] positive integers, got ${JSON.stringify(this.size)}`, 'argument');
  }

  /** Batches per epoch. */
  get length(): number {
    return this.groups(0).length;
  }

  /**
   * This process's batches of an epoch, as dataset indices (with a shard: its part of each
   * global batch; see LoaderOptions.shard).
   */
  groups(epoch: number): number[][] {
    return this.plan(epoch).map((p) => p.indices);
  }

  /** This process's batches of an epoch, each with its place in the global batch. */
  private plan(epoch: number): { indices: number[]; start: number; total: number }[] {
    const order = this.order(epoch);
    const { rank, world } = this.opts.shard;
    const global = this.batchSize * world;
    const groups: number[][] = [];
    for (let s = 0; s < order.length; s += global) {
      const g = order.slice(s, s + global);
      if (g.length < global && this.opts.dropLast) break;
      if (g.length < world && groups.length > 0) groups[groups.length - 1].push(...g); // too few to share
      else groups.push(g);
    }
    if (world === 1) return groups.map((g) => ({ indices: g, start: 0, total: g.length }));
    if (order.length < world) throw new DataError(`${order.length} samples cannot be shared among ${world} processes`, 'argument');
    return groups.map((g) => {
      const start = Math.floor((rank * g.length) / world);
      return { indices: g.slice(start, Math.floor(((rank + 1) * g.length) / world)), start, total: g.length };
    });
  }

  /** The sample order of an epoch: a seeded permutation (seed, epoch), or 0..n-1 without shuffle. */
  order(epoch: number): number[] {
    const idx = Array.from({ length: this.dataset.items.length }, (_, i) => i);
    return this.opts.shuffle ? stream(this.opts.seed, 'loader', epoch).shuffle(idx) : idx;
  }

  /** The batches of one epoch, decoded `prefetch` batches ahead. */
  async *epoch(epoch = 0): AsyncGenerator<Batch> {
    const plan = this.plan(epoch);
    const groups = plan.map((p) => p.indices);
    const sharded = this.opts.shard.world > 1;
    const inflight: Promise<Decoded[]>[] = [];
    const start = (k: number): void => {
      if (k < groups.length) inflight.push(this.decodeGroup(groups[k]));
    };
    for (let k = 0; k < Math.max(1, this.opts.prefetch); k++) start(k);
    try {
      for (let k = 0; k < groups.length; k++) {
        const t0 = performance.now();
        const samples = await inflight.shift()!;
        this.stats.waitMs += performance.now() - t0;
        start(k + Math.max(1, this.opts.prefetch));
        this.stats.batches++;
        this.stats.samples += samples.length;
        const batch = this.collate(groups[k], samples);
        if (sharded) batch.shard = { start: plan[k].start, total: plan[k].total };
        yield batch;
      }
    } finally {
      // an early break or an error: let in-flight decodes finish and free their masks
      for (const p of inflight) p.then((ds) => ds.forEach((d) => dispose([d.mask, d.roi])), () => undefined);
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<Batch> {
    return this.epoch(0);
  }

  private async decodeGroup(idx: number[]): Promise<Decoded[]> {
    const settled = await Promise.allSettled(idx.map((i) => decodeSample(this.dataset, i, this.size, this.opts.roi)));
    const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) {
      for (const s of settled) if (s.status === 'fulfilled') dispose([s.value.mask, s.value.roi]);
      throw bad.reason;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<Decoded>).value);
  }

  private collate(idx: number[], samples: Decoded[]): Batch {
    const [h, w] = this.size;
    const n = samples.length;
    const buf = new Uint8Array(n * h * w * 3);
    samples.forEach((s, k) => buf.set(s.image.data, k * h * w * 3));
    const images = tidy(() => tensor(buf, [n, h, w, 3], { dtype: 'uint8' }).permute([0, 3, 1, 2]).contiguous());
    let masks: Tensor | undefined;
    if (this.dataset.labelled) {
      masks = tidy(() => stack(samples.map((s) => s.mask!)).to('int64'));
      for (const s of samples) s.mask!.dispose();
    }
    let roi: Tensor | undefined;
    if (samples.length > 0 && samples.every((s) => s.roi)) {
      roi = tidy(() => stack(samples.map((s) => s.roi!)).to('bool'));
      for (const s of samples) s.roi!.dispose();
    }
    return { images, masks, ...(roi ? { roi } : {}), stems: idx.map((i) => this.dataset.items[i].stem), indices: idx };
  }
}
