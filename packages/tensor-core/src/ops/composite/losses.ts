// Losses with PyTorch's conventions: class dim 1, reduction 'mean' | 'sum' | 'none', ignoreIndex,
// label smoothing and class weights for cross-entropy.

import { DTypeError, fmtShape, ShapeError, ValueError } from '../../errors.js';
import { tidy } from '../../runtime.js';
import { sameShape } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import * as P from '../prims.js';
import { logSoftmax } from './softmax.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return loss;
  const out = reduction === 'sum' ? loss.sum() : loss.mean();
  loss.dispose();
  return out;
}

function checkReduction(op: string, r: string): void {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new ValueError(`${op}: unknown reduction '${r}'`);
}

/** Moves the class dim (1) last and flattens: [N, C, d...] → [N·d..., C]. */
function classLast(x: Tensor): Tensor {
  if (x.ndim === 2) return x.detachedView();
  const perm = [0, ...x.shape.slice(2).map((_, i) => i + 2), 1];
  const p = x.permute(perm);
  const out = p.reshape([-1, x.shape[1]!]);
  p.dispose();
  return out;
}

export interface CrossEntropyOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits [N, C, ...] (or [C]) against int32 class targets [N, ...] or class
 * probabilities shaped like the logits.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return tidy(() => {
    const { ignoreIndex = -100, reduction = 'mean', labelSmoothing = 0, weight = null } = opts;
    checkReduction('crossEntropy', reduction);
    if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
      throw new ValueError(`crossEntropy: labelSmoothing must be in [0, 1]; got ${labelSmoothing}`);
    if (input.ndim === 1) {
      const i2 = input.unsqueeze(0);
      const t2 = target.unsqueeze(0);
      const out = crossEntropy(i2, t2, opts);
      i2.dispose();
      t2.dispose();
      if (reduction !== 'none') return out;
      const o = out.squeeze(0);
      out.dispose();
      return o;
    }
    const C = input.shape[1]!;
    if (weight && (weight.ndim !== 1 || weight.shape[0] !== C))
      throw new ShapeError(`crossEntropy: weight must be [${C}]; got ${fmtShape(weight.shape)}`);
    if (
      input.ndim === 2 &&
      input.dtype === 'float32' &&
      target.dtype === 'int32' &&
      target.ndim === 1 &&
      target.shape[0] === input.shape[0] &&
      !weight &&
      labelSmoothing === 0
    ) {
      // The common case (logits [N, C], class targets, no weights or smoothing) as one fused primitive.
      const per = P.crossEntropy(input, target, ignoreIndex);
      if (reduction !== 'mean') return reduce(per, reduction);
      const denom = target.ne(ignoreIndex).float().sum();
      return per.sum().div(denom);
    }
    const logp = logSoftmax(input, 1);
    if (isFloatTarget(target)) {
      if (!sameShape(target.shape, input.shape))
        throw new ShapeError(
          `crossEntropy: probability targets must have the input's shape ${fmtShape(input.shape)}; got ${fmtShape(target.shape)}`,
        );
      const t = labelSmoothing > 0 ? target.mul(1 - labelSmoothing).add(labelSmoothing / C) : target;
      const wl = weight ? logp.mul(weight.reshape([C, ...new Array(input.ndim - 2).fill(1)])) : logp;
      const per = t.mul(wl).sum(1).neg();
      for (const x of new Set([logp, wl, t])) if (x !== target) x.dispose();
      return reduce(per, reduction);
    }
    if (target.dtype !== 'int32')
      throw new DTypeError(`crossEntropy: targets must be int32 classes or float32 probabilities; got ${target.dtype}`);
    if (
      target.ndim !== input.ndim - 1 ||
      target.shape[0] !== input.shape[0] ||
      target.shape.slice(1).some((s, i) => s !== input.shape[i + 2])
    )
      throw new ShapeError(
        `crossEntropy: targets for input ${fmtShape(input.shape)} must be ${fmtShape([input.shape[0]!, ...input.shape.slice(2)])}; got ${fmtShape(target.shape)}`,
      );
    const lp = classLast(logp);
    const tf = target.reshape([-1]);
    const valid = tf.ne(ignoreIndex);
    const safe = tf.where(valid, 0);
    const nll = lp.gather(1, safe.unsqueeze(1)).squeeze(1).neg();
    const w = weight ? weight.indexSelect(0, safe) : null;
    const vf = valid.float();
    const wv = w ? w.mul(vf) : vf; // per-element weight, 0 where ignored
    let per = nll.mul(wv);
    if (labelSmoothing > 0) {
      // PyTorch: smooth term = −Σ_c w_c log p_c / C, weighted by validity only.
      const wl = weight ? lp.mul(weight) : lp;
      const smooth = wl.sum(1).neg().div(C).mul(vf);
      const mixed = per.mul(1 - labelSmoothing).add(smooth.mul(labelSmoothing));
      for (const x of new Set([wl, smooth, per])) if (x !== lp) x.dispose();
      per = mixed;
    }
    let out: Tensor;
    if (reduction === 'none') out = per.reshape(target.shape);
    else if (reduction === 'sum') out = per.sum();
    else {
      const denom = wv.sum();
      out = per.sum().div(denom);
      denom.dispose();
    }
    for (const x of [logp, lp, tf, valid, safe, nll, w, vf, wv, per]) if (x && x !== out && x !== wv) x.dispose();
    if (wv !== out) wv.dispose();
    return out;
  });
}

