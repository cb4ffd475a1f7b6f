import { describe, expect, it } from 'vitest';
import { calibrate, fitPlan } from '../src/calibration.js';
import {
  CalibrationMismatchError,
  ChecksumError,
  KVFormatError,
  TruncatedStreamError,
  UnsupportedVersionError,
} from '../src/errors.js';
import {
  CacheReader,
  calibrationFingerprint,
  decodeCache,
  encodeCache,
  readCalibration,
  readHeader,
  writeCalibration,
} from '../src/format.js';
import { chunkBytes } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { crc32, fromHalf, toHalf } from '../src/numeric.js';
import { lowRankRows, relErr } from './helpers.js';

const dims = { layers: 2, heads: 2, headDim: 8 };
const calRows = lowRankRows({ ...dims, n: 256, rank: 4, noise: 0.01 });
const cal = calibrate(calRows);
const plan = fitPlan(cal, calRows, { ratio: 8 });
const rows = lowRankRows({ ...dims, n: 100, rank: 4, noise: 0.01, start: 0, seed: 7 });
const opts = { sinks: 4, window: 16, chunkTokens: 32 };
const stream = encodeCache(rows, cal, plan, opts);

describe('calibration file', () => {
  it('round-trips and keeps its fingerprint', () => {
    const bytes = writeCalibration(cal);
    const back = readCalibration(bytes);
    expect(back.segments.length).toBe(cal.segments.length);
    expect(Array.from(back.segments[1]!.pca.basis)).toEqual(Array.from(cal.segments[1]!.pca.basis));
    expect(calibrationFingerprint(back)).toBe(calibrationFingerprint(cal));
    const bad = Uint8Array.from(bytes);
    bad[100]! ^= 1;
    expect(() => readCalibration(bad)).toThrow(ChecksumError);
    expect(() => readCalibration(bytes.subarray(0, 50))).toThrow(KVFormatError);
  });
  it('refuses bytes after the last segment and an unknown segment kind, even under a valid CRC', () => {
    const bytes = writeCalibration(cal);
    const withCrc = (b: Uint8Array) => {
      new DataView(b.buffer).setUint32(b.length - 4, crc32(b, 0, b.length - 4), true);
      return b;
    };
    const longer = new Uint8Array(bytes.length + 8);
    longer.set(bytes.subarray(0, bytes.length - 4));
    expect(() => readCalibration(withCrc(longer))).toThrow(/8 bytes after the last segment/);
    const kind = Uint8Array.from(bytes);
    kind[20] = 2; // the first segment's kind: after magic, version, flags, layers, heads, headDim, count, ropeBase
    expect(() => readCalibration(withCrc(kind))).toThrow(/segment 0 has kind 2/);
  });
});

