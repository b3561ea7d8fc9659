/**
 * The experiment's reuse fingerprint of a dataset: a folder's listing, and for a dataset
 * description the files it names, which live elsewhere (a changed image must retrain).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { listingHash } from '../../src/experiment/runner';
import { makeDiscDataset } from '../helpers/tiny_dataset';

test('listingHash: a description changes when an image or mask it names changes, not only its own text', async () => {
  const data = await makeDiscDataset(3, [32, 32]);
  const desc = path.join(data, '..', `${path.basename(data)}-desc.json`);
  fs.writeFileSync(desc, JSON.stringify({ root: path.basename(data), images: 'images/{id}.png', masks: 'masks/{id}.png', classes: ['background', 'disc'], maskMode: 'binary' }));
  try {
    const folder = listingHash(data);
    const a = listingHash(desc);
    assert.equal(listingHash(desc), a, 'stable');
    const img = path.join(data, 'images', 's001.png');
    fs.appendFileSync(img, Buffer.alloc(4)); // another size (PNG readers ignore trailing bytes)
    assert.notEqual(listingHash(desc), a, 'an image the description names changed');
    assert.notEqual(listingHash(data), folder, 'the folder too');
    const b = listingHash(desc);
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(data, 'masks', 's002.png'), t, t);
    assert.notEqual(listingHash(desc), b, 'a mask it names was touched');
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
    fs.rmSync(desc, { force: true });
  }
});
