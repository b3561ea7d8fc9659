/**
 * DCIN in plain JavaScript, for an exported model run by onnxruntime (web or node): the
 * browser's copy of `cqseg predict`'s path for one image (dcin/session.ts, dcin/predict.ts)
 * with the reference data of `cqseg export --dcin` (export/dcin_data.ts):
 *   1. the image is resized to the model's input size as sharp resizes it (resizeLikeSharp);
 *   2. mode none: the model on it; gris: on its Lab transfer toward the GRIS reference's
 *      statistics; lris: toward the reference whose embedding has the largest dot product
 *      with the image's (the model's `embedding` output, unit-length); full: the mean of
 *      the gris and lris probabilities (softmax over classes);
 *   3. the probabilities are upsampled bilinearly (align_corners false) to the image's own
 *      size and the label is their argmax.
 * No imports: the same file runs in Node (tests) and, compiled as an ES module, in the page.
 *   const r = await segment({ data: rgba, width, height, channels: 4 }, { mode: 'full', model, info, dcin });
 */
import { LabStats, labTransfer8 } from './lab8.js';

export const WEB_MODES = ['none', 'gris', 'lris', 'full'] as const;
export type WebMode = (typeof WEB_MODES)[number];

/** Interleaved RGB or RGBA bytes (canvas ImageData is RGBA). */
export interface RgbImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** The exported model: float32 (N, 3, H, W) of 0..255 values -> logits (N, C, H, W) and embeddings (N, D). */
export interface WebModel {
  run(images: Float32Array, n: number, h: number, w: number): Promise<{ logits: Float32Array; embedding: Float32Array }>;
}

/** What the bundle's model.json says of the model (from the run: cqseg export --bundle). */
export interface ModelInfo {
  /** [H, W] the model was trained at */
  size: [number, number];
  classes: { index: number; name: string; color: [number, number, number] }[];
}

/** `cqseg export --dcin`'s file (export/dcin_data.ts). */
export interface DcinFile {
  format: 'cqseg-dcin';
  version: 1;
  embedder: string;
  gris: { index: number; name: string; lab: LabStats };
  references: { name: string; lab: LabStats }[];
  embeddings: { dims: [number, number]; dtype: 'float32'; base64: string };
}

export interface SegmentResult {
  /** class per pixel at the image's own size, row-major */
  labels: Uint8Array;
  width: number;
  height: number;
  /** pixels per class */
  pixels: number[];
  /** the references used (indices into dcin.references) */
  gris?: number;
  lris?: number;
  /** model runs and their total time (ms) */
  runs: number;
  modelMs: number;
}

/** Lanczos-3 kernel (a = 3). */
function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** Catmull-Rom cubic (a = -0.5), libvips' bicubic interpolator. */
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return 1.5 * t * t * t - 2.5 * t * t + 1;
  if (t < 2) return -0.5 * t * t * t + 2.5 * t * t - 4 * t + 2;
  return 0;
}

/** A 1-D resampling: output o = sum_k weights[o * count + k] * input[clamp(first[o] + k)]. */
interface Taps { first: Int32Array; count: number; weights: Float64Array }

/**
 * The taps of sharp's resize (libvips 8.18's vips_resize, measured on impulses):
 * 'reduce' shrinks with Lanczos-3 widened by the factor, at pixel centres; 'affine'
 * (used when an axis enlarges, and then on both axes) samples input o * scale - 0.5 with
 * the bicubic interpolator, edges clamped: an axis of unchanged size moves by half a pixel.
 */
function taps(inSize: number, outSize: number, kind: 'reduce' | 'affine'): Taps {
  const scale = inSize / outSize;
  const support = kind === 'affine' ? 2 : 3 * scale;
  const count = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const weights = new Float64Array(outSize * count);
  for (let o = 0; o < outSize; o++) {
    // the sample position, in input coordinates where pixel i's centre is i + 0.5
    const at = kind === 'affine' ? o * scale : (o + 0.5) * scale;
    const lo = Math.floor(at - support);
    first[o] = lo;
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const d = lo + k + 0.5 - at;
      const w = kind === 'affine' ? cubic(d) : lanczos3(d / scale);
      weights[o * count + k] = w;
      sum += w;
    }
    for (let k = 0; k < count; k++) weights[o * count + k] /= sum;
  }
  return { first, count, weights };
}

