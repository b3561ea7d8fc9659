/**
 * Runs the experiment grid: trains every mode on the source domain (reusing finished
 * runs whose settings and data are unchanged), builds a reference bank per model
 * (reused likewise), evaluates every model on every domain under every DCIN column,
 * renders prediction grids, and writes results.json, report.md and report.html.
 * Every image's OOD distance and flag against each model's bank (dcin/ood.ts) goes into
 * results.json: per model and domain (`ood`), and on each cell's per-image rows.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Loader, SegDataset, assertDatasetOk, loadSample, openDataset, writeImage } from '../data';
import { BANK_VERSION, BnStats, Column, describeCalibration, domainBnStats, needsDomainStats, parseColumns, predictColumns, disposeBank, EncoderEmbedder, loadBank, OodScore, ReferenceBank, saveBank } from '../dcin';
import { exriStatsFor } from '../dcin/exri';
import { buildBankFor, encoderEmbedder, moveBank, openSession, overlay, Session } from '../dcin/session';
import { EvalResult, evaluateDatasetMany } from '../eval/evaluate';
import { RunInfo } from '../train/run';
import { Tensor, argmax, dispose, keep, moveTo, noGradAsync, resolveDevice, setNumThreads, tidy } from '../tensor';
import { DEFAULT_CONFIG, resolveConfig } from '../train/config';
import { EpochMetrics, train } from '../train/trainer';
import { Progress } from '../util/progress';
import { removeStaleTemps } from '../util/atomic';
import { acquireLock } from '../util/lock';
import { ensureFolder } from '../util/paths';
import { ColumnName, ExperimentConfig, ExperimentConfigError } from './config';
import { writeReports } from './report';
import { CellResult, ExperimentResults } from './results';

export type { CellResult, ExperimentResults, OodDomain } from './results';

type Log = (line: string) => void;

/**
 * Cheap fingerprint of a dataset: every file's relative name, size and mtime (a folder);
 * a JSON file's content and the name, size and mtime of every image and mask it names
 * (a dataset description or COCO file points at files elsewhere).
 */
