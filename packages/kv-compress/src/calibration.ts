// KVTC calibration (arXiv 2511.01815 §3): keys with RoPE undone and values, each as rows of all layers × KV
// heads concatenated (p = L·H·d), centred and rotated into one PCA basis per kind ("cross-layer"), or one basis
// per layer ("per-layer", the ablation of Tables 16–17). The same basis serves every ratio; a plan (dp.ts) per
// ratio decides how many bits each coefficient gets.
import { ShapeError } from '@tessera/tensor-core';
import { type AllocateOptions, allocateBits, type BitPlan, checkAllocateOptions } from './dp.js';
import { CalibrationMismatchError, ValueError } from './errors.js';
import { codecGemm } from './kernels.js';
import { type PcaOptions, type PcaResult, pca } from './linalg.js';
import { ropeRows } from './rope.js';

/** Host rows of a cache: token i's keys of every layer and head, [n, L·H·d] in (layer, head, dim) order. */
export interface KVRows {
  layers: number;
  heads: number;
  headDim: number;
  n: number;
  /** keys as the attention layer holds them (RoPE applied when the model uses RoPE) */
  k: Float32Array;
  v: Float32Array;
  /** absolute position of each row (for undoing RoPE) */
  positions: Int32Array;
}

export type SegmentKind = 'k' | 'v';

export interface Segment {
  kind: SegmentKind;
  /** layers whose (head, dim) features this segment's rows concatenate, in order */
  layers: number[];
  pca: PcaResult;
  /**
   * Optional DP weights, one per PCA component (weights.ts: query moments for keys, output-projection moments
   * for values). fitPlan minimises the weighted squared error when present; the codec ignores them.
   */
  weights?: Float32Array;
}

export interface CalibrationOptions extends PcaOptions {
  mode?: 'cross-layer' | 'per-layer';
  /** Undo RoPE on keys before the PCA (default true). */
  rope?: boolean;
  ropeBase?: number;
  /** Rows used for the PCA (a random subset when there are more). */
  maxRows?: number;
}

export interface Calibration {
  layers: number;
  heads: number;
  headDim: number;
  mode: 'cross-layer' | 'per-layer';
  rope: boolean;
  ropeBase: number;
  segments: Segment[];
}

/** One plan per segment, for one target. */
export interface KvtcPlan {
  /** nominal ratio the DP was given (16 bits per feature / budget), or 0 for error-capped plans */
  targetRatio: number;
  plans: BitPlan[];
}

/** Gathers one segment's features from rows into [n, |layers|·H·d]. */
export function segmentRows(rows: KVRows, seg: { kind: SegmentKind; layers: readonly number[] }): Float32Array {
  const f = rows.heads * rows.headDim;
  const P = rows.layers * f;
  const src = seg.kind === 'k' ? rows.k : rows.v;
  const p = seg.layers.length * f;
  const out = new Float32Array(rows.n * p);
  for (let i = 0; i < rows.n; i++)
    seg.layers.forEach((l, j) => {
      out.set(src.subarray(i * P + l * f, i * P + (l + 1) * f), i * p + j * f);
    });
  return out;
}

/** Keys with RoPE undone (a copy), values untouched. */
export function derotate(rows: KVRows, ropeBase: number): KVRows {
  const k = Float32Array.from(rows.k);
  const P = rows.layers * rows.heads * rows.headDim;
  ropeRows(k, rows.n, P, 0, rows.layers * rows.heads, rows.headDim, rows.positions, ropeBase, true);
  return { ...rows, k };
}

/**
 * Throws unless `rows` hold what their header says — integer sizes ≥ 1, k and v of n·layers·heads·headDim
 * values, n positions, every value finite — and, given a calibration, its shape (a `CalibrationMismatchError`).
 * One NaN in calibration rows makes a basis of NaNs; rows of another shape code into a stream no reader takes.
 */
