import { nn, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { calibrate, fitPlan } from '../src/calibration.js';
import { allocateBits, makePlan, planError } from '../src/dp.js';
import { ChunkDecoder, encodeChunk, roundTrip, segmentBytes } from '../src/kvtc.js';
import {
  columnMeans,
  orthonormalizeColumns,
  pca,
  pcaMethod,
  Rng,
  scatter,
  symEig,
  symEigJacobi,
} from '../src/linalg.js';
import { BitReader, BitWriter, crc32, Fnv64, fnv1a64, fromFp8, fromHalf, toFp8, toHalf } from '../src/numeric.js';
import { dequantizeGroup, type QuantType, quantizeGroup } from '../src/quant.js';
import { ropeRows } from '../src/rope.js';
import { allTilings, lowRankRows, relErr } from './helpers.js';

describe('number formats', () => {
  it('fp16 matches hand-derived encodings and rounds to nearest even', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e6)).toBe(0x7c00);
    expect(toHalf(2 ** -24)).toBe(1);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (let h = 0; h < 0x7c00; h += 7) expect(toHalf(fromHalf(h))).toBe(h);
  });
  it('fp8 E4M3 round-trips every code and saturates at 448', () => {
    expect(fromFp8(0x7e)).toBe(448);
    expect(fromFp8(0x08)).toBe(2 ** -6);
    expect(fromFp8(0x01)).toBe(2 ** -9);
    expect(toFp8(1e9)).toBe(0x7e);
    for (let c = 0; c < 256; c++) if ((c & 0x7f) !== 0x7f && c !== 0x80) expect(toFp8(fromFp8(c))).toBe(c);
  });
  it('CRC-32 and FNV-1a 64 match their reference values', () => {
    const b = new TextEncoder().encode('123456789');
    expect(crc32(b)).toBe(0xcbf43926);
    // reference with BigInt
    let h = 0xcbf29ce484222325n;
    for (const x of b) h = ((h ^ BigInt(x)) * 0x100000001b3n) & 0xffffffffffffffffn;
    expect(fnv1a64(b)).toBe(h.toString(16).padStart(16, '0'));
    const rng = new Rng(3);
    const bytes = Uint8Array.from({ length: 300 }, () => rng.int(256));
    let g = 0xcbf29ce484222325n;
    for (const x of bytes) g = ((g ^ BigInt(x)) * 0x100000001b3n) & 0xffffffffffffffffn;
    expect(new Fnv64().update(bytes).hex()).toBe(g.toString(16).padStart(16, '0'));
  });
  it('bit packing round-trips mixed widths', () => {
    const rng = new Rng(5);
    const widths = Array.from({ length: 500 }, () => 1 + rng.int(8));
    const vals = widths.map((w) => rng.int(1 << w));
    const total = Math.ceil(widths.reduce((a, b) => a + b, 0) / 8);
    const out = new Uint8Array(total);
    const bw = new BitWriter(out);
    for (let i = 0; i < vals.length; i++) bw.write(vals[i]!, widths[i]!);
    bw.flush();
    expect(bw.pos).toBe(total);
    const br = new BitReader(out);
    expect(widths.map((w) => br.read(w))).toEqual(vals);
  });
});

