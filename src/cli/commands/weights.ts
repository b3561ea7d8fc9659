/**
 * `cqseg weights inspect FILE`: the tensors of a checkpoint (torch.save's .pth/.pt/.bin or
 * safetensors) and which name map fits which Unet, with what would be missing or unused.
 * `cqseg weights convert IN OUT.safetensors [--map NAME]`: the same tensors as
 * safetensors, written atomically; with --map, renamed to cqseg's Unet names.
 */
import * as fs from 'fs';
import * as path from 'path';
import { inspectWeights, ImportPlan, weightCandidates, WEIGHT_MAPS } from '../../models/weights';
import { WeightsError, readWeightsFile, writeSafetensors } from '../../nn';
import { dispose } from '../../tensor';
import { encoderNames } from '../../models/registry';
import { intFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg weights inspect FILE [--encoder NAME] [--classes N] [--summary] [--json]
       cqseg weights convert IN OUT.safetensors [--map NAME] [--encoder NAME] [--classes N]

FILE and IN: a PyTorch checkpoint as torch.save writes it (.pth, .pt, .bin; PyTorch >= 1.6's
zip format, read by libtorch's own unpickler, which runs no code): a bare state dict or a dict
holding one under state_dict, model_state_dict, model, module, net or network; fp16 and bf16
tensors are fine. Or a .safetensors file.

inspect lists the tensors of a checkpoint (name, dtype, shape), guesses the Unet it
belongs to (encoder from the block layout, classes from segmentation_head.0.weight) and,
for each name map, how it fits: tensors mapped, missing, mis-shaped, unused.

Name maps:
${WEIGHT_MAPS.map((m) => `  ${m.id.padEnd(25)} ${m.description}`).join('\n')}

Options:
  --encoder NAME   check this encoder only (${encoderNames().join(', ')})
  --classes N      check a Unet with N classes (default: from the file, else 1)
  --summary        skip the tensor list
  --json           print one JSON object instead of text

convert writes IN's state dict as OUT.safetensors (temp file, then rename); with --map
NAME (auto: the best fitting), the tensors take cqseg's Unet names, so that OUT loads with
the 'smp' map.

Exit status 0 when some map fits (inspect) or OUT is written (convert), 1 when no map fits,
2 on bad arguments.
`;

const FLAGS = { encoder: {}, classes: {}, summary: { type: 'boolean' }, json: { type: 'boolean' } } as const;

function parse(args: string[]): { file: string; encoderName?: string; classes?: number; summary: boolean; json: boolean } {
  const { flags, positionals } = parseArgs(args, FLAGS);
  const encoderName = flags.encoder as string | undefined;
  if (encoderName !== undefined && !encoderNames({ includeTest: true }).includes(encoderName)) {
    throw new UsageError(`--encoder must be one of ${encoderNames().join(', ')}, got '${encoderName}'`);
  }
  if (positionals.length === 0) throw new UsageError('missing FILE (a .pth/.pt/.bin or .safetensors checkpoint)');
  if (positionals.length > 1) throw new UsageError(`one FILE only, got '${positionals[0]}' and '${positionals[1]}'`);
  return { file: positionals[0], encoderName, classes: intFlag(flags.classes, 'classes', 1), summary: flags.summary === true, json: flags.json === true };
}

const some = (xs: string[], n = 6): string => (xs.length === 0 ? '' : `: ${xs.slice(0, n).join(', ')}${xs.length > n ? `, ... (${xs.length} in all)` : ''}`);

function describePlan(p: ImportPlan): string[] {
  const head = p.fits ? 'FITS' : 'does not fit';
  const lines = [`    ${p.map.padEnd(25)} ${head}: ${p.pairs.length} tensors mapped${p.strippedPrefix ? ` (prefix '${p.strippedPrefix}' dropped)` : ''}`];
  if (p.pairs.length === 0 && !p.fits) return lines;
  lines.push(`      missing ${p.missing.length}${some(p.missing)}`);
  if (p.mismatched.length) lines.push(`      shape mismatch ${p.mismatched.length}${some(p.mismatched, 3)}`);
  lines.push(`      unused in the file ${p.unused.length}${some(p.unused)}`);
  if (p.notCovered.length) lines.push(`      left at initialisation (not in this map) ${p.notCovered.length}${some(p.notCovered, 3)}`);
  return lines;
}

const CONVERT_FLAGS = { map: {}, encoder: {}, classes: {} } as const;

async function convert(args: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(args, CONVERT_FLAGS);
  if (positionals.length !== 2) throw new UsageError(`convert takes IN and OUT.safetensors, got ${positionals.length} file(s)`);
  const [input, output] = positionals;
  if (!/\.safetensors$/i.test(output)) throw new UsageError(`OUT must end in .safetensors, got '${output}'`);
  if (!fs.existsSync(input)) throw new UsageError(`${input}: no such file`, 1);
  const mapId = flags.map as string | undefined;
  if (mapId !== undefined && mapId !== 'auto' && !WEIGHT_MAPS.some((m) => m.id === mapId)) {
    throw new UsageError(`--map must be auto or one of ${WEIGHT_MAPS.map((m) => m.id).join(', ')}, got '${mapId}'`);
  }
  const encoderName = flags.encoder as string | undefined;
  if (encoderName !== undefined && !encoderNames({ includeTest: true }).includes(encoderName)) {
    throw new UsageError(`--encoder must be one of ${encoderNames().join(', ')}, got '${encoderName}'`);
  }
  const w = readWeightsFile(input);
  try {
    let out = w.tensors;
    let note = 'names as in the file';
    if (mapId !== undefined) {
      const candidates = weightCandidates(new Map([...w.tensors].map(([n, t]) => [n, t.shape])), { encoderName, classes: intFlag(flags.classes, 'classes', 1) });
      const fit = candidates.flatMap((c) => c.plans.filter((p) => p.fits && (mapId === 'auto' || p.map === mapId)).map((p) => ({ c, p })))[0];
      if (!fit) throw new WeightsError(input, `map '${mapId}' fits no Unet this file may be for (${candidates.map((c) => c.encoderName).join(', ') || 'no encoder layout recognised'}); run \`cqseg weights inspect ${input}\``);
      out = new Map(fit.p.pairs.map(([to, from]) => [to, w.tensors.get(from)!]));
      note = `names of Unet(${fit.c.encoderName}, classes ${fit.c.classes}) through map '${fit.p.map}'`;
    }
    writeSafetensors(output, out, { source: path.basename(input), format: w.format, ...(w.container ? { container: w.container } : {}) });
    process.stdout.write(`${output}: ${out.size} tensors from ${input} (${w.format}${w.container ? `, under '${w.container}'` : ''}), ${note}\n`);
    return 0;
  } finally {
    dispose([...w.tensors.values()]);
  }
}

