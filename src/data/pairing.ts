/**
 * Dataset descriptions: image/mask pairs, with optional region-of-interest (ROI) masks,
 * read where and as public data sets ship them (other stems, other formats, labels in
 * another folder or beside the images) without renaming or converting a file.
 *
 * A description is a JSON file, told from a COCO file by its content (a "masks" or
 * "pairs" key, or "images" as a string; COCO's "images" is a list):
 *   {
 *     "root": "../../../shared/data/drive-chase/drive/training",
 *     "images": "images/{id}_training.tif",
 *     "masks": "1st_manual/{id}_manual1.gif",
 *     "roi": "mask/{id}_training_mask.gif",
 *     "classes": ["background", "vessel"],
 *     "maskMode": "binary"
 *   }
 * Patterns, one path each: `{name}` matches one or more characters within one file or
 * folder name and is what an image shares with its mask; `*` matches any characters and
 * `?` one, within one name; the rest is literal. The masks and roi patterns use some or
 * all of the images pattern's names (a roi without any: one ROI file for every image).
 * Files that the masks or roi pattern matches are never images (labels beside images).
 *
 * Or explicit pairs: "pairs": "pairs.csv" (a header with image, mask and optionally roi
 * columns) or "pairs": [{ "image": "a.jpg", "mask": "a.png", "roi": "a_fov.png" }]. Such
 * a CSV named directly as the dataset is read the same way.
 *
 * Relative paths: "root" against the description's folder; patterns and pair paths
 * against root (default: the description's folder); a CSV's paths against its folder.
 * "classes": 'binary' | 'paper' | a classes.json path | a list as in classes.json;
 * "maskMode": as --mask-mode ('binary' for 0/1, 0/255 and 1-bit masks). Unknown keys
 * are errors. `--classes` given to a command replaces "classes"; the description's
 * "maskMode" says how its files are stored and wins over `--mask-mode` (a different,
 * non-default --mask-mode is reported as a warning).
 *   const ds = openDescription('data/drive-chase/drive-train.json');
 */
import * as fs from 'fs';
import * as path from 'path';
import { any, Tensor, tensor, tidy } from '../tensor';
import { BINARY_CLASSES, checkModeClasses, checkThreshold, ClassMap, formatMaskMode, loadClassMap, MaskMode, parseClassMap, parseMaskMode } from './classes';
import { addIssue, Issue, SampleRef, SegDataset } from './dataset';
import { lossyMaskIssues, readMaskFile } from './folder';
import { DataError, decodeMask, isImageFile, resizeMask, Size } from './image_io';
import { parseCsvLine } from './list';
import { closestKey } from '../util/suggest';

export interface DescriptionOptions {
  /** replaces the description's "classes" */
  classes?: ClassMap | string;
  /** used when the description gives no "maskMode" (default exact) */
  maskMode?: MaskMode;
}

// ---- patterns ----

type Part = { literal: string } | { re: RegExp; text: string };

/** A compiled path pattern: where matching starts, one part per path segment, the {names} it uses. */
export interface PathPattern {
  /** the pattern as written */
  text: string;
  /** the folder the pattern is relative to (absolute patterns: the file system root) */
  base: string;
  parts: Part[];
  names: string[];
}

export interface PatternMatch {
  file: string;
  /** the value of each {name} */
  fields: Record<string, string>;
}

const TOKEN = /\{([^{}]*)\}|\*|\?/g;
const escapeRe = (s: string): string => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
/** `p` relative to `dir` unless absolute; relative stays relative (reports show the paths the user would type). */
const against = (dir: string, p: string): string => (path.isAbsolute(p) ? p : path.join(dir, p));

function segmentRegExp(seg: string, pattern: string, names: string[]): RegExp {
  const seen = new Set<string>();
  let re = '';
  let last = 0;
  const literal = (s: string): string => {
    if (/[{}]/.test(s)) throw new DataError(`path pattern '${pattern}': unbalanced '{' or '}' (placeholders are {name})`, 'bad-pattern');
    return escapeRe(s);
  };
  for (const m of seg.matchAll(TOKEN)) {
    re += literal(seg.slice(last, m.index));
    last = m.index! + m[0].length;
    if (m[0] === '*') re += '.*?';
    else if (m[0] === '?') re += '.';
    else {
      const name = m[1];
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new DataError(`path pattern '${pattern}': '{${name}}' is not a placeholder (names are letters, digits and _, e.g. {id})`, 'bad-pattern');
      }
      re += seen.has(name) ? `\\k<${name}>` : `(?<${name}>.+?)`;
      seen.add(name);
      if (!names.includes(name)) names.push(name);
    }
  }
  return new RegExp(`^${re}${literal(seg.slice(last))}$`);
}

