/**
 * The trainer behind `cqseg train`: the paper's three modes on a U-Net
 *   baseline: resize + ImageNet normalisation, DiceCE;
 *   aug:      the `all` augmentation pipeline (one view), DiceCE;
 *   cqg:      the cqgPair views, CQG loss (two forward passes through one network).
 * Adam; validation loss and Dice (macro, torchmetrics' convention) every epoch;
 * best and last weights; metrics.jsonl; crash-safe checkpoints and --resume.
 * Augmentation draws come from (seed, epoch, batch), the loader's order from (seed, epoch)
 * and libtorch's generator is checkpointed, so a resumed run continues exactly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AugmentAll, CqgPair } from '../augment';
import { sliceParams } from '../augment/pipelines';
import { Rng, stream } from '../util/random';
import { Batch, Loader, SegDataset, assertDatasetOk, openDataset, parseMaskMode, splitBySeed } from '../data';
import { ConfusionMatrix } from '../eval/metrics';
import { encoderInfo, encoderNames } from '../models/registry';
import { normalize } from '../models/preprocess';
import { buildModel } from '../models/spec';
import { RunInfo } from './run';
import { Unet } from '../models/unet/model';
import { importWeights } from '../models/weights';
import { Adam, convertSyncBatchNorm, GradScaler, Optimizer, saveStateDict } from '../nn';
import {
  GradientReducer, Tensor, TorchError, argmax, barrier, blasLibrary, broadcast, channelsLast, destroyProcessGroup, dispose, distAvailable, globalSum,
  initProcessGroup, manualSeed, noGrad, resolveDevice, setNumThreads, tensor, tidy, torchVersion, useCachingAllocator, withAutocast,
} from '../tensor';
import { Progress } from '../util/progress';
import { readState, restoreCheckpoint, saveCheckpoint, TrainState } from './checkpoint';
import { removeStaleTemps, writeFileAtomicSync } from '../util/atomic';
import { acquireLock, assertUnlocked } from '../util/lock';
import { checkOutputFolder, ensureFolder } from '../util/paths';
import { DEFAULT_CONFIG, RUN_CONFIG, TrainConfig } from './config';
import { readJsonFile } from '../util/schema';
import { cqgLoss, diceCELoss, GlobalSum } from './losses';
import { workerFromEnv, WorkerEnv } from './distributed';
import { CqsegError } from '../util/errors';

export class TrainError extends CqsegError {
  constructor(message: string) {
    super(message, 'ERR_TRAIN');
  }
}

export interface EpochMetrics {
  epoch: number;
  globalStep: number;
  train: Record<string, number>;
  valLoss: number;
  valDice: number;
  valDicePerClass: number[];
  seconds: number;
  best: boolean;
}

export interface TrainHooks {
  /** called once per epoch with its metrics */
  onEpoch?: (m: EpochMetrics) => void;
  /** progress output (default: a Progress bar on stderr); false to be silent */
  progress?: boolean;
  /** stop after this many optimizer steps in this process (tests of resume) */
  stopAfterSteps?: number;
  /** per step: the loss terms (tests) */
  onStep?: (globalStep: number, terms: Record<string, number>) => void;
  /** what the user should know that is not an error (default: printed on stderr) */
  onNotice?: (message: string) => void;
}

export interface TrainResult {
  runDir: string;
  epochs: EpochMetrics[];
  best: { value: number; epoch: number } | null;
  stoppedEarly: boolean;
}

const namesOf = (ds: SegDataset): string[] => ds.classes.classes.map((c) => c.name);

