import { z } from 'zod';
import * as fs from 'fs';
import * as path from 'path';
import { SYNTH_MANIFEST, SYNTH_VERSION, writeSynth } from '../../data';
import { TTA_COLUMNS } from '../../dcin/columns';
import { DCIN_MODES } from '../../dcin/predict';
import { ExperimentConfig, validateExperiment, withDefaults } from '../../experiment/config';
import { textTables } from '../../experiment/report';
import { runExperiment } from '../../experiment/runner';
import { getNumThreads, setNumThreads } from '../../tensor';
import { acquireLock } from '../../util/lock';
import { ensureFolder } from '../../util/paths';
import { Command, UsageError } from '../command';
import { deviceFlag, intFlag, parseArgs } from '../args';

const HELP = `usage: cqseg demo [--out DIR] [--epochs N] [--count N] [--encoder NAME] [--seed S] [--device D]

The main job, end to end on data cqseg makes itself: writes the synthetic throat
benchmark (hq source domain; lq old-camera and sp smartphone target domains), trains
baseline, aug and cqg models on hq, builds reference banks, evaluates every model on
every domain with and without DCIN, and writes report.html / report.md / results.json.
Sized to finish in under 10 minutes on 2 CPU cores; re-running reuses what is finished.

options:
  --out DIR        default demo-output
  --epochs N       default 6
  --count N        hq images (default 96; lq and sp get 3/8 of it each)
  --encoder NAME   default resnet18 (the paper's efficientnet-b2 is ~4x slower on a CPU)
  --seed S         default 0
  --device D       auto | cpu | cuda | cuda:N: where training and evaluation run (default auto)
`;

export const command: Command = {
  name: 'demo',
  summary: 'synthetic domain-shift data, train baseline/aug/cqg, evaluate with DCIN, write a report',
  help: HELP,
  async run(args) {
    const { flags } = parseArgs(args, { out: {}, epochs: {}, count: {}, encoder: {}, seed: {}, device: {} });
    deviceFlag(flags.device); // checked and printed now, used by the experiment
    const out = path.resolve((flags.out as string | undefined) ?? 'demo-output');
    const count = intFlag(flags.count, 'count') ?? 96;
    const seed = intFlag(flags.seed, 'seed') ?? 0;
    const t0 = Date.now();
    if (getNumThreads() < 2 && require('os').availableParallelism?.() >= 2) setNumThreads(2);
    // one demo per folder: a second one writing the same synthetic data while the first
    // trains on it would change the first's figures
    const where = { what: 'demo folder', flag: '--out', makeError: (m: string) => new UsageError(m, 1) };
    ensureFolder(out, where);
    const lock = acquireLock(out, { ...where, command: `cqseg demo (out ${out})` });
    try {
      return await runDemo(out, flags, count, seed, t0);
    } finally {
      lock.release();
    }
  },
};

/** The synthetic data's manifest, or null where there is none or it does not parse. */
function readManifest(file: string): z.infer<typeof SYNTH_MANIFEST> | null {
  try {
    const r = SYNTH_MANIFEST.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

async function runDemo(out: string, flags: Record<string, unknown>, count: number, seed: number, t0: number): Promise<number> {
  const dataDir = path.join(out, 'data');
  const manifest = path.join(dataDir, 'manifest.json');
  const want = { seed, count, size: [128, 192] };
  // data written by another version of the generator, or a manifest that does not parse, is written anew
  const have = readManifest(manifest);
  if (have && have.version === SYNTH_VERSION && have.seed === want.seed && have.size.join() === want.size.join() && (have.counts['hq/train'] ?? 0) + (have.counts['hq/val'] ?? 0) === count) {
    process.stderr.write(`synthetic data: reusing ${dataDir}\n`);
  } else {
    process.stderr.write(`synthetic data: writing ${count} hq and ${2 * Math.round((count * 3) / 8)} target images to ${dataDir}\n`);
    await writeSynth({ out: dataDir, size: [128, 192], count, seed });
  }
  const firstImage = fs.readdirSync(path.join(dataDir, 'hq', 'train', 'images')).sort()[0];
  const cfg: ExperimentConfig = validateExperiment(withDefaults({
    out: path.join(out, 'experiment'),
    source: { train: path.join(dataDir, 'hq', 'train'), val: path.join(dataDir, 'hq', 'val') },
    targets: { lq: path.join(dataDir, 'lq'), sp: path.join(dataDir, 'sp') },
    train: { encoder: (flags.encoder as string | undefined) ?? 'resnet18', size: [128, 192], epochs: intFlag(flags.epochs, 'epochs') ?? 6, batchSize: 4, lr: 1e-3, seed, ...(flags.device ? { device: String(flags.device) } : {}) },
    // ExRI: an expert names a reference; the demo has no expert and takes the first hq training image (its name is in the report)
    exri: path.join(dataDir, 'hq', 'train', 'images', firstImage),
    // every DCIN mode and each test-time adaptation alone; their combinations with auto (5 to 20 forwards an image)
    // would take the demo past 10 minutes: `cqseg evaluate --dcin auto+adabn,auto+flip` runs them on the demo's models
    dcin: [...DCIN_MODES, ...TTA_COLUMNS.filter((c) => !c.startsWith('auto+'))],
    bootstrap: 1000,
    figureImages: 3,
  }), 'demo');
  const r = await runExperiment(cfg);
  process.stdout.write(`\n${textTables(r)}\n\nreport: ${path.join(cfg.out, 'report.html')} (also report.md, results.json)\n` +
    `demo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return 0;
}
