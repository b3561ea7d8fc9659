/**
 * One entry point for every dataset form: a dataset description (.json with "images" +
 * "masks" patterns or "pairs", see pairing.ts), a COCO JSON file (with an image folder),
 * a folder with images/ + masks/, a pairs CSV (header image,mask[,roi]), or an
 * unlabelled list (folder of images, .txt, .csv). JSON files and CSVs are told apart by
 * their content, not their names.
 *   const ds = openDataset('data/throat', { maskMode: parseMaskMode('threshold:128') });
 *   const drive = openDataset('data/drive-chase/drive-train.json');
 */
import * as fs from 'fs';
import * as path from 'path';
import { ClassMap, MaskMode } from './classes';
import { CocoOptions, openCocoDataset, OverlapOrder } from './coco';
import { SegDataset } from './dataset';
import { openFolderDataset } from './folder';
import { DataError, readJsonFile } from './image_io';
import { openImageList, readImageList } from './list';
import { describedDataset, isDescription, isPairsCsv, openPairsCsv } from './pairing';

export interface OpenOptions {
  classes?: ClassMap | string;
  maskMode?: MaskMode;
  /** COCO: the image folder */
  images?: string;
  overlap?: OverlapOrder;
  /** refuse unlabelled lists (training, evaluation) */
  requireMasks?: boolean;
}

export function openDataset(spec: string, opts: OpenOptions = {}): SegDataset {
  if (!fs.existsSync(spec)) throw new DataError(`dataset '${spec}' does not exist`, 'missing', spec);
  let ds: SegDataset;
  const lower = spec.toLowerCase();
  const json = lower.endsWith('.json') && fs.statSync(spec).isFile() ? readJsonFile(spec, 'dataset file') : undefined;
  if (json !== undefined && isDescription(json)) {
    ds = describedDataset(json as Record<string, unknown>, spec, { classes: opts.classes, maskMode: opts.maskMode });
  } else if (json !== undefined) {
    const co: CocoOptions = { images: opts.images, classes: opts.classes, overlap: opts.overlap };
    ds = openCocoDataset(spec, co, json);
  } else if (lower.endsWith('.csv') && isPairsCsv(spec)) {
    ds = openPairsCsv(spec, { classes: opts.classes, maskMode: opts.maskMode });
  } else if (fs.statSync(spec).isDirectory() && fs.existsSync(path.join(spec, 'masks'))) {
    ds = openFolderDataset(spec, { classes: opts.classes, maskMode: opts.maskMode });
  } else {
    if (fs.statSync(spec).isDirectory() && readImageList(spec).length === 0) throw new DataError(layoutMessage(spec), 'layout', spec);
    ds = openImageList(spec);
  }
  if (opts.requireMasks && !ds.labelled) {
    throw new DataError(`dataset '${spec}' has no masks: expected a folder with images/ and masks/, a dataset description .json, a pairs .csv (image,mask) or a COCO .json`, 'unlabelled', spec);
  }
  return ds;
}


/** A folder that is no dataset form: what was expected and what it holds. */
function layoutMessage(dir: string): string {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
  const subs = entries.filter((e) => e.isDirectory()).map((e) => {
    const n = readImageList(path.join(dir, e.name)).length;
    return `${e.name}/ (${n} image${n === 1 ? '' : 's'})`;
  });
  const files = entries.length - subs.length;
  const found = [...subs.slice(0, 6), ...(subs.length > 6 ? [`${subs.length - 6} more folders`] : []), ...(files > 0 ? [`${files} other file${files === 1 ? '' : 's'}`] : [])];
  const hint = subs.some((x) => x.startsWith('images/')) ? `; add masks/ beside images/ (masks with the same file stems), or give '${path.join(dir, 'images')}' for unlabelled images` : '';
  return `dataset folder '${dir}' has no images: expected images/ and masks/ (the same file stems, a labelled set), ` +
    `or image files directly in it (an unlabelled list); found ${found.length > 0 ? found.join(', ') : 'nothing'}${hint}` +
    '; for other layouts, write a dataset description .json pairing images with masks by patterns (README, "Dataset descriptions")';
}
