// Host-side cache storage shared by the baselines: keys and values per layer in [B, H, L, d] float32 arrays with
// each slot's absolute position and an accumulated score, compaction per head (heads may keep different tokens,
// with equal counts), and physical byte accounting. Tensors handed to attention are rebuilt when a layer changes.
import { keep, type nn, type Tensor, tensor } from '@tessera/tensor-core';

type KV = nn.KV;

export class LayerBuf {
  L = 0;
  cap: number;
  k: Float32Array;
  v: Float32Array;
  pos: Int32Array;
  score: Float64Array;
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
  /** Keeps, for each (b, h) row, the slots `keepIdx(bh)` (ascending, same count for every row). */
  compact(keepIdx: (bh: number) => number[]): void {
    const { d, cap } = this;
    let n = -1;
    for (let bh = 0; bh < this.B * this.H; bh++) {
      const idx = keepIdx(bh);
      if (n >= 0 && idx.length !== n) throw new Error('LayerBuf.compact: every head must keep the same count');
      n = idx.length;
      idx.forEach((src, dst) => {
        if (src === dst) return;
        this.k.copyWithin((bh * cap + dst) * d, (bh * cap + src) * d, (bh * cap + src + 1) * d);
        this.v.copyWithin((bh * cap + dst) * d, (bh * cap + src) * d, (bh * cap + src + 1) * d);
        this.pos[bh * cap + dst] = this.pos[bh * cap + src]!;
        this.score[bh * cap + dst] = this.score[bh * cap + src]!;
      });
    }
    this.L = Math.max(0, n);
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

/** The exact cache on host arrays, and the base class of the baselines (hooks run on append/observe). */
export class HostStorage implements CompressedStorage {
  readonly name: string = 'exact';
  protected readonly layers = new Map<number, LayerBuf>();
  private readonly tensors = new Map<number, KV>();
  protected seen = new Map<number, number>();

  protected buf(layer: number, kv?: KV, dims?: { B: number; H: number; d: number }): LayerBuf {
    let b = this.layers.get(layer);
    if (!b) {
      const [B, H, , d] = kv ? (kv.k.shape as [number, number, number, number]) : [dims!.B, dims!.H, 0, dims!.d];
      b = new LayerBuf(B, H, d);
      this.layers.set(layer, b);
    }
    return b;
  }

  /** Called before new tokens are added (eviction makes room here, so the new chunk is never evicted). */
  protected beforeAppend(_layer: number, _b: LayerBuf, _T: number): void {}
  /** Called after new tokens were added at slots [from, L) (quantisers rewrite them here). */
  protected afterAppend(_layer: number, _b: LayerBuf, _from: number): void {}

  append(layer: number, kv: KV, position: number): void {
    const b = this.buf(layer, kv);
    const T = kv.k.shape[2]!;
    this.beforeAppend(layer, b, T);
    const from = b.L;
    b.append(kv.k.contiguous().dataSync(), kv.v.contiguous().dataSync(), T, position);
    this.seen.set(layer, (this.seen.get(layer) ?? 0) + T);
    this.afterAppend(layer, b, from);
    this.dirty(layer);
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

  /** Physical bytes of one layer (fp16 keys and values by default). */
  protected layerBytes(b: LayerBuf): number {
    return b.B * b.H * b.L * b.d * 2 * 2;
  }

  stats(): CacheStats {
    let tokensSeen = 0;
    let tokensHeld = 0;
    let bytes = 0;
    let fp16Bytes = 0;
    for (const [l, b] of this.layers) {
      const s = this.seen.get(l) ?? 0;
      tokensSeen += s;
      tokensHeld += b.L;
      bytes += this.layerBytes(b);
      fp16Bytes += b.B * b.H * s * b.d * 4;
    }
    return { tokensSeen, tokensHeld, bytes, fp16Bytes };
  }

  reset(): void {
    for (const l of [...this.tensors.keys()]) this.dirty(l);
    this.layers.clear();
    this.seen.clear();
  }
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
