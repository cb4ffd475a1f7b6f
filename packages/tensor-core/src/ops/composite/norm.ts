// Normalisations: layerNorm, rmsNorm, batchNorm (with running statistics), and dropout / embedding.

import { noGrad } from '../../autograd.js';
import { DTypeError, fmtShape, ShapeError, ValueError } from '../../errors.js';
import { tidy } from '../../runtime.js';
import type { Tensor } from '../../tensor.js';
import * as P from '../prims.js';
import { fromHost } from '../prims.js';
import { bernoulliMask } from '../random.js';

function lastDims(op: string, x: Tensor, normalizedShape: readonly number[]): number[] {
  const n = normalizedShape.length;
  if (n > x.ndim || normalizedShape.some((s, i) => x.shape[x.ndim - n + i] !== s))
    throw new ShapeError(`${op}: normalizedShape ${fmtShape(normalizedShape)} does not end input ${fmtShape(x.shape)}`);
  return Array.from({ length: n }, (_, i) => x.ndim - n + i);
}

/** The fused primitive takes float32 throughout, weight/bias shaped like the normalised dims. */
function canFuse(x: Tensor, normalizedShape: readonly number[], ...wb: (Tensor | null | undefined)[]): boolean {
  return (
    x.dtype === 'float32' &&
    wb.every(
      (t) =>
        !t ||
        (t.dtype === 'float32' &&
          t.backend === x.backend &&
          t.ndim === normalizedShape.length &&
          t.shape.every((s, i) => s === normalizedShape[i])),
    )
  );
}

function affine(y: Tensor, weight?: Tensor | null, bias?: Tensor | null): Tensor {
  let out = y;
  if (weight) {
    const o = out.mul(weight);
    if (out !== y) out.dispose();
    out = o;
  }
  if (bias) {
    const o = out.add(bias);
    if (out !== y) out.dispose();
    out = o;
  }
  if (out !== y) y.dispose();
  return out;
}

export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  opts: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): Tensor {
  return tidy(() => {
    const dims = lastDims('layerNorm', x, normalizedShape);
    const { eps = 1e-5 } = opts;
    if (canFuse(x, normalizedShape, opts.weight, opts.bias)) {
      const n = normalizedShape.reduce((a, b) => a * b, 1);
      return P.layerNorm(x, n, opts.weight ?? null, opts.bias ?? null, eps, false);
    }
    const mu = x.mean(dims, true);
    const c = x.sub(mu);
    const v = c.mul(c).mean(dims, true);
    const r = v.add(eps).rsqrt();
    const y = c.mul(r);
    for (const t of [mu, c, v, r]) t.dispose();
    return affine(y, opts.weight, opts.bias);
  });
}

/** RMSNorm; eps defaults to float32's machine epsilon, as torch.nn.functional.rms_norm does. */
export function rmsNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  opts: { weight?: Tensor | null; eps?: number } = {},
): Tensor {
  return tidy(() => {
    const dims = lastDims('rmsNorm', x, normalizedShape);
    const { eps = 1.1920928955078125e-7 } = opts;
    if (canFuse(x, normalizedShape, opts.weight)) {
      const n = normalizedShape.reduce((a, b) => a * b, 1);
      return P.layerNorm(x, n, opts.weight ?? null, null, eps, true);
    }
    const ms = x.mul(x).mean(dims, true);
    const r = ms.add(eps).rsqrt();
    const y = x.mul(r);
    ms.dispose();
    r.dispose();
    return affine(y, opts.weight);
  });
}

