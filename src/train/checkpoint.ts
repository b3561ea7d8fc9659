/**
 * Crash-safe checkpoints of a run: each checkpoint is a folder `checkpoint/epoch-E/`
 * (model and optimizer safetensors, written whole), and `checkpoint/state.json` names
 * the latest complete one. state.json is replaced atomically (temp file + rename) only
 * after its folder is complete, so a run killed at any moment (kill -9, Ctrl-C) resumes
 * from the last checkpoint that was fully written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Module, Optimizer, readSafetensors, saveStateDict, writeSafetensors } from '../nn';
import { Tensor, dispose, getRngState, setRngState, tensor } from '../tensor';
import { writeFileAtomicSync } from '../util/atomic';
import { CqsegError } from '../util/errors';
import { integer, must, readJsonFile } from '../util/schema';
import { z } from 'zod';

/** checkpoint/state.json: where a run stands. */
export const TRAIN_STATE = z.object({
  /** epochs completed */
  epoch: integer(0),
  globalStep: integer(0),
  /** best validation figure so far and its epoch */
  best: z.object({ value: z.number(must('a number')), epoch: integer(0) }, must('an object { "value", "epoch" }')).strict().nullable(),
  /** libtorch CPU generator state, base64 */
  rng: z.string(must('a base64 string')),
  /** the checkpoint folder, relative to the run */
  dir: z.string(must('a folder relative to the run')).regex(/^checkpoint[\\/]epoch-\d+$/, 'must be checkpoint/epoch-N'),
}).strict();
export type TrainState = z.infer<typeof TRAIN_STATE>;


export function saveCheckpoint(runDir: string, model: Module, opt: Optimizer, state: Omit<TrainState, 'rng' | 'dir'>): void {
  const rel = path.join('checkpoint', `epoch-${state.epoch}`);
  const dir = path.join(runDir, rel);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  saveStateDict(model, path.join(dir, 'model.safetensors'), { epoch: String(state.epoch) });
  const os = opt.stateDict();
  writeSafetensors(path.join(dir, 'optimizer.safetensors'), os.tensors, { meta: JSON.stringify(os.meta), epoch: String(state.epoch) });
  const rngT = getRngState();
  const rng = Buffer.from((rngT.dataSync() as Uint8Array).buffer).toString('base64');
  rngT.dispose();
  const full: TrainState = { ...state, rng, dir: rel };
  writeFileAtomicSync(path.join(runDir, 'checkpoint', 'state.json'), JSON.stringify(full, null, 1));
  // older checkpoints are no longer needed once state.json points past them
  for (const f of fs.readdirSync(path.join(runDir, 'checkpoint'))) {
    if (f.startsWith('epoch-') && f !== `epoch-${state.epoch}`) fs.rmSync(path.join(runDir, 'checkpoint', f), { recursive: true, force: true });
  }
}

export function readState(runDir: string): TrainState | null {
  const file = path.join(runDir, 'checkpoint', 'state.json');
  if (!fs.existsSync(file)) return null;
  return readJsonFile(file, TRAIN_STATE, 'checkpoint state',
    (m) => new CqsegError(`${m}: the checkpoint is corrupt; delete the run folder or train into a new --out`, 'ERR_CHECKPOINT'));
}

/** Restores model, optimizer and RNG from the checkpoint state.json names. */
export function restoreCheckpoint(runDir: string, model: Module, opt: Optimizer, state: TrainState): void {
  const dir = path.join(runDir, state.dir);
  const m = readSafetensors(path.join(dir, 'model.safetensors'));
  try {
    model.loadStateDict(m.tensors);
  } finally {
    dispose([...m.tensors.values()]);
  }
  const o = readSafetensors(path.join(dir, 'optimizer.safetensors'));
  try {
    opt.loadStateDict({ tensors: o.tensors, meta: JSON.parse(o.metadata.meta) as Record<string, unknown> });
  } finally {
    dispose([...o.tensors.values()]);
  }
  const bytes = Buffer.from(state.rng, 'base64');
  const t: Tensor = tensor(new Uint8Array(bytes), [bytes.length], { dtype: 'uint8' });
  setRngState(t);
  t.dispose();
}
