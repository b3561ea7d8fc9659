/**
 * Files that torch.save wrote (PyTorch >= 1.6's zip format), read by libtorch's own
 * unpickler in the addon: a restricted reader that rebuilds dicts, lists, numbers and
 * tensors and runs no code. The tensors come back with their key paths (a state dict
 * saved bare: ['conv1.weight']; inside a checkpoint dict: ['state_dict', 'conv1.weight']).
 * Errors (a legacy-format file, an OrderedDict under libtorch < 2.6, a damaged archive)
 * are TorchErrors naming the file and what to do.
 */
import { callV } from './call';
import { Tensor, wrap } from './tensor';

export interface TorchFile {
  /** each tensor with its key path, outermost key first */
  entries: [string[], Tensor][];
  /** the other values found, as "path: kind" (an epoch, a learning rate) */
  others: string[];
}

export function torchLoad(file: string): TorchFile {
  const r = callV('torchLoad', file);
  return {
    entries: r.names.map((n, i) => [n === '' ? [] : n.split('\x1f'), wrap(r.tensors[i])]),
    others: r.others.map((o) => o.replace(/\x1f/g, '.')),
  };
}
