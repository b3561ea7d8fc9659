/**
 * The experiment's reports: results.json (every figure), report.md and report.html
 * (the paper's Table I/II layout: one table per domain, rows models, columns DCIN
 * configurations, the best of each row in bold, bootstrap 95% intervals; training
 * curves as SVG plots; Fig. 3-style prediction grids; the references GRIS and LRIS chose),
 * and the safety table of `auto`: per model and domain, auto minus none and auto minus
 * the best of none, GRIS, LRIS and full, each row met or missed against SAFETY_TARGETS,
 * with the share of images flagged out of distribution.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomicSync } from '../util/atomic';
import { EpochMetrics } from '../train/trainer';
import { columnTitle } from '../dcin/columns';
import { PAPER_COLUMNS } from './config';
import type { CellResult, ExperimentResults } from './results';

const pct = (v: number): string => (Number.isNaN(v) ? 'n/a' : (v * 100).toFixed(2));
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** A column's title: the paper's names, and * on what goes beyond the paper. */
const title = (c: string): string => (c === 'none' ? 'W/o DCIN' : `${columnTitle(c)}${PAPER_COLUMNS.includes(c) ? '' : '*'}`);

/**
 * What `auto` must achieve on every model and domain, in Dice points (%): at least
 * none + vsNone (normalising must not cost more than half a point where it does not
 * help), and at least the best of none, GRIS, LRIS and full + vsBest.
 */
export const SAFETY_TARGETS = { vsNone: -0.5, vsBest: -2 };
const SAFETY_CANDIDATES = ['none', 'gris', 'lris', 'full'];

export interface SafetyRow {
  domain: string;
  model: string;
  /** Dice % */
  auto: number;
  none: number;
  best: number;
  bestColumn: string;
  /** auto - none and auto - best, Dice points */
  vsNone: number;
  vsBest: number;
  met: boolean;
  /** auto-entropy - none, when that column was run */
  entropyVsNone?: number;
  /** OOD-flagged images of this model on this domain */
  flagged?: number;
  images?: number;
}

/** The safety rows (empty when the grid lacks the 'auto' or 'none' column). */
export function safetyRows(r: ExperimentResults): SafetyRow[] {
  const cols = r.config.dcin;
  if (!cols.includes('auto') || !cols.includes('none')) return [];
  const rows: SafetyRow[] = [];
  for (const domain of r.domains) {
    for (const model of r.config.modes) {
      const dice = (c: string): number | undefined => {
        const cell = r.cells.find((x) => x.domain === domain && x.model === model && x.dcin === c);
        return cell ? cell.dice * 100 : undefined;
      };
      const auto = dice('auto');
      const none = dice('none');
      if (auto === undefined || none === undefined) continue;
      let best = none;
      let bestColumn = 'none';
      for (const c of SAFETY_CANDIDATES) {
        const v = dice(c);
        if (v !== undefined && v > best) [best, bestColumn] = [v, c];
      }
      const vsNone = auto - none;
      const vsBest = auto - best;
      const o = r.ood?.[model]?.[domain];
      const ent = dice('auto-entropy');
      rows.push({
        domain, model, auto, none, best, bestColumn, vsNone, vsBest,
        met: vsNone >= SAFETY_TARGETS.vsNone - 1e-9 && vsBest >= SAFETY_TARGETS.vsBest - 1e-9,
        ...(ent !== undefined ? { entropyVsNone: ent - none } : {}),
        ...(o ? { flagged: o.flagged, images: o.images } : {}),
      });
    }
  }
  return rows;
}

/** Per domain, the OOD-flagged share over every model's images. */
function flaggedShares(r: ExperimentResults): { domain: string; flagged: number; images: number }[] {
  return r.domains.map((domain) => {
    const per = Object.values(r.ood ?? {}).map((m) => m[domain]).filter(Boolean);
    return { domain, flagged: per.reduce((a, o) => a + o.flagged, 0), images: per.reduce((a, o) => a + o.images, 0) };
  });
}

