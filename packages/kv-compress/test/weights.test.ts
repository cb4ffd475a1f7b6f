// Query-aware DP weights (weights.ts) and the weighted DP (dp.ts): brute force, direct float64 references,
// the model's own attention and output projection, and the calibration file's version 2 round trip.
import { nn, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { calibrate, derotate, fitPlan, project, segmentRows } from '../src/calibration.js';
import { collectKV } from '../src/collect.js';
import { allocateBits, type Group, makePlan, planError } from '../src/dp.js';
import { ChecksumError, KVFormatError, UnsupportedVersionError, ValueError } from '../src/errors.js';
import { calibrationFingerprint, decodeCache, encodeCache, readCalibration, writeCalibration } from '../src/format.js';
import { Rng } from '../src/linalg.js';
import { crc32 } from '../src/numeric.js';
import { type QuantType, quantizeGroup } from '../src/quant.js';
import { ropeRows } from '../src/rope.js';
import {
  attentionOutputMoments,
  collectQueries,
  componentWeights,
  type HeadMoments,
  observingStorage,
  outputProjectionMoments,
  QueryMoments,
  weightCalibration,
} from '../src/weights.js';
import { allTilings, handAttentionRow, lowRankRows, tinyAttentionModel } from './helpers.js';

describe('weighted DP', () => {
  const rng = new Rng(5);
  const n = 6;
  const r = 5;
  const d = new Float32Array(n * r).map((_, i) => rng.normal() * (3 - (i % r) * 0.5));
  // weights that reverse the variance order, so the weighted optimum differs from the plain one
  const w = Float64Array.from([0.2, 0.5, 1, 4, 9]);
  const sizes = [1, 2];
  const types: QuantType[] = ['int1', 'int2', 'fp8'];
  const all = allTilings(r, sizes, types);
  // float64 reference for a plan's weighted error: quantise each group (m tokens × size) as the codec does,
  // then weigh each column's squared reconstruction error
  const refError = (groups: Group[], m: number) => {
    let e = 0;
    const coded = new Set<number>();
    for (const g of groups) {
      if (g.type === 'none') continue;
      for (let j = g.start; j < g.start + g.size; j++) coded.add(j);
      for (let i0 = 0; i0 < n; i0 += m) {
        const rows = Math.min(m, n - i0);
        const x = new Float64Array(rows * g.size);
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < g.size; j++) x[i * g.size + j] = d[(i0 + i) * r + g.start + j]!;
        const back = new Float64Array(x.length);
        quantizeGroup(x, 0, x.length, g.type, undefined, 0, back, 0);
        for (let i = 0; i < x.length; i++) e += w[g.start + (i % g.size)]! * (x[i]! - back[i]!) ** 2;
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) if (!coded.has(j)) e += w[j]! * d[i * r + j]! ** 2;
    return e;
  };
  it('finds the brute-force optimum of the weighted error under every budget', () => {
    const scored = all.map((g) => ({ bits: makePlan(r, g).bitsPerToken, err: refError(g, 1) }));
    let differs = 0;
    for (const B of [0, 20, 33, 40, 66, 70, 100, 140]) {
      const brute = Math.min(...scored.filter((s) => s.bits <= B).map((s) => s.err));
      const res = allocateBits(d, n, r, { budgetBits: B, sizes, types, weights: w });
      expect(res.plan.bitsPerToken).toBeLessThanOrEqual(B);
      expect(res.error).toBeCloseTo(brute, 6);
      expect(refError(res.plan.groups, 1)).toBeCloseTo(res.error, 6);
      const plain = allocateBits(d, n, r, { budgetBits: B, sizes, types });
      if (JSON.stringify(plain.plan.groups) !== JSON.stringify(res.plan.groups)) differs++;
    }
    // the weights must change some choices, or this test would not tell weighted from plain
    expect(differs).toBeGreaterThan(0);
  });
  it('matches the brute force with side info shared over 2 tokens, and in reverse mode', () => {
    for (const B of [17, 34, 50, 90]) {
      const brute = Math.min(...all.filter((g) => makePlan(r, g, 2).bitsPerToken <= B).map((g) => refError(g, 2)));
      const res = allocateBits(d, n, r, { budgetBits: B, sizes, types, tokenGroup: 2, weights: w });
      expect(res.error).toBeCloseTo(brute, 6);
    }
    let energy = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) energy += w[j]! * d[i * r + j]! ** 2;
    const scored = all.map((g) => ({ bits: makePlan(r, g).bitsPerToken, err: refError(g, 1) }));
    for (const cap of [0.5, 0.2, 0.05]) {
      const brute = Math.min(...scored.filter((s) => s.err <= cap * cap * energy * (1 + 1e-12)).map((s) => s.bits));
      const res = allocateBits(d, n, r, { maxRelError: cap, sizes, types, weights: w });
      expect(res.energy).toBeCloseTo(energy, 6);
      expect(res.plan.bitsPerToken).toBe(brute);
    }
  });
  it('unit weights give the plain DP, and scaled weights scale the error only', () => {
    const plain = allocateBits(d, n, r, { budgetBits: 66, sizes, types });
    const ones = allocateBits(d, n, r, { budgetBits: 66, sizes, types, weights: new Float64Array(r).fill(1) });
    const three = allocateBits(d, n, r, { budgetBits: 66, sizes, types, weights: new Float64Array(r).fill(3) });
    expect(ones.plan).toEqual(plain.plan);
    expect(ones.error).toBeCloseTo(plain.error, 9);
    expect(three.plan).toEqual(plain.plan);
    expect(three.error).toBeCloseTo(3 * plain.error, 6);
  });
  it('reaches a heavily weighted trailing coordinate that a small budget would otherwise trim away', () => {
    // 24 coordinates, int2 groups of one with side info shared over 16 tokens (4 bits each): a 10-bit budget
    // codes two coordinates, and the plain DP only looks at the first 10 / 2 = 5
    const R = 24;
    const N = 32;
    const g = new Rng(9);
    const x = new Float32Array(N * R).map((_, i) => g.normal() * (2 - (i % R) / R));
    const wt = new Float64Array(R).fill(1);
    wt[R - 1] = 1000;
    const opts = { budgetBits: 10, sizes: [1], types: ['int2'] as QuantType[], tokenGroup: 16 };
    let brute = Number.POSITIVE_INFINITY;
    for (let a = -1; a < R; a++)
      for (let b = a + 1; b < R; b++) {
        const groups: Group[] = [a, b].filter((j) => j >= 0).map((j) => ({ start: j, size: 1, type: 'int2' }));
        brute = Math.min(brute, planError(x, N, R, groups, 16, wt));
      }
    const res = allocateBits(x, N, R, { ...opts, weights: wt });
    expect(res.plan.groups.some((gr) => gr.start === R - 1)).toBe(true);
    expect(res.error).toBeCloseTo(brute, 4);
  });
  it('planAt(b) is the optimal plan of every budget on the curve', () => {
    const res = allocateBits(d, n, r, { budgetBits: 100, sizes, types, weights: w, tokenGroup: 2 });
    for (const b of [0, 17, 34, 50, 90, 200]) {
      const plan = res.planAt(b);
      expect(plan.bitsPerToken * 2).toBeLessThanOrEqual(b + 1e-9);
      expect(refError(plan.groups, 2)).toBeCloseTo(res.curve[b]!, 6);
      expect(res.curve[b]).toBeCloseTo(
        allocateBits(d, n, r, { budgetBits: b / 2, sizes, types, weights: w, tokenGroup: 2 }).error,
        6,
      );
    }
  });
  it('rejects weights of the wrong length or sign with a ValueError', () => {
    expect(() => allocateBits(d, n, r, { budgetBits: 40, weights: [1, 1] })).toThrow(ValueError);
    expect(() => allocateBits(d, n, r, { budgetBits: 40, weights: [1, 1, -1, 1, 1] })).toThrow(ValueError);
    expect(() => planError(d, n, r, [], 1, [1, 1, 1, 1, Number.NaN])).toThrow(ValueError);
  });
});

