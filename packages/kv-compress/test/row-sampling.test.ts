// Attention-sampled calibration rows (row-sampling.ts): systematic resampling against hand-derived draws and its
// floor/ceil guarantee, received attention against the softmax recomputed by hand from the model's own queries
// and keys, and the point of it all: a rare, heavily attended population is reconstructed better by a
// low-rank basis calibrated on the sampled rows than on uniform ones.
import { describe, expect, it } from 'vitest';
import type { KVRows } from '../src/calibration.js';
import { collectKV } from '../src/collect.js';
import { ValueError } from '../src/errors.js';
import { pca, Rng } from '../src/linalg.js';
import { attentionReceived, attentionSampledRows, gatherRows, systematicResample } from '../src/row-sampling.js';
import { collectQueries } from '../src/weights.js';
import { handAttentionRow, tinyAttentionModel } from './helpers.js';

describe('systematic resampling', () => {
  it('draws the hand-derived indices', () => {
    // cumulative weights 0.25, 0.25, 1 against the points 1/8, 3/8, 5/8, 7/8
    expect(Array.from(systematicResample([1, 0, 3], 4))).toEqual([0, 2, 2, 2]);
    // uniform weights, as many draws as entries: every index once
    expect(Array.from(systematicResample([2, 2, 2, 2, 2], 5))).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(systematicResample([0, 0, 5], 3))).toEqual([2, 2, 2]);
  });
  it('draws index i ⌊n·wᵢ/Σw⌋ or ⌈n·wᵢ/Σw⌉ times, in order, and never a zero weight', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 60; trial++) {
      const len = 1 + rng.int(40);
      const w: number[] = Array.from({ length: len }, () => (rng.next() < 0.3 ? 0 : rng.next() * 10));
      if (!w.some((x) => x > 0)) w[0] = 1;
      const n = 1 + rng.int(200);
      const idx = systematicResample(w, n);
      expect(idx.length).toBe(n);
      const total = w.reduce((a, b) => a + b, 0);
      const counts = new Array(len).fill(0);
      for (let k = 0; k < n; k++) {
        if (k > 0) expect(idx[k]).toBeGreaterThanOrEqual(idx[k - 1]!);
        counts[idx[k]!]++;
      }
      for (let i = 0; i < len; i++) {
        const e = (n * w[i]!) / total;
        expect(counts[i]).toBeGreaterThanOrEqual(Math.floor(e - 1e-9));
        expect(counts[i]).toBeLessThanOrEqual(Math.ceil(e + 1e-9));
        if (w[i] === 0) expect(counts[i]).toBe(0);
      }
    }
  });
  it('rejects negative, non-finite or all-zero weights and bad counts with a ValueError', () => {
    expect(() => systematicResample([1, -1], 2)).toThrow(ValueError);
    expect(() => systematicResample([1, Number.NaN], 2)).toThrow(ValueError);
    expect(() => systematicResample([0, 0], 2)).toThrow(ValueError);
    expect(() => systematicResample([1], 0)).toThrow(ValueError);
    expect(() => systematicResample([1], 1.5)).toThrow(ValueError);
  });
});

function tinyRows(n: number, P: number, seed: number): KVRows {
  const rng = new Rng(seed);
  return {
    layers: 1,
    heads: 1,
    headDim: P,
    n,
    k: Float32Array.from({ length: n * P }, () => rng.normal()),
    v: Float32Array.from({ length: n * P }, () => rng.normal()),
    positions: Int32Array.from({ length: n }, (_, i) => 10 + i),
  };
}