async function run(args: string[]): Promise<number> {
  const sub = args[0];
  if (sub === 'convert') return convert(args.slice(1));
  if (sub !== 'inspect') throw new UsageError(`unknown sub-command '${sub ?? ''}'; use 'inspect' or 'convert' (cqseg weights --help)`);
  const o = parse(args.slice(1));
  if (!fs.existsSync(o.file)) throw new UsageError(`${o.file}: no such file`, 1);
  const info = inspectWeights(o.file, { encoderName: o.encoderName, classes: o.classes });
  const fits = info.candidates.some((c) => c.plans.some((p) => p.fits));
  if (o.json) {
    process.stdout.write(JSON.stringify({ file: o.file, format: info.format, container: info.container, others: info.others, tensors: info.tensors, candidates: info.candidates, fits }) + '\n');
    return fits ? 0 : 1;
  }
  const values = info.tensors.reduce((n, t) => n + t.shape.reduce((a, s) => a * s, 1), 0);
  const kind = info.format === 'safetensors' ? 'safetensors' : `PyTorch checkpoint, ${info.container ? `state dict under '${info.container}'` : 'a bare state dict'}`;
  const out: string[] = [`${o.file}: ${kind}; ${info.tensors.length} tensors, ${values.toLocaleString('en-US')} values`];
  if (info.others.length) out.push(`  also held (not weights): ${info.others.slice(0, 8).join(', ')}${info.others.length > 8 ? ', ...' : ''}`);
  if (!o.summary) {
    const w = Math.max(4, ...info.tensors.map((t) => t.name.length));
    for (const t of info.tensors) out.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(4)}  [${t.shape.join(', ')}]`);
  }
  out.push('');
  if (info.candidates.length === 0) {
    out.push('No known encoder layout found (EfficientNet blocks or ResNet layers); try --encoder NAME.');
  }
  for (const c of info.candidates) {
    out.push(`Unet(encoder ${c.encoderName}, classes ${c.classes}, decoder [${c.decoderChannels.join(', ')}]):`);
    for (const p of c.plans) out.push(...describePlan(p));
  }
  out.push('', fits ? 'Load with importWeights(model, FILE) (map chosen automatically).' : 'No name map fits.');
  process.stdout.write(out.join('\n') + '\n');
  return fits ? 0 : 1;
}

export const command: Command = {
  name: 'weights',
  summary: 'inspect or convert a checkpoint (.pth/.pt/.bin or safetensors): tensors, fitting name map, missing/unused',
  help: HELP,
  run,
};
