import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { annotationMask, openCocoDataset, rleDecode, rleEncode, rleFromPolygon, rleFromString, rleToString, PAPER_CLASSES, checkDataset } from '../../src/data';
import { memory, Tensor, tensor, tidy } from '../../src/tensor';
import { quadImage, tempDir } from '../helpers/data';

const tmp = tempDir();
after(tmp.cleanup);

const rows = (t: Tensor): number[][] => {
  const [h, w] = t.shape;
  const d = Array.from(t.dataSync() as Uint8Array);
  return Array.from({ length: h }, (_, y) => d.slice(y * w, (y + 1) * w));
};

test('compressed RLE strings decode as pycocotools rleFrString (hand-computed)', () => {
  // 5 -> '5'; 100 -> 'T3' (low 5 bits 4 with continuation, then 3); 3 -> '3';
  // 98 is stored as 98 - 100 = -2 -> 30 with the sign bit -> 'N'
  assert.deepEqual(rleFromString('5T33N', 1, 206).counts, [5, 100, 3, 98]);
  assert.equal(rleToString({ h: 1, w: 206, counts: [5, 100, 3, 98] }), '5T33N');
  const big = { h: 1000, w: 1000, counts: [12345, 600000, 7, 387648] };
  assert.deepEqual(rleFromString(rleToString(big), 1000, 1000).counts, big.counts);
});

