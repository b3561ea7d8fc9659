/**
 * Every settings or state file is read through its zod schema (src/util/schema.ts), and
 * the code reads only keys its schema declares:
 * - the config and state types are the schemas' own (z.infer): a key the code reads and
 *   the schema lacks does not compile (the type checks below fail to compile when a type
 *   is declared apart from its schema);
 * - no JSON reaches the code unchecked: each JSON.parse in src/ is in a reader that checks
 *   what it parsed (the list below says which check and why);
 * - the state and ONNX schemas refuse unknown keys and wrong types naming file and key
 *   (the train and experiment configs' own tests: test/train/config.test.ts,
 *   test/experiment/config.test.ts).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { EXPERIMENT_CONFIG, ExperimentConfig } from '../../src/experiment/config';
import { RUN_CONFIG, RunConfig, TRAIN_CONFIG, TrainConfig } from '../../src/train/config';
import { TRAIN_STATE, TrainState, readState } from '../../src/train/checkpoint';
import { ONNX_CONFIG, OnnxConfig } from '../../src/dcin/embedders';
import { readJsonFile } from '../../src/util/schema';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(yes: Same<A, B>): boolean => yes;

test('config and state types are their schemas\' (compile-time: a type declared apart would not compile here)', () => {
  assert.ok(same<TrainConfig, z.infer<typeof TRAIN_CONFIG>>(true));
  assert.ok(same<RunConfig, z.infer<typeof RUN_CONFIG>>(true));
  assert.ok(same<ExperimentConfig, z.output<typeof EXPERIMENT_CONFIG>>(true));
  assert.ok(same<TrainState, z.infer<typeof TRAIN_STATE>>(true));
  assert.ok(same<OnnxConfig, z.infer<typeof ONNX_CONFIG>>(true));
});

/** Where src/ may call JSON.parse, and what checks the result there. */
const CHECKED_PARSES: Record<string, string> = {
  'util/schema.ts': 'readJsonObject: the one reader of settings files, followed by checkSchema',
  'cli/commands/demo.ts': 'SYNTH_MANIFEST.safeParse: a manifest that does not parse is written anew',
  'nn/safetensors.ts': 'the safetensors header: every entry checked (dtype, shape, offsets) by the reader',
  'util/lock.ts': 'the lock file: each field checked before use; a broken lock is reported',
  'data/classes.ts': 'class maps: parseClassMap checks every class (names, indices, colors)',
  'data/image_io.ts': 'COCO files: openCoco checks images, annotations and categories',
  'data/pairing.ts': 'dataset descriptions: isDescription and describedDataset check the keys',
  'dcin/bank.ts': 'bank metadata: each field checked against the bank\'s tensors',
  'train/checkpoint.ts': 'the optimizer state\'s metadata: Optimizer.loadStateDict checks it',
  'train/trainer.ts': 'metrics.jsonl lines cqseg itself wrote (their epoch field)',
  'experiment/runner.ts': 'the fingerprint and metrics.jsonl files cqseg itself wrote',
};

test('each JSON.parse in src/ is in a reader that checks what it parsed', () => {
  const src = path.resolve(__dirname, '..', '..', '..', 'src');
  const files = (fs.readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const found = files.filter((f) => /\bJSON\.parse\(/.test(fs.readFileSync(path.join(src, f), 'utf8'))).map((f) => f.split(path.sep).join('/')).sort();
  assert.deepEqual(found, Object.keys(CHECKED_PARSES).sort());
});

test('state.json and an ONNX preprocessing file: unknown keys and wrong types are refused naming the file and the key', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-schema-'));
  try {
    const state = { epoch: 2, globalStep: 20, best: { value: 0.5, epoch: 1 }, rng: 'AAAA', dir: 'checkpoint/epoch-2' };
    fs.mkdirSync(path.join(dir, 'checkpoint'));
    const file = path.join(dir, 'checkpoint', 'state.json');
    fs.writeFileSync(file, JSON.stringify(state));
    assert.deepEqual(readState(dir), state);
    fs.writeFileSync(file, JSON.stringify({ ...state, epochs: 3 }));
    assert.throws(() => readState(dir), (e: Error & { code?: string }) => e.code === 'ERR_CHECKPOINT' && e.message.includes(file) && /unknown key 'epochs' \(did you mean 'epoch'\?\)/.test(e.message));
    fs.writeFileSync(file, JSON.stringify({ ...state, globalStep: '20' }));
    assert.throws(() => readState(dir), /'globalStep' must be a non-negative integer, got "20" \(a string\)/);
    fs.writeFileSync(file, JSON.stringify({ ...state, dir: '../../etc' }));
    assert.throws(() => readState(dir), /'dir' must be checkpoint\/epoch-N/);
    const onnx = path.join(dir, 'm.json');
    fs.writeFileSync(onnx, JSON.stringify({ input: [224, 224], mean: [0, 0, 0], std: [1, 1, 1], ouputName: 'y' }));
    assert.throws(() => readJsonFile(onnx, ONNX_CONFIG, 'ONNX preprocessing file'), /ONNX preprocessing file '.*m\.json': unknown key 'ouputName' \(did you mean 'outputName'\?\)/);
    fs.writeFileSync(onnx, JSON.stringify({ input: [224], mean: [0, 0, 0], std: [1, 0, 1] }));
    assert.throws(() => readJsonFile(onnx, ONNX_CONFIG, 'ONNX preprocessing file'), /'input' must be \[H, W\], two positive integers, got \[224\] \(an array\); 'std\[1\]' must be a positive number, got 0 \(a number\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
