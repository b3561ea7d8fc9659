/**
 * Tensor creation (every dtype, from nested arrays, TypedArrays and Buffers), dataSync
 * round trips, dtype conversion, elementwise math, comparisons and logical ops, in-place
 * updates, against hand-known values; argument errors name the argument and the op.
 * Hand-known values are exact in their dtype except float32 casts and atan2, whose float32
 * rounding uses at most 4.8% of their 1e-6 tolerance (measured against float64).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { assertClose, assertNoLeak } from '../helpers/assert';

const vals = (t: T.Tensor): number[] => t.toArray();

test('tensor() from nested arrays infers shape; float32 by default, bool from booleans', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(x.shape, [2, 3]);
    assert.equal(x.dtype, 'float32');
    assert.equal(x.ndim, 2);
    assert.equal(x.size, 6);
    assert.equal(x.device, 'cpu');
    assert.deepEqual(vals(x), [1, 2, 3, 4, 5, 6]);
    const s = T.tensor(2.5);
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 2.5);
    const b = T.tensor([true, false, true], undefined, { dtype: 'bool' });
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(vals(b), [1, 0, 1]);
    assert.equal(T.tensor(true).dtype, 'bool');
    assert.deepEqual(T.tensor([1, 2, 3, 4], [2, 2]).shape, [2, 2]);
    assert.throws(() => T.tensor([[1, 2], [3]]), /Argument 'values' passed to 'tensor' is ragged at depth 1/);
    assert.throws(() => T.tensor([[1, 2], 3] as unknown as number[][]), /ragged/);
    assert.match(String(x), /Tensor\(shape=\[2, 3\], dtype=float32, device=cpu\)/);
  }));
});

test('tensor() from numbers in every dtype; dataSync gives the matching TypedArray', () => {
  const src = [-3, -1.5, 0, 1, 2.75];
  const cases: [T.DType, ArrayLike<number | bigint>, new (...a: never[]) => unknown][] = [
    ['float32', [-3, -1.5, 0, 1, 2.75], Float32Array],
    ['float64', [-3, -1.5, 0, 1, 2.75], Float64Array],
    ['int32', [-3, -1, 0, 1, 2], Int32Array],
    ['int64', [-3n, -1n, 0n, 1n, 2n], BigInt64Array],
    ['int16', [-3, -1, 0, 1, 2], Int16Array],
    ['int8', [-3, -1, 0, 1, 2], Int8Array],
    ['uint8', [253, 255, 0, 1, 2], Uint8Array],
    ['bool', [1, 1, 0, 1, 1], Uint8Array],
    // raw bits: float16 -3 = 0xC200, -1.5 = 0xBE00, 1 = 0x3C00, 2.75 = 0x4180
    ['float16', [0xc200, 0xbe00, 0, 0x3c00, 0x4180], Uint16Array],
    // bfloat16 keeps float32's upper 16 bits: -3 = 0xC040, -1.5 = 0xBFC0, 1 = 0x3F80, 2.75 = 0x4030
    ['bfloat16', [0xc040, 0xbfc0, 0, 0x3f80, 0x4030], Uint16Array],
  ];
  assertNoLeak(() => T.tidy(() => {
    for (const [dtype, expected, cls] of cases) {
      const t = T.tensor(dtype === 'uint8' ? [253, 255, 0, 1, 2] : src, [5], { dtype });
      assert.equal(t.dtype, dtype);
      const d = t.dataSync();
      assert.ok(d instanceof cls, `${dtype}: ${d.constructor.name}`);
      assert.deepEqual(Array.from(d as ArrayLike<number>), Array.from(expected as ArrayLike<number>), dtype);
    }
  }));
});

test('tensor() from each TypedArray and a Buffer copies the data and round-trips through dataSync', () => {
  assertNoLeak(() => T.tidy(() => {
    const arrays: [ArrayBufferView, T.DType][] = [
      [new Float32Array([1.5, -2, 3e-8]), 'float32'],
      [new Float64Array([1e-300, -2.5, Math.PI]), 'float64'],
      [new Int32Array([-2147483648, 0, 2147483647]), 'int32'],
      [new BigInt64Array([-(2n ** 62n), 0n, 2n ** 53n + 1n]), 'int64'],
      [new Int16Array([-32768, 1, 32767]), 'int16'],
      [new Int8Array([-128, 1, 127]), 'int8'],
      [new Uint8Array([0, 128, 255]), 'uint8'],
      [Buffer.from([7, 8, 9]), 'uint8'],
    ];
    for (const [arr, dtype] of arrays) {
      const t = T.tensor(arr, [3]);
      assert.equal(t.dtype, dtype, arr.constructor.name);
      const back = t.dataSync();
      assert.deepEqual(Array.from(back as ArrayLike<number>), Array.from(arr as unknown as ArrayLike<number>), arr.constructor.name);
      assert.notEqual(back.buffer, arr.buffer);
    }
    // the data is copied: changing the source afterwards leaves the tensor alone
    const src = new Float32Array([1, 2, 3, 4]);
    const t = T.tensor(src, [2, 2]);
    src[0] = 100;
    assert.deepEqual(vals(t), [1, 2, 3, 4]);
    // a subarray view with a byte offset
    const big = new Float64Array([9, 8, 7, 6, 5]);
    assert.deepEqual(vals(T.tensor(big.subarray(2, 4))), [7, 6]);
    // float16 / bfloat16 / bool from raw bits
    const h = T.tensor(new Uint16Array([0x3c00, 0xc000, 0x3800]), [3], { dtype: 'float16' });
    assert.deepEqual(vals(h.to('float32')), [1, -2, 0.5]);
    const bf = T.tensor(new Uint16Array([0x3f80, 0x4040]), [2], { dtype: 'bfloat16' });
    assert.deepEqual(vals(bf.to('float32')), [1, 3]);
    const b = T.tensor(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' });
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(vals(b.to('int32')), [1, 0, 1]);
    // a float16 tensor's shape defaults to its number of elements
    assert.deepEqual(T.tensor(new Uint16Array([0x3c00, 0x3c00]), undefined, { dtype: 'float16' }).shape, [2]);
    assert.throws(() => T.tensor(new Float32Array(5), [2, 2]), /shape and dtype need 16 bytes, the buffer has 20/);
    assert.throws(() => T.tensor(new Float32Array(4), [2, 2.5]), /Argument 'shape' passed to 'tensor' must be an array of non-negative integers/);
  }));
});

test('toArray converts int64 to numbers and refuses float16; item reads one element', () => {
  assertNoLeak(() => T.tidy(() => {
    assert.deepEqual(T.tensor([5, -7], [2], { dtype: 'int64' }).toArray(), [5, -7]);
    assert.throws(() => T.ones([2], { dtype: 'float16' }).toArray(), /toArray\(\) of a float16 tensor: convert with .to\('float32'\) first/);
    assert.equal(T.tensor([[4]]).item(), 4);
    assert.equal(T.tensor([3], [1], { dtype: 'int64' }).item(), 3);
    assert.equal(T.tensor([true]).to('bool').item(), 1);
    assert.throws(() => T.ones([2]).item(), T.TorchError);
  }));
});

test('creation functions: zeros ones full empty arange linspace eye scalarTensor and *Like', () => {
  assertNoLeak(() => T.tidy(() => {
    assert.deepEqual(vals(T.zeros([2, 2])), [0, 0, 0, 0]);
    assert.equal(T.zeros([2], { dtype: 'int64' }).dtype, 'int64');
    assert.deepEqual(vals(T.ones([3], { dtype: 'uint8' })), [1, 1, 1]);
    const f = T.full([2, 1], 7.5, { dtype: 'float64' });
    assert.deepEqual([f.shape, f.dtype, vals(f)], [[2, 1], 'float64', [7.5, 7.5]]);
    assert.equal(T.full([1], true, { dtype: 'bool' }).dtype, 'bool');
    assert.deepEqual(T.empty([0, 3]).shape, [0, 3]);
    assert.equal(T.empty([0]).size, 0);
    assert.deepEqual(vals(T.arange(4)), [0, 1, 2, 3]);
    assert.deepEqual(vals(T.arange(1, 2, 0.25)), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(vals(T.arange(5, 0, -2, { dtype: 'int64' })), [5, 3, 1]);
    assert.equal(T.arange(3).dtype, 'float32');
    assert.deepEqual(vals(T.linspace(0, 1, 5)), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(vals(T.eye(2, 3)), [1, 0, 0, 0, 1, 0]);
    assert.deepEqual(T.eye(3).shape, [3, 3]);
    const s = T.scalarTensor(3, { dtype: 'int32' });
    assert.deepEqual([s.shape, s.dtype, s.item()], [[], 'int32', 3]);
    const base = T.tensor([[1, 2, 3]], undefined, { dtype: 'float64' });
    for (const [fn, v] of [[T.zerosLike, 0], [T.onesLike, 1]] as const) {
      const y = fn(base);
      assert.deepEqual([y.shape, y.dtype, vals(y)], [[1, 3], 'float64', [v, v, v]]);
    }
    assert.deepEqual(vals(T.fullLike(base, -2)), [-2, -2, -2]);
    assert.deepEqual(T.emptyLike(base).shape, [1, 3]);
    const c = T.clone(base);
    T.noGrad(() => c.fill_(0));
    assert.deepEqual(vals(base), [1, 2, 3]);
    assert.ok(T.ones([2], { requiresGrad: true }).requiresGrad);
    assert.throws(() => T.zeros([2, -3]), /Argument 'shape' passed to 'zeros' must be an array of non-negative integers/);
    assert.throws(() => T.ones('3' as unknown as number[]), /Argument 'shape' passed to 'ones'/);
    assert.throws(() => T.zeros([2], { dtype: 'complex64' as T.DType }), /Argument 'dtype' passed to 'zeros' must be one of float32/);
    assert.throws(() => T.linspace(0, 1, -1), /Argument 'steps' passed to 'linspace' must be an integer >= 0, got number -1/);
    assert.throws(() => T.eye(1.5), /Argument 'n' passed to 'eye'/);
  }));
});

test('to(dtype) casts as torch: truncation toward zero, bool of nonzero, float16/bfloat16 rounding', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([-2.7, -0.5, 0, 0.5, 2.7, 300]);
    assert.deepEqual(vals(x.to('int32')), [-2, 0, 0, 0, 2, 300]);
    assert.deepEqual(vals(x.to('int64')), [-2, 0, 0, 0, 2, 300]);
    assert.deepEqual(vals(x.to('bool')), [1, 1, 0, 1, 1, 1]);
    assert.deepEqual(vals(T.tensor([1, 2, 255]).to('uint8')), [1, 2, 255]);
    const d = x.to('float64');
    assert.equal(d.dtype, 'float64');
    assertClose(vals(d), [-2.7, -0.5, 0, 0.5, 2.7, 300], 1e-6);
    // float16 rounds to 11 significant bits
    assert.deepEqual(vals(T.tensor([1 + 2 ** -12, 2049]).to('float16').to('float32')), [1, 2048]);
    assert.deepEqual(vals(T.tensor([1 + 2 ** -9]).to('bfloat16').to('float32')), [1]);
    // to() with an object; copy gives a distinct tensor; to(sameDtype) still returns a new handle
    const y = x.to({ dtype: 'float32', copy: true });
    T.noGrad(() => y.fill_(1));
    assertClose(vals(x), [-2.7, -0.5, 0, 0.5, 2.7, 300], 1e-6);
    assert.equal(x.to('cpu').device, 'cpu');
    assert.throws(() => x.to('tpu'), T.TorchError);
  }));
});

test('add/sub with alpha, mul, div (true, trunc, floor), pow, remainder; numbers on either side', () => {
  assertNoLeak(() => T.tidy(() => {
    const a = T.tensor([1, -2, 3, -7]);
    const b = T.tensor([2, 2, -2, 2]);
    assert.deepEqual(vals(T.add(a, b)), [3, 0, 1, -5]);
    assert.deepEqual(vals(T.add(a, b, 3)), [7, 4, -3, -1]);
    assert.deepEqual(vals(a.add(1)), [2, -1, 4, -6]);
    assert.deepEqual(vals(T.add(10, a)), [11, 8, 13, 3]);
    assert.deepEqual(vals(T.sub(a, b)), [-1, -4, 5, -9]);
    assert.deepEqual(vals(T.sub(a, b, 0.5)), [0, -3, 4, -8]);
    assert.deepEqual(vals(T.sub(1, a)), [0, 3, -2, 8]);
    assert.deepEqual(vals(a.mul(b)), [2, -4, -6, -14]);
    assert.deepEqual(vals(T.mul(a, -1)), [-1, 2, -3, 7]);
    assert.deepEqual(vals(a.div(b)), [0.5, -1, -1.5, -3.5]);
    assert.deepEqual(vals(T.div(a, b, 'trunc')), [0, -1, -1, -3]);
    assert.deepEqual(vals(T.div(a, b, 'floor')), [0, -1, -2, -4]);
    assert.deepEqual(vals(T.div(1, T.tensor([4, 0.5]))), [0.25, 2]);
    assert.deepEqual(vals(T.pow(T.tensor([1, 2, 3]), 2)), [1, 4, 9]);
    assert.deepEqual(vals(T.pow(2, T.tensor([0, 1, 3]))), [1, 2, 8]);
    assert.deepEqual(vals(T.pow(T.tensor([4, 9]), T.tensor([0.5, 0.5]))), [2, 3]);
    assert.deepEqual(vals(T.remainder(T.tensor([5, -5, 5.5]), 3)), [2, 1, 2.5]);
    // broadcasting
    const col = T.tensor([[1], [10]]);
    const row = T.tensor([[1, 2, 3]]);
    const s = T.add(col, row);
    assert.deepEqual(s.shape, [2, 3]);
    assert.deepEqual(vals(s), [2, 3, 4, 11, 12, 13]);
    // integer tensors stay integer with integer scalars; true division promotes
    const i = T.tensor([7, -7], [2], { dtype: 'int64' });
    assert.equal(i.add(1).dtype, 'int64');
    assert.equal(i.div(2).dtype, 'float32');
    assert.deepEqual(vals(i.div(2, 'floor')), [3, -4]);
    assert.throws(() => T.add(1, 2), /'add' needs at least one Tensor operand, got 1 and 2/);
    assert.throws(() => T.mul(a, 'x' as unknown as number), /Argument 'b' passed to 'mul' must be a Tensor, got string x/);
    assert.throws(() => T.div(a, b, 'round' as 'floor'), /Argument 'roundingMode' passed to 'div' must be one of 'trunc', 'floor', got string round/);
    assert.throws(() => T.add(T.ones([2]), T.ones([3])), T.TorchError);
  }));
});

test('a number as first operand frees its temporary tensor and promotes as a torch scalar', () => {
  const x = T.tensor([1, 2, 3]);
  const i = T.tensor([1, 2], undefined, { dtype: 'int64' });
  const b = T.tensor([true, false], undefined, { dtype: 'bool' });
  const lo = T.zeros([3]);
  const hi = T.full([3], 2.5);
  const before = T.memory().liveTensors;
  const outs = [T.add(10, x), T.sub(1, x), T.mul(2, x), T.div(6, x), T.lt(1, x), T.pow(2, x), T.clamp(x, lo, 2), T.clamp(x, 0.5, hi)];
  assert.equal(T.memory().liveTensors, before + outs.length, 'one live tensor per result, no temporaries');
  assert.deepEqual(outs.map(vals), [[11, 12, 13], [0, -1, -2], [2, 4, 6], [6, 3, 2], [0, 1, 1], [2, 4, 8], [1, 2, 2], [1, 2, 2.5]]);
  const fi = T.add(1.5, i);
  assert.deepEqual([fi.dtype, vals(fi)], ['float32', [2.5, 3.5]]);
  const ii = T.sub(5, i);
  assert.deepEqual([ii.dtype, vals(ii)], ['int64', [4, 3]]);
  const bi = T.mul(2, b);
  assert.deepEqual([bi.dtype, vals(bi)], ['int64', [2, 0]]);
  T.dispose([outs, x, i, b, lo, hi, fi, ii, bi]);
  assert.equal(T.memory().liveTensors, before - 5);
});

test('unary math ops against known values', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([-2, -0.5, 0, 0.5, 2], undefined, { dtype: 'float64' });
    const xs = [-2, -0.5, 0, 0.5, 2];
    const check = (t: T.Tensor, f: (v: number) => number, name: string): void =>
      assertClose(vals(t), xs.map(f), 1e-12, 1e-12, name);
    check(T.neg(x), (v) => -v, 'neg');
    check(x.exp(), Math.exp, 'exp');
    check(T.abs(x), Math.abs, 'abs');
    check(T.sign(x), Math.sign, 'sign');
    check(x.sigmoid(), (v) => 1 / (1 + Math.exp(-v)), 'sigmoid');
    check(x.tanh(), Math.tanh, 'tanh');
    check(x.relu(), (v) => Math.max(v, 0), 'relu');
    check(x.silu(), (v) => v / (1 + Math.exp(-v)), 'silu');
    check(T.sin(x), Math.sin, 'sin');
    check(T.cos(x), Math.cos, 'cos');
    check(x.floor(), Math.floor, 'floor');
    check(T.ceil(x), Math.ceil, 'ceil');
    check(T.trunc(x), Math.trunc, 'trunc');
    check(x.square(), (v) => v * v, 'square');
    check(T.leakyRelu(x, 0.1), (v) => (v > 0 ? v : 0.1 * v), 'leakyRelu');
    check(T.erf(x), (v) => [-0.9953222650189527, -0.5204998778130465, 0, 0.5204998778130465, 0.9953222650189527][xs.indexOf(v)], 'erf');
    // round: half to even as torch
    assert.deepEqual(vals(T.tensor([-1.5, -0.5, 0.5, 1.5, 2.5]).round()), [-2, -0, 0, 2, 2]);
    const p = T.tensor([0.25, 1, 4], undefined, { dtype: 'float64' });
    assertClose(vals(p.log()), [Math.log(0.25), 0, Math.log(4)], 1e-12);
    assertClose(vals(T.log2(p)), [-2, 0, 2], 1e-12);
    assertClose(vals(T.log1p(p)), [Math.log1p(0.25), Math.log(2), Math.log(5)], 1e-12);
    assertClose(vals(p.sqrt()), [0.5, 1, 2], 1e-12);
    assertClose(vals(T.rsqrt(p)), [2, 1, 0.5], 1e-12);
    assertClose(vals(T.reciprocal(p)), [4, 1, 0.25], 1e-12);
    assertClose(vals(T.atan2(T.tensor([1, -1]), T.tensor([1, 0]))), [Math.PI / 4, -Math.PI / 2], 1e-6);
    // gelu exact: x * Phi(x)
    assertClose(vals(T.gelu(T.tensor([1], undefined, { dtype: 'float64' }))), [0.8413447460685429], 1e-12);
    assert.throws(() => T.gelu(x, 'fast' as 'none'), /Argument 'approximate' passed to 'gelu' must be one of 'none', 'tanh'/);
    assert.throws(() => T.exp(5 as unknown as T.Tensor), /Argument 'x' passed to 'exp' must be a Tensor, got number 5/);
  }));
});

test('special values: isnan, isfinite, nanToNum, log(0), sqrt(-1)', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([0, -1, 1]);
    const l = x.log();
    assert.deepEqual(vals(T.isnan(l)), [0, 1, 0]);
    assert.deepEqual(vals(T.isfinite(l)), [0, 0, 1]);
    assert.equal(T.isnan(l).dtype, 'bool');
    assert.deepEqual(vals(x.log()), [-Infinity, NaN, 0]);
    const y = T.tensor([NaN, Infinity, -Infinity, 2]);
    assert.deepEqual(vals(T.nanToNum(y, 0, 100, -100)), [0, 100, -100, 2]);
    assert.ok(Number.isNaN(T.sqrt(T.tensor([-1])).item()));
  }));
});

test('clamp with numbers, one-sided, and tensor bounds; lerp, addcmul, addcdiv, where', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([-3, -1, 0, 2, 5]);
    assert.deepEqual(vals(x.clamp(-1, 2)), [-1, -1, 0, 2, 2]);
    assert.deepEqual(vals(T.clamp(x, 0)), [0, 0, 0, 2, 5]);
    assert.deepEqual(vals(T.clamp(x, null, 1)), [-3, -1, 0, 1, 1]);
    assert.deepEqual(vals(T.clamp(x, T.tensor([0, 0, 0, 3, 0]), 4)), [0, 0, 0, 3, 4]);
    assert.deepEqual(vals(T.clamp(x, -2, T.tensor([0, 0, 0, 0, 0]))), [-2, -1, 0, 0, 0]);
    assert.throws(() => T.clamp(x), /'clamp' needs at least one of 'min' and 'max'/);
    const a = T.tensor([0, 10]);
    const b = T.tensor([10, 20]);
    assert.deepEqual(vals(T.lerp(a, b, 0.25)), [2.5, 12.5]);
    assert.deepEqual(vals(T.lerp(a, b, T.tensor([0, 1]))), [0, 20]);
    assert.deepEqual(vals(T.addcmul(a, b, T.tensor([1, 2]), 0.5)), [5, 30]);
    assert.deepEqual(vals(T.addcdiv(a, b, T.tensor([5, 4]), 2)), [4, 20]);
    const cond = T.tensor([true, false, true], undefined, { dtype: 'bool' });
    assert.deepEqual(vals(T.where(cond, T.tensor([1, 2, 3]), T.tensor([-1, -2, -3]))), [1, -2, 3]);
    assert.deepEqual(vals(T.where(cond, T.tensor([1, 2, 3]), 0)), [1, 0, 3]);
    assert.deepEqual(vals(T.where(cond, 9, T.tensor([1, 2, 3]))), [9, 2, 9]);
    assert.deepEqual(vals(T.where(cond, 1, 0)), [1, 0, 1]);
    assert.deepEqual(vals(T.where(T.tensor([[true], [false]], undefined, { dtype: 'bool' }), T.ones([1, 2]), T.zeros([1, 2]))), [1, 1, 0, 0]);
    assert.throws(() => T.where(null as unknown as T.Tensor, 1, 0), /Argument 'condition' passed to 'where' must be a Tensor, got null/);
  }));
});

test('comparisons give bool tensors; logical ops; maximum and minimum', () => {
  assertNoLeak(() => T.tidy(() => {
    const a = T.tensor([1, 2, 3]);
    const b = T.tensor([3, 2, 1]);
    const cases: [T.Tensor, number[]][] = [
      [a.eq(b), [0, 1, 0]], [a.ne(b), [1, 0, 1]], [a.lt(b), [1, 0, 0]],
      [a.le(b), [1, 1, 0]], [a.gt(b), [0, 0, 1]], [a.ge(b), [0, 1, 1]],
      [T.eq(a, 2), [0, 1, 0]], [T.gt(a, 1.5), [0, 1, 1]], [T.le(2, a), [0, 1, 1]],
    ];
    for (const [t, expected] of cases) {
      assert.equal(t.dtype, 'bool');
      assert.deepEqual(vals(t), expected);
    }
    const p = T.tensor([true, true, false, false], undefined, { dtype: 'bool' });
    const q = T.tensor([true, false, true, false], undefined, { dtype: 'bool' });
    assert.deepEqual(vals(T.logicalAnd(p, q)), [1, 0, 0, 0]);
    assert.deepEqual(vals(T.logicalOr(p, q)), [1, 1, 1, 0]);
    assert.deepEqual(vals(T.logicalXor(p, q)), [0, 1, 1, 0]);
    assert.deepEqual(vals(p.logicalNot()), [0, 0, 1, 1]);
    assert.deepEqual(vals(T.logicalAnd(T.tensor([0, 2]), T.tensor([3, 3]))), [0, 1]);
    assert.deepEqual(vals(a.maximum(b)), [3, 2, 3]);
    assert.deepEqual(vals(T.minimum(a, b)), [1, 2, 1]);
    assert.throws(() => T.maximum(a, 2 as unknown as T.Tensor), /Argument 'b' passed to 'maximum' must be a Tensor/);
  }));
});

test('in-place updates change the tensor and return it; the handle stays the same', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([1, 2, 3]);
    T.noGrad(() => {
      assert.equal(x.add_(1), x);
      assert.deepEqual(vals(x), [2, 3, 4]);
      x.sub_(T.tensor([1, 1, 1]), 2);
      assert.deepEqual(vals(x), [0, 1, 2]);
      x.mul_(3).div_(2);
      assert.deepEqual(vals(x), [0, 1.5, 3]);
      x.addcmul_(T.tensor([1, 1, 1]), T.tensor([2, 2, 2]), 0.5);
      assert.deepEqual(vals(x), [1, 2.5, 4]);
      x.addcdiv_(T.tensor([2, 2, 2]), T.tensor([4, 4, 4]));
      assert.deepEqual(vals(x), [1.5, 3, 4.5]);
      x.clamp_(2, 4);
      assert.deepEqual(vals(x), [2, 3, 4]);
      x.lerp_(T.tensor([4, 4, 4]), 0.5);
      assert.deepEqual(vals(x), [3, 3.5, 4]);
      x.maskedFill_(T.tensor([true, false, true], undefined, { dtype: 'bool' }), -1);
      assert.deepEqual(vals(x), [-1, 3.5, -1]);
      x.copy_(T.tensor([7, 8, 9], undefined, { dtype: 'float64' }));
      assert.deepEqual(vals(x), [7, 8, 9]);
      x.fill_(5);
      assert.deepEqual(vals(x), [5, 5, 5]);
      x.zero_();
      assert.deepEqual(vals(x), [0, 0, 0]);
      const i = T.tensor([1, 2], undefined, { dtype: 'int64' });
      i.add_(3);
      assert.deepEqual([i.dtype, vals(i)], ['int64', [4, 5]]);
    });
    assert.throws(() => x.copy_(5 as unknown as T.Tensor), /Argument 'src' passed to 'copy_' must be a Tensor/);
    const leaf = T.ones([2], { requiresGrad: true });
    assert.throws(() => leaf.add_(1), /a leaf Variable that requires grad/);
  }));
});

test('method forms equal function forms and refuse a disposed tensor', () => {
  assertNoLeak(() => {
    const x = T.tensor([1, 4, 9]);
    T.tidy(() => {
      assert.deepEqual(vals(x.sqrt()), vals(T.sqrt(x)));
      assert.deepEqual(vals(x.add(1, 2)), vals(T.add(x, 1, 2)));
      assert.deepEqual(vals(x.pow(2)), vals(T.pow(x, 2)));
    });
    x.dispose();
    assert.throws(() => x.sqrt(), /Argument 'x' passed to 'sqrt': Tensor is disposed/);
    assert.throws(() => x.add_(1), /Tensor is disposed/);
    assert.throws(() => x.dataSync(), /Tensor is disposed/);
    assert.equal(String(x), 'Tensor(disposed)');
  });
});

test('autograd basics: requiresGrad, isLeaf, grad, detach, noGrad, retainGrad, backward needs grad for non-scalars', () => {
  assertNoLeak(() => T.tidy(() => {
    const x = T.tensor([1, 2, 3], undefined, { requiresGrad: true });
    assert.ok(x.requiresGrad && x.isLeaf);
    const y = x.mul(x);
    assert.ok(y.requiresGrad && !y.isLeaf);
    y.retainGrad();
    y.sum().backward();
    assert.deepEqual(vals(x.grad!), [2, 4, 6]);
    assert.deepEqual(vals(y.grad!), [1, 1, 1]);
    x.mul(3).sum().backward();
    assert.deepEqual(vals(x.grad!), [5, 7, 9], 'gradients accumulate');
    x.grad = undefined;
    assert.equal(x.grad, undefined);
    assert.equal(x.detach().requiresGrad, false);
    assert.equal(T.noGrad(() => x.mul(2)).requiresGrad, false);
    assert.equal(T.noGrad(() => T.isGradEnabled()), false);
    assert.equal(T.noGrad(() => T.enableGrad(() => T.isGradEnabled())), true);
    assert.equal(T.isGradEnabled(), true);
    assert.throws(() => x.mul(2).backward(), /'backward' of a non-scalar output \[3\] needs 'grad'/);
    x.mul(2).backward(T.tensor([1, 0, 1]));
    assert.deepEqual(vals(x.grad!), [2, 0, 2]);
    T.zeroGrads([x]);
    assert.equal(x.grad, undefined);
    assert.throws(() => T.noGrad(() => { throw new Error('inner'); }), /inner/);
    assert.equal(T.isGradEnabled(), true, 'grad mode restored after a throw');
  }));
});
