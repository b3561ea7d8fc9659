/** `cqseg references`: builds the DCIN reference bank of a training set for one trained model. */
import * as path from 'path';
import { openDataset } from '../../data';
import { describeCalibration, Embedder, saveBank, disposeBank } from '../../dcin';
import { buildBankFor, openEmbedder, openSession, Session } from '../../dcin/session';
import { setNumThreads } from '../../tensor';
import { removeStaleTemps } from '../../util/atomic';
import { checkOutputFile } from '../../util/paths';
import { Progress } from '../../util/progress';
import { deviceFlag, DEVICE_HELP, intFlag, numFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg references --data TRAIN --model RUN [--embedder encoder|onnx:FILE] --out BANK

Builds the reference bank DCIN needs at prediction time, from the training images:
every image's path and sha256, its 8x8x8 RGB histogram, its Lab statistics and its
embedding, the GRIS choice (the image whose histogram is nearest to all others), and
the embedder's identity, and the out-of-distribution calibration: each training
image's distance to its k nearest other training images (embeddings: 1 - cosine; Lab
statistics: standardised Euclidean), and as thresholds the --ood-quantile of those
leave-one-out distances, with k and the method's name. Images are read at the run's
input size (lanczos3), as the model saw them in training. A bank is refused later when
one of its images changed or disappeared, or when it is used with another embedder
(another model's weights).

options:
  --data TRAIN          training set: folder with images/ (+ masks/), COCO .json, a
                        dataset description .json, or a list of images (folder, .txt, .csv)
  --images DIR          COCO image folder
  --model RUN           trained run folder (config.json + model.safetensors)
  --embedder SPEC       'encoder' (default: the run's encoder, global-average pooled) or
                        'onnx:FILE' (an ONNX image model with FILE.json beside it:
                        { "input": [H, W], "mean": [r,g,b], "std": [r,g,b] })
  --out BANK            bank file to write (safetensors; written atomically)
  --ood-quantile Q      quantile of the training images' leave-one-out distances taken
                        as the OOD threshold (default 0.99; lower flags more images)
  --ood-k K             nearest neighbours averaged (default 3, at most images - 1)
  --threads N           libtorch CPU threads
  ${DEVICE_HELP}
  --quiet               no progress bar
`;

export const command: Command = {
  name: 'references',
  summary: 'build the DCIN reference bank (GRIS, LRIS embeddings) of a training set',
  help: HELP,
  async run(args) {
    const { flags, positionals } = parseArgs(args, {
      data: {}, images: {}, model: {}, embedder: {}, out: {}, threads: {}, device: {}, quiet: { type: 'boolean' }, 'ood-quantile': {}, 'ood-k': {},
    });
    const quantile = numFlag(flags['ood-quantile'], 'ood-quantile');
    if (quantile !== undefined && !(quantile > 0 && quantile <= 1)) throw new UsageError(`--ood-quantile must be in (0, 1], got '${String(flags['ood-quantile'])}'`);
    const k = intFlag(flags['ood-k'], 'ood-k', 1);
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see cqseg references --help)`);
    for (const k of ['data', 'model', 'out']) if (typeof flags[k] !== 'string') throw new UsageError(`--${k} is required (see cqseg references --help)`);
    const threads = intFlag(flags.threads, 'threads');
    if (threads !== undefined) setNumThreads(threads);
    const out = flags.out as string;
    checkOutputFile(out, { what: 'bank file', flag: '--out', makeError: (m) => new UsageError(m, 1) });
    // a references killed while writing the bank leaves its temp file beside it
    removeStaleTemps(path.dirname(path.resolve(out)), { target: path.basename(out) });
    let session: Session | undefined;
    let embedder: Embedder | undefined;
    try {
      const ds = openDataset(flags.data as string, { images: flags.images as string | undefined });
      const missing = ds.issues.filter((i) => i.code === 'missing-image');
      if (missing.length > 0) throw new UsageError(`${missing[0].message}: ${missing[0].files.slice(0, 5).join(', ')}`, 1);
      const paths = ds.items.map((it) => it.image);
      if (paths.length === 0) throw new UsageError(`training set '${flags.data}' holds no images`, 1);
      session = openSession(flags.model as string, { device: deviceFlag(flags.device, Boolean(flags.quiet)) });
      embedder = await openEmbedder((flags.embedder as string | undefined) ?? 'encoder', session);
      const bar = flags.quiet ? undefined : new Progress('references', paths.length);
      const bank = await buildBankFor(paths, session, embedder, { onProgress: (d) => bar?.update(d), ood: { quantile, k } });
      try {
        saveBank(bank, out);
        process.stdout.write(`wrote ${out}: ${bank.images.length} images, GRIS ${path.basename(bank.gris.path)} ` +
          `(mean histogram distance ${bank.gris.meanDistance.toFixed(4)}), embedder ${bank.embedder.split('|')[0]}\n`);
        const c = bank.ood;
        process.stdout.write(c
          ? `OOD thresholds: embedding ${c.embedding.threshold.toPrecision(3)}, color ${c.color.threshold.toPrecision(3)} (${describeCalibration(c)})\n`
          : 'OOD thresholds: none (a bank of one image has nothing to calibrate against): distances only, no flag\n');
      } finally {
        disposeBank(bank);
      }
      return 0;
    } finally {
      embedder?.dispose();
      session?.dispose();
    }
  },
};
