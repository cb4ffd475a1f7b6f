// KVTC chunk codec: project a chunk of tokens into each segment's PCA basis, quantise the coefficients group by
// group as the plan says, and pack side info (fp16, byte aligned) and codes (bit-packed) into one byte array.
// The container (format.ts) DEFLATEs it. Decoding dequantises the coefficients once and inverse-projects one
// layer at a time with the layer's columns of Vᵀ, so layer 0 is ready before the rest is touched.

import type { Calibration, KVRows, KvtcPlan, Segment } from './calibration.js';
import { checkRows, derotate, project, segmentRows } from './calibration.js';
import type { BitPlan } from './dp.js';
import { KVFormatError, ValueError } from './errors.js';
import { codecGemm } from './kernels.js';
import { BitReader, BitWriter, fromFp8, fromHalf, halfTable } from './numeric.js';
import { quantizeGroup, SIDE_BITS, TYPE_BITS } from './quant.js';
import { ropeRows } from './rope.js';

/** Exact byte sizes of one segment's payload for T tokens. */
export function segmentBytes(plan: BitPlan, T: number): { side: number; code: number; total: number } {
  let side = 0;
  let codeBits = 0;
  for (const g of plan.groups) {
    side += SIDE_BITS[g.type] / 8;
    codeBits += g.size * TYPE_BITS[g.type];
  }
  const s = side * Math.ceil(T / plan.tokenGroup);
  const c = Math.ceil((codeBits * T) / 8);
  return { side: s, code: c, total: s + c };
}

export function chunkBytes(plan: KvtcPlan, T: number): number {
  return plan.plans.reduce((a, p) => a + segmentBytes(p, T).total, 0);
}

export function checkPlan(cal: Calibration, plan: KvtcPlan): void {
  if (plan.plans.length !== cal.segments.length)
    throw new KVFormatError(
      `KVTC plan has ${plan.plans.length} segment plans; the calibration has ${cal.segments.length} segments`,
    );
  plan.plans.forEach((p, i) => {
    const seg = cal.segments[i]!;
    if (!(Number.isInteger(p.tokenGroup) && p.tokenGroup >= 1 && p.tokenGroup <= 0xffff))
      throw new KVFormatError(
        `KVTC plan for segment ${i}: tokenGroup ${p.tokenGroup} must be an integer in [1, 65535]`,
      );
    if (p.width > seg.pca.rank)
      throw new KVFormatError(
        `KVTC plan for segment ${i} codes ${p.width} components; the calibration keeps ${seg.pca.rank}`,
      );
  });
  checkPlanGroups(plan);
}

/**
 * What a plan must satisfy without a calibration: groups inside the width, in coefficient order without overlap
 * (the container's reader takes them in that order, which `makePlan` builds; another order would decode the
 * right bytes into the wrong coefficients).
 */
export function checkPlanGroups(plan: KvtcPlan): void {
  plan.plans.forEach((p, i) => {
    let end = 0;
    for (const g of p.groups) {
      if (g.start < 0 || g.size < 1 || g.start + g.size > p.width)
        throw new KVFormatError(`KVTC plan for segment ${i}: group [${g.start}, +${g.size}) outside width ${p.width}`);
      if (g.start < end)
        throw new KVFormatError(
          `KVTC plan for segment ${i}: group [${g.start}, +${g.size}) starts before the previous group ends (${end}); groups must be in order without overlap`,
        );
      end = g.start + g.size;
    }
  });
}

/** Encodes rows (keys as cached, RoPE applied) of one chunk. Returns the packed (not yet DEFLATEd) payload. */
export function encodeChunk(cal: Calibration, plan: KvtcPlan, rows: KVRows): Uint8Array {
  checkPlan(cal, plan);
  checkRows(rows, 'encodeChunk', cal);
  const T = rows.n;
  const r = cal.rope ? derotate(rows, cal.ropeBase) : rows;
  const out = new Uint8Array(chunkBytes(plan, T));
  let off = 0;
  cal.segments.forEach((seg, si) => {
    const bp = plan.plans[si]!;
    const { side, total } = segmentBytes(bp, T);
    const w = bp.width;
    const d = project(seg.pca, segmentRows(r, seg), T, w);
    const sideView = new DataView(out.buffer, out.byteOffset + off, side);
    const bw = new BitWriter(out.subarray(off + side, off + total));
    const m = bp.tokenGroup;
    const maxSize = Math.max(1, ...bp.groups.map((g) => g.size));
    const codes = new Uint8Array(m * maxSize);
    const block = new Float32Array(m * maxSize);
    let so = 0;
    for (const g of bp.groups) {
      const bits = TYPE_BITS[g.type];
      for (let t0 = 0; t0 < T; t0 += m) {
        const mm = Math.min(m, T - t0);
        // one (shift, scale) for the mm × size block of tokens t0.. and the group's coefficients
        for (let i = 0; i < mm; i++)
          block.set(d.subarray((t0 + i) * w + g.start, (t0 + i) * w + g.start + g.size), i * g.size);
        const q = quantizeGroup(block, 0, mm * g.size, g.type, codes, 0);
        if (g.type !== 'fp8') {
          sideView.setUint16(so, q.shift, true);
          so += 2;
        }
        sideView.setUint16(so, q.scale, true);
        so += 2;
        for (let j = 0; j < mm * g.size; j++) bw.write(codes[j]!, bits);
      }
    }
    bw.flush();
    off += total;
  });
  return out;
}

