import { DEFAULT_CONFIG, resolveConfig, TrainConfig, TRAIN_MODES } from '../../train/config';
import { train } from '../../train/trainer';
import { launchWorkers, workerArgv, workerFromEnv } from '../../train/distributed';
import { Command } from '../command';
import { intFlag, numFlag, parseArgs, sizeFlag } from '../args';

/**
 * One declaration per flag: its config key (TRAIN_CONFIG in train/config.ts), how its value
 * is read, and its help line; the parser's spec, the overrides and --help derive from it, and
 * defaults shown in the help come from DEFAULT_CONFIG.
 */
export interface TrainFlag {
  flag: string;
  /** the config key it sets (none for --config and --resume) */
  key?: keyof TrainConfig;
  /** how the value is read: a string (default), an integer, a number, HxW, a switch */
  read?: 'int' | 'num' | 'size' | 'switch';
  /** the value's placeholder in the help, and the help text (lines after the first are indented) */
  arg?: string;
  help: string[];
}

const d = DEFAULT_CONFIG;
export const FLAGS: TrainFlag[] = [
  { flag: 'config', arg: 'FILE', help: ['JSON config (the keys of TRAIN_CONFIG, src/train/config.ts; its paths', 'relative to its folder); flags override it'] },
  { flag: 'data', key: 'data', arg: 'DATASET', help: ['training set: folder with images/ + masks/, COCO .json, or a', 'dataset description .json (images, masks and ROI masks paired by', 'stem patterns or a pairs list; README, Dataset descriptions)'] },
  { flag: 'val', key: 'val', arg: 'DATASET', help: ['validation set (default: --val-fraction of --data, split by --seed)'] },
  { flag: 'val-fraction', key: 'valFraction', read: 'num', arg: 'F', help: [`default ${d.valFraction}`] },
  { flag: 'classes', key: 'classes', arg: 'MAP', help: ["class map file, or 'paper' / 'binary' (default: the dataset's classes.json)"] },
  { flag: 'mask-mode', key: 'maskMode', arg: 'MODE', help: [`exact | threshold:T | nearest (for masks stored as JPEG; default ${d.maskMode})`] },
  { flag: 'images', key: 'images', arg: 'DIR', help: ['COCO image folder'] },
  { flag: 'out', key: 'out', arg: 'RUN', help: ['run folder'] },
  { flag: 'mode', key: 'mode', arg: 'MODE', help: [`${TRAIN_MODES.join(' | ')} (default ${d.mode}; which one when: README, Which mode to train)`] },
  { flag: 'encoder', key: 'encoder', arg: 'NAME', help: [`default ${d.encoder} (also efficientnet-b0..b7, resnet18/34/50)`] },
  { flag: 'encoder-weights', key: 'encoderWeights', arg: 'F', help: ['ImageNet encoder or smp model weights: a torch.save file (.pth, .pt, .bin) or safetensors'] },
  { flag: 'size', key: 'size', read: 'size', arg: 'HxW', help: [`input size, multiples of 32 (default ${d.size.join('x')})`] },
  { flag: 'batch', key: 'batchSize', read: 'int', arg: 'N', help: [`default ${d.batchSize}`] },
  { flag: 'epochs', key: 'epochs', read: 'int', arg: 'N', help: [`default ${d.epochs}`] },
  { flag: 'lr', key: 'lr', read: 'num', arg: 'X', help: [`Adam learning rate, default ${d.lr}`] },
  { flag: 'seed', key: 'seed', read: 'int', arg: 'S', help: [`default ${d.seed}`] },
  { flag: 'w-geo', read: 'num', arg: 'X', help: [`CQG weight of the geometric view's DiceCE (default ${d.cqgWeights.geo})`] },
  { flag: 'w-aug', read: 'num', arg: 'X', help: [`CQG weight of the color-quality view's DiceCE (default ${d.cqgWeights.aug})`] },
  { flag: 'w-diff', read: 'num', arg: 'X', help: [`CQG weight of the consistency MSE between the views' logits (default ${d.cqgWeights.diff})`] },
  { flag: 'cqg-warmup', key: 'cqgDiffWarmup', read: 'num', arg: 'E', help: ['raise the CQG consistency weight from 0 over the first E epochs', `(sigmoid ramp-up; default ${d.cqgDiffWarmup}: the paper's loss from the first step).`, 'Use it when cqg validation Dice stays at the all-background value', 'for the first epochs (DRIVE at 128x128: stuck for 14 epochs without,', 'see README, Training)'] },
  { flag: 'best-by', key: 'bestBy', arg: 'loss|dice', help: [`which epoch is model.safetensors (default ${d.bestBy})`] },
  { flag: 'max-steps', key: 'maxStepsPerEpoch', read: 'int', arg: 'N', help: ['steps per epoch at most (smoke runs)'] },
  { flag: 'threads', key: 'threads', read: 'int', arg: 'N', help: ['libtorch CPU threads (per worker; default with --nproc: cores / N)'] },
  { flag: 'device', key: 'device', arg: 'D', help: ['auto | cpu | cuda | cuda:N (default auto: the first GPU libtorch sees,', 'else the CPU; printed and recorded in config.json)'] },
  { flag: 'precision', key: 'precision', arg: 'P', help: ['fp32 (default) | bf16 (autocast, CPU or CUDA) | fp16 (autocast with', 'dynamic loss scaling, CUDA); weights and checkpoints stay fp32'] },
  { flag: 'channels-last', key: 'channelsLast', read: 'switch', help: ['CUDA: activations and weights in the channels-last layout'] },
  { flag: 'nproc', key: 'nproc', read: 'int', arg: 'N', help: ['data-parallel training: N workers on this machine (c10d: Gloo on the', 'CPU), each with --batch samples of every step and its shard of each', 'epoch; gradients averaged. Several machines: README, Data-parallel training'] },
  { flag: 'sync-bn', key: 'syncBn', read: 'switch', help: ['with --nproc: batch-norm statistics over all workers (SyncBatchNorm)'] },
  { flag: 'dist-timeout', key: 'distTimeout', read: 'num', arg: 'S', help: ['with --nproc: seconds a collective may wait for a worker (default 300)'] },
  { flag: 'resume', read: 'switch', help: ['continue a killed run from its last checkpoint'] },
];
/** the --w-* flags set cqgWeights' parts */
const CQG_WEIGHT_FLAGS = { 'w-geo': 'geo', 'w-aug': 'aug', 'w-diff': 'diff' } as const;

