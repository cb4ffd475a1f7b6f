// Module: parameters, buffers and children registered under PyTorch's names, so a state dict's dotted
// keys (`layers.0.attn.in_proj_weight`, `norm.running_mean`) match PyTorch's and checkpoints cross over.
import { noGrad } from '../autograd.js';
import { fmtShape, ShapeError, ValueError } from '../errors.js';
import { keep } from '../runtime.js';
import { isTensor, type Tensor } from '../tensor.js';

export class Module {
  protected training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _modules = new Map<string, Module | null>();

  /** Registers a trainable tensor (it gets requiresGrad and survives tidy scopes). */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    this.checkName(name);
    if (t) {
      t.requiresGrad = true;
      keep(t);
    }
    this._parameters.set(name, t);
    return t;
  }

  /** Registers state that is saved but not trained (running statistics, masks). */
  protected registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    this.checkName(name);
    if (t) keep(t);
    this._buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module | null>(name: string, m: M): M {
    this.checkName(name);
    this._modules.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (!name || name.includes('.')) throw new ValueError(`Module: invalid name '${name}' (no dots, not empty)`);
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name))
      throw new ValueError(`Module: '${name}' is already registered`);
  }

  /** Replaces a registered parameter or buffer tensor (e.g. after loading), disposing the old one. */
  protected replaceTensor(name: string, t: Tensor): void {
    const map = this._parameters.has(name) ? this._parameters : this._buffers;
    map.get(name)?.dispose();
    map.set(name, keep(t));
    (this as unknown as Record<string, unknown>)[camel(name)] = t;
  }

  *children(): Generator<Module> {
    for (const m of this._modules.values()) if (m) yield m;
  }

  *namedChildren(): Generator<[string, Module]> {
    for (const [n, m] of this._modules) if (m) yield [n, m];
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix))
      for (const [n, p] of m._parameters)
        if (p && !seen.has(p)) {
          seen.add(p);
          yield [mp ? `${mp}.${n}` : n, p];
        }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [mp, m] of this.namedModules(prefix))
      for (const [n, b] of m._buffers) if (b) yield [mp ? `${mp}.${n}` : n, b];
  }

  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((p) => !opts.trainableOnly || p.requiresGrad)
      .reduce((a, p) => a + p.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  get isTraining(): boolean {
    return this.training;
  }

  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Parameters and buffers by dotted PyTorch-style key, in registration order. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [mp, m] of this.namedModules()) {
      for (const [n, p] of m._parameters) if (p) out.set(mp ? `${mp}.${n}` : n, p);
      for (const [n, b] of m._buffers) if (b) out.set(mp ? `${mp}.${n}` : n, b);
    }
    return out;
  }

  /**
   * Copies tensors into this module's parameters and buffers. Strict by default: missing, unexpected and
   * mis-shaped keys are all named in one error, and nothing is changed unless everything fits.
   */
  loadStateDict(
    state: Map<string, Tensor> | Record<string, Tensor>,
    opts: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const { strict = true } = opts;
    const src = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    const misShaped: string[] = [];
    for (const [k, t] of own) {
      const s = src.get(k);
      if (s === undefined) continue;
      // Everything that could stop the copy below is found here, so a refused load changes nothing.
      if (!isTensor(s)) throw new ValueError(`loadStateDict: '${k}' is not a tensor`);
      s.assertUsable(`loadStateDict('${k}')`);
      if (s.shape.length !== t.shape.length || s.shape.some((v, i) => v !== t.shape[i]))
        misShaped.push(`${k}: expected ${fmtShape(t.shape)}, got ${fmtShape(s.shape)}`);
    }
    if (misShaped.length || (strict && (missing.length || unexpected.length))) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
      if (misShaped.length) parts.push(`shape mismatches: ${misShaped.join('; ')}`);
      throw new ShapeError(`loadStateDict: ${parts.join(' | ')}`);
    }
    noGrad(() => {
      // dtype conversions first (they allocate and could fail), then the copies
      const from = new Map<string, Tensor>();
      for (const [k, t] of own) {
        const s = src.get(k);
        if (s) from.set(k, s.dtype === t.dtype ? s : s.to(t.dtype));
      }
      try {
        for (const [k, t] of own) {
          const s = from.get(k);
          if (s) t.copy_(s);
        }
      } finally {
        for (const [k, s] of from) if (s !== src.get(k)) s.dispose();
      }
    });
    return { missing, unexpected };
  }
}

/** PyTorch's snake_case state-dict names to our camelCase properties. */
export function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
