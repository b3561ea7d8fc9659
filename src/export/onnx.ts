/**
 * A trained Unet as an ONNX graph (opset 13) in eval mode, built from the module tree with
 * onnx-proto's protobuf messages (no hand-written encoder). Batch norm is folded into the
 * convolution before it: w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta
 * (in float64, stored float32). Input `image`: float32 (N, 3, H, W) holding 0..255 pixel
 * values (the graph normalises with the run's mean and std); outputs `logits` (N, C, H, W)
 * and `embedding` (N, D): the deepest encoder feature averaged over space, before the
 * unit-length normalisation LRIS applies (dcin/lris.ts normalizeEmbeddings). N, H and W
 * are dynamic (H and W multiples of 32 for EfficientNet's static padding: the padding is
 * fixed at export from the run's input size, as efficientnet_pytorch fixes it).
 * Metadata: classes and colors, input size, mean and std, cqseg's version, opset. With
 * fp16, the weights are stored in float16 and cast to float32 in the graph.
 */
import { onnx } from 'onnx-proto';
import { BatchNorm2d, Conv2d, ConvNormAct, Module } from '../nn';
import { EfficientNetEncoder, MBConvBlock } from '../models/efficientnet';
import { BasicBlock, Bottleneck, ResNetEncoder } from '../models/resnet';
import { Unet } from '../models/unet/model';
import { Tensor, tensor, tidy } from '../tensor';
import { CqsegError } from '../util/errors';

export const OPSET = 13;

type Attr = number | number[] | string | { float: number };

class Graph {
  readonly nodes: onnx.INodeProto[] = [];
  readonly inits: onnx.ITensorProto[] = [];
  private n = 0;

  /** fp16: weights stored in float16 and cast to float32 where used (half the file; compute stays float32) */
  constructor(private readonly fp16 = false) {}

  fresh(p: string): string {
    return `${p}_${this.n++}`;
  }

  /** a float32 initializer from values and dims (float16 stored and cast back, for weights, with fp16) */
  constant(values: Float32Array | number[], dims: number[], p = 'c', weight = false): string {
    const name = this.fresh(p);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    if (!(this.fp16 && weight)) {
      this.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
      return name;
    }
    const half = tidy(() => tensor(data, [data.length]).to('float16').dataSync() as Uint16Array);
    this.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT16, rawData: new Uint8Array(half.buffer, half.byteOffset, half.byteLength) });
    return this.op('Cast', [name], { to: onnx.TensorProto.DataType.FLOAT });
  }

  int64(values: number[], p = 'i'): string {
    const name = this.fresh(p);
    this.inits.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
    return name;
  }

  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? this.fresh(type.toLowerCase());
    const attribute = Object.entries(attrs).map(([name, v]): onnx.IAttributeProto => {
      if (typeof v === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      if (typeof v === 'object') return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v.float };
      return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
    });
    this.nodes.push({ opType: type, input: inputs, output: [out], name: this.fresh(type), attribute });
    return out;
  }
}

const f64 = (t: Tensor): Float64Array => Float64Array.from(tidy(() => t.to('float64').contiguous().dataSync() as Float64Array));

