// Synthetic data for tests: KV-like rows with low-rank structure shared across layers and heads.

import { manualSeed, nn } from '@tessera/tensor-core';
import type { KVRows } from '../src/calibration.js';
import type { Group } from '../src/dp.js';
import type { SuiteOptions } from '../src/eval/suite.js';
import { VOCAB } from '../src/eval/tasks.js';
import { Rng } from '../src/linalg.js';
import type { QuantType } from '../src/quant.js';
import { ropeRows } from '../src/rope.js';

/** Rows x = z·W + μ + noise with z ∈ ℝ^rank, shared W across layers; keys get RoPE at their positions. */
export function lowRankRows(o: {
  layers: number;
  heads: number;
  headDim: number;
  n: number;
  rank: number;
  noise?: number;
  seed?: number;
  start?: number;
}): KVRows {
  const rng = new Rng(o.seed ?? 7);
  const P = o.layers * o.heads * o.headDim;
  const params = [0, 1].map(() => ({
    w: new Float32Array(o.rank * P).map(() => rng.normal()),
    mu: new Float32Array(P).map(() => rng.normal() * 0.5),
  }));
  const data = new Rng((o.seed ?? 7) + 1000 + (o.start ?? 0));
  const mk = ({ w, mu }: { w: Float32Array; mu: Float32Array }) => {
    const x = new Float32Array(o.n * P);
    for (let i = 0; i < o.n; i++) {
      const z = Array.from({ length: o.rank }, (_, c) => data.normal() / (1 + c));
      for (let j = 0; j < P; j++) {
        let s = mu[j]! + (o.noise ?? 0) * data.normal();
        for (let c = 0; c < o.rank; c++) s += z[c]! * w[c * P + j]!;
        x[i * P + j] = s;
      }
    }
    return x;
  };
  const k = mk(params[0]!);
  const v = mk(params[1]!);
  const positions = Int32Array.from({ length: o.n }, (_, i) => (o.start ?? 0) + i);
  ropeRows(k, o.n, P, 0, o.layers * o.heads, o.headDim, positions);
  return { layers: o.layers, heads: o.heads, headDim: o.headDim, n: o.n, k, v, positions };
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** Every tiling of [0, r) into blocks of the given sizes, each block dropped or one of the types: the brute force the DP
 * is checked against. */
export function allTilings(r: number, sizes: number[], types: QuantType[]): Group[][] {
  const all: Group[][] = [];
  const rec = (i: number, acc: Group[]) => {
    if (i === r) return void all.push([...acc]);
    for (const s of sizes) {
      if (i + s > r) continue;
      for (const t of ['none', ...types] as QuantType[]) rec(i + s, [...acc, { start: i, size: s, type: t }]);
    }
  };
  rec(0, []);
  return all;
}

/**
 * Attention probabilities of query t of layer l, query head g over keys 0..t, recomputed by hand in float64 from
 * the collected pre-RoPE queries and RoPE'd keys of a model with 2 layers, 4 query heads and 2 KV heads of `dh`
 * (the test model of the weights and row-sampling suites).
 */
export function handAttentionRow(
  q: Float32Array,
  k: Float32Array,
  dh: number,
  l: number,
  g: number,
  t: number,
): number[] {
  const Pq = 2 * 4 * dh;
  const Pk = 2 * 2 * dh;
  const qt = Float32Array.from(q.subarray(t * Pq + (l * 4 + g) * dh, t * Pq + (l * 4 + g + 1) * dh));
  ropeRows(qt, 1, dh, 0, 1, dh, [t]);
  const logits = Array.from({ length: t + 1 }, (_, s) => {
    let dot = 0;
    for (let a = 0; a < dh; a++) dot += qt[a]! * k[s * Pk + (l * 2 + (g >> 1)) * dh + a]!;
    return dot / Math.sqrt(dh);
  });
  const mx = Math.max(...logits);
  const z = logits.reduce((acc, v) => acc + Math.exp(v - mx), 0);
  return logits.map((v) => Math.exp(v - mx) / z);
}

/**
 * The small GQA model (2 layers, 4 query heads, 2 KV heads of 4) and 12-token input that `handAttentionRow` is
 * written for, seeded, in eval mode.
 */
export function tinyAttentionModel(seed: number): { model: nn.CausalLM; ids: number[]; dh: number } {
  manualSeed(seed);
  const config: nn.CausalLMConfig = { vocabSize: 20, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 32 };
  const model = new nn.CausalLM(config);
  model.eval();
  return { model, ids: [1, 5, 7, 2, 9, 3, 3, 11, 4, 0, 8, 6], dh: 4 };
}

/**
 * The evaluation suite's smallest set-up: an untrained GQA model with the task vocabulary (p = 2 layers · 2 KV
 * heads · 4 = 16 per K/V) and suite options with tiny contexts, two short calibration sequences and no timings —
 * enough to run a row's whole path (calibration → PCA → DP → live cache → retrieval) in a test.
 */
export function tinySuite(kvQueries: number): { model: nn.CausalLM; base: SuiteOptions } {
  manualSeed(9);
  const model = new nn.CausalLM({ vocabSize: VOCAB.size, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 32 });
  const base: SuiteOptions = {
    sizes: {
      kv: { pairs: 4, maxFiller: 2, queries: kvQueries },
      passkey: { length: 24 },
      vt: { hops: 1, chains: 2, maxFiller: 2 },
    },
    calibrationSequences: 2,
    calibrationLength: 48,
    window: 8,
    evictionRatios: [],
    skipTimings: true,
  };
  return { model, base };
}
