"""
PyTorch checkpoints as people save them, for test/models/torch_checkpoints.test.ts:
torch.save files of a small smp Unet (tools/golden/smp_ref.py, encoder 'efficientnet-test',
decoder (16, 16, 8, 8, 8), 2 classes), written by Debian's python3-torch in the forms
cqseg must read or refuse, and the model's output on a fixed input (eval mode) so the
test compares cqseg's forward with PyTorch's.

  /usr/bin/python3 tools/golden/torch_checkpoints.py   # writes test/data/torch-checkpoints/

Files (zip format unless said):
  dict.pth          torch.save(dict(model.state_dict()))                     a bare state dict
  wrapped.pt        {'state_dict': {'module.' + k: v}, 'epoch', 'optimizer'}  a training checkpoint
  model_key.bin     {'model': dict(state_dict), 'step': 100}                  another container key
  fp16.pth          dict(state_dict) in float16 (running statistics too)
  bf16.pth          dict(state_dict) in bfloat16
  encoder.pth       dict(model.encoder.state_dict())                          efficientnet_pytorch layout
  single_entry.pth  {'state_dict': ..., 'meta': {'epoch': 1}}: a one-entry dict, which the unpickler
                    of libtorch 1.13 cannot read (pickle's SETITEM; APPEND for one-entry lists)
  ordered.pth       torch.save(model.state_dict()): an OrderedDict, which the unpickler of
                    libtorch < 2.6 cannot read (pytorch/pytorch#37213)
  legacy.pth        the legacy (pre-1.6) format: _use_new_zipfile_serialization=False
  no_tensors.pth    {'epoch': 3, 'lr': 0.1, 'name': 'run'}
  wrong_shape.pth   dict.pth with segmentation_head.0.weight of 3 classes
  expected.json     the input (1, 3, 32, 32) and the outputs (float64 lists) of the float32,
                    float16-rounded and bfloat16-rounded weights
"""
import collections
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smp_ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'data', 'torch-checkpoints')


def randomise_stats(model):
    """Running statistics away from 0 and 1, so that a mix-up shows in the output."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith('running_mean'):
                t.copy_(torch.randn_like(t) * 0.1)
            elif name.endswith('running_var'):
                t.copy_(torch.rand_like(t) + 0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = smp_ref.Unet('efficientnet-test', decoder_channels=(16, 16, 8, 8, 8), classes=2)
    randomise_stats(model)
    model.eval()
    sd = model.state_dict()
    plain = {k: v.clone() for k, v in sd.items()}
    save = lambda obj, name, **kw: torch.save(obj, os.path.join(OUT, name), **kw)
    save(plain, 'dict.pth')
    # every dict and list of two entries or more: libtorch 1.13's unpickler cannot read one-entry ones (single_entry.pth)
    state = {i: {'step': torch.tensor(3.0), 'exp_avg': torch.zeros(4)} for i in range(2)}
    save({'state_dict': {'module.' + k: v for k, v in plain.items()}, 'epoch': 7,
          'optimizer': {'state': state, 'param_groups': [{'lr': 0.01, 'betas': (0.9, 0.999)}, {'lr': 0.001, 'betas': (0.9, 0.999)}]}}, 'wrapped.pt')
    save({'state_dict': plain, 'meta': {'epoch': 1}}, 'single_entry.pth')
    save({'model': plain, 'step': 100}, 'model_key.bin')
    save({k: (v.half() if v.is_floating_point() else v) for k, v in plain.items()}, 'fp16.pth')
    save({k: (v.bfloat16() if v.is_floating_point() else v) for k, v in plain.items()}, 'bf16.pth')
    save({k: v.clone() for k, v in model.encoder.state_dict().items()}, 'encoder.pth')
    save(collections.OrderedDict(sd), 'ordered.pth')
    save(plain, 'legacy.pth', _use_new_zipfile_serialization=False)
    save({'epoch': 3, 'lr': 0.1, 'name': 'run'}, 'no_tensors.pth')
    bad = dict(plain)
    bad['segmentation_head.0.weight'] = torch.zeros(3, *plain['segmentation_head.0.weight'].shape[1:])
    save(bad, 'wrong_shape.pth')

    torch.manual_seed(1)
    x = torch.rand(1, 3, 32, 32)
    outputs = {}
    for kind, dtype in (('float32', torch.float32), ('float16', torch.float16), ('bfloat16', torch.bfloat16)):
        m = smp_ref.Unet('efficientnet-test', decoder_channels=(16, 16, 8, 8, 8), classes=2)
        m.load_state_dict({k: (v.to(dtype).float() if v.is_floating_point() else v) for k, v in plain.items()})
        m.eval()
        with torch.no_grad():
            outputs[kind] = m(x).double().flatten().tolist()
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'input_shape': list(x.shape), 'input': x.double().flatten().tolist(),
                   'output_shape': [1, 2, 32, 32], 'outputs': outputs}, f)
    print('wrote', sorted(os.listdir(OUT)))


if __name__ == '__main__':
    main()
