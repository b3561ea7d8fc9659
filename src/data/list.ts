/**
 * Unlabelled image lists, for reference banks and prediction: a folder of images, a text
 * file with one path per line (blank lines and lines starting with # skipped), or a CSV
 * whose header has a 'path', 'image', 'file' or 'filename' column (else the first column).
 * Relative paths are relative to the list file's folder.
 *   const ds = openImageList('test_images/');  // ds.items[i].image
 */
import * as fs from 'fs';
import * as path from 'path';
import { BINARY_CLASSES, ClassMap } from './classes';
import { addIssue, Issue, SampleRef, SegDataset } from './dataset';
import { DataError, isImageFile } from './image_io';

/** Splits one CSV line (RFC 4180 quotes). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/** The image paths a folder, .txt or .csv names, in order (folders sorted by name). */
export function readImageList(source: string): string[] {
  if (!fs.existsSync(source)) throw new DataError(`image list '${source}' does not exist`, 'missing', source);
  if (fs.statSync(source).isDirectory()) {
    return fs.readdirSync(source).sort().filter((f) => isImageFile(f) && !f.startsWith('.')).map((f) => path.join(source, f));
  }
  const dir = path.dirname(source);
  const abs = (p: string): string => (path.isAbsolute(p) ? p : path.join(dir, p));
  const ext = path.extname(source).toLowerCase();
  if (ext === '.csv') {
    const rows = lines(source).map(parseCsvLine);
    if (rows.length === 0) return [];
    const header = rows[0].map((h) => h.toLowerCase());
    let col = header.findIndex((h) => ['path', 'image', 'file', 'filename', 'image_path'].includes(h));
    let body = rows.slice(1);
    if (col < 0) {
      col = 0;
      if (isImageFile(rows[0][0] ?? '')) body = rows; // no header
    }
    return body.map((r, i) => {
      if (!r[col]) throw new DataError(`image list '${source}', row ${i + 2}: no path in column ${col + 1}`, 'bad-list', source);
      return abs(r[col]);
    });
  }
  return lines(source).map(abs);
}

/** An unlabelled dataset over an image list; missing files and duplicate stems are listed as issues. */
export function openImageList(source: string, classes: ClassMap = BINARY_CLASSES): SegDataset {
  const issues: Issue[] = [];
  const items: SampleRef[] = [];
  const seen = new Set<string>();
  for (const image of readImageList(source)) {
    const stem = path.parse(image).name;
    if (!fs.existsSync(image)) {
      addIssue(issues, 'missing-image', 'error', `images named in '${source}' that do not exist`, image);
      continue;
    }
    if (seen.has(stem)) addIssue(issues, 'duplicate-stem', 'warning', 'images that share a file stem (outputs named by stem would collide)', image);
    seen.add(stem);
    items.push({ stem, image });
  }
  return {
    kind: 'list', source, classes, items, issues, labelled: false,
    readMask: () => Promise.reject(new DataError(`'${source}' is an unlabelled image list: it has no masks`, 'unlabelled', source)),
  };
}
