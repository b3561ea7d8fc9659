/**
 * safetensors: round trips of every dtype with metadata, the official writer's sample
 * files (test/data/safetensors-samples), corrupt files each giving a SafetensorsError
 * that names the file and the problem, atomic writes, and module state dicts.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { after, test } from 'node:test';
import * as T from '../../src/tensor';
import {
  assertFinite, BatchNorm2d, Conv2d, firstNonFinite, inspectSafetensors, Linear, loadStateDict, readSafetensors, SafetensorsError, saveStateDict, Sequential,
  writeSafetensors,
} from '../../src/nn';
import { assertNoLeak } from '../helpers/assert';
import { repoRoot } from '../helpers/golden';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-safetensors-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SAMPLES = path.join(repoRoot(), 'test', 'data', 'safetensors-samples');

const raw = (t: T.Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);

/** One small tensor of every dtype cqseg has. */
function everyDtype(): [string, T.Tensor][] {
  const src = [-3, -2, -1, 0, 1, 2];
  return T.DTYPES.map((d): [string, T.Tensor] => {
    const values = d === 'uint8' ? [253, 254, 255, 0, 1, 2] : d === 'bool' ? [1, 0, 1, 0, 0, 1] : src;
    return [`t_${d}`, T.tensor(values, [2, 3], { dtype: d })];
  });
}

