/**
 * RGB <-> CIE Lab (D65), batched.
 *
 * Two paths, chosen by the input's dtype (as OpenCV chooses by depth):
 *
 * - uint8: OpenCV's 8-bit conversion (cv2.COLOR_RGB2LAB / COLOR_LAB2RGB on CV_8U):
 *   L scaled to 0..255 (L * 255 / 100), a and b offset by 128. It is reproduced
 *   bit for bit from OpenCV 4.x color_lab.cpp's fixed-point code (RGB2Lab_b and
 *   Lab2RGBinteger): the sRGB gamma table (x8), the cube-root table (x2^15, the
 *   cube root rounded to float32 first, as OpenCV's softfloat tables), the 12-bit
 *   XYZ coefficients, and for Lab -> RGB the LabToYF, abToXZ and 12-bit inverse
 *   gamma tables (built in web/lab8.ts, which the in-browser page shares). Measured against Debian's python3-opencv 4.6 over all 2^24 inputs
 *   in each direction: 100% identical (bench/dcin reports this each run).
 *   Per pixel it is table gathers and 1x1 convolutions (exact in float32/float64): no JS loops.
 * - float (float32/float64, RGB in 0..1): the textbook formulas as kornia's
 *   rgb_to_lab (sRGB gamma, D65 white, L in 0..100, a and b about -128..127).
 *
 * Layout: images are (N, 3, H, W) or (3, H, W) by default (kornia, torch);
 * `layout: 'NHWC'` takes (N, H, W, 3) or (H, W, 3) as decoded by sharp. The
 * output has the input's layout. Channel order is R, G, B.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { opencvLabTables } from '../web/lab8';

export type Layout = 'NCHW' | 'NHWC';

export interface LabOptions {
  /** 'NCHW' (default): (N,3,H,W) or (3,H,W); 'NHWC': (N,H,W,3) or (H,W,3). */
  layout?: Layout;
}

// ------------------------------------------------------------ OpenCV constants

// the float path's matrices (the 8-bit tables come from web/lab8.ts, shared with the browser)
const SRGB2XYZ = [0.412453, 0.35758, 0.180423, 0.212671, 0.71516, 0.072169, 0.019334, 0.119193, 0.950227];
const D65 = [0.950456, 1, 1.088754];
const LAB_SHIFT2 = 15;

interface Lab8Tables {
  /** (256) float32: sRGBGammaTab_b (linear value x 8). */
  gamma: T.Tensor;
  /** (3, 3) float32: [R, G, B] gamma values -> [X, Y, Z] index (12-bit coefficients / 2^12). */
  toXyz: T.Tensor;
  /** (3072) float32: LabCbrtTab_b. */
  cbrt: T.Tensor;
  /** (3) float32: CV_DESCALE's rounding for the XYZ step. */
  xyzBias: T.Tensor;
  /** (3, 3) float32 and (3): [fX, fY, fZ] -> [L, a, b] (OpenCV's integer formula / 2^15, rounding bias included). */
  toLab: T.Tensor;
  labBias: T.Tensor;
  /** (3) float64: CV_DESCALE's rounding for the RGB step, plus invGamma's index offset. */
  rgbBias: T.Tensor;
  /** (768) float32: row c*256+v: channel L -> LabToYF_b's fy - minABvalue; a -> adiv; b -> -bdiv. */
  stage1: T.Tensor;
  /** (3, 3) float32: stage1 values -> indices into xzExt: [fy+adiv, 4*fy, fy-bdiv] (offset by -minABvalue). */
  toIdx: T.Tensor;
  /** float64: abToXZ_b at [0, 36864), and LabToYF_b's y at 4 * (fy - minABvalue) (fy is injective in L). */
  xzExt: T.Tensor;
  /** (3, 3) float64: [X, Y, Z] -> linear [R, G, B] (12-bit coefficients / 2^14). */
  toRgb: T.Tensor;
  /**
   * uint8: sRGBInvGammaTab_b indexed by value + offset and clamped at both ends, over
   * every value the RGB step can produce, so truncating to int32 indexes it directly.
   */
  invGamma: T.Tensor;
}

const tables = new Map<string, Lab8Tables>();

