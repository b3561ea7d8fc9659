import * as assert from 'node:assert/strict';
import * as path from 'path';
import { after, test } from 'node:test';
import { Loader, loadSample, openFolderDataset, splitBySeed } from '../../src/data';
import { dispose, memory } from '../../src/tensor';
import { tempDir, writeFolderDataset } from '../helpers/data';

const tmp = tempDir();
after(tmp.cleanup);

async function dataset() {
  const root = path.join(tmp.dir, 'ds');
  await writeFolderDataset(root, 7, 24, 36, 3);
  return openFolderDataset(root, { classes: 'paper' });
}

test('loader yields seeded, shuffled batches at the training size and frees nothing it should not', async () => {
  const ds = await dataset();
  const before = memory().liveTensors;
  const loader = new Loader(ds, { batchSize: 3, size: [16, 20], seed: 5 });
  assert.equal(loader.length, 3);
  const seen: string[] = [];
  for await (const b of loader.epoch(0)) {
    assert.deepEqual(b.images.shape, [b.stems.length, 3, 16, 20]);
    assert.equal(b.images.dtype, 'uint8');
    assert.deepEqual(b.masks!.shape, [b.stems.length, 16, 20]);
    assert.equal(b.masks!.dtype, 'int64');
    // masks are resized with nearest: only the class values of the files (0..2)
    assert.ok(b.masks!.toArray().every((v) => v === 0 || v === 1 || v === 2));
    seen.push(...b.stems);
    dispose(b);
  }
  assert.equal(memory().liveTensors, before);
  assert.deepEqual([...seen].sort(), ds.items.map((i) => i.stem).sort());
  assert.deepEqual(loader.order(0), new Loader(ds, { batchSize: 3, size: [16, 20], seed: 5 }).order(0));
  assert.notDeepEqual(loader.order(0), loader.order(1));
  assert.notDeepEqual(loader.order(0), new Loader(ds, { seed: 6 }).order(0));
  assert.deepEqual(new Loader(ds, { shuffle: false }).order(0), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(loader.stats.samples, 7);
});

test('dropLast, early break and splits', async () => {
  const ds = await dataset();
  const before = memory().liveTensors;
  const loader = new Loader(splitBySeed(ds, { valFraction: 0.3, seed: 0 }).train, { batchSize: 2, size: [8, 8], dropLast: true, prefetch: 3 });
  assert.equal(loader.length, 2);
  for await (const b of loader.epoch(0)) {
    dispose(b);
    break;
  }
  await new Promise((r) => setTimeout(r, 50)); // in-flight decodes settle and free their masks
  assert.equal(memory().liveTensors, before);
  const s = await loadSample(ds, 0, [12, 18]);
  assert.deepEqual(s.image.shape, [12, 18, 3]);
  assert.deepEqual(s.mask!.shape, [12, 18]);
  dispose(s);
});

test('a broken sample stops the loader with an error naming the file', async () => {
  const ds = await dataset();
  const bad = { ...ds, items: [...ds.items.slice(0, 2), { stem: 'x', image: path.join(tmp.dir, 'nope.png'), mask: ds.items[0].mask }] };
  const loader = new Loader(bad, { batchSize: 3, size: [8, 8], shuffle: false });
  await assert.rejects(async () => {
    for await (const b of loader.epoch(0)) dispose(b);
  }, /nope\.png/);
  assert.throws(() => new Loader(ds, { batchSize: 0 }), /batchSize/);
});