/** +1.23 / -1.23, with no '-0.00' for a value that rounds to zero. */
const signed = (v: number): string => {
  const t = Math.abs(v).toFixed(2);
  return `${v < 0 && Number(t) !== 0 ? '-' : '+'}${t}`;
};
const share = (f?: number, n?: number): string => (n ? `${f}/${n} (${((100 * f!) / n).toFixed(0)}%)` : 'n/a');

/** The safety table as rows of cells (header first), shared by the three renderings. */
function safetyTable(r: ExperimentResults): string[][] | null {
  const rows = safetyRows(r);
  if (rows.length === 0) return null;
  const ent = rows.some((x) => x.entropyVsNone !== undefined);
  const head = ['domain', 'model', 'auto', 'none', 'best', 'auto - none', 'auto - best', 'target', 'OOD flagged', ...(ent ? ['auto-entropy - none'] : [])];
  return [head, ...rows.map((x) => [
    x.domain, MODEL_TITLES[x.model] ?? x.model, x.auto.toFixed(2), x.none.toFixed(2), `${x.best.toFixed(2)} (${title(x.bestColumn)})`,
    signed(x.vsNone), signed(x.vsBest), x.met ? 'met' : 'MISSED', share(x.flagged, x.images),
    ...(ent ? [x.entropyVsNone === undefined ? '' : signed(x.entropyVsNone)] : []),
  ])];
}

const SAFETY_INTRO = `Targets for auto on every model and domain: auto - none >= ${SAFETY_TARGETS.vsNone} and ` +
  `auto - best of (none, GRIS, LRIS, GRIS+LRIS) >= ${SAFETY_TARGETS.vsBest} Dice points. auto leaves images inside the ` +
  'training distribution as they are and, for the others, takes the candidate agreeing most with the rest; ' +
  'OOD flagged = images beyond the bank\'s calibrated threshold.';

function safetySummary(r: ExperimentResults): string {
  const rows = safetyRows(r);
  const missed = rows.filter((x) => !x.met).length;
  const shares = flaggedShares(r).map((d) => `${d.domain} ${share(d.flagged, d.images)}`).join(', ');
  return `${rows.length - missed} of ${rows.length} rows met${missed ? `, ${missed} MISSED` : ''}. OOD-flagged share per domain (all models): ${shares}.`;
}
const MODEL_TITLES: Record<string, string> = { baseline: 'Baseline', aug: 'Augmentation', cqg: 'CQG (ours)' };

interface Table {
  domain: string;
  columns: string[];
  rows: { model: string; cells: (CellResult | undefined)[]; best: number }[];
}

function tables(r: ExperimentResults): Table[] {
  const columns = r.config.dcin;
  return r.domains.map((domain) => ({
    domain,
    columns,
    rows: r.config.modes.map((model) => {
      const cells = columns.map((c) => r.cells.find((x) => x.domain === domain && x.model === model && x.dcin === c));
      let best = -1;
      cells.forEach((c, i) => {
        if (c && (best < 0 || c.dice > cells[best]!.dice)) best = i;
      });
      return { model, cells, best };
    }),
  }));
}

function domainTitle(d: string): string {
  return d === 'source' ? 'source domain (validation)' : `target domain '${d}'`;
}

/** Which domains were scored inside region-of-interest masks (a sentence, or '' when none). */
function roiNote(r: ExperimentResults): string {
  const inRoi = r.domains.filter((d) => r.cells.some((c) => c.domain === d && c.roi));
  if (inRoi.length === 0) return '';
  const rest = r.domains.filter((d) => !inRoi.includes(d));
  return `Dice counts pixels inside the region-of-interest masks on ${inRoi.map(domainTitle).join(', ')}` +
    (rest.length ? ` (the whole image on ${rest.map(domainTitle).join(', ')}: no ROI masks there)` : '') + '.';
}

