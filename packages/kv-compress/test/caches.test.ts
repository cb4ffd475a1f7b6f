import { readFileSync } from 'node:fs';
import { manualSeed, nn, noGrad, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { H2OStorage, SnapKVStorage, StreamingLLMStorage, TOVAStorage } from '../src/caches/eviction.js';
import type { CompressedStorage } from '../src/caches/host.js';
import { HostStorage, LayerBuf } from '../src/caches/host.js';
import { KVTCStorage } from '../src/caches/kvtc-storage.js';
import { FP8Storage, KIVIStorage, LowRankStorage } from '../src/caches/quantized.js';
import { calibrate, fitPlan } from '../src/calibration.js';
import { collectKV, concatRows } from '../src/collect.js';
import { CalibrationMismatchError } from '../src/errors.js';
import { loadModel } from '../src/eval/model.js';
import { decodeCache, readHeader } from '../src/format.js';
import { Rng } from '../src/linalg.js';
import { relErr } from './helpers.js';

/** [1, H, T, d] keys whose every element is its absolute position (so kept positions can be read back). */
const posKV = (H: number, T: number, d: number, start: number) => {
  const x = new Float32Array(H * T * d);
  for (let h = 0; h < H; h++)
    for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) x[(h * T + t) * d + j] = start + t;
  return { k: tensor(x, { shape: [1, H, T, d] }), v: tensor(Float32Array.from(x), { shape: [1, H, T, d] }) };
};
const keptPositions = (s: nn.KVCacheStorage, h = 0) => {
  const kv = s.read(0)!;
  const [, , L, d] = kv.k.shape as number[];
  const data = kv.k.dataSync();
  return Array.from({ length: L! }, (_, t) => data[(h * L! + t) * d!]);
};
/** Probabilities [1, Hq, Tq, L] from a score function. */
const probs = (Hq: number, Tq: number, L: number, f: (h: number, q: number, j: number) => number) => {
  const p = new Float32Array(Hq * Tq * L);
  for (let h = 0; h < Hq; h++)
    for (let q = 0; q < Tq; q++) for (let j = 0; j < L; j++) p[(h * Tq + q) * L + j] = f(h, q, j);
  return tensor(p, { shape: [1, Hq, Tq, L] });
};