test('every dtype round-trips bit for bit with shape, order and metadata', () => {
  assertNoLeak(() => {
    const file = path.join(tmp, 'all.safetensors');
    const tensors = everyDtype();
    tensors.push(['scalar', T.scalarTensor(7.25, { dtype: 'float64' })], ['empty', T.zeros([0, 4])]);
    writeSafetensors(file, tensors, { format: 'pt', note: 'ünïcode ✓' });
    const back = readSafetensors(file);
    assert.deepEqual(back.metadata, { format: 'pt', note: 'ünïcode ✓' });
    assert.deepEqual([...back.tensors.keys()], tensors.map(([k]) => k));
    for (const [name, t] of tensors) {
      const r = back.tensors.get(name)!;
      assert.deepEqual([r.dtype, r.shape], [t.dtype, t.shape], name);
      assert.deepEqual(raw(r), raw(t), name);
    }
    const info = inspectSafetensors(file);
    assert.deepEqual(info.metadata, back.metadata);
    assert.deepEqual(info.tensors.map((e) => [e.name, e.dtype]).slice(0, 10),
      [['t_float32', 'F32'], ['t_float16', 'F16'], ['t_bfloat16', 'BF16'], ['t_int64', 'I64'], ['t_int32', 'I32'], ['t_uint8', 'U8'],
        ['t_bool', 'BOOL'], ['t_float64', 'F64'], ['t_int8', 'I8'], ['t_int16', 'I16']]);
    // layout: 8-byte length, JSON header padded to a multiple of 8, then the data
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    assert.deepEqual(header.t_float32, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    assert.equal(buf.length, 8 + n + (header.empty.data_offsets[1] as number));
    // no metadata: no __metadata__ key
    writeSafetensors(file, [['a', tensors[0][1]]]);
    const one = readSafetensors(file);
    assert.deepEqual(one.metadata, {});
    assert.ok(!fs.readFileSync(file).toString('latin1').includes('__metadata__'));
    T.dispose([tensors, [...back.tensors.values()], [...one.tensors.values()]]);
  });
});

test('sample files from the official writer read as expected (U16 -> int32, U32 -> int64)', () => {
  const expected: Record<string, [T.DType, number[]]> = {
    B: ['uint8', [253, 254, 255, 0, 1, 2]],
    H: ['int32', [65533, 65534, 65535, 0, 1, 2]],
    I: ['int64', [4294967293, 4294967294, 4294967295, 0, 1, 2]],
    b: ['int8', [-3, -2, -1, 0, 1, 2]],
    h: ['int16', [-3, -2, -1, 0, 1, 2]],
    i: ['int32', [-3, -2, -1, 0, 1, 2]],
    e: ['float16', [-3, -2, -1, 0, 1, 2]],
    f: ['float32', [-3, -2, -1, 0, 1, 2]],
    d: ['float64', [-3, -2, -1, 0, 1, 2]],
  };
  assertNoLeak(() => {
    const check = (name: string, t: T.Tensor | undefined, where: string): void => {
      assert.ok(t !== undefined, `${where}: tensor ${name} missing`);
      const [dtype, values] = expected[name];
      assert.deepEqual([t.dtype, t.shape], [dtype, [6]], `${where} ${name}`);
      assert.deepEqual(T.tidy(() => (dtype === 'float16' ? t.to('float32') : t).toArray()), values, `${where} ${name}`);
    };
    for (const name of Object.keys(expected)) {
      const file = path.join(SAMPLES, `${name}.safetensors`);
      const { tensors, metadata } = readSafetensors(file);
      assert.deepEqual(metadata, { test: 'a' });
      assert.deepEqual([...tensors.keys()], [name]);
      check(name, tensors.get(name), file);
      T.dispose([...tensors.values()]);
    }
    const all = readSafetensors(path.join(SAMPLES, 'overall.safetensors'));
    assert.deepEqual([...all.tensors.keys()].sort(), Object.keys(expected).sort());
    assert.deepEqual(all.metadata, { test: 'a' });
    for (const name of Object.keys(expected)) check(name, all.tensors.get(name), 'overall');
    const info = inspectSafetensors(path.join(SAMPLES, 'overall.safetensors'));
    assert.deepEqual(Object.fromEntries(info.tensors.map((e) => [e.name, e.dtype])),
      { B: 'U8', H: 'U16', I: 'U32', b: 'I8', h: 'I16', i: 'I32', e: 'F16', f: 'F32', d: 'F64' });
    T.dispose([...all.tensors.values()]);
  });
});

/** Writes a valid two-tensor file and returns its bytes and header length. */
function validBytes(): { buf: Buffer; n: number } {
  const file = path.join(tmp, 'valid.safetensors');
  T.tidy(() => writeSafetensors(file, [['a', T.tensor([1, 2, 3])], ['b', T.tensor([4, 5], [2], { dtype: 'int64' })]], { k: 'v' }));
  const buf = fs.readFileSync(file);
  return { buf, n: Number(buf.readBigUInt64LE(0)) };
}

/** A file of a JSON header (padded) and `data` bytes. */
function withHeader(header: unknown, data: Buffer, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

test('corrupt files give a SafetensorsError naming the file and the problem', () => {
  const { buf, n } = validBytes();
  const f32 = { dtype: 'F32', shape: [3], data_offsets: [0, 12] };
  const cases: [string, Buffer, RegExp][] = [
    ['too-short', buf.subarray(0, 5), /too short to be a safetensors file \(5 bytes\)/],
    ['truncated', buf.subarray(0, buf.length - 4), /tensor '\w' data offsets \[\d+, \d+\] fall outside the \d+ data bytes \(truncated file\?\)/],
    ['truncated-header', buf.subarray(0, 8 + n - 3), /header length \d+ exceeds the file size \d+ \(truncated or not safetensors\)/],
    ['huge-length', withHeader({ a: f32 }, Buffer.alloc(12), 1n << 40n), /header length 1099511627776 exceeds the file size/],
    ['bad-json', withHeader('{"a": {"dtype": "F32",', Buffer.alloc(12)), /header is not valid JSON/],
    ['json-array', withHeader('[1, 2]', Buffer.alloc(0)), /header is not a JSON object/],
    ['out-of-range', withHeader({ a: { ...f32, data_offsets: [8, 20] } }, Buffer.alloc(12)), /tensor 'a' data offsets \[8, 20\] fall outside the 12 data bytes/],
    ['negative-offset', withHeader({ a: { ...f32, data_offsets: [-4, 8] } }, Buffer.alloc(12)), /tensor 'a' data offsets \[-4, 8\] fall outside/],
    ['wrong-count', withHeader({ a: { ...f32, shape: [2, 2] } }, Buffer.alloc(12)), /tensor 'a' of shape \[2,2\] F32 needs 16 bytes, offsets give 12/],
    ['unknown-dtype', withHeader({ a: { ...f32, dtype: 'F8_E4M3' } }, Buffer.alloc(12)), /tensor 'a' has unsupported dtype F8_E4M3/],
    ['u64', withHeader({ a: { dtype: 'U64', shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)), /tensor 'a' has unsupported dtype U64/],
    ['malformed-entry', withHeader({ a: { dtype: 'F32', shape: 3, data_offsets: [0, 12] } }, Buffer.alloc(12)), /tensor 'a' has a malformed header entry/],
    ['negative-shape', withHeader({ a: { ...f32, shape: [-1, -3] } }, Buffer.alloc(12)), /tensor 'a' has a malformed header entry/],
    ['fractional-shape', withHeader({ a: { ...f32, shape: [1.5, 2] } }, Buffer.alloc(12)), /tensor 'a' has a malformed header entry/],
    ['bad-metadata', withHeader({ __metadata__: { n: 1 } }, Buffer.alloc(0)), /__metadata__\.n must be a string/],
  ];
  assertNoLeak(() => {
    for (const [name, bytes, re] of cases) {
      const file = path.join(tmp, `${name}.safetensors`);
      fs.writeFileSync(file, bytes);
      for (const [how, fn] of [['readSafetensors', readSafetensors], ['inspectSafetensors', inspectSafetensors]] as const) {
        assert.throws(() => fn(file), (err: unknown) => {
          assert.ok(err instanceof SafetensorsError, `${name} ${how}: ${String(err)}`);
          assert.equal(err.code, 'ERR_SAFETENSORS');
          assert.equal(err.file, file);
          assert.ok(err.message.startsWith(`${file}: `), err.message);
          assert.match(err.message, re, `${name} ${how}`);
          return true;
        });
      }
    }
    const missing = path.join(tmp, 'does-not-exist.safetensors');
    assert.throws(() => readSafetensors(missing), new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot read \\(ENOENT\\)`));
    assert.throws(() => inspectSafetensors(missing), /cannot read \(ENOENT\)/);
  });
});

test('writes are atomic: no temp file left, an existing file replaced whole, a failed write leaves it alone', () => {
  assertNoLeak(() => T.tidy(() => {
    const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, [['big', T.zeros([1000])]]);
    const bigSize = fs.statSync(file).size;
    writeSafetensors(file, [['small', T.ones([2])]], { v: '2' });
    assert.ok(fs.statSync(file).size < bigSize);
    const r = readSafetensors(file);
    assert.deepEqual([...r.tensors.keys()], ['small']);
    assert.deepEqual(r.metadata, { v: '2' });
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
    const bytes = fs.readFileSync(file);
    assert.throws(() => writeSafetensors(file, [['__metadata__', T.ones([1])]]), (err: unknown) =>
      err instanceof SafetensorsError && /a tensor cannot be named '__metadata__'/.test(err.message) && err.file === file);
    assert.throws(() => writeSafetensors(file, [['x', T.ones([1])], ['y', { dataSync() { throw new Error('device lost'); } } as unknown as T.Tensor]]), /device lost/);
    assert.deepEqual(fs.readFileSync(file), bytes, 'the old file is untouched');
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
    // a missing folder is created
    const nested = path.join(dir, 'a', 'b', 'c.safetensors');
    writeSafetensors(nested, [['x', T.ones([1])]]);
    assert.ok(fs.existsSync(nested));
    T.dispose([...r.tensors.values()]);
  }));
});

test('saveStateDict / loadStateDict round-trip a small model; strict errors name the file', () => {
  assertNoLeak(() => T.tidy(() => {
    const make = (): Sequential => new Sequential(new Conv2d(3, 4, 3), new BatchNorm2d(4), new Linear(4, 2));
    const a = make();
    a.layers[1].forward(a.layers[0].forward(T.randn([2, 3, 3, 3]))); // moves the BatchNorm running stats
    const file = path.join(tmp, 'model.safetensors');
    saveStateDict(a, file, { epoch: '3' });
    assert.deepEqual(inspectSafetensors(file).metadata, { epoch: '3' });
    assert.deepEqual(inspectSafetensors(file).tensors.map((e) => e.name), [...a.stateDict().keys()]);
    const b = make();
    const r = loadStateDict(b, file);
    assert.deepEqual(r, { missing: [], unexpected: [], mismatched: [] });
    for (const [k, t] of a.stateDict()) assert.deepEqual(raw(b.stateDict().get(k)!), raw(t), k);
    assert.equal(b.stateDict().get('1.num_batches_tracked')!.item(), 1);
    const other = new Sequential(new Conv2d(3, 4, 3), new BatchNorm2d(4), new Linear(4, 3));
    assert.throws(() => loadStateDict(other, file), (err: unknown) => {
      assert.ok(err instanceof SafetensorsError);
      assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: state dict does not fit Sequential: shape mismatch 2: 2\\.weight`));
      return true;
    });
    const partial = loadStateDict(other, file, { strict: false });
    assert.deepEqual(partial.mismatched.map((m) => m.split(':')[0]), ['2.weight', '2.bias']);
    T.dispose([a, b, other]);
  }));
});

