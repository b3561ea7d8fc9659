/**
 * Output paths checked before anything is written, with messages that name the path,
 * say what is wrong in words (not EEXIST / ENOTDIR / EISDIR / ELOOP) and what to do.
 *   const created = ensureFolder(runDir, { what: 'run folder', flag: '--out', makeError: (m) => new TrainError(m) });
 */
import * as fs from 'fs';
import * as path from 'path';

export interface PathOptions {
  /** what the path is, for messages ('run folder', 'bank file', 'output folder') */
  what: string;
  /** the option naming it ('--out'), for "choose another --out" */
  flag?: string;
  makeError?: (message: string) => Error;
}

/**
 * The one rule for relative paths: on the command line they are relative to the working
 * directory; inside a file (a training or experiment config, a dataset description, a
 * pairs list) relative to that file's folder. This resolves `p` found in `file`.
 */
export function fromFile(file: string, p: string): string {
  return path.resolve(path.dirname(path.resolve(file)), p);
}

const another = (o: PathOptions): string => (o.flag ? `choose another ${o.flag}` : 'choose another path');

/** What is wrong with `p` as a path to write, in words, or null when it is free or an existing `want`. */
function problem(p: string, want: 'folder' | 'file', o: PathOptions): string | null {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(p, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return `${o.what} '${p}' is a symbolic link that loops back on itself (or a chain of too many links): remove the link or ${another(o)}`;
    if (code === 'ENOTDIR') return parentProblem(p, o) ?? `${o.what} '${p}': a part of the path is a file, not a folder; ${another(o)}`;
    if (code === 'EACCES') return `${o.what} '${p}' cannot be reached: no permission to read one of its folders; ${another(o)}`;
    throw err;
  }
  if (!st) {
    const lst = fs.lstatSync(p, { throwIfNoEntry: false });
    if (lst?.isSymbolicLink()) return `${o.what} '${p}' is a symbolic link to '${fs.readlinkSync(p)}', which does not exist: remove the link or ${another(o)}`;
    return parentProblem(p, o);
  }
  if (want === 'folder' && !st.isDirectory()) return `${o.what} '${p}' exists and is a file, not a folder: ${another(o)} or move the file away`;
  if (want === 'file' && st.isDirectory()) {
    return `${o.what} '${p}' is a folder: give a file name${o.flag ? ` to ${o.flag}` : ''}, e.g. ${path.join(p, 'bank.safetensors')}`;
  }
  return null;
}

/** The first existing ancestor of `p` that is not a folder, as a message, or null. */
function parentProblem(p: string, o: PathOptions): string | null {
  let dir = path.dirname(path.resolve(p));
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir, { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') return `${o.what} '${p}' lies under '${dir}', a symbolic link that loops back on itself: remove the link or ${another(o)}`;
      st = undefined;
    }
    if (st && !st.isDirectory()) return `${o.what} '${p}' cannot be created: '${dir}' is a file, not a folder; ${another(o)}`;
    if (st) return null;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * Creates `dir` (with its parents) unless it exists as a folder; throws a clear error
 * when it is a file, a looping or dangling link, under a file, or not writable.
 * Returns whether it was created here (so a caller that fails later can remove it).
 */
export function ensureFolder(dir: string, o: PathOptions): boolean {
  const makeError = o.makeError ?? ((m: string) => new Error(m));
  const bad = problem(dir, 'folder', o);
  if (bad) throw makeError(bad);
  if (fs.existsSync(dir)) return false;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw makeError(`${o.what} '${dir}' cannot be created: ${code === 'EROFS' ? 'read-only file system' : 'no permission'}; ${another(o)}`);
    }
    throw makeError(`${o.what} '${dir}' cannot be created (${(err as Error).message}); ${another(o)}`);
  }
  return true;
}

/** Checks `file` can be written as a file (not a folder, not under a file, no looping link); creates nothing. */
export function checkOutputFile(file: string, o: PathOptions): void {
  const bad = problem(file, 'file', o);
  if (bad) throw (o.makeError ?? ((m: string) => new Error(m)))(bad);
}

/** Checks `dir` is a folder or can be made one, creating nothing (for checks before slow work). */
export function checkOutputFolder(dir: string, o: PathOptions): void {
  const bad = problem(dir, 'folder', o);
  if (bad) throw (o.makeError ?? ((m: string) => new Error(m)))(bad);
}
