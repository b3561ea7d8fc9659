/** `cqseg export`: the run's Unet as ONNX (src/export/onnx.ts), checked by onnxruntime; its DCIN data; the in-browser bundle (src/export/bundle.ts). */
import { disposeBank, openBank, openEmbedder, openSession } from '../../dcin/session';
import { DcinData, dcinData } from '../../export/dcin_data';
import { OPSET } from '../../export/onnx';
import { bundleFiles, exportRun, writeBundle } from '../../export/bundle';
import { verifyExport } from '../../export/verify';
import { writeFileAtomic } from '../../util/atomic';
import { parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg export --model RUN --out FILE.onnx [--fp16] [--no-verify] [--refs BANK --dcin FILE.json]
       cqseg export --model RUN --bundle DIR [--refs BANK] [--fp16] [--no-verify]

Writes the run's Unet (any encoder cqseg has) as an ONNX graph, opset ${OPSET}, eval mode,
batch norm folded into the convolutions:
  input   image      float32 (N, 3, H, W), pixel values 0..255 (normalised in the graph)
  outputs logits     float32 (N, classes, H, W)
          embedding  float32 (N, D): the deepest encoder feature averaged over space (LRIS's
                     embedding before its unit-length normalisation)
N, H and W are dynamic (H and W multiples of 32). Metadata: classes and colors, input size,
mean and std, encoder, cqseg version, the run's config.json. --fp16 stores the weights in
float16 (half the file; cast to float32 in the graph, so the results move by float16's
rounding of the weights: the check then allows 1e-2 of the range).
Unless --no-verify, onnxruntime-node runs the file on two random images at the run's size
and the largest difference from cqseg's own logits and embeddings is printed (exit 1 when
over 1e-4 of their range).
--refs BANK --dcin FILE.json also writes what DCIN needs without the training images: the
GRIS reference's and every reference's Lab statistics, the bank's unit-length embeddings
(base64 float32) and its OOD calibration (src/export/dcin_data.ts documents the format).
--bundle DIR writes a folder any static web server can host: a page that segments images
in the browser with onnxruntime-web (WebGPU where offered, else WebAssembly) and DCIN
none, gris, lris and full (with --refs), nothing sent anywhere; DIR/README.txt says how
to host it (src/export/bundle.ts lists its files). An earlier bundle in DIR is replaced.
`;

export const command: Command = {
  name: 'export',
  summary: "write a run's Unet as ONNX (batch norm folded, dynamic sizes, metadata), checked by onnxruntime",
  help: HELP,
  async run(args) {
    const { flags, positionals } = parseArgs(args, { model: {}, out: {}, bundle: {}, fp16: { type: 'boolean' }, 'no-verify': { type: 'boolean' }, refs: {}, dcin: {} });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const model = flags.model as string | undefined;
    const out = flags.out as string | undefined;
    const bundle = flags.bundle as string | undefined;
    if (!model) throw new UsageError('--model RUN is required');
    if (bundle === undefined && (!out || !/\.onnx$/i.test(out))) throw new UsageError(`--out FILE.onnx (or --bundle DIR) is required, got '${out ?? ''}'`);
    if (out !== undefined && !/\.onnx$/i.test(out)) throw new UsageError(`--out FILE.onnx, got '${out}'`);
    const dcinAlone = flags.dcin !== undefined && flags.refs === undefined;
    if (dcinAlone || (bundle === undefined && flags.refs !== undefined && flags.dcin === undefined)) throw new UsageError('--refs BANK and --dcin FILE.json go together (with --bundle DIR, --refs BANK alone puts dcin.json in the bundle)');
    if (flags.dcin !== undefined && !/\.json$/i.test(flags.dcin as string)) throw new UsageError(`--dcin FILE.json, got '${flags.dcin as string}'`);
    const s = openSession(model);
    try {
      let dcin: DcinData | undefined;
      if (flags.refs !== undefined) {
        const emb = await openEmbedder('encoder', s);
        const bank = openBank(flags.refs as string, { embedder: emb, verify: 'none' });
        try {
          dcin = dcinData(bank);
        } finally {
          disposeBank(bank);
          emb.dispose();
        }
        const where = (flags.dcin as string | undefined) ?? `${bundle}/dcin.json`;
        if (flags.dcin !== undefined) await writeFileAtomic(flags.dcin as string, JSON.stringify(dcin) + '\n');
        process.stdout.write(`${where}: DCIN data of ${dcin.references.length} references (GRIS ${dcin.gris.name}, embeddings ${dcin.embeddings.dims.join('x')}, OOD ${dcin.ood ? 'calibrated' : 'not calibrated'})\n`);
      }
      const t0 = Date.now();
      const bytes = exportRun(s, { fp16: flags.fp16 === true });
      const what = `Unet(${s.info.model.encoder}), ${s.info.classNames.length} classes, ${(bytes.length / 2 ** 20).toFixed(1)} MB, opset ${OPSET}, written in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
      if (out !== undefined) {
        await writeFileAtomic(out, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        process.stdout.write(`${out}: ${what}\n`);
      }
      if (bundle !== undefined) {
        writeBundle(bundle, bundleFiles(s, bytes, dcin));
        process.stdout.write(`${bundle}/: in-browser bundle (model.onnx: ${what}; modes ${dcin ? 'none, gris, lris, full' : 'none (give --refs BANK for DCIN)'}); host it with any static web server, see ${bundle}/README.txt\n`);
      }
      if (flags['no-verify'] === true) return 0;
      const a = await verifyExport(bytes, s);
      const limit = flags.fp16 === true ? 1e-2 : 1e-4;
      const ok = a.logits <= limit && a.embedding <= limit;
      process.stdout.write(`onnxruntime vs cqseg on [${a.shape.join(', ')}]: largest difference ${a.logits.toExponential(2)} of the logits' range, ` +
        `${a.embedding.toExponential(2)} of the embeddings' ${ok ? `(within ${limit.toExponential(0)})` : `(OVER ${limit.toExponential(0)}: do not use this file)`}\n`);
      return ok ? 0 : 1;
    } finally {
      s.dispose();
    }
  },
};