/**
 * Compiles a pattern such as 'images/{id}_training.tif', relative to `base`.
 *   matchPattern(compilePattern('{id}_manual1.gif', dir))  // [{ file, fields: { id: '21' } }, ...]
 */
export function compilePattern(text: string, base: string): PathPattern {
  if (text.trim() === '') throw new DataError('path pattern is empty', 'bad-pattern');
  const norm = text.replace(/\\/g, '/');
  const abs = path.isAbsolute(norm);
  const names: string[] = [];
  const parts: Part[] = norm.split('/').filter((s, i) => s !== '' && !(s === '.' && i > 0)).map((seg) =>
    (/[{}*?]/.test(seg) ? { re: segmentRegExp(seg, text, names), text: seg } : { literal: seg }));
  return { text, base: abs ? path.parse(path.resolve(norm)).root : base, parts, names };
}

function isKind(p: string, dir: boolean): boolean {
  try {
    const st = fs.statSync(p);
    return dir ? st.isDirectory() : st.isFile();
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Merges captured fields; undefined when a name captured twice disagrees. */
function mergeFields(a: Record<string, string>, b: Record<string, string> | undefined): Record<string, string> | undefined {
  const out = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) {
    if (out[k] !== undefined && out[k] !== v) return undefined;
    out[k] = v;
  }
  return out;
}

/** Every file matching a pattern, sorted by path; hidden files match only a pattern naming the dot. */
export function matchPattern(p: PathPattern): PatternMatch[] {
  let states: PatternMatch[] = [{ file: p.base, fields: {} }];
  p.parts.forEach((part, k) => {
    const last = k === p.parts.length - 1;
    const next: PatternMatch[] = [];
    for (const s of states) {
      if ('literal' in part) {
        const f = path.join(s.file, part.literal);
        if (!last || isKind(f, false)) next.push({ file: f, fields: s.fields });
        continue;
      }
      for (const name of listDir(s.file)) {
        if (name.startsWith('.') && !part.text.startsWith('.')) continue;
        const m = part.re.exec(name);
        const fields = m ? mergeFields(s.fields, m.groups) : undefined;
        const f = path.join(s.file, name);
        if (fields && isKind(f, !last)) next.push({ file: f, fields });
      }
    }
    states = next;
  });
  return states.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** The pattern with its {names} filled in ('*' and '?' stay): the path a pair was looked for at. */
export function fillPattern(p: PathPattern, fields: Record<string, string>): string {
  const filled = p.text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (all, n: string) => fields[n] ?? all);
  return path.isAbsolute(filled) ? filled : path.join(p.base, filled);
}

/** The first folder of a pattern's literal prefix that does not exist, if any. */
function missingFolder(p: PathPattern): string | undefined {
  let dir = p.base;
  if (!isKind(dir, true)) return dir;
  for (const part of p.parts.slice(0, -1)) {
    if (!('literal' in part)) return undefined;
    dir = path.join(dir, part.literal);
    if (!isKind(dir, true)) return dir;
  }
  return undefined;
}

// ---- pairing ----

export interface PatternSpec {
  images: string;
  masks: string;
  roi?: string;
}

const keyOf = (fields: Record<string, string>, names: string[]): string => names.map((n) => `${n}=${fields[n]}`).join('\0');
const showKey = (fields: Record<string, string>, names: string[]): string => names.map((n) => `{${n}} = '${fields[n]}'`).join(', ');

/** Keeps image files; other matches go to an 'ignored-file' warning. */
function imagesOnly(ms: PatternMatch[], what: string, issues: Issue[]): PatternMatch[] {
  for (const m of ms) if (!isImageFile(m.file)) addIssue(issues, 'ignored-file', 'warning', `files matching the ${what} pattern that are not images were ignored`, m.file);
  return ms.filter((m) => isImageFile(m.file));
}

/** Indexes matches by their fields (restricted to `names`); several matches for one key are an error. */
function byKey(ms: PatternMatch[], names: string[], what: string, pattern: string, issues: Issue[]): Map<string, PatternMatch> {
  const out = new Map<string, PatternMatch>();
  const dup = new Set<string>();
  for (const m of ms) {
    const k = keyOf(m.fields, names);
    if (out.has(k)) dup.add(k);
    else out.set(k, m);
  }
  for (const k of dup) {
    for (const m of ms.filter((x) => keyOf(x.fields, names) === k)) {
      addIssue(issues, `duplicate-${what}`, 'error', `several ${what} files match '${pattern}' with the same placeholders (which one belongs to the image is ambiguous)`, `${m.file} (${showKey(m.fields, names)})`);
    }
    out.delete(k);
  }
  return out;
}

/** Finds each image's partner among `matches` of `target` (a masks or roi pattern); the partners no image used are returned. */
function partner(images: PatternMatch[], target: PathPattern, matches: PatternMatch[], what: 'mask' | 'roi', issues: Issue[]): { found: (string | undefined)[]; unused: string[] } {
  const index = byKey(imagesOnly(matches, what === 'mask' ? 'masks' : 'roi', issues), target.names, what, target.text, issues);
  const used = new Set<string>();
  const found = images.map((im) => {
    const k = keyOf(im.fields, target.names);
    const m = index.get(k);
    if (m) used.add(k);
    else addIssue(issues, `missing-${what}`, 'error', `images without a ${what === 'mask' ? 'mask' : 'ROI mask'}: no file matches '${target.text}' for them`, `${im.file} (looked for ${fillPattern(target, im.fields)})`);
    return m?.file;
  });
  const unused = [...index.entries()].filter(([k]) => !used.has(k)).map(([, m]) => m.file);
  return { found, unused };
}

/**
 * Pairs images with masks (and ROI masks) by placeholders: every image must find its
 * mask, else a 'missing-mask' error naming the image and the path looked for; masks with
 * no image are an 'extra-mask' warning.
 */
export function pairByPattern(spec: PatternSpec, root: string, issues: Issue[]): SampleRef[] {
  const img = compilePattern(spec.images, root);
  const msk = compilePattern(spec.masks, root);
  const roi = spec.roi !== undefined ? compilePattern(spec.roi, root) : undefined;
  if (img.names.length === 0) {
    throw new DataError(`images pattern '${spec.images}' has no {name}: name the part of the file name an image shares with its mask, e.g. '{id}.jpg'`, 'bad-pattern');
  }
  if (msk.names.length === 0) throw new DataError(`masks pattern '${spec.masks}' has no {name}: every image would get the same mask; use the images pattern's ${img.names.map((n) => `{${n}}`).join(', ')}`, 'bad-pattern');
  for (const [p, what] of [[msk, 'masks'], [roi, 'roi']] as const) {
    const extra = p?.names.filter((n) => !img.names.includes(n)) ?? [];
    if (extra.length > 0) throw new DataError(`${what} pattern '${p!.text}' uses {${extra[0]}}, which the images pattern '${spec.images}' does not: a ${what} file could not be told from its image`, 'bad-pattern');
  }
  const maskFiles = matchPattern(msk);
  const roiFiles = roi ? matchPattern(roi) : [];
  const labels = new Set([...maskFiles, ...roiFiles].map((m) => m.file));
  const found = imagesOnly(matchPattern(img).filter((m) => !labels.has(m.file)), 'images', issues);
  if (found.length === 0) {
    const gone = missingFolder(img);
    issues.push({ code: 'no-images', severity: 'error', files: [path.join(root, spec.images)],
      message: `no image file matches '${spec.images}' under '${root}'${gone ? ` (folder '${gone}' does not exist)` : ''}` });
    return [];
  }
  const images = [...byKey(found, img.names, 'image', spec.images, issues).values()];
  const masks = partner(images, msk, maskFiles, 'mask', issues);
  for (const f of masks.unused) addIssue(issues, 'extra-mask', 'warning', `masks matching '${spec.masks}' without an image (ignored)`, f);
  const rois = roi ? partner(images, roi, roiFiles, 'roi', issues) : undefined;
  for (const f of rois?.unused ?? []) addIssue(issues, 'extra-roi', 'warning', `ROI masks matching '${spec.roi}' without an image (ignored)`, f);
  const items: SampleRef[] = [];
  images.forEach((im, i) => {
    const mask = masks.found[i];
    const r = rois?.found[i];
    if (mask !== undefined && (!rois || r !== undefined)) items.push({ stem: path.parse(im.file).name, image: im.file, mask, ...(r ? { roi: r } : {}) });
  });
  return items;
}

/** One pair as a list gives it; `where` names its row. */
export interface PairRow {
  image: string;
  mask?: string;
  roi?: string;
  where: string;
}

const COLUMNS = { image: ['image', 'image_path', 'img'], mask: ['mask', 'mask_path', 'label', 'label_path'], roi: ['roi', 'roi_path', 'fov', 'fov_mask'] };

function csvRows(file: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`cannot read pairs list '${file}': ${(err as Error).message}`, 'missing', file);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map(parseCsvLine);
}