describe('quantisation', () => {
  it('min–max int keeps the extremes and bounds the error by half a step', () => {
    const x = Float64Array.from([-1.5, 0.2, 0.7, 2.25, 1.0]);
    for (const t of ['int1', 'int2', 'int3', 'int4'] as QuantType[]) {
      const codes = new Uint8Array(5);
      const rec = new Float32Array(5);
      const q = quantizeGroup(x, 0, 5, t, codes, 0, rec);
      const step = fromHalf(q.scale);
      for (let j = 0; j < 5; j++) expect(Math.abs(rec[j]! - x[j]!)).toBeLessThanOrEqual(step / 2 + 2e-3);
      expect(rec[0]).toBeCloseTo(-1.5, 3);
      const back = new Float32Array(5);
      dequantizeGroup(codes, 0, 5, t, q.shift, q.scale, back, 0);
      expect(Array.from(back)).toEqual(Array.from(rec));
    }
  });
  it('fp8 groups scale by absmax/448', () => {
    const x = Float64Array.from([0.001, -3, 2.5, 0]);
    const rec = new Float32Array(4);
    const codes = new Uint8Array(4);
    const q = quantizeGroup(x, 0, 4, 'fp8', codes, 0, rec);
    // the scale is the smallest fp16 at or above absmax/448 (E4M3's largest finite value), so the largest
    // magnitude takes the top code
    let h = toHalf(3 / 448);
    if (fromHalf(h) < 3 / 448) h += 1;
    expect(q.scale).toBe(h);
    expect(codes[1]).toBe(toFp8(-448));
    expect(relErr(rec, x)).toBeLessThan(0.07);
  });
});

