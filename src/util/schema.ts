/**
 * Checked JSON: every settings or state file cqseg reads goes through a zod schema here,
 * so an unknown key, a wrong type or a file that is not a JSON object is an error naming
 * the file, the key, the value and its JSON type ("'epochs' must be a positive integer,
 * got "1" (a string)"; "unknown key 'batch_size' (did you mean 'batchSize'?)"). The
 * schemas themselves live with what they describe (train/config.ts, experiment/config.ts,
 * train/checkpoint.ts, data/synth, dcin/embedders.ts); their TypeScript types are derived
 * from them (z.infer), so code cannot read a key its schema lacks.
 */
import * as fs from 'fs';
import { z } from 'zod';
import { CqsegError } from './errors';
import { closestKey } from './suggest';

export class ConfigError extends CqsegError {
  constructor(message: string, code = 'ERR_CONFIG') {
    super(message, code);
  }
}

// ---- schema building blocks: each leaf states what it must be, once ----

/** Every issue a schema raises itself reads "must be PHRASE". */
export const must = (phrase: string): z.RawCreateParams => ({ errorMap: () => ({ message: `must be ${phrase}` }) });
export const nonEmpty = (what?: string): z.ZodString => {
  const s = z.string(must('a non-empty string')).min(1);
  return what ? s.describe(what) : s;
};
export const integer = (min: 0 | 1): z.ZodNumber => z.number(must(min === 1 ? 'a positive integer' : 'a non-negative integer')).int().min(min);
// ---- error messages ----

/** The JSON type of a value, with its article: "a string", "an array", "null". */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return typeof v === 'undefined' ? 'nothing' : `a ${typeof v}`;
}

/** A value as its JSON text and JSON type: `"1" (a string)`. */
export function showValue(v: unknown): string {
  if (v === null || v === undefined) return jsonType(v);
  let s = JSON.stringify(v) ?? String(v);
  if (s.length > 60) s = `${s.slice(0, 57)}...`;
  return `${s} (${jsonType(v)})`;
}

const keyName = (p: (string | number)[]): string =>
  p.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');

function valueAt(input: unknown, p: (string | number)[]): unknown {
  let v = input;
  for (const k of p) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

/** The schema that checks the value at `p`, through optional/default/refinement wrappers. */
function schemaAt(schema: z.ZodTypeAny, p: (string | number)[]): z.ZodTypeAny | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  const unwrap = (x: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (x instanceof z.ZodOptional || x instanceof z.ZodNullable) x = x.unwrap();
      else if (x instanceof z.ZodDefault) x = x.removeDefault();
      else if (x instanceof z.ZodEffects) x = x.innerType();
      else return x;
    }
  };
  for (const k of p) {
    if (!s) return undefined;
    const u = unwrap(s);
    if (u instanceof z.ZodObject) s = (u.shape as Record<string, z.ZodTypeAny>)[k as string];
    else if (u instanceof z.ZodTuple) s = (u.items as z.ZodTypeAny[])[k as number];
    else if (u instanceof z.ZodArray) s = u.element;
    else if (u instanceof z.ZodRecord) s = u.valueSchema;
    else return undefined;
  }
  return s && unwrap(s);
}

function describeIssue(issue: z.ZodIssue, input: unknown, schema: z.ZodTypeAny): string[] {
  const key = keyName(issue.path);
  const value = valueAt(input, issue.path);
  if (issue.code === 'unrecognized_keys') {
    const parent = schemaAt(schema, issue.path);
    const known = parent instanceof z.ZodObject ? Object.keys(parent.shape as object) : [];
    return issue.keys.map((k) => {
      const near = closestKey(k, known);
      const full = (x: string): string => keyName([...issue.path, x]);
      return `unknown key '${full(k)}'${near ? ` (did you mean '${full(near)}'?)` : known.length ? `; known keys: ${known.join(', ')}` : ''}`;
    });
  }
  if (issue.path.length === 0) return [`expected a JSON object of settings, got ${showValue(value)}`];
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    const what = schemaAt(schema, issue.path)?.description;
    return [`'${key}' is required${what ? `: ${what}` : ''}`];
  }
  if (issue.code === 'custom') return [`'${key}' ${issue.message}`];
  const said = issue.message.startsWith('must be') ? issue.message : `is invalid (${issue.message})`;
  return [`'${key}' ${said}, got ${showValue(value)}`];
}

/** Checks `input` against `schema`; throws `make(message)` naming `where` and every problem found. */
export function checkSchema<S extends z.ZodTypeAny>(schema: S, input: unknown, where: string,
  make: (message: string) => Error = (m) => new ConfigError(m)): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data as z.output<S>;
  const parts = r.error.issues.flatMap((i) => describeIssue(i, input, schema));
  throw make(`${where}: ${parts.slice(0, 8).join('; ')}${parts.length > 8 ? `; ... (${parts.length} problems)` : ''}`);
}

/** Reads a JSON file that must hold one object; errors name the file and what it held instead. */
export function readJsonObject(file: string, what: string, make: (message: string) => Error = (m) => new ConfigError(m)): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw make(`${what} '${file}' cannot be read (${code === 'ENOENT' ? 'not found' : code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw make(`${what} '${file}' is not valid JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw make(`${what} '${file}' must hold a JSON object of settings ({ "key": value, ... }), got ${showValue(json)}`);
  }
  return json as Record<string, unknown>;
}

/** Reads a JSON file holding one object and checks it against `schema` (readJsonObject, then checkSchema). */
export function readJsonFile<S extends z.ZodTypeAny>(file: string, schema: S, what: string,
  make: (message: string) => Error = (m) => new ConfigError(m)): z.output<S> {
  return checkSchema(schema, readJsonObject(file, what, make), `${what} '${file}'`, make);
}
