/**
 * Loss math as pure functions (smp's losses/ style); classes only wrap them.
 *
 * Dice follows MONAI 1.4 `DiceLoss(to_onehot_y=True, softmax=True, squared_pred=True,
 * smooth_nr=0, smooth_dr=1e-6, include_background=True, reduction='mean', batch=False)`
 * (monai/losses/dice.py): p = softmax(logits, 1), g = one_hot(target); per sample n and
 * class c over the pixels: I = sum(p g), D = sum(p^2) + sum(g^2);
 * f[n, c] = 1 - (2 I + smooth_nr) / (D + smooth_dr); loss = mean over n and c.
 * DiceCE follows MONAI's DiceCELoss: dice + cross_entropy(logits, target) (mean over
 * pixels, optional class weights as torch.nn.CrossEntropyLoss).
 * CQG (the paper, eq. 1; weights of the reference's main/train.py):
 * w_geo DiceCE(geo) + w_aug DiceCE(aug) + w_diff MSE(logits_geo, logits_aug).
 */
import { Tensor, crossEntropy, indexSelect, mseLoss, oneHot, scalarTensor, softmax, tidy } from '../tensor';
import { ArgumentError } from '../tensor/check';

/**
 * A sum over the processes of data-parallel training (tensor/dist.ts globalSum): given,
 * every batch mean below becomes (global sum) / (global count), so each process computes the
 * loss of the whole global batch, not of its share (a Dice or a class-weighted mean of
 * shares is not the whole batch's). Absent: one process, plain means.
 */
export type GlobalSum = (x: Tensor) => Tensor;

/** mean of `terms` over the global batch: sum(terms) / count with both summed over the processes. */
function globalMean(terms: Tensor, count: number | Tensor, sum: GlobalSum): Tensor {
  return tidy(() => {
    const c = typeof count === 'number' ? scalarTensor(count, { dtype: terms.dtype }) : count.to(terms.dtype);
    return sum(terms.sum()).div(sum(c));
  });
}

export interface DiceOptions {
  /** data-parallel training: the sum over the processes (see GlobalSum) */
  sum?: GlobalSum;
  smoothNr?: number;
  smoothDr?: number;
  squaredPred?: boolean;
}

function checkPair(logits: Tensor, target: Tensor, op: string): void {
  if (logits.ndim !== 4) throw new ArgumentError(`Argument 'logits' passed to '${op}' must be 4-D (N,C,H,W), got [${logits.shape.join(',')}]`);
  const [n, , h, w] = logits.shape;
  if (target.ndim !== 3 || target.shape[0] !== n || target.shape[1] !== h || target.shape[2] !== w) {
    throw new ArgumentError(`Argument 'target' passed to '${op}' must be (N,H,W) = [${n},${h},${w}] class indices, got [${target.shape.join(',')}]`);
  }
  if (target.dtype !== 'int64') throw new ArgumentError(`Argument 'target' passed to '${op}' must be int64, got ${target.dtype}`);
}

/** MONAI DiceLoss (softmax, one-hot target, squared_pred) averaged over samples and classes. */
export function diceLoss(logits: Tensor, target: Tensor, opts: DiceOptions = {}): Tensor {
  checkPair(logits, target, 'diceLoss');
  const smoothNr = opts.smoothNr ?? 0;
  const smoothDr = opts.smoothDr ?? 1e-6;
  const squared = opts.squaredPred ?? true;
  return tidy(() => {
    const c = logits.shape[1];
    const p = softmax(logits, 1);
    const g = oneHot(target, c).permute([0, 3, 1, 2]).to(p.dtype);
    const inter = p.mul(g).sum([2, 3]);
    const predO = (squared ? p.square() : p).sum([2, 3]);
    const gtO = (squared ? g.square() : g).sum([2, 3]);
    const f = inter.mul(2).add(smoothNr).div(predO.add(gtO).add(smoothDr)).neg().add(1);
    return opts.sum ? globalMean(f, f.size, opts.sum) : f.mean();
  });
}

