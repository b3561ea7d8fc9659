/**
 * The Tensor handle and deterministic memory management: `tidy` scopes,
 * `keep`, `dispose`, `memory()`. The GC finalizer in the addon is only a backstop.
 */
import { DType, dtypeFromCode, TypedArray, viewOf } from './dtype';
import { native, NativeHandle, opId } from './native';

export type Device = string; // 'cpu' | 'cuda' | 'cuda:N'

const SHAPE = opId('shape');
const DTYPE = opId('dtype');
const DEVICE = opId('device');
const ITEM = opId('item');

/** Tensors created inside the innermost open tidy scope (null outside any). */
const scopes: Tensor[][] = [];

export class Tensor {
  /** @internal native handle; null once disposed */
  _h: NativeHandle | null;
  /** @internal set by keep(): no tidy scope disposes it */
  _kept = false;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;

  /** @internal use the creation functions (tensor, zeros, ...) instead */
  constructor(h: NativeHandle) {
    this._h = h;
    const top = scopes.length > 0 ? scopes[scopes.length - 1] : undefined;
    if (top !== undefined) top.push(this);
  }

  /** The live native handle; throws "Tensor is disposed" after dispose(). */
  get handle(): NativeHandle {
    const h = this._h;
    if (h === null) throw new Error('Tensor is disposed');
    return h;
  }

  get isDisposed(): boolean {
    return this._h === null;
  }

  /** Sizes per dimension, like torch's `shape`. */
  get shape(): number[] {
    if (this._shape === undefined) this._shape = native.call(SHAPE, this.handle) as number[];
    return this._shape;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Number of elements. */
  get size(): number {
    let n = 1;
    for (const s of this.shape) n *= s;
    return n;
  }

  get dtype(): DType {
    if (this._dtype === undefined) this._dtype = dtypeFromCode(native.call(DTYPE, this.handle) as number);
    return this._dtype;
  }

  get device(): Device {
    return native.call(DEVICE, this.handle) as string;
  }

  /** Frees the native tensor now. Calling it twice is fine. */
  dispose(): void {
    const h = this._h;
    if (h !== null) {
      this._h = null;
      h.dispose();
    }
  }

  /**
   * @internal Takes over another tensor's native storage (torch's `param.data = new`):
   * references to this Tensor stay valid; `other` is left empty; the old storage is freed.
   */
  _assign(other: Tensor): void {
    const old = this.handle;
    this._h = other.handle;
    other._h = null;
    this._shape = undefined;
    this._dtype = undefined;
    if (old !== this._h) old.dispose();
  }

  /** A copy of the values as a TypedArray (float16/bfloat16 as raw uint16 bits, bool as uint8). */
  dataSync(): TypedArray {
    return viewOf(this.dtype, native.toBuffer(this.handle));
  }

  /** Values as a flat array of JS numbers (int64 converted with Number()). */
  toArray(): number[] {
    const d = this.dataSync();
    if (d instanceof BigInt64Array) return Array.from(d, (v) => Number(v));
    if (this.dtype === 'float16' || this.dtype === 'bfloat16') {
      throw new Error(`toArray() of a ${this.dtype} tensor: convert with .to('float32') first`);
    }
    return Array.from(d as Float32Array);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    return native.call(ITEM, this.handle) as number;
  }

  toString(): string {
    if (this._h === null) return 'Tensor(disposed)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

/** @internal wraps a native result (handle, list of handles or other values) into Tensors. */
export function wrap(h: NativeHandle): Tensor {
  return new Tensor(h);
}

/** Anything tidy can return: tensors are found in arrays and plain objects. */
export type TensorContainer = void | Tensor | number | string | boolean | null | undefined |
  TensorContainer[] | { [key: string]: TensorContainer } | object;

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value !== null && typeof value === 'object' && depth < 8 && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns
 * (found in arrays and plain objects) and those passed to keep(). Synchronous only:
 * a Promise result is refused, since tensors made after the await would escape.
 *   const y = tidy(() => x.mul(2).add(1)); // the x.mul(2) intermediate is freed
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) if (!t._kept) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) if (!t._kept) t.dispose();
    throw new Error('tidy(fn): fn must be synchronous (it returned a Promise)');
  }
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  const parent = scopes.length > 0 ? scopes[scopes.length - 1] : undefined;
  for (const t of scope) {
    if (keepSet.has(t)) {
      if (parent !== undefined && !t._kept) parent.push(t);
    } else if (!t._kept) {
      t.dispose();
    }
  }
  return result;
}

/** Exempts a tensor from every enclosing tidy scope; the caller disposes it. */
export function keep<T extends Tensor>(t: T): T {
  t._kept = true;
  return t;
}

/** Disposes tensors found in a value (tensor, array, plain object, or anything with dispose()). */
export function dispose(value: unknown): void {
  if (value === null || value === undefined) return;
  if (value instanceof Tensor) {
    value.dispose();
  } else if (Array.isArray(value)) {
    for (const v of value) dispose(v);
  } else if (typeof value === 'object') {
    const d = (value as { dispose?: unknown }).dispose;
    if (typeof d === 'function') {
      (d as () => void).call(value);
    } else if (Object.getPrototypeOf(value) === Object.prototype) {
      for (const v of Object.values(value)) dispose(v);
    }
  }
}

/** Live native tensors (handles not yet disposed or collected) and their bytes. */
export function memory(): { liveTensors: number; liveBytes: number } {
  const m = native.memory();
  return { liveTensors: m.liveTensors, liveBytes: m.liveBytes };
}
