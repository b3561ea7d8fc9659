/** What every encoder shares: forward is the deepest of its features. */
import { Module } from '../nn';
import { Tensor, dispose } from '../tensor';

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
