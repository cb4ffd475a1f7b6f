// The KV-cache interface attention layers decode with. `KVCache` keeps the bookkeeping (positions seen,
// per layer) and delegates how keys and values are *stored* to a `KVCacheStorage` policy, so evicting,
// merging or compressed caches (kv-compress) plug in without forking the attention layer.
import { isGradEnabled, noGrad } from '../autograd.js';
import type { DType } from '../dtype.js';
import { DTypeError, ShapeError, ValueError } from '../errors.js';
import { cat } from '../ops/movement.js';
import { zerosOf } from '../ops/prims.js';
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

/**
 * Keeps everything (the default, exact cache). Keys and values live in buffers [B, H, capacity, d] that grow by
 * doubling, so a decoding step writes its position in place — appending by concatenation copied the whole
 * cache at every step, quadratic over a generation — and attention reads views of the filled part. Appends
 * that autograd records (inputs that require grad, with grad enabled) concatenate instead, so gradients
 * still flow through the cache; a layer stays on that path until `reset()`.
 */
export class ConcatStorage implements KVCacheStorage {
  private readonly layers = new Map<number, { buf: KV | null; kv: KV }>();
  private readonly capacity: number;

  /** `capacity`: positions to allocate at the first append (the expected length), to avoid growing. */
  constructor(opts: { capacity?: number } = {}) {
    this.capacity = opts.capacity ?? 0;
    if (!Number.isInteger(this.capacity) || this.capacity < 0)
      throw new ValueError(`ConcatStorage: capacity must be a non-negative integer; got ${opts.capacity}`);
  }

  append(layer: number, kv: KV): void {
    const old = this.layers.get(layer);
    if (old)
      for (const [name, held, x] of [
        ['keys', old.kv.k, kv.k],
        ['values', old.kv.v, kv.v],
      ] as const)
        if (!sameHeads(held, x))
          throw new ShapeError(
            `ConcatStorage.append: layer ${layer} holds ${name} [${held.shape}]; cannot append [${x.shape}] (B, H and d must match)`,
          );
    const recorded = isGradEnabled() && (kv.k.requiresGrad || kv.v.requiresGrad);
    if (recorded || (old && old.buf === null)) {
      const next = old
        ? { k: cat([old.kv.k, kv.k], 2), v: cat([old.kv.v, kv.v], 2) }
        : { k: kv.k.detach(), v: kv.v.detach() };
      this.replace(layer, null, next);
      return;
    }
    noGrad(() => {
      const L = old ? old.kv.k.shape[2]! : 0;
      const T = kv.k.shape[2]!;
      let buf = old?.buf ?? null;
      if (!buf || L + T > buf.k.shape[2]!) {
        const cap = buf ? buf.k.shape[2]! : 0;
        const size = Math.max(L + T, 2 * cap, this.capacity);
        const grow = (x: Tensor, held: Tensor | undefined) => {
          const b = zerosOf([x.shape[0]!, x.shape[1]!, size, x.shape[3]!], x.dtype, x);
          if (held) write(b, 0, held);
          return keep(b);
        };
        // The old buffers are freed by replace() below, after their contents are copied.
        buf = { k: grow(kv.k, old?.kv.k), v: grow(kv.v, old?.kv.v) };
      }
      write(buf.k, L, kv.k);
      write(buf.v, L, kv.v);
      this.replace(layer, buf, { k: buf.k.narrow(2, 0, L + T), v: buf.v.narrow(2, 0, L + T) });
    });
  }
  read(layer: number): KV | null {
    return this.layers.get(layer)?.kv ?? null;
  }
  length(layer: number): number {
    return this.layers.get(layer)?.kv.k.shape[2] ?? 0;
  }
  reset(): void {
    for (const { buf, kv } of this.layers.values()) {
      kv.k.dispose();
      kv.v.dispose();
      buf?.k.dispose();
      buf?.v.dispose();
    }
    this.layers.clear();
  }

  /** Installs what `read` returns for `layer` (kept: the cache outlives tidy() scopes of decoding steps). */
  private replace(layer: number, buf: KV | null, kv: KV): void {
    const old = this.layers.get(layer);
    if (old) {
      old.kv.k.dispose();
      old.kv.v.dispose();
      if (old.buf && old.buf !== buf) {
        old.buf.k.dispose();
        old.buf.v.dispose();
      }
    }
    keep(kv.k);
    keep(kv.v);
    this.layers.set(layer, { buf, kv });
  }
}

/** buf[:, :, at : at + T] = x, in place. */
function write(buf: Tensor, at: number, x: Tensor): void {
  const dst = buf.narrow(2, at, x.shape[2]!);
  dst.copy_(x);
  dst.dispose();
}

function sameHeads(a: Tensor, b: Tensor): boolean {
  return (
    a.ndim === 4 && b.ndim === 4 && a.shape[0] === b.shape[0] && a.shape[1] === b.shape[1] && a.shape[3] === b.shape[3]
  );
}

export class KVCache {
  private readonly seen = new Map<number, number>();
  private readonly dtypes = new Map<number, DType>();
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
    if (k.ndim !== 4 || v.ndim !== 4 || k.shape.some((n, i) => n !== v.shape[i]))
      throw new ValueError(
        `KVCache.append: keys and values must be [B, H, T, d] of one shape; got [${k.shape}] and [${v.shape}]`,
      );
    if (k.dtype !== v.dtype) throw new DTypeError(`KVCache.append: keys are ${k.dtype}, values ${v.dtype}`);
    // A storage grows by concatenating, which would silently convert what it holds to the new dtype.
    const held = this.dtypes.get(layer);
    if (held !== undefined && held !== k.dtype)
      throw new DTypeError(`KVCache.append: layer ${layer} holds ${held} keys; got ${k.dtype}`);
    this.dtypes.set(layer, k.dtype);
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
    this.dtypes.clear();
  }
}
