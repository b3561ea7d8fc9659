import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkOutputFile, ensureFolder } from '../../src/util/paths';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-paths-'));
const o = { what: 'run folder', flag: '--out' };

test('ensureFolder: creates, accepts a folder, and names a file, a looping link, a dangling link and a file parent', () => {
  const dir = tmp();
  assert.equal(ensureFolder(path.join(dir, 'new', 'run'), o), true);
  assert.equal(ensureFolder(path.join(dir, 'new', 'run'), o), false);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'x');
  assert.throws(() => ensureFolder(file, o), /run folder '.*file' exists and is a file, not a folder: choose another --out/);
  assert.throws(() => ensureFolder(path.join(file, 'run'), o), /cannot be created: '.*file' is a file, not a folder; choose another --out/);
  const loop = path.join(dir, 'loop');
  fs.symlinkSync(loop, loop);
  assert.throws(() => ensureFolder(loop, o), /symbolic link that loops back on itself.*remove the link or choose another --out/);
  assert.throws(() => ensureFolder(path.join(loop, 'run'), o), /loops back on itself/);
  const dangling = path.join(dir, 'dangling');
  fs.symlinkSync(path.join(dir, 'nowhere'), dangling);
  assert.throws(() => ensureFolder(dangling, o), /symbolic link to '.*nowhere', which does not exist/);
  assert.throws(() => ensureFolder(file, { ...o, makeError: (m) => new RangeError(m) }), RangeError);
});

test('checkOutputFile: a folder is refused with an example file name; a free path passes and creates nothing', () => {
  const dir = tmp();
  assert.throws(() => checkOutputFile(dir, { what: 'bank file', flag: '--out' }), /bank file '.*' is a folder: give a file name to --out, e.g. .*bank\.safetensors/);
  checkOutputFile(path.join(dir, 'sub', 'bank.safetensors'), { what: 'bank file' });
  assert.equal(fs.existsSync(path.join(dir, 'sub')), false);
});
