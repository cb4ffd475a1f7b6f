// Scaled dot-product attention: softmax(q kᵀ · scale + mask) v, with causal and additive/boolean masks
// and grouped-query attention (k/v with fewer heads are repeated across query-head groups).

import { fmtShape, ShapeError, ValueError } from '../../errors.js';
import { tidy } from '../../runtime.js';
import type { Tensor } from '../../tensor.js';
import { cat, tril } from '../movement.js';
import * as P from '../prims.js';
import { dropout } from './norm.js';
import { softmax } from './softmax.js';

export interface SdpaOptions {
  /** bool (true = attend) or additive float mask, broadcastable to [..., Lq, Lk]. */
  attnMask?: Tensor | null;
  isCausal?: boolean;
  /**
   * Where the causal triangle sits when Lq ≠ Lk (PyTorch's `CausalVariant`): 'upper-left' (the default, PyTorch's
   * `is_causal`) lets query i see keys j ≤ i; 'lower-right' lets it see keys j ≤ i + Lk − Lq — the last Lq queries
   * over a cache of Lk keys (a prefill chunk after earlier tokens), PyTorch's `causal_lower_right`. Needs isCausal.
   */
  causalVariant?: 'upper-left' | 'lower-right';
  scale?: number;
  dropoutP?: number;
  training?: boolean;
}

/** q [..., Hq, Lq, d], k/v [..., Hkv, Lk, d] with Hq a multiple of Hkv. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Tensor {
  return tidy(() => {
    if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim)
      throw new ShapeError(
        `scaledDotProductAttention expects q, k, v of one rank ≥ 2; got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`,
      );
    // Keys and values come in pairs: the same leading dims and length (v's last dim is free, as in PyTorch).
    if (k.shape.slice(0, -1).some((n, i) => n !== v.shape[i]))
      throw new ShapeError(
        `scaledDotProductAttention: keys ${fmtShape(k.shape)} and values ${fmtShape(v.shape)} must agree in every dim but the last`,
      );
    const d = q.shape[q.ndim - 1]!;
    const tmp: Tensor[] = [];
    let kk = k;
    let vv = v;
    if (q.ndim >= 3 && k.shape[k.ndim - 3] !== q.shape[q.ndim - 3]) {
      const hq = q.shape[q.ndim - 3]!;
      const hk = k.shape[k.ndim - 3]!;
      if (hq % hk !== 0)
        throw new ShapeError(`scaledDotProductAttention: ${hq} query heads are not a multiple of ${hk} kv heads`);
      kk = repeatHeads(k, hq / hk);
      vv = repeatHeads(v, hq / hk);
      tmp.push(kk, vv);
    }
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    if (opts.isCausal && opts.attnMask)
      throw new ValueError('scaledDotProductAttention: give either attnMask or isCausal, not both');
    const Lq = q.shape[q.ndim - 2]!;
    const Lk = k.shape[k.ndim - 2]!;
    const variant = opts.causalVariant ?? 'upper-left';
    if (variant !== 'upper-left' && variant !== 'lower-right')
      throw new ValueError(
        `scaledDotProductAttention: causalVariant is 'upper-left' or 'lower-right', got ${String(variant)}`,
      );
    if (opts.causalVariant !== undefined && !opts.isCausal)
      throw new ValueError('scaledDotProductAttention: causalVariant needs isCausal');
    // Lower-right with more queries than keys would leave the first Lq − Lk queries no key at all (NaN rows).
    if (variant === 'lower-right' && Lq > Lk)
      throw new ShapeError(
        `scaledDotProductAttention: a lower-right causal mask needs Lq ≤ Lk (the queries are the last of the keys' positions); got Lq ${Lq}, Lk ${Lk}`,
      );
    // Query i keeps keys j ≤ i + off: the primitives below take the diagonal's offset.
    const off = variant === 'lower-right' ? Lk - Lq : 0;
    if (opts.isCausal && !(opts.dropoutP && opts.training !== false)) {
      // One kernel per head for scores, softmax and product where the backend has it (the same values as the
      // ops below); the blocks above take long sequences on the CPU.
      const fused =
        causalBlocks(q, kk, vv, scale, off) ?? (Lq === Lk && off === 0 ? P.causalAttention(q, kk, vv, scale) : null);
      if (fused) {
        for (const t of tmp) if (t !== k && t !== v) t.dispose();
        return fused;
      }
    }
    const kt = kk.transpose(-2, -1);
    // Under the causal mask q kᵀ needs only its live entries, and p v (with the gradients) can skip p's zeros,
    // where the backend has such a product (P.causalMatmul: about half the multiply-adds).
    const s0 = (opts.isCausal ? P.causalMatmul(q, kt, 1, off) : null) ?? q.matmul(kt);
    tmp.push(kt, s0);
    // Scale, causal mask and softmax in one kernel where the backend has it (its VJP reuses the saved
    // probabilities); the composite below is the reference and the path for other masks.
    const fused = opts.attnMask ? null : P.scaledSoftmax(s0, scale, opts.isCausal ? off : null);
    if (fused) return finish(fused, vv, opts, tmp, k, v, opts.isCausal === true, off);
    let s = s0.mul(scale);
    if (opts.isCausal) {
      const ones = s.detach().mul(0).add(1).slice(-2, 0, 1).squeeze(-2); // [..., Lk] of ones
      const sq = ones.unsqueeze(-2).expand([...ones.shape.slice(0, -1), Lq, Lk]);
      const m = tril(sq, off).gt(0);
      const masked = s.where(m, Number.NEGATIVE_INFINITY);
      tmp.push(ones, sq, m, s);
      s = masked;
    } else if (opts.attnMask) {
      const m = opts.attnMask;
      const masked = m.dtype === 'bool' ? s.where(m, Number.NEGATIVE_INFINITY) : s.add(m);
      tmp.push(s);
      s = masked;
    }
    const p = softmax(s, -1);
    tmp.push(s);
    return finish(p, vv, opts, tmp, k, v);
  });
}

/**
 * Dropout on the probabilities (when training), then p·v; frees the temporaries. `causal`: p is 0 past each
 * row's kept keys (the fused causal softmax), so the product may skip those terms.
 */
