// The dynamic-programming bit allocation of KVTC (Staniszewski & Łańcucki, "KV Cache Transform Coding for
// Compact Storage in LLM Inference", ICLR 2026, arXiv 2511.01815, appendix B.17), written from the paper's
// description. Coordinates are PCA coefficients ordered by variance; a plan splits the first r of them into
// groups, each with one quantisation type, under a budget in bits per token. best[i][b] is the least squared
// error over the calibration rows when the first i coordinates use at most b bits; uncoded coordinates cost
// their energy. The block-error simulation does not depend on b, so it is computed once per (size, type, end).
import { ValueError } from './errors.js';
import { type QuantType, quantizeGroup, SIDE_BITS, TYPE_BITS } from './quant.js';

export interface Group {
  start: number;
  size: number;
  type: QuantType;
}

export interface BitPlan {
  /** Dimension of the space the plan codes (the segment's p). */
  p: number;
  /** Coded groups in increasing `start` order ('none' groups are omitted). */
  groups: Group[];
  /** Number of leading PCA components the plan touches (trailing 0-bit components are cut from Vᵀ). */
  width: number;
  /** Tokens that share one (shift, scale) per group (1 = the paper's per-token side info). */
  tokenGroup: number;
  /** Exact bits per token: Σ size·bits + Σ side bits / tokenGroup. */
  bitsPerToken: number;
}

export interface AllocateOptions {
  /** Budget in bits per token (e.g. p·16 / ratio). */
  budgetBits?: number;
  /** Reverse mode: the fewest bits whose calibration error ≤ maxRelError² · energy (relative Frobenius error). */
  maxRelError?: number;
  /** Group sizes (the paper: 1, 16, 64, 256, 1024; small sizes help tiny p). */
  sizes?: readonly number[];
  types?: readonly QuantType[];
  /**
   * Tokens sharing one shift/scale per group (default 1, the paper's scheme). At small p the 32 side bits per
   * group and token dominate a high-ratio budget (research note §5); sharing them over 16 tokens frees the bits.
   */
  tokenGroup?: number;
  /**
   * Per-coordinate weights w ≥ 0 (length ≥ the row width): the DP then minimises Σ_j w_j·(squared error of
   * coordinate j) instead of the plain squared error — e.g. the query second moment seen through each PCA
   * direction (weights.ts), so that the bits go where attention logits are sensitive. Omitted: all ones.
   */
  weights?: ArrayLike<number>;
  /**
   * Squared error no plan can remove (the calibration rows' energy outside the coefficients given, e.g. past a
   * truncated PCA rank): added to the error and to the total, so that `maxRelError` bounds the reconstruction.
   */
  residualEnergy?: number;
}

/** The DP's options, each within its domain, or a ValueError naming it. */
export function checkAllocateOptions(opts: AllocateOptions, who = 'allocateBits'): void {
  if (opts.budgetBits !== undefined && !(Number.isFinite(opts.budgetBits) && opts.budgetBits >= 0))
    throw new ValueError(`${who}: budgetBits must be a finite number ≥ 0; got ${opts.budgetBits}`);
  if (opts.maxRelError !== undefined && !(opts.maxRelError > 0 && opts.maxRelError < 1))
    throw new ValueError(`${who}: maxRelError must be in (0, 1); got ${opts.maxRelError}`);
  if (
    opts.tokenGroup !== undefined &&
    !(Number.isInteger(opts.tokenGroup) && opts.tokenGroup >= 1 && opts.tokenGroup <= 0xffff)
  )
    throw new ValueError(`${who}: tokenGroup must be an integer in [1, 65535]; got ${opts.tokenGroup}`);
  if (opts.sizes !== undefined && (opts.sizes.length === 0 || opts.sizes.some((x) => !(Number.isInteger(x) && x >= 1))))
    throw new ValueError(`${who}: sizes must be a non-empty list of integers ≥ 1; got [${opts.sizes}]`);
  const known = Object.keys(TYPE_BITS).filter((t) => t !== 'none');
  if (opts.types !== undefined && (opts.types.length === 0 || opts.types.some((t) => !known.includes(t))))
    throw new ValueError(`${who}: types must be a non-empty list of ${known.join(', ')}; got [${opts.types}]`);
  if (opts.residualEnergy !== undefined && !(opts.residualEnergy >= 0 && Number.isFinite(opts.residualEnergy)))
    throw new ValueError(`${who}: residualEnergy must be a finite number ≥ 0; got ${opts.residualEnergy}`);
}