/** Resamples interleaved (h, w, 3) float values along width (axis 'x') or height ('y'). */
function pass(src: Float64Array, w: number, h: number, t: Taps, axis: 'x' | 'y'): Float64Array {
  const [ow, oh] = axis === 'x' ? [t.first.length, h] : [w, t.first.length];
  const out = new Float64Array(ow * oh * 3);
  const n = axis === 'x' ? w : h;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = axis === 'x' ? x : y;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = 0; k < t.count; k++) {
          const i = Math.min(n - 1, Math.max(0, t.first[o] + k));
          acc += t.weights[o * t.count + k] * src[(axis === 'x' ? y * w + i : i * w + x) * 3 + c];
        }
        out[(y * ow + x) * 3 + c] = acc;
      }
    }
  }
  return out;
}

/** Rounded and clamped to bytes (sharp rounds each stage's output to 8 bits). */
const toBytes = (x: Float64Array): Float64Array => x.map((v) => Math.min(255, Math.max(0, Math.round(v))));

/**
 * An image resized to [H, W] as sharp resizes it (cqseg's readImage / resizeImage with
 * fit 'fill' and kernel lanczos3): axes that shrink are reduced with Lanczos-3 first
 * (heights, then widths, each rounded to bytes, as libvips orders them);
 * if an axis enlarges, a bicubic affine pass follows on both axes. 3 channels out.
 * Agreement with sharp is within a level or two (test/web/dcin.test.ts), not bit for bit.
 */
export function resizeLikeSharp(img: RgbImage, size: [number, number]): { data: Uint8Array; width: number; height: number; channels: 3 } {
  const [oh, ow] = size;
  let x: Float64Array = new Float64Array(img.width * img.height * 3);
  for (let p = 0; p < img.width * img.height; p++) for (let c = 0; c < 3; c++) x[p * 3 + c] = img.data[p * img.channels + c];
  let [w, h] = [img.width, img.height];
  if (h > oh) [x, h] = [toBytes(pass(x, w, h, taps(h, oh, 'reduce'), 'y')), oh];
  if (w > ow) [x, w] = [toBytes(pass(x, w, h, taps(w, ow, 'reduce'), 'x')), ow];
  if (w < ow || h < oh) {
    x = pass(x, w, h, taps(w, ow, 'affine'), 'x');
    x = toBytes(pass(x, ow, h, taps(h, oh, 'affine'), 'y'));
  }
  return { data: Uint8Array.from(x), width: ow, height: oh, channels: 3 };
}

/** Interleaved RGB bytes of several same-size images -> planar float32 (N, 3, H, W) of 0..255. */
export function toPlanar(images: Uint8Array[], h: number, w: number): Float32Array {
  const p = h * w;
  const out = new Float32Array(images.length * 3 * p);
  images.forEach((img, n) => {
    for (let i = 0; i < p; i++) for (let c = 0; c < 3; c++) out[(n * 3 + c) * p + i] = img[i * 3 + c];
  });
  return out;
}

/** Softmax over classes of logits (N, C, P), in place into a new array. */
export function softmax(logits: Float32Array, n: number, c: number, p: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < p; i++) {
      let mx = -Infinity;
      for (let j = 0; j < c; j++) mx = Math.max(mx, logits[(k * c + j) * p + i]);
      let s = 0;
      for (let j = 0; j < c; j++) s += Math.exp(logits[(k * c + j) * p + i] - mx);
      for (let j = 0; j < c; j++) out[(k * c + j) * p + i] = Math.exp(logits[(k * c + j) * p + i] - mx) / s;
    }
  }
  return out;
}

/** Source taps of a bilinear resize (align_corners false, as torch: negative positions clamp to 0). */
function bilinearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; t: Float64Array } {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const t = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    i0[o] = Math.min(inSize - 1, Math.floor(src));
    i1[o] = Math.min(inSize - 1, i0[o] + 1);
    t[o] = src - i0[o];
  }
  return { i0, i1, t };
}

/** argmax over classes of probabilities (C, h, w) upsampled bilinearly to (H, W) (eval/upsample.ts's rule). */
export function upsampleArgmax(probs: Float32Array, c: number, h: number, w: number, H: number, W: number): Uint8Array {
  const ys = bilinearTaps(h, H);
  const xs = bilinearTaps(w, W);
  const labels = new Uint8Array(H * W);
  const p = h * w;
  for (let y = 0; y < H; y++) {
    const [r0, r1, ty] = [ys.i0[y] * w, ys.i1[y] * w, ys.t[y]];
    for (let x = 0; x < W; x++) {
      const [c0, c1, tx] = [xs.i0[x], xs.i1[x], xs.t[x]];
      let best = 0;
      let bestV = -Infinity;
      for (let j = 0; j < c; j++) {
        const b = j * p;
        const top = probs[b + r0 + c0] * (1 - tx) + probs[b + r0 + c1] * tx;
        const bottom = probs[b + r1 + c0] * (1 - tx) + probs[b + r1 + c1] * tx;
        const v = top * (1 - ty) + bottom * ty;
        if (v > bestV) [best, bestV] = [j, v];
      }
      labels[y * W + x] = best;
    }
  }
  return labels;
}