export function checkRows(rows: KVRows, who: string, cal?: Pick<Calibration, 'layers' | 'heads' | 'headDim'>): void {
  for (const k of ['layers', 'heads', 'headDim'] as const)
    if (!(Number.isInteger(rows[k]) && rows[k] >= 1))
      throw new ValueError(`${who}: rows.${k} must be an integer ≥ 1; got ${rows[k]}`);
  if (!(Number.isInteger(rows.n) && rows.n >= 0))
    throw new ValueError(`${who}: rows.n must be an integer ≥ 0; got ${rows.n}`);
  const want = rows.n * rows.layers * rows.heads * rows.headDim;
  if (rows.k.length !== want || rows.v.length !== want)
    throw new ShapeError(
      `${who}: ${rows.n} rows of ${rows.layers}×${rows.heads}×${rows.headDim} need ${want} keys and values; got ${rows.k.length} and ${rows.v.length}`,
    );
  if (rows.positions.length !== rows.n)
    throw new ShapeError(`${who}: ${rows.n} rows need ${rows.n} positions; got ${rows.positions.length}`);
  for (const [name, x] of [
    ['keys', rows.k],
    ['values', rows.v],
  ] as const)
    for (let i = 0; i < x.length; i++)
      if (!Number.isFinite(x[i]!))
        throw new ValueError(`${who}: ${name} hold ${x[i]} at ${i}; every value must be finite`);
  if (cal && (cal.layers !== rows.layers || cal.heads !== rows.heads || cal.headDim !== rows.headDim))
    throw new CalibrationMismatchError(
      `${who}: rows are ${rows.layers}×${rows.heads}×${rows.headDim}; the calibration ${cal.layers}×${cal.heads}×${cal.headDim}`,
    );
}

export function calibrate(rows: KVRows, opts: CalibrationOptions = {}): Calibration {
  const mode = opts.mode ?? 'cross-layer';
  const rope = opts.rope ?? true;
  const ropeBase = opts.ropeBase ?? 10000;
  checkRows(rows, 'calibrate');
  if (mode !== 'cross-layer' && mode !== 'per-layer')
    throw new ValueError(`calibrate: mode must be 'cross-layer' or 'per-layer'; got ${String(mode)}`);
  if (opts.method !== undefined && !['auto', 'exact', 'randomized'].includes(opts.method))
    throw new ValueError(`calibrate: method must be 'auto', 'exact' or 'randomized'; got ${String(opts.method)}`);
  if (opts.rank !== undefined && !(Number.isInteger(opts.rank) && opts.rank >= 1))
    throw new ValueError(`calibrate: rank must be an integer ≥ 1; got ${opts.rank}`);
  if (opts.maxRows !== undefined && !(Number.isInteger(opts.maxRows) && opts.maxRows >= 2))
    throw new ValueError(`calibrate: maxRows must be an integer ≥ 2; got ${opts.maxRows}`);
  if (opts.oversample !== undefined && !(Number.isInteger(opts.oversample) && opts.oversample >= 0))
    throw new ValueError(`calibrate: oversample must be an integer ≥ 0; got ${opts.oversample}`);
  if (rope && !(Number.isFinite(ropeBase) && ropeBase > 0))
    throw new ValueError(`calibrate: ropeBase must be a finite number > 0; got ${ropeBase}`);
  if (rope && rows.headDim % 2 !== 0)
    throw new ValueError(`calibrate: RoPE needs an even headDim; got ${rows.headDim}`);
  if (rows.n < 2) throw new ValueError(`calibrate: need at least 2 calibration rows; got ${rows.n}`);
  let r = rope ? derotate(rows, ropeBase) : rows;
  if (opts.maxRows !== undefined && r.n > opts.maxRows) r = subsample(r, opts.maxRows);
  const layerSets =
    mode === 'cross-layer'
      ? [Array.from({ length: rows.layers }, (_, l) => l)]
      : Array.from({ length: rows.layers }, (_, l) => [l]);
  const segments: Segment[] = [];
  for (const kind of ['k', 'v'] as const)
    for (const layers of layerSets) {
      const x = segmentRows(r, { kind, layers });
      const p = layers.length * rows.heads * rows.headDim;
      segments.push({ kind, layers, pca: pca(x, r.n, p, opts) });
    }
  return { layers: rows.layers, heads: rows.heads, headDim: rows.headDim, mode, rope, ropeBase, segments };
}

