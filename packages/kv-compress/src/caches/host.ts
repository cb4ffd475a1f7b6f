// Host-side cache storage shared by the baselines: keys and values per layer in [B, H, L, d] float32 arrays with
// each slot's absolute position and an accumulated score, compaction per head (heads may keep different tokens
// and different counts), and physical byte accounting. Tensors handed to attention are rebuilt when a layer
// changes. Left-padded batches: each (sequence, head) row holds `pad` leading padding slots, then its real tokens;
// padding is never scored, kept in place of a real token, quantised or counted, and rows that keep fewer tokens
// than the longest are left-padded again after an eviction (tensor-core's attention takes no mask, so padding
// slots are still attended; per-sequence results equal running the sequence alone as far as the cache decides).
import { keep, type nn, ShapeError, type Tensor, tensor } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';

type KV = nn.KV;

export class LayerBuf {
  L = 0;
  cap: number;
  k: Float32Array;
  v: Float32Array;
  pos: Int32Array;
  score: Float64Array;
  /** per (sequence, head) row: leading padding slots (real tokens are slots [pad, L)) */
  readonly pad: Int32Array;
  constructor(
    readonly B: number,
    readonly H: number,
    readonly d: number,
    cap = 64,
  ) {
    this.cap = cap;
    this.k = new Float32Array(B * H * cap * d);
    this.v = new Float32Array(B * H * cap * d);
    this.pos = new Int32Array(B * H * cap);
    this.score = new Float64Array(B * H * cap);
    this.pad = new Int32Array(B * H);
  }
  get rowsPerLayer(): number {
    return this.B * this.H;
  }
  private grow(need: number): void {
    if (need <= this.cap) return;
    let cap = this.cap * 2;
    while (cap < need) cap *= 2;
    const { B, H, d } = this;
    const k = new Float32Array(B * H * cap * d);
    const v = new Float32Array(B * H * cap * d);
    const pos = new Int32Array(B * H * cap);
    const score = new Float64Array(B * H * cap);
    for (let bh = 0; bh < B * H; bh++) {
      k.set(this.k.subarray(bh * this.cap * d, (bh * this.cap + this.L) * d), bh * cap * d);
      v.set(this.v.subarray(bh * this.cap * d, (bh * this.cap + this.L) * d), bh * cap * d);
      pos.set(this.pos.subarray(bh * this.cap, bh * this.cap + this.L), bh * cap);
      score.set(this.score.subarray(bh * this.cap, bh * this.cap + this.L), bh * cap);
    }
    Object.assign(this, { k, v, pos, score, cap });
  }
  /** Appends [B, H, T, d] host arrays at absolute positions position.. */
  append(k: ArrayLike<number>, v: ArrayLike<number>, T: number, position: number): void {
    this.grow(this.L + T);
    const { d, cap } = this;
    for (let bh = 0; bh < this.B * this.H; bh++)
      for (let t = 0; t < T; t++) {
        const dst = (bh * cap + this.L + t) * d;
        const src = (bh * T + t) * d;
        for (let j = 0; j < d; j++) {
          this.k[dst + j] = k[src + j]!;
          this.v[dst + j] = v[src + j]!;
        }
        this.pos[bh * cap + this.L + t] = position + t;
        this.score[bh * cap + this.L + t] = 0;
      }
    this.L += T;
  }
  /**
   * Keeps, for each (b, h) row, the real-token slots `keepIdx(bh)` (ascending). Rows may keep different counts:
   * the new length is the largest, and shorter rows are left-padded (zero keys and values, position −1).
   */
  compact(keepIdx: (bh: number) => number[]): void {
    const { d, cap } = this;
    const rows = this.B * this.H;
    const keeps = Array.from({ length: rows }, (_, bh) => keepIdx(bh));
    const L = Math.max(0, ...keeps.map((k) => k.length));
    let tmp: { k: Float32Array; v: Float32Array; pos: Int32Array; score: Float64Array } | null = null;
    keeps.forEach((idx, bh) => {
      const pad = L - idx.length;
      for (const src of idx)
        if (src < this.pad[bh]! || src >= this.L)
          throw new RangeError(`LayerBuf.compact: row ${bh} keeps slot ${src} outside its tokens`);
      const row = bh * cap;
      const move = (src: number, dst: number, from: LayerBuf | typeof tmp, fromRow: number) => {
        this.k.set(from!.k.subarray((fromRow + src) * d, (fromRow + src + 1) * d), (row + dst) * d);
        this.v.set(from!.v.subarray((fromRow + src) * d, (fromRow + src + 1) * d), (row + dst) * d);
        this.pos[row + dst] = from!.pos[fromRow + src]!;
        this.score[row + dst] = from!.score[fromRow + src]!;
      };
      if (idx.every((src, i) => pad + i <= src)) {
        // every slot moves left (or stays): an ascending in-place copy never overwrites a slot still to be read
        idx.forEach((src, i) => {
          if (src !== pad + i) move(src, pad + i, this, row);
        });
      } else {
        // a shorter row shifted right past its old slots: copy through a scratch row
        tmp ??= {
          k: new Float32Array(this.L * d),
          v: new Float32Array(this.L * d),
          pos: new Int32Array(this.L),
          score: new Float64Array(this.L),
        };
        tmp.k.set(this.k.subarray(row * d, (row + this.L) * d));
        tmp.v.set(this.v.subarray(row * d, (row + this.L) * d));
        tmp.pos.set(this.pos.subarray(row, row + this.L));
        tmp.score.set(this.score.subarray(row, row + this.L));
        for (const [i, src] of idx.entries()) move(src, pad + i, tmp, 0);
      }
      this.k.fill(0, row * d, (row + pad) * d);
      this.v.fill(0, row * d, (row + pad) * d);
      this.pos.fill(-1, row, row + pad);
      this.score.fill(0, row, row + pad);
      this.pad[bh] = pad;
    });
    this.L = L;
  }
  /** Real-token slots of row bh, ascending. */
  slots(bh: number): number[] {
    return Array.from({ length: this.L - this.pad[bh]! }, (_, i) => this.pad[bh]! + i);
  }
  /** Real tokens held in row bh. */
  held(bh: number): number {
    return this.L - this.pad[bh]!;
  }
  /** Contiguous [B, H, L, d] copies. */
  dense(): { k: Float32Array; v: Float32Array } {
    const { d, cap, L } = this;
    const k = new Float32Array(this.B * this.H * L * d);
    const v = new Float32Array(k.length);
    for (let bh = 0; bh < this.B * this.H; bh++) {
      k.set(this.k.subarray(bh * cap * d, (bh * cap + L) * d), bh * L * d);
      v.set(this.v.subarray(bh * cap * d, (bh * cap + L) * d), bh * L * d);
    }
    return { k, v };
  }
  /** Offset of slot t of row bh in k/v. */
  at(bh: number, t: number): number {
    return (bh * this.cap + t) * this.d;
  }
}

