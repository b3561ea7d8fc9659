/**
 * Command-line flags through node's own parser (util.parseArgs, its tokens): `--name value`,
 * `--name=value`, `--flag`, repeated flags, positionals, `--` ending the options. Each
 * command declares its flags once (FlagSpec); an unknown flag, a missing value or a value
 * given to a switch is a UsageError naming the flag (and listing the known ones).
 */
import { parseArgs as nodeParseArgs } from 'node:util';
import { UsageError } from './command';
import { resolveDevice } from '../tensor';

export interface FlagSpec {
  /** takes a value (default) or is a boolean switch */
  type?: 'string' | 'boolean';
  /** may be repeated (values collected in order) */
  multiple?: boolean;
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseArgs(args: string[], spec: Record<string, FlagSpec>): Parsed {
  const options = Object.fromEntries(Object.entries(spec).map(([k, s]) => [k, { type: s.type ?? 'string', multiple: s.multiple ?? false }]));
  // non-strict: node tokenizes, the checks below give the messages (a string flag takes the next word, so `--seed -1` works)
  const { tokens } = nodeParseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  const known = (): string => Object.keys(spec).map((k) => `--${k}`).join(' ');
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const s = Object.prototype.hasOwnProperty.call(spec, t.name) && t.rawName.startsWith('--') ? spec[t.name] : undefined;
    if (!s) throw new UsageError(`unknown option ${t.rawName}; known: ${known()}`);
    if (s.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`option --${t.name} is a switch and takes no value, got '${t.value}'`);
      flags[t.name] = true;
      continue;
    }
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) throw new UsageError(`option --${t.name} needs a value`);
    if (s.multiple) flags[t.name] = [...((flags[t.name] as string[] | undefined) ?? []), t.value];
    else flags[t.name] = t.value;
  }
  return { flags, positionals };
}

export function intFlag(v: unknown, name: string, min = -Infinity): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} needs an integer${min > -Infinity ? ` >= ${min}` : ''}, got '${String(v)}'`);
  }
  return n;
}

export function numFlag(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got '${String(v)}'`);
  return n;
}

/** 'HxW' -> [H, W]. */
export function sizeFlag(v: unknown, name: string): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(String(v));
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`--${name} needs HxW, e.g. 512x768, got '${String(v)}'`);
  return [Number(m[1]), Number(m[2])];
}

/** --device's help line, the same in every command. */
export const DEVICE_HELP = `--device D            auto | cpu | cuda | cuda:N (default auto: the first GPU libtorch
                        sees, else the CPU)`;

/**
 * The device of a command's --device flag, resolved (tensor/runtime.ts resolveDevice); the
 * choice is printed to stderr unless quiet. A device libtorch does not see is a usage error.
 */
export function deviceFlag(v: unknown, quiet = false): string {
  let r: { device: string; why: string };
  try {
    r = resolveDevice(v === undefined ? 'auto' : String(v));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!quiet) process.stderr.write(`device: ${r.device} (${r.why})\n`);
  return r.device;
}