function subsample(rows: KVRows, m: number): KVRows {
  const P = rows.layers * rows.heads * rows.headDim;
  const k = new Float32Array(m * P);
  const v = new Float32Array(m * P);
  const positions = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const src = Math.floor((i * rows.n) / m);
    k.set(rows.k.subarray(src * P, (src + 1) * P), i * P);
    v.set(rows.v.subarray(src * P, (src + 1) * P), i * P);
    positions[i] = rows.positions[src]!;
  }
  return { ...rows, n: m, k, v, positions };
}

/** PCA coefficients D = (X − μ) Vᵀᵀ [n, width] of a segment's rows. */
export function project(pcaRes: PcaResult, x: Float32Array, n: number, width: number): Float32Array {
  const { p, mean, basis } = pcaRes;
  const xc = new Float32Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) xc[i * p + j] = x[i * p + j]! - mean[j]!;
  return codecGemm(xc, n, p, basis.subarray(0, width * p), width, true);
}

export interface FitOptions extends Omit<AllocateOptions, 'budgetBits' | 'maxRelError' | 'weights'> {
  /** Rows the DP simulates (default 512, spread over the calibration set; the paper uses 32K tokens). */
  maxRows?: number;
  /**
   * Key/value split of the budget: bits to keys = 2·share·budget (0.5 = equal, the default). 'weighted' splits
   * each key segment's and value segment's joint budget where the sum of their (weighted) errors is least —
   * meaningful when both carry weights on one scale (weights.ts: attentionOutputMoments, normalize: false).
   */
  keyShare?: number | 'weighted';
}

/**
 * Runs the DP for every segment: `{ ratio }` gives each segment p·16/ratio bits per token; `{ maxRelError }`
 * (the reverse mode) gives each segment the fewest bits whose calibration error stays under the cap.
 */
export function fitPlan(
  cal: Calibration,
  rows: KVRows,
  target: { ratio: number } | { maxRelError: number },
  opts: FitOptions = {},
): KvtcPlan {
  checkRows(rows, 'fitPlan', cal);
  checkFitOptions(target, opts);
  let r = cal.rope ? derotate(rows, cal.ropeBase) : rows;
  const maxRows = opts.maxRows ?? 512;
  if (r.n > maxRows) r = subsample(r, maxRows);
  const share = opts.keyShare ?? 0.5;
  if (share === 'weighted' && 'ratio' in target) return fitJoint(cal, r, target.ratio, opts);
  const plans = cal.segments.map((seg) => {
    const x = segmentRows(r, seg);
    const { p, rank } = seg.pca;
    const d = project(seg.pca, x, r.n, rank);
    const weights = seg.weights;
    if ('ratio' in target) {
      if (!(target.ratio > 0)) throw new ValueError(`fitPlan: ratio must be > 0; got ${target.ratio}`);
      const sh = share === 'weighted' ? 0.5 : share;
      const w = seg.kind === 'k' ? 2 * sh : 2 * (1 - sh);
      return allocateBits(d, r.n, rank, { ...opts, weights, budgetBits: Math.floor((w * p * 16) / target.ratio) }).plan;
    }
    // What the basis itself loses (the components past its rank) is error no plan removes: counted in both the
    // error and the total, so a cap holds for the reconstruction, not only within the kept components.
    let total = 0;
    for (let i = 0; i < r.n; i++) for (let j = 0; j < p; j++) total += (x[i * p + j]! - seg.pca.mean[j]!) ** 2;
    let kept = 0;
    for (let i = 0; i < d.length; i++) kept += d[i]! ** 2;
    const residualEnergy = Math.max(0, total - kept);
    return allocateBits(d, r.n, rank, { ...opts, weights, maxRelError: target.maxRelError, residualEnergy }).plan;
  });
  // allocateBits sees the rank as its dimension; record the segment's p for the ratio arithmetic.
  cal.segments.forEach((seg, i) => {
    plans[i]!.p = seg.pca.p;
  });
  return { targetRatio: 'ratio' in target ? target.ratio : 0, plans };
}

