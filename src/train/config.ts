/**
 * Training configuration: the paper's defaults, a JSON config file, and command-line
 * flags that override it. Everything needed to rebuild the model and its preprocessing
 * is stored in the run folder's config.json.
 */
import * as fs from 'fs';
import { IMAGENET, Preprocessing } from '../models/preprocess';
import { CQGWeights, DEFAULT_CQG_WEIGHTS } from './losses';

export type TrainMode = 'baseline' | 'aug' | 'cqg';
export const TRAIN_MODES: TrainMode[] = ['baseline', 'aug', 'cqg'];

export interface TrainConfig {
  /** training dataset (folder with images/ + masks/, or a COCO .json) */
  data: string;
  /** validation dataset; when absent, `valFraction` of `data` split by `seed` */
  val?: string;
  valFraction: number;
  /** class map file or 'paper' / 'binary'; default: the dataset's own classes.json */
  classes?: string;
  /** mask reading: 'exact' | 'threshold:T' | 'nearest' */
  maskMode: string;
  /** COCO image folder */
  images?: string;
  out: string;
  mode: TrainMode;
  encoder: string;
  /** safetensors of encoder or full-model weights (smp/timm/torchvision names) */
  encoderWeights?: string;
  /** [H, W], multiples of 32 (the paper's 512 x 768) */
  size: [number, number];
  batchSize: number;
  epochs: number;
  lr: number;
  seed: number;
  cqgWeights: CQGWeights;
  classWeights?: number[];
  /** which checkpoint is `model.safetensors`: lowest validation loss (as the reference) or highest Dice */
  bestBy: 'loss' | 'dice';
  /** stop an epoch after this many steps (smoke runs); 0 = whole epoch */
  maxStepsPerEpoch: number;
  threads?: number;
  preprocessing: Preprocessing;
}

export const DEFAULT_CONFIG: Omit<TrainConfig, 'data' | 'out'> = {
  valFraction: 0.2,
  maskMode: 'exact',
  mode: 'cqg',
  encoder: 'efficientnet-b2',
  size: [512, 768],
  batchSize: 2,
  epochs: 15,
  lr: 1e-3,
  seed: 0,
  cqgWeights: DEFAULT_CQG_WEIGHTS,
  bestBy: 'loss',
  maxStepsPerEpoch: 0,
  preprocessing: IMAGENET,
};

export class ConfigError extends Error {
  code = 'ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Checks a complete config; every message names the setting. */
export function validateConfig(c: TrainConfig): TrainConfig {
  if (!c.data) throw new ConfigError("'data' is required: the training dataset");
  if (!c.out) throw new ConfigError("'out' is required: the run folder");
  if (!TRAIN_MODES.includes(c.mode)) throw new ConfigError(`'mode' must be one of ${TRAIN_MODES.join(', ')}, got '${c.mode}'`);
  if (!Array.isArray(c.size) || c.size.length !== 2 || c.size.some((s) => !Number.isInteger(s) || s <= 0)) {
    throw new ConfigError(`'size' must be [H, W] positive integers, got ${JSON.stringify(c.size)}`);
  }
  if (c.size.some((s) => s % 32 !== 0)) {
    const fix = c.size.map((s) => Math.max(32, Math.round(s / 32) * 32));
    throw new ConfigError(`'size' ${c.size.join('x')} is not divisible by 32 (the U-Net's output stride); use for example ${fix.join('x')}`);
  }
  for (const k of ['batchSize', 'epochs'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new ConfigError(`'${k}' must be a positive integer, got ${c[k]}`);
  }
  if (!(c.lr > 0)) throw new ConfigError(`'lr' must be positive, got ${c.lr}`);
  if (!(c.valFraction >= 0 && c.valFraction < 1)) throw new ConfigError(`'valFraction' must be in [0, 1), got ${c.valFraction}`);
  if (!['loss', 'dice'].includes(c.bestBy)) throw new ConfigError(`'bestBy' must be 'loss' or 'dice', got '${c.bestBy}'`);
  return c;
}

/** Defaults, then a JSON config file, then explicit overrides (flags). */
export function resolveConfig(overrides: Partial<TrainConfig>, file?: string): TrainConfig {
  let fromFile: Partial<TrainConfig> = {};
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`config file '${file}' cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
    try {
      fromFile = JSON.parse(text) as Partial<TrainConfig>;
    } catch (err) {
      throw new ConfigError(`config file '${file}' is not valid JSON: ${(err as Error).message}`);
    }
  }
  const merged = { ...DEFAULT_CONFIG, ...fromFile, ...stripUndefined(overrides) } as TrainConfig;
  merged.cqgWeights = { ...DEFAULT_CQG_WEIGHTS, ...(fromFile.cqgWeights ?? {}), ...(overrides.cqgWeights ?? {}) };
  return validateConfig(merged);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
