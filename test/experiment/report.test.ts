/** The experiment report on constructed results: the ROI sentence, the learning-curve table, the safety rows. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { withDefaults } from '../../src/experiment/config';
import { curveTable, safetyRows, writeReports } from '../../src/experiment/report';
import type { CellResult, ExperimentResults } from '../../src/experiment/results';
import type { EpochMetrics } from '../../src/train/trainer';

function cell(domain: string, model: 'baseline' | 'cqg', dcin: string, dice: number, roi: boolean): CellResult {
  return {
    domain, model, dcin, dice, roi, images: 2, diceCI: null, iou: dice, iouCI: null, dicePerClass: [dice, dice], iouPerClass: [dice, dice],
    perImage: [], confusion: [1, 0, 0, 1],
  };
}
const epochs = (vals: number[]): EpochMetrics[] => vals.map((v, i) => ({
  epoch: i + 1, globalStep: i, train: { loss: 1 - v }, valLoss: 1 - v, valDice: v, valDicePerClass: [v, v], seconds: 1, best: false,
}));

function results(): ExperimentResults {
  const config = withDefaults({ out: 'o', source: { train: 't', val: 'v' }, targets: { chase: 'c' }, modes: ['baseline', 'cqg'], dcin: ['none', 'gris', 'auto'] });
  const cells: CellResult[] = [];
  for (const [domain, roi] of [['source', true], ['chase', false]] as const) {
    cells.push(cell(domain, 'baseline', 'none', 0.8, roi), cell(domain, 'baseline', 'gris', 0.85, roi), cell(domain, 'baseline', 'auto', 0.84, roi));
    cells.push(cell(domain, 'cqg', 'none', 0.7, roi), cell(domain, 'cqg', 'gris', 0.69, roi), cell(domain, 'cqg', 'auto', 0.69, roi));
  }
  return {
    config, classNames: ['background', 'vessel'], domains: ['source', 'chase'], cells, gris: {}, figures: {}, reused: { models: [], banks: [] },
    ood: {}, seconds: 12, curves: { baseline: epochs([0.5, 0.6, 0.7, 0.8, 0.75]), cqg: epochs([0.4, 0.5, 0.6, 0.65, 0.7]) },
  };
}

test('the learning-curve table: epochs 1, every step-th and the last, with each model\'s best epoch', () => {
  const t = curveTable(results(), 2)!;
  assert.deepEqual(t[0], ['model', '1', '3', '5', 'best (epoch)']);
  assert.deepEqual(t[1], ['Baseline', '50.0', '70.0', '75.0', '80.00 (4)']);
  assert.deepEqual(t[2][0], 'CQG (ours)');
  assert.equal(t[2][4], '70.00 (5)');
});

test('report.md says where Dice counts ROI pixels only, shows the curves and marks safety rows', () => {
  const r = results();
  const rows = safetyRows(r);
  assert.deepEqual(rows.map((x) => [x.domain, x.model, x.met]), [['source', 'baseline', true], ['source', 'cqg', false], ['chase', 'baseline', true], ['chase', 'cqg', false]]);
  assert.ok(Math.abs(rows[0].vsBest - -1) < 1e-9);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-report-'));
  try {
    writeReports(dir, r);
    const md = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    assert.match(md, /Dice counts pixels inside the region-of-interest masks on source domain \(validation\) \(the whole image on target domain 'chase': no ROI masks there\)\./);
    assert.match(md, /## Learning curves/);
    assert.match(md, /\| source \| CQG \(ours\) \| 69\.00 \| 70\.00 \| 70\.00 \(W\/o DCIN\) \| -1\.00 \| -1\.00 \| MISSED \|/);
    assert.match(md, /\| Baseline \| 50\.0 \| 60\.0 \| 70\.0 \| 80\.0 \| 75\.0 \| 80\.00 \(4\) \|/);
    assert.match(fs.readFileSync(path.join(dir, 'report.html'), 'utf8'), /region-of-interest masks on source domain/);
    r.cells.forEach((c) => { c.roi = false; });
    writeReports(dir, r);
    assert.doesNotMatch(fs.readFileSync(path.join(dir, 'report.md'), 'utf8'), /region-of-interest/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
