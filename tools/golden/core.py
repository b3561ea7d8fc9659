#!/usr/bin/python3
"""Golden values of cqseg's core tensor and nn ops, computed with real PyTorch.

Writes test/golden/core.json, read by test/tensor/functional.test.ts and
test/nn/optim.test.ts. Deterministic: no random numbers and no stored weights.
Every floating input is described by a fill formula that the tests recompute:

    x[k] = shift + scale * sin(0.37 * k + offset)      (k = flat C-order index)

made in float64 (and cast to float32 where a test runs in float32). Integer
inputs (class targets) are stored as data. Every output is computed in float64.
Argument names in "params" are cqseg's (camelCase), so tests pass them through.

Run from the repository root:
    /usr/bin/python3 tools/golden/core.py
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

COMMAND = '/usr/bin/python3 tools/golden/core.py'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'golden', 'core.json')
DT = torch.float64


def fill(shape, offset, scale=1.0, shift=0.0):
    """A tensor from the fill formula and its spec."""
    n = 1
    for s in shape:
        n *= s
    vals = [shift + scale * math.sin(0.37 * k + offset) for k in range(n)]
    t = torch.tensor(vals, dtype=DT).reshape(shape)
    return t, {'shape': list(shape), 'offset': offset, 'scale': scale, 'shift': shift}


def ints(values, shape):
    t = torch.tensor(values, dtype=torch.int64).reshape(shape)
    return t, {'shape': list(shape), 'dtype': 'int64', 'data': list(values)}


def data(values, shape):
    t = torch.tensor(values, dtype=DT).reshape(shape)
    return t, {'shape': list(shape), 'data': list(values)}


def out(t):
    t = t.detach()
    return {'shape': list(t.shape), 'data': [float(v) for v in t.reshape(-1).tolist()]}


CASES = {}


def case(name, inputs, params, outputs):
    assert name not in CASES, name
    CASES[name] = {'inputs': inputs, 'params': params, 'out': {k: out(v) for k, v in outputs.items()}}


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


# ------------------------------------------------------------------ conv2d
def conv_cases():
    x, xs = fill((2, 4, 7, 6), 0.1)
    configs = [
        ('basic', (3, 4, 3, 3), {}),
        ('stride2_pad1', (3, 4, 3, 3), {'stride': 2, 'padding': 1}),
        ('dilation2_pad2', (2, 4, 3, 3), {'dilation': 2, 'padding': 2}),
        ('groups2_rect', (4, 2, 3, 2), {'groups': 2, 'stride': [2, 1], 'padding': [1, 0]}),
        ('depthwise', (4, 1, 3, 3), {'groups': 4, 'padding': 1}),
        ('same', (3, 4, 3, 3), {'padding': 'same'}),
        ('valid_nobias', (3, 4, 2, 2), {'padding': 'valid', 'bias': False}),
    ]
    for i, (name, wshape, p) in enumerate(configs):
        w, ws = fill(wshape, 1.3 + i, 0.4)
        b, bs = fill((wshape[0],), 2.1 + i, 0.5)
        use_bias = p.get('bias', True)
        kw = {k: pair(v) for k, v in p.items() if k != 'bias'}
        y = F.conv2d(x, w, b if use_bias else None, **kw)
        inputs = {'x': xs, 'weight': ws}
        if use_bias:
            inputs['bias'] = bs
        case('conv2d.' + name, inputs, {k: v for k, v in p.items() if k != 'bias'}, {'y': y})

    x, xs = fill((2, 4, 4, 5), 0.3)
    configs = [
        ('stride2_pad1_outpad1', (4, 3, 3, 3), {'stride': 2, 'padding': 1, 'outputPadding': 1}),
        ('groups2', (4, 2, 2, 2), {'stride': 2, 'groups': 2}),
        ('dilation2', (4, 2, 3, 3), {'dilation': 2, 'padding': [1, 2]}),
    ]
    for i, (name, wshape, p) in enumerate(configs):
        w, ws = fill(wshape, 0.7 + i, 0.4)
        b, bs = fill((wshape[1] * p.get('groups', 1),), 1.9 + i, 0.5)
        kw = {'stride': pair(p.get('stride', 1)), 'padding': pair(p.get('padding', 0)),
              'output_padding': pair(p.get('outputPadding', 0)), 'groups': p.get('groups', 1),
              'dilation': pair(p.get('dilation', 1))}
        y = F.conv_transpose2d(x, w, b, **kw)
        case('convTranspose2d.' + name, {'x': xs, 'weight': ws, 'bias': bs}, p, {'y': y})


# -------------------------------------------------------------- batch norm
def batch_norm_cases():
    x, xs = fill((3, 4, 3, 5), 0.2, 2.0, 0.5)
    w, ws = fill((4,), 1.0, 0.5, 1.0)
    b, bs = fill((4,), 2.0, 0.3)
    rm, rms = fill((4,), 3.0, 0.2)
    rv, rvs = fill((4,), 4.0, 0.3, 1.0)
    inputs = {'x': xs, 'weight': ws, 'bias': bs, 'runningMean': rms, 'runningVar': rvs}
    for momentum, eps in ((0.1, 1e-5), (0.3, 1e-3)):
        m, v = rm.clone(), rv.clone()
        y = F.batch_norm(x, m, v, w, b, training=True, momentum=momentum, eps=eps)
        case('batchNorm.train_m%g' % momentum, inputs, {'training': True, 'momentum': momentum, 'eps': eps},
             {'y': y, 'runningMean': m, 'runningVar': v})
    m, v = rm.clone(), rv.clone()
    y = F.batch_norm(x, m, v, w, b, training=False, eps=1e-5)
    case('batchNorm.eval', inputs, {'training': False, 'eps': 1e-5}, {'y': y, 'runningMean': m, 'runningVar': v})
    # the module: two training steps from the default state, then eval
    bn = torch.nn.BatchNorm2d(4).double()
    with torch.no_grad():
        bn.weight.copy_(w)
        bn.bias.copy_(b)
    y1 = bn(x)
    y2 = bn(x * 0.5 + 1)
    bn.eval()
    y3 = bn(x)
    case('BatchNorm2d.module', {'x': xs, 'weight': ws, 'bias': bs}, {},
         {'y1': y1, 'y2': y2, 'yEval': y3, 'runningMean': bn.running_mean, 'runningVar': bn.running_var})


# ----------------------------------------------------------------- pooling
def pool_cases():
    x, xs = fill((2, 3, 7, 6), 0.4)
    for name, k, p in [
        ('k3_s2_p1', 3, {'stride': 2, 'padding': 1}),
        ('k2', 2, {}),
        ('k3_ceil', 3, {'stride': 2, 'ceilMode': True}),
        ('k2_dil2', 2, {'stride': 1, 'dilation': 2}),
    ]:
        y = F.max_pool2d(x, k, stride=p.get('stride'), padding=p.get('padding', 0), dilation=p.get('dilation', 1),
                         ceil_mode=p.get('ceilMode', False))
        case('maxPool2d.' + name, {'x': xs}, dict(p, kernelSize=k), {'y': y})
    for name, k, p in [
        ('k3_s2_p1', 3, {'stride': 2, 'padding': 1}),
        ('k3_s2_p1_exclpad', 3, {'stride': 2, 'padding': 1, 'countIncludePad': False}),
        ('k2', 2, {}),
        ('k3_ceil', 3, {'stride': 2, 'ceilMode': True}),
        ('k2_divisor3', [2, 3], {'divisorOverride': 3}),
    ]:
        y = F.avg_pool2d(x, pair(k), stride=p.get('stride'), padding=p.get('padding', 0), ceil_mode=p.get('ceilMode', False),
                         count_include_pad=p.get('countIncludePad', True), divisor_override=p.get('divisorOverride'))
        case('avgPool2d.' + name, {'x': xs}, dict(p, kernelSize=k), {'y': y})
    for size in ([3, 4], [1, 1], [7, 6], [5, 2]):
        y = F.adaptive_avg_pool2d(x, size)
        case('adaptiveAvgPool2d.%dx%d' % tuple(size), {'x': xs}, {'outputSize': size}, {'y': y})
        y = F.adaptive_max_pool2d(x, size)
        case('adaptiveMaxPool2d.%dx%d' % tuple(size), {'x': xs}, {'outputSize': size}, {'y': y})


# -------------------------------------------------------------- resampling
def resample_cases():
    x, xs = fill((1, 2, 5, 4), 0.6)
    for name, p in [
        ('nearest_size', {'mode': 'nearest', 'size': [7, 9]}),
        ('nearest_down', {'mode': 'nearest', 'size': [3, 3]}),
        ('nearest_scale2', {'mode': 'nearest', 'scaleFactor': 2}),
        ('nearest_scale1.7', {'mode': 'nearest', 'scaleFactor': 1.7}),
        ('nearest-exact_size', {'mode': 'nearest-exact', 'size': [7, 9]}),
        ('nearest-exact_scale1.7', {'mode': 'nearest-exact', 'scaleFactor': 1.7}),
        ('bilinear_size', {'mode': 'bilinear', 'size': [8, 7]}),
        ('bilinear_size_ac', {'mode': 'bilinear', 'size': [8, 7], 'alignCorners': True}),
        ('bilinear_down', {'mode': 'bilinear', 'size': [3, 2]}),
        ('bilinear_scale1.7', {'mode': 'bilinear', 'scaleFactor': 1.7}),
        ('bilinear_scale2_ac', {'mode': 'bilinear', 'scaleFactor': [2, 1.5], 'alignCorners': True}),
        ('bicubic_size', {'mode': 'bicubic', 'size': [8, 7]}),
        ('bicubic_size_ac', {'mode': 'bicubic', 'size': [8, 7], 'alignCorners': True}),
        ('bicubic_scale1.7', {'mode': 'bicubic', 'scaleFactor': 1.7}),
        ('bicubic_scale2_ac', {'mode': 'bicubic', 'scaleFactor': 2, 'alignCorners': True}),
    ]:
        sf = p.get('scaleFactor')
        y = F.interpolate(x, size=pair(p['size']) if 'size' in p else None, scale_factor=pair(sf) if sf is not None else None,
                          mode=p['mode'], align_corners=p.get('alignCorners'))
        case('interpolate.' + name, {'x': xs}, p, {'y': y})

    x, xs = fill((2, 3, 5, 6), 0.8)
    # translations chosen so that no nearest-mode sample falls on a rounding tie (float32 == float64)
    theta, ts = data([1.1, 0.3, 0.213, -0.25, 0.9, -0.117, 0.7, -0.6, -0.337, 0.5, 1.3, 0.419], (2, 2, 3))
    for ac in (False, True):
        grid = F.affine_grid(theta, [2, 3, 4, 5], align_corners=ac)
        case('affineGrid.ac_%s' % str(ac).lower(), {'theta': ts}, {'size': [2, 3, 4, 5], 'alignCorners': ac}, {'grid': grid})
        for mode in ('bilinear', 'nearest', 'bicubic'):
            for pad in ('zeros', 'border', 'reflection'):
                if mode == 'bicubic' and pad != 'zeros':
                    continue
                y = F.grid_sample(x, grid, mode=mode, padding_mode=pad, align_corners=ac)
                case('gridSample.%s_%s_ac_%s' % (mode, pad, str(ac).lower()), {'x': xs, 'theta': ts},
                     {'size': [2, 3, 4, 5], 'mode': mode, 'paddingMode': pad, 'alignCorners': ac}, {'y': y})


# ------------------------------------------------------ activations, losses
def misc_cases():
    x, xs = fill((2, 3, 4), 0.5, 3.0)
    for dim in (1, -1, 0):
        case('softmax.dim%d' % dim, {'x': xs}, {'dim': dim}, {'y': F.softmax(x, dim)})
        case('logSoftmax.dim%d' % dim, {'x': xs}, {'dim': dim}, {'y': F.log_softmax(x, dim)})
    case('gelu.none', {'x': xs}, {'approximate': 'none'}, {'y': F.gelu(x)})
    case('gelu.tanh', {'x': xs}, {'approximate': 'tanh'}, {'y': F.gelu(x, approximate='tanh')})
    w, ws = fill((4,), 1.0, 0.5, 1.0)
    b, bs = fill((4,), 2.0, 0.3)
    case('layerNorm.last', {'x': xs, 'weight': ws, 'bias': bs}, {'normalizedShape': [4]},
         {'y': F.layer_norm(x, [4], w, b, 1e-5)})
    case('layerNorm.last2_noaffine', {'x': xs}, {'normalizedShape': [3, 4], 'eps': 1e-3},
         {'y': F.layer_norm(x, [3, 4], None, None, 1e-3)})
    for name, dims, unbiased, keepdim in [
        ('all_unbiased', None, True, False), ('all_biased', None, False, False),
        ('dim1', [1], True, False), ('dim02_keep_biased', [0, 2], False, True), ('dimm1_keep', [-1], True, True),
    ]:
        kw = {'unbiased': unbiased}
        if dims is not None:
            kw.update(dim=dims, keepdim=keepdim)
        case('var.' + name, {'x': xs}, {'dim': dims, 'unbiased': unbiased, 'keepdim': keepdim},
             {'var': torch.var(x, **kw), 'std': torch.std(x, **kw)})

    logits, ls = fill((3, 5, 2, 3), 0.9, 2.0)
    tvals = [(k * 7 + 2) % 5 for k in range(18)]
    for k in (4, 11):
        tvals[k] = -100
    target, tgs = ints(tvals, (3, 2, 3))
    tvals7 = [3 if v == -100 else v for v in tvals]
    for k in (1, 9, 16):
        tvals7[k] = 7
    target7, tgs7 = ints(tvals7, (3, 2, 3))
    weight, wts = fill((5,), 0.3, 0.4, 1.0)
    for red in ('none', 'mean', 'sum'):
        case('crossEntropy.%s' % red, {'input': ls, 'target': tgs}, {'reduction': red},
             {'loss': F.cross_entropy(logits, target, reduction=red)})
        case('crossEntropy.weighted_%s' % red, {'input': ls, 'target': tgs, 'weight': wts}, {'reduction': red},
             {'loss': F.cross_entropy(logits, target, weight=weight, reduction=red)})
    case('crossEntropy.weighted_ignore7_mean', {'input': ls, 'target': tgs7, 'weight': wts},
         {'reduction': 'mean', 'ignoreIndex': 7},
         {'loss': F.cross_entropy(logits, target7, weight=weight, ignore_index=7)})
    case('crossEntropy.smoothing', {'input': ls, 'target': tgs}, {'reduction': 'mean', 'labelSmoothing': 0.1},
         {'loss': F.cross_entropy(logits, target, label_smoothing=0.1)})
    probs = F.softmax(fill((3, 5, 2, 3), 1.3, 2.0)[0], dim=1)
    probs, ps = data([float(v) for v in probs.reshape(-1).tolist()], (3, 5, 2, 3))
    case('crossEntropy.probs_mean', {'input': ls, 'target': ps}, {'reduction': 'mean'},
         {'loss': F.cross_entropy(logits, probs)})
    case('crossEntropy.probs_weighted_none', {'input': ls, 'target': ps, 'weight': wts}, {'reduction': 'none'},
         {'loss': F.cross_entropy(logits, probs, weight=weight, reduction='none')})
    l2d, l2s = fill((4, 3), 1.7, 2.0)
    t2d, t2s = ints([2, 0, 1, 2], (4,))
    case('crossEntropy.2d', {'input': l2s, 'target': t2s}, {'reduction': 'mean'}, {'loss': F.cross_entropy(l2d, t2d)})

    logp = F.log_softmax(logits, 1)
    case('nllLoss.weighted_mean', {'input': ls, 'target': tgs, 'weight': wts}, {'reduction': 'mean', 'logSoftmax': True},
         {'loss': F.nll_loss(logp, target, weight=weight)})

    z, zs = fill((2, 3, 4), 0.4, 3.0)
    tb, tbs = fill((2, 3, 4), 1.9, 0.5, 0.5)
    wb, wbs = fill((3, 4), 0.2, 0.5, 1.0)
    pw, pws = fill((4,), 2.7, 1.0, 1.5)
    case('bceWithLogits.mean', {'input': zs, 'target': tbs}, {'reduction': 'mean'},
         {'loss': F.binary_cross_entropy_with_logits(z, tb)})
    case('bceWithLogits.weighted_pos_none', {'input': zs, 'target': tbs, 'weight': wbs, 'posWeight': pws}, {'reduction': 'none'},
         {'loss': F.binary_cross_entropy_with_logits(z, tb, weight=wb, pos_weight=pw, reduction='none')})

    x4, x4s = fill((2, 4, 3, 3), 0.45, 2.0, 0.3)
    gw, gws = fill((4,), 1.0, 0.5, 1.0)
    gb, gbs = fill((4,), 2.0, 0.3)
    case('groupNorm.g2', {'x': x4s, 'weight': gws, 'bias': gbs}, {'numGroups': 2}, {'y': F.group_norm(x4, 2, gw, gb, 1e-5)})
    case('groupNorm.g4_noaffine', {'x': x4s}, {'numGroups': 4}, {'y': F.group_norm(x4, 4, None, None, 1e-5)})

    a, as_ = fill((2, 3, 4), 0.1, 1.5)
    t, ts = fill((2, 3, 4), 2.2)
    for red in ('none', 'mean'):
        case('l1Loss.%s' % red, {'input': as_, 'target': ts}, {'reduction': red}, {'loss': F.l1_loss(a, t, reduction=red)})
    for red in ('none', 'mean', 'sum'):
        case('mseLoss.%s' % red, {'input': as_, 'target': ts}, {'reduction': red}, {'loss': F.mse_loss(a, t, reduction=red)})


# ---------------------------------------------------------------- gradients
def grad_cases():
    def run(name, inputs, specs, params, fn, wrt):
        leaves = {k: v.clone().requires_grad_(k in wrt) for k, v in inputs.items()}
        y = fn(leaves)
        g, gs = fill(tuple(y.shape), 0.45, 1.0) if y.dim() > 0 else (torch.tensor(1.0, dtype=DT), None)
        y.backward(g)
        outs = {'y': y}
        for k in wrt:
            outs['grad_' + k] = leaves[k].grad
        specs = dict(specs)
        if gs is not None:
            specs['upstream'] = gs
        case('grad.' + name, specs, params, outs)

    x, xs = fill((2, 4, 5, 5), 0.1)
    w, ws = fill((4, 2, 3, 3), 1.3, 0.4)
    b, bs = fill((4,), 2.1, 0.5)
    p = {'stride': 2, 'padding': 1, 'groups': 2}
    run('conv2d', {'x': x, 'weight': w, 'bias': b}, {'x': xs, 'weight': ws, 'bias': bs}, p,
        lambda t: F.conv2d(t['x'], t['weight'], t['bias'], stride=2, padding=1, groups=2), ['x', 'weight', 'bias'])

    x, xs = fill((3, 2, 3, 4), 0.2, 2.0, 0.5)
    w, ws = fill((2,), 1.0, 0.5, 1.0)
    b, bs = fill((2,), 2.0, 0.3)
    run('batchNorm_train', {'x': x, 'weight': w, 'bias': b}, {'x': xs, 'weight': ws, 'bias': bs},
        {'training': True, 'momentum': 0.1, 'eps': 1e-5},
        lambda t: F.batch_norm(t['x'], None, None, t['weight'], t['bias'], training=True, eps=1e-5), ['x', 'weight', 'bias'])

    x, xs = fill((1, 2, 4, 3), 0.6)
    run('interpolate_bilinear', {'x': x}, {'x': xs}, {'mode': 'bilinear', 'size': [7, 5]},
        lambda t: F.interpolate(t['x'], size=(7, 5), mode='bilinear', align_corners=False), ['x'])
    run('interpolate_bilinear_ac', {'x': x}, {'x': xs}, {'mode': 'bilinear', 'size': [7, 5], 'alignCorners': True},
        lambda t: F.interpolate(t['x'], size=(7, 5), mode='bilinear', align_corners=True), ['x'])

    x, xs = fill((1, 2, 4, 5), 0.8)
    grid, gs = fill((1, 3, 4, 2), 0.35, 1.1)
    run('gridSample_bilinear_zeros', {'x': x, 'grid': grid}, {'x': xs, 'grid': gs},
        {'mode': 'bilinear', 'paddingMode': 'zeros', 'alignCorners': False},
        lambda t: F.grid_sample(t['x'], t['grid'], mode='bilinear', padding_mode='zeros', align_corners=False), ['x', 'grid'])
    run('gridSample_bilinear_border_ac', {'x': x, 'grid': grid}, {'x': xs, 'grid': gs},
        {'mode': 'bilinear', 'paddingMode': 'border', 'alignCorners': True},
        lambda t: F.grid_sample(t['x'], t['grid'], mode='bilinear', padding_mode='border', align_corners=True), ['x', 'grid'])

    logits, ls = fill((3, 4, 2, 2), 0.9, 2.0)
    target, tgs = ints([(k * 5 + 1) % 4 if k != 6 else -100 for k in range(12)], (3, 2, 2))
    weight, wts = fill((4,), 0.3, 0.4, 1.0)
    run('crossEntropy_weighted', {'input': logits, 'target': target, 'weight': weight},
        {'input': ls, 'target': tgs, 'weight': wts}, {'reduction': 'mean'},
        lambda t: F.cross_entropy(t['input'], t['target'], weight=t['weight']), ['input'])


# --------------------------------------------------------------- optimizers
def optim_cases():
    """5 steps on loss = sum(a * (p1 - c1)^2) + sum((p2 - c2)^2 * 0.5) + p1[0] * p2[0, 1]."""
    p1_0, p1s = fill((3,), 0.2, 1.5)
    p2_0, p2s = fill((2, 2), 1.1, 1.0)
    a, as_ = fill((3,), 0.7, 0.5, 1.0)
    c1, c1s = fill((3,), 2.5, 0.8)
    c2, c2s = fill((2, 2), 3.3, 0.6)

    def loss_fn(p1, p2):
        return (a * (p1 - c1) ** 2).sum() + 0.5 * ((p2 - c2) ** 2).sum() + p1[0] * p2[0, 1]

    configs = [
        ('Adam', 'Adam', {'lr': 0.1}),
        ('Adam_wd', 'Adam', {'lr': 0.1, 'weightDecay': 0.1}),
        ('AdamW', 'AdamW', {'lr': 0.1, 'weightDecay': 0.1}),
        ('AdamW_default_wd', 'AdamW', {'lr': 0.05}),
        ('Adam_amsgrad', 'Adam', {'lr': 0.1, 'betas': [0.8, 0.9], 'amsgrad': True, 'eps': 1e-6}),
        ('SGD', 'SGD', {'lr': 0.1}),
        ('SGD_momentum_dampening_wd', 'SGD', {'lr': 0.1, 'momentum': 0.9, 'dampening': 0.1, 'weightDecay': 0.05}),
        ('SGD_nesterov', 'SGD', {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}),
    ]
    for name, cls, opts in configs:
        p1 = p1_0.clone().requires_grad_(True)
        p2 = p2_0.clone().requires_grad_(True)
        kw = {'lr': opts['lr']}
        if 'weightDecay' in opts:
            kw['weight_decay'] = opts['weightDecay']
        if cls in ('Adam', 'AdamW'):
            for k in ('betas', 'eps', 'amsgrad'):
                if k in opts:
                    kw[k] = tuple(opts[k]) if k == 'betas' else opts[k]
            opt = getattr(torch.optim, cls)([p1, p2], **kw)
        else:
            for k in ('momentum', 'dampening', 'nesterov'):
                if k in opts:
                    kw[k] = opts[k]
            opt = torch.optim.SGD([p1, p2], **kw)
        outs = {}
        losses = []
        for step in range(1, 6):
            opt.zero_grad()
            loss = loss_fn(p1, p2)
            losses.append(float(loss))
            loss.backward()
            opt.step()
            outs['p1_step%d' % step] = p1.clone()
            outs['p2_step%d' % step] = p2.clone()
        outs['losses'] = torch.tensor(losses, dtype=DT)
        case('optim.' + name, {'p1': p1s, 'p2': p2s, 'a': as_, 'c1': c1s, 'c2': c2s}, dict(opts, type=cls), outs)


# ---------------------------------------------------------- state dict order
class Block(torch.nn.Module):
    """A nest of PyTorch modules whose state_dict order test/nn/module.test.ts rebuilds."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer('count', torch.zeros(1))
        self.body = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.heads = torch.nn.ModuleList([torch.nn.Conv2d(4, 1, 1), torch.nn.Linear(3, 2)])


def state_dict_keys():
    model = torch.nn.Sequential(Block(), torch.nn.BatchNorm2d(1, affine=False),
                                torch.nn.BatchNorm2d(1, affine=False, track_running_stats=False), torch.nn.Linear(2, 2))
    return [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in model.state_dict().items()]


def main():
    torch.set_num_threads(1)
    conv_cases()
    batch_norm_cases()
    pool_cases()
    resample_cases()
    misc_cases()
    grad_cases()
    optim_cases()
    doc = {
        'header': {
            'torch': torch.__version__,
            'python': sys.version.split()[0],
            'command': COMMAND,
            'fill': 'x[k] = shift + scale * sin(0.37 * k + offset), k the flat C-order index, made in float64',
            'note': 'outputs computed in float64; grad.* cases use the fill spec "upstream" as the output gradient',
        },
        'cases': CASES,
        'stateDictKeys': state_dict_keys(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
        f.write('\n')
    print('wrote %s: %d cases, %d bytes' % (os.path.relpath(OUT, ROOT), len(CASES), os.path.getsize(OUT)))


if __name__ == '__main__':
    main()
