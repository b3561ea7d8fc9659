#!/usr/bin/python3
"""Golden outputs of OpenCV for cqseg's augment/ transforms (albumentations 1.4.21 calls
them the same way), on a small deterministic uint8 image.

Writes test/golden/augment_cv2.json, read by test/augment/golden.test.ts. No random
numbers: every parameter is fixed here. The image is smooth (steps of a few grey levels
between neighbours) so cv2's fixed-point bilinear weights (1/32 px, 15-bit) stay within
one grey level of float bilinear.

Rounding decisions are kept away from their boundaries, so that cqseg's float32 result
rounds as its float64 result on every CPU: the parameters are chosen so that no exact
(float64) value that cqseg rounds to uint8 lies within TIE_MARGIN of a .5 tie (warps:
2.5e-3, about 7 times the float32 noise of cqseg's warp, 3.7e-4 measured; filters: 1e-3,
100 times theirs) and no nearest-neighbour source coordinate of a mask lies within 1e-3 of
a .5 tie. The script refuses parameters that break this and records the margins under
"margins".

Run from the repository root:
    /usr/bin/python3 tools/golden/augment_cv2.py
"""
import json
import math
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F

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


TIE_MARGIN = {'warp': 2.5e-3, 'filter': 1e-3, 'nearest': 1e-3}


def source_coords(m):
    """Pixel coordinates each output pixel samples (cqseg and cv2 both invert m), float64."""
    inv = cv2.invertAffineTransform(m)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    return inv[0, 0] * x + inv[0, 1] * y + inv[0, 2], inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]


def bilinear_exact(img, m):
    """cqseg's warp (grid_sample bilinear, zeros padding) in float64, before rounding."""
    sx, sy = source_coords(m)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    f = img.astype(np.float64)

    def at(yy, xx):
        ok = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
        return np.where(ok, f[np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)], 0.0)
    return (1 - fx) * (1 - fy) * at(y0, x0) + fx * (1 - fy) * at(y0, x0 + 1) + (1 - fx) * fy * at(y0 + 1, x0) + fx * fy * at(y0 + 1, x0 + 1)


def tie_margin(values, what, kind):
    """Smallest distance of an unclipped value from a .5 rounding tie; refuses one below TIE_MARGIN[kind]."""
    v = values[(values > 0) & (values < 255)]
    d = float(np.abs(v - np.floor(v) - 0.5).min())
    if d < TIE_MARGIN[kind]:
        raise SystemExit(f'{what}: a value lies {d:.2e} from a rounding tie (< {TIE_MARGIN[kind]}): float32 may round it either way; choose other parameters')
    return d


def nearest_margin(m, what):
    """Smallest distance of a mask's in-image source coordinate from a .5 tie (nearest sampling)."""
    sx, sy = source_coords(m)
    inside = (sx > -0.5) & (sx < W - 0.5) & (sy > -0.5) & (sy < H - 0.5)
    d = float(min(np.abs(sx - np.floor(sx) - 0.5)[inside].min(), np.abs(sy - np.floor(sy) - 0.5)[inside].min()))
    if d < TIE_MARGIN['nearest']:
        raise SystemExit(f'{what}: a source coordinate lies {d:.2e} from a nearest-neighbour tie; choose other parameters')
    return d


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
    margins = {'ssr image': tie_margin(bilinear_exact(img, m), 'ssr image', 'warp'), 'ssr mask': nearest_margin(m, 'ssr mask')}
    # Affine shear about the centre: [[1, tan(sx), 0], [tan(sy), 1, 0]]
    sh = {'x': 12.0, 'y': -6.5}
    cx, cy = centre()
    a = np.array([[1, math.tan(math.radians(sh['x'])), 0], [math.tan(math.radians(sh['y'])), 1, 0], [0, 0, 1]])
    t = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]) @ a @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    out['shear'] = {'params': sh, 'image': warp(img, t[:2], cv2.INTER_LINEAR).flatten().tolist(),
                    'mask': warp(msk, t[:2], cv2.INTER_NEAREST).flatten().tolist()}
    margins['shear image'] = tie_margin(bilinear_exact(img, t[:2]), 'shear image', 'warp')
    margins['shear mask'] = nearest_margin(t[:2], 'shear mask')
    out['blur5'] = cv2.blur(img, (5, 5)).flatten().tolist()
    out['blur11'] = cv2.blur(img, (11, 11)).flatten().tolist()
    for k in (5, 11):
        margins['blur %d' % k] = tie_margin(cv2.blur(img.astype(np.float64), (k, k)), 'blur %d' % k, 'filter')
    alpha, light = 0.6, 0.8
    k = (1 - alpha) * np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32) + alpha * np.array([[-1, -1, -1], [-1, 8 + light, -1], [-1, -1, -1]], np.float32)
    out['sharpen'] = {'params': {'alpha': alpha, 'lightness': light}, 'image': cv2.filter2D(img, -1, k).flatten().tolist()}
    k64 = (1 - alpha) * np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64) + alpha * np.array([[-1, -1, -1], [-1, 8 + light, -1], [-1, -1, -1]], np.float64)
    margins['sharpen'] = tie_margin(cv2.filter2D(img.astype(np.float64), -1, k64), 'sharpen', 'filter')
    out['gaussianKernel41'] = cv2.getGaussianKernel(41, 5).flatten().tolist()
    # GaussianBlur ksize (0,0) on float32 picks 8 sigma + 1 taps: check by comparing with an explicit 41
    f = (np.sin(np.arange(H * W, dtype=np.float32) * 0.37).reshape(H, W) * 0.9).astype(np.float32)
    out['gaussianBlurAutoEquals41'] = bool(np.array_equal(cv2.GaussianBlur(f, (0, 0), 5), cv2.GaussianBlur(f, (41, 41), 5)))
    out['areaDown'] = cv2.resize(img, (W // 3, H // 3), interpolation=cv2.INTER_AREA).flatten().tolist()
    small = cv2.resize(img, (W // 3, H // 3), interpolation=cv2.INTER_AREA)
    out['linearUp'] = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR).flatten().tolist()
    # cqseg's degrade: area mean (no rounding), bilinear up (torch, float64)
    area = torch.from_numpy(img.astype(np.float64)).reshape(1, 1, H, W)
    up = F.interpolate(F.adaptive_avg_pool2d(area, (H // 3, W // 3)), size=(H, W), mode='bilinear', align_corners=False)
    margins['area down + linear up'] = tie_margin(up.numpy().reshape(H, W), 'area down + linear up', 'warp')
    out['margins'] = {k: round(v, 6) for k, v in margins.items()}
    with open(OUT, 'w') as fh:
        json.dump(out, fh)
        fh.write('\n')
    print(f'wrote {OUT}')


if __name__ == '__main__':
    main()
