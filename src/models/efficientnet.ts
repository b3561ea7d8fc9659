/**
 * EfficientNet B0-B7 exactly as efficientnet_pytorch 0.7.1 builds them for
 * segmentation_models_pytorch 0.3.4 (smp's `EfficientNetEncoder`): MBConv blocks with
 * squeeze-excitation and swish, BatchNorm eps 1e-3 and momentum 0.01, drop-connect in
 * training, and TensorFlow-style "same" padding computed once from the model's nominal
 * image size (efficientnet_pytorch's Conv2dStaticSamePadding; smp always builds with
 * the table's image size, so the padding does not follow the actual input).
 *
 * One compact spec (efficientnet_pytorch's block strings, decoded once) and one
 * b0-b7 table (width, depth, resolution, dropout) describe every size. Parameter and
 * buffer names are smp's (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, ...).
 */
import { BatchNorm2d, Conv2d, Conv2dLayerOptions, Module, ModuleList, scaled } from '../nn';
import { Tensor, adaptiveAvgPool2d, conv2d, pad, rand, sigmoid, silu, tidy, where } from '../tensor';
import { ArgumentError } from '../tensor/check';
import { Encoder, EncoderModule } from './encoder';

/** One stage of the spec, decoded from 'r2_k3_s22_e6_i16_o24_se0.25'. */
export interface BlockSpec {
  repeats: number;
  kernel: number;
  stride: number;
  expand: number;
  inChannels: number;
  outChannels: number;
  /** squeeze ratio of the input channels; null: no squeeze-excitation */
  seRatio: number | null;
  idSkip: boolean;
}

/** efficientnet_pytorch's B0 stages; every size scales them. */
export const EFFICIENTNET_BLOCKS = [
  'r1_k3_s11_e1_i32_o16_se0.25', 'r2_k3_s22_e6_i16_o24_se0.25',
  'r2_k5_s22_e6_i24_o40_se0.25', 'r3_k3_s22_e6_i40_o80_se0.25',
  'r3_k5_s11_e6_i80_o112_se0.25', 'r4_k5_s22_e6_i112_o192_se0.25',
  'r1_k3_s11_e6_i192_o320_se0.25',
];

/** Coefficients: width, depth, nominal resolution, dropout (efficientnet_params). */
export const EFFICIENTNET_SCALING: Record<string, [number, number, number, number]> = {
  'efficientnet-b0': [1.0, 1.0, 224, 0.2],
  'efficientnet-b1': [1.0, 1.1, 240, 0.2],
  'efficientnet-b2': [1.1, 1.2, 260, 0.3],
  'efficientnet-b3': [1.2, 1.4, 300, 0.3],
  'efficientnet-b4': [1.4, 1.8, 380, 0.4],
  'efficientnet-b5': [1.6, 2.2, 456, 0.4],
  'efficientnet-b6': [1.8, 2.6, 528, 0.5],
  'efficientnet-b7': [2.0, 3.1, 600, 0.5],
};

/** Decodes one block string (efficientnet_pytorch BlockDecoder._decode_block_string). */
export function decodeBlock(s: string): BlockSpec {
  const opts: Record<string, string> = {};
  for (const op of s.split('_')) {
    const m = /^([a-z]+)(\d.*)$/.exec(op);
    if (m) opts[m[1]] = m[2];
  }
  for (const k of ['r', 'k', 's', 'e', 'i', 'o']) {
    if (opts[k] === undefined) throw new ArgumentError(`EfficientNet block spec '${s}' lacks '${k}'`);
  }
  const st = opts.s;
  if (!(st.length === 1 || (st.length === 2 && st[0] === st[1]))) {
    throw new ArgumentError(`EfficientNet block spec '${s}': stride '${st}' must be one digit or two equal digits`);
  }
  return {
    repeats: Number(opts.r), kernel: Number(opts.k), stride: Number(st[0]), expand: Number(opts.e),
    inChannels: Number(opts.i), outChannels: Number(opts.o),
    seRatio: opts.se !== undefined ? Number(opts.se) : null, idSkip: !s.includes('noskip'),
  };
}

