// KVCacheStore: compressed caches keyed by a hash of their token prefix, so a later request (the next turn of a
// conversation) reuses the longest stored prefix and only prefills the rest. Entries are wrapped in a small
// envelope (magic, token ids, payload, CRC-32); a corrupt or mismatched entry is deleted and never returned.
// Size and count limits evict the least recently used entries. Backends: memory here, the filesystem in
// `@tessera/kv-compress/node` (atomic rename); any key–value byte store fits the StoreBackend interface.
import { ValueError } from './errors.js';
import { crc32, Fnv64 } from './numeric.js';

export interface StoreBackend {
  /**
   * The entry's bytes, or null. A read marks the entry used (its `lastUsed` for `list`) unless `touch` is
   * false: opening a store reads every entry to check it, which must not reset the LRU order.
   */
  get(key: string, opts?: { touch?: boolean }): Promise<Uint8Array | null>;
  /** Must be atomic: a reader sees the old entry, the new one or none, never a torn one. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Stored keys with sizes and, where known, a last-use time (ms) to seed the LRU order. */
  list(): Promise<{ key: string; size: number; lastUsed?: number }[]>;
}

export class MemoryBackend implements StoreBackend {
  readonly map = new Map<string, Uint8Array>();
  private readonly used = new Map<string, number>();
  private last = 0;
  private touch(key: string): void {
    this.last = Math.max(Date.now(), this.last + 1e-3);
    this.used.set(key, this.last);
  }
  async get(key: string, opts: { touch?: boolean } = {}): Promise<Uint8Array | null> {
    const b = this.map.get(key) ?? null;
    if (b && opts.touch !== false) this.touch(key);
    return b;
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.map.set(key, Uint8Array.from(bytes));
    this.touch(key);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
    this.used.delete(key);
  }
  async list(): Promise<{ key: string; size: number; lastUsed?: number }[]> {
    return [...this.map].map(([key, b]) => ({ key, size: b.length, lastUsed: this.used.get(key) }));
  }
}

const ENVELOPE_MAGIC = 0x45564b54; // "TKVE" little-endian
const ENVELOPE_HEADER = 16;

/** Hash key of a token prefix: FNV-1a 64 over the int32 little-endian ids. */
export function prefixKey(tokens: ArrayLike<number>, length = tokens.length): string {
  const h = new Fnv64();
  for (let i = 0; i < length; i++) {
    const t = tokens[i]! | 0;
    h.byte(t & 0xff);
    h.byte((t >>> 8) & 0xff);
    h.byte((t >>> 16) & 0xff);
    h.byte((t >>> 24) & 0xff);
  }
  return h.hex();
}

export function wrapEntry(tokens: ArrayLike<number>, payload: Uint8Array): Uint8Array {
  const n = tokens.length;
  const out = new Uint8Array(ENVELOPE_HEADER + n * 4 + payload.length + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, ENVELOPE_MAGIC, true);
  dv.setUint16(4, 1, true);
  dv.setUint32(8, n, true);
  dv.setUint32(12, payload.length, true);
  for (let i = 0; i < n; i++) dv.setInt32(ENVELOPE_HEADER + 4 * i, tokens[i]!, true);
  out.set(payload, ENVELOPE_HEADER + 4 * n);
  dv.setUint32(out.length - 4, crc32(out, 0, out.length - 4), true);
  return out;
}

/** Unwraps an entry; null when it is corrupt (bad size, magic, version or CRC). */
export function unwrapEntry(bytes: Uint8Array): { tokens: Int32Array; payload: Uint8Array } | null {
  if (bytes.length < ENVELOPE_HEADER + 4) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== ENVELOPE_MAGIC || dv.getUint16(4, true) !== 1) return null;
  const n = dv.getUint32(8, true);
  const m = dv.getUint32(12, true);
  if (ENVELOPE_HEADER + n * 4 + m + 4 !== bytes.length) return null;
  if (crc32(bytes, 0, bytes.length - 4) !== dv.getUint32(bytes.length - 4, true)) return null;
  const tokens = new Int32Array(n);
  for (let i = 0; i < n; i++) tokens[i] = dv.getInt32(ENVELOPE_HEADER + 4 * i, true);
  return { tokens, payload: bytes.slice(ENVELOPE_HEADER + 4 * n, ENVELOPE_HEADER + 4 * n + m) };
}

export interface StoreOptions {
  /** total bytes of stored entries (default 256 MiB) */
  maxBytes?: number;
  maxEntries?: number;
}

interface IndexEntry {
  length: number;
  size: number;
  /** last use, in ms since the epoch (comparable with a backend's `lastUsed`) */
  tick: number;
}

export class KVCacheStore {
  private readonly index = new Map<string, IndexEntry>();
  private tick = 0;
  /** corrupt entries found and dropped so far */
  dropped = 0;
  private constructor(
    readonly backend: StoreBackend,
    readonly opts: StoreOptions,
  ) {}

