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
    context.push(...filler(rng, rng.int((o.maxFiller ?? 6) + 1)), key(k), value(vs[i]!));
  });
  context.push(...filler(rng, rng.int((o.maxFiller ?? 6) + 1)));
  const queries = Array.from({ length: o.queries ?? 4 }, () => {
    const i = rng.int(pairs);
    return { prompt: [VOCAB.query, key(ks[i]!), VOCAB.answer], answer: [value(vs[i]!)] };
  });
  return { context, queries };
}

/** A 3-symbol passkey at relative depth `depth` ∈ [0, 1] of `length` filler tokens. */
export function passkey(rng: Rng, o: { length?: number; depth?: number } = {}): Sample {
  const length = o.length ?? 96;
  const code = Array.from({ length: 3 }, () => value(rng.int(VOCAB.values)));
  const at = Math.round((o.depth ?? rng.next()) * length);
  const context = [VOCAB.bos, ...filler(rng, at), VOCAB.passkey, ...code, ...filler(rng, length - at)];
  return { context, queries: [{ prompt: [VOCAB.query, VOCAB.passkey, VOCAB.answer], answer: code }] };
}

/** Variable tracking: "a v" binds a value, "b = a" copies; the query asks for the end of a chain. */
export function variableTracking(rng: Rng, o: { hops?: number; chains?: number; maxFiller?: number } = {}): Sample {
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
  return { context, queries: [{ prompt: [VOCAB.query, key(e.name), VOCAB.answer], answer: [value(e.value)] }] };
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
