/**
 * Dataset descriptions and pairs lists (issue 15): data read as public data sets ship it.
 * Tiny fixtures in a temp folder imitate DRIVE (TIFF images, GIF labels 0/255 and GIF
 * field-of-view masks in sibling folders, stems that differ) and CHASE_DB1 (JPEG images
 * with 1-bit PNG labels of two observers in the same folder). Pixel counts are exact.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import {
  assertDatasetOk, checkDataset, checkModeClasses, compilePattern, DataError, fillPattern, Loader, loadSample, maskToIndices,
  matchPattern, openDataset, openDescription, openFolderDataset, parseMaskMode, BINARY_CLASSES,
} from '../../src/data';
import { dispose, memory, tidy } from '../../src/tensor';
import { encode, png1bit, quadImage, rawImage, tempDir, writeFolderDataset } from '../helpers/data';
import { cli as runCli } from '../helpers/cli';

const tmp = tempDir('cqseg-pairing-');
after(tmp.cleanup);
const at = (...p: string[]): string => path.join(tmp.dir, ...p);
const H = 8;
const W = 10;

/** DRIVE's layout: images/NN_training.tif, 1st_manual/NN_manual1.gif (rows 0-1 vessel), mask/NN_training_mask.gif (columns 0-5 inside). */
async function writeDriveLike(root: string, ids: string[], maskIds = ids): Promise<void> {
  for (const d of ['images', '1st_manual', 'mask']) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const id of ids) {
    fs.writeFileSync(path.join(root, 'images', `${id}_training.tif`), await encode(quadImage(H, W), H, W, 3, 'tiff'));
    fs.writeFileSync(path.join(root, 'mask', `${id}_training_mask.gif`), await encode(rawImage(H, W, 1, (_y, x) => (x < 6 ? 255 : 0)), H, W, 1, 'gif'));
  }
  for (const id of maskIds) {
    fs.writeFileSync(path.join(root, '1st_manual', `${id}_manual1.gif`), await encode(rawImage(H, W, 1, (y) => (y < 2 ? 255 : 0)), H, W, 1, 'gif'));
  }
}

function writeJson(file: string, json: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(json, null, 2));
  return file;
}

const DRIVE = { root: '../drive/training', images: 'images/{id}_training.tif', masks: '1st_manual/{id}_manual1.gif', roi: 'mask/{id}_training_mask.gif', classes: ['background', 'vessel'], maskMode: 'binary' };

