/**
 * Module: parameter/buffer names and PyTorch state_dict order for nests of
 * Conv2d/BatchNorm2d/Linear/Sequential/ModuleList, train()/eval(), BatchNorm running
 * statistics against PyTorch, default initialisation, to(dtype), dispose, and
 * loadStateDict's strict errors and partial loading.
 * BatchNorm2d against the float64 golden: float32 rounding uses at most 2.0% of the float32
 * tolerance (float64: 0.0002%); to(dtype) casts use 6% of 1e-6 (half an ulp of values 1..2).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { BatchNorm2d, Conv2d, Dropout, Identity, Linear, Module, ModuleList, ReLU, Sequential, Sigmoid, SiLU, StateDictError } from '../../src/nn';
import { assertClose, assertNoLeak } from '../helpers/assert';
import { assertGolden, loadGolden, makeInputs } from '../helpers/golden';

/** The PyTorch Block of tools/golden/core.py, attribute for attribute. */
class Block extends Module {
  readonly scale: T.Tensor;
  readonly count: T.Tensor;
  readonly body: Sequential;
  readonly heads: ModuleList;

  constructor() {
    super();
    this.scale = this.registerParameter('scale', T.ones([2]));
    this.count = this.registerBuffer('count', T.zeros([1]));
    this.body = this.registerModule('body', new Sequential(new Conv2d(2, 4, 3, { padding: 1, bias: false }), new BatchNorm2d(4), new ReLU()));
    this.heads = this.registerModule('heads', new ModuleList<Module>([new Conv2d(4, 1, 1), new Linear(3, 2)]));
  }
}

const makeModel = (): Sequential =>
  new Sequential(new Block(), new BatchNorm2d(1, { affine: false }), new BatchNorm2d(1, { affine: false, trackRunningStats: false }), new Linear(2, 2));

