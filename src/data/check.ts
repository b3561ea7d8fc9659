/**
 * Dataset checking: reads every image and mask and reports every problem, grouped by
 * kind, with counts and file names. `cqseg data check` prints the report; training and
 * evaluation call assertDatasetOk, which throws the same text when there are errors.
 *
 * Errors: empty dataset, unreadable/corrupt images or masks, missing masks or images,
 * duplicate stems, mask size different from its image, class values outside the map,
 * unknown COCO categories, unreadable ROI masks or ROI masks of another size. Warnings:
 * extra masks, lossy masks, no class map, images smaller than the training size (they
 * would be upscaled), ignored files, empty ROI masks.
 * With ROI masks, the class shares are also given inside the ROI (what evaluation counts).
 */
import * as path from 'path';
import { maskedSelect, Tensor, tidy } from '../tensor';
import { classCounts } from './classes';
import { addIssue, Issue, SampleRef, SegDataset } from './dataset';
import { DataError, decodeImage, Size } from './image_io';
import { PAPER_SIZE } from './loader';
import { readRoi } from './pairing';

export interface CheckOptions {
  /** training size [H, W]; smaller images are reported (default PAPER_SIZE) */
  size?: Size;
  /** files decoded at once (default 4) */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface CheckReport {
  source: string;
  kind: SegDataset['kind'];
  classes: string[];
  classSource: string;
  samples: number;
  /** images decoded without error */
  imagesRead: number;
  masksRead: number;
  /** [min, max] of heights and widths of readable images */
  heights: [number, number];
  widths: [number, number];
  /** image count per file extension */
  formats: Record<string, number>;
  /** pixels per class over all readable masks */
  classPixels: number[];
  /** mask pixels whose value is outside the class map */
  outsidePixels: number;
  /** datasets with ROI masks: how many were read, pixels inside them, pixels of their images, pixels per class inside */
  roi?: { read: number; inside: number; total: number; classPixels: number[] };
  issues: Issue[];
  errors: number;
  warnings: number;
}

/** Runs `fn` over 0..n-1 with at most `limit` calls in flight. */
export async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

const describeValues = (m: Map<string, number>): string =>
  [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([v, c]) => `${v} (${c} px)`).join(', ') + (m.size > 6 ? `, ... ${m.size} values` : '');

/** Reads everything in a dataset and reports every problem found. */
export async function checkDataset(ds: SegDataset, opts: CheckOptions = {}): Promise<CheckReport> {
  const size = opts.size ?? PAPER_SIZE;
  const issues: Issue[] = ds.issues.map((i) => ({ ...i, files: [...i.files] }));
  const nClasses = ds.classes.classes.length;
  const r: CheckReport = {
    source: ds.source, kind: ds.kind, classes: ds.classes.classes.map((c) => c.name), classSource: ds.classes.source,
    samples: ds.items.length, imagesRead: 0, masksRead: 0, heights: [Infinity, 0], widths: [Infinity, 0], formats: {},
    classPixels: new Array(nClasses).fill(0), outsidePixels: 0, issues, errors: 0, warnings: 0,
    ...(ds.roi ? { roi: { read: 0, inside: 0, total: 0, classPixels: new Array(nClasses).fill(0) } } : {}),
  };
  if (ds.items.length === 0) {
    issues.unshift({ code: 'empty', severity: 'error', message: `no ${ds.labelled ? 'image/mask pairs' : 'images'} found`, files: [ds.source] });
  }
  const outsideHint = nClasses === 2 ? '; binary masks stored 0/255 want --mask-mode binary' : '; give a classes.json listing every class';
  let done = 0;
  await pool(ds.items.length, opts.concurrency ?? 4, async (i) => {
    const it = ds.items[i];
    let imgSize: [number, number] | undefined;
    try {
      const img = await decodeImage(it.image);
      imgSize = [img.height, img.width];
      r.imagesRead++;
      const ext = path.extname(it.image).toLowerCase().replace('.jpeg', '.jpg').slice(1);
      r.formats[ext] = (r.formats[ext] ?? 0) + 1;
      r.heights = [Math.min(r.heights[0], img.height), Math.max(r.heights[1], img.height)];
      r.widths = [Math.min(r.widths[0], img.width), Math.max(r.widths[1], img.width)];
      if (img.height < size[0] || img.width < size[1]) {
        addIssue(issues, 'too-small', 'warning', `images smaller than the training size ${size[0]}x${size[1]} (HxW); they will be upscaled`, `${it.image} (${img.height}x${img.width})`);
      }
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      addIssue(issues, 'unreadable-image', 'error', 'images that cannot be decoded (corrupt, truncated or not an image)', `${it.image}: ${err.message.replace(/^cannot read image '[^']*': /, '')}`);
    }
    const roi = r.roi && it.roi ? await checkRoi(it, imgSize, r.roi, issues) : undefined;
    if (ds.labelled) {
      const name = it.mask ?? it.image;
      try {
        const m = await ds.readMask(i);
        r.masksRead++;
        const [mh, mw] = m.mask.shape;
        if (m.claimedSize && imgSize && (m.claimedSize[0] !== imgSize[0] || m.claimedSize[1] !== imgSize[1])) {
          addIssue(issues, 'size-mismatch', 'error', 'annotation size (COCO width/height) differs from the image size', `${it.image} (image ${imgSize[0]}x${imgSize[1]}, annotation ${m.claimedSize[0]}x${m.claimedSize[1]})`);
        } else if (imgSize && (mh !== imgSize[0] || mw !== imgSize[1])) {
          addIssue(issues, 'size-mismatch', 'error', 'masks whose size differs from their image (HxW)', `${name} (image ${imgSize[0]}x${imgSize[1]}, mask ${mh}x${mw})`);
        }
        if (m.outside.size > 0) {
          addIssue(issues, 'values-outside', 'error', `masks with values outside class map '${ds.classes.source}' (${nClasses} classes, 0..${nClasses - 1})${outsideHint}`, `${name}: ${describeValues(m.outside)}`);
        }
        const counts = tidy(() => classCounts(m.mask, 256));
        counts.forEach((c, k) => {
          if (k < nClasses) r.classPixels[k] += c;
          else r.outsidePixels += c;
        });
        if (roi && r.roi && roi.shape.join() === m.mask.shape.join()) {
          const inside = tidy(() => classCounts(maskedSelect(m.mask, roi.ne(0)), nClasses));
          inside.forEach((c, k) => (r.roi!.classPixels[k] += c));
        }
        m.mask.dispose();
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        addIssue(issues, err.code === 'unreadable' ? 'unreadable-mask' : err.code, 'error', err.code === 'unreadable' ? 'masks that cannot be decoded' : 'masks that cannot be read', `${name}: ${err.message}`);
      }
    }
    roi?.dispose();
    opts.onProgress?.(++done, ds.items.length);
  });
  for (const is of issues) is.files.sort();
  issues.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  r.errors = issues.filter((i) => i.severity === 'error').reduce((s, i) => s + i.files.length, 0);
  r.warnings = issues.filter((i) => i.severity === 'warning').reduce((s, i) => s + i.files.length, 0);
  return r;
}

/** Reads one item's ROI mask: counts it into `stats`, reports unreadable, mismatched and empty ones; the caller disposes it. */
async function checkRoi(it: SampleRef, imgSize: [number, number] | undefined, stats: NonNullable<CheckReport['roi']>, issues: Issue[]): Promise<Tensor | undefined> {
  let roi: Tensor;
  try {
    roi = await readRoi(it.roi!);
  } catch (err) {
    if (!(err instanceof DataError)) throw err;
    addIssue(issues, 'unreadable-roi', 'error', 'ROI masks that cannot be decoded', `${it.roi}: ${err.message}`);
    return undefined;
  }
  stats.read++;
  const [h, w] = roi.shape;
  if (imgSize && (h !== imgSize[0] || w !== imgSize[1])) {
    addIssue(issues, 'size-mismatch', 'error', 'ROI masks whose size differs from their image (HxW)', `${it.roi} (image ${imgSize[0]}x${imgSize[1]}, ROI ${h}x${w})`);
  }
  const inside = tidy(() => roi.to('int64').sum().item());
  if (inside === 0) addIssue(issues, 'empty-roi', 'warning', 'ROI masks with no pixel inside (their images count for nothing in evaluation)', it.roi!);
  stats.inside += inside;
  stats.total += h * w;
  return roi;
}

/** The report as text: what was found, then each problem with its count and files. */
export function formatReport(r: CheckReport, opts: { maxFiles?: number; errorsOnly?: boolean } = {}): string {
  const max = opts.maxFiles ?? 10;
  const lines: string[] = [];
  if (!opts.errorsOnly) {
    lines.push(`dataset ${r.source} (${r.kind}): ${r.samples} samples; class map '${r.classSource}': ${r.classes.map((c, i) => `${i} ${c}`).join(', ')}`);
    if (r.imagesRead > 0) {
      const fmt = Object.entries(r.formats).map(([k, v]) => `${v} ${k}`).join(', ');
      lines.push(`images: ${r.imagesRead} read (${fmt}); height ${r.heights[0]}..${r.heights[1]}, width ${r.widths[0]}..${r.widths[1]}`);
    }
    const total = r.classPixels.reduce((a, b) => a + b, 0) + r.outsidePixels;
    if (r.masksRead > 0 && total > 0) {
      const pct = (c: number): string => `${((100 * c) / total).toFixed(1)}%`;
      lines.push(`masks: ${r.masksRead} read; pixels per class: ${r.classPixels.map((c, i) => `${r.classes[i]} ${pct(c)}`).join(', ')}` +
        (r.outsidePixels > 0 ? `, outside the class map ${pct(r.outsidePixels)}` : ''));
    }
    if (r.roi && r.roi.read > 0 && r.roi.total > 0) {
      const inRoi = r.roi.classPixels.reduce((a, b) => a + b, 0);
      const share = (c: number, of: number): string => `${((100 * c) / Math.max(1, of)).toFixed(1)}%`;
      lines.push(`ROI masks: ${r.roi.read} read; ${share(r.roi.inside, r.roi.total)} of the pixels inside` +
        (inRoi > 0 ? `; pixels per class inside the ROI (what evaluation counts): ${r.roi.classPixels.map((c, i) => `${r.classes[i]} ${share(c, inRoi)}`).join(', ')}` : ''));
    }
  }
  for (const sev of ['error', 'warning'] as const) {
    const list = r.issues.filter((i) => i.severity === sev);
    if (list.length === 0 || (opts.errorsOnly && sev === 'warning')) continue;
    for (const is of list) {
      lines.push(`${sev}: ${is.message} [${is.code}, ${is.files.length} file${is.files.length === 1 ? '' : 's'}]`);
      for (const f of is.files.slice(0, max)) lines.push(`  ${f}`);
      if (is.files.length > max) lines.push(`  ... and ${is.files.length - max} more (--all lists every file)`);
    }
  }
  lines.push(r.errors > 0 ? `FAILED: ${r.errors} error${r.errors === 1 ? '' : 's'}, ${r.warnings} warning${r.warnings === 1 ? '' : 's'}`
    : `OK: no errors, ${r.warnings} warning${r.warnings === 1 ? '' : 's'}`);
  return lines.join('\n');
}

/** Checks a dataset and throws a DataError holding the report's errors when there are any (training/evaluation). */
export async function assertDatasetOk(ds: SegDataset, opts: CheckOptions = {}): Promise<CheckReport> {
  const r = await checkDataset(ds, opts);
  if (r.errors > 0) throw new DataError(`dataset '${ds.source}' has errors:\n${formatReport(r, { errorsOnly: true })}`, 'dataset-errors', ds.source);
  return r;
}