describe('PCA', () => {
  it.each([
    ['tridiagonal QL', symEig],
    ['Jacobi', symEigJacobi],
  ])('%s eigenvectors satisfy A v = λ v against a float64 check', (_name, solver) => {
    const rng = new Rng(11);
    const p = 12;
    const x = new Float32Array(40 * p).map(() => rng.normal());
    const a = scatter(x, 40, p, columnMeans(x, 40, p));
    const { values, vectors } = solver(a, p);
    const ref = symEigJacobi(a, p).values;
    for (let k = 0; k < p; k++) expect(values[k]).toBeCloseTo(ref[k]!, 8);
    for (let k = 0; k < p; k++) {
      if (k > 0) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
      for (let i = 0; i < p; i++) {
        let av = 0;
        for (let j = 0; j < p; j++) av += a[i * p + j]! * vectors[k * p + j]!;
        expect(av).toBeCloseTo(values[k]! * vectors[k * p + i]!, 8);
      }
    }
  });
  it('exact and randomized PCA reconstruct low-rank data', () => {
    const rows = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 200, rank: 5 });
    const p = 32;
    for (const method of ['exact', 'randomized'] as const) {
      const r = pca(rows.v, rows.n, p, { method, rank: 5 });
      let err = 0;
      let tot = 0;
      for (let i = 0; i < rows.n; i++) {
        const xc = Array.from({ length: p }, (_, j) => rows.v[i * p + j]! - r.mean[j]!);
        const rec = new Float64Array(p);
        for (let c = 0; c < 5; c++) {
          let d = 0;
          for (let j = 0; j < p; j++) d += xc[j]! * r.basis[c * p + j]!;
          for (let j = 0; j < p; j++) rec[j]! += d * r.basis[c * p + j]!;
        }
        for (let j = 0; j < p; j++) {
          err += (xc[j]! - rec[j]!) ** 2;
          tot += xc[j]! ** 2;
        }
      }
      expect(Math.sqrt(err / tot)).toBeLessThan(1e-4);
    }
  });
  // rows with `strong` directions of decaying energy above an isotropic floor: a clear gap after `strong`
  const gapped = (n: number, p: number, strong: number, seed: number) => {
    const rng = new Rng(seed);
    const u = new Float64Array(strong * p).map(() => rng.normal() / Math.sqrt(p));
    const x = new Float32Array(n * p);
    for (let i = 0; i < n; i++) {
      const g = Array.from({ length: strong }, (_, c) => rng.normal() * 10 * 0.85 ** c);
      for (let j = 0; j < p; j++) {
        let v = 0.05 * rng.normal();
        for (let c = 0; c < strong; c++) v += g[c]! * u[c * p + j]!;
        x[i * p + j] = v;
      }
    }
    return x;
  };
  const gram = (b: Float32Array, r1: number, c: Float32Array, r2: number, p: number) => {
    const g = new Float64Array(r1 * r2);
    for (let a = 0; a < r1; a++)
      for (let k = 0; k < r2; k++) {
        let d = 0;
        for (let j = 0; j < p; j++) d += b[a * p + j]! * c[k * p + j]!;
        g[a * r2 + k] = d;
      }
    return g;
  };
  it("'auto' takes the exact eigensolver unless p > 384 and the rank is at most p/8", () => {
    expect(pcaMethod(128, 128)).toBe('exact');
    expect(pcaMethod(384, 8)).toBe('exact'); // p ≤ 384: bases of existing calibrations unchanged
    expect(pcaMethod(512, 512)).toBe('exact'); // was randomized before: full rank is where it cost most
    expect(pcaMethod(512, 65)).toBe('exact');
    expect(pcaMethod(512, 64)).toBe('randomized');
  });
  it('above p = 384 at full rank, auto is the exact PCA: orthonormal, A v = λ v in float64, and the randomized path agrees', () => {
    const n = 450;
    const p = 400; // above 384, where 'auto' used to pick the randomized SVD at any rank
    const x = gapped(n, p, 16, 5);
    const auto = pca(x, n, p);
    const exact = pca(x, n, p, { method: 'exact' });
    expect(Array.from(auto.basis)).toEqual(Array.from(exact.basis));
    const g = gram(auto.basis, p, auto.basis, p, p);
    let worst = 0;
    for (let a = 0; a < p; a++)
      for (let k = 0; k < p; k++) worst = Math.max(worst, Math.abs(g[a * p + k]! - (a === k ? 1 : 0)));
    expect(worst).toBeLessThan(1e-5); // float32 rows
    // the top directions against the float64 scatter: ‖S v − λ v‖ ≤ 1e-5 λ₀ (v rounded to float32)
    const s = scatter(x, n, p, columnMeans(x, n, p));
    for (let k = 0; k < 16; k++) {
      let r2 = 0;
      for (let i = 0; i < p; i++) {
        let sv = 0;
        for (let j = 0; j < p; j++) sv += s[i * p + j]! * auto.basis[k * p + j]!;
        r2 += (sv - auto.energies[k]! * auto.basis[k * p + i]!) ** 2;
      }
      expect(Math.sqrt(r2)).toBeLessThan(1e-5 * auto.energies[0]!);
    }
    // the old choice (randomized at full rank; one iteration: at full rank Q spans everything already)
    const rnd = pca(x, n, p, { method: 'randomized', iters: 1 });
    for (let k = 0; k < p; k++)
      expect(Math.abs(rnd.energies[k]! - exact.energies[k]!)).toBeLessThan(1e-7 * exact.energies[0]!);
    const c = gram(rnd.basis, 16, exact.basis, 16, p);
    let cos2 = 0;
    for (const v of c) cos2 += v * v;
    expect(16 - cos2).toBeLessThan(1e-6); // Σ cos² of the principal angles between the two top-16 subspaces
  }, 180_000); // heavy in float64: ≈ 35–50 s alone on a loaded 2-core machine, past the 60 s default under turbo's parallel suites
  it('above p = 384 at a small rank, auto is the randomized SVD, and it finds the exact top subspace and energies', () => {
    const n = 600;
    const p = 400;
    const rank = 16; // ≤ p/8
    const x = gapped(n, p, rank, 9);
    const auto = pca(x, n, p, { rank });
    expect(Array.from(auto.basis)).toEqual(Array.from(pca(x, n, p, { rank, method: 'randomized' }).basis));
    const exact = pca(x, n, p, { rank, method: 'exact' });
    for (let k = 0; k < rank; k++) expect(auto.energies[k]! / exact.energies[k]!).toBeCloseTo(1, 6);
    const g = gram(auto.basis, rank, auto.basis, rank, p);
    for (let a = 0; a < rank; a++)
      for (let k = 0; k < rank; k++) expect(g[a * rank + k]!).toBeCloseTo(a === k ? 1 : 0, 5);
    const c = gram(auto.basis, rank, exact.basis, rank, p);
    let cos2 = 0;
    for (const v of c) cos2 += v * v;
    expect(rank - cos2).toBeLessThan(1e-6);
  });
  it('Gram–Schmidt orthonormalizes the columns of a row-major matrix and keeps their span', () => {
    const rng = new Rng(3);
    const rows = 30;
    const cols = 7;
    const m0 = new Float64Array(rows * cols).map(() => rng.normal());
    const m = Float64Array.from(m0);
    orthonormalizeColumns(m, rows, cols);
    for (let a = 0; a < cols; a++)
      for (let b = 0; b < cols; b++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += m[i * cols + a]! * m[i * cols + b]!;
        expect(d).toBeCloseTo(a === b ? 1 : 0, 12);
      }
    // column j of the input lies in the span of output columns 0..j (triangular factor): the residual is zero
    for (let j = 0; j < cols; j++) {
      const r = Array.from({ length: rows }, (_, i) => m0[i * cols + j]!);
      for (let k = 0; k <= j; k++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += r[i]! * m[i * cols + k]!;
        for (let i = 0; i < rows; i++) r[i]! -= d * m[i * cols + k]!;
      }
      expect(Math.hypot(...r)).toBeLessThan(1e-12);
    }
  });
});

