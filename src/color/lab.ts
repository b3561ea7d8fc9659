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
 *   gamma tables. Measured against Debian's python3-opencv 4.6 over all 2^24 inputs
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

export type Layout = 'NCHW' | 'NHWC';

export interface LabOptions {
  /** 'NCHW' (default): (N,3,H,W) or (3,H,W); 'NHWC': (N,H,W,3) or (H,W,3). */
  layout?: Layout;
}

// ------------------------------------------------------------ OpenCV constants

const SRGB2XYZ = [0.412453, 0.35758, 0.180423, 0.212671, 0.71516, 0.072169, 0.019334, 0.119193, 0.950227];
const XYZ2SRGB = [3.240479, -1.53715, -0.498535, -0.969256, 1.875991, 0.041556, 0.055648, -0.204043, 1.057311];
const D65 = [0.950456, 1, 1.088754];
const LAB_SHIFT = 12;
const GAMMA_SHIFT = 3;
const LAB_SHIFT2 = LAB_SHIFT + GAMMA_SHIFT; // 15
const CBRT_TAB_SIZE = (256 * 3 / 2) * (1 << GAMMA_SHIFT); // 3072
const BASE = 1 << 14; // Lab2RGBinteger's base
const MIN_AB = -8145;
const AB_TAB_SIZE = (BASE * 9) / 4;
const INV_GAMMA_SIZE = 1 << 12;