function optionLines(): string {
  return FLAGS.map((f) => {
    const head = `  --${f.flag}${f.arg ? ` ${f.arg}` : ''}`;
    const pad = ' '.repeat(24);
    const first = head.length < 24 ? head.padEnd(24) + f.help[0] : `${head}\n${pad}${f.help[0]}`;
    return [first, ...f.help.slice(1).map((l) => pad + l)].join('\n');
  }).join('\n');
}

const HELP = `usage: cqseg train --data DATASET --out RUN [options]

Trains a U-Net in one of the paper's modes and writes a run folder: config.json,
model.safetensors (best by validation loss, or --best-by dice), last.safetensors,
metrics.jsonl and crash-safe checkpoints (checkpoint/).

options:
${optionLines()}
`;

function readFlag(f: TrainFlag, v: unknown): unknown {
  switch (f.read) {
    case 'int': return intFlag(v, f.flag);
    case 'num': return numFlag(v, f.flag);
    case 'size': return sizeFlag(v, f.flag);
    case 'switch': return v === true ? true : undefined; // absent: the config file's value or the default
    default: return v;
  }
}

export const command: Command = {
  name: 'train',
  summary: 'train a U-Net (baseline, aug or cqg mode) and write a run folder',
  help: HELP,
  async run(args) {
    const { flags } = parseArgs(args, Object.fromEntries(FLAGS.map((f) => [f.flag, f.read === 'switch' ? { type: 'boolean' as const } : {}])));
    const overrides: Record<string, unknown> = {};
    const weights: Record<string, number> = {};
    for (const f of FLAGS) {
      const v = readFlag(f, flags[f.flag]);
      if (v === undefined) continue;
      if (f.key) overrides[f.key] = v;
      else if (f.flag in CQG_WEIGHT_FLAGS) weights[CQG_WEIGHT_FLAGS[f.flag as keyof typeof CQG_WEIGHT_FLAGS]] = v as number;
    }
    if (Object.keys(weights).length > 0) overrides.cqgWeights = weights;
    const cfg = resolveConfig(overrides as Partial<TrainConfig>, flags.config as string | undefined);
    if ((cfg.nproc ?? 1) > 1 && !workerFromEnv()) {
      // the launcher: the same command in each worker (which sees torchrun's variables)
      return launchWorkers({ argv: workerArgv(['train', ...args]), nproc: cfg.nproc! }); // rank 0 reports
    }
    const r = await train(cfg, {}, Boolean(flags.resume));
    const best = r.best ? `best epoch ${r.best.epoch} (${cfg.bestBy} ${r.best.value.toFixed(4)})` : 'no epoch finished';
    process.stdout.write(`trained ${cfg.mode} model: ${best}; run folder ${r.runDir}\n`);
    return 0;
  },
};
