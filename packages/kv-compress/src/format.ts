// The versioned, self-describing container of a compressed KV cache ("TKVC", FORMAT.md) and of a KVTC
// calibration ("TKCL"). Every header and section carries a CRC-32; a decoder checks sizes against the header
// and the file before it allocates, so truncated, corrupted or mismatched streams raise typed errors.
import { deflateSync, inflateSync } from 'fflate';
import { type Calibration, checkRows, type KVRows, type KvtcPlan, type Segment } from './calibration.js';
import type { BitPlan, Group } from './dp.js';
import { makePlan } from './dp.js';
import { rangeDecodePayload, rangeEncodePayload } from './entropy.js';
import {
  CalibrationMismatchError,
  ChecksumError,
  KVFormatError,
  TruncatedStreamError,
  UnsupportedVersionError,
  ValueError,
} from './errors.js';
import {
  checkPlan,
  checkPlanGroups,
  chunkBytes,
  decodeSegment,
  encodeChunk,
  reconstructLayer,
  segmentBytes,
  segmentOffset,
} from './kvtc.js';
import { crc32, fnv1a64, halfTable, toHalf } from './numeric.js';
import { TYPE_BY_ID, TYPE_ID } from './quant.js';

export const CACHE_MAGIC = 'TKVC';
export const CALIBRATION_MAGIC = 'TKCL';
export const FORMAT_VERSION = 1;
/**
 * Calibration files with per-component DP weights (weights.ts) are version 2: flag bit 2 set and the weights
 * after each segment's Vᵀ. A calibration without weights is still written as version 1, byte for byte as before.
 */
export const CALIBRATION_VERSION_WEIGHTED = 2;
const WEIGHTS_FLAG = 4;

