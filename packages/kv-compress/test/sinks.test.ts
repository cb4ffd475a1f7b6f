// Attention-sink diagnostics (src/eval/sinks.ts): per-head mass on the first positions against the softmax
// recomputed by hand in float64 from the model's own queries and keys, key/value norms against the collected
// rows, the uniform baseline and Gu et al.'s sink-head share against hand-derived values, and bad input.
import { manualSeed, nn } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { collectKV } from '../src/collect.js';
import { ValueError } from '../src/errors.js';
import { evaluationSamples, evaluationTextSequences, sampleSequence, sinkStats } from '../src/eval/sinks.js';
import { RETRIEVAL_SUITE, suiteContext } from '../src/eval/suite.js';
import { encodeText, FUSED_VOCAB_SIZE } from '../src/eval/tasks.js';
import { collectQueries } from '../src/weights.js';
import { handAttentionRow, tinyAttentionModel } from './helpers.js';

describe('sinkStats', () => {
  const { model, ids, dh } = tinyAttentionModel(21);
  const ids2 = [3, 3, 9, 1, 0, 12, 7, 7, 2, 5];

  /** Hand masses per (layer, query head) over the given query positions of each sequence. */
  function hand(seqs: { ids: number[]; at: number[] }[], sinks: number) {
    const sum = Array.from({ length: 8 }, () => ({ sink: 0, first: 0, self: 0 }));
    let n = 0;
    for (const s of seqs) {
      const q = collectQueries(model, s.ids);
      const kv = collectKV(model, s.ids);
      for (const t of s.at) {
        n++;
        for (let l = 0; l < 2; l++)
          for (let g = 0; g < 4; g++) {
            const p = handAttentionRow(q, kv.k, dh, l, g, t);
            const e = sum[l * 4 + g]!;
            for (let j = 0; j < Math.min(sinks, t + 1); j++) e.sink += p[j]!;
            e.first += p[0]!;
            e.self += p[t]!;
          }
      }
    }
    return sum.map((e) => ({ sink: e.sink / n, first: e.first / n, self: e.self / n }));
  }

  it('mass on the sinks, on the first token and on itself equals the hand softmax, pooled over sequences', () => {
    const at1 = Array.from({ length: ids.length - 4 }, (_, j) => 4 + j);
    const at2 = [1, 2, 6, 9];
    const s = sinkStats(model, [{ ids }, { ids: ids2, at: at2 }]);
    const h = hand(
      [
        { ids, at: at1 },
        { ids: ids2, at: at2 },
      ],
      4,
    );
    expect(s.queries).toBe(at1.length + at2.length);
    expect(s.heads).toHaveLength(8);
    s.heads.forEach((x, i) => {
      expect([x.layer, x.head]).toEqual([Math.floor(i / 4), i % 4]);
      expect(x.sinkMass).toBeCloseTo(h[i]!.sink, 5);
      expect(x.firstMass).toBeCloseTo(h[i]!.first, 5);
      expect(x.selfMass).toBeCloseTo(h[i]!.self, 5);
      // the first token is one of the sinks
      expect(x.sinkMass).toBeGreaterThanOrEqual(x.firstMass - 1e-7);
    });
    // a sharper test than the mean: one sequence, other sinks count
    const s2 = sinkStats(model, [{ ids: ids2, at: [7] }], { sinks: 2 });
    const h2 = hand([{ ids: ids2, at: [7] }], 2);
    s2.heads.forEach((x, i) => {
      expect(x.sinkMass).toBeCloseTo(h2[i]!.sink, 5);
    });
  });

  it('the uniform baseline is the mean of min(s, t+1)/(t+1) and 1/(t+1) over the counted queries', () => {
    const s = sinkStats(model, [{ ids }, { ids: ids2, at: [0, 5] }]);
    // ids: T = 12, queries t = 4..11; ids2: t = 0 (1 and 1), t = 5 (4/6 and 1/6)
    let us = 1 + 4 / 6;
    let uf = 1 + 1 / 6;
    for (let t = 4; t < 12; t++) {
      us += 4 / (t + 1);
      uf += 1 / (t + 1);
    }
    expect(s.uniformSinkMass).toBeCloseTo(us / 10, 12);
    expect(s.uniformFirstMass).toBeCloseTo(uf / 10, 12);
  });

  it('the first query sees only the first token: every head puts all its mass there', () => {
    const s = sinkStats(model, [{ ids, at: [0] }]);
    for (const x of s.heads) {
      expect(x.firstMass).toBeCloseTo(1, 6);
      expect(x.sinkMass).toBeCloseTo(1, 6);
      expect(x.selfMass).toBeCloseTo(1, 6);
    }
    expect(s.sinkRate).toBe(1);
  });

  it("the sink-head share counts the heads whose first-token mass exceeds ε (Gu et al.'s Sink₁^ε)", () => {
    const h = hand([{ ids, at: Array.from({ length: 8 }, (_, j) => 4 + j) }], 4).map((x) => x.first);
    const sorted = [...h].sort((a, b) => a - b);
    // ε halfway between the 3rd and 4th largest masses: exactly three heads above it
    const eps = (sorted[4]! + sorted[5]!) / 2;
    expect(sorted[5]! - sorted[4]!).toBeGreaterThan(1e-4);
    expect(sinkStats(model, [{ ids }], { epsilon: eps }).sinkRate).toBe(3 / 8);
  });

  it('key and value norms of the first position, the sinks and the rest match the collected rows', () => {
    const seqs = [ids, ids2];
    const s = sinkStats(
      model,
      seqs.map((x) => ({ ids: x })),
      { sinks: 3 },
    );
    expect(s.norms).toHaveLength(4);
    for (const n of s.norms) {
      const acc = { kf: 0, ks: 0, kr: 0, vf: 0, vs: 0, vr: 0, ns: 0, nr: 0 };
      for (const x of seqs) {
        const r = collectKV(model, x);
        const P = r.layers * r.heads * r.headDim;
        for (let t = 0; t < r.n; t++) {
          const off = t * P + (n.layer * r.heads + n.kvHead) * r.headDim;
          let k2 = 0;
          let v2 = 0;
          for (let j = 0; j < r.headDim; j++) {
            k2 += r.k[off + j]! ** 2;
            v2 += r.v[off + j]! ** 2;
          }
          if (t === 0) {
            acc.kf += Math.sqrt(k2);
            acc.vf += Math.sqrt(v2);
          }
          if (t < 3) {
            acc.ks += Math.sqrt(k2);
            acc.vs += Math.sqrt(v2);
            acc.ns++;
          } else {
            acc.kr += Math.sqrt(k2);
            acc.vr += Math.sqrt(v2);
            acc.nr++;
          }
        }
      }
      expect(n.keyFirst).toBeCloseTo(acc.kf / 2, 5);
      expect(n.valueFirst).toBeCloseTo(acc.vf / 2, 5);
      expect(n.keySinks).toBeCloseTo(acc.ks / acc.ns, 5);
      expect(n.valueSinks).toBeCloseTo(acc.vs / acc.ns, 5);
      expect(n.keyRest).toBeCloseTo(acc.kr / acc.nr, 5);
      expect(n.valueRest).toBeCloseTo(acc.vr / acc.nr, 5);
    }
  });

  it('rejects bad options and sequences with a ValueError', () => {
    expect(() => sinkStats(model, [{ ids }], { sinks: 0 })).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids }], { sinks: 1.5 })).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids }], { epsilon: 1 })).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids }], { epsilon: Number.NaN })).toThrow(ValueError);
    expect(() => sinkStats(model, [])).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids: [] }])).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids: [1, 20] }])).toThrow(/vocabulary/);
    expect(() => sinkStats(model, [{ ids: [1, -1] }])).toThrow(ValueError);
    expect(() => sinkStats(model, [{ ids, at: [12] }])).toThrow(/outside/);
    expect(() => sinkStats(model, [{ ids, at: [0.5] }])).toThrow(ValueError);
  });
});

