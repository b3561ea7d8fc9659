/**
 * `cqseg weights inspect FILE`: the tensors of a safetensors checkpoint and which name
 * map fits which Unet, with what would be missing or unused.
 */
import * as fs from 'fs';
import { inspectWeights, ImportPlan, WEIGHT_MAPS } from '../../models/weights';
import { encoderNames } from '../../models/registry';
import { intFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg weights inspect FILE [--encoder NAME] [--classes N] [--summary] [--json]

Lists the tensors of a safetensors checkpoint (name, dtype, shape), guesses the Unet it
belongs to (encoder from the block layout, classes from segmentation_head.0.weight) and,
for each name map, how it fits: tensors mapped, missing, mis-shaped, unused.

Name maps:
${WEIGHT_MAPS.map((m) => `  ${m.id.padEnd(25)} ${m.description}`).join('\n')}

Options:
  --encoder NAME   check this encoder only (${encoderNames().join(', ')})
  --classes N      check a Unet with N classes (default: from the file, else 1)
  --summary        skip the tensor list
  --json           print one JSON object instead of text

Exit status 0 when some map fits, 1 when none does, 2 on bad arguments.
Export a PyTorch checkpoint to safetensors first (see README, "Models and weights").
`;

const FLAGS = { encoder: {}, classes: {}, summary: { type: 'boolean' }, json: { type: 'boolean' } } as const;

function parse(args: string[]): { file: string; encoderName?: string; classes?: number; summary: boolean; json: boolean } {
  const { flags, positionals } = parseArgs(args, FLAGS);
  const encoderName = flags.encoder as string | undefined;
  if (encoderName !== undefined && !encoderNames({ includeTest: true }).includes(encoderName)) {
    throw new UsageError(`--encoder must be one of ${encoderNames().join(', ')}, got '${encoderName}'`);
  }
  if (positionals.length === 0) throw new UsageError('missing FILE (a .safetensors checkpoint)');
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

async function run(args: string[]): Promise<number> {
  const sub = args[0];
  if (sub !== 'inspect') throw new UsageError(`unknown sub-command '${sub ?? ''}'; try 'cqseg weights inspect --help'`);
  const o = parse(args.slice(1));
  if (!fs.existsSync(o.file)) throw new UsageError(`${o.file}: no such file`, 1);
  const info = inspectWeights(o.file, { encoderName: o.encoderName, classes: o.classes });
  const fits = info.candidates.some((c) => c.plans.some((p) => p.fits));
  if (o.json) {
    process.stdout.write(JSON.stringify({ file: o.file, tensors: info.tensors, candidates: info.candidates, fits }) + '\n');
    return fits ? 0 : 1;
  }
  const values = info.tensors.reduce((n, t) => n + t.shape.reduce((a, s) => a * s, 1), 0);
  const out: string[] = [`${o.file}: ${info.tensors.length} tensors, ${values.toLocaleString('en-US')} values`];
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
  summary: 'inspect a safetensors checkpoint: tensors, fitting name map, missing/unused',
  help: HELP,
  run,
};
