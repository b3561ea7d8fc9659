/**
 * Image and mask I/O on sharp (libvips). Decoding runs on libuv's thread pool (sharp's
 * workers), so awaiting several decodes overlaps them with compute on the main thread.
 *
 * Images: JPEG, PNG, WebP, TIFF, GIF (first frame), AVIF/HEIF -> uint8 RGB (H, W, 3):
 * EXIF orientation applied (autoOrient), alpha dropped, grayscale expanded to 3 channels,
 * 16-bit reduced to 8-bit, CMYK converted to sRGB.
 * Masks: decoded without color management into 1 channel (gray / class indices) or 3
 * channels (RGB-palette masks); never interpolated (resizeMask is nearest, in tensors);
 * 16-bit masks read by value (class 1 stays 1), values above 255 refused.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/atomic';
import sharp from 'sharp';
import { Tensor, tensor, tidy, indexSelect, logicalAnd, all } from '../tensor';
import { CqsegError } from '../util/errors';

type Sharp = ReturnType<typeof sharp>;
type Metadata = Awaited<ReturnType<Sharp['metadata']>>;
type RawResult = { data: Buffer; info: { width: number; height: number; channels: number } };

/** A bad input file: `file` names it, `code` says what is wrong. */
export class DataError extends CqsegError {
  constructor(message: string, code: string, readonly file?: string) {
    super(message, code);
  }
}

/** A JSON file parsed, or a DataError naming it: "cannot read WHAT '...'", "WHAT '...' is not valid JSON". */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`cannot read ${what} '${file}': ${(err as Error).message}`, 'missing', file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DataError(`${what} '${file}' is not valid JSON: ${(err as Error).message}`, 'bad-json', file);
  }
}

/** Raw interleaved pixels (HWC), as sharp hands them over. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

export type Size = [number, number];

/** File extensions read as images (lower case, with dot). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif'];

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

const where = (src: string | Buffer): string => (typeof src === 'string' ? `'${src}'` : 'buffer');

export interface DecodeOptions {
  /** resize to [H, W] (fill, aspect not kept) with `kernel` (default lanczos3) */
  size?: Size;
  kernel?: 'lanczos3' | 'cubic' | 'mitchell' | 'linear';
}

/**
 * Decodes an image file or buffer to uint8 RGB HWC, off the main thread.
 *   const { data, height, width } = await decodeImage('a.jpg', { size: [512, 768] });
 */
export async function decodeImage(src: string | Buffer, opts: DecodeOptions = {}): Promise<RawImage> {
  try {
    let p = sharp(src, { failOn: 'warning', pages: 1 }).autoOrient().removeAlpha().toColourspace('srgb');
    if (opts.size) p = p.resize(opts.size[1], opts.size[0], { fit: 'fill', kernel: opts.kernel ?? 'lanczos3' });
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height: info.height, width: info.width, channels: 3 };
  } catch (err) {
    throw new DataError(`cannot read image ${where(src)}: ${(err as Error).message}`, 'unreadable', typeof src === 'string' ? src : undefined);
  }
}

/**
 * Width and height after EXIF orientation, read from the header only (fast; any size: the
 * pixels are not decoded, so callers compare the size with their own limit).
 */
export async function imageSize(src: string | Buffer): Promise<{ height: number; width: number; format: string }> {
  try {
    const m = await sharp(src, { limitInputPixels: false }).metadata();
    if (!m.width || !m.height) throw new Error('no size in header');
    const swap = (m.orientation ?? 1) >= 5;
    return { height: swap ? m.width : m.height, width: swap ? m.height : m.width, format: m.format ?? 'unknown' };
  } catch (err) {
    throw new DataError(`cannot read image ${where(src)}: ${(err as Error).message}`, 'unreadable', typeof src === 'string' ? src : undefined);
  }
}

/**
 * Decodes a mask file without interpolation or color management: 1 channel for
 * gray/index masks, 3 for color masks (alpha dropped; R=G=B color files become 1
 * channel). 16-bit masks keep values up to 255 and fail above (libtorch has no uint16).
 */
export async function decodeMask(src: string | Buffer): Promise<RawImage & { format: string }> {
  let meta: Metadata;
  try {
    meta = await sharp(src).metadata();
  } catch (err) {
    throw new DataError(`cannot read mask ${where(src)}: ${(err as Error).message}`, 'unreadable', typeof src === 'string' ? src : undefined);
  }
  const file = typeof src === 'string' ? src : undefined;
  let raw: RawResult;
  try {
    let p = sharp(src, { failOn: 'warning', pages: 1 }).autoOrient().removeAlpha();
    const wide = meta.depth === 'ushort';
    // sharp's output colourspace defaults to 8-bit sRGB: a 16-bit image would be reduced
    // (v >> 8, class 1 -> 0) before .raw() widened it again. grey16/rgb16 keep every value.
    if (wide) p = p.toColourspace((meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0) === 1 ? 'grey16' : 'rgb16');
    raw = await p.raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    if (wide) raw = { data: narrow16(raw.data, src), info: raw.info };
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`cannot read mask ${where(src)}: ${(err as Error).message}`, 'unreadable', file);
  }
  const { info } = raw;
  let data = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
  let channels = info.channels;
  if (channels === 3 && isGrayRgb(data)) {
    data = firstChannel(data, info.height, info.width);
    channels = 1;
  }
  if (channels !== 1 && channels !== 3) throw new DataError(`cannot read mask ${where(src)}: ${channels} channels`, 'unreadable', file);
  return { data, height: info.height, width: info.width, channels, format: meta.format ?? 'unknown' };
}

