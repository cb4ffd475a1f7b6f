// Query-aware weights for the KVTC bit allocation (an option; the paper's DP weighs every PCA coefficient's
// squared error equally). A key error e = k − k̂ (RoPE undone) changes the logit of a query q at offset Δ = t − s
// by (R_Δ q)·e, where R_Δ is RoPE's rotation and q the query before RoPE: (R_t q)·(R_s e) = (R_{t−s} q)·e. Its
// mean square over the causal (query, key) pairs of the calibration text is eᵀ M e with
// M = mean over pairs of R_Δ q qᵀ R_Δᵀ, one d × d block per layer and KV head (summed over the query heads that
// share it under GQA). In the keys' PCA basis V the error is e = Σ_j ε_j v_j, so eᵀ M e = Σ_jk ε_j ε_k v_jᵀ M v_k.
// We keep only the diagonal, w_j = v_jᵀ M v_j: for dropped coefficients the cross terms average to exactly zero
// over the calibration rows (PCA coefficients are uncorrelated there), and for quantised ones the rounding errors
// of different coefficients are nearly uncorrelated. So Σ_j w_j ε_j² is the expected squared logit error, the DP
// minimises it with the same basis and codec (plans, containers and decoders are unchanged), and it costs one
// d × d quadratic form per component and head. A whitened basis (PCA of M^½ k) would be optimal for this metric
// but needs a non-orthogonal decoder; the diagonal weights need nothing new at decode time.
// Values: an error in a cached value reaches the residual stream through the output projection, W_o,g·p·e for
// query head g with attention weight p, so the same construction with M = Σ_g W_o,gᵀ W_o,g weighs value
// coefficients by how much the output projection amplifies them (an option too).
import { nn, noGrad, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import type { Calibration, Segment } from './calibration.js';
import { ValueError } from './errors.js';

/** Second moments per (layer, KV head): `blocks` [L·H·d·d], block (l, h) at ((l·H + h)·d·d), row-major. */
export interface HeadMoments {
  layers: number;
  heads: number;
  headDim: number;
  blocks: Float64Array;
}

/** Accumulates query second moments over sequences (see the file header). */
export class QueryMoments {
  readonly sum: Float64Array;
  /** causal (query, key) pairs counted so far (the same for every head) */
  pairs = 0;
  private readonly freq: Float64Array;

  /**
   * `queryHeads` must be a multiple of `heads` (GQA: query head g reads KV head ⌊g / (queryHeads / heads)⌋).
   * `minOffset`: only pairs with t − s ≥ minOffset count (keys younger than the raw window are never compressed).
   */
  constructor(
    readonly layers: number,
    readonly heads: number,
    readonly queryHeads: number,
    readonly headDim: number,
    readonly ropeBase = 10000,
    readonly minOffset = 0,
    readonly rope = true,
  ) {
    if (!(heads >= 1 && queryHeads % heads === 0))
      throw new ValueError(`QueryMoments: query heads ${queryHeads} must be a multiple of KV heads ${heads}`);
    if (headDim % 2 !== 0) throw new ValueError(`QueryMoments: head dim must be even; got ${headDim}`);
    if (!(Number.isInteger(minOffset) && minOffset >= 0))
      throw new ValueError(`QueryMoments: minOffset must be an integer ≥ 0; got ${minOffset}`);
    this.sum = new Float64Array(layers * heads * headDim * headDim);
    const half = headDim >> 1;
    this.freq = new Float64Array(half);
    for (let i = 0; i < half; i++) this.freq[i] = ropeBase ** (-(2 * i) / headDim);
  }

  /**
   * Adds one sequence's queries before RoPE, q [T, L·queryHeads·d] in (layer, head, dim) order, at positions
   * 0..T−1. Every causal pair (t, s ≤ t − minOffset) counts once: Σ_Δ R_Δ S_Δ R_Δᵀ with S_Δ = Σ_{t ≥ Δ} q_t q_tᵀ
   * (the suffix sums), so the cost is T·d² per KV head rather than T²·d².
   */
  add(q: Float32Array, T: number): void {
    const { layers: L, heads: H, queryHeads: Hq, headDim: d } = this;
    const P = L * Hq * d;
    if (q.length !== T * P) throw new ValueError(`QueryMoments.add: expected ${T}×${P} queries; got ${q.length}`);
    const g = Hq / H;
    const half = d >> 1;
    const S = new Float64Array(d * d);
    const B = new Float64Array(d * d);
    const cos = new Float64Array(half);
    const sin = new Float64Array(half);
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++) {
        S.fill(0);
        const out = this.sum.subarray((l * H + h) * d * d, (l * H + h + 1) * d * d);
        for (let delta = T - 1; delta >= this.minOffset; delta--) {
          for (let gi = 0; gi < g; gi++) {
            const o = delta * P + (l * Hq + h * g + gi) * d;
            for (let a = 0; a < d; a++) {
              const qa = q[o + a]!;
              for (let b = 0; b < d; b++) S[a * d + b]! += qa * q[o + b]!;
            }
          }
          if (!this.rope) {
            for (let i = 0; i < d * d; i++) out[i]! += S[i]!;
            continue;
          }
          for (let i = 0; i < half; i++) {
            cos[i] = Math.cos(delta * this.freq[i]!);
            sin[i] = Math.sin(delta * this.freq[i]!);
          }
          // B = R S (rotate-half: rows i and i + half mix), then out += B Rᵀ (columns mix the same way)
          for (let i = 0; i < half; i++)
            for (let b = 0; b < d; b++) {
              const x1 = S[i * d + b]!;
              const x2 = S[(i + half) * d + b]!;
              B[i * d + b] = x1 * cos[i]! - x2 * sin[i]!;
              B[(i + half) * d + b] = x2 * cos[i]! + x1 * sin[i]!;
            }
          for (let a = 0; a < d; a++)
            for (let i = 0; i < half; i++) {
              const x1 = B[a * d + i]!;
              const x2 = B[a * d + i + half]!;
              out[a * d + i]! += x1 * cos[i]! - x2 * sin[i]!;
              out[a * d + i + half]! += x2 * cos[i]! + x1 * sin[i]!;
            }
        }
      }
    this.pairs += Math.max(0, T - this.minOffset) * (Math.max(0, T - this.minOffset) + 1) * 0.5;
  }

  /** Mean over the pairs: E[R_Δ q qᵀ R_Δᵀ] per (layer, KV head), summed over the group's query heads. */
  moments(): HeadMoments {
    if (this.pairs === 0) throw new ValueError('QueryMoments: no (query, key) pairs were added');
    const blocks = Float64Array.from(this.sum, (x) => x / this.pairs);
    return { layers: this.layers, heads: this.heads, headDim: this.headDim, blocks };
  }
}

