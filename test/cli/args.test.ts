/** Flags through node's util.parseArgs tokens, with cqseg's messages. */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../../src/cli/args';
import { UsageError } from '../../src/cli/command';

const spec = { out: {}, seed: {}, json: { type: 'boolean' as const }, dcin: { multiple: true } };

test('values, inline values, switches, repeated flags, negative numbers and -- are read', () => {
  const r = parseArgs(['a.png', '--out', 'dir', '--seed', '-1', '--json', '--dcin=gris', '--dcin', 'lris', 'b.png', '--', '--c.png'], spec);
  assert.deepEqual(r.flags, { out: 'dir', seed: '-1', json: true, dcin: ['gris', 'lris'] });
  assert.deepEqual(r.positionals, ['a.png', 'b.png', '--c.png']);
});

test('unknown flags, missing values and values given to a switch are usage errors naming the flag', () => {
  const refused = (args: string[], re: RegExp): void => {
    assert.throws(() => parseArgs(args, spec), (e: unknown) => e instanceof UsageError && re.test(e.message) && e.exitCode === 2);
  };
  refused(['--outt', 'x'], /unknown option --outt; known: --out --seed --json --dcin/);
  refused(['-o', 'x'], /unknown option -o/);
  refused(['--out'], /option --out needs a value/);
  refused(['--out', '--json'], /option --out needs a value/);
  refused(['--json=yes'], /option --json is a switch and takes no value, got 'yes'/);
  refused(['--constructor', 'x'], /unknown option --constructor/);
});