describe('query moments', () => {
  const L = 2;
  const H = 2;
  const Hq = 4;
  const dh = 8;
  const T = 9;
  const P = L * Hq * dh;
  const rng = new Rng(11);
  const q = new Float32Array(T * P).map(() => rng.normal());
  const rotated = (src: Float32Array, o: number, pos: number) => {
    const v = Float32Array.from(src.subarray(o, o + dh));
    ropeRows(v, 1, dh, 0, 1, dh, [pos]);
    return v;
  };
  for (const minOffset of [0, 3]) {
    it(`equals the mean of R_Δ q qᵀ R_Δᵀ over causal pairs, brute force (minOffset ${minOffset})`, () => {
      const acc = new QueryMoments(L, H, Hq, dh, 10000, minOffset);
      acc.add(q, T);
      const got = acc.moments();
      const ref = new Float64Array(L * H * dh * dh);
      let pairs = 0;
      for (let t = 0; t < T; t++)
        for (let s = 0; s <= t - minOffset; s++) {
          pairs++;
          for (let l = 0; l < L; l++)
            for (let g = 0; g < Hq; g++) {
              const h = Math.floor(g / (Hq / H));
              const e = rotated(q, t * P + (l * Hq + g) * dh, t - s);
              const o = (l * H + h) * dh * dh;
              for (let a = 0; a < dh; a++) for (let b = 0; b < dh; b++) ref[o + a * dh + b]! += e[a]! * e[b]!;
            }
        }
      expect(acc.pairs).toBe(pairs);
      for (let i = 0; i < ref.length; i++) expect(got.blocks[i]).toBeCloseTo(ref[i]! / pairs, 5);
    });
  }
  it('gives the mean squared logit error of a key error: eᵀ M e = mean over pairs of ((R_t q)·(R_s e))²', () => {
    const acc = new QueryMoments(L, H, Hq, dh);
    acc.add(q, T);
    const m = acc.moments();
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++) {
        const e = new Float32Array(dh).map(() => rng.normal());
        let direct = 0;
        let pairs = 0;
        for (let t = 0; t < T; t++)
          for (let s = 0; s <= t; s++) {
            pairs++;
            const es = rotated(e, 0, s);
            for (let g = h * (Hq / H); g < (h + 1) * (Hq / H); g++) {
              const qt = rotated(q, t * P + (l * Hq + g) * dh, t);
              let dot = 0;
              for (let a = 0; a < dh; a++) dot += qt[a]! * es[a]!;
              direct += dot * dot;
            }
          }
        let quad = 0;
        const o = (l * H + h) * dh * dh;
        for (let a = 0; a < dh; a++) for (let b = 0; b < dh; b++) quad += e[a]! * m.blocks[o + a * dh + b]! * e[b]!;
        expect(quad).toBeCloseTo(direct / pairs, 3);
      }
  });
  it('rejects bad shapes and empty moments with a ValueError', () => {
    expect(() => new QueryMoments(L, 3, Hq, dh)).toThrow(ValueError);
    expect(() => new QueryMoments(L, H, Hq, 7)).toThrow(ValueError);
    expect(() => new QueryMoments(L, H, Hq, dh, 10000, -1)).toThrow(ValueError);
    expect(() => new QueryMoments(L, H, Hq, dh).add(q, T + 1)).toThrow(ValueError);
    expect(() => new QueryMoments(L, H, Hq, dh).moments()).toThrow(ValueError);
  });
});

