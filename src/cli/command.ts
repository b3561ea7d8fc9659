/** The shape of one CLI command; each lives in src/cli/commands/<name>.ts and exports `command`. */
export interface Command {
  /** the word after `cqseg`; a space makes a sub-command ('data check') */
  name: string;
  summary: string;
  /** full help text shown by --help (usage line first) */
  help: string;
  run(args: string[]): Promise<number>;
}

/** An error meant for the user: printed without a stack trace, exit status `exitCode`. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UsageError';
  }
}