function columnsOf(header: string[]): { image: number; mask: number; roi: number } {
  const h = header.map((x) => x.toLowerCase());
  const col = (names: string[]): number => h.findIndex((x) => names.includes(x));
  return { image: col(COLUMNS.image), mask: col(COLUMNS.mask), roi: col(COLUMNS.roi) };
}

/** Whether a CSV file's header has image and mask columns (a pairs list, not an image list). */
export function isPairsCsv(file: string): boolean {
  try {
    const first = csvRows(file)[0];
    if (!first) return false;
    const c = columnsOf(first);
    return c.image >= 0 && c.mask >= 0;
  } catch {
    return false;
  }
}

/** Reads a pairs CSV: a header with image and mask columns, roi optional; other columns are ignored. */
export function readPairsCsv(file: string): { rows: PairRow[]; roi: boolean } {
  const rows = csvRows(file);
  const c = rows.length > 0 ? columnsOf(rows[0]) : { image: -1, mask: -1, roi: -1 };
  if (c.image < 0 || c.mask < 0) {
    throw new DataError(`pairs list '${file}': the header needs an 'image' and a 'mask' column (and optionally 'roi'), got ${rows[0] ? rows[0].join(',') : 'an empty file'}`, 'bad-list', file);
  }
  const cell = (r: string[], i: number): string | undefined => (i >= 0 && r[i] ? r[i] : undefined);
  return {
    roi: c.roi >= 0,
    rows: rows.slice(1).map((r, i) => {
      const image = cell(r, c.image);
      if (!image) throw new DataError(`pairs list '${file}', row ${i + 2}: no image path`, 'bad-list', file);
      return { image, mask: cell(r, c.mask), roi: cell(r, c.roi), where: `${file} row ${i + 2}` };
    }),
  };
}

