#!/usr/bin/python3
"""Golden outputs of OpenCV's 8-bit Lab conversion, the paper's lab_transfer recipe
and cv2 RGB histograms, for test/color/*.test.ts. Made with Debian's python3-opencv.

Writes test/golden/color.json (shapes, offsets, statistics) and test/golden/color.bin
(the uint8 / float32 arrays, concatenated). Deterministic, about 120 KB in all.

Colors: k-th sample is c = (k * 3635633) mod 2^24, channels (c >> 16, c >> 8 & 255,
c & 255); the tests recompute these inputs, so only outputs are stored.

lab_transfer (python-color-transfer's ColorTransfer.lab_transfer, which the paper
uses), re-implemented from its description:
    lab_in  = cv2.cvtColor(img_in,  cv2.COLOR_BGR2LAB)        # on RGB arrays (PIL)
    lab_ref = cv2.cvtColor(img_ref, cv2.COLOR_BGR2LAB)
    out = (lab_in - mean_in) / std_in * std_ref + mean_ref    # float64, np.std
    out[out < 0] = 0; out[out > 255] = 255; out = out.astype(uint8)
    img = cv2.cvtColor(out, cv2.COLOR_LAB2BGR)
'reference' is exactly that (channel-swapped, unguarded); 'cqseg' uses
COLOR_RGB2LAB / COLOR_LAB2RGB and gain 1 for a zero-variance input channel.

Run from the repository root:
    /usr/bin/python3 tools/golden/color.py
"""
import json
import os
import warnings

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_JSON = os.path.join(ROOT, 'test', 'golden', 'color.json')
OUT_BIN = os.path.join(ROOT, 'test', 'golden', 'color.bin')
N_COLORS = 16384


def samples(n):
    c = (np.arange(n, dtype=np.int64) * 3635633) % (1 << 24)
    return np.stack([c >> 16, (c >> 8) & 255, c & 255], -1).astype(np.uint8)


def mean_std_transfer(img_in, img_ref, guard):
    mean_in = np.mean(img_in, axis=(0, 1), keepdims=True)
    mean_ref = np.mean(img_ref, axis=(0, 1), keepdims=True)
    std_in = np.std(img_in, axis=(0, 1), keepdims=True)
    std_ref = np.std(img_ref, axis=(0, 1), keepdims=True)
    if guard:
        safe = np.where(std_in == 0, 1.0, std_in)
        out = np.where(std_in == 0, img_in - mean_in + mean_ref, (img_in - mean_in) / safe * std_ref + mean_ref)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            out = (img_in - mean_in) / std_in * std_ref + mean_ref
    out[out < 0] = 0
    out[out > 255] = 255
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return out.astype('uint8')


def lab_transfer(img_in, img_ref, mode):
    fwd, back = (cv2.COLOR_BGR2LAB, cv2.COLOR_LAB2BGR) if mode == 'reference' else (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB)
    lab_in = cv2.cvtColor(img_in, fwd)
    lab_ref = cv2.cvtColor(img_ref, fwd)
    out = mean_std_transfer(lab_in, lab_ref, guard=(mode != 'reference'))
    return cv2.cvtColor(out, back), lab_in, lab_ref


def image(rng, h, w, kind):
    y, x = np.mgrid[0:h, 0:w]
    if kind == 'flat-blue':  # blue channel constant: zero variance in b after swap etc.
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 200
        img[..., 1] = 90
        img[..., 2] = 40
        return img
    base = np.stack([120 + 80 * np.sin(x / 3.0 + kind), 100 + 60 * np.cos(y / 2.0), 90 + 50 * np.sin((x + y) / 4.0)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(7)
    blobs = []
    offset = 0
    meta = {'opencv': cv2.__version__, 'numpy': np.__version__, 'command': '/usr/bin/python3 tools/golden/color.py', 'arrays': {}}

    def add(name, arr):
        nonlocal offset
        arr = np.ascontiguousarray(arr)
        b = arr.tobytes()
        meta['arrays'][name] = {'dtype': str(arr.dtype), 'shape': list(arr.shape), 'offset': offset}
        blobs.append(b)
        offset += len(b)

    c = samples(N_COLORS).reshape(1, N_COLORS, 3)
    add('rgb2lab', cv2.cvtColor(c, cv2.COLOR_RGB2LAB).reshape(N_COLORS, 3))
    add('lab2rgb', cv2.cvtColor(c, cv2.COLOR_LAB2RGB).reshape(N_COLORS, 3))

    h, w = 16, 24
    kinds = [(0, 1), (2, 3), ('flat-blue', 4), (5, 'flat-blue')]
    ins, refs = [], []
    for a, b in kinds:
        ins.append(image(rng, h, w, a))
        refs.append(image(rng, h, w, b))
    add('transfer_in', np.stack(ins))    # (4, H, W, 3) RGB
    add('transfer_ref', np.stack(refs))
    meta['transfer_stats'] = {}
    for mode in ['cqseg', 'reference']:
        outs, stats = [], []
        for a, b in zip(ins, refs):
            out, lab_in, lab_ref = lab_transfer(a, b, mode)
            outs.append(out)
            lab_out = cv2.cvtColor(out, cv2.COLOR_BGR2LAB if mode == 'reference' else cv2.COLOR_RGB2LAB)
            stats.append({'in': [lab_in.reshape(-1, 3).mean(0).tolist(), lab_in.reshape(-1, 3).std(0).tolist()],
                          'ref': [lab_ref.reshape(-1, 3).mean(0).tolist(), lab_ref.reshape(-1, 3).std(0).tolist()]})
        add('transfer_out_' + mode, np.stack(outs))
        meta['transfer_stats'][mode] = stats

    hists = []
    for img in [ins[0], refs[1], samples(4096).reshape(64, 64, 3)]:
        hst = cv2.calcHist([img], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
        hists.append(cv2.normalize(hst, hst).reshape(512))
    add('hist_images', np.stack([ins[0], refs[1]]))
    add('hist', np.stack(hists).astype(np.float32))

    with open(OUT_BIN, 'wb') as f:
        f.write(b''.join(blobs))
    with open(OUT_JSON, 'w') as f:
        json.dump(meta, f, indent=1)
    print(f'wrote {OUT_JSON} and {OUT_BIN} ({offset} bytes)')


if __name__ == '__main__':
    main()
