/**
 * One writer per output folder: a lock file `cqseg.lock` in the folder, created
 * atomically (open with 'wx', so of two processes exactly one creates it) and holding
 * the writer's pid, host, start time and command. A second writer is refused with an
 * error naming the holder and what to do. A lock left by a killed process (same host,
 * pid no longer alive) is stale: it is taken over, with a note on stderr.
 * The lock is released in the caller's `finally` (release()), and on SIGINT, SIGTERM
 * and process exit, which also remove the temp files of writes still in flight.
 *
 *   const lock = acquireLock(runDir, { command: 'cqseg train ...', what: 'run folder', flag: '--out' });
 *   try { ... } finally { lock.release(); }
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pidAlive, removePendingTemps } from './atomic';

export const LOCK_FILE = 'cqseg.lock';

/** A lock file younger than this whose content cannot be read is still being written by its creator. */
const CREATING_MS = 5000;

export interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken */
  since: string;
  /** what holds it, e.g. `cqseg train --data D --out RUN` */
  command: string;
}

export interface LockOptions {
  /** what the holder runs, shown to a second writer */
  command: string;
  /** what the folder is, for messages (default 'folder') */
  what?: string;
  /** the option that names the folder (e.g. '--out'), for "choose another --out" */
  flag?: string;
  /** the error to throw when the folder is locked (default Error) */
  makeError?: (message: string) => Error;
  /** where the note on a stale lock goes (default stderr) */
  note?: (line: string) => void;
}

export interface FolderLock {
  dir: string;
  file: string;
  info: LockInfo;
  /** removes the lock file (only while it is still this lock's); twice is fine */
  release(): void;
}

const held = new Set<FolderLock>();

/** The lock of `dir` as written, or 'unreadable' (empty or cut short), or null when there is none. */
export function readLock(dir: string): LockInfo | 'unreadable' | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
  try {
    const j = JSON.parse(text) as Partial<LockInfo>;
    if (!Number.isInteger(j.pid) || typeof j.hostname !== 'string') return 'unreadable';
    return { pid: j.pid!, hostname: j.hostname, since: String(j.since ?? '?'), command: String(j.command ?? '?') };
  } catch {
    return 'unreadable';
  }
}

/** Why the lock in `dir` does not hold any more (a note for stderr), or null while it holds. */
function staleReason(dir: string, info: LockInfo | 'unreadable'): string | null {
  if (info === 'unreadable') {
    const st = fs.statSync(path.join(dir, LOCK_FILE), { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs < CREATING_MS) return null;
    return `an unreadable lock file (its writer died while creating it)`;
  }
  if (info.hostname !== os.hostname() || pidAlive(info.pid)) return null;
  return `the lock of pid ${info.pid} (${info.command}, since ${info.since}), which is no longer running`;
}

function ago(since: string): string {
  const ms = Date.now() - Date.parse(since);
  if (!Number.isFinite(ms) || ms < 0) return '';
  const min = Math.round(ms / 60000);
  return min < 1 ? ' (less than a minute ago)' : min < 120 ? ` (${min} min ago)` : ` (${(min / 60).toFixed(1)} h ago)`;
}

function lockedMessage(dir: string, info: LockInfo | 'unreadable', o: LockOptions): string {
  const what = `${o.what ?? 'folder'} '${dir}'`;
  const file = path.join(dir, LOCK_FILE);
  const elsewhere = o.flag ? `, or write elsewhere (another ${o.flag})` : '';
  if (info === 'unreadable') return `${what} is being locked by another cqseg process (${file} is being written); try again in a few seconds${elsewhere}`;
  const other = info.hostname === os.hostname() ? '' : ' (another machine: its pid cannot be checked from here)';
  return `${what} is in use by another cqseg process: pid ${info.pid} on host ${info.hostname}${other}, since ${info.since}${ago(info.since)}, ` +
    `running '${info.command}'. Two writers would overwrite each other's files: wait for it to finish or stop it${elsewhere}. ` +
    `If that process is gone (its machine crashed, or the pid was reused), delete ${file}.`;
}

/**
 * The live holder of `dir`'s lock, or null when the folder is free (no lock, or a
 * stale one). Reads only: for failing early before slow work; acquireLock decides.
 */
export function lockHolder(dir: string): LockInfo | 'unreadable' | null {
  const info = readLock(dir);
  if (info === null || staleReason(dir, info) !== null) return null;
  return info;
}

/** Throws (o.makeError) when another live process holds `dir`'s lock. */
export function assertUnlocked(dir: string, o: LockOptions): void {
  const info = lockHolder(dir);
  if (info !== null) throw (o.makeError ?? ((m) => new Error(m)))(lockedMessage(dir, info, o));
}

function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(info, null, 1) + '\n');
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * Takes the lock of an existing folder `dir`, or throws (o.makeError) naming the live
 * holder. A stale lock is removed (only the file judged stale: compared by inode) and
 * taken over, with a note.
 */
export function acquireLock(dir: string, o: LockOptions): FolderLock {
  const file = path.join(dir, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString(), command: o.command };
  const makeError = o.makeError ?? ((m: string) => new Error(m));
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file, info)) {
      const lock: FolderLock = { dir, file, info, release: () => release(lock) };
      held.add(lock);
      if (held.size === 1) installHandlers();
      return lock;
    }
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st) continue; // released meanwhile
    const current = readLock(dir);
    if (current === null) continue;
    const why = staleReason(dir, current);
    if (why === null) throw makeError(lockedMessage(dir, current, o));
    const now = fs.statSync(file, { throwIfNoEntry: false });
    if (now && now.ino === st.ino) {
      fs.rmSync(file, { force: true });
      (o.note ?? ((l) => process.stderr.write(l + '\n')))(`cqseg: ${o.what ?? 'folder'} '${dir}': taking over ${why}`);
    }
  }
  throw makeError(`${o.what ?? 'folder'} '${dir}': cannot take its lock ${file} (other processes keep taking it); try again`);
}

function release(lock: FolderLock): void {
  if (!held.delete(lock)) return;
  try {
    const cur = readLock(lock.dir);
    if (cur !== null && cur !== 'unreadable' && cur.pid === lock.info.pid && cur.since === lock.info.since) fs.rmSync(lock.file, { force: true });
  } finally {
    if (held.size === 0) removeHandlers();
  }
}

/** Releases every lock this process holds and removes its temp files in flight (signals, exit). */
function releaseAll(): void {
  removePendingTemps();
  for (const l of [...held]) {
    try {
      l.release();
    } catch {
      // exiting anyway
    }
  }
}

const onSignal = (sig: NodeJS.Signals): void => {
  releaseAll();
  removeHandlers();
  // no other handler: die of the signal as without ours (exit status 128 + n)
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
};
const onExit = (): void => releaseAll();

function installHandlers(): void {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
}

function removeHandlers(): void {
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('exit', onExit);
}