/** Channels scaled by the width coefficient, rounded to a multiple of 8 (round_filters). */
export function roundFilters(filters: number, width: number, divisor = 8): number {
  if (!width) return filters;
  const f = filters * width;
  let out = Math.max(divisor, Math.floor(Math.floor(f + divisor / 2) / divisor) * divisor);
  if (out < 0.9 * f) out += divisor;
  return out;
}

/** Repeats scaled by the depth coefficient, rounded up (round_repeats). */
export function roundRepeats(repeats: number, depth: number): number {
  return depth ? Math.ceil(depth * repeats) : repeats;
}

/**
 * TF "same" padding for an input side `i`: total max((ceil(i/s)-1)*s + (k-1)*d + 1 - i, 0),
 * split as [total // 2, total - total // 2] (left/top first), as efficientnet_pytorch.
 */
export function samePadding(i: number, k: number, s: number, d = 1): [number, number] {
  const o = Math.ceil(i / s);
  const p = Math.max((o - 1) * s + (k - 1) * d + 1 - i, 0);
  return [Math.floor(p / 2), p - Math.floor(p / 2)];
}

/**
 * Conv2d with padding fixed at construction for a nominal image side (Conv2dStaticSamePadding).
 * Symmetric padding is handed to the convolution (the same numbers, no copy); asymmetric
 * padding is an explicit zero pad first, as efficientnet_pytorch's ZeroPad2d.
 */
export class Conv2dStaticSame extends Conv2d {
  /** [left, right, top, bottom] */
  private readonly fixedPads: number[];

  constructor(inC: number, outC: number, kernel: number, imageSize: [number, number], opts: Conv2dLayerOptions & { stride?: number } = {}) {
    super(inC, outC, kernel, { ...opts, padding: 0 });
    const s = opts.stride ?? 1;
    const [t, b] = samePadding(imageSize[0], kernel, s);
    const [l, r] = samePadding(imageSize[1], kernel, s);
    this.fixedPads = [l, r, t, b];
  }

  override pads(): number[] {
    return this.fixedPads;
  }

  protected override convolve(x: Tensor): Tensor {
    const [l, r, t, b] = this.fixedPads;
    const o = this.options;
    if (l === r && t === b) return conv2d(x, this.weight, this.bias, { stride: o.stride, groups: o.groups, padding: [t, l] });
    const xp = pad(x, this.fixedPads);
    try {
      return conv2d(xp, this.weight, this.bias, { stride: o.stride, groups: o.groups });
    } finally {
      xp.dispose();
    }
  }
}

const BN_MOMENTUM = 1 - 0.99; // efficientnet_pytorch: 1 - batch_norm_momentum
const BN_EPS = 1e-3;
const bn = (c: number): BatchNorm2d => new BatchNorm2d(c, { eps: BN_EPS, momentum: BN_MOMENTUM });
const nextSize = (size: [number, number], s: number): [number, number] => [Math.ceil(size[0] / s), Math.ceil(size[1] / s)];

/**
 * Drop-connect (stochastic depth per sample) as efficientnet_pytorch: in training,
 * x / (1 - p) * floor(1 - p + U[0,1)) with one draw per sample; identity in eval. One
 * division by (1 - p) for a kept sample and by +Infinity for a dropped one: the same
 * values bit for bit (x / inf and x / (1 - p) * 0 are both 0 of x's sign, NaN for
 * x = +-inf or NaN), one pass over x instead of two, in forward and in backward.
 */
export function dropConnect(x: Tensor, p: number, training: boolean): Tensor {
  if (!training) return x;
  const keepProb = 1 - p;
  return tidy(() => {
    const mask = rand([x.shape[0], 1, 1, 1], { dtype: x.dtype, device: x.device }).add(keepProb).floor();
    return x.div(where(mask.gt(0), mask.mul(keepProb), Infinity));
  });
}

