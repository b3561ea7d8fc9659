import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeSafetensors } from '../../src/nn';
import * as T from '../../src/tensor';
import { commitTemp, removeStaleTemps, tempOwner, tempPath, writeFileAtomic, writeFileAtomicSync } from '../../src/util/atomic';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-atomic-'));
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
const temps = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.includes('.tmp'));

test('temp names carry the pid (one scheme for every writer) and older schemes are recognised', () => {
  const t = tempPath('/x/run/model.safetensors');
  assert.match(path.basename(t), new RegExp(`^\\.model\\.safetensors\\.${process.pid}\\.[0-9a-z]{6}\\.tmp$`));
  assert.equal(path.dirname(t), '/x/run');
  assert.equal(tempOwner(path.basename(t)), process.pid);
  assert.equal(tempOwner('.epoch.5.4242.1717171717171.tmp'), 4242, 'safetensors before: .NAME.PID.MILLIS.tmp');
  assert.equal(tempOwner('config.json.tmp-4243-ab12cd'), 4243, 'atomic.ts before: NAME.tmp-PID-RAND');
  assert.equal(tempOwner('model.safetensors'), undefined);
  assert.equal(tempOwner('.hidden.tmp'), undefined);
  assert.throws(() => commitTemp(t, `${t}.final`), /ENOENT/, 'a temp file never written cannot be committed');
});

test('a failed atomic write leaves no temp file: writeFileAtomic(Sync) and writeSafetensors onto a folder', async () => {
  const dir = tmp();
  const target = path.join(dir, 'taken');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'inside'), 'x'); // rename onto a non-empty folder fails on every platform
  assert.throws(() => writeFileAtomicSync(target, 'data'));
  await assert.rejects(writeFileAtomic(target, 'data'));
  const t = T.ones([2, 2]);
  assert.throws(() => writeSafetensors(target, [['w', t]]));
  t.dispose();
  assert.deepEqual(temps(dir), [], 'no temp file left');
});

test('removeStaleTemps removes temp files of dead pids only, in sub-folders up to depth, and of one target when asked', () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
  const dead = deadPid();
  const files = {
    deadTop: path.join(dir, `.bank.safetensors.${dead}.aaaaaa.tmp`),
    deadOther: path.join(dir, `.other.json.${dead}.bbbbbb.tmp`),
    deadSub: path.join(dir, 'a', `.x.safetensors.${dead}.cccccc.tmp`),
    deadDeep: path.join(dir, 'a', 'b', `.y.safetensors.${dead}.dddddd.tmp`),
    live: path.join(dir, `.bank.safetensors.${process.ppid}.eeeeee.tmp`),
    mine: path.join(dir, `.bank.safetensors.${process.pid}.ffffff.tmp`),
    plain: path.join(dir, 'bank.safetensors'),
  };
  for (const f of Object.values(files)) fs.writeFileSync(f, 'x');
  assert.deepEqual(removeStaleTemps(dir, { target: 'bank.safetensors' }), [files.deadTop]);
  assert.deepEqual(removeStaleTemps(dir, { depth: 1 }).sort(), [files.deadOther, files.deadSub].sort());
  assert.ok(fs.existsSync(files.deadDeep), 'below depth: left');
  assert.deepEqual(removeStaleTemps(dir, { depth: 2 }), [files.deadDeep]);
  for (const k of ['live', 'mine', 'plain'] as const) assert.ok(fs.existsSync(files[k]), `${k} left alone`);
  assert.deepEqual(removeStaleTemps(path.join(dir, 'missing')), []);
});
