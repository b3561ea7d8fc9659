import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeMask, encodeJpeg, encodePng, nearestIndex, readImage, resizeMask, writeFileAtomic, DataError } from '../../src/data';
import { dispose, memory, tensor } from '../../src/tensor';
import { encode, Fmt, QUADS, quadImage, rawImage, tempDir } from '../helpers/data';

const tmp = tempDir();
after(tmp.cleanup);

/** Mean absolute error of each quadrant's centre pixel against its color. */
function quadError(data: Uint8Array, h: number, w: number): number {
  let worst = 0;
  for (let q = 0; q < 4; q++) {
    const y = q < 2 ? Math.floor(h / 4) : Math.floor((3 * h) / 4);
    const x = q % 2 === 0 ? Math.floor(w / 4) : Math.floor((3 * w) / 4);
    for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(data[(y * w + x) * 3 + k] - QUADS[q][k]));
  }
  return worst;
}

const FORMATS: [Fmt, number][] = [['png', 0], ['tiff', 0], ['gif', 0], ['jpeg', 6], ['webp', 8], ['avif', 12]];
for (const [fmt, tol] of FORMATS) {
  test(`decodeImage reads ${fmt} to uint8 RGB HWC`, async () => {
    const buf = await encode(quadImage(32, 48), 32, 48, 3, fmt);
    const file = path.join(tmp.dir, `q.${fmt}`);
    fs.writeFileSync(file, buf);
    const img = await decodeImage(file);
    assert.deepEqual([img.height, img.width, img.channels], [32, 48, 3]);
    assert.equal(img.data.length, 32 * 48 * 3);
    assert.ok(quadError(img.data, 32, 48) <= tol, `${fmt}: quadrant colors off by ${quadError(img.data, 32, 48)} > ${tol}`);
  });
}

test('grayscale is expanded to 3 equal channels; alpha is dropped', async () => {
  const gray = await encode(rawImage(8, 8, 1, (y) => y * 20), 8, 8, 1, 'png');
  const g = await decodeImage(gray);
  assert.equal(g.channels, 3);
  assert.deepEqual(Array.from(g.data.slice(3 * 8 * 5, 3 * 8 * 5 + 3)), [100, 100, 100]);
  const rgba = await encode(rawImage(8, 8, 4, (_y, _x, k) => [10, 20, 30, 0][k]), 8, 8, 4, 'png');
  const a = await decodeImage(rgba);
  assert.equal(a.channels, 3);
  assert.deepEqual(Array.from(a.data.slice(0, 3)), [10, 20, 30]);
});

test('16-bit PNG is reduced to 8 bits', async () => {
  const v = new Uint16Array(4 * 4 * 3).fill(0x8080);
  const png = await sharp(Buffer.from(v.buffer), { raw: { width: 4, height: 4, channels: 3, premultiplied: false } })
    .toColourspace('rgb16').png().toBuffer().catch(() => null);
  // raw 16-bit input support varies; fall back to a hand-built 16-bit grayscale via sharp's b-w16
  const buf = png ?? await sharp(Buffer.alloc(16, 128), { raw: { width: 4, height: 4, channels: 1 } }).toColourspace('grey16').png().toBuffer();
  const meta = await sharp(buf).metadata();
  assert.equal(meta.depth, 'ushort', 'fixture must be 16-bit');
  const img = await decodeImage(buf);
  assert.equal(img.channels, 3);
  assert.ok(Math.abs(img.data[0] - 128) <= 1, `expected ~128, got ${img.data[0]}`);
});