/** Opens the training and validation sets, with the checks of `cqseg data check` on everything they hold. */
async function openSets(cfg: TrainConfig): Promise<{ train: SegDataset; val: SegDataset | null }> {
  const opts = { classes: cfg.classes, maskMode: parseMaskMode(cfg.maskMode), images: cfg.images, requireMasks: true };
  const full = openDataset(cfg.data, opts);
  await assertDatasetOk(full, { size: cfg.size });
  if (cfg.val) {
    const val = openDataset(cfg.val, opts);
    await assertDatasetOk(val, { size: cfg.size });
    if (namesOf(val).join() !== namesOf(full).join()) {
      throw new TrainError(`validation set '${cfg.val}' has classes [${namesOf(val).join(', ')}], training set has [${namesOf(full).join(', ')}]`);
    }
    return { train: full, val };
  }
  if (cfg.valFraction === 0) return { train: full, val: null };
  const s = splitBySeed(full, { valFraction: cfg.valFraction, seed: cfg.seed });
  return { train: s.train, val: s.val.items.length > 0 ? s.val : null };
}

function runInfo(cfg: TrainConfig, classNames: string[], worker: WorkerEnv | null): RunInfo & Record<string, unknown> {
  return {
    ...cfg,
    ...(worker ? { nproc: worker.worldSize } : {}),
    model: { arch: 'unet', encoder: cfg.encoder, classes: classNames.length },
    classNames,
    size: cfg.size,
    preprocessing: cfg.preprocessing,
    libtorch: torchVersion(),
    blas: blasLibrary(),
  };
}

/** A user-facing message for a libtorch out-of-memory error (null for other errors). */
export function explainOom(err: unknown, at: { epoch: number; step: number; batchSize: number; size: [number, number] }): string | null {
  if (!(err instanceof TorchError) || err.code !== 'ERR_OUT_OF_MEMORY') return null;
  return `out of memory at epoch ${at.epoch}, step ${at.step} (batch ${at.batchSize}, size ${at.size.join('x')}): lower --batch or --size. ` +
    `(${err.message.split('\n')[0]})`;
}

/**
 * What `--resume` does with each setting: 'same' settings define the model, the data or
 * the optimisation, and a resumed run refuses to change them; 'may-change' ones do not
 * (more epochs is the point of resuming). Every key of TrainConfig is listed, so a new
 * setting needs a decision here. `out` is the run folder itself.
 */
const ON_RESUME: Record<keyof TrainConfig, 'same' | 'may-change' | 'run'> = {
  data: 'same', val: 'same', valFraction: 'same', classes: 'same', maskMode: 'same', images: 'same', out: 'run',
  mode: 'same', encoder: 'same', encoderWeights: 'same', size: 'same', batchSize: 'same', epochs: 'may-change',
  lr: 'same', seed: 'same', cqgWeights: 'same', cqgDiffWarmup: 'same', classWeights: 'same', bestBy: 'same', maxStepsPerEpoch: 'may-change',
  threads: 'may-change', preprocessing: 'same', nproc: 'same', syncBn: 'same', distTimeout: 'may-change',
  device: 'may-change', precision: 'same', channelsLast: 'may-change',
};
const PATH_KEYS = new Set<string>(['data', 'val', 'classes', 'images', 'encoderWeights']);
/** What an optional setting means when absent. */
const OPTIONAL_DEFAULTS: Record<string, unknown> = { precision: 'fp32', syncBn: false, nproc: 1 };

