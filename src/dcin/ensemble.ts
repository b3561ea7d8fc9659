/**
 * Combining predictions made on differently normalised copies of an image.
 * - 'softmax' (cqseg's default): mean of the softmax probabilities.
 * - 'logits' (the paper's reference code): softmax of the mean of the logits.
 * Full DCIN = ensemble of the GRIS- and LRIS-transferred predictions.
 *
 * `--dcin auto` (beyond the paper): per image, among candidate predictions (none,
 * GRIS, LRIS, full) keep the one with the lowest mean predictive entropy
 * H = -sum_c p_c log p_c averaged over the image's pixels (natural log); ties go to
 * the earliest candidate in the given order.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';

export type EnsembleMode = 'softmax' | 'logits';

function checkLogits(xs: T.Tensor[], op: string): void {
  if (!Array.isArray(xs) || xs.length === 0) throw new ArgumentError(`Argument 'logits' passed to '${op}' must be a non-empty array of (N,C,H,W) tensors`);
  const s = xs[0].shape.join();
  xs.forEach((x, i) => {
    if (!(x instanceof T.Tensor) || x.ndim !== 4) throw new ArgumentError(`Argument 'logits[${i}]' passed to '${op}' must be (N,C,H,W)`);
    if (x.shape.join() !== s) throw new ArgumentError(`'${op}' needs logits of one shape, got [${s}] and [${x.shape.join(',')}]`);
  });
}

/**
 * Averages predictions: logits[k] (N, C, H, W) -> probabilities (N, C, H, W).
 *   const p = ensemble([modelOut(gris), modelOut(lris)])          // mean of softmax
 *   const q = ensemble([a, b], 'logits')                          // reference: mean of logits
 */
export function ensemble(logits: T.Tensor[], mode: EnsembleMode = 'softmax'): T.Tensor {
  checkLogits(logits, 'ensemble');
  if (mode !== 'softmax' && mode !== 'logits') throw new ArgumentError(`Argument 'mode' passed to 'ensemble' must be 'softmax' or 'logits', got ${String(mode)}`);
  return T.tidy(() => {
    if (mode === 'logits') return T.softmax(T.stack(logits, 0).mean(0), 1);
    return T.stack(logits.map((l) => T.softmax(l, 1)), 0).mean(0);
  });
}

/** Mean predictive entropy per image: probabilities (N, C, H, W) -> float32 (N). */
export function meanEntropy(probs: T.Tensor): T.Tensor {
  if (!(probs instanceof T.Tensor) || probs.ndim !== 4) throw new ArgumentError("Argument 'probs' passed to 'meanEntropy' must be (N,C,H,W)");
  return T.tidy(() => {
    const p = probs.to('float32');
    const plogp = T.where(p.gt(0), p.mul(p.clamp(1e-30).log()), T.zerosLike(p));
    return plogp.sum(1).neg().mean([1, 2]);
  });
}

/**
 * The `auto` rule: candidates[k] are probabilities (N, C, H, W) (e.g. none, GRIS,
 * LRIS, full); per image, the candidate of lowest mean entropy.
 * Returns the choice per image, each candidate's entropies, and the chosen probabilities.
 */
export function selectByEntropy(candidates: T.Tensor[]): { choice: number[]; entropies: number[][]; probs: T.Tensor } {
  checkLogits(candidates, 'selectByEntropy');
  return T.tidy(() => {
    const ent = candidates.map((c) => meanEntropy(c).toArray());
    const n = candidates[0].shape[0];
    const choice: number[] = [];
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < candidates.length; k++) if (ent[k][i] < ent[best][i]) best = k;
      choice.push(best);
    }
    const probs = T.cat(choice.map((k, i) => candidates[k].narrow(0, i, 1)), 0);
    return { choice, entropies: ent, probs };
  });
}
