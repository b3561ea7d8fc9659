/**
 * Test-time adaptation beyond the paper: BatchNorm statistics re-estimated on target
 * images (AdaBN, per domain or mixed per image) and flip test-time augmentation.
 * Both wrap a forward (uint8 or float images (N, 3, H, W) -> logits (N, C, H', W'), e.g.
 * a session's preprocessing + model), so they compose with the DCIN modes: color transfer
 * first, then the adapted or flip-averaged forward.
 *
 * - adaBnDomain (Li et al. 2016, "Revisiting Batch Normalization For Practical Domain
 *   Adaptation", arXiv:1603.04779): every BatchNorm2d's running statistics re-estimated
 *   over all target batches, as torch.optim.swa_utils.update_bn does: statistics reset,
 *   BatchNorm layers alone in training mode (dropout, drop-connect and the rest in eval),
 *   no gradients, cumulative average r_k = (1 - m_k) r_{k-1} + m_k s_k with m_k = 1/k
 *   (torch's momentum=None; weighting 'batch') or m_k = n_k / (n_1 + ... + n_k)
 *   (weighting 'image': each image counts once, so a smaller last batch does not weigh
 *   as much as a full one). s_k is batch k's mean and unbiased variance per channel.
 *   Weights are untouched; the returned handle puts the source statistics back.
 * - adaBnImage / withAdaBnImage: per image, each BatchNorm normalises with
 *   mean = (1 - alpha) * mu_source + alpha * mu_image and likewise the variance (the
 *   image's unbiased variance), layer after layer in one forward: the image statistics of
 *   a layer are those of its input given the mixed normalisation of the layers before it.
 *   This is Schneider et al. 2020 ("Improving robustness against common corruptions by
 *   covariate shift adaptation", NeurIPS; bethgelab/robustness BayesianBatchNorm) with
 *   one image (n = 1) and alpha = n / (N + n) = 1 / (N + 1) for their prior strength N;
 *   also You et al. 2021's alpha-BN (arXiv:2110.04065). Default alpha = 0.5 (N = 1: the
 *   image weighs as much as the source; a segmentation image's statistics average over
 *   H*W pixels, far less noisy than one classification sample's). Tune it on validation
 *   data. alpha = 0 is eval-mode inference of each image alone, bit for bit.
 * - flipTta / withFlipTta: the mean of softmax probabilities over flipped copies, each
 *   prediction flipped back ('h' mirrors the width, 'v' the height, 'hv' both).
 *
 *   const h = await adaBnDomain(net, loader, { forward: session.forward, disposeBatches: true });
 *   const probs = flipTta(session.forward, images);   // adapted model, identity + horizontal
 *   h.restore();                                      // source statistics back, bit-exact
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { checkTensor } from '../tensor/check';
import { BatchNorm2d, Module } from '../nn';

/** images (N, 3, H, W) -> logits (N, C, H', W') */
export type Forward = (images: T.Tensor) => T.Tensor;

/** A BatchNorm2d with running statistics (trackRunningStats), by dotted module name. */
export type BnLayer = [name: string, bn: BatchNorm2d];

/** Every BatchNorm2d of a model that keeps running statistics, in module order. */
export function bnLayers(model: Module): BnLayer[] {
  return model.namedModules().filter((e): e is BnLayer => e[1] instanceof BatchNorm2d && e[1].runningMean !== null && e[1].runningVar !== null);
}

function checkModel(model: unknown, op: string): BnLayer[] {
  if (!(model instanceof Module)) throw new ArgumentError(`Argument 'model' passed to '${op}' must be a Module, got ${typeof model}`);
  const bns = bnLayers(model);
  if (bns.length === 0) throw new ArgumentError(`Argument 'model' passed to '${op}' has no BatchNorm2d layer with running statistics (${model.constructor.name})`);
  return bns;
}

