/**
 * Image embedders for LRIS. An embedder maps uint8 RGB images (N, 3, H, W) to unit
 * rows (N, D) and names itself (`id`), so a reference bank can tell whether its
 * embeddings were made by the embedder now in use.
 *
 * - EncoderEmbedder (default): global-average-pooled deepest feature map of a
 *   trained cqseg model's encoder; no extra model needed.
 * - OnnxEmbedder: any image model exported to ONNX (e.g. a timm Swin-V2 or ResNet-50
 *   as in the paper), run by onnxruntime-node on the CPU; input size and
 *   normalisation come from a JSON file beside the model (MODEL.json or
 *   MODEL.onnx.json): { "input": [H, W], "mean": [r, g, b], "std": [r, g, b],
 *   "inputName"?: string, "outputName"?: string }, mean/std on the 0..1 scale.
 *   A 4-D output (N, C, h, w) is average-pooled; a 3-D (N, tokens, C) is averaged
 *   over tokens.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { integer, must, readJsonFile } from '../util/schema';
import { z } from 'zod';
import { normalizeEmbeddings } from './lris';

export interface Embedder {
  /** identity of the embedder: kind, weights hash and preprocessing */
  readonly id: string;
  /** uint8 RGB (N, 3, H, W) -> float32 unit rows (N, D) */
  embed(images: T.Tensor): Promise<T.Tensor>;
  dispose(): void;
}

export interface Preprocess {
  /** [H, W] the images are resized to (bilinear); omitted: kept */
  input?: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
}

function checkImages(images: T.Tensor, op: string): void {
  if (!(images instanceof T.Tensor) || images.ndim !== 4 || images.shape[1] !== 3) {
    throw new ArgumentError(`Argument 'images' passed to '${op}' must be uint8 (N,3,H,W), got ${images instanceof T.Tensor ? `[${images.shape.join(',')}]` : typeof images}`);
  }
}

/** uint8 (N,3,H,W) -> float32 resized and normalised (x / 255 - mean) / std. */
export function preprocessImages(images: T.Tensor, p: Preprocess): T.Tensor {
  return T.tidy(() => {
    let x = images.to('float32').div(255);
    if (p.input && (p.input[0] !== x.shape[2] || p.input[1] !== x.shape[3])) {
      x = T.interpolate(x, { size: p.input, mode: 'bilinear', alignCorners: false });
    }
    const o = { device: images.device };
    return x.sub(T.tensor(p.mean, [1, 3, 1, 1], o)).div(T.tensor(p.std, [1, 3, 1, 1], o));
  });
}

/** An encoder as cqseg's models expose it: x (N,3,H,W) -> features, the deepest last. */
export interface FeatureEncoder {
  features(x: T.Tensor): T.Tensor[];
  readonly outputStride?: number;
  /** its weights (the images move to their device) */
  parameters?(): T.Tensor[];
}

/**
 * Embeds with a segmentation model's encoder: the deepest feature map, averaged over
 * space, unit-normalised. `id` should identify the weights (e.g. the run's
 * model.safetensors hash); the preprocessing is the model's own.
 *   const e = new EncoderEmbedder(unet.encoder, { id: `encoder:${hash}`, mean, std, input: [256, 256] })
 */
export class EncoderEmbedder implements Embedder {
  readonly id: string;
  constructor(readonly encoder: FeatureEncoder, readonly opts: Preprocess & { id: string }) {
    this.id = `${opts.id}|${JSON.stringify({ input: opts.input ?? null, mean: opts.mean, std: opts.std })}`;
  }

  embedSync(images: T.Tensor): T.Tensor {
    checkImages(images, 'EncoderEmbedder.embed');
    return T.tidy(() => T.noGrad(() => {
      const device = this.encoder.parameters?.()[0]?.device ?? images.device;
      let x = preprocessImages(images.to(device), this.opts); // an alias, freed by tidy, where they are there already
      const s = this.encoder.outputStride ?? 32;
      const [h, w] = [x.shape[2], x.shape[3]];
      const ph = (s - (h % s)) % s;
      const pw = (s - (w % s)) % s;
      if (ph || pw) x = T.pad(x, [0, pw, 0, ph], 'replicate');
      const feats = this.encoder.features(x);
      const deepest = feats[feats.length - 1];
      return normalizeEmbeddings(deepest.mean([2, 3]));
    }));
  }