describe('baselines against their definitions', () => {
  it('StreamingLLM keeps sinks and the most recent window', () => {
    const s = new StreamingLLMStorage({ sinks: 2, window: 3 });
    for (let t = 0; t < 10; t++) s.append(0, posKV(1, 1, 2, t), t);
    expect(keptPositions(s)).toEqual([0, 1, 7, 8, 9]);
    expect(s.stats().tokensSeen).toBe(10);
  });
  it('H2O keeps heavy hitters by accumulated attention plus recent tokens, per KV head', () => {
    const s = new H2OStorage({ budget: 4, recentRatio: 0.5 });
    s.append(0, posKV(2, 6, 2, 0), 0);
    // head 0 (query heads 0,1) likes token 1; head 1 (query heads 2,3) likes token 3
    s.observe(
      0,
      probs(4, 6, 6, (h, _q, j) => (j === (h < 2 ? 1 : 3) ? 0.5 : 0.1 - 0.01 * j)),
    );
    s.append(0, posKV(2, 1, 2, 6), 6);
    // budget 4 incl. the new token: recent half = 2 (token 5 + the new one), heavy = the two best of the rest
    expect(keptPositions(s, 0)).toEqual([0, 1, 5, 6]);
    expect(keptPositions(s, 1)).toEqual([0, 3, 5, 6]);
  });
  it('TOVA evicts the tokens the last query (head-averaged) attends to least', () => {
    const s = new TOVAStorage({ budget: 3 });
    s.append(0, posKV(1, 5, 2, 0), 0);
    const w = [0.1, 0.4, 0.05, 0.3, 0.15];
    s.observe(
      0,
      probs(2, 5, 5, (_h, q, j) => (q === 4 ? w[j]! : 1)),
    );
    s.append(0, posKV(1, 1, 2, 5), 5);
    expect(keptPositions(s)).toEqual([1, 3, 5]);
  });
  it('SnapKV keeps the pooled top prefix tokens voted by the observation window', () => {
    const s = new SnapKVStorage({ budget: 4, window: 2, kernel: 1 });
    s.append(0, posKV(1, 8, 2, 0), 0);
    s.observe(
      0,
      probs(1, 8, 8, (_h, q, j) => (q >= 6 ? [0.01, 0.02, 0.5, 0.03, 0.04, 0.4, 0, 0][j]! : 0)),
    );
    expect(s.stats().tokensHeld).toBe(4);
    expect(keptPositions(s)).toEqual([2, 5, 6, 7]);
    s.append(0, posKV(1, 1, 2, 8), 8);
    expect(keptPositions(s)).toEqual([2, 5, 6, 7, 8]);
  });
  it('KIVI quantises keys per channel and values per token outside the residual window', () => {
    const rng = new Rng(4);
    const x = new Float32Array(1 * 12 * 4).map(() => rng.normal());
    const y = new Float32Array(x.length).map(() => rng.normal());
    const s = new KIVIStorage({ bits: 4, group: 4, residual: 4 });
    s.append(0, { k: tensor(x, { shape: [1, 1, 12, 4] }), v: tensor(y, { shape: [1, 1, 12, 4] }) }, 0);
    const kv = s.read(0)!;
    const k = kv.k.dataSync();
    const v = kv.v.dataSync();
    // last 4 tokens exact; the rest quantised with small error
    for (let i = 32; i < 48; i++) expect(k[i]).toBe(x[i]);
    expect(relErr(Array.from(k).slice(0, 32), Array.from(x).slice(0, 32))).toBeLessThan(0.15);
    expect(relErr(Array.from(v).slice(0, 32), Array.from(y).slice(0, 32))).toBeLessThan(0.15);
    // Keys: one (shift, scale) per channel per group of 4 tokens, min–max, so each (group, channel) column keeps
    // its own minimum and maximum (codes 0 and 15; fp16 side info) — per-token quantisation would not.
    // Values: one (shift, scale) per token across its channels, so each token keeps its own extremes.
    const tol = 2e-3;
    for (let g = 0; g < 2; g++)
      for (let j = 0; j < 4; j++) {
        const idx = [0, 1, 2, 3].map((t) => (g * 4 + t) * 4 + j);
        const lo = idx.reduce((a, i) => (x[i]! < x[a]! ? i : a));
        const hi = idx.reduce((a, i) => (x[i]! > x[a]! ? i : a));
        expect(Math.abs(k[lo]! - x[lo]!), `keys group ${g} channel ${j} min`).toBeLessThan(tol);
        expect(Math.abs(k[hi]! - x[hi]!), `keys group ${g} channel ${j} max`).toBeLessThan(tol);
      }
    for (let t = 0; t < 8; t++) {
      const idx = [0, 1, 2, 3].map((j) => t * 4 + j);
      const lo = idx.reduce((a, i) => (y[i]! < y[a]! ? i : a));
      const hi = idx.reduce((a, i) => (y[i]! > y[a]! ? i : a));
      expect(Math.abs(v[lo]! - y[lo]!), `values token ${t} min`).toBeLessThan(tol);
      expect(Math.abs(v[hi]! - y[hi]!), `values token ${t} max`).toBeLessThan(tol);
    }
    expect(Array.from(k).slice(0, 32)).not.toEqual(Array.from(x).slice(0, 32));
    // 8 quantised tokens: keys 2 groups × 4 ch × (4·4 + 32) bits, values 8 tokens × (4·4 + 32) bits; 4 raw tokens fp16
    expect(s.stats().bytes).toBe((2 * 4 * 48 + 8 * 48) / 8 + 4 * 4 * 4);
  });
  it('FP8 stays within E4M3 precision and counts d + 2 bytes per head and token', () => {
    const rng = new Rng(6);
    const x = new Float32Array(2 * 5 * 8).map(() => rng.normal());
    const s = new FP8Storage();
    s.append(0, { k: tensor(x, { shape: [1, 2, 5, 8] }), v: tensor(x, { shape: [1, 2, 5, 8] }) }, 0);
    expect(relErr(s.read(0)!.k.dataSync(), x)).toBeLessThan(0.05);
    expect(s.stats().bytes).toBe(2 * 5 * 10 * 2);
  });
  it('low rank keeps the top singular directions: Eckart–Young error at rank 2, exact at full rank', () => {
    // x = Σ σ_c u_c w_cᵀ with orthonormal u (6-dim) and w (4-dim), σ = 4, 2, 1: a rank-r reconstruction (the top r
    // right singular vectors) leaves √(Σ_{c>r} σ_c²) / √(Σ σ_c²) of the norm — 1/√21 at rank 2, 0 at rank 4.
    const rng = new Rng(8);
    const orthonormal = (n: number, m: number) => {
      const vs: number[][] = [];
      while (vs.length < m) {
        const v = Array.from({ length: n }, () => rng.normal());
        for (const b of vs) {
          const d = v.reduce((a, x, i) => a + x * b[i]!, 0);
          for (let i = 0; i < n; i++) v[i]! -= d * b[i]!;
        }
        const norm = Math.hypot(...v);
        vs.push(v.map((x) => x / norm));
      }
      return vs;
    };
    const u = orthonormal(6, 3);
    const w = orthonormal(4, 3);
    const sigma = [4, 2, 1];
    const x = new Float32Array(24).map((_, i) =>
      sigma.reduce((a, sg, c) => a + sg * u[c]![Math.floor(i / 4)]! * w[c]![i % 4]!, 0),
    );
    const err = (rank: number) => {
      const s = new LowRankStorage({ rank });
      s.append(0, { k: tensor(x, { shape: [1, 1, 6, 4] }), v: tensor(x, { shape: [1, 1, 6, 4] }) }, 0);
      return relErr(s.read(0)!.k.dataSync(), x);
    };
    expect(err(1)).toBeCloseTo(Math.sqrt(5 / 21), 4);
    expect(err(2)).toBeCloseTo(1 / Math.sqrt(21), 4);
    expect(err(4)).toBeLessThan(1e-5);
  });
});

// ---------------------------------------------------------------- decoding a CausalLM through each cache

manualSeed(3);
const model = new nn.CausalLM({ vocabSize: 20, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 64 });
model.eval();
const rng = new Rng(12);
const prompt = Array.from({ length: 40 }, () => rng.int(20));
const cont = Array.from({ length: 8 }, () => rng.int(20));

