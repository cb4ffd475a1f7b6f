// Synthetic retrieval tasks for the evaluation in miniature (research note §5): key–value lookup over
// filler text (LITM-style), passkey retrieval at a chosen depth (NIAH-style), and variable tracking
// (RULER-VT-style chains "b = a" resolved back to a value). Token ids form a small closed vocabulary.
import type { Rng } from '../linalg.js';

export const VOCAB = {
  bos: 0,
  query: 1,
  answer: 2,
  passkey: 3,
  assign: 4,
  fillerStart: 5,
  fillers: 8,
  keyStart: 13,
  keys: 16,
  valueStart: 29,
  values: 16,
  size: 48,
} as const;

export interface Sample {
  /** the context that gets cached (and compressed) */
  context: number[];
  /** teacher-forced queries: `prompt` tokens, then the expected `answer` tokens */
  queries: { prompt: number[]; answer: number[] }[];
}

export interface TaskOptions {
  pairs?: number;
  /** filler tokens between pairs: uniform in [0, maxFiller] */
  maxFiller?: number;
  queries?: number;
  /**
   * Query as "? k" instead of "? k =": the answer is predicted at the key itself, so a plain induction head
   * (find the earlier k, copy what followed) answers it — what a 2-layer model learns in CPU minutes.
   */
  compact?: boolean;
  /**
   * Fused pairs: each "k v" is one token (FUSED_BASE + 16k + v), so a query "? k" finds it with one attention
   * hop and reads v from the same slot — no induction circuit to grow (two composed heads take far more CPU
   * steps than we have), while the answer still lives only in that token's cached key and value.
   */
  fused?: boolean;
  /** query every pair once, in a random order (training: dense supervision) */
  allPairs?: boolean;
}

const filler = (rng: Rng, n: number) => Array.from({ length: n }, () => VOCAB.fillerStart + rng.int(VOCAB.fillers));
const key = (i: number) => VOCAB.keyStart + i;
const value = (i: number) => VOCAB.valueStart + i;

