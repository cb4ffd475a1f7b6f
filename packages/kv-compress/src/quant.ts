// Uniform min–max quantisation per token and group (KIVI's asymmetric scheme, as KVTC uses it), FP8 E4M3 with
// a per-group scale, and the exact encode/decode pair the DP simulates: one function computes both, so the error
// the DP predicts is the error the codec makes.
import { FP8_MAX, fromFp8, fromHalf, toFp8, toHalf } from './numeric.js';

/** Per-group data types of the DP: 0-bit (dropped), b-bit unsigned integers, or FP8 E4M3. */
export type QuantType = 'none' | 'int1' | 'int2' | 'int3' | 'int4' | 'fp8';
export const QUANT_TYPES: readonly QuantType[] = ['none', 'int1', 'int2', 'int3', 'int4', 'fp8'];
/** Bits per element. */
export const TYPE_BITS: Record<QuantType, number> = { none: 0, int1: 1, int2: 2, int3: 3, int4: 4, fp8: 8 };
/** Side information per group and token: fp16 shift + fp16 scale for integers, an fp16 scale for FP8. */
export const SIDE_BITS: Record<QuantType, number> = { none: 0, int1: 32, int2: 32, int3: 32, int4: 32, fp8: 16 };
/** Stable numeric ids used in the stream format. */
export const TYPE_ID: Record<QuantType, number> = { none: 0, int1: 1, int2: 2, int3: 3, int4: 4, fp8: 8 };
export const TYPE_BY_ID: ReadonlyMap<number, QuantType> = new Map(QUANT_TYPES.map((t) => [TYPE_ID[t], t]));

const HALF_MAX = 65504;
const clampHalf = (x: number) => (x > HALF_MAX ? HALF_MAX : x < -HALF_MAX ? -HALF_MAX : x);

/** fp16 bits of the smallest half ≥ x (x ≥ 0), so that a rounded scale never clips the group's maximum. */
function halfCeil(x: number): number {
  let h = toHalf(clampHalf(x));
  if (fromHalf(h) < x && h < 0x7bff) h++;
  return h;
}

/**
 * Quantises x[off .. off+s) with `type`. Writes codes (one per element) and the reconstruction when given;
 * returns the side info as two fp16 bit patterns (shift, scale) and the squared error.
 */
export function quantizeGroup(
  x: ArrayLike<number>,
  off: number,
  s: number,
  type: QuantType,
  codes?: Uint8Array,
  codeOff = 0,
  recon?: Float32Array | Float64Array,
  reconOff = 0,
): { shift: number; scale: number; err: number } {
  let err = 0;
  if (type === 'none') {
    for (let j = 0; j < s; j++) {
      const v = x[off + j]!;
      err += v * v;
      if (recon) recon[reconOff + j] = 0;
    }
    return { shift: 0, scale: 0, err };
  }
  if (type === 'fp8') {
    let amax = 0;
    for (let j = 0; j < s; j++) amax = Math.max(amax, Math.abs(x[off + j]!));
    const scaleH = halfCeil(amax / FP8_MAX);
    const scale = fromHalf(scaleH);
    for (let j = 0; j < s; j++) {
      const v = x[off + j]!;
      const c = scale > 0 ? toFp8(v / scale) : 0;
      const r = fromFp8(c) * scale;
      err += (v - r) * (v - r);
      if (codes) codes[codeOff + j] = c;
      if (recon) recon[reconOff + j] = r;
    }
    return { shift: 0, scale: scaleH, err };
  }
  const levels = (1 << TYPE_BITS[type]) - 1;
  let mn = Number.POSITIVE_INFINITY;
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < s; j++) {
    const v = x[off + j]!;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const shiftH = toHalf(clampHalf(mn));
  const shift = fromHalf(shiftH);
  const scaleH = halfCeil(Math.max(0, mx - shift) / levels);
  const scale = fromHalf(scaleH);
  const inv = scale > 0 ? 1 / scale : 0;
  for (let j = 0; j < s; j++) {
    const v = x[off + j]!;
    let c = Math.round((v - shift) * inv);
    c = c < 0 ? 0 : c > levels ? levels : c;
    const r = shift + c * scale;
    err += (v - r) * (v - r);
    if (codes) codes[codeOff + j] = c;
    if (recon) recon[reconOff + j] = r;
  }
  return { shift: shiftH, scale: scaleH, err };
}

/** Inverse of quantizeGroup: codes + side info → values. */
export function dequantizeGroup(
  codes: ArrayLike<number>,
  codeOff: number,
  s: number,
  type: QuantType,
  shiftH: number,
  scaleH: number,
  out: Float32Array,
  outOff: number,
): void {
  const scale = fromHalf(scaleH);
  if (type === 'fp8') {
    for (let j = 0; j < s; j++) out[outOff + j] = fromFp8(codes[codeOff + j]!) * scale;
    return;
  }
  const shift = fromHalf(shiftH);
  for (let j = 0; j < s; j++) out[outOff + j] = shift + codes[codeOff + j]! * scale;
}
