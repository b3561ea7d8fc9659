/**
 * Optimizers with torch.optim's update rules (Adam, AdamW, SGD). The per-parameter
 * loop runs in the addon (one call per step); the state tensors live here so they
 * save and load as a state dict (tensors + JSON hyper-parameters).
 */
import { Tensor, adamStep, all, dispose, hasGrads, isfinite, keep, noGrad, sgdStep, tidy, zeroGrads, zerosLike } from '../tensor';
import { ArgumentError } from '../tensor/check';

export interface OptimizerState {
  /** tensors named `state.<i>.<key>` (i = parameter index) */
  tensors: Map<string, Tensor>;
  /** JSON-serialisable hyper-parameters and counters */
  meta: Record<string, unknown>;
}

export abstract class Optimizer {
  readonly params: Tensor[];

  constructor(params: Tensor[] | [string, Tensor][]) {
    this.params = params.map((p) => (Array.isArray(p) ? p[1] : p));
    if (this.params.length === 0) throw new ArgumentError('optimizer got an empty parameter list');
  }

  abstract step(): void;
  abstract stateDict(): OptimizerState;
  abstract loadStateDict(state: OptimizerState): void;
  abstract get lr(): number;
  abstract set lr(v: number);

  /** Sets every parameter's .grad to none (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    zeroGrads(this.params);
  }

  /** Frees the optimizer's state tensors (not the parameters). */
  abstract dispose(): void;

  protected slots(lazy: Tensor[][], index: number): Tensor[] {
    const list = lazy[index];
    if (list.length === 0) for (const p of this.params) list.push(keep(noGrad(() => zerosLike(p))));
    return list;
  }

  protected loadSlots(state: OptimizerState, key: string, into: Tensor[]): void {
    dispose(into.splice(0));
    for (let i = 0; i < this.params.length; i++) {
      const t = state.tensors.get(`state.${i}.${key}`);
      if (t === undefined) {
        dispose(into.splice(0));
        return;
      }
      if (t.shape.join() !== this.params[i].shape.join()) {
        throw new ArgumentError(`optimizer state 'state.${i}.${key}' has shape [${t.shape.join(',')}], parameter ${i} has [${this.params[i].shape.join(',')}]`);
      }
      into.push(keep(noGrad(() => t.to({ dtype: this.params[i].dtype, device: this.params[i].device, copy: true }))));
    }
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/** torch.optim.Adam (L2 weight decay added to the gradient). */
export class Adam extends Optimizer {
  lrValue: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  protected readonly decoupled: boolean = false;
  private readonly state: Tensor[][] = [[], [], []];
  private steps: number[];

  constructor(params: Tensor[] | [string, Tensor][], opts: AdamOptions = {}) {
    super(params);
    this.lrValue = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.amsgrad = opts.amsgrad ?? false;
    this.steps = this.params.map(() => 0);
    if (!(this.lrValue >= 0)) throw new ArgumentError(`Adam: invalid learning rate ${this.lrValue}`);
    if (!(this.betas[0] >= 0 && this.betas[0] < 1 && this.betas[1] >= 0 && this.betas[1] < 1)) {
      throw new ArgumentError(`Adam: betas must be in [0, 1), got [${this.betas.join(', ')}]`);
    }
  }

  get lr(): number {
    return this.lrValue;
  }

  set lr(v: number) {
    this.lrValue = v;
  }

  step(): void {
    const m = this.slots(this.state, 0);
    const v = this.slots(this.state, 1);
    const vmax = this.amsgrad ? this.slots(this.state, 2) : [];
    // torch counts steps per parameter, only for parameters that have a gradient
    const hasGrad = hasGrads(this.params);
    for (let i = 0; i < this.params.length; i++) if (hasGrad[i]) this.steps[i]++;
    adamStep(this.params, m, v, vmax, this.steps, {
      lr: this.lrValue, beta1: this.betas[0], beta2: this.betas[1], eps: this.eps,
      weightDecay: this.weightDecay, decoupled: this.decoupled, amsgrad: this.amsgrad,
    });
  }

  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    const keys = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'];
    this.state.forEach((list, k) => list.forEach((t, i) => tensors.set(`state.${i}.${keys[k]}`, t)));
    return {
      tensors,
      meta: { type: this.constructor.name, lr: this.lrValue, betas: this.betas, eps: this.eps, weightDecay: this.weightDecay, amsgrad: this.amsgrad, steps: [...this.steps] },
    };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.meta.type !== this.constructor.name) {
      throw new ArgumentError(`optimizer state is for ${String(state.meta.type)}, this is ${this.constructor.name}`);
    }
    const steps = state.meta.steps as number[];
    if (!Array.isArray(steps) || steps.length !== this.params.length) {
      throw new ArgumentError(`optimizer state holds ${Array.isArray(steps) ? steps.length : 0} parameters, this optimizer has ${this.params.length}`);
    }
    ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'].forEach((key, k) => this.loadSlots(state, key, this.state[k]));
    this.steps = [...steps];
    this.lrValue = state.meta.lr as number;
  }