/** Runs `model` over `ids` and returns every layer's queries before RoPE, [T, L·nHeads·d] (layer, head, dim). */
export function collectQueries(model: nn.CausalLM, ids: ArrayLike<number>): Float32Array {
  const L = model.config.nLayers;
  const T = ids.length;
  const dModel = model.config.dModel;
  const out = new Float32Array(T * L * dModel);
  // q_proj's output is the queries before RoPE, laid out (head, dim) per token: capture it for the forward pass
  const restore: (() => void)[] = [];
  model.blocks.items.forEach((block, l) => {
    const lin = block.attn.qProj;
    const own = Object.hasOwn(lin, 'forward');
    const prev = lin.forward;
    lin.forward = (x: Tensor) => {
      const y = prev.call(lin, x);
      const yd = Float32Array.from(y.contiguous().dataSync());
      for (let t = 0; t < T; t++) out.set(yd.subarray(t * dModel, (t + 1) * dModel), (t * L + l) * dModel);
      return y;
    };
    restore.push(() => {
      if (own) lin.forward = prev;
      else delete (lin as { forward?: unknown }).forward;
    });
  });
  try {
    noGrad(() =>
      tidy(() => {
        model.forward(tensor(Int32Array.from(ids), { shape: [1, T], dtype: 'int32' }));
      }),
    );
  } finally {
    for (const r of restore) r();
  }
  return out;
}

/** Query moments of a model over calibration sequences (positions 0..T−1 each). */
export function queryMoments(
  model: nn.CausalLM,
  docs: ArrayLike<number>[],
  opts: { ropeBase?: number; minOffset?: number } = {},
): HeadMoments {
  const c = model.config;
  const qh = c.nHeads;
  const acc = new QueryMoments(
    c.nLayers,
    c.nKvHeads ?? qh,
    qh,
    c.dModel / qh,
    opts.ropeBase ?? 10000,
    opts.minOffset ?? 0,
    (c.positions ?? 'rope') === 'rope',
  );
  for (const ids of docs) acc.add(collectQueries(model, ids), ids.length);
  return acc.moments();
}

