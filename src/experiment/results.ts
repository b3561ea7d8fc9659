/** What an experiment produces (results.json): per cell (model x domain x column) figures, curves, OOD shares. */
import type { OodScore } from '../dcin';
import type { EvalResult } from '../eval/evaluate';
import type { TrainMode } from '../train/config';
import type { EpochMetrics } from '../train/trainer';
import type { ColumnName, ExperimentConfig } from './config';

export interface CellResult extends EvalResult {
  domain: string;
  model: TrainMode;
  dcin: ColumnName;
  /** per image: Dice, and the OOD flag of the image against this model's bank */
  perImage: { stem: string; dice: number; ood?: boolean | null }[];
  /** LRIS: how often each bank image was chosen (path -> count) */
  lrisChoices?: Record<string, number>;
  /** auto: how often each candidate won */
  autoChoices?: Record<string, number>;
}

/** One model's OOD figures on one domain. */
export interface OodDomain {
  images: number;
  /** images flagged out of distribution, and their share */
  flagged: number;
  share: number;
  /** how the bank's thresholds were made; null for a bank without calibration */
  calibration: string | null;
  perImage: ({ stem: string } & OodScore)[];
}

export interface ExperimentResults {
  config: ExperimentConfig;
  classNames: string[];
  domains: string[];
  cells: CellResult[];
  curves: Record<string, EpochMetrics[]>;
  gris: Record<string, string>;
  figures: Record<string, { stem: string; cells: Record<string, string> }[]>;
  reused: { models: string[]; banks: string[] };
  /** model -> domain -> OOD figures */
  ood: Record<string, Record<string, OodDomain>>;
  seconds: number;
  /** where the models were evaluated ('cpu', 'cuda:0'); absent in results written before it existed */
  device?: string;
}
