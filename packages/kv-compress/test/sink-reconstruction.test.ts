// Does the codec keep the sinks (src/eval/sinks.ts: sinkReconstruction)? A planted outlier key at position 0 that a
// basis calibrated without it cannot represent (hand-derived masses: e^15/(e^15 + t) exact, 1/(t + 1) after the
// codec), the same outlier under a basis that includes it, the identity codec, the masses and output errors
// against a float64 hand softmax over the cache's mix of reconstructed and raw keys, the suite's plans against
// runSuite's rows, and bad input.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { calibrate, derotate, fitPlan, type KVRows, type KvtcPlan } from '../src/calibration.js';
import { collectKV, concatRows } from '../src/collect.js';
import { makePlan } from '../src/dp.js';
import { ValueError } from '../src/errors.js';
import {
  type SinkProbe,
  sinkReconstruction,
  sinkReconstructionFromRows,
  sinkStats,
  suiteKvtc,
} from '../src/eval/sinks.js';
import { relFrobenius, runSuite, type SuiteOptions, suiteContext } from '../src/eval/suite.js';
import { sliceRows } from '../src/format.js';
import { roundTrip } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { collectQueries } from '../src/weights.js';
import { handAttentionRow, tinyAttentionModel, tinySuite } from './helpers.js';

/** One layer, one KV head of 4, no RoPE: keys and values of the calibration live in span(e0, e1). */
function inPlane(rng: Rng, n: number): KVRows {
  const k = new Float32Array(n * 4);
  const v = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    k.set([1 + rng.normal(), rng.normal(), 0, 0], i * 4);
    v.set([rng.normal(), 2 + rng.normal(), 0, 0], i * 4);
  }
  return { layers: 1, heads: 1, headDim: 4, n, k, v, positions: Int32Array.from({ length: n }, (_, i) => i) };
}

describe('a planted outlier sink', () => {
  const T = 24;
  // position 0: a key along e2 and a value along e3, nowhere in the calibration's plane; the rest in the plane
  const rows = inPlane(new Rng(3), T);
  rows.k.set([0, 0, 10, 0], 0);
  rows.v.set([0, 0, 0, 5], 0);
  // every query looks along e2: logit 3·10/√4 = 15 on position 0, 0 on every in-plane key
  const queries = new Float32Array(T * 4);
  for (let t = 0; t < T; t++) queries[t * 4 + 2] = 3;
  const probe: SinkProbe = { queries, rows };
  const attn = { nHeads: 1, rope: false };
  // every token coded as soon as it is seen: query t reads positions 0..t all reconstructed
  const o = { window: 0, every: 1 };
  const plan = (p: number, width: number): KvtcPlan => {
    const b = makePlan(p, [{ start: 0, size: width, type: 'fp8' }], 1);
    return { targetRatio: 0, plans: [b, { ...b }] };
  };
  const at = Array.from({ length: T - 4 }, (_, j) => 4 + j);
  const mean = (f: (t: number) => number) => at.reduce((a, t) => a + f(t), 0) / at.length;

  it('a basis calibrated without it loses it: position-0 error ≈ 1 and the sink mass collapses to uniform', () => {
    const cal = calibrate(inPlane(new Rng(11), 200), { rope: false });
    const r = sinkReconstructionFromRows([probe], attn, { cal, plan: plan(4, 2) }, o);
    const kv = r.kv[0]!;
    // x̂₀ = μ + B Bᵀ(x₀ − μ) stays in the plane: the whole off-plane vector is the error
    expect(kv.key.first.rel).toBeGreaterThan(0.99);
    expect(kv.key.first.rel).toBeLessThan(1.02);
    expect(kv.value.first.rel).toBeGreaterThan(0.99);
    // in-plane rows come back up to FP8 rounding of two coefficients
    expect(kv.key.rest.rel).toBeLessThan(0.1);
    expect(kv.value.rest.rel).toBeLessThan(0.1);
    expect(kv.key.nextSinks.rel).toBeLessThan(0.1);
    expect(kv.key.first.positions).toBe(1);
    expect(kv.key.nextSinks.positions).toBe(3);
    expect(kv.key.rest.positions).toBe(T - 4);
    const h = r.heads[0]!;
    expect(r.queries).toBe(at.length);
    expect(h.firstMass).toBeCloseTo(
      mean((t) => Math.exp(15) / (Math.exp(15) + t)),
      9,
    );
    // every reconstructed key is orthogonal to the query: uniform attention over 0..t
    expect(h.firstMassHat).toBeCloseTo(
      mean((t) => 1 / (t + 1)),
      5,
    );
    expect(h.sinkMassHat).toBeCloseTo(
      mean((t) => 4 / (t + 1)),
      5,
    );
    expect(h.sinkHead).toBe(true);
    expect(r.summary.sinkHeads).toBe(1);
    // the exact output is v₀ = 5·e3; the codec's is the mean of in-plane values: the whole output is lost
    expect(h.outputErr).toBeGreaterThan(1);
    // compressing the sinks alone already does it
    expect(h.outputErrSinksOnly).toBeGreaterThan(1);
  });

  it('a basis that includes the sink direction keeps it, and the mass with it', () => {
    const withSink = inPlane(new Rng(11), 200);
    for (let i = 0; i < 200; i += 10) {
      withSink.k.set([0, 0, 10, 0], i * 4);
      withSink.v.set([0, 0, 0, 5], i * 4);
    }
    const cal = calibrate(withSink, { rope: false });
    const r = sinkReconstructionFromRows([probe], attn, { cal, plan: plan(4, 4) }, o);
    expect(r.kv[0]!.key.first.rel).toBeLessThan(0.1);
    expect(r.kv[0]!.value.first.rel).toBeLessThan(0.1);
    const h = r.heads[0]!;
    expect(Math.abs(h.firstMassHat - h.firstMass)).toBeLessThan(0.02);
    expect(h.outputErr).toBeLessThan(0.1);
  });

  it('the identity codec: no error, the same masses', () => {
    const r = sinkReconstructionFromRows([probe], attn, (x) => ({ ...x, k: x.k.slice(), v: x.v.slice() }), o);
    for (const c of ['first', 'nextSinks', 'rest'] as const) {
      expect(r.kv[0]!.key[c].rel).toBe(0);
      expect(r.kv[0]!.value[c].err).toBe(0);
    }
    const h = r.heads[0]!;
    expect(h.firstMassHat).toBe(h.firstMass);
    expect(h.sinkMassHat).toBe(h.sinkMass);
    expect(h.outputErr).toBe(0);
  });

  it('queries whose window still holds position 0 raw are skipped, not counted', () => {
    const cal = calibrate(inPlane(new Rng(11), 200), { rope: false });
    // window 8, chunks of 4: query t reads [0, ⌊(t + 1 − 8)/4⌋·4) reconstructed, so t ≥ 11 count
    const r = sinkReconstructionFromRows([probe], attn, { cal, plan: plan(4, 2) }, { window: 8, every: 4 });
    expect(r.queries).toBe(T - 11);
    expect(r.skipped).toBe(11 - 4);
    const counted = Array.from({ length: T - 11 }, (_, j) => 11 + j);
    const uniform = counted.reduce((a, t) => a + 1 / (t + 1), 0) / counted.length;
    expect(r.heads[0]!.firstMassHat).toBeCloseTo(uniform, 5);
  });
});