function checkForward(forward: unknown, arg: string, op: string): Forward {
  if (forward instanceof Module) return (x) => forward.forward(x);
  if (typeof forward !== 'function') throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a function (images) => logits or a Module, got ${typeof forward}`);
  return forward as Forward;
}

/** Runs fn with the model in eval mode (restoring every module's flag after), no gradients. */
function inEvalMode<R>(model: Module, fn: () => R): R {
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    return T.noGrad(fn);
  } finally {
    for (const [m, mode] of modes) m.training = mode;
  }
}

type ApplyFn = BatchNorm2d['apply'];

const setMomentum = (bn: BatchNorm2d, m: number | null): void => {
  (bn as { momentum: number | null }).momentum = m;
};

// ---------------------------------------------------------------------------------------
// AdaBN per domain

export type AdaBnWeighting = 'batch' | 'image';

/** A batch as adaBnDomain takes it: images, or a loader's batch with an `images` field. */
export type AdaBnBatch = T.Tensor | { images: T.Tensor };

export interface AdaBnDomainOptions {
  /** run on each batch instead of model.forward (e.g. preprocessing + model); must run `model` */
  forward?: Forward;
  /** 'batch' (default, torch's momentum=None: each batch weighs the same) or 'image' */
  weighting?: AdaBnWeighting;
  /** dispose each yielded batch (tensor or the tensors of a batch object) after its forward (default false) */
  disposeBatches?: boolean;
}

/** The source statistics of an adapted model, to put back. */
export interface AdaBnHandle {
  /** adapted BatchNorm layers, by dotted name */
  readonly layers: string[];
  /** batches and images the statistics were estimated on */
  readonly batches: number;
  readonly images: number;
  /** Puts the source running_mean, running_var and num_batches_tracked back (bit-exact, in place) and frees the copies. */
  restore(): void;
  /** Frees the copies, keeping the target statistics. Twice is fine. */
  dispose(): void;
}

class SourceStats implements AdaBnHandle {
  batches = 0;
  images = 0;
  readonly layers: string[];
  private copies: [T.Tensor, T.Tensor][] | null;

  constructor(bns: BnLayer[]) {
    this.layers = bns.map(([n]) => n);
    this.copies = T.noGrad(() => bns.flatMap(([, bn]) => [bn.runningMean!, bn.runningVar!, bn.numBatchesTracked]
      .filter((t): t is T.Tensor => t !== null).map((t) => [t, T.keep(T.clone(t))] as [T.Tensor, T.Tensor])));
  }

  restore(): void {
    if (this.copies === null) throw new Error(`AdaBN handle of ${this.layers.length} layers was already restored or disposed`);
    T.noGrad(() => { for (const [t, c] of this.copies!) t.copy_(c); });
    this.dispose();
  }

  dispose(): void {
    if (this.copies !== null) T.dispose(this.copies.map(([, c]) => c));
    this.copies = null;
  }
}

function batchImages(item: unknown, k: number): T.Tensor {
  const x = item instanceof T.Tensor ? item : (item as { images?: unknown } | null)?.images;
  return checkTensor(x, `batches[${k}]`, 'adaBnDomain', 4, '(N,C,H,W) (or a batch with such `images`)');
}

/**
 * AdaBN: re-estimates every BatchNorm2d's running statistics of `model` on the target
 * batches (see the file comment), in place, and returns a handle holding the source
 * statistics. On an error the source statistics are back before it is rethrown. Do not
 * run the model elsewhere while the batches are awaited.
 *   const h = await adaBnDomain(net, [b1, b2], { forward: (x) => net.forward(normalize(x)) });
 *   ... predict ...; h.restore();
 */
export async function adaBnDomain(model: Module, batches: AsyncIterable<AdaBnBatch> | Iterable<AdaBnBatch>, opts: AdaBnDomainOptions = {}): Promise<AdaBnHandle> {
  const op = 'adaBnDomain';
  const bns = checkModel(model, op);
  if (batches === null || typeof batches !== 'object' || !(Symbol.asyncIterator in batches || Symbol.iterator in batches)) {
    throw new ArgumentError(`Argument 'batches' passed to '${op}' must be an array or (async) iterable of image batches, got ${typeof batches}`);
  }
  const forward = opts.forward === undefined ? (x: T.Tensor) => model.forward(x) : checkForward(opts.forward, 'opts.forward', op);
  const weighting = opts.weighting ?? 'batch';
  if (weighting !== 'batch' && weighting !== 'image') throw new ArgumentError(`Argument 'opts.weighting' passed to '${op}' must be 'batch' or 'image', got ${String(weighting)}`);
  const source = new SourceStats(bns);
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  const momenta = bns.map(([, bn]) => bn.momentum);
  try {
    T.noGrad(() => bns.forEach(([, bn]) => {
      bn.runningMean!.zero_();
      bn.runningVar!.fill_(1);
      bn.numBatchesTracked?.zero_();
    }));
    for await (const item of batches) {
      const x = batchImages(item, source.batches);
      const n = x.shape[0];
      source.batches++;
      source.images += n;
      const m = weighting === 'batch' ? 1 / source.batches : n / source.images;
      // set per batch: a forward elsewhere between two awaits must not find the model changed
      model.eval();
      for (const [, bn] of bns) {
        bn.training = true;
        setMomentum(bn, m);
      }
      T.noGrad(() => T.tidy(() => { forward(x); }));
      for (const [mod, mode] of modes) mod.training = mode;
      bns.forEach(([, bn], i) => setMomentum(bn, momenta[i]));
      if (opts.disposeBatches) T.dispose(item);
    }
    if (source.batches === 0) throw new ArgumentError(`Argument 'batches' passed to '${op}' yielded no batch`);
    return source;
  } catch (err) {
    source.restore();
    throw err;
  } finally {
    for (const [mod, mode] of modes) mod.training = mode;
    bns.forEach(([, bn], i) => setMomentum(bn, momenta[i]));
  }
}

/**
 * A target domain's BatchNorm statistics, held apart from the model: the model keeps its
 * source statistics, and withBnStats runs a forward with these instead. Two sets
 * (source and adapted) can then serve the columns of one evaluation batch by batch.
 */
export interface BnStats {
  readonly layers: string[];
  readonly batches: number;
  readonly images: number;
  /** per layer, running mean and variance */
  readonly mean: T.Tensor[];
  readonly variance: T.Tensor[];
  dispose(): void;
}

/**
 * adaBnDomain's statistics as a BnStats; the model is back to its source statistics
 * (bit-exact) when this returns.
 *   const st = await adaBnDomainStats(net, loader.epoch(0), { forward: session.forward, disposeBatches: true });
 *   const adapted = withBnStats(net, st, session.forward);   // a Forward
 */
export async function adaBnDomainStats(model: Module, batches: AsyncIterable<AdaBnBatch> | Iterable<AdaBnBatch>, opts: AdaBnDomainOptions = {}): Promise<BnStats> {
  const h = await adaBnDomain(model, batches, opts);
  const bns = bnLayers(model);
  const mean = T.noGrad(() => bns.map(([, bn]) => T.keep(T.clone(bn.runningMean!))));
  const variance = T.noGrad(() => bns.map(([, bn]) => T.keep(T.clone(bn.runningVar!))));
  h.restore();
  let live = true;
  return {
    layers: bns.map(([n]) => n), batches: h.batches, images: h.images, mean, variance,
    dispose: () => {
      if (live) T.dispose([...mean, ...variance]);
      live = false;
    },
  };
}

/**
 * A forward in which every BatchNorm2d of `model` normalises with `stats` (eval mode, no
 * gradients; buffers and modes untouched). The layers must be the model's, in order.
 */
export function withBnStats(model: Module, stats: BnStats, forward?: Forward | Module): Forward {
  const op = 'withBnStats';
  const bns = checkModel(model, op);
  if (stats.layers.length !== bns.length || stats.layers.some((n, i) => n !== bns[i][0])) {
    throw new ArgumentError(`Argument 'stats' passed to '${op}' holds ${stats.layers.length} BatchNorm layers that are not the model's ${bns.length}`);
  }
  const fwd = forward === undefined ? (x: T.Tensor) => model.forward(x) : checkForward(forward, 'forward', op);
  return (images: T.Tensor): T.Tensor => inEvalMode(model, () => T.tidy(() => withPatchedBn(bns, (bn, i) => (x, fn) =>
    fn(x, stats.mean[i], stats.variance[i], { weight: bn.weight, bias: bn.bias, training: false, momentum: 0, eps: bn.eps }), () => fwd(images))));
}