describe('weights from a model', () => {
  const { model, ids, dh } = tinyAttentionModel(3);
  it("captured queries reproduce the model's own attention probabilities with collectKV's keys", () => {
    const probs: number[][] = [];
    const storage = observingStorage((_l, p) => void probs.push(Array.from(p.contiguous().dataSync())));
    model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), {
      cache: new nn.KVCache(storage),
    });
    const q = collectQueries(model, ids);
    const kv = collectKV(model, ids);
    const T = ids.length;
    // patched forward methods are removed again
    for (const b of model.blocks) expect(Object.hasOwn(b.attn.qProj, 'forward')).toBe(false);
    for (let l = 0; l < 2; l++)
      for (let g = 0; g < 4; g++)
        for (let t = 0; t < T; t++) {
          const p = handAttentionRow(q, kv.k, dh, l, g, t);
          for (let s = 0; s <= t; s++) expect(probs[l]![(g * T + t) * T + s]).toBeCloseTo(p[s]!, 4);
        }
  });
  it('attention-output moments: A = Σ p², B = Σ p²‖v_s − ō‖² from the attention recomputed by hand', () => {
    const q = collectQueries(model, ids);
    const kv = collectKV(model, ids);
    const T = ids.length;
    const minOffset = 2;
    const unit: HeadMoments = { layers: 2, heads: 2, headDim: dh, blocks: new Float64Array(2 * 2 * dh * dh).fill(1) };
    const got = attentionOutputMoments(model, [ids, ids.slice(0, 7)], unit, { minOffset });
    const A = new Float64Array(4);
    const B = new Float64Array(4);
    for (const len of [T, 7])
      for (let l = 0; l < 2; l++)
        for (let g = 0; g < 4; g++) {
          const h = g >> 1;
          for (let t = 0; t < len; t++) {
            const qt = Float32Array.from(q.subarray(t * 32 + (l * 4 + g) * dh, t * 32 + (l * 4 + g + 1) * dh));
            ropeRows(qt, 1, dh, 0, 1, dh, [t]);
            const logit = (s: number) => {
              let dot = 0;
              for (let a = 0; a < dh; a++) dot += qt[a]! * kv.k[s * 16 + (l * 2 + h) * dh + a]!;
              return dot / Math.sqrt(dh);
            };
            const ls = Array.from({ length: t + 1 }, (_, s) => logit(s));
            const mx = Math.max(...ls);
            const z = ls.reduce((acc, x) => acc + Math.exp(x - mx), 0);
            const p = ls.map((x) => Math.exp(x - mx) / z);
            const val = (s: number, a: number) => kv.v[s * 16 + (l * 2 + h) * dh + a]!;
            const o = Array.from({ length: dh }, (_, a) => p.reduce((acc, ps, s) => acc + ps * val(s, a), 0));
            for (let s = 0; s <= t - minOffset; s++) {
              A[l * 2 + h]! += p[s]! ** 2;
              B[l * 2 + h]! += p[s]! ** 2 * o.reduce((acc, oa, a) => acc + (val(s, a) - oa) ** 2, 0);
            }
          }
        }
    for (let b = 0; b < 4; b++) {
      expect(got.A[b]).toBeCloseTo(A[b]!, 4);
      expect(got.B[b]).toBeCloseTo(B[b]!, 4);
      // keys: M·B/(g·d); values: A·I
      expect(got.keys.blocks[b * dh * dh + 1]).toBeCloseTo(B[b]! / (2 * dh), 4);
      expect(got.values.blocks[b * dh * dh]).toBeCloseTo(A[b]!, 4);
      expect(got.values.blocks[b * dh * dh + 1]).toBe(0);
    }
  });
  it('output-projection moments give ‖Σ_g W_o,g e‖² summed over the query heads of a KV head', () => {
    const m = outputProjectionMoments(model);
    const rng = new Rng(4);
    for (let l = 0; l < 2; l++)
      for (let h = 0; h < 2; h++) {
        const e = Array.from({ length: dh }, () => rng.normal());
        // the model's own o_proj, one query head's slot at a time (bias removed)
        const oProj = model.blocks.at(l).attn.oProj;
        let direct = 0;
        for (const g of [2 * h, 2 * h + 1]) {
          const x = new Float32Array(16);
          x.set(e, g * dh);
          const y = oProj.forward(tensor(x, { shape: [1, 16] })).dataSync();
          const y0 = oProj.forward(tensor(new Float32Array(16), { shape: [1, 16] })).dataSync();
          for (let i = 0; i < 16; i++) direct += (y[i]! - y0[i]!) ** 2;
        }
        let quad = 0;
        const o = (l * 2 + h) * dh * dh;
        for (let a = 0; a < dh; a++) for (let b = 0; b < dh; b++) quad += e[a]! * m.blocks[o + a * dh + b]! * e[b]!;
        expect(quad).toBeCloseTo(direct, 4);
      }
  });
});

