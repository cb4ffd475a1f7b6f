// The restore path's fast kernels against the straightforward code they replaced, which stays here as the
// reference: decodeSegment against BitReader + dequantizeGroup, the stacked one-GEMM-per-layer CacheReader
// against per-chunk ChunkDecoders, the cos/sin table of ropeRows against the per-row formula, the half table
// against fromHalf.
import { afterEach, describe, expect, it } from 'vitest';
import { calibrate, fitPlan, type KvtcPlan } from '../src/calibration.js';
import type { BitPlan } from '../src/dp.js';
import { CacheReader, encodeCache, readHeader } from '../src/format.js';
import { setCodecKernels } from '../src/kernels.js';
import { ChunkDecoder, decodeSegment, encodeChunk, segmentBytes, segmentOffset } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { BitReader, fromHalf, halfTable } from '../src/numeric.js';
import { dequantizeGroup, TYPE_BITS } from '../src/quant.js';
import { ropeRows } from '../src/rope.js';
import { lowRankRows, relErr } from './helpers.js';

afterEach(() => setCodecKernels('tensor-core'));

/** The decoder as first written: codes into a block through BitReader, dequantizeGroup, then copied into rows. */
function referenceSegment(bp: BitPlan, payload: Uint8Array, base: number, T: number): Float32Array {
  const { side } = segmentBytes(bp, T);
  const w = bp.width;
  const dv = new DataView(payload.buffer, payload.byteOffset + base, side);
  const br = new BitReader(payload, base + side);
  const d = new Float32Array(T * w);
  const m = bp.tokenGroup;
  let so = 0;
  for (const g of bp.groups) {
    const bits = TYPE_BITS[g.type];
    for (let t0 = 0; t0 < T; t0 += m) {
      const mm = Math.min(m, T - t0);
      let shift = 0;
      if (g.type !== 'fp8') {
        shift = dv.getUint16(so, true);
        so += 2;
      }
      const scale = dv.getUint16(so, true);
      so += 2;
      const codes = Array.from({ length: mm * g.size }, () => br.read(bits));
      const block = new Float32Array(mm * g.size);
      dequantizeGroup(codes, 0, mm * g.size, g.type, shift, scale, block, 0);
      for (let i = 0; i < mm; i++) d.set(block.subarray(i * g.size, (i + 1) * g.size), (t0 + i) * w + g.start);
    }
  }
  return d;
}

const dims = { layers: 2, heads: 2, headDim: 16 };
const calRows = lowRankRows({ ...dims, n: 512, rank: 6, noise: 0.02 });
const cal = calibrate(calRows);

describe('decodeSegment', () => {
  const rows = lowRankRows({ ...dims, n: 37, rank: 6, noise: 0.02, start: 100 });
  const cases: [string, KvtcPlan][] = [
    ['int2/int4/fp8, per-token side info', fitPlan(cal, calRows, { ratio: 4 })],
    [
      'int1–int4 + fp8, 16-token side info',
      fitPlan(cal, calRows, { ratio: 8 }, { tokenGroup: 16, types: ['int1', 'int2', 'int3', 'int4', 'fp8'] }),
    ],
    ['32×, 5-token side info', fitPlan(cal, calRows, { ratio: 32 }, { tokenGroup: 5 })],
  ];
  for (const [name, plan] of cases)
    it(`is bit-identical to BitReader + dequantizeGroup (${name})`, () => {
      const payload = encodeChunk(cal, plan, rows);
      const types = new Set(plan.plans.flatMap((p) => p.groups.map((g) => g.type)));
      expect(types.size).toBeGreaterThan(0);
      plan.plans.forEach((bp, si) => {
        const base = segmentOffset(plan, rows.n, si);
        const ref = referenceSegment(bp, payload, base, rows.n);
        // written at a row offset into a larger array, as the stacked reader does
        const got = new Float32Array((rows.n + 3) * bp.width).fill(Number.NaN);
        decodeSegment(bp, payload, base, segmentBytes(bp, rows.n).side, rows.n, got, 3);
        expect(got.subarray(0, 3 * bp.width).every(Number.isNaN)).toBe(true);
        expect(Array.from(got.subarray(3 * bp.width))).toEqual(Array.from(ref));
      });
    });
});

