/**
 * Combining predictions made on differently normalised copies of an image.
 * - 'softmax' (cqseg's default): mean of the softmax probabilities.
 * - 'logits' (the paper's reference code): softmax of the mean of the logits.
 * Full DCIN = ensemble of the GRIS- and LRIS-transferred predictions.
 *
 * Selection among candidate predictions, beyond the paper:
 * - `--dcin auto-entropy` (selectByEntropy, over none, GRIS, LRIS, full): per image, the
 *   candidate with the lowest mean predictive entropy H = -sum_c p_c log p_c averaged
 *   over the image's pixels (natural log); ties go to the earliest candidate. It trusts
 *   confidence, and fails exactly when a model is confidently wrong on an unfamiliar
 *   device (it then keeps `none`).
 * - `--dcin auto` (selectSafe): gated by the out-of-distribution flag (ood.ts): an image
 *   inside the training distribution keeps `none` (normalising it can only move it away
 *   from what the model was trained on); an image outside gets the medoid of the
 *   candidates, the one that agrees most with the others, never the most confident one.
 *   Agreement between two predictions = Dice macro of their argmax labels, one taken as
 *   the truth (classes absent from both left out, as the metric); a candidate's
 *   agreement = its mean over the other candidates. predict.ts says which candidates
 *   (none, GRIS, and the transfers toward the 3 nearest training images) and why.
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

/**
 * Dice macro between the argmax labels of two predictions, per image: a, b (N, C, H, W)
 * -> number[N]. Classes absent from both are left out (an image where both are empty
 * of every class cannot happen: each pixel has a label).
 */
export function labelAgreement(a: T.Tensor, b: T.Tensor): number[] {
  checkLogits([a, b], 'labelAgreement');
  const [n, c] = a.shape;
  const counts = T.tidy(() => {
    const la = T.argmax(a, 1).reshape([n, -1]);
    const lb = T.argmax(b, 1).reshape([n, -1]);
    const img = T.arange(n, undefined, undefined, { dtype: 'int64' }).reshape([n, 1]).mul(c * c);
    return T.bincount(img.add(la.mul(c)).add(lb).reshape([-1]), undefined, n * c * c).toArray() as number[];
  });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let classes = 0;
    for (let k = 0; k < c; k++) {
      let row = 0;
      let col = 0;
      for (let j = 0; j < c; j++) {
        row += counts[i * c * c + k * c + j];
        col += counts[i * c * c + j * c + k];
      }
      if (row + col === 0) continue;
      sum += (2 * counts[i * c * c + k * c + k]) / (row + col);
      classes++;
    }
    out.push(classes === 0 ? 1 : sum / classes);
  }
  return out;
}

/**
 * Per image, each candidate's mean agreement (labelAgreement) with the other candidates:
 * candidates[k] (N, C, H, W) -> agreement[k][i].
 */
export function agreementScores(candidates: T.Tensor[]): number[][] {
  checkLogits(candidates, 'agreementScores');
  const k = candidates.length;
  const n = candidates[0].shape[0];
  const pair: number[][][] = Array.from({ length: k }, () => Array.from({ length: k }, () => [] as number[]));
  for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) pair[a][b] = pair[b][a] = labelAgreement(candidates[a], candidates[b]);
  return candidates.map((_, a) => Array.from({ length: n }, (_, i) => {
    if (k === 1) return 1;
    let s = 0;
    for (let b = 0; b < k; b++) if (b !== a) s += pair[a][b][i];
    return s / (k - 1);
  }));
}

export interface SafeSelection {
  /** per image, the chosen candidate's index */
  choice: number[];
  /** per image, why: 'in distribution' (gate) or 'agreement' */
  reason: ('in distribution' | 'agreement')[];
  /** agreement[k][i], candidate k's mean agreement with the others on image i */
  agreement: number[][];
  probs: T.Tensor;
}

/**
 * The `auto` rule. candidates[k] are probabilities (N, C, H, W), candidates[0] the
 * prediction without normalisation; `outside[i]` the image's OOD flag (null: unknown,
 * e.g. a bank without calibration, treated as outside). Per image: inside -> 0; outside ->
 * the candidate with the highest mean agreement with the others (ties: the earliest in
 * `preference`, default the given order), unless candidate 0 agrees with the others within
 * `keepMargin` of it: then 0 (a transfer must earn its place; 0 = pure medoid). Never by
 * confidence.
 *   const r = selectSafe([none, gris, lris, full], [false, true], [3, 1, 2, 0], 0.05)
 */
export function selectSafe(candidates: T.Tensor[], outside: (boolean | null)[], preference?: number[], keepMargin = 0): SafeSelection {
  checkLogits(candidates, 'selectSafe');
  const n = candidates[0].shape[0];
  if (outside.length !== n) throw new ArgumentError(`Argument 'outside' passed to 'selectSafe' must hold one flag per image (${n}), got ${outside.length}`);
  if (!(keepMargin >= 0 && keepMargin <= 1)) throw new ArgumentError(`Argument 'keepMargin' passed to 'selectSafe' must be a number in [0, 1], got ${String(keepMargin)}`);
  const order = preference ?? candidates.map((_, k) => k);
  if (order.length !== candidates.length || [...order].sort((x, y) => x - y).some((v, i) => v !== i)) {
    throw new ArgumentError(`Argument 'preference' passed to 'selectSafe' must order the ${candidates.length} candidates, got ${JSON.stringify(preference)}`);
  }
  const agreement = agreementScores(candidates);
  const choice: number[] = [];
  const reason: SafeSelection['reason'] = [];
  for (let i = 0; i < n; i++) {
    if (outside[i] === false) {
      choice.push(0);
      reason.push('in distribution');
      continue;
    }
    let best = order[0];
    for (const k of order.slice(1)) if (agreement[k][i] > agreement[best][i]) best = k;
    if (keepMargin > 0 && agreement[0][i] >= agreement[best][i] - keepMargin) best = 0;
    choice.push(best);
    reason.push('agreement');
  }
  const probs = T.tidy(() => T.cat(choice.map((k, i) => candidates[k].narrow(0, i, 1)), 0));
  return { choice, reason, agreement, probs };
}