describe('component weights and weighted calibrations', () => {
  const dims = { layers: 2, heads: 2, headDim: 4 };
  const rows = lowRankRows({ ...dims, n: 200, rank: 16, noise: 0.1 });
  const cal = calibrate(rows);
  const rng = new Rng(21);
  // random symmetric PSD blocks A Aᵀ per (layer, head)
  const blocks = new Float64Array(2 * 2 * 16);
  for (let b = 0; b < 4; b++) {
    const A = Array.from({ length: 16 }, () => rng.normal());
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += A[i * 4 + k]! * A[j * 4 + k]!;
        blocks[b * 16 + i * 4 + j] = s;
      }
  }
  const m: HeadMoments = { ...dims, blocks };
  it('w_j = v_jᵀ M v_j with M the dense block-diagonal matrix, normalised to mean 1', () => {
    const seg = cal.segments[0]!;
    const { p, rank, basis } = seg.pca;
    const dense = new Float64Array(p * p);
    for (let b = 0; b < 4; b++)
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 4; j++) dense[(b * 4 + i) * p + b * 4 + j] = blocks[b * 16 + i * 4 + j]!;
    const raw = Array.from({ length: rank }, (_, c) => {
      let s = 0;
      for (let i = 0; i < p; i++)
        for (let j = 0; j < p; j++) s += basis[c * p + i]! * dense[i * p + j]! * basis[c * p + j]!;
      return s;
    });
    const mean = raw.reduce((a, x) => a + x, 0) / rank;
    const w = componentWeights(seg, m);
    for (const [c, x] of raw.entries()) expect(w[c]).toBeCloseTo(x / mean, 4);
  });
  it('the weighted plan wins on the weighted error, the plain one on the plain error, at the same budget', () => {
    const wcal = weightCalibration(cal, { keys: m, values: m });
    let differs = 0;
    for (const ratio of [2, 4, 8]) {
      const plain = fitPlan(cal, rows, { ratio }, { tokenGroup: 8 });
      const weighted = fitPlan(wcal, rows, { ratio }, { tokenGroup: 8 });
      cal.segments.forEach((seg, i) => {
        const x = segmentRows(derotate(rows, cal.ropeBase), seg);
        const d = project(seg.pca, x, rows.n, seg.pca.rank);
        const wts = wcal.segments[i]!.weights!;
        const a = plain.plans[i]!;
        const b = weighted.plans[i]!;
        expect(b.bitsPerToken).toBeLessThanOrEqual(Math.floor((seg.pca.p * 16) / ratio));
        expect(planError(d, rows.n, seg.pca.rank, b.groups, 8, wts)).toBeLessThanOrEqual(
          planError(d, rows.n, seg.pca.rank, a.groups, 8, wts) * (1 + 1e-9),
        );
        expect(planError(d, rows.n, seg.pca.rank, a.groups, 8)).toBeLessThanOrEqual(
          planError(d, rows.n, seg.pca.rank, b.groups, 8) * (1 + 1e-9),
        );
        if (JSON.stringify(a.groups) !== JSON.stringify(b.groups)) differs++;
      });
    }
    expect(differs).toBeGreaterThan(0);
    // one basis: a cache encoded with the weighted calibration's plan decodes with the plain calibration
    expect(calibrationFingerprint(wcal)).toBe(calibrationFingerprint(cal));
    const stream = encodeCache(rows, wcal, fitPlan(wcal, rows, { ratio: 8 }), { sinks: 4, window: 16 });
    expect(Array.from(decodeCache(stream, cal).v)).toEqual(Array.from(decodeCache(stream, wcal).v));
  });
  it("keyShare 'weighted' picks the K/V split with the least summed error, against every split run alone", () => {
    const wcal = weightCalibration(
      cal,
      { keys: m, values: { ...m, blocks: m.blocks.map((x) => 3 * x) } },
      { normalize: false },
    );
    const joint = fitPlan(wcal, rows, { ratio: 4 }, { tokenGroup: 4, keyShare: 'weighted' });
    const total = Math.floor((2 * 16 * 16) / 4);
    const errs = wcal.segments.map((seg) => {
      const x = segmentRows(derotate(rows, cal.ropeBase), seg);
      return { d: project(seg.pca, x, rows.n, seg.pca.rank), w: seg.weights!, rank: seg.pca.rank };
    });
    const err = (i: number, groups: Group[]) => planError(errs[i]!.d, rows.n, errs[i]!.rank, groups, 4, errs[i]!.w);
    const got = err(0, joint.plans[0]!.groups) + err(1, joint.plans[1]!.groups);
    expect(joint.plans[0]!.bitsPerToken + joint.plans[1]!.bitsPerToken).toBeLessThanOrEqual(total + 1e-9);
    // brute force over the split, in steps of a quarter bit per token (one bit per block of 4 tokens)
    let best = Number.POSITIVE_INFINITY;
    for (let bk = 0; bk <= total * 4; bk++) {
      const run = (i: number, bits: number) =>
        allocateBits(errs[i]!.d, rows.n, errs[i]!.rank, {
          budgetBits: (bits + 0.5) / 4,
          tokenGroup: 4,
          weights: errs[i]!.w,
        });
      best = Math.min(best, run(0, bk).error + run(1, total * 4 - bk).error);
    }
    expect(got).toBeCloseTo(best, 3);
    // not simply the even split
    const even = fitPlan(wcal, rows, { ratio: 4 }, { tokenGroup: 4 });
    expect(got).toBeLessThanOrEqual(err(0, even.plans[0]!.groups) + err(1, even.plans[1]!.groups) * (1 + 1e-9));
    expect(joint.plans[0]!.bitsPerToken).not.toBe(even.plans[0]!.bitsPerToken);
  }, 180_000); // heavy in float64: ≈ 35–50 s alone on a loaded 2-core machine, past the 60 s default under turbo's parallel suites
  it('calibration files: version 1 without weights, version 2 with them, both round-trip', () => {
    const v1 = writeCalibration(cal);
    expect(new DataView(v1.buffer).getUint16(4, true)).toBe(1);
    expect(readCalibration(v1).segments.every((s) => s.weights === undefined)).toBe(true);
    const wcal = weightCalibration(cal, { keys: m });
    const v2 = writeCalibration(wcal);
    expect(new DataView(v2.buffer).getUint16(4, true)).toBe(2);
    const back = readCalibration(v2);
    expect(Array.from(back.segments[0]!.weights!)).toEqual(Array.from(wcal.segments[0]!.weights!));
    // segments without weights store ones in a version-2 file
    expect(Array.from(back.segments[1]!.weights!)).toEqual(new Array(cal.segments[1]!.pca.rank).fill(1));
    expect(Array.from(back.segments[0]!.pca.basis)).toEqual(Array.from(cal.segments[0]!.pca.basis));
    expect(writeCalibration(back)).toEqual(v2);
    expect(calibrationFingerprint(back)).toBe(calibrationFingerprint(cal));
    // the weights survive a refit: the same plan from the file as from memory
    expect(fitPlan(back, rows, { ratio: 8 })).toEqual(fitPlan(wcal, rows, { ratio: 8 }));
  });
  it('rejects bad version-2 files with typed errors', () => {
    const v2 = writeCalibration(weightCalibration(cal, { keys: m }));
    const resign = (b: Uint8Array) => {
      new DataView(b.buffer).setUint32(b.length - 4, crc32(b, 0, b.length - 4), true);
      return b;
    };
    const future = Uint8Array.from(v2);
    new DataView(future.buffer).setUint16(4, 3, true);
    expect(() => readCalibration(resign(future))).toThrow(UnsupportedVersionError);
    // version 2 without the weights flag, version 1 with it
    const noFlag = Uint8Array.from(v2);
    noFlag[6]! &= ~4;
    expect(() => readCalibration(resign(noFlag))).toThrow(KVFormatError);
    const v1Flag = Uint8Array.from(writeCalibration(cal));
    v1Flag[6]! |= 4;
    expect(() => readCalibration(resign(v1Flag))).toThrow(KVFormatError);
    // a negative weight (the last weight of the last segment sits right before the CRC)
    const neg = Uint8Array.from(v2);
    new DataView(neg.buffer).setFloat32(neg.length - 8, -1, true);
    expect(() => readCalibration(resign(neg))).toThrow(KVFormatError);
    const flipped = Uint8Array.from(v2);
    flipped[flipped.length - 6]! ^= 1;
    expect(() => readCalibration(flipped)).toThrow(ChecksumError);
    for (const cut of [10, 30, v2.length - 12, v2.length - 1])
      expect(() => readCalibration(v2.subarray(0, cut))).toThrow(KVFormatError);
  });
  it('rejects moments of another shape', () => {
    expect(() => weightCalibration(cal, { keys: { ...m, heads: 1 } })).toThrow(ValueError);
  });
});
