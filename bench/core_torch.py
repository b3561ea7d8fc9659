"""PyTorch side of `npm run bench -- core`: the same small U-Net as src/models/tiny_unet.ts
(TinyUnet), trained with Adam at batch 2; prints one JSON line.
usage: core_torch.py --size S --steps N --warmup W --threads T --channels 16,32,64"""
import argparse, json, resource, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def double_conv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())


class TinyUnet(nn.Module):
    def __init__(self, cin, classes, ch):
        super().__init__()
        self.down = nn.ModuleList([double_conv(cin if i == 0 else ch[i - 1], c) for i, c in enumerate(ch)])
        self.up = nn.ModuleList([double_conv(ch[i + 1] + ch[i], ch[i]) for i in range(len(ch) - 2, -1, -1)])
        self.head = nn.Conv2d(ch[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, b in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = b(x)
            skips.append(x)
        skips.pop()
        for b in self.up:
            x = b(torch.cat([F.interpolate(x, scale_factor=2, mode='nearest'), skips.pop()], 1))
        return self.head(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--channels', default='16,32,64')
    p.add_argument('--op-iters', type=int, default=100000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ch = [int(c) for c in a.channels.split(',')]
    model = TinyUnet(3, 2, ch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(2, 3, a.size, a.size)
    y = torch.randint(0, 2, (2, a.size, a.size))

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    ms = (time.perf_counter() - t0) * 1000 / a.steps
    s = torch.zeros(1)
    t0 = time.perf_counter()
    for _ in range(a.op_iters):
        torch.add(s, s)
    op_us = (time.perf_counter() - t0) * 1e6 / a.op_iters
    print(json.dumps({'ms_per_step': ms, 'op_us': op_us, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