export interface AllocateResult {
  plan: BitPlan;
  /** (Weighted) squared error of the plan on the calibration rows and their total (weighted) energy. */
  error: number;
  energy: number;
  /**
   * best error for every budget 0..B (monotone non-increasing), in bits per block of `tokenGroup` tokens
   * (bits per token when tokenGroup = 1).
   */
  curve: Float64Array;
  /** The optimal plan for budget index b of `curve` (its error is curve[b]): splits one budget between segments. */
  planAt: (b: number) => BitPlan;
}

export const PAPER_SIZES: readonly number[] = [1, 16, 64, 256, 1024];
export const DEFAULT_SIZES: readonly number[] = [1, 4, 8, 16, 64, 256, 1024];
export const DEFAULT_TYPES: readonly QuantType[] = ['int2', 'int4', 'fp8'];

export const planBits = (groups: readonly Group[], tokenGroup = 1): number =>
  groups.reduce((a, g) => a + (g.type === 'none' ? 0 : g.size * TYPE_BITS[g.type] + SIDE_BITS[g.type] / tokenGroup), 0);

export function makePlan(p: number, groups: Group[], tokenGroup = 1): BitPlan {
  const coded = groups.filter((g) => g.type !== 'none').sort((a, b) => a.start - b.start);
  const width = coded.reduce((w, g) => Math.max(w, g.start + g.size), 0);
  return { p, groups: coded, width, tokenGroup, bitsPerToken: planBits(coded, tokenGroup) };
}

/**
 * Squared error of quantising columns [start, start + s) of rows [i0, i0 + m) of d [n, r] as one group
 * (one shift/scale for the m × s block); with weights w, column j's squared errors count w[j] times. The
 * quantiser itself is the codec's (min–max over the block): weights change what the DP prefers, not how a
 * group is coded.
 */
function blockError(
  d: Float32Array,
  r: number,
  i0: number,
  m: number,
  start: number,
  s: number,
  t: QuantType,
  tmp: Float64Array,
  w?: ArrayLike<number>,
  rec?: Float64Array,
): number {
  if (!w) {
    if (m === 1) return quantizeGroup(d, i0 * r + start, s, t).err;
    for (let i = 0; i < m; i++) for (let j = 0; j < s; j++) tmp[i * s + j] = d[(i0 + i) * r + start + j]!;
    return quantizeGroup(tmp, 0, m * s, t).err;
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < s; j++) tmp[i * s + j] = d[(i0 + i) * r + start + j]!;
  quantizeGroup(tmp, 0, m * s, t, undefined, 0, rec, 0);
  let e = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < s; j++) {
      const x = tmp[i * s + j]! - rec![i * s + j]!;
      e += w[start + j]! * x * x;
    }
  return e;
}

/** Checks per-coordinate DP weights: at least `r` finite values ≥ 0. */
function checkWeights(w: ArrayLike<number> | undefined, r: number, what: string): void {
  if (!w) return;
  if (w.length < r) throw new ValueError(`${what}: weights must have one entry per coordinate (${r}); got ${w.length}`);
  for (let j = 0; j < r; j++)
    if (!(w[j]! >= 0 && Number.isFinite(w[j]!)))
      throw new ValueError(`${what}: weights must be finite and ≥ 0; got ${w[j]} at ${j}`);
}

