import * as assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { after, test } from 'node:test';
import { checkDataset, openFolderDataset, synthSample, writeSynth, drawDomain, SYNTH_CLASSES } from '../../src/data';
import { Rng } from '../../src/util/random';
import { dispose, memory, randn, tidy, manualSeed } from '../../src/tensor';
import { tempDir } from '../helpers/data';

const tmp = tempDir();
after(tmp.cleanup);

/** sha256 over every file's relative path and bytes, in sorted order. */
function hashFolder(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
  for (const f of walk(dir).sort()) {
    h.update(path.relative(dir, f));
    h.update(fs.readFileSync(f));
  }
  return h.digest('hex');
}

test('synth is deterministic: same seed, identical files; another seed, other files', async () => {
  const opts = { size: [32, 48] as [number, number], count: 8 };
  const before = memory().liveTensors;
  await writeSynth({ ...opts, out: path.join(tmp.dir, 'a'), seed: 3 });
  assert.equal(memory().liveTensors, before, 'writeSynth frees every tensor');
  await writeSynth({ ...opts, out: path.join(tmp.dir, 'b'), seed: 3 });
  await writeSynth({ ...opts, out: path.join(tmp.dir, 'c'), seed: 4 });
  const [a, b, c] = ['a', 'b', 'c'].map((d) => hashFolder(path.join(tmp.dir, d)));
  assert.equal(a, b);
  assert.notEqual(a, c);
  const m = JSON.parse(fs.readFileSync(path.join(tmp.dir, 'a', 'manifest.json'), 'utf8'));
  assert.equal(m.seed, 3);
  assert.deepEqual(m.counts, { 'hq/train': 6, 'hq/val': 2, lq: 3, sp: 3 });
  assert.ok(fs.readdirSync(path.join(tmp.dir, 'a', 'lq', 'images')).every((f) => f.endsWith('.jpg')));
  assert.ok(fs.readdirSync(path.join(tmp.dir, 'a', 'hq', 'train', 'images')).every((f) => f.endsWith('.png')));
  assert.ok(!fs.readdirSync(path.join(tmp.dir, 'a', 'hq', 'train', 'images')).some((f) => f.includes('.tmp')));
});

test('synth output is a valid folder dataset with the paper classes, all present', async () => {
  const before = memory().liveTensors;
  for (const d of ['hq/train', 'lq', 'sp']) {
    const ds = openFolderDataset(path.join(tmp.dir, 'a', d));
    assert.deepEqual(ds.classes.classes.map((c) => c.name), ['other', 'tonsil', 'uvula', 'tongue', 'back_wall']);
    const r = await checkDataset(ds, { size: [32, 48] });
    assert.equal(r.errors, 0, `${d}: ${JSON.stringify(r.issues)}`);
    assert.equal(r.warnings, 0, `${d}: ${JSON.stringify(r.issues)}`);
    for (const [k, px] of r.classPixels.entries()) assert.ok(px > 0, `${d}: class ${k} never painted`);
  }
  assert.equal(memory().liveTensors, before);
});

test('synthSample is repeatable, leaves the caller RNG state as it was; target domains draw their own ranges', () => {
  manualSeed(11);
  const expected = tidy(() => randn([4]).toArray());
  manualSeed(11);
  const before = memory().liveTensors;
  const hq = synthSample('hq', 0, 1, [48, 64]);
  const hq2 = synthSample('hq', 0, 1, [48, 64]);
  assert.ok(Buffer.from(hq.image.dataSync() as Uint8Array).equals(Buffer.from(hq2.image.dataSync() as Uint8Array)));
  assert.deepEqual(hq.mask.shape, [48, 64]);
  assert.deepEqual(hq.image.shape, [48, 64, 3]);
  const vals = new Set(Array.from(hq.mask.dataSync() as Uint8Array));
  assert.ok([...vals].every((v) => v < SYNTH_CLASSES.classes.length));
  dispose([hq, hq2]);
  assert.equal(memory().liveTensors, before);
  assert.deepEqual(tidy(() => randn([4]).toArray()), expected);
  // target domains use their own ranges, outside the CQG augmentations'
  const rng = new Rng(0);
  for (let i = 0; i < 50; i++) {
    const lq = drawDomain('lq', rng);
    assert.ok((lq.exposure as number) <= 0.78 && (lq.jpegQuality as number) <= 20);
    const sp = drawDomain('sp', rng);
    assert.ok((sp.saturation as number) >= 1.4 && (sp.sharpenAmount as number) >= 1.2);
  }
});