/** Runs `run` with each BatchNorm's apply replaced by make(bn, i) (never nested). */
function withPatchedBn(bns: BnLayer[], make: (bn: BatchNorm2d, i: number, name: string) => ApplyFn, run: () => T.Tensor): T.Tensor {
  const patched: BatchNorm2d[] = [];
  try {
    bns.forEach(([name, bn], i) => {
      if (Object.prototype.hasOwnProperty.call(bn, 'apply')) throw new Error(`BatchNorm '${name}' is already being adapted (two adaptations of one model at once?)`);
      (bn as { apply: ApplyFn }).apply = make(bn, i, name);
      patched.push(bn);
    });
    return run();
  } finally {
    for (const bn of patched) delete (bn as { apply?: ApplyFn }).apply;
  }
}

// ---------------------------------------------------------------------------------------
// AdaBN per image (source/image mixing)

/** Default per-image mixing weight of the image's own statistics (see the file comment). */
export const ADABN_IMAGE_ALPHA = 0.5;

export interface AdaBnImageOptions {
  /** weight of the image's statistics, in [0, 1] (default ADABN_IMAGE_ALPHA = 0.5) */
  alpha?: number;
  /** run on each image instead of model.forward (e.g. preprocessing + model); must run `model` */
  forward?: Forward;
}

