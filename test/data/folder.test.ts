import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import {
  openFolderDataset, openImageList, openDataset, parseMaskMode, readImageList, splitByLists, splitBySeed, parseClassMap, DataError, loadClassMap, classIndex,
  BINARY_CLASSES, maskToIndices,
} from '../../src/data';
import { memory, Tensor } from '../../src/tensor';
import { quadImage, rawImage, tempDir, writeFolderDataset } from '../helpers/data';

const tmp = tempDir();
after(tmp.cleanup);

const values = (t: Tensor): number[] => Array.from(t.dataSync() as Uint8Array, Number);

test('folder dataset: gray PNG masks of class indices, classes.json names', async () => {
  const root = path.join(tmp.dir, 'idx');
  await writeFolderDataset(root, 3, 8, 12, 3);
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify(['other', 'a', 'b']));
  const ds = openFolderDataset(root);
  assert.deepEqual(ds.items.map((i) => i.stem), ['s0', 's1', 's2']);
  assert.deepEqual(ds.classes.classes.map((c) => c.name), ['other', 'a', 'b']);
  assert.deepEqual(ds.issues, []);
  const before = memory().liveTensors;
  const m = await ds.readMask(1);
  assert.deepEqual(m.mask.shape, [8, 12]);
  assert.deepEqual(values(m.mask).slice(0, 12), [1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0]);
  assert.equal(m.outside.size, 0);
  m.mask.dispose();
  assert.equal(memory().liveTensors, before);
});

test('folder dataset: RGB-palette masks with the palette in classes.json; unknown colors reported', async () => {
  const root = path.join(tmp.dir, 'rgb');
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'), { recursive: true });
  await sharp(quadImage(4, 6), { raw: { width: 6, height: 4, channels: 3 } }).jpeg().toFile(path.join(root, 'images', 'x.jpg'));
  const pal = [[0, 0, 0], [255, 0, 0], [0, 0, 255]];
  const m = rawImage(4, 6, 3, (y, x, k) => (y === 3 && x === 5 ? [9, 9, 9][k] : pal[x % 3][k]));
  await sharp(m, { raw: { width: 6, height: 4, channels: 3 } }).png().toFile(path.join(root, 'masks', 'x.png'));
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify({ classes: pal.map((color, i) => ({ name: `c${i}`, color })) }));
  const ds = openFolderDataset(root);
  const r = await ds.readMask(0);
  assert.deepEqual(values(r.mask).slice(0, 6), [0, 1, 2, 0, 1, 2]);
  assert.deepEqual([...r.outside.entries()], [['#090909', 1]]);
  r.mask.dispose();
  // nearest maps the stray color to the closest palette entry (black)
  const near = await openFolderDataset(root, { maskMode: { kind: 'nearest' } }).readMask(0);
  assert.equal(values(near.mask)[23], 0);
  assert.equal(near.outside.size, 0);
  near.mask.dispose();
});

test('folder dataset: JPEG masks (compression noise) read with threshold or nearest', async () => {
  const root = path.join(tmp.dir, 'jpgmask');
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'), { recursive: true });
  await sharp(quadImage(32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(root, 'images', 'p.png'));
  const disc = rawImage(32, 32, 3, (y, x) => ((y - 16) ** 2 + (x - 16) ** 2 < 81 ? 255 : 0));
  await sharp(disc, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 60 }).toFile(path.join(root, 'masks', 'p.jpg'));
  const exact = openFolderDataset(root);
  assert.ok(exact.issues.some((i) => i.code === 'lossy-mask' && /threshold/.test(i.message)));
  assert.ok(exact.issues.some((i) => i.code === 'no-class-map'));
  const e = await exact.readMask(0);
  assert.ok(e.outside.has('255'), 'exact mode reports 255 as outside the binary map');
  e.mask.dispose();
  for (const mode of ['threshold:128', 'nearest']) {
    const ds = openFolderDataset(root, { maskMode: parseMaskMode(mode) });
    const r = await ds.readMask(0);
    assert.equal(r.outside.size, 0);
    const v = values(r.mask);
    assert.ok(v.every((x) => x === 0 || x === 1));
    assert.equal(v[16 * 32 + 16], 1);
    assert.equal(v[0], 0);
    const area = v.filter((x) => x === 1).length;
    assert.ok(Math.abs(area - 241) <= 12, `disc area ${area}`);
    r.mask.dispose();
  }
  assert.throws(() => parseMaskMode('fuzzy'), /mask mode/);
});

test('class maps: names, aliases, colors; bad files name the problem', () => {
  const m = parseClassMap({ classes: [{ name: 'other' }, { name: 'tonsil', aliases: ['tonsils'] }] }, 'x.json');
  assert.equal(classIndex(m, 'TONSILS'), 1);
  assert.equal(classIndex(loadClassMap('paper'), 'back_wall'), 4);
  assert.throws(() => parseClassMap([], 'e.json'), /class map 'e.json': expected a non-empty list/);
  assert.throws(() => parseClassMap(['a', 'A'], 'd.json'), /appears twice/);
  assert.throws(() => parseClassMap({ classes: [{ name: 'a', color: [1, 2] }] }, 'c.json'), /"color" must be/);
  assert.throws(() => loadClassMap(path.join(tmp.dir, 'none.json')), (e: unknown) => e instanceof DataError && /none\.json/.test(e.message));
});

