/**
 * The one door to the addon's op table, internal to src/tensor: every file above
 * tensor/ calls the typed functions of ops.ts, functional.ts, kernels.ts, ... instead
 * (test/tensor/layering.test.ts fails when one imports this module or native.ts).
 */
import { native, NativeHandle, opId } from './native';
import { Tensor, wrap } from './tensor';

const ids = new Map<string, number>();
function id(name: string): number {
  let v = ids.get(name);
  if (v === undefined) {
    v = opId(name);
    ids.set(name, v);
  }
  return v;
}

/** one native call returning one tensor */
export function callT(op: string, ...args: unknown[]): Tensor {
  return wrap(native.call(id(op), ...args) as NativeHandle);
}
/** one native call returning a list of tensors */
export function callTs(op: string, ...args: unknown[]): Tensor[] {
  return (native.call(id(op), ...args) as NativeHandle[]).map(wrap);
}
/** one native call returning a plain value */
export function callV<T>(op: string, ...args: unknown[]): T {
  return native.call(id(op), ...args) as T;
}