/** Section kinds and codecs of the cache container. */
export const SectionKind = { rawKeys: 1, rawValues: 2, kvtcChunk: 3 } as const;
export const Codec = { fp16: 0, kvtcPacked: 2, kvtcDeflate: 3, kvtcRange: 4 } as const;
/** The adaptive range coder's models cap a symbol's probability, so it cannot shrink data more than this. */
const MAX_RANGE_RATIO = 1 << 16;
const ALL_LAYERS = 0xffff;
/** Tokens in one KVTC chunk section at most (writers split longer runs into several chunks). */
export const MAX_CHUNK_TOKENS = 1 << 16;
/** DEFLATE cannot expand more than 1032:1; a chunk claiming more is rejected before allocation. */
const MAX_INFLATE_RATIO = 1032;

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf);
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.view.setUint8(this.pos++, v);
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  f32(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  f32s(a: Float32Array | Float64Array): void {
    this.ensure(a.length * 4);
    for (let i = 0; i < a.length; i++) this.view.setFloat32(this.pos + 4 * i, a[i]!, true);
    this.pos += a.length * 4;
  }
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i));
  }
  hex64(h: string): void {
    for (let i = 0; i < 8; i++) this.u8(Number.parseInt(h.slice(2 * i, 2 * i + 2), 16) || 0);
  }
  setU32(at: number, v: number): void {
    this.view.setUint32(at, v, true);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  private readonly view: DataView;
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }
  need(n: number, field: string): void {
    if (this.pos + n > this.end)
      throw new TruncatedStreamError(
        `${this.what}: ${field} needs ${n} bytes at offset ${this.pos}; the stream ends at ${this.end}`,
      );
  }
  u8(f: string): number {
    this.need(1, f);
    return this.view.getUint8(this.pos++);
  }
  u16(f: string): number {
    this.need(2, f);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(f: string): number {
    this.need(4, f);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(f: string): number {
    this.need(4, f);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32s(n: number, f: string): Float32Array {
    this.need(n * 4, f);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.view.getFloat32(this.pos + 4 * i, true);
    this.pos += n * 4;
    return out;
  }
  ascii(n: number, f: string): string {
    this.need(n, f);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.bytes[this.pos++]!);
    return s;
  }
  hex64(f: string): string {
    this.need(8, f);
    let s = '';
    for (let i = 0; i < 8; i++) s += this.bytes[this.pos++]!.toString(16).padStart(2, '0');
    return s;
  }
}

// ---------------------------------------------------------------- calibration ("TKCL")

/**
 * Serialises a calibration: dims, mode, RoPE base and each segment's μ, energies and Vᵀ (float32), CRC-32; and
 * each segment's DP weights when any segment has them (version 2; segments without weights store ones).
 */
export function writeCalibration(cal: Calibration): Uint8Array {
  const weighted = cal.segments.some((s) => s.weights !== undefined);
  for (const s of cal.segments)
    if (s.weights && s.weights.length !== s.pca.rank)
      throw new ValueError(`writeCalibration: ${s.weights.length} weights for a segment of rank ${s.pca.rank}`);
  const w = new Writer();
  w.ascii(CALIBRATION_MAGIC);
  w.u16(weighted ? CALIBRATION_VERSION_WEIGHTED : FORMAT_VERSION);
  w.u16((cal.rope ? 1 : 0) | (cal.mode === 'per-layer' ? 2 : 0) | (weighted ? WEIGHTS_FLAG : 0));
  w.u16(cal.layers);
  w.u16(cal.heads);
  w.u16(cal.headDim);
  w.u16(cal.segments.length);
  w.f32(cal.ropeBase);
  for (const s of cal.segments) {
    w.u8(s.kind === 'k' ? 0 : 1);
    w.u8(0);
    w.u16(s.layers.length);
    for (const l of s.layers) w.u16(l);
    w.u32(s.pca.p);
    w.u32(s.pca.rank);
    w.f32s(s.pca.mean);
    w.f32s(s.pca.energies);
    w.f32s(s.pca.basis);
    if (weighted) w.f32s(s.weights ?? new Float32Array(s.pca.rank).fill(1));
  }
  const body = w.done();
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

export function readCalibration(bytes: Uint8Array): Calibration {
  const what = 'KVTC calibration';
  if (bytes.length < 24)
    throw new TruncatedStreamError(`${what}: ${bytes.length} bytes is shorter than the 24-byte header`);
  const r = new Reader(bytes, what, 0, bytes.length - 4);
  const magic = r.ascii(4, 'magic');
  if (magic !== CALIBRATION_MAGIC)
    throw new KVFormatError(`${what}: magic must be "${CALIBRATION_MAGIC}"; got ${JSON.stringify(magic)}`);
  const version = r.u16('version');
  if (version !== FORMAT_VERSION && version !== CALIBRATION_VERSION_WEIGHTED)
    throw new UnsupportedVersionError(
      `${what}: version ${version}; this decoder reads ${FORMAT_VERSION} and ${CALIBRATION_VERSION_WEIGHTED}`,
    );
  const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, true);
  if (crc32(bytes, 0, bytes.length - 4) !== stored)
    throw new ChecksumError(`${what}: CRC-32 mismatch over ${bytes.length - 4} bytes`);
  const flags = r.u16('flags');
  const weighted = (flags & WEIGHTS_FLAG) !== 0;
  if (weighted !== (version === CALIBRATION_VERSION_WEIGHTED))
    throw new KVFormatError(
      `${what}: version ${version} ${weighted ? 'must not set' : 'must set'} the weights flag (bit 2); flags ${flags}`,
    );
  const layers = r.u16('layers');
  const heads = r.u16('heads');
  const headDim = r.u16('headDim');
  const nseg = r.u16('segment count');
  const ropeBase = r.f32('ropeBase');
  const segments: Segment[] = [];
  for (let i = 0; i < nseg; i++) {
    const kindByte = r.u8('segment kind');
    if (kindByte > 1) throw new KVFormatError(`${what}: segment ${i} has kind ${kindByte}; 0 (keys) or 1 (values)`);
    const kind = kindByte === 0 ? 'k' : 'v';
    r.u8('pad');
    const nl = r.u16('segment layer count');
    const ls: number[] = [];
    for (let j = 0; j < nl; j++) {
      const l = r.u16('segment layer');
      if (l >= layers) throw new KVFormatError(`${what}: segment ${i} names layer ${l} of ${layers}`);
      ls.push(l);
    }
    const p = r.u32('p');
    const rank = r.u32('rank');
    if (p !== nl * heads * headDim || rank > p)
      throw new KVFormatError(`${what}: segment ${i} has p ${p}, rank ${rank}; expected p = ${nl * heads * headDim}`);
    const mean = r.f32s(p, 'mean');
    const energies = Float64Array.from(r.f32s(rank, 'energies'));
    const basis = r.f32s(rank * p, 'basis');
    const seg: Segment = { kind, layers: ls, pca: { p, rank, mean, energies, basis } };
    if (weighted) {
      const wts = r.f32s(rank, 'weights');
      for (let j = 0; j < rank; j++)
        if (!(wts[j]! >= 0 && Number.isFinite(wts[j]!)))
          throw new KVFormatError(`${what}: segment ${i} weight ${j} is ${wts[j]}; weights must be finite and ≥ 0`);
      seg.weights = wts;
    }
    segments.push(seg);
  }
  if (r.pos !== bytes.length - 4)
    throw new KVFormatError(`${what}: ${bytes.length - 4 - r.pos} bytes after the last segment`);
  return {
    layers,
    heads,
    headDim,
    mode: flags & 2 ? 'per-layer' : 'cross-layer',
    rope: (flags & 1) === 1,
    ropeBase,
    segments,
  };
}

const fingerprints = new WeakMap<Calibration, string>();
/**
 * FNV-1a 64 of the calibration's serialised bytes without DP weights (its version-1 form): what a cache stream
 * names so it is decoded with the same basis. Weights only steer the DP, and every plan travels in the container,
 * so a weighted and an unweighted calibration with one basis decode each other's caches.
 */
export function calibrationFingerprint(cal: Calibration): string {
  let f = fingerprints.get(cal);
  if (!f) {
    f = fnv1a64(writeCalibration({ ...cal, segments: cal.segments.map(({ weights: _, ...s }) => s) }));
    fingerprints.set(cal, f);
  }
  return f;
}

// ---------------------------------------------------------------- cache container ("TKVC")

export interface CacheHeader {
  version: number;
  fingerprint: string;
  layers: number;
  heads: number;
  headDim: number;
  tokens: number;
  firstPosition: number;
  sinks: number;
  compressed: number;
  window: number;
  ropeBase: number;
  targetRatio: number;
  plan: KvtcPlan | null;
  sections: Section[];
  headerBytes: number;
}

export interface Section {
  kind: number;
  codec: number;
  layer: number;
  tokenStart: number;
  tokenCount: number;
  offset: number;
  length: number;
  crc: number;
}

/** A compressed chunk as the KVTC cache keeps it: tokens [start, start + count) of the stream. */
export interface StoredChunk {
  start: number;
  count: number;
  /** packed payload, DEFLATEd when `deflated`, range-coded when `range` */
  bytes: Uint8Array;
  deflated: boolean;
  range?: boolean;
}

/** Entropy stage of a chunk: DEFLATE (the paper's), the adaptive range coder (entropy.ts), or the smaller. */
export type EntropyCoder = 'deflate' | 'range' | 'best';
/** The entropy stages a writer takes (`EntropyCoder`), for option checks. */
export const ENTROPY_CODERS: readonly EntropyCoder[] = ['deflate', 'range', 'best'];

export interface ContainerParts {
  cal: Calibration | null;
  plan: KvtcPlan | null;
  layers: number;
  heads: number;
  headDim: number;
  firstPosition: number;
  sinks: number;
  compressed: number;
  window: number;
  /** raw keys/values of the sinks and the window per layer, [tokens, H·d] each, in stream order */
  rawK: Float32Array[];
  rawV: Float32Array[];
  chunks: StoredChunk[];
}

/**
 * Packs a chunk: DEFLATE when it helps (level 0 disables), otherwise stored packed. With `coder` 'range' or
 * 'best' (which needs the plan, to parse the payload into symbols) the range-coded form is used when smaller.
 */
export function packChunk(
  payload: Uint8Array,
  start: number,
  count: number,
  level = 6,
  coder: EntropyCoder = 'deflate',
  plan?: KvtcPlan,
): StoredChunk {
  let best: StoredChunk = { start, count, bytes: payload, deflated: false };
  if (level > 0 && coder !== 'range') {
    const z = deflateSync(payload, { level: level as 1 });
    if (z.length < best.bytes.length) best = { start, count, bytes: z, deflated: true };
  }
  if (level > 0 && coder !== 'deflate') {
    if (!plan) throw new ValueError(`packChunk: the '${coder}' coder needs the plan`);
    const r = rangeEncodePayload(plan, count, payload);
    if (r.length < best.bytes.length) best = { start, count, bytes: r, deflated: false, range: true };
  }
  return best;
}

function halfBytes(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length * 2);
  const v = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) v.setUint16(2 * i, toHalf(x[i]!), true);
  return out;
}

