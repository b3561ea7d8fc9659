import { CqsegError } from '../util/errors';

/** The shape of one CLI command; each lives in src/cli/commands/<name>.ts and exports `command`. */
export interface Command {
  /** the word after `cqseg`; a space makes a sub-command ('data check') */
  name: string;
  summary: string;
  /** full help text shown by --help (usage line first) */
  help: string;
  run(args: string[]): Promise<number>;
}

/** A wrong command line (exit 2) or another user-facing failure with its own exit status. */
export class UsageError extends CqsegError {
  constructor(message: string, exitCode = 2) {
    super(message, 'ERR_USAGE');
    this.exitCode = exitCode;
  }
}
