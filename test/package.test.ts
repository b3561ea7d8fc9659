/** The package's entry point: package.json's "main" and "types" exist after the build and expose every layer. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

test('package.json main resolves to the built entry point, with each layer as a namespace', () => {
  const root = path.resolve(__dirname, '..', '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string; types: string };
  for (const f of [pkg.main, pkg.types]) assert.ok(fs.existsSync(path.join(root, f)), `${f} exists`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const cqseg = require(path.join(root, pkg.main)) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(cqseg).sort(), ['augment', 'color', 'data', 'dcin', 'evaluation', 'experiment', 'experimentConfig', 'losses', 'metrics', 'models', 'nn', 'random', 'runs', 'tensor', 'train', 'trainConfig']);
  for (const [ns, name] of [['tensor', 'tidy'], ['dcin', 'predictColumns'], ['dcin', 'grisSelect'], ['models', 'Unet'], ['train', 'train'], ['losses', 'cqgLoss'], ['evaluation', 'evaluateDataset'], ['experiment', 'runExperiment'], ['random', 'stream']]) {
    assert.equal(typeof cqseg[ns][name], 'function', `${ns}.${name}`);
  }
});
