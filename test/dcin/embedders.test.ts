/**
 * ONNX embedder against PyTorch float64: float32 rounding uses 0.64% of 1e-5 (measured); the
 * encoder embedder runs the same ops as its reference (0%).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import * as T from '../../src/tensor';
import { EncoderEmbedder, OnnxEmbedder } from '../../src/dcin';
import { assertClose } from '../helpers/assert';

const GOLDEN = path.resolve(__dirname, '..', '..', '..', 'test', 'golden');

function goldenImages(): T.Tensor {
  const a = new Uint8Array(2 * 3 * 16 * 16);
  for (let n = 0; n < 2; n++) for (let k = 0; k < 768; k++) a[n * 768 + k] = (37 * k + 11 * n) % 256;
  return T.tensor(a, [2, 3, 16, 16], { dtype: 'uint8' });
}

test('OnnxEmbedder runs an ONNX model (onnxruntime-node, CPU) and matches PyTorch', async () => {
  const e = await OnnxEmbedder.load(path.join(GOLDEN, 'tiny_embedder.onnx'));
  const want = (JSON.parse(fs.readFileSync(path.join(GOLDEN, 'tiny_embedder_expected.json'), 'utf8')) as { embeddings: number[][] }).embeddings;
  const x = goldenImages();
  const before = T.memory().liveTensors;
  const got = await e.embed(x);
  assert.equal(T.memory().liveTensors, before + 1);
  assert.deepEqual(got.shape, [2, 6]);
  assertClose(got, want.flat(), 1e-5, 0, 'embeddings');
  assert.match(e.id, /^onnx:[0-9a-f]{64}\|[0-9a-f]{64}$/);
  // resized input: a 20x24 image is resized to the JSON's 16x16
  const big = T.tidy(() => T.cat([x, x.narrow(3, 0, 8)], 3).narrow(2, 0, 12));
  const r = await e.embed(big);
  assert.deepEqual(r.shape, [2, 6]);
  e.dispose();
  await assert.rejects(e.embed(x), /disposed/);
  T.dispose([got, x, big, r]);
});

test('OnnxEmbedder needs its JSON and names the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-onnx-'));
  const model = path.join(dir, 'm.onnx');
  fs.copyFileSync(path.join(GOLDEN, 'tiny_embedder.onnx'), model);
  await assert.rejects(OnnxEmbedder.load(model), /m\.onnx: no preprocessing JSON beside the model/);
  fs.writeFileSync(path.join(dir, 'm.json'), JSON.stringify({ input: [16, 16], mean: [0, 0], std: [1, 1, 1] }));
  await assert.rejects(OnnxEmbedder.load(model), /m\.json': 'mean' must be \[r, g, b\], three numbers, got \[0,0\] \(an array\)/);
  await assert.rejects(OnnxEmbedder.load(path.join(dir, 'none.onnx')), /none\.onnx: ONNX model not found/);
  fs.rmSync(dir, { recursive: true });
});

test('EncoderEmbedder: pooled deepest feature, unit rows, id carries the preprocessing', async () => {
  const w = T.tidy(() => T.randn([5, 3, 3, 3]));
  const encoder = {
    outputStride: 4,
    features: (x: T.Tensor): T.Tensor[] => [x, T.conv2d(x, w, null, { stride: 4, padding: 1 })],
  };
  const e = new EncoderEmbedder(encoder, { id: 'encoder:abc', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const x = goldenImages();
  const before = T.memory().liveTensors;
  const got = await e.embed(x);
  assert.equal(T.memory().liveTensors, before + 1);
  const want = T.tidy(() => {
    const f = T.conv2d(x.to('float32').div(255).sub(0.5).div(0.25), w, null, { stride: 4, padding: 1 }).mean([2, 3]);
    return f.div(f.square().sum(1, { keepdim: true }).sqrt());
  });
  assertClose(got, want.toArray(), 1e-5);
  assert.notEqual(e.id, new EncoderEmbedder(encoder, { id: 'encoder:abc', mean: [0.4, 0.5, 0.5], std: [0.25, 0.25, 0.25] }).id);
  T.dispose([w, x, got, want]);
});