export interface DiceCEOptions extends DiceOptions {
  classWeights?: Tensor;
  lambdaDice?: number;
  lambdaCe?: number;
}

export interface DiceCETerms {
  loss: Tensor;
  dice: Tensor;
  ce: Tensor;
}

/** MONAI DiceCELoss: lambdaDice * dice + lambdaCe * cross-entropy; returns the terms too. */
export function diceCELoss(logits: Tensor, target: Tensor, opts: DiceCEOptions = {}): DiceCETerms {
  checkPair(logits, target, 'diceCELoss');
  const dice = diceLoss(logits, target, opts);
  const ce = opts.sum ? globalCrossEntropy(logits, target, opts.classWeights, opts.sum) : crossEntropy(logits, target, { weight: opts.classWeights });
  const loss = tidy(() => dice.mul(opts.lambdaDice ?? 1).add(ce.mul(opts.lambdaCe ?? 1)));
  return { loss, dice, ce };
}

/** Cross-entropy's (class-weighted) mean over the global batch: sum of w[y] ce / sum of w[y], as PyTorch's 'mean'. */
function globalCrossEntropy(logits: Tensor, target: Tensor, weight: Tensor | undefined, sum: GlobalSum): Tensor {
  return tidy(() => {
    const total = crossEntropy(logits, target, { weight, reduction: 'sum' });
    const count = weight ? indexSelect(weight, 0, target.reshape([-1])).sum() : target.size;
    return globalMean(total, count, sum);
  });
}

export interface CqgWeights {
  geo: number;
  aug: number;
  diff: number;
}

/** The reference's training weights (main/train.py): 0.3, 0.7, 1.0. */
export const DEFAULT_CQG_WEIGHTS: CqgWeights = { geo: 0.3, aug: 0.7, diff: 1.0 };

export interface CqgTerms {
  loss: Tensor;
  geo: Tensor;
  aug: Tensor;
  diff: Tensor;
}

/**
 * The CQG loss: w.geo DiceCE(logitsGeo, y) + w.aug DiceCE(logitsAug, y) + w.diff MSE(logitsGeo, logitsAug).
 * Gradients flow through both views (as the paper: one network, two forward passes).
 */
export function cqgLoss(logitsGeo: Tensor, logitsAug: Tensor, target: Tensor, w: CqgWeights = DEFAULT_CQG_WEIGHTS,
  opts: DiceCEOptions = {}): CqgTerms {
  const geo = diceCELoss(logitsGeo, target, opts);
  const aug = diceCELoss(logitsAug, target, opts);
  const diff = opts.sum ? tidy(() => globalMean(mseLoss(logitsGeo, logitsAug, 'sum'), logitsGeo.size, opts.sum!)) : mseLoss(logitsGeo, logitsAug);
  const loss = tidy(() => geo.loss.mul(w.geo).add(aug.loss.mul(w.aug)).add(diff.mul(w.diff)));
  for (const t of [geo.dice, geo.ce, aug.dice, aug.ce]) t.dispose();
  return { loss, geo: geo.loss, aug: aug.loss, diff };
}

/** Class wrappers (smp style): `new DiceCELoss().forward(logits, target)`. */
export class DiceCELoss {
  constructor(readonly options: DiceCEOptions = {}) {}
  forward(logits: Tensor, target: Tensor): DiceCETerms {
    return diceCELoss(logits, target, this.options);
  }
}

export class CqgLoss {
  constructor(readonly weights: CqgWeights = DEFAULT_CQG_WEIGHTS, readonly options: DiceCEOptions = {}) {}
  forward(logitsGeo: Tensor, logitsAug: Tensor, target: Tensor): CqgTerms {
    return cqgLoss(logitsGeo, logitsAug, target, this.weights, this.options);
  }
}