describe('sinkReconstruction on a model', () => {
  const { model, ids, dh } = tinyAttentionModel(21);
  const rng = new Rng(5);
  const doc = (n: number) => Array.from({ length: n }, () => rng.int(20));
  const calRows = concatRows([doc(40), doc(40), doc(40)].map((x) => collectKV(model, x)));
  const cal = calibrate(calRows);
  const plan = fitPlan(cal, calRows, { ratio: 4 }, { tokenGroup: 4 });
  const seqs = [ids, [3, 3, 9, 1, 0, 12, 7, 7, 2, 5, 19, 4, 4, 8, 1, 0, 6, 2]];
  const o = { sinks: 2, window: 3, every: 4 };

  it('masses and output errors equal a float64 hand softmax over the cache’s reconstructed and raw keys', () => {
    const r = sinkReconstruction(
      model,
      seqs.map((x) => ({ ids: x })),
      { cal, plan },
      o,
    );
    const acc = Array.from({ length: 8 }, () => ({ f: 0, fh: 0, s: 0, sh: 0, e: 0, n: 0 }));
    const counted: number[][] = [];
    let queries = 0;
    for (const x of seqs) {
      const q = collectQueries(model, x);
      const kv = collectKV(model, x);
      // the prefix coded in one call: the same token groups as the diagnostic's 4-token chunks (every = m = 4)
      const n = Math.floor(x.length / 4) * 4;
      const back = roundTrip(cal, plan, sliceRows(kv, 0, n));
      const P = 2 * 2 * dh;
      const at: number[] = [];
      for (let t = 2; t < x.length; t++) {
        const done = Math.max(0, Math.floor((t + 1 - 3) / 4)) * 4;
        if (done === 0) continue;
        at.push(t);
        queries++;
        const k = Float32Array.from(kv.k);
        const v = Float32Array.from(kv.v);
        k.set(back.k.subarray(0, done * P));
        v.set(back.v.subarray(0, done * P));
        for (let l = 0; l < 2; l++)
          for (let g = 0; g < 4; g++) {
            const p = handAttentionRow(q, kv.k, dh, l, g, t);
            const ph = handAttentionRow(q, k, dh, l, g, t);
            const e = acc[l * 4 + g]!;
            e.f += p[0]!;
            e.fh += ph[0]!;
            e.s += p[0]! + p[1]!;
            e.sh += ph[0]! + ph[1]!;
            const kvh = g >> 1;
            for (let j = 0; j < dh; j++) {
              let a = 0;
              let b = 0;
              for (let s = 0; s <= t; s++) {
                a += p[s]! * kv.v[s * P + (l * 2 + kvh) * dh + j]!;
                b += ph[s]! * v[s * P + (l * 2 + kvh) * dh + j]!;
              }
              e.e += (a - b) ** 2;
              e.n += a ** 2;
            }
          }
      }
      counted.push(at);
    }
    expect(r.queries).toBe(queries);
    expect(queries).toBeGreaterThan(10);
    r.heads.forEach((h, i) => {
      const e = acc[i]!;
      expect([h.layer, h.head]).toEqual([i >> 2, i & 3]);
      expect(h.firstMass).toBeCloseTo(e.f / queries, 6);
      expect(h.firstMassHat).toBeCloseTo(e.fh / queries, 6);
      expect(h.sinkMass).toBeCloseTo(e.s / queries, 6);
      expect(h.sinkMassHat).toBeCloseTo(e.sh / queries, 6);
      expect(h.outputErr).toBeCloseTo(Math.sqrt(e.e / e.n), 5);
    });
    // at 4× something moves, so the test sees the reconstructed keys
    expect(r.heads.some((h) => Math.abs(h.firstMassHat - h.firstMass) > 1e-4)).toBe(true);
    // the exact masses are the model's own softmax over the same queries (sinkStats reads them from the forward pass)
    const s = sinkStats(
      model,
      seqs.map((x, i) => ({ ids: x, at: counted[i]! })),
      { sinks: 2 },
    );
    r.heads.forEach((h, i) => {
      expect(h.firstMass).toBeCloseTo(s.heads[i]!.firstMass, 5);
      expect(h.sinkMass).toBeCloseTo(s.heads[i]!.sinkMass, 5);
    });
  });

  it('class errors are those of the prefix coded at once, per layer and KV head', () => {
    const r = sinkReconstruction(
      model,
      seqs.map((x) => ({ ids: x })),
      { cal, plan },
      o,
    );
    for (const x of r.kv) {
      const acc = [0, 1, 2].map(() => ({ k: 0, v: 0, m: 0 }));
      for (const s of seqs) {
        const kv = collectKV(model, s);
        const n = Math.floor(s.length / 4) * 4;
        const back = roundTrip(cal, plan, sliceRows(kv, 0, n));
        // RoPE is a rotation per position: compared with RoPE undone the relative errors are the same
        const a = derotate(sliceRows(kv, 0, n), cal.ropeBase);
        const b = derotate(back, cal.ropeBase);
        for (let t = 0; t < n; t++) {
          const off = t * 16 + (x.layer * 2 + x.kvHead) * dh;
          const rel = (u: Float32Array, w: Float32Array) => {
            let e = 0;
            let z = 0;
            for (let j = 0; j < dh; j++) {
              e += (u[off + j]! - w[off + j]!) ** 2;
              z += u[off + j]! ** 2;
            }
            return Math.sqrt(e / z);
          };
          const c = acc[t === 0 ? 0 : t < 2 ? 1 : 2]!;
          c.k += rel(a.k, b.k);
          c.v += rel(a.v, b.v);
          c.m++;
        }
      }
      (['first', 'nextSinks', 'rest'] as const).forEach((c, i) => {
        expect(x.key[c].positions).toBe(acc[i]!.m);
        expect(x.key[c].rel).toBeCloseTo(acc[i]!.k / acc[i]!.m, 5);
        expect(x.value[c].rel).toBeCloseTo(acc[i]!.v / acc[i]!.m, 5);
      });
      expect(x.key.rest.rel).toBeGreaterThan(0);
    }
  });

  it('the identity codec leaves every mass and output unchanged', () => {
    const r = sinkReconstruction(
      model,
      seqs.map((x) => ({ ids: x })),
      (x) => x,
      o,
    );
    for (const h of r.heads) {
      expect(h.firstMassHat).toBe(h.firstMass);
      expect(h.sinkMassHat).toBe(h.sinkMass);
      expect(h.outputErr).toBe(0);
      expect(h.outputErrSinksOnly).toBe(0);
    }
    for (const x of r.kv) expect([x.key.first.rel, x.value.rest.rel]).toEqual([0, 0]);
  });

  it('rejects bad options, sequences and a calibration of another model with a ValueError', () => {
    const c = { cal, plan };
    const one = [{ ids }];
    expect(() => sinkReconstruction(model, one, c, { sinks: 0 })).toThrow(ValueError);
    expect(() => sinkReconstruction(model, one, c, { window: -1 })).toThrow(ValueError);
    expect(() => sinkReconstruction(model, one, c, { every: 0 })).toThrow(ValueError);
    expect(() => sinkReconstruction(model, one, c, { epsilon: 1 })).toThrow(ValueError);
    expect(() => sinkReconstruction(model, [], c)).toThrow(ValueError);
    expect(() => sinkReconstruction(model, [{ ids: [] }], c)).toThrow(ValueError);
    expect(() => sinkReconstruction(model, [{ ids: [1, 20] }], c)).toThrow(/vocabulary/);
    expect(() => sinkReconstruction(model, [{ ids, at: [12] }], c)).toThrow(/outside/);
    const other = calibrate(inPlane(new Rng(1), 20), { rope: false });
    expect(() => sinkReconstruction(model, one, { cal: other, plan })).toThrow(/calibration/);
    expect(() => sinkReconstructionFromRows([], { nHeads: 4, rope: true }, c)).toThrow(ValueError);
  });
});

