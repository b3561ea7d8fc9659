/**
 * A training run folder as prediction and evaluation read it: `config.json` (the model's
 * spec, classes, input size and preprocessing) and `model.safetensors`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadStateDict } from '../nn';
import { Preprocessing } from './preprocess';
import { Unet } from './unet/model';

export interface ModelSpec {
  arch: 'unet';
  encoder: string;
  classes: number;
  decoderChannels?: number[];
}

/** The part of a run's config.json that rebuilds its model and preprocessing. */
export interface RunInfo {
  model: ModelSpec;
  classNames: string[];
  /** [H, W] the model was trained at */
  size: [number, number];
  preprocessing: Preprocessing;
}

export class RunError extends Error {
  code = 'ERR_RUN';
  constructor(message: string) {
    super(message);
    this.name = 'RunError';
  }
}

export function readRunInfo(dir: string): RunInfo {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new RunError(`'${dir}' is not a cqseg run folder: ${file} is missing`);
  let cfg: Partial<RunInfo>;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<RunInfo>;
  } catch (err) {
    throw new RunError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!cfg.model || cfg.model.arch !== 'unet' || !cfg.model.encoder || !Number.isInteger(cfg.model.classes)) {
    throw new RunError(`${file} lacks a model spec ({ arch: 'unet', encoder, classes })`);
  }
  if (!Array.isArray(cfg.size) || !cfg.preprocessing || !Array.isArray(cfg.classNames)) {
    throw new RunError(`${file} lacks size, preprocessing or classNames`);
  }
  return cfg as RunInfo;
}

export function buildModel(spec: ModelSpec): Unet {
  return new Unet({ encoderName: spec.encoder, classes: spec.classes, decoderChannels: spec.decoderChannels });
}

/** Rebuilds a run's model with its weights (`model.safetensors`, or `which`), in eval mode. */
export function loadRun(dir: string, which = 'model.safetensors'): { info: RunInfo; model: Unet } {
  const info = readRunInfo(dir);
  const weights = path.join(dir, which);
  if (!fs.existsSync(weights)) throw new RunError(`run folder '${dir}' has no ${which} (training not finished?)`);
  const model = buildModel(info.model);
  try {
    loadStateDict(model, weights);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { info, model: model.eval() };
}
