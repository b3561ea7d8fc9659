/**
 * A trained run opened for DCIN prediction: the model, its preprocessing, an embedder
 * whose identity is tied to the run's weights, the class palette, and helpers that
 * take one image of any size and aspect through DCIN and back to its own size.
 * `cqseg references` and `cqseg predict` are thin wrappers around this file.
 *
 * Sizes: every image (bank references, the ExRI image, test images) is resized to the
 * run's input size [H, W] with lanczos3 (as the training loader does) before its Lab
 * statistics, histogram, embedding and color transfer are computed, so references and
 * test images are compared as the model sees them. The model-size probabilities are
 * mapped back to the image's original size by bilinear interpolation (align_corners
 * false) of the probabilities, then argmax; the confidence figures use the same
 * interpolated probabilities. Both are made in bands (eval/upsample.ts), as is the
 * overlay, so a large image costs little more than its own pixels.
 *
 *   const s = await openSession('runs/cqg');
 *   const bank = openBankFor('bank.safetensors', s, { needEmbedder: true });
 *   const img = await readImage('x.jpg');
 *   const p = await predictImage(s, img, { mode: 'full', bank });
 *   // p.labels (H, W) uint8 at the image's size; p.summary: areas, confidence and the
 *   // OOD distance and flag (whenever a bank is given, whatever the mode)
 *   disposePrediction(p); disposeBank(bank); s.dispose();
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { LabTransferOptions } from '../color';
import { loadClassMap, readImage, resizeImage } from '../data';
import { upsampleArgmax } from '../eval/upsample';
import { normalize } from '../models/preprocess';
import { loadRun, RunError, RunInfo } from '../train/run';
import { readRunConfig } from '../train/config';
import { Unet } from '../models/unet/model';
import { BankError, buildBank, BuildOptions, loadBank, disposeBank, ReferenceBank } from './bank';
import { Embedder, EncoderEmbedder, OnnxEmbedder } from './embedders';
import { EnsembleMode } from './ensemble';
import { oodReport, OodReport } from './ood';
import { parseColumn, predictColumns } from './columns';
import { DcinMode, ENTROPY_CANDIDATES } from './predict';
import { BnStats } from './tta';
import { paletteColor, Rgb } from './overlay';

export { DEFAULT_PALETTE, overlay, writeMask } from './overlay';
export type { Rgb } from './overlay';

/** 'encoder' (the run's own encoder) or 'onnx:FILE' (an ONNX model with FILE.json beside it). */
export type EmbedderSpec = string;

export interface Session {
  runDir: string;
  info: RunInfo;
  model: Unet;
  /** sha256 of the run's model.safetensors */
  weightsSha256: string;
  /** one color per class */
  palette: Rgb[];
  /** where the model computes ('cpu', 'cuda:0'; openSession's `device`) */
  device: string;
  /** uint8 (N, 3, H, W) at info.size, on any device -> logits (N, C, H, W) on `device` */
  forward(images: T.Tensor): T.Tensor;
  dispose(): void;
}

const sha256File = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/**
 * The class colors: those of the run's class map (config.json `classes`, else the
 * training set's classes.json) when it gives one per class, else the fixed palette.
 */
function runPalette(runDir: string, classes: number): Rgb[] {
  const fallback = Array.from({ length: classes }, (_, i) => paletteColor(i));
  try {
    const cfg = readRunConfig(path.join(runDir, 'config.json'));
    let spec = cfg.classes;
    if (!spec && cfg.data && fs.existsSync(path.join(cfg.data, 'classes.json'))) spec = path.join(cfg.data, 'classes.json');
    if (!spec) return fallback;
    const map = loadClassMap(spec);
    if (map.classes.length !== classes) return fallback;
    return map.classes.map((c, i) => c.color ?? fallback[i]);
  } catch {
    return fallback; // colors are cosmetic: a moved or broken class map only loses them
  }
}

/**
 * Opens a run folder (config.json + model.safetensors) for prediction, in eval mode, on
 * `device` (a resolved device: tensor/runtime.ts resolveDevice; default the CPU).
 */