/** JSON with sorted object keys, so settings compare by value. */
function canonical(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** The settings a resume would change that it must not, as "'size' was 128x128, now 64x64". */
export function resumeConflicts(saved: Record<string, unknown>, cfg: TrainConfig): string[] {
  const show = (k: string, v: unknown): string => (v === undefined ? '(not set)' : k === 'size' && Array.isArray(v) ? v.join('x') : canonical(v)!);
  const out: string[] = [];
  for (const [k, rule] of Object.entries(ON_RESUME)) {
    if (rule !== 'same') continue;
    // optional settings compare by their effective value (absent = the default)
    const eff = (v: unknown): unknown => (v === undefined && k in OPTIONAL_DEFAULTS ? OPTIONAL_DEFAULTS[k] : v);
    const was = eff(saved[k]);
    const now = eff((cfg as Record<string, unknown>)[k]);
    if (canonical(was) === canonical(now)) continue;
    // a run from a version without this setting ran with its default
    if (!(k in saved) && canonical(now) === canonical((DEFAULT_CONFIG as Record<string, unknown>)[k])) continue;
    if (PATH_KEYS.has(k) && typeof was === 'string' && typeof now === 'string' && path.resolve(was) === path.resolve(now)) continue;
    out.push(`'${k}' was ${show(k, was)}, now ${show(k, now)}`);
  }
  return out;
}

interface Prior {
  state: TrainState | null;
  /** the run's config.json, when resuming */
  saved: Record<string, unknown> | null;
}

/** The run already in the folder: refused without --resume, and with --resume when a fixed setting changed. */
function checkPrior(cfg: TrainConfig, runDir: string, resume: boolean): Prior {
  const state = readState(runDir);
  if (state && !resume) {
    throw new TrainError(`run folder '${cfg.out}' already holds a run (epoch ${state.epoch}); pass --resume to continue it or choose another --out`);
  }
  if (!resume) return { state: null, saved: null };
  if (!state) throw new TrainError(`--resume: '${cfg.out}' has no checkpoint to resume from`);
  const file = path.join(runDir, 'config.json');
  const saved: Record<string, unknown> = readJsonFile(file, RUN_CONFIG, 'run config',
    (m) => new TrainError(`--resume: ${m}; the run cannot be resumed: train into a new --out`));
  const changed = resumeConflicts(saved, cfg);
  if (changed.length > 0) {
    const allowed = Object.keys(mayChange(cfg)).join(', ');
    throw new TrainError(`--resume cannot change the settings the run was started with (they change the model, the data or the optimisation): ` +
      `${changed.join('; ')}. Resume with the run's settings (see ${file}; only ${allowed} may change), or train into a new --out`);
  }
  return { state, saved };
}

/**
 * What differs between the libtorch and BLAS a run started with and those of this process:
 * a resume is allowed (the model and data are the same) but its figures are no longer
 * bit-identical to an uninterrupted run (README, Training: reproducible).
 */
export function runtimeChanges(saved: Record<string, unknown>): string[] {
  const now: Record<string, string> = { libtorch: torchVersion(), blas: blasLibrary() };
  return Object.entries(now)
    .filter(([k, v]) => typeof saved[k] === 'string' && saved[k] !== v)
    .map(([k, v]) => `the run started with ${k} ${String(saved[k])}, this process has ${v}: the resumed epochs will differ slightly from an uninterrupted run's`);
}

/** The settings a resume may change, as given now (what a resumed run writes into its config.json). */
function mayChange(cfg: TrainConfig): Record<string, unknown> {
  return Object.fromEntries(Object.entries(ON_RESUME).filter(([, r]) => r === 'may-change').map(([k]) => [k, (cfg as Record<string, unknown>)[k]]));
}

/** Checks that need neither the data nor the disk: the encoder name, weights and class weights. */
function checkCheap(cfg: TrainConfig): void {
  try {
    encoderInfo(cfg.encoder);
  } catch {
    throw new TrainError(`unknown encoder '${cfg.encoder}'; known: ${encoderNames({ includeTest: true }).join(', ')}`);
  }
  if (cfg.encoderWeights !== undefined && !fs.existsSync(cfg.encoderWeights)) {
    throw new TrainError(`encoder weights '${cfg.encoderWeights}' do not exist (give the path of a .safetensors file of encoder or smp model weights)`);
  }
  if (cfg.classWeights && !cfg.classWeights.every((w) => Number.isFinite(w))) {
    throw new TrainError(`'classWeights' must be finite numbers, got [${cfg.classWeights.join(', ')}]`);
  }
}

/** The command line a second writer is shown as the lock's holder. */
function trainCommand(cfg: TrainConfig, resume: boolean): string {
  return `cqseg train --data ${cfg.data} --out ${cfg.out} --mode ${cfg.mode} --encoder ${cfg.encoder}${resume ? ' --resume' : ''}`;
}

/**
 * Trains into the run folder cfg.out. Everything that can be checked is checked before
 * anything is written (settings, encoder, the data, the folder's lock and prior run);
 * the folder's lock is held from then until the end, so a second `train` into the same
 * folder is refused instead of mixing two runs.
 */
export async function train(cfg: TrainConfig, hooks: TrainHooks = {}, resume = false): Promise<TrainResult> {
  const worker = workerFromEnv();
  if (!worker && (cfg.nproc ?? 1) > 1) {
    throw new TrainError(`nproc ${cfg.nproc}: start data-parallel training with cqseg train --nproc N (it launches the workers), or set torchrun's variables (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT) in each worker`);
  }
  checkCheap(cfg);
  const compute = computeOf(cfg, worker);
  if (!worker) return trainLead(cfg, hooks, resume, null, compute);
  if (!distAvailable()) throw new TrainError('data-parallel training needs c10d, which this build lacks: on Debian, apt-get install libgloo-dev, then npm run build');
  const threads = cfg.threads ?? Number(process.env.CQSEG_WORKER_THREADS ?? 0);
  if (threads > 0) setNumThreads(threads);
  // every worker joins before anything is written (rank 0's checks then decide for all)
  const backend = compute.device.startsWith('cuda') ? 'nccl' : 'gloo';
  initProcessGroup({ rank: worker.rank, worldSize: worker.worldSize, masterAddr: worker.masterAddr, masterPort: worker.masterPort, timeoutMs: (cfg.distTimeout ?? 300) * 1000, backend });
  try {
    if (worker.rank === 0) return await trainLead(cfg, hooks, resume, worker, compute);
    useCachingAllocator();
    const sets = await openSets(cfg);
    barrier(); // rank 0 has checked the folder and the prior run, and written config.json
    const prior = resume ? readState(path.resolve(cfg.out)) : null;
    return await trainLocked(cfg, { ...hooks, progress: false }, path.resolve(cfg.out), prior, sets, namesOf(sets.train), worker, compute);
  } finally {
    destroyProcessGroup();
  }
}

/** Where and how a run computes: its device (resolved), precision and layout, checked against each other. */
export interface Compute {
  device: string;
  /** how the device was chosen (printed) */
  why: string;
  precision: 'fp32' | 'bf16' | 'fp16';
  channelsLast: boolean;
}

/** The run's device (a worker on CUDA takes cuda:LOCAL_RANK), precision and layout; TrainError when they do not fit. */
export function computeOf(cfg: TrainConfig, worker: WorkerEnv | null = null): Compute {
  let r: { device: string; why: string };
  try {
    r = resolveDevice(cfg.device ?? 'auto');
  } catch (err) {
    throw new TrainError((err as Error).message);
  }
  if (worker && r.device.startsWith('cuda')) r = { device: `cuda:${worker.localRank}`, why: `${r.why}; worker ${worker.localRank} of this machine` };
  const precision = cfg.precision ?? 'fp32';
  const cuda = r.device.startsWith('cuda');
  if (precision === 'fp16' && !cuda) throw new TrainError(`--precision fp16 needs CUDA (libtorch's CPU autocast takes bfloat16 only); the device is ${r.device}: use --precision bf16 or fp32`);
  if (cfg.channelsLast && !cuda) throw new TrainError(`--channels-last is for CUDA; the device is ${r.device} (cqseg's CPU kernels take NCHW)`);
  return { ...r, precision, channelsLast: Boolean(cfg.channelsLast) };
}

/** One process's training, or rank 0's in a data-parallel job: the folder's checks, the lock, the run folder. */
async function trainLead(cfg: TrainConfig, hooks: TrainHooks, resume: boolean, worker: WorkerEnv | null, compute: Compute): Promise<TrainResult> {
  const runDir = path.resolve(cfg.out);
  const where = { what: 'run folder', flag: '--out', makeError: (m: string) => new TrainError(m) };
  const lockOpts = { ...where, command: trainCommand(cfg, resume) };
  checkOutputFolder(cfg.out, where);
  assertUnlocked(runDir, lockOpts); // fail early; acquireLock below decides
  checkPrior(cfg, runDir, resume);
  if (cfg.threads && !worker) setNumThreads(cfg.threads);
  useCachingAllocator(); // large activations reused across steps (see src/tensor/runtime.ts)
  const sets = await openSets(cfg);
  const classNames = namesOf(sets.train);
  if (cfg.classWeights && cfg.classWeights.length !== classNames.length) {
    throw new TrainError(`'classWeights' has ${cfg.classWeights.length} values, the dataset has ${classNames.length} classes`);
  }
  ensureFolder(cfg.out, where);
  const lock = acquireLock(runDir, lockOpts);
  try {
    const prior = checkPrior(cfg, runDir, resume); // again, now that no one else writes here
    removeStaleTemps(runDir, { depth: 2 }); // temp files of a writer killed mid-write
    if (prior.saved) {
      const notice = hooks.onNotice ?? ((m: string) => process.stderr.write(`note: ${m}\n`));
      for (const m of runtimeChanges(prior.saved)) notice(m);
    }
    if (hooks.progress !== false) process.stderr.write(`device: ${compute.device} (${compute.why}), precision ${compute.precision}${compute.channelsLast ? ', channels-last' : ''}\n`);
    const info = { ...(prior.saved ? { ...prior.saved, ...mayChange(cfg) } : runInfo(cfg, classNames, worker)), device: compute.device, precision: compute.precision };
    writeFileAtomicSync(path.join(runDir, 'config.json'), JSON.stringify(info, null, 2));
    if (worker) barrier(); // the other workers start now
    return await trainLocked(cfg, hooks, runDir, prior.state, sets, classNames, worker, compute);
  } finally {
    lock.release();
  }
}

async function trainLocked(cfg: TrainConfig, hooks: TrainHooks, runDir: string, prior: TrainState | null,
  sets: { train: SegDataset; val: SegDataset | null }, classNames: string[], worker: WorkerEnv | null, compute: Compute): Promise<TrainResult> {
  manualSeed(cfg.seed); // initial weights, dropout and drop-connect draws follow the seed
  const model: Unet = buildModel({ arch: 'unet', encoder: cfg.encoder, classes: classNames.length });
  if (compute.device !== 'cpu') model.to(compute.device); // before the optimizer: its state follows the parameters
  if (compute.channelsLast) noGrad(() => model.parameters().filter((p) => p.ndim === 4).forEach((p) => { p._assign(channelsLast(p)); p.requiresGrad_(true); }));
  const opt = new Adam(model.parameters(), { lr: cfg.lr });
  const classWeights = cfg.classWeights ? tensor(cfg.classWeights, [cfg.classWeights.length], { device: compute.device }) : undefined;
  const lead = !worker || worker.rank === 0;
  let reducer: GradientReducer | undefined;
  try {
    if (cfg.encoderWeights && !prior) {
      try {
        importWeights(model, cfg.encoderWeights);
      } catch (err) {
        const m = /segmentation_head\.0\.weight.*?\[(\d+),/.exec((err as Error).message);
        if (m && Number(m[1]) !== classNames.length) {
          throw new TrainError(`weights '${cfg.encoderWeights}' were trained for ${m[1]} classes, the dataset has ${classNames.length} (${classNames.join(', ')}): load the encoder only or use a matching class map`);
        }
        throw err;
      }
    }
    let startEpoch = 0;
    let globalStep = 0;
    let best = prior?.best ?? null;
    if (prior) {
      restoreCheckpoint(runDir, model, opt, prior);
      startEpoch = prior.epoch;
      globalStep = prior.globalStep;
      truncateMetrics(path.join(runDir, 'metrics.jsonl'), prior.epoch);
    }
    const shard = worker ? { rank: worker.rank, world: worker.worldSize } : undefined;
    if (worker) {
      // DDP: rank 0's weights and buffers everywhere, SyncBatchNorm on request, the gradient reducer
      broadcast([...model.stateDict().values()], 0);
      if (cfg.syncBn) convertSyncBatchNorm(model);
      reducer = new GradientReducer(model.parameters());
    }
    const loader = new Loader(sets.train, { batchSize: cfg.batchSize, size: cfg.size, seed: cfg.seed, shuffle: true, shard });
    const valLoader = sets.val ? new Loader(sets.val, { batchSize: cfg.batchSize, size: cfg.size, shuffle: false, shard }) : null;
    const dist = worker ? { sum: globalSum as GlobalSum, reducer: reducer!, buffers: cfg.syncBn ? [] : buffersOf(model) } : undefined;
    const scaler = compute.precision === 'fp16' ? new GradScaler() : undefined;
    const augAll = new AugmentAll();
    const pair = new CqgPair();
    const epochs: EpochMetrics[] = [];
    let stepsHere = 0;
    const showProgress = hooks.progress !== false;

    for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
      const t0 = Date.now();
      model.train();
      const total = cfg.maxStepsPerEpoch > 0 ? Math.min(cfg.maxStepsPerEpoch, loader.length) : loader.length;
      const bar = showProgress ? new Progress(`epoch ${epoch + 1}/${cfg.epochs} [${cfg.mode}]`, total) : null;
      const sums: Record<string, number> = {};
      let k = 0;
      for await (const batch of loader.epoch(epoch)) {
        let terms: Record<string, number>;
        try {
          const diffScale = cqgDiffRamp(epoch + k / total, cfg.cqgDiffWarmup);
          terms = trainStep(model, opt, batch, cfg, { augAll, pair, rng: stream(cfg.seed, 'augment', epoch, k), classWeights, diffScale, dist, compute, scaler });
        } catch (err) {
          dispose(batch);
          if (err instanceof NanLoss) {
            throw new TrainError(`loss became ${err.what} at epoch ${epoch + 1}, step ${k + 1} (global step ${globalStep + 1}); training stopped. ` +
              `The last good checkpoint is ${prior || epoch > 0 ? `epoch ${epoch} in ${path.join(cfg.out, 'checkpoint')}` : 'none (first epoch)'}; try a lower --lr.`);
          }
          const oom = explainOom(err, { epoch: epoch + 1, step: k + 1, batchSize: cfg.batchSize, size: cfg.size });
          if (oom) throw new TrainError(oom);
          throw err;
        }
        dispose(batch);
        k++;
        globalStep++;
        stepsHere++;
        for (const [name, v] of Object.entries(terms)) sums[name] = (sums[name] ?? 0) + v;
        hooks.onStep?.(globalStep, terms);
        bar?.update(k, terms);
        if (hooks.stopAfterSteps !== undefined && stepsHere >= hooks.stopAfterSteps) {
          return { runDir, epochs, best, stoppedEarly: true };
        }
        if (k >= total) break;
      }
      const trainMeans = Object.fromEntries(Object.entries(sums).map(([n, v]) => [n, v / Math.max(k, 1)]));
      const val = valLoader ? await validate(model, valLoader, cfg, classNames.length, classWeights, dist?.sum) : { loss: NaN, dice: NaN, perClass: [] as number[] };
      const figure = cfg.bestBy === 'dice' ? val.dice : valLoader ? val.loss : trainMeans.loss;
      const better = best === null || (cfg.bestBy === 'dice' ? figure > best.value : figure < best.value);
      if (better) best = { value: figure, epoch: epoch + 1 };
      const m: EpochMetrics = {
        epoch: epoch + 1, globalStep, train: trainMeans, valLoss: val.loss, valDice: val.dice, valDicePerClass: val.perClass,
        seconds: (Date.now() - t0) / 1000, best: better,
      };
      if (lead) { // rank 0 alone writes the run folder
        if (better) saveStateDict(model, path.join(runDir, 'model.safetensors'), { epoch: String(epoch + 1) });
        saveStateDict(model, path.join(runDir, 'last.safetensors'), { epoch: String(epoch + 1) });
        fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), JSON.stringify(m) + '\n');
        saveCheckpoint(runDir, model, opt, { epoch: epoch + 1, globalStep, best });
      }
      epochs.push(m);
      hooks.onEpoch?.(m);
      if (showProgress && lead) {
        process.stderr.write(`epoch ${epoch + 1}: train loss ${trainMeans.loss?.toFixed(4)}  val loss ${val.loss.toFixed(4)}  val Dice ${(val.dice * 100).toFixed(2)}${better ? '  (best)' : ''}\n`);
      }
    }
    return { runDir, epochs, best, stoppedEarly: false };
  } finally {
    reducer?.dispose();
    dispose([model, classWeights]);
    opt.dispose();
  }
}