/**
 * Batch normalisation over [N, C, ...]. In training it normalises with the batch's biased variance and
 * updates the running statistics in place with the unbiased one (PyTorch's rule); in eval it uses them.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: { weight?: Tensor | null; bias?: Tensor | null; training?: boolean; momentum?: number; eps?: number } = {},
): Tensor {
  return tidy(() => {
    const { training = false, momentum = 0.1, eps = 1e-5 } = opts;
    if (x.ndim < 2) throw new ShapeError(`batchNorm expects [N, C, ...]; got ${fmtShape(x.shape)}`);
    const C = x.shape[1]!;
    const bshape = x.shape.map((s, i) => (i === 1 ? s : 1));
    const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const n = dims.reduce((a, d) => a * x.shape[d]!, 1);
    let mu: Tensor;
    let v: Tensor;
    if (training || !runningMean || !runningVar) {
      if (training && n <= 1)
        throw new ValueError(`batchNorm: need more than 1 value per channel in training; got ${fmtShape(x.shape)}`);
      mu = x.mean(dims, true);
      const c = x.sub(mu);
      v = c.mul(c).mean(dims, true);
      c.dispose();
      if (training && runningMean && runningVar)
        noGrad(() => {
          const m1 = mu.reshape([C]);
          const v1 = v.reshape([C]).mul(n / (n - 1));
          runningMean.mul_(1 - momentum).add_(m1, momentum);
          runningVar.mul_(1 - momentum).add_(v1, momentum);
          m1.dispose();
          v1.dispose();
        });
    } else {
      mu = runningMean.reshape(bshape);
      v = runningVar.reshape(bshape);
    }
    const r = v.add(eps).rsqrt();
    const y = x.sub(mu).mul(r);
    const w = opts.weight?.reshape(bshape);
    const b = opts.bias?.reshape(bshape);
    const out = affine(y, w, b);
    for (const t of [mu, v, r, w, b]) t?.dispose();
    return out;
  });
}

/** Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p) while training. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  return tidy(() => {
    if (!(p >= 0 && p <= 1)) throw new ValueError(`dropout: p must be in [0, 1]; got ${p}`);
    if (!training || p === 0) return x.detachedView();
    if (p === 1) return x.mul(0);
    const m = bernoulliMask(x, 1 - p);
    const out = x.mul(m).div(1 - p);
    m.dispose();
    return out;
  });
}

/** Rows of `weight` [V, D] at int32 `ids` [...]; `paddingIdx`'s row gets no gradient. */
export function embedding(ids: Tensor, weight: Tensor, opts: { paddingIdx?: number } = {}): Tensor {
  return tidy(() => {
    if (ids.dtype !== 'int32') throw new DTypeError(`embedding: ids must be int32; got ${ids.dtype}`);
    if (weight.ndim !== 2) throw new ShapeError(`embedding: weight must be [V, D]; got ${fmtShape(weight.shape)}`);
    let w = weight;
    if (opts.paddingIdx !== undefined && weight.requiresGrad) {
      const V = weight.shape[0]!;
      const pi = opts.paddingIdx < 0 ? opts.paddingIdx + V : opts.paddingIdx;
      const mask = new Uint8Array(V);
      mask[pi] = 1;
      const padMask = fromHost(weight, mask, [V, 1], 'bool');
      const frozen = weight.detach();
      w = frozen.where(padMask, weight);
      padMask.dispose();
      frozen.dispose();
    }
    const flat = ids.reshape([-1]);
    const rows = w.indexSelect(0, flat);
    const out = rows.reshape([...ids.shape, weight.shape[1]!]);
    for (const t of [flat, rows]) if (t !== out) t.dispose();
    if (w !== weight) w.dispose();
    return out;
  });
}

/** GroupNorm over [N, C, ...]: statistics per (sample, group of C/G channels), affine per channel. */
export function groupNorm(
  x: Tensor,
  numGroups: number,
  opts: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): Tensor {
  return tidy(() => {
    if (x.ndim < 2 || x.shape[1]! % numGroups !== 0)
      throw new ShapeError(`groupNorm: input ${fmtShape(x.shape)} channels do not split into ${numGroups} groups`);
    const { eps = 1e-5 } = opts;
    const g = x.reshape([x.shape[0]!, numGroups, -1]);
    const n = layerNorm(g, [g.shape[2]!], { eps });
    const y = n.reshape(x.shape);
    g.dispose();
    n.dispose();
    const bshape = x.shape.map((s, i) => (i === 1 ? s : 1));
    const w = opts.weight?.reshape(bshape);
    const b = opts.bias?.reshape(bshape);
    const out = affine(y, w, b);
    w?.dispose();
    b?.dispose();
    return out;
  });
}