/** Sizes of a storage: physical bytes it holds and what an fp16 cache of every token seen would take. */
export interface CacheStats {
  /** tokens appended so far (per layer, summed over layers) */
  tokensSeen: number;
  /** tokens (slots) currently held, summed over layers */
  tokensHeld: number;
  /** physical bytes of the compressed representation, including all side information */
  bytes: number;
  /** bytes of an fp16 cache of every token seen */
  fp16Bytes: number;
}

export interface CompressedStorage extends nn.KVCacheStorage {
  stats(): CacheStats;
  readonly name: string;
}

/** Options every host storage takes. */
export interface HostStorageOptions {
  /**
   * Batches: left-padding slots per sequence (per-sequence lengths in a left-padded batch). Padding slots are
   * never scored, kept in place of real tokens, stored or counted.
   */
  padding?: readonly number[];
}

/** The exact cache on host arrays, and the base class of the baselines (hooks run on append/observe). */
export class HostStorage implements CompressedStorage {
  readonly name: string = 'exact';
  protected readonly layers = new Map<number, LayerBuf>();
  private readonly tensors = new Map<number, KV>();
  protected seen = new Map<number, number>();
  protected readonly padding: readonly number[] | undefined;

  constructor(opts: HostStorageOptions = {}) {
    for (const p of opts.padding ?? [])
      if (!(Number.isInteger(p) && p >= 0))
        throw new ValueError(`${new.target.name}: padding must be counts ≥ 0; got ${p}`);
    this.padding = opts.padding ? [...opts.padding] : undefined;
  }

  protected buf(layer: number, kv?: KV, dims?: { B: number; H: number; d: number }): LayerBuf {
    let b = this.layers.get(layer);
    if (!b) {
      const [B, H, , d] = kv ? (kv.k.shape as [number, number, number, number]) : [dims!.B, dims!.H, 0, dims!.d];
      b = new LayerBuf(B, H, d);
      this.layers.set(layer, b);
    }
    return b;
  }

  /**
   * Called before new tokens are added (eviction makes room here, so the new chunk is never evicted).
   * `incoming[b]`: real (non-padding) tokens of sequence b among the T arriving.
   */
  protected beforeAppend(_layer: number, _b: LayerBuf, _T: number, _incoming: Int32Array): void {}
  /** Called after new tokens were added at slots [from, L) (quantisers rewrite them here; padding is [0, pad)). */
  protected afterAppend(_layer: number, _b: LayerBuf, _from: number): void {}

  /** Left-padding slots of sequence b (0 without `padding`). */
  protected padOf(b: number): number {
    return this.padding?.[b] ?? 0;
  }