describe('suiteKvtc: the plans of the evaluation’s rows', () => {
  const { model, base: tiny } = tinySuite(1);
  const base: SuiteOptions = { ...tiny, ratios: [64], samples: { kv: 1, passkey: 1, vt: 1 } };

  it('reconstructs the held-out rows exactly as runSuite’s kvtc 64× and kvtc 64× attention-sampled rows', () => {
    const rows = runSuite(model, { ...base, methods: /^kvtc 64×( attention-sampled)?$/ }).rows;
    const held = suiteContext(model, base).heldRows;
    const P = held.layers * held.heads * held.headDim;
    for (const [name, sampled] of [
      ['kvtc 64×', false],
      ['kvtc 64× attention-sampled', true],
    ] as const) {
      const row = rows.find((x) => x.method === name)!;
      const { cal, plan } = suiteKvtc(model, base, 64, sampled);
      const back = roundTrip(cal, plan, held);
      const mean = (kind: 'k' | 'v') => cal.segments.find((s) => s.kind === kind)!.pca.mean;
      expect(relFrobenius(derotate(held, cal.ropeBase).k, derotate(back, cal.ropeBase).k, mean('k'), P)).toBe(
        row.keyErr,
      );
      expect(relFrobenius(held.v, back.v, mean('v'), P)).toBe(row.valueErr);
    }
    // the two calibrations differ (else the comparison could not tell them apart)
    const a = suiteKvtc(model, base, 64).cal.segments[0]!.pca.mean;
    const b = suiteKvtc(model, base, 64, true).cal.segments[0]!.pca.mean;
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('a ratio ≤ 1 or not finite is a ValueError', () => {
    for (const r of [1, 0.5, 0, -4, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => suiteKvtc(model, base, r)).toThrow(ValueError);
  });
});

describe('the sinks command', () => {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const run = (args: string[]) => {
    try {
      execFileSync(
        process.execPath,
        ['--conditions=@tessera/source', '--import', 'tsx', 'src/cli.ts', 'sinks', ...args],
        {
          cwd,
          stdio: 'pipe',
          timeout: 60_000,
        },
      );
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { status: number; stderr: Buffer };
      return { code: x.status, err: String(x.stderr) };
    }
  };
  it('refuses a bad ratio and an unknown model before loading anything', () => {
    const model = 'bench/fixtures/retrieval-lm-v2-deep-bos-tasklm.safetensors';
    // (the non-finite and non-numeric cases are the same test of Number(x); each spawn costs seconds)
    const x = run(['--model', model, '--ratio', '1']);
    expect(x.code).not.toBe(0);
    expect(x.err).toMatch(/--ratio takes a compression target above 1, not 1/);
    const y = run(['--model', 'no-such-model.safetensors', '--ratio', '64']);
    expect(y.code).not.toBe(0);
    expect(y.err).toMatch(/ValueError.*no model file at no-such-model\.safetensors/);
    const z = run(['--model', model, '--sinks', '-1']);
    expect(z.code).not.toBe(0);
    expect(z.err).toMatch(/--sinks takes an integer ≥ 1, not -1/);
  }, 180_000);
});
