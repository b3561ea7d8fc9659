/**
 * Runs the CLI in-process with stdout and stderr captured, and a table runner for the
 * bad-input corpus: each case is the arguments (after its set-up), the expected exit code
 * and fragments the error output must hold.
 */
import * as assert from 'node:assert/strict';
import { main } from '../../src/cli/main';

export interface CliResult { code: number; out: string; err: string }

/** `cqseg ARGS` in this process; output captured, never printed. */
export async function cli(args: string[]): Promise<CliResult> {
  const so = process.stdout.write.bind(process.stdout);
  const se = process.stderr.write.bind(process.stderr);
  let out = '';
  let err = '';
  // the commands write strings; the test runner's own reports (binary, on stdout) pass through
  process.stdout.write = ((c: string | Uint8Array, ...rest: never[]) => (typeof c === 'string' ? ((out += c), true) : so(c, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array, ...rest: never[]) => (typeof c === 'string' ? ((err += c), true) : se(c, ...rest))) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
  }
}

export interface CorpusCase {
  /** what the case feeds in, as a test name */
  name: string;
  /** builds the input (files in a temp folder) and returns the CLI arguments */
  args: () => string[] | Promise<string[]>;
  /** expected exit status */
  code: number;
  /** fragments the error output (stderr) must contain, case-insensitive */
  says: string[];
  /** checked after the run (files left, folders untouched) */
  after?: () => void | Promise<void>;
}

/** Runs one corpus case: exit code, message fragments, no stack trace, then `after`. */
export async function runCase(c: CorpusCase): Promise<CliResult> {
  const r = await cli(await c.args());
  const text = r.err.toLowerCase();
  assert.equal(r.code, c.code, `${c.name}: exit ${r.code}, expected ${c.code}; stderr: ${r.err}`);
  for (const s of c.says) assert.ok(text.includes(s.toLowerCase()), `${c.name}: stderr lacks '${s}': ${r.err}`);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?/.test(r.err), `${c.name}: stderr holds a stack trace: ${r.err}`);
  await c.after?.();
  return r;
}
