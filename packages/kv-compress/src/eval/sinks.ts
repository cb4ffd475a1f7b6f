// Attention-sink diagnostics: how much attention each layer and head puts on the first positions, and how the
// keys and values held there differ from the rest. StreamingLLM (Xiao et al., "Efficient Streaming Language
// Models with Attention Sinks", 2023, arXiv 2309.17453) found LLMs dump attention on the first tokens whatever
// they are; Gu et al. ("When Attention Sink Emerges in Language Models: An Empirical View", 2024, arXiv
// 2410.10781) measure it per head as the mean first-token attention α over queries, count a head as a sink when
// α > ε = 0.3 (their Sink₁^ε), and find the sink acts as a key bias (values small), not through large key norms.
// KVTC keeps 4 sinks raw because compressing them collapses retrieval on such models; whether our tiny LMs have
// sinks at all is a property of the model, which this measures instead of assuming.
import { nn, noGrad, tensor, tidy } from '@tessera/tensor-core';
import { type Calibration, calibrate, fitPlan, type KVRows, type KvtcPlan } from '../calibration.js';
import { collectKV } from '../collect.js';
import { ValueError } from '../errors.js';
import { sliceRows } from '../format.js';
import { roundTrip } from '../kvtc.js';
import { Rng } from '../linalg.js';
import { ropeRows } from '../rope.js';
import { collectQueries, observingStorage } from '../weights.js';
import { attentionSampledSet, calibrationSet, RETRIEVAL_SUITE, type SuiteOptions, suiteContext } from './suite.js';
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
  if (text.length <= o.context + o.continuation)
    throw new ValueError(
      `evaluationTextSequences: the text has ${text.length} characters; the documents need more than ${o.context + o.continuation}`,
    );
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

// ---- Do the sinks survive compression? ----
// KVTC keeps s raw sinks because (arXiv 2511.01815, §4) compressing them collapses retrieval: the sink tokens are
// outliers a PCA calibrated without them cannot represent. The ablation rows `kvtc 64× no sinks` measure the
// end result; this measures the step in between — how well the codec reconstructs positions 0..s−1 against the
// rest, and whether the heads that lean on position 0 still find it when it is read back from the codec.

/**
 * What to diagnose: a KVTC calibration and plan (what KVTCStorage codes with), or any map from a chunk of rows
 * to its reconstruction (same shape; an identity map is the control).
 */
export type SinkCodec = { cal: Calibration; plan: KvtcPlan } | ((rows: KVRows) => KVRows);

export interface SinkReconstructionOptions {
  /** leading positions counted as sinks: the classes are position 0, positions 1..sinks−1, the rest (default 4) */
  sinks?: number;
  /** a query head is a sink head when its exact mean first-token mass exceeds ε (Gu et al.'s Sink₁^ε; 0.3) */
  epsilon?: number;
  /** raw recent tokens of the cache (default RETRIEVAL_SUITE's window, 32) */
  window?: number;
  /** tokens per compressed chunk (KVTCStorage's `every`, default 16) */
  every?: number;
}

/** Reconstruction error of one position class, each compressed position weighing once. */
export interface ClassError {
  positions: number;
  /** mean over the positions of ‖x − x̂‖/‖x‖ */
  rel: number;
  /** mean ‖x − x̂‖ and mean ‖x‖: err / norm is the error relative to the class's mean norm */
  err: number;
  norm: number;
}

export interface KvReconstruction {
  layer: number;
  kvHead: number;
  /** keys compare as cached (RoPE applied); RoPE is a rotation per position, so the norms are the codec's own */
  key: { first: ClassError; nextSinks: ClassError; rest: ClassError };
  value: { first: ClassError; nextSinks: ClassError; rest: ClassError };
}

export interface HeadReconstruction {
  layer: number;
  /** query head */
  head: number;
  /** mean over the counted queries of p[t, 0] with exact keys and with the reconstructed ones (same queries) */
  firstMass: number;
  firstMassHat: number;
  /** the same for Σ_{s < sinks} p[t, s] */
  sinkMass: number;
  sinkMassHat: number;
  /** firstMass > ε */
  sinkHead: boolean;
  /** ‖o − ô‖/‖o‖ pooled over the counted queries: o = Σ p v exact, ô with the cache's reconstructed keys and values */
  outputErr: number;
  /** the same with only positions 0..sinks−1 reconstructed (the rest exact): what compressing the sinks alone does */
  outputErrSinksOnly: number;
}

