"""Golden values for src/train/losses.ts, computed with PyTorch by MONAI 1.4's formulas
(monai/losses/dice.py DiceLoss and DiceCELoss; MONAI itself is not installable here):
DiceLoss(to_onehot_y=True, softmax=True, squared_pred=True, smooth_nr=0, smooth_dr=1e-6),
plus CrossEntropyLoss, and the CQG combination with weights 0.3/0.7/1.0.
Run: /usr/bin/python3 tools/golden/losses.py  -> test/golden/losses.json"""
import json, math, os, sys
import torch
import torch.nn.functional as F


def monai_dice(logits, target, smooth_nr=0.0, smooth_dr=1e-6):
    # monai DiceLoss.forward: softmax over channels, one_hot(target), reduce over spatial dims
    p = torch.softmax(logits, 1)
    g = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    reduce_axis = [2, 3]
    inter = torch.sum(g * p, dim=reduce_axis)
    ground_o = torch.sum(g ** 2, dim=reduce_axis)   # squared_pred
    pred_o = torch.sum(p ** 2, dim=reduce_axis)
    f = 1.0 - (2.0 * inter + smooth_nr) / (ground_o + pred_o + smooth_dr)
    return torch.mean(f)


def fill(shape, off):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.37 * k + off) * 2 for k in range(n)], dtype=torch.float64).reshape(shape)


def main():
    out = {'made_by': 'tools/golden/losses.py', 'torch': torch.__version__, 'cases': []}
    for (n, c, h, w, absent) in [(2, 3, 4, 5, False), (1, 5, 6, 4, True), (3, 2, 3, 3, False)]:
        logits = fill([n, c, h, w], 0.1 * c)
        lg2 = fill([n, c, h, w], 0.7)
        target = torch.tensor([(k * 7 + 3) % c for k in range(n * h * w)]).reshape(n, h, w)
        if absent:
            target = target.clamp(max=c - 2)  # the last class absent from the target
        wts = torch.tensor([0.5 + 0.25 * i for i in range(c)], dtype=torch.float64)
        dice = monai_dice(logits, target)
        ce = F.cross_entropy(logits, target)
        ce_w = F.cross_entropy(logits, target, weight=wts)
        dice2 = monai_dice(lg2, target)
        ce2 = F.cross_entropy(lg2, target)
        mse = F.mse_loss(logits, lg2)
        cqg = 0.3 * (dice + ce) + 0.7 * (dice2 + ce2) + 1.0 * mse
        out['cases'].append({
            'shape': [n, c, h, w], 'logits': logits.flatten().tolist(), 'logits2': lg2.flatten().tolist(),
            'target': target.flatten().tolist(), 'class_weights': wts.tolist(),
            'dice': dice.item(), 'ce': ce.item(), 'ce_weighted': ce_w.item(), 'dicece': (dice + ce).item(),
            'dicece_weighted': (dice + ce_w).item(), 'mse': mse.item(), 'cqg': cqg.item(),
        })
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, 'test', 'golden', 'losses.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(out, f)
    print('wrote', path)


if __name__ == '__main__':
    main()
