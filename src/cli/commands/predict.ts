/** `cqseg predict`: segments images of any size with DCIN and writes mask, overlay and JSON per image. */
import * as fs from 'fs';
import * as path from 'path';
import { DataError, imageSize, isImageFile, readImage, readImageList, writeFileAtomic, writeImage } from '../../data';
import { BnStats, Column, disposeBank, domainBnStats, Embedder, EnsembleMode, needsBank, oodWarning, parseColumn, ReferenceBank, TTA_FLIPS } from '../../dcin';
import { exriStatsFor } from '../../dcin/exri';
import { disposePrediction, openBank, openEmbedder, openSession, overlay, predictImage, Session, toModelInput, writeMask } from '../../dcin/session';
import { ArgumentError, cat, dispose, setNumThreads, Tensor } from '../../tensor';
import { removeStaleTemps } from '../../util/atomic';
import { pixelLimit, pixelLimitProblem } from '../../util/memory';
import { checkOutputFolder, ensureFolder } from '../../util/paths';
import { Progress } from '../../util/progress';
import { deviceFlag, DEVICE_HELP, intFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg predict --model RUN [--refs BANK] [--dcin MODE] [--exri IMAGE] IMAGES... --out DIR

Segments each image (any size and aspect) after DCIN color normalization and writes,
per image STEM, into DIR:
  STEM_mask.png     class indices (single-channel PNG) at the image's original size
  STEM_overlay.png  the image with each class > 0 blended with its class color
  STEM.json         input, original size, DCIN mode, chosen references, the distance
                    to the training distribution and its flag (ood), per-class areas
                    (pixels, fraction) and confidence (mean max-probability)
The image is resized (lanczos3) to the run's input size for the model; the
probabilities are resized back with bilinear interpolation, then argmax (in bands:
the full-size probabilities are never held).

Memory: an image costs about 24 bytes a pixel at the peak; images larger than the
memory free allows (at most 16383x16383) are refused with their size and the limit.
The environment variable CQSEG_MAX_PIXELS sets another limit (in pixels).

Out-of-distribution warning: with --refs, whatever the mode, each image's distance to
the training images is measured (nearest neighbours in the bank's embedding space and
in Lab color statistics) against thresholds calibrated on the training images
themselves (the 99th percentile of their leave-one-out distances, stored in the bank);
an image beyond them is flagged in STEM.json ("ood") and a warning line goes to stderr.

IMAGES are image files, folders of images, or lists (.txt one path per line, .csv with
a path column).

options:
  --model RUN           trained run folder (config.json + model.safetensors)
  --refs BANK           reference bank from cqseg references (for gris, lris, full, auto,
                        auto-entropy; with any mode: the OOD distance and warning)
  --dcin MODE           none | exri | gris | lris | full (GRIS+LRIS) | auto | auto-entropy
                        (default full), optionally with test-time adaptation:
                        MODE[+adabn|+adabn-image][+flip] (none may be left out), e.g.
                        auto+flip, adabn, auto+adabn-image+flip:
                        adabn: BatchNorm statistics re-estimated on all the IMAGES given
                          (one extra pass over them first; give the whole target set)
                        adabn-image: per image, half source, half the image's own
                          statistics (--alpha)
                        flip: mean of the probabilities over the image and its mirror
                        Beyond the paper:
                        auto: an image inside the training distribution (not flagged)
                        is left as it is (none); one outside gets the medoid of none,
                        gris and the transfers toward its 3 nearest training images
                        (lris, lris-2, lris-3): the candidate whose labels agree most
                        with the others' (never the most confident: a model confidently
                        wrong on an unfamiliar device would win)
                        auto-entropy: among none, gris, lris, full, the lowest mean
                        predictive entropy (the former auto)
  --exri IMAGE          the expert's reference image (mode exri)
  --alpha A             adabn-image's weight of the image's own statistics (default 0.5)
  --ensemble E          softmax (default: mean of probabilities) | logits (the paper's
                        reference code: softmax of the mean of logits)
  --robust              leave specular highlights out of the test image's Lab statistics
  --robust-foreground   also leave out the pixels a first prediction without DCIN
                        assigns to classes > 0 (implies --robust)
  --embedder SPEC       encoder (default) | onnx:FILE: must be the bank's embedder
  --verify V            hash (default: re-hash every bank image) | exists | none
  --out DIR             output folder (files written atomically)
  --threads N           libtorch CPU threads
  ${DEVICE_HELP}
  --quiet               no progress bar
