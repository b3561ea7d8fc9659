/**
 * smp 0.3.4's UnetDecoder (no attention, center = Identity as for every non-VGG encoder):
 * per block nearest x2 upsampling, concatenation with the skip feature, then two
 * conv3x3-BatchNorm-ReLU (`Conv2dReLU`: conv without bias, BatchNorm eps 1e-5,
 * momentum 0.1). Names as smp's: `blocks.0.conv1.0.weight`, `blocks.0.conv1.1.running_mean`.
 * Initialisation as smp's initialize_decoder: kaiming_uniform_(fan_in, relu), BatchNorm 1/0.
 */
import { BatchNorm2d, Conv2d, ConvNormAct, Module, ModuleList, upsampledCat } from '../../nn';
import { Tensor, noGrad, tidy } from '../../tensor';
import { ArgumentError } from '../../tensor/check';

/** smp's md.Conv2dReLU with batch norm: conv 3x3 (no bias), BatchNorm2d, ReLU. */
export function conv2dReLU(inC: number, outC: number): ConvNormAct {
  const conv = new Conv2d(inC, outC, 3, { padding: 1, bias: false });
  noGrad(() => conv.weight.uniform_(-Math.sqrt(6 / (inC * 9)), Math.sqrt(6 / (inC * 9))));
  return new ConvNormAct(conv, new BatchNorm2d(outC), 'relu');
}

export class DecoderBlock extends Module {
  readonly conv1: ConvNormAct;
  readonly conv2: ConvNormAct;

  constructor(readonly inChannels: number, readonly skipChannels: number, readonly outChannels: number) {
    super();
    this.conv1 = this.registerModule('conv1', conv2dReLU(inChannels + skipChannels, outChannels));
    this.conv2 = this.registerModule('conv2', conv2dReLU(outChannels, outChannels));
  }

  /** x (N, Cin, h, w), skip (N, Cskip, 2h, 2w) or null -> (N, Cout, 2h, 2w). */
  override forward(x: Tensor, skip: Tensor | null = null): Tensor {
    // smp: x = interpolate(x, scale_factor=2, mode="nearest"); x = cat([x, skip], dim=1);
    // x = conv1(x); x = conv2(x). conv1 takes the upsampling and concatenation into its
    // kernel, and hands conv2 its output before BN + ReLU for conv2's kernel to take.
    return tidy(() => this.conv2.forward(this.conv1.activated(upsampledCat(x, skip))));
  }
}

export class UnetDecoder extends Module {
  readonly blocks: ModuleList<DecoderBlock>;

  /** encoderChannels: smp's out_channels (input first); decoderChannels: one per block. */
  constructor(encoderChannels: number[], readonly decoderChannels: number[] = [256, 128, 64, 32, 16]) {
    super();
    if (encoderChannels.length !== decoderChannels.length + 1) {
      throw new ArgumentError(`UnetDecoder: ${decoderChannels.length} decoder blocks need ${decoderChannels.length + 1} encoder channels, got ${encoderChannels.length}`);
    }
    const enc = encoderChannels.slice(1).reverse();
    const inCh = [enc[0], ...decoderChannels.slice(0, -1)];
    const skipCh = [...enc.slice(1), 0];
    this.blocks = this.registerModule('blocks', new ModuleList(decoderChannels.map((c, i) => new DecoderBlock(inCh[i], skipCh[i], c))));
  }

  /** features as the encoder returns them (input first); the first is not used. */
  decode(features: Tensor[]): Tensor {
    const f = features.slice(1).reverse();
    const skips = f.slice(1);
    let x = f[0];
    this.blocks.items.forEach((block, i) => {
      const next = block.forward(x, i < skips.length ? skips[i] : null);
      if (i > 0) x.dispose();
      x = next;
    });
    return x;
  }
}