/** The bank's unit embeddings (M, D) from the DCIN file's base64. */
export function decodeEmbeddings(d: DcinFile): Float32Array {
  const bin = atob(d.embeddings.base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const rows = new Float32Array(bytes.buffer);
  const [m, dim] = d.embeddings.dims;
  if (rows.length !== m * dim) throw new Error(`DCIN file: embeddings hold ${rows.length} values, dims say ${m} x ${dim}`);
  return rows;
}

/** LRIS: the reference whose unit embedding has the largest float64 dot product with the unit-length `q` (ties: the lowest index). */
export function lrisIndex(embedding: Float32Array, bank: Float32Array, dim: number): number {
  let norm = 0;
  for (let i = 0; i < dim; i++) norm += Math.fround(embedding[i] * embedding[i]);
  const n = Math.fround(Math.sqrt(norm)) || 1;
  const q = Float32Array.from(embedding.subarray(0, dim), (v) => v / n);
  let best = 0;
  let bestS = -Infinity;
  for (let m = 0; m * dim < bank.length; m++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += q[i] * bank[m * dim + i];
    if (s > bestS) [best, bestS] = [m, s];
  }
  return best;
}

function checkDcin(d: DcinFile | undefined, mode: WebMode): DcinFile {
  if (!d) throw new Error(`DCIN mode '${mode}' needs the DCIN data file (cqseg export --refs BANK --dcin FILE.json)`);
  if (d.format !== 'cqseg-dcin' || d.version !== 1) throw new Error(`not a cqseg DCIN data file (format ${String(d.format)}, version ${String(d.version)}; expected cqseg-dcin, 1)`);
  return d;
}

/** Segments one image under a DCIN mode with an exported model (see the file's comment). */
export async function segment(image: RgbImage, opts: { mode: WebMode; model: WebModel; info: ModelInfo; dcin?: DcinFile; embeddings?: Float32Array }): Promise<SegmentResult> {
  if (!WEB_MODES.includes(opts.mode)) throw new Error(`mode must be one of ${WEB_MODES.join(', ')}, got ${String(opts.mode)}`);
  const [h, w] = opts.info.size;
  const c = opts.info.classes.length;
  const p = h * w;
  const small = resizeLikeSharp(image, [h, w]).data;
  let runs = 0;
  let modelMs = 0;
  const run = async (imgs: Uint8Array[]): Promise<{ logits: Float32Array; embedding: Float32Array }> => {
    const t0 = performance.now();
    const r = await opts.model.run(toPlanar(imgs, h, w), imgs.length, h, w);
    modelMs += performance.now() - t0;
    runs += 1;
    return r;
  };
  const out: Partial<SegmentResult> = {};
  let probs: Float32Array;
  if (opts.mode === 'none') {
    probs = softmax((await run([small])).logits, 1, c, p);
  } else {
    const d = checkDcin(opts.dcin, opts.mode);
    const stats: LabStats[] = [];
    if (opts.mode === 'gris' || opts.mode === 'full') {
      out.gris = d.gris.index;
      stats.push(d.gris.lab);
    }
    if (opts.mode === 'lris' || opts.mode === 'full') {
      const bank = opts.embeddings ?? decodeEmbeddings(d);
      const { embedding } = await run([small]);
      if (embedding.length !== d.embeddings.dims[1]) throw new Error(`the model's embedding has ${embedding.length} values, the DCIN file's ${d.embeddings.dims[1]}: a DCIN file made for another model`);
      out.lris = lrisIndex(embedding, bank, d.embeddings.dims[1]);
      stats.push(d.references[out.lris].lab);
    }
    const transferred = stats.map((s) => labTransfer8(small, 3, s));
    const all = softmax((await run(transferred)).logits, transferred.length, c, p);
    probs = all.subarray(0, c * p);
    if (transferred.length === 2) {
      probs = new Float32Array(c * p);
      for (let i = 0; i < c * p; i++) probs[i] = (all[i] + all[c * p + i]) / 2;
    }
  }
  const labels = upsampleArgmax(probs, c, h, w, image.height, image.width);
  const pixels = new Array<number>(c).fill(0);
  for (const l of labels) pixels[l]++;
  return { ...out, labels, width: image.width, height: image.height, pixels, runs, modelMs };
}
