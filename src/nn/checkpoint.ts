/** Module state dicts to and from safetensors files. */
import { dispose } from '../tensor';
import { LoadResult, Module } from './module';
import { assertFinite, readSafetensors, SafetensorsError, writeSafetensors } from './safetensors';

/** Writes a module's state dict (PyTorch names and order) to a safetensors file, atomically. */
export function saveStateDict(module: Module, file: string, metadata: Record<string, string> = {}): void {
  writeSafetensors(file, module.stateDict(), metadata);
}

/**
 * Loads a safetensors state dict into a module. Strict by default: a missing, unexpected
 * or mis-shaped tensor is an error naming the file and the tensor; { strict: false }
 * loads what fits and reports the rest. A tensor holding NaN or Inf is always an error.
 */
export function loadStateDict(module: Module, file: string, opts: { strict?: boolean } = {}): LoadResult {
  const { tensors } = readSafetensors(file);
  try {
    assertFinite(file, tensors);
    return module.loadStateDict(tensors, opts);
  } catch (err) {
    if (err instanceof Error && 'result' in err) throw new SafetensorsError(file, err.message);
    throw err;
  } finally {
    dispose([...tensors.values()]);
  }
}
