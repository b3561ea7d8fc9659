/**
 * A small flag parser for the CLI: `--name value`, `--flag`, `--name=value`, positionals.
 * Unknown flags are errors naming the flag and listing the known ones.
 */
import { UsageError } from './command';

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
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}; known: ${Object.keys(spec).map((k) => `--${k}`).join(' ')}`);
    if (s.type === 'boolean') {
      flags[name] = true;
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`option --${name} needs a value`);
    if (s.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else flags[name] = value;
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