`;

const ENSEMBLES = ['softmax', 'logits'];
const VERIFY = ['hash', 'exists', 'none'];

/** The image files named by files, folders and list files, in order. */
export function expandInputs(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    if (!fs.existsSync(p)) throw new UsageError(`input '${p}' does not exist`, 1);
    const dir = fs.statSync(p).isDirectory();
    if (!dir && isImageFile(p)) out.push(p);
    else if (dir || /\.(txt|csv)$/i.test(p)) {
      const list = readImageList(p);
      if (list.length === 0) throw new UsageError(`input '${p}' names no images`, 1);
      out.push(...list);
    } else throw new UsageError(`input '${p}' is not an image (.jpg, .png, .webp, .tif, ...), a folder or a .txt/.csv list`, 1);
  }
  const stems = new Map<string, string>();
  for (const f of out) {
    const stem = path.parse(f).name;
    const prev = stems.get(stem);
    if (prev !== undefined) throw new UsageError(`inputs '${prev}' and '${f}' share the name '${stem}': their outputs would overwrite each other`, 1);
    stems.set(stem, f);
  }
  return out;
}

interface Options {
  column: Column;
  alpha?: number;
  out: string;
  ensemble: EnsembleMode;
  robust: boolean;
  robustForeground: boolean;
  exri?: string;
  limit: ReturnType<typeof pixelLimit>;
}

/** Predicts one image and writes its files; returns the OOD warning when it is flagged. */
interface Ctx {
  bank?: ReferenceBank;
  embedder?: Embedder;
  exriStats?: Tensor;
  /** for +adabn: the BatchNorm statistics of all the images to predict */
  domainStats?: BnStats;
}

/** The images' BatchNorm statistics for +adabn, in batches of 4 at the model's size (as evaluate). */
async function imagesBnStats(s: Session, files: string[], o: Options): Promise<BnStats> {
  async function* batches(): AsyncGenerator<Tensor> {
    for (let i = 0; i < files.length; i += 4) {
      const xs: Tensor[] = [];
      try {
        for (const file of files.slice(i, i + 4)) {
          const { height, width } = await imageSize(file);
          const tooLarge = pixelLimitProblem(height, width, o.limit);
          if (tooLarge) throw new DataError(`${file}: ${tooLarge}`, 'too-large', file);
          const image = await readImage(file);
          try {
            xs.push(await toModelInput(image, s.info.size));
          } finally {
            image.dispose();
          }
        }
        yield cat(xs, 0);
      } finally {
        dispose(xs);
      }
    }
  }
  return domainBnStats(s.model, s.forward, batches(), { disposeBatches: true });
}

async function predictOne(file: string, s: Session, ctx: Ctx, o: Options): Promise<string | null> {
  const stem = path.parse(file).name;
  const { height, width } = await imageSize(file);
  const tooLarge = pixelLimitProblem(height, width, o.limit);
  if (tooLarge) throw new DataError(`${file}: ${tooLarge}`, 'too-large', file);
  const image = await readImage(file);
  try {
    const p = await predictImage(s, image, {
      mode: o.column.name, bank: ctx.bank, embedder: ctx.embedder, exriStats: ctx.exriStats, ensemble: o.ensemble, robust: o.robust, robustForeground: o.robustForeground,
      domainStats: ctx.domainStats, alpha: o.alpha,
    });
    const ov = overlay(image, p.labels, s.palette);
    try {
      const mask = path.join(o.out, `${stem}_mask.png`);
      const over = path.join(o.out, `${stem}_overlay.png`);
      await writeMask(mask, p.labels);
      await writeImage(over, ov);
      const json = {
        input: path.resolve(file),
        size: { height: image.shape[0], width: image.shape[1] },
        model: { run: path.resolve(s.runDir), size: s.info.size, weightsSha256: s.weightsSha256 },
        dcin: {
          mode: o.column.dcin, ensemble: o.ensemble, robust: o.robust || o.robustForeground, robustForeground: o.robustForeground, exri: o.exri ? path.resolve(o.exri) : undefined,
        },
        tta: o.column.adapt || o.column.flip ? {
          column: o.column.name,
          adapt: o.column.adapt,
          ...(o.column.adapt === 'adabn' ? { adabnImages: ctx.domainStats?.images } : {}),
          ...(o.column.adapt === 'adabn-image' ? { alpha: o.alpha ?? 0.5 } : {}),
          flips: o.column.flip ? [...TTA_FLIPS] : undefined,
        } : undefined,
        references: p.summary.references,
        ood: p.summary.ood,
        confidence: p.summary.confidence,
        classes: p.summary.classes,
        outputs: { mask: path.basename(mask), overlay: path.basename(over) },
        mapping: 'probabilities resized bilinearly (align_corners false) from the model size to the original size, then argmax',
      };
      await writeFileAtomic(path.join(o.out, `${stem}.json`), JSON.stringify(json, null, 2) + '\n');
      return p.summary.ood.flagged ? oodWarning(file, p.summary.ood) : null;
    } finally {
      ov.dispose();
      disposePrediction(p);
    }
  } finally {
    image.dispose();
  }
}

function parse(args: string[]): { o: Options; flags: Record<string, unknown>; inputs: string[] } {
  const { flags, positionals } = parseArgs(args, {
    model: {}, refs: {}, dcin: {}, exri: {}, alpha: {}, ensemble: {}, robust: { type: 'boolean' }, 'robust-foreground': { type: 'boolean' },
    embedder: {}, verify: {}, out: {}, threads: {}, device: {}, quiet: { type: 'boolean' },
  });
  const mode = (flags.dcin as string | undefined) ?? 'full';
  let column: Column;
  try {
    column = parseColumn(mode);
  } catch (err) {
    if (err instanceof ArgumentError) throw new UsageError(`--dcin: ${err.message}`);
    throw err;
  }
  const alpha = flags.alpha === undefined ? undefined : Number(flags.alpha);
  if (alpha !== undefined && !(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be a number from 0 to 1, got '${String(flags.alpha)}'`);
  const ensemble = (flags.ensemble as string | undefined) ?? 'softmax';
  if (!ENSEMBLES.includes(ensemble)) throw new UsageError(`--ensemble must be softmax or logits, got '${ensemble}'`);
  if (flags.verify !== undefined && !VERIFY.includes(flags.verify as string)) throw new UsageError(`--verify must be one of ${VERIFY.join(', ')}, got '${String(flags.verify)}'`);
  for (const k of ['model', 'out']) if (typeof flags[k] !== 'string') throw new UsageError(`--${k} is required (see cqseg predict --help)`);
  if (positionals.length === 0) throw new UsageError('no IMAGES given (files, folders or .txt/.csv lists)');
  if (column.dcin === 'exri' && typeof flags.exri !== 'string') throw new UsageError("--dcin exri needs --exri IMAGE (the expert's reference image)");
  if (needsBank([column]) && typeof flags.refs !== 'string') {
    throw new UsageError(`--dcin ${mode} needs --refs BANK (build one with cqseg references --data TRAIN --model RUN --out BANK)`);
  }
  const o: Options = {
    column, alpha, out: flags.out as string, ensemble: ensemble as EnsembleMode,
    robust: Boolean(flags.robust), robustForeground: Boolean(flags['robust-foreground']), exri: flags.exri as string | undefined,
    limit: pixelLimitOrUsage(),
  };
  return { o, flags, inputs: positionals };
}