  dispose(): void {
    for (const list of this.state) dispose(list.splice(0));
  }
}

/** torch.optim.AdamW: decoupled weight decay p *= 1 - lr * wd (default wd 1e-2). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: Tensor[] | [string, Tensor][], opts: AdamOptions = {}) {
    super(params, { weightDecay: 1e-2, ...opts });
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD with momentum, dampening, weight decay and Nesterov. */
export class SGD extends Optimizer {
  lrValue: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly buffers: Tensor[][] = [[]];
  private initialized: number[];

  constructor(params: Tensor[] | [string, Tensor][], opts: SGDOptions) {
    super(params);
    this.lrValue = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.initialized = this.params.map(() => 0);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new ArgumentError('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
  }

  get lr(): number {
    return this.lrValue;
  }

  set lr(v: number) {
    this.lrValue = v;
  }

  step(): void {
    const bufs = this.momentum !== 0 ? this.slots(this.buffers, 0) : [];
    sgdStep(this.params, bufs, this.initialized, {
      lr: this.lrValue, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov,
    });
    if (this.momentum !== 0) {
      const hasGrad = hasGrads(this.params);
      this.initialized = this.initialized.map((v, i) => (hasGrad[i] ? 1 : v));
    }
  }

  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    this.buffers[0].forEach((t, i) => tensors.set(`state.${i}.momentum_buffer`, t));
    return {
      tensors,
      meta: { type: 'SGD', lr: this.lrValue, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov, initialized: [...this.initialized] },
    };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.meta.type !== 'SGD') throw new ArgumentError(`optimizer state is for ${String(state.meta.type)}, this is SGD`);
    this.loadSlots(state, 'momentum_buffer', this.buffers[0]);
    this.initialized = [...(state.meta.initialized as number[])];
    this.lrValue = state.meta.lr as number;
  }

  dispose(): void {
    dispose(this.buffers[0].splice(0));
  }
}

/**
 * Dynamic loss scaling for float16 training (torch.cuda.amp.GradScaler's rule): the loss is
 * multiplied by `scale` before backward; before the step the gradients are divided by it, and
 * a step whose gradients hold an inf or NaN is skipped and halves the scale; after `interval`
 * good steps in a row the scale doubles.
 *   const s = new GradScaler();  s.scale(loss).backward();  s.step(opt);
 */
export class GradScaler {
  private growth = 0;
  constructor(public scaleValue = 2 ** 16, readonly interval = 2000) {}

  scale(loss: Tensor): Tensor {
    return loss.mul(this.scaleValue);
  }

  /** Unscales the gradients and steps (or skips, on inf/NaN); returns whether it stepped. */
  step(opt: Optimizer): boolean {
    const grads = opt.params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined && g !== null);
    const finite = tidy(() => grads.every((g) => all(isfinite(g)).item() !== 0));
    if (!finite) {
      this.scaleValue /= 2;
      this.growth = 0;
      return false;
    }
    noGrad(() => grads.forEach((g) => g.mul_(1 / this.scaleValue)));
    opt.step();
    if (++this.growth >= this.interval) {
      this.scaleValue *= 2;
      this.growth = 0;
    }
    return true;
  }
}