/**
 * Items from explicit pairs (paths relative to `base`): rows whose image, mask or
 * (with `roi`) ROI file is missing are errors naming the row.
 */
export function pairsFromRows(rows: PairRow[], base: string, roi: boolean, issues: Issue[]): SampleRef[] {
  const abs = (p: string): string => against(base, p);
  const items: SampleRef[] = [];
  const stems = new Set<string>();
  for (const r of rows) {
    const image = abs(r.image);
    let ok = true;
    const need = (p: string | undefined, code: string, what: string): string | undefined => {
      if (p === undefined) addIssue(issues, code, 'error', `pairs without a ${what} path`, `${r.where}: ${image}`);
      else if (!isKind(abs(p), false)) addIssue(issues, code, 'error', `${what} files named in the pairs list that do not exist`, `${r.where}: ${abs(p)}`);
      else return abs(p);
      ok = false;
      return undefined;
    };
    need(r.image, 'missing-image', 'image');
    const mask = need(r.mask, 'missing-mask', 'mask');
    const roiFile = roi ? need(r.roi, 'missing-roi', 'ROI mask') : undefined;
    if (!ok) continue;
    const stem = path.parse(image).name;
    if (stems.has(stem)) addIssue(issues, 'duplicate-stem', 'warning', 'images that share a file stem (outputs named by stem would collide)', image);
    stems.add(stem);
    items.push({ stem, image, mask, ...(roiFile ? { roi: roiFile } : {}) });
  }
  return items;
}

// ---- descriptions ----


const KEYS = ['description', 'root', 'images', 'masks', 'roi', 'pairs', 'classes', 'maskMode'];

/** Whether parsed JSON is a dataset description (a COCO file has "images" as a list). */
export function isDescription(json: unknown): boolean {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return false;
  const o = json as Record<string, unknown>;
  return 'pairs' in o || 'masks' in o || typeof o.images === 'string';
}