  /**
   * Opens a store over a backend, indexing what it already holds (its LRU order from the backend's last-use
   * times, which the checking reads leave alone), then evicting down to this store's limits.
   */
  static async open(backend: StoreBackend, opts: StoreOptions = {}): Promise<KVCacheStore> {
    const s = new KVCacheStore(backend, opts);
    const listed = (await backend.list()).sort((a, b) => (a.lastUsed ?? 0) - (b.lastUsed ?? 0));
    for (const e of listed) {
      const bytes = await backend.get(e.key, { touch: false });
      const entry = bytes && unwrapEntry(bytes);
      if (!entry || prefixKey(entry.tokens) !== e.key) {
        s.dropped++;
        await backend.delete(e.key);
        continue;
      }
      const tick = e.lastUsed ?? s.stamp();
      s.tick = Math.max(s.tick, tick);
      s.index.set(e.key, { length: entry.tokens.length, size: bytes.length, tick });
    }
    await s.evict('');
    return s;
  }

  /** A use time later than every one before it (ms; sub-ms steps keep uses within one ms ordered). */
  private stamp(): number {
    this.tick = Math.max(Date.now(), this.tick + 1e-3);
    return this.tick;
  }

  get bytes(): number {
    let b = 0;
    for (const e of this.index.values()) b += e.size;
    return b;
  }
  get size(): number {
    return this.index.size;
  }

  /** Stores `payload` (e.g. a TKVC container) for the token prefix; evicts LRU entries to fit the limits. */
  async put(tokens: ArrayLike<number>, payload: Uint8Array): Promise<string> {
    const key = prefixKey(tokens);
    const bytes = wrapEntry(tokens, payload);
    const maxBytes = this.opts.maxBytes ?? 256 * 2 ** 20;
    if (bytes.length > maxBytes)
      throw new ValueError(`KVCacheStore.put: entry of ${bytes.length} bytes exceeds maxBytes ${maxBytes}`);
    await this.backend.put(key, bytes);
    this.index.set(key, { length: tokens.length, size: bytes.length, tick: this.stamp() });
    await this.evict(key);
    return key;
  }

  /**
   * Evicts least recently used entries until what the backend holds fits the limits. It counts what the backend
   * lists, not only this store's index, so stores sharing a backend (two processes on one folder) keep the
   * limits between them; entries another store removed leave this index.
   */
  private async evict(keepKey: string): Promise<void> {
    const maxBytes = this.opts.maxBytes ?? 256 * 2 ** 20;
    const maxEntries = this.opts.maxEntries ?? Number.POSITIVE_INFINITY;
    const listed = await this.backend.list();
    const present = new Set(listed.map((e) => e.key));
    for (const k of [...this.index.keys()]) if (!present.has(k)) this.index.delete(k);
    const all = listed.map((e) => {
      const own = this.index.get(e.key);
      return { key: e.key, size: own?.size ?? e.size, used: own?.tick ?? e.lastUsed ?? 0 };
    });
    let total = all.reduce((a, e) => a + e.size, 0);
    let count = all.length;
    for (const e of all.filter((x) => x.key !== keepKey).sort((a, b) => a.used - b.used)) {
      if (total <= maxBytes && count <= maxEntries) break;
      this.index.delete(e.key);
      total -= e.size;
      count--;
      await this.backend.delete(e.key);
    }
  }

  private async load(key: string, tokens: ArrayLike<number>, length: number): Promise<Uint8Array | null> {
    const bytes = await this.backend.get(key);
    if (!bytes) {
      // evicted meanwhile (by this store's own put, or another store on the same backend): gone, not corrupt
      this.index.delete(key);
      return null;
    }
    const entry = unwrapEntry(bytes);
    let ok = !!entry && entry.tokens.length === length;
    for (let i = 0; ok && i < length; i++) if (entry!.tokens[i] !== (tokens[i]! | 0)) ok = false;
    if (!ok) {
      // corrupt, vanished, or a hash collision with another prefix: never return it
      this.dropped++;
      this.index.delete(key);
      await this.backend.delete(key);
      return null;
    }
    // The index may have lost the key while the read was awaited (an eviction); the bytes read are still sound.
    const e = this.index.get(key);
    if (e) e.tick = this.stamp();
    return entry!.payload;
  }

  /** The entry stored for exactly this token sequence. */
  async get(tokens: ArrayLike<number>): Promise<Uint8Array | null> {
    const key = prefixKey(tokens);
    if (!this.index.has(key)) return null;
    return this.load(key, tokens, tokens.length);
  }

  /** The longest stored prefix of `tokens` (verified token by token), or null. */
  async longestPrefix(tokens: ArrayLike<number>): Promise<{ length: number; payload: Uint8Array } | null> {
    const lengths = new Set<number>();
    for (const e of this.index.values()) if (e.length <= tokens.length) lengths.add(e.length);
    if (lengths.size === 0) return null;
    const keys = new Map<number, string>();
    const h = new Fnv64();
    if (lengths.has(0)) keys.set(0, h.hex());
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]! | 0;
      h.byte(t & 0xff);
      h.byte((t >>> 8) & 0xff);
      h.byte((t >>> 16) & 0xff);
      h.byte((t >>> 24) & 0xff);
      if (lengths.has(i + 1)) keys.set(i + 1, h.hex());
    }
    for (const len of [...keys.keys()].sort((a, b) => b - a)) {
      const key = keys.get(len)!;
      if (!this.index.has(key)) continue;
      const payload = await this.load(key, tokens, len);
      if (payload) return { length: len, payload };
    }
    return null;
  }

  async delete(tokens: ArrayLike<number>): Promise<void> {
    const key = prefixKey(tokens);
    this.index.delete(key);
    await this.backend.delete(key);
  }
}