describe('DP bit allocation', () => {
  const rng = new Rng(2);
  const n = 6;
  const r = 5;
  const d = new Float32Array(n * r).map((_, i) => rng.normal() * (3 - (i % r) * 0.5));
  const sizes = [1, 2];
  const types: QuantType[] = ['int1', 'int2', 'fp8'];
  // brute force: every tiling of [0, r) into blocks of the sizes, each block none or one of the types
  const all = allTilings(r, sizes, types);
  const scored = all.map((g) => ({ bits: makePlan(r, g).bitsPerToken, err: planError(d, n, r, g) }));
  it('finds the brute-force optimum under every budget', () => {
    for (const B of [0, 20, 33, 40, 66, 70, 100, 140]) {
      const brute = Math.min(...scored.filter((s) => s.bits <= B).map((s) => s.err));
      const res = allocateBits(d, n, r, { budgetBits: B, sizes, types });
      expect(res.plan.bitsPerToken).toBeLessThanOrEqual(B);
      expect(res.error).toBeCloseTo(brute, 6);
      expect(planError(d, n, r, res.plan.groups)).toBeCloseTo(res.error, 6);
    }
  });
  it('with side info shared over 2 tokens, matches the brute force on blocks of rows', () => {
    for (const B of [17, 34, 50, 90]) {
      const brute = Math.min(
        ...all.filter((g) => makePlan(r, g, 2).bitsPerToken <= B).map((g) => planError(d, n, r, g, 2)),
      );
      const res = allocateBits(d, n, r, { budgetBits: B, sizes, types, tokenGroup: 2 });
      expect(res.plan.tokenGroup).toBe(2);
      expect(res.plan.bitsPerToken).toBeLessThanOrEqual(B);
      expect(res.error).toBeCloseTo(brute, 6);
    }
  });
  it('reverse mode returns the fewest bits under an error cap', () => {
    let energy = 0;
    for (const v of d) energy += v * v;
    for (const cap of [0.5, 0.2, 0.05]) {
      const brute = Math.min(...scored.filter((s) => s.err <= cap * cap * energy).map((s) => s.bits));
      const res = allocateBits(d, n, r, { maxRelError: cap, sizes, types });
      expect(res.plan.bitsPerToken).toBe(brute);
      expect(res.error).toBeLessThanOrEqual(cap * cap * energy * (1 + 1e-9));
    }
  });
});

