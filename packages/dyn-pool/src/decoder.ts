// Incremental decoding of the hourglass LM: each new character costs one position of attention per block
// instead of a forward pass over the whole window. Every stack keeps a KV cache (pre and post blocks per
// character, the shortened blocks per group); the open group's running sum of pre-block outputs waits until a
// boundary closes it, and is then pooled, run through the shortened blocks as one new position, and up-sampled
// to the character that closed it — the same conventions as `downsample` / `upsample` (pooling.ts), so the
// logits equal `model.forward` on the whole sequence (tested for every boundary source and both position
// schemes). The reference code ships no generation at all.
import { cat, keep, nn, noGrad, type Tensor, tensor, tidy, ValueError } from '@tessera/tensor-core';
import { gumbelSigmoid } from './boundaries.js';
import type { HourglassLM } from './model.js';
import { fixedBoundaries } from './pooling.js';

/** What the front half of a step hands to the back half: pre-block output and the tensor to read boundaries from. */
interface Front {
  ids: Int32Array;
  h: Tensor;
  /** BP logits (unigram, entropy, Gumbel threshold) or Gumbel-sigmoid samples, [1, T]; null for host sources. */
  read: Tensor | null;
}

/**
 * Holds the decoding state of one sequence for an `HourglassLM` in eval mode. `append(ids)` feeds the next
 * characters (a prompt at once, or one at a time) and returns their logits [T, vocab]. The sequence may grow
 * to the model's `maxSeqLen`; past it, `reset()` and feed the part of the text to keep (`generate` does).
 * `append` reads boundaries synchronously (CPU backend); `appendAsync` runs on every backend.
 *
 * Boundaries are decided once per character, from what precedes it — as in a forward pass, since every
 * source is causal. The one difference: Gumbel boundaries in 'sample' mode draw their noise per appended
 * chunk, so they match a forward pass in distribution, not draw for draw ('threshold' mode matches exactly).
 */
export class HourglassDecoder {
  readonly model: HourglassLM;
  private readonly pre: nn.KVCache;
  private readonly short: nn.KVCache;
  private readonly post: nn.KVCache;
  /** Sum over the open (not yet closed) group of pre-block outputs [1, 1, d], and its size. */
  private openSum: Tensor | null = null;
  private openCount = 0;
  /** The shortened stream's latest output row [1, 1, d]: what a character that closes no group reads. */
  private lastShort: Tensor | null = null;
  private n = 0;
  private closed = 0;
  private disposed = false;
  private broken = false;

  constructor(model: HourglassLM) {
    this.model = model;
    // The decoder never holds more than maxSeqLen positions (groups are fewer), so the caches are sized once.
    const cache = () => new nn.KVCache(new nn.ConcatStorage({ capacity: model.config.maxSeqLen }));
    this.pre = cache();
    this.short = cache();
    this.post = cache();
  }

  /** Characters held. */
  get length(): number {
    return this.n;
  }

  /** Groups closed so far (the shortened stream holds these and the null group). */
  get groups(): number {
    return this.closed;
  }

  /**
   * Appends ids and returns their logits [T, vocab] (the caller disposes them). Sources whose boundaries come
   * from the predictor read them synchronously (CPU backend; elsewhere a `SyncReadError`, use `appendAsync`).
   */
  append(ids: ArrayLike<number>): Tensor {
    const front = this.front(ids);
    let b: ArrayLike<number> | null = null;
    try {
      if (front.read) b = front.read.dataSync();
    } catch (e) {
      this.fail(front);
      throw e;
    }
    return this.back(front, b);
  }

  /** `append` for every backend: the boundary decisions are read back with `await`. */
  async appendAsync(ids: ArrayLike<number>): Promise<Tensor> {
    const front = this.front(ids);
    let b: ArrayLike<number> | null = null;
    try {
      if (front.read) b = await front.read.data();
    } catch (e) {
      this.fail(front);
      throw e;
    }
    return this.back(front, b);
  }

  /** Empties the caches: the next `append` starts a new sequence at position 0. */
  reset(): void {
    for (const c of [this.pre, this.short, this.post]) c.reset();
    this.openSum?.dispose();
    this.lastShort?.dispose();
    this.openSum = null;
    this.lastShort = null;
    this.openCount = 0;
    this.n = 0;
    this.closed = 0;
    this.broken = false;
  }

  dispose(): void {
    this.reset();
    this.disposed = true;
  }

  private drop(front: Front): void {
    front.h.dispose();
    front.read?.dispose();
  }

  /**
   * An append failed after the pre blocks' caches took the new positions: the stacks no longer agree, so
   * every later append is refused until `reset()` (never a silently shifted sequence).
   */
  private fail(front: Front): void {
    this.drop(front);
    this.broken = true;
  }

