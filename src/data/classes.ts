/**
 * Class maps and the conversion of decoded mask files into class-index masks.
 *
 * classes.json, either a list of names (index = position):
 *   ["other", "tonsil", "uvula", "tongue", "back_wall"]
 * or objects with optional RGB palette colors (for RGB masks), gray levels (for
 * `maskMode: 'nearest'`) and extra COCO category names:
 *   { "classes": [ { "name": "other", "color": [0, 0, 0] },
 *                  { "name": "tonsil", "color": [255, 0, 0], "aliases": ["tonsils"] } ] }
 * Index 0 is the background: pixels no annotation covers.
 */
import * as fs from 'fs';
import { Tensor, tensor, tidy, bincount, argmin, sort, flatten, any, all, maskedFill, maskedSelect } from '../tensor';
import { DataError, RawImage } from './image_io';

export interface ClassInfo {
  name: string;
  /** RGB palette color of this class in RGB masks */
  color?: [number, number, number];
  /** gray level of this class in gray masks, for maskMode 'nearest' (default: spread over 0..255) */
  gray?: number;
  /** other names (COCO category names) mapped to this class */
  aliases?: string[];
}

export interface ClassMap {
  classes: ClassInfo[];
  /** where it came from (file path or a built-in name) */
  source: string;
}

/** The paper's classes (its COCO export): 'other' is the background. */
export const PAPER_CLASSES: ClassMap = {
  source: 'paper',
  classes: [
    { name: 'other', color: [0, 0, 0] },
    { name: 'tonsil', color: [230, 80, 80], aliases: ['tonsils'] },
    { name: 'uvula', color: [80, 200, 80] },
    { name: 'tongue', color: [80, 120, 230] },
    { name: 'back_wall', color: [230, 200, 60], aliases: ['pharyngeal_wall', 'posterior_wall'] },
  ],
};

/** Two classes: background 0, foreground 1 (gray level 255 when masks are 0/255). */
export const BINARY_CLASSES: ClassMap = {
  source: 'binary',
  classes: [{ name: 'background', color: [0, 0, 0], gray: 0 }, { name: 'foreground', color: [255, 255, 255], gray: 255 }],
};

const isRgb = (c: unknown): c is [number, number, number] =>
  Array.isArray(c) && c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255);

/** Parses classes.json content; errors name the file and the entry. */
export function parseClassMap(json: unknown, source: string): ClassMap {
  const bad = (what: string): never => {
    throw new DataError(`class map '${source}': ${what}`, 'class-map', source);
  };
  const list = Array.isArray(json) ? json : (json as { classes?: unknown })?.classes;
  if (!Array.isArray(list) || list.length === 0) bad('expected a non-empty list of classes, or { "classes": [...] }');
  const classes = (list as unknown[]).map((e, i): ClassInfo => {
    if (typeof e === 'string') return { name: e };
    const o = e as Partial<ClassInfo> & { index?: number };
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string') return bad(`entry ${i} needs a "name"`);
    if (o.index !== undefined && o.index !== i) bad(`entry ${i} ("${o.name}") has "index": ${o.index}; list classes in index order`);
    if (o.color !== undefined && !isRgb(o.color)) bad(`entry ${i} ("${o.name}"): "color" must be [r, g, b] with 0..255`);
    if (o.gray !== undefined && !(Number.isInteger(o.gray) && o.gray >= 0 && o.gray <= 255)) bad(`entry ${i} ("${o.name}"): "gray" must be 0..255`);
    return { name: o.name, color: o.color, gray: o.gray, aliases: o.aliases };
  });
  if (classes.length > 255) bad(`${classes.length} classes; at most 255`);
  const names = new Set<string>();
  for (const c of classes) {
    for (const n of [c.name, ...(c.aliases ?? [])]) {
      const k = n.toLowerCase();
      if (names.has(k)) bad(`name "${n}" appears twice`);
      names.add(k);
    }
  }
  const colors = classes.filter((c) => c.color).map((c) => c.color!.join(','));
  if (new Set(colors).size !== colors.length) bad('two classes share a color');
  return { classes, source };
}