describe('evaluation sequences', () => {
  it('answer positions are the positions whose next token is an answer, in query order', () => {
    const smp = evaluationSamples({ kv: 3, passkey: 2, vt: 2 });
    expect([smp.kv.length, smp.passkey.length, smp.vt.length]).toEqual([3, 2, 2]);
    for (const s of [...smp.kv, ...smp.passkey, ...smp.vt]) {
      const a = sampleSequence(s, 'answer');
      const want = s.queries.flatMap((q) => q.answer);
      expect(Array.from(a.at!, (t) => a.ids[t + 1])).toEqual(want);
      expect(a.ids.length).toBe(
        s.context.length + s.queries.reduce((n, q) => n + q.prompt.length + q.answer.length, 0),
      );
      const c = sampleSequence(s, 'context', 4);
      expect(Array.from(c.at!)).toEqual(Array.from({ length: s.context.length - 4 }, (_, j) => 4 + j));
    }
    // the suite's draws are seeded: the same counts give the same samples
    expect(evaluationSamples({ kv: 3, passkey: 2, vt: 2 })).toEqual(smp);
  });
  it("are the samples and text documents runSuite evaluates (suiteContext's, RETRIEVAL_SUITE's sizes)", () => {
    manualSeed(1);
    const model = new nn.CausalLM({ vocabSize: FUSED_VOCAB_SIZE, dModel: 16, nLayers: 1, nHeads: 2, dFF: 16 });
    model.eval();
    const text = encodeText('It was the best of times, it was the worst of times. '.repeat(20));
    const n = { kv: 7, passkey: 13, vt: 5 };
    const ctx = suiteContext(model, { ...RETRIEVAL_SUITE, samples: n, text });
    const smp = evaluationSamples(n);
    expect(smp.kv).toEqual(ctx.tasks[0]!.samples);
    expect(smp.passkey).toEqual(ctx.tasks[1]!.samples);
    expect(smp.vt).toEqual(ctx.tasks[2]!.samples);
    expect(evaluationTextSequences(text).map((d) => Array.from(d.ids))).toEqual(ctx.textDocs.map((d) => d.context));
  });
});