test('unlabelled lists: a folder, a .txt and a .csv of paths', async () => {
  const dir = path.join(tmp.dir, 'list');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['b.png', 'a.jpg']) await sharp(quadImage(4, 4), { raw: { width: 4, height: 4, channels: 3 } }).toFile(path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'notes.md'), 'x');
  assert.deepEqual(readImageList(dir).map((p) => path.basename(p)), ['a.jpg', 'b.png']);
  fs.writeFileSync(path.join(dir, 'l.txt'), '# bank\nb.png\n\na.jpg\n');
  assert.deepEqual(readImageList(path.join(dir, 'l.txt')), [path.join(dir, 'b.png'), path.join(dir, 'a.jpg')]);
  fs.writeFileSync(path.join(dir, 'l.csv'), 'id,path\n1,"a.jpg"\n2,missing.png\n');
  const ds = openImageList(path.join(dir, 'l.csv'));
  assert.deepEqual(ds.items.map((i) => i.stem), ['a']);
  assert.equal(ds.issues[0].code, 'missing-image');
  assert.equal(ds.labelled, false);
  await assert.rejects(ds.readMask(0), /unlabelled/);
  assert.equal(openDataset(dir).kind, 'list');
  assert.throws(() => openDataset(dir, { requireMasks: true }), /has no masks/);
});

test('splits: by seed (deterministic, disjoint, complete) and by list files', async () => {
  const root = path.join(tmp.dir, 'split');
  await writeFolderDataset(root, 10, 4, 4, 2);
  const ds = openFolderDataset(root, { classes: 'binary' });
  const a = splitBySeed(ds, { valFraction: 0.3, seed: 1 });
  const b = splitBySeed(ds, { valFraction: 0.3, seed: 1 });
  const c = splitBySeed(ds, { valFraction: 0.3, seed: 2 });
  const stems = (s: typeof a): string[][] => [s.train.items.map((i) => i.stem), s.val.items.map((i) => i.stem)];
  assert.deepEqual(stems(a), stems(b));
  assert.notDeepEqual(stems(a), stems(c));
  assert.equal(a.val.items.length, 3);
  assert.deepEqual([...stems(a)[0], ...stems(a)[1]].sort(), ds.items.map((i) => i.stem).sort());
  const vm = await a.val.readMask(0);
  assert.deepEqual(vm.mask.shape, [4, 4]);
  vm.mask.dispose();
  fs.writeFileSync(path.join(tmp.dir, 'train.txt'), 's0\ns1.png\nimages/s2.png\n');
  fs.writeFileSync(path.join(tmp.dir, 'val.txt'), 's3\n');
  const l = splitByLists(ds, path.join(tmp.dir, 'train.txt'), path.join(tmp.dir, 'val.txt'));
  assert.deepEqual(stems(l), [['s0', 's1', 's2'], ['s3']]);
  fs.writeFileSync(path.join(tmp.dir, 'bad.txt'), 's0\nzzz\n');
  assert.throws(() => splitByLists(ds, path.join(tmp.dir, 'bad.txt'), path.join(tmp.dir, 'val.txt')), /names 'zzz'/);
  assert.throws(() => splitByLists(ds, path.join(tmp.dir, 'train.txt'), path.join(tmp.dir, 'train.txt')), /both name/);
});

test('mask mode threshold:T takes T in 1..255 only; T outside is refused, never wrapped modulo 256', async () => {
  assert.deepEqual(parseMaskMode('threshold'), { kind: 'threshold', threshold: 128 });
  assert.deepEqual(parseMaskMode('threshold:1'), { kind: 'threshold', threshold: 1 });
  assert.deepEqual(parseMaskMode('threshold=255'), { kind: 'threshold', threshold: 255 });
  for (const t of ['256', '999', '0', '-1', '1.5', 'abc', '', '1e2', '0x10']) {
    assert.throws(() => parseMaskMode(`threshold:${t}`), (e: unknown) => e instanceof DataError &&
      /threshold T must be an integer 1\.\.255/.test(e.message) && e.message.includes(`got '${t}'`), `threshold:${t}`);
  }
  // a MaskMode built in code is checked too: uint8 >= 256 would compare against 0
  const raw = { data: new Uint8Array(16 * 16).fill(200), height: 16, width: 16, channels: 1 };
  const before = memory().liveTensors;
  assert.throws(() => maskToIndices(raw, BINARY_CLASSES, { kind: 'threshold', threshold: 256 }), /integer 1\.\.255 .*, got '256'/);
  const m = maskToIndices(raw, BINARY_CLASSES, { kind: 'threshold', threshold: 255 });
  assert.ok(values(m.mask).every((v) => v === 0), '200 < 255 is background');
  m.mask.dispose();
  assert.equal(memory().liveTensors, before);
  const root = path.join(tmp.dir, 'thr');
  await writeFolderDataset(root, 1, 8, 8, 2);
  assert.throws(() => openFolderDataset(root, { maskMode: { kind: 'threshold', threshold: 999 } }), /got '999'/);
});
