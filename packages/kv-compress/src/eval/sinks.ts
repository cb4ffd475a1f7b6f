// Attention-sink diagnostics: how much attention each layer and head puts on the first positions, and how the
// keys and values held there differ from the rest. StreamingLLM (Xiao et al., "Efficient Streaming Language
// Models with Attention Sinks", 2023, arXiv 2309.17453) found LLMs dump attention on the first tokens whatever
// they are; Gu et al. ("When Attention Sink Emerges in Language Models: An Empirical View", 2024, arXiv
// 2410.10781) measure it per head as the mean first-token attention α over queries, count a head as a sink when
// α > ε = 0.3 (their Sink₁^ε), and find the sink acts as a key bias (values small), not through large key norms.
// KVTC keeps 4 sinks raw because compressing them collapses retrieval on such models; whether our tiny LMs have
// sinks at all is a property of the model, which this measures instead of assuming.
import { nn, noGrad, tensor, tidy } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';
import { Rng } from '../linalg.js';
import { observingStorage } from '../weights.js';
import { RETRIEVAL_SUITE } from './suite.js';
import { kvLookup, passkey, type Sample, VOCAB, variableTracking } from './tasks.js';

export interface SinkStatsOptions {
  /** leading positions counted as sinks (default 4, KVTC's and StreamingLLM's s) */
  sinks?: number;
  /** ε of Gu et al.'s Sink₁^ε: a head counts as a sink head when its mean first-token mass exceeds it (0.3) */
  epsilon?: number;
}

/** One sequence, and which of its query positions to average over (default: every position ≥ sinks). */
export interface SinkSequence {
  ids: ArrayLike<number>;
  at?: ArrayLike<number>;
}

export interface HeadSinkStats {
  layer: number;
  /** query head */
  head: number;
  /** mean over the counted queries t of Σ_{s < sinks} p[t, s] */
  sinkMass: number;
  /** mean over the counted queries of p[t, 0] (Gu et al.'s α for the first token) */
  firstMass: number;
  /** mean over the counted queries of p[t, t]: where a head with nothing to read parks when it has no sink */
  selfMass: number;
}

export interface KvNormStats {
  layer: number;
  kvHead: number;
  /** mean L2 norms of the keys (RoPE is a rotation: the norm is the same before and after it) and values */
  keyFirst: number;
  keySinks: number;
  keyRest: number;
  valueFirst: number;
  valueSinks: number;
  valueRest: number;
}

export interface SinkStats {
  sinks: number;
  epsilon: number;
  sequences: number;
  /** query positions averaged over */
  queries: number;
  heads: HeadSinkStats[];
  /**
   * What causal attention spread evenly over the visible keys would put on the sinks and on the first token,
   * averaged over the same queries: the baseline a head that ignores position gives.
   */
  uniformSinkMass: number;
  uniformFirstMass: number;
  /** share of (layer, head) pairs whose firstMass exceeds ε (Gu et al.'s Sink₁^ε) */
  sinkRate: number;
  norms: KvNormStats[];
}

/**
 * Attention mass on the first `sinks` positions (and on the first alone) per layer and query head, averaged over
 * every counted query position of every sequence, and the mean key/value norms of the sink positions against
 * the rest per layer and KV head (each position of each sequence weighs once).
 */