/** Validation Dice per model at every `step`-th epoch and the last, with the best epoch: the learning curves as a table. */
export function curveTable(r: ExperimentResults, maxColumns = 10): string[][] | null {
  const models = Object.keys(r.curves).filter((k) => r.curves[k].length > 0);
  if (models.length === 0) return null;
  const n = Math.max(...models.map((k) => r.curves[k].length));
  const step = Math.max(1, Math.ceil(n / maxColumns));
  const epochs = Array.from({ length: n }, (_, i) => i + 1).filter((e) => e === 1 || e % step === 0 || e === n);
  const rows = [['model', ...epochs.map((e) => `${e}`), 'best (epoch)']];
  for (const k of models) {
    const ms = r.curves[k];
    const at = (e: number): string => {
      const m = ms.find((x) => x.epoch === e);
      return m ? (m.valDice * 100).toFixed(1) : '';
    };
    const best = ms.reduce((a, b) => (b.valDice > a.valDice ? b : a));
    rows.push([MODEL_TITLES[k] ?? k, ...epochs.map(at), `${(best.valDice * 100).toFixed(2)} (${best.epoch})`]);
  }
  return rows;
}

function markdown(r: ExperimentResults): string {
  const out: string[] = ['# cqseg experiment report', ''];
  out.push(`Dice macro (%, torchmetrics convention) with bootstrap 95% intervals over images; the best of each row in **bold**. ` +
    `Columns marked * go beyond the paper. Classes: ${r.classNames.join(', ')}. Finished in ${r.seconds.toFixed(0)} s${r.device ? ` on ${r.device}` : ''}` +
    (r.reused.models.length ? `, reusing models ${r.reused.models.join(', ')}` : '') + '.', '');
  const roi = roiNote(r);
  if (roi) out.push(roi, '');
  for (const t of tables(r)) {
    out.push(`## ${domainTitle(t.domain)}`, '');
    out.push(`| model | ${t.columns.map((c) => title(c)).join(' | ')} |`);
    out.push(`|---|${t.columns.map(() => '---:').join('|')}|`);
    for (const row of t.rows) {
      const cells = row.cells.map((c, i) => {
        if (!c) return '';
        const v = pct(c.dice);
        const ci = c.diceCI ? ` (${pct(c.diceCI[0])}-${pct(c.diceCI[1])})` : '';
        return i === row.best ? `**${v}**${ci}` : `${v}${ci}`;
      });
      out.push(`| ${MODEL_TITLES[row.model] ?? row.model} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  const safety = safetyTable(r);
  if (safety) {
    out.push('## Safety of auto (beyond the paper)', '', SAFETY_INTRO, '');
    out.push(`| ${safety[0].join(' | ')} |`, `|${safety[0].map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
    for (const row of safety.slice(1)) out.push(`| ${row.join(' | ')} |`);
    out.push('', safetySummary(r), '');
  }
  const curves = curveTable(r);
  if (curves) {
    out.push('## Learning curves', '', 'Validation Dice (%, source domain) by epoch; report.html draws the losses too.', '');
    out.push(`| ${curves[0].join(' | ')} |`, `|---|${curves[0].slice(1).map(() => '---:').join('|')}|`);
    for (const row of curves.slice(1)) out.push(`| ${row.join(' | ')} |`);
    out.push('');
  }
  out.push('## References chosen', '');
  for (const [mode, g] of Object.entries(r.gris)) out.push(`- ${mode}: GRIS image ${g}`);
  for (const c of r.cells.filter((x) => x.dcin === 'lris' && x.lrisChoices)) {
    const top = Object.entries(c.lrisChoices!).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([p, n]) => `${p} (${n})`).join(', ');
    out.push(`- ${c.model} on ${c.domain}: LRIS most chosen ${top}`);
  }
  for (const c of r.cells.filter((x) => (x.dcin === 'auto' || x.dcin === 'auto-entropy') && x.autoChoices)) {
    out.push(`- ${c.model} on ${c.domain}: ${c.dcin} kept ${Object.entries(c.autoChoices!).map(([k, n]) => `${k} ${n}x`).join(', ')}`);
  }
  out.push('', '## Prediction grids', '');
  for (const [domain, rows] of Object.entries(r.figures)) {
    if (rows.length === 0) continue;
    const keys = Object.keys(rows[0].cells);
    out.push(`### ${domainTitle(domain)}`, '', `| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`);
    for (const row of rows) out.push(`| ${keys.map((k) => `![${k}](${row.cells[k]})`).join(' | ')} |`);
    out.push('');
  }
  return out.join('\n') + '\n';
}

/** A line chart as inline SVG: one polyline per series over epochs. */
function lineChart(title: string, series: Record<string, number[]>, yLabel: string): string {
  const W = 420;
  const H = 240;
  const m = { l: 48, r: 12, t: 28, b: 34 };
  const all = Object.values(series).flat().filter((v) => Number.isFinite(v));
  if (all.length === 0) return '';
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const n = Math.max(...Object.values(series).map((s) => s.length));
  const x = (i: number): number => m.l + (n <= 1 ? 0 : (i / (n - 1)) * (W - m.l - m.r));
  const y = (v: number): number => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
  const colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
  const lines = Object.entries(series).map(([name, vals], k) => {
    const pts = vals.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const dots = vals.map((v, i) => (Number.isFinite(v) ? `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${colors[k % colors.length]}"/>` : '')).join('');
    return `<polyline fill="none" stroke="${colors[k % colors.length]}" stroke-width="2" points="${pts}"/>${dots}` +
      `<text x="${W - m.r - 90}" y="${m.t + 14 * (k + 1)}" font-size="11" fill="${colors[k % colors.length]}">${esc(name)}</text>`;
  }).join('');
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => `<text x="${m.l - 4}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v.toFixed(3)}</text>`).join('');
  return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}">` +
    `<text x="${W / 2}" y="16" font-size="13" text-anchor="middle">${esc(title)}</text>` +
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#888"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#888"/>` +
    `${ticks}<text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">epoch (1..${n})</text>` +
    `<text x="12" y="${H / 2}" font-size="11" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text>${lines}</svg>`;
}