test('RLE is column-major: [20, 30, 50] on 10x10 fills columns 2..4', () => {
  const m = rleDecode({ h: 10, w: 10, counts: [20, 30, 50] });
  for (const r of rows(m)) assert.deepEqual(r, [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(rleEncode(m).counts, [20, 30, 50]);
  m.dispose();
  assert.throws(() => rleDecode({ h: 10, w: 10, counts: [20, 30] }), /sum to 50/);
});

test('polygon rasterisation follows frPoly: box (1,1)-(4,4) covers rows 1..3, columns 1..3', () => {
  const m = rleDecode(rleFromPolygon([1, 1, 4, 1, 4, 4, 1, 4], 6, 6));
  assert.deepEqual(rows(m), [
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
  ]);
  m.dispose();
});

function inside(px: number, py: number, poly: number[]): boolean {
  let c = false;
  for (let i = 0, j = poly.length / 2 - 1; i < poly.length / 2; j = i++) {
    const [xi, yi, xj, yj] = [poly[2 * i], poly[2 * i + 1], poly[2 * j], poly[2 * j + 1]];
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}
function edgeDistance(px: number, py: number, poly: number[]): number {
  let best = Infinity;
  const n = poly.length / 2;
  for (let i = 0; i < n; i++) {
    const [ax, ay, bx, by] = [poly[2 * i], poly[2 * i + 1], poly[(2 * i + 2) % (2 * n)], poly[(2 * i + 3) % (2 * n)]];
    const t = Math.max(0, Math.min(1, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)));
    best = Math.min(best, Math.hypot(px - ax - t * (bx - ax), py - ay - t * (by - ay)));
  }
  return best;
}

test('polygon pixels are those whose centre is inside (away from edges), as pycocotools', () => {
  const poly = [0.2, 0.3, 13.7, 2.1, 4.3, 11.9, 1.1, 6.2];
  const m = rleDecode(rleFromPolygon(poly, 12, 15));
  const r = rows(m);
  let checked = 0;
  for (let y = 0; y < 12; y++) for (let x = 0; x < 15; x++) {
    if (edgeDistance(x + 0.5, y + 0.5, poly) < 0.3) continue;
    assert.equal(r[y][x], inside(x + 0.5, y + 0.5, poly) ? 1 : 0, `pixel (${y}, ${x})`);
    checked++;
  }
  assert.ok(checked > 120);
  m.dispose();
});

test('several polygons of one annotation are merged by union; RLE sizes must match', () => {
  const m = annotationMask([[0, 0, 2, 0, 2, 2, 0, 2], [3, 3, 5, 3, 5, 5, 3, 5]], 6, 6);
  assert.equal(tidy(() => m.sum().item()), 8);
  m.dispose();
  assert.throws(() => annotationMask({ counts: [4], size: [2, 3] }, 2, 2), /RLE size 2x3 differs/);
});

async function writeCoco(): Promise<string> {
  const dir = path.join(tmp.dir, 'coco');
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  for (const f of ['a.jpg', 'b.png']) await sharp(quadImage(10, 10), { raw: { width: 10, height: 10, channels: 3 } }).toFile(path.join(dir, 'images', f));
  const uvula = rleEncode(tensor(Array.from({ length: 100 }, (_, i) => (Math.floor(i / 10) >= 2 && Math.floor(i / 10) < 5 && i % 10 >= 2 && i % 10 < 5 ? 1 : 0)), [10, 10], { dtype: 'uint8' }));
  const json = {
    images: [{ id: 1, file_name: 'a.jpg', width: 10, height: 10 }, { id: 2, file_name: 'b.png', width: 10, height: 10 }, { id: 3, file_name: 'gone.png', width: 10, height: 10 }],
    categories: [{ id: 7, name: 'back_wall' }, { id: 8, name: 'uvula' }, { id: 9, name: 'Tongue' }, { id: 10, name: 'tonsils' }, { id: 11, name: 'cat' }],
    annotations: [
      // small uvula first in file order (compressed RLE), then the big back wall (polygon)
      { id: 1, image_id: 1, category_id: 8, segmentation: { counts: rleToString(uvula), size: [10, 10] } },
      { id: 2, image_id: 1, category_id: 7, segmentation: [[0, 0, 10, 0, 10, 10, 0, 10]] },
      // uncompressed RLE (iscrowd style): columns 7..9 are tongue, plus a tonsil via its alias
      { id: 3, image_id: 2, category_id: 9, segmentation: { counts: [70, 30], size: [10, 10] }, iscrowd: 1 },
      { id: 4, image_id: 2, category_id: 10, segmentation: [[0, 0, 3, 0, 3, 3, 0, 3]] },
      { id: 5, image_id: 2, category_id: 11, segmentation: [[5, 5, 6, 5, 6, 6]] },
    ],
  };
  const file = path.join(dir, 'ann.json');
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

test('COCO: polygons, compressed and uncompressed RLE, aliases, overlap order, listing issues', async () => {
  const file = await writeCoco();
  const before = memory().liveTensors;
  const ds = openCocoDataset(file, { classes: PAPER_CLASSES });
  assert.deepEqual(ds.items.map((i) => i.stem), ['a', 'b']);
  assert.deepEqual(ds.issues.map((i) => i.code).sort(), ['missing-image', 'unknown-category']);
  // area order (default): the big back wall first, the small uvula (2) stays on top of it (4)
  const a = await ds.readMask(0);
  const ra = rows(a.mask);
  assert.equal(ra[3][3], 2);
  assert.equal(ra[0][0], 4);
  assert.equal(ra[8][8], 4);
  a.mask.dispose();
  // file order: the back wall, later in the file, covers the uvula
  const byOrder = openCocoDataset(file, { overlap: 'order' });
  const o = await byOrder.readMask(0);
  assert.equal(tidy(() => o.mask.eq(4).sum().item()), 100);
  o.mask.dispose();
  // uncompressed RLE [70, 30] = columns 7..9 tongue (3); 'tonsils' alias -> tonsil (1); 'cat' not in the map
  const b = await ds.readMask(1);
  const rb = rows(b.mask);
  assert.deepEqual(rb[5], [0, 0, 0, 0, 0, 0, 0, 3, 3, 3]);
  assert.deepEqual(rb[1].slice(0, 4), [1, 1, 1, 0]);
  assert.ok(b.outside.has('category 11'));
  b.mask.dispose();
  assert.equal(memory().liveTensors, before);
  const report = await checkDataset(ds, { size: [8, 8] });
  assert.ok(report.issues.some((i) => i.code === 'values-outside' && i.files[0].includes('b.png')));
  assert.ok(report.errors > 0);
});
