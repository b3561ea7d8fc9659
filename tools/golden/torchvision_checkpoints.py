"""
torchvision's own resnet18() and efficientnet_b0(), random weights (seed 0, running
statistics randomised), saved by torch.save as plain dicts (libtorch 1.13 cannot read the
OrderedDict of state_dict(): see the README) into OUT, with the deepest ResNet feature map
on a fixed input, for test/models/torchvision_checkpoints.test.ts. Too large to keep in the
repository (47 and 21 MB): the test runs this script where Debian's python3-torch and
python3-torchvision are installed.

  /usr/bin/python3 tools/golden/torchvision_checkpoints.py OUT
"""
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_checkpoints import randomise_stats  # noqa: E402


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18()
    randomise_stats(resnet)
    resnet.eval()
    torch.save(dict(resnet.state_dict()), os.path.join(out, 'resnet18.pth'))
    effnet = torchvision.models.efficientnet_b0()
    randomise_stats(effnet)
    torch.save(dict(effnet.state_dict()), os.path.join(out, 'efficientnet_b0.pth'))
    torch.manual_seed(1)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        r = resnet
        f = r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x))))))))
    with open(os.path.join(out, 'expected.json'), 'w') as fh:
        json.dump({'input_shape': list(x.shape), 'input': x.double().flatten().tolist(),
                   'layer4_shape': list(f.shape), 'layer4': f.double().flatten().tolist()}, fh)


if __name__ == '__main__':
    main(sys.argv[1])
