/**
 * Module: a tree of parameters, buffers and children whose dotted names are
 * PyTorch's state_dict keys (`decoder.blocks.0.conv1.0.weight`), so checkpoints
 * move between cqseg and PyTorch with a name map at most.
 */
import { DType, Device, Tensor, dispose, keep, noGrad, to, zeroGrads } from '../tensor';
import { CqsegError } from '../util/errors';

export interface LoadResult {
  /** names the module has but the state dict lacked */
  missing: string[];
  /** names the state dict had but the module lacks */
  unexpected: string[];
  /** names present in both with different shapes (only when partial) */
  mismatched: string[];
}

export class StateDictError extends CqsegError {
  constructor(message: string, readonly result: LoadResult) {
    super(message, 'ERR_STATE_DICT');
  }
}

export class Module {
  training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _modules = new Map<string, Module>();

  /** Registers a trainable tensor (requiresGrad set, exempt from tidy scopes). */
  protected registerParameter(name: string, t: Tensor | null): Tensor {
    if (t !== null) {
      keep(t);
      if (!t.requiresGrad) t.requiresGrad_(true);
    }
    this._parameters.set(name, t);
    return t as Tensor;
  }

  /** Registers a state tensor saved in the state dict but not trained (running stats). */
  protected registerBuffer(name: string, t: Tensor | null): Tensor {
    if (t !== null) keep(t);
    this._buffers.set(name, t);
    return t as Tensor;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._modules.set(name, m);
    return m;
  }

  /** Runs the module; subclasses override. */
  forward(x: Tensor): Tensor {
    throw new Error(`${this.constructor.name}.forward(x) is not implemented`);
  }

  /** Shorthand for forward. */
  call(x: Tensor): Tensor {
    return this.forward(x);
  }

  children(): Module[] {
    return [...this._modules.values()];
  }

  namedChildren(): [string, Module][] {
    return [...this._modules.entries()];
  }

  /** Every module of the tree with its dotted name ('' for this one), depth first. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of m._parameters) if (t !== null) out.push([prefix ? `${prefix}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of m._buffers) if (t !== null) out.push([prefix ? `${prefix}.${name}` : name, t]);
    }
    return out;
  }

  /** Number of trainable values. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Tensors in PyTorch's state_dict order: per module its parameters, then its buffers, then its children. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, prefix: string): void => {
      for (const [n, t] of m._parameters) if (t !== null) out.set(prefix + n, t);
      for (const [n, t] of m._buffers) if (t !== null) out.set(prefix + n, t);
      for (const [n, c] of m._modules) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return out;
  }

  /**
   * Copies values from a state dict into this module's tensors (in place, under noGrad,
   * cast to each tensor's dtype and device). Strict by default: a missing, unexpected or
   * mis-shaped tensor throws a StateDictError naming it. With { strict: false } those
   * are skipped and reported in the result.
   */
  loadStateDict(sd: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const result: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    for (const name of own.keys()) if (!src.has(name)) result.missing.push(name);
    for (const name of src.keys()) if (!own.has(name)) result.unexpected.push(name);
    for (const [name, t] of own) {
      const s = src.get(name);
      if (s !== undefined && s.shape.join(',') !== t.shape.join(',')) {
        result.mismatched.push(`${name}: checkpoint [${s.shape.join(',')}], model [${t.shape.join(',')}]`);
      }
    }
    if (strict && (result.missing.length || result.unexpected.length || result.mismatched.length)) {
      const parts: string[] = [];
      const list = (xs: string[]): string => xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, ... (${xs.length} in all)` : '');
      if (result.missing.length) parts.push(`missing ${result.missing.length}: ${list(result.missing)}`);
      if (result.unexpected.length) parts.push(`unexpected ${result.unexpected.length}: ${list(result.unexpected)}`);
      if (result.mismatched.length) parts.push(`shape mismatch ${result.mismatched.length}: ${list(result.mismatched)}`);
      throw new StateDictError(`state dict does not fit ${this.constructor.name}: ${parts.join('; ')}`, result);
    }
    const bad = new Set(result.mismatched.map((m) => m.slice(0, m.indexOf(':'))));
    noGrad(() => {
      for (const [name, t] of own) {
        const s = src.get(name);
        if (s === undefined || bad.has(name)) continue;
        if (s.dtype === t.dtype && s.device === t.device) {
          t.copy_(s);
        } else {
          const c = to(s, { dtype: t.dtype, device: t.device });
          t.copy_(c);
          c.dispose();
        }
      }
    });
    return result;
  }

  /** Training mode for this module and its children (BatchNorm batch stats, dropout on). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's .grad to none. */
  zeroGrad(): void {
    zeroGrads(this.parameters());
  }

  /** Moves or casts every parameter and buffer (floating buffers only for a dtype), in place. */
  to(target: Device | DType): this {
    const isDtype = ['float32', 'float16', 'bfloat16', 'float64'].includes(target);
    const move = (map: Map<string, Tensor | null>, param: boolean): void => {
      for (const t of map.values()) {
        if (t === null) continue;
        if (isDtype && !t.dtype.startsWith('float') && !t.dtype.startsWith('bfloat')) continue;
        t._assign(noGrad(() => to(t, target)));
        if (param) t.requiresGrad_(true);
      }
    };
    for (const [, m] of this.namedModules()) {
      move(m._parameters, true);
      move(m._buffers, false);
    }
    return this;
  }

  /** Frees every parameter and buffer of the tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      dispose([...m._parameters.values()]);
      dispose([...m._buffers.values()]);
    }
  }
}