export interface SinkReconstruction {
  sinks: number;
  epsilon: number;
  window: number;
  every: number;
  sequences: number;
  /** queries counted: those whose cache already holds position 0 compressed */
  queries: number;
  /** queries skipped because position 0 was still in the raw window */
  skipped: number;
  kv: KvReconstruction[];
  heads: HeadReconstruction[];
  summary: {
    /** means over (layer, KV head) of each class's rel and err / norm */
    key: Record<'first' | 'nextSinks' | 'rest', { rel: number; relToMeanNorm: number }>;
    value: Record<'first' | 'nextSinks' | 'rest', { rel: number; relToMeanNorm: number }>;
    sinkHeads: number;
    /** means over the sink heads / over the other heads (NaN where there are none) */
    firstMass: { sinkHeads: number; others: number };
    firstMassHat: { sinkHeads: number; others: number };
    outputErr: { sinkHeads: number; others: number };
    outputErrSinksOnly: { sinkHeads: number; others: number };
  };
}

/** One sequence as collected rows: pre-RoPE queries [T, layers·nHeads·headDim] (collectQueries) and its KV rows. */
export interface SinkProbe {
  queries: Float32Array;
  rows: KVRows;
  /** query positions averaged over (default: every position ≥ sinks) */
  at?: ArrayLike<number>;
}

/** Attention layout of the probes: query heads, and RoPE as the model applies it to queries. */
export interface ProbeAttention {
  nHeads: number;
  rope: boolean;
  ropeBase?: number;
}

const CLASSES = ['first', 'nextSinks', 'rest'] as const;

/** Sums of one diagnostic over sequences (one sequence at a time, so rows of many sequences never pile up). */
class ReconstructionSums {
  sequences = 0;
  queries = 0;
  skipped = 0;
  // per (layer, KV head, kind k/v, class): Σ rel, Σ err, Σ norm, count
  readonly cls: Float64Array;
  // per (layer, query head): first, firstHat, sink, sinkHat, Σ‖o−ô‖², Σ‖o‖², Σ‖o−ô₀‖²
  readonly head: Float64Array;
  constructor(
    readonly L: number,
    readonly H: number,
    readonly Hq: number,
    readonly o: Required<SinkReconstructionOptions>,
  ) {
    this.cls = new Float64Array(L * H * 2 * 3 * 4);
    this.head = new Float64Array(L * Hq * 7);
  }

