/**
 * The reference bank: what DCIN needs from the training set, in one safetensors file.
 *   tensors   histograms (M, 512) float32, embeddings (M, D) float32,
 *             lab_stats (M, 3, 2) float64 (8-bit Lab mean/std per image, cqseg mode)
 *   metadata  format "cqseg-reference-bank", version, images (JSON list of
 *             { path, sha256 }), gris (JSON { index, path, meanDistance }), embedder (id)
 * A bank is refused (BankError, code ERR_STALE_BANK) when an image is missing or its
 * content hash changed, or when it was built by another embedder than the one in use.
 * `cqseg references` builds one (CLI wiring: see README, "Color normalization").
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { labStats, rgbHistogram } from '../color';
import { readSafetensors, writeSafetensors } from '../nn/safetensors';
import { Embedder } from './embedders';
import { grisSelect, ImageSource } from './gris';

export const BANK_FORMAT = 'cqseg-reference-bank';
export const BANK_VERSION = 1;

export class BankError extends Error {
  code = 'ERR_STALE_BANK';
  constructor(message: string) {
    super(message);
    this.name = 'BankError';
  }
}

export interface BankImage {
  path: string;
  sha256: string;
}

export interface ReferenceBank {
  images: BankImage[];
  histograms: T.Tensor;
  embeddings: T.Tensor;
  labStats: T.Tensor;
  gris: { index: number; path: string; meanDistance: number };
  embedder: string;
}

export interface BuildOptions {
  onProgress?: (done: number, total: number, path: string) => void;
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Builds a bank from training images: one image decoded at a time (histogram, Lab
 * statistics, embedding), then GRIS over all histograms.
 *   const bank = await buildBank(paths, decodeRgb, embedder, { onProgress })
 */
export async function buildBank(paths: string[], load: ImageSource, embedder: Embedder, opts: BuildOptions = {}): Promise<ReferenceBank> {
  if (paths.length === 0) throw new ArgumentError("Argument 'paths' passed to 'buildBank' must list at least one image");
  const images: BankImage[] = [];
  const hists: T.Tensor[] = [];
  const embs: T.Tensor[] = [];
  const stats: T.Tensor[] = [];
  try {
    for (let i = 0; i < paths.length; i++) {
      const p = path.resolve(paths[i]);
      let img: T.Tensor;
      try {
        img = await load(p);
      } catch (e) {
        throw new ArgumentError(`${p}: cannot read image: ${(e as Error).message}`);
      }
      try {
        if (img.ndim !== 3 || img.shape[2] !== 3 || img.dtype !== 'uint8') throw new ArgumentError(`${p}: expected a uint8 (H, W, 3) RGB image, got ${img.dtype} [${img.shape.join(',')}]`);
        const nchw = T.keep(T.tidy(() => img.permute([2, 0, 1]).unsqueeze(0).contiguous()));
        try {
          hists.push(T.keep(rgbHistogram(nchw)));
          stats.push(T.keep(labStats(nchw)));
          embs.push(T.keep(await embedder.embed(nchw)));
        } finally {
          nchw.dispose();
        }
      } finally {
        img.dispose();
      }
      images.push({ path: p, sha256: sha256(p) });
      opts.onProgress?.(i + 1, paths.length, p);
    }
    const histograms = T.cat(hists, 0);
    const g = grisSelect(histograms);
    return {
      images,
      histograms,
      embeddings: T.cat(embs, 0),
      labStats: T.cat(stats, 0),
      gris: { index: g.index, path: images[g.index].path, meanDistance: g.meanDistance },
      embedder: embedder.id,
    };
  } finally {
    T.dispose([hists, embs, stats]);
  }
}

/** Writes a bank (temp file + rename). */
export function saveBank(bank: ReferenceBank, file: string): void {
  writeSafetensors(file, [
    ['histograms', bank.histograms],
    ['embeddings', bank.embeddings],
    ['lab_stats', bank.labStats],
  ], {
    format: BANK_FORMAT,
    version: String(BANK_VERSION),
    images: JSON.stringify(bank.images),
    gris: JSON.stringify(bank.gris),
    embedder: bank.embedder,
  });
}

export interface LoadBankOptions {
  /** the embedder (or its id) that will embed test images: must be the bank's */
  embedder?: Embedder | string;
  /** 'hash' (default): re-hash every image; 'exists': only check they exist; 'none' */
  verify?: 'hash' | 'exists' | 'none';
}

/**
 * Reads a bank and checks it still matches its images and the embedder in use.
 * Throws BankError naming the first mismatch.
 */
export function loadBank(file: string, opts: LoadBankOptions = {}): ReferenceBank {
  if (!fs.existsSync(file)) throw new BankError(`${file}: reference bank not found (build one with: cqseg references --data TRAIN --model RUN --out ${file})`);
  const { tensors, metadata } = readSafetensors(file);
  const fail = (msg: string): never => {
    T.dispose([...tensors.values()]);
    throw new BankError(`${file}: ${msg}`);
  };
  if (metadata.format !== BANK_FORMAT) fail(`not a cqseg reference bank (format ${JSON.stringify(metadata.format)})`);
  if (metadata.version !== String(BANK_VERSION)) fail(`bank version ${metadata.version} is not supported (expected ${BANK_VERSION}); rebuild it with cqseg references`);
  for (const k of ['histograms', 'embeddings', 'lab_stats']) if (!tensors.has(k)) fail(`tensor '${k}' is missing`);
  const images = JSON.parse(metadata.images ?? '[]') as BankImage[];
  const gris = JSON.parse(metadata.gris ?? 'null') as ReferenceBank['gris'];
  const m = images.length;
  if (tensors.get('histograms')!.shape[0] !== m || tensors.get('embeddings')!.shape[0] !== m || tensors.get('lab_stats')!.shape[0] !== m) {
    fail(`holds ${m} images but tensors of [${['histograms', 'embeddings', 'lab_stats'].map((k) => tensors.get(k)!.shape[0]).join(', ')}] rows`);
  }
  const want = opts.embedder === undefined ? undefined : typeof opts.embedder === 'string' ? opts.embedder : opts.embedder.id;
  if (want !== undefined && want !== metadata.embedder) {
    fail(`stale bank: built with embedder ${metadata.embedder}, but ${want} is in use; rebuild it with cqseg references`);
  }
  const verify = opts.verify ?? 'hash';
  if (verify !== 'none') {
    for (const im of images) {
      if (!fs.existsSync(im.path)) fail(`stale bank: reference image ${im.path} no longer exists; rebuild it with cqseg references`);
      if (verify === 'hash' && sha256(im.path) !== im.sha256) fail(`stale bank: reference image ${im.path} changed since the bank was built (sha256 differs); rebuild it with cqseg references`);
    }
  }
  return {
    images,
    histograms: tensors.get('histograms')!,
    embeddings: tensors.get('embeddings')!,
    labStats: tensors.get('lab_stats')!,
    gris,
    embedder: metadata.embedder,
  };
}

/** Frees a bank's tensors. */
export function disposeBank(bank: ReferenceBank): void {
  T.dispose([bank.histograms, bank.embeddings, bank.labStats]);
}