function html(r: ExperimentResults): string {
  const parts: string[] = [];
  parts.push(`<p>Dice macro (%, torchmetrics 1.4 convention) with bootstrap 95% intervals over images; the best of each row in <b>bold</b>. ` +
    `Columns marked * go beyond the paper (${PAPER_COLUMNS.map(title).join(', ')} are the paper's). Classes: ${esc(r.classNames.join(', '))}. ` +
    `Finished in ${r.seconds.toFixed(0)} s${r.device ? ` on ${esc(r.device)}` : ''}.</p>`);
  const roi = roiNote(r);
  if (roi) parts.push(`<p>${esc(roi)}</p>`);
  for (const t of tables(r)) {
    parts.push(`<h2>${esc(domainTitle(t.domain))}</h2><table><tr><th>model</th>${t.columns.map((c) => `<th>${esc(title(c))}</th>`).join('')}</tr>`);
    for (const row of t.rows) {
      const cells = row.cells.map((c, i) => {
        if (!c) return '<td></td>';
        const v = pct(c.dice);
        const ci = c.diceCI ? `<br><small>${pct(c.diceCI[0])}–${pct(c.diceCI[1])}</small>` : '';
        return `<td>${i === row.best ? `<b>${v}</b>` : v}${ci}</td>`;
      });
      parts.push(`<tr><th>${esc(MODEL_TITLES[row.model] ?? row.model)}</th>${cells.join('')}</tr>`);
    }
    parts.push('</table>');
  }
  const safety = safetyTable(r);
  if (safety) {
    parts.push(`<h2>Safety of auto</h2><p>${esc(SAFETY_INTRO)}</p><table><tr>${safety[0].map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`);
    for (const row of safety.slice(1)) parts.push(`<tr>${row.map((c, i) => (i < 2 ? `<th>${esc(c)}</th>` : `<td>${c === 'MISSED' ? `<b>${c}</b>` : esc(c)}</td>`)).join('')}</tr>`);
    parts.push(`</table><p>${esc(safetySummary(r))}</p>`);
  }
  const curve = (f: (m: EpochMetrics) => number): Record<string, number[]> =>
    Object.fromEntries(Object.entries(r.curves).map(([k, ms]) => [MODEL_TITLES[k] ?? k, ms.map(f)]));
  parts.push('<h2>Training curves</h2><div class="charts">' +
    lineChart('training loss', curve((m) => m.train.loss), 'loss') +
    lineChart('validation loss', curve((m) => m.valLoss), 'DiceCE') +
    lineChart('validation Dice (source)', curve((m) => m.valDice), 'Dice') + '</div>');
  parts.push('<h2>References chosen</h2><ul>');
  for (const [mode, g] of Object.entries(r.gris)) parts.push(`<li>${esc(MODEL_TITLES[mode] ?? mode)}: GRIS image <code>${esc(g)}</code></li>`);
  for (const c of r.cells.filter((x) => x.dcin === 'lris' && x.lrisChoices)) {
    const top = Object.entries(c.lrisChoices!).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([p, n]) => `<code>${esc(p)}</code> (${n})`).join(', ');
    parts.push(`<li>${esc(MODEL_TITLES[c.model] ?? c.model)} on ${esc(c.domain)}: LRIS most chosen ${top}</li>`);
  }
  for (const c of r.cells.filter((x) => (x.dcin === 'auto' || x.dcin === 'auto-entropy') && x.autoChoices)) {
    parts.push(`<li>${esc(MODEL_TITLES[c.model] ?? c.model)} on ${esc(c.domain)}: ${esc(c.dcin)} kept ${Object.entries(c.autoChoices!).map(([k, n]) => `${esc(k)} ${n}×`).join(', ')}</li>`);
  }
  parts.push('</ul><h2>Prediction grids</h2>');
  for (const [domain, rows] of Object.entries(r.figures)) {
    if (rows.length === 0) continue;
    const keys = Object.keys(rows[0].cells);
    parts.push(`<h3>${esc(domainTitle(domain))}</h3><table class="grid"><tr>${keys.map((k) => `<th>${esc(k)}</th>`).join('')}</tr>`);
    for (const row of rows) parts.push(`<tr>${keys.map((k) => `<td><img src="${esc(row.cells[k])}" alt="${esc(`${row.stem} ${k}`)}"></td>`).join('')}</tr>`);
    parts.push('</table>');
  }
  const script = `<script>
window.cqsegReport = { errors: [] };
window.addEventListener('error', function (e) { window.cqsegReport.errors.push(String(e.message || e.target && e.target.src)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  document.body.setAttribute('data-errors', String(window.cqsegReport.errors.length));
});
</script>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>cqseg experiment report</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}.grid td{padding:2px}.grid img{width:160px;display:block}
.charts{display:flex;flex-wrap:wrap;gap:12px}small{color:#666}</style>${script}</head>
<body><h1>cqseg experiment report</h1>${parts.join('\n')}</body></html>
`;
}