/** Prefill `prompt`, then feed `cont` one token at a time; returns the last-position logits of every step. */
function decode(storage: nn.KVCacheStorage, cache = new nn.KVCache(storage), feedPrompt = true): Float32Array[] {
  const out: Float32Array[] = [];
  noGrad(() => {
    const step = (ids: number[]) =>
      tidy(() => {
        const logits: Tensor = model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), {
          cache,
        });
        const V = logits.shape[2]!;
        out.push(Float32Array.from(logits.dataSync()).slice((ids.length - 1) * V));
      });
    if (feedPrompt) step(prompt);
    for (const t of cont) step([t]);
  });
  return out;
}
const reference = decode(new nn.ConcatStorage());
const calRows = concatRows(
  Array.from({ length: 4 }, (_, s) =>
    collectKV(
      model,
      Array.from({ length: 48 }, (_, i) => (i * 7 + s * 3 + ((i * i) % 5)) % 20),
    ),
  ),
);
const cal = calibrate(calRows);

describe('CausalLM decoding through each cache', () => {
  const lossless: [string, () => CompressedStorage][] = [
    ['exact host', () => new HostStorage()],
    ['StreamingLLM, window ≥ length', () => new StreamingLLMStorage({ window: 100 })],
    ['H2O, budget ≥ length', () => new H2OStorage({ budget: 100 })],
    ['TOVA, budget ≥ length', () => new TOVAStorage({ budget: 100 })],
    ['SnapKV, budget ≥ length', () => new SnapKVStorage({ budget: 100 })],
    ['KIVI-2, residual ≥ length', () => new KIVIStorage({ bits: 2, residual: 100 })],
    ['KVTC, window ≥ length', () => new KVTCStorage(cal, fitPlan(cal, calRows, { ratio: 8 }), { window: 100 })],
  ];
  for (const [name, make] of lossless)
    it(`${name} gives the exact cache's logits`, () => {
      const got = decode(make());
      for (const [i, g] of got.entries()) expect(relErr(g, reference[i]!)).toBeLessThan(1e-5);
    });
  const lossy: [string, () => CompressedStorage, number][] = [
    ['StreamingLLM', () => new StreamingLLMStorage({ sinks: 4, window: 12 }), 1],
    ['H2O', () => new H2OStorage({ budget: 16 }), 1],
    ['TOVA', () => new TOVAStorage({ budget: 16 }), 1],
    ['SnapKV', () => new SnapKVStorage({ budget: 16, window: 8 }), 1],
    ['KIVI-4', () => new KIVIStorage({ bits: 4, group: 8, residual: 8 }), 0.1],
    ['FP8', () => new FP8Storage(), 0.1],
    ['SVD r=4', () => new LowRankStorage({ rank: 4 }), 1],
    [
      'KVTC 4×',
      () => new KVTCStorage(cal, fitPlan(cal, calRows, { ratio: 4 }), { sinks: 4, window: 8, every: 4 }),
      0.2,
    ],
  ];
  for (const [name, make, tol] of lossy)
    it(`${name} compresses and stays near the exact logits`, () => {
      const s = make();
      const got = decode(s);
      const st = s.stats();
      expect(st.bytes).toBeLessThan(st.fp16Bytes);
      got.forEach((g, i) => {
        expect(g.every(Number.isFinite)).toBe(true);
        expect(relErr(g, reference[i]!)).toBeLessThan(tol);
      });
    });
  it('KVTC re-compresses every c tokens while decoding, keeping sinks and a window of w to w + c − 1 raw', () => {
    const s = new KVTCStorage(cal, fitPlan(cal, calRows, { ratio: 8 }), { sinks: 4, window: 8, every: 4 });
    const cache = new nn.KVCache(s);
    noGrad(() => {
      for (const [i, ids] of [prompt, ...cont.map((t) => [t])].entries()) {
        tidy(
          () => void model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), { cache }),
        );
        const L = 40 + i;
        const chunks = s.chunks;
        let at = 4;
        for (const c of chunks) {
          expect(c.start).toBe(at);
          expect(c.count % 4).toBe(0);
          at += c.count;
        }
        expect(L - at).toBeGreaterThanOrEqual(8);
        expect(L - at).toBeLessThan(12);
      }
    });
    expect(s.chunks.length).toBeGreaterThan(2); // the prefill chunk, then one every 4 decoded tokens
  });
  it('a serialised KVTC cache restores and continues exactly like the live one', () => {
    const plan = fitPlan(cal, calRows, { ratio: 4 });
    const live = new KVTCStorage(cal, plan, { sinks: 4, window: 8, every: 4 });
    const liveCache = new nn.KVCache(live);
    noGrad(() =>
      tidy(
        () =>
          void model.forward(tensor(Int32Array.from(prompt), { shape: [1, 40], dtype: 'int32' }), { cache: liveCache }),
      ),
    );
    const bytes = live.serialize();
    const { storage, cache } = KVTCStorage.restore(bytes, cal, plan, { sinks: 4, window: 8, every: 4 });
    expect(storage.stats().bytes).toBe(live.stats().bytes);
    const a = decode(live, liveCache, false);
    const b = decode(storage, cache, false);
    for (const [i, x] of a.entries()) expect(relErr(b[i]!, x)).toBeLessThan(2e-3); // raw tokens round through fp16
  });
});

