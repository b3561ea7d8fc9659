/**
 * Tensor ops: creation, elementwise math, comparisons, reductions and shape ops.
 * Each op checks its arguments in TS (naming the argument and the op), then makes
 * exactly one call into the libtorch addon. Names and argument order follow torch.
 */
import { ArgumentError, checkInt, checkOperand, checkShape, checkTensor, checkTensors, normDim, oneOf } from './check';
import { DType, DTYPE_CODES, dtypeOfArray, isFloating } from './dtype';
import { OpWithArgs, callT, callTs, callV } from './call';
import { NativeHandle, native } from './native';
import { Device, Tensor, wrap } from './tensor';

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type Operand = Tensor | number | boolean;

const h = (x: Operand): NativeHandle | number | boolean => (x instanceof Tensor ? x.handle : x);
const dt = (d: DType | undefined, op: string): number | undefined => {
  if (d === undefined) return undefined;
  const c = DTYPE_CODES[d];
  if (c === undefined) throw new ArgumentError(`Argument 'dtype' passed to '${op}' must be one of ${Object.keys(DTYPE_CODES).join(', ')}, got ${String(d)}`);
  return c;
};

function finish(t: Tensor, opts: CreateOptions | undefined): Tensor {
  if (opts?.requiresGrad) callV('setRequiresGrad', t.handle, true);
  return t;
}

// ------------------------------------------------------------------ creation

type Nested = number | boolean | Nested[];

function flattenNested(values: Nested, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(values)) {
    if (shape.length <= depth) shape.push(values.length);
    else if (shape[depth] !== values.length) throw new ArgumentError(`Argument 'values' passed to 'tensor' is ragged at depth ${depth}`);
    for (const v of values) flattenNested(v, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new ArgumentError(`Argument 'values' passed to 'tensor' is ragged at depth ${depth}`);
    out.push(typeof values === 'boolean' ? Number(values) : values);
  }
}

function toTypedArray(values: number[], dtype: DType): ArrayBufferView {
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'int64': return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32': return Int32Array.from(values);
    case 'int16': return Int16Array.from(values);
    case 'int8': return Int8Array.from(values);
    case 'uint8': return Uint8Array.from(values);
    case 'bool': return Uint8Array.from(values, (v) => (v ? 1 : 0));
    default: return Float32Array.from(values);
  }
}

/**
 * A tensor from nested arrays, or from a TypedArray/Buffer with a shape (the data is copied).
 * float16/bfloat16 from numbers are made in float32 and converted.
 *   tensor([[1, 2], [3, 4]])                       // float32 (2, 2)
 *   tensor(new Uint8Array(h * w * 3), [h, w, 3])  // uint8 HWC image
 */
export function tensor(values: Nested | ArrayBufferView, shape?: number[], opts?: CreateOptions): Tensor {
  let data: ArrayBufferView;
  let dims: number[];
  let dtype: DType;
  if (ArrayBuffer.isView(values)) {
    dtype = opts?.dtype ?? dtypeOfArray(values);
    data = values;
    const bytes = values.byteLength / (dtype === 'float16' || dtype === 'bfloat16' ? 2 : 1);
    dims = shape ?? [dtype === 'float16' || dtype === 'bfloat16' ? bytes : (values as unknown as { length: number }).length];
  } else {
    const flat: number[] = [];
    const inferred: number[] = [];
    flattenNested(values, inferred, flat, 0);
    dims = shape ?? inferred;
    dtype = opts?.dtype ?? (typeof values === 'boolean' ? 'bool' : 'float32');
    const staging: DType = dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
    data = toTypedArray(flat, staging);
    if (staging !== dtype) {
      const t = wrap(native.fromBuffer(data, checkShape(dims, 'shape', 'tensor'), DTYPE_CODES.float32, opts?.device));
      const out = callT('to', t.handle, DTYPE_CODES[dtype], undefined, false);
      t.dispose();
      return finish(out, opts);
    }
  }
  return finish(wrap(native.fromBuffer(data, checkShape(dims, 'shape', 'tensor'), DTYPE_CODES[dtype], opts?.device)), opts);
}

