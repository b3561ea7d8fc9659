#!/usr/bin/python3
"""A tiny ONNX image model for testing cqseg's OnnxEmbedder (src/dcin/embedders.ts).

Writes test/golden/tiny_embedder.onnx (a 3->8 conv, ReLU, 8->6 conv, output
(N, 6, h, w); a few KB), its preprocessing JSON test/golden/tiny_embedder.json, and
test/golden/tiny_embedder_expected.json: the unit-normalised, spatially averaged
output that PyTorch computes for two fixed uint8 images (given as fill formulas).

Run from the repository root:
    /usr/bin/python3 tools/golden/onnx_embedder.py
"""
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
G = os.path.join(ROOT, 'test', 'golden')
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SIZE = [16, 16]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 6, 3, stride=2, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


def images():
    # uint8 (2, 3, 16, 16): v = (37 * k + 11 * n) mod 256 over the flat index k
    k = torch.arange(3 * 16 * 16, dtype=torch.int64)
    return torch.stack([((37 * k + 11 * n) % 256).reshape(3, 16, 16) for n in range(2)]).to(torch.uint8)


def main():
    torch.manual_seed(3)
    m = Tiny().eval()
    x = images().double() / 255
    x = (x - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.onnx.export(m, x.float(), os.path.join(G, 'tiny_embedder.onnx'), input_names=['pixels'], output_names=['features'],
                      dynamic_axes={'pixels': {0: 'n'}, 'features': {0: 'n'}}, opset_version=13)
    with open(os.path.join(G, 'tiny_embedder.json'), 'w') as f:
        json.dump({'input': SIZE, 'mean': MEAN, 'std': STD}, f)
    with torch.no_grad():
        y = m.double()(x).mean(dim=(2, 3))
    y = y / y.norm(dim=1, keepdim=True)
    with open(os.path.join(G, 'tiny_embedder_expected.json'), 'w') as f:
        json.dump({'formula': 'v = (37 * k + 11 * n) mod 256, uint8 (2, 3, 16, 16)', 'embeddings': y.tolist()}, f)
    print('wrote tiny_embedder.{onnx,json} and tiny_embedder_expected.json')


if __name__ == '__main__':
    main()