describe('sampled rows', () => {
  it('gatherRows copies keys, values and positions of the indexed rows, repeats included', () => {
    const rows = tinyRows(5, 3, 1);
    const g = gatherRows(rows, [4, 0, 4]);
    expect(g.n).toBe(3);
    expect(Array.from(g.positions)).toEqual([14, 10, 14]);
    expect(Array.from(g.k.subarray(0, 3))).toEqual(Array.from(rows.k.subarray(12, 15)));
    expect(Array.from(g.v.subarray(3, 6))).toEqual(Array.from(rows.v.subarray(0, 3)));
    expect(Array.from(g.k.subarray(6, 9))).toEqual(Array.from(rows.k.subarray(12, 15)));
    expect(() => gatherRows(rows, [5])).toThrow(ValueError);
    expect(() => gatherRows(rows, [-1])).toThrow(ValueError);
  });
  it('mix 0 gives the rows back; mix 1 draws in proportion to the attention; between, the mixture', () => {
    const rows = tinyRows(8, 2, 2);
    const received = [0, 0, 0, 6, 0, 2, 0, 0];
    expect(Array.from(attentionSampledRows(rows, received, { mix: 0 }).k)).toEqual(Array.from(rows.k));
    const all = attentionSampledRows(rows, received, { mix: 1 });
    // 8 draws: 6 of row 3 and 2 of row 5
    expect(Array.from(all.positions)).toEqual([13, 13, 13, 13, 13, 13, 15, 15]);
    // mix 0.5 over 16 draws: weights 1/16 + 0.5·a/8 → row 3 gets 1 + 6 = 7 draws, row 5 gets 1 + 2 = 3, others 1
    const half = attentionSampledRows(rows, received, { mix: 0.5, n: 16 });
    const count = (pos: number) => Array.from(half.positions).filter((x) => x === pos).length;
    expect([10, 11, 12, 13, 14, 15, 16, 17].map(count)).toEqual([1, 1, 1, 7, 1, 3, 1, 1]);
    // no attention at all: uniform whatever the mix
    expect(Array.from(attentionSampledRows(rows, new Array(8).fill(0), { mix: 1 }).positions)).toEqual(
      Array.from(rows.positions),
    );
  });
  it('rejects a wrong length, a bad mix or bad attention with a ValueError', () => {
    const rows = tinyRows(4, 2, 3);
    expect(() => attentionSampledRows(rows, [1, 1, 1])).toThrow(ValueError);
    expect(() => attentionSampledRows(rows, [1, 1, 1, 1], { mix: 1.5 })).toThrow(ValueError);
    expect(() => attentionSampledRows(rows, [1, 1, 1, 1], { mix: -0.1 })).toThrow(ValueError);
    expect(() => attentionSampledRows(rows, [1, -1, 1, 1])).toThrow(ValueError);
    expect(() => attentionSampledRows(rows, [1, Number.POSITIVE_INFINITY, 1, 1])).toThrow(ValueError);
  });
  it('a low-rank basis from sampled rows reconstructs a rare, attended population better than a uniform one', () => {
    // 380 rows with energy in dimensions 0–3 (σ 4) and 20 rows with energy in dimensions 4–7 (σ 3):
    // a rank-4 uniform basis spends itself on the majority; the sampled one must find the minority's subspace.
    const rng = new Rng(5);
    const P = 12;
    const n = 400;
    const rare = (i: number) => i % 20 === 7;
    const x = new Float32Array(n * P);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < P; j++) {
        const big = rare(i) ? j >= 4 && j < 8 : j < 4;
        x[i * P + j] = rng.normal() * (big ? (rare(i) ? 3 : 4) : 0.05);
      }
    const rows: KVRows = { layers: 1, heads: 1, headDim: P, n, k: x, v: x, positions: new Int32Array(n) };
    const received = Array.from({ length: n }, (_, i) => (rare(i) ? 10 : 0.001));
    const sampled = attentionSampledRows(rows, received, { mix: 0.9 });
    const err = (basisRows: KVRows) => {
      const b = pca(basisRows.k, basisRows.n, P, { rank: 4, method: 'exact' });
      let num = 0;
      let den = 0;
      for (let i = 0; i < n; i++) {
        if (!rare(i)) continue;
        const c = Array.from({ length: P }, (_, j) => x[i * P + j]! - b.mean[j]!);
        const rec = new Array(P).fill(0);
        for (let r = 0; r < 4; r++) {
          let d = 0;
          for (let j = 0; j < P; j++) d += c[j]! * b.basis[r * P + j]!;
          for (let j = 0; j < P; j++) rec[j] += d * b.basis[r * P + j]!;
        }
        for (let j = 0; j < P; j++) {
          num += (c[j]! - rec[j]!) ** 2;
          den += x[i * P + j]! ** 2;
        }
      }
      return Math.sqrt(num / den);
    };
    const uniform = err(rows);
    const attended = err(sampled);
    expect(uniform).toBeGreaterThan(0.9);
    expect(attended).toBeLessThan(0.2);
  });
});

describe('received attention', () => {
  const { model, ids, dh } = tinyAttentionModel(4);
  const T = ids.length;
  it("equals the mean over layers and query heads of Σ_{t ≥ s + minOffset} p[t, s], from the model's queries and keys by hand", () => {
    const q = collectQueries(model, ids);
    const kv = collectKV(model, ids);
    for (const minOffset of [0, 3]) {
      const want = new Float64Array(T);
      for (let l = 0; l < 2; l++)
        for (let g = 0; g < 4; g++)
          for (let t = 0; t < T; t++) {
            const p = handAttentionRow(q, kv.k, dh, l, g, t);
            for (let s = 0; s <= t - minOffset; s++) want[s]! += p[s]! / 8;
          }
      const got = attentionReceived(model, ids, { minOffset });
      for (let s = 0; s < T; s++) expect(got[s]).toBeCloseTo(want[s]!, 5);
    }
  });
  it('sums to T with minOffset 0 and is zero once minOffset reaches T', () => {
    const a = attentionReceived(model, ids);
    expect(a.reduce((x, y) => x + y, 0)).toBeCloseTo(T, 4);
    expect(Array.from(attentionReceived(model, ids, { minOffset: T })).every((x) => x === 0)).toBe(true);
    expect(() => attentionReceived(model, ids, { minOffset: -1 })).toThrow(ValueError);
    expect(() => attentionReceived(model, [])).toThrow(ValueError);
  });
});