export function zeros(shape: number[], opts?: CreateOptions): Tensor {
  return finish(callT('zeros', checkShape(shape, 'shape', 'zeros'), dt(opts?.dtype, 'zeros'), opts?.device), opts);
}
export function ones(shape: number[], opts?: CreateOptions): Tensor {
  return finish(callT('ones', checkShape(shape, 'shape', 'ones'), dt(opts?.dtype, 'ones'), opts?.device), opts);
}
export function empty(shape: number[], opts?: CreateOptions): Tensor {
  return finish(callT('empty', checkShape(shape, 'shape', 'empty'), dt(opts?.dtype, 'empty'), opts?.device), opts);
}
export function full(shape: number[], value: number | boolean, opts?: CreateOptions): Tensor {
  return finish(callT('full', checkShape(shape, 'shape', 'full'), value, dt(opts?.dtype, 'full') ?? DTYPE_CODES.float32, opts?.device), opts);
}
/** torch.arange: arange(end) or arange(start, end, step); dtype float32 unless given. */
export function arange(start: number, end?: number, step = 1, opts?: CreateOptions): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  return finish(callT('arange', s, e, step, dt(opts?.dtype, 'arange') ?? DTYPE_CODES.float32, opts?.device), opts);
}
export function linspace(start: number, end: number, steps: number, opts?: CreateOptions): Tensor {
  return finish(callT('linspace', start, end, checkInt(steps, 'steps', 'linspace', 0), dt(opts?.dtype, 'linspace'), opts?.device), opts);
}
export function eye(n: number, m = n, opts?: CreateOptions): Tensor {
  return finish(callT('eye', checkInt(n, 'n', 'eye', 0), checkInt(m, 'm', 'eye', 0), dt(opts?.dtype, 'eye'), opts?.device), opts);
}
export function scalarTensor(v: number | boolean, opts?: CreateOptions): Tensor {
  return finish(callT('scalarTensor', v, dt(opts?.dtype, 'scalarTensor') ?? DTYPE_CODES.float32, opts?.device), opts);
}
export const zerosLike = (x: Tensor): Tensor => callT('zerosLike', checkTensor(x, 'x', 'zerosLike').handle);
export const onesLike = (x: Tensor): Tensor => callT('onesLike', checkTensor(x, 'x', 'onesLike').handle);
export const emptyLike = (x: Tensor): Tensor => callT('emptyLike', checkTensor(x, 'x', 'emptyLike').handle);
export const fullLike = (x: Tensor, v: number): Tensor => callT('fullLike', checkTensor(x, 'x', 'fullLike').handle, v);
export const clone = (x: Tensor): Tensor => callT('clone', checkTensor(x, 'x', 'clone').handle);

// --------------------------------------------------------------- elementwise

/**
 * Calls `fn` with a Tensor first operand: a number `a` becomes a temporary 0-d tensor on
 * b's device, freed after the call. Its dtype is b's, except that a fractional number
 * with an integer/bool tensor is float32 and an integer with a bool tensor is int64
 * (torch's promotion of a Python scalar).
 */
function withLhs(a: Operand, b: Operand, op: string, fn: (x: Tensor) => Tensor): Tensor {
  if (a instanceof Tensor) return fn(checkTensor(a, 'a', op));
  if (!(b instanceof Tensor)) throw new ArgumentError(`'${op}' needs at least one Tensor operand, got ${String(a)} and ${String(b)}`);
  checkTensor(b, 'b', op);
  let dtype = b.dtype;
  if (typeof a === 'number' && !isFloating(dtype)) dtype = !Number.isInteger(a) ? 'float32' : dtype === 'bool' ? 'int64' : dtype;
  const x = scalarTensor(a, { dtype, device: b.device });
  try {
    return fn(x);
  } finally {
    x.dispose();
  }
}

function binary(op: OpWithArgs<readonly ['T', 'TS']>, a: Operand, b: Operand): Tensor {
  return withLhs(a, b, op, (x) => callT(op, x.handle, h(checkOperand(b, 'b', op))));
}