test('EXIF orientation is applied (orientation 6: rotate 90 degrees clockwise)', async () => {
  // 32 x 64 (HxW): left half red, right half blue
  const raw = rawImage(32, 64, 3, (_y, x, k) => (x < 32 ? [220, 20, 20] : [20, 20, 220])[k]);
  const jpg = await sharp(raw, { raw: { width: 64, height: 32, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const img = await decodeImage(jpg);
  assert.deepEqual([img.height, img.width], [64, 32]);
  const px = (y: number, x: number): number[] => Array.from(img.data.slice((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
  // rotated clockwise: the left (red) half is now on top
  assert.ok(px(10, 16)[0] > 180 && px(10, 16)[2] < 60, `top should be red, got ${px(10, 16)}`);
  assert.ok(px(54, 16)[2] > 180 && px(54, 16)[0] < 60, `bottom should be blue, got ${px(54, 16)}`);
});

test('decodeImage resizes to [H, W] and readImage gives a (H, W, 3) uint8 tensor', async () => {
  const buf = await encode(quadImage(40, 60), 40, 60, 3, 'png');
  const t = await readImage(buf, { size: [20, 30] });
  assert.deepEqual(t.shape, [20, 30, 3]);
  assert.equal(t.dtype, 'uint8');
  t.dispose();
});

test('a corrupt or truncated image is a DataError naming the file', async () => {
  const good = await encode(quadImage(64, 64), 64, 64, 3, 'jpeg');
  const file = path.join(tmp.dir, 'truncated.jpg');
  fs.writeFileSync(file, good.subarray(0, good.length >> 1));
  await assert.rejects(decodeImage(file), (e: unknown) => e instanceof DataError && e.code === 'unreadable' && e.message.includes('truncated.jpg'));
  const junk = path.join(tmp.dir, 'junk.png');
  fs.writeFileSync(junk, 'not an image');
  await assert.rejects(decodeImage(junk), /cannot read image '.*junk\.png'/);
});

test('resizeMask is nearest: every output value is an input value at the nearest source pixel', () => {
  const h = 37, w = 53;
  const vals = [0, 3, 7];
  const src = new Uint8Array(h * w).map((_, i) => vals[(i * 7919) % 3]);
  const before = memory().liveTensors;
  const m = tensor(src, [h, w], { dtype: 'uint8' });
  for (const [oh, ow] of [[64, 96], [20, 30], [37, 11]]) {
    const r = resizeMask(m, [oh, ow]);
    assert.deepEqual(r.shape, [oh, ow]);
    const out = r.dataSync();
    const ri = nearestIndex(h, oh), ci = nearestIndex(w, ow);
    for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) assert.equal(out[y * ow + x], src[ri[y] * w + ci[x]]);
    assert.ok(Array.from(out as Uint8Array).every((v) => vals.includes(v)));
    r.dispose();
  }
  m.dispose();
  assert.equal(memory().liveTensors, before);
});

test('masks decode without interpolation or color management; gray RGB masks become 1 channel', async () => {
  const raw = rawImage(6, 9, 1, (y, x) => (x + y) % 5);
  const m = await decodeMask(await encode(raw, 6, 9, 1, 'png'));
  assert.equal(m.channels, 1);
  assert.deepEqual(Array.from(m.data), Array.from(raw));
  const rgb = await decodeMask(await encode(rawImage(6, 9, 3, (y) => y), 6, 9, 3, 'png'));
  assert.equal(rgb.channels, 1);
  const color = await decodeMask(await encode(rawImage(6, 9, 3, (_y, x, k) => (k === 0 ? x * 20 : 0)), 6, 9, 3, 'png'));
  assert.equal(color.channels, 3);
});

test('encodePng is lossless, encodeJpeg close, writeFileAtomic leaves no temp files', async () => {
  const t = tensor(quadImage(16, 24), [16, 24, 3], { dtype: 'uint8' });
  const before = memory().liveTensors;
  const pngBytes = await encodePng(t);
  assert.equal(memory().liveTensors, before, 'encodePng frees its temporaries');
  const png = await decodeImage(pngBytes);
  assert.deepEqual(Array.from(png.data), Array.from(quadImage(16, 24)));
  const jpg = await decodeImage(await encodeJpeg(t, 95));
  assert.ok(quadError(jpg.data, 16, 24) <= 8);
  await assert.rejects(encodeJpeg(t, 0), /quality/);
  const file = path.join(tmp.dir, 'atomic', 'x.png');
  await writeFileAtomic(file, await encodePng(t));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['x.png']);
  dispose(t);
});

/** A 16-bit PNG (grey16 or rgb16) holding exactly `values` (HWC), made by sharp. */
async function png16(values: number[], h: number, w: number, c: 1 | 3): Promise<Buffer> {
  const buf = await sharp(Uint16Array.from(values), { raw: { width: w, height: h, channels: c } }).toColourspace(c === 1 ? 'grey16' : 'rgb16').png().toBuffer();
  const meta = await sharp(buf).metadata();
  assert.deepEqual([meta.depth, meta.channels], ['ushort', c], 'fixture must be a 16-bit PNG');
  return buf;
}

test('16-bit masks are read by value (class 1 stays 1), not divided by 256', async () => {
  const before = memory().liveTensors;
  const v = Array.from({ length: 16 * 16 }, (_, i) => i % 3);
  const gray = await decodeMask(await png16(v, 16, 16, 1));
  assert.equal(gray.channels, 1);
  assert.deepEqual(Array.from(gray.data), v);
  // an RGB-palette mask stored as 16-bit keeps its colors
  const colors = [[0, 0, 0], [230, 80, 80], [80, 200, 80]];
  const rgb = Array.from({ length: 16 * 16 }, (_, i) => colors[i % 3]).flat();
  const color = await decodeMask(await png16(rgb, 16, 16, 3));
  assert.equal(color.channels, 3);
  assert.deepEqual(Array.from(color.data), rgb);
  assert.equal(memory().liveTensors, before);
});

test('a 16-bit mask with values above 255 is a DataError naming the file and the value', async () => {
  const file = path.join(tmp.dir, 'wide16.png');
  fs.writeFileSync(file, await png16(Array.from({ length: 16 * 16 }, (_, i) => (i === 37 ? 300 : i % 2)), 16, 16, 1));
  await assert.rejects(decodeMask(file), (e: unknown) => e instanceof DataError && e.code === 'mask-values' && e.file === file &&
    e.message.includes('wide16.png') && /16-bit with values up to 300/.test(e.message) && /0\.\.255/.test(e.message));
});
