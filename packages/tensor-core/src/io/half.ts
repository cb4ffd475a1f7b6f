// float16 / bfloat16 <-> float32 and int64 <-> int32 on typed arrays, bit-exact.
// Formats: IEEE 754-2008 binary16; bfloat16 as the top half of binary32. Checked against torch 1.13's CPU
// conversions (c10 Half/BFloat16) by the fixtures in test/fixtures/safetensors.
// Rounding is to nearest, ties to even. NaN: f32 -> f16/bf16 gives the quiet NaN with the input's sign
// (0x7e00 / 0x7fc0, payload dropped, as torch does for f16); f16 -> f32 keeps the payload and sets the quiet bit,
// as torch does. Byte order is the host's, which is little-endian on every platform JS runs on.

import { ValueError } from '../errors.js';

const bitsOf = (src: Float32Array): Uint32Array => new Uint32Array(src.buffer, src.byteOffset, src.length);

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  const m = x & 0x7fffff;
  if (e === 0xff) return sign | (m !== 0 ? 0x7e00 : 0x7c00);
  if (e >= 143) return sign | 0x7c00; // |x| >= 2^16: beyond the largest half even after rounding
  if (e >= 113) {
    // Normal half. A carry out of the mantissa bumps the exponent, and past 65504 that is Inf: both correct.
    const h = ((e - 112) << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    return sign | (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1) ? h + 1 : h);
  }
  if (e >= 102) {
    // Subnormal half: count units of 2^-24. The implicit bit makes the mantissa 24 bits; shift is 14..24.
    const full = m | 0x800000;
    const shift = 126 - e;
    const h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (rem > halfway || (rem === halfway && (h & 1) === 1) ? h + 1 : h);
  }
  return sign; // below 2^-25 (half of the smallest subnormal; exactly 2^-25 ties to even, to zero)
}

/** float32 -> float16 bit patterns, round to nearest even. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = bitsOf(src);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16(bits[i]!);
  return out;
}

/** float16 bit patterns -> float32 (exact: every half is a float). */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = bitsOf(out);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) bits[i] = (sign | 0x7f800000 | (m << 13) | (m !== 0 ? 0x400000 : 0)) >>> 0;
    else if (e !== 0) bits[i] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
    else out[i] = (sign !== 0 ? -m : m) * 2 ** -24; // zero or subnormal; -0 when m is 0 and the sign is set
  }
  return out;
}

/** float32 -> bfloat16 bit patterns, round to nearest even (overflow rounds to Inf). */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = bitsOf(src);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = ((x >>> 16) & 0x8000) | 0x7fc0;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bit patterns -> float32 (exact: a shift). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = bitsOf(out);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

const INT32_RANGE = '[-2147483648, 2147483647]';

/**
 * Little-endian int64 bytes -> Int32Array. Throws `ValueError` naming the tensor, the flat index and the value when
 * an element does not fit int32 (no silent wrap). `bytes` may sit at any offset.
 */
export function i64ToI32(bytes: Uint8Array, name = 'int64 data'): Int32Array {
  if (bytes.length % 8 !== 0) {
    throw new ValueError(`i64ToI32: ${name} has ${bytes.length} bytes; expected a multiple of 8`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Int32Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) {
    const lo = view.getInt32(8 * i, true);
    const hi = view.getInt32(8 * i + 4, true);
    if (hi !== lo >> 31) {
      const value = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      throw new ValueError(`i64ToI32: ${name} element ${i} is ${value}, outside int32 range ${INT32_RANGE}`);
    }
    out[i] = lo;
  }
  return out;
}

/** Int32Array -> little-endian int64 bytes (sign-extended). */
export function i32ToI64(src: Int32Array): Uint8Array {
  const out = new Uint8Array(src.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) {
    view.setInt32(8 * i, src[i]!, true);
    view.setInt32(8 * i + 4, src[i]! >> 31, true);
  }
  return out;
}
