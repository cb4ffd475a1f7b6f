// An adaptive range coder over the quantised KVTC symbols — the "better entropy coder" the research note leaves
// open. DEFLATE sees bit-packed codes as near-random bytes (its matcher finds few repeats and its Huffman stage
// works on bytes that straddle symbols), but the min–max quantised PCA coefficients are far from uniform: a
// group's codes pile up around the middle of its range, and low components use their range differently from
// high ones. So each symbol is coded with an adaptive frequency model of its own (segment, group), and the fp16
// side information with byte models per (group, byte). The symbol count follows from the plan and the token
// count, so decoding never depends on the stream to know when to stop, and reads past the end yield zeros that
// the caller's length and CRC checks reject.
//
// The coder is the carry-propagating range coder of LZMA (Pavlov), with cumulative frequencies instead of
// binary probabilities: 32-bit range, renormalised a byte at a time below 2^24, models rescaled at 2^16.
import type { KvtcPlan } from './calibration.js';
import { KVFormatError } from './errors.js';
import { segmentBytes } from './kvtc.js';
import { BitReader, BitWriter } from './numeric.js';
import { SIDE_BITS, TYPE_BITS } from './quant.js';

const TOP = 2 ** 24;
const TWO32 = 2 ** 32;
const MAX_TOTAL = 1 << 16;

/** Adaptive frequencies over n symbols (Laplace start, halved when the total passes 2^16). */
export class FreqModel {
  readonly freq: Uint32Array;
  total: number;
  /** count step: large for small alphabets (fast adaptation), small for bytes (less noise from few samples) */
  private readonly inc: number;
  constructor(readonly n: number) {
    this.freq = new Uint32Array(n).fill(1);
    this.total = n;
    this.inc = n <= 16 ? 24 : 4;
  }
  cum(s: number): number {
    let c = 0;
    for (let i = 0; i < s; i++) c += this.freq[i]!;
    return c;
  }
  update(s: number): void {
    this.freq[s]! += this.inc;
    this.total += this.inc;
    if (this.total > MAX_TOTAL) {
      let t = 0;
      for (let i = 0; i < this.n; i++) {
        const f = (this.freq[i]! + 1) >>> 1;
        this.freq[i] = f;
        t += f;
      }
      this.total = t;
    }
  }
}

export class RangeEncoder {
  private low = 0;
  private range = 0xffffffff;
  private cache = 0;
  private cacheSize = 1;
  private buf = new Uint8Array(1024);
  private n = 0;
  private put(b: number): void {
    if (this.n === this.buf.length) {
      const nb = new Uint8Array(this.buf.length * 2);
      nb.set(this.buf);
      this.buf = nb;
    }
    this.buf[this.n++] = b;
  }
  private shiftLow(): void {
    if (this.low < 0xff000000 || this.low >= TWO32) {
      const carry = this.low >= TWO32 ? 1 : 0;
      let temp = this.cache;
      do {
        this.put((temp + carry) & 0xff);
        temp = 0xff;
      } while (--this.cacheSize !== 0);
      this.cache = Math.floor(this.low / TOP) & 0xff;
    }
    this.cacheSize++;
    this.low = (this.low % TOP) * 256;
  }
  encode(m: FreqModel, s: number): void {
    const r = Math.floor(this.range / m.total);
    this.low += r * m.cum(s);
    this.range = r * m.freq[s]!;
    while (this.range < TOP) {
      this.range *= 256;
      this.shiftLow();
    }
    m.update(s);
  }
  finish(): Uint8Array {
    for (let i = 0; i < 5; i++) this.shiftLow();
    return this.buf.slice(0, this.n);
  }
}

export class RangeDecoder {
  private range = 0xffffffff;
  private code = 0;
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {
    for (let i = 0; i < 5; i++) this.code = (this.code * 256 + this.next()) % TWO32;
  }
  private next(): number {
    if (this.at < this.bytes.length) return this.bytes[this.at++]!;
    // A valid stream is never read more than 4 bytes past its end (see the check after decoding): stop at the
    // first read beyond that, so a section that claims more symbols than its bytes hold fails in time
    // proportional to its bytes, not to its claim.
    if (this.at >= this.bytes.length + 4)
      throw new KVFormatError(`KVTC range-coded chunk is truncated (more than its ${this.bytes.length} bytes needed)`);
    this.at++;
    return 0;
  }
  /** bytes read beyond the end of the stream (a valid stream never needs more than it holds) */
  get overrun(): number {
    return Math.max(0, this.at - this.bytes.length);
  }
  decode(m: FreqModel): number {
    const r = Math.floor(this.range / m.total);
    const v = Math.min(m.total - 1, Math.floor(this.code / r));
    let s = 0;
    let c = 0;
    while (c + m.freq[s]! <= v) c += m.freq[s++]!;
    this.code -= r * c;
    this.range = r * m.freq[s]!;
    while (this.range < TOP) {
      this.code = (this.code * 256 + this.next()) % TWO32;
      this.range *= 256;
    }
    m.update(s);
    return s;
  }
}

