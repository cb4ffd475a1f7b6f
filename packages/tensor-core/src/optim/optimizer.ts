// Optimizer base: parameter groups with their own hyper-parameters (e.g. a codebook's learning-rate
// multiplier), per-parameter state, and a state dict that checkpoints save and restore exactly.
import { noGrad } from '../autograd.js';
import { DTypeError, fmtShape, ShapeError, ValueError } from '../errors.js';
import { keep, tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';

export type ParamGroup<O> = O & { params: Tensor[] };

export interface OptimizerState {
  /** Per-parameter state tensors, keyed `${paramIndex}.${name}` (indices in group order). */
  tensors: Map<string, Tensor>;
  /** Hyper-parameters per group and per-parameter scalars (such as Adam's step count). */
  meta: { groups: Record<string, unknown>[]; scalars: Record<string, Record<string, number>> };
}

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[];
  protected readonly state = new Map<Tensor, { tensors: Record<string, Tensor>; scalars: Record<string, number> }>();

  constructor(params: Tensor[] | (Partial<O> & { params: Tensor[] })[], defaults: O) {
    const groups =
      params.length > 0 && (params[0] as Tensor).isTensor
        ? [{ params: params as Tensor[] }]
        : (params as ({ params: Tensor[] } & Partial<O>)[]);
    if (groups.length === 0) throw new ValueError('optimizer: got an empty parameter list');
    this.paramGroups = groups.map((g) => ({ ...defaults, ...defined(g) }) as ParamGroup<O>);
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (seen.has(p))
          throw new ValueError('optimizer: a parameter appears more than once (in one group or across groups)');
        if (!p.requiresGrad) throw new ValueError('optimizer: every parameter must require grad');
        seen.add(p);
      }
  }

  /** Throws a ValueError unless a group's options are ones this optimizer can use (each optimizer's own). */
  protected checkGroup(_g: O): void {}

  /** One update of every parameter that has a gradient. */
  step(): void {
    // A gradient of another shape would broadcast into the parameter (and give its state another shape).
    for (const g of this.paramGroups)
      for (const p of g.params) {
        const gr = p.grad;
        if (gr && (gr.shape.length !== p.shape.length || gr.shape.some((n, i) => n !== p.shape[i])))
          throw new ShapeError(
            `optimizer.step: a gradient of shape ${fmtShape(gr.shape)} for a parameter of ${fmtShape(p.shape)}`,
          );
        if (gr && gr.dtype !== p.dtype)
          throw new DTypeError(`optimizer.step: a ${gr.dtype} gradient for a ${p.dtype} parameter`);
      }
    noGrad(() => {
      for (const g of this.paramGroups)
        for (const p of g.params) {
          if (!p.grad) continue;
          let st = this.state.get(p);
          if (!st) {
            st = { tensors: {}, scalars: {} };
            this.state.set(p, st);
          }
          const s = st;
          tidy(() => this.update(p, p.grad!, g, s));
        }
    });
  }

  /** Updates `p` in place from `grad`; new state tensors must be passed through `this.keepState`. */
  protected abstract update(
    p: Tensor,
    grad: Tensor,
    group: ParamGroup<O>,
    state: { tensors: Record<string, Tensor>; scalars: Record<string, number> },
  ): void;

  protected keepState(t: Tensor): Tensor {
    return keep(t);
  }

  zeroGrad(): void {
    for (const g of this.paramGroups)
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
  }

  private order(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    const scalars: Record<string, Record<string, number>> = {};
    this.order().forEach((p, i) => {
      const st = this.state.get(p);
      if (!st) return;
      for (const [k, t] of Object.entries(st.tensors)) tensors.set(`${i}.${k}`, t);
      scalars[i] = { ...st.scalars };
    });
    const groups = this.paramGroups.map(({ params, ...h }) => ({ ...h, numParams: params.length }));
    return { tensors, meta: { groups, scalars } };
  }

  /**
   * Throws a ValueError unless `s` would load into this optimizer whole: its groups (count, sizes, and
   * hyper-parameters of the types this optimizer's groups hold), per-parameter scalars (finite numbers) and state
   * tensors (known parameter indices, the parameters' shapes). `loadStateDict` checks first and only then
   * changes anything, so a refused state leaves the optimizer as it was.
   */
  checkStateDict(s: OptimizerState): void {
    const bad = (why: string): never => {
      throw new ValueError(`optimizer.loadStateDict: ${why}`);
    };
    const meta = s?.meta as OptimizerState['meta'] | undefined;
    if (!meta || typeof meta !== 'object' || !Array.isArray(meta.groups))
      bad('the state has no list of parameter groups');
    if (meta!.groups.length !== this.paramGroups.length)
      bad(`${meta!.groups.length} groups saved, ${this.paramGroups.length} here`);
    meta!.groups.forEach((g, i) => {
      const here = this.paramGroups[i]! as Record<string, unknown> & { params: Tensor[] };
      if (!g || typeof g !== 'object' || Array.isArray(g)) bad(`group ${i} is not an object`);
      if (g.numParams !== here.params.length)
        bad(`group ${i} had ${String(g.numParams)} parameters, has ${here.params.length}`);
      for (const [k, v] of Object.entries(g)) {
        if (k === 'numParams') continue;
        if (k === 'params') bad(`group ${i} carries 'params' (parameters are never restored from a file)`);
        if (!sameKind(v, here[k]))
          bad(`group ${i} option '${k}' is ${JSON.stringify(v)}; here it is ${JSON.stringify(here[k])}`);
      }
    });
    // the groups as they would be after the load, checked as the constructor checks them
    meta!.groups.forEach((g, i) => {
      const { numParams: _n, ...h } = g;
      try {
        this.checkGroup({ ...this.paramGroups[i]!, ...h } as O);
      } catch (e) {
        bad(`group ${i}: ${(e as Error).message}`);
      }
    });
    if (!meta!.scalars || typeof meta!.scalars !== 'object' || Array.isArray(meta!.scalars))
      bad('scalars are not an object');
    const n = this.order().length;
    for (const [i, sc] of Object.entries(meta!.scalars)) {
      const idx = Number(i);
      if (!(Number.isInteger(idx) && idx >= 0 && idx < n)) bad(`scalars for unknown parameter index '${i}'`);
      if (!sc || typeof sc !== 'object' || Array.isArray(sc)) bad(`scalars of parameter ${i} are not an object`);
      for (const [k, v] of Object.entries(sc)) {
        if (typeof v !== 'number' || !Number.isFinite(v))
          bad(`scalar '${k}' of parameter ${i} is ${JSON.stringify(v)}`);
        // a step count (Adam's bias correction) is a count
        if (k === 'step' && !(Number.isInteger(v) && (v as number) >= 0))
          bad(`scalar 'step' of parameter ${i} is ${v}; a step count is an integer ≥ 0`);
      }
    }
    const ps = this.order();
    for (const [key, t] of s.tensors) {
      const dot = key.indexOf('.');
      const idx = Number(key.slice(0, dot));
      const p = dot > 0 && Number.isInteger(idx) ? ps[idx] : undefined;
      if (!p) bad(`state for unknown parameter index in '${key}'`);
      if (t.shape.join() !== p!.shape.join()) bad(`'${key}' has shape [${t.shape}], parameter has [${p!.shape}]`);
    }
  }

  loadStateDict(s: OptimizerState): void {
    this.checkStateDict(s);
    const ps = this.order();
    s.meta.groups.forEach((g, i) => {
      const { numParams: _n, ...h } = g;
      Object.assign(this.paramGroups[i]!, h);
    });
    // Copies first: the state given may be this optimizer's own (its stateDict()), which the disposal below frees.
    const copies = [...s.tensors].map(([key, t]) => [key, keep(t.clone())] as const);
    for (const st of this.state.values()) for (const t of Object.values(st.tensors)) t.dispose();
    this.state.clear();
    for (const [key, t] of copies) {
      const dot = key.indexOf('.');
      const p = ps[Number(key.slice(0, dot))]!;
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = { tensors: {}, scalars: {} }));
      st.tensors[key.slice(dot + 1)] = t;
    }
    for (const [i, sc] of Object.entries(s.meta.scalars)) {
      const p = ps[Number(i)]!;
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = { tensors: {}, scalars: {} }));
      st.scalars = { ...sc };
    }
  }
}

/**
 * Whether a saved hyper-parameter can replace the current one: the same JSON kind (a finite number, a boolean, a
 * string, null, or a list of finite numbers of the same length); an option this group does not hold takes any
 * JSON primitive or list of numbers.
 */
function sameKind(saved: unknown, here: unknown): boolean {
  const kind = (v: unknown): string | null => {
    if (v === null) return 'null';
    if (typeof v === 'number') return Number.isFinite(v) ? 'number' : null;
    if (typeof v === 'boolean' || typeof v === 'string') return typeof v;
    if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return `numbers[${v.length}]`;
    return null;
  };
  const k = kind(saved);
  if (k === null) return false;
  return here === undefined || k === kind(here);
}

/** The entries of `o` that are not undefined: an option given as undefined takes its default. */
export function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Replaces `state.tensors[name]` with `t`, disposing the old tensor. */
export function setState(state: { tensors: Record<string, Tensor> }, name: string, t: Tensor): void {
  const old = state.tensors[name];
  state.tensors[name] = keep(t);
  if (old && old !== t) old.dispose();
}
