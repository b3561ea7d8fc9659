/**
 * Segmentation metrics from a confusion matrix accumulated over a whole dataset
 * (torchmetrics' "global" reduction): counts[t * C + p] = pixels of true class t
 * predicted as p. Per class: TP = counts[c, c], FP = column sum - TP, FN = row sum - TP.
 *
 * Dice macro follows torchmetrics 1.4 `Dice(num_classes=C, average='macro')` on argmax
 * labels: dice_c = 2 TP / (2 TP + FP + FN), background included, and a class absent from
 * both prediction and truth (TP + FP + FN = 0) is left out of the mean (torchmetrics'
 * `_dice_compute` drops those classes for macro averaging). IoU_c = TP / (TP + FP + FN).
 *
 * With a region of interest (a field-of-view mask), only pixels inside it are counted:
 * the metrics are "inside the ROI", as retinal-vessel benchmarks (DRIVE) report them.
 */
import { Tensor, bincount, maskedSelect, tidy } from '../tensor';
import { ArgumentError } from '../tensor/check';

export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number) {
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /**
   * Adds predictions and targets of one batch: class indices of equal shape. With `roi`
   * (same shape, bool or 0/1; nonzero = inside), only pixels inside it are counted.
   *   cm.update(argmax(probs, 1), batch.masks, batch.roi);
   */
  update(pred: Tensor, target: Tensor, roi?: Tensor): void {
    if (pred.shape.join() !== target.shape.join()) {
      throw new ArgumentError(`ConfusionMatrix.update: prediction [${pred.shape.join(',')}] and target [${target.shape.join(',')}] differ in shape`);
    }
    if (roi && roi.shape.join() !== target.shape.join()) {
      throw new ArgumentError(`ConfusionMatrix.update: roi [${roi.shape.join(',')}] and target [${target.shape.join(',')}] differ in shape`);
    }
    const c = this.numClasses;
    const hist = tidy(() => {
      const t = target.to('int64').reshape([-1]);
      const p = pred.to('int64').reshape([-1]);
      if (t.size > 0 && (t.max().item() >= c || t.min().item() < 0)) {
        throw new ArgumentError(`ConfusionMatrix.update: target holds classes outside 0..${c - 1}`);
      }
      const pair = t.mul(c).add(p.clamp(0, c - 1));
      const counted = roi ? maskedSelect(pair, roi.reshape([-1]).ne(0)) : pair;
      return bincount(counted, undefined, c * c).to('float64');
    });
    const h = hist.dataSync() as Float64Array;
    hist.dispose();
    for (let i = 0; i < h.length; i++) this.counts[i] += h[i];
  }

  merge(other: ConfusionMatrix): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
  }

  private stats(c: number): { tp: number; fp: number; fn: number } {
    const n = this.numClasses;
    let row = 0;
    let col = 0;
    for (let k = 0; k < n; k++) {
      row += this.counts[c * n + k];
      col += this.counts[k * n + c];
    }
    const tp = this.counts[c * n + c];
    return { tp, fp: col - tp, fn: row - tp };
  }

  /** Dice per class; NaN where the class is absent from prediction and truth. */
  dicePerClass(): number[] {
    return Array.from({ length: this.numClasses }, (_, c) => {
      const { tp, fp, fn } = this.stats(c);
      return tp + fp + fn === 0 ? NaN : (2 * tp) / (2 * tp + fp + fn);
    });
  }

  iouPerClass(): number[] {
    return Array.from({ length: this.numClasses }, (_, c) => {
      const { tp, fp, fn } = this.stats(c);
      return tp + fp + fn === 0 ? NaN : tp / (tp + fp + fn);
    });
  }

  /** Macro Dice over classes present in prediction or truth (torchmetrics' convention). */
  diceMacro(): number {
    return meanDefined(this.dicePerClass());
  }

  iouMacro(): number {
    return meanDefined(this.iouPerClass());
  }
}

function meanDefined(xs: number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
}
