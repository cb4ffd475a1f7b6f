// SGD (momentum, Nesterov, weight decay), Adam and AdamW, with PyTorch's update rules.
import { checkNonNegative } from '../checks.js';
import { ValueError } from '../errors.js';
import { adamStep, zerosLike } from '../ops/prims.js';
import { isContiguous, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { defined, Optimizer, type ParamGroup, setState } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Tensor[] | (Partial<SGDOptions> & { params: Tensor[] })[], opts: SGDOptions) {
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...defined(opts) } as SGDOptions);
    for (const g of this.paramGroups) this.checkGroup(g);
  }
  protected override checkGroup(g: SGDOptions): void {
    nonNegative('SGD', g, ['lr', 'momentum', 'dampening', 'weightDecay']);
    if (g.nesterov && (!(g.momentum! > 0) || g.dampening !== 0))
      throw new ValueError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
  }
  protected update(
    p: Tensor,
    grad: Tensor,
    g: ParamGroup<SGDOptions>,
    state: { tensors: Record<string, Tensor> },
  ): void {
    let d = g.weightDecay ? grad.add(p.mul(g.weightDecay)) : grad;
    if (g.momentum) {
      const prev = state.tensors.momentum_buffer;
      const buf = prev ? prev.mul(g.momentum).add(d.mul(1 - g.dampening!)) : d.clone();
      setState(state, 'momentum_buffer', buf);
      d = g.nesterov ? d.add(buf.mul(g.momentum)) : buf;
    }
    p.sub_(d.mul(g.lr));
  }
}

/** Each named option, where given, a finite number ≥ 0 (PyTorch refuses negative lr, momentum, eps, decay). */
function nonNegative<O>(who: string, g: O, keys: (keyof O & string)[]): void {
  for (const k of keys) if (g[k] !== undefined) checkNonNegative(who, k, g[k]);
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

class AdamBase extends Optimizer<AdamOptions> {
  constructor(
    params: Tensor[] | (Partial<AdamOptions> & { params: Tensor[] })[],
    opts: AdamOptions,
    private readonly decoupled: boolean,
  ) {
    super(params, {
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: decoupled ? 0.01 : 0,
      amsgrad: false,
      ...defined(opts),
    } as AdamOptions);
    for (const g of this.paramGroups) this.checkGroup(g);
  }
  protected override checkGroup(g: AdamOptions): void {
    const b = g.betas as unknown;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1))
      throw new ValueError(`Adam: betas must be two numbers in [0, 1); got ${JSON.stringify(b)}`);
    nonNegative('Adam', g, ['lr', 'eps', 'weightDecay']);
  }
  protected update(
    p: Tensor,
    grad: Tensor,
    g: ParamGroup<AdamOptions>,
    state: { tensors: Record<string, Tensor>; scalars: Record<string, number> },
  ): void {
    const [b1, b2] = g.betas!;
    const t = (state.scalars.step ?? 0) + 1;
    state.scalars.step = t;
    if (!g.amsgrad && fusable(p, grad, state.tensors.exp_avg, state.tensors.exp_avg_sq)) {
      // One in-place pass over p, grad and both moments (the composite below takes ~10).
      if (!state.tensors.exp_avg) setState(state, 'exp_avg', zerosLike(p));
      if (!state.tensors.exp_avg_sq) setState(state, 'exp_avg_sq', zerosLike(p));
      const m = state.tensors.exp_avg!;
      const v = state.tensors.exp_avg_sq!;
      adamStep(p, grad, m, v, {
        lr: g.lr,
        beta1: b1,
        beta2: b2,
        eps: g.eps!,
        weightDecay: g.weightDecay!,
        decoupled: this.decoupled,
        stepSize: g.lr / (1 - b1 ** t),
        bc2Sqrt: Math.sqrt(1 - b2 ** t),
      });
      return;
    }
    let d = grad;
    if (g.weightDecay) {
      if (this.decoupled) p.mul_(1 - g.lr * g.weightDecay);
      else d = grad.add(p.mul(g.weightDecay));
    }
    const m0 = state.tensors.exp_avg;
    const v0 = state.tensors.exp_avg_sq;
    const m = m0 ? m0.mul(b1).add(d.mul(1 - b1)) : d.mul(1 - b1);
    const v = v0 ? v0.mul(b2).add(d.mul(d).mul(1 - b2)) : d.mul(d).mul(1 - b2);
    setState(state, 'exp_avg', m);
    setState(state, 'exp_avg_sq', v);
    let vHat = v;
    if (g.amsgrad) {
      const vm0 = state.tensors.max_exp_avg_sq;
      const vm = vm0 ? vm0.maximum(v) : v.clone();
      setState(state, 'max_exp_avg_sq', vm);
      vHat = vm;
    }
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    // PyTorch: p -= lr/bc1 · m / (√v / √bc2 + eps)
    const denom = vHat.sqrt().div(Math.sqrt(bc2)).add(g.eps!);
    p.sub_(m.div(denom).mul(g.lr / bc1));
  }
}

/** The fused step wants contiguous float32 tensors of one shape (moments absent on the first step). */
function fusable(p: Tensor, grad: Tensor, m?: Tensor, v?: Tensor): boolean {
  return [p, grad, m, v].every(
    (t) => !t || (t.dtype === 'float32' && isContiguous(t.shape, t.strides) && sameShape(t.shape, p.shape)),
  );
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends AdamBase {
  constructor(params: Tensor[] | (Partial<AdamOptions> & { params: Tensor[] })[], opts: AdamOptions) {
    super(params, opts, false);
  }
}

/** Adam with decoupled weight decay, default 0.01 (torch.optim.AdamW; Loshchilov & Hutter, 2019). */
export class AdamW extends AdamBase {
  constructor(params: Tensor[] | (Partial<AdamOptions> & { params: Tensor[] })[], opts: AdamOptions) {
    super(params, opts, true);
  }
}