/** Writes the container (FORMAT.md). */
export function writeContainer(parts: ContainerParts): Uint8Array {
  const { layers, heads, headDim } = parts;
  // Never write what `readHeader` refuses (unordered groups, a plan that codes nothing).
  if (parts.plan) {
    if (parts.cal) checkPlan(parts.cal, parts.plan);
    else checkPlanGroups(parts.plan);
  }
  const f = heads * headDim;
  const rawTokens = parts.sinks + parts.window;
  const payloads: { kind: number; codec: number; layer: number; start: number; count: number; bytes: Uint8Array }[] =
    [];
  for (let l = 0; l < layers; l++) {
    for (const [kind, src] of [
      [SectionKind.rawKeys, parts.rawK[l]!],
      [SectionKind.rawValues, parts.rawV[l]!],
    ] as const) {
      if (src.length !== rawTokens * f)
        throw new ValueError(
          `writeContainer: layer ${l} raw rows hold ${src.length / f} tokens; expected ${rawTokens}`,
        );
      if (parts.sinks > 0)
        payloads.push({
          kind,
          codec: Codec.fp16,
          layer: l,
          start: 0,
          count: parts.sinks,
          bytes: halfBytes(src.subarray(0, parts.sinks * f)),
        });
      if (parts.window > 0)
        payloads.push({
          kind,
          codec: Codec.fp16,
          layer: l,
          start: parts.sinks + parts.compressed,
          count: parts.window,
          bytes: halfBytes(src.subarray(parts.sinks * f)),
        });
    }
  }
  for (const c of parts.chunks)
    if (c.count > MAX_CHUNK_TOKENS)
      throw new ValueError(`writeContainer: a chunk of ${c.count} tokens; at most ${MAX_CHUNK_TOKENS} per chunk`);
  for (const c of parts.chunks)
    payloads.push({
      kind: SectionKind.kvtcChunk,
      codec: c.range ? Codec.kvtcRange : c.deflated ? Codec.kvtcDeflate : Codec.kvtcPacked,
      layer: ALL_LAYERS,
      start: c.start,
      count: c.count,
      bytes: c.bytes,
    });
  const w = new Writer();
  w.ascii(CACHE_MAGIC);
  w.u16(FORMAT_VERSION);
  w.u16(0);
  w.u32(0); // header bytes, patched below
  w.hex64(parts.cal ? calibrationFingerprint(parts.cal) : '0000000000000000');
  w.u16(layers);
  w.u16(heads);
  w.u16(headDim);
  w.u16(1);
  w.u32(parts.sinks + parts.compressed + parts.window);
  w.u32(parts.firstPosition);
  w.u32(parts.sinks);
  w.u32(parts.compressed);
  w.u32(parts.window);
  w.f32(parts.cal?.ropeBase ?? 10000);
  w.f32(parts.plan?.targetRatio ?? 0);
  const plan = parts.plan;
  const planStart = w.pos + 4;
  w.u32(0);
  if (plan) {
    w.u16(plan.plans.length);
    for (const p of plan.plans) {
      w.u32(p.width);
      w.u16(p.tokenGroup);
      w.u16(0);
      w.u32(p.groups.length);
      for (const g of p.groups) {
        w.u32(g.start);
        w.u16(g.size);
        w.u8(TYPE_ID[g.type]);
        w.u8(0);
      }
    }
  }
  w.setU32(planStart - 4, w.pos - planStart);
  w.u32(payloads.length);
  const tableAt = w.pos;
  const headerBytes = tableAt + payloads.length * 24;
  let offset = headerBytes + 4;
  for (const p of payloads) {
    w.u8(p.kind);
    w.u8(p.codec);
    w.u16(p.layer);
    w.u32(p.start);
    w.u32(p.count);
    w.u32(offset);
    w.u32(p.bytes.length);
    w.u32(crc32(p.bytes));
    offset += p.bytes.length;
  }
  w.setU32(8, headerBytes);
  const header = w.done();
  const out = new Uint8Array(offset);
  out.set(header);
  new DataView(out.buffer).setUint32(headerBytes, crc32(header), true);
  let at = headerBytes + 4;
  for (const p of payloads) {
    out.set(p.bytes, at);
    at += p.bytes.length;
  }
  return out;
}