function buildLab8(device: string): Lab8Tables {
  // OpenCV's integer tables (web/lab8.ts), as tensors for the batched gathers and 1x1 convolutions
  const t = opencvLabTables();
  const s2 = 1 << LAB_SHIFT2;
  // rows [fX, fY, fZ], columns [L, a, b]; every product and sum is an exact float32
  const toLab = [0, 500, 0, t.lScale * s2, -500, 200, 0, 0, -200].map((v) => v / s2);
  const toIdx = new Float32Array([1, 4, 1, 1, 0, 0, 0, 0, 1]);
  const o = { device };
  // matrices above are [input][output]; as 1x1 convolution weights they are (out, in, 1, 1)
  const conv = (m: Float32Array | Float64Array): T.Tensor => T.keep(T.tidy(() => T.tensor(m, [3, 3], o).transpose(0, 1).contiguous().reshape([3, 3, 1, 1])));
  return {
    gamma: T.keep(T.tensor(Float32Array.from(t.gamma), [256], o)),
    toXyz: conv(Float32Array.from(t.toXyz)),
    xyzBias: T.keep(T.tensor(new Float32Array([0.5, 0.5, 0.5]), [3], o)),
    cbrt: T.keep(T.tensor(Float32Array.from(t.cbrt), [t.cbrt.length], o)),
    toLab: conv(new Float32Array(toLab)),
    labBias: T.keep(T.tensor(new Float32Array(t.labBias), [3], o)),
    stage1: T.keep(T.tensor(Float32Array.from(t.stage1), [768], o)),
    toIdx: conv(toIdx),
    xzExt: T.keep(T.tensor(t.xzExt, [t.xzExt.length], o)),
    toRgb: conv(t.toRgb),
    rgbBias: T.keep(T.tensor(new Float64Array([0.5 + t.gOff, 0.5 + t.gOff, 0.5 + t.gOff]), [3], o)),
    invGamma: T.keep(T.tensor(t.invGamma, [t.invGamma.length], { dtype: 'uint8', device })),
  };
}

/** @internal the 8-bit tables on a device (built on first use, then cached). */
export function lab8(device: string): Lab8Tables {
  let t = tables.get(device);
  if (t === undefined) {
    t = buildLab8(device);
    tables.set(device, t);
  }
  return t;
}

/**
 * Frees the cached conversion tables (built once per device on first use, about
 * 0.5 MB). Tests call it before counting live tensors; the next call rebuilds them.
 */
export function releaseColorTables(): void {
  for (const t of tables.values()) T.dispose(Object.values(t));
  tables.clear();
}

/** Inverse of a row-major 3x3 matrix. */
function inverse3(m: number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [A, -(b * i - c * h), b * f - c * e, B, a * i - c * g, -(a * f - c * d), C, -(a * h - b * g), a * e - b * d].map((v) => v / det);
}
/** The float path inverts its own forward matrix exactly (OpenCV's XYZ2sRGB is rounded). */
const XYZ_TO_RGB_F = inverse3(SRGB2XYZ);

// ------------------------------------------------------------- layout helpers

/** @internal shape info of an image batch: N, H, W and whether a batch dim was present. */
export interface ImageDims {
  n: number;
  h: number;
  w: number;
  batched: boolean;
  layout: Layout;
}

/** @internal checks an image batch and returns its dims. */
export function imageDims(x: T.Tensor, arg: string, op: string, layout: Layout = 'NCHW'): ImageDims {
  if (!(x instanceof T.Tensor)) throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a Tensor, got ${typeof x}`);
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new ArgumentError(`Argument 'layout' passed to '${op}' must be 'NCHW' or 'NHWC', got ${String(layout)}`);
  const s = x.shape;
  const want = layout === 'NCHW' ? '(N,3,H,W) or (3,H,W)' : '(N,H,W,3) or (H,W,3)';
  if (s.length !== 3 && s.length !== 4) throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be ${want}, got [${s.join(',')}]`);
  const batched = s.length === 4;
  const d = batched ? s : [1, ...s];
  const c = layout === 'NCHW' ? d[1] : d[3];
  if (c !== 3) throw new ArgumentError(`Argument '${arg}' passed to '${op}' must have 3 channels ${want}, got [${s.join(',')}]`);
  const [h, w] = layout === 'NCHW' ? [d[2], d[3]] : [d[1], d[2]];
  return { n: d[0], h, w, batched, layout };
}

/** @internal a batch as contiguous planes (N, 3, H, W) (a view when it already is). */
export function toPlanar(x: T.Tensor, d: ImageDims): T.Tensor {
  const b = d.batched ? x : x.unsqueeze(0);
  return (d.layout === 'NHWC' ? b.permute([0, 3, 1, 2]) : b).contiguous();
}

/** @internal (N, 3, H, W) planes back to the batch's layout and rank. */
export function fromPlanar(y: T.Tensor, d: ImageDims): T.Tensor {
  let o = d.layout === 'NHWC' ? y.permute([0, 2, 3, 1]).contiguous() : y;
  if (!d.batched) o = o.squeeze(0);
  return o;
}

/**
 * Pixels per chunk of the chunked 8-bit paths. Their many passes are bound by memory
 * (each full-size float32 or int32 intermediate is a fresh multi-MB allocation that the
 * OS pages in); run on row blocks of about this many pixels, the intermediates stay
 * cache-sized and are reused. Every op is per pixel, so results do not depend on it.
 */