  add(p: SinkProbe, attn: ProbeAttention, codec: SinkCodec, i: number): void {
    const { L, H, Hq } = this;
    const { sinks: S, window, every } = this.o;
    const { rows } = p;
    const d = rows.headDim;
    const T = rows.n;
    const f = H * d;
    const P = L * f;
    if (rows.layers !== L || rows.heads !== H)
      throw new ValueError(
        `sinkReconstruction: sequence ${i} has ${rows.layers}×${rows.heads} KV layers×heads; expected ${L}×${H}`,
      );
    if (T < 1) throw new ValueError(`sinkReconstruction: sequence ${i} is empty`);
    if (rows.k.length !== T * P || rows.v.length !== T * P)
      throw new ValueError(
        `sinkReconstruction: sequence ${i}'s rows hold ${rows.k.length} key values; expected ${T * P}`,
      );
    const Pq = L * Hq * d;
    if (p.queries.length !== T * Pq)
      throw new ValueError(
        `sinkReconstruction: sequence ${i} has ${p.queries.length} query values; expected ${T * Pq}`,
      );
    const at = p.at ? Array.from(p.at) : Array.from({ length: Math.max(0, T - S) }, (_, j) => S + j);
    for (const t of at)
      if (!(Number.isInteger(t) && t >= 0 && t < T))
        throw new ValueError(`sinkReconstruction: query position ${t} of sequence ${i} is outside [0, ${T})`);

    // The cache codes chunks of `every` tokens as they leave the window; with s = 0 they start at 0, every, 2·every…
    // (KVTCStorage's chunks while decoding one token at a time), so each block is coded on its own here.
    const n = Math.floor(T / every) * every;
    const kh = Float32Array.from(rows.k);
    const vh = Float32Array.from(rows.v);
    for (let c0 = 0; c0 < n; c0 += every) {
      const part = sliceRows(rows, c0, c0 + every);
      const back = typeof codec === 'function' ? codec(part) : roundTrip(codec.cal, codec.plan, part);
      if (back.k.length !== part.k.length || back.v.length !== part.v.length)
        throw new ValueError('sinkReconstruction: the codec returned rows of another shape');
      kh.set(back.k, c0 * P);
      vh.set(back.v, c0 * P);
    }
    for (let t = 0; t < n; t++) {
      const c = t === 0 ? 0 : t < S ? 1 : 2;
      for (let l = 0; l < L; l++)
        for (let h = 0; h < H; h++) {
          const o = t * P + l * f + h * d;
          for (const [kind, x, xh] of [
            [0, rows.k, kh],
            [1, rows.v, vh],
          ] as const) {
            let e2 = 0;
            let x2 = 0;
            for (let j = 0; j < d; j++) {
              e2 += (x[o + j]! - xh[o + j]!) ** 2;
              x2 += x[o + j]! ** 2;
            }
            const e = Math.sqrt(e2);
            const nx = Math.sqrt(x2);
            const b = ((((l * H + h) * 2 + kind) * 3 + c) * 4) | 0;
            this.cls[b]! += nx > 0 ? e / nx : e > 0 ? Number.POSITIVE_INFINITY : 0;
            this.cls[b + 1]! += e;
            this.cls[b + 2]! += nx;
            this.cls[b + 3]! += 1;
          }
        }
    }

    const g = Hq / H;
    const scale = 1 / Math.sqrt(d);
    const qt = new Float32Array(d);
    const lg = [new Float64Array(T), new Float64Array(T), new Float64Array(T)];
    const out = [new Float64Array(d), new Float64Array(d), new Float64Array(d)];
    for (const t of at) {
      // the cache while decoding query t (t + 1 tokens seen): [0, done) compressed, the rest raw
      const done = Math.max(0, Math.floor((t + 1 - window) / every)) * every;
      if (done === 0) {
        this.skipped++;
        continue;
      }
      this.queries++;
      const sinksDone = Math.min(S, done);
      for (let l = 0; l < L; l++)
        for (let hq = 0; hq < Hq; hq++) {
          const kvh = Math.floor(hq / g);
          qt.set(p.queries.subarray(t * Pq + (l * Hq + hq) * d, t * Pq + (l * Hq + hq + 1) * d));
          if (attn.rope) ropeRows(qt, 1, d, 0, 1, d, [t], attn.ropeBase ?? 10000);
          // logits with exact keys (0), the cache's keys (1), and only the sinks reconstructed (2)
          const mx = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
          for (let s = 0; s <= t; s++) {
            const o = s * P + l * f + kvh * d;
            let a = 0;
            let b = 0;
            for (let j = 0; j < d; j++) {
              a += qt[j]! * rows.k[o + j]!;
              b += qt[j]! * kh[o + j]!;
            }
            a *= scale;
            b *= scale;
            lg[0]![s] = a;
            lg[1]![s] = s < done ? b : a;
            lg[2]![s] = s < sinksDone ? b : a;
            for (let v = 0; v < 3; v++) mx[v] = Math.max(mx[v]!, lg[v]![s]!);
          }
          for (let v = 0; v < 3; v++) {
            const z = lg[v]!;
            let sum = 0;
            for (let s = 0; s <= t; s++) sum += z[s] = Math.exp(z[s]! - mx[v]!);
            for (let s = 0; s <= t; s++) z[s]! /= sum;
            out[v]!.fill(0);
            const hatTo = v === 0 ? 0 : v === 1 ? done : sinksDone;
            for (let s = 0; s <= t; s++) {
              const w = z[s]!;
              const src = s < hatTo ? vh : rows.v;
              const o = s * P + l * f + kvh * d;
              for (let j = 0; j < d; j++) out[v]![j]! += w * src[o + j]!;
            }
          }
          let e1 = 0;
          let e2 = 0;
          let n2 = 0;
          for (let j = 0; j < d; j++) {
            n2 += out[0]![j]! ** 2;
            e1 += (out[0]![j]! - out[1]![j]!) ** 2;
            e2 += (out[0]![j]! - out[2]![j]!) ** 2;
          }
          let sm = 0;
          let smh = 0;
          for (let s = 0; s < Math.min(S, t + 1); s++) {
            sm += lg[0]![s]!;
            smh += lg[1]![s]!;
          }
          const b = (l * Hq + hq) * 7;
          this.head[b]! += lg[0]![0]!;
          this.head[b + 1]! += lg[1]![0]!;
          this.head[b + 2]! += sm;
          this.head[b + 3]! += smh;
          this.head[b + 4]! += e1;
          this.head[b + 5]! += n2;
          this.head[b + 6]! += e2;
        }
    }
    this.sequences++;
  }

