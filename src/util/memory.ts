/**
 * The largest image `cqseg predict` and `cqseg evaluate --original-resolution` take,
 * from the memory free when they start: a full-size image costs about BYTES_PER_PIXEL
 * bytes per pixel at the peak (the decoded image, its copy for the model's resize, the
 * uint8 mask, the overlay and the buffers of the PNG encoder; measured with
 * /usr/bin/time -v on 4000x4000 and 8000x8000 JPEGs), so the limit is
 *   min(free memory / BYTES_PER_PIXEL, sharp's own limit of 16383 x 16383 pixels).
 * The environment variable CQSEG_MAX_PIXELS sets another limit (lower it to keep a
 * shared machine safe; tests use it).
 */
import * as os from 'os';
import { CqsegError } from './errors';

export const BYTES_PER_PIXEL = 24;
/** sharp's default limitInputPixels: larger images are refused by the decoder itself. */
export const DECODER_MAX_PIXELS = 0x3fff * 0x3fff;

export interface PixelLimit {
  pixels: number;
  /** where the limit comes from, for messages */
  source: string;
}

const mb = (bytes: number): string => `${Math.round(bytes / 2 ** 20)} MB`;
export const megapixels = (px: number): string => `${(px / 1e6).toFixed(1)} Mpx`;

/** The pixel limit now: CQSEG_MAX_PIXELS when set, else from os.freemem(). */
export function pixelLimit(env: NodeJS.ProcessEnv = process.env): PixelLimit {
  const set = env.CQSEG_MAX_PIXELS;
  if (set !== undefined && set.trim() !== '') {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 1) throw new CqsegError(`CQSEG_MAX_PIXELS must be a positive integer (pixels), got '${set}'`, 'ERR_ENV');
    return { pixels: n, source: 'CQSEG_MAX_PIXELS' };
  }
  const free = os.freemem();
  const fromMemory = Math.floor(free / BYTES_PER_PIXEL);
  if (fromMemory < DECODER_MAX_PIXELS) {
    return { pixels: fromMemory, source: `${mb(free)} of memory free of ${mb(os.totalmem())}, at about ${BYTES_PER_PIXEL} bytes a pixel` };
  }
  return { pixels: DECODER_MAX_PIXELS, source: "the image decoder's limit of 16383x16383" };
}

/** Why an image of height x width is refused (the limit and the image's size), or null when it fits. */
export function pixelLimitProblem(height: number, width: number, limit: PixelLimit = pixelLimit()): string | null {
  const px = height * width;
  if (px <= limit.pixels) return null;
  const side = Math.floor(Math.sqrt(limit.pixels));
  return `image of ${width}x${height} (WxH) = ${megapixels(px)} is larger than the limit of ${megapixels(limit.pixels)} (${limit.source}); ` +
    `downscale it (e.g. to at most ${side}x${side}), or free memory` + (limit.source === 'CQSEG_MAX_PIXELS' ? ', or raise CQSEG_MAX_PIXELS' : '');
}
