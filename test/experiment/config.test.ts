/**
 * Experiment configs checked against the schema (no training): unknown keys in the file
 * and in its "train" section, wrong types, non-object JSON, defaults and relative paths.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_COLUMNS, ExperimentConfigError, loadExperimentConfig, withDefaults } from '../../src/experiment/config';
import { ConfigError } from '../../src/train/config';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-expcfg-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
for (const d of ['train', 'val', 'lq']) fs.mkdirSync(path.join(tmp, d));
fs.writeFileSync(path.join(tmp, 'ref.png'), '');

const good = { source: { train: 'train', val: 'val' }, targets: { lq: 'lq' }, exri: 'ref.png', train: { encoder: 'efficientnet-test', size: [64, 64] } };
let n = 0;
function configFile(json: unknown): string {
  const file = path.join(tmp, `e${n++}.json`);
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

function refuses(json: unknown, ...patterns: RegExp[]): void {
  const file = configFile(json);
  assert.throws(() => loadExperimentConfig(file), (e: unknown) => {
    assert.ok(e instanceof ExperimentConfigError && e instanceof ConfigError, String(e));
    assert.equal(e.code, 'ERR_EXPERIMENT_CONFIG');
    assert.ok(e.message.includes(file), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('a valid experiment config: defaults filled in, paths relative to the file', () => {
  const cfg = loadExperimentConfig(configFile(good));
  assert.equal(cfg.source.train, path.join(tmp, 'train'));
  assert.equal(cfg.targets.lq, path.join(tmp, 'lq'));
  assert.equal(cfg.out, path.join(tmp, 'experiment'));
  assert.deepEqual(cfg.modes, ['baseline', 'aug', 'cqg']);
  assert.deepEqual(cfg.dcin, DEFAULT_COLUMNS);
  assert.equal(cfg.bootstrap, 1000);
  assert.deepEqual(cfg.train, good.train);
});

test('unknown keys, at the top and in "train", are refused with the closest known key', () => {
  refuses({ ...good, figure_images: 2 }, /unknown key 'figure_images' \(did you mean 'figureImages'\?\)/);
  refuses({ ...good, train: { batch_size: 2 } }, /unknown key 'train\.batch_size' \(did you mean 'train\.batchSize'\?\)/);
  refuses({ ...good, train: { learningRate: 0.1 } }, /unknown key 'train\.learningRate'; known keys: .*\blr\b/);
  // data/out/mode are set per run, not in "train"
  refuses({ ...good, train: { mode: 'cqg' } }, /unknown key 'train\.mode'/);
  refuses({ ...good, source: { train: 'train', val: 'val', test: 'x' } }, /unknown key 'source\.test'/);
});

test('wrong types and values name the key, the value and its JSON type', () => {
  refuses({ ...good, train: { epochs: '1' } }, /'train\.epochs' must be a positive integer, got "1" \(a string\)/);
  refuses({ ...good, train: { size: [64, 70] } }, /'train\.size' 64x70 is not divisible by 32/);
  refuses({ ...good, modes: 'cqg' }, /'modes' must be a non-empty list of baseline, aug, cqg, got "cqg" \(a string\)/);
  refuses({ ...good, modes: [] }, /'modes' must be a non-empty list/);
  refuses({ ...good, dcin: ['none', 'grys'] }, /'dcin\[1\]' column 'grys': unknown DCIN mode 'grys' \(did you mean 'gris'\?\)/);
  refuses({ ...good, bootstrap: -1 }, /'bootstrap' must be a non-negative integer, got -1 \(a number\)/);
  refuses({ ...good, source: undefined }, /'source' is required/);
  refuses({ ...good, exri: '' }, /'exri' is required when 'dcin' holds 'exri'/);
  refuses({ ...good, targets: { lq: 'nowhere' } }, /dataset '.*nowhere' does not exist/);
});

test('an experiment config that is not a JSON object is refused', () => {
  refuses([good], /must hold a JSON object of settings.*\(an array\)/);
  refuses('"experiment"', /must hold a JSON object of settings.*\(a string\)/);
  assert.throws(() => loadExperimentConfig(path.join(tmp, 'none.json')), /none\.json' cannot be read \(not found\)/);
  // the in-code form is checked the same way
  assert.throws(() => withDefaults({ ...good, bootstrap: '5' } as never), /experiment config: 'bootstrap' must be a non-negative integer, got "5" \(a string\)/);
});
