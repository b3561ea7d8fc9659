#!/usr/bin/env python3
"""OpenCV per-image reference for bench/augment.ts.

albumentations is not installed here, so this is a stand-in: the same transforms as
cqseg's augment/ (albumentations 1.4.21 semantics, the paper's ranges), written with
OpenCV + NumPy one image at a time the way albumentations runs them (one warp per
geometric transform, uint8 between transforms). Prints one JSON line:
  {"cqg_pair_ms_per_image": ..., "throughput_images_per_s": {name: images/s, ...}, ...}
Usage: python3 bench/augment_ref.py [--threads N] [--height 512] [--width 768]
"""
import argparse
import json
import time

import cv2
import numpy as np

rng = np.random.default_rng(0)


def centre(h, w):
    return (w - 1) / 2.0, (h - 1) / 2.0


def warp(img, mask, m):
    h, w = img.shape[:2]
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    outm = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, outm


def flip(img, mask):
    return cv2.flip(img, 1), cv2.flip(mask, 1)


def shear(img, mask):
    h, w = img.shape[:2]
    sx, sy = np.deg2rad(rng.uniform(-20, 20)), np.deg2rad(rng.uniform(-20, 20))
    cx, cy = centre(h, w)
    a = np.array([[1, np.tan(sx), 0], [np.tan(sy), 1, 0], [0, 0, 1]])
    t1 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    t2 = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    return warp(img, mask, (t2 @ a @ t1)[:2].astype(np.float64))


def ssr(img, mask):
    h, w = img.shape[:2]
    angle, scale = rng.uniform(-20, 20), rng.uniform(0.5, 1.5)
    dx, dy = rng.uniform(-0.0625, 0.0625), rng.uniform(-0.0625, 0.0625)
    m = cv2.getRotationMatrix2D(centre(h, w), angle, scale)
    m[0, 2] += dx * w
    m[1, 2] += dy * h
    return warp(img, mask, m)


def elastic(img, mask, alpha=35.0, sigma=5.0):
    h, w = img.shape[:2]
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = x + dx, y + dy
    out = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    outm = cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, outm


def blur(img):
    k = int(rng.choice([3, 5, 7, 9, 11]))
    return cv2.blur(img, (k, k))


def sharpen(img):
    a, l = rng.uniform(0.3, 0.9), rng.uniform(0.5, 1.0)
    k = (1 - a) * np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32) + a * np.array([[-1, -1, -1], [-1, 8 + l, -1], [-1, -1, -1]], np.float32)
    return cv2.filter2D(img, -1, k)


def noise(img):
    sigma = np.sqrt(rng.uniform(30, 90))
    g = rng.normal(0, sigma, img.shape).astype(np.float32)
    return np.clip(img.astype(np.float32) + g, 0, 255).astype(np.uint8)


def brightness_contrast(img):
    alpha, beta = 1 + rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)
    lut = np.clip(np.arange(256, dtype=np.float32) * alpha + beta * 255, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def rgb_shift(img):
    s = rng.uniform(-20, 20, 3).astype(np.float32)
    return np.clip(img.astype(np.float32) + s, 0, 255).astype(np.uint8)


def degrade(img):
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 3, h // 3), interpolation=cv2.INTER_AREA)
    ok, enc = cv2.imencode('.jpg', small, [cv2.IMWRITE_JPEG_QUALITY, 55])
    small = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    small = cv2.addWeighted(small, 0.85, np.full_like(small, 255), 0.15, 0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


GEO = [flip, shear, ssr, elastic]
PHOTO = [blur, sharpen, noise, brightness_contrast, rgb_shift]


def cqg_pair(img, mask):
    for t in GEO:
        if rng.random() < 0.5:
            img, mask = t(img, mask)
    view2 = img
    for t in PHOTO:
        if rng.random() < 0.5:
            view2 = t(view2)
    return img, view2, mask


def per_image_ms(fn, reps, chunks=5):
    """Best of `chunks` chunk means (the machine is shared), in ms per call."""
    fn()
    best = float('inf')
    for _ in range(chunks):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps * 1000)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--height', type=int, default=512)
    ap.add_argument('--width', type=int, default=768)
    ap.add_argument('--reps', type=int, default=6)
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    img = rng.integers(0, 256, (a.height, a.width, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (a.height, a.width), dtype=np.uint8)
    tput = {}
    for name, t in [('flip', flip), ('shear', shear), ('shiftScaleRotate', ssr), ('elastic', elastic)]:
        tput[name] = 1000 / per_image_ms(lambda: t(img, mask), a.reps)
    for name, t in [('blur', blur), ('sharpen', sharpen), ('gaussNoise', noise), ('brightnessContrast', brightness_contrast), ('rgbShift', rgb_shift), ('degrade', degrade)]:
        tput[name] = 1000 / per_image_ms(lambda: t(img), a.reps)
    pair_ms = per_image_ms(lambda: cqg_pair(img, mask), a.reps * 4)
    print(json.dumps({
        'timing': 'best of 5 chunk means',
        'name': f'OpenCV {cv2.__version__} + NumPy {np.__version__}, per image (stand-in for albumentations 1.4.21)',
        'threads': a.threads, 'cqg_pair_ms_per_image': pair_ms,
        'throughput_images_per_s': tput,
    }))


if __name__ == '__main__':
    main()
