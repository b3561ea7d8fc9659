/**
 * The safetensors format (huggingface/safetensors, docs "Format"): an 8-byte
 * little-endian header length N, N bytes of JSON mapping each tensor name to
 * { dtype, shape, data_offsets: [begin, end] } (offsets into the data that follows)
 * plus an optional "__metadata__" of string values, then the raw little-endian data.
 * Implemented here in TS; files are written to a temp file and renamed.
 *
 * libtorch has no uint16/uint32/uint64: U16 is read as int32 and U32 as int64
 * (values preserved); U64 is refused.
 *
 * Weights holding NaN or Inf (a diverged training) are refused where they are loaded
 * into a model (assertFinite): a NaN model predicts all background without a word.
 */
import * as fs from 'fs';
import * as path from 'path';
import { commitTemp, discardTemp, tempPath } from '../util/atomic';
import { all, DType, DTYPE_BYTES, isfinite, sum, Tensor, tensor, tidy } from '../tensor';
import { CqsegError } from '../util/errors';

/** A weights file that cannot be used (safetensors or torch.save), naming the file. */
export class WeightsError extends CqsegError {
  constructor(readonly file: string, message: string, code = 'ERR_WEIGHTS') {
    super(`${file}: ${message}`, code);
  }
}

export class SafetensorsError extends WeightsError {
  constructor(file: string, message: string) {
    super(file, message, 'ERR_SAFETENSORS');
  }
}

const ST_TO_DTYPE: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
export const DTYPE_TO_ST: Record<DType, string> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16',
  int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const WIDENED: Record<string, { bytes: number; dtype: DType }> = {
  U16: { bytes: 2, dtype: 'int32' },
  U32: { bytes: 4, dtype: 'int64' },
};

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsInfo {
  name: string;
  dtype: string;
  shape: number[];
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads the 8-byte length prefix and checks it against the file size. */
function headerLength(file: string, prefix: Buffer, fileSize: number): number {
  if (fileSize < 8) throw new SafetensorsError(file, `too short to be a safetensors file (${fileSize} bytes)`);
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(fileSize - 8)) throw new SafetensorsError(file, `header length ${n} exceeds the file size ${fileSize} (truncated or not safetensors)`);
  return Number(n);
}

function parseHeader(file: string, headerBytes: Buffer, dataLen: number): { entries: [string, HeaderEntry][]; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (err) {
    throw new SafetensorsError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new SafetensorsError(file, 'header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: [string, HeaderEntry][] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, mv] of Object.entries((v ?? {}) as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new SafetensorsError(file, `__metadata__.${k} must be a string`);
        metadata[k] = mv;
      }
      continue;
    }
    const e = v as HeaderEntry;
    if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !e.shape.every((s) => Number.isInteger(s) && s >= 0) ||
        !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw new SafetensorsError(file, `tensor '${name}' has a malformed header entry`);
    }
    const bytes = e.dtype in ST_TO_DTYPE ? DTYPE_BYTES[ST_TO_DTYPE[e.dtype]] : WIDENED[e.dtype]?.bytes;
    if (bytes === undefined) throw new SafetensorsError(file, `tensor '${name}' has unsupported dtype ${e.dtype}`);
    const [b, end] = e.data_offsets;
    const numel = e.shape.reduce((a, s) => a * s, 1);
    if (!(Number.isInteger(b) && Number.isInteger(end) && b >= 0 && end >= b && end <= dataLen)) {
      throw new SafetensorsError(file, `tensor '${name}' data offsets [${b}, ${end}] fall outside the ${dataLen} data bytes (truncated file?)`);
    }
    if (end - b !== numel * bytes) {
      throw new SafetensorsError(file, `tensor '${name}' of shape [${e.shape.join(',')}] ${e.dtype} needs ${numel * bytes} bytes, offsets give ${end - b}`);
    }
    entries.push([name, e]);
  }
  return { entries, metadata };
}

function readBuffer(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new SafetensorsError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Names, dtypes and shapes of a file's tensors, in header order, reading only the header. */
export function inspectSafetensors(file: string): { tensors: SafetensorsInfo[]; metadata: Record<string, string> } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new SafetensorsError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    fs.readSync(fd, prefix, 0, 8, 0);
    const n = headerLength(file, prefix, size);
    const header = Buffer.alloc(n);
    fs.readSync(fd, header, 0, n, 8);
    const { entries, metadata } = parseHeader(file, header, size - 8 - n);
    return { tensors: entries.map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape })), metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads every tensor of a safetensors file onto the CPU. */
export function readSafetensors(file: string): SafetensorsFile {
  const buf = readBuffer(file);
  const n = headerLength(file, buf, buf.length);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(file, buf.subarray(8, dataStart), buf.length - dataStart);
  const tensors = new Map<string, Tensor>();
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  for (const [name, e] of entries) {
    const [b, end] = e.data_offsets;
    // copy: the tensor owns its bytes, and alignment of typed views is not guaranteed in the file
    const bytes = new Uint8Array(buf.subarray(dataStart + b, dataStart + end));
    const widened = WIDENED[e.dtype];
    let t: Tensor;
    if (widened) {
      const src = e.dtype === 'U16' ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
      t = widened.dtype === 'int32' ? tensor(Int32Array.from(src), e.shape) : tensor(BigInt64Array.from(src, (x) => BigInt(x)), e.shape);
    } else {
      t = tensor(bytes, e.shape, { dtype: ST_TO_DTYPE[e.dtype] });
    }
    tensors.set(name, t);
  }
  return { tensors, metadata };
}

const FLOATS: DType[] = ['float64', 'float32', 'float16', 'bfloat16'];

/**
 * The name of the first floating-point tensor holding NaN or +-Inf, or undefined when
 * all are finite. In libtorch, no per-value JS loop: a finite sum proves every value
 * finite (NaN and Inf propagate through a sum) with one reduction and no temporary; only
 * a non-finite sum (or an overflow of huge values) is settled by `all(isfinite(t))`.
 */
export function firstNonFinite(tensors: Map<string, Tensor> | Iterable<[string, Tensor]>): string | undefined {
  for (const [name, t] of tensors) {
    if (!FLOATS.includes(t.dtype) || t.size === 0) continue;
    if (tidy(() => Number.isFinite(sum(t).item()) || all(isfinite(t)).item() === 1)) continue;
    return name;
  }
  return undefined;
}

/** Throws a SafetensorsError naming `file` and the first tensor holding NaN or Inf. */
export function assertFinite(file: string, tensors: Map<string, Tensor> | Iterable<[string, Tensor]>): void {
  const bad = firstNonFinite(tensors);
  if (bad !== undefined) {
    throw new SafetensorsError(file, `tensor '${bad}' holds NaN or infinite values: the weights are broken (did the training diverge?) and are not loaded`);
  }
}

/** Writes tensors (in the given order) and string metadata; temp file + rename, so never half-written. */
export function writeSafetensors(file: string, tensors: Map<string, Tensor> | [string, Tensor][], metadata: Record<string, string> = {}): void {
  const list = tensors instanceof Map ? [...tensors.entries()] : tensors;
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError(file, "a tensor cannot be named '__metadata__'");
    const raw = t.dataSync();
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    header[name] = { dtype: DTYPE_TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    datas.push(bytes);
    offset += bytes.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = tempPath(file);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    for (const d of datas) fs.writeSync(fd, d);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    discardTemp(tmp);
    throw err;
  }
  fs.closeSync(fd);
  commitTemp(tmp, file);
}
