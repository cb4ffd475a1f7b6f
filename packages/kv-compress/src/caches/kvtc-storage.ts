// The KVTC cache (arXiv 2511.01815): s attention sinks and a recent window stay raw; every time c more tokens
// have left the window, they are transform-coded (PCA → DP-planned quantisation → DEFLATE) as one chunk. Attention
// always runs on the decompressed values (KVTC is for storage and transfer), so the chunk is decoded at once and
// written back; stats() counts the compressed bytes. serialize() writes the TKVC container (FORMAT.md), and
// KVTCStorage.restore() rebuilds a cache from one, layer by layer.
import { nn } from '@tessera/tensor-core';
import type { Calibration, KVRows, KvtcPlan } from '../calibration.js';
import { CalibrationMismatchError, ValueError } from '../errors.js';
import {
  CacheReader,
  calibrationFingerprint,
  ENTROPY_CODERS,
  type EntropyCoder,
  MAX_CHUNK_TOKENS,
  packChunk,
  type StoredChunk,
  writeContainer,
} from '../format.js';
import { ChunkDecoder, checkPlan, encodeChunk } from '../kvtc.js';
import { type CacheStats, checkInt, HostStorage, type LayerBuf } from './host.js';

export interface KVTCStorageOptions {
  /** raw attention sinks (default 4) */
  sinks?: number;
  /** raw recent tokens (default 128) */
  window?: number;
  /** re-compress every c tokens (default 16) */
  every?: number;
  /** DEFLATE level (0 = packed only; default 6) */
  level?: number;
  /** entropy stage: 'deflate' (default, the paper's), 'range' (adaptive range coder) or 'best' (the smaller) */
  coder?: EntropyCoder;
  /**
   * Batches: left-padding slots per sequence (per-sequence lengths in a left-padded batch). Padding is never
   * compressed, stored or counted; each sequence keeps its own sinks, chunks and container (serialize(b)).
   */
  padding?: number[];
}

export class KVTCStorage extends HostStorage {
  override readonly name = 'kvtc';
  /** compressed chunks per sequence of the batch */
  readonly batchChunks: StoredChunk[][] = [];
  /** per sequence: first slot not yet compressed (= padding + sinks + compressed tokens) */
  private done: number[] = [];
  private firstPosition = 0;
  constructor(
    readonly cal: Calibration,
    readonly plan: KvtcPlan,
    readonly opts: KVTCStorageOptions = {},
  ) {
    // the base class validates the padding and keeps it out of the token counts
    super({ padding: opts.padding });
    checkPlan(cal, plan);
    if (opts.sinks !== undefined) checkInt('KVTCStorage', 'sinks', opts.sinks, 0);
    if (opts.window !== undefined) checkInt('KVTCStorage', 'window', opts.window, 0);
    if (opts.every !== undefined) checkInt('KVTCStorage', 'every', opts.every, 1, MAX_CHUNK_TOKENS);
    if (opts.level !== undefined) checkInt('KVTCStorage', 'level', opts.level, 0, 9);
    if (opts.coder !== undefined && !ENTROPY_CODERS.includes(opts.coder))
      throw new ValueError(`KVTCStorage: coder must be one of ${ENTROPY_CODERS.join(', ')}; got ${String(opts.coder)}`);
  }

  /** Empties the cache: its chunks and compression progress too, not only the raw buffers. */
  override reset(): void {
    super.reset();
    this.batchChunks.length = 0;
    this.done = [];
    this.firstPosition = 0;
  }

  /** The chunks of sequence 0 (the whole cache when the batch is 1). */
  get chunks(): StoredChunk[] {
    return this.batchChunks[0] ?? [];
  }
  get sinks(): number {
    return this.opts.sinks ?? 4;
  }
  get window(): number {
    return this.opts.window ?? 128;
  }
  /** left-padding slots of sequence b (never compressed, stored or counted) */
  pad(b: number): number {
    return this.opts.padding?.[b] ?? 0;
  }

  protected override afterAppend(layer: number, b: LayerBuf, from: number): void {
    if (b.H !== this.cal.heads || b.d !== this.cal.headDim)
      throw new ValueError(
        `KVTCStorage: layer ${layer} has ${b.H}×${b.d} KV heads; the calibration ${this.cal.heads}×${this.cal.headDim}`,
      );
    if (this.opts.padding && this.opts.padding.length !== b.B)
      throw new ValueError(`KVTCStorage: padding has ${this.opts.padding.length} entries; the batch is ${b.B}`);
    if (from === 0 && layer === 0) this.firstPosition = b.pos[0]!;
    if (layer !== this.cal.layers - 1) return;
    this.maybeCompress();
  }

