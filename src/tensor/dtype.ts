/** Tensor element types, their addon codes, sizes and TypedArray views. */

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool' | 'float64' | 'int8' | 'int16';

/** Codes shared with native/src/addon.cc (kDtypes). */
export const DTYPE_CODES: Record<DType, number> = {
  float32: 0,
  float16: 1,
  bfloat16: 2,
  int64: 3,
  int32: 4,
  uint8: 5,
  bool: 6,
  float64: 7,
  int8: 8,
  int16: 9,
};

export const DTYPES = Object.keys(DTYPE_CODES) as DType[];
const BY_CODE: DType[] = [];
for (const d of DTYPES) BY_CODE[DTYPE_CODES[d]] = d;

export function dtypeFromCode(code: number): DType {
  const d = BY_CODE[code];
  if (d === undefined) throw new Error(`unknown dtype code ${code}`);
  return d;
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, uint8: 1, bool: 1, float64: 8, int8: 1, int16: 2,
};

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';
}

export type TypedArray =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | BigInt64Array;

/** The TypedArray that holds a dtype's raw values (float16/bfloat16 as raw Uint16 bits, bool as Uint8). */
export function viewOf(dtype: DType, buf: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'float16':
    case 'bfloat16': return new Uint16Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'uint8':
    case 'bool': return new Uint8Array(buf);
  }
}

/** The dtype a TypedArray holds by default. */
export function dtypeOfArray(a: ArrayBufferView): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  throw new TypeError(`cannot infer a dtype from ${a.constructor.name}; pass { dtype }`);
}