function shuffle(rng: Rng, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** "k v" pairs with filler between, then queries "? k =" → v. */
export function kvLookup(rng: Rng, o: TaskOptions = {}): Sample {
  const pairs = Math.min(o.pairs ?? 10, VOCAB.keys);
  const ks = shuffle(rng, VOCAB.keys).slice(0, pairs);
  const vs = ks.map(() => rng.int(VOCAB.values));
  const context: number[] = [VOCAB.bos];
  ks.forEach((k, i) => {
    const f = filler(rng, rng.int((o.maxFiller ?? 6) + 1));
    if (o.fused) context.push(...f, fusedPair(k, vs[i]!));
    else context.push(...f, key(k), value(vs[i]!));
  });
  context.push(...filler(rng, rng.int((o.maxFiller ?? 6) + 1)));
  const order = o.allPairs ? shuffle(rng, pairs) : null;
  const queries = Array.from({ length: order ? pairs : (o.queries ?? 4) }, (_, q) => {
    const i = order ? order[q]! : rng.int(pairs);
    const prompt = o.compact ? [VOCAB.query, key(ks[i]!)] : [VOCAB.query, key(ks[i]!), VOCAB.answer];
    return { prompt, answer: [value(vs[i]!)] };
  });
  return { context, queries };
}

/** First fused key–value token id (after the text ids); FUSED_VOCAB_SIZE covers all 16 × 16 pairs. */
export const FUSED_BASE = VOCAB.size + 97;
export const FUSED_VOCAB_SIZE = FUSED_BASE + VOCAB.keys * VOCAB.values;
export const fusedPair = (k: number, v: number) => FUSED_BASE + k * VOCAB.values + v;

/**
 * A 3-symbol passkey at relative depth `depth` ∈ [0, 1] of `length` filler tokens. Fused: the needle is one
 * fused pair (a random key), asked for by "? k" — needle-in-a-haystack with a one-token needle.
 */
export function passkey(
  rng: Rng,
  o: { length?: number; depth?: number; compact?: boolean; fused?: boolean } = {},
): Sample {
  const length = o.length ?? 96;
  if (o.fused) {
    const k = rng.int(VOCAB.keys);
    const v = rng.int(VOCAB.values);
    const at = Math.round((o.depth ?? rng.next()) * length);
    const context = [VOCAB.bos, ...filler(rng, at), fusedPair(k, v), ...filler(rng, length - at)];
    return { context, queries: [{ prompt: [VOCAB.query, key(k)], answer: [value(v)] }] };
  }
  const code = Array.from({ length: 3 }, () => value(rng.int(VOCAB.values)));
  const at = Math.round((o.depth ?? rng.next()) * length);
  const context = [VOCAB.bos, ...filler(rng, at), VOCAB.passkey, ...code, ...filler(rng, length - at)];
  const prompt = o.compact ? [VOCAB.query, VOCAB.passkey] : [VOCAB.query, VOCAB.passkey, VOCAB.answer];
  return { context, queries: [{ prompt, answer: code }] };
}

/** Variable tracking: "a v" binds a value, "b = a" copies; the query asks for the end of a chain. */
export function variableTracking(
  rng: Rng,
  o: { hops?: number; chains?: number; maxFiller?: number; compact?: boolean } = {},
): Sample {
  const hops = o.hops ?? 1;
  const chains = o.chains ?? 3;
  const names = shuffle(rng, VOCAB.keys);
  const context: number[] = [VOCAB.bos];
  const ends: { name: number; value: number }[] = [];
  for (let c = 0; c < chains; c++) {
    const ids = names.splice(0, hops + 1);
    const v = rng.int(VOCAB.values);
    context.push(...filler(rng, rng.int((o.maxFiller ?? 6) + 1)), key(ids[0]!), value(v));
    for (let h = 1; h <= hops; h++)
      context.push(...filler(rng, rng.int((o.maxFiller ?? 6) + 1)), key(ids[h]!), VOCAB.assign, key(ids[h - 1]!));
    ends.push({ name: ids[hops]!, value: v });
  }
  const e = ends[rng.int(chains)]!;
  const prompt = o.compact ? [VOCAB.query, key(e.name)] : [VOCAB.query, key(e.name), VOCAB.answer];
  return { context, queries: [{ prompt, answer: [value(e.value)] }] };
}

/** One training sequence of exactly `length` tokens with targets (−100 except answer tokens). */
export function trainingSequence(rng: Rng, length: number): { ids: Int32Array; targets: Int32Array } {
  for (;;) {
    const u = rng.next();
    const s =
      u < 0.6
        ? kvLookup(rng, { pairs: 4 + rng.int(9), maxFiller: rng.int(9), queries: 6 })
        : u < 0.85
          ? passkey(rng, { length: 16 + rng.int(length - 40) })
          : variableTracking(rng, { hops: 1, chains: 2 + rng.int(2) });
    const ids = [...s.context];
    const targets = ids.map(() => -100);
    for (const q of s.queries) {
      ids.push(...q.prompt);
      targets.push(...q.prompt.map(() => -100));
      // target at position t predicts token t+1: the answer tokens are predicted from the previous position
      for (const a of q.answer) {
        targets[targets.length - 1] = a;
        ids.push(a);
        targets.push(-100);
      }
    }
    if (ids.length > length) continue;
    while (ids.length < length) {
      ids.push(VOCAB.fillerStart + rng.int(VOCAB.fillers));
      targets.push(-100);
    }
    return { ids: Int32Array.from(ids), targets: Int32Array.from(targets) };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Corpus text and the training curriculum. Text shares the vocabulary: characters get the ids after the task
// tokens, so one model both models language (perplexity) and retrieves (accuracy), as the research note plans.

/** First text id; '\n' and printable ASCII 32–126 map to TEXT_BASE + 0..95, anything else to TEXT_OTHER. */
export const TEXT_BASE = VOCAB.size;
export const TEXT_OTHER = TEXT_BASE + 96;
/** Vocabulary of a model that reads both the tasks and corpus text. */
export const TEXT_VOCAB_SIZE = TEXT_OTHER + 1;

export function encodeText(s: string): Int32Array {
  const out = new Int32Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c === 10 ? TEXT_BASE : c >= 32 && c <= 126 ? TEXT_BASE + c - 31 : TEXT_OTHER;
  }
  return out;
}

export function decodeText(ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]! - TEXT_BASE;
    s += t === 0 ? '\n' : t >= 1 && t <= 95 ? String.fromCharCode(t + 31) : '\uFFFD';
  }
  return s;
}

