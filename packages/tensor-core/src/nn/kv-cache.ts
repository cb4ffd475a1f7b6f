// The KV-cache interface attention layers decode with. `KVCache` keeps the bookkeeping (positions seen,
// per layer) and delegates how keys and values are *stored* to a `KVCacheStorage` policy, so evicting,
// merging or compressed caches (kv-compress) plug in without forking the attention layer.
import { ValueError } from '../errors.js';
import { cat } from '../ops/movement.js';
import { keep } from '../runtime.js';
import type { Tensor } from '../tensor.js';

/** What attention reads back for one layer: keys and values [B, Hkv, L, d]. */
export interface KV {
  k: Tensor;
  v: Tensor;
}

/** A storage policy: owns the tensors it keeps, and may evict, merge, quantise or compress them. */
export interface KVCacheStorage {
  /** Adds this step's keys/values [B, Hkv, T, d] for `layer`; `position` is the absolute index of the first. */
  append(layer: number, kv: KV, position: number): void;
  /** The keys/values attention should use for `layer` (null before the first append). */
  read(layer: number): KV | null;
  /** Number of key/value positions currently held for `layer`. */
  length(layer: number): number;
  /** Optional: the attention probabilities [B, Hq, Tq, L] just computed over `read(layer)` (H2O, TOVA, SnapKV). */
  observe?(layer: number, probs: Tensor): void;
  reset(): void;
}

/** Keeps everything: concatenation along the sequence dim (the default, exact cache). */
export class ConcatStorage implements KVCacheStorage {
  private readonly layers = new Map<number, KV>();
  append(layer: number, kv: KV): void {
    const old = this.layers.get(layer);
    const next = old ? { k: cat([old.k, kv.k], 2), v: cat([old.v, kv.v], 2) } : { k: kv.k.detach(), v: kv.v.detach() };
    if (old) {
      old.k.dispose();
      old.v.dispose();
    }
    // The cache outlives tidy() scopes of individual decoding steps.
    keep(next.k);
    keep(next.v);
    this.layers.set(layer, next);
  }
  read(layer: number): KV | null {
    return this.layers.get(layer) ?? null;
  }
  length(layer: number): number {
    return this.layers.get(layer)?.k.shape[2] ?? 0;
  }
  reset(): void {
    for (const kv of this.layers.values()) {
      kv.k.dispose();
      kv.v.dispose();
    }
    this.layers.clear();
  }
}

export class KVCache {
  private readonly seen = new Map<number, number>();
  private readonly start: number;
  /** `startPosition`: where positions begin, e.g. for a cache restored after a stored prefix of that length. */
  constructor(
    readonly storage: KVCacheStorage = new ConcatStorage(),
    opts: { startPosition?: number } = {},
  ) {
    this.start = opts.startPosition ?? 0;
    if (!Number.isInteger(this.start) || this.start < 0)
      throw new ValueError(`KVCache: startPosition must be a non-negative integer; got ${opts.startPosition}`);
  }

  /** Absolute position of the next token for `layer` (RoPE offset); differs from length() when evicting. */
  position(layer: number): number {
    return this.seen.get(layer) ?? this.start;
  }

  length(layer: number): number {
    return this.storage.length(layer);
  }

  /** Appends and returns what attention reads. Keys must already carry their positional rotation. */
  append(layer: number, k: Tensor, v: Tensor): KV {
    if (k.ndim !== 4 || v.ndim !== 4 || k.shape[2] !== v.shape[2])
      throw new ValueError(
        `KVCache.append: keys and values must be [B, H, T, d] with one T; got [${k.shape}] and [${v.shape}]`,
      );
    const pos = this.position(layer);
    this.storage.append(layer, { k, v }, pos);
    this.seen.set(layer, pos + k.shape[2]!);
    return this.storage.read(layer)!;
  }

  read(layer: number): KV | null {
    return this.storage.read(layer);
  }

  observe(layer: number, probs: Tensor): void {
    this.storage.observe?.(layer, probs);
  }

  /** Empties the storage; positions start again at `startPosition`. */
  reset(): void {
    this.storage.reset();
    this.seen.clear();
  }
}
