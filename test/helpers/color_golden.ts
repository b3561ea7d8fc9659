/** Reads test/golden/color.{json,bin} (made by tools/golden/color.py) and makes its inputs. */
import * as fs from 'fs';
import * as path from 'path';
import * as T from '../../src/tensor';

const DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'golden');

interface ArrayInfo {
  dtype: string;
  shape: number[];
  offset: number;
}
export interface ColorGolden {
  opencv: string;
  arrays: Record<string, ArrayInfo>;
  transfer_stats: Record<string, { in: number[][]; ref: number[][] }[]>;
}

let cache: { meta: ColorGolden; bin: Buffer } | undefined;
function load(): { meta: ColorGolden; bin: Buffer } {
  if (!cache) {
    cache = {
      meta: JSON.parse(fs.readFileSync(path.join(DIR, 'color.json'), 'utf8')) as ColorGolden,
      bin: fs.readFileSync(path.join(DIR, 'color.bin')),
    };
  }
  return cache;
}

export function goldenMeta(): ColorGolden {
  return load().meta;
}

/** A golden array as a CPU tensor of its dtype (uint8 or float32). */
export function goldenTensor(name: string): T.Tensor {
  const { meta, bin } = load();
  const a = meta.arrays[name];
  if (!a) throw new Error(`no golden array '${name}' in color.json`);
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (a.dtype === 'uint8') return T.tensor(new Uint8Array(bin.subarray(a.offset, a.offset + n)), a.shape, { dtype: 'uint8' });
  if (a.dtype === 'float32') return T.tensor(new Float32Array(bin.buffer.slice(bin.byteOffset + a.offset, bin.byteOffset + a.offset + 4 * n)), a.shape);
  throw new Error(`unsupported golden dtype ${a.dtype}`);
}

/** The golden color samples: k -> c = (k * 3635633) mod 2^24, (c >> 16, c >> 8 & 255, c & 255); uint8 (n, 3). */
export function colorSamples(n: number): T.Tensor {
  const a = new Uint8Array(n * 3);
  for (let k = 0; k < n; k++) {
    const c = (k * 3635633) % 16777216;
    a[3 * k] = c >>> 16;
    a[3 * k + 1] = (c >>> 8) & 255;
    a[3 * k + 2] = c & 255;
  }
  return T.tensor(a, [n, 3], { dtype: 'uint8' });
}

/** Fraction of pixels equal, and within +-1 on every channel: a and b uint8 (..., 3). */
export function agreement(a: T.Tensor, b: T.Tensor): { exact: number; within1: number; maxDiff: number } {
  const x = a.dataSync();
  const y = b.dataSync();
  if (x.length !== y.length) throw new Error(`agreement: ${x.length} vs ${y.length} values`);
  let exact = 0;
  let within1 = 0;
  let maxDiff = 0;
  const n = x.length / 3;
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs(Number(x[3 * i + c]) - Number(y[3 * i + c])));
    if (m === 0) exact++;
    if (m <= 1) within1++;
    maxDiff = Math.max(maxDiff, m);
  }
  return { exact: exact / n, within1: within1 / n, maxDiff };
}