/** conv (pads [left, right, top, bottom]) with its batch norm folded in, then the activation */
function convBn(g: Graph, x: string, conv: Conv2d, bn: BatchNorm2d | null, act: 'relu' | 'silu' | null, pads: number[]): string {
  const w = f64(conv.weight);
  const [co, ci, kh, kw] = conv.weight.shape;
  const b = conv.bias ? f64(conv.bias) : new Float64Array(co);
  const per = ci * kh * kw;
  const wf = new Float32Array(w.length);
  const bf = new Float32Array(co);
  const gamma = bn?.weight ? f64(bn.weight) : null;
  const beta = bn?.bias ? f64(bn.bias) : null;
  const mean = bn?.runningMean ? f64(bn.runningMean) : null;
  const variance = bn?.runningVar ? f64(bn.runningVar) : null;
  for (let o = 0; o < co; o++) {
    let scale = 1;
    let shift = b[o];
    if (bn) {
      if (!mean || !variance) throw new CqsegError('batch norm without running statistics cannot be exported', 'ERR_EXPORT');
      scale = (gamma ? gamma[o] : 1) / Math.sqrt(variance[o] + bn.eps);
      shift = (b[o] - mean[o]) * scale + (beta ? beta[o] : 0);
    }
    for (let k = 0; k < per; k++) wf[o * per + k] = w[o * per + k] * scale;
    bf[o] = shift;
  }
  const o = conv.options;
  const stride = typeof o.stride === 'number' ? [o.stride, o.stride] : (o.stride ?? [1, 1]);
  const [l, r, t, bt] = pads;
  let y = g.op('Conv', [x, g.constant(wf, [co, ci, kh, kw], 'w', true), g.constant(bf, [co], 'b', true)],
    { kernel_shape: [kh, kw], strides: stride as number[], pads: [t, l, bt, r], group: o.groups ?? 1 });
  if (act === 'relu') y = g.op('Relu', [y]);
  if (act === 'silu') y = g.op('Mul', [y, g.op('Sigmoid', [y])]);
  return y;
}

const padsOf = (c: Conv2d): number[] => {
  const p = c.pads();
  if (!p) throw new CqsegError("'same'/'valid' padding cannot be exported", 'ERR_EXPORT');
  return p;
};

function resnetFeatures(g: Graph, x: string, e: ResNetEncoder): string[] {
  const feats = [x];
  let y = convBn(g, x, e.conv1, e.bn1, 'relu', padsOf(e.conv1));
  feats.push(y);
  e.layers.forEach((layer, i) => {
    let z = i === 0 ? g.op('MaxPool', [y], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) : y;
    for (const m of layer.layers) {
      const blk = m as BasicBlock | Bottleneck;
      let out: string;
      if (blk instanceof Bottleneck) {
        out = convBn(g, z, blk.conv1, blk.bn1, 'relu', padsOf(blk.conv1));
        out = convBn(g, out, blk.conv2, blk.bn2, 'relu', padsOf(blk.conv2));
        out = convBn(g, out, blk.conv3, blk.bn3, null, padsOf(blk.conv3));
      } else {
        out = convBn(g, z, blk.conv1, blk.bn1, 'relu', padsOf(blk.conv1));
        out = convBn(g, out, blk.conv2, blk.bn2, null, padsOf(blk.conv2));
      }
      const [dc, dbn] = blk.downsample ? (blk.downsample.layers as [Conv2d, BatchNorm2d]) : [null, null];
      const short = dc ? convBn(g, z, dc, dbn, null, padsOf(dc)) : z;
      z = g.op('Relu', [g.op('Add', [out, short])]);
    }
    y = z;
    feats.push(y);
  });
  return feats;
}

function mbconv(g: Graph, x: string, b: MBConvBlock): string {
  let y = x;
  if (b.expandConv) y = convBn(g, y, b.expandConv, b.bn0, 'silu', padsOf(b.expandConv));
  y = convBn(g, y, b.depthwiseConv, b.bn1, 'silu', padsOf(b.depthwiseConv));
  if (b.seReduce && b.seExpand) {
    let s = g.op('GlobalAveragePool', [y]);
    s = convBn(g, s, b.seReduce, null, 'silu', padsOf(b.seReduce));
    s = g.op('Sigmoid', [convBn(g, s, b.seExpand, null, null, padsOf(b.seExpand))]);
    y = g.op('Mul', [y, s]);
  }
  y = convBn(g, y, b.projectConv, b.bn2, null, padsOf(b.projectConv));
  return b.hasSkip ? g.op('Add', [y, x]) : y;
}

