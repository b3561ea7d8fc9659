/** cqseg train's flags and the training config schema: every flag sets a schema key, every key is a flag or named as file-only. */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { command, FLAGS } from '../../src/cli/commands/train';
import { TRAIN_CONFIG } from '../../src/train/config';

/** keys set in a config file only (no flag): per-class weights, the normalisation of a model's inputs */
const FILE_ONLY = ['classWeights', 'preprocessing', 'cqgWeights'];

test('every train flag sets a key of TRAIN_CONFIG, and every key has a flag or is file-only', () => {
  const keys = Object.keys(TRAIN_CONFIG.shape);
  for (const f of FLAGS) if (f.key) assert.ok(keys.includes(f.key), `--${f.flag} sets '${f.key}', not in TRAIN_CONFIG`);
  const flagged = new Set(FLAGS.map((f) => f.key).filter(Boolean));
  assert.deepEqual(keys.filter((k) => !flagged.has(k as never) && !FILE_ONLY.includes(k)), []);
  // cqgWeights comes in parts through --w-geo, --w-aug, --w-diff
  for (const w of ['w-geo', 'w-aug', 'w-diff']) assert.ok(FLAGS.some((f) => f.flag === w), w);
});

test('the help lists every flag the parser takes, each once', () => {
  for (const f of FLAGS) assert.equal(command.help.split(`--${f.flag} `).length - 1 + command.help.split(`--${f.flag}\n`).length - 1 >= 1, true, `--${f.flag} in the help`);
  assert.equal(new Set(FLAGS.map((f) => f.flag)).size, FLAGS.length);
});
