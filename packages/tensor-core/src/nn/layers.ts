// Layers as modules: containers, Linear, convolutions, Embedding, norms, Dropout and activations.
// Parameter names and shapes follow torch.nn so state dicts cross over.
import { checkInt, checkInterval, checkNonNegative } from '../checks.js';
import { ValueError } from '../errors.js';
import { batchNorm, dropout, embedding, groupNorm, layerNorm, rmsNorm } from '../ops/composite/norm.js';
import { full } from '../ops/creation.js';
import * as E from '../ops/elementwise.js';
import { type ConvOptions, conv1d, conv2d, convTranspose1d } from '../ops/linalg.js';
import * as P from '../ops/prims.js';
import { isContiguous } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { defaultWeight, normal } from './init.js';
import { Module } from './module.js';

/** A module with a single-input forward. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
}

export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => {
      this.registerModule(String(i), l);
    });
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const l of this.layers) {
      const next = l.forward(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    for (const m of items) this.append(m);
  }
  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new ValueError(`ModuleList: index ${i} out of range for length ${this.items.length}`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

export class Linear extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', defaultWeight([outFeatures, inFeatures], inFeatures));
    this.bias = this.registerParameter('bias', opts.bias === false ? null : defaultWeight([outFeatures], inFeatures));
  }
  forward(x: Tensor): Tensor {
    return this.forwardAct(x, false);
  }
  /**
   * relu(forward(x)) when `relu` (a transformer's first FFN layer): bias and relu go into the product's epilogue
   * where the backend has one (P.linear); otherwise matmul, add and relu as three ops, with the same values.
   */
  forwardAct(x: Tensor, relu: boolean): Tensor {
    // A mis-sized x goes the composed way, so it gets matmul's ShapeError rather than reshape's.
    if (this.bias && x.ndim >= 2 && x.shape[x.ndim - 1] === this.inFeatures && isContiguous(x.shape, x.strides)) {
      const x2 = x.ndim === 2 ? x : x.reshape([-1, this.inFeatures]);
      const y2 = P.linear(x2, this.weight, this.bias, relu);
      if (x2 !== x && !y2) x2.dispose();
      if (y2) {
        if (x2 === x) return y2;
        const y = y2.reshape([...x.shape.slice(0, -1), this.outFeatures]);
        x2.dispose();
        y2.dispose();
        return y;
      }
    }
    const wt = this.weight.transpose(0, 1);
    const y = x.matmul(wt);
    wt.dispose();
    if (!this.bias) return relu ? disposeAfter(y, y.relu()) : y;
    const out = y.add(this.bias);
    y.dispose();
    return relu ? disposeAfter(out, out.relu()) : out;
  }
}

function disposeAfter(used: Tensor, out: Tensor): Tensor {
  used.dispose();
  return out;
}

export class Conv1d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly opts: ConvOptions;
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    opts: Omit<ConvOptions, 'bias'> & { bias?: boolean } = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const fanIn = (inChannels / groups) * kernelSize;
    this.weight = this.registerParameter(
      'weight',
      defaultWeight([outChannels, inChannels / groups, kernelSize], fanIn),
    );
    this.bias = this.registerParameter('bias', opts.bias === false ? null : defaultWeight([outChannels], fanIn));
    this.opts = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
  }
  forward(x: Tensor): Tensor {
    return conv1d(x, this.weight, { ...this.opts, bias: this.bias });
  }
}

export class Conv2d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly opts: ConvOptions;
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | [number, number],
    opts: Omit<ConvOptions, 'bias'> & { bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const groups = opts.groups ?? 1;
    const fanIn = (inChannels / groups) * kh * kw;
    this.weight = this.registerParameter('weight', defaultWeight([outChannels, inChannels / groups, kh, kw], fanIn));
    this.bias = this.registerParameter('bias', opts.bias === false ? null : defaultWeight([outChannels], fanIn));
    this.opts = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, { ...this.opts, bias: this.bias });
  }
}

export class ConvTranspose1d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    readonly opts: {
      stride?: number;
      padding?: number;
      outputPadding?: number;
      dilation?: number;
      groups?: number;
      bias?: boolean;
    } = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    // PyTorch computes fan_in from weight dim 1 (out/groups) × k for transposed convs.
    const fanIn = (outChannels / groups) * kernelSize;
    this.weight = this.registerParameter(
      'weight',
      defaultWeight([inChannels, outChannels / groups, kernelSize], fanIn),
    );
    this.bias = this.registerParameter('bias', opts.bias === false ? null : defaultWeight([outChannels], fanIn));
  }
  forward(x: Tensor): Tensor {
    const { bias: _b, ...o } = this.opts;
    return convTranspose1d(x, this.weight, { ...o, bias: this.bias });
  }
}