/** Reads a class map: a classes.json path, or 'paper' / 'binary'. */
export function loadClassMap(spec: string): ClassMap {
  if (spec === 'paper') return PAPER_CLASSES;
  if (spec === 'binary') return BINARY_CLASSES;
  let text: string;
  try {
    text = fs.readFileSync(spec, 'utf8');
  } catch (err) {
    throw new DataError(`cannot read class map '${spec}': ${(err as Error).message}`, 'class-map', spec);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DataError(`class map '${spec}' is not valid JSON: ${(err as Error).message}`, 'class-map', spec);
  }
  return parseClassMap(json, spec);
}

/** The classes.json form of a class map. */
export function classMapJson(map: ClassMap): string {
  return JSON.stringify({ classes: map.classes.map((c, index) => ({ index, ...c })) }, null, 2) + '\n';
}

/** Class index of a name or alias (case-insensitive), or -1. */
export function classIndex(map: ClassMap, name: string): number {
  const k = name.toLowerCase();
  return map.classes.findIndex((c) => c.name.toLowerCase() === k || (c.aliases ?? []).some((a) => a.toLowerCase() === k));
}

/**
 * How mask files become class indices:
 * - 'exact': gray value = class index; RGB masks need each class's `color` (exact match).
 * - 'threshold': binarise: value >= threshold -> 1, else 0 (RGB masks: mean of R, G, B).
 * - 'binary': background / foreground: any value > 0 (any channel of an RGB mask) is
 *   class 1, 0 is class 0. Reads binary masks however they are stored: 0/1, 0/255
 *   (GIF, 8-bit PNG), 1-bit PNG (which decodes to 0/255). Use with two classes.
 * - 'nearest': each gray value goes to the class with the nearest gray level (`gray`, or
 *   i * 255 / (n - 1)); each RGB value to the class with the nearest color.
 * 'threshold' and 'nearest' take lossy (JPEG) masks as they are.
 */
export type MaskMode = { kind: 'exact' } | { kind: 'binary' } | { kind: 'threshold'; threshold: number } | { kind: 'nearest' };

/** Thresholds that split 8-bit mask values (0..255) into two non-empty sides: value >= T is class 1. */
export const THRESHOLD_RANGE: [number, number] = [1, 255];

function thresholdError(t: string): DataError {
  return new DataError(`mask mode threshold T must be an integer ${THRESHOLD_RANGE[0]}..${THRESHOLD_RANGE[1]} ` +
    `(8-bit mask values >= T become class 1), got '${t}'`, 'argument');
}

/** Checks a threshold given as a number (a MaskMode built in code). */
export function checkThreshold(t: number): number {
  if (!Number.isInteger(t) || t < THRESHOLD_RANGE[0] || t > THRESHOLD_RANGE[1]) throw thresholdError(String(t));
  return t;
}

/**
 * Parses 'exact', 'binary', 'nearest', 'threshold' (T = 128) or 'threshold:T' /
 * 'threshold=T' with T an integer 1..255.
 *   parseMaskMode('threshold:100') // { kind: 'threshold', threshold: 100 }
 */
export function parseMaskMode(s: string): MaskMode {
  if (s === 'exact' || s === 'nearest' || s === 'binary') return { kind: s };
  const m = /^threshold(?:[:=](.*))?$/.exec(s);
  if (!m) throw new DataError(`mask mode must be 'exact', 'binary', 'nearest' or 'threshold[:T]', got '${s}'`, 'argument');
  if (m[1] === undefined) return { kind: 'threshold', threshold: 128 };
  if (!/^\d{1,3}$/.test(m[1])) throw thresholdError(m[1]);
  return { kind: 'threshold', threshold: checkThreshold(Number(m[1])) };
}

export interface MaskConversion {
  /** (H, W) uint8 class indices; values outside the map are left as they were (exact mode) */
  mask: Tensor;
  /** gray values (or '#rrggbb' colors) found that are not in the map, with pixel counts */
  outside: Map<string, number>;
}

function grayLevels(map: ClassMap): number[] {
  const n = map.classes.length;
  return map.classes.map((c, i) => c.gray ?? (n === 1 ? 0 : Math.round((i * 255) / (n - 1))));
}

/** The text form of a mask mode, as parseMaskMode reads it. */
export function formatMaskMode(mode: MaskMode): string {
  return mode.kind === 'threshold' ? `threshold:${mode.threshold}` : mode.kind;
}

