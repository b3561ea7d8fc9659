/**
 * The native op table is reached through src/tensor only: no module above tensor/
 * imports the raw call helpers (tensor/call.ts) or the addon (tensor/native.ts), or
 * names callT/callTs/callV; the tensor package does not export them. Fails when one does.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as T from '../../src/tensor';

const SRC = path.resolve(__dirname, '..', '..', '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

test('modules above tensor/ do not call raw native ops', () => {
  const files = sources(SRC).filter((f) => !f.startsWith(path.join(SRC, 'tensor') + path.sep));
  assert.ok(files.length > 50, `found ${files.length} source files under ${SRC}`);
  const offenders: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    const imports = [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
    for (const spec of imports) {
      if (/(^|\/)tensor\/(call|native)$/.test(spec)) offenders.push(`${path.relative(SRC, f)} imports ${spec}`);
    }
    const named = text.match(/\b(callT|callTs|callV)\s*[<(]/);
    if (named) offenders.push(`${path.relative(SRC, f)} calls ${named[1]}`);
  }
  assert.deepEqual(offenders, []);
});

test('the tensor package exports no raw call helper', () => {
  for (const name of ['callT', 'callTs', 'callV', 'native']) assert.equal(name in T, false, name);
});