/**
 * Dequantised coefficients of one segment, written straight into rows [row0, row0 + T) of d ([·, width]):
 * bits are read with a local accumulator and each code becomes shift + code·scale (or FP8 value · scale) in
 * place, with no per-group code or block arrays. The arithmetic is dequantizeGroup's (double, then rounded once
 * to float32), so the values are bit-identical to it.
 */
export function decodeSegment(
  bp: BitPlan,
  payload: Uint8Array,
  base: number,
  side: number,
  T: number,
  d: Float32Array,
  row0: number,
): void {
  const w = bp.width;
  const m = bp.tokenGroup;
  const half = halfTable();
  let so = base;
  let pos = base + side;
  let acc = 0;
  let n = 0;
  for (const g of bp.groups) {
    const bits = TYPE_BITS[g.type];
    const mask = (1 << bits) - 1;
    const fp8 = g.type === 'fp8';
    const size = g.size;
    for (let t0 = 0; t0 < T; t0 += m) {
      const mm = Math.min(m, T - t0);
      let shift = 0;
      if (!fp8) {
        shift = half[payload[so]! | (payload[so + 1]! << 8)]!;
        so += 2;
      }
      const scale = half[payload[so]! | (payload[so + 1]! << 8)]!;
      so += 2;
      for (let i = 0; i < mm; i++) {
        const o = (row0 + t0 + i) * w + g.start;
        for (let j = 0; j < size; j++) {
          while (n < bits) {
            acc |= (payload[pos++] ?? 0) << n;
            n += 8;
          }
          const c = acc & mask;
          acc >>>= bits;
          n -= bits;
          d[o + j] = fp8 ? fromFp8(c) * scale : shift + c * scale;
        }
      }
    }
  }
}

// The layer's columns of Vᵀ[0:w], [w, H·d], per basis: every chunk and every restore of a calibration needs the
// same slices, so they are cut once (keyed weakly by the basis array, which a calibration never mutates).
const SUB_BASES = new WeakMap<Float32Array, Map<number, Float32Array>>();
function layerBasis(seg: Segment, j: number, w: number, f: number): Float32Array {
  const { p, basis } = seg.pca;
  let byLayer = SUB_BASES.get(basis);
  if (!byLayer) SUB_BASES.set(basis, (byLayer = new Map()));
  const key = j * 65536 + w;
  let sub = byLayer.get(key);
  if (!sub) {
    sub = new Float32Array(w * f);
    for (let c = 0; c < w; c++) sub.set(basis.subarray(c * p + j * f, c * p + (j + 1) * f), c * f);
    byLayer.set(key, sub);
  }
  return sub;
}

/**
 * Layer j of segment `seg` from its coefficients [T, w]: the inverse projection, the mean, and RoPE for keys.
 * Returns [T, H·d]. Rows are independent, so the caller may stack the coefficients of several chunks and pay
 * one GEMM instead of one per chunk.
 */
export function reconstructLayer(
  cal: Calibration,
  seg: Segment,
  j: number,
  w: number,
  coeffs: Float32Array,
  T: number,
  positions: ArrayLike<number>,
): Float32Array {
  const { heads, headDim } = cal;
  const f = heads * headDim;
  const x = codecGemm(coeffs, T, w, layerBasis(seg, j, w, f), f);
  const mean = seg.pca.mean.subarray(j * f, (j + 1) * f);
  for (let t = 0; t < T; t++) {
    const o = t * f;
    for (let q = 0; q < f; q++) x[o + q]! += mean[q]!;
  }
  if (seg.kind === 'k' && cal.rope) ropeRows(x, T, f, 0, heads, headDim, positions, cal.ropeBase, false);
  return x;
}

/** Lazily decodes a chunk: coefficients per segment on first use, then one layer at a time. */
export class ChunkDecoder {
  private readonly coeffs = new Map<number, Float32Array>();
  private readonly offsets: number[] = [];
  constructor(
    readonly cal: Calibration,
    readonly plan: KvtcPlan,
    readonly payload: Uint8Array,
    readonly T: number,
    readonly positions: Int32Array,
  ) {
    checkPlan(cal, plan);
    if (positions.length !== T)
      throw new ValueError(`ChunkDecoder: ${T} tokens need ${T} positions; got ${positions.length}`);
    let off = 0;
    for (const p of plan.plans) {
      this.offsets.push(off);
      off += segmentBytes(p, T).total;
    }
    if (off !== payload.length)
      throw new KVFormatError(`KVTC chunk: expected ${off} payload bytes for ${T} tokens; got ${payload.length}`);
  }