/** Σ_g W_o,gᵀ W_o,g per (layer, KV head): how the output projection amplifies an error in a cached value. */
export function outputProjectionMoments(model: nn.CausalLM): HeadMoments {
  const c = model.config;
  const Hq = c.nHeads;
  const H = c.nKvHeads ?? Hq;
  const d = c.dModel / Hq;
  const g = Hq / H;
  const blocks = new Float64Array(c.nLayers * H * d * d);
  model.blocks.items.forEach((block, l) => {
    // weight [out = dModel, in = dModel]; query head q's columns are [q·d, (q + 1)·d)
    const W = block.attn.oProj.weight.contiguous().dataSync();
    const D = c.dModel;
    for (let h = 0; h < H; h++) {
      const o = (l * H + h) * d * d;
      for (let gi = 0; gi < g; gi++) {
        const c0 = (h * g + gi) * d;
        for (let r = 0; r < D; r++)
          for (let a = 0; a < d; a++) {
            const wa = W[r * D + c0 + a]!;
            for (let b = 0; b < d; b++) blocks[o + a * d + b]! += wa * W[r * D + c0 + b]!;
          }
      }
    }
  });
  return { layers: c.nLayers, heads: H, headDim: d, blocks };
}

/**
 * w_j = v_jᵀ M v_j for each principal direction v_j of a segment (M block-diagonal over the segment's layers and
 * heads), scaled to mean 1 unless `normalize` is false (a DP within one segment only compares weighted errors
 * with each other; splitting a budget between segments needs their raw scale).
 */
export function componentWeights(seg: Segment, m: HeadMoments, normalize = true): Float32Array {
  const { p, rank, basis } = seg.pca;
  const d = m.headDim;
  const H = m.heads;
  if (p !== seg.layers.length * H * d)
    throw new ValueError(`componentWeights: segment p ${p} does not match ${seg.layers.length} layers × ${H} × ${d}`);
  const w = new Float64Array(rank);
  for (let j = 0; j < rank; j++) {
    const v = basis.subarray(j * p, (j + 1) * p);
    let acc = 0;
    seg.layers.forEach((l, li) => {
      if (l >= m.layers) throw new ValueError(`componentWeights: layer ${l} of ${m.layers}`);
      for (let h = 0; h < H; h++) {
        const o = (li * H + h) * d;
        const M = m.blocks.subarray((l * H + h) * d * d, (l * H + h + 1) * d * d);
        for (let a = 0; a < d; a++) {
          let row = 0;
          for (let b = 0; b < d; b++) row += M[a * d + b]! * v[o + b]!;
          acc += v[o + a]! * row;
        }
      }
    });
    w[j] = Math.max(0, acc);
  }
  let mean = 0;
  for (const x of w) mean += x / rank;
  if (!(mean > 0)) throw new ValueError('componentWeights: every weight is 0 (the moments are all zero)');
  return Float32Array.from(w, (x) => (normalize ? x / mean : x));
}

/**
 * Key and value moments on one scale, the first-order error of the attention output (before o_proj, as the
 * evaluation measures it). For one query with attention p over keys s and output ō = Σ_s p_s v_s, a value error
 * e_s and a logit error δ_s give Δo ≈ Σ_s p_s e_s + Σ_s p_s (δ_s − δ̄) v_s = Σ_s p_s e_s + Σ_s p_s δ_s (v_s − ō).
 * With errors independent across tokens and of each other, E‖Δo‖² = Σ_s p_s² E‖e_s‖² + Σ_s p_s² E[δ_s²] ‖v_s − ō‖²:
 * values weigh A = Σ p² and keys weigh E[(q·e)²]/d times B = Σ p² ‖v_s − ō‖², both summed over the model's own
 * attention on the calibration documents (pairs at least `minOffset` apart, the compressed ones). B is small
 * where attention is sharp on one token (v_s ≈ ō), which is what a lookup does. Per KV head h with g query
 * heads, keys get M_h · B_h / (g·d) (M_h from queryMoments, a sum over the g heads; B_h/g the mean per head)
 * and values A_h·I. `fitPlan(..., { keyShare: 'weighted' })` then splits each budget between keys and values
 * where the summed weighted error is least (use weightCalibration with normalize: false).
 */