/** Parses and validates the header and section table (no payload is decoded or allocated). */
export function readHeader(bytes: Uint8Array): CacheHeader {
  const what = 'KV cache stream';
  if (bytes.length < 12)
    throw new TruncatedStreamError(`${what}: ${bytes.length} bytes is shorter than the 12-byte preamble`);
  const r0 = new Reader(bytes, what);
  const magic = r0.ascii(4, 'magic');
  if (magic !== CACHE_MAGIC)
    throw new KVFormatError(`${what}: magic must be "${CACHE_MAGIC}"; got ${JSON.stringify(magic)}`);
  const version = r0.u16('version');
  if (version !== FORMAT_VERSION)
    throw new UnsupportedVersionError(`${what}: version ${version}; this decoder reads ${FORMAT_VERSION}`);
  r0.u16('flags');
  const headerBytes = r0.u32('header size');
  if (headerBytes < 60) throw new KVFormatError(`${what}: header size ${headerBytes} is below the 60-byte minimum`);
  if (headerBytes + 4 > bytes.length)
    throw new TruncatedStreamError(
      `${what}: header of ${headerBytes} bytes + CRC does not fit in ${bytes.length} bytes`,
    );
  const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint32(headerBytes, true);
  if (crc32(bytes, 0, headerBytes) !== stored)
    throw new ChecksumError(`${what}: header CRC-32 mismatch (bytes 0..${headerBytes})`);
  const r = new Reader(bytes, what, 12, headerBytes);
  const fingerprint = r.hex64('fingerprint');
  const layers = r.u16('layers');
  const heads = r.u16('heads');
  const headDim = r.u16('headDim');
  const batch = r.u16('batch');
  const tokens = r.u32('tokens');
  const firstPosition = r.u32('firstPosition');
  const sinks = r.u32('sinks');
  const compressed = r.u32('compressed');
  const window = r.u32('window');
  const ropeBase = r.f32('ropeBase');
  const targetRatio = r.f32('targetRatio');
  if (layers === 0 || heads === 0 || headDim === 0 || batch !== 1)
    throw new KVFormatError(
      `${what}: layers ${layers}, heads ${heads}, headDim ${headDim}, batch ${batch} must be ≥ 1 (batch 1)`,
    );
  if (sinks + compressed + window !== tokens)
    throw new KVFormatError(`${what}: sinks ${sinks} + compressed ${compressed} + window ${window} ≠ tokens ${tokens}`);
  // Positions are int32 (tensor-core's RoPE positions, the decoders' Int32Arrays): the last must fit.
  if (firstPosition + tokens > 0x7fffffff)
    throw new KVFormatError(`${what}: positions ${firstPosition}..${firstPosition + tokens - 1} do not fit int32`);
  const planBytes = r.u32('plan size');
  r.need(planBytes, 'plan');
  const planEnd = r.pos + planBytes;
  let plan: KvtcPlan | null = null;
  if (planBytes > 0) {
    const nseg = r.u16('plan segment count');
    const plans: BitPlan[] = [];
    for (let s = 0; s < nseg; s++) {
      const width = r.u32('plan width');
      const tokenGroup = r.u16('plan tokenGroup');
      r.u16('reserved');
      if (tokenGroup === 0) throw new KVFormatError(`${what}: plan segment ${s} has tokenGroup 0`);
      const ng = r.u32('plan group count');
      r.need(ng * 8, 'plan groups');
      const groups: Group[] = [];
      let end = 0;
      for (let g = 0; g < ng; g++) {
        const start = r.u32('group start');
        const size = r.u16('group size');
        const id = r.u8('group type');
        r.u8('pad');
        const type = TYPE_BY_ID.get(id);
        // Groups are written in coefficient order without overlap (`checkPlan`); the coder walks them in the
        // order written, so any other order would decode the right bytes into the wrong coefficients.
        if (!type || type === 'none' || size === 0 || start < end || start + size > width)
          throw new KVFormatError(
            `${what}: plan segment ${s} group ${g} (start ${start}, size ${size}, type ${id}) is invalid (groups must be in order, not overlapping, within width ${width})`,
          );
        end = start + size;
        groups.push({ start, size, type });
      }
      const p = makePlan(width, groups, tokenGroup);
      p.width = width;
      plans.push(p);
    }
    plan = { targetRatio, plans };
  }
  if (r.pos !== planEnd)
    throw new KVFormatError(`${what}: plan occupies ${r.pos - (planEnd - planBytes)} bytes; header says ${planBytes}`);
  const n = r.u32('section count');
  r.need(n * 24, 'section table');
  if (r.pos + n * 24 !== headerBytes)
    throw new KVFormatError(`${what}: section table of ${n} entries does not end at header size ${headerBytes}`);
  const sections: Section[] = [];
  for (let i = 0; i < n; i++) {
    const s: Section = {
      kind: r.u8('section kind'),
      codec: r.u8('section codec'),
      layer: r.u16('section layer'),
      tokenStart: r.u32('section tokenStart'),
      tokenCount: r.u32('section tokenCount'),
      offset: r.u32('section offset'),
      length: r.u32('section length'),
      crc: r.u32('section crc'),
    };
    if (s.offset < headerBytes + 4 || s.offset + s.length > bytes.length)
      throw new TruncatedStreamError(
        `${what}: section ${i} [${s.offset}, +${s.length}) lies outside the ${bytes.length}-byte stream`,
      );
    if (s.tokenStart + s.tokenCount > tokens || s.tokenCount === 0)
      throw new KVFormatError(`${what}: section ${i} covers tokens [${s.tokenStart}, +${s.tokenCount}) of ${tokens}`);
    const f = heads * headDim;
    if (s.kind === SectionKind.rawKeys || s.kind === SectionKind.rawValues) {
      if (s.codec !== Codec.fp16 || s.layer >= layers || s.length !== s.tokenCount * f * 2)
        throw new KVFormatError(
          `${what}: raw section ${i} (layer ${s.layer}, codec ${s.codec}) must hold ${s.tokenCount * f * 2} fp16 bytes; holds ${s.length}`,
        );
    } else if (s.kind === SectionKind.kvtcChunk) {
      if (!plan) throw new KVFormatError(`${what}: KVTC section ${i} but the header has no plan`);
      // A plan can code nothing (a tiny cache at a large ratio keeps only the calibration mean): its chunks are
      // 0 bytes, so no length bounds their token counts; this does.
      if (s.tokenCount > MAX_CHUNK_TOKENS)
        throw new KVFormatError(
          `${what}: KVTC section ${i} claims ${s.tokenCount} tokens; a chunk holds at most ${MAX_CHUNK_TOKENS}`,
        );
      if (s.codec !== Codec.kvtcPacked && s.codec !== Codec.kvtcDeflate && s.codec !== Codec.kvtcRange)
        throw new KVFormatError(`${what}: KVTC section ${i} has unknown codec ${s.codec}`);
      const expect = chunkBytes(plan, s.tokenCount);
      if (s.codec === Codec.kvtcPacked && s.length !== expect)
        throw new KVFormatError(
          `${what}: KVTC section ${i} must hold ${expect} packed bytes for ${s.tokenCount} tokens; holds ${s.length}`,
        );
      if (s.codec === Codec.kvtcDeflate && expect > s.length * MAX_INFLATE_RATIO + 64)
        throw new KVFormatError(
          `${what}: KVTC section ${i} claims ${expect} bytes from ${s.length} DEFLATE bytes (more than DEFLATE can expand)`,
        );
      if (s.codec === Codec.kvtcRange && expect > s.length * MAX_RANGE_RATIO + 64)
        throw new KVFormatError(
          `${what}: KVTC section ${i} claims ${expect} bytes from ${s.length} range-coded bytes (more than the coder can shrink)`,
        );
    } else throw new KVFormatError(`${what}: section ${i} has unknown kind ${s.kind}`);
    sections.push(s);
  }
  // coverage: raw sections tile the sinks and the window of every layer; chunks tile the compressed range
  const covered = (list: Section[], from: number, to: number, label: string) => {
    const sorted = [...list].sort((a, b) => a.tokenStart - b.tokenStart);
    let at = from;
    for (const s of sorted) {
      if (s.tokenStart !== at)
        throw new KVFormatError(`${what}: ${label} expects a section at token ${at}; found one at ${s.tokenStart}`);
      at += s.tokenCount;
    }
    if (at !== to) throw new KVFormatError(`${what}: ${label} covers tokens up to ${at}; expected ${to}`);
  };
  for (let l = 0; l < layers; l++)
    for (const kind of [SectionKind.rawKeys, SectionKind.rawValues]) {
      const list = sections.filter((s) => s.kind === kind && s.layer === l);
      covered(
        list.filter((s) => s.tokenStart < sinks),
        0,
        sinks,
        `layer ${l} sinks`,
      );
      covered(
        list.filter((s) => s.tokenStart >= sinks),
        sinks + compressed,
        tokens,
        `layer ${l} window`,
      );
    }
  covered(
    sections.filter((s) => s.kind === SectionKind.kvtcChunk),
    sinks,
    sinks + compressed,
    'compressed range',
  );
  return {
    version,
    fingerprint,
    layers,
    heads,
    headDim,
    tokens,
    firstPosition,
    sinks,
    compressed,
    window,
    ropeBase,
    targetRatio,
    plan,
    sections,
    headerBytes,
  };
}