/** Checks the keys and their types; errors name the file and the key. */
function checkDescription(o: Record<string, unknown>, file: string): void {
  const bad = (what: string): never => {
    throw new DataError(`dataset description '${file}': ${what}`, 'bad-description', file);
  };
  for (const k of Object.keys(o)) {
    if (!KEYS.includes(k)) {
      const hint = closestKey(k, [...KEYS]);
      bad(`unknown key '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}; keys are ${KEYS.join(', ')}`);
    }
  }
  const type = (v: unknown): string => (Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);
  for (const k of ['description', 'root', 'images', 'masks', 'roi', 'maskMode']) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) bad(`'${k}' must be a non-empty string, got ${type(o[k])}`);
  }
  if (o.pairs !== undefined && typeof o.pairs !== 'string' && !Array.isArray(o.pairs)) bad(`'pairs' must be a CSV path or a list of { "image", "mask", "roi" }, got ${type(o.pairs)}`);
  if (o.classes !== undefined && typeof o.classes !== 'string' && (typeof o.classes !== 'object' || o.classes === null)) bad(`'classes' must be 'binary', 'paper', a classes.json path or a list of classes, got ${type(o.classes)}`);
  if (o.pairs !== undefined && (o.images !== undefined || o.masks !== undefined || o.roi !== undefined)) bad(`give either "pairs" or "images" + "masks" (+ "roi"), not both`);
  if (o.pairs === undefined && (o.images === undefined || o.masks === undefined)) {
    bad(`needs "images" and "masks" patterns (e.g. "images/{id}.jpg", "labels/{id}_mask.png"), or "pairs"; ${o.images === undefined ? '"images"' : '"masks"'} is missing`);
  }
}

/** Rows of an inline "pairs" list; errors name the entry. */
function inlineRows(list: unknown[], file: string): PairRow[] {
  return list.map((e, i) => {
    const o = e as Record<string, unknown>;
    const str = (k: string): string | undefined => {
      if (o[k] === undefined) return undefined;
      if (typeof o[k] !== 'string' || o[k] === '') throw new DataError(`dataset description '${file}': pairs[${i}].${k} must be a non-empty string`, 'bad-description', file);
      return o[k] as string;
    };
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new DataError(`dataset description '${file}': pairs[${i}] must be { "image", "mask", "roi" }`, 'bad-description', file);
    const unknown = Object.keys(o).find((k) => !['image', 'mask', 'roi'].includes(k));
    if (unknown) throw new DataError(`dataset description '${file}': pairs[${i}] has unknown key '${unknown}' (keys are image, mask, roi)`, 'bad-description', file);
    const image = str('image');
    if (!image) throw new DataError(`dataset description '${file}': pairs[${i}] needs an "image"`, 'bad-description', file);
    return { image, mask: str('mask'), roi: str('roi'), where: `${file} pairs[${i}]` };
  });
}

function descriptionClasses(o: Record<string, unknown>, file: string, opts: DescriptionOptions, mode: MaskMode, issues: Issue[], csv = false): ClassMap {
  if (opts.classes !== undefined) return typeof opts.classes === 'string' ? loadClassMap(opts.classes) : opts.classes;
  const c = o.classes;
  if (typeof c === 'string') return c === 'binary' || c === 'paper' ? loadClassMap(c) : loadClassMap(against(path.dirname(file), c));
  if (c !== undefined) return parseClassMap(c, file);
  if (mode.kind !== 'binary') {
    issues.push({ code: 'no-class-map', severity: 'warning', files: [file],
      message: csv ? 'no class map: assuming two classes (0 background, 1 foreground); pass --classes FILE for more, or --mask-mode binary for 0/255 masks'
        : 'no "classes" in the description: assuming two classes (0 background, 1 foreground); add "classes", or "maskMode": "binary" for 0/255 masks' });
  }
  return BINARY_CLASSES;
}

