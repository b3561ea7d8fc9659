/**
 * The reference bank: what DCIN needs from the training set, in one safetensors file.
 *   tensors   histograms (M, 512) float32, embeddings (M, D) float32,
 *             lab_stats (M, 3, 2) float64 (8-bit Lab mean/std per image, cqseg mode)
 *   metadata  format "cqseg-reference-bank", version, images (JSON list of
 *             { path, sha256 }), gris (JSON { index, path, meanDistance }), embedder (id),
 *             ood (version 2: JSON OodCalibration, the out-of-distribution thresholds
 *             calibrated on the bank's own images, with the method, k and quantile
 *             that produced them; see ood.ts)
 * Version 1 banks (no `ood`) still load: their `ood` is undefined, and predictions then
 * carry raw OOD distances without a flag.
 * A bank is refused (BankError, code ERR_BANK) when an image is missing or its
 * content hash changed, or when it was built by another embedder than the one in use;
 * and, with a message naming the file, when it is damaged: shapes that disagree, NaN or
 * infinite statistics, a GRIS index outside the bank.
 * `cqseg references` builds one (CLI wiring: see README, "Color normalization").
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { labStats, rgbHistogram } from '../color';
import { readSafetensors, SafetensorsError, writeSafetensors } from '../nn/safetensors';
import { Embedder } from './embedders';
import { grisSelect, ImageSource } from './gris';
import { calibrateOod, CalibrateOptions, calibrationProblem, OodCalibration } from './ood';
import { CqsegError } from '../util/errors';

export const BANK_FORMAT = 'cqseg-reference-bank';
/** Version written; 2 added the OOD calibration. */
export const BANK_VERSION = 2;
/** Versions read (1: without OOD calibration). */
export const BANK_VERSIONS_READ: readonly number[] = [1, 2];

export class BankError extends CqsegError {
  constructor(message: string) {
    super(message, 'ERR_BANK');
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
  /** OOD thresholds calibrated on the bank's images; undefined in version 1 banks and banks of one image */
  ood?: OodCalibration;
}

export interface BuildOptions {
  onProgress?: (done: number, total: number, path: string) => void;
  /** OOD calibration settings (k, quantile), or false to leave it out */
  ood?: CalibrateOptions | false;
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Builds a bank from training images: one image decoded at a time (histogram, Lab
 * statistics, embedding), then GRIS over all histograms and the OOD calibration
 * (leave-one-out distances of the images themselves, ood.ts).
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
    const bank: ReferenceBank = {
      images,
      histograms,
      embeddings: T.cat(embs, 0),
      labStats: T.cat(stats, 0),
      gris: { index: g.index, path: images[g.index].path, meanDistance: g.meanDistance },
      embedder: embedder.id,
    };
    try {
      if (opts.ood !== false) bank.ood = calibrateOod(bank, opts.ood ?? {});
    } catch (err) {
      disposeBank(bank);
      throw err;
    }
    return bank;
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
    ...(bank.ood ? { ood: JSON.stringify(bank.ood) } : {}),
  });
}

export interface LoadBankOptions {
  /** the embedder (or its id) that will embed test images: must be the bank's */
  embedder?: Embedder | string;
  /** 'hash' (default): re-hash every image; 'exists': only check they exist; 'none' */
  verify?: 'hash' | 'exists' | 'none';
}

const REBUILD = 'rebuild it with cqseg references --data TRAIN --model RUN --out BANK';

function parseJson<V>(text: string | undefined, what: string, fail: (msg: string) => never): V {
  if (text === undefined) fail(`metadata '${what}' is missing: the bank is damaged; ${REBUILD}`);
  try {
    return JSON.parse(text!) as V;
  } catch (err) {
    return fail(`metadata '${what}' is not valid JSON (${(err as Error).message}): the bank is damaged; ${REBUILD}`);
  }
}

/**
 * The bank's own consistency: tensor shapes (M, 512), (M, D), (M, 3, 2) for M images,
 * every statistic finite (and standard deviations and histograms non-negative), the
 * GRIS index in 0..M-1 and naming the same image. Calls `fail` on the first problem.
 */