function narrow16(buf: Buffer, src: string | Buffer): Buffer {
  const v = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
  let max = 0;
  for (let i = 0; i < v.length; i++) if (v[i] > max) max = v[i];
  if (max > 255) {
    throw new DataError(`mask ${where(src)} is 16-bit with values up to ${max}; class indices must be 0..255 ` +
      '(a 16-bit mask is read by value: save 0/65535 binary masks as 8-bit 0/255 or 0/1)', 'mask-values', typeof src === 'string' ? src : undefined);
  }
  return Buffer.from(Uint8Array.from(v));
}

function isGrayRgb(d: Uint8Array): boolean {
  return tidy(() => {
    const t = tensor(d, [d.length / 3, 3]);
    return all(logicalAnd(t.select(1, 0).eq(t.select(1, 1)), t.select(1, 0).eq(t.select(1, 2)))).item() === 1;
  });
}

function firstChannel(d: Uint8Array, h: number, w: number): Uint8Array {
  return tidy(() => tensor(d, [h, w, 3]).select(2, 0).contiguous().dataSync() as Uint8Array);
}

/** A RawImage as a uint8 tensor: (H, W, C), or (H, W) when it has one channel. */
export function rawToTensor(img: RawImage): Tensor {
  return tensor(img.data, img.channels === 1 ? [img.height, img.width] : [img.height, img.width, img.channels], { dtype: 'uint8' });
}

/** Decodes an image straight to a uint8 (H, W, 3) tensor. */
export async function readImage(src: string | Buffer, opts: DecodeOptions = {}): Promise<Tensor> {
  return rawToTensor(await decodeImage(src, opts));
}

/** Resizes a uint8 (H, W, C) image tensor with sharp (lanczos3 by default), off the main thread. */
export async function resizeImage(img: Tensor, size: Size, kernel: DecodeOptions['kernel'] = 'lanczos3'): Promise<Tensor> {
  const raw = tensorToRaw(img, 'resizeImage');
  const out = await sharp(Buffer.from(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength),
    { raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 3 | 4 } })
    .resize(size[1], size[0], { fit: 'fill', kernel }).raw().toBuffer({ resolveWithObject: true });
  return rawToTensor({ data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength), height: out.info.height, width: out.info.width, channels: out.info.channels });
}

/** Source index of each output pixel for nearest resampling at pixel centres (PIL / torch 'nearest-exact'). */
export function nearestIndex(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const s = inSize / outSize;
  for (let i = 0; i < outSize; i++) idx[i] = Math.min(inSize - 1, Math.floor((i + 0.5) * s));
  return idx;
}

/**
 * Nearest-neighbour resize of a mask (H, W) or (H, W, C) of any dtype: every output value
 * is one input value (class indices are never blended).
 *   resizeMask(mask, [512, 768])
 */
export function resizeMask(mask: Tensor, size: Size): Tensor {
  const [h, w] = mask.shape;
  if (h === size[0] && w === size[1]) return mask.clone();
  return tidy(() => {
    const rows = tensor(nearestIndex(h, size[0]), [size[0]], { dtype: 'int32' }).to('int64');
    const cols = tensor(nearestIndex(w, size[1]), [size[1]], { dtype: 'int32' }).to('int64');
    return indexSelect(indexSelect(mask, 0, rows), 1, cols);
  });
}

function tensorToRaw(t: Tensor, op: string): RawImage {
  if (t.dtype !== 'uint8' || (t.ndim !== 2 && t.ndim !== 3)) {
    throw new DataError(`'${op}' needs a uint8 (H, W) or (H, W, C) tensor, got ${t.dtype} [${t.shape.join(',')}]`, 'argument');
  }
  const channels = t.ndim === 2 ? 1 : t.shape[2];
  if (![1, 3, 4].includes(channels)) throw new DataError(`'${op}' needs 1, 3 or 4 channels, got ${channels}`, 'argument');
  return { data: tidy(() => t.contiguous().dataSync() as Uint8Array), height: t.shape[0], width: t.shape[1], channels };
}

function sharpOf(t: Tensor, op: string): Sharp {
  const raw = tensorToRaw(t, op);
  const img = sharp(Buffer.from(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength),
    { raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 3 | 4 } });
  // one channel stays one channel (8-bit gray PNG: masks of class indices), not sRGB
  return raw.channels === 1 ? img.toColourspace('b-w') : img;
}

/** PNG bytes of a uint8 (H, W) or (H, W, C) tensor (lossless: use for masks). */
export async function encodePng(t: Tensor): Promise<Buffer> {
  return sharpOf(t, 'encodePng').png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
}

/** JPEG bytes (baseline, 4:2:0 chroma subsampling, quality 1..100) of a uint8 (H, W, 3) tensor. */
export async function encodeJpeg(t: Tensor, quality = 90): Promise<Buffer> {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new DataError(`'encodeJpeg' quality must be an integer 1..100, got ${quality}`, 'argument');
  return sharpOf(t, 'encodeJpeg').jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false }).toBuffer();
}

export { writeFileAtomic };

/** Encodes by extension (.png lossless; .jpg/.jpeg at `quality`) and writes atomically. */
export async function writeImage(file: string, t: Tensor, opts: { quality?: number } = {}): Promise<void> {
  const ext = path.extname(file).toLowerCase();
  let buf: Buffer;
  if (ext === '.png') buf = await encodePng(t);
  else if (ext === '.jpg' || ext === '.jpeg') buf = await encodeJpeg(t, opts.quality ?? 90);
  else throw new DataError(`cannot write '${file}': only .png and .jpg are written`, 'argument', file);
  await writeFileAtomic(file, buf);
}
