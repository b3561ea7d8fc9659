/**
 * Training configuration: the paper's defaults, a JSON config file, and command-line
 * flags that override it. Everything needed to rebuild the model and its preprocessing
 * is stored in the run folder's config.json.
 *
 * The keys are declared once, in the zod schema TRAIN_CONFIG: the TrainConfig type is
 * derived from it, and config files, the merged settings and a run's config.json are
 * all checked against it. Unknown keys and wrong types are errors naming the key, the
 * value with its JSON type and the file ("'epochs' must be a positive integer, got "1"
 * (a string)"; "unknown key 'batch_size' (did you mean 'batchSize'?)").
 */
import { z } from 'zod';
import { fromFile } from '../util/paths';
import { ConfigError, checkSchema, integer, must, nonEmpty, readJsonObject } from '../util/schema';
import { closestKey } from '../util/suggest';
export { closestKey, ConfigError };
import { parseMaskMode } from '../data/classes';
import { PAPER_SIZE } from '../data/loader';
import { IMAGENET } from '../models/preprocess';
import { DEFAULT_CQG_WEIGHTS } from './losses';

// ---- schema building blocks: each leaf states what it must be, once ----

const nonNegative = (): z.ZodNumber => z.number(must('a non-negative number')).nonnegative();
const triple = (phrase: string, x: () => z.ZodNumber): z.ZodTuple<[z.ZodNumber, z.ZodNumber, z.ZodNumber]> =>
  z.tuple([x(), x(), x()], must(phrase));

export const TRAIN_MODE = z.enum(['baseline', 'aug', 'cqg'], must('one of baseline, aug, cqg'));
export type TrainMode = z.infer<typeof TRAIN_MODE>;
export const TRAIN_MODES: TrainMode[] = [...TRAIN_MODE.options];

const SIZE = z.tuple([integer(1), integer(1)], must('[H, W], two positive integers')).superRefine((s, ctx) => {
  if (s.some((v) => v % 32 !== 0)) {
    const fix = s.map((v) => Math.max(32, Math.round(v / 32) * 32));
    ctx.addIssue({ code: 'custom', message: `${s.join('x')} is not divisible by 32 (the U-Net's output stride); use for example ${fix.join('x')}` });
  }
});

