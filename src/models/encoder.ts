/** What every encoder shares: forward is the deepest of its features. */
import { Module } from '../nn';
import { Tensor, dispose } from '../tensor';

/** An encoder module: features at strides 1, 2, 4, 8, 16, 32 with `outChannels` channels. */
export interface Encoder extends Module {
  /** channels of each feature, the input's first (smp's `out_channels`) */
  readonly outChannels: number[];
  /** the input sides must be multiples of this */
  readonly outputStride: number;
  /** x (N, 3, H, W) -> six features; the first is x itself */
  features(x: Tensor): Tensor[];
}

export abstract class EncoderModule extends Module {
  /** x (N, 3, H, W) -> the features of each stage, the input first (smp's order) */
  abstract features(x: Tensor): Tensor[];

  /** The deepest feature map; the intermediate ones are freed. */
  override forward(x: Tensor): Tensor {
    const f = this.features(x);
    dispose(f.slice(1, -1));
    return f[f.length - 1];
  }
}
