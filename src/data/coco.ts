/**
 * COCO instance-segmentation JSON + an image folder, as a semantic-segmentation dataset.
 *
 * Masks are made as pycocotools makes them (maskApi.c): polygons rasterised by frPoly
 * (boundary upsampled x5, sampled at pixel centres, i.e. a pixel is inside when its
 * centre is, to 1/5 pixel), several polygons of one annotation merged by union, RLE in
 * both forms (compressed LEB128-like strings and uncompressed count lists), all in
 * column-major (Fortran) order.
 *
 * Category names map to class indices through a class map (name or alias,
 * case-insensitive). Overlaps are painted in a documented order:
 * - 'area' (default): larger annotations first, so smaller ones (a uvula over the back
 *   wall) stay visible; equal areas by annotation id;
 * - 'order': in file order, later annotations on top;
 * - 'class': by class index, higher indices on top.
 * Pixels no annotation covers are class 0.
 */
import * as fs from 'fs';
import * as path from 'path';
import { tensor, tidy, Tensor, zeros, where } from '../tensor';
import { ClassMap, classIndex, loadClassMap, PAPER_CLASSES } from './classes';
import { addIssue, Issue, MaskRead, SampleRef, SegDataset } from './dataset';
import { DataError, readJsonFile } from './image_io';

/** Run-length encoding: counts alternate 0s and 1s, starting with 0s, column-major. */
export interface Rle {
  h: number;
  w: number;
  counts: number[];
}

/** pycocotools rleFrString: compressed counts string -> counts. */
export function rleFromString(s: string, h: number, w: number): Rle {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`RLE string ends inside a count`);
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return { h, w, counts };
}

/** pycocotools rleToString: counts -> compressed string. */
export function rleToString(r: Rle): string {
  let s = '';
  for (let i = 0; i < r.counts.length; i++) {
    let x = r.counts[i];
    if (i > 2) x -= r.counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32);
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Decodes an RLE into a row-major (H, W) uint8 0/1 tensor. */
export function rleDecode(r: Rle): Tensor {
  const n = r.h * r.w;
  const colMajor = new Uint8Array(n);
  let pos = 0;
  let v = 0;
  for (const c of r.counts) {
    if (pos + c > n) throw new Error(`RLE counts sum past ${r.h}x${r.w}`);
    if (v) colMajor.fill(1, pos, pos + c);
    pos += c;
    v ^= 1;
  }
  if (pos !== n) throw new Error(`RLE counts sum to ${pos}, expected ${r.h}x${r.w} = ${n}`);
  return tidy(() => tensor(colMajor, [r.w, r.h], { dtype: 'uint8' }).transpose(0, 1).contiguous());
}

/** Encodes a row-major (H, W) 0/1 tensor into an RLE (column-major), as pycocotools encode. */
export function rleEncode(mask: Tensor): Rle {
  const [h, w] = mask.shape;
  const d = tidy(() => mask.ne(0).to('uint8').transpose(0, 1).contiguous().dataSync() as Uint8Array);
  const counts: number[] = [];
  let v = 0;
  let run = 0;
  for (let i = 0; i < d.length; i++) {
    if (d[i] !== v) {
      counts.push(run);
      run = 0;
      v = d[i];
    }
    run++;
  }
  counts.push(run);
  return { h, w, counts };
}

/** pycocotools rleFrPoly: one polygon [x0, y0, x1, y1, ...] -> RLE, faithfully ported. */
export function rleFromPolygon(xy: number[], h: number, w: number): Rle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x: number[] = [];
  const y: number[] = [];
  for (let j = 0; j < k; j++) x.push(Math.trunc(scale * xy[j * 2] + 0.5));
  for (let j = 0; j < k; j++) y.push(Math.trunc(scale * xy[j * 2 + 1] + 0.5));
  x.push(x[0]);
  y.push(y[0]);
  // upsample and get discrete points densely along the entire boundary
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // get points along the y-boundary and downsample
  const bx: number[] = [];
  const by: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx.push(xd);
    by.push(yd);
  }
  // compute the RLE given the y-boundary points
  const a: number[] = bx.map((xx, j) => xx * h + by[j]);
  a.push(h * w);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j];
    a[j] -= prev;
    prev = t;
  }
  const b: number[] = [];
  let j = 0;
  b.push(a[j++]);
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else {
      j++;
      if (j < a.length) b[b.length - 1] += a[j++];
    }
  }
  return { h, w, counts: b };
}

type Segmentation = number[][] | { counts: number[] | string; size: [number, number] };

/** One annotation's binary (H, W) uint8 mask, as pycocotools annToMask. */
export function annotationMask(seg: Segmentation, h: number, w: number): Tensor {
  if (Array.isArray(seg)) {
    if (seg.length === 0) return zeros([h, w], { dtype: 'uint8' });
    return tidy(() => {
      let m: Tensor | undefined;
      for (const poly of seg) {
        if (!Array.isArray(poly) || poly.length < 6 || poly.some((c) => typeof c !== 'number')) {
          throw new Error(`a polygon needs at least 3 points [x0, y0, x1, y1, ...]`);
        }
        const p = rleDecode(rleFromPolygon(poly, h, w));
        m = m === undefined ? p : m.maximum(p);
      }
      return m!;
    });
  }
  if (seg && Array.isArray(seg.size) && seg.size.length === 2) {
    const [rh, rw] = seg.size;
    if (rh !== h || rw !== w) throw new Error(`RLE size ${rh}x${rw} differs from the image's ${h}x${w}`);
    const r = typeof seg.counts === 'string' ? rleFromString(seg.counts, rh, rw) : { h: rh, w: rw, counts: seg.counts };
    return rleDecode(r);
  }
  throw new Error('segmentation must be a list of polygons or an RLE { counts, size }');
}

