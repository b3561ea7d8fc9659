/**
 * What a convolution layer may take in place of a tensor: the op before it, described
 * and not yet run, which the layer fuses into its own kernel (src/tensor/fused.ts).
 * Models then read as the code they mirror and still run the fused ops:
 *
 *   // efficientnet_pytorch: x = swish(bn0(expand_conv(x))); x = swish(bn1(depthwise_conv(x)))
 *   x = this.bn1.forwardSilu(this.depthwiseConv.forward(this.bn0.activated(this.expandConv.forward(x), 'silu')));
 *
 * Each description computes what it stands for with `materialize()` (the layer's
 * fallback where no fused op applies: other paddings, dilations).
 */
import { Tensor, batchNorm, cat, interpolate, relu } from '../tensor';

/** What Activated needs of a batch-norm layer (BatchNorm2d in layers.ts). */
export interface BatchNormLayer {
  forward(x: Tensor): Tensor;
  forwardSilu(x: Tensor): Tensor;
  /** true when it normalises over several processes now: no fused form then (SyncBatchNorm) */
  readonly syncing?: boolean;
  /** the layer's batch norm (statistics, momentum, counter) through fn, a function of batchNorm's signature */
  apply(x: Tensor, fn: typeof batchNorm): Tensor;
}

export type Activation = 'relu' | 'silu';

/** act(bn(x)), with bn's statistics and momentum (training or eval as bn is). */
export class Activated {
  constructor(readonly x: Tensor, readonly bn: BatchNormLayer, readonly act: Activation) {}

  materialize(): Tensor {
    if (this.act === 'silu') return this.bn.forwardSilu(this.x);
    const y = this.bn.forward(this.x);
    try {
      return relu(y);
    } finally {
      y.dispose();
    }
  }
}

/** cat([interpolate(x, x2 nearest), skip], 1) (skip may be null): a Unet decoder block's input. */
export class UpsampledCat {
  constructor(readonly x: Tensor, readonly skip: Tensor | null) {}

  materialize(): Tensor {
    const u = interpolate(this.x, { scaleFactor: 2, mode: 'nearest' });
    if (!this.skip) return u;
    try {
      return cat([u, this.skip], 1);
    } finally {
      u.dispose();
    }
  }
}

/** x * scale, scale (N, C, 1, 1): squeeze-and-excitation's output feeding a projection. */
export class Scaled {
  constructor(readonly x: Tensor, readonly scale: Tensor) {}

  materialize(): Tensor {
    return this.x.mul(this.scale);
  }
}

export const upsampledCat = (x: Tensor, skip: Tensor | null): UpsampledCat => new UpsampledCat(x, skip);
export const scaled = (x: Tensor, scale: Tensor): Scaled => new Scaled(x, scale);

/** A convolution layer's input: a tensor, or the op before it for the layer to fuse. */
export type ConvInput = Tensor | Activated | UpsampledCat | Scaled;
