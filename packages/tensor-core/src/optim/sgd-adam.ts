// SGD (momentum, Nesterov, weight decay), Adam and AdamW, with PyTorch's update rules.
import { ValueError } from '../errors.js';
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
    for (const g of this.paramGroups)
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
    for (const g of this.paramGroups) {
      const [b1, b2] = g.betas!;
      if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
        throw new ValueError(`Adam: betas must be in [0, 1); got [${b1}, ${b2}]`);
      if (!(g.lr >= 0)) throw new ValueError(`Adam: lr must be ≥ 0; got ${g.lr}`);
    }
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
