"""PyTorch side of `npm run bench -- train`: training steps of smp's Unet(efficientnet-b2,
classes=5) as tools/golden/smp_ref.py rebuilds it (checked against the real smp 0.3.4
fixture), Adam lr 1e-3, MONAI-formula DiceCE; cqg mode = two forward passes (geometric and
color/quality views) and the CQG loss 0.3 DiceCE + 0.7 DiceCE + 1.0 MSE. Run as users run
PyTorch (default allocator settings). Inputs are random tensors: the augmentation itself is
not timed on this side (albumentations is not installable here), which favours PyTorch.
Prints one JSON line: ms per step, peak RSS.
usage: train_torch.py --mode baseline|cqg --height H --width W --steps N --warmup W --threads T
       [--device cpu|cuda:N] [--precision fp32|bf16|fp16] (torch.autocast; fp16 with GradScaler)"""
import argparse, json, os, resource, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'golden'))
import smp_ref  # noqa: E402


def dice_ce(logits, y):
    p = torch.softmax(logits, 1)
    g = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    inter = (p * g).sum((2, 3))
    den = (p * p).sum((2, 3)) + (g * g).sum((2, 3))
    dice = (1 - 2 * inter / (den + 1e-6)).mean()
    return dice + F.cross_entropy(logits, y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mode', default='cqg')
    ap.add_argument('--height', type=int, default=512)
    ap.add_argument('--width', type=int, default=768)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--precision', default='fp32')
    a = ap.parse_args()
    dev = torch.device(a.device)
    amp_dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(a.precision)
    scaler = torch.cuda.amp.GradScaler() if a.precision == 'fp16' else None
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = smp_ref.Unet('efficientnet-b2', classes=5).train().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x1 = torch.randn(2, 3, a.height, a.width, device=dev)
    x2 = torch.randn(2, 3, a.height, a.width, device=dev)
    y = torch.randint(0, 5, (2, a.height, a.width), device=dev)

    def fwd(x):
        if amp_dtype is None:
            return model(x)
        with torch.autocast(dev.type, dtype=amp_dtype):
            return model(x).float()

    def step():
        if a.mode == 'cqg':
            l1, l2 = fwd(x1), fwd(x2)
            loss = 0.3 * dice_ce(l1, y) + 0.7 * dice_ce(l2, y) + 1.0 * F.mse_loss(l1, l2)
        else:
            loss = dice_ce(fwd(x1), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({'ms': ms, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
