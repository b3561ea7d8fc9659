#!/usr/bin/python3
"""Golden numbers for cqseg's models (test/golden/models.json + models.f32).

Run with Debian's python3-torch / python3-torchvision:
    /usr/bin/python3 tools/golden/models_golden.py --check-fixture   # the reference vs real smp
    /usr/bin/python3 tools/golden/models_golden.py                   # writes test/golden/models.*

The reference is smp_ref.py (a faithful re-implementation of smp 0.3.4 + efficientnet_pytorch
0.7.1; torchvision's own ResNets). `--check-fixture` proves it against the fixture made with
the real smp (test/data/smp-unet-efficientnet-b2): state-dict names, shapes, order, counts
and the eval output.

Every tensor is filled by smp_ref.fill_model_hash (a 32-bit integer hash of the element
and tensor index: uncorrelated, Kaiming-uniform-scaled weights) and inputs by
smp_ref.hash_input. The fixture README's sine rule made correlated weights whose
convolutions cancel, and in training mode BatchNorm then amplified rounding until float32
and float64 runs of the same Unet(resnet18) differed by 77% of the output's range (a golden
that passed on one CPU failed on another). Each case is run in float64 (stored as the
golden) and in float32; the share of every tolerance that float32 rounding uses is stored
beside it (`float32Noise`) and a case using more than MARGIN is refused. Training-mode
cases (batch 2, 128x128, swish as torch's fused silu) seed torch's CPU generator
(drop-connect draws, taken in float32 in both runs) and record the output, gradients of a
loss and updated BatchNorm buffers. Values are stored with a stride to keep the files
small. Also writes models_torchvision.json: torchvision's own EfficientNet/ResNet
state-dict names and shapes, for the name maps.
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


# Tolerances of test/models/golden.test.ts, written into models.json so the test reads them
# from here: atol + rtol * |expected| elementwise, or atol + rel * max|expected| ('rel');
# encoder gradients in training mode by direction (cosine) and norm.
TOL = {
    'eval': {'atol': 2e-5, 'rel': 1e-4},
    'train-output': {'atol': 2e-5, 'rel': 1e-3},
    'loss': {'atol': 1e-6, 'rtol': 1e-4},
    'grad': {'atol': 1e-7, 'rel': 1e-2},
    'grad-direction': {'cosine': 0.99, 'norm': 0.1},
    'buffer': {'atol': 1e-7, 'rel': 1e-4},
}
MARGIN = 0.1  # PyTorch's float32 run must lie within a tenth of every tolerance of the float64 golden


def noise(kind, f32, f64):
    """How much of the tolerance PyTorch's own float32 run uses against the float64 golden."""
    f32, f64 = f32.double().reshape(-1), f64.double().reshape(-1)
    t = TOL[kind]
    if kind == 'grad-direction':
        cos = torch.dot(f32, f64) / (f32.norm() * f64.norm())
        ratio = f32.norm() / f64.norm()
        return max((1 - cos.item()) / (1 - t['cosine']), abs(ratio.item() - 1) / t['norm'])
    tol = t['atol'] + (t['rtol'] * f64.abs() if 'rtol' in t else t['rel'] * f64.abs().max())
    return ((f32 - f64).abs() / tol).max().item()


def run_dtype(case, dtype):
    cid, enc, classes, dec, shape, mode, stride, grads, buffers, slow = case
    kw = {'decoder_channels': dec} if dec else {}
    m = smp_ref.fill_model_hash(smp_ref.Unet(enc, classes=classes, swish='silu', **kw)).to(dtype)
    x = smp_ref.hash_input(shape).to(torch.float32).to(dtype)  # the float32 input, exactly, in both runs
    if mode == 'eval':
        m.eval()
        with torch.no_grad():
            return m, {'output': m(x)}
    m.train()
    torch.manual_seed(7)
    out = m(x)
    w = smp_ref.sine_input(list(out.shape), LOSS_SCALE).to(dtype)
    loss = (out * w).mean()
    loss.backward()
    sd, bufs = dict(m.named_parameters()), dict(m.named_buffers())
    r = {'output': out.detach(), 'loss': loss.detach()}
    r.update({g: sd[g].grad for g in grads})
    r.update({b: bufs[b] for b in buffers})
    return m, r


