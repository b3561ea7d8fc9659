/** Test fixtures for data/: tiny images and masks written to a fresh temp folder. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as zlib from 'zlib';

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(prefix = 'cqseg-data-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Raw HWC pixels from a per-pixel function (fixture sizes only). */
export function rawImage(h: number, w: number, c: number, f: (y: number, x: number, ch: number) => number): Buffer {
  const b = Buffer.alloc(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) b[(y * w + x) * c + k] = f(y, x, k);
  return b;
}

export type Fmt = 'png' | 'jpeg' | 'webp' | 'tiff' | 'gif' | 'avif';

/** Encodes raw pixels in a format (lossless where the format allows). */
export async function encode(raw: Buffer, h: number, w: number, c: 1 | 2 | 3 | 4, fmt: Fmt): Promise<Buffer> {
  const s = sharp(raw, { raw: { width: w, height: h, channels: c } });
  switch (fmt) {
    case 'png': return s.png().toBuffer();
    case 'jpeg': return s.jpeg({ quality: 95 }).toBuffer();
    case 'webp': return s.webp({ quality: 95 }).toBuffer();
    case 'tiff': return s.tiff({ compression: 'lzw' }).toBuffer();
    case 'gif': return s.gif().toBuffer();
    case 'avif': return s.avif({ quality: 90 }).toBuffer();
  }
}

/** A block-colored RGB test image: four quadrants of distinct colors. */
export const QUADS: [number, number, number][] = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40]];
export function quadImage(h: number, w: number): Buffer {
  return rawImage(h, w, 3, (y, x, k) => QUADS[(y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)][k]);
}

/** Writes a small folder dataset: images/ (PNG) + masks/ (gray PNG of class indices), n samples of h x w. */
export async function writeFolderDataset(root: string, n: number, h: number, w: number, classes = 3): Promise<void> {
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'), { recursive: true });
  for (let i = 0; i < n; i++) {
    const stem = `s${i}`;
    await sharp(quadImage(h, w), { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(root, 'images', `${stem}.png`));
    const m = rawImage(h, w, 1, (y, x) => (Math.floor((x * classes) / w) + i) % classes);
    await sharp(m, { raw: { width: w, height: h, channels: 1 } }).png().toFile(path.join(root, 'masks', `${stem}.png`));
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A 1-bit grayscale PNG (color type 0, bit depth 1), as CHASE_DB1 ships its labels:
 * sharp writes 1-bit PNGs only with a palette, so this one is built by hand.
 */
export function png1bit(h: number, w: number, on: (y: number, x: number) => boolean): Buffer {
  const stride = Math.ceil(w / 8);
  const rows = Buffer.alloc(h * (stride + 1));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) if (on(y, x)) rows[y * (stride + 1) + 1 + (x >> 3)] |= 0x80 >> (x & 7);
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, grayscale, deflate, adaptive filters, no interlace
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}