describe('KVTC with a batch of sequences', () => {
  const plan = fitPlan(cal, calRows, { ratio: 4 });
  const other = Array.from({ length: 40 }, (_, i) => (i * 3 + 1) % 20);
  const opts = { sinks: 4, window: 8, every: 4 };
  /** prefill [B, 40] then 8 single-token steps per row; last-position logits per row and step */
  function decodeBatch(rows: number[][], storage: nn.KVCacheStorage): Float32Array[][] {
    const cache = new nn.KVCache(storage);
    const B = rows.length;
    const out: Float32Array[][] = rows.map(() => []);
    noGrad(() => {
      const step = (ids: number[][]) =>
        tidy(() => {
          const T = ids[0]!.length;
          const logits = model.forward(tensor(Int32Array.from(ids.flat()), { shape: [B, T], dtype: 'int32' }), {
            cache,
          });
          const V = logits.shape[2]!;
          const d = Float32Array.from(logits.dataSync());
          for (let b = 0; b < B; b++) out[b]!.push(Float32Array.from(d.slice((b * T + T - 1) * V, (b * T + T) * V)));
        });
      step(rows);
      for (const [i, t] of cont.entries()) step(rows.map((_, b) => [b === 0 ? t : cont[(i + 3) % cont.length]!]));
    });
    return out;
  }
  it('compresses each sequence on its own: row 0 of a batch decodes exactly as alone', () => {
    const alone = new KVTCStorage(cal, plan, opts);
    const a = decodeBatch([prompt], alone);
    const both = new KVTCStorage(cal, plan, opts);
    const b = decodeBatch([prompt, other], both);
    for (const [i, x] of a[0]!.entries()) expect(relErr(b[0]![i]!, x)).toBeLessThan(1e-5);
    expect(both.batchChunks).toHaveLength(2);
    expect(both.batchChunks[1]!.map((c) => c.start)).toEqual(alone.chunks.map((c) => c.start));
    // the batch holds twice the bytes of one sequence (same plan, same chunking)
    expect(both.stats().fp16Bytes).toBe(2 * alone.stats().fp16Bytes);
    // sequence 0's container is the single sequence's container
    expect(Array.from(both.serialize(0))).toEqual(Array.from(alone.serialize()));
    expect(() => both.serialize(2)).toThrow(/outside the batch/);
  });
  it('per-sequence lengths: left padding is never compressed, stored or counted', () => {
    const s = new KVTCStorage(cal, plan, { ...opts, padding: [0, 6] });
    decodeBatch([prompt, other], s);
    const L = 48;
    const c0 = s.batchChunks[0]!;
    const c1 = s.batchChunks[1]!;
    expect(c0[0]!.start).toBe(4);
    expect(c1[0]!.start).toBe(4); // chunk starts count from the sequence's first real token
    const covered = (cs: typeof c0) => cs.reduce((a, c) => a + c.count, 0);
    expect(L - 4 - covered(c0)).toBeGreaterThanOrEqual(8);
    expect(L - 6 - 4 - covered(c1)).toBeGreaterThanOrEqual(8);
    const perToken = cal.layers * cal.heads * cal.headDim * 4;
    expect(s.stats().fp16Bytes).toBe((2 * L - 6) * perToken);
    // the second sequence's container holds its 42 real tokens and restores to them
    const { storage } = KVTCStorage.restore(s.serialize(1), cal, plan, opts);
    expect(storage.length(0)).toBe(L - 6);
    expect(() => new KVTCStorage(cal, plan, { padding: [-1] })).toThrow(/padding/);
  });
});

// ---------------------------------------------------------------- left-padded batches against each sequence alone