/** a + alpha * b (torch.add). */
export function add(a: Operand, b: Operand, alpha?: number): Tensor {
  return withLhs(a, b, 'add', (x) => callT('add', x.handle, h(checkOperand(b, 'b', 'add')), alpha));
}
/** a - alpha * b (torch.sub). */
export function sub(a: Operand, b: Operand, alpha?: number): Tensor {
  return withLhs(a, b, 'sub', (x) => callT('sub', x.handle, h(checkOperand(b, 'b', 'sub')), alpha));
}
export const mul = (a: Operand, b: Operand): Tensor => binary('mul', a, b);
/** a / b; roundingMode 'trunc' | 'floor' as torch.div. */
export function div(a: Operand, b: Operand, roundingMode?: 'trunc' | 'floor'): Tensor {
  if (roundingMode !== undefined) oneOf(roundingMode, ['trunc', 'floor'] as const, 'roundingMode', 'div');
  return withLhs(a, b, 'div', (x) => callT('div', x.handle, h(checkOperand(b, 'b', 'div')), roundingMode));
}
export function pow(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number' && b instanceof Tensor) return callT('rpow', checkTensor(b, 'b', 'pow').handle, a);
  return binary('pow', a, b);
}
export const remainder = (a: Operand, b: Operand): Tensor => binary('remainder', a, b);
export const eq = (a: Operand, b: Operand): Tensor => binary('eq', a, b);
export const ne = (a: Operand, b: Operand): Tensor => binary('ne', a, b);
export const lt = (a: Operand, b: Operand): Tensor => binary('lt', a, b);
export const le = (a: Operand, b: Operand): Tensor => binary('le', a, b);
export const gt = (a: Operand, b: Operand): Tensor => binary('gt', a, b);
export const ge = (a: Operand, b: Operand): Tensor => binary('ge', a, b);

function binaryT(op: OpWithArgs<readonly ['T', 'T']>): (a: Tensor, b: Tensor) => Tensor {
  return (a, b) => callT(op, checkTensor(a, 'a', op).handle, checkTensor(b, 'b', op).handle);
}
export const maximum = binaryT('maximum');
export const minimum = binaryT('minimum');
export const atan2 = binaryT('atan2');
export const logicalAnd = binaryT('logicalAnd');
export const logicalOr = binaryT('logicalOr');
export const logicalXor = binaryT('logicalXor');

function unary(op: OpWithArgs<readonly ['T']>): (x: Tensor) => Tensor {
  return (x) => callT(op, checkTensor(x, 'x', op).handle);
}
export const neg = unary('neg');
export const exp = unary('exp');
export const log = unary('log');
export const log1p = unary('log1p');
export const log2 = unary('log2');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const abs = unary('abs');
export const sign = unary('sign');
export const sigmoid = unary('sigmoid');
export const tanh = unary('tanh');
export const relu = unary('relu');
export const silu = unary('silu');
export const erf = unary('erf');
export const sin = unary('sin');
export const cos = unary('cos');
export const floor = unary('floor');
export const ceil = unary('ceil');
export const round = unary('round');
export const trunc = unary('trunc');
export const reciprocal = unary('reciprocal');
export const square = unary('square');
export const isnan = unary('isnan');
export const isfinite = unary('isfinite');
export const logicalNot = unary('logicalNot');
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor =>
  callT('gelu', checkTensor(x, 'x', 'gelu').handle, oneOf(approximate, ['none', 'tanh'] as const, 'approximate', 'gelu'));
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => callT('leakyRelu', checkTensor(x, 'x', 'leakyRelu').handle, negativeSlope);

/** Clamps to [min, max]; either bound may be omitted; bounds may be numbers or tensors. */
export function clamp(x: Tensor, min?: number | Tensor | null, max?: number | Tensor | null): Tensor {
  checkTensor(x, 'x', 'clamp');
  if (min instanceof Tensor || max instanceof Tensor) {
    // a number bound next to a tensor bound becomes a temporary 0-d tensor, freed after the call
    const temps: Tensor[] = [];
    const bound = (v: number | Tensor | null | undefined): NativeHandle | undefined => {
      if (v instanceof Tensor) return v.handle;
      if (v == null) return undefined;
      const t = scalarLike(v, x);
      temps.push(t);
      return t.handle;
    };
    try {
      return callT('clampTensor', x.handle, bound(min), bound(max));
    } finally {
      for (const t of temps) t.dispose();
    }
  }
  if (min == null && max == null) throw new ArgumentError("'clamp' needs at least one of 'min' and 'max'");
  return callT('clamp', x.handle, min ?? undefined, max ?? undefined);
}
function scalarLike(v: number, x: Tensor): Tensor {
  return scalarTensor(v, { dtype: x.dtype, device: x.device });
}