function isFloatTarget(t: Tensor): boolean {
  return t.dtype === 'float32';
}

/** Negative log-likelihood of log-probabilities [N, C, ...] at int32 targets. */
export function nllLoss(
  logp: Tensor,
  target: Tensor,
  opts: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  return tidy(() => {
    const { ignoreIndex = -100, reduction = 'mean', weight = null } = opts;
    checkReduction('nllLoss', reduction);
    if (target.dtype !== 'int32') throw new DTypeError(`nllLoss: targets must be int32; got ${target.dtype}`);
    if (logp.ndim === 1) {
      // Unbatched: input [C], target [] (as torch.nn.functional.nll_loss accepts).
      const l2 = logp.unsqueeze(0);
      const t2 = target.reshape([1]);
      const out = nllLoss(l2, t2, opts);
      l2.dispose();
      t2.dispose();
      if (reduction !== 'none') return out;
      const o = out.reshape([]);
      out.dispose();
      return o;
    }
    if (
      logp.ndim < 2 ||
      target.ndim !== logp.ndim - 1 ||
      target.shape[0] !== logp.shape[0] ||
      target.shape.slice(1).some((s, i) => s !== logp.shape[i + 2])
    )
      throw new ShapeError(
        `nllLoss: expected input [N, C, ...] and target [N, ...] of the same N and trailing dims; got ${fmtShape(logp.shape)} and ${fmtShape(target.shape)}`,
      );
    if (target.dtype !== 'int32') throw new DTypeError(`nllLoss: targets must be int32 classes; got ${target.dtype}`);
    const C = logp.shape[1]!;
    if (weight && (weight.ndim !== 1 || weight.shape[0] !== C))
      throw new ShapeError(`nllLoss: weight must be [${C}]; got ${fmtShape(weight.shape)}`);
    const lp = classLast(logp);
    const tf = target.reshape([-1]);
    const valid = tf.ne(ignoreIndex);
    const safe = tf.where(valid, 0);
    const nll = lp.gather(1, safe.unsqueeze(1)).squeeze(1).neg();
    const vf = valid.float();
    const wv = weight ? weight.indexSelect(0, safe).mul(vf) : vf;
    const per = nll.mul(wv);
    let out: Tensor;
    if (reduction === 'none') out = per.reshape(target.shape);
    else if (reduction === 'sum') out = per.sum();
    else out = per.sum().div(wv.sum());
    for (const x of [lp, tf, valid, safe, nll, vf, wv, per]) if (x !== out) x.dispose();
    return out;
  });
}

function pair(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape))
    throw new ShapeError(`${op}: input ${fmtShape(a.shape)} and target ${fmtShape(b.shape)} must have the same shape`);
}

export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return tidy(() => {
    const { reduction = 'mean' } = opts;
    checkReduction('mseLoss', reduction);
    pair('mseLoss', input, target);
    const d = input.sub(target);
    const sq = d.mul(d);
    d.dispose();
    return reduce(sq, reduction);
  });
}

export function l1Loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return tidy(() => {
    const { reduction = 'mean' } = opts;
    checkReduction('l1Loss', reduction);
    pair('l1Loss', input, target);
    const d = input.sub(target);
    const a = d.abs();
    d.dispose();
    return reduce(a, reduction);
  });
}

/**
 * Numerically stable BCE on logits: (1 − y)·x + (1 + (pw − 1)·y)·(log(1 + e^{−|x|}) + max(−x, 0)).
 */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  opts: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  return tidy(() => {
    const { reduction = 'mean', weight = null, posWeight = null } = opts;
    checkReduction('binaryCrossEntropyWithLogits', reduction);
    pair('binaryCrossEntropyWithLogits', input, target);
    const sp = input.abs().neg().exp().log1p().add(input.neg().relu());
    const coef = posWeight ? posWeight.sub(1).mul(target).add(1) : null;
    let loss = target
      .neg()
      .add(1)
      .mul(input)
      .add(coef ? coef.mul(sp) : sp);
    if (weight) loss = loss.mul(weight);
    return reduce(loss, reduction);
  });
}

/**
 * KL divergence with PyTorch's argument order: `input` is log-probabilities, `target` probabilities
 * (or log-probabilities with logTarget). reduction 'batchmean' divides the sum by the batch size.
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {},
): Tensor {
  return tidy(() => {
    const { reduction = 'mean', logTarget = false } = opts;
    if (reduction !== 'batchmean') checkReduction('klDiv', reduction);
    pair('klDiv', input, target);
    let pointwise: Tensor;
    if (logTarget) pointwise = target.exp().mul(target.sub(input));
    else {
      // 0·log 0 = 0
      const pos = target.gt(0);
      const lt = target.where(pos, 1).log();
      pointwise = target.mul(lt.sub(input)).where(pos, 0);
      pos.dispose();
      lt.dispose();
    }
    if (reduction === 'batchmean') {
      const s = pointwise.sum();
      const out = s.div(input.ndim > 0 ? input.shape[0]! : 1);
      s.dispose();
      pointwise.dispose();
      return out;
    }
    return reduce(pointwise, reduction);
  });
}