  private maybeCompress(): void {
    const b0 = this.layers.get(0);
    const L = b0?.L ?? 0;
    for (let l = 0; l < this.cal.layers; l++) if ((this.layers.get(l)?.L ?? -1) !== L) return; // not every layer has this step's tokens yet
    const c = this.opts.every ?? 16;
    for (let seq = 0; seq < b0!.B; seq++) {
      const pad = this.pad(seq);
      this.batchChunks[seq] ??= [];
      // until a sequence has its sinks, nothing of it is compressed (and its padding never is)
      if (this.done[seq] === undefined) {
        if (L < pad) continue;
        this.done[seq] = pad + Math.min(this.sinks, L - pad);
      }
      // A long prefill leaves many tokens at once: code them in chunks a container can hold (whole multiples of c).
      const most = Math.max(c, Math.floor(MAX_CHUNK_TOKENS / c) * c);
      for (;;) {
        const done = this.done[seq]!;
        const n = Math.min(most, Math.floor((L - done - this.window) / c) * c);
        if (n <= 0) break;
        this.compressChunk(seq, pad, done, n);
      }
    }
  }

  /** Codes slots [done, done + n) of sequence `seq` as one chunk and writes what a decoder returns back. */
  private compressChunk(seq: number, pad: number, done: number, n: number): void {
    const rows = this.gather(seq, done, done + n);
    const payload = encodeChunk(this.cal, this.plan, rows);
    this.batchChunks[seq]!.push(
      packChunk(payload, done - pad, n, this.opts.level ?? 6, this.opts.coder ?? 'deflate', this.plan),
    );
    // attention reads what a decoder would produce
    const dec = new ChunkDecoder(this.cal, this.plan, payload, n, rows.positions);
    const f = this.cal.heads * this.cal.headDim;
    for (let l = 0; l < this.cal.layers; l++) {
      const b = this.layers.get(l)!;
      const x = dec.layer(l);
      for (let h = 0; h < b.H; h++)
        for (let t = 0; t < n; t++) {
          const o = b.at(seq * b.H + h, done + t);
          b.k.set(x.k.subarray(t * f + h * b.d, t * f + (h + 1) * b.d), o);
          b.v.set(x.v.subarray(t * f + h * b.d, t * f + (h + 1) * b.d), o);
        }
      this.dirty(l);
    }
    this.done[seq] = done + n;
  }

  /** Slots [from, to) of sequence `seq`, every layer, as rows [t, (layer, head, dim)]. */
  private gather(seq: number, from: number, to: number): KVRows {
    const { layers, heads, headDim } = this.cal;
    const f = heads * headDim;
    const P = layers * f;
    const n = to - from;
    const k = new Float32Array(n * P);
    const v = new Float32Array(n * P);
    for (let l = 0; l < layers; l++) {
      const b = this.layers.get(l)!;
      for (let h = 0; h < heads; h++)
        for (let t = 0; t < n; t++) {
          const o = b.at(seq * heads + h, from + t);
          k.set(b.k.subarray(o, o + headDim), t * P + l * f + h * headDim);
          v.set(b.v.subarray(o, o + headDim), t * P + l * f + h * headDim);
        }
    }
    const b0 = this.layers.get(0)!;
    const row = seq * heads * b0.cap;
    const positions = Int32Array.from({ length: n }, (_, i) => b0.pos[row + from + i]!);
    return { layers, heads, headDim, n, k, v, positions };
  }

  override stats(): CacheStats {
    const s = super.stats();
    const b0 = this.layers.get(0);
    const L = b0?.L ?? 0;
    const perTokenRaw = this.cal.layers * this.cal.heads * this.cal.headDim * 4;
    let bytes = 0;
    let fp16Bytes = 0;
    for (let seq = 0; seq < (b0?.B ?? 0); seq++) {
      const pad = this.pad(seq);
      const valid = Math.max(0, L - pad);
      const compressed = Math.max(0, (this.done[seq] ?? pad) - pad - this.sinks);
      bytes +=
        (valid - compressed) * perTokenRaw + (this.batchChunks[seq] ?? []).reduce((a, c) => a + c.bytes.length, 0);
      // every token seen by this sequence, padding excluded
      fp16Bytes += Math.max(0, (this.seen.get(0) ?? 0) - pad) * perTokenRaw;
    }
    return { ...s, bytes, fp16Bytes };
  }

  /** The TKVC container of sequence `seq` (default 0): sinks and window as fp16, chunks as stored, no padding. */
  serialize(seq = 0): Uint8Array {
    const { layers, heads, headDim } = this.cal;
    const b0 = this.layers.get(0);
    if (b0 && !(Number.isInteger(seq) && seq >= 0 && seq < b0.B))
      throw new ValueError(`KVTCStorage.serialize: sequence ${seq} outside the batch of ${b0.B}`);
    const pad = this.pad(seq);
    const L = Math.max(0, (b0?.L ?? 0) - pad);
    const sinks = Math.min(this.sinks, L);
    const done = Math.max((this.done[seq] ?? pad) - pad, sinks);
    const f = heads * headDim;
    const rawK: Float32Array[] = [];
    const rawV: Float32Array[] = [];
    const rawSlots = [
      ...Array.from({ length: sinks }, (_, i) => pad + i),
      ...Array.from({ length: L - done }, (_, i) => pad + done + i),
    ];
    for (let l = 0; l < layers; l++) {
      const b = this.layers.get(l)!;
      const k = new Float32Array(rawSlots.length * f);
      const v = new Float32Array(rawSlots.length * f);
      rawSlots.forEach((slot, t) => {
        for (let h = 0; h < heads; h++) {
          const o = b.at(seq * heads + h, slot);
          k.set(b.k.subarray(o, o + headDim), t * f + h * headDim);
          v.set(b.v.subarray(o, o + headDim), t * f + h * headDim);
        }
      });
      rawK.push(k);
      rawV.push(v);
    }
    const chunks = this.batchChunks[seq] ?? [];
    return writeContainer({
      cal: this.cal,
      plan: chunks.length ? this.plan : null,
      layers,
      heads,
      headDim,
      firstPosition: b0 ? b0.pos[seq * heads * b0.cap + pad]! : this.firstPosition,
      sinks,
      compressed: done - sinks,
      window: L - done,
      rawK,
      rawV,
      chunks: chunks.map((c) => ({ ...c })),
    });
  }