/** Mobile inverted bottleneck with squeeze-excitation (efficientnet_pytorch MBConvBlock). */
export class MBConvBlock extends Module {
  readonly expandConv: Conv2dStaticSame | null = null;
  readonly bn0: BatchNorm2d | null = null;
  readonly depthwiseConv: Conv2dStaticSame;
  readonly bn1: BatchNorm2d;
  readonly seReduce: Conv2dStaticSame | null = null;
  readonly seExpand: Conv2dStaticSame | null = null;
  readonly projectConv: Conv2dStaticSame;
  readonly bn2: BatchNorm2d;
  /** residual (and drop-connect) applies: id_skip, stride 1 given as a plain 1, same channels */
  readonly hasSkip: boolean;

  /** `firstOfStage`: efficientnet_pytorch keeps the stride as a list there, so `stride == 1` fails and no residual is added. */
  constructor(readonly spec: BlockSpec, imageSize: [number, number], firstOfStage: boolean) {
    super();
    const inp = spec.inChannels;
    const oup = inp * spec.expand;
    if (spec.expand !== 1) {
      this.expandConv = this.registerModule('_expand_conv', new Conv2dStaticSame(inp, oup, 1, imageSize, { bias: false }));
      this.bn0 = this.registerModule('_bn0', bn(oup));
    }
    this.depthwiseConv = this.registerModule('_depthwise_conv',
      new Conv2dStaticSame(oup, oup, spec.kernel, imageSize, { groups: oup, stride: spec.stride, bias: false }));
    this.bn1 = this.registerModule('_bn1', bn(oup));
    const outSize = nextSize(imageSize, spec.stride);
    if (spec.seRatio !== null && spec.seRatio > 0 && spec.seRatio <= 1) {
      const squeezed = Math.max(1, Math.floor(inp * spec.seRatio));
      this.seReduce = this.registerModule('_se_reduce', new Conv2dStaticSame(oup, squeezed, 1, [1, 1]));
      this.seExpand = this.registerModule('_se_expand', new Conv2dStaticSame(squeezed, oup, 1, [1, 1]));
    }
    this.projectConv = this.registerModule('_project_conv', new Conv2dStaticSame(oup, spec.outChannels, 1, outSize, { bias: false }));
    this.bn2 = this.registerModule('_bn2', bn(spec.outChannels));
    this.hasSkip = spec.idSkip && !firstOfStage && spec.stride === 1 && spec.inChannels === spec.outChannels;
  }

  /** x (N, Cin, H, W) -> (N, Cout, H/s, W/s); `dropConnectRate` as smp passes it (0: none). */
  forwardBlock(inputs: Tensor, dropConnectRate = 0): Tensor {
    return tidy(() => {
      // efficientnet_pytorch: x = swish(bn0(expand_conv(inputs))); x = swish(bn1(depthwise_conv(x)));
      // x = sigmoid(se_expand(swish(se_reduce(avg_pool(x))))) * x; x = bn2(project_conv(x)).
      // The convolutions take the op before them into their kernels (nn/fused.ts).
      const expanded = this.expandConv ? this.bn0!.activated(this.expandConv.forward(inputs), 'silu') : inputs;
      let x = this.bn1.forwardSilu(this.depthwiseConv.forward(expanded));
      const scale = this.seReduce ? sigmoid(this.seExpand!.forward(silu(this.seReduce.forward(adaptiveAvgPool2d(x, 1))))) : null;
      x = this.bn2.forward(this.projectConv.forward(scale ? scaled(x, scale) : x));
      if (this.hasSkip) {
        if (dropConnectRate) x = dropConnect(x, dropConnectRate, this.training);
        x = x.add(inputs);
      }
      return x;
    });
  }

  override forward(x: Tensor): Tensor {
    return this.forwardBlock(x, 0);
  }
}