  result(): SinkReconstruction {
    const { L, H, Hq, o } = this;
    const kv: KvReconstruction[] = [];
    const cls = (l: number, h: number, kind: number, c: number): ClassError => {
      const b = (((l * H + h) * 2 + kind) * 3 + c) * 4;
      const m = this.cls[b + 3]!;
      const nan = Number.NaN;
      return {
        positions: m,
        rel: m ? this.cls[b]! / m : nan,
        err: m ? this.cls[b + 1]! / m : nan,
        norm: m ? this.cls[b + 2]! / m : nan,
      };
    };
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++) {
        const [kf, kn, kr, vf, vn, vr] = [0, 1].flatMap((kind) => [0, 1, 2].map((c) => cls(l, h, kind, c)));
        kv.push({
          layer: l,
          kvHead: h,
          key: { first: kf!, nextSinks: kn!, rest: kr! },
          value: { first: vf!, nextSinks: vn!, rest: vr! },
        });
      }
    const q = this.queries;
    const heads: HeadReconstruction[] = [];
    for (let l = 0; l < L; l++)
      for (let hq = 0; hq < Hq; hq++) {
        const b = (l * Hq + hq) * 7;
        const m = (x: number) => (q ? x / q : Number.NaN);
        const firstMass = m(this.head[b]!);
        heads.push({
          layer: l,
          head: hq,
          firstMass,
          firstMassHat: m(this.head[b + 1]!),
          sinkMass: m(this.head[b + 2]!),
          sinkMassHat: m(this.head[b + 3]!),
          sinkHead: firstMass > o.epsilon,
          outputErr: Math.sqrt(this.head[b + 4]! / this.head[b + 5]!),
          outputErrSinksOnly: Math.sqrt(this.head[b + 6]! / this.head[b + 5]!),
        });
      }
    const mean = (x: number[]) => (x.length ? x.reduce((a, y) => a + y, 0) / x.length : Number.NaN);
    const summaryOf = (kind: 'key' | 'value') =>
      Object.fromEntries(
        CLASSES.map((c) => [
          c,
          {
            rel: mean(kv.map((x) => x[kind][c].rel)),
            relToMeanNorm: mean(kv.map((x) => x[kind][c].err / x[kind][c].norm)),
          },
        ]),
      ) as SinkReconstruction['summary']['key'];
    const split = (f: (h: HeadReconstruction) => number) => ({
      sinkHeads: mean(heads.filter((h) => h.sinkHead).map(f)),
      others: mean(heads.filter((h) => !h.sinkHead).map(f)),
    });
    return {
      ...o,
      sequences: this.sequences,
      queries: q,
      skipped: this.skipped,
      kv,
      heads,
      summary: {
        key: summaryOf('key'),
        value: summaryOf('value'),
        sinkHeads: heads.filter((h) => h.sinkHead).length,
        firstMass: split((h) => h.firstMass),
        firstMassHat: split((h) => h.firstMassHat),
        outputErr: split((h) => h.outputErr),
        outputErrSinksOnly: split((h) => h.outputErrSinksOnly),
      },
    };
  }
}