export function sinkStats(model: nn.CausalLM, sequences: SinkSequence[], opts: SinkStatsOptions = {}): SinkStats {
  const sinks = opts.sinks ?? 4;
  const epsilon = opts.epsilon ?? 0.3;
  if (!(Number.isInteger(sinks) && sinks >= 1))
    throw new ValueError(`sinkStats: sinks must be an integer ≥ 1; got ${sinks}`);
  if (!(epsilon > 0 && epsilon < 1)) throw new ValueError(`sinkStats: epsilon must lie in (0, 1); got ${epsilon}`);
  if (!sequences.length) throw new ValueError('sinkStats: needs at least one sequence');
  const { nLayers: L, nHeads: Hq, nKvHeads } = model.config;
  const H = nKvHeads ?? Hq;
  const V = model.config.vocabSize;
  const sinkSum = new Float64Array(L * Hq);
  const firstSum = new Float64Array(L * Hq);
  const selfSum = new Float64Array(L * Hq);
  // norm sums per (layer, KV head): first, sinks, rest; with position counts
  const kn = new Float64Array(L * H * 3);
  const vn = new Float64Array(L * H * 3);
  const count = [0, 0, 0];
  let queries = 0;
  let uniformSink = 0;
  let uniformFirst = 0;
  sequences.forEach((seq, i) => {
    const T = seq.ids.length;
    if (T < 1) throw new ValueError(`sinkStats: sequence ${i} is empty`);
    for (let t = 0; t < T; t++) {
      const id = seq.ids[t]!;
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new ValueError(`sinkStats: token ${id} at ${t} of sequence ${i} is outside the vocabulary [0, ${V})`);
    }
    const at = seq.at ? Array.from(seq.at) : Array.from({ length: Math.max(0, T - sinks) }, (_, j) => sinks + j);
    for (const t of at)
      if (!(Number.isInteger(t) && t >= 0 && t < T))
        throw new ValueError(`sinkStats: query position ${t} of sequence ${i} is outside [0, ${T})`);
    const storage = observingStorage((l, probs, inner) => {
      const [, hq, Tq, S] = probs.shape as [number, number, number, number];
      const p = probs.contiguous().dataSync();
      for (let h = 0; h < hq; h++)
        for (const t of at) {
          // one forward pass over the whole sequence: query t is row t (Tq = S = T)
          const row = (h * Tq + t) * S;
          let m = 0;
          for (let s = 0; s < Math.min(sinks, t + 1); s++) m += p[row + s]!;
          sinkSum[l * Hq + h]! += m;
          firstSum[l * Hq + h]! += p[row]!;
          selfSum[l * Hq + h]! += p[row + t]!;
        }
      const kv = inner.read(l)!;
      const kd = kv.k.contiguous().dataSync();
      const vd = kv.v.contiguous().dataSync();
      const d = kv.k.shape[3]!;
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++) {
          let k2 = 0;
          let v2 = 0;
          for (let j = 0; j < d; j++) {
            k2 += kd[(h * T + t) * d + j]! ** 2;
            v2 += vd[(h * T + t) * d + j]! ** 2;
          }
          const b = (l * H + h) * 3;
          // first counts in both "first" and "sinks"; rest is every position ≥ sinks
          if (t === 0) {
            kn[b]! += Math.sqrt(k2);
            vn[b]! += Math.sqrt(v2);
          }
          const g = t < sinks ? 1 : 2;
          kn[b + g]! += Math.sqrt(k2);
          vn[b + g]! += Math.sqrt(v2);
        }
    });
    noGrad(() =>
      tidy(() => {
        model.forward(tensor(Int32Array.from(seq.ids), { shape: [1, T], dtype: 'int32' }), {
          cache: new nn.KVCache(storage),
        });
      }),
    );
    queries += at.length;
    for (const t of at) {
      uniformSink += Math.min(sinks, t + 1) / (t + 1);
      uniformFirst += 1 / (t + 1);
    }
    count[0]! += 1;
    count[1]! += Math.min(sinks, T);
    count[2]! += Math.max(0, T - sinks);
  });
  const heads: HeadSinkStats[] = [];
  let sinkHeads = 0;
  for (let l = 0; l < L; l++)
    for (let h = 0; h < Hq; h++) {
      const firstMass = queries ? firstSum[l * Hq + h]! / queries : Number.NaN;
      if (firstMass > epsilon) sinkHeads++;
      const sinkMass = queries ? sinkSum[l * Hq + h]! / queries : Number.NaN;
      const selfMass = queries ? selfSum[l * Hq + h]! / queries : Number.NaN;
      heads.push({ layer: l, head: h, sinkMass, firstMass, selfMass });
    }
  const norms: KvNormStats[] = [];
  const mean = (x: Float64Array, b: number, g: number) => (count[g]! ? x[b + g]! / count[g]! : Number.NaN);
  for (let l = 0; l < L; l++)
    for (let h = 0; h < H; h++) {
      const b = (l * H + h) * 3;
      norms.push({
        layer: l,
        kvHead: h,
        keyFirst: mean(kn, b, 0),
        keySinks: mean(kn, b, 1),
        keyRest: mean(kn, b, 2),
        valueFirst: mean(vn, b, 0),
        valueSinks: mean(vn, b, 1),
        valueRest: mean(vn, b, 2),
      });
    }
  return {
    sinks,
    epsilon,
    sequences: sequences.length,
    queries,
    heads,
    uniformSinkMass: queries ? uniformSink / queries : Number.NaN,
    uniformFirstMass: queries ? uniformFirst / queries : Number.NaN,
    sinkRate: sinkHeads / (L * Hq),
    norms,
  };
}

