#!/usr/bin/python3
"""Golden numbers for cqseg's models (test/golden/models.json + models.f32).

Run with Debian's python3-torch / python3-torchvision:
    /usr/bin/python3 tools/golden/models_golden.py --check-fixture   # the reference vs real smp
    /usr/bin/python3 tools/golden/models_golden.py                   # writes test/golden/models.*

The reference is smp_ref.py (a faithful re-implementation of smp 0.3.4 + efficientnet_pytorch
0.7.1; torchvision's own ResNets). `--check-fixture` proves it against the fixture made with
the real smp (test/data/smp-unet-efficientnet-b2): state-dict names, shapes, order, counts
and the eval output.

Every tensor is filled by the fixture README's rule with sqrt(3 / fan_in) instead of
sqrt(6 / fan_in) for weights of 2+ dims (the fixture's gain 6 blows deep EfficientNets'
activations up until float32 rounding alone moves the output by ~1e-3); inputs are
sin(0.01 k). Training-mode cases (batch 2, 128x128, swish as torch's fused silu, the same
function cqseg uses, so rounding matches op for op) seed torch's CPU generator (drop-connect
draws) and record the output, gradients of a loss and updated BatchNorm buffers. Values
are stored with a stride to keep the files small. Also writes models_torchvision.json:
torchvision's own EfficientNet/ResNet state-dict names and shapes, for the name maps.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smp_ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURE = os.path.join(ROOT, 'test', 'data', 'smp-unet-efficientnet-b2')
GAIN = 3.0
SMALL_DECODER = [16, 16, 8, 8, 8]

# id, encoder, classes, decoder channels, input shape, mode, output stride, grads, buffers, slow
CASES = [
    ('test-eval', 'efficientnet-test', 3, SMALL_DECODER, [1, 3, 64, 96], 'eval', 1, [], [], False),
    ('test-train', 'efficientnet-test', 3, SMALL_DECODER, [2, 3, 128, 128], 'train', 1,
     ['encoder._conv_stem.weight', 'encoder._blocks.6._se_reduce.weight', 'decoder.blocks.0.conv1.0.weight', 'segmentation_head.0.bias'],
     ['encoder._bn0.running_mean', 'encoder._blocks.5._bn2.running_var', 'decoder.blocks.4.conv2.1.running_mean'], False),
    ('b0-eval', 'efficientnet-b0', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], False),
    ('b0-train', 'efficientnet-b0', 2, None, [2, 3, 128, 128], 'train', 4,
     ['encoder._conv_stem.weight', 'encoder._blocks.15._se_expand.bias', 'segmentation_head.0.weight'],
     ['encoder._bn0.running_mean', 'encoder._blocks.8._bn1.running_var'], False),
    ('b1-eval', 'efficientnet-b1', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], False),
    ('b2-train', 'efficientnet-b2', 5, None, [2, 3, 128, 128], 'train', 4,
     ['encoder._conv_stem.weight', 'encoder._blocks.22._bn2.weight', 'decoder.blocks.4.conv1.0.weight'],
     ['encoder._blocks.0._bn1.running_mean'], False),
    ('b3-eval', 'efficientnet-b3', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], False),
    ('b4-eval', 'efficientnet-b4', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], True),
    ('b5-eval', 'efficientnet-b5', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], True),
    ('b6-eval', 'efficientnet-b6', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], True),
    ('b7-eval', 'efficientnet-b7', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], True),
    ('resnet18-eval', 'resnet18', 1, None, [1, 3, 64, 64], 'eval', 2, [], [], False),
    ('resnet18-train', 'resnet18', 2, SMALL_DECODER, [2, 3, 128, 128], 'train', 2,
     ['encoder.conv1.weight', 'encoder.layer4.1.bn2.weight', 'segmentation_head.0.weight'],
     ['encoder.layer2.0.downsample.1.running_mean'], False),
    ('resnet34-eval', 'resnet34', 1, SMALL_DECODER, [1, 3, 64, 64], 'eval', 2, [], [], False),
    ('resnet50-eval', 'resnet50', 1, SMALL_DECODER, [1, 3, 64, 64], 'eval', 2, [], [], False),
]
LOSS_SCALE = 0.017  # loss = mean(output * sin(0.017 k))


def fill(model, gain=GAIN):
    return smp_ref.fill_model(model, gain)


def state_dict_digest(model):
    lines = ''.join(f'{k} {list(v.shape)} {str(v.dtype).replace("torch.", "")}\n' for k, v in model.state_dict().items())
    return hashlib.sha256(lines.encode()).hexdigest()


def check_fixture():
    meta = json.load(open(os.path.join(FIXTURE, 'state_dict.json')))
    torch.set_num_threads(1)
    m = smp_ref.Unet('efficientnet-b2', classes=5).eval()
    names = [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in m.state_dict().items()]
    params = sum(p.numel() for p in m.parameters())
    enc = sum(p.numel() for p in m.encoder.parameters())
    print(f'state dict: names/shapes/order equal {names == meta["state_dict"]} ({len(names)} tensors), '
          f'parameters {params} (fixture {meta["parameters"]}), encoder {enc} (fixture {meta["encoder_parameters"]})')
    smp_ref.fill_model(m)
    x = torch.from_numpy(np.fromfile(os.path.join(FIXTURE, 'input_1x3x64x96.f32'), dtype='<f4').reshape(1, 3, 64, 96))
    y = torch.from_numpy(np.fromfile(os.path.join(FIXTURE, 'output_1x5x64x96.f32'), dtype='<f4').reshape(1, 5, 64, 96))
    with torch.no_grad():
        out = m(x)
        out64 = m.double()(x.double())
    print(f'eval output vs fixture: max |err| {(out - y).abs().max().item():.3g}, mean {(out - y).abs().mean().item():.3g}')
    print(f'float32 noise floor: fixture vs float64 {(y.double() - out64).abs().max().item():.3g}, '
          f'this float32 vs float64 {(out.double() - out64).abs().max().item():.3g}')
    ok = names == meta['state_dict'] and params == meta['parameters'] and (out - y).abs().max().item() < 5e-4
    print('reference matches the fixture' if ok else 'MISMATCH')
    return ok


def run_case(case, blobs, offset):
    cid, enc, classes, dec, shape, mode, stride, grads, buffers, slow = case
    kw = {'decoder_channels': dec} if dec else {}
    # training mode with BatchNorm batch statistics over few values amplifies rounding: swish as
    # x * sigmoid(x) vs torch's fused silu (the same function) moves a b0 output by 4e-4 of its
    # range. Train cases use the fused silu, as cqseg does, so the rounding matches op for op.
    swish = 'silu' if mode == 'train' else 'memory-efficient'
    m = fill(smp_ref.Unet(enc, classes=classes, swish=swish, **kw))
    rec = {'id': cid, 'swish': swish, 'encoder': enc, 'classes': classes, 'decoderChannels': dec or [256, 128, 64, 32, 16],
           'input': shape, 'mode': mode, 'slow': slow,
           'stateDict': {'count': len(m.state_dict()), 'parameters': sum(p.numel() for p in m.parameters()),
                         'sha256': state_dict_digest(m)}}
    x = smp_ref.sine_input(shape)
    values = []

    def put(name, t, step=None, most=1024):
        nonlocal offset
        step = max(step or 1, -(-t.numel() // most))
        flat = t.detach().reshape(-1)[::step].to(torch.float32).numpy()
        values.append(flat)
        r = {'name': name, 'offset': offset, 'count': int(flat.size), 'stride': step, 'shape': list(t.shape)}
        offset += int(flat.size)
        return r

    if mode == 'eval':
        m.eval()
        with torch.no_grad():
            out = m(x)
        rec['output'] = put('output', out, stride, 2048)
    else:
        m.train()
        rec['seed'] = 7
        torch.manual_seed(7)
        out = m(x)
        w = smp_ref.sine_input(list(out.shape), LOSS_SCALE)
        loss = (out * w).mean()
        loss.backward()
        sd = dict(m.named_parameters())
        bufs = dict(m.named_buffers())
        rec['output'] = put('output', out, stride, 2048)
        rec['loss'] = {'scale': LOSS_SCALE, 'value': loss.item()}
        rec['grads'] = [put(g, sd[g].grad) for g in grads]
        rec['buffers'] = [put(b, bufs[b]) for b in buffers]
        rec['numBatchesTracked'] = int(bufs['encoder._bn0.num_batches_tracked' if enc.startswith('efficientnet') else 'encoder.bn1.num_batches_tracked'])
    blobs.extend(values)
    return rec, offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check-fixture', action='store_true', help='compare the reference with the real-smp fixture and exit')
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'golden'))
    args = ap.parse_args()
    if args.check_fixture:
        sys.exit(0 if check_fixture() else 1)
    if not check_fixture():
        sys.exit('the reference does not match the smp fixture; not writing goldens')
    torch.set_num_threads(1)
    blobs, cases, offset = [], [], 0
    for case in CASES:
        rec, offset = run_case(case, blobs, offset)
        cases.append(rec)
        print(f'{rec["id"]}: {rec["stateDict"]["count"]} tensors, {rec["stateDict"]["parameters"]} parameters')
    os.makedirs(args.out, exist_ok=True)
    np.concatenate(blobs).astype('<f4').tofile(os.path.join(args.out, 'models.f32'))
    meta = {
        'generator': 'tools/golden/models_golden.py (reference: tools/golden/smp_ref.py, smp 0.3.4 + efficientnet_pytorch 0.7.1 semantics)',
        'torch': torch.__version__,
        'fill': 'fixture README rule, sqrt(3 / fan_in) for weights of 2+ dims; input sin(0.01 k); train: torch.manual_seed(seed), '
                'loss = mean(output * sin(0.017 k)) backward',
        'values': 'models.f32, little-endian float32; each record: offset, count, stride over the flattened tensor',
        'cases': cases,
    }
    with open(os.path.join(args.out, 'models.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    print(f'wrote {offset} values to {args.out}/models.f32')
    write_torchvision_names(args.out)


def write_torchvision_names(out):
    """torchvision's own state-dict names and shapes, to check cqseg's torchvision name maps."""
    import torchvision
    nets = {}
    for name in ['efficientnet_b0', 'efficientnet_b2', 'resnet18', 'resnet50']:
        net = getattr(torchvision.models, name)()
        nets[name] = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    with open(os.path.join(out, 'models_torchvision.json'), 'w') as f:
        json.dump({'generator': 'tools/golden/models_golden.py', 'torchvision': torchvision.__version__, 'stateDicts': nets}, f)
        f.write('\n')


if __name__ == '__main__':
    main()
