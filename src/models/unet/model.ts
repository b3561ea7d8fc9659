/**
 * smp 0.3.4's Unet: an encoder from the registry (depth 5), the UnetDecoder and a
 * segmentation head (conv3x3 to `classes`, no activation). State-dict names are smp's
 * (`encoder.*`, `decoder.blocks.0.conv1.0.weight`, `segmentation_head.0.weight`), so
 * smp checkpoints load with no name map.
 *
 * Input sides must be multiples of 32 (the encoders' output stride): `forward` refuses
 * other sizes with a message giving the padded size, as smp does; `forwardPadded` pads
 * to the next multiple of 32 (reflect, centred) and crops the logits back.
 */
import { Conv2d, Identity, Module, Sequential } from '../../nn';
import { PadMode, Tensor, dispose, noGrad, pad, tidy } from '../../tensor';
import { ArgumentError, checkInt, checkTensor } from '../../tensor/check';
import { Encoder, createEncoder } from '../registry';
import { UnetDecoder } from './decoder';

export interface UnetOptions {
  /** an encoder of the registry (smp's default 'resnet34'; the paper's is 'efficientnet-b2') */
  encoderName?: string;
  /** output channels (smp's default 1) */
  classes?: number;
  decoderChannels?: number[];
}

/** smp's SegmentationHead(kernel 3): conv, Identity upsampling, Identity activation; xavier init, bias 0. */
function segmentationHead(inC: number, classes: number): Sequential {
  const conv = new Conv2d(inC, classes, 3, { padding: 1 });
  const bound = Math.sqrt(6 / (inC * 9 + classes * 9));
  noGrad(() => {
    conv.weight.uniform_(-bound, bound);
    conv.bias!.zero_();
  });
  return new Sequential(conv, new Identity(), new Identity());
}

export interface PadOptions {
  /** 'reflect' (default; 'replicate' where a side is too small to reflect), 'replicate' or 'constant' */
  mode?: Exclude<PadMode, 'circular'>;
  value?: number;
}

export class Unet extends Module {
  readonly encoder: Encoder;
  readonly decoder: UnetDecoder;
  readonly segmentationHead: Sequential;
  readonly encoderName: string;
  readonly classes: number;

  constructor(opts: UnetOptions = {}) {
    super();
    this.encoderName = opts.encoderName ?? 'resnet34';
    this.classes = checkInt(opts.classes ?? 1, 'classes', 'Unet', 1);
    const decoderChannels = opts.decoderChannels ?? [256, 128, 64, 32, 16];
    if (decoderChannels.length !== 5 || decoderChannels.some((c) => !Number.isInteger(c) || c < 1)) {
      throw new ArgumentError(`Argument 'decoderChannels' passed to 'Unet' must be 5 positive integers, got ${JSON.stringify(decoderChannels)}`);
    }
    this.encoder = this.registerModule('encoder', createEncoder(this.encoderName));
    this.decoder = this.registerModule('decoder', new UnetDecoder(this.encoder.outChannels, decoderChannels));
    this.segmentationHead = this.registerModule('segmentation_head', segmentationHead(decoderChannels[4], this.classes));
  }

  /** The padded size for (h, w): each side up to the next multiple of 32. */
  paddedSize(h: number, w: number): [number, number] {
    const s = this.encoder.outputStride;
    return [Math.ceil(h / s) * s, Math.ceil(w / s) * s];
  }

  /**
   * Logits (N, classes, H, W) for x (N, 3, H, W) with H and W multiples of 32.
   *   const logits = tidy(() => model.forward(x));
   */
  override forward(x: Tensor): Tensor {
    checkTensor(x, 'x', 'Unet.forward', 4, '(N,3,H,W)');
    const [n, c, h, w] = x.shape;
    if (c !== 3) throw new ArgumentError(`Argument 'x' passed to 'Unet.forward' must have 3 channels (N,3,H,W), got [${x.shape.join(',')}]`);
    const s = this.encoder.outputStride;
    if (h % s !== 0 || w % s !== 0) {
      const [ph, pw] = this.paddedSize(h, w);
      throw new ArgumentError(`Argument 'x' passed to 'Unet.forward' has height ${h} and width ${w}; both must be multiples of ${s}. ` +
        `Pad to [${n},3,${ph},${pw}] or call forwardPadded(x), which pads and crops back.`);
    }
    const features = this.encoder.features(x);
    try {
      const d = this.decoder.decode(features);
      try {
        return this.segmentationHead.forward(d);
      } finally {
        d.dispose();
      }
    } finally {
      dispose(features.slice(1));
    }
  }

  /**
   * forward for any H, W: pads each side to the next multiple of 32 (the extra split
   * evenly, the odd pixel at the bottom/right), runs the model, crops the logits back to
   * (N, classes, H, W). Reflect padding by default ('replicate' where a side is shorter
   * than the pad it needs).
   */
  forwardPadded(x: Tensor, opts: PadOptions = {}): Tensor {
    checkTensor(x, 'x', 'Unet.forwardPadded', 4, '(N,3,H,W)');
    const [, , h, w] = x.shape;
    const [ph, pw] = this.paddedSize(h, w);
    if (ph === h && pw === w) return this.forward(x);
    const t = Math.floor((ph - h) / 2);
    const l = Math.floor((pw - w) / 2);
    const pads = [l, pw - w - l, t, ph - h - t];
    let mode = opts.mode ?? 'reflect';
    if (mode === 'reflect' && (Math.max(pads[0], pads[1]) >= w || Math.max(pads[2], pads[3]) >= h)) mode = 'replicate';
    return tidy(() => {
      const y = this.forward(pad(x, pads, mode, opts.value ?? 0));
      return y.slice(2, t, t + h).slice(3, l, l + w).contiguous();
    });
  }
}

/** Unet with the paper's defaults (efficientnet-b2) unless told otherwise. */
export function createUnet(opts: UnetOptions = {}): Unet {
  return new Unet({ encoderName: 'efficientnet-b2', ...opts });
}
