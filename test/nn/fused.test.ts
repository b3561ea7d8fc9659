/**
 * A convolution layer given the op before it (nn/fused.ts: Activated, UpsampledCat,
 * Scaled) gives the values and gradients of that op run first and then the layer, on the
 * fused path (training, float32 CPU) and the plain one (eval, float64), and updates the
 * batch norm's running statistics as the plain layers do. Inputs on a 1/4 grid, so the
 * sums are exact in float32 except the batch norm's; tolerance 1e-5 relative. Measured
 * (CQSEG_SHOW_ERRORS=1, AVX2 and CQSEG_CPU=plain alike): at most 3.1e-7 (upsampledCat with
 * skip), 30x under it; in float64 the fused kernels do not apply and both sides are the
 * same libtorch composition, so this is the float32 rounding of the fused kernels alone.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { BatchNorm2d, Conv2d, ConvNormAct, scaled, upsampledCat } from '../../src/nn';

const rel = (a: T.Tensor, b: T.Tensor): number => T.tidy(() => a.sub(b).abs().max().item() / Math.max(1e-12, b.abs().max().item()));
const randq = (shape: number[]): T.Tensor => T.tidy(() => T.randn(shape).mul(4).round().div(4));

/** The two ways of one computation, each from the same seed; values and the gradient of x. */
function same(what: string, build: () => Array<(x: T.Tensor) => T.Tensor>, shape: number[]): void {
  T.tidy(() => {
    const outs = [0, 1].map((i) => {
      T.manualSeed(5);
      const fns = build();
      const x = randq(shape).requiresGrad_();
      const y = fns[i](x);
      y.mul(T.linspace(-1, 1, y.shape.reduce((a, b) => a * b, 1)).reshape(y.shape)).sum().backward();
      return { y, g: x.grad! };
    });
    if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`${what}: values ${rel(outs[0].y, outs[1].y).toExponential(2)}, gradient ${rel(outs[0].g, outs[1].g).toExponential(2)}\n`);
    assert.ok(rel(outs[0].y, outs[1].y) < 1e-5, `${what}: values ${rel(outs[0].y, outs[1].y)}`);
    assert.ok(rel(outs[0].g, outs[1].g) < 1e-5, `${what}: gradient ${rel(outs[0].g, outs[1].g)}`);
  });
}

test('Conv2d.forward(bn.activated(z)) equals the conv of act(bn(z)), in training and eval, with the same running statistics', () => {
  for (const act of ['relu', 'silu'] as const) {
    for (const training of [true, false]) {
      const stats: T.Tensor[][] = [];
      same(`${act} ${training ? 'training' : 'eval'}`, () => {
        const bn = new BatchNorm2d(6).train(training);
        const conv = new Conv2d(6, 4, 3, { padding: 1 });
        noGradFill(bn);
        stats.push([bn.runningMean!, bn.runningVar!]);
        return [
          (x) => conv.forward(bn.activated(x, act)),
          (x) => conv.forward(act === 'relu' ? T.relu(bn.forward(x)) : bn.forwardSilu(x)),
        ];
      }, [2, 6, 5, 7]);
      assert.ok(rel(stats[0][0], stats[1][0]) < 1e-6 && rel(stats[0][1], stats[1][1]) < 1e-6, 'running statistics');
    }
  }
});

test('Conv2d.forward(upsampledCat(x, skip)) equals the conv of cat([upsample x2, skip]), with and without skip', () => {
  for (const withSkip of [true, false]) {
    same(withSkip ? 'skip' : 'no skip', () => {
      const conv = new Conv2d(withSkip ? 7 : 4, 5, 3, { padding: 1 });
      const skip = randq([2, 3, 8, 10]);
      return [
        (x) => conv.forward(upsampledCat(x, withSkip ? skip : null)),
        (x) => {
          const u = T.interpolate(x, { scaleFactor: 2, mode: 'nearest' });
          return conv.forward(withSkip ? T.cat([u, skip], 1) : u);
        },
      ];
    }, [2, 4, 4, 5]);
  }
});

test('Conv2d.forward(scaled(x, s)) equals the conv of x * s; ConvNormAct equals conv, BN, ReLU in turn', () => {
  same('scaled', () => {
    const conv = new Conv2d(6, 4, 1, { bias: false });
    const s = T.rand([2, 6, 1, 1]);
    return [(x) => conv.forward(scaled(x, s)), (x) => conv.forward(x.mul(s))];
  }, [2, 6, 5, 7]);
  same('ConvNormAct', () => {
    const cna = new ConvNormAct(new Conv2d(6, 4, 3, { padding: 1, bias: false }), new BatchNorm2d(4), 'relu');
    return [(x) => cna.forward(x), (x) => T.relu(cna.bn.forward(cna.conv.forward(x)))];
  }, [2, 6, 5, 7]);
  const cna = new ConvNormAct(new Conv2d(6, 4, 3, { bias: false }), new BatchNorm2d(4), 'relu');
  assert.deepEqual([...cna.stateDict().keys()].sort(), ['0.weight', '1.bias', '1.num_batches_tracked', '1.running_mean', '1.running_var', '1.weight'], "nn.Sequential's names");
});

/** Batch-norm parameters away from 1 and 0, so a mix-up of weight and bias shows. */
function noGradFill(bn: BatchNorm2d): void {
  T.noGrad(() => {
    bn.weight!.copy_(T.linspace(0.5, 1.5, bn.numFeatures));
    bn.bias!.copy_(T.linspace(-0.3, 0.4, bn.numFeatures));
    bn.runningMean!.copy_(T.linspace(-0.2, 0.2, bn.numFeatures));
    bn.runningVar!.copy_(T.linspace(0.8, 1.3, bn.numFeatures));
  });
}
