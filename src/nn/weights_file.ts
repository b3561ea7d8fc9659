/**
 * Weights files of either format, told apart by their first bytes:
 *   safetensors  (an 8-byte header length, then a JSON header)
 *   PyTorch      what torch.save writes (PyTorch >= 1.6: a zip archive), read through
 *                libtorch's unpickler (tensor/serialize.ts); .pth, .pt, .bin alike
 * A PyTorch checkpoint is taken as people save them: a bare state dict, or a dict holding
 * one under 'state_dict', 'model_state_dict', 'model', 'module', 'net' or 'network' (the
 * rest: epochs, optimizer state, is left out and reported). A 'module.' prefix
 * (DataParallel) is the name maps' business (models/weights.ts).
 *   const w = readWeightsFile('resnet18.pth'); // w.container === null, w.format === 'pytorch'
 */
import * as fs from 'fs';
import { Tensor, TorchError, dispose, torchLoad } from '../tensor';
import { DTYPE_TO_ST, WeightsError, inspectSafetensors, readSafetensors } from './safetensors';

export type WeightsFormat = 'safetensors' | 'pytorch';

export interface WeightsFile {
  format: WeightsFormat;
  tensors: Map<string, Tensor>;
  /** the key of the checkpoint dict that held the state dict; null for a bare one (and safetensors) */
  container: string | null;
  /** what else the file held, as "key: kind" (PyTorch files) */
  others: string[];
}

/** Keys under which checkpoints keep their state dict, most specific first. */
export const CONTAINER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network'];

/** The format of a weights file from its first bytes. */
export function weightsFormat(file: string): WeightsFormat {
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      head = Buffer.alloc(8);
      head = head.subarray(0, fs.readSync(fd, head, 0, 8, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new WeightsError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // zip archives (torch.save) start with PK 3 4, legacy torch.save files with a pickle
  // opcode (0x80); anything else named like a PyTorch file goes to libtorch for its message
  const torchMagic = (head.length >= 4 && head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 3, 4]))) || head[0] === 0x80;
  return torchMagic || /\.(pth|pt|bin|ckpt|tar)$/i.test(file) ? 'pytorch' : 'safetensors';
}

function readPytorch(file: string): WeightsFile {
  let loaded;
  try {
    loaded = torchLoad(file);
  } catch (err) {
    if (err instanceof TorchError) throw new WeightsError(file, err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message);
    throw err;
  }
  const { entries, others } = loaded;
  const tops = [...new Set(entries.filter(([p]) => p.length >= 2).map(([p]) => p[0]))];
  const bare = entries.filter(([p]) => p.length === 1);
  let container: string | null = null;
  let chosen: [string[], Tensor][];
  if (bare.length > 0) {
    chosen = bare;
  } else {
    container = CONTAINER_KEYS.find((k) => tops.includes(k)) ?? (tops.length === 1 ? tops[0] : null);
    chosen = container === null ? [] : entries.filter(([p]) => p.length === 2 && p[0] === container);
  }
  const keep = new Set(chosen.map(([, t]) => t));
  dispose(entries.map(([, t]) => t).filter((t) => !keep.has(t)));
  if (chosen.length === 0) {
    const held = [...tops.map((t) => `${t} (a dict)`), ...others].slice(0, 12).join(', ') || 'nothing';
    const why = entries.length === 0 ? 'holds no tensors' : `holds no state dict at its top level or under ${CONTAINER_KEYS.join(', ')}`;
    throw new WeightsError(file, `${why}; it holds: ${held}`);
  }
  const skipped = entries.filter(([, t]) => !keep.has(t)).length;
  const notes = [...others, ...(skipped ? [`${skipped} tensors outside the state dict (optimizer state, ...)`] : [])];
  return { format: 'pytorch', tensors: new Map(chosen.map(([p, t]) => [p[p.length - 1], t])), container, others: notes };
}

/** Every tensor of a weights file (the caller disposes them). */
export function readWeightsFile(file: string): WeightsFile {
  if (weightsFormat(file) === 'pytorch') return readPytorch(file);
  return { format: 'safetensors', tensors: readSafetensors(file).tensors, container: null, others: [] };
}

/** Names, dtypes and shapes of a weights file's tensors (safetensors: from the header alone). */
export function inspectWeightsFile(file: string): { format: WeightsFormat; container: string | null; others: string[];
  tensors: { name: string; dtype: string; shape: number[] }[] } {
  if (weightsFormat(file) === 'safetensors') return { format: 'safetensors', container: null, others: [], tensors: inspectSafetensors(file).tensors };
  const w = readPytorch(file);
  try {
    return { format: 'pytorch', container: w.container, others: w.others, tensors: [...w.tensors].map(([name, t]) => ({ name, dtype: DTYPE_TO_ST[t.dtype], shape: t.shape })) };
  } finally {
    dispose([...w.tensors.values()]);
  }
}