function descriptionMode(o: Record<string, unknown>, file: string, opts: DescriptionOptions, issues: Issue[]): MaskMode {
  if (typeof o.maskMode !== 'string') return opts.maskMode ?? { kind: 'exact' };
  let mode: MaskMode;
  try {
    mode = parseMaskMode(o.maskMode);
  } catch (err) {
    throw new DataError(`dataset description '${file}': 'maskMode' ${(err as Error).message}`, 'bad-description', file);
  }
  const given = opts.maskMode;
  if (given && given.kind !== 'exact' && formatMaskMode(given) !== formatMaskMode(mode)) {
    issues.push({ code: 'mask-mode-ignored', severity: 'warning', files: [file],
      message: `mask mode ${formatMaskMode(given)} ignored: the description reads its masks with "maskMode": "${formatMaskMode(mode)}"` });
  }
  return mode;
}

/** A dataset from a parsed description (`file` names it; relative paths resolve against its folder). */
export function describedDataset(json: Record<string, unknown>, file: string, opts: DescriptionOptions = {}): SegDataset {
  checkDescription(json, file);
  const issues: Issue[] = [];
  const mode = descriptionMode(json, file, opts, issues);
  if (mode.kind === 'threshold') checkThreshold(mode.threshold);
  const classes = descriptionClasses(json, file, opts, mode, issues);
  checkModeClasses(mode, classes, file);
  const root = against(path.dirname(file), (json.root as string | undefined) ?? '.');
  if (!isKind(root, true)) {
    throw new DataError(`dataset description '${file}': root '${json.root}' (${root}) is not a folder`, 'missing', file);
  }
  let items: SampleRef[];
  let roi: boolean;
  if (json.pairs !== undefined) {
    const csv = typeof json.pairs === 'string' ? against(root, json.pairs) : undefined;
    const list = csv ? readPairsCsv(csv) : { rows: inlineRows(json.pairs as unknown[], file), roi: false };
    roi = list.roi || list.rows.some((r) => r.roi !== undefined);
    items = pairsFromRows(list.rows, csv ? path.dirname(csv) : root, roi, issues);
  } else {
    roi = json.roi !== undefined;
    items = pairByPattern({ images: json.images as string, masks: json.masks as string, roi: json.roi as string | undefined }, root, issues);
  }
  return pairsDataset(file, classes, mode, items, issues, roi);
}

function pairsDataset(source: string, classes: ClassMap, mode: MaskMode, items: SampleRef[], issues: Issue[], roi: boolean): SegDataset {
  lossyMaskIssues(items.map((it) => it.mask!), mode, issues);
  return {
    kind: 'pairs', source, classes, items, issues, labelled: true, roi,
    readMask: (i, size) => readMaskFile(items[i].mask!, classes, mode, size),
  };
}

/** Opens a dataset description JSON file. */
export function openDescription(file: string, opts: DescriptionOptions = {}): SegDataset {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`cannot read dataset description '${file}': ${(err as Error).message}`, 'bad-description', file);
  }
  if (!isDescription(json)) throw new DataError(`'${file}' is no dataset description: it needs "images" + "masks" patterns or "pairs"`, 'bad-description', file);
  return describedDataset(json as Record<string, unknown>, file, opts);
}

/** Opens a pairs CSV (header image,mask[,roi]; paths relative to its folder). */
export function openPairsCsv(file: string, opts: DescriptionOptions = {}): SegDataset {
  const issues: Issue[] = [];
  const mode = opts.maskMode ?? { kind: 'exact' };
  if (mode.kind === 'threshold') checkThreshold(mode.threshold);
  const classes = descriptionClasses({}, file, opts, mode, issues, true);
  checkModeClasses(mode, classes, file);
  const list = readPairsCsv(file);
  return pairsDataset(file, classes, mode, pairsFromRows(list.rows, path.dirname(file), list.roi, issues), issues, list.roi);
}

/**
 * Reads a region-of-interest mask: (H, W) uint8, 1 inside (any value > 0, any channel),
 * 0 outside; with `size`, resized by nearest.
 *   const roi = await readRoi('mask/21_training_mask.gif', [512, 512]);
 */
export async function readRoi(file: string, size?: Size): Promise<Tensor> {
  let raw;
  try {
    raw = await decodeMask(file);
  } catch (err) {
    if (err instanceof DataError) throw new DataError(err.message.replace(/^cannot read mask/, 'cannot read ROI mask'), err.code, file);
    throw err;
  }
  const r = raw;
  return tidy(() => {
    const inside = any(tensor(r.data, [r.height, r.width, r.channels], { dtype: 'uint8' }).gt(0), 2).to('uint8');
    return size && (r.height !== size[0] || r.width !== size[1]) ? resizeMask(inside, size) : inside;
  });
}
