/** One error base: every error cqseg raises on purpose is a CqsegError with a code; the CLI's one handler tells user errors from bugs. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { UsageError } from '../../src/cli/command';
import { BankError } from '../../src/dcin/bank';
import { DataError } from '../../src/data/image_io';
import { ExperimentConfigError } from '../../src/experiment/config';
import { RunError } from '../../src/train/run';
import { StateDictError } from '../../src/nn/module';
import { SafetensorsError } from '../../src/nn/safetensors';
import * as T from '../../src/tensor';
import { ArgumentError, TorchError } from '../../src/tensor';
import { ConfigError } from '../../src/train/config';
import { TrainError } from '../../src/train/trainer';
import { CqsegError, describeFailure } from '../../src/util/errors';

test('every error class of cqseg is a CqsegError with a code and its own name', () => {
  const errors: CqsegError[] = [
    new UsageError('u'), new BankError('b'), new DataError('d', 'unreadable', 'a.png'), new ExperimentConfigError('e'),
    new RunError('r'), new StateDictError('s', { missingKeys: [], unexpectedKeys: [] } as never), new SafetensorsError('f.safetensors', 'x'),
    new ArgumentError('a'), new TorchError('t'), new ConfigError('c'), new TrainError('t'),
  ];
  for (const e of errors) {
    assert.ok(e instanceof CqsegError, e.constructor.name);
    assert.match(e.code, /^(ERR_[A-Z_]+|unreadable)$/, e.constructor.name);
    assert.equal(e.name, e.constructor.name);
  }
  assert.ok(new ExperimentConfigError('e') instanceof ConfigError);
});

test('libtorch errors come as TorchError with a code; an impossible allocation is ERR_OUT_OF_MEMORY', () => {
  assert.throws(() => T.matmul(T.zeros([2, 3]), T.zeros([2, 3])), (e: unknown) => e instanceof TorchError && e.code === 'ERR_TORCH');
  assert.throws(() => T.empty([2 ** 26, 2 ** 26]), (e: unknown) => e instanceof TorchError && e.code === 'ERR_OUT_OF_MEMORY');
});

test('describeFailure: user errors by message and exit status, bugs as bugs with their stack', () => {
  assert.deepEqual(describeFailure(new UsageError('expected one CONFIG.json')), { message: 'expected one CONFIG.json', exitCode: 2, bug: false });
  assert.deepEqual(describeFailure(new DataError('a.png: cannot read image', 'unreadable', 'a.png')), { message: 'a.png: cannot read image', exitCode: 1, bug: false });
  let enoent: unknown;
  try {
    fs.readFileSync('/nonexistent/cqseg/file.json');
  } catch (e) {
    enoent = e;
  }
  const f = describeFailure(enoent);
  assert.equal(f.bug, false);
  assert.equal(f.exitCode, 1);
  assert.match(f.message, /\/nonexistent\/cqseg\/file\.json/);
  const bug = describeFailure(new TypeError("Cannot read properties of undefined (reading 'shape')"));
  assert.equal(bug.bug, true);
  assert.equal(bug.exitCode, 70);
  assert.match(bug.message, /internal error \(a bug in cqseg/);
  assert.match(bug.message, /TypeError: Cannot read properties of undefined/);
  assert.match(bug.message, /errors\.test/, 'the stack is printed');
  assert.equal(describeFailure('thrown string').bug, true);
});
