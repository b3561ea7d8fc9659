/** `cqseg evaluate`: Dice (torchmetrics convention) of a run on labelled domains under DCIN configurations. */
import * as path from 'path';
import { Loader, openDataset, parseMaskMode } from '../../data';
import { ADABN_IMAGE_ALPHA, BnStats, Column, disposeBank, domainBnStats, Embedder, needsBank, needsDomainStats, oodReport, OodReport, OodScore, OOD_NOTES, parseColumns, predictColumns, ReferenceBank } from '../../dcin';
import { exriStatsFor } from '../../dcin/exri';
import { openBank, openEmbedder, openSession } from '../../dcin/session';
import { EvalResult, evaluateDatasetMany } from '../../eval/evaluate';
import { ArgumentError, dispose, moveTo, setNumThreads, Tensor } from '../../tensor';
import { removeStaleTemps, writeFileAtomicSync } from '../../util/atomic';
import { checkOutputFile } from '../../util/paths';
import { deviceFlag, DEVICE_HELP, intFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg evaluate --model RUN [--refs BANK] --data DOMAIN [--data DOMAIN ...] [options]

Evaluates a trained run on labelled datasets (folders with images/ + masks/, COCO .json,
or dataset descriptions .json) under DCIN configurations and test-time adaptation,
prints a table (Dice macro %, rows domains, columns configurations) and writes a JSON
with every figure.

Dice is torchmetrics 1.4's Dice(num_classes=C, average='macro') on argmax labels,
accumulated over each dataset (a class absent from both prediction and truth is left
out of the mean), with per-class Dice and IoU, per-image Dice and bootstrap 95%
intervals over images. With --refs, every image's distance to the training distribution
and its OOD flag (cqseg predict --help) are in the JSON (per image, and the flagged
count per domain).

options:
  --model RUN            run folder (config.json + model.safetensors)
  --refs BANK            reference bank (cqseg references) for gris, lris, full, full-robust,
                         auto, auto-entropy, and the OOD distances
  --data DOMAIN          a labelled dataset; repeat for several (name: the folder's name)
  --dcin LIST            comma-separated columns DCIN[+adabn|+adabn-image][+flip]:
                         DCIN from none,exri,gris,lris,full,full-robust,auto,auto-entropy
                         (none may be left out); beyond the paper, test-time adaptation:
                         adabn: BatchNorm statistics re-estimated on the whole domain
                           (one extra pass over its images, before any color transfer)
                         adabn-image: per image, half source, half the image's own
                           statistics (--alpha)
                         flip: mean of the probabilities over the image and its mirror
                         e.g. none,auto,adabn,flip,auto+adabn+flip
                         (default none,exri,gris,lris,full when --exri is given, else without exri)
  --alpha A              adabn-image's weight of the image's statistics (default 0.5)
  --exri IMAGE           the expert's reference image (for exri)
  --embedder SPEC        encoder (default) | onnx:FILE: must be the bank's embedder
  --mask-mode MODE       exact | threshold[:T] | nearest
  --original-resolution  compare at each image's own size (default: the model's input
                         size with masks resized by nearest, as the paper's reference);
                         images larger than the free memory allows (about 24 bytes a
                         pixel) are refused; CQSEG_MAX_PIXELS sets another limit
  --bootstrap N          resamples for the intervals (default 1000; 0 = none)
  --json FILE            where to write the results (default evaluation.json in RUN)
  --threads N            libtorch CPU threads
  ${DEVICE_HELP}
`;

export const command: Command = {
  name: 'evaluate',
  summary: 'Dice of a run on labelled domains under DCIN configurations (table + JSON)',
  help: HELP,
  async run(args) {
    const { flags } = parseArgs(args, {
      model: {}, refs: {}, data: { multiple: true }, dcin: {}, exri: {}, alpha: {}, embedder: {}, 'mask-mode': {},
      'original-resolution': { type: 'boolean' }, bootstrap: {}, json: {}, threads: {}, device: {},
    });
    const runDir = flags.model as string | undefined;
    const domains = (flags.data as string[] | undefined) ?? [];
    if (!runDir) throw new UsageError('--model RUN is required');
    if (domains.length === 0) throw new UsageError('at least one --data DOMAIN is required');
    const configs = ((flags.dcin as string | undefined) ?? (flags.exri ? 'none,exri,gris,lris,full' : 'none,gris,lris,full')).split(',').map((c) => c.trim());
    let columns: Column[];
    try {
      columns = parseColumns(configs);
    } catch (err) {
      if (err instanceof ArgumentError) throw new UsageError(`--dcin: ${err.message}`);
      throw err;
    }
    if (columns.some((c) => c.dcin === 'exri') && !flags.exri) throw new UsageError("configuration 'exri' needs --exri IMAGE");
    const needBank = needsBank(columns);
    if (needBank && !flags.refs) throw new UsageError(`configurations ${columns.filter((c) => needsBank([c])).map((c) => c.name).join(', ')} need --refs BANK`);
    const alpha = flags.alpha === undefined ? undefined : Number(flags.alpha);
    if (alpha !== undefined && !(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be a number from 0 to 1, got '${String(flags.alpha)}'`);
    const threads = intFlag(flags.threads, 'threads', 1);
    if (threads) setNumThreads(threads);
    const bootstrap = intFlag(flags.bootstrap, 'bootstrap', 0) ?? 1000;
    const jsonFile = (flags.json as string | undefined) ?? path.join(runDir, 'evaluation.json');
    checkOutputFile(jsonFile, { what: 'results file', flag: '--json', makeError: (m) => new UsageError(m, 1) });
    const device = deviceFlag(flags.device);
    const session = openSession(runDir, { device });
    let bank: ReferenceBank | undefined;
    let embedder: Embedder | undefined;
    let exriStats: Tensor | undefined;
    const results: { domain: string; dcin: string; result: EvalResult }[] = [];
    const oodByDomain: { domain: string; images: number; flagged: number; note?: string }[] = [];
    const adapted: { domain: string; images: number; layers: number }[] = [];
    try {
      if (flags.exri) exriStats = await exriStatsFor(flags.exri as string, session);
      if (needBank || flags.refs) {
        embedder = await openEmbedder((flags.embedder as string | undefined) ?? 'encoder', session);
        bank = openBank(flags.refs as string, { embedder, verify: 'exists', device });
      }
      const maskMode = flags['mask-mode'] ? parseMaskMode(flags['mask-mode'] as string) : undefined;
      for (const d of domains) {
        const ds = openDataset(d, { requireMasks: true, maskMode });
        const scores: OodScore[] = [];
        const s = session;
        let domainStats: BnStats | undefined;
        try {
          if (needsDomainStats(columns)) {
            domainStats = await domainBnStats(s.model, s.forward, new Loader(ds, { batchSize: 4, size: s.info.size, shuffle: false }).epoch(0), { disposeBatches: true });
          }
          const ctx = { net: s.model, forward: s.forward, bank, embedder, exriStats, domainStats, alpha, ood: bank !== undefined };
          const byCol = await evaluateDatasetMany(ds, async (x) => {
            const r = await predictColumns(x, columns, ctx); // on the session's device; the probabilities back for the metrics
            if (bank) scores.push(...(r.values().next().value?.ood ?? []));
            return new Map([...r].map(([c, v]) => [c, moveTo(v.probs, 'cpu')]));
          }, configs, s.info.model.classes, {
            size: s.info.size, originalResolution: Boolean(flags['original-resolution']), bootstrap, progress: `evaluate ${path.basename(d)}`,
          });
          // one predictor call per batch, in the order of perImage
          const n = byCol.get(configs[0])!.perImage.length;
          if (bank && scores.length !== n) throw new Error(`OOD scores for ${scores.length} images, but ${n} evaluated on ${d}`);
          const reports: OodReport[] = Array.from({ length: n }, (_, i) => oodReport(scores[i], bank?.ood));
          for (const c of configs) {
            const result = byCol.get(c)!;
            result.perImage = result.perImage.map((p, i) => ({ ...p, ood: reports[i] }));
            results.push({ domain: d, dcin: c, result });
          }
          oodByDomain.push({ domain: d, images: n, flagged: reports.filter((o) => o.flagged).length, ...(bank ? (bank.ood ? {} : { note: OOD_NOTES.noCalibration }) : { note: OOD_NOTES.noBank }) });
          if (domainStats) adapted.push({ domain: d, images: domainStats.images, layers: domainStats.layers.length });
        } finally {
          domainStats?.dispose();
        }
      }
    } finally {
      if (bank) disposeBank(bank);
      embedder?.dispose();
      dispose(exriStats);
      session.dispose();
    }
    const pct = (v: number): string => (Number.isNaN(v) ? 'n/a' : (v * 100).toFixed(2));
    const lines = [`Dice macro % of ${runDir} (bootstrap 95% interval)`, ['domain'.padEnd(20), ...configs.map((c) => c.padStart(22))].join('')];
    for (const d of domains) {
      const row = configs.map((c) => {
        const r = results.find((x) => x.domain === d && x.dcin === c)!.result;
        return `${pct(r.dice)}${r.diceCI ? ` (${pct(r.diceCI[0])}-${pct(r.diceCI[1])})` : ''}`.padStart(22);
      });
      lines.push([path.basename(path.resolve(d)).padEnd(20), ...row].join(''));
    }
    if (bank?.ood) lines.push(`OOD flagged: ${oodByDomain.map((o) => `${path.basename(path.resolve(o.domain))} ${o.flagged}/${o.images}`).join(', ')}`);
    removeStaleTemps(path.dirname(path.resolve(jsonFile)), { target: path.basename(jsonFile) });
    writeFileAtomicSync(jsonFile, JSON.stringify({ model: runDir, device, classNames: session.info.classNames, configs, results, ood: oodByDomain, ...(adapted.length ? { adabn: { weighting: 'image', domains: adapted } } : {}), ...(columns.some((c) => c.adapt === 'adabn-image') ? { adabnImageAlpha: alpha ?? ADABN_IMAGE_ALPHA } : {}) }, null, 1));
    process.stdout.write(`${lines.join('\n')}\n\nwrote ${jsonFile}\n`);
    return 0;
  },
};