/** Elementwise cond ? a : b (torch.where); a and b may be numbers. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return callT('where', checkTensor(cond, 'condition', 'where').handle, h(checkOperand(a, 'input', 'where')), h(checkOperand(b, 'other', 'where')));
}
/** start + weight * (end - start). */
export function lerp(start: Tensor, end: Tensor, weight: number | Tensor): Tensor {
  return callT('lerp', checkTensor(start, 'start', 'lerp').handle, checkTensor(end, 'end', 'lerp').handle, h(weight));
}
/** x + value * t1 * t2. */
export const addcmul = (x: Tensor, t1: Tensor, t2: Tensor, value = 1): Tensor =>
  callT('addcmul', checkTensor(x, 'x', 'addcmul').handle, checkTensor(t1, 'tensor1', 'addcmul').handle, checkTensor(t2, 'tensor2', 'addcmul').handle, value);
/** x + value * t1 / t2. */
export const addcdiv = (x: Tensor, t1: Tensor, t2: Tensor, value = 1): Tensor =>
  callT('addcdiv', checkTensor(x, 'x', 'addcdiv').handle, checkTensor(t1, 'tensor1', 'addcdiv').handle, checkTensor(t2, 'tensor2', 'addcdiv').handle, value);
/** x >> shift for an integer tensor (torch.bitwise_right_shift). */
export const bitwiseRightShift = (x: Tensor, shift: number): Tensor =>
  callT('bitwiseRightShift', checkTensor(x, 'x', 'bitwiseRightShift').handle, checkInt(shift, 'shift', 'bitwiseRightShift', 0));
export const nanToNum = (x: Tensor, nan = 0, posinf?: number, neginf?: number): Tensor =>
  callT('nanToNum', checkTensor(x, 'x', 'nanToNum').handle, nan, posinf, neginf);

// ---------------------------------------------------------------- reductions

type Dims = number | number[] | undefined | null;
function dimsOf(x: Tensor, dims: Dims, op: string): number[] | undefined {
  if (dims === undefined || dims === null) return undefined;
  const list = typeof dims === 'number' ? [dims] : dims;
  return list.map((d, i) => normDim(d, x.ndim, `dim[${i}]`, op));
}

export interface ReduceOptions {
  keepdim?: boolean;
  dtype?: DType;
}