function pixelLimitOrUsage(): ReturnType<typeof pixelLimit> {
  try {
    return pixelLimit();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export const command: Command = {
  name: 'predict',
  summary: 'segment images with DCIN (none, exri, gris, lris, full, auto, auto-entropy) and test-time adaptation; mask, overlay, JSON per image, OOD warning',
  help: HELP,
  async run(args) {
    const { o, flags, inputs } = parse(args);
    const threads = intFlag(flags.threads, 'threads');
    if (threads !== undefined) setNumThreads(threads);
    const device = deviceFlag(flags.device, Boolean(flags.quiet)); // a usage error before any file is read
    const files = expandInputs(inputs);
    const out = { what: 'output folder', flag: '--out', makeError: (m: string) => new UsageError(m, 1) };
    checkOutputFolder(o.out, out);
    let s: Session | undefined;
    const ctx: Ctx = {};
    try {
      s = openSession(flags.model as string, { device });
      if (o.column.dcin === 'exri') {
        if (!fs.existsSync(o.exri!)) throw new UsageError(`--exri image '${o.exri}' does not exist`, 1);
        ctx.exriStats = await exriStatsFor(o.exri!, s);
      }
      if (typeof flags.refs === 'string') {
        // every mode uses the bank for the OOD distance; lris, full and the auto modes also for LRIS
        const needLris = ['lris', 'full', 'full-robust', 'auto', 'auto-entropy'].includes(o.column.dcin);
        let spec = flags.embedder as string | undefined;
        if (spec === undefined) {
          // the bank's embedder kind decides the default; an ONNX one needs its file
          const peek = openBank(flags.refs, { verify: 'none' });
          const onnx = peek.embedder.startsWith('onnx:');
          disposeBank(peek);
          if (onnx && needLris) throw new UsageError(`${flags.refs} was built with an ONNX embedder: pass --embedder onnx:FILE (the same model)`, 1);
          spec = onnx ? undefined : 'encoder';
        }
        if (spec !== undefined) ctx.embedder = await openEmbedder(spec, s);
        ctx.bank = openBank(flags.refs, { embedder: ctx.embedder, verify: (flags.verify as 'hash' | 'exists' | 'none' | undefined) ?? 'hash', device: s.device });
      }
      ensureFolder(o.out, out);
      removeStaleTemps(o.out); // left by a predict killed while writing
      if (o.column.adapt === 'adabn') ctx.domainStats = await imagesBnStats(s, files, o);
      const bar = flags.quiet ? undefined : new Progress(`predict ${o.column.name}`, files.length);
      const failed: string[] = [];
      const warnings: string[] = [];
      for (let i = 0; i < files.length; i++) {
        try {
          const w = await predictOne(files[i], s, ctx, o);
          if (w) warnings.push(w);
        } catch (err) {
          failed.push(`${files[i]}: ${(err as Error).message}`);
        }
        bar?.update(i + 1);
      }
      // after the bar, one line each: the bar redraws its line in place
      for (const w of warnings) process.stderr.write(`cqseg predict: ${w}\n`);
      if (failed.length > 0) {
        process.stderr.write(`cqseg predict: ${failed.length} of ${files.length} images failed:\n${failed.map((f) => `  ${f}`).join('\n')}\n`);
        return 1;
      }
      process.stdout.write(`wrote ${files.length} prediction(s) (${o.column.name}) to ${o.out}\n`);
      if (ctx.bank && !ctx.bank.ood) process.stderr.write(`cqseg predict: note: ${flags.refs as string}: the bank has no OOD calibration (version 1): distances reported, no flag; rebuild it with cqseg references\n`);
      return 0;
    } finally {
      dispose([ctx.exriStats]);
      ctx.domainStats?.dispose();
      if (ctx.bank) disposeBank(ctx.bank);
      ctx.embedder?.dispose();
      s?.dispose();
    }
  },
};
