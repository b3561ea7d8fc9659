import { DEFAULT_CONFIG, resolveConfig, TrainConfig, TrainMode } from '../../train/config';
import { train } from '../../train/trainer';
import { Command } from '../command';
import { intFlag, numFlag, parseArgs, sizeFlag } from '../args';

const HELP = `usage: cqseg train --data DATASET --out RUN [options]

Trains a U-Net in one of the paper's modes and writes a run folder: config.json,
model.safetensors (best by validation loss, or --best-by dice), last.safetensors,
metrics.jsonl and crash-safe checkpoints (checkpoint/).

options:
  --config FILE         JSON config; flags override it
  --data DATASET        training set: folder with images/ + masks/, COCO .json, or a
                        dataset description .json (images, masks and ROI masks paired by
                        stem patterns or a pairs list; README, Dataset descriptions)
  --val DATASET         validation set (default: --val-fraction of --data, split by --seed)
  --val-fraction F      default 0.2
  --classes MAP         class map file, or 'paper' / 'binary' (default: the dataset's classes.json)
  --mask-mode MODE      exact | threshold:T | nearest (for masks stored as JPEG)
  --images DIR          COCO image folder
  --out RUN             run folder
  --mode MODE           baseline | aug | cqg (default cqg)
  --encoder NAME        default efficientnet-b2 (also efficientnet-b0..b7, resnet18/34/50)
  --encoder-weights F   safetensors of ImageNet encoder or smp model weights
  --size HxW            input size, multiples of 32 (default ${DEFAULT_CONFIG.size.join('x')})
  --batch N             default 2
  --epochs N            default 15
  --lr X                Adam learning rate, default 1e-3
  --seed S              default 0
  --w-geo X --w-aug X --w-diff X   CQG weights (default 0.3 0.7 1.0)
  --cqg-warmup E        raise the CQG consistency weight from 0 over the first E epochs
                        (sigmoid ramp-up; default 0: the paper's loss from the first step).
                        Use it when cqg validation Dice stays at the all-background value
                        for the first epochs (DRIVE at 128x128: stuck for 14 epochs without,
                        see README, Training)
  --best-by loss|dice   which epoch is model.safetensors (default loss)
  --max-steps N         steps per epoch at most (smoke runs)
  --threads N           libtorch CPU threads
  --resume              continue a killed run from its last checkpoint
`;

export const command: Command = {
  name: 'train',
  summary: 'train a U-Net (baseline, aug or cqg mode) and write a run folder',
  help: HELP,
  async run(args) {
    const { flags } = parseArgs(args, {
      config: {}, data: {}, val: {}, 'val-fraction': {}, classes: {}, 'mask-mode': {}, images: {}, out: {}, mode: {},
      encoder: {}, 'encoder-weights': {}, size: {}, batch: {}, epochs: {}, lr: {}, seed: {}, 'w-geo': {}, 'w-aug': {},
      'w-diff': {}, 'cqg-warmup': {}, 'best-by': {}, 'max-steps': {}, threads: {}, resume: { type: 'boolean' },
    });
    const s = (k: string): string | undefined => flags[k] as string | undefined;
    const w = { geo: numFlag(flags['w-geo'], 'w-geo'), aug: numFlag(flags['w-aug'], 'w-aug'), diff: numFlag(flags['w-diff'], 'w-diff') };
    const overrides: Partial<TrainConfig> = {
      data: s('data'), val: s('val'), valFraction: numFlag(flags['val-fraction'], 'val-fraction'), classes: s('classes'),
      maskMode: s('mask-mode'), images: s('images'), out: s('out'), mode: s('mode') as TrainMode | undefined, encoder: s('encoder'),
      encoderWeights: s('encoder-weights'), size: sizeFlag(flags.size, 'size'), batchSize: intFlag(flags.batch, 'batch'),
      epochs: intFlag(flags.epochs, 'epochs'), lr: numFlag(flags.lr, 'lr'), seed: intFlag(flags.seed, 'seed'),
      bestBy: s('best-by') as 'loss' | 'dice' | undefined, maxStepsPerEpoch: intFlag(flags['max-steps'], 'max-steps'),
      threads: intFlag(flags.threads, 'threads'), cqgDiffWarmup: numFlag(flags['cqg-warmup'], 'cqg-warmup'),
      cqgWeights: Object.values(w).some((v) => v !== undefined)
        ? Object.fromEntries(Object.entries(w).filter(([, v]) => v !== undefined)) as unknown as TrainConfig['cqgWeights'] : undefined,
    };
    const cfg = resolveConfig(overrides, s('config'));
    const r = await train(cfg, {}, Boolean(flags.resume));
    const best = r.best ? `best epoch ${r.best.epoch} (${cfg.bestBy} ${r.best.value.toFixed(4)})` : 'no epoch finished';
    process.stdout.write(`trained ${cfg.mode} model: ${best}; run folder ${r.runDir}\n`);
    return 0;
  },
};
