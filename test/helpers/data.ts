/** Test fixtures for data/: tiny images and masks written to a fresh temp folder. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

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
