// Streaming and batching: seeded shuffles, fixed-size batches, bucketing by length (so padding stays small),
// a bounded shuffle buffer for streams, padding to a dense [batch, time] array, and language-model windows.
import { ValueError } from './errors.js';
import { createRng, randInt } from './random.js';

/** Fisher–Yates shuffle of a copy. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const a = items.slice();
  const rng = createRng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new ValueError(`${name} must be a positive integer; got ${v}`);
}

/** Consecutive batches of `size`; the last one is shorter unless `dropLast`. */
export function* batches<T>(items: Iterable<T>, size: number, opts: { dropLast?: boolean } = {}): Generator<T[]> {
  checkSize('batches: size', size);
  let b: T[] = [];
  for (const x of items) {
    b.push(x);
    if (b.length === size) {
      yield b;
      b = [];
    }
  }
  if (b.length && !opts.dropLast) yield b;
}

export interface BucketOptions {
  /** Items per batch (fixed-size batches). Give this or `maxTokens`. */
  batchSize?: number;
  /** Largest padded size of a batch, batch length × longest item (token-budget batches). */
  maxTokens?: number;
  /** Sort within pools of this many items (default: all items). Smaller pools keep more randomness. */
  poolSize?: number;
  /** Shuffle items before pooling and batches after; omit for a deterministic sorted order. */
  seed?: number;
  /** Drop items longer than this (default keep all; with `maxTokens` an item longer than it gets its own batch). */
  maxLength?: number;
}

/**
 * Bucketing by length: items are sorted by `lengthOf` within pools, cut into batches of similar lengths, and the
 * batches are shuffled. Returns arrays of the items.
 */
export function bucketByLength<T>(items: readonly T[], lengthOf: (x: T) => number, opts: BucketOptions): T[][] {
  const { batchSize, maxTokens, seed, maxLength = Number.POSITIVE_INFINITY } = opts;
  if ((batchSize === undefined) === (maxTokens === undefined))
    throw new ValueError('bucketByLength: give exactly one of batchSize and maxTokens');
  if (batchSize !== undefined) checkSize('bucketByLength: batchSize', batchSize);
  if (maxTokens !== undefined) checkSize('bucketByLength: maxTokens', maxTokens);
  const poolSize = opts.poolSize ?? Math.max(1, items.length);
  checkSize('bucketByLength: poolSize', poolSize);
  const withLen = items.map((x) => ({ x, n: lengthOf(x) })).filter((e) => e.n <= maxLength);
  const order = seed === undefined ? withLen : shuffle(withLen, seed);
  const out: T[][] = [];
  for (let p = 0; p < order.length; p += poolSize) {
    const pool = order.slice(p, p + poolSize).sort((a, b) => a.n - b.n);
    let b: T[] = [];
    let longest = 0;
    for (const e of pool) {
      const grow = Math.max(longest, e.n) * (b.length + 1);
      if (b.length && (batchSize !== undefined ? b.length === batchSize : grow > maxTokens!)) {
        out.push(b);
        b = [];
        longest = 0;
      }
      b.push(e.x);
      longest = Math.max(longest, e.n);
    }
    if (b.length) out.push(b);
  }
  return seed === undefined ? out : shuffle(out, seed + 1);
}

/**
 * Batches whose items share a group (CPC's "same speaker" sampling: negatives drawn within one speaker). Items are
 * shuffled within each group, cut into batches of `batchSize` (a group's remainder makes a smaller batch unless
 * `dropLast`), and the batches of all groups are shuffled together.
 */
export function groupedBatches<T>(
  items: readonly T[],
  groupOf: (x: T) => string,
  batchSize: number,
  opts: { seed?: number; dropLast?: boolean } = {},
): T[][] {
  checkSize('groupedBatches: batchSize', batchSize);
  const { seed = 0, dropLast = false } = opts;
  const groups = new Map<string, T[]>();
  for (const x of items) {
    const g = groupOf(x);
    const list = groups.get(g);
    if (list) list.push(x);
    else groups.set(g, [x]);
  }
  const out: T[][] = [];
  let k = 0;
  for (const key of [...groups.keys()].sort()) {
    for (const b of batches(shuffle(groups.get(key)!, seed + 7 * k++), batchSize, { dropLast })) out.push(b);
  }
  return shuffle(out, seed + 1);
}

/**
 * Shuffles a stream with a buffer of `bufferSize` items (memory stays bounded): each output is drawn at random from
 * the buffer, which is refilled from the input. Works on sync and async iterables.
 */
export async function* shuffleBuffer<T>(
  source: Iterable<T> | AsyncIterable<T>,
  bufferSize: number,
  seed: number,
): AsyncGenerator<T> {
  checkSize('shuffleBuffer: bufferSize', bufferSize);
  const rng = createRng(seed);
  const buf: T[] = [];
  for await (const x of source) {
    if (buf.length < bufferSize) {
      buf.push(x);
      continue;
    }
    const j = randInt(rng, buf.length);
    const out = buf[j]!;
    buf[j] = x;
    yield out;
  }
  while (buf.length) {
    const j = randInt(rng, buf.length);
    const out = buf[j]!;
    buf[j] = buf[buf.length - 1]!;
    buf.pop();
    yield out;
  }
}

export interface Padded {
  /** Row-major [batch, maxLength]. */
  data: Int32Array;
  lengths: Int32Array;
  shape: [number, number];
}

/** Pads sequences of ids to the longest one (or `length`), filling with `padId`. */
export function padBatch(seqs: readonly ArrayLike<number>[], padId = 0, length?: number): Padded {
  const T = length ?? seqs.reduce((m, s) => Math.max(m, s.length), 0);
  const data = new Int32Array(seqs.length * T).fill(padId);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, b) => {
    if (s.length > T) throw new ValueError(`padBatch: sequence ${b} has length ${s.length} > ${T}`);
    lengths[b] = s.length;
    for (let t = 0; t < s.length; t++) data[b * T + t] = s[t]!;
  });
  return { data, lengths, shape: [seqs.length, T] };
}

/**
 * Language-model windows over one long id stream, as the dynamic-pooling training does: roll the stream by a random
 * offset (different each epoch), cut it into windows of `seqLen + 1` ids (input and shifted target share all but one
 * id), and shuffle the windows. Returns the start offsets of the windows into the rolled stream; use `lmWindow`.
 */
export function lmWindowStarts(
  streamLength: number,
  seqLen: number,
  seed: number,
  epoch = 0,
): { offset: number; starts: number[] } {
  checkSize('lmWindowStarts: seqLen', seqLen);
  const rng = createRng(seed * 1000003 + epoch);
  const offset = streamLength > 0 ? randInt(rng, streamLength) : 0;
  const n = Math.floor((streamLength - 1) / seqLen);
  const starts = Array.from({ length: Math.max(0, n) }, (_, i) => i * seqLen);
  return { offset, starts: shuffle(starts, seed * 7919 + epoch) };
}

/** The `seqLen + 1` ids of a window starting at `start` in `ids` rolled left by `offset`. */
export function lmWindow(ids: ArrayLike<number>, offset: number, start: number, seqLen: number): Int32Array {
  const out = new Int32Array(seqLen + 1);
  const n = ids.length;
  for (let t = 0; t <= seqLen; t++) out[t] = ids[(offset + start + t) % n]!;
  return out;
}
