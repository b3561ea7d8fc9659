/**
 * What DCIN needs at prediction time, without the training images, as one JSON file
 * (`cqseg export --refs BANK --dcin FILE.json`), for code that runs an exported model
 * elsewhere (a browser, another runtime):
 *   format         'cqseg-dcin' and version 1
 *   embedder       the bank's embedder id (the exported model's embedding output must be it)
 *   gris           { index, name, lab: [[meanL, stdL], [meanA, stdA], [meanB, stdB]] }: the
 *                  GRIS reference and its Lab statistics (OpenCV's 8-bit Lab scale)
 *   references     M entries { name, lab } (file names only: no path leaves the server)
 *   embeddings     { dims: [M, D], dtype: 'float32', base64 }: unit rows, row i = reference i
 *   ood            the bank's OOD calibration (dcin/ood.ts OodCalibration) or null
 * Lab statistics are those of each reference at the run's input size, as labStats computes
 * them (color/transfer.ts); LRIS picks the reference with the largest dot product of its
 * embedding row with the test image's unit-length embedding.
 */
import * as path from 'path';
import { ReferenceBank } from '../dcin/bank';
import * as T from '../tensor';

export interface DcinData {
  format: 'cqseg-dcin';
  version: 1;
  embedder: string;
  gris: { index: number; name: string; lab: number[][] };
  references: { name: string; lab: number[][] }[];
  embeddings: { dims: number[]; dtype: 'float32'; base64: string };
  ood: unknown;
}

export function dcinData(bank: ReferenceBank): DcinData {
  const flat = T.tidy(() => bank.labStats.to('float64').toArray());
  const lab = bank.images.map((_, i) => [0, 1, 2].map((c) => [flat[i * 6 + c * 2], flat[i * 6 + c * 2 + 1]]));
  const emb = T.tidy(() => bank.embeddings.to('float32').contiguous());
  const raw = emb.dataSync() as Float32Array;
  const dims = emb.shape;
  emb.dispose();
  const name = (i: number): string => path.basename(bank.images[i].path);
  return {
    format: 'cqseg-dcin', version: 1, embedder: bank.embedder,
    gris: { index: bank.gris.index, name: name(bank.gris.index), lab: lab[bank.gris.index] },
    references: bank.images.map((_, i) => ({ name: name(i), lab: lab[i] })),
    embeddings: { dims, dtype: 'float32', base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') },
    ood: bank.ood ?? null,
  };
}