describe('baselines with per-sequence lengths (left padding)', () => {
  const H = 2;
  const Hq = 4;
  const d = 4;
  const T0 = 12;
  // the third sequence's padding runs past the prefill: its first real token arrives at decoding step 3
  const padding = [0, 5, 14];
  const steps = 7;
  /** junk in padding slots and padding probabilities: large (and uneven), so any padding kept or scored shows */
  const JUNK = 50;
  const makers: [string, (padding?: number[]) => HostStorage & nn.KVCacheStorage, boolean][] = [
    ['exact host', (p) => new HostStorage({ padding: p }), false],
    ['StreamingLLM', (p) => new StreamingLLMStorage({ sinks: 2, window: 4, padding: p }), true],
    ['H2O', (p) => new H2OStorage({ budget: 6, padding: p }), true],
    ['TOVA', (p) => new TOVAStorage({ budget: 5, padding: p }), true],
    ['SnapKV', (p) => new SnapKVStorage({ budget: 6, window: 3, kernel: 3, padding: p }), true],
    ['KIVI-2', (p) => new KIVIStorage({ bits: 2, group: 4, residual: 3, padding: p }), false],
    ['FP8', (p) => new FP8Storage({ padding: p }), false],
    ['SVD r=2', (p) => new LowRankStorage({ rank: 2, padding: p }), false],
  ];
  for (const [name, make, evicts] of makers)
    it(`${name}: each sequence of a padded batch keeps, quantises and counts what it would alone`, () => {
      const rng = new Rng(23);
      const B = padding.length;
      const alone = padding.map(() => make());
      const batch = make(padding);
      for (let step = 0; step <= steps; step++) {
        const T = step === 0 ? T0 : 1;
        for (let layer = 0; layer < 2; layer++) {
          // each sequence's real keys/values, [H, Tb, d]; the batch puts them after its padding
          const real = padding.map((p) => {
            const Tb = step === 0 ? Math.max(0, T0 - p) : T0 + step - 1 >= p ? 1 : 0;
            const mk = () => new Float32Array(H * Tb * d).map(() => rng.normal());
            return { Tb, k: mk(), v: mk() };
          });
          const bk = new Float32Array(B * H * T * d).fill(JUNK);
          const bv = new Float32Array(B * H * T * d).fill(-JUNK);
          real.forEach(({ Tb, k, v }, b) => {
            for (let h = 0; h < H; h++) {
              bk.set(k.subarray(h * Tb * d, (h + 1) * Tb * d), ((b * H + h) * T + T - Tb) * d);
              bv.set(v.subarray(h * Tb * d, (h + 1) * Tb * d), ((b * H + h) * T + T - Tb) * d);
            }
          });
          const pos = step === 0 ? 0 : T0 + step - 1;
          for (const [b, { Tb, k, v }] of real.entries())
            if (Tb > 0)
              alone[b]!.append(
                layer,
                { k: tensor(k, { shape: [1, H, Tb, d] }), v: tensor(v, { shape: [1, H, Tb, d] }) },
                Math.max(0, pos - padding[b]!),
              );
          batch.append(layer, { k: tensor(bk, { shape: [B, H, T, d] }), v: tensor(bv, { shape: [B, H, T, d] }) }, pos);
          if (batch.observe) {
            // attention probabilities: each sequence's own (random) ones, right-aligned; padding rows/columns junk
            const L = batch.length(layer);
            const bp = new Float32Array(B * Hq * T * L).map(() => JUNK * rng.next());
            alone.forEach((s, b) => {
              const Lb = s.length(layer);
              const Tb = real[b]!.Tb;
              if (Tb === 0) return;
              const p = new Float32Array(Hq * Tb * Lb).map(() => rng.next());
              s.observe!(layer, tensor(p, { shape: [1, Hq, Tb, Lb] }));
              for (let h = 0; h < Hq; h++)
                for (let q = 0; q < Tb; q++)
                  bp.set(
                    p.subarray((h * Tb + q) * Lb, (h * Tb + q + 1) * Lb),
                    ((b * Hq + h) * T + T - Tb + q) * L + L - Lb,
                  );
            });
            batch.observe(layer, tensor(bp, { shape: [B, Hq, T, L] }));
          }
        }
        const st = batch.stats();
        const sum = alone
          .map((s) => s.stats())
          .reduce((a, s) => ({
            tokensSeen: a.tokensSeen + s.tokensSeen,
            tokensHeld: a.tokensHeld + s.tokensHeld,
            bytes: a.bytes + s.bytes,
            fp16Bytes: a.fp16Bytes + s.fp16Bytes,
          }));
        expect(st, `step ${step}`).toEqual(sum);
        for (let layer = 0; layer < 2; layer++) {
          const kv = batch.read(layer)!;
          const L = kv.k.shape[2]!;
          const [k, v] = [Float32Array.from(kv.k.dataSync()), Float32Array.from(kv.v.dataSync())];
          alone.forEach((s, b) => {
            const a = s.read(layer);
            if (!a) {
              for (let h = 0; h < H; h++) expect(batch.heldPositions(layer, b, h)).toEqual([]);
              return;
            }
            const Lb = a.k.shape[2]!;
            const [ak, av] = [Float32Array.from(a.k.dataSync()), Float32Array.from(a.v.dataSync())];
            for (let h = 0; h < H; h++) {
              expect(
                batch.heldPositions(layer, b, h).map((x) => x - padding[b]!),
                `step ${step} layer ${layer} seq ${b} head ${h}`,
              ).toEqual(s.heldPositions(layer, 0, h));
              const row = (b * H + h) * L + L - Lb;
              expect(Array.from(k.slice(row * d, (row + Lb) * d))).toEqual(
                Array.from(ak.slice(h * Lb * d, (h + 1) * Lb * d)),
              );
              expect(Array.from(v.slice(row * d, (row + Lb) * d))).toEqual(
                Array.from(av.slice(h * Lb * d, (h + 1) * Lb * d)),
              );
            }
          });
        }
      }
      const st = batch.stats();
      expect(st.tokensSeen).toBe(2 * padding.reduce((a, p) => a + T0 + steps - p, 0));
      if (evicts) expect(st.tokensHeld).toBeLessThan(st.tokensSeen);
    });
  it('LayerBuf.compact keeps any subsets per row, left-padding the shorter rows (against a copy-based reference)', () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 200; trial++) {
      const [B, H, d] = [1 + rng.int(3), 1 + rng.int(2), 3];
      const L0 = 3 + rng.int(10);
      const b = new LayerBuf(B, H, d, 4);
      b.append(
        new Float32Array(B * H * L0 * d).map(() => rng.normal()),
        new Float32Array(B * H * L0 * d).map(() => rng.normal()),
        L0,
        7,
      );
      for (let i = 0; i < B * H * b.cap; i++) b.score[i] = rng.next();
      for (let bh = 0; bh < B * H; bh++) b.pad[bh] = rng.int(L0);
      const row = (bh: number, t: number) => ({
        k: Array.from(b.k.subarray(b.at(bh, t), b.at(bh, t) + d)),
        v: Array.from(b.v.subarray(b.at(bh, t), b.at(bh, t) + d)),
        pos: b.pos[bh * b.cap + t],
        score: b.score[bh * b.cap + t],
      });
      const keep = Array.from({ length: B * H }, (_, bh) => b.slots(bh).filter(() => rng.next() < 0.6));
      const want = keep.map((idx, bh) => idx.map((t) => row(bh, t)));
      b.compact((bh) => keep[bh]!);
      const L = Math.max(0, ...keep.map((k) => k.length));
      expect(b.L).toBe(L);
      const zero = { k: [0, 0, 0], v: [0, 0, 0], pos: -1, score: 0 };
      for (let bh = 0; bh < B * H; bh++) {
        expect(b.pad[bh]).toBe(L - keep[bh]!.length);
        const got = Array.from({ length: L }, (_, t) => row(bh, t));
        expect(got, `trial ${trial} row ${bh}`).toEqual([...Array(L - keep[bh]!.length).fill(zero), ...want[bh]!]);
      }
    }
    const b = new LayerBuf(1, 1, 2);
    b.append(new Float32Array(8), new Float32Array(8), 4, 0);
    b.pad[0] = 2;
    expect(() => b.compact(() => [1, 3])).toThrow(/keeps slot 1 outside its tokens/);
  });
  it('padding must match the batch and be counts ≥ 0', () => {
    expect(() => new H2OStorage({ budget: 4, padding: [1, -1] })).toThrow(/padding must be counts/);
    expect(() => new FP8Storage({ padding: [0.5] })).toThrow(/padding must be counts/);
    const s = new StreamingLLMStorage({ window: 4, padding: [0, 1, 2] });
    expect(() => s.append(0, posKV(1, 3, 2, 0), 0)).toThrow(/padding has 3 entries; the batch is 1/);
  });
});