export type OverlapOrder = 'area' | 'order' | 'class';

export interface CocoOptions {
  /** image folder (default: the JSON's folder, or its images/ subfolder when present) */
  images?: string;
  /** ClassMap, classes.json path, or 'paper' (default) / 'binary' */
  classes?: ClassMap | string;
  overlap?: OverlapOrder;
}

interface CocoAnn {
  id?: number;
  image_id: number;
  category_id: number;
  segmentation: Segmentation;
  area?: number;
}

interface CocoImage { id: number; file_name: string; width: number; height: number }

type CocoJson = { images?: CocoImage[]; annotations?: CocoAnn[]; categories?: { id: number; name: string }[] };

/** Opens a COCO JSON + image folder; problems found while listing go to `issues`. `parsed`: the file's JSON, when read already. */
export function openCocoDataset(jsonFile: string, opts: CocoOptions = {}, parsed?: unknown): SegDataset {
  const j = (parsed ?? readJsonFile(jsonFile, 'COCO file')) as CocoJson;
  if (!Array.isArray(j.images) || !Array.isArray(j.annotations) || !Array.isArray(j.categories)) {
    throw new DataError(`COCO file '${jsonFile}' needs "images", "annotations" and "categories" lists`, 'bad-json', jsonFile);
  }
  const classes = opts.classes === undefined ? PAPER_CLASSES : typeof opts.classes === 'string' ? loadClassMap(opts.classes) : opts.classes;
  const dir = opts.images ?? (fs.existsSync(path.join(path.dirname(jsonFile), 'images')) ? path.join(path.dirname(jsonFile), 'images') : path.dirname(jsonFile));
  const overlap = opts.overlap ?? 'area';
  const issues: Issue[] = [];
  const catClass = new Map<number, number>();
  for (const c of j.categories) {
    const idx = classIndex(classes, c.name);
    if (idx < 0) addIssue(issues, 'unknown-category', 'error', `COCO categories not in class map '${classes.source}' (add them, or an alias)`, `category ${c.id} "${c.name}"`);
    catClass.set(c.id, idx);
  }
  const byImage = new Map<number, CocoAnn[]>();
  for (const a of j.annotations) {
    if (!byImage.has(a.image_id)) byImage.set(a.image_id, []);
    byImage.get(a.image_id)!.push(a);
  }
  const items: SampleRef[] = [];
  const metas: CocoImage[] = [];
  const stems = new Set<string>();
  const ids = new Set<number>();
  for (const im of j.images) {
    ids.add(im.id);
    const file = path.join(dir, im.file_name);
    const stem = path.parse(im.file_name).name;
    if (stems.has(stem)) {
      addIssue(issues, 'duplicate-stem', 'error', 'COCO images share a file stem', file);
      continue;
    }
    stems.add(stem);
    if (!fs.existsSync(file)) {
      addIssue(issues, 'missing-image', 'error', `images listed in '${path.basename(jsonFile)}' but missing from '${dir}'`, file);
      continue;
    }
    items.push({ stem, image: file });
    metas.push(im);
  }
  for (const id of byImage.keys()) if (!ids.has(id)) addIssue(issues, 'orphan-annotation', 'error', 'annotations whose image_id is not in "images"', `image_id ${id}`);
  for (const a of j.annotations) {
    if (!catClass.has(a.category_id)) addIssue(issues, 'unknown-category', 'error', 'annotations whose category_id is not in "categories"', `annotation ${a.id ?? '?'} (category_id ${a.category_id})`);
  }
  return {
    kind: 'coco', source: jsonFile, classes, items, issues, labelled: true,
    readMask: async (i) => paintImage(metas[i], byImage.get(metas[i].id) ?? [], catClass, overlap, jsonFile),
  };
}

function paintImage(im: CocoImage, anns: CocoAnn[], catClass: Map<number, number>, overlap: OverlapOrder, jsonFile: string): MaskRead {
  const { height: h, width: w } = im;
  const outside = new Map<string, number>();
  const masks: { m: Tensor; cls: number; area: number; id: number; order: number }[] = [];
  try {
    anns.forEach((a, order) => {
      const cls = catClass.get(a.category_id) ?? -1;
      let m: Tensor;
      try {
        m = annotationMask(a.segmentation, h, w);
      } catch (err) {
        throw new DataError(`COCO file '${jsonFile}', annotation ${a.id ?? order} of image '${im.file_name}': ${(err as Error).message}`, 'bad-annotation', jsonFile);
      }
      if (cls < 0) {
        outside.set(`category ${a.category_id}`, (outside.get(`category ${a.category_id}`) ?? 0) + tidy(() => m.sum().item()));
        m.dispose();
        return;
      }
      masks.push({ m, cls, area: tidy(() => m.sum().item()), id: a.id ?? order, order });
    });
    if (overlap === 'area') masks.sort((p, q) => q.area - p.area || p.id - q.id);
    else if (overlap === 'class') masks.sort((p, q) => p.cls - q.cls || p.order - q.order);
    const mask = tidy(() => {
      let out = zeros([h, w], { dtype: 'uint8' });
      for (const { m, cls } of masks) out = where(m.ne(0), cls, out).to('uint8');
      return out;
    });
    return { mask, outside, claimedSize: [h, w] };
  } finally {
    for (const x of masks) x.m.dispose();
  }
}