/** bn.apply for the duration of one forward: normalise with the mixed statistics, buffers untouched. */
function mixingApply(bn: BatchNorm2d, name: string, alpha: number): ApplyFn {
  return (x, fn) => {
    const op = 'adaBnImage';
    checkTensor(x, 'x', `${op} (${name})`, 4, '(N,C,H,W)');
    if (x.shape[1] !== bn.numFeatures) throw new ArgumentError(`Argument 'x' passed to '${op}' (${name}) has ${x.shape[1]} channels, expected ${bn.numFeatures}`);
    const count = x.shape[0] * x.shape[2] * x.shape[3];
    if (count < 2 && alpha > 0) throw new ArgumentError(`'${op}': BatchNorm '${name}' sees ${count} value per channel ([${x.shape.join(',')}]): the image is too small for its own statistics`);
    return T.tidy(() => {
      const rm = bn.runningMean!;
      const rv = bn.runningVar!;
      const xf = x.to('float32');
      const mean = T.lerp(rm, xf.mean([0, 2, 3]).to(rm.dtype), alpha);
      const v = T.lerp(rv, T.variance(xf, [0, 2, 3]).to(rv.dtype), alpha);
      return fn(x, mean, v, { weight: bn.weight, bias: bn.bias, training: false, momentum: 0, eps: bn.eps });
    });
  };
}

/** Runs forward(image) with every BatchNorm of bns mixing source and image statistics. */
function withMixing(bns: BnLayer[], alpha: number, run: () => T.Tensor): T.Tensor {
  return withPatchedBn(bns, (bn, _i, name) => mixingApply(bn, name, alpha), run);
}

function checkAlpha(alpha: unknown, op: string): number {
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) throw new ArgumentError(`Argument 'alpha' passed to '${op}' must be a number in [0, 1], got ${String(alpha)}`);
  return alpha;
}

/**
 * A forward in which every BatchNorm2d of `model` normalises each image with
 * (1 - alpha) * source + alpha * that image's statistics (see the file comment). Images
 * run one at a time (batch statistics are per image); the model runs in eval mode, no
 * gradients; its buffers and modes are untouched. images (N, 3, H, W) -> (N, C, H', W').
 *   const fwd = withAdaBnImage(session.model, { forward: session.forward, alpha: 0.5 });
 *   const probs = withFlipTta(fwd)(images);
 */
export function withAdaBnImage(model: Module, opts: AdaBnImageOptions = {}): Forward {
  const op = 'withAdaBnImage';
  const bns = checkModel(model, op);
  const alpha = checkAlpha(opts.alpha ?? ADABN_IMAGE_ALPHA, op);
  const forward = opts.forward === undefined ? (x: T.Tensor) => model.forward(x) : checkForward(opts.forward, 'opts.forward', op);
  return (images: T.Tensor): T.Tensor => {
    checkTensor(images, 'images', op, 4, '(N,C,H,W)');
    return inEvalMode(model, () => T.tidy(() => {
      const outs: T.Tensor[] = [];
      for (let i = 0; i < images.shape[0]; i++) outs.push(withMixing(bns, alpha, () => forward(images.narrow(0, i, 1))));
      return outs.length === 1 ? outs[0] : T.cat(outs, 0);
    }));
  };
}

/**
 * model.forward (or opts.forward) on each image with per-image mixed BatchNorm statistics:
 * withAdaBnImage(model, { alpha, forward })(images). Exact, leak-free, buffers untouched.
 *   const logits = adaBnImage(net, x, 0.5);
 */
export function adaBnImage(model: Module, images: T.Tensor, alpha = ADABN_IMAGE_ALPHA, opts: { forward?: Forward } = {}): T.Tensor {
  checkAlpha(alpha, 'adaBnImage');
  checkTensor(images, 'images', 'adaBnImage', 4, '(N,C,H,W)');
  return withAdaBnImage(model, { alpha, forward: opts.forward })(images);
}

// ---------------------------------------------------------------------------------------
// Flip TTA