describe('cache container', () => {
  it('keeps sinks and window exactly (fp16) and the middle within the codec error', () => {
    const back = decodeCache(stream, cal);
    const P = 32;
    for (const t of [0, 3, 84, 99])
      for (let j = 0; j < P; j++) {
        expect(back.k[t * P + j]).toBe(fromHalf(toHalf(rows.k[t * P + j]!)));
        expect(back.v[t * P + j]).toBe(fromHalf(toHalf(rows.v[t * P + j]!)));
      }
    expect(relErr(back.v.subarray(4 * P, 84 * P), rows.v.subarray(4 * P, 84 * P))).toBeLessThan(0.05);
    expect(relErr(back.k.subarray(4 * P, 84 * P), rows.k.subarray(4 * P, 84 * P))).toBeLessThan(0.05);
  });
  it('decodes layer by layer to the same values', () => {
    const r = new CacheReader(stream, cal);
    const all = r.rows();
    const l1 = r.layer(1);
    for (let t = 0; t < 100; t += 7) for (let j = 0; j < 16; j++) expect(l1.v[t * 16 + j]).toBe(all.v[t * 32 + 16 + j]);
  });
  it('accounts for every byte: header + raw sections + chunks', () => {
    const h = readHeader(stream);
    expect(h.tokens).toBe(100);
    expect(h.compressed).toBe(80);
    const raw = 2 * 2 * (4 + 16) * 16 * 2; // layers × (K,V) × tokens × H·d × 2 bytes
    const chunks = h.sections.filter((s) => s.kind === 3);
    expect(chunks.map((s) => s.tokenCount)).toEqual([32, 32, 16]);
    const payload = h.sections.reduce((a, s) => a + s.length, 0);
    expect(stream.length).toBe(h.headerBytes + 4 + payload);
    expect(payload - chunks.reduce((a, s) => a + s.length, 0)).toBe(raw);
    for (const s of chunks) if (s.codec === 2) expect(s.length).toBe(chunkBytes(plan, s.tokenCount));
  });
  it('rejects a stream written with another calibration', () => {
    const other = calibrate(lowRankRows({ ...dims, n: 256, rank: 4, noise: 0.01, seed: 99 }));
    expect(() => new CacheReader(stream, other)).toThrow(CalibrationMismatchError);
    expect(() => new CacheReader(stream, null)).toThrow(CalibrationMismatchError);
  });
  it('rejects other versions and magics', () => {
    const b = Uint8Array.from(stream);
    b[4] = 9;
    expect(() => readHeader(b)).toThrow(UnsupportedVersionError);
    const c = Uint8Array.from(stream);
    c[0] = 0x41;
    expect(() => readHeader(c)).toThrow(KVFormatError);
  });
  it('every truncation raises a typed error', () => {
    for (let n = 0; n < stream.length; n += n < 400 ? 1 : 37)
      expect(() => decodeCache(stream.subarray(0, n), cal), `length ${n}`).toThrow(KVFormatError);
  });
  it('fuzz: any flipped byte raises a typed error, never garbage', () => {
    const rng = new Rng(17);
    for (let trial = 0; trial < 300; trial++) {
      const b = Uint8Array.from(stream);
      const flips = 1 + rng.int(3);
      for (let f = 0; f < flips; f++) b[rng.int(b.length)]! ^= 1 + rng.int(255);
      let threw: unknown = null;
      try {
        decodeCache(b, cal);
      } catch (e) {
        threw = e;
      }
      expect(threw, `trial ${trial}`).toBeInstanceOf(KVFormatError);
    }
  });
  it('a header that lies about sizes (with a valid CRC) is rejected before allocation', () => {
    const h = readHeader(stream);
    const b = Uint8Array.from(stream);
    const dv = new DataView(b.buffer);
    dv.setUint32(28, 0x7fffffff, true); // tokens
    dv.setUint32(40, 0x7fffffff - 20, true); // compressed
    dv.setUint32(h.headerBytes, crc32(b, 0, h.headerBytes), true);
    expect(() => decodeCache(b, cal)).toThrow(KVFormatError);
    const t = Uint8Array.from(stream);
    const tv = new DataView(t.buffer);
    // first chunk section claims 1e6 tokens
    const idx = h.sections.findIndex((s) => s.kind === 3);
    const at = h.headerBytes - (h.sections.length - idx) * 24;
    tv.setUint32(at + 8, 1_000_000, true);
    tv.setUint32(h.headerBytes, crc32(t, 0, h.headerBytes), true);
    expect(() => decodeCache(t, cal)).toThrow(KVFormatError);
    // positions past int32 (they would wrap negative in the decoders' Int32Array positions)
    const p = Uint8Array.from(stream);
    const pv = new DataView(p.buffer);
    expect(pv.getUint32(32, true)).toBe(h.firstPosition);
    pv.setUint32(32, 0x7fffffff - 10, true);
    pv.setUint32(h.headerBytes, crc32(p, 0, h.headerBytes), true);
    expect(() => readHeader(p)).toThrow(/do not fit int32/);
  });
  it('plan groups out of order are refused by the writer and, patched into a stream, by the reader', () => {
    // A milder ratio, so that some segment has two groups.
    const plan = fitPlan(cal, calRows, { ratio: 2 });
    const stream = encodeCache(rows, cal, plan, opts);
    const seg = plan.plans.findIndex((p) => p.groups.length >= 2);
    expect(seg).toBeGreaterThanOrEqual(0);
    const reversed = {
      ...plan,
      plans: plan.plans.map((p, i) => (i === seg ? { ...p, groups: [...p.groups].reverse() } : p)),
    };
    expect(() => encodeCache(rows, cal, reversed, opts)).toThrow(/must be in order without overlap/);
    // The same reversal made in a written stream's header (two 8-byte group records swapped, CRC fixed): the
    // reader used to re-sort the groups, decoding the bytes into the wrong coefficients without an error.
    const rec = (g: { start: number; size: number }) => {
      const b = new Uint8Array(8);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, g.start, true);
      dv.setUint16(4, g.size, true);
      return b;
    };
    const [g0, g1] = plan.plans[seg]!.groups;
    const h = readHeader(stream);
    const at = (() => {
      const a = rec(g0!);
      for (let i = 0; i + 16 <= h.headerBytes; i++)
        if (
          a.every((x, j) => j >= 6 || stream[i + j] === x) &&
          rec(g1!).every((x, j) => j >= 6 || stream[i + 8 + j] === x)
        )
          return i;
      return -1;
    })();
    expect(at).toBeGreaterThan(0);
    const b = Uint8Array.from(stream);
    b.set(stream.subarray(at + 8, at + 16), at);
    b.set(stream.subarray(at, at + 8), at + 8);
    new DataView(b.buffer).setUint32(h.headerBytes, crc32(b, 0, h.headerBytes), true);
    expect(() => readHeader(b)).toThrow(/groups must be in order/);
    expect(() => decodeCache(b, cal)).toThrow(KVFormatError);
  });
  it('a plan that codes nothing round-trips (the mean), and its chunks cannot claim unbounded tokens', () => {
    // At a ratio no coefficient can pay for, the DP codes nothing: chunks of 0 bytes that decode to the
    // calibration mean. No length then bounds a chunk's token count, so the format does (MAX_CHUNK_TOKENS).
    const empty = fitPlan(cal, calRows, { ratio: 1e6 });
    expect(chunkBytes(empty, 1)).toBe(0);
    expect(decodeCache(encodeCache(rows, cal, empty, opts), cal).k.length).toBe(rows.k.length);
    // One chunk and nothing raw, then a header that says the chunk holds 2^31 − 4096 tokens (CRC fixed).
    const b = encodeCache(rows, cal, empty, { sinks: 0, window: 0, chunkTokens: 1000 });
    const h = readHeader(b);
    expect(h.sections.length).toBe(1);
    const t = Uint8Array.from(b);
    const dv = new DataView(t.buffer);
    const claim = 0x7ffff000;
    dv.setUint32(28, claim, true); // tokens
    dv.setUint32(40, claim, true); // compressed
    dv.setUint32(h.headerBytes - 24 + 8, claim, true); // the section's tokenCount
    dv.setUint32(h.headerBytes, crc32(t, 0, h.headerBytes), true);
    expect(() => readHeader(t)).toThrow(/claims 2147479552 tokens; a chunk holds at most 65536/);
    expect(() => encodeCache(rows, cal, plan, { ...opts, chunkTokens: 70_000 })).toThrow(/chunkTokens must be/);
  });
  it('truncated streams name the missing field', () => {
    expect(() => readHeader(stream.subarray(0, 30))).toThrow(TruncatedStreamError);
  });
});
