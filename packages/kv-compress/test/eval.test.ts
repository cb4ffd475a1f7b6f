import { describe, expect, it } from 'vitest';
import { attentionError, pairedDiff, pearson, wilson } from '../src/eval/evaluate.js';
import { errorQualityPearson, type MethodRow, mergeResults, type SuiteResult } from '../src/eval/suite.js';
import { kvLookup, passkey, trainingSequence, VOCAB, variableTracking } from '../src/eval/tasks.js';
import { Rng } from '../src/linalg.js';

describe('synthetic retrieval tasks', () => {
  const rng = new Rng(5);
  it('key–value lookup answers are the value that follows the key in the context', () => {
    for (let i = 0; i < 20; i++) {
      const s = kvLookup(rng, { pairs: 12, maxFiller: 8, queries: 4 });
      for (const q of s.queries) {
        const at = s.context.indexOf(q.prompt[1]!);
        expect(at).toBeGreaterThan(0);
        expect(s.context[at + 1]).toBe(q.answer[0]);
        expect(s.context.lastIndexOf(q.prompt[1]!)).toBe(at); // keys are unique
      }
    }
  });
  it('the passkey sits at the requested depth', () => {
    for (const depth of [0, 0.5, 1]) {
      const s = passkey(rng, { length: 100, depth });
      const at = s.context.indexOf(VOCAB.passkey);
      expect(at).toBe(1 + Math.round(depth * 100));
      expect(s.context.slice(at + 1, at + 4)).toEqual(s.queries[0]!.answer);
    }
  });
  it('variable tracking resolves the chain to its bound value', () => {
    for (let i = 0; i < 20; i++) {
      const s = variableTracking(rng, { hops: 2, chains: 3 });
      let name = s.queries[0]!.prompt[1]!;
      for (;;) {
        const at = s.context.indexOf(name);
        const next = s.context[at + 1]!;
        if (next === VOCAB.assign) name = s.context[at + 2]!;
        else {
          expect(next).toBe(s.queries[0]!.answer[0]);
          break;
        }
      }
    }
  });
  it('training targets predict the next token and only mark answers', () => {
    for (let i = 0; i < 20; i++) {
      const { ids, targets } = trainingSequence(rng, 128);
      expect(ids.length).toBe(128);
      for (let t = 0; t < 127; t++) if (targets[t] !== -100) expect(targets[t]).toBe(ids[t + 1]);
      expect(targets.some((x) => x !== -100)).toBe(true);
    }
  });
});

describe('metrics', () => {
  it('attention-output error and Pearson r match hand-computed values', () => {
    expect(attentionError([Float64Array.from([3, 4])], [Float64Array.from([3, 4.5])])).toBeCloseTo(0.1, 12);
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    // Wilson: 8 of 10 → [0.490, 0.943] (hand-computed from the closed form at z = 1.96)
    const [lo, hi] = wilson(8, 10);
    expect(lo).toBeCloseTo(0.4902, 4);
    expect(hi).toBeCloseTo(0.9433, 4);
    // paired: differences (−1, 0, 0, 0): mean −0.25, sd 0.5, half-width 1.96·0.5/2 = 0.49, clamped at −1
    const d = pairedDiff([1, 1, 0, 1], [0, 1, 0, 1]);
    expect(d.diff).toBeCloseTo(-0.25, 12);
    expect(d.hi).toBeCloseTo(0.24, 12);
    expect(d.lo).toBeCloseTo(-0.74, 12);
    expect(pairedDiff([1, 1], [0, 1]).lo).toBeGreaterThanOrEqual(-1);
  });
});

describe('joining split evaluations', () => {
  // a minimal row: only what mergeResults and the error ↔ quality r read
  const row = (method: string, keyErr?: number, valueErr?: number, pplRatio = 1) =>
    ({ method, keyErr, valueErr, pplRatio }) as unknown as MethodRow;
  const timings = (context: number) => ({
    context,
    prefillMs: context,
    decompressMs: 1,
    speedup: context,
    encodeMBs: 1,
    decodeMBs: 1,
    calibrationMs: 1,
    dpMs: 1,
  });
  it('keeps the first row of each method, the first timings present, and recomputes r over every KVTC ratio', () => {
    const a: SuiteResult = {
      rows: [row('exact'), row('kvtc 4×', 0.1, 0.1, 1.01), row('kvtc 16×', 0.2, 0.4, 1.1)],
      timings: timings(0),
      errorPplPearson: Number.NaN,
    };
    const b: SuiteResult = {
      rows: [row('exact', 9, 9, 9), row('kvtc 64×', 0.5, 0.7, 3), row('kvtc 16× no sinks', 0.2, 0.4, 5)],
      timings: timings(1024),
      errorPplPearson: Number.NaN,
    };
    const m = mergeResults([a, b]);
    expect(m.rows.map((r) => r.method)).toEqual(['exact', 'kvtc 4×', 'kvtc 16×', 'kvtc 64×', 'kvtc 16× no sinks']);
    expect(m.rows[0]!.pplRatio).toBe(1); // the first exact row, not the second
    expect(m.timings.context).toBe(1024);
    // float64 reference over the three plain KVTC rows (the ablation row is not one of them)
    const x = [0.1, 0.3, 0.6];
    const y = [Math.log(1.01), Math.log(1.1), Math.log(3)];
    const mx = (x[0]! + x[1]! + x[2]!) / 3;
    const my = (y[0]! + y[1]! + y[2]!) / 3;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < 3; i++) {
      sxy += (x[i]! - mx) * (y[i]! - my);
      sxx += (x[i]! - mx) ** 2;
      syy += (y[i]! - my) ** 2;
    }
    expect(m.errorPplPearson).toBeCloseTo(sxy / Math.sqrt(sxx * syy), 12);
    // restricted to targets that leave fewer than three rows: undefined, not a number
    expect(errorQualityPearson(m.rows, [4, 16])).toBeNaN();
    expect(() => mergeResults([])).toThrow(/no results/);
  });
});