  private segmentCoeffs(si: number): Float32Array {
    const hit = this.coeffs.get(si);
    if (hit) return hit;
    const bp = this.plan.plans[si]!;
    const T = this.T;
    const w = bp.width;
    const { side } = segmentBytes(bp, T);
    const base = this.offsets[si]!;
    const d = new Float32Array(T * w);
    decodeSegment(bp, this.payload, base, side, T, d, 0);
    this.coeffs.set(si, d);
    return d;
  }

  /** Keys (RoPE re-applied) and values of one layer, [T, H·d] each. */
  layer(l: number): { k: Float32Array; v: Float32Array } {
    const res: { k?: Float32Array; v?: Float32Array } = {};
    this.cal.segments.forEach((seg: Segment, si) => {
      const j = seg.layers.indexOf(l);
      if (j < 0) return;
      const x = reconstructLayer(
        this.cal,
        seg,
        j,
        this.plan.plans[si]!.width,
        this.segmentCoeffs(si),
        this.T,
        this.positions,
      );
      res[seg.kind] = x;
    });
    if (!res.k || !res.v) throw new KVFormatError(`KVTC chunk: no segment covers layer ${l}`);
    return { k: res.k, v: res.v };
  }
}

/** Start of segment `si` in a chunk payload of T tokens. */
export function segmentOffset(plan: KvtcPlan, T: number, si: number): number {
  let off = 0;
  for (let i = 0; i < si; i++) off += segmentBytes(plan.plans[i]!, T).total;
  return off;
}

/** Where `unpackSegment` writes: codes [·, width] from token row `row`, side tables [·, groups + 1] from `block`. */
export interface UnpackTarget {
  /** per coefficient: its code, plus 256 for FP8 groups (an index into a table of int levels then FP8 values) */
  levels: Int32Array;
  /** per (token block, group): the group's shift and scale as floats; column `groups` stays 0 (dropped coefficients) */
  shift: Float32Array;
  scale: Float32Array;
  row: number;
  block: number;
}

/**
 * Bit-unpacks segment `si` of a chunk payload without dequantising it: the device decoder does shift + level·scale
 * (and the FP8 table look-up) on the accelerator, so the host only reads bits and halves. Returns the number of
 * token blocks written.
 */
export function unpackSegment(plan: KvtcPlan, payload: Uint8Array, T: number, si: number, out: UnpackTarget): number {
  const bp = plan.plans[si]!;
  const w = bp.width;
  const m = bp.tokenGroup;
  const G1 = bp.groups.length + 1;
  const nb = Math.ceil(T / m);
  const { side, total } = segmentBytes(bp, T);
  const base = segmentOffset(plan, T, si);
  if (base + total > payload.length)
    throw new KVFormatError(`KVTC chunk: segment ${si} needs ${base + total} payload bytes; got ${payload.length}`);
  const sideView = new DataView(payload.buffer, payload.byteOffset + base, side);
  const br = new BitReader(payload, base + side);
  let so = 0;
  bp.groups.forEach((g, gi) => {
    const bits = TYPE_BITS[g.type];
    const fp8 = g.type === 'fp8' ? 256 : 0;
    for (let blk = 0; blk < nb; blk++) {
      const t0 = blk * m;
      const mm = Math.min(m, T - t0);
      const cell = (out.block + blk) * G1 + gi;
      if (!fp8) {
        out.shift[cell] = fromHalf(sideView.getUint16(so, true));
        so += 2;
      }
      out.scale[cell] = fromHalf(sideView.getUint16(so, true));
      so += 2;
      // codes of a block are token-major, each token's group elements in order
      for (let i = 0; i < mm; i++) {
        const o = (out.row + t0 + i) * w + g.start;
        for (let j = 0; j < g.size; j++) out.levels[o + j] = br.read(bits) + fp8;
      }
    }
  });
  return nb;
}

/** Encode + decode of rows through the codec (no container): what attention will see after compression. */
export function roundTrip(cal: Calibration, plan: KvtcPlan, rows: KVRows): KVRows {
  const dec = new ChunkDecoder(cal, plan, encodeChunk(cal, plan, rows), rows.n, rows.positions);
  const f = cal.heads * cal.headDim;
  const P = cal.layers * f;
  const k = new Float32Array(rows.n * P);
  const v = new Float32Array(rows.n * P);
  for (let l = 0; l < cal.layers; l++) {
    const x = dec.layer(l);
    for (let t = 0; t < rows.n; t++) {
      k.set(x.k.subarray(t * f, (t + 1) * f), t * P + l * f);
      v.set(x.v.subarray(t * f, (t + 1) * f), t * P + l * f);
    }
  }
  return { ...rows, k, v };
}
