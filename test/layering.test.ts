/**
 * The house's layering, checked on the source itself (fails when a change breaks it):
 * - only src/tensor reaches the addon: no module above tensor/ imports the raw call
 *   helpers (tensor/call.ts) or the addon (tensor/native.ts), or names callT/callTs/callV,
 *   and the tensor package does not export them;
 * - no import cycles between files;
 * - each layer imports only layers below it (the order of ARCHITECTURE.md and src/index.ts).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as T from '../src/tensor';

const SRC = path.resolve(__dirname, '..', '..', 'src');

/** Layers from the bottom; a layer may import those of lower rank (and itself). */
const RANK: Record<string, number> = {
  util: 0, tensor: 1, nn: 2, augment: 3, color: 3, data: 3, models: 4, eval: 4, train: 5, dcin: 6, experiment: 7, export: 8, serve: 9, cli: 10, '.': 11, web: 0,
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** file -> the files it imports (relative imports, resolved to .ts files or folders' index.ts) */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources(SRC)) {
    const text = fs.readFileSync(f, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']*)'/gms)) {
      const base = path.resolve(path.dirname(f), m[1].replace(/\.js$/, '')); // src/web's ES module specifiers name the .js
      const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((c) => fs.existsSync(c));
      assert.ok(hit, `${path.relative(SRC, f)}: cannot resolve '${m[1]}'`);
      deps.push(hit);
    }
    g.set(f, deps);
  }
  return g;
}

const layer = (f: string): string => {
  const parts = path.relative(SRC, f).split(path.sep);
  return parts.length > 1 ? parts[0] : '.';
};

test('modules above tensor/ do not call raw native ops', () => {
  const files = sources(SRC).filter((f) => layer(f) !== 'tensor');
  assert.ok(files.length > 50, `found ${files.length} source files under ${SRC}`);
  const offenders: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(/from\s+'([^']+)'/g)) {
      if (/(^|\/)tensor\/(call|native|manifest|testing)$/.test(m[1])) offenders.push(`${path.relative(SRC, f)} imports ${m[1]}`);
    }
    const named = text.match(/\b(callT|callTs|callV)\s*[<(]/);
    if (named) offenders.push(`${path.relative(SRC, f)} calls ${named[1]}`);
  }
  assert.deepEqual(offenders, []);
});

test('the tensor package exports no raw call helper, and no production module reaches the tests\' op table', () => {
  for (const name of ['callT', 'callTs', 'callV', 'native', 'testing', 'OPS']) assert.equal(name in T, false, name);
  const users = sources(SRC).filter((f) => !f.endsWith(`${path.sep}testing.ts`) && /from\s+'[^']*\/?testing'/.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(users.map((f) => path.relative(SRC, f)), []);
});

test('src/web/ runs in a browser: it imports only its own files (relative .js specifiers), no package and no other layer', () => {
  const wrong: string[] = [];
  for (const f of sources(path.join(SRC, 'web'))) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']*)'/gms)) {
      if (!/^\.\/[\w-]+\.js$/.test(m[1])) wrong.push(`${path.relative(SRC, f)} imports '${m[1]}'`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycles between source files', () => {
  const g = importGraph();
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (u: string): void => {
    state.set(u, 1);
    stack.push(u);
    for (const v of g.get(u) ?? []) {
      if (state.get(v) === 1) cycles.push([...stack.slice(stack.indexOf(v)), v].map((x) => path.relative(SRC, x)).join(' -> '));
      else if (!state.has(v)) visit(v);
    }
    stack.pop();
    state.set(u, 2);
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('each layer imports only the layers below it', () => {
  const wrong: string[] = [];
  for (const [f, deps] of importGraph()) {
    const from = layer(f);
    assert.ok(from in RANK, `layer '${from}' (${path.relative(SRC, f)}) has no rank: add it to RANK`);
    for (const d of deps) {
      const to = layer(d);
      if (to !== from && !(RANK[to] < RANK[from])) wrong.push(`${path.relative(SRC, f)} (${from}) imports ${path.relative(SRC, d)} (${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});