  async embed(images: T.Tensor): Promise<T.Tensor> {
    return this.embedSync(images);
  }

  dispose(): void {
    // the encoder belongs to the model
  }
}

const number3 = (phrase: string, x: () => z.ZodNumber) => z.tuple([x(), x(), x()], must(phrase));
/** The JSON beside an ONNX embedder: its input size and preprocessing (model.json for model.onnx). */
export const ONNX_CONFIG = z.object({
  input: z.tuple([integer(1), integer(1)], must('[H, W], two positive integers')),
  mean: number3('[r, g, b], three numbers', () => z.number(must('a number'))),
  std: number3('[r, g, b], three positive numbers', () => z.number(must('a positive number')).positive()),
  inputName: z.string(must('a string')).optional(),
  outputName: z.string(must('a string')).optional(),
}).strict();
export type OnnxConfig = z.infer<typeof ONNX_CONFIG>;
/** sha256 of a file, hex. */
export function fileSha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function readConfig(model: string): { file: string; config: OnnxConfig } {
  const candidates = [model.replace(/\.onnx$/i, '') + '.json', model + '.json'];
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) throw new ArgumentError(`${model}: no preprocessing JSON beside the model (looked for ${candidates.join(', ')}); it must hold { "input": [H, W], "mean": [r, g, b], "std": [r, g, b] }`);
  return { file, config: readJsonFile(file, ONNX_CONFIG, 'ONNX preprocessing file', (m) => new ArgumentError(m)) };
}

type Ort = typeof import('onnxruntime-node');
type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>;

/**
 * Embeds with an ONNX image model on onnxruntime-node's CPU provider.
 *   const e = await OnnxEmbedder.load('swinv2.onnx') // reads swinv2.json beside it
 */
export class OnnxEmbedder implements Embedder {
  private constructor(readonly id: string, readonly config: OnnxConfig, private session: Session | null, private ort: Ort) {}

  static async load(model: string): Promise<OnnxEmbedder> {
    if (!fs.existsSync(model)) throw new ArgumentError(`${model}: ONNX model not found`);
    const { file, config } = readConfig(model);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const ort = require('onnxruntime-node') as Ort;
    let session: Session;
    try {
      session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
    } catch (e) {
      throw new ArgumentError(`${model}: onnxruntime cannot load it: ${(e as Error).message}`);
    }
    const id = `onnx:${fileSha256(model)}|${fileSha256(file)}`;
    return new OnnxEmbedder(id, config, session, ort);
  }

  async embed(images: T.Tensor): Promise<T.Tensor> {
    checkImages(images, 'OnnxEmbedder.embed');
    const s = this.session;
    if (s === null) throw new Error('OnnxEmbedder is disposed');
    const x = preprocessImages(images, this.config);
    let data: Float32Array;
    const dims = x.shape;
    try {
      data = T.tidy(() => x.to('cpu').contiguous().dataSync() as Float32Array);
    } finally {
      x.dispose();
    }
    const inName = this.config.inputName ?? s.inputNames[0];
    const outName = this.config.outputName ?? s.outputNames[0];
    const out = (await s.run({ [inName]: new this.ort.Tensor('float32', data, dims) }))[outName];
    if (!out) throw new ArgumentError(`ONNX model has no output '${outName}' (outputs: ${s.outputNames.join(', ')})`);
    const od = out.dims.map(Number);
    const raw = T.tensor(Float32Array.from(out.data as Float32Array), od);
    return T.tidy(() => {
      let f = raw;
      if (od.length === 4) f = raw.mean([2, 3]);
      else if (od.length === 3) f = raw.mean(1);
      else if (od.length !== 2) throw new ArgumentError(`ONNX output '${outName}' must be 2-D, 3-D or 4-D, got [${od.join(',')}]`);
      const e = normalizeEmbeddings(f);
      raw.dispose();
      return e.to(images.device);
    });
  }

  dispose(): void {
    const s = this.session;
    this.session = null;
    if (s) void s.release();
  }
}
