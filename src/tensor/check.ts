/**
 * Argument checks for ops, in the style of tfjs' convertToTensor and kornia's
 * KORNIA_CHECK_SHAPE: every message names the argument, the op, and what came.
 */
import { Tensor } from './tensor';
import { CqsegError } from '../util/errors';

/** A bad argument to an op or function (torch raises TypeError/ValueError there). */
export class ArgumentError extends CqsegError {
  constructor(message: string) {
    super(message, 'ERR_INVALID_ARG');
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (typeof x === 'object') return `an object of class ${(x as object).constructor?.name ?? 'Object'}`;
  return `${typeof x} ${String(x)}`;
}

/** Asserts `x` is a live Tensor (optionally of a given rank). */
export function checkTensor(x: unknown, arg: string, op: string, rank?: number, layout?: string): Tensor {
  if (!(x instanceof Tensor)) throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a Tensor, got ${describe(x)}`);
  if (x.isDisposed) throw new ArgumentError(`Argument '${arg}' passed to '${op}': Tensor is disposed`);
  if (rank !== undefined && x.ndim !== rank) {
    throw new ArgumentError(
      `Argument '${arg}' passed to '${op}' must be ${rank}-D${layout ? ` ${layout}` : ''}, got [${x.shape.join(',')}]`,
    );
  }
  return x;
}

export function checkTensors(xs: unknown, arg: string, op: string): Tensor[] {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a non-empty array of Tensors, got ${describe(xs)}`);
  }
  return xs.map((x, i) => checkTensor(x, `${arg}[${i}]`, op));
}

/** Tensor or finite number (a torch Scalar). */
export function checkOperand(x: unknown, arg: string, op: string): Tensor | number | boolean {
  if (typeof x === 'number') {
    if (Number.isNaN(x) && op !== 'full') return x;
    return x;
  }
  if (typeof x === 'boolean') return x;
  return checkTensor(x, arg, op);
}

export function checkInt(x: unknown, arg: string, op: string, min = -Infinity): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min) {
    const bound = min === -Infinity ? '' : ` >= ${min}`;
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be an integer${bound}, got ${describe(x)}`);
  }
  return x;
}

export function checkShape(shape: unknown, arg: string, op: string): number[] {
  if (!Array.isArray(shape) || shape.some((s) => typeof s !== 'number' || !Number.isInteger(s) || s < -1)) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

/** A number or [h, w] pair, as torch's `_pair`. */
export function pair(v: number | number[], arg: string, op: string): number[] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((s) => typeof s !== 'number' || !Number.isInteger(s) || s < 0)) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a non-negative integer or [h, w], got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Normalises a possibly negative dim against a rank. */
export function normDim(dim: number, rank: number, arg: string, op: string): number {
  const r = Math.max(rank, 1);
  if (!Number.isInteger(dim) || dim < -r || dim >= r) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be a dim in [${-r}, ${r - 1}], got ${dim}`);
  }
  return dim < 0 ? dim + r : dim;
}

export function oneOf<T extends string>(v: unknown, allowed: readonly T[], arg: string, op: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ArgumentError(`Argument '${arg}' passed to '${op}' must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}