function sectionBytes(bytes: Uint8Array, s: Section, i: number): Uint8Array {
  const b = bytes.subarray(s.offset, s.offset + s.length);
  if (crc32(b) !== s.crc)
    throw new ChecksumError(`KV cache stream: section ${i} (kind ${s.kind}, layer ${s.layer}) CRC-32 mismatch`);
  return b;
}

/** Layer-by-layer reader of a container: `layer(l)` decodes one layer's keys and values [tokens, H·d]. */
export class CacheReader {
  readonly header: CacheHeader;
  constructor(
    readonly bytes: Uint8Array,
    readonly cal: Calibration | null,
  ) {
    this.header = readHeader(bytes);
    const h = this.header;
    if (h.plan) {
      if (!cal)
        throw new CalibrationMismatchError('KV cache stream: it holds KVTC sections; a calibration is required');
      const fp = calibrationFingerprint(cal);
      if (fp !== h.fingerprint)
        throw new CalibrationMismatchError(`KV cache stream: written with calibration ${h.fingerprint}; given ${fp}`);
      if (cal.layers !== h.layers || cal.heads !== h.heads || cal.headDim !== h.headDim)
        throw new CalibrationMismatchError(
          `KV cache stream: shape ${h.layers}×${h.heads}×${h.headDim}; calibration ${cal.layers}×${cal.heads}×${cal.headDim}`,
        );
      try {
        checkPlan(cal, h.plan);
      } catch (e) {
        throw new CalibrationMismatchError((e as Error).message);
      }
    }
  }