/** A training sequence with two kinds of target: retrieval answers and next-character targets on text. */
export interface CurriculumSequence {
  ids: Int32Array;
  /** answer tokens (−100 elsewhere) */
  targets: Int32Array;
  /** next-token targets on corpus text (−100 elsewhere) */
  lmTargets: Int32Array;
}

/** Mix of sequence kinds at level 1 (queries are compact); text is used only when a corpus is given. */
export const CURRICULUM_MIX = { kv: 0.35, passkey: 0.15, vt: 0.15, repeat: 0.1, text: 0.25 } as const;
/** The mix with fused pairs. */
export const FUSED_MIX = { kv: 0.45, passkey: 0.2, vt: 0.1, repeat: 0, text: 0.25 } as const;

/** Options of the training mix, both off by default (the committed fixtures were trained without them). */
export interface MixOptions {
  /** every sequence starts with VOCAB.bos, pure text and filler too (task samples always do) */
  bos?: boolean;
  /** next-token targets on the task tokens as well as on corpus text (an LLM's loss at every position) */
  taskLm?: boolean;
}

/**
 * One training sequence at curriculum level ∈ [0, 1]: level 0 asks few pairs with little filler, level 1 the
 * evaluation's sizes. `data` (MixOptions) gives every sequence a first BOS and next-token targets on the
 * task tokens. Key–value samples query every pair (dense supervision), and "repeat" sequences (a random
 * string, then the same string) give the induction heads the copy signal every position, which is what makes
 * them form. The rest of the sequence is filled with corpus text when given.
 */