  append(layer: number, kv: KV, position: number): void {
    const known = this.layers.get(layer);
    const [B, H, , d] = kv.k.shape as [number, number, number, number];
    if (known && (known.B !== B || known.H !== H || known.d !== d))
      throw new ShapeError(
        `${this.constructor.name}: layer ${layer} holds [${known.B}, ${known.H}, ·, ${known.d}] keys; got [${kv.k.shape}] (a batch, head count or head size cannot change mid-cache; reset() first)`,
      );
    const b = this.buf(layer, kv);
    const T = kv.k.shape[2]!;
    if (this.padding && this.padding.length !== b.B)
      throw new ValueError(`${this.constructor.name}: padding has ${this.padding.length} entries; the batch is ${b.B}`);
    const before = this.seen.get(layer) ?? 0;
    // padding is the first padOf(b) tokens a sequence ever sees
    const newPad = Int32Array.from({ length: b.B }, (_, i) => Math.min(T, Math.max(0, this.padOf(i) - before)));
    this.beforeAppend(
      layer,
      b,
      T,
      newPad.map((p) => T - p),
    );
    const from = b.L;
    b.append(kv.k.contiguous().dataSync(), kv.v.contiguous().dataSync(), T, position);
    // a row gains padding only while it holds nothing else, so its padding stays leading
    for (let bh = 0; bh < b.B * b.H; bh++) b.pad[bh]! += newPad[Math.floor(bh / b.H)]!;
    this.seen.set(layer, before + T);
    this.afterAppend(layer, b, from);
    this.dirty(layer);
  }

  /** Absolute positions of the real tokens that (sequence, head) holds in `layer`, ascending. */
  heldPositions(layer: number, seq = 0, head = 0): number[] {
    const b = this.layers.get(layer);
    if (!b) return [];
    if (!(seq >= 0 && seq < b.B && head >= 0 && head < b.H))
      throw new ValueError(`heldPositions: sequence ${seq}, head ${head} outside ${b.B} × ${b.H}`);
    const bh = seq * b.H + head;
    return b.slots(bh).map((t) => b.pos[bh * b.cap + t]!);
  }

  protected dirty(layer: number): void {
    const old = this.tensors.get(layer);
    if (old) {
      old.k.dispose();
      old.v.dispose();
      this.tensors.delete(layer);
    }
  }

  read(layer: number): KV | null {
    const hit = this.tensors.get(layer);
    if (hit) return hit;
    const b = this.layers.get(layer);
    if (!b) return null;
    const { k, v } = b.dense();
    const shape = [b.B, b.H, b.L, b.d];
    const kv = { k: keep(tensor(k, { shape })), v: keep(tensor(v, { shape })) };
    this.tensors.set(layer, kv);
    return kv;
  }

  length(layer: number): number {
    return this.layers.get(layer)?.L ?? 0;
  }

  /** Physical bytes of one layer (fp16 keys and values of the real tokens by default). */
  protected layerBytes(b: LayerBuf): number {
    let n = 0;
    for (let bh = 0; bh < b.B * b.H; bh++) n += b.held(bh);
    return n * b.d * 2 * 2;
  }

  /** Token counts are summed over layers and sequences (head 0's count per sequence); padding never counts. */
  stats(): CacheStats {
    let tokensSeen = 0;
    let tokensHeld = 0;
    let bytes = 0;
    let fp16Bytes = 0;
    for (const [l, b] of this.layers) {
      for (let i = 0; i < b.B; i++) {
        const s = Math.max(0, (this.seen.get(l) ?? 0) - this.padOf(i));
        tokensSeen += s;
        tokensHeld += b.held(i * b.H);
        fp16Bytes += b.H * s * b.d * 4;
      }
      bytes += this.layerBytes(b);
    }
    return { tokensSeen, tokensHeld, bytes, fp16Bytes };
  }

  reset(): void {
    for (const l of [...this.tensors.keys()]) this.dirty(l);
    this.layers.clear();
    this.seen.clear();
  }
}

/** Throws a ValueError unless `v` (an option of `owner`) is an integer in [min, max]. */
export function checkInt(owner: string, name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!(Number.isInteger(v) && v >= min && v <= max))
    throw new ValueError(
      `${owner}: ${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`}; got ${v}`,
    );
}

/** Reads [B, Hq, Tq, L] attention probabilities to the host. */
export function hostProbs(probs: Tensor): { data: ArrayLike<number>; B: number; Hq: number; Tq: number; L: number } {
  const [B, Hq, Tq, L] = probs.shape as [number, number, number, number];
  return { data: probs.contiguous().dataSync(), B, Hq, Tq, L };
}

/** Indices of the `n` largest scores (ties: earlier first), returned ascending. */
export function topIndices(scores: ArrayLike<number>, candidates: number[], n: number): number[] {
  if (n <= 0) return [];
  return [...candidates]
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, n)
    .sort((a, b) => a - b);
}