/** Binary mask mode needs a two-class map (class 1 is the foreground). */
export function checkModeClasses(mode: MaskMode, map: ClassMap, where: string): void {
  if (mode.kind === 'binary' && map.classes.length !== 2) {
    throw new DataError(`${where}: mask mode binary makes two classes (0 background, 1 foreground), ` +
      `but class map '${map.source}' has ${map.classes.length}`, 'classes', where);
  }
}

/** Converts a decoded mask into class indices under a class map and mode. The caller disposes `mask`. */
export function maskToIndices(raw: RawImage, map: ClassMap, mode: MaskMode, file = 'mask'): MaskConversion {
  const n = map.classes.length;
  const outside = new Map<string, number>();
  if (mode.kind === 'threshold') checkThreshold(mode.threshold); // uint8 compares would wrap a T outside 0..255
  const mask = tidy(() => {
    const t = tensor(raw.data, [raw.height, raw.width, raw.channels], { dtype: 'uint8' });
    if (mode.kind === 'binary') return any(t.gt(0), 2).to('uint8');
    if (raw.channels === 3 && mode.kind === 'exact') return rgbExact(t, map, outside, file);
    if (raw.channels === 3 && mode.kind === 'nearest' && map.classes.every((c) => c.color)) return rgbNearest(t, map);
    const gray = raw.channels === 1 ? t.select(2, 0) : t.to('float32').mean(2).round().to('uint8');
    if (mode.kind === 'threshold') return gray.ge(mode.threshold).to('uint8');
    if (mode.kind === 'nearest') {
      const levels = tensor(grayLevels(map), [1, 1, n]);
      return argmin(gray.to('float32').unsqueeze(2).sub(levels).abs(), 2).to('uint8');
    }
    const counts = bincount(flatten(gray).to('int64'), undefined, 256).toArray();
    for (let v = n; v < 256; v++) if (counts[v] > 0) outside.set(String(v), counts[v]);
    return gray.contiguous();
  });
  return { mask, outside };
}

function rgbCodes(t: Tensor): Tensor {
  const i = t.to('int32');
  return i.select(2, 0).mul(65536).add(i.select(2, 1).mul(256)).add(i.select(2, 2));
}

function rgbExact(t: Tensor, map: ClassMap, outside: Map<string, number>, file: string): Tensor {
  const colors = map.classes.map((c) => c.color);
  if (colors.some((c) => !c)) {
    throw new DataError(`mask '${file}' is an RGB color mask, but class map '${map.source}' gives no "color" for every class`, 'mask-palette', file);
  }
  const code = rgbCodes(t);
  const palette = tensor(colors.map((c) => c![0] * 65536 + c![1] * 256 + c![2]), [1, 1, colors.length], { dtype: 'int32' });
  const hit = code.unsqueeze(2).eq(palette);
  const matched = any(hit, 2);
  const idx = hit.to('uint8').argmax(2).to('uint8');
  if (all(matched).item() !== 1) {
    const bad = maskedSelect(flatten(code), flatten(matched.logicalNot()));
    const [vals, cnt] = uniqueCounts(bad);
    for (let i = 0; i < vals.length && i < 64; i++) outside.set('#' + vals[i].toString(16).padStart(6, '0'), cnt[i]);
  }
  return maskedFill(idx, matched.logicalNot(), 255);
}

function rgbNearest(t: Tensor, map: ClassMap): Tensor {
  const pal = tensor(map.classes.map((c) => c.color!), [map.classes.length, 3]).reshape([1, 1, map.classes.length, 3]);
  return argmin(t.to('float32').unsqueeze(2).sub(pal).square().sum(3), 2).to('uint8');
}

/** Distinct values of an int tensor and their counts (sorted), via sort + JS scan of the sorted list. */
function uniqueCounts(x: Tensor): [number[], number[]] {
  const sorted = tidy(() => sort(flatten(x.to('int64')), 0)[0]);
  const v = sorted.toArray();
  sorted.dispose();
  const vals: number[] = [];
  const cnt: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (i === 0 || v[i] !== v[i - 1]) {
      vals.push(v[i]);
      cnt.push(1);
    } else cnt[cnt.length - 1]++;
  }
  return [vals, cnt];
}

/** Per-class pixel counts of an index mask (length = number of classes; values >= n ignored). */
export function classCounts(mask: Tensor, n: number): number[] {
  return tidy(() => bincount(flatten(mask).to('int64'), undefined, Math.max(n, 256)).toArray().slice(0, n));
}
