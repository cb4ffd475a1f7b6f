// Reductions over any dims with keepdim, and their composites (mean, var, std, logsumexp).

import { DTypeError } from '../errors.js';
import { tidy } from '../runtime.js';
import { normDim, normDims } from '../shape.js';
import type { Dims, Tensor } from '../tensor.js';
import * as P from './prims.js';

function noHalf(op: string, x: Tensor): void {
  if (x.dtype === 'float16' || x.dtype === 'bfloat16')
    throw new DTypeError(`${op}: ${x.dtype} is a storage dtype; cast to float32 first (x.float())`);
}

export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  noHalf('sum', x);
  return P.reduce('sum', x, normDims(dim, x.ndim, 'sum'), keepdim);
}

export function prod(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  noHalf('prod', x);
  return P.reduce('prod', x, normDims(dim, x.ndim, 'prod'), keepdim);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return tidy(() => {
    noHalf('mean', x);
    const dims = normDims(dim, x.ndim, 'mean');
    const n = dims.reduce((a, d) => a * x.shape[d]!, 1);
    const f = x.dtype === 'float32' ? x : x.float();
    const s = P.reduce('sum', f, dims, keepdim);
    const out = s.div(n);
    s.dispose();
    if (f !== x) f.dispose();
    return out;
  });
}

export function amax(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  noHalf('amax', x);
  return P.reduce('max', x, normDims(dim, x.ndim, 'amax'), keepdim);
}

export function amin(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  noHalf('amin', x);
  return P.reduce('min', x, normDims(dim, x.ndim, 'amin'), keepdim);
}

export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  noHalf('argmax', x);
  if (dim === undefined) {
    const f = x.reshape([-1]);
    const out = P.argReduce('argmax', f, 0, false);
    f.dispose();
    return out;
  }
  return P.argReduce('argmax', x, normDim(dim, x.ndim, 'argmax'), keepdim);
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  noHalf('argmin', x);
  if (dim === undefined) {
    const f = x.reshape([-1]);
    const out = P.argReduce('argmin', f, 0, false);
    f.dispose();
    return out;
  }
  return P.argReduce('argmin', x, normDim(dim, x.ndim, 'argmin'), keepdim);
}

/** max along one dim: values (gradient flows to the chosen index, as in PyTorch) and int32 indices. */
export function maxDim(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return extremeDim('argmax', x, dim, keepdim);
}

export function minDim(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return extremeDim('argmin', x, dim, keepdim);
}

function extremeDim(op: 'argmax' | 'argmin', x: Tensor, dim: number, keepdim: boolean) {
  noHalf(op, x);
  const d = normDim(dim, x.ndim, op === 'argmax' ? 'max' : 'min');
  const ik = P.argReduce(op, x, d, true);
  const vk = P.gather(x, d, ik);
  if (keepdim) return { values: vk, indices: ik };
  const values = vk.squeeze(d);
  const indices = ik.squeeze(d);
  vk.dispose();
  ik.dispose();
  return { values, indices };
}

/** log Σ exp(x), shifted by the (detached) max for stability. */
export function logsumexp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  return tidy(() => {
    const dims = normDims(dim, x.ndim, 'logsumexp');
    const m = P.withoutGrad(() => P.reduce('max', x, dims, true));
    // All -inf rows would give NaN through (x - m); shift by 0 there instead, as PyTorch does.
    const safe = P.withoutGrad(() => m.where(m.abs().lt(Number.POSITIVE_INFINITY), 0));
    const z = x.sub(safe);
    const e = z.exp();
    const s = P.reduce('sum', e, dims, true);
    const l = s.log();
    const out0 = l.add(safe);
    const out = keepdim ? out0 : out0.squeeze(dims);
    for (const t of [m, safe, z, e, s, l]) t.dispose();
    if (out !== out0) out0.dispose();
    return out;
  });
}

/** Variance with Bessel's correction by default (correction = 1), like torch.var. */
export function variance(x: Tensor, dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  return tidy(() => {
    const { correction = 1, keepdim = false } = opts;
    const dims = normDims(dim, x.ndim, 'var');
    const n = dims.reduce((a, d) => a * x.shape[d]!, 1);
    const mu = mean(x, dims, true);
    const c = x.sub(mu);
    const sq = c.mul(c);
    const s = P.reduce('sum', sq, dims, keepdim);
    const out = s.div(Math.max(0, n - correction));
    for (const t of [mu, c, sq, s]) t.dispose();
    return out;
  });
}

export function std(x: Tensor, dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  return tidy(() => {
    const v = variance(x, dim, opts);
    const out = v.sqrt();
    v.dispose();
    return out;
  });
}

export function cumsum(x: Tensor, dim: number): Tensor {
  noHalf('cumsum', x);
  return P.cumsum(x, normDim(dim, x.ndim, 'cumsum'));
}
