import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeSynth } from '../../src/data';
import { DCIN_MODES } from '../../src/dcin';
import { DEFAULT_COLUMNS, validateExperiment, withDefaults } from '../../src/experiment/config';
import { textTables } from '../../src/experiment/report';
import { ExperimentResults, runExperiment } from '../../src/experiment/runner';
import { findChromium } from '../helpers/browser';

test('the experiment on a tiny config writes every table and file, reuses models and banks, and its report renders in Chromium', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-exp-'));
  const data = path.join(root, 'data');
  await writeSynth({ out: data, size: [64, 96], count: 12, seed: 1 });
  const cfg = validateExperiment(withDefaults({
    out: path.join(root, 'exp'),
    source: { train: path.join(data, 'hq', 'train'), val: path.join(data, 'hq', 'val') },
    targets: { lq: path.join(data, 'lq'), sp: path.join(data, 'sp') },
    modes: ['baseline', 'cqg'],
    train: { encoder: 'efficientnet-test', size: [64, 96], epochs: 2, batchSize: 4, maxStepsPerEpoch: 1 },
    exri: path.join(data, 'hq', 'train', 'images', fs.readdirSync(path.join(data, 'hq', 'train', 'images')).sort()[0]),
    bootstrap: 50,
    figureImages: 1,
    threads: 1,
  }));
  const silent = (): void => undefined;
  const r = await runExperiment(cfg, silent);
  assert.deepEqual(r.domains, ['source', 'lq', 'sp']);
  assert.equal(r.cells.length, 3 * 2 * DEFAULT_COLUMNS.length);
  for (const c of r.cells) {
    assert.ok(c.dice >= 0 && c.dice <= 1, `${c.domain} ${c.model} ${c.dcin} Dice ${c.dice}`);
    assert.ok(c.diceCI && c.diceCI[0] <= c.diceCI[1]);
    assert.equal(c.perImage.length, c.images);
  }
  for (const f of ['results.json', 'report.md', 'report.html', 'models/baseline/model.safetensors', 'models/cqg/metrics.jsonl', 'banks/cqg/bank.safetensors']) {
    assert.ok(fs.existsSync(path.join(cfg.out, f)), `${f} exists`);
  }
  const md = fs.readFileSync(path.join(cfg.out, 'report.md'), 'utf8');
  for (const h of ['## source domain (validation)', "## target domain 'lq'", "## target domain 'sp'", '| Baseline |', '| CQG (ours) |', 'W/o DCIN', 'GRIS+LRIS', 'GRIS image', 'LRIS most chosen',
    '| AdaBN* |', '| AdaBN per image* |', '| flip TTA* |', '| auto + flip TTA* |']) {
    assert.ok(md.includes(h), `report.md has ${h}`);
  }
  assert.equal((md.match(/\*\*\d+\.\d+\*\*/g) ?? []).length, 3 * 2, 'one bold best per row');
  // the safety table of auto: one row per model and domain, met or MISSED, with the OOD-flagged share
  assert.ok(md.includes('## Safety of auto'), 'report.md has the safety table');
  assert.equal((md.match(/^\| (source|lq|sp) \| (Baseline|CQG \(ours\)) \|.*\| (met|MISSED) \| \d+\/\d+ \(\d+%\) \|/gm) ?? []).length, 3 * 2);
  assert.match(md, /OOD-flagged share per domain \(all models\): source \d+\/\d+ \(\d+%\), lq \d+\/\d+/);
  assert.match(textTables(r), /safety of auto/);
  const saved = JSON.parse(fs.readFileSync(path.join(cfg.out, 'results.json'), 'utf8')) as ExperimentResults;
  for (const model of ['baseline', 'cqg']) {
    for (const d of ['source', 'lq', 'sp']) {
      const o = saved.ood[model][d];
      assert.equal(o.perImage.length, o.images);
      assert.equal(o.flagged, o.perImage.filter((p) => p.flagged === true).length);
      assert.match(o.calibration!, /99th percentile/);
    }
  }
  for (const c of saved.cells) assert.deepEqual(c.perImage.map((p) => p.ood), saved.ood[c.model][c.domain].perImage.map((p) => p.flagged), `${c.model} ${c.domain} ${c.dcin}`);
  const figs = Object.values(r.figures).flat().flatMap((row) => Object.values(row.cells));
  // the grids show the DCIN columns; test-time adaptation is in the tables only
  assert.equal(figs.length, 3 * (2 + 1 + DCIN_MODES.length));
  for (const f of figs) assert.ok(fs.existsSync(path.join(cfg.out, f)), `figure ${f}`);

  const again = await runExperiment(cfg, silent);
  assert.deepEqual(again.reused, { models: ['baseline', 'cqg'], banks: ['baseline', 'cqg'] });
  assert.deepEqual(again.cells.map((c) => c.dice), r.cells.map((c) => c.dice), 'same numbers from reused models');

  const chromium = findChromium();
  assert.ok(chromium, 'Chromium is needed for this test: apt-get install chromium (npm test installs it when run as root)');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-chromium-'));
  const run = spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom',
    `file://${path.join(cfg.out, 'report.html')}`], { encoding: 'utf8', timeout: 60000 });
  assert.equal(run.status, 0, run.stderr);
  const body = /<body[^>]*>/.exec(run.stdout)?.[0] ?? '';
  const images = /data-images="(\d+)\/(\d+)"/.exec(body);
  assert.ok(images, `the page's load script ran: ${body}`);
  assert.equal(images![1], images![2], `every image loaded (${images![0]})`);
  assert.equal(Number(images![2]), figs.length);
  assert.match(body, /data-errors="0"/);
});
