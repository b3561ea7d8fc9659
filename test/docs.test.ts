/**
 * docs/architecture.md stays true: every src/ folder and every native source file is
 * named there, and every file it names exists (in the layer of its table row, or by its
 * path).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '..', '..');
const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');

test('docs/architecture.md names every src/ folder and every native source file', () => {
  const folders = fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `src/${e.name}/`);
  const missing = folders.filter((f) => !doc.includes(`\`${f}\``));
  const native = ['ops', 'kernels'].flatMap((d) => fs.readdirSync(path.join(ROOT, 'native', 'src', d)).filter((f) => f.endsWith('.cc')));
  missing.push(...native.filter((f) => !doc.includes(`\`${f}\``)));
  for (const f of fs.readdirSync(path.join(ROOT, 'native', 'src')).filter((f) => f.endsWith('.cc'))) if (!doc.includes(`\`${f}\``)) missing.push(f);
  assert.deepEqual(missing, []);
});

test('every file docs/architecture.md names exists', () => {
  const gone: string[] = [];
  for (const line of doc.split('\n')) {
    const row = line.match(/^\| \d+ \| `(src\/[^`]*)` \|(.*)$/);
    if (row) {
      const dir = path.join(ROOT, row[1]);
      const all = fs.statSync(dir).isDirectory() ? (fs.readdirSync(dir, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/')) : [];
      for (const m of row[2].matchAll(/`([\w/]+\.ts|[\w]+\/)`/g)) {
        const name = m[1];
        if (!all.some((f) => f === name.replace(/\/$/, '') || f.endsWith(`/${name}`) || f === name)) gone.push(`${row[1]}${name}`);
      }
    }
    for (const m of line.matchAll(/`((?:src|native|test)\/[\w/.]+)`/g)) if (!fs.existsSync(path.join(ROOT, m[1]))) gone.push(m[1]);
  }
  for (const m of doc.matchAll(/`([\w]+\.cc)`/g)) {
    const hits = ['', 'ops', 'kernels'].filter((d) => fs.existsSync(path.join(ROOT, 'native', 'src', d, m[1])));
    if (hits.length === 0) gone.push(m[1]);
  }
  assert.deepEqual(gone, []);
});
