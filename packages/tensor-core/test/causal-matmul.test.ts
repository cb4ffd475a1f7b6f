// Causal attention's products (P.causalMatmul; entry (i, j) of an [L, L'] matrix is live when j ≤ i + off):
// tri 1 against the float64 product with the dead entries 0, and bit for bit against the plain product's live
// entries; tri 2 (a is 0 past its live entries) and tri 3 (its transpose) bit for bit against the plain product,
// whose sums only add the zeros the kernel skips. Both CPU paths, sizes across the wasm threshold, 2-row strips
// and 16-column panels cut by the diagonal, two K blocks (K > 384), negative and positive offsets. Then causal
// attention, whose products and gradients now run through it, against the explicit-mask composite (plain
// products) bit for bit at sizes the wasm kernels take.
import { afterAll, describe, expect, test } from 'vitest';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { F, type Tensor, tensor } from '../src/index.js';
import { causalMatmul, matmul } from '../src/ops/prims.js';
import { randArr, usePath } from './support.js';

afterAll(() => setCpuPath('auto'));

const host = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);
const live = (i: number, j: number, off: number) => j <= i + off;

/** [B, L, L'] values with the dead entries (j > i + off) set to 0. */
function lowerLive(B: number, L: number, Lp: number, off: number, seed: number): Float32Array {
  const x = randArr(B * L * Lp, seed);
  for (let t = 0; t < B; t++)
    for (let i = 0; i < L; i++) for (let j = 0; j < Lp; j++) if (!live(i, j, off)) x[(t * L + i) * Lp + j] = 0;
  return x;
}

/** float64 batched product of row-major [B, m, k] · [B, k, n]. */
function ref64(A: Float32Array, Bm: Float32Array, B: number, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(B * m * n);
  for (let t = 0; t < B; t++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[(t * m + i) * k + p]! * Bm[(t * k + p) * n + j]!;
        out[(t * m + i) * n + j] = s;
      }
  return out;
}

// [batch, L, L', d, off]: tiny (the TypeScript loop on both paths), strips and panels cut by the diagonal, K > 384.
const SHAPES: [number, number, number, number, number][] = [
  [1, 5, 7, 3, 0],
  [2, 37, 45, 29, 0],
  [2, 37, 45, 29, -3],
  [3, 33, 17, 16, 5],
  [1, 130, 400, 20, 0],
  [1, 21, 400, 33, 290],
];

describe.each(['cpu-wasm', 'cpu-ts'] as const)('causalMatmul on %s', (path) => {
  test.each(SHAPES)('batch %i, L %i, L′ %i, d %i, off %i', async (B, L, Lp, d, off) => {
    await usePath(path);
    // tri 1: q kᵀ-like [B, L, d] · [B, d, L'] (b a transposed view, as attention passes it).
    const Q = randArr(B * L * d, 1 + L);
    const Kt = randArr(B * Lp * d, 2 + Lp);
    const q = tensor(Q, { shape: [B, L, d] });
    const k = tensor(Kt, { shape: [B, Lp, d] });
    const kt = k.transpose(-2, -1);
    const s1 = host(causalMatmul(q, kt, 1, off)!);
    const full = host(matmul(q, kt));
    const KtRow = host(kt.contiguous());
    const want = ref64(Q, KtRow, B, L, d, Lp);
    for (let t = 0; t < B; t++)
      for (let i = 0; i < L; i++)
        for (let j = 0; j < Lp; j++) {
          const o = (t * L + i) * Lp + j;
          if (!live(i, j, off)) expect(s1[o]).toBe(0);
          else {
            expect(s1[o]).toBe(full[o]);
            expect(Math.abs(s1[o]! - want[o]!)).toBeLessThan(1e-5 * (1 + Math.abs(want[o]!)) * Math.sqrt(d));
          }
        }

    // tri 2: p v-like, p [B, L, L'] with zeros past the live entries, v [B, L', d].
    const Pm = lowerLive(B, L, Lp, off, 3 + L);
    const p = tensor(Pm, { shape: [B, L, Lp] });
    const v = tensor(randArr(B * Lp * d, 4 + d), { shape: [B, Lp, d] });
    const o2 = host(causalMatmul(p, v, 2, off)!);
    expect(o2).toEqual(host(matmul(p, v)));
    // The same p as a transposed view (rows adjacent: the kernel packs two strips per pass).
    const pT = p.transpose(-2, -1).contiguous();
    const pv = pT.transpose(-2, -1);
    expect(host(causalMatmul(pv, v, 2, off)!)).toEqual(o2);
    const want2 = ref64(Pm, host(v), B, L, Lp, d);
    for (let i = 0; i < o2.length; i++)
      expect(Math.abs(o2[i]! - want2[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(want2[i]!)) * Math.sqrt(Lp));

    // tri 3: pᵀ dO-like, pᵀ [B, L', L] (a transposed view and its contiguous copy), dO [B, L, d].
    const dO = tensor(randArr(B * L * d, 5 + d), { shape: [B, L, d] });
    const pt = p.transpose(-2, -1);
    const ptc = pt.contiguous();
    const o3 = host(causalMatmul(pt, dO, 3, off)!);
    expect(o3).toEqual(host(matmul(pt, dO)));
    expect(host(causalMatmul(ptc, dO, 3, off)!)).toEqual(host(matmul(ptc, dO)));
    for (const t of [q, k, kt, p, v, dO, pt, ptc, pT, pv]) t.dispose();
  });
});

describe('causal attention through causalMatmul', () => {
  // GQA, L_q < L_k and L_q > L_k (top-left causal: query i keeps keys j ≤ i), on the wasm path.
  test.each([
    { hq: 4, hk: 2, lq: 64, lk: 64, d: 16 },
    { hq: 2, hk: 2, lq: 40, lk: 150, d: 32 },
    { hq: 2, hk: 1, lq: 150, lk: 40, d: 8 },
  ])('%o: output and gradients equal the explicit-mask composite bit for bit', async (s) => {
    await usePath('cpu-wasm');
    const Q = randArr(s.hq * s.lq * s.d, 11);
    const K = randArr(s.hk * s.lk * s.d, 12);
    const V = randArr(s.hk * s.lk * s.d, 13);
    const G = randArr(s.hq * s.lq * s.d, 14);
    const run = (explicit: boolean) => {
      const q = tensor(Q, { shape: [1, s.hq, s.lq, s.d], requiresGrad: true });
      const k = tensor(K, { shape: [1, s.hk, s.lk, s.d], requiresGrad: true });
      const v = tensor(V, { shape: [1, s.hk, s.lk, s.d], requiresGrad: true });
      const g = tensor(G, { shape: [1, s.hq, s.lq, s.d] });
      const ones = tensor(new Float32Array(s.lq * s.lk).fill(1), { shape: [s.lq, s.lk] });
      const mask = explicit ? ones.tril().gt(0) : null;
      const out = F.scaledDotProductAttention(q, k, v, { isCausal: !explicit, attnMask: mask });
      const l = out.mul(g).sum();
      l.backward();
      const r = [host(out), host(q.grad!), host(k.grad!), host(v.grad!)];
      for (const t of [q, k, v, g, ones, mask, out, l]) t?.dispose();
      return r;
    };
    const fused = run(false);
    const composite = run(true);
    for (let i = 0; i < 4; i++) expect(fused[i], ['out', 'dq', 'dk', 'dv'][i]).toEqual(composite[i]);
  });
});