function finish(
  p: Tensor,
  vv: Tensor,
  opts: SdpaOptions,
  tmp: Tensor[],
  k: Tensor,
  v: Tensor,
  causal = false,
  off = 0,
): Tensor {
  let pd = p;
  if (opts.dropoutP && opts.training !== false) {
    pd = dropout(p, opts.dropoutP, true);
    tmp.push(p);
  }
  const out = (causal ? P.causalMatmul(pd, vv, 2, off) : null) ?? pd.matmul(vv);
  tmp.push(pd);
  for (const t of tmp) if (t !== k && t !== v) t.dispose();
  return out;
}

/**
 * Causal attention on the CPU by blocks of query rows: block [i0, i1) sees keys [0, i1) only, so the products
 * (q kᵀ, p v and, through autograd, their gradients) skip the masked upper blocks (8 blocks: 36/64). The skipped probabilities are exact zeros, so the result is the unblocked one (the
 * gradients of k and v sum the blocks' parts in another order). The blocks cost extra memory-bound ops (slices'
 * zero-padded gradients and their sums, cat): on the CPU, forward + backward, they paid from 512 query rows
 * (CPU time ×0.85 at 512, ×0.78 at 1024) and lost below (×1.04 at 256, ×1.24 at 128), so shorter sequences and
 * other backends keep the single product. Null where it does not apply (or the backend has no fused scaled softmax).
 */
function causalBlocks(q: Tensor, k: Tensor, v: Tensor, scale: number, off: number): Tensor | null {
  const Lq = q.shape[q.ndim - 2]!;
  const Lk = k.shape[k.ndim - 2]!;
  if (q.backend !== 'cpu' || Lq < 512) return null;
  const nb = Math.min(8, Math.floor(Lq / 32));
  const outs: Tensor[] = [];
  for (let b = 0; b < nb; b++) {
    const i0 = Math.round((b * Lq) / nb);
    const i1 = Math.round(((b + 1) * Lq) / nb);
    const nk = Math.min(Lk, i1 + off);
    const qb = q.slice(-2, i0, i1);
    const kb = k.slice(-2, 0, nk);
    const kt = kb.transpose(-2, -1);
    const vb = v.slice(-2, 0, nk);
    const s = qb.matmul(kt);
    // Query row r of the block is row i0 + r: it keeps keys j ≤ r + i0 + off.
    const p = P.scaledSoftmax(s, scale, i0 + off);
    for (const t of [qb, kb, kt, s]) t.dispose();
    if (!p) {
      vb.dispose();
      for (const t of outs) t.dispose();
      return null;
    }
    outs.push(p.matmul(vb));
    p.dispose();
    vb.dispose();
  }
  const out = cat(outs, -2);
  for (const t of outs) t.dispose();
  return out;
}

function repeatHeads(x: Tensor, n: number): Tensor {
  // [..., H, L, d] → [..., H, n, L, d] → [..., H·n, L, d]
  const u = x.unsqueeze(-3);
  const e = u.expand([...x.shape.slice(0, -2), n, ...x.shape.slice(-2)]);
  const out = e.reshape([...x.shape.slice(0, -3), x.shape[x.ndim - 3]! * n, ...x.shape.slice(-2)]);
  u.dispose();
  e.dispose();
  return out;
}