/** The target and options of `fitPlan`, each within its domain, or a ValueError naming it. */
function checkFitOptions(target: { ratio: number } | { maxRelError: number }, opts: FitOptions): void {
  const t = target as { ratio?: number; maxRelError?: number };
  if (t.ratio === undefined && t.maxRelError === undefined)
    throw new ValueError('fitPlan: the target needs a ratio or a maxRelError');
  if (t.ratio !== undefined && !(Number.isFinite(t.ratio) && t.ratio > 0))
    throw new ValueError(`fitPlan: ratio must be > 0; got ${t.ratio}`);
  if (t.ratio === undefined && !(t.maxRelError! > 0 && t.maxRelError! < 1))
    throw new ValueError(`fitPlan: maxRelError must be in (0, 1); got ${t.maxRelError}`);
  const share = opts.keyShare;
  if (share !== undefined && share !== 'weighted' && !(typeof share === 'number' && share >= 0 && share <= 1))
    throw new ValueError(`fitPlan: keyShare must be in [0, 1] or 'weighted'; got ${String(share)}`);
  if (opts.maxRows !== undefined && !(Number.isInteger(opts.maxRows) && opts.maxRows >= 1))
    throw new ValueError(`fitPlan: maxRows must be an integer ≥ 1; got ${opts.maxRows}`);
  checkAllocateOptions(opts, 'fitPlan');
}

/**
 * keyShare 'weighted': for each key segment and the value segment over the same layers, one DP each over their
 * joint budget (2·p·16/ratio bits per token), then the split b_K + b_V = B with the least curve_K[b_K] +
 * curve_V[b_V] (both curves are exact optima for every budget, so the split is optimal for the summed error).
 */
function fitJoint(cal: Calibration, r: KVRows, ratio: number, opts: FitOptions): KvtcPlan {
  if (!(ratio > 0)) throw new ValueError(`fitPlan: ratio must be > 0; got ${ratio}`);
  const { keyShare: _, ...dpOpts } = opts;
  const plans: BitPlan[] = new Array(cal.segments.length);
  cal.segments.forEach((ks, i) => {
    if (ks.kind !== 'k') return;
    const j = cal.segments.findIndex((s) => s.kind === 'v' && s.layers.join() === ks.layers.join());
    if (j < 0) throw new ValueError(`fitPlan: no value segment over layers ${ks.layers.join(', ')}`);
    const vs = cal.segments[j]!;
    const budgetBits = Math.floor((2 * ks.pca.p * 16) / ratio);
    const run = (seg: Segment) =>
      allocateBits(project(seg.pca, segmentRows(r, seg), r.n, seg.pca.rank), r.n, seg.pca.rank, {
        ...dpOpts,
        weights: seg.weights,
        budgetBits,
      });
    const a = run(ks);
    const b = run(vs);
    const B = a.curve.length - 1;
    let best = 0;
    for (let bk = 1; bk <= B; bk++)
      if (a.curve[bk]! + b.curve[B - bk]! < a.curve[best]! + b.curve[B - best]!) best = bk;
    plans[i] = { ...a.planAt(best), p: ks.pca.p };
    plans[j] = { ...b.planAt(B - best), p: vs.pca.p };
  });
  return { targetRatio: ratio, plans };
}
