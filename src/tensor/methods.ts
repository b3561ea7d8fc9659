/**
 * Method forms of the ops (tfjs-core's chained ops): `x.add(y)` calls `add(x, y)`.
 * Also the in-place updates (torch's trailing underscore), for use under noGrad,
 * and the autograd accessors (grad, requiresGrad, backward, detach).
 */
import * as A from './autograd';
import { checkTensor } from './check';
import { DType } from './dtype';
import * as F from './functional';
import * as O from './ops';
import { callT, callV } from './call';
import { NativeHandle } from './native';
import { Tensor, wrap } from './tensor';

type Operand = Tensor | number | boolean;

declare module './tensor' {
  interface Tensor {
    add(b: Operand, alpha?: number): Tensor;
    sub(b: Operand, alpha?: number): Tensor;
    mul(b: Operand): Tensor;
    div(b: Operand, roundingMode?: 'trunc' | 'floor'): Tensor;
    pow(b: Operand): Tensor;
    eq(b: Operand): Tensor;
    ne(b: Operand): Tensor;
    lt(b: Operand): Tensor;
    le(b: Operand): Tensor;
    gt(b: Operand): Tensor;
    ge(b: Operand): Tensor;
    maximum(b: Tensor): Tensor;
    minimum(b: Tensor): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    abs(): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    relu(): Tensor;
    silu(): Tensor;
    floor(): Tensor;
    round(): Tensor;
    square(): Tensor;
    logicalNot(): Tensor;
    clamp(min?: number | Tensor | null, max?: number | Tensor | null): Tensor;
    sum(dim?: number | number[] | null, opts?: O.ReduceOptions): Tensor;
    mean(dim?: number | number[] | null, opts?: O.ReduceOptions): Tensor;
    max(dim?: number | number[] | null, keepdim?: boolean): Tensor;
    min(dim?: number | number[] | null, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    var(dim?: number | number[] | null, opts?: O.VarOptions): Tensor;
    std(dim?: number | number[] | null, opts?: O.VarOptions): Tensor;
    reshape(shape: number[]): Tensor;
    view(shape: number[]): Tensor;
    permute(dims: number[]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    select(dim: number, index: number): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    flip(dims: number | number[]): Tensor;
    expand(shape: number[]): Tensor;
    contiguous(): Tensor;
    clone(): Tensor;
    to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor;
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    matmul(b: Tensor): Tensor;

    add_(b: Operand, alpha?: number): this;
    sub_(b: Operand, alpha?: number): this;
    mul_(b: Operand): this;
    div_(b: Operand): this;
    copy_(src: Tensor): this;
    fill_(v: number | boolean): this;
    zero_(): this;
    clamp_(min?: number | null, max?: number | null): this;
    addcmul_(t1: Tensor, t2: Tensor, value?: number): this;
    addcdiv_(t1: Tensor, t2: Tensor, value?: number): this;
    lerp_(end: Tensor, weight: number | Tensor): this;
    maskedFill_(mask: Tensor, value: number): this;
    normal_(mean?: number, std?: number): this;
    uniform_(from?: number, to?: number): this;
    bernoulli_(p?: number): this;

    /** The accumulated gradient (a new handle on it), or undefined. */
    grad: Tensor | undefined;
    readonly requiresGrad: boolean;
    readonly isLeaf: boolean;
    requiresGrad_(flag?: boolean): this;
    retainGrad(): this;
    backward(grad?: Tensor, retainGraph?: boolean): void;
    detach(): Tensor;
  }
}

const P = Tensor.prototype;
type Fn = (x: Tensor, ...args: never[]) => unknown;
const methods: Record<string, Fn> = {
  add: O.add, sub: O.sub, mul: O.mul, div: O.div, pow: O.pow, eq: O.eq, ne: O.ne, lt: O.lt, le: O.le, gt: O.gt, ge: O.ge,
  maximum: O.maximum, minimum: O.minimum, neg: O.neg, exp: O.exp, log: O.log, sqrt: O.sqrt, abs: O.abs, sigmoid: O.sigmoid,
  tanh: O.tanh, relu: O.relu, silu: O.silu, floor: O.floor, round: O.round, square: O.square, logicalNot: O.logicalNot,
  clamp: O.clamp, sum: O.sum, mean: O.mean, max: O.max, min: O.min, argmax: O.argmax, var: O.variance, std: O.std,
  reshape: O.reshape, view: O.view, permute: O.permute, transpose: O.transpose, squeeze: O.squeeze, unsqueeze: O.unsqueeze,
  narrow: O.narrow, slice: O.slice, select: O.select, indexSelect: O.indexSelect, gather: O.gather, flip: O.flip,
  expand: O.expand, contiguous: O.contiguous, clone: O.clone, to: O.to, softmax: F.softmax, logSoftmax: F.logSoftmax,
  matmul: F.matmul,
};
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(P, name, {
    value: function (this: Tensor, ...args: never[]) {
      return fn(this, ...args);
    },
    writable: true,
    configurable: true,
  });
}

const h = (x: Operand): NativeHandle | number | boolean => (x instanceof Tensor ? x.handle : x);
function inplace(name: string, impl: (self: Tensor, ...args: never[]) => void): void {
  Object.defineProperty(P, name, {
    value: function (this: Tensor, ...args: never[]) {
      impl(checkTensor(this, 'self', name), ...args);
      return this;
    },
    writable: true,
    configurable: true,
  });
}
inplace('add_', (x, b: Operand, alpha?: number) => callV('add_', x.handle, h(b), alpha));
inplace('sub_', (x, b: Operand, alpha?: number) => callV('sub_', x.handle, h(b), alpha));
inplace('mul_', (x, b: Operand) => callV('mul_', x.handle, h(b)));
inplace('div_', (x, b: Operand) => callV('div_', x.handle, h(b)));
inplace('copy_', (x, src: Tensor) => callV('copy_', x.handle, checkTensor(src, 'src', 'copy_').handle));
inplace('fill_', (x, v: number) => callV('fill_', x.handle, v));
inplace('zero_', (x) => callV('zero_', x.handle));
inplace('clamp_', (x, lo?: number | null, hi?: number | null) => callV('clamp_', x.handle, lo ?? undefined, hi ?? undefined));
inplace('addcmul_', (x, t1: Tensor, t2: Tensor, value = 1) => callV('addcmul_', x.handle, t1.handle, t2.handle, value));
inplace('addcdiv_', (x, t1: Tensor, t2: Tensor, value = 1) => callV('addcdiv_', x.handle, t1.handle, t2.handle, value));
inplace('lerp_', (x, end: Tensor, w: number | Tensor) => callV('lerp_', x.handle, end.handle, h(w)));
inplace('maskedFill_', (x, mask: Tensor, v: number) => callV('maskedFill_', x.handle, mask.handle, v));
inplace('normal_', (x, mean = 0, std = 1) => callV('normal_', x.handle, mean, std));
inplace('uniform_', (x, from = 0, to = 1) => callV('uniform_', x.handle, from, to));
inplace('bernoulli_', (x, p = 0.5) => callV('bernoulli_', x.handle, p));
inplace('requiresGrad_', (x, flag = true) => callV('setRequiresGrad', x.handle, flag));
inplace('retainGrad', (x) => callV('retainGrad', x.handle));

Object.defineProperty(P, 'grad', {
  get(this: Tensor) {
    const g = callV('grad', this.handle);
    return g === undefined ? undefined : wrap(g);
  },
  set(this: Tensor, g: Tensor | undefined) {
    callV('setGrad', this.handle, g?.handle);
  },
  configurable: true,
});
Object.defineProperty(P, 'requiresGrad', {
  get(this: Tensor) {
    return callV('requiresGrad', this.handle);
  },
  configurable: true,
});
Object.defineProperty(P, 'isLeaf', {
  get(this: Tensor) {
    return callV('isLeaf', this.handle);
  },
  configurable: true,
});
Object.defineProperty(P, 'backward', {
  value: function (this: Tensor, grad?: Tensor, retainGraph?: boolean) {
    A.backward(this, grad, retainGraph);
  },
  writable: true,
  configurable: true,
});
Object.defineProperty(P, 'detach', {
  value: function (this: Tensor) {
    return callT('detach', this.handle);
  },
  writable: true,
  configurable: true,
});
