/**
 * OpenCV's 8-bit RGB <-> Lab and DCIN's Reinhard transfer for one image in plain
 * JavaScript (no tensors, no imports): the browser's copy of color/lab.ts and
 * color/transfer.ts's 8-bit path, built from the same OpenCV 4.x color_lab.cpp
 * fixed-point recipe (RGB2Lab_b, Lab2RGBinteger) so that a transfer here gives the same
 * bytes as cqseg's labTransferToStats (test/web/dcin.test.ts checks it, pixel for pixel).
 *
 * Images are interleaved RGB or RGBA bytes (`channels` 3 or 4: canvas ImageData is RGBA;
 * alpha is ignored and kept). Lab is OpenCV's 8-bit scale: L 0..255 (L * 255 / 100),
 * a and b offset by 128. Statistics are (3, 2) rows [mean, population std] of L, a, b.
 *   const stats = labStats8(rgba, 4);
 *   const out = labTransfer8(rgba, 4, refStats);   // new array, same layout
 */

const SRGB2XYZ = [0.412453, 0.35758, 0.180423, 0.212671, 0.71516, 0.072169, 0.019334, 0.119193, 0.950227];
const XYZ2SRGB = [3.240479, -1.53715, -0.498535, -0.969256, 1.875991, 0.041556, 0.055648, -0.204043, 1.057311];
const D65 = [0.950456, 1, 1.088754];
const LAB_SHIFT = 12;
const GAMMA_SHIFT = 3;
const LAB_SHIFT2 = LAB_SHIFT + GAMMA_SHIFT;
const CBRT_TAB_SIZE = (256 * 3 / 2) * (1 << GAMMA_SHIFT);
const BASE = 1 << 14;
const MIN_AB = -8145;
const AB_TAB_SIZE = (BASE * 9) / 4;
const INV_GAMMA_SIZE = 1 << 12;

/** [[meanL, stdL], [meanA, stdA], [meanB, stdB]] on OpenCV's 8-bit Lab scale. */
export type LabStats = number[][];

/** Round half to even (OpenCV's cvRound). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * OpenCV's 8-bit Lab tables (color_lab.cpp's initLabTabs, RGB2Lab_b and Lab2RGBinteger),
 * as exact integers or dyadic fractions; color/lab.ts builds its tensors from these.
 */
export interface OpenCvLabTables {
  gamma: Float64Array;
  /** [c * 3 + k]: gamma of channel c -> XYZ k */
  toXyz: Float64Array;
  cbrt: Float64Array;
  lScale: number;
  labBias: number[];
  /** row c * 256 + v: L -> LabToYF's fy - MIN_AB; a -> adiv; b -> -bdiv */
  stage1: Float64Array;
  xzExt: Float64Array;
  /** [i * 3 + r]: XYZ i -> linear RGB r */
  toRgb: Float64Array;
  invGamma: Uint8Array;
  gOff: number;
}

let cached: OpenCvLabTables | undefined;