export function curriculumSequence(
  rng: Rng,
  length: number,
  level: number,
  text?: Int32Array,
  repeatVocab: 'tasks' | 'all' = 'all',
  fused = false,
  data: MixOptions = {},
): CurriculumSequence {
  const bos = data.bos ?? false;
  const lv = Math.max(0, Math.min(1, level));
  // repeated strings dominate early (they grow the induction heads), then fall to their share of the mix;
  // fused pairs need no induction, so their mix has none and more lookups
  const mix = fused
    ? { ...FUSED_MIX, text: text ? FUSED_MIX.text : 0 }
    : { ...CURRICULUM_MIX, repeat: CURRICULUM_MIX.repeat + 0.3 * (1 - lv), text: text ? CURRICULUM_MIX.text : 0 };
  const total = mix.kv + mix.passkey + mix.vt + mix.repeat + mix.text;
  let u = rng.next() * total;
  const pick = (w: number) => (u -= w) < 0;
  const ids: number[] = [];
  const targets: number[] = [];
  const lm: number[] = [];
  const answer = (s: Sample) => {
    ids.push(...s.context);
    for (let i = 0; i < s.context.length; i++) targets.push(-100);
    for (const q of s.queries) {
      if (ids.length + q.prompt.length + q.answer.length > length) break;
      ids.push(...q.prompt);
      for (let i = 0; i < q.prompt.length; i++) targets.push(-100);
      for (const a of q.answer) {
        targets[targets.length - 1] = a;
        ids.push(a);
        targets.push(-100);
      }
    }
  };
  const room = Math.max(8, length - 8);
  if (pick(mix.kv)) {
    for (let tries = 0; ; tries++) {
      const pairs = 2 + rng.int(1 + Math.round(2 + 12 * lv));
      const maxFiller = rng.int(1 + Math.round(1 + 11 * lv));
      // every pair queried once, in a random order (dense, and never the same question twice)
      const s = kvLookup(rng, { pairs, maxFiller, compact: true, allPairs: true, fused });
      if (s.context.length + 8 > room && tries < 20) continue;
      answer(s);
      break;
    }
  } else if (pick(mix.passkey)) {
    const max = Math.max(8, Math.min(length - 12, Math.round(24 + (length - 36) * lv)));
    answer(passkey(rng, { length: 4 + rng.int(max - 3), compact: true, fused }));
  } else if (pick(mix.vt)) {
    for (let tries = 0; ; tries++) {
      const s = variableTracking(rng, {
        hops: 1 + rng.int(lv < 0.5 ? 1 : 2),
        chains: 2 + rng.int(lv < 0.5 ? 2 : 3),
        maxFiller: Math.round(1 + 7 * lv),
        compact: true,
      });
      if (s.context.length + 8 > room && tries < 20) continue;
      answer(s);
      break;
    }
  } else if (pick(mix.repeat)) {
    const n = 4 + rng.int(Math.max(1, Math.min(48, (length >> 1) - 6)));
    // drawn from every key, value and character id when the model reads text, so few symbols repeat inside the
    // string (a repeat makes "what followed it last time" ambiguous); task symbols only otherwise
    const pool = repeatVocab === 'all' && text ? TEXT_VOCAB_SIZE - VOCAB.keyStart : VOCAB.keys + VOCAB.values;
    const seg = Array.from({ length: n }, () => VOCAB.keyStart + rng.int(pool));
    ids.push(VOCAB.bos, ...seg, ...seg);
    for (let i = 0; i < ids.length; i++) targets.push(-100);
    // position n + i predicts seg[i]: from the second copy's first token on, everything is a copy
    for (let i = 1; i < n; i++) targets[n + i] = seg[i]!;
  }
  // Every task sample and repeated string starts with BOS, pure text (and pure filler) starts mid-stream. LLMs
  // are pre-trained with a fixed first token, on which attention sinks form (Xiao et al. 2023; Gu et al. 2024,
  // arXiv 2410.10781); `bos` gives every sequence one, with no extra draws, so the rest of the mix is unchanged.
  if (bos && ids.length === 0) {
    ids.push(VOCAB.bos);
    targets.push(-100);
  }
  // LLMs are trained on next-token targets at every position; without them the task tokens carry no loss of
  // their own, so a head has no reason to keep quiet there (to park on a sink) — only later reads of its keys and
  // values shape it. `taskLm` adds next-token targets on the task tokens (the answers keep their own target).
  if (data.taskLm) for (let i = 0; i + 1 < ids.length; i++) lm.push(targets[i] === -100 ? ids[i + 1]! : -100);
  while (lm.length < ids.length) lm.push(-100);
  // the rest: corpus text with next-character targets, else filler
  if (ids.length < length && text && text.length > length) {
    const start = rng.int(text.length - length);
    const need = length - ids.length;
    for (let i = 0; i < need; i++) {
      ids.push(text[start + i]!);
      targets.push(-100);
      lm.push(i + 1 < need ? text[start + i + 1]! : -100);
    }
  }
  while (ids.length < length) {
    ids.push(VOCAB.fillerStart + rng.int(VOCAB.fillers));
    targets.push(-100);
    lm.push(-100);
  }
  return {
    ids: Int32Array.from(ids.slice(0, length)),
    targets: Int32Array.from(targets.slice(0, length)),
    lmTargets: Int32Array.from(lm.slice(0, length)),
  };
}
