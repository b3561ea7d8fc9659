/**
 * Layers with PyTorch's attribute names and default initialisations:
 * Conv2d/Linear weights kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.modules.conv/linear reset_parameters);
 * BatchNorm weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
 */
import {
  Tensor, batchNorm, batchNormSilu, conv2d, dropout, empty, linear, noGrad, ones, relu, sigmoid, silu, zeros,
} from '../tensor';
import type { Conv2dOptions } from '../tensor';
import { ArgumentError } from '../tensor/check';
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

  override forward(x: Tensor): Tensor {
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

  override forward(x: Tensor): Tensor {
    return this.apply(x, batchNorm);
  }

  /** silu(forward(x)), fused in training (see batchNormSilu): EfficientNet's BN + swish. */
  forwardSilu(x: Tensor): Tensor {
    return this.apply(x, batchNormSilu);
  }

  /**
   * This layer's batch norm (its statistics, momentum and counter) through `fn`, any
   * function of batchNorm's signature (a fused batch norm + activation, say).
   */
  apply(x: Tensor, fn: typeof batchNorm): Tensor {
    if (x.ndim !== 4) throw new ArgumentError(`Argument 'x' passed to 'BatchNorm2d' must be 4-D (N,C,H,W), got [${x.shape.join(',')}]`);
    if (x.shape[1] !== this.numFeatures) {
      throw new ArgumentError(`Argument 'x' passed to 'BatchNorm2d' has ${x.shape[1]} channels, expected ${this.numFeatures}`);
    }
    let momentum = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked !== null) {
      noGrad(() => this.numBatchesTracked!.add_(1));
      if (this.momentum === null) momentum = 1 / this.numBatchesTracked.item();
    }
    const useBatchStats = this.training || this.runningMean === null;
    return fn(x, useBatchStats && !this.training ? null : this.runningMean, useBatchStats && !this.training ? null : this.runningVar, {
      weight: this.weight, bias: this.bias, training: useBatchStats, momentum, eps: this.eps,
    });
  }
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