test('weights holding NaN or Inf are refused at load, naming the file and the first such tensor', () => {
  assertNoLeak(() => T.tidy(() => {
    const make = (): Sequential => new Sequential(new Conv2d(3, 4, 3), new BatchNorm2d(4), new Linear(4, 2));
    const a = make();
    const file = path.join(tmp, 'nan.safetensors');
    for (const [bad, value] of [['1.running_var', Number.NaN], ['2.weight', Number.NEGATIVE_INFINITY]] as const) {
      // one value of one tensor poisoned; a later tensor poisoned too: the first is named
      const sd = [...a.stateDict()].map(([k, t]): [string, T.Tensor] => [k, k === bad || k === '2.bias'
        ? T.where(T.arange(t.size).eq(t.size - 1).reshape(t.shape), value, t) : t]);
      writeSafetensors(file, sd);
      const b = make();
      const before = raw(b.stateDict().get('0.weight')!);
      assert.throws(() => loadStateDict(b, file), (err: unknown) => {
        assert.ok(err instanceof SafetensorsError, String(err));
        assert.equal(err.message, `${file}: tensor '${bad}' holds NaN or infinite values: the weights are broken (did the training diverge?) and are not loaded`);
        return true;
      });
      assert.deepEqual(raw(b.stateDict().get('0.weight')!), before, 'nothing copied into the model');
      assert.throws(() => loadStateDict(b, file, { strict: false }), /holds NaN/);
      T.dispose(b);
    }
    T.dispose(a);
  }));
});