describe('KVTC codec', () => {
  it('undoes tensor-core RoPE exactly', () => {
    const rng = new Rng(9);
    const x = new Float32Array(2 * 3 * 8).map(() => rng.normal()); // [1, H=2, T=3, d=8]
    const rot = Float32Array.from(nn.applyRope(tensor(x, { shape: [1, 2, 3, 8] }), 5).dataSync());
    // to rows [T, H·d]
    const rows = new Float32Array(3 * 16);
    for (let h = 0; h < 2; h++)
      for (let t = 0; t < 3; t++) for (let j = 0; j < 8; j++) rows[t * 16 + h * 8 + j] = rot[(h * 3 + t) * 8 + j]!;
    ropeRows(rows, 3, 16, 0, 2, 8, [5, 6, 7], 10000, true);
    for (let h = 0; h < 2; h++)
      for (let t = 0; t < 3; t++)
        for (let j = 0; j < 8; j++) expect(rows[t * 16 + h * 8 + j]).toBeCloseTo(x[(h * 3 + t) * 8 + j]!, 5);
  });
  it('side information and codes take exactly the planned bytes', () => {
    const plan = makePlan(64, [
      { start: 0, size: 4, type: 'fp8' },
      { start: 4, size: 16, type: 'int4' },
      { start: 20, size: 3, type: 'int2' },
    ]);
    expect(plan.bitsPerToken).toBe(4 * 8 + 16 + 16 * 4 + 32 + 3 * 2 + 32);
    expect(segmentBytes(plan, 10)).toEqual({
      side: 10 * (2 + 4 + 4),
      code: Math.ceil((10 * (32 + 64 + 6)) / 8),
      total: 100 + 128,
    });
  });
  it('round-trips low-rank KV near-losslessly and meets the DP budget', () => {
    const rows = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 256, rank: 4, noise: 0.001 });
    const cal = calibrate(rows, {});
    const plan = fitPlan(cal, rows, { ratio: 8 });
    for (const p of plan.plans) expect(p.bitsPerToken).toBeLessThanOrEqual((32 * 16) / 8);
    const test = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 32, rank: 4, noise: 0.001, start: 300 });
    const back = roundTrip(cal, plan, test);
    expect(relErr(back.k, test.k)).toBeLessThan(0.02);
    expect(relErr(back.v, test.v)).toBeLessThan(0.02);
    const bytes = encodeChunk(cal, plan, test);
    const dec = new ChunkDecoder(cal, plan, bytes, 32, test.positions);
    expect(dec.layer(1).k.length).toBe(32 * 16);
  });
  it('shares side info over token blocks and counts its bytes exactly', () => {
    const rows = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 256, rank: 4, noise: 0.001 });
    const cal = calibrate(rows, {});
    const plan = fitPlan(cal, rows, { ratio: 16 }, { tokenGroup: 16 });
    const test = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 37, rank: 4, noise: 0.001, start: 300 });
    const bytes = encodeChunk(cal, plan, test);
    let expected = 0;
    for (const p of plan.plans) {
      expect(p.bitsPerToken).toBeLessThanOrEqual((32 * 16) / 16);
      const side = p.groups.reduce((a, g) => a + (g.type === 'fp8' ? 2 : 4), 0) * Math.ceil(37 / 16);
      const code = Math.ceil(
        (37 * p.groups.reduce((a, g) => a + g.size * (g.type === 'fp8' ? 8 : Number(g.type.slice(3))), 0)) / 8,
      );
      expected += side + code;
    }
    expect(bytes.length).toBe(expected);
    const back = roundTrip(cal, plan, test);
    expect(relErr(back.v, test.v)).toBeLessThan(0.1);
  });
  it('the reverse plan meets its error cap on held-out rows of the same distribution', () => {
    const rows = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 256, rank: 6, noise: 0.01 });
    const cal = calibrate(rows, { mode: 'per-layer' });
    const plan = fitPlan(cal, rows, { maxRelError: 0.05 });
    const test = lowRankRows({ layers: 2, heads: 2, headDim: 8, n: 64, rank: 6, noise: 0.01, start: 256 });
    const back = roundTrip(cal, plan, test);
    expect(relErr(back.v, test.v)).toBeLessThan(0.1);
  });
});