/**
 * The retrieval samples RETRIEVAL_SUITE evaluates (runSuite's draws: the same seed, sizes and order, so with the
 * same counts they are the same samples), each as one teacher-forced sequence: context, then every query's
 * prompt and answer, as runRetrieval feeds them.
 */
export function evaluationSamples(
  n: { kv: number; passkey: number; vt: number },
  seed = 2026,
): { kv: Sample[]; passkey: Sample[]; vt: Sample[] } {
  const sz = RETRIEVAL_SUITE.sizes!;
  const rng = new Rng(seed);
  const kv = Array.from({ length: n.kv }, () => kvLookup(rng, sz.kv!));
  const pk = Array.from({ length: n.passkey }, (_, i) => passkey(rng, { ...sz.passkey!, depth: (i % 11) / 10 }));
  const vt = Array.from({ length: n.vt }, () => variableTracking(rng, sz.vt!));
  return { kv, passkey: pk, vt };
}

/**
 * A sample as a sink sequence. `at` = 'context': every context position ≥ sinks; 'answer': the positions that
 * predict an answer token (the last prompt token, then every answer token but the last) — where retrieval reads.
 */
export function sampleSequence(s: Sample, at: 'context' | 'answer', sinks = 4): SinkSequence {
  const ids = [...s.context];
  const answerAt: number[] = [];
  for (const q of s.queries) {
    ids.push(...q.prompt);
    for (let i = 0; i < q.answer.length; i++) {
      answerAt.push(ids.length - 1);
      ids.push(q.answer[i]!);
    }
  }
  if (at === 'answer') return { ids, at: answerAt };
  return { ids, at: Array.from({ length: Math.max(0, s.context.length - sinks) }, (_, j) => sinks + j) };
}

/**
 * Held-out text documents as runSuite builds them for the text perplexity (BOS, then `context` characters;
 * the same draws for the same seed and text).
 */
export function evaluationTextSequences(
  text: Int32Array,
  o: { count: number; context: number; continuation: number } = { count: 16, context: 192, continuation: 32 },
  seed = 2026,
): SinkSequence[] {
  const tr = new Rng(seed + 2);
  const out: SinkSequence[] = [];
  for (let i = 0; i < o.count; i++) {
    const at = tr.int(text.length - o.context - o.continuation);
    out.push({ ids: [VOCAB.bos, ...text.subarray(at, at + o.context)] });
  }
  return out;
}

/** A plain-text table of the per-head masses and the per-KV-head norms. */
export function formatSinkStats(name: string, s: SinkStats): string {
  const f = (x: number) => x.toFixed(3);
  const lines = [
    `${name}: ${s.sequences} sequences, ${s.queries} queries; uniform attention would give ${f(s.uniformSinkMass)} on ` +
      `positions 0..${s.sinks - 1}, ${f(s.uniformFirstMass)} on position 0; sink heads (first-token mass > ${s.epsilon}): ` +
      `${(100 * s.sinkRate).toFixed(0)}%`,
    `| layer | head | mass on 0..${s.sinks - 1} | mass on 0 | mass on itself |`,
    '|---|---|---|---|---|',
    ...s.heads.map((h) => `| ${h.layer} | ${h.head} | ${f(h.sinkMass)} | ${f(h.firstMass)} | ${f(h.selfMass)} |`),
    '',
    `| layer | KV head | ‖k‖ first / sinks / rest | ‖v‖ first / sinks / rest |`,
    '|---|---|---|---|',
    ...s.norms.map(
      (n) =>
        `| ${n.layer} | ${n.kvHead} | ${f(n.keyFirst)} / ${f(n.keySinks)} / ${f(n.keyRest)} | ` +
        `${f(n.valueFirst)} / ${f(n.valueSinks)} / ${f(n.valueRest)} |`,
    ),
  ];
  return lines.join('\n');
}