  positions(start: number, count: number): Int32Array {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.header.firstPosition + start + i;
    return out;
  }

  /**
   * The packed KVTC payload of section i (CRC checked, inflated or range-decoded to exactly the size the plan
   * implies). The device decoder unpacks it on the host and dequantises on the accelerator.
   */
  payload(i: number): Uint8Array {
    const s = this.header.sections[i];
    if (!s || s.kind !== SectionKind.kvtcChunk)
      throw new ValueError(`CacheReader.payload: section ${i} is not a KVTC chunk`);
    const raw = sectionBytes(this.bytes, s, i);
    const expect = chunkBytes(this.header.plan!, s.tokenCount);
    let payload = raw;
    if (s.codec === Codec.kvtcDeflate) {
      try {
        payload = inflateSync(raw, { out: new Uint8Array(expect + 1) });
      } catch (e) {
        throw new KVFormatError(`KV cache stream: section ${i} DEFLATE data is invalid (${(e as Error).message})`);
      }
      if (payload.length !== expect)
        throw new KVFormatError(
          `KV cache stream: section ${i} inflates to ${payload.length} bytes; expected ${expect}`,
        );
    }
    if (s.codec === Codec.kvtcRange) payload = rangeDecodePayload(this.header.plan!, s.tokenCount, raw, expect);
    return payload;
  }

  /** Raw section i (sinks or window of one layer) as floats, [tokenCount, H·d] (CRC checked). */
  raw(i: number): Float32Array {
    const s = this.header.sections[i];
    if (!s || (s.kind !== SectionKind.rawKeys && s.kind !== SectionKind.rawValues))
      throw new ValueError(`CacheReader.raw: section ${i} is not a raw section`);
    const b = sectionBytes(this.bytes, s, i);
    const half = halfTable();
    const out = new Float32Array(b.byteLength / 2);
    for (let j = 0; j < out.length; j++) out[j] = half[b[2 * j]! | (b[2 * j + 1]! << 8)]!;
    return out;
  }

  /** Keys and values of layer l, [tokens, H·d] each (RoPE applied as in the live cache). */
  layer(l: number): { k: Float32Array; v: Float32Array } {
    return this.fillLayer(l, false);
  }

  /**
   * Keys and values of layer l laid out head-major, [H, tokens, d] each — the layout of a live cache's buffers,
   * written directly so that a restore does not transpose a second copy.
   */
  layerHeads(l: number): { k: Float32Array; v: Float32Array } {
    return this.fillLayer(l, true);
  }

