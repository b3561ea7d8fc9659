/**
 * Folder datasets: ROOT/images/ and ROOT/masks/ with the same file stems.
 * Masks are images of class indices (PNG; gray value = class index), or RGB-palette
 * masks whose colors are listed in classes.json. The class map is `opts.classes`, else
 * ROOT/classes.json, else two classes (background 0, foreground 1) with a warning.
 *
 * Lossy masks (JPEG, as Kvasir-SEG ships them) carry compression noise: read them with
 * maskMode threshold (binarise at T: value >= T is class 1) or nearest (each gray level
 * or color goes to the nearest class); lossless binary masks stored 0/255 or 0/1 with
 * maskMode binary (any value > 0 is class 1, the class map defaults to 'binary'), see classes.ts.
 *   const ds = openFolderDataset('data/kvasir', { maskMode: { kind: 'threshold', threshold: 128 } });
 */
import * as fs from 'fs';
import * as path from 'path';
import { BINARY_CLASSES, checkModeClasses, checkThreshold, ClassMap, formatMaskMode, loadClassMap, MaskMode, maskToIndices } from './classes';
import { addIssue, Issue, MaskRead, SampleRef, SegDataset } from './dataset';
import { tensor, tidy } from '../tensor';
import { DataError, decodeMask, isImageFile, RawImage, resizeMask, Size } from './image_io';

export interface FolderOptions {
  /** a ClassMap, a classes.json path, or 'paper' / 'binary' */
  classes?: ClassMap | string;
  /** how mask values become class indices (default exact) */
  maskMode?: MaskMode;
  imagesDir?: string;
  masksDir?: string;
}

const LOSSY = new Set(['.jpg', '.jpeg', '.webp', '.avif', '.heic', '.heif']);

/** Image files of a folder by stem; a stem seen twice is a duplicate. */
function listByStem(dir: string, issues: Issue[], what: string): Map<string, string> {
  const out = new Map<string, string>();
  const dups = new Map<string, string[]>();
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (f.startsWith('.') || !fs.statSync(p).isFile()) continue;
    if (!isImageFile(f)) {
      addIssue(issues, `ignored-file`, 'warning', `files in ${what}/ that are not images were ignored`, p);
      continue;
    }
    const stem = path.parse(f).name;
    const prev = out.get(stem);
    if (prev !== undefined) dups.set(stem, [...(dups.get(stem) ?? [prev]), p]);
    else out.set(stem, p);
  }
  for (const [stem, files] of dups) {
    for (const f of files) addIssue(issues, `duplicate-stem`, 'error', `several ${what} share a stem (which one belongs to the mask is ambiguous)`, f);
    out.delete(stem);
  }
  return out;
}

function resolveClasses(root: string, opt: FolderOptions['classes'], issues: Issue[], mode: MaskMode): ClassMap {
  if (opt !== undefined) return typeof opt === 'string' ? loadClassMap(opt) : opt;
  const file = path.join(root, 'classes.json');
  if (fs.existsSync(file)) return loadClassMap(file);
  const parent = path.join(path.dirname(root), 'classes.json');
  if (fs.existsSync(parent)) return loadClassMap(parent);
  if (mode.kind === 'binary') return BINARY_CLASSES; // the mode says what the classes are
  issues.push({ code: 'no-class-map', severity: 'warning', files: [root],
    message: 'no classes.json: assuming two classes (0 background, 1 foreground); pass --classes FILE for more' });
  return BINARY_CLASSES;
}

/** Lists a folder dataset; problems found while listing go to `issues` (nothing is decoded yet). */
export function openFolderDataset(root: string, opts: FolderOptions = {}): SegDataset {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new DataError(`dataset folder '${root}' does not exist`, 'missing', root);
  }
  const imagesDir = path.join(root, opts.imagesDir ?? 'images');
  const masksDir = path.join(root, opts.masksDir ?? 'masks');
  if (!fs.existsSync(imagesDir)) throw new DataError(`dataset folder '${root}' has no ${opts.imagesDir ?? 'images'}/ folder`, 'missing', imagesDir);
  if (!fs.existsSync(masksDir)) throw new DataError(`dataset folder '${root}' has no ${opts.masksDir ?? 'masks'}/ folder (an unlabelled folder is read with openImageList)`, 'missing', masksDir);
  const issues: Issue[] = [];
  const maskMode = opts.maskMode ?? { kind: 'exact' };
  if (maskMode.kind === 'threshold') checkThreshold(maskMode.threshold);
  const classes = resolveClasses(root, opts.classes, issues, maskMode);
  checkModeClasses(maskMode, classes, root);
  const images = listByStem(imagesDir, issues, 'images');
  const masks = listByStem(masksDir, issues, 'masks');
  const items: SampleRef[] = [];
  for (const [stem, image] of images) {
    const mask = masks.get(stem);
    if (mask === undefined) addIssue(issues, 'missing-mask', 'error', 'images without a mask of the same stem', image);
    else items.push({ stem, image, mask });
  }
  for (const [stem, mask] of masks) if (!images.has(stem)) addIssue(issues, 'extra-mask', 'warning', 'masks without an image of the same stem (ignored)', mask);
  lossyMaskIssues(items.map((it) => it.mask!), maskMode, issues);
  return {
    kind: 'folder', source: root, classes, items, issues, labelled: true,
    readMask: (i, size) => readMaskFile(items[i].mask!, classes, maskMode, size),
  };
}

/** Warns about masks stored in a lossy format, with the mask mode that reads them. */
export function lossyMaskIssues(masks: string[], maskMode: MaskMode, issues: Issue[]): void {
  const lossy = masks.filter((m) => LOSSY.has(path.extname(m).toLowerCase()));
  if (lossy.length === 0) return;
  const noisy = '; their values carry compression noise: read them with --mask-mode threshold[:T] (binary) or nearest';
  const hint = maskMode.kind === 'exact' ? noisy
    : maskMode.kind === 'binary' ? `${noisy} (binary reads any value > 0 as foreground, noise included)`
      : ` (read with mask mode ${formatMaskMode(maskMode)})`;
  for (const m of lossy) addIssue(issues, 'lossy-mask', 'warning', `masks stored in a lossy format (JPEG/WebP/AVIF)${hint}`, m);
}

/** Reads a mask file as class indices, resized (nearest) to `size` first when given. */
export async function readMaskFile(file: string, classes: ClassMap, mode: MaskMode, size?: Size): Promise<MaskRead> {
  let raw: RawImage = await decodeMask(file);
  if (size && (raw.height !== size[0] || raw.width !== size[1])) {
    // nearest first (values untouched), then convert the fewer pixels
    const r = raw;
    raw = { height: size[0], width: size[1], channels: r.channels,
      data: tidy(() => resizeMask(tensor(r.data, [r.height, r.width, r.channels], { dtype: 'uint8' }), size).dataSync() as Uint8Array) };
  }
  return maskToIndices(raw, classes, mode, file);
}