export function attentionOutputMoments(
  model: nn.CausalLM,
  docs: ArrayLike<number>[],
  keys: HeadMoments,
  opts: { minOffset?: number } = {},
): { keys: HeadMoments; values: HeadMoments; A: Float64Array; B: Float64Array } {
  const c = model.config;
  const Hq = c.nHeads;
  const H = c.nKvHeads ?? Hq;
  const d = c.dModel / Hq;
  const L = c.nLayers;
  if (keys.layers !== L || keys.heads !== H || keys.headDim !== d)
    throw new ValueError(
      `attentionOutputMoments: moments ${keys.layers}×${keys.heads}×${keys.headDim}; model ${L}×${H}×${d}`,
    );
  const minOffset = opts.minOffset ?? 0;
  const g = Hq / H;
  const A = new Float64Array(L * H);
  const B = new Float64Array(L * H);
  for (const ids of docs) {
    const T = ids.length;
    const probs: Float32Array[] = [];
    const values: Float32Array[] = [];
    const storage = observingStorage((l, p, inner) => {
      probs[l] = Float32Array.from(p.contiguous().dataSync());
      values[l] = Float32Array.from(inner.read(l)!.v.contiguous().dataSync());
    });
    noGrad(() =>
      tidy(() => {
        model.forward(tensor(Int32Array.from(ids), { shape: [1, T], dtype: 'int32' }), {
          cache: new nn.KVCache(storage),
        });
      }),
    );
    const o = new Float64Array(d);
    for (let l = 0; l < L; l++) {
      const p = probs[l]!; // [1, Hq, T, T]
      const v = values[l]!; // [1, H, T, d]
      for (let q = 0; q < Hq; q++) {
        const h = Math.floor(q / g);
        for (let t = 0; t < T; t++) {
          const row = (q * T + t) * T;
          o.fill(0);
          for (let s = 0; s <= t; s++) {
            const w = p[row + s]!;
            for (let j = 0; j < d; j++) o[j]! += w * v[(h * T + s) * d + j]!;
          }
          for (let s = 0; s <= t - minOffset; s++) {
            const w2 = p[row + s]! ** 2;
            let dist = 0;
            for (let j = 0; j < d; j++) dist += (v[(h * T + s) * d + j]! - o[j]!) ** 2;
            A[l * H + h]! += w2;
            B[l * H + h]! += w2 * dist;
          }
        }
      }
    }
  }
  const kb = Float64Array.from(keys.blocks, (x, i) => {
    const b = Math.floor(i / (d * d));
    return A[b]! > 0 ? (x * B[b]!) / (g * d) : 0;
  });
  const vb = new Float64Array(L * H * d * d);
  for (let b = 0; b < L * H; b++) for (let a = 0; a < d; a++) vb[b * d * d + a * d + a] = A[b]!;
  return { keys: { ...keys, blocks: kb }, values: { layers: L, heads: H, headDim: d, blocks: vb }, A, B };
}

/**
 * A copy of `cal` whose segments carry DP weights: keys from query moments, values from output-projection
 * moments (either may be omitted; those segments stay unweighted). `normalize: false` keeps the moments' own
 * scale (for attentionOutputMoments and `keyShare: 'weighted'`). The basis is shared, so caches encoded with
 * either calibration decode with the other (the fingerprint covers the basis, not the weights).
 */
export function weightCalibration(
  cal: Calibration,
  m: { keys?: HeadMoments; values?: HeadMoments },
  opts: { normalize?: boolean } = {},
): Calibration {
  for (const x of [m.keys, m.values])
    if (x && (x.layers !== cal.layers || x.heads !== cal.heads || x.headDim !== cal.headDim))
      throw new ValueError(
        `weightCalibration: moments for ${x.layers}×${x.heads}×${x.headDim}; calibration ${cal.layers}×${cal.heads}×${cal.headDim}`,
      );
  return {
    ...cal,
    segments: cal.segments.map((s) => {
      const mm = s.kind === 'k' ? m.keys : m.values;
      const { weights: _, ...rest } = s;
      return mm ? { ...rest, weights: componentWeights(s, mm, opts.normalize ?? true) } : rest;
    }),
  };
}

/**
 * A plain (uncompressed) cache storage that hands each layer's attention probabilities to `onObserve` as the model
 * computes them, with the storage itself so the callback can read that layer's keys and values.
 */
export function observingStorage(
  onObserve: (layer: number, probs: Tensor, inner: nn.ConcatStorage) => void,
): nn.KVCacheStorage {
  const inner = new nn.ConcatStorage();
  return {
    append: (l, kv) => inner.append(l, kv),
    read: (l) => inner.read(l),
    length: (l) => inner.length(l),
    reset: () => inner.reset(),
    observe: (l, p) => onObserve(l, p, inner),
  };
}