function reconstructionOptions(opts: SinkReconstructionOptions): Required<SinkReconstructionOptions> {
  const o = {
    sinks: opts.sinks ?? 4,
    epsilon: opts.epsilon ?? 0.3,
    window: opts.window ?? RETRIEVAL_SUITE.window!,
    every: opts.every ?? 16,
  };
  if (!(Number.isInteger(o.sinks) && o.sinks >= 1))
    throw new ValueError(`sinkReconstruction: sinks must be an integer ≥ 1; got ${o.sinks}`);
  if (!(o.epsilon > 0 && o.epsilon < 1))
    throw new ValueError(`sinkReconstruction: epsilon must lie in (0, 1); got ${o.epsilon}`);
  if (!(Number.isInteger(o.window) && o.window >= 0))
    throw new ValueError(`sinkReconstruction: window must be an integer ≥ 0; got ${o.window}`);
  if (!(Number.isInteger(o.every) && o.every >= 1))
    throw new ValueError(`sinkReconstruction: every must be an integer ≥ 1; got ${o.every}`);
  return o;
}

function checkCodec(codec: SinkCodec, L: number, H: number, d: number): void {
  if (typeof codec === 'function') return;
  const { cal } = codec;
  if (cal.layers !== L || cal.heads !== H || cal.headDim !== d)
    throw new ValueError(
      `sinkReconstruction: the calibration is for ${cal.layers} layers × ${cal.heads} KV heads × ${cal.headDim}; ` +
        `the model has ${L} × ${H} × ${d}`,
    );
}

/**
 * `sinkReconstruction` on rows already collected (tests, or caches not produced by a CausalLM): per position
 * class the keys' and values' reconstruction error, per query head the attention mass on the first positions and
 * the attention-output error with the reconstructed cache, in float64.
 */
export function sinkReconstructionFromRows(
  probes: SinkProbe[],
  attn: ProbeAttention,
  codec: SinkCodec,
  opts: SinkReconstructionOptions = {},
): SinkReconstruction {
  const o = reconstructionOptions(opts);
  if (!probes.length) throw new ValueError('sinkReconstruction: needs at least one sequence');
  const { layers: L, heads: H, headDim: d } = probes[0]!.rows;
  if (!(Number.isInteger(attn.nHeads) && attn.nHeads >= H && attn.nHeads % H === 0))
    throw new ValueError(`sinkReconstruction: ${attn.nHeads} query heads do not group ${H} KV heads`);
  checkCodec(codec, L, H, d);
  const sums = new ReconstructionSums(L, H, attn.nHeads, o);
  probes.forEach((p, i) => {
    sums.add(p, attn, codec, i);
  });
  return sums.result();
}

/**
 * Does the codec keep the sinks? Each sequence runs through `model` once for its keys and values and once for
 * its queries; the cache it would hold with s = 0 (no raw sinks: every block of `every` tokens coded once it
 * leaves the `window`) is rebuilt through `codec`; then per position class (0, 1..sinks−1, the rest), layer and
 * KV head the reconstruction error, and per query head, over the counted queries (those whose cache already holds
 * position 0 compressed), the attention mass on position 0 and on 0..sinks−1 with exact and reconstructed keys
 * (the same exact queries) and the attention-output error.
 */
export function sinkReconstruction(
  model: nn.CausalLM,
  sequences: SinkSequence[],
  codec: SinkCodec,
  opts: SinkReconstructionOptions = {},
): SinkReconstruction {
  const o = reconstructionOptions(opts);
  if (!sequences.length) throw new ValueError('sinkReconstruction: needs at least one sequence');
  const { nLayers: L, nHeads: Hq, nKvHeads, dModel, vocabSize: V } = model.config;
  const H = nKvHeads ?? Hq;
  checkCodec(codec, L, H, dModel / Hq);
  const attn: ProbeAttention = {
    nHeads: Hq,
    rope: (model.config.positions ?? 'rope') === 'rope',
    ropeBase: model.blocks.items[0]?.attn.opts.ropeBase ?? 10000,
  };
  const sums = new ReconstructionSums(L, H, Hq, o);
  sequences.forEach((seq, i) => {
    if (seq.ids.length < 1) throw new ValueError(`sinkReconstruction: sequence ${i} is empty`);
    for (let t = 0; t < seq.ids.length; t++) {
      const id = seq.ids[t]!;
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new ValueError(
          `sinkReconstruction: token ${id} at ${t} of sequence ${i} is outside the vocabulary [0, ${V})`,
        );
    }
    sums.add({ queries: collectQueries(model, seq.ids), rows: collectKV(model, seq.ids), at: seq.at }, attn, codec, i);
  });
  return sums.result();
}

