/**
 * A training run folder as prediction and evaluation read it: `config.json` (the model's
 * spec, classes, input size and preprocessing) and `model.safetensors`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadStateDict, SafetensorsError } from '../nn';
import { buildModel, ModelSpec } from '../models/spec';
import { Preprocessing } from '../models/preprocess';
import { Unet } from '../models/unet/model';
import { CqsegError } from '../util/errors';
import { ConfigError, readRunConfig } from './config';

/** The part of a run's config.json that rebuilds its model and preprocessing. */
export interface RunInfo {
  model: ModelSpec;
  classNames: string[];
  /** [H, W] the model was trained at */
  size: [number, number];
  preprocessing: Preprocessing;
}

export class RunError extends CqsegError {
  constructor(message: string) {
    super(message, 'ERR_RUN');
  }
}

/**
 * Reads a run folder's config.json through the training config schema (RUN_CONFIG: the
 * training keys plus model, classNames, libtorch); any other key or a wrong type is a
 * RunError naming the key and the file.
 */
export function readRunInfo(dir: string): RunInfo {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new RunError(`'${dir}' is not a cqseg run folder: ${file} is missing`);
  try {
    return readRunConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) throw new RunError(err.message);
    throw err;
  }
}

/**
 * Rebuilds a run's model with its weights (`model.safetensors`, or `which`), in eval mode.
 * Weights that do not fit or hold NaN/Inf are a RunError naming the file and tensor.
 */
export function loadRun(dir: string, which = 'model.safetensors'): { info: RunInfo; model: Unet } {
  const info = readRunInfo(dir);
  const weights = path.join(dir, which);
  if (!fs.existsSync(weights)) throw new RunError(`run folder '${dir}' has no ${which} (training not finished?)`);
  const model = buildModel(info.model);
  try {
    loadStateDict(model, weights); // refuses NaN/Inf weights, naming the tensor
  } catch (err) {
    model.dispose();
    if (err instanceof SafetensorsError) throw new RunError(`run folder '${dir}': ${err.message}`);
    throw err;
  }
  return { info, model: model.eval() };
}
