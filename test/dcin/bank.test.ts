import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { labStats, releaseColorTables, rgbHistogram } from '../../src/color';
import { BankError, buildBank, disposeBank, Embedder, grisSelect, loadBank, saveBank } from '../../src/dcin';
import { assertClose } from '../helpers/assert';

/** Test images as raw files: 2 bytes H, 2 bytes W, then H*W*3 RGB bytes. */
function writeRaw(file: string, h: number, w: number, seed: number): void {
  const b = Buffer.alloc(4 + h * w * 3);
  b.writeUInt16LE(h, 0);
  b.writeUInt16LE(w, 2);
  for (let i = 0; i < h * w * 3; i++) b[4 + i] = (i * 7 + seed * 31 + ((i * seed) % 13)) & 255;
  fs.writeFileSync(file, b);
}
async function readRaw(file: string): Promise<T.Tensor> {
  const b = fs.readFileSync(file);
  const h = b.readUInt16LE(0);
  const w = b.readUInt16LE(2);
  return T.tensor(new Uint8Array(b.subarray(4)), [h, w, 3], { dtype: 'uint8' });
}

/** An embedder for tests: the image's mean color, normalised. */
function meanColorEmbedder(id: string): Embedder {
  return {
    id,
    embed: async (x: T.Tensor) => T.tidy(() => {
      const f = x.to('float32').mean([2, 3]).add(1);
      return f.div(f.square().sum(1, { keepdim: true }).sqrt());
    }),
    dispose: () => undefined,
  };
}

test('bank: build, save, load; refused when an image changed, vanished, or the embedder differs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bank-'));
  const paths = [0, 1, 2, 3, 4].map((i) => path.join(dir, `img${i}.raw`));
  paths.forEach((p, i) => writeRaw(p, 6 + i, 8, i + 1));
  const emb = meanColorEmbedder('mean-color:v1');
  const progress: number[] = [];
  releaseColorTables(); // Lab tables are built on first use and cached: count from none
  const before = T.memory().liveTensors;
  const bank = await buildBank(paths, readRaw, emb, { onProgress: (d) => progress.push(d) });
  assert.deepEqual(progress, [1, 2, 3, 4, 5]);
  releaseColorTables();
  assert.equal(T.memory().liveTensors, before + 3);
  assert.deepEqual(bank.histograms.shape, [5, 512]);
  assert.deepEqual(bank.embeddings.shape, [5, 3]);
  assert.deepEqual(bank.labStats.shape, [5, 3, 2]);
  assert.equal(bank.gris.index, grisSelect(bank.histograms).index);
  assert.equal(bank.gris.path, paths[bank.gris.index]);
  const img2 = await readRaw(paths[2]);
  T.tidy(() => {
    const x = img2.permute([2, 0, 1]).unsqueeze(0);
    assertClose(bank.histograms.narrow(0, 2, 1), rgbHistogram(x).toArray(), 0);
    assertClose(bank.labStats.narrow(0, 2, 1), labStats(x).toArray(), 0);
  });
  img2.dispose();

  const file = path.join(dir, 'bank.safetensors');
  saveBank(bank, file);
  const loaded = loadBank(file, { embedder: emb });
  assert.deepEqual(loaded.images, bank.images);
  assert.deepEqual(loaded.gris, bank.gris);
  assertClose(loaded.embeddings, bank.embeddings.toArray(), 0);
  disposeBank(loaded);

  assert.throws(() => loadBank(file, { embedder: 'onnx:other' }), (e: Error) => e instanceof BankError && /built with embedder mean-color:v1, but onnx:other is in use/.test(e.message));
  writeRaw(paths[3], 9, 8, 99);
  assert.throws(() => loadBank(file), /stale bank: reference image .*img3\.raw changed since the bank was built/);
  disposeBank(loadBank(file, { verify: 'exists' }));
  fs.rmSync(paths[1]);
  assert.throws(() => loadBank(file, { verify: 'exists' }), /img1\.raw no longer exists/);
  assert.throws(() => loadBank(path.join(dir, 'nope.safetensors')), /reference bank not found/);
  disposeBank(bank);
  releaseColorTables();
  assert.equal(T.memory().liveTensors, before);
  fs.rmSync(dir, { recursive: true });
});

test('a damaged bank is refused naming the file: GRIS index out of range, NaN statistics, shapes that disagree; no tensor leaks', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bank-bad-'));
  const paths = [0, 1, 2].map((i) => path.join(dir, `img${i}.raw`));
  paths.forEach((p, i) => writeRaw(p, 6, 8, i + 1));
  const bank = await buildBank(paths, readRaw, meanColorEmbedder('mean-color:v1'), {});
  const before = T.memory().liveTensors;
  const save = (name: string, over: Partial<typeof bank>): string => {
    const file = path.join(dir, name);
    saveBank({ ...bank, ...over }, file);
    return file;
  };
  const gris = save('gris.safetensors', { gris: { ...bank.gris, index: 7 } });
  assert.throws(() => loadBank(gris), (e: Error) => e instanceof BankError &&
    e.message.startsWith(`${gris}: GRIS index 7 is out of range: the bank holds 3 images (0..2)`) && /rebuild it with cqseg references/.test(e.message));
  const nanStats = T.tidy(() => T.where(T.arange(bank.labStats.size).reshape(bank.labStats.shape).eq(1), Number.NaN, bank.labStats));
  const nan = save('nan.safetensors', { labStats: nanStats });
  assert.throws(() => loadBank(nan), new RegExp(`^BankError: ${nan.replace(/[.]/g, '\\.')}: tensor 'lab_stats' holds 1 NaN or infinite value\\(s\\) \\(Lab statistics\\)`));
  const short = T.tidy(() => bank.embeddings.narrow(0, 0, 2));
  const rows = save('rows.safetensors', { embeddings: short });
  assert.throws(() => loadBank(rows), /rows\.safetensors: tensor 'embeddings' has shape \[2, 3\], expected \[3, D\] for its 3 images/);
  const notBank = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(notBank, 'not safetensors at all');
  assert.throws(() => loadBank(notBank), (e: Error) => e instanceof BankError && e.message.includes('junk.safetensors') && /not a readable reference bank/.test(e.message));
  T.dispose([nanStats, short]);
  assert.equal(T.memory().liveTensors, before, 'the refused banks\' tensors are freed');
  disposeBank(bank);
});