describe('stacked restore (one GEMM per layer over all chunks)', () => {
  const plan = fitPlan(cal, calRows, { ratio: 8 }, { tokenGroup: 16 });
  const rows = lowRankRows({ ...dims, n: 700, rank: 6, noise: 0.02, start: 2000 });
  const stream = encodeCache(rows, cal, plan, { sinks: 4, window: 64, chunkTokens: 256 });
  const h = readHeader(stream);
  const chunks = h.sections.flatMap((s, i) => (s.kind === 3 ? [i] : []));

  /** Each chunk through its own ChunkDecoder, as the reader did before stacking. */
  function perChunk(l: number): { k: Float32Array; v: Float32Array } {
    const reader = new CacheReader(stream, cal);
    const base = reader.layer(l);
    const f = dims.heads * dims.headDim;
    for (const i of chunks) {
      const s = h.sections[i]!;
      const x = new ChunkDecoder(
        cal,
        plan,
        reader.payload(i),
        s.tokenCount,
        reader.positions(s.tokenStart, s.tokenCount),
      ).layer(l);
      base.k.set(x.k, s.tokenStart * f);
      base.v.set(x.v, s.tokenStart * f);
    }
    return base;
  }

  it('has several chunks, big enough for the wasm GEMM', () => {
    expect(chunks.length).toBe(3);
    expect(plan.plans[0]!.width * 256 * dims.heads * dims.headDim).toBeGreaterThan(1 << 15);
  });

  it('matches per-chunk decoding bit for bit on the host GEMM', () => {
    setCodecKernels('ts');
    for (let l = 0; l < dims.layers; l++) {
      const a = new CacheReader(stream, cal).layer(l);
      const b = perChunk(l);
      expect(Array.from(a.k)).toEqual(Array.from(b.k));
      expect(Array.from(a.v)).toEqual(Array.from(b.v));
    }
  });

  it('matches per-chunk decoding to float32 rounding on the wasm GEMM, and the input within the codec error', () => {
    for (let l = 0; l < dims.layers; l++) {
      const a = new CacheReader(stream, cal).layer(l);
      const b = perChunk(l);
      expect(relErr(a.k, b.k)).toBeLessThan(1e-6);
      expect(relErr(a.v, b.v)).toBeLessThan(1e-6);
    }
    const back = new CacheReader(stream, cal).rows();
    expect(relErr(back.k, rows.k)).toBeLessThan(0.2);
    expect(relErr(back.v, rows.v)).toBeLessThan(0.2);
  });
});

describe('CacheReader.layerHeads', () => {
  it('is layer() transposed to [H, T, d], bit for bit (raw sections and chunks)', () => {
    const plan = fitPlan(cal, calRows, { ratio: 16 }, { tokenGroup: 16 });
    const rows = lowRankRows({ ...dims, n: 300, rank: 6, noise: 0.02, start: 50 });
    const stream = encodeCache(rows, cal, plan, { sinks: 4, window: 40, chunkTokens: 100 });
    const { heads: H, headDim: d } = dims;
    const T = rows.n;
    for (let l = 0; l < dims.layers; l++) {
      const a = new CacheReader(stream, cal).layer(l);
      const b = new CacheReader(stream, cal).layerHeads(l);
      for (const key of ['k', 'v'] as const) {
        const want = new Float32Array(T * H * d);
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++)
            for (let q = 0; q < d; q++) want[(h * T + t) * d + q] = a[key][t * H * d + h * d + q]!;
        expect(Array.from(b[key])).toEqual(Array.from(want));
      }
    }
  });
});

describe('ropeRows cos/sin table', () => {
  /** The per-row formula, angles in float64, cos/sin rounded to float32 as tensor-core stores them. */
  function reference(x: Float32Array, n: number, heads: number, d: number, pos: ArrayLike<number>, inverse: boolean) {
    const y = Float32Array.from(x);
    const half = d / 2;
    for (let r = 0; r < n; r++)
      for (let i = 0; i < half; i++) {
        const a = pos[r]! * 10000 ** (-(2 * i) / d);
        const c = Math.fround(Math.cos(a));
        const s = (inverse ? -1 : 1) * Math.fround(Math.sin(a));
        for (let h = 0; h < heads; h++) {
          const o = r * heads * d + h * d;
          y[o + i] = x[o + i]! * c - x[o + i + half]! * s;
          y[o + i + half] = x[o + i + half]! * c + x[o + i]! * s;
        }
      }
    return y;
  }
  const rng = new Rng(11);
  const cases: [string, number[]][] = [
    ['consecutive', Array.from({ length: 50 }, (_, i) => 1000 + i)],
    ['growing past the first table', [3, 600, 5000, 70000, 2]],
    ['beyond the table limit and fractional', [1 << 17, 2.5, -3]],
  ];
  for (const [name, pos] of cases)
    for (const inverse of [false, true])
      it(`matches the formula exactly (${name}, inverse ${inverse})`, () => {
        const x = new Float32Array(pos.length * 3 * 8).map(() => rng.normal());
        const want = reference(x, pos.length, 3, 8, pos, inverse);
        ropeRows(x, pos.length, 24, 0, 3, 8, pos, 10000, inverse);
        expect(Array.from(x)).toEqual(Array.from(want));
      });
});

describe('halfTable', () => {
  it('equals fromHalf on all 65 536 bit patterns', () => {
    const t = halfTable();
    let bad = 0;
    for (let h = 0; h < 65536; h++)
      if (!Object.is(t[h], Math.fround(fromHalf(h))) && !(Number.isNaN(t[h]!) && Number.isNaN(fromHalf(h)))) bad++;
    expect(bad).toBe(0);
    expect(t[0x3c00]).toBe(1);
    expect(t[0xc000]).toBe(-2);
    expect(t[0x7bff]).toBe(65504);
  });
});
