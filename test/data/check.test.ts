import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { assertDatasetOk, checkDataset, formatReport, openFolderDataset, DataError } from '../../src/data';
import { memory } from '../../src/tensor';
import { rawImage, tempDir, writeFolderDataset } from '../helpers/data';
import { cli as runCli } from '../helpers/cli';

const tmp = tempDir();
after(tmp.cleanup);

/** Runs `cqseg data check ARGS` in-process; returns exit status and stdout. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await runCli(['data', 'check', ...args]);
  return { code: r.code, out: r.out };
}

test('a clean dataset passes: exit 0, every sample read, class shares reported', async () => {
  const root = path.join(tmp.dir, 'clean');
  await writeFolderDataset(root, 4, 16, 24, 3);
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify(['bg', 'a', 'b']));
  const before = memory().liveTensors;
  const r = await checkDataset(openFolderDataset(root), { size: [16, 24] });
  assert.equal(memory().liveTensors, before);
  assert.equal(r.errors, 0);
  assert.equal(r.warnings, 0);
  assert.equal(r.imagesRead, 4);
  assert.equal(r.masksRead, 4);
  assert.equal(r.classPixels.reduce((a, b) => a + b, 0), 4 * 16 * 24);
  const { code, out } = await cli([root, '--size', '16x24']);
  assert.equal(code, 0);
  assert.match(out, /OK: no errors/);
});

test('every problem is reported with counts and file names; exit status 1', async () => {
  const root = path.join(tmp.dir, 'broken');
  await writeFolderDataset(root, 8, 16, 24, 3);
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify(['bg', 'a', 'b']));
  const img = (f: string): string => path.join(root, 'images', f);
  const msk = (f: string): string => path.join(root, 'masks', f);
  fs.writeFileSync(img('s0.png'), fs.readFileSync(img('s0.png')).subarray(0, 60)); // corrupt image
  fs.rmSync(msk('s1.png')); // missing mask
  await sharp(rawImage(4, 4, 1, () => 0), { raw: { width: 4, height: 4, channels: 1 } }).png().toFile(msk('orphan.png')); // extra mask
  await sharp(rawImage(10, 24, 1, () => 1), { raw: { width: 24, height: 10, channels: 1 } }).png().toFile(msk('s2.png')); // size mismatch
  await sharp(rawImage(16, 24, 1, (y) => (y < 2 ? 9 : 0)), { raw: { width: 24, height: 16, channels: 1 } }).png().toFile(msk('s3.png')); // values outside
  fs.copyFileSync(img('s4.png'), img('s4.jpg')); // duplicate stem
  const r = await checkDataset(openFolderDataset(root), { size: [32, 24] });
  const byCode = new Map(r.issues.map((i) => [i.code, i]));
  const expect: [string, string, RegExp][] = [
    ['unreadable-image', 'error', /s0\.png/],
    ['missing-mask', 'error', /s1\.png/],
    ['extra-mask', 'warning', /orphan\.png/],
    ['size-mismatch', 'error', /s2\.png \(image 16x24, mask 10x24\)/],
    ['values-outside', 'error', /s3\.png: 9 \(48 px\)/],
    ['duplicate-stem', 'error', /s4\.(png|jpg)/],
    ['too-small', 'warning', /\(16x24\)/],
  ];
  for (const [code, severity, file] of expect) {
    const is = byCode.get(code);
    assert.ok(is, `no '${code}' issue; got ${[...byCode.keys()].join(', ')}`);
    assert.equal(is.severity, severity, code);
    assert.ok(is.files.some((f) => file.test(f)), `${code}: ${is.files.join('; ')}`);
  }
  assert.equal(byCode.get('duplicate-stem')!.files.length, 2);
  const text = formatReport(r);
  assert.match(text, /error: images that cannot be decoded .*\[unreadable-image, 1 file\]/);
  assert.match(text, /FAILED: \d+ errors/);
  const { code, out } = await cli([root, '--size', '32x24']);
  assert.equal(code, 1);
  assert.match(out, /missing-mask/);
  // training and evaluation stop with the same messages
  await assert.rejects(assertDatasetOk(openFolderDataset(root), { size: [32, 24] }),
    (e: unknown) => e instanceof DataError && /has errors/.test(e.message) && /s1\.png/.test(e.message) && !/too-small/.test(e.message));
});

test('an empty dataset is an error', async () => {
  const root = path.join(tmp.dir, 'empty');
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'), { recursive: true });
  const r = await checkDataset(openFolderDataset(root, { classes: 'binary' }));
  assert.equal(r.issues[0].code, 'empty');
  assert.ok(r.errors > 0);
  const { code } = await cli([root]);
  assert.equal(code, 1);
});

test('a dataset folder without images/ or masks/ names what is missing', async () => {
  assert.throws(() => openFolderDataset(path.join(tmp.dir, 'nope')), /does not exist/);
  fs.mkdirSync(path.join(tmp.dir, 'half', 'images'), { recursive: true });
  assert.throws(() => openFolderDataset(path.join(tmp.dir, 'half')), /has no masks\/ folder/);
  const r = await runCli(['data', 'check', path.join(tmp.dir, 'nope')]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /does not exist/);
});

test('16-bit PNG masks: classes counted by value; a value above 255 fails the check naming the file', async () => {
  const root = path.join(tmp.dir, 'wide');
  await writeFolderDataset(root, 2, 16, 16, 3);
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify(['bg', 'a', 'b']));
  const mask16 = (stem: string, f: (i: number) => number): Promise<unknown> =>
    sharp(Uint16Array.from({ length: 16 * 16 }, (_, i) => f(i)), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('grey16').png()
      .toFile(path.join(root, 'masks', `${stem}.png`));
  // no background at all: read / 256, as before, every pixel would be class 0
  for (const stem of ['s0', 's1']) await mask16(stem, (i) => (i < 128 ? 1 : 2));
  const before = memory().liveTensors;
  const r = await checkDataset(openFolderDataset(root), { size: [16, 16] });
  assert.equal(memory().liveTensors, before);
  assert.equal(r.errors, 0);
  assert.deepEqual(r.classPixels, [0, 256, 256]);
  const ok = await cli([root, '--size', '16x16']);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /bg 0\.0%, a 50\.0%, b 50\.0%/);

  await mask16('s0', (i) => (i === 5 ? 300 : 1));
  const { code, out } = await cli([root, '--size', '16x16']);
  assert.equal(code, 1, out);
  assert.match(out, /s0\.png.*16-bit with values up to 300/);
  assert.match(out, /FAILED: 1 error/);
});
