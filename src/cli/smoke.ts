/**
 * A short training smoke run: a small U-Net learns to segment random discs on
 * noise with Adam. Stands in for `demo` until the full experiment exists; it says so.
 */
import { TinyUNet } from '../models/tiny_unet';
import { Adam } from '../nn';
import { Tensor, crossEntropy, dispose, manualSeed, rand, tidy, noGrad, argmax, arange, where, randn } from '../tensor';

function parseFlag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer, got '${args[i + 1] ?? ''}'`);
  return v;
}

/** A batch of noisy images with one bright disc each, and its mask. */
function discBatch(n: number, size: number): { x: Tensor; y: Tensor } {
  return tidy(() => {
    const ys = arange(size).reshape([1, size, 1]);
    const xs = arange(size).reshape([1, 1, size]);
    const c = rand([n, 2]).mul(size * 0.5).add(size * 0.25);
    const r = rand([n, 1, 1]).mul(size * 0.15).add(size * 0.1);
    const cy = c.slice(1, 0, 1).reshape([n, 1, 1]);
    const cx = c.slice(1, 1, 2).reshape([n, 1, 1]);
    const inside = ys.sub(cy).square().add(xs.sub(cx).square()).lt(r.square());
    const mask = where(inside, 1, 0).to('int64');
    const img = randn([n, 3, size, size]).mul(0.3).add(inside.unsqueeze(1).to('float32'));
    return { x: img, y: mask };
  });
}

export async function smokeTrain(args: string[]): Promise<number> {
  const steps = parseFlag(args, '--steps', 60);
  const size = parseFlag(args, '--size', 64);
  process.stdout.write('cqseg demo: the full demo (synthetic domain shift, CQG, DCIN) is not built yet;\n' +
    `running a training smoke run instead: small U-Net, Adam, ${steps} steps at ${size}x${size}.\n`);
  manualSeed(0);
  const model = new TinyUNet(3, 2, [8, 16, 32]);
  const opt = new Adam(model.parameters(), { lr: 1e-2 });
  const t0 = Date.now();
  let first = NaN;
  let last = NaN;
  for (let step = 1; step <= steps; step++) {
    const loss = tidy(() => {
      const { x, y } = discBatch(4, size);
      const l = crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
    if (step === 1) first = loss;
    last = loss;
    if (step % 10 === 0 || step === steps) process.stdout.write(`step ${step}/${steps}  loss ${loss.toFixed(4)}\n`);
  }
  model.eval();
  const acc = tidy(() => noGrad(() => {
    const { x, y } = discBatch(8, size);
    return argmax(model.forward(x), 1).eq(y).to('float32').mean().item();
  }));
  process.stdout.write(`loss ${first.toFixed(4)} -> ${last.toFixed(4)}, pixel accuracy on fresh data ${(acc * 100).toFixed(1)}%, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  dispose(model);
  opt.dispose();
  return last < first ? 0 : 1;
}
