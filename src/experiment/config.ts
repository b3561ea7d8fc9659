/**
 * The paper's experiment grid as a JSON config: train each mode on the source domain,
 * build a reference bank per model, evaluate every model on every domain under every
 * DCIN configuration.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_CONFIG, TrainConfig, TrainMode } from '../train/config';

/** DCIN columns: the paper's five, and beyond the paper 'full-robust' (specular highlights
 * left out of the test image's Lab statistics) and 'auto' (lowest mean entropy). */
export type DcinColumn = 'none' | 'exri' | 'gris' | 'lris' | 'full' | 'full-robust' | 'auto';
export const DCIN_COLUMNS: DcinColumn[] = ['none', 'exri', 'gris', 'lris', 'full', 'full-robust', 'auto'];
export const PAPER_COLUMNS: DcinColumn[] = ['none', 'exri', 'gris', 'lris', 'full'];

export interface ExperimentConfig {
  out: string;
  source: { train: string; val: string };
  /** target domains: name -> labelled dataset */
  targets: Record<string, string>;
  modes: TrainMode[];
  /** training settings shared by the modes (data/out/mode are set per run) */
  train: Partial<Omit<TrainConfig, 'data' | 'val' | 'out' | 'mode'>>;
  dcin: DcinColumn[];
  /** the expert's reference image for ExRI */
  exri: string;
  bootstrap: number;
  /** images per domain in the prediction grids */
  figureImages: number;
  threads?: number;
}

export class ExperimentConfigError extends Error {
  code = 'ERR_CONFIG';
}

export function loadExperimentConfig(file: string): ExperimentConfig {
  let raw: Partial<ExperimentConfig>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ExperimentConfig>;
  } catch (err) {
    throw new ExperimentConfigError(`experiment config '${file}': ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`);
  }
  // paths in the config are relative to the config file
  const base = path.dirname(path.resolve(file));
  const abs = (p: string): string => path.resolve(base, p);
  const cfg = withDefaults(raw);
  cfg.out = abs(cfg.out);
  cfg.source = { train: abs(cfg.source.train), val: abs(cfg.source.val) };
  cfg.targets = Object.fromEntries(Object.entries(cfg.targets).map(([k, v]) => [k, abs(v)]));
  cfg.exri = abs(cfg.exri);
  return validateExperiment(cfg, file);
}

export function withDefaults(raw: Partial<ExperimentConfig>): ExperimentConfig {
  return {
    out: raw.out ?? 'experiment',
    source: raw.source ?? { train: '', val: '' },
    targets: raw.targets ?? {},
    modes: raw.modes ?? ['baseline', 'aug', 'cqg'],
    train: raw.train ?? {},
    dcin: raw.dcin ?? DCIN_COLUMNS,
    exri: raw.exri ?? '',
    bootstrap: raw.bootstrap ?? 1000,
    figureImages: raw.figureImages ?? 3,
    threads: raw.threads,
  };
}

export function validateExperiment(cfg: ExperimentConfig, where = 'experiment config'): ExperimentConfig {
  const bad = (m: string): never => {
    throw new ExperimentConfigError(`${where}: ${m}`);
  };
  if (!cfg.source.train || !cfg.source.val) bad("'source' needs { train, val } datasets");
  for (const p of [cfg.source.train, cfg.source.val, ...Object.values(cfg.targets)]) if (!fs.existsSync(p)) bad(`dataset '${p}' does not exist`);
  if (cfg.modes.length === 0) bad("'modes' is empty");
  for (const d of cfg.dcin) if (!DCIN_COLUMNS.includes(d)) bad(`unknown DCIN configuration '${d}'; known: ${DCIN_COLUMNS.join(', ')}`);
  if (cfg.dcin.includes('exri') && !fs.existsSync(cfg.exri)) bad(`'exri' image '${cfg.exri}' does not exist (ExRI needs the expert's reference image)`);
  const size = cfg.train.size ?? DEFAULT_CONFIG.size;
  if (size.some((s) => s % 32 !== 0)) bad(`'train.size' ${size.join('x')} is not divisible by 32`);
  return cfg;
}
