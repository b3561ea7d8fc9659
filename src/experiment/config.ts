/**
 * The paper's experiment grid as a JSON config: train each mode on the source domain,
 * build a reference bank per model, evaluate every model on every domain under every
 * DCIN configuration.
 *
 * The keys are declared once, in EXPERIMENT_CONFIG (zod); its "train" section takes the
 * training config's keys (TRAIN_CONFIG_FILE, less data/val/out/mode, set per run).
 * Unknown keys and wrong types are errors naming the key and the file.
 */
import * as fs from 'fs';
import { z } from 'zod';
import { COLUMN_GRAMMAR, parseColumn, TTA_COLUMNS } from '../dcin/columns';
import { DCIN_MODES } from '../dcin/predict';
import { resolveConfigPaths, TRAIN_CONFIG_FILE, TRAIN_MODE, TRAIN_MODES } from '../train/config';
import { checkSchema, ConfigError, integer, must, nonEmpty, readJsonObject } from '../util/schema';
import { fromFile } from '../util/paths';

/** Columns: a DCIN mode, optionally with test-time adaptation (dcin/columns.ts): the paper's
 * five (none, exri, gris, lris, full), beyond the paper 'full-robust' (specular highlights
 * left out of the test image's Lab statistics), 'auto' (OOD gate, then the medoid of none,
 * gris and the transfers toward the 3 nearest training images; dcin/predict.ts),
 * 'auto-entropy' (lowest mean entropy among none, gris, lris, full), and AdaBN and flip
 * TTA alone and with auto (TTA_COLUMNS). */
const DCIN_COLUMN = z.string(must(`a column name, ${COLUMN_GRAMMAR}`)).superRefine((v, ctx) => {
  try {
    parseColumn(v);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
  }
});
/** A column of the grid: a DCIN mode with optional test-time adaptation (dcin/columns.ts's grammar). */
export type ColumnName = string;
export const DEFAULT_COLUMNS: ColumnName[] = [...DCIN_MODES, ...TTA_COLUMNS];
export const PAPER_COLUMNS: ColumnName[] = ['none', 'exri', 'gris', 'lris', 'full'];

export const EXPERIMENT_CONFIG = z.object({
  out: nonEmpty().default('experiment'),
  source: z.object({ train: nonEmpty('the training dataset'), val: nonEmpty('the validation dataset') }, must('an object { "train": DATASET, "val": DATASET }'))
    .strict().describe('{ "train": DATASET, "val": DATASET }, the source domain'),
  /** target domains: name -> labelled dataset */
  targets: z.record(nonEmpty(), must('an object { "NAME": DATASET, ... }')).default({}),
  modes: z.array(TRAIN_MODE, must('a non-empty list of baseline, aug, cqg')).min(1).default([...TRAIN_MODES]),
  /** training settings shared by the modes (data/out/mode are set per run) */
  train: TRAIN_CONFIG_FILE.omit({ data: true, val: true, out: true, mode: true }).strict().default({}),
  dcin: z.array(DCIN_COLUMN, must('a list of DCIN configurations')).default([...DEFAULT_COLUMNS])
    .refine((cols) => new Set(cols).size === cols.length, { message: 'a column is listed twice' }),
  /** the expert's reference image for ExRI */
  exri: z.string(must('an image path')).default(''),
  bootstrap: integer(0).default(1000),
  /** images per domain in the prediction grids */
  figureImages: integer(0).default(3),
  threads: integer(1).optional(),
}).strict();

export type ExperimentConfig = z.output<typeof EXPERIMENT_CONFIG>;
/** An experiment config as written: every key but "source" may be left out. */
export type ExperimentConfigInput = z.input<typeof EXPERIMENT_CONFIG>;

export class ExperimentConfigError extends ConfigError {
  constructor(message: string) {
    super(message, 'ERR_EXPERIMENT_CONFIG');
  }
}

const fail = (m: string): Error => new ExperimentConfigError(m);

export function loadExperimentConfig(file: string): ExperimentConfig {
  const raw = readJsonObject(file, 'experiment config', fail);
  // paths in the config are relative to the config file (fromFile), the train block's too
  const abs = (p: string): string => fromFile(file, p);
  const cfg = withDefaults(raw as ExperimentConfigInput, `experiment config '${file}'`);
  cfg.train = resolveConfigPaths(cfg.train, file);
  cfg.out = abs(cfg.out);
  cfg.source = { train: abs(cfg.source.train), val: abs(cfg.source.val) };
  cfg.targets = Object.fromEntries(Object.entries(cfg.targets).map(([k, v]) => [k, abs(v)]));
  cfg.exri = cfg.exri && abs(cfg.exri);
  return validateExperiment(cfg, `experiment config '${file}'`);
}

/** Checks keys and types against EXPERIMENT_CONFIG and fills in the defaults. */
export function withDefaults(raw: ExperimentConfigInput, where = 'experiment config'): ExperimentConfig {
  return checkSchema(EXPERIMENT_CONFIG, raw, where, fail);
}

/** What the schema cannot see: the datasets and the ExRI image exist. */
export function validateExperiment(cfg: ExperimentConfig, where = 'experiment config'): ExperimentConfig {
  const bad = (m: string): never => {
    throw new ExperimentConfigError(`${where}: ${m}`);
  };
  for (const p of [cfg.source.train, cfg.source.val, ...Object.values(cfg.targets)]) if (!fs.existsSync(p)) bad(`dataset '${p}' does not exist`);
  const exri = cfg.dcin.some((c) => parseColumn(c).dcin === 'exri');
  if (exri && !cfg.exri) bad("'exri' is required when 'dcin' holds 'exri': the expert's reference image");
  if (exri && !fs.existsSync(cfg.exri)) bad(`'exri' image '${cfg.exri}' does not exist (ExRI needs the expert's reference image)`);
  return cfg;
}