export function openSession(runDir: string, opts: { device?: string } = {}): Session {
  if (!fs.existsSync(runDir)) throw new RunError(`model folder '${runDir}' does not exist (expected a cqseg run folder with config.json and model.safetensors)`);
  const weights = path.join(runDir, 'model.safetensors');
  const { info, model } = loadRun(runDir);
  const device = opts.device ?? 'cpu';
  if (device !== 'cpu') model.to(device);
  const weightsSha256 = sha256File(weights);
  return {
    runDir, info, model, weightsSha256, device,
    palette: runPalette(runDir, info.model.classes),
    forward: (x) => T.tidy(() => model.forward(normalize(x.to(device), info.preprocessing))), // an alias where x is there already
    dispose: () => model.dispose(),
  };
}

/**
 * The run's encoder as an LRIS embedder. Its id names the weights (the first 16 hex
 * digits of model.safetensors' sha256) and the preprocessing, so a bank built with
 * another model is refused. Same id as the experiment runner's.
 */
export function encoderEmbedder(model: Unet, info: RunInfo, weightsSha256: string): EncoderEmbedder {
  return new EncoderEmbedder(model.encoder, { id: `encoder:${weightsSha256.slice(0, 16)}`, mean: info.preprocessing.mean, std: info.preprocessing.std, input: info.size });
}

/** An embedder from its spec: 'encoder' or 'onnx:FILE'. */
export async function openEmbedder(spec: EmbedderSpec, s: Session): Promise<Embedder> {
  if (spec === 'encoder') return encoderEmbedder(s.model, s.info, s.weightsSha256);
  if (spec.startsWith('onnx:') && spec.length > 5) return OnnxEmbedder.load(spec.slice(5));
  throw new ArgumentError(`embedder must be 'encoder' or 'onnx:FILE', got '${spec}'`);
}

/** uint8 (H, W, 3) at any size -> uint8 (1, 3, H', W') at the run's input size (lanczos3). */
export async function toModelInput(image: T.Tensor, size: [number, number]): Promise<T.Tensor> {
  if (image.ndim !== 3 || image.shape[2] !== 3 || image.dtype !== 'uint8') {
    throw new ArgumentError(`expected a uint8 (H, W, 3) RGB image, got ${image.dtype} [${image.shape.join(',')}]`);
  }
  const same = image.shape[0] === size[0] && image.shape[1] === size[1];
  const r = same ? image : await resizeImage(image, size);
  try {
    return T.tidy(() => r.permute([2, 0, 1]).unsqueeze(0).contiguous());
  } finally {
    if (!same) r.dispose();
  }
}

/** Reads an image file at the run's input size, as (H, W, 3) uint8. */
export function readAtModelSize(file: string, s: Session): Promise<T.Tensor> {
  return readImage(file, { size: s.info.size });
}

/**
 * Builds a reference bank over training images with the session's model (embedder
 * 'encoder') or another embedder; images are read at the run's input size.
 */
export async function buildBankFor(paths: string[], s: Session, embedder: Embedder, opts: BuildOptions = {}): Promise<ReferenceBank> {
  return buildBank(paths, (p) => readAtModelSize(p, s), embedder, opts);
}

export interface OpenBankOptions {
  /** the embedder in use; when given, a bank built by another one is refused */
  embedder?: Embedder;
  verify?: 'hash' | 'exists' | 'none';
  /** where its tensors go (the session's device; default the CPU) */
  device?: string;
}

/** Loads a bank and refuses it (BankError) when its images changed or its embedder differs. */
export function openBank(file: string, opts: OpenBankOptions = {}): ReferenceBank {
  const bank = loadBank(file, { verify: opts.verify ?? 'hash' });
  const want = opts.embedder?.id;
  if (want !== undefined && want !== bank.embedder) {
    disposeBank(bank);
    const other = bank.embedder.startsWith('encoder:') && want.startsWith('encoder:') ? ' (a bank made with another model\'s weights)' : '';
    throw new BankError(`${file}: stale bank: built with embedder ${bank.embedder}, but ${want} is in use${other}; rebuild it with cqseg references --model RUN --out ${file}`);
  }
  return moveBank(bank, opts.device ?? 'cpu');
}