test('firstNonFinite: float tensors of every width, integers and empty tensors skipped', () => {
  assertNoLeak(() => T.tidy(() => {
    const ints: [string, T.Tensor][] = [['i', T.tensor([1, 2], [2], { dtype: 'int64' })], ['e', T.zeros([0, 3])], ['u', T.tensor([255], [1], { dtype: 'uint8' })]];
    assert.equal(firstNonFinite(ints), undefined);
    for (const dtype of ['float64', 'float32', 'float16', 'bfloat16'] as const) {
      const t = T.tensor([0, 1, Number.POSITIVE_INFINITY], [3]).to(dtype);
      assert.equal(firstNonFinite([...ints, ['ok', T.ones([2], { dtype })], [`inf_${dtype}`, t]]), `inf_${dtype}`);
    }
    assert.doesNotThrow(() => assertFinite('f', new Map([['w', T.randn([4, 4])]])));
    // huge finite values whose sum overflows are finite all the same
    const huge: [string, T.Tensor][] = [['f32', T.tensor([3e38, 3e38], [2])], ['f16', T.tensor([6e4, 6e4], [2]).to('float16')]];
    assert.equal(firstNonFinite(huge), undefined);
    assert.equal(firstNonFinite([...huge, ['nan', T.tensor([1, Number.NaN], [2])]]), 'nan');
  }));
});