/** The models of one chunk: per segment, per group one code model and two side-byte models per side value. */
function chunkModels(plan: KvtcPlan) {
  return plan.plans.map((bp) =>
    bp.groups.map((g) => ({
      code: new FreqModel(1 << TYPE_BITS[g.type]),
      side: [new FreqModel(256), new FreqModel(256), new FreqModel(256), new FreqModel(256)],
    })),
  );
}

/**
 * Walks a packed KVTC payload (kvtc.ts layout: per segment, fp16 side info then bit-packed codes, group-major)
 * and hands every field to `visit`; the encoder and decoder share it so they agree on the order by construction.
 */
function walk(
  plan: KvtcPlan,
  T: number,
  visit: (kind: 'side' | 'code', seg: number, group: number, slot: number, bits: number) => void,
): void {
  plan.plans.forEach((bp, si) => {
    const m = bp.tokenGroup;
    const blocks = Math.ceil(T / m);
    bp.groups.forEach((g, gi) => {
      const sides = SIDE_BITS[g.type] / 16;
      for (let b = 0; b < blocks; b++) for (let k = 0; k < sides; k++) visit('side', si, gi, k, 16);
    });
    bp.groups.forEach((g, gi) => {
      const bits = TYPE_BITS[g.type];
      for (let b = 0; b < blocks; b++) {
        const mm = Math.min(m, T - b * m);
        for (let j = 0; j < mm * g.size; j++) visit('code', si, gi, 0, bits);
      }
    });
  });
}

/** Range-codes a packed payload of T tokens (fields in payload order, each with its group's model). */
export function rangeEncodePayload(plan: KvtcPlan, T: number, payload: Uint8Array): Uint8Array {
  const models = chunkModels(plan);
  const enc = new RangeEncoder();
  const offs = segmentOffsets(plan, T);
  let seg = -1;
  let side: DataView | null = null;
  let so = 0;
  let br: BitReader | null = null;
  walk(plan, T, (kind, si, gi, slot, bits) => {
    if (si !== seg) {
      seg = si;
      const { side: sb } = segmentBytes(plan.plans[si]!, T);
      side = new DataView(payload.buffer, payload.byteOffset + offs[si]!, sb);
      so = 0;
      br = new BitReader(payload, offs[si]! + sb);
    }
    const gm = models[si]![gi]!;
    if (kind === 'side') {
      const x = side!.getUint16(so, true);
      so += 2;
      enc.encode(gm.side[2 * slot]!, x & 0xff);
      enc.encode(gm.side[2 * slot + 1]!, x >>> 8);
    } else enc.encode(gm.code, br!.read(bits));
  });
  return enc.finish();
}

/** Inverse of rangeEncodePayload: the packed payload (exactly chunkBytes(plan, T) bytes). */
export function rangeDecodePayload(plan: KvtcPlan, T: number, coded: Uint8Array, expect: number): Uint8Array {
  const models = chunkModels(plan);
  const dec = new RangeDecoder(coded);
  const out = new Uint8Array(expect);
  const offs = segmentOffsets(plan, T);
  let seg = -1;
  let side: DataView | null = null;
  let so = 0;
  let bw: BitWriter | null = null;
  walk(plan, T, (kind, si, gi, slot, bits) => {
    if (si !== seg) {
      bw?.flush();
      seg = si;
      const { side: sb, total } = segmentBytes(plan.plans[si]!, T);
      side = new DataView(out.buffer, offs[si]!, sb);
      so = 0;
      bw = new BitWriter(out.subarray(offs[si]! + sb, offs[si]! + total));
    }
    const gm = models[si]![gi]!;
    if (kind === 'side') {
      const lo = dec.decode(gm.side[2 * slot]!);
      const hi = dec.decode(gm.side[2 * slot + 1]!);
      side!.setUint16(so, lo | (hi << 8), true);
      so += 2;
    } else bw!.write(dec.decode(gm.code), bits);
  });
  (bw as BitWriter | null)?.flush(); // assigned inside the callback, which TypeScript does not track
  // the coder may look up to 4 bytes ahead of the last symbol; more means the stream was cut short
  if (dec.overrun > 4) throw new KVFormatError(`KVTC range-coded chunk is truncated (${dec.overrun} bytes missing)`);
  return out;
}

function segmentOffsets(plan: KvtcPlan, T: number): number[] {
  const offs: number[] = [];
  let o = 0;
  for (const p of plan.plans) {
    offs.push(o);
    o += segmentBytes(p, T).total;
  }
  return offs;
}
