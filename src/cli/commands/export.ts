/** `cqseg export --model RUN --out FILE.onnx`: the run's Unet as ONNX (src/export/onnx.ts), checked by onnxruntime. */
import * as fs from 'fs';
import * as path from 'path';
import { disposeBank, openBank, openEmbedder, openSession } from '../../dcin/session';
import { dcinData } from '../../export/dcin_data';
import { exportUnet, OPSET } from '../../export/onnx';
import { verifyExport } from '../../export/verify';
import { writeFileAtomic } from '../../util/atomic';
import { readJsonFile } from '../../util/schema';
import { z } from 'zod';
import { parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg export --model RUN --out FILE.onnx [--fp16] [--no-verify] [--refs BANK --dcin FILE.json]

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
`;

export const command: Command = {
  name: 'export',
  summary: "write a run's Unet as ONNX (batch norm folded, dynamic sizes, metadata), checked by onnxruntime",
  help: HELP,
  async run(args) {
    const { flags, positionals } = parseArgs(args, { model: {}, out: {}, fp16: { type: 'boolean' }, 'no-verify': { type: 'boolean' }, refs: {}, dcin: {} });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const model = flags.model as string | undefined;
    const out = flags.out as string | undefined;
    if (!model) throw new UsageError('--model RUN is required');
    if (!out || !/\.onnx$/i.test(out)) throw new UsageError(`--out FILE.onnx is required, got '${out ?? ''}'`);
    if ((flags.refs === undefined) !== (flags.dcin === undefined)) throw new UsageError('--refs BANK and --dcin FILE.json go together');
    if (flags.dcin !== undefined && !/\.json$/i.test(flags.dcin as string)) throw new UsageError(`--dcin FILE.json, got '${flags.dcin as string}'`);
    const s = openSession(model);
    try {
      if (flags.refs !== undefined) {
        const emb = await openEmbedder('encoder', s);
        const bank = openBank(flags.refs as string, { embedder: emb, verify: 'none' });
        try {
          const d = dcinData(bank);
          await writeFileAtomic(flags.dcin as string, JSON.stringify(d) + '\n');
          process.stdout.write(`${flags.dcin as string}: DCIN data of ${d.references.length} references (GRIS ${d.gris.name}, embeddings ${d.embeddings.dims.join('x')}, OOD ${d.ood ? 'calibrated' : 'not calibrated'})\n`);
        } finally {
          disposeBank(bank);
          emb.dispose();
        }
      }
      const t0 = Date.now();
      const pkg = readJsonFile(path.join(__dirname, '..', '..', '..', '..', 'package.json'), z.object({ version: z.string() }).passthrough(), 'package.json');
      const bytes = exportUnet(s.model, {
        classNames: s.info.classNames, colors: s.palette, size: s.info.size, mean: s.info.preprocessing.mean, std: s.info.preprocessing.std,
        version: pkg.version, metadata: { run_config: fs.readFileSync(path.join(model, 'config.json'), 'utf8') }, fp16: flags.fp16 === true,
      });
      await writeFileAtomic(out, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      process.stdout.write(`${out}: Unet(${s.info.model.encoder}), ${s.info.classNames.length} classes, ${(bytes.length / 2 ** 20).toFixed(1)} MB, opset ${OPSET}, written in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
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
