/**
 * The one door to the addon's op table, internal to src/tensor: every file above
 * tensor/ calls the typed functions of ops.ts, functional.ts, kernels.ts, ... instead
 * (test/layering.test.ts fails when one imports this module or native.ts).
 * The op names and argument types come from the manifest (manifest.ts): a call with an
 * unknown op, a wrong argument type or the wrong return kind does not compile.
 */
import { ArgKind, OPS, OpSignature, ReturnKind } from './manifest';
import { NativeHandle, native, opId } from './native';
import { Tensor, wrap } from './tensor';

type Base<B> = B extends 'T' ? NativeHandle
  : B extends 'TS' ? NativeHandle | number | boolean
  : B extends 'S' ? number | boolean
  : B extends 'i' | 'f' | 'dtype' ? number
  : B extends 'b' ? boolean
  : B extends 's' | 'device' ? string
  : B extends 'ints' | 'f64s' ? number[]
  : B extends 'Ts' ? NativeHandle[]
  : never;
type ArgType<K> = K extends `${infer B}?` ? Base<B> | null | undefined : Base<K>;
/** The argument tuple of a declaration; optional kinds may be left off at the end. */
export type ArgsOf<L> = L extends readonly [infer H, ...infer R]
  ? H extends `${string}?` ? [ArgType<H>?, ...ArgsOf<R>] : [ArgType<H>, ...ArgsOf<R>]
  : [];
type ReturnOf<R> = R extends 'T' ? NativeHandle : R extends 'T?' ? NativeHandle | undefined : R extends 'Ts' ? NativeHandle[]
  : R extends 'number' ? number : R extends 'boolean' ? boolean : R extends 'string' ? string : R extends 'ints' ? number[]
  : R extends 'named' ? { names: string[]; tensors: NativeHandle[]; others: string[] } : void;

/** The production ops whose arguments are exactly `A` and that return a tensor (unary, binary, ...). */
export type OpWithArgs<A extends readonly ArgKind[]> = {
  [K in keyof typeof OPS]: (typeof OPS)[K]['args'] extends A ? ((typeof OPS)[K]['returns'] extends 'T' ? K : never) : never
}[keyof typeof OPS];

/** Typed calls by name over a bound table (`id` gives an op's id, `call` makes the call). */
export function typedCalls<M extends Record<string, OpSignature>>(_manifest: M, id: (op: keyof M & string) => number,
  call: (id: number, ...args: unknown[]) => unknown) {
  type Name = keyof M & string;
  type Returning<R extends ReturnKind> = { [K in Name]: M[K]['returns'] extends R ? K : never }[Name];
  return {
    /** one native call returning one tensor */
    callT<K extends Returning<'T'>>(op: K, ...args: ArgsOf<M[K]['args']>): Tensor {
      return wrap(call(id(op), ...args) as NativeHandle);
    },
    /** one native call returning a list of tensors */
    callTs<K extends Returning<'Ts'>>(op: K, ...args: ArgsOf<M[K]['args']>): Tensor[] {
      return (call(id(op), ...args) as NativeHandle[]).map(wrap);
    },
    /** one native call returning a plain value (or a handle that may be absent) */
    callV<K extends Name>(op: K, ...args: ArgsOf<M[K]['args']>): ReturnOf<M[K]['returns']> {
      return call(id(op), ...args) as ReturnOf<M[K]['returns']>;
    },
  };
}

export const { callT, callTs, callV } = typedCalls(OPS, opId, (id, ...args) => native.call(id, ...args));
