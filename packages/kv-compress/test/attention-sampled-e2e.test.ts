import { describe, expect, it } from 'vitest';
import { calibrate, fitPlan } from '../src/calibration.js';
import { collectKV, concatRows } from '../src/collect.js';
import { ValueError } from '../src/errors.js';
import { type MethodRow, runSuite, type SuiteOptions } from '../src/eval/suite.js';
import { trainingSequence } from '../src/eval/tasks.js';
import { decodeCache, encodeCache, sliceRows } from '../src/format.js';
import { chunkBytes, roundTrip } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { attentionReceived, attentionSampledRows, systematicResample } from '../src/row-sampling.js';
import { tinySuite } from './helpers.js';

// the suite's smallest set-up (test/helpers.ts)
const { model, base: tiny } = tinySuite(1);

describe('attention-sampled rows through the evaluation suite', () => {
  // one sample per task, short contexts, two short calibration sequences, only the 16× rows: enough to run the
  // sampled row's whole path (received attention → draws → PCA → DP → live KVTC cache → retrieval) quickly
  const base: SuiteOptions = {
    ...tiny,
    ratios: [16],
    samples: { kv: 1, passkey: 1, vt: 1 },
    methods: /^kvtc 16×( attention-sampled)?$/,
  };
  const row = (rows: MethodRow[], name: string) => {
    const r = rows.find((x) => x.method === name);
    expect(r, name).toBeDefined();
    return r!;
  };
  const same = (a: MethodRow, b: MethodRow) =>
    [a.keyErr, a.valueErr, a.ratio, a.attnErr, a.nll].every(
      (x, i) => x === [b.keyErr, b.valueErr, b.ratio, b.attnErr, b.nll][i],
    );

  it('mix 0 reproduces the uniform row exactly; the default mix changes the calibration', () => {
    // mix 0: uniform weights, n draws of n rows → every row once, in order, so the same PCA, DP and cache
    const r0 = runSuite(model, { ...base, attentionMix: 0 }).rows;
    const u0 = row(r0, 'kvtc 16×');
    const s0 = row(r0, 'kvtc 16× attention-sampled');
    expect(same(u0, s0)).toBe(true);
    // the option reaches calibration: at 0.9 the rows (and so the reconstruction errors) differ from uniform
    const r9 = runSuite(model, { ...base, attentionMix: 0.9 }).rows;
    const u9 = row(r9, 'kvtc 16×');
    const s9 = row(r9, 'kvtc 16× attention-sampled');
    expect(same(u9, u0)).toBe(true); // the uniform row does not depend on the mix
    expect(s9.keyErr === u9.keyErr && s9.valueErr === u9.valueErr).toBe(false);
    // both reconstruct held-out rows better than the PCA mean alone
    for (const r of [u9, s9]) {
      expect(r.keyErr!).toBeLessThan(1);
      expect(r.valueErr!).toBeLessThan(1);
      expect(Number.isFinite(r.attnErr)).toBe(true);
    }
  });

  it('a mix outside [0, 1] is a ValueError', () => {
    expect(() => runSuite(model, { ...base, attentionMix: 1.5 })).toThrow(ValueError);
    expect(() => runSuite(model, { ...base, attentionMix: -0.1 })).toThrow(ValueError);
  });
  it('zero or fractional calibration sequences are a ValueError, not a TypeError from an empty calibration', () => {
    expect(() => runSuite(model, { ...base, calibrationSequences: 0 })).toThrow(ValueError);
    expect(() => runSuite(model, { ...base, calibrationSequences: 1.5 })).toThrow(ValueError);
  });
  it('a compression target ≤ 1 or not finite is a ValueError before any calibration', () => {
    for (const bad of [1, 0.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => runSuite(model, { ...base, ratios: [16, bad] }), String(bad)).toThrow(/ratios: .*above 1/);
  });
});

describe('an attention-sampled calibration, a cache at 16× and back', () => {
  const sinks = 4;
  const window = 8;
  const mix = 0.9;
  // calibration rows as the suite collects them: sinks left out, received attention from a window on
  const rng = new Rng(17);
  const docs = [0, 1].map(() => trainingSequence(rng, 48).ids);
  const parts = docs.map((ids) => {
    const r = collectKV(model, ids);
    return sliceRows(r, sinks, r.n);
  });
  const calRows = concatRows(parts);
  const received = docs.flatMap((ids) => Array.from(attentionReceived(model, ids, { minOffset: window })).slice(sinks));
  const sampled = attentionSampledRows(calRows, received, { mix });
  const cal = calibrate(sampled, { mode: 'cross-layer' });
  const plan = fitPlan(cal, sampled, { ratio: 16 }, { tokenGroup: 16 });

  it('draws the rows of the hand-written mixture (1 − mix)/n + mix·aᵢ/Σa', () => {
    const n = calRows.n;
    expect(received.length).toBe(n);
    const total = received.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(0);
    const idx = systematicResample(
      received.map((a) => (1 - mix) / n + (mix * a) / total),
      n,
    );
    expect(sampled.n).toBe(n);
    const P = calRows.layers * calRows.heads * calRows.headDim;
    for (let j = 0; j < n; j++) {
      const i = idx[j]!;
      expect(sampled.positions[j]).toBe(calRows.positions[i]);
      expect(sampled.k.subarray(j * P, (j + 1) * P)).toEqual(calRows.k.subarray(i * P, (i + 1) * P));
      expect(sampled.v.subarray(j * P, (j + 1) * P)).toEqual(calRows.v.subarray(i * P, (i + 1) * P));
    }
    // the draws are not the uniform ones: some row repeats (the attention is far from flat on a causal model)
    expect(new Set(idx).size).toBeLessThan(n);
  });

  it('meets the stated ratio and decodes through the container exactly as through the codec alone', () => {
    const P = calRows.layers * calRows.heads * calRows.headDim;
    // every segment's DP budget is p·16/16 bits per token (cross-layer: one K and one V segment of p = P)
    expect(plan.plans.length).toBe(2);
    for (const p of plan.plans) expect(p.bitsPerToken).toBeLessThanOrEqual((P * 16) / 16);
    // a held-out sequence: 4 sinks, 32 compressed tokens (two whole token groups), 8 raw window tokens
    const held = collectKV(model, trainingSequence(new Rng(99), sinks + 32 + window).ids);
    const T = 32;
    // fp16 bytes of the compressed tokens' keys and values over their coded bytes (side info included)
    expect((T * P * 2 * 2) / chunkBytes(plan, T)).toBeGreaterThanOrEqual(16 * 0.99);
    const bytes = encodeCache(held, cal, plan, { sinks, window });
    const back = decodeCache(bytes, cal);
    expect(back.n).toBe(held.n);
    expect(Array.from(back.positions)).toEqual(Array.from(held.positions));
    // the middle: what roundTrip (encodeChunk + ChunkDecoder, no container) gives for the same rows
    const mid = roundTrip(cal, plan, sliceRows(held, sinks, sinks + T));
    expect(back.k.subarray(sinks * P, (sinks + T) * P)).toEqual(mid.k);
    expect(back.v.subarray(sinks * P, (sinks + T) * P)).toEqual(mid.v);
    // and the codec did compress: the middle is not the input
    expect(mid.k).not.toEqual(held.k.subarray(sinks * P, (sinks + T) * P));
    // sinks and window are stored raw as fp16: within half an fp16 ulp (relative 2⁻¹¹) of the input
    for (const [from, to] of [
      [0, sinks],
      [sinks + T, held.n],
    ] as const)
      for (const kind of ['k', 'v'] as const)
        for (let i = from * P; i < to * P; i++) {
          const x = held[kind][i]!;
          expect(Math.abs(back[kind][i]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 2 ** -24);
        }
  });
});