/** The model's buffers (batch-norm running statistics): DDP broadcasts rank 0's before each step. */
function buffersOf(model: Unet): Tensor[] {
  const params = new Set(model.parameters());
  return [...model.stateDict().values()].filter((t) => !params.has(t));
}

/** Drops metrics lines of epochs after the checkpoint (written before a kill, redone on resume). */
function truncateMetrics(file: string, epochs: number): void {
  if (!fs.existsSync(file)) return;
  const keep = fs.readFileSync(file, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return (JSON.parse(l) as { epoch: number }).epoch <= epochs;
    } catch {
      return false; // a line cut short by the kill
    }
  });
  writeFileAtomicSync(file, keep.map((l) => l + '\n').join(''));
}

class NanLoss extends Error {
  constructor(readonly what: string) {
    super(`loss is ${what}`);
  }
}

/** @internal what one training step needs beside the model, optimizer and batch (exported for the data-parallel test). */
export interface StepContext {
  augAll: AugmentAll;
  pair: CqgPair;
  /** this step's augmentation draws: stream(seed, 'augment', epoch, batch) */
  rng: Rng;
  classWeights?: Tensor;
  /** the factor on cqgWeights.diff at this step (cqgDiffRamp) */
  diffScale: number;
  /** data-parallel training: global sums, the gradient reducer, buffers to take from rank 0 */
  dist?: { sum: GlobalSum; reducer: GradientReducer; buffers: Tensor[] };
  /** device, precision, layout (default: the model's device, fp32) */
  compute?: Compute;
  /** fp16: dynamic loss scaling */
  scaler?: GradScaler;
}