/**
 * DP over the coefficient rows d [n, r] (row-major, ordered by variance). Exactly one of budgetBits and
 * maxRelError is used (budgetBits when both are given).
 */
export function allocateBits(d0: Float32Array, n: number, r0: number, opts: AllocateOptions): AllocateResult {
  checkAllocateOptions(opts);
  if (opts.budgetBits === undefined && opts.maxRelError === undefined)
    throw new ValueError('allocateBits: give budgetBits or maxRelError');
  const types = (opts.types ?? DEFAULT_TYPES).filter((t) => t !== 'none');
  const w0 = opts.weights;
  checkWeights(w0, r0, 'allocateBits');
  // A coded coordinate costs at least min(bits) (side info aside), so a budget B cannot reach past B / min(bits):
  // the DP only needs that many leading coordinates (the rest count as uncoded energy).
  const minBits = Math.min(...types.map((t) => TYPE_BITS[t]));
  const m = Math.max(1, Math.floor(opts.tokenGroup ?? 1));
  // Unweighted, the leading coordinates are the high-variance ones. Weighted, a trailing coordinate may matter
  // more, so the prefix reaches far enough to hold the budget's count of coordinates with the largest
  // weighted energy (a plan codes only a prefix's worth of coordinates either way).
  let r = r0;
  if (opts.budgetBits !== undefined) {
    const k = Math.floor(opts.budgetBits / minBits);
    r = Math.min(r0, k);
    if (w0 && k < r0 && k > 0) {
      const we = new Float64Array(r0);
      for (let i = 0; i < n; i++) for (let j = 0; j < r0; j++) we[j]! += w0[j]! * d0[i * r0 + j]! ** 2;
      const order = Array.from({ length: r0 }, (_, j) => j).sort((a, b) => we[b]! - we[a]! || a - b);
      r = Math.max(r, ...order.slice(0, k).map((j) => j + 1));
    }
  }
  const d = r === r0 ? d0 : new Float32Array(n * r);
  if (r !== r0) for (let i = 0; i < n; i++) d.set(d0.subarray(i * r0, i * r0 + r), i * r);
  const wt = (j: number) => (w0 ? w0[j]! : 1);
  let tail = 0;
  for (let i = 0; i < n; i++) for (let j = r; j < r0; j++) tail += wt(j) * d0[i * r0 + j]! ** 2;
  const sizes = [...(opts.sizes ?? DEFAULT_SIZES)].filter((s) => s >= 1 && s <= r);
  let energy = 0;
  const colEnergy = new Float64Array(r);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < r; j++) {
      const v = d[i * r + j]!;
      colEnergy[j]! += wt(j) * v * v;
    }
  for (let j = 0; j < r; j++) energy += colEnergy[j]!;
  energy += tail + (opts.residualEnergy ?? 0);
  // costs are counted per block of m tokens, so that shared side info stays an integer
  const B = Math.max(0, Math.floor((opts.budgetBits ?? r * 16 + 32) * m));
  const tmp = new Float64Array(m * Math.max(1, ...sizes));
  const rec = w0 ? new Float64Array(tmp.length) : undefined;
  // delta[(si·T + ti)·(r+1) + end] = simulated error − energy of the block [end − s, end).
  const nt = types.length;
  const delta = new Float64Array(sizes.length * nt * (r + 1));
  const prefix = new Float64Array(r + 1);
  for (let j = 0; j < r; j++) prefix[j + 1] = prefix[j]! + colEnergy[j]!;
  sizes.forEach((s, si) => {
    types.forEach((t, ti) => {
      const base = (si * nt + ti) * (r + 1);
      for (let end = s; end <= r; end++) {
        let e = 0;
        for (let i = 0; i < n; i += m) e += blockError(d, r, i, Math.min(m, n - i), end - s, s, t, tmp, w0, rec);
        delta[base + end] = e - (prefix[end]! - prefix[end - s]!);
      }
    });
  });
  const W = B + 1;
  const best = new Float64Array((r + 1) * W);
  // choice: -1 inherit from b−1, -2 coordinate i−1 uncoded, else si·nt + ti
  const choice = new Int32Array((r + 1) * W);
  best.fill(energy, 0, W);
  const costs = sizes.map((s) => types.map((t) => s * TYPE_BITS[t] * m + SIDE_BITS[t]));
  for (let i = 1; i <= r; i++) {
    const row = i * W;
    for (let b = 0; b <= B; b++) {
      let v = best[row - W + b]!;
      let ch = -2;
      if (b > 0 && best[row + b - 1]! < v) {
        v = best[row + b - 1]!;
        ch = -1;
      }
      for (let si = 0; si < sizes.length; si++) {
        const s = sizes[si]!;
        if (s > i) continue;
        for (let ti = 0; ti < nt; ti++) {
          const cost = costs[si]![ti]!;
          if (cost > b) continue;
          const cand = best[(i - s) * W + b - cost]! + delta[(si * nt + ti) * (r + 1) + i]!;
          if (cand < v) {
            v = cand;
            ch = si * nt + ti;
          }
        }
      }
      best[row + b] = v;
      choice[row + b] = ch;
    }
  }
  const curve = best.slice(r * W, r * W + W);
  let b = B;
  if (opts.budgetBits === undefined && opts.maxRelError !== undefined) {
    // the tail energy is outside the DP's r columns only when a budget trimmed them, so cap = ε²·energy here
    const cap = opts.maxRelError ** 2 * energy;
    b = curve.findIndex((e) => e <= cap * (1 + 1e-12));
    if (b < 0)
      throw new ValueError(
        `allocateBits: maxRelError ${opts.maxRelError} cannot be met: the best plan within ${r} coordinates reaches ${Math.sqrt(curve[B]! / energy).toPrecision(3)}${opts.residualEnergy ? ' (the basis alone loses ' + Math.sqrt(opts.residualEnergy / energy).toPrecision(3) + '; calibrate with a larger rank)' : ''}`,
      );
  }
  const planAt = (b0: number): BitPlan => {
    let b = Math.max(0, Math.min(B, Math.floor(b0)));
    const groups: Group[] = [];
    let i = r;
    while (i > 0) {
      const ch = choice[i * W + b]!;
      if (ch === -1) b--;
      else if (ch === -2) i--;
      else {
        const si = Math.floor(ch / nt);
        const ti = ch % nt;
        const s = sizes[si]!;
        groups.push({ start: i - s, size: s, type: types[ti]! });
        b -= costs[si]![ti]!;
        i -= s;
      }
    }
    return makePlan(r0, groups, m);
  };
  return { plan: planAt(b), error: curve[b]!, energy, curve, planAt };
}

/**
 * Error of any plan on the rows (what the codec will do): the check the DP's optimum is measured against.
 * With weights, coordinate j's squared errors count w[j] times (as in allocateBits).
 */
export function planError(
  d: Float32Array,
  n: number,
  r: number,
  groups: readonly Group[],
  tokenGroup = 1,
  weights?: ArrayLike<number>,
): number {
  checkWeights(weights, r, 'planError');
  let e = 0;
  const coded = new Uint8Array(r);
  const tmp = new Float64Array(tokenGroup * Math.max(1, ...groups.map((g) => g.size)));
  const rec = weights ? new Float64Array(tmp.length) : undefined;
  for (const g of groups) {
    if (g.type === 'none') continue;
    for (let j = g.start; j < g.start + g.size; j++) coded[j] = 1;
    for (let i = 0; i < n; i += tokenGroup)
      e += blockError(d, r, i, Math.min(tokenGroup, n - i), g.start, g.size, g.type, tmp, weights, rec);
  }
  for (let i = 0; i < n; i++)
    for (let j = 0; j < r; j++) if (!coded[j]) e += (weights ? weights[j]! : 1) * d[i * r + j]! ** 2;
  return e;
}
