// Number formats and byte helpers: IEEE half precision, OCP FP8 E4M3, CRC-32, FNV-1a 64 and bit packing.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE binary16 bits, round to nearest even; overflow saturates to ±Inf like a cast. */
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** IEEE binary16 bits → number. */
export function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let HALF_TABLE: Float32Array | null = null;
/**
 * fromHalf for all 65 536 bit patterns (every half is exact in float32), built on first use: decoders read
 * whole sections of halves, where a look-up beats the branches and the power.
 */
export function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = fromHalf(h);
  }
  return HALF_TABLE;
}

/** Rounds through half precision (what a stored fp16 reads back as). */
export const roundHalf = (x: number): number => fromHalf(toHalf(x));

// FP8 E4M3 (OCP "E4M3FN": bias 7, no infinities, max 448, 0x7f is NaN). Table of the 127 non-negative finite values.
const E4M3: Float64Array = (() => {
  const t = new Float64Array(127);
  for (let c = 0; c < 127; c++) {
    const e = c >>> 3;
    const m = c & 7;
    t[c] = e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
  }
  return t;
})();
export const FP8_MAX = 448;

/** number → E4M3 code, nearest (ties to even code), saturating at ±448. */
export function toFp8(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(a)) return 0x7f;
  if (a >= FP8_MAX) return sign | 126;
  let lo = 0;
  let hi = 126;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (E4M3[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - E4M3[lo]!;
  const dh = E4M3[hi]! - a;
  const c = dl < dh || (dl === dh && (lo & 1) === 0) ? lo : hi;
  return sign | c;
}

export function fromFp8(c: number): number {
  const v = c & 0x7f;
  if (v === 0x7f) return Number.NaN;
  return c & 0x80 ? -E4M3[v]! : E4M3[v]!;
}

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, the zlib/PNG polynomial). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** FNV-1a 64-bit over bytes, as 16 hex digits (fingerprints of calibrations and token prefixes). */
export function fnv1a64(bytes: Uint8Array): string {
  const h = new Fnv64();
  h.update(bytes);
  return h.hex();
}

/** Incremental FNV-1a 64 (two 32-bit halves; the 64-bit prime is 2^40 + 0x1b3). */
export class Fnv64 {
  hi = 0xcbf29ce4;
  lo = 0x84222325;
  update(bytes: Uint8Array): this {
    for (let i = 0; i < bytes.length; i++) this.byte(bytes[i]!);
    return this;
  }
  byte(b: number): void {
    const lo = (this.lo ^ b) >>> 0;
    // (hi·2^32 + lo)·(2^40 + 0x1b3) mod 2^64
    const loLo = (lo & 0xffff) * 0x1b3;
    const loHi = (lo >>> 16) * 0x1b3;
    const nlo = loLo + (loHi & 0xffff) * 0x10000;
    const carry = Math.floor(nlo / 0x100000000) + Math.floor(loHi / 0x10000);
    this.hi = (Math.imul(this.hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    this.lo = nlo >>> 0;
  }
  clone(): Fnv64 {
    const c = new Fnv64();
    c.hi = this.hi;
    c.lo = this.lo;
    return c;
  }
  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

/** LSB-first bit packing into a byte array of known size. */
export class BitWriter {
  private acc = 0;
  private n = 0;
  pos = 0;
  constructor(readonly out: Uint8Array) {}
  write(value: number, bits: number): void {
    // bits ≤ 16 here, so acc stays below 2^31 with n < 8 pending.
    this.acc |= value << this.n;
    this.n += bits;
    while (this.n >= 8) {
      this.out[this.pos++] = this.acc & 0xff;
      this.acc >>>= 8;
      this.n -= 8;
    }
  }
  flush(): void {
    if (this.n > 0) this.out[this.pos++] = this.acc & 0xff;
    this.acc = 0;
    this.n = 0;
  }
}

export class BitReader {
  private acc = 0;
  private n = 0;
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
  ) {
    this.pos = start;
  }
  read(bits: number): number {
    while (this.n < bits) {
      this.acc |= (this.bytes[this.pos++] ?? 0) << this.n;
      this.n += 8;
    }
    const v = this.acc & ((1 << bits) - 1);
    this.acc >>>= bits;
    this.n -= bits;
    return v;
  }
}
