// Optimizer base: parameter groups with their own hyper-parameters (e.g. a codebook's learning-rate
// multiplier), per-parameter state, and a state dict that checkpoints save and restore exactly.
import { noGrad } from '../autograd.js';
import { ValueError } from '../errors.js';
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

  /** One update of every parameter that has a gradient. */
  step(): void {
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

  loadStateDict(s: OptimizerState): void {
    const ps = this.order();
    if (s.meta.groups.length !== this.paramGroups.length)
      throw new ValueError(
        `optimizer.loadStateDict: ${s.meta.groups.length} groups saved, ${this.paramGroups.length} here`,
      );
    s.meta.groups.forEach((g, i) => {
      if (g.numParams !== this.paramGroups[i]!.params.length)
        throw new ValueError(
          `optimizer.loadStateDict: group ${i} had ${g.numParams} parameters, has ${this.paramGroups[i]!.params.length}`,
        );
      const { numParams: _n, ...h } = g;
      Object.assign(this.paramGroups[i]!, h);
    });
    for (const st of this.state.values()) for (const t of Object.values(st.tensors)) t.dispose();
    this.state.clear();
    for (const [key, t] of s.tensors) {
      const dot = key.indexOf('.');
      const p = ps[Number(key.slice(0, dot))];
      if (!p) throw new ValueError(`optimizer.loadStateDict: state for unknown parameter index in '${key}'`);
      if (t.shape.join() !== p.shape.join())
        throw new ValueError(`optimizer.loadStateDict: '${key}' has shape [${t.shape}], parameter has [${p.shape}]`);
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = { tensors: {}, scalars: {} }));
      st.tensors[key.slice(dot + 1)] = keep(t.clone());
    }
    for (const [i, sc] of Object.entries(s.meta.scalars)) {
      const p = ps[Number(i)];
      if (!p) continue;
      let st = this.state.get(p);
      if (!st) this.state.set(p, (st = { tensors: {}, scalars: {} }));
      st.scalars = { ...sc };
    }
  }
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