export function writeReports(out: string, r: ExperimentResults): void {
  fs.mkdirSync(out, { recursive: true });
  const slim = { ...r, cells: r.cells.map((c) => ({ ...c, confusion: c.confusion })) };
  writeFileAtomicSync(path.join(out, 'results.json'), JSON.stringify(slim, null, 1));
  writeFileAtomicSync(path.join(out, 'report.md'), markdown(r));
  writeFileAtomicSync(path.join(out, 'report.html'), html(r));
}

/** The tables as plain text for the terminal. */
export function textTables(r: ExperimentResults): string {
  const lines: string[] = [];
  for (const t of tables(r)) {
    lines.push(`${domainTitle(t.domain)} - Dice macro %`);
    const w = t.columns.map((c) => Math.max(10, title(c).length + 2));
    lines.push(['model'.padEnd(14), ...t.columns.map((c, i) => title(c).padStart(w[i]))].join(''));
    for (const row of t.rows) {
      lines.push([(MODEL_TITLES[row.model] ?? row.model).padEnd(14), ...row.cells.map((c, i) => `${c ? pct(c.dice) : ''}${i === row.best ? '*' : ' '}`.padStart(w[i]))].join(''));
    }
    lines.push('');
  }
  lines.push('(* best of the row)');
  const safety = safetyTable(r);
  if (safety) {
    const w = safety[0].map((_, i) => Math.max(...safety.map((row) => row[i].length)));
    lines.push('', 'safety of auto (Dice points)');
    for (const row of safety) lines.push(row.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    lines.push(safetySummary(r));
  }
  return lines.join('\n');
}
