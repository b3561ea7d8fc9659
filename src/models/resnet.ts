/**
 * ResNet-18/34/50 encoders with torchvision's layout (ResNet v1.5: the stride of a
 * bottleneck sits on its 3x3 conv) and smp's names (`conv1`, `bn1`, `layer1.0.conv1`,
 * `layer2.0.downsample.0`, ...), without `fc` and `avgpool`, as smp's ResNetEncoder.
 * Initialisation as torchvision: convs kaiming_normal_(fan_out, relu), BatchNorm 1/0.
 */
import { BatchNorm2d, Conv2d, Module, ReLU, Sequential } from '../nn';
import { Tensor, maxPool2d, noGrad, relu, tidy } from '../tensor';
import { Encoder, EncoderModule } from './encoder';

function conv(inC: number, outC: number, k: number, stride = 1): Conv2d {
  const c = new Conv2d(inC, outC, k, { stride, padding: Math.floor(k / 2), bias: false });
  noGrad(() => c.weight.normal_(0, Math.sqrt(2 / (outC * k * k))));
  return c;
}

/** Two 3x3 convs (torchvision BasicBlock, expansion 1). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 3, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.registerModule('relu', new ReLU());
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      const out = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
      return relu(out.add(this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** 1x1, 3x3 (strided), 1x1 convs (torchvision Bottleneck, expansion 4). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 1));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, planes * 4, 1));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    this.registerModule('relu', new ReLU());
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  override forward(x: Tensor): Tensor {
    return tidy(() => {
      let out = relu(this.bn1.forward(this.conv1.forward(x)));
      out = relu(this.bn2.forward(this.conv2.forward(out)));
      out = this.bn3.forward(this.conv3.forward(out));
      return relu(out.add(this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck) & { expansion: number };

/** Blocks per layer and the block type: the whole ResNet spec. */
export const RESNET_SPECS: Record<string, { block: 'basic' | 'bottleneck'; layers: number[] }> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
};

/** smp's ResNetEncoder (torchvision ResNet minus fc/avgpool); features at 1, 1/2, ..., 1/32. */
export class ResNetEncoder extends EncoderModule implements Encoder {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Sequential[] = [];
  readonly outChannels: number[];
  readonly outputStride = 32;

  constructor(readonly spec: { block: 'basic' | 'bottleneck'; layers: number[] }) {
    super();
    const Block: BlockClass = spec.block === 'basic' ? BasicBlock : Bottleneck;
    this.conv1 = this.registerModule('conv1', conv(3, 64, 7, 2));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    this.registerModule('relu', new ReLU());
    let inplanes = 64;
    spec.layers.forEach((n, i) => {
      const planes = 64 * 2 ** i;
      const stride = i === 0 ? 1 : 2;
      const out = planes * Block.expansion;
      const down = stride !== 1 || inplanes !== out ? new Sequential(conv(inplanes, out, 1, stride), new BatchNorm2d(out)) : null;
      const blocks: Module[] = [new Block(inplanes, planes, stride, down)];
      inplanes = out;
      for (let b = 1; b < n; b++) blocks.push(new Block(inplanes, planes, 1, null));
      this.layers.push(this.registerModule(`layer${i + 1}`, new Sequential(...blocks)));
    });
    this.outChannels = [3, 64, ...[1, 2, 3, 4].map((i) => 32 * 2 ** i * Block.expansion)];
  }

  /** x, relu(bn1(conv1 x)) (1/2), layer1(maxpool) (1/4), layer2, layer3, layer4 (1/32). */
  features(x: Tensor): Tensor[] {
    const feats: Tensor[] = [x];
    let y = tidy(() => relu(this.bn1.forward(this.conv1.forward(x))));
    feats.push(y);
    this.layers.forEach((layer, i) => {
      let z = i === 0 ? maxPool2d(y, 3, { stride: 2, padding: 1 }) : y;
      for (const block of layer.layers) {
        const next = block.forward(z);
        if (z !== y) z.dispose();
        z = next;
      }
      y = z;
      feats.push(y);
    });
    return feats;
  }

}
