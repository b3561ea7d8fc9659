/**
 * A small plain U-Net (levels of two conv3x3-BatchNorm-ReLU, max-pool down, nearest
 * up-sampling and skip concatenation) for smoke runs and the core benchmark; the
 * paper's model is the smp-compatible Unet with an EfficientNet encoder.
 */
import { BatchNorm2d, Conv2d, Module, ModuleList, ReLU, Sequential } from '../nn';
import { Tensor, cat, interpolate, maxPool2d } from '../tensor';

function doubleConv(inC: number, outC: number): Sequential {
  return new Sequential(
    new Conv2d(inC, outC, 3, { padding: 1, bias: false }), new BatchNorm2d(outC), new ReLU(),
    new Conv2d(outC, outC, 3, { padding: 1, bias: false }), new BatchNorm2d(outC), new ReLU(),
  );
}

export class TinyUnet extends Module {
  readonly down: ModuleList<Sequential>;
  readonly up: ModuleList<Sequential>;
  readonly head: Conv2d;

  /** channels per level, e.g. [16, 32, 64] for 3 levels */
  constructor(inChannels: number, classes: number, channels: number[] = [16, 32, 64]) {
    super();
    this.down = this.registerModule('down', new ModuleList(channels.map((c, i) => doubleConv(i === 0 ? inChannels : channels[i - 1], c))));
    const ups: Sequential[] = [];
    for (let i = channels.length - 2; i >= 0; i--) ups.push(doubleConv(channels[i + 1] + channels[i], channels[i]));
    this.up = this.registerModule('up', new ModuleList(ups));
    this.head = this.registerModule('head', new Conv2d(channels[0], classes, 1));
  }

  override forward(x: Tensor): Tensor {
    const skips: Tensor[] = [];
    let y = x;
    this.down.items.forEach((block, i) => {
      if (i > 0) y = maxPool2d(y, 2);
      y = block.forward(y);
      skips.push(y);
    });
    skips.pop();
    for (const block of this.up.items) {
      const skip = skips.pop()!;
      y = block.forward(cat([interpolate(y, { scaleFactor: 2, mode: 'nearest' }), skip], 1));
    }
    return this.head.forward(y);
  }
}
