"""PyTorch side of `npm run bench -- models`: smp's Unet(efficientnet-b2, classes=5) as
tools/golden/smp_ref.py rebuilds it (proven against the real smp 0.3.4 fixture).

A small server so the two sides can alternate in one run: it builds the model once, then
reads commands from stdin, one per line, and answers each with one JSON line:
    eval N     N timed forwards, batch 1, 512x768, eval mode, no_grad  -> {"ms": [...]}
    train N    N timed forward+backward, batch 2, 512x768, train mode   -> {"ms": [...]}
    quit
usage: models_torch.py --threads T --swish memory-efficient|silu --height H --width W
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'golden'))
import smp_ref  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--swish', default='memory-efficient', choices=['memory-efficient', 'silu'])
    p.add_argument('--height', type=int, default=512)
    p.add_argument('--width', type=int, default=768)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = smp_ref.Unet('efficientnet-b2', classes=5, swish=a.swish)
    x1 = torch.randn(1, 3, a.height, a.width)
    x2 = torch.randn(2, 3, a.height, a.width)
    t2 = torch.randint(0, 5, (2, a.height, a.width))

    def eval_once():
        model.eval()
        with torch.no_grad():
            model(x1)

    def train_once():
        model.train()
        loss = F.cross_entropy(model(x2), t2)
        loss.backward()
        model.zero_grad(set_to_none=True)

    print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'swish': a.swish}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == 'quit':
            break
        fn = eval_once if cmd[0] == 'eval' else train_once
        ms = []
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({'ms': ms}), flush=True)


if __name__ == '__main__':
    main()