def run_case(case, blobs, offset):
    """One case in float64 (the golden) and float32 (to measure how far inside the tolerances
    float32 rounding stays); refuses an ill-conditioned case instead of writing it."""
    cid, enc, classes, dec, shape, mode, stride, grads, buffers, slow = case
    _, r64 = run_dtype(case, torch.float64)
    m, r32 = run_dtype(case, torch.float32)
    rec = {'id': cid, 'encoder': enc, 'classes': classes, 'decoderChannels': dec or [256, 128, 64, 32, 16],
           'input': shape, 'mode': mode, 'slow': slow,
           'stateDict': {'count': len(m.state_dict()), 'parameters': sum(p.numel() for p in m.parameters()),
                         'sha256': state_dict_digest(m)}}
    values = []
    worst = [0.0, '']

    def put(name, kind, step=None, most=1024):
        nonlocal offset
        t64, t32 = r64[name], r32[name]
        step = max(step or 1, -(-t64.numel() // most))
        flat = t64.detach().reshape(-1)[::step].to(torch.float32).numpy()
        values.append(flat)
        used = noise(kind, t32.detach().reshape(-1)[::step], t64.detach().reshape(-1)[::step])
        if used > worst[0]:
            worst[:] = [used, name]
        r = {'name': name, 'kind': kind, 'offset': offset, 'count': int(flat.size), 'stride': step, 'shape': list(t64.shape),
             'float32Noise': float(f'{used:.3g}')}
        offset += int(flat.size)
        return r

    if mode == 'eval':
        rec['output'] = put('output', 'eval', stride, 2048)
    else:
        rec['seed'] = 7
        rec['output'] = put('output', 'train-output', stride, 2048)
        rec['loss'] = {'scale': LOSS_SCALE, 'value': r64['loss'].item(), 'float32Noise': float(f"{noise('loss', r32['loss'], r64['loss']):.3g}")}
        # weights whose layer feeds a training-mode BatchNorm get gradients that are sums of
        # many cancelling terms (the BatchNorm backward removes the channel mean): checked by
        # direction and norm; the head's (no BatchNorm after it) elementwise
        rec['grads'] = [put(g, 'grad' if g.startswith('segmentation_head.') else 'grad-direction') for g in grads]
        rec['buffers'] = [put(b, 'buffer') for b in buffers]
        bufs = dict(m.named_buffers())
        rec['numBatchesTracked'] = int(bufs['encoder._bn0.num_batches_tracked' if enc.startswith('efficientnet') else 'encoder.bn1.num_batches_tracked'])
        if rec['loss']['float32Noise'] > worst[0]:
            worst[:] = [rec['loss']['float32Noise'], 'loss']
    if worst[0] > MARGIN:
        sys.exit(f'{cid}: ill-conditioned: float32 rounding uses {worst[0]:.2f} of the tolerance on {worst[1]} '
                 f'(at most {MARGIN}); rebuild the case (more values per BatchNorm channel, another input)')
    rec['float32Noise'] = float(f'{worst[0]:.3g}')
    blobs.extend(values)
    return rec, offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check-fixture', action='store_true', help='compare the reference with the real-smp fixture and exit')
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'golden'))
    ap.add_argument('--only', nargs='*', help='case ids (a trial run; the files then hold only those)')
    args = ap.parse_args()
    if args.check_fixture:
        sys.exit(0 if check_fixture() else 1)
    if not check_fixture():
        sys.exit('the reference does not match the smp fixture; not writing goldens')
    torch.set_num_threads(1)
    blobs, cases, offset = [], [], 0
    for case in CASES:
        if args.only and case[0] not in args.only:
            continue
        rec, offset = run_case(case, blobs, offset)
        cases.append(rec)
        print(f'{rec["id"]}: {rec["stateDict"]["count"]} tensors, {rec["stateDict"]["parameters"]} parameters')
    os.makedirs(args.out, exist_ok=True)
    np.concatenate(blobs).astype('<f4').tofile(os.path.join(args.out, 'models.f32'))
    print(f'largest share of a tolerance used by PyTorch float32 against the float64 golden: '
          f'{max(c["float32Noise"] for c in cases):.3g}')
    meta = {
        'generator': 'tools/golden/models_golden.py (reference: tools/golden/smp_ref.py, smp 0.3.4 + efficientnet_pytorch 0.7.1 semantics)',
        'torch': torch.__version__,
        'fill': 'smp_ref.fill_model_hash (hash_uniform of index and tensor number; weights u * sqrt(6 / fan_in)); input '
                'smp_ref.hash_input, rounded to float32; train: torch.manual_seed(seed), loss = mean(output * sin(0.017 k)) backward',
        'golden': 'float64 runs of the reference; float32Noise: the share of each tolerance a float32 PyTorch run uses '
                  f'against them (at most {MARGIN}, else the case is refused)',
        'tolerances': TOL,
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
