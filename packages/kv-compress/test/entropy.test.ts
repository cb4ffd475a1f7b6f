import { describe, expect, it } from 'vitest';
import { calibrate, fitPlan } from '../src/calibration.js';
import { FreqModel, RangeDecoder, RangeEncoder, rangeDecodePayload, rangeEncodePayload } from '../src/entropy.js';
import { KVFormatError } from '../src/errors.js';
import { CacheReader, Codec, decodeCache, encodeCache, readHeader } from '../src/format.js';
import { chunkBytes, encodeChunk } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { lowRankRows } from './helpers.js';

const dims = { layers: 2, heads: 2, headDim: 8 };
const calRows = lowRankRows({ ...dims, n: 256, rank: 4, noise: 0.01 });
const cal = calibrate(calRows);
const plan = fitPlan(cal, calRows, { ratio: 4 });
const rows = lowRankRows({ ...dims, n: 120, rank: 4, noise: 0.01, start: 0, seed: 9 });

describe('range coder', () => {
  it('round-trips symbol streams of every alphabet, skewed and uniform', () => {
    const rng = new Rng(3);
    for (const n of [2, 4, 16, 256])
      for (const skew of [0, 3]) {
        const syms = Array.from({ length: 3000 }, () => Math.min(n - 1, Math.floor(n * rng.next() ** (1 + skew))));
        const enc = new RangeEncoder();
        const m = new FreqModel(n);
        for (const s of syms) enc.encode(m, s);
        const bytes = enc.finish();
        const dec = new RangeDecoder(bytes);
        const m2 = new FreqModel(n);
        expect(syms.map(() => dec.decode(m2))).toEqual(syms);
        // a skewed source costs fewer bits than its fixed width; a uniform one at most 3% over it (the price of adapting)
        const bits = (bytes.length * 8) / syms.length;
        if (skew) expect(bits).toBeLessThan(Math.log2(n));
        else expect(bits).toBeLessThan(Math.log2(n) * 1.03 + 0.02);
      }
  });
  it('propagates carries: long runs of the most likely symbol then rare ones', () => {
    const syms = [...Array(5000).fill(0), 1, 0, 1, ...Array(3000).fill(0), 1];
    const enc = new RangeEncoder();
    const m = new FreqModel(2);
    for (const s of syms) enc.encode(m, s);
    const dec = new RangeDecoder(enc.finish());
    const m2 = new FreqModel(2);
    expect(syms.map(() => dec.decode(m2))).toEqual(syms);
  });
  it('codes a KVTC payload back to the same packed bytes, smaller than packed', () => {
    const payload = encodeChunk(cal, plan, rows);
    const coded = rangeEncodePayload(plan, rows.n, payload);
    expect(coded.length).toBeLessThan(payload.length);
    expect(Array.from(rangeDecodePayload(plan, rows.n, coded, chunkBytes(plan, rows.n)))).toEqual(Array.from(payload));
  });
  it('rejects a truncated range-coded chunk with a typed error', () => {
    const payload = encodeChunk(cal, plan, rows);
    const coded = rangeEncodePayload(plan, rows.n, payload);
    expect(() => rangeDecodePayload(plan, rows.n, coded.subarray(0, coded.length >> 1), payload.length)).toThrow(
      KVFormatError,
    );
  });
  it('a section claiming more symbols than its bytes hold fails as soon as the bytes run out', () => {
    // 64 random bytes carry a few hundred 4-bit symbols; the old decoder went on reading zeros for as many
    // symbols as the claim said (a 1 KiB section claiming 67 MB took seconds) and only then saw the overrun.
    const rng = new Rng(3);
    const bytes = Uint8Array.from({ length: 64 }, () => Math.floor(rng.next() * 256));
    const dec = new RangeDecoder(bytes);
    const m = new FreqModel(16);
    let decoded = 0;
    expect(() => {
      for (; decoded < 10_000_000; decoded++) dec.decode(m);
    }).toThrow(KVFormatError);
    expect(decoded).toBeLessThan(64 * 8);
    expect(dec.overrun).toBeLessThanOrEqual(4);
  });
  it('containers written with the range coder decode to the same rows as DEFLATE ones', () => {
    const o = { sinks: 4, window: 16, chunkTokens: 40 };
    const a = encodeCache(rows, cal, plan, o);
    const b = encodeCache(rows, cal, plan, { ...o, coder: 'range' });
    expect(readHeader(b).sections.some((s) => s.codec === Codec.kvtcRange)).toBe(true);
    expect(Array.from(decodeCache(b, cal).k)).toEqual(Array.from(decodeCache(a, cal).k));
    expect(Array.from(new CacheReader(b, cal).layer(1).v)).toEqual(Array.from(new CacheReader(a, cal).layer(1).v));
    // every truncation of the range-coded container is a typed error, never garbage
    for (let cut = 0; cut < b.length; cut += 7)
      expect(() => decodeCache(b.subarray(0, cut), cal)).toThrow(KVFormatError);
  });
});