/** The tables, built on first use. */
export function opencvLabTables(): OpenCvLabTables {
  if (cached) return cached;
  const gamma = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    gamma[i] = roundEven(255 * (1 << GAMMA_SHIFT) * (x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
  }
  const toXyz = new Float64Array(9);
  for (let k = 0; k < 3; k++) for (let c = 0; c < 3; c++) toXyz[c * 3 + k] = roundEven(((1 << LAB_SHIFT) * SRGB2XYZ[k * 3 + c]) / D65[k]) / (1 << LAB_SHIFT);
  const cbrt = new Float64Array(CBRT_TAB_SIZE);
  for (let i = 0; i < CBRT_TAB_SIZE; i++) {
    const x = i / (255 * (1 << GAMMA_SHIFT));
    const f = x < 216 / 24389 ? x * (841 / 108) + 16 / 116 : Math.fround(Math.cbrt(x));
    cbrt[i] = Math.min(65535, roundEven((1 << LAB_SHIFT2) * f));
  }
  const s2 = 1 << LAB_SHIFT2;
  const half2 = 1 << (LAB_SHIFT2 - 1);
  const lScale = Math.floor((116 * 255 + 50) / 100) / s2;
  const lShift = -Math.floor((16 * 255 * s2 + 50) / 100);
  const labBias = [lShift + half2, 128 * s2 + half2, 128 * s2 + half2].map((v) => v / s2);

  const stage1 = new Float64Array(768);
  const yOfF = new Map<number, number>();
  for (let v = 0; v < 256; v++) {
    const l = (v * 100) / 255;
    const lo = l <= 0.008856 * 903.3;
    const y = lo ? l / 903.3 : Math.pow((l + 16) / 116, 3);
    const fyi = roundEven((lo ? 7.787 * y + 16 / 116 : (l + 16) / 116) * BASE);
    yOfF.set(fyi - MIN_AB, roundEven(y * BASE));
    stage1[v] = fyi - MIN_AB;
    stage1[256 + v] = ((5 * v * 53687 + (1 << 7)) >> 13) - Math.trunc((128 * BASE) / 500);
    stage1[512 + v] = -(((v * 41943 + (1 << 4)) >> 9) - Math.trunc((128 * BASE) / 200) + 1);
  }
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
  const toRgb = new Float64Array(9);
  for (let r = 0; r < 3; r++) for (let i = 0; i < 3; i++) toRgb[i * 3 + r] = roundEven((1 << LAB_SHIFT) * XYZ2SRGB[r * 3 + i] * D65[i]) / BASE;
  const inv = new Uint8Array(INV_GAMMA_SIZE);
  for (let i = 0; i < INV_GAMMA_SIZE; i++) {
    const x = i / INV_GAMMA_SIZE;
    inv[i] = Math.min(255, roundEven(255 * (x <= 0.0031308 ? x * 12.92 : 1.055 * Math.pow(x, 1 / 2.4) - 0.055)));
  }
  // the linear RGB values' range over every table value, so one clamped table covers them
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
  const gOff = Math.max(1, Math.ceil(-linMin) + 1);
  const invGamma = new Uint8Array(gOff + Math.ceil(linMax) + 2);
  for (let j = 0; j < invGamma.length; j++) invGamma[j] = inv[Math.min(INV_GAMMA_SIZE - 1, Math.max(0, j - gOff))];
  cached = { gamma, toXyz, cbrt, lScale, labBias, stage1, xzExt, toRgb, invGamma, gOff };
  return cached;
}

function checkImage(pixels: Uint8Array | Uint8ClampedArray, channels: number, op: string): number {
  if (channels !== 3 && channels !== 4) throw new Error(`Argument 'channels' passed to '${op}' must be 3 or 4, got ${channels}`);
  if (pixels.length === 0 || pixels.length % channels !== 0) throw new Error(`Argument 'pixels' passed to '${op}' must hold a positive multiple of ${channels} bytes, got ${pixels.length}`);
  return pixels.length / channels;
}

/** Interleaved RGB(A) bytes -> planar OpenCV 8-bit Lab (3 * P bytes: all L, then a, then b). */
export function rgbToLab8(pixels: Uint8Array | Uint8ClampedArray, channels: number): Uint8Array {
  const n = checkImage(pixels, channels, 'rgbToLab8');
  const t = opencvLabTables();
  const out = new Uint8Array(3 * n);
  const m = t.toXyz;
  const [bl, ba, bb] = t.labBias;
  for (let p = 0; p < n; p++) {
    const r = t.gamma[pixels[p * channels]];
    const g = t.gamma[pixels[p * channels + 1]];
    const b = t.gamma[pixels[p * channels + 2]];
    const fx = t.cbrt[Math.trunc(r * m[0] + g * m[3] + b * m[6] + 0.5)];
    const fy = t.cbrt[Math.trunc(r * m[1] + g * m[4] + b * m[7] + 0.5)];
    const fz = t.cbrt[Math.trunc(r * m[2] + g * m[5] + b * m[8] + 0.5)];
    const s = 1 / (1 << LAB_SHIFT2);
    out[p] = Math.min(255, Math.max(0, fy * t.lScale + bl));
    out[n + p] = Math.min(255, Math.max(0, (fx - fy) * 500 * s + ba));
    out[2 * n + p] = Math.min(255, Math.max(0, (fy - fz) * 200 * s + bb));
  }
  return out;
}

/** Mean and population std per channel of planar 8-bit Lab, from 256-bin histograms (as labStats). */
export function labStatsOfPlanes(lab: Uint8Array): LabStats {
  const n = lab.length / 3;
  const stats: LabStats = [];
  for (let c = 0; c < 3; c++) {
    const h = new Float64Array(256);
    for (let p = c * n; p < (c + 1) * n; p++) h[lab[p]]++;
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += h[v] * v;
    const mean = sum / n;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += h[v] * (v - mean) * (v - mean);
    stats.push([mean, Math.sqrt(sq / n)]);
  }
  return stats;
}

/** Lab statistics of interleaved RGB(A) bytes. */
export function labStats8(pixels: Uint8Array | Uint8ClampedArray, channels: number): LabStats {
  return labStatsOfPlanes(rgbToLab8(pixels, channels));
}

/**
 * Reinhard transfer toward `ref` (DCIN's step, cqseg mode): per channel
 * out = clip((v - mean_in) / std_in * std_ref + mean_ref, 0, 255) truncated, as a
 * 256-entry table in float64 (an input channel with zero spread gets gain 1), then
 * OpenCV's Lab2RGBinteger. Returns new bytes in the input's layout (alpha copied).
 */
export function labTransfer8(pixels: Uint8Array | Uint8ClampedArray, channels: number, ref: LabStats): Uint8Array {
  const n = checkImage(pixels, channels, 'labTransfer8');
  if (!Array.isArray(ref) || ref.length !== 3 || ref.some((r) => !Array.isArray(r) || r.length !== 2 || !r.every(Number.isFinite))) {
    throw new Error("Argument 'ref' passed to 'labTransfer8' must be [[meanL, stdL], [meanA, stdA], [meanB, stdB]] of finite numbers");
  }
  const t = opencvLabTables();
  const lab = rgbToLab8(pixels, channels);
  const inp = labStatsOfPlanes(lab);
  // one table per channel, composed with Lab2RGBinteger's first table
  const composed = new Float64Array(768);
  for (let c = 0; c < 3; c++) {
    const [mi, si] = inp[c];
    const [mr, sr] = ref[c];
    for (let v = 0; v < 256; v++) {
      const y = si === 0 ? v - mi + mr : ((v - mi) / si) * sr + mr;
      composed[c * 256 + v] = t.stage1[c * 256 + Math.trunc(Math.min(255, Math.max(0, y)))];
    }
  }
  const out = new Uint8Array(pixels.length);
  const k = t.toRgb;
  const bias = 0.5 + t.gOff;
  for (let p = 0; p < n; p++) {
    const gl = composed[lab[p]];
    const ga = composed[256 + lab[n + p]];
    const gb = composed[512 + lab[2 * n + p]];
    const x = t.xzExt[Math.trunc(gl + ga)];
    const y = t.xzExt[Math.trunc(4 * gl)];
    const z = t.xzExt[Math.trunc(gl + gb)];
    const o = p * channels;
    out[o] = t.invGamma[Math.trunc(x * k[0] + y * k[3] + z * k[6] + bias)];
    out[o + 1] = t.invGamma[Math.trunc(x * k[1] + y * k[4] + z * k[7] + bias)];
    out[o + 2] = t.invGamma[Math.trunc(x * k[2] + y * k[5] + z * k[8] + bias)];
    if (channels === 4) out[o + 3] = pixels[o + 3];
  }
  return out;
}