  private fillLayer(l: number, headMajor: boolean): { k: Float32Array; v: Float32Array } {
    const h = this.header;
    if (!(l >= 0 && l < h.layers)) throw new ValueError(`CacheReader.layer: layer ${l} of ${h.layers}`);
    const f = h.heads * h.headDim;
    const k = new Float32Array(h.tokens * f);
    const v = new Float32Array(h.tokens * f);
    const put = (dst: Float32Array, src: Float32Array, row: number, count: number, token: number) => {
      if (!headMajor) {
        dst.set(src.subarray(row * f, (row + count) * f), token * f);
        return;
      }
      const d = h.headDim;
      for (let hh = 0; hh < h.heads; hh++)
        for (let t = 0; t < count; t++) {
          const so = (row + t) * f + hh * d;
          const dO = (hh * h.tokens + token + t) * d;
          for (let q = 0; q < d; q++) dst[dO + q] = src[so + q]!;
        }
    };
    h.sections.forEach((s, i) => {
      if (s.kind !== SectionKind.kvtcChunk && s.layer === l)
        put(s.kind === SectionKind.rawKeys ? k : v, this.raw(i), 0, s.tokenCount, s.tokenStart);
    });
    const chunks = this.chunkSections();
    if (chunks.length) {
      const cal = this.cal!;
      const covered = { k: false, v: false };
      cal.segments.forEach((seg, si) => {
        const j = seg.layers.indexOf(l);
        if (j < 0) return;
        // every chunk's rows of this segment stacked, so the layer costs one GEMM, not one per chunk
        const all = this.segmentCoeffs(si, chunks);
        const x = reconstructLayer(cal, seg, j, h.plan!.plans[si]!.width, all.coeffs, all.T, all.positions);
        let r = 0;
        for (const c of chunks) {
          const s = h.sections[c]!;
          put(seg.kind === 'k' ? k : v, x, r, s.tokenCount, s.tokenStart);
          r += s.tokenCount;
        }
        covered[seg.kind] = true;
      });
      if (!covered.k || !covered.v) throw new KVFormatError(`KVTC chunk: no segment covers layer ${l}`);
    }
    return { k, v };
  }

  private chunkList: number[] | null = null;
  private chunkSections(): number[] {
    if (!this.chunkList)
      this.chunkList = this.header.sections.flatMap((s, i) => (s.kind === SectionKind.kvtcChunk ? [i] : []));
    return this.chunkList;
  }

  private readonly stacked = new Map<number, { coeffs: Float32Array; T: number; positions: Int32Array }>();
  /** Dequantised coefficients of segment si over all chunks, [Σ tokens, width] in section order. */
  private segmentCoeffs(si: number, chunks: number[]): { coeffs: Float32Array; T: number; positions: Int32Array } {
    const hit = this.stacked.get(si);
    if (hit) return hit;
    const h = this.header;
    const plan = h.plan!;
    const bp = plan.plans[si]!;
    let T = 0;
    for (const c of chunks) T += h.sections[c]!.tokenCount;
    const coeffs = new Float32Array(T * bp.width);
    const positions = new Int32Array(T);
    let r = 0;
    for (const c of chunks) {
      const s = h.sections[c]!;
      const payload = this.chunkPayload(c);
      decodeSegment(
        bp,
        payload,
        segmentOffset(plan, s.tokenCount, si),
        segmentBytes(bp, s.tokenCount).side,
        s.tokenCount,
        coeffs,
        r,
      );
      for (let i = 0; i < s.tokenCount; i++) positions[r + i] = h.firstPosition + s.tokenStart + i;
      r += s.tokenCount;
    }
    const out = { coeffs, T, positions };
    this.stacked.set(si, out);
    return out;
  }

  private readonly payloads = new Map<number, Uint8Array>();
  /** payload(i), length-checked against the plan, kept for the other segments of the same chunk. */
  private chunkPayload(i: number): Uint8Array {
    const hit = this.payloads.get(i);
    if (hit) return hit;
    const s = this.header.sections[i]!;
    const p = this.payload(i);
    const expect = chunkBytes(this.header.plan!, s.tokenCount);
    if (p.length !== expect)
      throw new KVFormatError(
        `KVTC chunk: expected ${expect} payload bytes for ${s.tokenCount} tokens; got ${p.length}`,
      );
    this.payloads.set(i, p);
    return p;
  }

  /** Every layer as KVRows. */
  rows(): KVRows {
    const h = this.header;
    const layers = Array.from({ length: h.layers }, (_, l) => this.layer(l));
    return interleaveLayers(h, layers, this.positions(0, h.tokens));
  }
}

export interface EncodeOptions {
  /** raw attention-sink tokens at the start (default 4) */
  sinks?: number;
  /** raw recent tokens at the end (default 128) */
  window?: number;
  /** tokens per compressed chunk (default 256; the live cache uses c = 16) */
  chunkTokens?: number;
  /** DEFLATE level 0–9 (0: store packed; default 6) */
  level?: number;
  /** entropy stage (default 'deflate') */
  coder?: EntropyCoder;
}

/**
 * Per-layer [tokens, H·d] arrays interleaved into KVRows' token-major [tokens, layers·H·d] layout (the one place
 * both readers, host and device, build their `rows()`).
 */