describe('options, lifecycle and restore: refused or right, never silently wrong', () => {
  it('every storage refuses option values it cannot honour', () => {
    const plan = fitPlan(cal, calRows, { ratio: 8 });
    const kvtc = (o: object) => () => new KVTCStorage(cal, plan, o);
    for (const [make, msg] of [
      [kvtc({ every: 0 }), /every must be an integer in \[1, 65536\]; got 0/],
      [kvtc({ every: 2.5 }), /every must be/],
      [kvtc({ every: -4 }), /every must be/],
      [kvtc({ window: -8 }), /window must be an integer ≥ 0/],
      [kvtc({ sinks: 2.5 }), /sinks must be an integer ≥ 0/],
      [kvtc({ sinks: -2 }), /sinks must be/],
      [kvtc({ level: 12 }), /level must be an integer in \[0, 9\]/],
      [kvtc({ coder: 'zstd' }), /coder must be one of deflate, range, best/],
      [() => new KIVIStorage({ bits: 2, group: 0 }), /group must be an integer ≥ 1/],
      [() => new KIVIStorage({ bits: 2, group: 2.5 }), /group must be/],
      [() => new KIVIStorage({ bits: 4, residual: Number.NaN }), /residual must be an integer ≥ 0/],
      [() => new LowRankStorage({ rank: 2.5 }), /rank must be an integer ≥ 1/],
      [() => new StreamingLLMStorage({ sinks: -2, window: 4 }), /sinks must be an integer ≥ 0/],
      [() => new StreamingLLMStorage({ sinks: Number.NaN, window: 4 }), /sinks must be/],
      [() => new SnapKVStorage({ budget: 4, window: 0 }), /window must be an integer ≥ 1/],
      [() => new SnapKVStorage({ budget: 4, kernel: 2 }), /kernel .* must be an odd integer ≥ 1/],
      [() => new H2OStorage({ budget: 4, recentRatio: Number.NaN }), /recentRatio must be in \[0, 1\]/],
    ] as [() => unknown, RegExp][])
      expect(make, String(msg)).toThrow(msg);
  });

  it('a cache refuses a batch, head count or head size that changes mid-cache', () => {
    for (const s of [new HostStorage(), new H2OStorage({ budget: 8 }), new KIVIStorage({ bits: 2 })]) {
      s.append(0, posKV(2, 3, 4, 0), 0);
      expect(() => s.append(0, posKV(3, 1, 4, 3), 3)).toThrow(/holds \[1, 2, ·, 4\] keys; got \[1,3,1,4\]/);
      expect(() => s.append(0, posKV(2, 1, 8, 3), 3)).toThrow(/head size cannot change/);
      s.reset();
      s.append(0, posKV(3, 1, 8, 0), 0); // after reset() anything goes
      expect(s.length(0)).toBe(1);
    }
  });

  it('StreamingLLM keeps the real sinks through a chunk larger than its window', () => {
    const s = new StreamingLLMStorage({ sinks: 4, window: 8 });
    s.append(0, posKV(1, 4, 2, 0), 0);
    s.append(0, posKV(1, 20, 2, 4), 4); // the chunk is attended in full, the sinks are not evicted for it
    s.append(0, posKV(1, 1, 2, 24), 24);
    expect(keptPositions(s)).toEqual([0, 1, 2, 3, 17, 18, 19, 20, 21, 22, 23, 24]);
  });

  it("SnapKV's held positions and length are the selection as soon as the prefill has voted", () => {
    const s = new SnapKVStorage({ budget: 4, window: 2, kernel: 1 });
    s.append(0, posKV(1, 8, 2, 0), 0);
    s.observe(
      0,
      probs(2, 8, 8, (_h, _q, j) => [0.1, 0.1, 0.9, 0.1, 0.1, 0.8, 0.1, 0.1][j]!),
    );
    const early = { held: s.heldPositions(0), length: s.length(0) };
    s.stats(); // applies the selection
    expect(early).toEqual({ held: s.heldPositions(0), length: s.length(0) });
    expect(early.held).toEqual([2, 5, 6, 7]);
  });

  it('KVTC: reset() forgets chunks; a prefill past 65 536 tokens is cut into chunks a container holds', () => {
    const plan = fitPlan(cal, calRows, { ratio: 8 });
    const s = new KVTCStorage(cal, plan, { sinks: 4, window: 8, every: 4 });
    const cache = new nn.KVCache(s);
    const run = (ids: number[]) =>
      noGrad(() =>
        tidy(
          () => void model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), { cache }),
        ),
      );
    run(prompt);
    expect(s.chunks.length).toBeGreaterThan(0);
    cache.reset();
    expect(s.chunks).toEqual([]);
    expect(s.stats()).toEqual({ tokensSeen: 0, tokensHeld: 0, bytes: 0, fp16Bytes: 0 });
    run(prompt.slice(0, 20));
    expect(s.chunks.map((c) => [c.start, c.count])).toEqual([[4, 8]]);
    expect(decodeCache(s.serialize(), cal).k.length).toBe(20 * cal.layers * cal.heads * cal.headDim);
    // A long prefill straight into the storage (random rows of the model's shape).
    const long = new KVTCStorage(cal, plan, { sinks: 4, window: 8, every: 16 });
    const T = 70_000;
    const rng = new Rng(5);
    for (let l = 0; l < cal.layers; l++) {
      const x = Float32Array.from({ length: cal.heads * T * cal.headDim }, () => rng.normal());
      const kv = tensor(x, { shape: [1, cal.heads, T, cal.headDim] });
      long.append(l, { k: kv, v: kv }, 0);
      kv.dispose();
    }
    expect(long.chunks.map((c) => c.count)).toEqual([65_536, T - 4 - 8 - 65_536 - ((T - 4 - 8 - 65_536) % 16)]);
    expect(readHeader(long.serialize()).tokens).toBe(T);
  });

  it('KVTC restore refuses another calibration, another plan, other sinks and padding', () => {
    const plan4 = fitPlan(cal, calRows, { ratio: 4 });
    const plan16 = fitPlan(cal, calRows, { ratio: 16 });
    const live = new KVTCStorage(cal, plan4, { sinks: 4, window: 8, every: 4 });
    const cache = new nn.KVCache(live);
    noGrad(() =>
      tidy(() => void model.forward(tensor(Int32Array.from(prompt), { shape: [1, 40], dtype: 'int32' }), { cache })),
    );
    const bytes = live.serialize();
    expect(() => KVTCStorage.restore(bytes, cal, plan16)).toThrow(/coded with another plan/);
    expect(() => KVTCStorage.restore(bytes, cal, plan4, { sinks: 8 })).toThrow(/keeps 4 sinks; options say 8/);
    expect(() => KVTCStorage.restore(bytes, cal, plan4, { padding: [3] })).toThrow(/padding does not apply/);
    // A short prefix (no KVTC chunk yet) is checked against the calibration too.
    const short = new KVTCStorage(cal, plan4, { sinks: 4, window: 64 });
    const sc = new nn.KVCache(short);
    noGrad(() =>
      tidy(
        () =>
          void model.forward(tensor(Int32Array.from(prompt.slice(0, 10)), { shape: [1, 10], dtype: 'int32' }), {
            cache: sc,
          }),
      ),
    );
    const other = calibrate(lowRankRowsLike(cal, 7));
    expect(() =>
      KVTCStorage.restore(short.serialize(), other, fitPlan(other, lowRankRowsLike(cal, 7), { ratio: 4 })),
    ).toThrow(CalibrationMismatchError);
    // A prefix that is all sinks so far fills its remaining sinks before anything is compressed.
    const tiny = new KVTCStorage(cal, plan4, { sinks: 4, window: 2, every: 2 });
    const tc = new nn.KVCache(tiny);
    noGrad(() =>
      tidy(
        () =>
          void model.forward(tensor(Int32Array.from(prompt.slice(0, 3)), { shape: [1, 3], dtype: 'int32' }), {
            cache: tc,
          }),
      ),
    );
    const back = KVTCStorage.restore(tiny.serialize(), cal, plan4, { window: 2, every: 2 });
    noGrad(() =>
      tidy(
        () =>
          void model.forward(tensor(Int32Array.from(prompt.slice(3, 12)), { shape: [1, 9], dtype: 'int32' }), {
            cache: back.cache,
          }),
      ),
    );
    expect(back.storage.chunks[0]!.start).toBe(4);
  });
});

