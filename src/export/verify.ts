/**
 * An exported model checked against cqseg: the same inputs through onnxruntime-node and
 * through the run's own forward; the largest difference of the logits and of the
 * embeddings, each over the range of cqseg's values.
 */
import * as ort from 'onnxruntime-node';
import { Session } from '../dcin/session';
import { normalize } from '../models/preprocess';
import * as T from '../tensor';

export interface Agreement {
  /** max |onnx - cqseg| / range(cqseg), logits */
  logits: number;
  /** the same for the embeddings */
  embedding: number;
  /** the inputs compared: (N, 3, H, W) */
  shape: number[];
}

export async function verifyExport(bytes: Uint8Array, s: Session, seed = 0): Promise<Agreement> {
  const [h, w] = s.info.size;
  const shape = [2, 3, h, w];
  T.manualSeed(seed);
  const x = T.tidy(() => T.rand(shape).mul(255).round());
  const ortSession = await ort.InferenceSession.create(bytes);
  try {
    const out = await ortSession.run({ image: new ort.Tensor('float32', Float32Array.from(x.dataSync() as Float32Array), shape) });
    return T.tidy(() => {
      const xn = normalize(x, s.info.preprocessing);
      const logits = T.noGrad(() => s.model.forward(xn));
      const emb = T.noGrad(() => s.model.encoder.forward(xn).mean([2, 3]));
      const rel = (ours: T.Tensor, theirs: ort.Tensor): number =>
        ours.sub(T.tensor(theirs.data as Float32Array, [...theirs.dims])).abs().max().item() / Math.max(1e-12, ours.max().item() - ours.min().item());
      return { logits: rel(logits, out.logits), embedding: rel(emb, out.embedding), shape };
    });
  } finally {
    x.dispose();
    await ortSession.release();
  }
}