/** Round half to even (OpenCV's cvRound / NumPy's round on ties). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

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
  // RGB2Lab_b (OpenCV 4.x color_lab.cpp, initLabTabs and the RGB2Lab_b constructor)
  const gamma = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    const g = x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
    gamma[i] = roundEven(255 * (1 << GAMMA_SHIFT) * g);
  }
  const toXyz = new Float32Array(9); // [c][k]
  for (let k = 0; k < 3; k++) {
    for (let c = 0; c < 3; c++) toXyz[c * 3 + k] = roundEven(((1 << LAB_SHIFT) * SRGB2XYZ[k * 3 + c]) / D65[k]) / (1 << LAB_SHIFT);
  }
  const cbrt = new Float32Array(CBRT_TAB_SIZE);
  for (let i = 0; i < CBRT_TAB_SIZE; i++) {
    const x = i / (255 * (1 << GAMMA_SHIFT));
    // the cube root is rounded to float32 first, as OpenCV's softfloat cbrt
    const f = x < 216 / 24389 ? x * (841 / 108) + 16 / 116 : Math.fround(Math.cbrt(x));
    cbrt[i] = Math.min(65535, roundEven((1 << LAB_SHIFT2) * f));
  }
  const lScale = Math.floor((116 * 255 + 50) / 100);
  const lShift = -Math.floor((16 * 255 * (1 << LAB_SHIFT2) + 50) / 100);
  const half2 = 1 << (LAB_SHIFT2 - 1);
  const s2 = 1 << LAB_SHIFT2;
  // rows [fX, fY, fZ], columns [L, a, b]; every product and sum is an exact float32
  const toLab = [0, 500, 0, lScale, -500, 200, 0, 0, -200].map((v) => v / s2);
  const labBias = [lShift + half2, 128 * s2 + half2, 128 * s2 + half2].map((v) => v / s2);

  // Lab2RGBinteger (LabToYF_b, abToXZ_b, sRGBInvGammaTab_b)
  const stage1 = new Float32Array(768);
  const yOfF = new Map<number, number>();
  for (let v = 0; v < 256; v++) {
    const l = (v * 100) / 255;
    const lo = l <= 0.008856 * 903.3;
    const y = lo ? l / 903.3 : Math.pow((l + 16) / 116, 3);
    const fy = lo ? 7.787 * y + 16 / 116 : (l + 16) / 116;
    const fyi = roundEven(fy * BASE);
    yOfF.set(fyi - MIN_AB, roundEven(y * BASE));
    stage1[v] = fyi - MIN_AB;
    stage1[256 + v] = ((5 * v * 53687 + (1 << 7)) >> 13) - Math.trunc((128 * BASE) / 500);
    stage1[512 + v] = -(((v * 41943 + (1 << 4)) >> 9) - Math.trunc((128 * BASE) / 200) + 1);
  }
  const toIdx = new Float32Array([1, 4, 1, 1, 0, 0, 0, 0, 1]);
  let maxF = 0;
  for (const k of yOfF.keys()) maxF = Math.max(maxF, k);
  const xzExt = new Float64Array(4 * maxF + 1);
  const off = Math.trunc((Math.trunc((BASE * 16) / 116) * 108) / 841);
  for (let i = MIN_AB; i < AB_TAB_SIZE + MIN_AB; i++) {
    xzExt[i - MIN_AB] = i <= 3390 ? Math.trunc((i * 108) / 841) - off : Math.trunc((Math.trunc((i * i) / BASE) * i) / BASE);
  }
  for (const [f, y] of yOfF) {
    if (4 * f < AB_TAB_SIZE) throw new Error('internal: Lab table regions overlap');
    xzExt[4 * f] = y;
  }
  // linear rgb_r = sum_i round(2^12 * M[r][i] * white[i]) * xyz_i, descaled by 2^14
  const toRgb = new Float64Array(9);
  for (let r = 0; r < 3; r++) for (let i = 0; i < 3; i++) toRgb[i * 3 + r] = roundEven((1 << LAB_SHIFT) * XYZ2SRGB[r * 3 + i] * D65[i]) / BASE;
  const invGamma = new Uint8Array(INV_GAMMA_SIZE);
  for (let i = 0; i < INV_GAMMA_SIZE; i++) {
    const x = i / INV_GAMMA_SIZE;
    const g = x <= 0.0031308 ? x * 12.92 : 1.055 * Math.pow(x, 1 / 2.4) - 0.055;
    invGamma[i] = Math.min(255, roundEven(255 * g));
  }
  // the RGB step's range over all xzExt values, so that one table covers the clamp
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of xzExt) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  let linMin = Infinity;
  let linMax = -Infinity;
  for (let r = 0; r < 3; r++) {
    let a = 0.5;
    let b = 0.5;
    for (let i = 0; i < 3; i++) {
      const c = toRgb[i * 3 + r];
      a += Math.min(c * lo, c * hi);
      b += Math.max(c * lo, c * hi);
    }
    [linMin, linMax] = [Math.min(linMin, a), Math.max(linMax, b)];
  }
  // value + offset stays > 0, where truncation is the floor: index offset + floor(value),
  // and values in (-1, 0) (0 for OpenCV after truncation) fall on offset - 1, also clamped to 0
  const gOff = Math.max(1, Math.ceil(-linMin) + 1);
  const invExt = new Uint8Array(gOff + Math.ceil(linMax) + 2);
  for (let j = 0; j < invExt.length; j++) invExt[j] = invGamma[Math.min(INV_GAMMA_SIZE - 1, Math.max(0, j - gOff))];
  const o = { device };
  // matrices above are [input][output]; as 1x1 convolution weights they are (out, in, 1, 1)
  const conv = (m: Float32Array | Float64Array): T.Tensor => T.keep(T.tidy(() => T.tensor(m, [3, 3], o).transpose(0, 1).contiguous().reshape([3, 3, 1, 1])));
  return {
    gamma: T.keep(T.tensor(gamma, [256], o)),
    toXyz: conv(toXyz),
    xyzBias: T.keep(T.tensor(new Float32Array([0.5, 0.5, 0.5]), [3], o)),
    cbrt: T.keep(T.tensor(cbrt, [CBRT_TAB_SIZE], o)),
    toLab: conv(new Float32Array(toLab)),
    labBias: T.keep(T.tensor(new Float32Array(labBias), [3], o)),
    stage1: T.keep(T.tensor(stage1, [768], o)),
    toIdx: conv(toIdx),
    xzExt: T.keep(T.tensor(xzExt, [xzExt.length], o)),
    toRgb: conv(toRgb),
    rgbBias: T.keep(T.tensor(new Float64Array([0.5 + gOff, 0.5 + gOff, 0.5 + gOff]), [3], o)),
    invGamma: T.keep(T.tensor(invExt, [invExt.length], { dtype: 'uint8', device })),
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