const CHUNK_PIXELS = 1 << 16;

/** @internal the row blocks of an (N, C, H, W) batch: [image, first row, rows]. */
export function rowChunks(shape: number[]): [number, number, number][] {
  const [n, , h, w] = shape;
  const rows = Math.max(1, Math.floor(CHUNK_PIXELS / Math.max(1, w)));
  const out: [number, number, number][] = [];
  for (let i = 0; i < n; i++) {
    if (h === 0) out.push([i, 0, 0]);
    for (let r = 0; r < h; r += rows) out.push([i, r, Math.min(rows, h - r)]);
  }
  return out;
}

/**
 * @internal applies a per-pixel map to an (N, C, H, W) batch block by block: `fn(block,
 * image)` gets a (1, C, rows, W) block of image `image`; the results are concatenated
 * back to (N, C', H, W).
 */
export function mapChunks(x: T.Tensor, fn: (block: T.Tensor, image: number) => T.Tensor): T.Tensor {
  return T.tidy(() => {
    const chunks = rowChunks(x.shape);
    if (chunks.length <= 1) return fn(x, 0);
    const images: T.Tensor[] = [];
    let parts: T.Tensor[] = [];
    for (const [i, r, rows] of chunks) {
      parts.push(T.tidy(() => fn(x.narrow(0, i, 1).narrow(2, r, rows), i)));
      if (r + rows === x.shape[2]) {
        images.push(parts.length === 1 ? parts[0] : T.cat(parts, 2));
        parts = [];
      }
    }
    return images.length === 1 ? images[0] : T.cat(images, 0);
  });
}

/** Table lookup: table[idx] with idx an int tensor of any shape. */
function take(table: T.Tensor, idx: T.Tensor): T.Tensor {
  return T.indexSelect(table, 0, idx.reshape([-1])).reshape(idx.shape);
}

// --------------------------------------------------------------- 8-bit paths

/**
 * @internal uint8 (N, 3, H, W) RGB planes -> float32 (N, 3, H, W) holding OpenCV's
 * 8-bit Lab values as exact integers 0..255. Channel mixing is a 1x1 convolution
 * in float32, which stays exact: every product and partial sum is an integer below
 * 2^24 (or a multiple of 4 below 2^26), scaled by a power of 2.
 */
export function rgbPlanesToLab8f(rgb: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const t = lab8(rgb.device);
    const g = take(t.gamma, rgb.to('int32'));
    const xyz = T.conv2d(g, t.toXyz, t.xyzBias).to('int32'); // CV_DESCALE(., 12); values >= 0
    const f = take(t.cbrt, xyz);
    return T.conv2d(f, t.toLab, t.labBias).clamp(0, 255); // CV_DESCALE(., 15) before the floor; saturate
  });
}

/** @internal uint8 (N, 3, H, W) RGB planes -> uint8 (N, 3, H, W) OpenCV 8-bit Lab (rgbPlanesToLab8f by blocks). */
export function rgbPlanesToLab8(rgb: T.Tensor): T.Tensor {
  return mapChunks(rgb, (b) => rgbPlanesToLab8f(b).to('uint8'));
}

/**
 * @internal Lab -> RGB from int32 indices `idx` (N, 3, H, W) into `stage1` (a float32
 * table of LabToYF/adiv/bdiv values: lab8().stage1 indexed by value + 256 * channel,
 * or that table composed with per-image transfer tables): uint8 (N, 3, H, W) RGB,
 * OpenCV's Lab2RGBinteger.
 */
export function labIndexToRgb8(idx: T.Tensor, stage1: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const t = lab8(idx.device);
    const g = take(stage1, idx);
    const xi = T.conv2d(g, t.toIdx).to('int32');
    const xyz = take(t.xzExt, xi); // float64 table: no conversion pass
    const lin = T.conv2d(xyz, t.toRgb, t.rgbBias).to('int32'); // offset: always > 0, trunc == floor; the table clamps
    return take(t.invGamma, lin);
  });
}

/** @internal int32 (1, 3, 1, 1) offsets of the three channels' rows in a (768) table. */
export function channelOffsets(device: string): T.Tensor {
  return T.tensor(new Int32Array([0, 256, 512]), [1, 3, 1, 1], { device });
}

// --------------------------------------------------------------- float paths

