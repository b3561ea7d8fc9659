/**
 * Evaluation of a predictor on a labelled dataset: Dice macro as torchmetrics 1.4
 * `Dice(num_classes=C, average='macro')` accumulated over the whole dataset (see
 * metrics.ts for the convention on absent classes), per-class Dice and IoU, per-image
 * Dice, and bootstrap 95% confidence intervals over images.
 *
 * Resolution: by default at the model's input size with masks resized by nearest, as the
 * reference's test set does; `originalResolution` instead upsamples the probabilities
 * (bilinear) to each image's own size and compares with its original mask, in bands
 * (eval/upsample.ts), and refuses images larger than the memory allows (util/memory.ts).
 *
 * Region of interest: when the dataset has ROI masks (`ds.roi`, e.g. DRIVE's field-of-view
 * masks), every figure counts only pixels inside them, at either resolution, and the
 * result says so (`roi: true`: "Dice inside the field of view").
 */
import { stream } from '../util/random';
import { DataError, Loader, SegDataset, Size, assertDatasetOk, imageSize, loadSample, resizeImage } from '../data';
import { Tensor, argmax, dispose, noGradAsync, tidy } from '../tensor';
import { pixelLimit, pixelLimitProblem } from '../util/memory';
import { Progress } from '../util/progress';
import { ConfusionMatrix } from './metrics';
import { upsampleArgmax } from './upsample';

/** Maps a uint8 RGB batch (N, 3, H, W) to class probabilities (N, C, H, W). */
export type Predictor = (images: Tensor) => Promise<Tensor>;

export interface EvalOptions {
  /** [H, W] the model runs at */
  size: Size;
  originalResolution?: boolean;
  batchSize?: number;
  /** bootstrap resamples for the confidence intervals (default 1000; 0 = none) */
  bootstrap?: number;
  seed?: number;
  progress?: string | false;
  /** skip the `cqseg data check` pass (the caller checked this dataset already) */
  skipCheck?: boolean;
}

export interface EvalResult {
  images: number;
  dice: number;
  diceCI: [number, number] | null;
  iou: number;
  iouCI: [number, number] | null;
  dicePerClass: number[];
  iouPerClass: number[];
  perImage: { stem: string; dice: number }[];
  /** the confusion matrix counts[t * C + p] */
  confusion: number[];
  /** true when only pixels inside the dataset's ROI masks were counted */
  roi: boolean;
}

/**
 * Percentile bootstrap over images: resample images with replacement, sum their
 * confusion matrices, recompute the dataset-level metric; the 2.5th and 97.5th percentiles.
 */
export function bootstrapCI(perImage: ConfusionMatrix[], metric: (cm: ConfusionMatrix) => number, resamples: number, seed = 0): [number, number] | null {
  if (resamples <= 0 || perImage.length < 2) return null;
  const c = perImage[0].numClasses;
  const rng = stream(seed, 'bootstrap');
  const values: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const cm = new ConfusionMatrix(c);
    for (let k = 0; k < perImage.length; k++) cm.merge(perImage[Math.floor(rng.next() * perImage.length)]);
    const v = metric(cm);
    if (!Number.isNaN(v)) values.push(v);
  }
  values.sort((x, y) => x - y);
  const q = (p: number): number => values[Math.min(values.length - 1, Math.max(0, Math.floor(p * (values.length - 1) + 0.5)))];
  return [q(0.025), q(0.975)];
}

function perImageMatrices(pred: Tensor, target: Tensor, classes: number, roi?: Tensor): ConfusionMatrix[] {
  const out: ConfusionMatrix[] = [];
  for (let i = 0; i < pred.shape[0]; i++) {
    const cm = new ConfusionMatrix(classes);
    tidy(() => cm.update(pred.select(0, i), target.select(0, i), roi?.select(0, i)));
    out.push(cm);
  }
  return out;
}

/** One image's confusion matrix at its own size: probabilities (1, C, h, w) upsampled band by band, mask and roi (H, W). */
function fullSizeMatrix(probs: Tensor, mask: Tensor, classes: number, roi?: Tensor): ConfusionMatrix {
  const cm = new ConfusionMatrix(classes);
  upsampleArgmax(probs, [mask.shape[0], mask.shape[1]], (b) => cm.update(b.labels, mask.narrow(1, b.col, b.width), roi?.narrow(1, b.col, b.width))).dispose();
  return cm;
}

/** Maps a uint8 RGB batch (N, 3, H, W) to probabilities (N, C, H, W) for each of several columns. */
export type MultiPredictor = (images: Tensor) => Promise<Map<string, Tensor>>;