/** Sum over dims (all when omitted). */
export function sum(x: Tensor, dim?: Dims, opts: ReduceOptions = {}): Tensor {
  checkTensor(x, 'x', 'sum');
  return callT('sum', x.handle, dimsOf(x, dim, 'sum'), opts.keepdim ?? false, dt(opts.dtype, 'sum'));
}
/** Mean over dims (all when omitted). */
export function mean(x: Tensor, dim?: Dims, opts: ReduceOptions = {}): Tensor {
  checkTensor(x, 'x', 'mean');
  return callT('mean', x.handle, dimsOf(x, dim, 'mean'), opts.keepdim ?? false, dt(opts.dtype, 'mean'));
}
export function prod(x: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  checkTensor(x, 'x', 'prod');
  return callT('prod', x.handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'prod'), opts.keepdim ?? false, dt(opts.dtype, 'prod'));
}
/** Max over all elements, or over dims (values only; see maxDim for indices). */
export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  checkTensor(x, 'x', 'max');
  if (dim === undefined || dim === null) return callT('maxAll', x.handle);
  return callT('amax', x.handle, dimsOf(x, dim, 'max'), keepdim);
}
export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  checkTensor(x, 'x', 'min');
  if (dim === undefined || dim === null) return callT('minAll', x.handle);
  return callT('amin', x.handle, dimsOf(x, dim, 'min'), keepdim);
}
/** torch.max(x, dim): [values, indices]. */
export function maxDim(x: Tensor, dim: number, keepdim = false): [Tensor, Tensor] {
  checkTensor(x, 'x', 'maxDim');
  return callTs('maxDim', x.handle, normDim(dim, x.ndim, 'dim', 'maxDim'), keepdim) as [Tensor, Tensor];
}
export function minDim(x: Tensor, dim: number, keepdim = false): [Tensor, Tensor] {
  checkTensor(x, 'x', 'minDim');
  return callTs('minDim', x.handle, normDim(dim, x.ndim, 'dim', 'minDim'), keepdim) as [Tensor, Tensor];
}
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  checkTensor(x, 'x', 'argmax');
  return callT('argmax', x.handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'argmax'), keepdim);
}
export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  checkTensor(x, 'x', 'argmin');
  return callT('argmin', x.handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'argmin'), keepdim);
}
export interface VarOptions {
  unbiased?: boolean;
  keepdim?: boolean;
}
/** Variance over dims; unbiased (n-1) by default as torch, population with unbiased: false. */
export function variance(x: Tensor, dim?: Dims, opts: VarOptions = {}): Tensor {
  checkTensor(x, 'x', 'var');
  return callT('var', x.handle, dimsOf(x, dim, 'var'), opts.unbiased ?? true, opts.keepdim ?? false);
}
export function std(x: Tensor, dim?: Dims, opts: VarOptions = {}): Tensor {
  checkTensor(x, 'x', 'std');
  return callT('std', x.handle, dimsOf(x, dim, 'std'), opts.unbiased ?? true, opts.keepdim ?? false);
}
export function all(x: Tensor, dim?: number, keepdim = false): Tensor {
  checkTensor(x, 'x', 'all');
  return callT('all', x.handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'all'), keepdim);
}
export function any(x: Tensor, dim?: number, keepdim = false): Tensor {
  checkTensor(x, 'x', 'any');
  return callT('any', x.handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'any'), keepdim);
}
export const cumsum = (x: Tensor, dim: number): Tensor =>
  callT('cumsum', checkTensor(x, 'x', 'cumsum').handle, normDim(dim, x.ndim, 'dim', 'cumsum'));
export const logsumexp = (x: Tensor, dim: number | number[], keepdim = false): Tensor =>
  callT('logsumexp', checkTensor(x, 'x', 'logsumexp').handle, dimsOf(x, dim, 'logsumexp')!, keepdim);
/** p-norm over dims. */
export const norm = (x: Tensor, p = 2, dim: number | number[] = [], keepdim = false): Tensor =>
  callT('norm', checkTensor(x, 'x', 'norm').handle, p, dimsOf(x, dim, 'norm') ?? [], keepdim);
export function topk(x: Tensor, k: number, dim = -1, largest = true): [Tensor, Tensor] {
  checkTensor(x, 'x', 'topk');
  return callTs('topk', x.handle, checkInt(k, 'k', 'topk', 0), normDim(dim, x.ndim, 'dim', 'topk'), largest) as [Tensor, Tensor];
}
export function sort(x: Tensor, dim = -1, descending = false): [Tensor, Tensor] {
  checkTensor(x, 'x', 'sort');
  return callTs('sort', x.handle, normDim(dim, x.ndim, 'dim', 'sort'), descending) as [Tensor, Tensor];
}
/** Counts of each value of a 1-D non-negative int tensor (torch.bincount). */
export const bincount = (x: Tensor, weights?: Tensor, minlength = 0): Tensor =>
  callT('bincount', checkTensor(x, 'x', 'bincount', 1).handle, weights?.handle, minlength);

// ----------------------------------------------------------------- shape ops

export const reshape = (x: Tensor, shape: number[]): Tensor =>
  callT('reshape', checkTensor(x, 'x', 'reshape').handle, checkShape(shape, 'shape', 'reshape'));
export const view = (x: Tensor, shape: number[]): Tensor =>
  callT('view', checkTensor(x, 'x', 'view').handle, checkShape(shape, 'shape', 'view'));