export function listingHash(root: string): string {
  const h = crypto.createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = fs.statSync(p);
        h.update(`${path.relative(root, p)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  if (fs.statSync(root).isDirectory()) walk(root);
  else {
    h.update(fs.readFileSync(root));
    let items: SegDataset['items'] = [];
    try {
      items = openDataset(root).items;
    } catch {
      // not a dataset this can open alone (e.g. COCO with a separate image folder): the file's content only
    }
    for (const it of items) {
      for (const f of [it.image, it.mask, it.roi]) {
        if (f === undefined || !fs.existsSync(f)) continue;
        const st = fs.statSync(f);
        h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  }
  return h.digest('hex');
}

const hashOf = (v: unknown): string => crypto.createHash('sha256').update(JSON.stringify(v)).digest('hex');

function reusable(dir: string, fingerprint: string, needed: string): boolean {
  const f = path.join(dir, 'fingerprint.json');
  return fs.existsSync(f) && fs.existsSync(needed) && (JSON.parse(fs.readFileSync(f, 'utf8')) as { hash: string }).hash === fingerprint;
}

async function trainModels(cfg: ExperimentConfig, log: Log, reused: string[]): Promise<Record<string, string>> {
  const runs: Record<string, string> = {};
  const data = { train: listingHash(cfg.source.train), val: listingHash(cfg.source.val) };
  // validation Dice counts inside ROI masks since it picks the best epoch as the report scores it: such runs made before are retrained
  const valRoi = Boolean(openDataset(cfg.source.val).roi);
  for (const mode of cfg.modes) {
    const dir = path.join(cfg.out, 'models', mode);
    runs[mode] = dir;
    const tc = resolveConfig({ ...cfg.train, data: cfg.source.train, val: cfg.source.val, out: dir, mode, threads: cfg.threads });
    // without warm-up the settings hash as before cqgDiffWarmup existed: those runs stay reusable
    const { cqgDiffWarmup, ...same } = tc;
    const fp = hashOf({ tc: { ...same, ...(cqgDiffWarmup ? { cqgDiffWarmup } : {}), out: undefined }, data, ...(valRoi ? { validation: 'roi' } : {}) });
    if (reusable(dir, fp, path.join(dir, 'model.safetensors'))) {
      log(`model ${mode}: reusing ${dir} (settings and data unchanged)`);
      reused.push(mode);
      continue;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    log(`model ${mode}: training ${tc.encoder} at ${tc.size.join('x')}, ${tc.epochs} epochs`);
    await train(tc);
    fs.writeFileSync(path.join(dir, 'fingerprint.json'), JSON.stringify({ hash: fp }));
  }
  return runs;
}

async function bankFor(cfg: ExperimentConfig, mode: string, s: Session, emb: EncoderEmbedder, log: Log, reused: string[]): Promise<ReferenceBank> {
  const dir = path.join(cfg.out, 'banks', mode);
  const file = path.join(dir, 'bank.safetensors');
  // the bank format's version too: a bank of an older format (no OOD calibration) is rebuilt
  const fp = hashOf({ weights: s.weightsSha256, data: listingHash(cfg.source.train), embedder: emb.id, format: BANK_VERSION });
  if (reusable(dir, fp, file)) {
    log(`bank ${mode}: reusing ${file}`);
    reused.push(mode);
    return loadBank(file, { embedder: emb, verify: 'exists' });
  }
  const ds = openDataset(cfg.source.train, { requireMasks: true });
  const paths = ds.items.map((it) => it.image);
  const bar = new Progress(`bank ${mode}`, paths.length);
  const bank = await buildBankFor(paths, s, emb, { onProgress: (d) => bar.update(d) });
  fs.mkdirSync(dir, { recursive: true });
  saveBank(bank, file);
  fs.writeFileSync(path.join(dir, 'fingerprint.json'), JSON.stringify({ hash: fp }));
  log(`bank ${mode}: GRIS chose ${path.basename(bank.gris.path)}`);
  return bank;
}

interface Ctx {
  session: Session;
  info: RunInfo;
  bank: ReferenceBank;
  embedder: EncoderEmbedder;
  exriStats?: Tensor;
}

/**
 * Every column's probabilities for a batch, sharing forward passes (dcin/columns.ts);
 * tallies the references chosen and, with `oods`, appends the batch's OOD scores (in
 * image order). `domainStats`: the domain's BatchNorm statistics for 'adabn' columns.
 */
async function columnProbs(images: Tensor, cols: Column[], ctx: Ctx, domainStats?: BnStats, tally?: Map<ColumnName, CellResult>, oods?: OodScore[]): Promise<Map<string, Tensor>> {
  const byCol = await predictColumns(images, cols, {
    net: ctx.session.model, forward: ctx.session.forward, bank: ctx.bank, embedder: ctx.embedder, exriStats: ctx.exriStats, domainStats, ood: oods !== undefined,
  });
  if (oods) oods.push(...(byCol.values().next().value?.ood ?? []));
  const out = new Map<string, Tensor>();
  for (const [col, r] of byCol) {
    out.set(col, moveTo(r.probs, 'cpu')); // the metrics run on the CPU
    const cell = tally?.get(col);
    if (cell && r.lris && col === 'lris') {
      cell.lrisChoices ??= {};
      for (const i of r.lris) {
        const p = path.basename(ctx.bank.images[i].path);
        cell.lrisChoices[p] = (cell.lrisChoices[p] ?? 0) + 1;
      }
    }
    if (cell && r.auto && col === 'auto') {
      cell.autoChoices ??= {};
      for (const c of r.auto.choice) cell.autoChoices[c] = (cell.autoChoices[c] ?? 0) + 1;
    }
  }
  return out;
}

async function figures(cfg: ExperimentConfig, domains: Record<string, SegDataset>, ctxs: Record<string, Ctx>, log: Log): Promise<ExperimentResults['figures']> {
  const out: ExperimentResults['figures'] = {};
  const figMode = cfg.modes.includes('cqg') ? 'cqg' : cfg.modes[cfg.modes.length - 1];
  for (const [name, ds] of Object.entries(domains)) {
    out[name] = [];
    const n = Math.min(cfg.figureImages, ds.items.length);
    const info = ctxs[figMode].info;
    const palette = ctxs[figMode].session.palette;
    for (let i = 0; i < n; i++) {
      const s = await loadSample(ds, i, info.size);
      const stem = ds.items[i].stem;
      const dir = path.join(cfg.out, 'figures', name);
      fs.mkdirSync(dir, { recursive: true });
      const cells: Record<string, string> = {};
      const save = async (key: string, t: Tensor): Promise<void> => {
        const f = path.join(dir, `${stem}_${key}.png`);
        await writeImage(f, t);
        cells[key] = path.relative(cfg.out, f);
        t.dispose();
      };
      await save('image', s.image.clone());
      await save('truth', overlay(s.image, s.mask!, palette));
      const batch = tidy(() => s.image.permute([2, 0, 1]).unsqueeze(0).contiguous());
      const columns: [string, Ctx, Column][] = [];
      if (cfg.modes.includes('baseline') && figMode !== 'baseline') columns.push(['baseline:none', ctxs.baseline, parseColumns(['none'])[0]]);
      // the DCIN columns (test-time adaptation is in the tables, not the grids)
      for (const col of parseColumns(cfg.dcin)) if (!col.adapt && !col.flip) columns.push([`${figMode}:${col.name}`, ctxs[figMode], col]);
      for (const [key, ctx, col] of columns) {
        const probs = (await noGradAsync(() => columnProbs(batch, [col], ctx))).get(col.name)!;
        const lab = tidy(() => argmax(probs, 1).select(0, 0));
        probs.dispose();
        await save(key.replace(':', '_'), overlay(s.image, lab, palette));
        lab.dispose();
      }
      dispose([batch, s.image, s.mask]);
      out[name].push({ stem, cells });
    }
    log(`figures ${name}: ${n} images`);
  }
  return out;
}

/**
 * Runs the experiment into cfg.out, holding that folder's lock throughout (a second
 * experiment into the same folder is refused, naming the first; util/lock.ts).
 */
export async function runExperiment(cfg: ExperimentConfig, log: Log = (l) => process.stderr.write(l + '\n')): Promise<ExperimentResults> {
  const where = { what: 'experiment folder', flag: "'out'", makeError: (m: string) => new ExperimentConfigError(m) };
  ensureFolder(cfg.out, where);
  const lock = acquireLock(path.resolve(cfg.out), { ...where, command: `cqseg experiment (out ${cfg.out})` });
  try {
    removeStaleTemps(cfg.out, { depth: 2 }); // left by an experiment killed while writing
    return await runLocked(cfg, log);
  } finally {
    lock.release();
  }
}

async function runLocked(cfg: ExperimentConfig, log: Log): Promise<ExperimentResults> {
  const t0 = Date.now();
  if (cfg.threads) setNumThreads(cfg.threads);
  const device = resolveDevice(cfg.train.device ?? 'auto').device; // the training's device evaluates too
  const reused = { models: [] as string[], banks: [] as string[] };
  const runs = await trainModels(cfg, log, reused.models);
  const domains: Record<string, SegDataset> = { source: openDataset(cfg.source.val, { requireMasks: true }) };
  for (const [name, p] of Object.entries(cfg.targets)) domains[name] = openDataset(p, { requireMasks: true });
  for (const ds of Object.values(domains)) await assertDatasetOk(ds, { size: cfg.train.size ?? DEFAULT_CONFIG.size });
  const ctxs: Record<string, Ctx> = {};
  const cells: CellResult[] = [];
  const ood: ExperimentResults['ood'] = {};
  const curves: ExperimentResults['curves'] = {};
  const gris: Record<string, string> = {};
  let classNames: string[] = [];
  const stats: Tensor[] = [];
  try {
    for (const mode of cfg.modes) {
      const session = openSession(runs[mode], { device });
      const info = session.info;
      classNames = info.classNames;
      const embedder = encoderEmbedder(session.model, info, session.weightsSha256);
      const exriStats = parseColumns(cfg.dcin).some((c) => c.dcin === 'exri') ? keep(await exriStatsFor(cfg.exri, session)) : undefined;
      if (exriStats) stats.push(exriStats);
      const bank = moveBank(await bankFor(cfg, mode, session, embedder, log, reused.banks), device);
      ctxs[mode] = { session, info, bank, embedder, exriStats };
      gris[mode] = path.basename(bank.gris.path);
      curves[mode] = fs.readFileSync(path.join(runs[mode], 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
    }
    const cols = parseColumns(cfg.dcin);
    for (const [name, ds] of Object.entries(domains)) {
      for (const mode of cfg.modes) {
        const tally = new Map<ColumnName, CellResult>(cfg.dcin.map((col) => [col, { domain: name, model: mode, dcin: col } as CellResult]));
        const scores: OodScore[] = [];
        const c = ctxs[mode];
        const stats = needsDomainStats(cols)
          ? await domainBnStats(c.session.model, c.session.forward, new Loader(ds, { batchSize: 4, size: c.info.size, shuffle: false }).epoch(0), { disposeBatches: true })
          : undefined;
        let res: Map<string, EvalResult>;
        try {
          res = await evaluateDatasetMany(ds, (x) => columnProbs(x, cols, c, stats, tally, scores), cfg.dcin, classNames.length, {
            size: c.info.size, bootstrap: cfg.bootstrap, progress: `eval ${name} ${mode}`, skipCheck: true,
          });
        } finally {
          stats?.dispose();
        }
        const perImage = res.get(cfg.dcin[0])!.perImage;
        // the predictor sees the batches in the order of perImage (one call per batch, no shuffle)
        if (scores.length !== perImage.length) throw new Error(`OOD scores for ${scores.length} images, but ${perImage.length} evaluated on ${name}`);
        const flagged = scores.filter((sc) => sc.flagged === true).length;
        (ood[mode] ??= {})[name] = {
          images: scores.length, flagged, share: scores.length ? flagged / scores.length : 0,
          calibration: ctxs[mode].bank.ood ? describeCalibration(ctxs[mode].bank.ood!) : null,
          perImage: scores.map((sc, i) => ({ stem: perImage[i].stem, ...sc })),
        };
        for (const col of cfg.dcin) {
          const cell = Object.assign(tally.get(col)!, res.get(col)!);
          cell.perImage = cell.perImage.map((p, i) => ({ ...p, ood: scores[i].flagged }));
          cells.push(cell);
          log(`${name.padEnd(8)} ${mode.padEnd(8)} ${col.padEnd(16)} Dice ${(cell.dice * 100).toFixed(2)}`);
        }
        log(`${name.padEnd(8)} ${mode.padEnd(8)} OOD flagged ${flagged}/${scores.length}`);
      }
    }
    const figs = await figures(cfg, domains, ctxs, log);
    const results: ExperimentResults = {
      config: cfg, classNames, domains: Object.keys(domains), cells, curves, gris, figures: figs, reused, ood, seconds: (Date.now() - t0) / 1000, device,
    };
    writeReports(cfg.out, results);
    return results;
  } finally {
    for (const c of Object.values(ctxs)) {
      c.session.dispose();
      disposeBank(c.bank);
    }
    dispose(stats);
  }
}