export async function evaluateDataset(ds: SegDataset, predict: Predictor, classes: number, opts: EvalOptions): Promise<EvalResult> {
  const r = await evaluateDatasetMany(ds, async (x) => new Map([['', await predict(x)]]), [''], classes, opts);
  return r.get('')!;
}

/**
 * evaluateDataset for several predictions of every batch at once (DCIN columns sharing
 * their work): the data is read once and each column gets its own figures.
 */
export async function evaluateDatasetMany(ds: SegDataset, predict: MultiPredictor, columns: string[], classes: number, opts: EvalOptions): Promise<Map<string, EvalResult>> {
  if (ds.classes.classes.length !== classes) {
    throw new DataError(`dataset '${ds.source}' has ${ds.classes.classes.length} classes, the model predicts ${classes}`, 'classes', ds.source);
  }
  if (!opts.skipCheck) await assertDatasetOk(ds, { size: opts.size });
  const per = new Map<string, ConfusionMatrix[]>(columns.map((c) => [c, []]));
  const stems: string[] = [];
  const bar = opts.progress === false ? null : new Progress(opts.progress ?? `evaluate ${ds.source}`, ds.items.length);
  const withRoi = Boolean(ds.roi);
  // target and roi: (N, H, W) at the model's size, or one image's (H, W) at its own size (fullSize)
  const score = async (images: Tensor, target: Tensor, roi: Tensor | undefined, fullSize = false): Promise<void> => {
    if (withRoi && !roi) throw new Error('dataset has ROI masks, but the batch holds none');
    const probs = await noGradAsync(() => predict(images));
    try {
      for (const c of columns) {
        const p = probs.get(c);
        if (!p) throw new Error(`predictor gave no '${c}' prediction`);
        if (fullSize) {
          per.get(c)!.push(fullSizeMatrix(p, target, classes, roi));
          continue;
        }
        const pred = tidy(() => argmax(p, 1));
        per.get(c)!.push(...perImageMatrices(pred, target, classes, roi));
        pred.dispose();
      }
    } finally {
      dispose([...probs.values()]);
    }
  };
  if (!opts.originalResolution) {
    const loader = new Loader(ds, { batchSize: opts.batchSize ?? 4, size: opts.size, shuffle: false });
    for await (const b of loader.epoch(0)) {
      try {
        await score(b.images, b.masks!, b.roi);
        stems.push(...b.stems);
        bar?.tick(b.stems.length);
      } finally {
        dispose(b);
      }
    }
  } else {
    let limit: ReturnType<typeof pixelLimit>;
    try {
      limit = pixelLimit();
    } catch (err) {
      throw new DataError((err as Error).message, 'argument');
    }
    for (let i = 0; i < ds.items.length; i++) {
      const file = ds.items[i].image;
      const { height, width } = await imageSize(file);
      const tooLarge = pixelLimitProblem(height, width, limit);
      if (tooLarge) throw new DataError(`${file}: ${tooLarge} (or evaluate at the model's size: leave out --original-resolution)`, 'too-large', file);
      const s = await loadSample(ds, i, undefined, { roi: withRoi });
      try {
        const small = await resizeImage(s.image, opts.size);
        const batch = tidy(() => small.permute([2, 0, 1]).unsqueeze(0).contiguous());
        small.dispose();
        try {
          await score(batch, s.mask!, s.roi, true);
        } finally {
          dispose(batch);
        }
        stems.push(ds.items[i].stem);
        bar?.tick();
      } finally {
        dispose([s.image, s.mask, s.roi]);
      }
    }
  }
  bar?.end();
  const n = opts.bootstrap ?? 1000;
  const out = new Map<string, EvalResult>();
  for (const c of columns) {
    const list = per.get(c)!;
    const total = new ConfusionMatrix(classes);
    for (const cm of list) total.merge(cm);
    out.set(c, {
      images: list.length,
      dice: total.diceMacro(),
      diceCI: bootstrapCI(list, (cm) => cm.diceMacro(), n, opts.seed ?? 0),
      iou: total.iouMacro(),
      iouCI: bootstrapCI(list, (cm) => cm.iouMacro(), n, (opts.seed ?? 0) + 1),
      dicePerClass: total.dicePerClass(),
      iouPerClass: total.iouPerClass(),
      perImage: list.map((cm, i) => ({ stem: stems[i], dice: cm.diceMacro() })),
      confusion: Array.from(total.counts),
      roi: withRoi,
    });
  }
  return out;
}
