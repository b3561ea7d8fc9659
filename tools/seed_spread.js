#!/usr/bin/env node
/**
 * The spread of an experiment's figures over several runs (seeds): for each given
 * results.json, Dice per model, domain and column; prints markdown tables of
 * mean (min-max) and the safety rows met per run. The README's demo spread comes from
 *
 *   for s in 0 1 2; do bin/cqseg demo --seed $s --out seeds/out-$s; done
 *   node tools/seed_spread.js [--columns none,full,auto] [--cells source:none,lq:none,lq:full] seeds/out-*\/experiment/results.json
 *
 * --columns keeps those columns in the per-domain tables; --cells prints one table of
 * domain:column cells instead (the README's).
 * Needs the compiled dist/ (npm run setup).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { safetyRows } = require(path.join(__dirname, '..', 'dist', 'src', 'experiment', 'report'));

const argv = process.argv.slice(2);
const ci = argv.indexOf('--columns');
const only = ci >= 0 ? argv.splice(ci, 2)[1].split(',') : null;
const ce = argv.indexOf('--cells');
const cellList = ce >= 0 ? argv.splice(ce, 2)[1].split(',').map((c) => c.split(':')) : null;
const files = argv;
if (files.length === 0) {
  process.stderr.write('usage: node tools/seed_spread.js RESULTS.json [RESULTS.json ...]\n');
  process.exit(2);
}
const runs = files.map((f) => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    process.stderr.write(`${f}: cannot read results (${e.message})\n`);
    process.exit(1);
  }
});
const TITLES = { baseline: 'Baseline', aug: 'Augmentation', cqg: 'CQG' };
const first = runs[0];
const dice = (r, model, domain, col) => {
  const c = r.cells.find((x) => x.model === model && x.domain === domain && x.dcin === col);
  return c ? c.dice * 100 : undefined;
};
const spread = (vals) => {
  const v = vals.filter((x) => x !== undefined);
  if (v.length === 0) return 'n/a';
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return `${mean.toFixed(1)} (${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)})`;
};
const seeds = runs.map((r) => r.config.train.seed);
process.stdout.write(`runs: ${files.length} (seeds ${seeds.join(', ')}); Dice macro %, mean (min-max)\n\n`);

if (cellList) {
  process.stdout.write(`| model | ${cellList.map(([d, c]) => `${d}: ${c}`).join(' | ')} |\n|---|${cellList.map(() => '---:').join('|')}|\n`);
  for (const model of first.config.modes) {
    process.stdout.write(`| ${TITLES[model] ?? model} | ${cellList.map(([d, c]) => spread(runs.map((r) => dice(r, model, d, c)))).join(' | ')} |\n`);
  }
  process.stdout.write('\n');
}
// one table per domain: rows models, columns every DCIN column of the grid
for (const domain of cellList ? [] : first.domains) {
  const cols = first.config.dcin.filter((c) => !only || only.includes(c));
  process.stdout.write(`### ${domain}\n\n| model | ${cols.join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|\n`);
  for (const model of first.config.modes) {
    const cells = cols.map((col) => spread(runs.map((r) => dice(r, model, domain, col))));
    process.stdout.write(`| ${TITLES[model] ?? model} | ${cells.join(' | ')} |\n`);
  }
  process.stdout.write('\n');
}

// safety: per model and domain, auto - none and auto - best over the runs, and how many met
process.stdout.write('### safety of auto\n\n| domain | model | auto - none | auto - best | met |\n|---|---|---:|---:|---:|\n');
const perRun = runs.map((r) => safetyRows(r));
for (const row of perRun[0]) {
  const same = perRun.map((rows) => rows.find((x) => x.domain === row.domain && x.model === row.model)).filter(Boolean);
  const sp = (vals) => {
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    const f = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;
    return `${f(mean)} (${f(Math.min(...vals))} to ${f(Math.max(...vals))})`;
  };
  process.stdout.write(`| ${row.domain} | ${TITLES[row.model] ?? row.model} | ${sp(same.map((x) => x.vsNone))} | ` +
    `${sp(same.map((x) => x.vsBest))} | ${same.filter((x) => x.met).length}/${same.length} |\n`);
}
const met = perRun.map((rows) => `${rows.filter((x) => x.met).length}/${rows.length}`);
process.stdout.write(`\nrows met per run: ${met.join(', ')}; seconds per run: ${runs.map((r) => Math.round(r.seconds)).join(', ')}\n`);
