import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { acquireLock, LOCK_FILE, lockHolder, readLock } from '../../src/util/lock';
import { writeLockFile } from '../helpers/run_folder';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-lock-'));
const opts = { command: 'cqseg test', what: 'run folder', flag: '--out' };

test('a lock holds pid, host, time and command; a second writer is refused naming it; release removes it', () => {
  const dir = tmp();
  const lock = acquireLock(dir, opts);
  const info = readLock(dir);
  assert.ok(info && info !== 'unreadable');
  assert.equal(info.pid, process.pid);
  assert.equal(info.hostname, os.hostname());
  assert.equal(info.command, 'cqseg test');
  assert.ok(Math.abs(Date.parse(info.since) - Date.now()) < 60000);
  assert.deepEqual(lockHolder(dir), info);
  assert.throws(() => acquireLock(dir, { ...opts, makeError: (m) => new RangeError(m) }), (e: Error) =>
    e instanceof RangeError && e.message.includes(`pid ${process.pid} on host ${os.hostname()}`) && e.message.includes("running 'cqseg test'"));
  lock.release();
  lock.release();
  assert.equal(fs.existsSync(path.join(dir, LOCK_FILE)), false);
  acquireLock(dir, opts).release();
});

test('a lock of a dead pid and an old unreadable lock are taken over with a note; a fresh unreadable one is not', () => {
  const dir = tmp();
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  writeLockFile(dir, 'old', dead, '2020-01-01T00:00:00.000Z');
  assert.equal(lockHolder(dir), null);
  const notes: string[] = [];
  acquireLock(dir, { ...opts, note: (l) => notes.push(l) }).release();
  assert.match(notes[0], new RegExp(`taking over the lock of pid ${dead} \\(old, since 2020-01-01T00:00:00.000Z\\), which is no longer running`));
  fs.writeFileSync(path.join(dir, LOCK_FILE), '');
  assert.throws(() => acquireLock(dir, opts), /is being locked by another cqseg process/);
  const old = new Date(Date.now() - 60000);
  fs.utimesSync(path.join(dir, LOCK_FILE), old, old);
  acquireLock(dir, { ...opts, note: (l) => notes.push(l) }).release();
  assert.match(notes[1], /taking over an unreadable lock file/);
});

test('another process holding the lock is named; SIGTERM releases its lock', async () => {
  const dir = tmp();
  const lockJs = path.join(__dirname, '..', '..', 'src', 'util', 'lock.js');
  const code = `const l = require(${JSON.stringify(lockJs)}); l.acquireLock(${JSON.stringify(dir)}, { command: 'cqseg child' }); ` +
    `process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.on('exit', () => reject(new Error('child exited before locking')));
  });
  assert.throws(() => acquireLock(dir, opts), new RegExp(`in use by another cqseg process: pid ${child.pid} on host .*running 'cqseg child'`));
  const exit = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
  child.kill('SIGTERM');
  assert.equal(await exit, 'SIGTERM', 'dies of the signal, as without a handler');
  assert.equal(fs.existsSync(path.join(dir, LOCK_FILE)), false, 'released by the signal handler');
});