export class Embedding extends Layer {
  readonly weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    readonly opts: { paddingIdx?: number } = {},
  ) {
    super();
    const w = normal([numEmbeddings, embeddingDim]);
    if (opts.paddingIdx !== undefined && !Number.isInteger(opts.paddingIdx))
      throw new ValueError(`Embedding: paddingIdx must be an integer; got ${opts.paddingIdx}`);
    if (opts.paddingIdx !== undefined) {
      const row = w.select(0, opts.paddingIdx);
      row.zero_();
      row.dispose();
    }
    this.weight = this.registerParameter('weight', w);
  }
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight, this.opts);
  }
}

export class LayerNorm extends Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly normalizedShape: number[];
  constructor(
    normalizedShape: number | number[],
    readonly opts: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    // a negative eps can make the variance term negative: NaN or ±∞
    if (opts.eps !== undefined) checkNonNegative('LayerNorm', 'eps', opts.eps);
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    const affine = opts.elementwiseAffine !== false;
    this.weight = this.registerParameter('weight', affine ? full(this.normalizedShape, 1) : null);
    this.bias = this.registerParameter('bias', affine && opts.bias !== false ? full(this.normalizedShape, 0) : null);
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, { weight: this.weight, bias: this.bias, eps: this.opts.eps });
  }
}

export class RMSNorm extends Layer {
  readonly weight: Tensor | null;
  readonly normalizedShape: number[];
  constructor(
    normalizedShape: number | number[],
    readonly opts: { eps?: number; elementwiseAffine?: boolean } = {},
  ) {
    super();
    if (opts.eps !== undefined) checkNonNegative('RMSNorm', 'eps', opts.eps);
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.weight = this.registerParameter(
      'weight',
      opts.elementwiseAffine === false ? null : full(this.normalizedShape, 1),
    );
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.normalizedShape, { weight: this.weight, eps: this.opts.eps });
  }
}

/** BatchNorm over [N, C] or [N, C, L] with running statistics (PyTorch's BatchNorm1d). */
export class BatchNorm1d extends Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  constructor(
    readonly numFeatures: number,
    readonly opts: { eps?: number; momentum?: number; affine?: boolean } = {},
  ) {
    super();
    if (opts.eps !== undefined) checkNonNegative('BatchNorm1d', 'eps', opts.eps);
    if (opts.momentum !== undefined) checkInterval('BatchNorm1d', 'momentum', opts.momentum, 0, 1);
    const affine = opts.affine !== false;
    this.weight = this.registerParameter('weight', affine ? full([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? full([numFeatures], 0) : null);
    this.runningMean = this.registerBuffer('running_mean', full([numFeatures], 0));
    this.runningVar = this.registerBuffer('running_var', full([numFeatures], 1));
    // PyTorch stores int64; we keep int32 and save it as I64 where asked.
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', full([], 0, { dtype: 'int32' }));
  }
  forward(x: Tensor): Tensor {
    if (this.training) this.numBatchesTracked.add_(1);
    return batchNorm(x, this.runningMean, this.runningVar, {
      weight: this.weight,
      bias: this.bias,
      training: this.training,
      momentum: this.opts.momentum,
      eps: this.opts.eps,
    });
  }
}

export class GroupNorm extends Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly opts: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (opts.eps !== undefined) checkNonNegative('GroupNorm', 'eps', opts.eps);
    checkInt('GroupNorm', 'numGroups', numGroups, 1);
    if (numChannels % numGroups !== 0)
      throw new ValueError(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    const affine = opts.affine !== false;
    this.weight = this.registerParameter('weight', affine ? full([numChannels], 1) : null);
    this.bias = this.registerParameter('bias', affine ? full([numChannels], 0) : null);
  }
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.opts.eps });
  }
}

export class Dropout extends Layer {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError(`Dropout: p must be in [0, 1]; got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

class Activation extends Layer {
  constructor(private readonly f: (x: Tensor) => Tensor) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.f(x);
  }
}

export class ReLU extends Activation {
  constructor() {
    super(E.relu);
  }
}
export class GELU extends Activation {
  constructor(approximate: 'none' | 'tanh' = 'none') {
    super((x) => E.gelu(x, { approximate }));
  }
}
export class SiLU extends Activation {
  constructor() {
    super(E.silu);
  }
}
export class Tanh extends Activation {
  constructor() {
    super(E.tanh);
  }
}
export class Sigmoid extends Activation {
  constructor() {
    super(E.sigmoid);
  }
}
export class Softplus extends Activation {
  constructor(opts: { beta?: number; threshold?: number } = {}) {
    super((x) => E.softplus(x, opts));
  }
}
export class Identity extends Activation {
  constructor() {
    super((x) => x.detachedView());
  }
}