const MASK_MODE = z.string(must("a mask mode: 'exact', 'threshold[:T]' or 'nearest'")).superRefine((s, ctx) => {
  try {
    parseMaskMode(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)}: ${(err as Error).message}` });
  }
});

const CQG_WEIGHTS = z.object({ geo: nonNegative(), aug: nonNegative(), diff: nonNegative() }, must('an object { "geo", "aug", "diff" }')).strict();

const PREPROCESSING = z.object({
  mean: triple('[r, g, b], three numbers', () => z.number(must('a number'))),
  std: triple('[r, g, b], three positive numbers', () => z.number(must('a positive number')).positive()),
}, must('an object { "mean": [r, g, b], "std": [r, g, b] }')).strict();

/** Every training setting: the one declaration of the config keys. */
export const TRAIN_CONFIG = z.object({
  /** training dataset (folder with images/ + masks/, or a COCO .json) */
  data: nonEmpty('the training dataset (--data)'),
  /** validation dataset; when absent, `valFraction` of `data` split by `seed` */
  val: nonEmpty().optional(),
  valFraction: z.number(must('a number in [0, 1)')).min(0).lt(1),
  /** class map file or 'paper' / 'binary'; default: the dataset's own classes.json */
  classes: nonEmpty().optional(),
  /** mask reading: 'exact' | 'threshold:T' | 'nearest' */
  maskMode: MASK_MODE,
  /** COCO image folder */
  images: nonEmpty().optional(),
  out: nonEmpty('the run folder (--out)'),
  mode: TRAIN_MODE,
  encoder: nonEmpty(),
  /** encoder or full-model weights (smp/timm/torchvision/efficientnet_pytorch names): a torch.save file or safetensors */
  encoderWeights: nonEmpty().optional(),
  /** [H, W], multiples of 32 (the paper's 512 x 768) */
  size: SIZE,
  batchSize: integer(1),
  epochs: integer(1),
  lr: z.number(must('a positive number')).positive(),
  seed: z.number(must('an integer')).int(),
  cqgWeights: CQG_WEIGHTS,
  /**
   * epochs over which the CQG consistency weight rises from 0 to cqgWeights.diff (the
   * sigmoid ramp-up exp(-5 (1 - t)^2) of Laine & Aila 2017, per step); 0 = the paper's
   * loss from the first step
   */
  cqgDiffWarmup: nonNegative(),
  classWeights: z.array(nonNegative(), must('a list of non-negative numbers, one per class')).optional(),
  /** which checkpoint is `model.safetensors`: lowest validation loss (as the reference) or highest Dice */
  bestBy: z.enum(['loss', 'dice'], must("'loss' or 'dice'")),
  /** stop an epoch after this many steps (smoke runs); 0 = whole epoch */
  maxStepsPerEpoch: integer(0),
  threads: integer(1).optional(),
  preprocessing: PREPROCESSING,
  /** data-parallel workers on this machine (cqseg train --nproc; the batch size is per worker) */
  nproc: integer(1).optional(),
  /** batch-norm statistics over every worker's samples (SyncBatchNorm) */
  syncBn: z.boolean(must('true or false')).optional(),
  /** seconds a collective (or the workers' rendezvous) may take before the job fails (default 300) */
  distTimeout: z.number(must('a positive number of seconds')).positive().optional(),
  /** 'auto' (default: the first GPU libtorch sees, else the CPU), 'cpu', 'cuda', 'cuda:N' */
  device: z.string(must("'auto', 'cpu', 'cuda' or 'cuda:N'")).regex(/^(auto|cpu|cuda(:\d+)?)$/, must("'auto', 'cpu', 'cuda' or 'cuda:N'")).optional(),
  /** fp32 (default), bf16 (autocast; CPU or CUDA), fp16 (autocast with dynamic loss scaling; CUDA) */
  precision: z.enum(['fp32', 'bf16', 'fp16'], must("'fp32', 'bf16' or 'fp16'")).optional(),
  /** CUDA: activations and convolution weights in the channels-last layout */
  channelsLast: z.boolean(must('true or false')).optional(),
}).strict();

export type TrainConfig = z.infer<typeof TRAIN_CONFIG>;

/** What a config file (or the experiment's "train" section) may hold: any subset, and some of the CQG weights. */
export const TRAIN_CONFIG_FILE = TRAIN_CONFIG.partial().extend({ cqgWeights: CQG_WEIGHTS.partial().optional() }).strict();
export type TrainConfigFile = z.infer<typeof TRAIN_CONFIG_FILE>;

/** A run folder's config.json: the training config plus what the trainer adds to rebuild the model. */
export const RUN_CONFIG = TRAIN_CONFIG.extend({
  /** absent from runs made before it existed (they ran without warm-up) */
  cqgDiffWarmup: nonNegative().optional(),
  model: z.object({
    arch: z.literal('unet', must("'unet'")),
    encoder: nonEmpty(),
    classes: integer(1),
    decoderChannels: z.array(integer(1), must('a list of positive integers')).optional(),
  }, must('an object { "arch": "unet", "encoder", "classes" }')).strict(),
  classNames: z.array(z.string(must('a string')), must('a non-empty list of class names')).min(1),
  libtorch: z.string(must('a string')).optional(),
  /** the BLAS library libtorch used (src/tensor/runtime.ts blasLibrary): figures depend on it */
  blas: z.string(must('a string')).optional(),
}).strict();
export type RunConfig = z.infer<typeof RUN_CONFIG>;

export const DEFAULT_CONFIG: Omit<TrainConfig, 'data' | 'out'> = {
  valFraction: 0.2,
  maskMode: 'exact',
  mode: 'cqg',
  encoder: 'efficientnet-b2',
  size: PAPER_SIZE,
  batchSize: 2,
  epochs: 15,
  lr: 1e-3,
  seed: 0,
  cqgWeights: DEFAULT_CQG_WEIGHTS,
  cqgDiffWarmup: 0,
  bestBy: 'loss',
  maxStepsPerEpoch: 0,
  preprocessing: IMAGENET,
};

// ---- the config itself ----

/** Checks a complete config; every message names the setting. Returns `c` itself. */
export function validateConfig(c: TrainConfig, where = 'training settings'): TrainConfig {
  checkSchema(TRAIN_CONFIG, c, where);
  return c;
}

/** The keys of a training config that name files or folders. */
export const TRAIN_PATH_KEYS = ['data', 'val', 'classes', 'images', 'out', 'encoderWeights'] as const;

/** Path keys of a config read from `file`, made relative to its folder (fromFile); 'paper'/'binary' class maps are names, not paths. */
export function resolveConfigPaths<C extends Partial<Record<(typeof TRAIN_PATH_KEYS)[number], string>>>(c: C, file: string): C {
  const out = { ...c };
  for (const k of TRAIN_PATH_KEYS) {
    const v = out[k];
    if (typeof v !== 'string' || (k === 'classes' && (v === 'paper' || v === 'binary'))) continue;
    (out as Record<string, string>)[k] = fromFile(file, v);
  }
  return out;
}

/** Reads and checks a training config file (any subset of the keys); its paths are relative to its folder. */
export function readConfigFile(file: string): TrainConfigFile {
  const json = readJsonObject(file, 'config file');
  checkSchema(TRAIN_CONFIG_FILE, json, `config file '${file}'`);
  return resolveConfigPaths(json as TrainConfigFile, file);
}

/** Defaults, then a JSON config file, then explicit overrides (flags; undefined values are ignored). */
export function resolveConfig(overrides: TrainConfigFile, file?: string): TrainConfig {
  const fromFile = file ? readConfigFile(file) : {};
  const given = stripUndefined(overrides);
  // key order as before (defaults first): the experiment runner fingerprints this object
  const merged = { ...DEFAULT_CONFIG, ...fromFile, ...given, cqgWeights: { ...DEFAULT_CQG_WEIGHTS, ...fromFile.cqgWeights, ...given.cqgWeights } };
  return validateConfig(merged as TrainConfig, file ? `training settings (config file '${file}' and flags)` : 'training settings');
}

/** Reads a run folder's config.json through RUN_CONFIG (the training keys plus model, classNames, libtorch, blas). */
export function readRunConfig(file: string): RunConfig {
  const json = readJsonObject(file, 'run config');
  checkSchema(RUN_CONFIG, json, `run config '${file}'`);
  return json as RunConfig;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
