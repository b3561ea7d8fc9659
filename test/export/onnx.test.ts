/**
 * ONNX export of cqseg's Unets (src/export/onnx.ts) run by onnxruntime-node against
 * cqseg's own forward on the same inputs, in eval mode with non-trivial batch-norm
 * statistics: logits within 1e-4 of their range (measured at most 1.4e-6, resnet50), embeddings (the pooled deepest feature)
 * likewise; at two input sizes and a batch of two (dynamic N, H, W); metadata round trip.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { exportUnet } from '../../src/export/onnx';
import { Unet } from '../../src/models';
import { IMAGENET, normalize } from '../../src/models/preprocess';
import * as T from '../../src/tensor';

function randomiseStats(m: Unet): void {
  T.noGrad(() => {
    for (const [name, t] of m.stateDict()) {
      if (name.endsWith('running_mean')) t.copy_(T.randn(t.shape).mul(0.1));
      else if (name.endsWith('running_var')) t.copy_(T.rand(t.shape).add(0.5));
      else if (name.endsWith('.weight') && t.ndim === 1) t.copy_(T.rand(t.shape).add(0.5));
      else if (name.endsWith('.bias') && t.ndim === 1) t.copy_(T.randn(t.shape).mul(0.1));
    }
  });
  m.eval();
}

async function check(encoderName: string, sizes: [number, number, number][]): Promise<void> {
  T.manualSeed(3);
  const m = new Unet({ encoderName, classes: 3, decoderChannels: [16, 16, 8, 8, 8] });
  randomiseStats(m);
  const bytes = exportUnet(m, { classNames: ['a', 'b', 'c'], colors: [[0, 0, 0], [255, 0, 0], [0, 255, 0]], size: [64, 64], mean: IMAGENET.mean, std: IMAGENET.std, version: 'test' });
  const session = await ort.InferenceSession.create(bytes);
  try {
    for (const [n, h, w] of sizes) {
      const x = T.tidy(() => T.rand([n, 3, h, w]).mul(255).round());
      const feed = new ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), [n, 3, h, w]);
      const out = await session.run({ image: feed });
      const [logits, emb] = T.tidy(() => {
        const xn = normalize(x, IMAGENET);
        const y = T.noGrad(() => m.forward(xn));
        const e = T.noGrad(() => m.encoder.forward(xn).mean([2, 3]));
        return [T.keep(y), T.keep(e)];
      });
      const rel = (ours: T.Tensor, theirs: ort.Tensor): number => T.tidy(() => {
        const t = T.tensor(theirs.data as Float32Array, [...theirs.dims]);
        return ours.sub(t).abs().max().item() / (ours.max().item() - ours.min().item());
      });
      const el = rel(logits, out.logits);
      const ee = rel(emb, out.embedding);
      if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`${encoderName} ${n}x${h}x${w}: logits ${el.toExponential(2)}, embedding ${ee.toExponential(2)}\n`);
      assert.ok(el < 1e-4, `${encoderName} ${n}x${h}x${w}: logits differ by ${el} of their range`);
      assert.ok(ee < 1e-4, `${encoderName} ${n}x${h}x${w}: embeddings differ by ${ee} of their range`);
      T.dispose([x, logits, emb]);
    }
  } finally {
    await session.release();
    T.dispose(m);
  }
}

test('resnet18 and resnet50 Unets: onnxruntime gives cqseg\'s logits and embeddings (dynamic batch and size)', async () => {
  await check('resnet18', [[1, 3, 64, 64], [2, 3, 96, 128]].map(([n, , h, w]) => [n, h, w]) as [number, number, number][]);
  await check('resnet50', [[1, 64, 64]]);
});

test('EfficientNet Unets (static same padding fixed at export): onnxruntime gives cqseg\'s logits and embeddings', async () => {
  await check('efficientnet-test', [[1, 64, 64], [2, 96, 64]]);
  await check('efficientnet-b2', [[1, 256, 384]]); // the paper's encoder
});

test('fp16 weights: half the file, results within float16\'s rounding of the weights', async () => {
  T.manualSeed(4);
  const m = new Unet({ encoderName: 'resnet18', classes: 3, decoderChannels: [16, 16, 8, 8, 8] });
  randomiseStats(m);
  const base = { classNames: ['a', 'b', 'c'], colors: [[0, 0, 0], [255, 0, 0], [0, 255, 0]] as [number, number, number][], size: [64, 64] as [number, number], mean: IMAGENET.mean, std: IMAGENET.std, version: 'test' };
  const full = exportUnet(m, base);
  const half = exportUnet(m, { ...base, fp16: true });
  assert.ok(half.length < 0.55 * full.length, `${half.length} bytes against ${full.length}`);
  const session = await ort.InferenceSession.create(half);
  const x = T.tidy(() => T.rand([1, 3, 64, 64]).mul(255).round());
  try {
    const out = await session.run({ image: new ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), [1, 3, 64, 64]) });
    const err = T.tidy(() => {
      const y = T.noGrad(() => m.forward(normalize(x, IMAGENET)));
      return y.sub(T.tensor(out.logits.data as Float32Array, [...out.logits.dims])).abs().max().item() / (y.max().item() - y.min().item());
    });
    if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(`resnet18 fp16: logits ${err.toExponential(2)}\n`);
    assert.ok(err < 1e-2 && err > 1e-6, `fp16 logits differ by ${err} of their range`);
  } finally {
    x.dispose();
    await session.release();
    T.dispose(m);
  }
});

test('metadata round trip: classes and colors, input size, normalisation, version', () => {
  const m = new Unet({ encoderName: 'resnet18', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
  m.eval();
  const bytes = exportUnet(m, { classNames: ['bg', 'polyp'], colors: [[0, 0, 0], [255, 0, 0]], size: [256, 256], mean: IMAGENET.mean, std: IMAGENET.std, version: '0.1.0', metadata: { run_config: '{"epochs":4}' } });
  const decoded = onnx.ModelProto.decode(bytes);
  const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(meta.classes), [{ index: 0, name: 'bg', color: [0, 0, 0] }, { index: 1, name: 'polyp', color: [255, 0, 0] }]);
  assert.deepEqual(JSON.parse(meta.input_size), [256, 256]);
  assert.equal(meta.cqseg_version, '0.1.0');
  assert.equal(meta.run_config, '{"epochs":4}');
  assert.equal(Number(decoded.opsetImport[0].version), 13);
  T.dispose(m);
});

test('cqseg export writes the run\'s model atomically and reports onnxruntime\'s agreement with cqseg', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { makeDiscDataset } = await import('../helpers/tiny_dataset');
  const { cli } = await import('../helpers/cli');
  const { resolveConfig } = await import('../../src/train/config');
  const { train } = await import('../../src/train/trainer');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-export-'));
  const data = await makeDiscDataset(4, [64, 64]);
  try {
    const run = path.join(root, 'run');
    await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 1, maxStepsPerEpoch: 2, valFraction: 0, threads: 1, seed: 0 }), { progress: false });
    const out = path.join(root, 'm.onnx');
    const r = await cli(['export', '--model', run, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Unet\(efficientnet-test\), 2 classes, .* MB, opset 13/);
    assert.match(r.out, /onnxruntime vs cqseg on \[2, 3, 64, 64\]: largest difference \S+ of the logits' range, \S+ of the embeddings' \(within 1e-4\)/);
    const meta = Object.fromEntries(onnx.ModelProto.decode(fs.readFileSync(out)).metadataProps.map((p) => [p.key, p.value]));
    assert.equal(JSON.parse(meta.run_config).encoder, 'efficientnet-test');
    assert.deepEqual(fs.readdirSync(root).filter((f) => f.includes('.tmp')), []);
    // the DCIN data file: the bank's GRIS choice, Lab statistics and embeddings, without paths
    const bankFile = path.join(root, 'bank.safetensors');
    assert.equal((await cli(['references', '--data', data, '--model', run, '--out', bankFile, '--quiet'])).code, 0);
    const dcinFile = path.join(root, 'dcin.json');
    const d = await cli(['export', '--model', run, '--out', out, '--no-verify', '--refs', bankFile, '--dcin', dcinFile]);
    assert.equal(d.code, 0, d.err);
    const { loadBank, disposeBank } = await import('../../src/dcin/bank');
    const bank = loadBank(bankFile, { verify: 'none' });
    try {
      const j = JSON.parse(fs.readFileSync(dcinFile, 'utf8')) as { format: string; version: number; embedder: string; gris: { index: number; lab: number[][] };
        references: { name: string; lab: number[][] }[]; embeddings: { dims: number[]; base64: string }; ood: unknown };
      assert.deepEqual([j.format, j.version, j.embedder, j.gris.index], ['cqseg-dcin', 1, bank.embedder, bank.gris.index]);
      assert.ok(j.references.every((r) => !r.name.includes('/')), 'file names only');
      const emb = Buffer.from(j.embeddings.base64, 'base64');
      const rows = new Float32Array(emb.buffer, emb.byteOffset, emb.byteLength / 4);
      assert.deepEqual(j.embeddings.dims, bank.embeddings.shape);
      assert.deepEqual(Array.from(rows), Array.from(T.tidy(() => bank.embeddings.to('float32').toArray())).map((v) => Math.fround(v)));
      assert.deepEqual(j.references.flatMap((r) => r.lab.flat()), T.tidy(() => bank.labStats.to('float64').toArray()));
      assert.deepEqual(j.ood, bank.ood ?? null);
    } finally {
      disposeBank(bank);
    }
    const bad = await cli(['export', '--model', run, '--out', path.join(root, 'm.pb')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--out FILE\.onnx \(or --bundle DIR\) is required/);
    const alone = await cli(['export', '--model', run, '--out', out, '--refs', bankFile]);
    assert.equal(alone.code, 2);
    assert.match(alone.err, /--refs BANK and --dcin FILE\.json go together/);
    const notJson = await cli(['export', '--model', run, '--out', out, '--refs', bankFile, '--dcin', path.join(root, 'd.txt')]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.err, /--dcin FILE\.json, got/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(data, { recursive: true, force: true });
  }
});