test('state dict names, shapes, dtypes and order equal PyTorch\'s for a nest of modules', () => {
  assertNoLeak(() => {
    const model = makeModel();
    const expected = loadGolden('core').stateDictKeys!;
    const sd = [...model.stateDict().entries()].map(([k, t]) => [k, t.shape, t.dtype]);
    assert.deepEqual(sd, expected);
    assert.deepEqual(model.namedParameters().map(([k]) => k),
      ['0.scale', '0.body.0.weight', '0.body.1.weight', '0.body.1.bias', '0.heads.0.weight', '0.heads.0.bias', '0.heads.1.weight', '0.heads.1.bias', '3.weight', '3.bias']);
    assert.deepEqual(model.namedBuffers().map(([k]) => k),
      ['0.count', '0.body.1.running_mean', '0.body.1.running_var', '0.body.1.num_batches_tracked', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
    assert.deepEqual(model.namedModules().map(([k]) => k),
      ['', '0', '0.body', '0.body.0', '0.body.1', '0.body.2', '0.heads', '0.heads.0', '0.heads.1', '1', '2', '3']);
    assert.deepEqual(model.namedChildren().map(([k]) => k), ['0', '1', '2', '3']);
    assert.equal(model.children().length, 4);
    assert.equal(model.parameters().length, 10);
    assert.equal(model.numParameters(), 2 + 72 + 4 + 4 + 4 + 1 + 6 + 2 + 4 + 2);
    assert.ok(model.parameters().every((p) => p.requiresGrad && p.isLeaf));
    assert.ok(model.namedBuffers().every(([, b]) => !b.requiresGrad));
    const block = model.layers[0] as Block;
    assert.equal(block.heads.length, 2);
    assert.ok(block.heads.at(-1) instanceof Linear);
    assert.throws(() => block.heads.at(2), /ModuleList index 2 out of range \(length 2\)/);
    model.dispose();
  });
});

test('train() and eval() set the mode through the whole tree', () => {
  assertNoLeak(() => {
    const model = makeModel();
    assert.ok(model.namedModules().every(([, m]) => m.training));
    assert.equal(model.eval(), model);
    assert.ok(model.namedModules().every(([, m]) => !m.training));
    model.train();
    assert.ok(model.namedModules().every(([, m]) => m.training));
    model.train(false);
    assert.ok(!(model.layers[0] as Block).body.layers[1].training);
    model.dispose();
  });
});

test('BatchNorm2d: two training steps and eval equal PyTorch; num_batches_tracked counts training steps', () => {
  const c = loadGolden('core').cases['BatchNorm2d.module'];
  for (const dtype of ['float64', 'float32'] as const) {
    assertNoLeak(() => T.tidy(() => {
      const x = makeInputs(c, dtype);
      const bn = new BatchNorm2d(4).to(dtype);
      T.noGrad(() => {
        bn.weight!.copy_(x.weight);
        bn.bias!.copy_(x.bias);
      });
      const y1 = bn.forward(x.x);
      const y2 = bn.forward(x.x.mul(0.5).add(1));
      assert.equal(bn.numBatchesTracked!.item(), 2);
      assert.equal(bn.numBatchesTracked!.dtype, 'int64');
      bn.eval();
      const y3 = bn.forward(x.x);
      assert.equal(bn.numBatchesTracked!.item(), 2, 'eval does not count');
      for (const [name, t] of [['y1', y1], ['y2', y2], ['yEval', y3], ['runningMean', bn.runningMean!], ['runningVar', bn.runningVar!]] as const) {
        assertGolden(t, c.out[name], `BatchNorm2d ${name} (${dtype})`);
      }
      bn.dispose();
    }));
  }
});

test('BatchNorm2d with momentum null keeps a cumulative average; without running stats it always uses batch stats', () => {
  assertNoLeak(() => T.tidy(() => {
    const bn = new BatchNorm2d(1, { momentum: null });
    bn.forward(T.full([2, 1, 1, 2], 2));
    bn.forward(T.full([2, 1, 1, 2], 4));
    bn.forward(T.full([2, 1, 1, 2], 9));
    assertClose(bn.runningMean!, [5], 1e-6);
    const free = new BatchNorm2d(1, { trackRunningStats: false, affine: false }).eval();
    const y = free.forward(T.tensor([1, 3, 5, 7], [1, 1, 2, 2]));
    assertClose(y, [-3, -1, 1, 3].map((v) => v / Math.sqrt(5 + 1e-5)), 1e-5);
    assert.equal(free.stateDict().size, 0);
    assert.throws(() => bn.forward(T.zeros([2, 1, 3])), /Argument 'x' passed to 'BatchNorm2d' must be 4-D \(N,C,H,W\), got \[2,1,3\]/);
    assert.throws(() => bn.forward(T.zeros([2, 3, 2, 2])), /Argument 'x' passed to 'BatchNorm2d' has 3 channels, expected 1/);
    T.dispose([bn, free]);
  }));
});

test('default initialisation: Conv2d/Linear within ±1/sqrt(fan_in); BatchNorm weight 1, bias 0, stats 0 and 1', () => {
  assertNoLeak(() => {
    T.manualSeed(0);
    const cases: [Module & { weight: T.Tensor; bias: T.Tensor | null }, number][] = [
      [new Conv2d(3, 16, 3), 27],
      [new Conv2d(8, 16, [3, 1], { groups: 4 }), 6],
      [new Conv2d(4, 8, 1), 4],
      [new Linear(10, 20), 10],
    ];
    for (const [m, fanIn] of cases) {
      const bound = 1 / Math.sqrt(fanIn);
      for (const t of [m.weight, m.bias!]) {
        const v = t.toArray();
        const maxAbs = Math.max(...v.map(Math.abs));
        assert.ok(maxAbs <= bound, `${m.constructor.name} fan_in ${fanIn}: |w| ${maxAbs} > ${bound}`);
        assert.ok(maxAbs > 0.6 * bound, `${m.constructor.name}: values fill the range (max ${maxAbs}, bound ${bound})`);
        assert.ok(v.some((x) => x < 0) && v.some((x) => x > 0));
      }
      m.dispose();
    }
    const nb = new Conv2d(3, 4, 3, { bias: false });
    assert.equal(nb.bias, null);
    assert.deepEqual([...nb.stateDict().keys()], ['weight']);
    assert.deepEqual(nb.weight.shape, [4, 3, 3, 3]);
    nb.dispose();
    const bn = new BatchNorm2d(3);
    assert.deepEqual(bn.weight!.toArray(), [1, 1, 1]);
    assert.deepEqual(bn.bias!.toArray(), [0, 0, 0]);
    assert.deepEqual(bn.runningMean!.toArray(), [0, 0, 0]);
    assert.deepEqual(bn.runningVar!.toArray(), [1, 1, 1]);
    assert.deepEqual([bn.numBatchesTracked!.shape, bn.numBatchesTracked!.item()], [[], 0]);
    assert.equal(bn.eps, 1e-5);
    assert.equal(bn.momentum, 0.1);
    bn.dispose();
    assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /Conv2d: inChannels 3 and outChannels 4 must be divisible by groups 2/);
    assert.throws(() => new Dropout(2), /Dropout: p must be in \[0, 1\], got 2/);
  });
});

test('layers forward as their functional ops; Sequential chains', () => {
  assertNoLeak(() => T.tidy(() => {
    const conv = new Conv2d(2, 3, 3, { stride: 2, padding: 1 });
    const x = T.randn([1, 2, 5, 5]);
    assertClose(conv.forward(x), T.conv2d(x, conv.weight, conv.bias, { stride: 2, padding: 1 }).toArray(), 0);
    assertClose(conv.call(x), conv.forward(x).toArray(), 0);
    const lin = new Linear(3, 2, { bias: false });
    assert.equal(lin.bias, null);
    const v = T.randn([4, 3]);
    assertClose(lin.forward(v), T.linear(v, lin.weight).toArray(), 0);
    const seq = new Sequential(new Identity(), new SiLU(), new Sigmoid(), new ReLU(), new Dropout(0.5).eval());
    assertClose(seq.forward(v), v.silu().sigmoid().relu().toArray(), 1e-7);
    assert.throws(() => new Module().forward(v), /Module.forward\(x\) is not implemented/);
    T.dispose([conv, lin, seq]);
  }));
});

test('zeroGrad clears every parameter gradient', () => {
  assertNoLeak(() => T.tidy(() => {
    const model = makeModel();
    const block = model.layers[0] as Block;
    block.body.forward(T.ones([1, 2, 4, 4])).sum().backward();
    assert.ok(block.body.parameters().every((p) => p.grad !== undefined));
    model.zeroGrad();
    assert.ok(model.parameters().every((p) => p.grad === undefined));
    model.dispose();
  }));
});

test('to(\'float64\') casts floating parameters and buffers in place; int buffers keep their dtype', () => {
  assertNoLeak(() => {
    const model = makeModel();
    const before = T.memory().liveTensors;
    const params = model.parameters();
    const values = params.map((p) => p.toArray());
    assert.equal(model.to('float64'), model);
    assert.equal(T.memory().liveTensors, before, 'no extra tensors after the cast');
    for (const [name, t] of model.stateDict()) {
      assert.equal(t.dtype, name.endsWith('num_batches_tracked') ? 'int64' : 'float64', name);
    }
    model.parameters().forEach((p, i) => {
      assert.equal(p, params[i], 'the same Tensor objects');
      assert.ok(p.requiresGrad && p.isLeaf);
      assertClose(p.toArray(), values[i], 0);
    });
    const out = T.tidy(() => (model.layers[0] as Block).body.forward(T.ones([1, 2, 3, 3], { dtype: 'float64' })).dtype);
    assert.equal(out, 'float64');
    model.to('float32');
    assert.ok(model.parameters().every((p) => p.dtype === 'float32'));
    model.to('cpu');
    assert.ok(model.parameters().every((p) => p.device === 'cpu'));
    model.dispose();
  });
});

test('dispose frees every parameter and buffer; twice is fine', () => {
  const before = T.memory().liveTensors;
  const model = makeModel();
  assert.equal(T.memory().liveTensors, before + model.stateDict().size);
  const t = model.parameters()[0];
  T.dispose(model);
  assert.equal(T.memory().liveTensors, before);
  assert.ok(t.isDisposed);
  model.dispose();
  assert.equal(T.memory().liveTensors, before);
});

test('loadStateDict copies values (casting dtype) into the same tensors', () => {
  assertNoLeak(() => T.tidy(() => {
    const a = makeModel();
    const b = makeModel();
    const src = new Map([...a.stateDict()].map(([k, t]) => [k, T.noGrad(() => t.to('float64').add(1))]));
    const ids = b.parameters();
    const r = b.loadStateDict(src);
    assert.deepEqual(r, { missing: [], unexpected: [], mismatched: [] });
    assert.deepEqual(b.parameters(), ids);
    for (const [k, t] of b.stateDict()) {
      assert.equal(t.dtype, a.stateDict().get(k)!.dtype, k);
      assertClose(t.to('float64'), src.get(k)!.toArray(), 1e-6, 0, k);
    }
    assert.ok(b.parameters().every((p) => p.requiresGrad && p.isLeaf));
    // a plain object works too
    b.loadStateDict(Object.fromEntries(a.stateDict()));
    assertClose(b.parameters()[1], a.parameters()[1].toArray(), 0);
    T.dispose([a, b]);
  }));
});

test('loadStateDict strict errors name the missing, unexpected and mis-shaped tensors', () => {
  assertNoLeak(() => T.tidy(() => {
    const model = makeModel();
    const sd = new Map(model.stateDict());
    sd.delete('0.heads.1.bias');
    sd.set('0.extra.weight', T.zeros([1]));
    sd.set('3.weight', T.zeros([2, 3]));
    const before = model.parameters()[0].toArray();
    assert.throws(() => model.loadStateDict(sd), (err: unknown) => {
      assert.ok(err instanceof StateDictError);
      assert.equal(err.code, 'ERR_STATE_DICT');
      assert.match(err.message, /state dict does not fit Sequential: missing 1: 0\.heads\.1\.bias; unexpected 1: 0\.extra\.weight; shape mismatch 1: 3\.weight: checkpoint \[2,3\], model \[2,2\]/);
      assert.deepEqual(err.result, { missing: ['0.heads.1.bias'], unexpected: ['0.extra.weight'], mismatched: ['3.weight: checkpoint [2,3], model [2,2]'] });
      return true;
    });
    assert.deepEqual(model.parameters()[0].toArray(), before, 'nothing loaded on a strict failure');
    const only = new Map([['0.body.1.running_mean', T.zeros([3])]]);
    assert.throws(() => model.loadStateDict(only), /missing 16: .*, \.\.\. \(16 in all\); shape mismatch 1: 0\.body\.1\.running_mean/);
    model.dispose();
  }));
});

test('loadStateDict { strict: false } loads what fits and reports what was skipped', () => {
  assertNoLeak(() => T.tidy(() => {
    const model = makeModel();
    const w3 = model.stateDict().get('3.weight')!.toArray();
    const r = model.loadStateDict({
      '0.scale': T.tensor([5, 6]),
      '3.weight': T.zeros([3, 2]),
      '0.body.1.running_var': T.full([4], 2),
      'nope': T.zeros([1]),
    }, { strict: false });
    assert.deepEqual(r.unexpected, ['nope']);
    assert.deepEqual(r.mismatched, ['3.weight: checkpoint [3,2], model [2,2]']);
    assert.equal(r.missing.length, 17 - 3);
    assert.ok(r.missing.includes('0.heads.0.weight') && !r.missing.includes('0.scale'));
    assert.deepEqual(model.stateDict().get('0.scale')!.toArray(), [5, 6]);
    assert.deepEqual(model.stateDict().get('0.body.1.running_var')!.toArray(), [2, 2, 2, 2]);
    assert.deepEqual(model.stateDict().get('3.weight')!.toArray(), w3, 'mis-shaped tensor left alone');
    model.dispose();
  }));
});