export const flatten = (x: Tensor, startDim = 0, endDim = -1): Tensor =>
  callT('flatten', checkTensor(x, 'x', 'flatten').handle, normDim(startDim, x.ndim, 'startDim', 'flatten'), normDim(endDim, x.ndim, 'endDim', 'flatten'));
export function permute(x: Tensor, dims: number[]): Tensor {
  checkTensor(x, 'x', 'permute');
  if (!Array.isArray(dims) || dims.length !== x.ndim) {
    throw new ArgumentError(`Argument 'dims' passed to 'permute' must list ${x.ndim} dims for a tensor of shape [${x.shape.join(',')}], got ${JSON.stringify(dims)}`);
  }
  return callT('permute', x.handle, dims.map((d, i) => normDim(d, x.ndim, `dims[${i}]`, 'permute')));
}
export const transpose = (x: Tensor, dim0: number, dim1: number): Tensor =>
  callT('transpose', checkTensor(x, 'x', 'transpose').handle, normDim(dim0, x.ndim, 'dim0', 'transpose'), normDim(dim1, x.ndim, 'dim1', 'transpose'));
export const squeeze = (x: Tensor, dim?: number): Tensor =>
  callT('squeeze', checkTensor(x, 'x', 'squeeze').handle, dim === undefined ? undefined : normDim(dim, x.ndim, 'dim', 'squeeze'));
export const unsqueeze = (x: Tensor, dim: number): Tensor =>
  callT('unsqueeze', checkTensor(x, 'x', 'unsqueeze').handle, normDim(dim, x.ndim + 1, 'dim', 'unsqueeze'));
export function cat(xs: Tensor[], dim = 0): Tensor {
  const ts = checkTensors(xs, 'tensors', 'cat');
  return callT('cat', ts.map((t) => t.handle), normDim(dim, ts[0].ndim, 'dim', 'cat'));
}
export function stack(xs: Tensor[], dim = 0): Tensor {
  const ts = checkTensors(xs, 'tensors', 'stack');
  return callT('stack', ts.map((t) => t.handle), normDim(dim, ts[0].ndim + 1, 'dim', 'stack'));
}
export const narrow = (x: Tensor, dim: number, start: number, length: number): Tensor =>
  callT('narrow', checkTensor(x, 'x', 'narrow').handle, normDim(dim, x.ndim, 'dim', 'narrow'), checkInt(start, 'start', 'narrow'), checkInt(length, 'length', 'narrow', 0));
/** x[..., start:end:step, ...] along dim (Python slice semantics, negative indices allowed). */
export const slice = (x: Tensor, dim: number, start?: number, end?: number, step = 1): Tensor =>
  callT('slice', checkTensor(x, 'x', 'slice').handle, normDim(dim, x.ndim, 'dim', 'slice'), start, end, checkInt(step, 'step', 'slice', 1));
export const select = (x: Tensor, dim: number, index: number): Tensor =>
  callT('select', checkTensor(x, 'x', 'select').handle, normDim(dim, x.ndim, 'dim', 'select'), checkInt(index, 'index', 'select'));
export const indexSelect = (x: Tensor, dim: number, index: Tensor): Tensor =>
  callT('indexSelect', checkTensor(x, 'x', 'indexSelect').handle, normDim(dim, x.ndim, 'dim', 'indexSelect'), checkTensor(index, 'index', 'indexSelect').handle);
export const gather = (x: Tensor, dim: number, index: Tensor): Tensor =>
  callT('gather', checkTensor(x, 'x', 'gather').handle, normDim(dim, x.ndim, 'dim', 'gather'), checkTensor(index, 'index', 'gather').handle);
export const scatter = (x: Tensor, dim: number, index: Tensor, src: Tensor | number): Tensor =>
  callT('scatter', checkTensor(x, 'x', 'scatter').handle, normDim(dim, x.ndim, 'dim', 'scatter'), checkTensor(index, 'index', 'scatter').handle, h(src));