export type Flip = 'none' | 'h' | 'v' | 'hv';
/** Every flip flipTta takes: identity, horizontal, vertical, both. */
export const ALL_FLIPS: readonly Flip[] = ['none', 'h', 'v', 'hv'];
/**
 * The default flips: identity and horizontal, the mirror the paper's training augmentation
 * draws (HorizontalFlip). Flip TTA helps where the model has seen the flipped images; a
 * model of oriented scenes never trained on vertical flips predicts upside-down copies
 * badly: on the demo's throat scenes the four flips cost the augmented model 15 Dice
 * points on its own source domain (91.3 -> 76.4). Pass ALL_FLIPS for content without an
 * up and down (fundus images, microscopy) when training flipped it so.
 */
export const TTA_FLIPS: readonly Flip[] = ['none', 'h'];
const FLIP_DIMS: Record<Flip, number[]> = { none: [], h: [3], v: [2], hv: [2, 3] };

function checkFlips(flips: unknown, op: string): readonly Flip[] {
  if (!Array.isArray(flips) || flips.length === 0) throw new ArgumentError(`Argument 'flips' passed to '${op}' must be a non-empty array of ${ALL_FLIPS.join(', ')}`);
  flips.forEach((f, i) => {
    if (!ALL_FLIPS.includes(f)) throw new ArgumentError(`Argument 'flips' passed to '${op}' must hold only ${ALL_FLIPS.join(', ')}, got '${String(f)}' at ${i}`);
    if (flips.indexOf(f) !== i) throw new ArgumentError(`Argument 'flips' passed to '${op}' holds '${f}' twice`);
  });
  return flips as Flip[];
}

function flipMean(forward: Forward, images: T.Tensor, flips: readonly Flip[], op: string): T.Tensor {
  checkTensor(images, 'images', op, 4, '(N,C,H,W)');
  return T.noGrad(() => T.tidy(() => {
    let sum: T.Tensor | null = null;
    for (const f of flips) {
      const dims = FLIP_DIMS[f];
      const p = T.tidy(() => {
        const logits = forward(dims.length ? T.flip(images, dims) : images);
        checkTensor(logits, 'forward(images)', op, 4, '(N,C,H,W) logits');
        const q = T.softmax(logits, 1);
        return dims.length ? T.flip(q, dims) : q;
      });
      if (sum === null) sum = p;
      else {
        const next: T.Tensor = sum.add(p);
        T.dispose([sum, p]);
        sum = next;
      }
    }
    return sum!.div(flips.length);
  }));
}

/**
 * Flip test-time augmentation: mean over `flips` of flip(softmax(forward(flip(images)))),
 * each flip its own inverse. images (N, 3, H, W) -> probabilities (N, C, H', W').
 * The flipped copies run one after another (memory of one forward).
 *   const probs = flipTta(session.forward, images);            // identity + horizontal (TTA_FLIPS)
 *   const probs2 = flipTta(net, x, ['none', 'h']);
 */
export function flipTta(model: Module | Forward, images: T.Tensor, flips: readonly Flip[] = TTA_FLIPS): T.Tensor {
  return flipMean(checkForward(model, 'model', 'flipTta'), images, checkFlips(flips, 'flipTta'), 'flipTta');
}

export interface FlipTtaOptions {
  flips?: readonly Flip[];
  /**
   * 'probs' (default): the mean probabilities. 'logProbs': their log (clamped at 1e-38),
   * a logits-forward for code that applies softmax (dcinPredict): softmax(log p) = p as p
   * sums to 1, so the DCIN 'softmax' ensemble averages the flip-averaged probabilities.
   */
  output?: 'probs' | 'logProbs';
}

/**
 * A logits-forward made a flip-TTA forward (images -> probabilities, or log-probabilities
 * with output 'logProbs'), e.g. as DCIN's model so flips come after color transfer:
 *   await dcinPredict(images, { mode: 'full', model: withFlipTta(session.forward, { output: 'logProbs' }), bank, embedder })
 */
export function withFlipTta(forward: Module | Forward, opts: FlipTtaOptions = {}): Forward {
  const op = 'withFlipTta';
  const fwd = checkForward(forward, 'forward', op);
  const flips = checkFlips(opts.flips ?? TTA_FLIPS, op);
  const output = opts.output ?? 'probs';
  if (output !== 'probs' && output !== 'logProbs') throw new ArgumentError(`Argument 'opts.output' passed to '${op}' must be 'probs' or 'logProbs', got ${String(output)}`);
  return (images: T.Tensor): T.Tensor => {
    const p = flipMean(fwd, images, flips, op);
    if (output === 'probs') return p;
    try {
      return T.clamp(p, 1e-38).log();
    } finally {
      p.dispose();
    }
  };
}
