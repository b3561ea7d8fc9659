/**
 * smp 0.3.4's UnetDecoder (no attention, center = Identity as for every non-VGG encoder):
 * per block nearest x2 upsampling, concatenation with the skip feature, then two
 * conv3x3-BatchNorm-ReLU (`Conv2dReLU`: conv without bias, BatchNorm eps 1e-5,
 * momentum 0.1). Names as smp's: `blocks.0.conv1.0.weight`, `blocks.0.conv1.1.running_mean`.
 * Initialisation as smp's initialize_decoder: kaiming_uniform_(fan_in, relu), BatchNorm 1/0.
 */
import { BatchNorm2d, Conv2d, Module, ModuleList, ReLU, Sequential } from '../../nn';
import { ConvAlgorithm, Tensor, batchNormActConv2d, noGrad, relu, tidy, upCatConv2d } from '../../tensor';
import { ArgumentError } from '../../tensor/check';

/**
 * smp's md.Conv2dReLU with batch norm: Sequential(conv (no bias), BatchNorm2d, ReLU).
 * By default convolutions from 128 input and 64 output channels train with Winograd
 * gradients (see conv2d's `algorithm`: the first two decoder blocks' second convolutions,
 * 10-20% faster backward there, slower on fewer channels).
 */
export function conv2dReLU(inC: number, outC: number, algorithm: ConvAlgorithm = inC >= 128 && outC >= 64 ? 'winograd' : 'auto'): Sequential {
  const conv = new Conv2d(inC, outC, 3, { padding: 1, bias: false, algorithm });
  noGrad(() => conv.weight.uniform_(-Math.sqrt(6 / (inC * 9)), Math.sqrt(6 / (inC * 9))));
  return new Sequential(conv, new BatchNorm2d(outC), new ReLU());
}

export class DecoderBlock extends Module {
  readonly conv1: Sequential;
  readonly conv2: Sequential;

  constructor(readonly inChannels: number, readonly skipChannels: number, readonly outChannels: number) {
    super();
    // 'auto': upCatConv2d's polyphase convolution of the upsampled part (2.25x fewer
    // multiplications than over the upsampled map; measured about 2x faster than libtorch
    // on it and than Winograd gradients there)
    this.conv1 = this.registerModule('conv1', conv2dReLU(inChannels + skipChannels, outChannels, 'auto'));
    this.conv2 = this.registerModule('conv2', conv2dReLU(outChannels, outChannels));
  }

  /** x (N, Cin, h, w), skip (N, Cskip, 2h, 2w) or null -> (N, Cout, 2h, 2w). */
  forwardBlock(x: Tensor, skip: Tensor | null): Tensor {
    // conv2(conv1(cat([upsample(x), skip]))), written as two fused nodes that keep neither
    // the upsampled concatenation nor the first ReLU's output in training (upCatConv2d,
    // batchNormActConv2d; the same values, and the plain ops otherwise)
    const [c1, bn1] = this.conv1.layers as [Conv2d, BatchNorm2d];
    const [c2, bn2] = this.conv2.layers as [Conv2d, BatchNorm2d];
    return tidy(() => {
      const z1 = upCatConv2d(x, skip, c1.weight, c1.bias, { padding: c1.options.padding as number, algorithm: c1.options.algorithm });
      const p = c2.options.padding as number;
      const z2 = bn1.apply(z1, (z, rm, rv, o) => batchNormActConv2d(z, rm, rv, o!, c2.weight, c2.bias, { pads: [p, p, p, p], activation: 'relu', algorithm: c2.options.algorithm }));
      return relu(bn2.forward(z2));
    });
  }

  override forward(x: Tensor): Tensor {
    return this.forwardBlock(x, null);
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
      const next = block.forwardBlock(x, i < skips.length ? skips[i] : null);
      if (i > 0) x.dispose();
      x = next;
    });
    return x;
  }
}