export function interleaveLayers(
  h: { layers: number; heads: number; headDim: number; tokens: number },
  layers: readonly { k: Float32Array; v: Float32Array }[],
  positions: Int32Array,
): KVRows {
  const f = h.heads * h.headDim;
  const P = h.layers * f;
  const k = new Float32Array(h.tokens * P);
  const v = new Float32Array(h.tokens * P);
  for (let l = 0; l < h.layers; l++) {
    const x = layers[l]!;
    for (let t = 0; t < h.tokens; t++) {
      k.set(x.k.subarray(t * f, (t + 1) * f), t * P + l * f);
      v.set(x.v.subarray(t * f, (t + 1) * f), t * P + l * f);
    }
  }
  return { layers: h.layers, heads: h.heads, headDim: h.headDim, n: h.tokens, k, v, positions };
}

function layerRows(rows: KVRows, l: number, from: number, to: number): { k: Float32Array; v: Float32Array } {
  const f = rows.heads * rows.headDim;
  const P = rows.layers * f;
  const k = new Float32Array((to - from) * f);
  const v = new Float32Array((to - from) * f);
  for (let t = from; t < to; t++) {
    k.set(rows.k.subarray(t * P + l * f, t * P + (l + 1) * f), (t - from) * f);
    v.set(rows.v.subarray(t * P + l * f, t * P + (l + 1) * f), (t - from) * f);
  }
  return { k, v };
}

export function sliceRows(rows: KVRows, from: number, to: number): KVRows {
  const P = rows.layers * rows.heads * rows.headDim;
  return {
    ...rows,
    n: to - from,
    k: rows.k.slice(from * P, to * P),
    v: rows.v.slice(from * P, to * P),
    positions: rows.positions.slice(from, to),
  };
}

/** One-shot encoding of a prefix: sinks and window raw (fp16), the middle KVTC-coded in chunks. */
export function encodeCache(rows: KVRows, cal: Calibration, plan: KvtcPlan, opts: EncodeOptions = {}): Uint8Array {
  checkRows(rows, 'encodeCache', cal);
  for (const k of ['sinks', 'window'] as const)
    if (opts[k] !== undefined && !(Number.isInteger(opts[k]) && opts[k]! >= 0))
      throw new ValueError(`encodeCache: ${k} must be an integer ≥ 0; got ${opts[k]}`);
  if (opts.level !== undefined && !(Number.isInteger(opts.level) && opts.level >= 0 && opts.level <= 9))
    throw new ValueError(`encodeCache: level must be an integer in [0, 9]; got ${opts.level}`);
  if (opts.coder !== undefined && !ENTROPY_CODERS.includes(opts.coder))
    throw new ValueError(`encodeCache: coder must be one of ${ENTROPY_CODERS.join(', ')}; got ${String(opts.coder)}`);
  const n = rows.n;
  // The container stores positions as one unsigned start (int32 in every decoder): they must fit from 0.
  if (n > 0 && !(rows.positions[0]! >= 0 && rows.positions[0]! + n <= 0x7fffffff))
    throw new ValueError(`encodeCache: positions must lie in [0, 2^31); they start at ${rows.positions[0]}`);
  const sinks = Math.min(opts.sinks ?? 4, n);
  const window = Math.min(opts.window ?? 128, n - sinks);
  const compressed = n - sinks - window;
  const c = opts.chunkTokens ?? 256;
  if (!(Number.isInteger(c) && c >= 1 && c <= MAX_CHUNK_TOKENS))
    throw new ValueError(`encodeCache: chunkTokens must be an integer in [1, ${MAX_CHUNK_TOKENS}]; got ${c}`);
  for (let i = 1; i < n; i++)
    if (rows.positions[i] !== rows.positions[0]! + i)
      throw new ValueError('encodeCache: positions must be consecutive');
  const chunks: StoredChunk[] = [];
  for (let s = sinks; s < sinks + compressed; s += c) {
    const e = Math.min(s + c, sinks + compressed);
    chunks.push(
      packChunk(
        encodeChunk(cal, plan, sliceRows(rows, s, e)),
        s,
        e - s,
        opts.level ?? 6,
        opts.coder ?? 'deflate',
        plan,
      ),
    );
  }
  const rawK: Float32Array[] = [];
  const rawV: Float32Array[] = [];
  for (let l = 0; l < rows.layers; l++) {
    const a = layerRows(rows, l, 0, sinks);
    const b = layerRows(rows, l, n - window, n);
    const k = new Float32Array((sinks + window) * rows.heads * rows.headDim);
    const v = new Float32Array(k.length);
    k.set(a.k);
    k.set(b.k, a.k.length);
    v.set(a.v);
    v.set(b.v, a.v.length);
    rawK.push(k);
    rawV.push(v);
  }
  return writeContainer({
    cal,
    plan: compressed > 0 ? plan : null,
    layers: rows.layers,
    heads: rows.heads,
    headDim: rows.headDim,
    firstPosition: rows.positions[0] ?? 0,
    sinks,
    compressed,
    window,
    rawK,
    rawV,
    chunks,
  });
}

/** Decodes a whole container to rows. */
export function decodeCache(bytes: Uint8Array, cal: Calibration | null): KVRows {
  return new CacheReader(bytes, cal).rows();
}
