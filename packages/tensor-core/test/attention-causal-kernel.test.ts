// Causal self-attention in one kernel per direction (P.causalAttention; the CPU wasm path runs each head's
// scores, softmax and product while they are in cache) against the composition it replaces — causalMatmul,
// the fused scaled softmax, causalMatmul — bit for bit, forward and all three gradients, and the forward
// against float64. Odd sizes, heads laid out as [B, L, H, d] (rows with gaps, as a projection's output gives
// them) or contiguous [B, H, L, d], an output gradient with non-unit column stride, and the layouts the kernel
// declines (which must still give the right answer through the composition).
import { afterEach, describe, expect, test, vi } from 'vitest';
import { cpuKernels } from '../src/backends/cpu/kernels.js';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { F, type Tensor, tensor, tidy } from '../src/index.js';
import { causalAttention, causalMatmul, scaledSoftmax } from '../src/ops/prims.js';
import { randArr } from './support.js';

afterEach(() => {
  setCpuPath('auto');
  vi.restoreAllMocks();
});

const host = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);

/** The composition the kernel replaces (scaledDotProductAttention's path without it). */
function composed(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const s = causalMatmul(q, k.transpose(-2, -1), 1, 0)!;
  const p = scaledSoftmax(s, scale, 0)!;
  return causalMatmul(p, v, 2, 0)!;
}

/** softmax(scale·q kᵀ, j ≤ i) v per head in float64; q, k, v row-major [BH, L, d]. */
function attention64(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  BH: number,
  L: number,
  d: number,
  scale: number,
) {
  const out = new Float64Array(BH * L * d);
  for (let h = 0; h < BH; h++)
    for (let i = 0; i < L; i++) {
      const s: number[] = [];
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(h * L + i) * d + c]! * k[(h * L + j) * d + c]!;
        s.push(dot * scale);
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < d; c++) {
        let o = 0;
        for (let j = 0; j <= i; j++) o += (e[j]! / z) * v[(h * L + j) * d + c]!;
        out[(h * L + i) * d + c] = o;
      }
    }
  return out;
}

type Layout = 'BLHd' | 'BHLd';

/** Leaf tensors q, k, v [B, H, L, d] in the given storage layout, and their row-major [B, H, L, d] values. */
function inputs(B: number, H: number, L: number, d: number, layout: Layout, seed: number) {
  const make = (s: number) => {
    const data = randArr(B * H * L * d, s, 1);
    const leaf =
      layout === 'BHLd'
        ? tensor(data, { shape: [B, H, L, d], requiresGrad: true })
        : tensor(data, { shape: [B, L, H, d], requiresGrad: true });
    // A fresh view per use: each backward frees the graph through it.
    return { leaf, view: () => (layout === 'BHLd' ? leaf : leaf.transpose(1, 2)) };
  };
  return [make(seed), make(seed + 1), make(seed + 2)] as const;
}

/** Output and gradients of Σ out·G (G applied through `gView`, which may hand back a strided gradient). */
function run(
  f: (q: Tensor, k: Tensor, v: Tensor) => Tensor,
  ins: ReturnType<typeof inputs>,
  G: Tensor,
  gView: (o: Tensor) => Tensor,
) {
  for (const { leaf } of ins) leaf.grad = null;
  const out = tidy(() => {
    const o = f(ins[0].view(), ins[1].view(), ins[2].view());
    gView(o).mul(G).sum().backward();
    return host(o);
  });
  return { out, grads: ins.map(({ leaf }) => host(leaf.grad!)) };
}

describe('causalAttention (one kernel per direction) equals the composition it replaces', () => {
  const cases: [number, number, number, number, Layout][] = [
    [2, 3, 40, 1, 'BLHd'],
    [2, 2, 33, 17, 'BHLd'],
    [4, 4, 17, 5, 'BLHd'],
    [2, 2, 64, 32, 'BLHd'],
    [1, 1, 255, 33, 'BHLd'],
  ];
  for (const [B, H, L, d, layout] of cases)
    test(`B ${B}, H ${H}, L ${L}, d ${d}, ${layout}`, () => {
      const ins = inputs(B, H, L, d, layout, B * 100 + L);
      const scale = 1 / Math.sqrt(d);
      const spy = vi.spyOn(cpuKernels, 'causalAttention');
      const G = tensor(randArr(B * H * L * d, 7 + d, 1), { shape: [B, H, L, d] });
      const fused = run(
        (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }),
        ins,
        G,
        (o) => o,
      );
      // The kernel ran (and did not decline) for every case here.
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.results[0]!.value).not.toBeNull();
      const ref = run(
        (q, k, v) => composed(q, k, v, scale),
        ins,
        G,
        (o) => o,
      );
      expect(fused.out).toEqual(ref.out);
      for (let i = 0; i < 3; i++) expect(fused.grads[i]).toEqual(ref.grads[i]);
      // And the forward against float64 (row-major [B, H, L, d] values).
      const rm = ins.map(({ view }) => host(view().contiguous()));
      const want = attention64(rm[0]!, rm[1]!, rm[2]!, B * H, L, d, scale);
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(fused.out[i]! - want[i]!));
      expect(err).toBeLessThan(1e-5);
      for (const { leaf } of ins) leaf.dispose();
      G.dispose();
    });

  test('an output gradient with non-unit column stride is copied first; results still equal the composition', () => {
    const [B, H, L, d] = [2, 2, 48, 8];
    const ins = inputs(B, H, L, d, 'BLHd', 5);
    const G = tensor(randArr(B * H * d * L, 9, 1), { shape: [B, H, d, L] });
    const tr = (o: Tensor) => o.transpose(2, 3); // the gradient that reaches o is Gᵀ: column stride L
    const fused = run((q, k, v) => causalAttention(q, k, v, 0.3)!, ins, G, tr);
    const ref = run((q, k, v) => composed(q, k, v, 0.3), ins, G, tr);
    expect(fused.out).toEqual(ref.out);
    for (let i = 0; i < 3; i++) expect(fused.grads[i]).toEqual(ref.grads[i]);
  });

  test('layouts the kernel declines (column stride ≠ 1, the TypeScript path) fall back to the composition', () => {
    const [B, H, L, d] = [2, 2, 40, 6];
    const ins = inputs(B, H, L, d, 'BHLd', 11);
    const G = tensor(randArr(B * H * L * d, 12, 1), { shape: [B, H, L, d] });
    // q with column stride L: [B, H, d, L] storage read through a transpose.
    const qt = tensor(host(ins[0].leaf.transpose(2, 3).contiguous()), { shape: [B, H, d, L] }).transpose(2, 3);
    expect(causalAttention(qt, ins[1].view(), ins[2].view(), 0.5)).toBeNull();
    const a = host(F.scaledDotProductAttention(qt, ins[1].view(), ins[2].view(), { isCausal: true, scale: 0.5 }));
    const b = host(composed(ins[0].view(), ins[1].view(), ins[2].view(), 0.5));
    expect(a).toEqual(b);
    setCpuPath('ts');
    expect(causalAttention(ins[0].view(), ins[1].view(), ins[2].view(), 0.5)).toBeNull();
    const ts = run(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true, scale: 0.5 }),
      ins,
      G,
      (o) => o,
    );
    setCpuPath('auto');
    const wasm = run(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true, scale: 0.5 }),
      ins,
      G,
      (o) => o,
    );
    let err = 0;
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < ts.grads[i]!.length; j++)
        err = Math.max(err, Math.abs(ts.grads[i]![j]! - wasm.grads[i]![j]!) / (1 + Math.abs(ts.grads[i]![j]!)));
    expect(err).toBeLessThan(1e-5);
  });
});