/**
 * model(x) under the run's precision: autocast to bfloat16 / float16 (convolutions and
 * matrix products; libtorch keeps reductions and batch-norm statistics in float32), logits
 * back in float32 for the losses; x in the run's layout.
 */
function forwardAt(model: Unet, x: Tensor, compute: Compute | undefined): Tensor {
  const input = compute?.channelsLast ? channelsLast(x) : x;
  if (!compute || compute.precision === 'fp32') return model.forward(input);
  const y = withAutocast(compute.device.startsWith('cuda') ? 'cuda' : 'cpu', compute.precision === 'bf16' ? 'bfloat16' : 'float16', () => model.forward(input));
  return y.to('float32');
}

/**
 * The factor on the CQG consistency weight at `epochs` (fractional) into training with a
 * warm-up of `warmup` epochs: exp(-5 (1 - t)^2), t = min(1, epochs / warmup) (the sigmoid
 * ramp-up of Laine & Aila 2017, "Temporal Ensembling", section 3.1); 1 without warm-up.
 */
export function cqgDiffRamp(epochs: number, warmup: number): number {
  if (!(warmup > 0)) return 1;
  const t = Math.min(1, Math.max(0, epochs / warmup));
  return Math.exp(-5 * (1 - t) * (1 - t));
}

/** One optimizer step; returns the loss terms as numbers. @internal exported for the data-parallel test, which runs it with SGD. */
export function trainStep(model: Unet, opt: Optimizer, batch: Batch, cfg: TrainConfig, ctx: StepContext): Record<string, number> {
  return tidy(() => {
    // the batch on the model's device, one copy a step (an alias, freed by tidy, where it is there already)
    const device = model.parameters()[0].device;
    const images = batch.images.to(device);
    const masks = batch.masks!.to(device);
    const size = { height: images.shape[2], width: images.shape[3] };
    const lossOpts = { classWeights: ctx.classWeights, sum: ctx.dist?.sum };
    // the draws of this process's samples, as part of the global batch (same on every process)
    const share = batch.shard ?? { start: 0, total: images.shape[0] };
    const draw = <P extends Parameters<typeof sliceParams>[0]>(p: P): P => (batch.shard ? sliceParams(p, share.start, share.start + images.shape[0]) as P : p);
    if (ctx.dist && ctx.dist.buffers.length > 0) broadcast(ctx.dist.buffers, 0);
    const dtype = model.parameters()[0].dtype; // float32, or float64 for tests' reference runs
    const input = (t: Tensor): Tensor => (dtype === 'float32' ? normalize(t, cfg.preprocessing) : normalize(t, cfg.preprocessing).to(dtype));
    let loss: Tensor;
    let terms: Record<string, Tensor>;
    if (cfg.mode === 'cqg') {
      const out = ctx.pair.apply({ image: images, mask: masks }, draw(ctx.pair.sample(share.total, ctx.rng, size)));
      const y = out.mask!.to('int64');
      const w = { ...cfg.cqgWeights, diff: cfg.cqgWeights.diff * ctx.diffScale };
      const q = cqgLoss(forwardAt(model, input(out.geo), ctx.compute), forwardAt(model, input(out.aug), ctx.compute), y, w, lossOpts);
      loss = q.loss;
      terms = { geo: q.geo, aug: q.aug, diff: q.diff };
    } else {
      let x = images;
      let y = masks;
      if (cfg.mode === 'aug') {
        const out = ctx.augAll.apply({ image: images, mask: masks }, draw(ctx.augAll.sample(share.total, ctx.rng, size)));
        x = out.image;
        y = out.mask!;
      }
      const d = diceCELoss(forwardAt(model, input(x), ctx.compute), y.to('int64'), lossOpts);
      loss = d.loss;
      terms = { dice: d.dice, ce: d.ce };
    }
    const value = loss.item();
    if (!Number.isFinite(value)) throw new NanLoss(String(value)); // the global loss: every process stops alike
    ctx.dist?.reducer.prepareForBackward();
    if (ctx.scaler) {
      ctx.scaler.scale(loss).backward();
      ctx.scaler.step(opt); // skipped (and the scale halved) when a gradient overflowed
    } else {
      loss.backward();
      opt.step();
    }
    opt.zeroGrad();
    const out: Record<string, number> = { loss: value };
    for (const [n, t] of Object.entries(terms)) out[n] = t.item();
    return out;
  });
}