/** What builds one EfficientNet: the spec, the scaling, the stem/head widths and smp's split. */
export interface EfficientNetConfig {
  blocks: string[];
  width: number;
  depth: number;
  /** nominal input side the static "same" padding is computed for */
  imageSize: number;
  dropConnectRate: number;
  stemChannels: number;
  headChannels: number;
  /** smp's stage_idxs: the block index after which each of the last four features is taken */
  stageIdxs: number[];
  /** smp's out_channels (input channels first) */
  outChannels: number[];
}

/**
 * smp's EfficientNetEncoder: efficientnet_pytorch's EfficientNet without `_fc`
 * (`_conv_head` and `_bn1` stay, unused, as in smp's state dict).
 */
export class EfficientNetEncoder extends EncoderModule implements Encoder {
  readonly convStem: Conv2dStaticSame;
  readonly bn0: BatchNorm2d;
  readonly blocks: ModuleList<MBConvBlock>;
  readonly convHead: Conv2dStaticSame;
  readonly bn1: BatchNorm2d;
  readonly outChannels: number[];
  readonly outputStride = 32;

  constructor(readonly config: EfficientNetConfig) {
    super();
    const { width, depth } = config;
    let size: [number, number] = [config.imageSize, config.imageSize];
    const stem = roundFilters(config.stemChannels, width);
    this.convStem = this.registerModule('_conv_stem', new Conv2dStaticSame(3, stem, 3, size, { stride: 2, bias: false }));
    this.bn0 = this.registerModule('_bn0', bn(stem));
    size = nextSize(size, 2);
    this.blocks = this.registerModule('_blocks', new ModuleList<MBConvBlock>());
    let last = stem;
    for (const raw of config.blocks.map(decodeBlock)) {
      const spec: BlockSpec = { ...raw, inChannels: roundFilters(raw.inChannels, width), outChannels: roundFilters(raw.outChannels, width), repeats: roundRepeats(raw.repeats, depth) };
      this.blocks.push(new MBConvBlock(spec, size, true));
      size = nextSize(size, spec.stride);
      const rest: BlockSpec = { ...spec, inChannels: spec.outChannels, stride: 1 };
      for (let r = 1; r < spec.repeats; r++) this.blocks.push(new MBConvBlock(rest, size, false));
      last = spec.outChannels;
    }
    const head = roundFilters(config.headChannels, width);
    this.convHead = this.registerModule('_conv_head', new Conv2dStaticSame(last, head, 1, size, { bias: false }));
    this.bn1 = this.registerModule('_bn1', bn(head));
    this.outChannels = [...config.outChannels];
    const n = this.blocks.length;
    if (config.stageIdxs.length !== 4 || config.stageIdxs[3] !== n || config.stageIdxs.some((v, i) => v <= (i > 0 ? config.stageIdxs[i - 1] : 0))) {
      throw new ArgumentError(`EfficientNet stageIdxs ${JSON.stringify(config.stageIdxs)} must rise to the block count ${n}`);
    }
  }

  /**
   * The six features smp's encoder returns: x, stem (1/2), then the blocks split at
   * stageIdxs (1/4, 1/8, 1/16, 1/32). Block k gets drop-connect rate 0.2 * k / blocks.
   * Intermediate block outputs are freed as soon as the next block has consumed them.
   */
  features(x: Tensor): Tensor[] {
    const feats: Tensor[] = [x];
    let y = tidy(() => this.bn0.forwardSilu(this.convStem.forward(x)));
    feats.push(y);
    const n = this.blocks.length;
    const bounds = [0, ...this.config.stageIdxs];
    for (let s = 0; s < 4; s++) {
      for (let k = bounds[s]; k < bounds[s + 1]; k++) {
        const next = this.blocks.at(k).forwardBlock(y, (this.config.dropConnectRate * k) / n);
        if (k > bounds[s]) y.dispose(); // a stage's first input is the previous feature: keep it
        y = next;
      }
      feats.push(y);
    }
    return feats;
  }

}