/** Moves a bank's tensors to `device` (in place; returns the bank). */
export function moveBank(bank: ReferenceBank, device: string): ReferenceBank {
  for (const k of ['histograms', 'embeddings', 'labStats'] as const) bank[k] = T.moveTo(bank[k], device);
  return bank;
}

export interface PredictImageOptions {
  /** a DCIN mode, or a column with test-time adaptation: DCIN[+adabn|+adabn-image][+flip] (columns.ts) */
  mode: DcinMode | string;
  /** the domain's BatchNorm statistics, for '+adabn' (domainBnStats over the images to predict) */
  domainStats?: BnStats;
  /** '+adabn-image's weight of the image's own statistics (default 0.5) */
  alpha?: number;
  bank?: ReferenceBank;
  embedder?: Embedder;
  exriStats?: T.Tensor;
  /** 'softmax' (default): mean of probabilities; 'logits': the reference's mean of logits */
  ensemble?: EnsembleMode;
  /** leave specular highlights out of the test image's Lab statistics */
  robust?: boolean;
  /** also leave out the pixels a first prediction without DCIN assigns to classes > 0 (implies robust) */
  robustForeground?: boolean;
}

export interface ClassSummary {
  index: number;
  name: string;
  /** pixels of this class in the mask at the original size */
  pixels: number;
  fraction: number;
  /** mean max-probability over this class's pixels (null when it has none) */
  confidence: number | null;
}

export interface PredictionSummary {
  /** the column: a DCIN mode, with its test-time adaptation if any */
  mode: string;
  references: {
    gris?: { index: number; path: string };
    lris?: { index: number; path: string };
    /**
     * auto: the rule, the choice, why ('in distribution' or 'agreement'), each candidate's
     * agreement with the others, the LRIS references (lris, lris-2, lris-3);
     * auto-entropy: the rule, the choice, each candidate's mean entropy
     */
    auto?: {
      rule: string; choice: string; reason?: string; agreement?: Record<string, number> | null;
      neighbours?: { index: number; path: string }[]; entropies?: Record<string, number>;
    };
  };
  /** distance to the training distribution and the flag (ood.ts); its note says what is missing */
  ood: OodReport;
  classes: ClassSummary[];
  /** mean max-probability over the whole image */
  confidence: number;
}

export interface ImagePrediction {
  /** (1, C, H', W') float32 probabilities at the model's size */
  probs: T.Tensor;
  /** (H, W) uint8 class indices at the image's original size */
  labels: T.Tensor;
  summary: PredictionSummary;
}

const refOf = (bank: ReferenceBank, i: number): { index: number; path: string } => ({ index: i, path: bank.images[i].path });

/** First pass without DCIN: (1, H', W') bool, the pixels predicted as a class > 0. */
function foregroundOf(s: Session, x: T.Tensor): T.Tensor {
  return T.tidy(() => T.noGrad(() => T.argmax(s.forward(x), 1).gt(0)));
}

/**
 * Bilinear upsampling of probabilities to (H, W), argmax, areas and confidence, in
 * bands (eval/upsample.ts): the (C, H, W) probabilities are never held.
 */
function mapBack(probs: T.Tensor, size: [number, number], names: string[]): { labels: T.Tensor; classes: ClassSummary[]; confidence: number } {
  const c = probs.shape[1];
  const counts = new Float64Array(c);
  const sums = new Float64Array(c);
  const labels = upsampleArgmax(probs, size, (b) => {
    const flat = b.labels.reshape([-1]);
    const k = T.bincount(flat, undefined, c).toArray();
    const sm = T.bincount(flat, b.maxProb.reshape([-1]).to('float64'), c).toArray();
    for (let i = 0; i < c; i++) {
      counts[i] += k[i];
      sums[i] += sm[i];
    }
  });
  const total = size[0] * size[1];
  const classes = Array.from(counts, (n, i) => ({
    index: i, name: names[i] ?? `class ${i}`, pixels: n, fraction: n / total, confidence: n > 0 ? sums[i] / n : null,
  }));
  return { labels, classes, confidence: sums.reduce((a, b) => a + b, 0) / total };
}

