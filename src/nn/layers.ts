/**
 * Layers with PyTorch's attribute names and default initialisations:
 * Conv2d/Linear weights kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.modules.conv/linear reset_parameters);
 * BatchNorm weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
 */
import {
  Tensor, allGather, batchNorm, batchNormActConv2d, batchNormSilu, cat, conv2d, dropout, empty, linear, noGrad, ones, relu, scalarTensor, scaledConv2d,
  sigmoid, silu, tidy, upCatConv2d, zeros,
} from '../tensor';
import type { Conv2dOptions } from '../tensor';
import { ArgumentError, pair } from '../tensor/check';
import { Activated, Activation, ConvInput, Scaled, UpsampledCat } from './fused';
import { Module } from './module';

function uniform(shape: number[], bound: number): Tensor {
  return noGrad(() => empty(shape).uniform_(-bound, bound));
}

export interface Conv2dLayerOptions extends Conv2dOptions {
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: number[];

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | number[], readonly options: Conv2dLayerOptions = {}) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new ArgumentError(`Conv2d: inChannels ${inChannels} and outChannels ${outChannels} must be divisible by groups ${groups}`);
    }
    this.kernelSize = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const fanIn = (inChannels / groups) * this.kernelSize[0] * this.kernelSize[1];
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.registerParameter('weight', uniform([outChannels, inChannels / groups, ...this.kernelSize], bound));
    this.bias = options.bias === false ? this.registerParameter('bias', null) : this.registerParameter('bias', uniform([outChannels], bound));
  }

  /**
   * conv2d of x, or of the op x describes (Activated, UpsampledCat, Scaled: see fused.ts),
   * fused into one op where one applies; the kernel is tensor/'s choice.
   */
  override forward(x: ConvInput): Tensor {
    if (x instanceof Tensor) return this.convolve(x);
    const pads = this.pads();
    const o = this.options;
    const plain = pads !== null && pair(o.dilation ?? 1, 'dilation', 'Conv2d').every((d) => d === 1);
    const [l, r, t, b] = pads ?? [0, 0, 0, 0];
    const symmetric = plain && l === r && t === b;
    if (x instanceof Activated && plain && !x.bn.syncing) {
      return x.bn.apply(x.x, (z, rm, rv, bn) => batchNormActConv2d(z, rm, rv, bn!, this.weight, this.bias,
        { stride: o.stride, pads: pads!, groups: o.groups, activation: x.act }));
    }
    const unitStride = pair(o.stride ?? 1, 'stride', 'Conv2d').every((s) => s === 1);
    if (x instanceof UpsampledCat && symmetric && unitStride && (o.groups ?? 1) === 1) {
      return upCatConv2d(x.x, x.skip, this.weight, this.bias, { padding: [t, l] });
    }
    if (x instanceof Scaled && symmetric && (o.groups ?? 1) === 1) {
      return scaledConv2d(x.x, x.scale, this.weight, this.bias, { stride: o.stride, padding: [t, l] });
    }
    return tidy(() => this.convolve(x.materialize()));
  }

  /** The zero padding [left, right, top, bottom] before the convolution; null for 'same' / 'valid'. */
  pads(): number[] | null {
    const p = this.options.padding ?? 0;
    if (typeof p === 'string') return null;
    const [t, l] = pair(p, 'padding', 'Conv2d');
    return [l, l, t, t];
  }

  /** conv2d(x) with this layer's weights and options. */
  protected convolve(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniform([outFeatures, inFeatures], bound));
    this.bias = opts.bias === false ? this.registerParameter('bias', null) : this.registerParameter('bias', uniform([outFeatures], bound));
  }

  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface BatchNormLayerOptions {
  eps?: number;
  /** null: cumulative moving average, as torch */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;

  constructor(readonly numFeatures: number, opts: BatchNormLayerOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    const affine = opts.affine ?? true;
    this.weight = this.registerParameter('weight', affine ? ones([numFeatures]) : null);
    this.bias = this.registerParameter('bias', affine ? zeros([numFeatures]) : null);
    const track = opts.trackRunningStats ?? true;
    this.runningMean = this.registerBuffer('running_mean', track ? zeros([numFeatures]) : null);
    this.runningVar = this.registerBuffer('running_var', track ? ones([numFeatures]) : null);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', track ? zeros([], { dtype: 'int64' }) : null);
  }

  /**
   * Synchronised batch norm (PyTorch's SyncBatchNorm): in training, the batch statistics are
   * those of the global batch of every process (tensor/dist.ts allGather); set by
   * convertSyncBatchNorm. Eval mode is unchanged (running statistics).
   */
  sync = false;

  /** Whether this layer normalises with the processes' global statistics now (sync and training). */
  get syncing(): boolean {
    return this.sync && this.training;
  }

  override forward(x: Tensor): Tensor {
    return this.syncing ? this.syncNorm(x) : this.apply(x, batchNorm);
  }

  /** silu(forward(x)), fused in training (see batchNormSilu): EfficientNet's BN + swish. */
  forwardSilu(x: Tensor): Tensor {
    if (!this.syncing) return this.apply(x, batchNormSilu);
    const y = this.syncNorm(x);
    try {
      return silu(y);
    } finally {
      y.dispose();
    }
  }

  /** Counts a training batch and returns the running statistics' momentum for it. */
  private track(): number {
    let momentum = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked !== null) {
      noGrad(() => this.numBatchesTracked!.add_(1));
      if (this.momentum === null) momentum = 1 / this.numBatchesTracked.item();
    }
    return momentum;
  }

  /**
   * Batch norm over the global batch. Each process computes its count n_p, mean m_p and sum of
   * squared deviations M_p per channel (two passes, as batch_norm's own), and one all-gather
   * brings every process's; they combine as Chan, Golub and LeVeque's parallel variance:
   * mean = sum n_p m_p / n, var = (sum M_p + sum n_p (m_p - mean)^2) / n. Differentiable through
   * the gather (one collective forward, one backward, as PyTorch's SyncBatchNorm); the running
   * variance takes the unbiased estimate over the global count.
   */
  private syncNorm(x: Tensor): Tensor {
    this.checkInput(x);
    const momentum = this.track();
    return tidy(() => {
      const c = this.numFeatures;
      const shape = [1, c, 1, 1];
      const local = x.mean([0, 2, 3]);
      const m2 = x.sub(local.reshape(shape)).square().sum([0, 2, 3]);
      const n = scalarTensor(x.shape[0] * x.shape[2] * x.shape[3], { dtype: x.dtype }).reshape([1]);
      const all = allGather(cat([local, m2, n])); // (world, 2C + 1)
      const ns = all.narrow(1, 2 * c, 1); // (world, 1)
      const count = ns.sum().item();
      const means = all.narrow(1, 0, c);
      const mean = means.mul(ns).sum(0).div(count);
      const variance = all.narrow(1, c, c).sum(0).add(means.sub(mean.reshape([1, c])).square().mul(ns).sum(0)).div(count);
      const xc = x.sub(mean.reshape(shape));
      if (this.runningMean !== null && this.runningVar !== null) {
        noGrad(() => {
          this.runningMean!.mul_(1 - momentum).add_(mean.detach().mul(momentum));
          this.runningVar!.mul_(1 - momentum).add_(variance.detach().mul((momentum * count) / Math.max(count - 1, 1)));
        });
      }
      const y = xc.div(variance.add(this.eps).sqrt().reshape(shape));
      return this.weight && this.bias ? y.mul(this.weight.reshape(shape)).add(this.bias.reshape(shape)) : y;
    });
  }

  private checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new ArgumentError(`Argument 'x' passed to 'BatchNorm2d' must be 4-D (N,C,H,W), got [${x.shape.join(',')}]`);
    if (x.shape[1] !== this.numFeatures) {
      throw new ArgumentError(`Argument 'x' passed to 'BatchNorm2d' has ${x.shape[1]} channels, expected ${this.numFeatures}`);
    }
  }

  /** act(forward(x)), left for the next convolution layer to fuse into its kernel (see fused.ts). */
  activated(x: Tensor, act: Activation): Activated {
    return new Activated(x, this, act);
  }

  /**
   * This layer's batch norm (its statistics, momentum and counter) through `fn`, any
   * function of batchNorm's signature (a fused batch norm + activation, say).
   */
  apply(x: Tensor, fn: typeof batchNorm): Tensor {
    this.checkInput(x);
    if (this.syncing) throw new Error('internal: a synchronised BatchNorm2d in training has no fused form (forward or forwardSilu only)');
    const momentum = this.track();
    const useBatchStats = this.training || this.runningMean === null;
    return fn(x, useBatchStats && !this.training ? null : this.runningMean, useBatchStats && !this.training ? null : this.runningVar, {
      weight: this.weight, bias: this.bias, training: useBatchStats, momentum, eps: this.eps,
    });
  }
}

