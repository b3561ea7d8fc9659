/**
 * What every dataset reader (folder, COCO, list, pairs) hands to the checker and the
 * loader: a list of samples (stem, image file, optional mask and region-of-interest
 * mask), the class map, the problems found while listing, and a way to read one
 * sample's class-index mask.
 */
import { Tensor } from '../tensor';
import { ClassMap } from './classes';

export type Severity = 'error' | 'warning';

/** One kind of problem with the files it concerns. */
export interface Issue {
  /** stable id: 'unreadable-image', 'missing-mask', 'extra-mask', 'size-mismatch', ... */
  code: string;
  severity: Severity;
  /** one line saying what is wrong and, where possible, what to do */
  message: string;
  files: string[];
}

export interface SampleRef {
  stem: string;
  /** absolute or root-relative image path */
  image: string;
  /** mask file (folder, pairs datasets); undefined for COCO (annotations) and unlabelled lists */
  mask?: string;
  /**
   * region-of-interest mask (pairs datasets: a field-of-view mask): any value > 0 is
   * inside. Evaluation counts only pixels inside it; training ignores it.
   */
  roi?: string;
}

export interface MaskRead {
  /** (H, W) uint8 class indices at the file's own size */
  mask: Tensor;
  /** values not in the class map ('17', '#ff00ff', 'category "cat"') with pixel counts */
  outside: Map<string, number>;
  /** the size the annotation claims for its image, when it claims one (COCO) */
  claimedSize?: [number, number];
}

export interface SegDataset {
  readonly kind: 'folder' | 'coco' | 'list' | 'pairs';
  /** what the user named: a folder, a JSON file, a list file, a dataset description */
  readonly source: string;
  readonly classes: ClassMap;
  readonly items: SampleRef[];
  /** problems found while listing files (missing/extra masks, duplicate stems, ...) */
  readonly issues: Issue[];
  /** whether samples carry masks (false for unlabelled lists) */
  readonly labelled: boolean;
  /** whether every item has a region-of-interest mask (`SampleRef.roi`); absent = no */
  readonly roi?: boolean;
  /**
   * Reads sample i's mask as class indices; throws DataError naming the file. With
   * `size`, readers may resize (nearest) before converting values, which is cheaper;
   * the caller still checks the shape.
   */
  readMask(i: number, size?: [number, number]): Promise<MaskRead>;
}

/** A dataset restricted to some of its items (a split); listing issues stay with the parent. */
export function subset(ds: SegDataset, indices: number[]): SegDataset {
  return {
    kind: ds.kind, source: ds.source, classes: ds.classes, labelled: ds.labelled, roi: ds.roi, issues: [],
    items: indices.map((i) => ds.items[i]),
    readMask: (i, size) => ds.readMask(indices[i], size),
  };
}

/** Adds a file to the issue with this code, creating it with `message` the first time. */
export function addIssue(issues: Issue[], code: string, severity: Severity, message: string, file: string): void {
  let it = issues.find((x) => x.code === code && x.message === message);
  if (!it) {
    it = { code, severity, message, files: [] };
    issues.push(it);
  }
  it.files.push(file);
}