function checkContents(tensors: Map<string, T.Tensor>, images: BankImage[], gris: ReferenceBank['gris'], fail: (msg: string) => never): void {
  const damaged = `: the bank is damaged or was not written by cqseg references; ${REBUILD}`;
  if (!Array.isArray(images) || images.length === 0 || !images.every((im) => im && typeof im.path === 'string' && typeof im.sha256 === 'string')) {
    fail(`metadata 'images' must list at least one { path, sha256 }${damaged}`);
  }
  const m = images.length;
  const shapes: [string, number[]][] = [['histograms', [m, 512]], ['embeddings', [m, -1]], ['lab_stats', [m, 3, 2]]];
  for (const [k, want] of shapes) {
    const t = tensors.get(k)!;
    const ok = t.ndim === want.length && want.every((d, i) => (d === -1 ? t.shape[i] > 0 : t.shape[i] === d));
    if (!ok) fail(`tensor '${k}' has shape [${t.shape.join(', ')}], expected [${want.map((d) => (d === -1 ? 'D' : d)).join(', ')}] for its ${m} images${damaged}`);
    if (!['float32', 'float64'].includes(t.dtype)) fail(`tensor '${k}' is ${t.dtype}, expected float32 or float64${damaged}`);
    const bad = T.tidy(() => T.isfinite(t).logicalNot().sum().item());
    if (bad > 0) fail(`tensor '${k}' holds ${bad} NaN or infinite value(s)${k === 'lab_stats' ? ' (Lab statistics)' : ''}${damaged}`);
  }
  const negative = T.tidy(() => tensors.get('lab_stats')!.select(2, 1).lt(0).sum().item() + tensors.get('histograms')!.lt(0).sum().item());
  if (negative > 0) fail(`${negative} negative standard deviation(s) or histogram value(s)${damaged}`);
  if (!gris || !Number.isInteger(gris.index) || gris.index < 0 || gris.index >= m) {
    fail(`GRIS index ${JSON.stringify(gris?.index)} is out of range: the bank holds ${m} images (0..${m - 1})${damaged}`);
  }
  if (gris.path !== images[gris.index].path) fail(`GRIS image '${gris.path}' is not image ${gris.index} of the bank ('${images[gris.index].path}')${damaged}`);
}

/**
 * Reads a bank and checks it is whole (shapes, finite statistics, GRIS index), still
 * matches its images and the embedder in use. Throws BankError naming the file and the
 * first problem.
 */
export function loadBank(file: string, opts: LoadBankOptions = {}): ReferenceBank {
  if (!fs.existsSync(file)) throw new BankError(`${file}: reference bank not found (build one with: cqseg references --data TRAIN --model RUN --out ${file})`);
  let read: ReturnType<typeof readSafetensors>;
  try {
    read = readSafetensors(file);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new BankError(`${err.message}: not a readable reference bank; ${REBUILD}`);
    throw err;
  }
  const { tensors, metadata } = read;
  const fail = (msg: string): never => {
    T.dispose([...tensors.values()]);
    throw new BankError(`${file}: ${msg}`);
  };
  if (metadata.format !== BANK_FORMAT) fail(`not a cqseg reference bank (format ${JSON.stringify(metadata.format)})`);
  if (!BANK_VERSIONS_READ.map(String).includes(metadata.version)) fail(`bank version ${metadata.version} is not supported (expected ${BANK_VERSIONS_READ.join(' or ')}); rebuild it with cqseg references`);
  for (const k of ['histograms', 'embeddings', 'lab_stats']) if (!tensors.has(k)) fail(`tensor '${k}' is missing`);
  const images = parseJson<BankImage[]>(metadata.images, 'images', fail);
  const gris = parseJson<ReferenceBank['gris']>(metadata.gris, 'gris', fail);
  checkContents(tensors, images, gris, fail);
  let ood: OodCalibration | undefined;
  if (metadata.version !== '1' && metadata.ood !== undefined) {
    ood = parseJson<OodCalibration>(metadata.ood, 'ood', fail);
    const problem = calibrationProblem(ood, images.length);
    if (problem) fail(`the OOD calibration (metadata 'ood') ${problem}: the bank is damaged; ${REBUILD}`);
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
    ...(ood ? { ood } : {}),
  };
}

/** Frees a bank's tensors. */
export function disposeBank(bank: ReferenceBank): void {
  T.dispose([bank.histograms, bank.embeddings, bank.labStats]);
}