/**
 * The calibration and plan of the evaluation's `kvtc N×` row (or `kvtc N× attention-sampled`) as runSuite builds
 * them for these options: the same calibration sequences (sinks left out), cross-layer PCA and DP (tokenGroup,
 * dpRows), so that a diagnostic of it belongs to that row of an evaluation run with the same options.
 */
export function suiteKvtc(
  model: nn.CausalLM,
  o: SuiteOptions,
  ratio: number,
  attentionSampled = false,
): { cal: Calibration; plan: KvtcPlan; calibrationRows: number } {
  if (!(Number.isFinite(ratio) && ratio > 1))
    throw new ValueError(`suiteKvtc: ratio must be a finite number above 1; got ${ratio}`);
  const ctx = suiteContext(model, o);
  const { docs, rows } = calibrationSet(model, o, ctx.sinks);
  const fit = { tokenGroup: ctx.tokenGroup, maxRows: ctx.dpRows };
  if (!attentionSampled) {
    const cal = calibrate(rows, { mode: 'cross-layer' });
    return { cal, plan: fitPlan(cal, rows, { ratio }, fit), calibrationRows: rows.n };
  }
  const sampled = attentionSampledSet(ctx, docs, rows, o.attentionMix ?? 0.9);
  const cal = calibrate(sampled, { mode: 'cross-layer' });
  return { cal, plan: fitPlan(cal, sampled, { ratio }, fit), calibrationRows: sampled.n };
}

/** A plain-text summary of a reconstruction diagnostic: classes per KV head, masses and output errors per head. */
export function formatSinkReconstruction(name: string, r: SinkReconstruction): string {
  const f = (x: number) => x.toFixed(3);
  const c = (e: ClassError) => `${f(e.rel)} (${f(e.err / e.norm)})`;
  const s = r.summary;
  const cls = (k: 'key' | 'value') =>
    `${k}s ‖x − x̂‖/‖x‖ (÷ class mean norm): position 0 ${f(s[k].first.rel)} (${f(s[k].first.relToMeanNorm)}), ` +
    `1..${r.sinks - 1} ${f(s[k].nextSinks.rel)} (${f(s[k].nextSinks.relToMeanNorm)}), ` +
    `rest ${f(s[k].rest.rel)} (${f(s[k].rest.relToMeanNorm)})`;
  return [
    `${name}: ${r.sequences} sequences, ${r.queries} queries (${r.skipped} with position 0 still raw skipped); ` +
      `window ${r.window}, chunks of ${r.every}; sink heads (exact first-token mass > ${r.epsilon}): ${s.sinkHeads}`,
    `means over layers and KV heads: ${cls('key')}; ${cls('value')}`,
    `output error: sink heads ${f(s.outputErr.sinkHeads)} (sinks alone ${f(s.outputErrSinksOnly.sinkHeads)}), ` +
      `others ${f(s.outputErr.others)} (sinks alone ${f(s.outputErrSinksOnly.others)})`,
    `| layer | KV head | key rel: 0 / 1..${r.sinks - 1} / rest | value rel: 0 / 1..${r.sinks - 1} / rest |`,
    '|---|---|---|---|',
    ...r.kv.map(
      (x) =>
        `| ${x.layer} | ${x.kvHead} | ${c(x.key.first)} / ${c(x.key.nextSinks)} / ${c(x.key.rest)} | ` +
        `${c(x.value.first)} / ${c(x.value.nextSinks)} / ${c(x.value.rest)} |`,
    ),
    '',
    `| layer | head | mass on 0 exact → codec | mass on 0..${r.sinks - 1} exact → codec | output err | sinks alone |`,
    '|---|---|---|---|---|---|',
    ...r.heads.map(
      (h) =>
        `| ${h.layer} | ${h.head}${h.sinkHead ? ' (sink)' : ''} | ${f(h.firstMass)} → ${f(h.firstMassHat)} | ` +
        `${f(h.sinkMass)} → ${f(h.sinkMassHat)} | ${f(h.outputErr)} | ${f(h.outputErrSinksOnly)} |`,
    ),
  ].join('\n');
}
