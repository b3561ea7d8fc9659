/**
 * Training config files checked against the schema: unknown keys (with the closest known
 * key), wrong types shown with their JSON type, non-object JSON, defaults kept, and a run
 * folder's config.json read back with the fields the trainer adds.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import {
  closestKey, ConfigError, DEFAULT_CONFIG, readRunConfig, resolveConfig, RUN_CONFIG, TRAIN_CONFIG, TrainConfigFile,
} from '../../src/train/config';
import { DEFAULT_CQG_WEIGHTS } from '../../src/train/losses';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** Writes `json` (text or a value) to a fresh config file. */
function configFile(json: unknown): string {
  const file = path.join(tmp, `c${n++}.json`);
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

const base: TrainConfigFile = { data: 'ds', out: 'run' };

/** resolveConfig must throw a ConfigError (code ERR_CONFIG) whose message matches every pattern. */
function refuses(file: string, ...patterns: RegExp[]): void {
  assert.throws(() => resolveConfig(base, file), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
    assert.equal(e.code, 'ERR_CONFIG');
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('unknown keys are refused, naming the key and the closest known key', () => {
  refuses(configFile({ batch_size: 4 }), /unknown key 'batch_size' \(did you mean 'batchSize'\?\)/);
  refuses(configFile({ epoch: 4 }), /unknown key 'epoch' \(did you mean 'epochs'\?\)/);
  // no close key: the known keys are listed (lr among them)
  refuses(configFile({ learningRate: 0.01 }), /unknown key 'learningRate'; known keys: .*\blr\b/);
  refuses(configFile({ cqgWeights: { gep: 1 } }), /unknown key 'cqgWeights\.gep' \(did you mean 'cqgWeights\.geo'\?\)/);
  refuses(configFile({ preprocessing: { mean: [0, 0, 0], std: [1, 1, 1], scale: 2 } }), /unknown key 'preprocessing\.scale'/);
  // the run folder's extra fields are not config keys
  refuses(configFile({ classNames: ['a', 'b'] }), /unknown key 'classNames'/);
  assert.equal(closestKey('ENCODER_WEIGHTS', Object.keys(TRAIN_CONFIG.shape)), 'encoderWeights');
  assert.equal(closestKey('zzz', Object.keys(TRAIN_CONFIG.shape)), undefined);
});

test('wrong types are refused with the value and its JSON type', () => {
  refuses(configFile({ epochs: '1' }), /'epochs' must be a positive integer, got "1" \(a string\)/);
  refuses(configFile({ epochs: 1.5 }), /'epochs' must be a positive integer, got 1\.5 \(a number\)/);
  refuses(configFile({ batchSize: 0 }), /'batchSize' must be a positive integer, got 0 \(a number\)/);
  refuses(configFile({ lr: null }), /'lr' must be a positive number, got null/);
  refuses(configFile({ size: '512x768' }), /'size' must be \[H, W\], two positive integers, got "512x768" \(a string\)/);
  refuses(configFile({ size: [64, 70] }), /'size' 64x70 is not divisible by 32.*64x64/);
  refuses(configFile({ mode: 'CQG' }), /'mode' must be one of baseline, aug, cqg, got "CQG" \(a string\)/);
  refuses(configFile({ maskMode: 'threshold:300' }), /'maskMode' "threshold:300".*1\.\.255/);
  refuses(configFile({ preprocessing: { mean: [0, 0, '0'], std: [1, 1, 1] } }), /'preprocessing\.mean\[2\]' must be a number, got "0" \(a string\)/);
  refuses(configFile({ valFraction: 1 }), /'valFraction' must be a number in \[0, 1\), got 1 \(a number\)/);
  // several problems are all named
  refuses(configFile({ epochs: '1', batch_size: 2 }), /'epochs'.*"1" \(a string\)/, /batch_size/);
});

test('a config that is not a JSON object is refused, never read as the defaults', () => {
  for (const [json, kind] of [['[]', 'an array'], ['[{"epochs": 1}]', 'an array'], ['"x"', 'a string'], ['3', 'a number'], ['null', 'null']] as const) {
    refuses(configFile(json), new RegExp(`must hold a JSON object of settings.*got .*${kind.replace(/[()]/g, '\\$&')}`));
  }
  refuses(configFile('{"epochs": 1,}'), /is not valid JSON/);
  assert.throws(() => resolveConfig(base, path.join(tmp, 'missing.json')), /missing\.json' cannot be read \(not found\)/);
});

test('a valid file overrides the defaults, flags override the file; defaults unchanged', () => {
  const file = configFile({ epochs: 3, encoder: 'efficientnet-test', cqgWeights: { geo: 0.5 }, maskMode: 'threshold:200' });
  const c = resolveConfig({ ...base, epochs: 4, lr: undefined }, file);
  assert.equal(c.epochs, 4);
  assert.equal(c.encoder, 'efficientnet-test');
  assert.equal(c.lr, DEFAULT_CONFIG.lr);
  assert.equal(c.maskMode, 'threshold:200');
  assert.deepEqual(c.cqgWeights, { ...DEFAULT_CQG_WEIGHTS, geo: 0.5 });
  assert.deepEqual(
    { valFraction: 0.2, maskMode: 'exact', mode: 'cqg', encoder: 'efficientnet-b2', size: [512, 768], batchSize: 2, epochs: 15, lr: 1e-3, seed: 0, cqgDiffWarmup: 0, bestBy: 'loss', maxStepsPerEpoch: 0 },
    Object.fromEntries(Object.entries(DEFAULT_CONFIG).filter(([k]) => !['cqgWeights', 'preprocessing'].includes(k))));
  // a required key missing from file and flags names itself
  assert.throws(() => resolveConfig({ out: 'run' }, configFile({})), /'data' is required: the training dataset/);
  // overrides in code are checked like the file
  assert.throws(() => resolveConfig({ ...base, epochs: '2' as unknown as number }), /training settings: 'epochs' must be a positive integer, got "2" \(a string\)/);
});

test("a run folder's config.json reads back through the schema, with the trainer's fields and no others", () => {
  const cfg = resolveConfig({ ...base, encoder: 'efficientnet-test', size: [64, 64] });
  const run = { ...cfg, model: { arch: 'unet', encoder: 'efficientnet-test', classes: 2 }, classNames: ['bg', 'fg'], size: cfg.size, preprocessing: cfg.preprocessing, libtorch: '2.1.0' };
  const file = configFile(run);
  const back = readRunConfig(file);
  assert.deepEqual(back, run);
  assert.ok(RUN_CONFIG.safeParse(run).success);
  assert.throws(() => readRunConfig(configFile({ ...run, lock: 1 })), /run config '.*': unknown key 'lock'/);
  assert.throws(() => readRunConfig(configFile({ ...run, model: { ...run.model, classes: '2' } })), /'model\.classes' must be a positive integer, got "2" \(a string\)/);
  assert.throws(() => readRunConfig(configFile([run])), /must hold a JSON object/);
  // a run made before cqgDiffWarmup existed still reads (it ran without warm-up)
  const { cqgDiffWarmup: _w, ...older } = run;
  assert.deepEqual(readRunConfig(configFile(older)), older);
  const { classNames: _drop, ...noNames } = run;
  assert.throws(() => readRunConfig(configFile(noNames)), /'classNames' is required/);
});

test('paths in a config file are relative to its folder, flags to the working directory; class map names stay names', () => {
  const dir = path.join(tmp, 'nested', 'configs');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'run.json');
  fs.writeFileSync(file, JSON.stringify({ data: '../data/train', val: '/abs/val', classes: 'classes.json', out: 'runs/a', encoderWeights: 'w.safetensors' }));
  const c = resolveConfig({}, file);
  assert.equal(c.data, path.join(tmp, 'nested', 'data', 'train'));
  assert.equal(c.val, '/abs/val');
  assert.equal(c.classes, path.join(dir, 'classes.json'));
  assert.equal(c.out, path.join(dir, 'runs', 'a'));
  assert.equal(c.encoderWeights, path.join(dir, 'w.safetensors'));
  // a flag (an override) is the user's working-directory path, as typed
  assert.equal(resolveConfig({ out: 'here' }, file).out, 'here');
  fs.writeFileSync(file, JSON.stringify({ data: 'd', out: 'o', classes: 'paper' }));
  assert.equal(resolveConfig({}, file).classes, 'paper');
});
