/**
 * Quality degradation for evaluation (the paper reference's `basic_degrade`):
 * downscale to 1/3, JPEG at quality 55, fog 0.15, upscale back to the input size.
 * Deterministic (no random draws), image only.
 *
 * - downscale: area averaging (adaptive average pooling; equals cv2.INTER_AREA when
 *   the size is a multiple of 3) to floor(H/3) x floor(W/3);
 * - JPEG: a real encode/decode with sharp (libvips + mozjpeg's libjpeg, 4:2:0 chroma
 *   subsampling below quality 90 like OpenCV's default), one image at a time on the
 *   CPU, so tensors on a GPU take a round trip through host memory; `jpegQuality: null`
 *   skips it;
 * - fog: a uniform haze, x <- (1 - fog) x + fog * 255. This is our reading of "fog 0.15"
 *   (albumentations' RandomFog draws random haze blobs instead; the reference's exact
 *   call is not known to us);
 * - upscale: bilinear, half-pixel centres (cv2.INTER_LINEAR).
 * Dtypes as in common.ts: uint8 0..255 or float 0..1 in, same dtype out.
 */
import sharp from 'sharp';
import * as T from '../tensor';
import { ArgumentError, Tensor } from '../tensor';
import { fromWorking, toWorking } from './common';

export interface DegradeOptions {
  /** integer downscale factor; default 3 */
  factor?: number;
  /** JPEG quality 1..100, or null to skip the JPEG step; default 55 */
  jpegQuality?: number | null;
  /** haze weight in [0, 1]; default 0.15 */
  fog?: number;
}

function checkOptions(image: Tensor, opts: DegradeOptions): Required<DegradeOptions> {
  if (!(image instanceof Tensor) || image.isDisposed || image.ndim !== 4) {
    throw new ArgumentError(`Argument 'image' passed to 'degrade' must be a live 4-D (N,C,H,W) Tensor, got ${String(image)}`);
  }
  const dt = image.dtype;
  if (dt !== 'uint8' && !T.isFloating(dt)) throw new ArgumentError(`Argument 'image' passed to 'degrade' must be uint8 or floating, got ${dt}`);
  const factor = opts.factor ?? 3;
  if (!Number.isInteger(factor) || factor < 1) throw new ArgumentError(`Argument 'factor' passed to 'degrade' must be an integer >= 1, got ${factor}`);
  const q = opts.jpegQuality === undefined ? 55 : opts.jpegQuality;
  if (q !== null && !(Number.isInteger(q) && q >= 1 && q <= 100)) {
    throw new ArgumentError(`Argument 'jpegQuality' passed to 'degrade' must be an integer in 1..100 or null, got ${q}`);
  }
  const c = image.shape[1];
  if (q !== null && c !== 1 && c !== 3) throw new ArgumentError(`Argument 'image' passed to 'degrade' must have 1 or 3 channels for JPEG, got ${c}`);
  const fog = opts.fog ?? 0.15;
  if (!(fog >= 0 && fog <= 1)) throw new ArgumentError(`Argument 'fog' passed to 'degrade' must be in [0, 1], got ${fog}`);
  return { factor, jpegQuality: q, fog };
}

/** JPEG encode + decode of one HWC uint8 image with sharp. */
export async function jpegRoundTrip(pixels: Uint8Array, height: number, width: number, channels: 1 | 3, quality: number): Promise<Uint8Array> {
  const raw = { width, height, channels };
  const jpeg = await sharp(pixels, { raw }).jpeg({ quality }).toBuffer();
  let decoder = sharp(jpeg);
  if (channels === 1) decoder = decoder.toColourspace('b-w');
  const { data, info } = await decoder.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== channels) {
    throw new Error(`JPEG round trip changed the image from ${width}x${height}x${channels} to ${info.width}x${info.height}x${info.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Degrades a batch as the reference's basic_degrade (see the file comment).
 * image (N, C, H, W) uint8 0..255 or float 0..1; returns a new tensor of the same
 * shape, dtype and device. Async because JPEG coding runs in sharp's worker pool.
 *   const low = await degrade(batch);              // 1/3, JPEG 55, fog 0.15
 */
export async function degrade(image: Tensor, opts: DegradeOptions = {}): Promise<Tensor> {
  const o = checkOptions(image, opts);
  const [n, c, h, w] = image.shape;
  const sh = Math.max(1, Math.floor(h / o.factor));
  const sw = Math.max(1, Math.floor(w / o.factor));
  const dtype = image.dtype;
  const device = image.device;
  if (o.jpegQuality === null) {
    return T.tidy(() => finish(T.adaptiveAvgPool2d(toWorking(image), [sh, sw]), o.fog, h, w, dtype));
  }
  // downscale and move to host bytes (no tensor lives across an await)
  const host = T.tidy(() => T.adaptiveAvgPool2d(toWorking(image), [sh, sw]).clamp(0, 255).round().to('uint8').permute([0, 2, 3, 1]).contiguous().to('cpu'));
  let bytes: Uint8Array;
  try {
    bytes = host.dataSync() as Uint8Array;
  } finally {
    host.dispose();
  }
  const per = sh * sw * c;
  const decoded = await Promise.all(Array.from({ length: n }, (_, i) =>
    jpegRoundTrip(bytes.subarray(i * per, (i + 1) * per), sh, sw, c as 1 | 3, o.jpegQuality as number)));
  const joined = new Uint8Array(n * per);
  decoded.forEach((d, i) => joined.set(d, i * per));
  return T.tidy(() => {
    const small = T.tensor(joined, [n, sh, sw, c]).permute([0, 3, 1, 2]).to({ dtype: 'float32', device });
    return finish(small, o.fog, h, w, dtype);
  });
}

function finish(small: Tensor, fog: number, h: number, w: number, dtype: T.DType): Tensor {
  const hazy = fog > 0 ? small.mul(1 - fog).add(fog * 255) : small;
  return fromWorking(T.interpolate(hazy, { size: [h, w], mode: 'bilinear', alignCorners: false }), dtype);
}
