/**
 * A run folder made at test time without training: config.json as the trainer writes it
 * (the training config plus model, classNames, libtorch) and model.safetensors of a fresh
 * 'efficientnet-test' Unet. `poison` puts `value` (default NaN) into the last element of
 * one tensor, as a diverged training would leave it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildModel } from '../../src/models/spec';
import { writeSafetensors } from '../../src/nn';
import * as T from '../../src/tensor';
import { resolveConfig } from '../../src/train/config';
import { LOCK_FILE } from '../../src/util/lock';

export const RUN_CLASSES = ['background', 'disc'];

export function writeRunFolder(dir: string, opts: { poison?: string; value?: number } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const cfg = resolveConfig({ data: path.join(dir, 'data'), out: dir, encoder: 'efficientnet-test', size: [64, 64], threads: 1 });
  const info = { ...cfg, model: { arch: 'unet', encoder: cfg.encoder, classes: RUN_CLASSES.length }, classNames: RUN_CLASSES, libtorch: T.torchVersion() };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(info, null, 2));
  const model = buildModel({ arch: 'unet', encoder: cfg.encoder, classes: RUN_CLASSES.length });
  try {
    const sd = model.stateDict();
    if (opts.poison !== undefined && !sd.has(opts.poison)) throw new Error(`no tensor '${opts.poison}' in the model`);
    T.tidy(() => {
      const v = opts.value ?? Number.NaN;
      const entries = [...sd].map(([k, t]): [string, T.Tensor] =>
        [k, k === opts.poison ? T.where(T.arange(t.size).eq(t.size - 1).reshape(t.shape), v, t) : t]);
      writeSafetensors(path.join(dir, 'model.safetensors'), entries);
    });
  } finally {
    model.dispose();
  }
  return dir;
}

/** A cqseg.lock file in `dir` as another holder would leave it (pid, this host, since, command). */
export function writeLockFile(dir: string, command: string, pid = process.pid, since = new Date().toISOString()): void {
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, hostname: os.hostname(), since, command }));
}