  /** Embedding and pre blocks for the new ids, and what the boundaries are read from. */
  private front(idsIn: ArrayLike<number>): Front {
    if (this.disposed) throw new ValueError('HourglassDecoder: used after dispose()');
    if (this.broken)
      throw new ValueError('HourglassDecoder: an earlier append failed part-way; reset() and feed the context again');
    const c = this.model.config;
    const T = idsIn.length;
    if (T === 0) throw new ValueError('HourglassDecoder.append: no ids');
    for (let t = 0; t < T; t++) {
      const id = idsIn[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new ValueError(`HourglassDecoder.append: token ids must be integers in [0, ${c.vocabSize}); got ${id}`);
    }
    const ids = Int32Array.from(idsIn);
    if (this.n + T > c.maxSeqLen)
      throw new ValueError(
        `HourglassDecoder.append: ${this.n} + ${T} characters exceed the trained maxSeqLen ${c.maxSeqLen}; reset() and feed the context to keep`,
      );
    this.model.eval();
    try {
      return noGrad(() =>
        tidy(() => {
          const x = this.model.embed.forward(tensor(ids, { shape: [1, T], dtype: 'int32' }));
          const h = this.model.runBlocks(this.model.pre, x, this.pre);
          let read: Tensor | null = null;
          const bp = this.model.bp;
          if (c.boundary === 'gumbel') {
            const noise = (c.gumbelEval ?? 'sample') === 'sample';
            read = gumbelSigmoid(bp!.forward(h), { temperature: c.temperature ?? 0.5, noise });
          } else if (bp) read = bp.forward(h).gt(0).float();
          return { ids, h, read };
        }),
      );
    } catch (e) {
      // The first pre block's cache may already hold the new positions (the ids were checked above).
      this.broken = true;
      throw e;
    }
  }

  /** Pooling of the groups the new ids close, shortened blocks, up-sampling, post blocks and head. */
  private back(front: Front, read: ArrayLike<number> | null): Tensor {
    const c = this.model.config;
    const { ids, h } = front;
    const T = ids.length;
    const d = c.dModel;
    try {
      return noGrad(() =>
        tidy(() => {
          let y: Tensor;
          if (c.boundary === 'none') y = this.model.runBlocks(this.model.short, h, this.short);
          else {
            const b = this.boundaries(ids, read);
            // Closed groups in this chunk: group k ends at ends[k]; the first also takes the carried open group.
            const ends: number[] = [];
            for (let t = 0; t < T; t++) if (b[t]) ends.push(t);
            const G = ends.length;
            let rows: Tensor | null = this.lastShort;
            let newRows: Tensor | null = null;
            const first = this.lastShort === null;
            if (G > 0 || first) {
              const parts: Tensor[] = [];
              if (first) parts.push(this.model.nullGroup!.reshape([1, 1, d]));
              if (G > 0) {
                const W = new Float32Array(G * T);
                let start = 0;
                for (let k = 0; k < G; k++) {
                  const count = ends[k]! - start + 1 + (k === 0 ? this.openCount : 0);
                  for (let t = start; t <= ends[k]!; t++) W[k * T + t] = 1 / count;
                  start = ends[k]! + 1;
                }
                let pooled = tensor(W, { shape: [1, G, T] }).matmul(h);
                if (this.openSum) {
                  const carry = new Float32Array(G);
                  carry[0] = 1 / (ends[0]! + 1 + this.openCount);
                  pooled = pooled.add(tensor(carry, { shape: [1, G, 1] }).mul(this.openSum));
                }
                parts.push(pooled);
              }
              const s = this.model.downNorm!.forward(parts.length === 1 ? parts[0]! : cat(parts, 1));
              newRows = this.model.runBlocks(this.model.short, s, this.short);
              rows = first ? newRows : cat([this.lastShort!, newRows], 1);
            }
            // Character t reads row (boundaries in this chunk at or before t) of [latest row before; new rows].
            const R = rows!.shape[1]!;
            const U = new Float32Array(T * R);
            for (let t = 0, m = 0; t < T; t++) {
              if (b[t]) m++;
              U[t * R + m] = 1;
            }
            y = tensor(U, { shape: [1, T, R] })
              .matmul(rows!)
              .add(h);
            // The state after this chunk: the open group and the latest shortened row.
            const tail = G > 0 ? ends[G - 1]! + 1 : 0;
            let open: Tensor | null = null;
            if (tail < T) {
              const ones = new Float32Array(T);
              ones.fill(1, tail);
              open = tensor(ones, { shape: [1, 1, T] }).matmul(h);
            }
            if (G === 0 && this.openSum) open = open ? open.add(this.openSum) : this.openSum.clone();
            this.openCount = (G === 0 ? this.openCount : 0) + (T - tail);
            this.setState(open, newRows ? rows!.slice(1, R - 1, R).contiguous() : null);
            this.closed += G;
          }
          y = this.model.runBlocks(this.model.post, y, this.post);
          if (this.model.normF) y = this.model.normF.forward(y);
          this.n += T;
          return this.model.head.forward(y).reshape([T, c.vocabSize]);
        }),
      );
    } catch (e) {
      this.broken = true;
      throw e;
    } finally {
      this.drop(front);
    }
  }

  /** Hard boundaries of the new ids: from the text (fixed, whitespace) or the values read back. */
  private boundaries(ids: Int32Array, read: ArrayLike<number> | null): Uint8Array {
    const c = this.model.config;
    const T = ids.length;
    const b = new Uint8Array(T);
    if (c.boundary === 'fixed') {
      const f = fixedBoundaries(1, T, c.fixedK!, this.n);
      for (let t = 0; t < T; t++) b[t] = f[t]! > 0.5 ? 1 : 0;
    } else if (c.boundary === 'whitespace') {
      const space = new Set(c.spaceIds);
      for (let t = 0; t < T; t++) b[t] = space.has(ids[t]!) ? 1 : 0;
    } else for (let t = 0; t < T; t++) b[t] = read![t]! > 0.5 ? 1 : 0;
    return b;
  }

  /** Replaces the open-group sum and (when given) the latest shortened row; both outlive the step's tidy. */
  private setState(open: Tensor | null, last: Tensor | null): void {
    if (open !== this.openSum) {
      this.openSum?.dispose();
      this.openSum = open ? keep(open) : null;
    }
    if (last) {
      this.lastShort?.dispose();
      this.lastShort = keep(last);
    }
  }
}
