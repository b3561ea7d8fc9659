/**
 * One entry point for every dataset form: a COCO JSON file (with an image folder), a
 * folder with images/ + masks/, or an unlabelled list (folder of images, .txt, .csv).
 *   const ds = openDataset('data/throat', { maskMode: parseMaskMode('threshold:128') });
 */
import * as fs from 'fs';
import * as path from 'path';
import { ClassMap, MaskMode } from './classes';
import { CocoOptions, openCocoDataset, OverlapOrder } from './coco';
import { SegDataset } from './dataset';
import { openFolderDataset } from './folder';
import { DataError } from './image_io';
import { openImageList } from './list';

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
  if (spec.toLowerCase().endsWith('.json')) {
    const co: CocoOptions = { images: opts.images, classes: opts.classes, overlap: opts.overlap };
    ds = openCocoDataset(spec, co);
  } else if (fs.statSync(spec).isDirectory() && fs.existsSync(path.join(spec, 'masks'))) {
    ds = openFolderDataset(spec, { classes: opts.classes, maskMode: opts.maskMode });
  } else {
    ds = openImageList(spec);
  }
  if (opts.requireMasks && !ds.labelled) {
    throw new DataError(`dataset '${spec}' has no masks: expected a folder with images/ and masks/, or a COCO .json`, 'unlabelled', spec);
  }
  return ds;
}