function efficientNetFeatures(g: Graph, x: string, e: EfficientNetEncoder): string[] {
  const feats = [x];
  let y = convBn(g, x, e.convStem, e.bn0, 'silu', padsOf(e.convStem));
  feats.push(y);
  const bounds = [0, ...e.config.stageIdxs];
  for (let s = 0; s < 4; s++) {
    for (let k = bounds[s]; k < bounds[s + 1]; k++) y = mbconv(g, y, e.blocks.at(k));
    feats.push(y);
  }
  return feats;
}

function convNormAct(g: Graph, x: string, c: ConvNormAct): string {
  return convBn(g, x, c.conv, c.bn, c.act, padsOf(c.conv));
}

export interface ExportOptions {
  classNames: string[];
  colors: [number, number, number][];
  size: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  version: string;
  /** extra metadata (the run's config, ...) */
  metadata?: Record<string, string>;
  /** weights stored in float16 (cast to float32 in the graph): half the file */
  fp16?: boolean;
}

/** The ONNX model's bytes for a Unet in eval mode. */
export function exportUnet(model: Unet, opts: ExportOptions): Uint8Array {
  const g = new Graph(opts.fp16 ?? false);
  const scale = g.constant(opts.std.map((s) => 1 / (255 * s)), [1, 3, 1, 1], 'scale');
  const shift = g.constant(opts.mean.map((m, i) => -m / opts.std[i]), [1, 3, 1, 1], 'shift');
  const x = g.op('Add', [g.op('Mul', ['image', scale]), shift]);
  const enc = model.encoder as Module;
  let feats: string[];
  if (enc instanceof ResNetEncoder) feats = resnetFeatures(g, x, enc);
  else if (enc instanceof EfficientNetEncoder) feats = efficientNetFeatures(g, x, enc);
  else throw new CqsegError(`no ONNX export for the encoder of ${model.encoderName}`, 'ERR_EXPORT');
  g.op('Flatten', [g.op('GlobalAveragePool', [feats[feats.length - 1]])], { axis: 1 }, 'embedding');
  const f = feats.slice(1).reverse();
  const skips = f.slice(1);
  const scales = g.constant([1, 1, 2, 2], [4], 'scales');
  let y = f[0];
  model.decoder.blocks.items.forEach((block, i) => {
    let u = g.op('Resize', [y, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    if (i < skips.length) u = g.op('Concat', [u, skips[i]], { axis: 1 });
    y = convNormAct(g, convNormAct(g, u, block.conv1), block.conv2);
  });
  const head = model.segmentationHead.layers[0] as Conv2d;
  convBn(g, y, head, null, null, padsOf(head)).toString();
  const logitsNode = g.nodes[g.nodes.length - 1];
  logitsNode.output = ['logits'];
  const dims = (names: string[]): onnx.ITensorShapeProto => ({ dim: names.map((n) => (/^\d+$/.test(n) ? { dimValue: Number(n) } : { dimParam: n })) });
  const valueInfo = (name: string, shape: string[]): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: dims(shape) } } });
  const graph: onnx.IGraphProto = {
    name: 'cqseg_unet', node: g.nodes, initializer: g.inits,
    input: [valueInfo('image', ['N', '3', 'H', 'W'])],
    output: [valueInfo('logits', ['N', String(model.classes), 'H', 'W']), valueInfo('embedding', ['N', String(model.encoder.outChannels[model.encoder.outChannels.length - 1])])],
  };
  const meta: Record<string, string> = {
    classes: JSON.stringify(opts.classNames.map((name, index) => ({ index, name, color: opts.colors[index] }))),
    input_size: JSON.stringify(opts.size), mean: JSON.stringify(opts.mean), std: JSON.stringify(opts.std), input_range: '0..255 float32 pixel values',
    encoder: model.encoderName, cqseg_version: opts.version, weights: opts.fp16 ? 'float16' : 'float32', ...opts.metadata,
  };
  const m: onnx.IModelProto = {
    irVersion: 7, producerName: 'cqseg', producerVersion: opts.version, opsetImport: [{ domain: '', version: OPSET }], graph,
    metadataProps: Object.entries(meta).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(m)).finish();
}