/** Runs `cqseg data check ARGS` in-process; returns exit status and stdout. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await runCli(['data', 'check', ...args]);
  return { code: r.code, out: r.out };
}

before(async () => {
  await writeDriveLike(at('drive', 'training'), ['21', '22', '23']);
  // a label with no image: reported, not paired
  fs.copyFileSync(at('drive', 'training', '1st_manual', '21_manual1.gif'), at('drive', 'training', '1st_manual', '99_manual1.gif'));
  writeJson(at('desc', 'drive.json'), DRIVE);
});

test('patterns: {name} captures within a name, * and ? match, names may repeat and span folders', () => {
  const root = at('patterns');
  for (const f of ['p1/img_a.png', 'p1/img_b.png', 'p2/img_a.png', 'p2/p2_extra.png', 'p2/.hidden_a.png', 'p3/notes.txt']) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '');
  }
  const p = compilePattern('{patient}/img_{slice}.png', root);
  assert.deepEqual(p.names, ['patient', 'slice']);
  assert.deepEqual(matchPattern(p).map((m) => [path.relative(root, m.file), m.fields]), [
    ['p1/img_a.png', { patient: 'p1', slice: 'a' }], ['p1/img_b.png', { patient: 'p1', slice: 'b' }], ['p2/img_a.png', { patient: 'p2', slice: 'a' }]]);
  assert.deepEqual(matchPattern(compilePattern('{p}/{p}_*.png', root)).map((m) => m.fields), [{ p: 'p2' }]);
  assert.deepEqual(matchPattern(compilePattern('p?/*_a.png', root)).map((m) => path.relative(root, m.file)), ['p1/img_a.png', 'p2/img_a.png']);
  assert.equal(fillPattern(p, { patient: 'p9', slice: 'z' }), path.join(root, 'p9/img_z.png'));
  assert.throws(() => compilePattern('{a b}.png', root), /'\{a b\}' is not a placeholder/);
  assert.throws(() => compilePattern('x{id.png', root), /unbalanced/);
});

test('a DRIVE-like description pairs images and masks with different stems, with ROI masks (TIFF, GIF)', async () => {
  const ds = openDataset(at('desc', 'drive.json'));
  assert.equal(ds.kind, 'pairs');
  assert.equal(ds.roi, true);
  assert.deepEqual(ds.classes.classes.map((c) => c.name), ['background', 'vessel']);
  assert.deepEqual(ds.items.map((it) => [it.stem, path.basename(it.image), path.basename(it.mask!), path.basename(it.roi!)]), [
    ['21_training', '21_training.tif', '21_manual1.gif', '21_training_mask.gif'],
    ['22_training', '22_training.tif', '22_manual1.gif', '22_training_mask.gif'],
    ['23_training', '23_training.tif', '23_manual1.gif', '23_training_mask.gif']]);
  // paths resolve against the description's folder, and stay relative when it is
  assert.equal(ds.items[0].image, path.join(at('desc'), '../drive/training/images/21_training.tif'));
  const before = memory().liveTensors;
  const r = await checkDataset(ds, { size: [H, W] });
  assert.equal(memory().liveTensors, before);
  assert.equal(r.errors, 0);
  assert.deepEqual([r.imagesRead, r.masksRead], [3, 3]);
  assert.deepEqual(r.formats, { tif: 3 });
  // GIF 0/255 under maskMode binary: 20 of 80 pixels are vessel
  assert.deepEqual(r.classPixels, [3 * 60, 3 * 20]);
  // inside the ROI (columns 0-5): 48 pixels, 12 of them vessel
  assert.deepEqual(r.roi, { read: 3, inside: 3 * 48, total: 3 * 80, classPixels: [3 * 36, 3 * 12] });
  const extra = r.issues.find((i) => i.code === 'extra-mask')!;
  assert.equal(extra.severity, 'warning');
  assert.deepEqual(extra.files.map((f) => path.basename(f)), ['99_manual1.gif']);
  const { code, out } = await cli([at('desc', 'drive.json'), '--size', `${H}x${W}`]);
  assert.equal(code, 0);
  assert.match(out, /\(pairs\): 3 samples/);
  assert.match(out, /vessel 25\.0%/);
  assert.match(out, /ROI masks: 3 read; 60\.0% of the pixels inside; .*vessel 25\.0%/);
  assert.match(out, /masks matching '1st_manual\/\{id\}_manual1\.gif' without an image \(ignored\) \[extra-mask, 1 file\]\n.*99_manual1\.gif/);
});

test('the loader returns ROI masks, resized by nearest, as (N, H, W) bool; loadSample on request', async () => {
  const ds = openDescription(at('desc', 'drive.json'));
  const before = memory().liveTensors;
  for await (const b of new Loader(ds, { batchSize: 2, size: [4, 5], shuffle: false }).epoch(0)) {
    assert.equal(b.roi!.dtype, 'bool');
    assert.deepEqual(b.roi!.shape, [b.stems.length, 4, 5]);
    // source columns 1, 3, 5, 7, 9 (pixel centres): inside for the first three
    assert.deepEqual(tidy(() => b.roi!.select(0, 0).toArray()), Array.from({ length: 20 }, (_, i) => (i % 5 < 3 ? 1 : 0)));
    assert.deepEqual(tidy(() => b.masks!.select(0, 0).toArray()), Array.from({ length: 20 }, (_, i) => (i < 5 ? 1 : 0)));
    dispose(b);
  }
  for await (const b of new Loader(ds, { batchSize: 3, size: [4, 5], roi: false }).epoch(0)) {
    assert.equal(b.roi, undefined);
    dispose(b);
  }
  const s = await loadSample(ds, 0, undefined, { roi: true });
  assert.deepEqual(s.roi!.shape, [H, W]);
  assert.equal(tidy(() => s.roi!.to('int64').sum().item()), 48);
  const plain = await loadSample(ds, 0);
  assert.equal(plain.roi, undefined);
  dispose([s, plain]);
  assert.equal(memory().liveTensors, before);
});

test('a CHASE-like folder: JPEG images beside 1-bit PNG labels of two observers', async () => {
  const root = at('chase');
  fs.mkdirSync(root, { recursive: true });
  for (const id of ['01L', '01R']) {
    fs.writeFileSync(path.join(root, `Image_${id}.jpg`), await encode(quadImage(H, W), H, W, 3, 'jpeg'));
    fs.writeFileSync(path.join(root, `Image_${id}_1stHO.png`), png1bit(H, W, (y, x) => x === 2 || y === 5)); // 17 px
    fs.writeFileSync(path.join(root, `Image_${id}_2ndHO.png`), png1bit(H, W, (_y, x) => x === 3)); // 8 px
  }
  const desc = writeJson(path.join(root, 'chase.json'), { images: 'Image_{id}.jpg', masks: 'Image_{id}_1stHO.png', maskMode: 'binary' });
  const ds = openDataset(desc);
  assert.deepEqual(ds.items.map((it) => path.basename(it.mask!)), ['Image_01L_1stHO.png', 'Image_01R_1stHO.png']);
  assert.ok(!ds.roi);
  assert.equal(ds.classes.source, 'binary');
  assert.deepEqual(ds.issues, []); // binary mode: the class map needs no warning
  const r = await checkDataset(ds, { size: [H, W] });
  assert.equal(r.errors, 0);
  assert.deepEqual(r.classPixels, [2 * 63, 2 * 17]);
  assert.equal(r.roi, undefined);
  const second = openDataset(writeJson(path.join(root, 'chase2.json'), { images: 'Image_{id}.jpg', masks: 'Image_{id}_2ndHO.png', maskMode: 'binary' }));
  assert.deepEqual((await checkDataset(second, { size: [H, W] })).classPixels, [2 * 72, 2 * 8]);
});

test('labels beside images are never taken for images, even with the same extension; one ROI file may serve all', async () => {
  const root = at('beside');
  await writeFolderDataset(root, 2, H, W, 2);
  for (const s of ['s0', 's1']) {
    fs.renameSync(path.join(root, 'masks', `${s}.png`), path.join(root, 'images', `${s}_label.png`));
  }
  // one field-of-view file for every image: a roi pattern without placeholders
  await sharp(rawImage(H, W, 1, () => 255), { raw: { width: W, height: H, channels: 1 } }).png().toFile(path.join(root, 'images', 'fov.png'));
  const ds = openDataset(writeJson(path.join(root, 'd.json'), { root: 'images', images: '{id}.png', masks: '{id}_label.png', roi: 'fov.png' }));
  assert.deepEqual(ds.items.map((it) => [path.basename(it.image), path.basename(it.mask!), path.basename(it.roi!)]),
    [['s0.png', 's0_label.png', 'fov.png'], ['s1.png', 's1_label.png', 'fov.png']]);
  assert.equal(ds.issues.filter((i) => i.severity === 'error').length, 0);
});

test('an image without its mask is an error naming the image, the pattern and the path looked for', async () => {
  await writeDriveLike(at('drive2', 'training'), ['21', '22', '23'], ['21', '22']);
  fs.rmSync(at('drive2', 'training', 'mask', '22_training_mask.gif'));
  const desc = writeJson(at('desc', 'drive2.json'), { ...DRIVE, root: '../drive2/training' });
  const ds = openDataset(desc);
  assert.deepEqual(ds.items.map((it) => it.stem), ['21_training']);
  const miss = ds.issues.find((i) => i.code === 'missing-mask')!;
  assert.equal(miss.severity, 'error');
  assert.match(miss.message, /no file matches '1st_manual\/\{id\}_manual1\.gif'/);
  assert.equal(miss.files.length, 1);
  assert.match(miss.files[0], /23_training\.tif \(looked for .*1st_manual\/23_manual1\.gif\)$/);
  const roi = ds.issues.find((i) => i.code === 'missing-roi')!;
  assert.match(roi.files[0], /22_training\.tif \(looked for .*mask\/22_training_mask\.gif\)$/);
  await assert.rejects(assertDatasetOk(ds, { size: [H, W] }), /23_training\.tif \(looked for/);
  const { code, out } = await cli([desc]);
  assert.equal(code, 1);
  assert.match(out, /error: images without a mask: no file matches '1st_manual\/\{id\}_manual1\.gif' for them \[missing-mask, 1 file\]/);
  // nothing matches: the pattern and the missing folder are named
  const none = openDataset(writeJson(at('desc', 'none.json'), { ...DRIVE, images: 'imgs/{id}_training.tif' }));
  assert.match(none.issues[0].message, /no image file matches 'imgs\/\{id\}_training\.tif' under .*\(folder '.*imgs' does not exist\)/);
});

test('a pairs CSV (image,mask,roi), read directly or named by a description; missing files name the row', async () => {
  const dir = at('lists');
  fs.mkdirSync(dir, { recursive: true });
  const t = '../drive/training';
  fs.writeFileSync(path.join(dir, 'pairs.csv'), [
    'patient,image,mask,roi',
    `a,${t}/images/21_training.tif,${t}/1st_manual/21_manual1.gif,${t}/mask/21_training_mask.gif`,
    `b,"${t}/images/22_training.tif",${t}/1st_manual/22_manual1.gif,${t}/mask/22_training_mask.gif`,
    `c,${t}/images/23_training.tif,${t}/1st_manual/missing.gif,${t}/mask/23_training_mask.gif`,
  ].join('\n'));
  const exact = openDataset(path.join(dir, 'pairs.csv'));
  assert.equal(exact.kind, 'pairs');
  assert.equal(exact.roi, true);
  assert.deepEqual(exact.items.map((it) => it.stem), ['21_training', '22_training']);
  const miss = exact.issues.find((i) => i.code === 'missing-mask')!;
  assert.match(miss.files[0], /pairs\.csv row 4: .*missing\.gif$/);
  // 0/255 GIFs read exactly are outside a two-class map: the report points to --mask-mode binary
  const r = await checkDataset(exact, { size: [H, W] });
  assert.match(r.issues.find((i) => i.code === 'values-outside')!.message, /--mask-mode binary/);
  const bin = openDataset(path.join(dir, 'pairs.csv'), { maskMode: parseMaskMode('binary') });
  assert.deepEqual((await checkDataset(bin, { size: [H, W] })).roi!.classPixels, [2 * 36, 2 * 12]);
  // the same list through a description; an inline list without roi
  const viaDesc = openDataset(writeJson(path.join(dir, 'd.json'), { pairs: 'pairs.csv', maskMode: 'binary' }));
  assert.equal(viaDesc.items.length, 2);
  const inline = openDataset(writeJson(path.join(dir, 'inline.json'), { root: t, pairs: [{ image: 'images/21_training.tif', mask: '1st_manual/21_manual1.gif' }], maskMode: 'binary' }));
  assert.equal(inline.items.length, 1);
  assert.ok(!inline.roi);
  // a CSV without a mask column stays an unlabelled image list
  fs.writeFileSync(path.join(dir, 'images.csv'), `image\n${t}/images/21_training.tif\n`);
  assert.equal(openDataset(path.join(dir, 'images.csv')).kind, 'list');
});

test('binary mask mode: any value > 0 is class 1 (0/1, 0/255, RGB); two classes only', async () => {
  assert.deepEqual(parseMaskMode('binary'), { kind: 'binary' });
  assert.throws(() => parseMaskMode('binery'), /'exact', 'binary', 'nearest' or 'threshold\[:T\]'/);
  const gray = maskToIndices({ data: Uint8Array.from([0, 1, 255, 0]), height: 1, width: 4, channels: 1 }, BINARY_CLASSES, { kind: 'binary' });
  const rgb = maskToIndices({ data: Uint8Array.from([0, 0, 0, 0, 0, 1, 255, 255, 255, 9, 0, 0]), height: 1, width: 4, channels: 3 }, BINARY_CLASSES, { kind: 'binary' });
  assert.deepEqual(gray.mask.toArray(), [0, 1, 1, 0]);
  assert.deepEqual(rgb.mask.toArray(), [0, 1, 1, 1]);
  assert.equal(gray.outside.size + rgb.outside.size, 0);
  dispose([gray.mask, rgb.mask]);
  const three = { source: 'three', classes: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] };
  assert.throws(() => checkModeClasses({ kind: 'binary' }, three, 'x'), /binary makes two classes .* has 3/);
  // a folder dataset of 0/255 masks reads with --mask-mode binary and no classes.json
  const root = at('folder255');
  await writeFolderDataset(root, 2, H, W, 2);
  for (const s of ['s0', 's1']) await sharp(rawImage(H, W, 1, (y) => (y < 4 ? 255 : 0)), { raw: { width: W, height: H, channels: 1 } }).png().toFile(path.join(root, 'masks', `${s}.png`));
  const ds = openFolderDataset(root, { maskMode: { kind: 'binary' } });
  assert.deepEqual(ds.issues, []);
  assert.deepEqual((await checkDataset(ds, { size: [H, W] })).classPixels, [2 * 40, 2 * 40]);
});

test('description errors name the file and the key; the description maskMode wins over another --mask-mode; COCO stays COCO', () => {
  const bad = (json: unknown, re: RegExp): void => {
    const f = writeJson(at('desc', 'bad.json'), json);
    assert.throws(() => openDataset(f), (e: unknown) => e instanceof DataError && re.test(e.message) && e.message.includes(f));
  };
  bad({ ...DRIVE, maks: 'x/{id}.png' }, /unknown key 'maks' \(did you mean 'masks'\?\)/);
  bad({ ...DRIVE, roi: 3 }, /'roi' must be a non-empty string, got number 3/);
  bad({ root: DRIVE.root, masks: DRIVE.masks }, /needs "images" and "masks" patterns.*"images" is missing/);
  bad({ ...DRIVE, pairs: 'p.csv' }, /either "pairs" or "images" \+ "masks"/);
  bad({ ...DRIVE, root: '../nowhere' }, /root '\.\.\/nowhere' .* is not a folder/);
  bad({ ...DRIVE, maskMode: 'threshold:300' }, /'maskMode' mask mode threshold T must be an integer 1\.\.255/);
  assert.throws(() => openDataset(writeJson(at('desc', 'bad.json'), { ...DRIVE, images: 'images/21_training.tif' })), /has no \{name\}/);
  assert.throws(() => openDataset(writeJson(at('desc', 'bad.json'), { ...DRIVE, masks: '1st_manual/{id}_{obs}.gif' })), /uses \{obs\}, which the images pattern/);
  const warned = openDataset(at('desc', 'drive.json'), { maskMode: parseMaskMode('threshold:128') });
  assert.match(warned.issues.find((i) => i.code === 'mask-mode-ignored')!.message, /threshold:128 ignored: .*"binary"/);
  assert.equal(openDataset(at('desc', 'drive.json'), { maskMode: parseMaskMode('exact') }).issues.filter((i) => i.code === 'mask-mode-ignored').length, 0);
  assert.deepEqual(openDataset(at('desc', 'drive.json'), { classes: 'binary' }).classes.classes.map((c) => c.name), ['background', 'foreground']);
  const coco = writeJson(at('desc', 'coco.json'), { images: [], annotations: [], categories: [] });
  assert.equal(openDataset(coco).kind, 'coco');
});