  /**
   * Rebuilds a cache from a container (decoded layer by layer) and returns it with a KVCache whose next
   * position follows the stored prefix.
   */
  static restore(
    bytes: Uint8Array,
    cal: Calibration,
    plan: KvtcPlan,
    opts: KVTCStorageOptions = {},
  ): { storage: KVTCStorage; cache: nn.KVCache } {
    const reader = new CacheReader(bytes, cal);
    const h = reader.header;
    // A container without KVTC chunks (a short prefix) carries the fingerprint too: it must be this model's.
    const fp = calibrationFingerprint(cal);
    if (h.fingerprint !== fp || h.layers !== cal.layers || h.heads !== cal.heads || h.headDim !== cal.headDim)
      throw new CalibrationMismatchError(
        `KVTCStorage.restore: the container was written for ${h.layers}×${h.heads}×${h.headDim} with calibration ${h.fingerprint}; given ${cal.layers}×${cal.heads}×${cal.headDim}, ${fp}`,
      );
    // Its chunks were coded with its plan; more chunks under another would make a container no reader can read.
    if (h.plan && !samePlan(h.plan, plan))
      throw new CalibrationMismatchError(
        'KVTCStorage.restore: the container was coded with another plan; pass the plan it was written with',
      );
    if (opts.padding)
      throw new ValueError('KVTCStorage.restore: a container holds one sequence; padding does not apply');
    // The container fixes its sinks once it holds more than them (a shorter prefix is all sinks so far).
    const sinks = h.tokens > h.sinks ? h.sinks : (opts.sinks ?? 4);
    if (opts.sinks !== undefined && opts.sinks !== sinks)
      throw new ValueError(`KVTCStorage.restore: the container keeps ${h.sinks} sinks; options say ${opts.sinks}`);
    const s = new KVTCStorage(cal, plan, { ...opts, sinks });
    for (let l = 0; l < h.layers; l++) {
      // decoded straight into the buffers' [H, T, d] layout
      const { k, v } = reader.layerHeads(l);
      const b = s.buf(l, undefined, { B: 1, H: h.heads, d: h.headDim });
      b.append(k, v, h.tokens, h.firstPosition);
      s.seen.set(l, h.tokens);
    }
    s.firstPosition = h.firstPosition;
    // A prefix that is all sinks so far leaves `done` unset: the next step fills the rest of the sinks first.
    s.done = h.tokens > h.sinks ? [h.sinks + h.compressed] : [];
    s.batchChunks[0] = [];
    h.sections.forEach((sec) => {
      if (sec.kind === 3)
        s.batchChunks[0]!.push({
          start: sec.tokenStart,
          count: sec.tokenCount,
          bytes: bytes.slice(sec.offset, sec.offset + sec.length),
          deflated: sec.codec === 3,
          range: sec.codec === 4,
        });
    });
    return { storage: s, cache: new PrefixKVCache(s, h.firstPosition + h.tokens) };
  }
}

/**
 * A KVCache that continues after a restored prefix: its first position is `offset` instead of 0.
 * (tensor-core's KVCache has no way to set the starting position; this works around it.)
 */
export class PrefixKVCache extends nn.KVCache {
  constructor(
    storage: nn.KVCacheStorage,
    private offset: number,
  ) {
    super(storage);
  }
  override position(layer: number): number {
    const p = super.position(layer);
    return p === 0 ? this.offset : p;
  }
  override reset(): void {
    super.reset();
    this.offset = 0;
  }
}

/** Whether two plans code alike: the same segments, widths, token groups and groups (start, size, type). */
function samePlan(a: KvtcPlan, b: KvtcPlan): boolean {
  return (
    a.plans.length === b.plans.length &&
    a.plans.every((p, i) => {
      const q = b.plans[i]!;
      return (
        p.width === q.width &&
        p.tokenGroup === q.tokenGroup &&
        p.groups.length === q.groups.length &&
        p.groups.every(
          (g, j) => g.start === q.groups[j]!.start && g.size === q.groups[j]!.size && g.type === q.groups[j]!.type,
        )
      );
    })
  );
}