/**
 * Makes every BatchNorm2d of `m` synchronised over the processes of data-parallel training
 * (PyTorch's SyncBatchNorm.convert_sync_batchnorm, in place); returns how many it changed.
 */
export function convertSyncBatchNorm(m: Module): number {
  let n = 0;
  for (const [, sub] of m.namedModules()) {
    if (sub instanceof BatchNorm2d) {
      sub.sync = true;
      n++;
    }
  }
  return n;
}

export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class SiLU extends Module {
  override forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`Dropout: p must be in [0, 1], got ${p}`);
  }

  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

/** Children named '0', '1', ... as torch.nn.Sequential; forward chains them. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.registerModule(String(i), m));
  }

  override forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }
}

/**
 * Convolution + BatchNorm2d + activation as one layer (timm's ConvNormAct, smp's
 * Conv2dReLU), its children named as nn.Sequential(conv, bn, act): '0', '1', '2'.
 * `activated` hands the next convolution this layer's output before BN + activation,
 * which that convolution fuses into its kernel.
 */
export class ConvNormAct extends Sequential {
  constructor(readonly conv: Conv2d, readonly bn: BatchNorm2d, readonly act: Activation) {
    super(conv, bn, act === 'relu' ? new ReLU() : new SiLU());
  }

  override forward(x: ConvInput): Tensor {
    return tidy(() => this.activated(x).materialize());
  }

  /** act(bn(conv(x))), BN and activation left for the next convolution to fuse. */
  activated(x: ConvInput): Activated {
    return this.bn.activated(this.conv.forward(x), this.act);
  }
}

/** Children named '0', '1', ... as torch.nn.ModuleList; no forward of its own. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  push(m: M): M {
    this.items.push(this.registerModule(String(this.items.length), m));
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (m === undefined) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
}
