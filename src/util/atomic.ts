/**
 * Atomic file writes: data goes to a temp file in the target's folder, then a rename
 * puts it in place, so a reader (or a crash) never sees a half-written file.
 *
 * Temp files: one naming scheme for every writer (this file and safetensors),
 * `.NAME.PID.RAND.tmp` beside NAME: hidden, and carrying the writer's pid, so that
 *   - a failed write removes its own temp file (commitTemp, discardTemp);
 *   - a Ctrl-C or SIGTERM removes the temp files of writes still in flight (the signal
 *     handlers of util/lock.ts call removePendingTemps);
 *   - a kill -9 in the middle of a write leaves one, and the next command writing into
 *     that folder removes it (removeStaleTemps: the pid is no longer alive).
 */
import * as fs from 'fs';
import * as path from 'path';

/** Temp files of this process not yet renamed or removed. */
const pending = new Set<string>();

/** A new temp file name beside `file` (`.NAME.PID.RAND.tmp`), registered until commitTemp or discardTemp. */
export function tempPath(file: string): string {
  const abs = path.resolve(file);
  const rand = Math.random().toString(36).slice(2, 8).padEnd(6, '0');
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${rand}.tmp`);
  pending.add(tmp);
  return tmp;
}

/** Removes a temp file or folder (no error when it is already gone). */
export function discardTemp(tmp: string): void {
  pending.delete(tmp);
  try {
    fs.rmSync(tmp, { force: true, recursive: true });
  } catch {
    // best effort: the next command's removeStaleTemps takes it
  }
}

/** Renames a finished temp file onto `file`; on failure removes the temp file and rethrows. */
export function commitTemp(tmp: string, file: string): void {
  try {
    fs.renameSync(tmp, file);
    pending.delete(tmp);
  } catch (err) {
    discardTemp(tmp);
    throw err;
  }
}

/** Removes every temp file this process has in flight (signal handlers; synchronous). */
export function removePendingTemps(): void {
  for (const tmp of [...pending]) discardTemp(tmp);
}

export async function writeFileAtomic(file: string, data: Buffer | string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPath(file);
  try {
    await fs.promises.writeFile(tmp, data);
    await fs.promises.rename(tmp, file);
    pending.delete(tmp);
  } catch (err) {
    discardTemp(tmp);
    throw err;
  }
}

export function writeFileAtomicSync(file: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempPath(file);
  try {
    fs.writeFileSync(tmp, data);
  } catch (err) {
    discardTemp(tmp);
    throw err;
  }
  commitTemp(tmp, file);
}

/**
 * The writer's pid of a temp file name, or undefined when `name` is not one: the current
 * scheme `.NAME.PID.RAND.tmp`, and the two older ones (`.NAME.PID.MILLIS.tmp` of
 * safetensors, `NAME.tmp-PID-RAND` of this file), so leftovers of older versions go too.
 */
export function tempOwner(name: string): number | undefined {
  const m = /^\..+\.(\d+)\.[0-9a-z]+\.tmp$/.exec(name) ?? /^.+\.tmp-(\d+)-[0-9a-z]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether a process of this pid is running on this machine (EPERM: it is, but another user's). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleTempOptions {
  /** also look in sub-folders, this many levels down (default 0: the folder only) */
  depth?: number;
  /** only temp files of this target name (e.g. the bank file a command writes) */
  target?: string;
}

/**
 * Removes the temp files of dead processes from a folder (a write killed with -9 or a
 * machine crash); temp files of live processes, this one included, are left alone.
 * Returns the paths removed. A missing folder holds none.
 *   removeStaleTemps(runDir, { depth: 2 })
 */
export function removeStaleTemps(dir: string, opts: StaleTempOptions = {}): string[] {
  const removed: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if ((opts.depth ?? 0) > 0) removed.push(...removeStaleTemps(p, { ...opts, depth: (opts.depth ?? 0) - 1 }));
      continue;
    }
    const pid = tempOwner(e.name);
    if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
    if (opts.target !== undefined && !e.name.startsWith(`.${opts.target}.`) && !e.name.startsWith(`${opts.target}.tmp-`)) continue;
    try {
      fs.rmSync(p, { force: true });
      removed.push(p);
    } catch {
      // not ours to fight over: a permission problem leaves it, as before
    }
  }
  return removed;
}
