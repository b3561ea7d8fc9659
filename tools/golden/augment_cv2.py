#!/usr/bin/python3
"""Golden outputs of OpenCV for cqseg's augment/ transforms (albumentations 1.4.21 calls
them the same way), on a small deterministic uint8 image.

Writes test/golden/augment_cv2.json, read by test/augment/golden.test.ts. No random
numbers: every parameter is fixed here. The image is smooth (steps of a few grey levels
between neighbours) so cv2's fixed-point bilinear weights (1/32 px, 15-bit) stay within
one grey level of float bilinear.

Run from the repository root:
    /usr/bin/python3 tools/golden/augment_cv2.py
"""
import json
import math
import os

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'golden', 'augment_cv2.json')
H, W = 18, 24


def image():
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    v = 128 + 90 * np.sin(x / 4.0 + 0.3) * np.cos(y / 5.0 - 0.2)
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def mask():
    y, x = np.mgrid[0:H, 0:W]
    return (((x // 5) + 2 * (y // 4)) % 4).astype(np.uint8)


def centre():
    return (W - 1) / 2.0, (H - 1) / 2.0


def warp(img, m, interp):
    return cv2.warpAffine(img, m, (W, H), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def main():
    img, msk = image(), mask()
    out = {'command': '/usr/bin/python3 tools/golden/augment_cv2.py', 'opencv': cv2.__version__,
           'height': H, 'width': W, 'image': img.flatten().tolist(), 'mask': msk.flatten().tolist()}
    # ShiftScaleRotate: getRotationMatrix2D(centre, angle, scale) + (dx W, dy H)
    ssr = {'angle': 13.5, 'scale': 1.2, 'dx': 0.05, 'dy': -0.03}
    m = cv2.getRotationMatrix2D(centre(), ssr['angle'], ssr['scale'])
    m[0, 2] += ssr['dx'] * W
    m[1, 2] += ssr['dy'] * H
    out['ssr'] = {'params': ssr, 'image': warp(img, m, cv2.INTER_LINEAR).flatten().tolist(),
                  'mask': warp(msk, m, cv2.INTER_NEAREST).flatten().tolist()}
    # Affine shear about the centre: [[1, tan(sx), 0], [tan(sy), 1, 0]]
    sh = {'x': 12.0, 'y': -7.0}
    cx, cy = centre()
    a = np.array([[1, math.tan(math.radians(sh['x'])), 0], [math.tan(math.radians(sh['y'])), 1, 0], [0, 0, 1]])
    t = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]) @ a @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    out['shear'] = {'params': sh, 'image': warp(img, t[:2], cv2.INTER_LINEAR).flatten().tolist(),
                    'mask': warp(msk, t[:2], cv2.INTER_NEAREST).flatten().tolist()}
    out['blur5'] = cv2.blur(img, (5, 5)).flatten().tolist()
    out['blur11'] = cv2.blur(img, (11, 11)).flatten().tolist()
    alpha, light = 0.5, 0.8
    k = (1 - alpha) * np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32) + alpha * np.array([[-1, -1, -1], [-1, 8 + light, -1], [-1, -1, -1]], np.float32)
    out['sharpen'] = {'params': {'alpha': alpha, 'lightness': light}, 'image': cv2.filter2D(img, -1, k).flatten().tolist()}
    out['gaussianKernel41'] = cv2.getGaussianKernel(41, 5).flatten().tolist()
    # GaussianBlur ksize (0,0) on float32 picks 8 sigma + 1 taps: check by comparing with an explicit 41
    f = (np.sin(np.arange(H * W, dtype=np.float32) * 0.37).reshape(H, W) * 0.9).astype(np.float32)
    out['gaussianBlurAutoEquals41'] = bool(np.array_equal(cv2.GaussianBlur(f, (0, 0), 5), cv2.GaussianBlur(f, (41, 41), 5)))
    out['areaDown'] = cv2.resize(img, (W // 3, H // 3), interpolation=cv2.INTER_AREA).flatten().tolist()
    small = cv2.resize(img, (W // 3, H // 3), interpolation=cv2.INTER_AREA)
    out['linearUp'] = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR).flatten().tolist()
    with open(OUT, 'w') as fh:
        json.dump(out, fh)
        fh.write('\n')
    print(f'wrote {OUT}')


if __name__ == '__main__':
    main()