function checkFloat(x: T.Tensor, arg: string, op: string): void {
  if (x.dtype !== 'float32' && x.dtype !== 'float64') {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be uint8 (OpenCV 8-bit path) or float32/float64, got ${x.dtype}`);
  }
}

/** 3x3 [out][in] matrix as 1x1 conv weights of x's dtype. */
function convWeight(m: number[], like: T.Tensor): T.Tensor {
  return T.tensor(m, [3, 3, 1, 1], { dtype: like.dtype, device: like.device });
}
const transpose3 = (m: number[]): number[] => [0, 3, 6, 1, 4, 7, 2, 5, 8].map((i) => m[i]);

/** @internal float (N, 3, H, W) RGB in 0..1 -> float Lab planes (L 0..100). */
export function rgbPlanesToLabF(rgb: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const lin = T.where(rgb.gt(0.04045), rgb.add(0.055).div(1.055).pow(2.4), rgb.div(12.92));
    const xyz = T.conv2d(lin, convWeight(SRGB2XYZ.map((c, k) => c / D65[Math.floor(k / 3)]), rgb));
    const eps = 216 / 24389;
    const f = T.where(xyz.gt(eps), xyz.clamp(eps).pow(1 / 3), xyz.mul(841 / 108).add(4 / 29));
    const b = T.tensor([-16, 0, 0], [3], { dtype: rgb.dtype, device: rgb.device });
    return T.conv2d(f, convWeight([0, 116, 0, 500, -500, 0, 0, 200, -200], rgb), b);
  });
}

/** @internal float Lab planes -> float RGB planes in 0..1 (clipped). */
export function labPlanesToRgbF(lab: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const b = T.tensor([16 / 116, 16 / 116, 16 / 116], [3], { dtype: lab.dtype, device: lab.device });
    const f = T.conv2d(lab, convWeight(transpose3([1 / 116, 1 / 116, 1 / 116, 1 / 500, 0, 0, 0, 0, -1 / 200]), lab), b);
    const xyz = T.where(f.gt(6 / 29), f.pow(3), f.sub(4 / 29).mul(108 / 841));
    const lin = T.conv2d(xyz, convWeight(XYZ_TO_RGB_F.map((c, k) => c * D65[k % 3]), lab));
    const rgb = T.where(lin.gt(0.0031308), lin.clamp(0.0031308).pow(1 / 2.4).mul(1.055).sub(0.055), lin.mul(12.92));
    return rgb.clamp(0, 1);
  });
}

// ------------------------------------------------------------------ public API

/**
 * RGB -> Lab, batched.
 * uint8 input (N, 3, H, W): OpenCV's 8-bit cv2.COLOR_RGB2LAB, bit-exact; uint8 output
 * with L in 0..255 (L*255/100) and a, b offset by 128.
 * float input in 0..1: float Lab, L in 0..100 (kornia rgb_to_lab).
 *   const lab = rgbToLab(images)          // uint8 (N,3,H,W) -> uint8 (N,3,H,W)
 */
export function rgbToLab(image: T.Tensor, opts: LabOptions = {}): T.Tensor {
  const d = imageDims(image, 'image', 'rgbToLab', opts.layout);
  if (image.dtype !== 'uint8') checkFloat(image, 'image', 'rgbToLab');
  return T.tidy(() => {
    const x = toPlanar(image, d);
    return fromPlanar(image.dtype === 'uint8' ? rgbPlanesToLab8(x) : rgbPlanesToLabF(x), d);
  });
}

/**
 * Lab -> RGB, batched; the inverse of rgbToLab.
 * uint8 Lab (OpenCV 8-bit encoding) -> uint8 RGB, bit-exact with cv2.COLOR_LAB2RGB.
 * float Lab (L 0..100) -> float RGB in 0..1, clipped.
 *   const rgb = labToRgb(rgbToLab(images))
 */
export function labToRgb(image: T.Tensor, opts: LabOptions = {}): T.Tensor {
  const d = imageDims(image, 'image', 'labToRgb', opts.layout);
  if (image.dtype !== 'uint8') checkFloat(image, 'image', 'labToRgb');
  return T.tidy(() => {
    const x = toPlanar(image, d);
    if (image.dtype !== 'uint8') return fromPlanar(labPlanesToRgbF(x), d);
    const off = channelOffsets(x.device);
    const stage1 = lab8(x.device).stage1;
    return fromPlanar(mapChunks(x, (b) => labIndexToRgb8(b.add(off), stage1)), d); // uint8 + int32 -> int32
  });
}

/** Module form of rgbToLab (kornia's RgbToLab). */
export class RgbToLab {
  constructor(readonly opts: LabOptions = {}) {}
  forward(image: T.Tensor): T.Tensor {
    return rgbToLab(image, this.opts);
  }
}

/** Module form of labToRgb (kornia's LabToRgb). */
export class LabToRgb {
  constructor(readonly opts: LabOptions = {}) {}
  forward(image: T.Tensor): T.Tensor {
    return labToRgb(image, this.opts);
  }
}
