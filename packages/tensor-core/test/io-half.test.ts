// f16/bf16 <-> f32 and i64 <-> i32 against torch 1.13 (fixtures/safetensors/half.json, made by generate.py),
// hand-derived values, and exhaustive round trips over every 16-bit pattern.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ValueError } from '../src/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, i32ToI64, i64ToI32 } from '../src/io/half.js';

interface HalfFixture {
  f32: number[];
  f32_to_f16: number[];
  f32_to_bf16: number[];
  f16: number[];
  f16_to_f32: number[];
  bf16: number[];
  bf16_to_f32: number[];
  all_f16_to_f32_sha256: string;
  bulk_count: number;
  bulk: Record<'A' | 'B', { f16_sha256: string; bf16_sha256: string }>;
}
const fx: HalfFixture = JSON.parse(
  readFileSync(new URL('./fixtures/safetensors/half.json', import.meta.url), 'utf8'),
) as HalfFixture;

const f32FromBits = (bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);
const bitsOfF32 = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
const isNaN16 = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isNaNBf16 = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
const sha256 = (a: ArrayBufferView): string =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
const hex = (v: number): string => `0x${v.toString(16)}`;

describe('float16', () => {
  test('f32 -> f16 matches torch on ties, subnormals, overflow and NaN, bit for bit', () => {
    const got = f32ToF16(f32FromBits(fx.f32));
    expect([...got].map(hex)).toEqual(fx.f32_to_f16.map(hex));
  });

  test('f16 -> f32 matches torch (NaN keeps its payload and becomes quiet)', () => {
    const got = bitsOfF32(f16ToF32(Uint16Array.from(fx.f16)));
    expect(got.map(hex)).toEqual(fx.f16_to_f32.map(hex));
  });

  test('f16 -> f32 over all 65536 patterns hashes to torch', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    expect(sha256(f16ToF32(all))).toBe(fx.all_f16_to_f32_sha256);
  });

  test('hand-derived values', () => {
    expect([...f16ToF32(Uint16Array.of(0x3c00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xc000))]).toEqual([
      1,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      65504,
      -2,
    ]);
    expect(Object.is(f16ToF32(Uint16Array.of(0x8000))[0], -0)).toBe(true);
    const down = f32ToF16(Float32Array.of(65519, 65520, 2 ** -25, 2 ** -24 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11));
    expect([...down]).toEqual([0x7bff, 0x7c00, 0, 2, 0x3c00, 0x3c02]);
  });

  test('f16 -> f32 -> f16 is the identity on all 65536 patterns; NaNs become sign|0x7e00', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const want = isNaN16(h) ? (h & 0x8000) | 0x7e00 : h;
      if (back[h] !== want) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe('bfloat16', () => {
  test('f32 -> bf16 matches torch; NaN stays NaN (torch 1.13 CPU writes 0xffff, we write sign|0x7fc0)', () => {
    const got = f32ToBf16(f32FromBits(fx.f32));
    fx.f32.forEach((x, i) => {
      const want = fx.f32_to_bf16[i]!;
      if (isNaNBf16(want)) expect(got[i]!, `input ${hex(x)}`).toBe(((x >>> 16) & 0x8000) | 0x7fc0);
      else expect(hex(got[i]!), `input ${hex(x)}`).toBe(hex(want));
    });
  });

  test('bf16 -> f32 matches torch', () => {
    const got = bitsOfF32(bf16ToF32(Uint16Array.from(fx.bf16)));
    expect(got.map(hex)).toEqual(fx.bf16_to_f32.map(hex));
  });

  test('bf16 -> f32 -> bf16 is the identity on all 65536 patterns; NaNs become sign|0x7fc0', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    let bad = 0;
    for (let h = 0; h < 65536; h++) if (back[h] !== (isNaNBf16(h) ? (h & 0x8000) | 0x7fc0 : h)) bad++;
    expect(bad).toBe(0);
  });

  test('hand-derived: ties to even, overflow to Inf', () => {
    const got = f32ToBf16(f32FromBits([0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff, 0x7f7f7fff]));
    expect([...got].map(hex)).toEqual(['0x3f80', '0x3f82', '0x3f81', '0x7f80', '0x7f7f']);
  });
});

describe('bulk sets against torch (sha256, NaN outputs canonicalised on both sides)', () => {
  const n = fx.bulk_count;
  const sets = {
    A: Uint32Array.from({ length: n }, (_, i) => Math.imul(i, 0x9e3779b1) >>> 0),
    B: Uint32Array.from({ length: n }, (_, i) => (0x33000000 + i * 329 + (i & 1) * 2 ** 31) >>> 0),
  };
  for (const key of ['A', 'B'] as const) {
    test(`set ${key}: ${n} float32 patterns`, () => {
      const x = new Float32Array(sets[key].buffer);
      const h = f32ToF16(x).map((v) => (isNaN16(v) ? 0x7e00 : v));
      const b = f32ToBf16(x).map((v) => (isNaNBf16(v) ? 0x7fc0 : v));
      expect(sha256(h)).toBe(fx.bulk[key].f16_sha256);
      expect(sha256(b)).toBe(fx.bulk[key].bf16_sha256);
    });
  }
});

test('conversions read typed-array views at an offset, not the whole buffer', () => {
  const backing = Float32Array.of(9, 1, -2, 9);
  expect([...f32ToF16(backing.subarray(1, 3))]).toEqual([0x3c00, 0xc000]);
  expect([...f32ToBf16(backing.subarray(1, 3))]).toEqual([0x3f80, 0xc000]);
  const h = Uint16Array.of(0, 0x3c00, 0xc000);
  expect([...f16ToF32(h.subarray(1))]).toEqual([1, -2]);
  expect([...bf16ToF32(Uint16Array.of(0, 0x3f80).subarray(1))]).toEqual([1]);
});

describe('int64 <-> int32', () => {
  test('round trip, sign extension, and unaligned input', () => {
    const v = Int32Array.of(0, -1, 2147483647, -2147483648, 12345);
    const bytes = i32ToI64(v);
    expect([...new BigInt64Array(bytes.buffer)]).toEqual([0n, -1n, 2147483647n, -2147483648n, 12345n]);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect([...i64ToI32(shifted.subarray(3))]).toEqual([...v]);
  });

  test('a value outside int32 is a ValueError naming the tensor, index and value', () => {
    const bytes = new Uint8Array(new BigInt64Array([5n, 2n ** 31n, -7n]).buffer);
    expect(() => i64ToI32(bytes, "tensor 'ids'")).toThrow(ValueError);
    expect(() => i64ToI32(bytes, "tensor 'ids'")).toThrow(/tensor 'ids' element 1 is 2147483648, outside int32/);
    const low = new Uint8Array(new BigInt64Array([-(2n ** 31n) - 1n]).buffer);
    expect(() => i64ToI32(low)).toThrow(/element 0 is -2147483649/);
    const high = new Uint8Array(new BigInt64Array([2n ** 40n]).buffer);
    expect(() => i64ToI32(high)).toThrow(/1099511627776/);
  });

  test('a byte length that is not a multiple of 8 is a ValueError', () => {
    expect(() => i64ToI32(new Uint8Array(12))).toThrow(/12 bytes; expected a multiple of 8/);
  });
});
