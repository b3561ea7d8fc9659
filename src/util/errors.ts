/**
 * One error base for cqseg. Every error cqseg raises on purpose is a CqsegError with a
 * `code` (ERR_CONFIG, ERR_DATA_..., ERR_TORCH, ...): it describes a problem of the input,
 * the files or the machine, in words a user can act on, and the CLI prints its message
 * without a stack (exit status `exitCode`). Anything else reaching the CLI is a bug in
 * cqseg and is reported as one (`describeFailure`).
 */

export class CqsegError extends Error {
  /** the process exit status when this error ends a CLI command */
  exitCode = 1;
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Node's file-system errors that describe the user's files, not cqseg (their message names the path). */
const SYSTEM_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENOSPC', 'EROFS', 'EMFILE', 'ENAMETOOLONG', 'EDQUOT', 'EIO']);

export interface Failure {
  /** the line(s) to print after `cqseg COMMAND: ` */
  message: string;
  exitCode: number;
  /** true for a bug in cqseg (printed with its stack) */
  bug: boolean;
}

/** How the CLI reports an error: user errors by message, bugs as bugs (exit 70, EX_SOFTWARE). */
export function describeFailure(err: unknown): Failure {
  if (err instanceof CqsegError) return { message: err.message, exitCode: err.exitCode, bug: false };
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof Error && typeof code === 'string' && SYSTEM_CODES.has(code)) return { message: err.message, exitCode: 1, bug: false };
  const stack = err instanceof Error ? err.stack ?? `${err.name}: ${err.message}` : String(err);
  return {
    message: `internal error (a bug in cqseg, not in your input; please report it with the command line):\n${stack}`,
    exitCode: 70,
    bug: true,
  };
}