/**
 * Predicts one uint8 (H, W, 3) image of any size under a DCIN mode and maps the
 * result back to (H, W). The caller disposes `probs` and `labels` (disposePrediction).
 */
export async function predictImage(s: Session, image: T.Tensor, opts: PredictImageOptions): Promise<ImagePrediction> {
  return (await predictImages(s, [image], opts))[0];
}

/**
 * predictImage for several images at once: one batch through the model and DCIN (the
 * same values as one at a time: every op is per image, batch norm in eval mode), each
 * result mapped back to its own image's size. `cqseg serve` batches concurrent requests
 * this way.
 */
export async function predictImages(s: Session, images: T.Tensor[], opts: PredictImageOptions): Promise<ImagePrediction[]> {
  const col = parseColumn(opts.mode);
  const inputs: T.Tensor[] = [];
  let x: T.Tensor | undefined;
  let exclude: T.Tensor | undefined;
  try {
    for (const image of images) inputs.push(await toModelInput(image, s.info.size));
    x = inputs.length === 1 ? inputs[0] : T.cat(inputs, 0);
    x = T.moveTo(x, s.device); // the batch moves to the device once (an input moved is freed; the finally frees it again, harmlessly)
    let transfer: LabTransferOptions | undefined;
    if (opts.robust || opts.robustForeground) {
      transfer = { excludeSpecular: true };
      if (opts.robustForeground && col.dcin !== 'none') {
        exclude = foregroundOf(s, x);
        transfer.exclude = exclude;
      }
    }
    const xb = x;
    const r = (await T.noGradAsync(() => predictColumns(xb, [col], {
      net: s.model, forward: s.forward, bank: opts.bank, embedder: opts.embedder, exriStats: opts.exriStats, ensemble: opts.ensemble, transfer,
      domainStats: opts.domainStats, alpha: opts.alpha, ood: opts.bank !== undefined,
    }))).get(col.name)!;
    const out: ImagePrediction[] = [];
    try {
      images.forEach((image, k) => {
        const refs: PredictionSummary['references'] = {};
        if (r.gris !== undefined) refs.gris = refOf(opts.bank!, r.gris);
        if (r.lris !== undefined) refs.lris = refOf(opts.bank!, r.lris[k]);
        if (r.auto) {
          const a = r.auto;
          refs.auto = a.rule === 'entropy'
            ? { rule: a.rule, choice: a.choice[k], entropies: Object.fromEntries(ENTROPY_CANDIDATES.map((n, j) => [n, a.entropies![j][k]])) }
            : { rule: a.rule, choice: a.choice[k], reason: a.reason![k], agreement: a.agreement![k], neighbours: a.neighbours![k].map((i) => refOf(opts.bank!, i)) };
        }
        const ood = oodReport(r.ood?.[k], opts.bank?.ood);
        const probs = images.length === 1 ? r.probs : T.tidy(() => r.probs.narrow(0, k, 1).contiguous());
        try {
          const back = mapBack(probs, [image.shape[0], image.shape[1]], s.info.classNames);
          out.push({ probs, labels: back.labels, summary: { mode: opts.mode, references: refs, ood, classes: back.classes, confidence: back.confidence } });
        } catch (e) {
          if (probs !== r.probs) probs.dispose();
          throw e;
        }
      });
    } catch (e) {
      out.forEach(disposePrediction);
      if (images.length > 1 || out.length === 0) r.probs.dispose();
      throw e;
    }
    if (images.length > 1) r.probs.dispose();
    return out;
  } finally {
    T.dispose([...inputs, exclude, ...(x !== undefined && !inputs.includes(x) ? [x] : [])]);
  }
}

export function disposePrediction(p: ImagePrediction): void {
  T.dispose([p.probs, p.labels]);
}

export { disposeBank };