export const scatterAdd = (x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor =>
  callT('scatterAdd', checkTensor(x, 'x', 'scatterAdd').handle, normDim(dim, x.ndim, 'dim', 'scatterAdd'), checkTensor(index, 'index', 'scatterAdd').handle, checkTensor(src, 'src', 'scatterAdd').handle);
export const maskedFill = (x: Tensor, mask: Tensor, value: number | Tensor): Tensor =>
  callT('maskedFill', checkTensor(x, 'x', 'maskedFill').handle, checkTensor(mask, 'mask', 'maskedFill').handle, h(value));
export const maskedSelect = (x: Tensor, mask: Tensor): Tensor =>
  callT('maskedSelect', checkTensor(x, 'x', 'maskedSelect').handle, checkTensor(mask, 'mask', 'maskedSelect').handle);
export const nonzero = (x: Tensor): Tensor => callT('nonzero', checkTensor(x, 'x', 'nonzero').handle);
export const flip = (x: Tensor, dims: number | number[]): Tensor =>
  callT('flip', checkTensor(x, 'x', 'flip').handle, dimsOf(x, dims, 'flip')!);
export const roll = (x: Tensor, shifts: number | number[], dims: number | number[]): Tensor =>
  callT('roll', checkTensor(x, 'x', 'roll').handle, typeof shifts === 'number' ? [shifts] : shifts, dimsOf(x, dims, 'roll')!);
export const expand = (x: Tensor, shape: number[]): Tensor =>
  callT('expand', checkTensor(x, 'x', 'expand').handle, checkShape(shape, 'shape', 'expand'));
export const repeat = (x: Tensor, repeats: number[]): Tensor =>
  callT('repeat', checkTensor(x, 'x', 'repeat').handle, checkShape(repeats, 'repeats', 'repeat'));
export const contiguous = (x: Tensor): Tensor => callT('contiguous', checkTensor(x, 'x', 'contiguous').handle);
export const tril = (x: Tensor, diagonal = 0): Tensor => callT('tril', checkTensor(x, 'x', 'tril').handle, diagonal);
export const triu = (x: Tensor, diagonal = 0): Tensor => callT('triu', checkTensor(x, 'x', 'triu').handle, diagonal);

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';
/**
 * torch.nn.functional.pad: `pads` lists (left, right) pairs from the last dim backwards.
 *   pad(x, [1, 1, 2, 2]) // W by 1 each side, H by 2 each side
 */
export function pad(x: Tensor, pads: number[], mode: PadMode = 'constant', value = 0): Tensor {
  checkTensor(x, 'x', 'pad');
  if (!Array.isArray(pads) || pads.length % 2 !== 0 || pads.length / 2 > x.ndim || pads.some((p) => !Number.isInteger(p))) {
    throw new ArgumentError(`Argument 'pads' passed to 'pad' must hold (left, right) integer pairs for at most ${x.ndim} dims, got ${JSON.stringify(pads)}`);
  }
  oneOf(mode, ['constant', 'reflect', 'replicate', 'circular'] as const, 'mode', 'pad');
  return callT('pad', x.handle, pads, mode, mode === 'constant' ? value : undefined);
}
export const split = (x: Tensor, splitSize: number | number[], dim = 0): Tensor[] => {
  checkTensor(x, 'x', 'split');
  const d = normDim(dim, x.ndim, 'dim', 'split');
  return typeof splitSize === 'number' ? callTs('split', x.handle, checkInt(splitSize, 'splitSize', 'split', 1), d) : callTs('splitWithSizes', x.handle, splitSize, d);
};
export const chunk = (x: Tensor, chunks: number, dim = 0): Tensor[] =>
  callTs('chunk', checkTensor(x, 'x', 'chunk').handle, checkInt(chunks, 'chunks', 'chunk', 1), normDim(dim, x.ndim, 'dim', 'chunk'));

// ---------------------------------------------------------------- conversion

/** Copy or cast: to('cuda:0'), to('float16'), to({ dtype, device }). Returns a new handle. */
export function to(x: Tensor, target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor {
  checkTensor(x, 'x', 'to');
  let dtype: DType | undefined;
  let device: Device | undefined;
  let copy = false;
  if (typeof target === 'string') {
    if (target in DTYPE_CODES) dtype = target as DType;
    else device = target;
  } else {
    ({ dtype, device } = target);
    copy = target.copy ?? false;
  }
  return callT('to', x.handle, dt(dtype, 'to'), device, copy);
}