/** Rows of the calibration's shape but other values (another "model"): its fingerprint differs. */
function lowRankRowsLike(c: { layers: number; heads: number; headDim: number }, seed: number) {
  const rng = new Rng(seed);
  const n = 64;
  const P = c.layers * c.heads * c.headDim;
  return {
    layers: c.layers,
    heads: c.heads,
    headDim: c.headDim,
    n,
    k: Float32Array.from({ length: n * P }, () => rng.normal()),
    v: Float32Array.from({ length: n * P }, () => rng.normal()),
    positions: Int32Array.from({ length: n }, (_, i) => i),
  };
}

let fixture: nn.CausalLM | null = null;
/** The smallest retrieval fixture (2 layers, 4 query and 2 KV heads), loaded once. */
const trained = () => {
  fixture ??= loadModel(
    new Uint8Array(readFileSync(new URL('../bench/fixtures/retrieval-lm-v2.safetensors', import.meta.url))),
  );
  return fixture;
};

describe('H2O and TOVA while a model decodes: the tokens kept are the rule applied to the attention it produced', () => {
  // A float64 reference of each rule over absolute positions, fed with the attention probabilities the model
  // hands the storage (observe), and compared with what the storage holds after every step: it checks the
  // wiring (the right probabilities, GQA groups, accumulation across steps) that the hand-built unit tests above
  // cannot. Ties go to the earlier position, as in the storages.
  type Ref = { held: number[]; score: Map<number, number> }[]; // per KV head
  const top = (cands: number[], score: Map<number, number>, n: number) =>
    [...cands]
      .sort((a, b) => (score.get(b) ?? 0) - (score.get(a) ?? 0) || a - b)
      .slice(0, Math.max(0, n))
      .sort((a, b) => a - b);
  for (const kind of ['h2o', 'tova'] as const)
    it(kind, () => {
      const budget = 12;
      const storage = kind === 'h2o' ? new H2OStorage({ budget, recentRatio: 0.5 }) : new TOVAStorage({ budget });
      const Hkv = 2;
      const Hq = 4;
      const ref = new Map<number, Ref>();
      const refOf = (l: number) => {
        let r = ref.get(l);
        if (!r) ref.set(l, (r = Array.from({ length: Hkv }, () => ({ held: [], score: new Map() }))));
        return r;
      };
      // eviction before an append of T tokens at `pos`, as each rule defines it; then the append
      const append = storage.append.bind(storage);
      storage.append = (layer, kv, pos) => {
        const T = kv.k.shape[2]!;
        for (const r of refOf(layer)) {
          const allowed = budget - T;
          if (r.held.length > allowed) {
            if (kind === 'h2o') {
              const recent = Math.max(0, Math.min(allowed, Math.floor(budget * 0.5) - T));
              const rest = r.held.slice(0, r.held.length - recent);
              r.held = [...top(rest, r.score, allowed - recent), ...r.held.slice(r.held.length - recent)];
            } else r.held = top(r.held, r.score, allowed);
          }
          for (let t = 0; t < T; t++) r.held.push(pos + t);
        }
        append(layer, kv, pos);
      };
      const observe = storage.observe.bind(storage);
      let calls = 0;
      storage.observe = (layer, probs) => {
        calls++;
        const [, hq, Tq, L] = probs.shape as number[];
        const p = probs.dataSync();
        refOf(layer).forEach((r, h) => {
          expect(r.held.length).toBe(L);
          if (kind === 'tova') r.score = new Map(); // TOVA scores by the last query alone, over all heads
          r.held.forEach((pos, j) => {
            let s = 0;
            if (kind === 'h2o')
              for (let q0 = h * (Hq / Hkv); q0 < (h + 1) * (Hq / Hkv); q0++)
                for (let q = 0; q < Tq!; q++) s += p[(q0 * Tq! + q) * L! + j]!;
            else for (let q0 = 0; q0 < hq!; q0++) s += p[(q0 * Tq! + Tq! - 1) * L! + j]! / hq!;
            r.score.set(pos, (r.score.get(pos) ?? 0) + s);
          });
        });
        observe(layer, probs);
      };
      const cache = new nn.KVCache(storage);
      // A trained fixture: its attention picks tokens out (an untrained model's is near uniform, and H2O's
      // accumulated scores would then just favour the oldest tokens, whatever the wiring).
      const lm = trained();
      noGrad(() => {
        const feed = (ids: number[]) =>
          tidy(
            () => void lm.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), { cache }),
          );
        feed(prompt.slice(0, 10));
        for (const t of [...prompt.slice(10, 30), ...cont]) {
          feed([t]);
          for (let l = 0; l < 2; l++)
            for (let h = 0; h < Hkv; h++)
              expect(storage.heldPositions(l, 0, h), `layer ${l} head ${h}`).toEqual(refOf(l)[h]!.held);
        }
      });
      expect(storage.heldPositions(0, 0, 0).length).toBe(budget);
      expect(calls).toBe(2 * (1 + 20 + cont.length)); // every layer's attention of every step reached the storage
    });
});
