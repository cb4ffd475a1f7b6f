// Attention-sampled calibration rows: an option beside KVTC's uniform calibration (arXiv 2511.01815 §3 samples
// positions uniformly). At a high ratio only a few dozen PCA coefficients survive, and a uniform sample spends
// them on the tokens that are most numerous (here corpus characters), not on the ones later queries read from
// afar (here the fused key–value tokens a lookup attends to; heavy hitters in H2O's sense). Drawing calibration
// rows in proportion to the attention each token receives from queries at least `minOffset` positions later —
// younger tokens stay raw in the cache's window, so their reads do not depend on the codec — points the PCA and
// the DP at what retrieval reads, with no knowledge of the task. The basis, DP, codec and format are unchanged:
// only which rows they see changes.
import { nn, noGrad, tensor, tidy } from '@tessera/tensor-core';
import type { KVRows } from './calibration.js';
import { ValueError } from './errors.js';
import { observingStorage } from './weights.js';

/**
 * Attention each position of `ids` receives from queries at least `minOffset` positions later, averaged over
 * layers and query heads: a[s] = mean_{l,h} Σ_{t ≥ s + minOffset} p_{l,h}[t, s]. With minOffset 0 the entries
 * sum to T (every query's probabilities sum to 1).
 */
export function attentionReceived(
  model: nn.CausalLM,
  ids: ArrayLike<number>,
  opts: { minOffset?: number } = {},
): Float64Array {
  const minOffset = opts.minOffset ?? 0;
  if (!(Number.isInteger(minOffset) && minOffset >= 0))
    throw new ValueError(`attentionReceived: minOffset must be an integer ≥ 0; got ${minOffset}`);
  const T = ids.length;
  if (T < 1) throw new ValueError('attentionReceived: needs at least one token');
  const a = new Float64Array(T);
  let heads = 0;
  const storage = observingStorage((_l, probs) => {
    const [, Hq, Tq, S] = probs.shape as [number, number, number, number];
    const p = probs.contiguous().dataSync();
    heads += Hq;
    // one forward pass over the whole sequence: query t is row t, key s is column s (Tq = S = T)
    for (let h = 0; h < Hq; h++)
      for (let t = minOffset; t < Tq; t++) {
        const row = (h * Tq + t) * S;
        for (let s = 0; s <= t - minOffset; s++) a[s]! += p[row + s]!;
      }
  });
  noGrad(() =>
    tidy(() => {
      model.forward(tensor(Int32Array.from(ids), { shape: [1, T], dtype: 'int32' }), {
        cache: new nn.KVCache(storage),
      });
    }),
  );
  for (let s = 0; s < T; s++) a[s]! /= heads;
  return a;
}

/**
 * Systematic resampling: n indices into `weights`, index i drawn ⌊n·wᵢ/Σw⌋ or ⌈n·wᵢ/Σw⌉ times, in increasing
 * order (deterministic, unlike multinomial draws, so a calibration stays reproducible).
 */
export function systematicResample(weights: ArrayLike<number>, n: number): Int32Array {
  if (!(Number.isInteger(n) && n >= 1)) throw new ValueError(`systematicResample: n must be an integer ≥ 1; got ${n}`);
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!(w >= 0 && Number.isFinite(w)))
      throw new ValueError(`systematicResample: weights must be finite and ≥ 0; got ${w} at ${i}`);
    total += w;
  }
  if (!(total > 0)) throw new ValueError('systematicResample: the weights sum to 0');
  const out = new Int32Array(n);
  let i = 0;
  let cum = weights[0]! / total;
  for (let k = 0; k < n; k++) {
    const u = (k + 0.5) / n;
    while (cum <= u && i < weights.length - 1) cum += weights[++i]! / total;
    out[k] = i;
  }
  return out;
}

/** The rows at `indices` (repeats allowed), with their positions (for undoing RoPE). */
export function gatherRows(rows: KVRows, indices: ArrayLike<number>): KVRows {
  const P = rows.layers * rows.heads * rows.headDim;
  const n = indices.length;
  const k = new Float32Array(n * P);
  const v = new Float32Array(n * P);
  const positions = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const i = indices[j]!;
    if (!(Number.isInteger(i) && i >= 0 && i < rows.n))
      throw new ValueError(`gatherRows: index ${i} at ${j} is outside [0, ${rows.n})`);
    k.set(rows.k.subarray(i * P, (i + 1) * P), j * P);
    v.set(rows.v.subarray(i * P, (i + 1) * P), j * P);
    positions[j] = rows.positions[i]!;
  }
  return { ...rows, n, k, v, positions };
}

export interface AttentionSampleOptions {
  /**
   * Share of the sampling mass drawn in proportion to the attention received; the rest is uniform, so every
   * kind of token stays represented (default 0.9; 0 gives the uniform calibration back, up to the row order).
   */
  mix?: number;
  /** Rows drawn (default rows.n). */
  n?: number;
}

/**
 * Calibration rows drawn with probability (1 − mix)/n + mix·aᵢ/Σa (systematic resampling), aᵢ = the attention
 * row i received (attentionReceived, one entry per row; rows whose received attention is all zero are drawn
 * uniformly). Pass the result to calibrate and fitPlan in place of the rows.
 */
export function attentionSampledRows(
  rows: KVRows,
  received: ArrayLike<number>,
  opts: AttentionSampleOptions = {},
): KVRows {
  const mix = opts.mix ?? 0.9;
  if (!(mix >= 0 && mix <= 1)) throw new ValueError(`attentionSampledRows: mix must lie in [0, 1]; got ${mix}`);
  if (received.length !== rows.n)
    throw new ValueError(
      `attentionSampledRows: one received-attention entry per row expected (${rows.n}); got ${received.length}`,
    );
  let total = 0;
  for (let i = 0; i < received.length; i++) {
    const a = received[i]!;
    if (!(a >= 0 && Number.isFinite(a)))
      throw new ValueError(`attentionSampledRows: received attention must be finite and ≥ 0; got ${a} at ${i}`);
    total += a;
  }
  const m = total > 0 ? mix : 0;
  const w = Float64Array.from(received, (a) => (1 - m) / rows.n + (m > 0 ? (m * a) / total : 0));
  return gatherRows(rows, systematicResample(w, opts.n ?? rows.n));
}