async function validate(model: Unet, loader: Loader, cfg: TrainConfig, classes: number, classWeights?: Tensor, sum?: GlobalSum): Promise<{ loss: number; dice: number; perClass: number[] }> {
  model.eval();
  const cm = new ConfusionMatrix(classes);
  let lossSum = 0;
  let n = 0;
  const device = model.parameters()[0].device;
  for await (const batch of loader.epoch(0)) {
    noGrad(() => tidy(() => {
      const logits = model.forward(normalize(batch.images.to(device), cfg.preprocessing));
      const y = batch.masks!.to(device).to('int64');
      lossSum += diceCELoss(logits, y, { classWeights }).loss.item() * batch.images.shape[0];
      n += batch.images.shape[0];
      cm.update(argmax(logits, 1), y, batch.roi?.to(device)); // inside the ROI masks where the dataset has them, as evaluate and the report
    }));
    dispose(batch);
  }
  model.train();
  if (sum) {
    // each process validated its shard: the figures of the whole set
    const all = noGrad(() => tidy(() => sum(tensor(Float64Array.from([...cm.counts, lossSum, n]), [cm.counts.length + 2], { dtype: 'float64' })).dataSync() as Float64Array));
    cm.counts.set(all.subarray(0, cm.counts.length));
    [lossSum, n] = [all[cm.counts.length], all[cm.counts.length + 1]];
  }
  return { loss: lossSum / Math.max(n, 1), dice: cm.diceMacro(), perClass: cm.dicePerClass() };
}
