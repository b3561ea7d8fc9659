#!/usr/bin/python3
"""The OpenCV + NumPy side of `npm run bench -- dcin` (run by bench/dcin.ts as a subprocess).

Times, on this machine, the paper's reference recipes:
- lab_transfer (python-color-transfer): cv2.cvtColor BGR2LAB of image and reference,
  NumPy float64 mean/std per channel, clip, astype(uint8), cv2.cvtColor LAB2BGR; per image.
- GRIS: cv2.calcHist 8x8x8 + cv2.normalize per image, then scipy.spatial.distance.cdist
  over all histograms, mean per row, argmin (NumPy's matmul form when scipy is missing).
- LRIS: one query against a (M, D) float32 bank of unit rows: bank @ q, argmax.
- optionally writes cv2's Lab of all 2^24 RGB colors and RGB of all 2^24 Lab triples.

argv[1]: JSON { transfer: [[h, w, reps]], hist: [h, w, reps], gris: [m...], lris: [m, d, reps], cube: dir|null }
(every key but lris may be left out). OpenBLAS's thread count (the LRIS product) is set by
the caller through OPENBLAS_NUM_THREADS.
Prints one JSON line.
"""
import json
import sys
import time

import cv2
import numpy as np

try:
    from scipy.spatial.distance import cdist
    import scipy
    SCIPY = scipy.__version__
except ImportError:  # pragma: no cover
    cdist = None
    SCIPY = None


def mean_std_transfer(img_arr_in, img_arr_ref):
    mean_in = np.mean(img_arr_in, axis=(0, 1), keepdims=True)
    mean_ref = np.mean(img_arr_ref, axis=(0, 1), keepdims=True)
    std_in = np.std(img_arr_in, axis=(0, 1), keepdims=True)
    std_ref = np.std(img_arr_ref, axis=(0, 1), keepdims=True)
    img_arr_out = (img_arr_in - mean_in) / std_in * std_ref + mean_ref
    img_arr_out[img_arr_out < 0] = 0
    img_arr_out[img_arr_out > 255] = 255
    return img_arr_out.astype('uint8')


def lab_transfer(img_arr_in, img_arr_ref):
    lab_in = cv2.cvtColor(img_arr_in, cv2.COLOR_BGR2LAB)
    lab_ref = cv2.cvtColor(img_arr_ref, cv2.COLOR_BGR2LAB)
    lab_out = mean_std_transfer(lab_in, lab_ref)
    return cv2.cvtColor(lab_out, cv2.COLOR_LAB2BGR)


def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return {'median': ts[len(ts) // 2], 'best': ts[0]}


def image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def hist(img):
    h = cv2.calcHist([img], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
    return cv2.normalize(h, h).reshape(512)


def gris_select(hists):
    if cdist is not None:
        d = cdist(hists, hists)
    else:
        sq = (hists.astype(np.float64) ** 2).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * hists.astype(np.float64) @ hists.T.astype(np.float64), 0))
    return int(np.argmin(d.mean(1)))


def synth_hists(rng, m):
    h = rng.random((m, 512), dtype=np.float32) ** 4
    return h / np.linalg.norm(h, axis=1, keepdims=True)


def main():
    cfg = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    out = {'opencv': cv2.__version__, 'numpy': np.__version__, 'scipy': SCIPY, 'threads': cv2.getNumThreads()}
    out['transfer'] = {}
    for h, w, reps in cfg.get('transfer', []):
        a, r = image(rng, h, w), image(rng, h, w)
        out['transfer'][f'{h}x{w}'] = timed(lambda: lab_transfer(a, r), reps)
    if cfg.get('hist'):
        h, w, reps = cfg['hist']
        imgs = [image(rng, h, w) for _ in range(4)]
        out['hist'] = timed(lambda: [hist(i) for i in imgs], reps)
        out['hist'] = {k: v / 4 for k, v in out['hist'].items()}
    out['gris'] = {}
    for m in cfg.get('gris', []):
        hs = synth_hists(rng, m)
        t0 = time.perf_counter()
        gris_select(hs)
        out['gris'][str(m)] = (time.perf_counter() - t0) * 1000
        del hs
    m, d, reps = cfg['lris']
    bank = rng.standard_normal((m, d), dtype=np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    q = rng.standard_normal(d, dtype=np.float32)
    q /= np.linalg.norm(q)
    out['lris'] = timed(lambda: int(np.argmax(bank @ q)), reps)
    if cfg.get('cube'):
        c = np.arange(1 << 24, dtype=np.uint32)
        x = np.stack([c >> 16, (c >> 8) & 255, c & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
        cv2.cvtColor(x, cv2.COLOR_RGB2LAB).tofile(cfg['cube'] + '/rgb2lab.bin')
        cv2.cvtColor(x, cv2.COLOR_LAB2RGB).tofile(cfg['cube'] + '/lab2rgb.bin')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
