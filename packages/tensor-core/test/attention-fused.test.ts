// Attention's fused softmax (scale, causal mask and softmax in one CPU kernel, with a one-kernel VJP) against
// the unfused composition (mul, where, softmax: the path an explicit mask takes) and against a float64
// reference whose gradients are central finite differences. Odd sizes, Lq ≠ Lk, grouped-query heads.
import { afterAll, describe, expect, test, vi } from 'vitest';
import { cpuKernels } from '../src/backends/cpu/kernels.js';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { F, nn, noGrad, setBackend, type Tensor, tensor } from '../src/index.js';
import { scaledSoftmax } from '../src/ops/prims.js';
import { randArr, usePath } from './support.js';

afterAll(async () => {
  setCpuPath('auto');
  await setBackend('cpu');
});

const host = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);

/** An attention case: head counts, lengths, head dim, causal (upper-left, or lower-right with `lowerRight`). */
interface Case {
  hq: number;
  hk: number;
  lq: number;
  lk: number;
  d: number;
  causal: boolean;
  scale?: number;
  lowerRight?: boolean;
}

/** Σ out·G of softmax(scale·q kᵀ, masked) v per head, in float64. Shapes [H, L, d]; k/v heads repeat. */
function sdpaLoss64(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  G: ArrayLike<number>,
  s: Case & { scale: number },
): number {
  // Query i keeps keys j ≤ i + off: off 0 is PyTorch's is_causal (upper-left), Lk − Lq its causal_lower_right.
  const off = s.lowerRight ? s.lk - s.lq : 0;
  let loss = 0;
  for (let h = 0; h < s.hq; h++) {
    const kh = Math.floor(h / (s.hq / s.hk));
    for (let i = 0; i < s.lq; i++) {
      const row: number[] = [];
      for (let j = 0; j < s.lk; j++) {
        let dot = 0;
        for (let c = 0; c < s.d; c++) dot += q[(h * s.lq + i) * s.d + c]! * k[(kh * s.lk + j) * s.d + c]!;
        row.push(s.causal && j > i + off ? Number.NEGATIVE_INFINITY : dot * s.scale);
      }
      const m = Math.max(...row);
      const e = row.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < s.d; c++) {
        let o = 0;
        for (let j = 0; j < s.lk; j++) o += (e[j]! / z) * v[(kh * s.lk + j) * s.d + c]!;
        loss += o * G[(h * s.lq + i) * s.d + c]!;
      }
    }
  }
  return loss;
}

/** Central differences of `f` at every element of `x` (float64). */
function fd(f: (x: Float64Array) => number, x0: ArrayLike<number>, h = 1e-6): Float64Array {
  const x = Float64Array.from(x0);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + h;
    const up = f(x);
    x[i] = keep - h;
    const down = f(x);
    x[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return m;
}

interface Run {
  out: Float32Array;
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

/** SDPA forward and backward of Σ out·G; `unfused` gives the causal mask as a bool tensor (the composite path). */
function run(Q: Float32Array, K: Float32Array, V: Float32Array, G: Float32Array, s: Case, unfused: boolean): Run {
  const q = tensor(Q, { shape: [1, s.hq, s.lq, s.d], requiresGrad: true });
  const k = tensor(K, { shape: [1, s.hk, s.lk, s.d], requiresGrad: true });
  const v = tensor(V, { shape: [1, s.hk, s.lk, s.d], requiresGrad: true });
  const g = tensor(G, { shape: [1, s.hq, s.lq, s.d] });
  // The explicit mask that equals isCausal (upper-left: query i sees keys j ≤ i; lower-right: j ≤ i + Lk − Lq),
  // or all-true for no mask.
  const ones = tensor(new Float32Array(s.lq * s.lk).fill(1), { shape: [s.lq, s.lk] });
  const mask = unfused ? (s.causal ? ones.tril(s.lowerRight ? s.lk - s.lq : 0) : ones).gt(0) : null;
  const out = F.scaledDotProductAttention(q, k, v, {
    isCausal: s.causal && !unfused,
    ...(s.causal && !unfused && s.lowerRight ? { causalVariant: 'lower-right' as const } : {}),
    attnMask: mask,
    scale: s.scale,
  });
  const l = out.mul(g).sum();
  l.backward();
  const r = { out: host(out), dq: host(q.grad!), dk: host(k.grad!), dv: host(v.grad!) };
  for (const t of [q, k, v, g, ones, mask, out, l]) t?.dispose();
  return r;
}

const CASES = [
  { hq: 2, hk: 2, lq: 5, lk: 5, d: 3, causal: true },
  { hq: 2, hk: 1, lq: 3, lk: 7, d: 4, causal: true },
  { hq: 1, hk: 1, lq: 17, lk: 17, d: 1, causal: true, scale: 0.7 },
  { hq: 3, hk: 3, lq: 4, lk: 6, d: 5, causal: false },
  { hq: 1, hk: 1, lq: 7, lk: 3, d: 2, causal: true },
  // Lower-right: a chunk of Lq queries that are the last Lq positions of Lk keys (a prefill over a cache).
  { hq: 2, hk: 1, lq: 3, lk: 7, d: 4, causal: true, lowerRight: true },
  { hq: 2, hk: 2, lq: 5, lk: 5, d: 3, causal: true, lowerRight: true },
  { hq: 1, hk: 1, lq: 1, lk: 6, d: 2, causal: true, lowerRight: true },
];

describe.each(['cpu-wasm', 'cpu-ts'] as const)('fused attention softmax on %s', (path) => {
  test.each(CASES)('%o: equals the unfused composition and the float64 reference', async (s) => {
    await usePath(path);
    const n = (h: number, l: number) => h * l * s.d;
    const Q = randArr(n(s.hq, s.lq), 1 + s.lq);
    const K = randArr(n(s.hk, s.lk), 2 + s.lk);
    const V = randArr(n(s.hk, s.lk), 3 + s.lk);
    const G = randArr(n(s.hq, s.lq), 4 + s.lq);
    const fused = run(Q, K, V, G, s, false);
    const unfused = run(Q, K, V, G, s, true);
    // The fused kernel rounds as mul, where and softmax do; exp may come from a different implementation
    // (wasm vector exp vs Math.exp) when only one of the two sizes reaches the wasm threshold.
    for (const key of ['out', 'dq', 'dk', 'dv'] as const)
      expect(maxRelErr(fused[key], unfused[key]), key).toBeLessThan(path === 'cpu-ts' ? 1e-7 : 2e-6);
    if (path === 'cpu-ts')
      for (const key of ['out', 'dq', 'dk', 'dv'] as const) expect(fused[key]).toEqual(unfused[key]);

    const spec = { ...s, scale: s.scale ?? 1 / Math.sqrt(s.d) };
    const f64 = {
      dq: fd((x) => sdpaLoss64(x, K, V, G, spec), Q),
      dk: fd((x) => sdpaLoss64(Q, x, V, G, spec), K),
      dv: fd((x) => sdpaLoss64(Q, K, x, G, spec), V),
    };
    for (const key of ['dq', 'dk', 'dv'] as const) expect(maxRelErr(fused[key], f64[key]), key).toBeLessThan(2e-5);
    // The output against the float64 forward: Σ out·G with G one-hot per element is the element itself.
    const out64 = Float64Array.from({ length: Q.length }, (_, i) => {
      const e = new Float64Array(Q.length);
      e[i] = 1;
      return sdpaLoss64(Q, K, V, e, spec);
    });
    expect(maxRelErr(fused.out, out64)).toBeLessThan(2e-6);
  });

  test('bit-identical to the composition on a size where both take the wasm exp', async () => {
    await usePath(path);
    const s = { hq: 4, hk: 4, lq: 64, lk: 64, d: 8, causal: true };
    const n = s.hq * s.lq * s.d;
    const [Q, K, V, G] = [1, 2, 3, 4].map((seed) => randArr(n, 100 + seed));
    const fused = run(Q!, K!, V!, G!, s, false);
    const unfused = run(Q!, K!, V!, G!, s, true);
    for (const key of ['out', 'dq', 'dk', 'dv'] as const) expect(fused[key], key).toEqual(unfused[key]);
  });

  test.each([1, 3, 17, 33, 255])(
    'the primitive on a strided view equals it on the contiguous copy (%i keys)',
    async (n) => {
      await usePath(path);
      for (const causal of [0, null]) {
        const base = tensor(randArr(2 * n * 5, n), { shape: [2, n, 5] });
        const view = base.transpose(1, 2); // [2, 5, n], not contiguous
        const copy = view.contiguous();
        expect(host(scaledSoftmax(view, 0.3, causal)!), `causal ${causal}`).toEqual(
          host(scaledSoftmax(copy, 0.3, causal)!),
        );
        for (const t of [base, view, copy]) t.dispose();
      }
    },
  );

  test('the primitive: masked keys get probability 0, a row with none is NaN, gradient 0 there', async () => {
    await usePath(path);
    const X = randArr(12, 9);
    const x = tensor(X, { shape: [3, 4], requiresGrad: true });
    // causal offset −1: row 0 keeps no key, row 1 keeps key 0, row 2 keeps keys 0 and 1.
    const y = scaledSoftmax(x, 2, -1)!;
    const p = host(y);
    expect(Array.from(p.subarray(0, 4)).every(Number.isNaN)).toBe(true);
    expect(Array.from(p.subarray(4, 8))).toEqual([1, 0, 0, 0]);
    const e0 = Math.exp(2 * X[8]!);
    const e1 = Math.exp(2 * X[9]!);
    expect(p[8]).toBeCloseTo(e0 / (e0 + e1), 6);
    expect(Array.from(p.subarray(10))).toEqual([0, 0]);
    const g = tensor(randArr(12, 10), { shape: [3, 4] });
    y.slice(0, 1).mul(g.slice(0, 1)).sum().backward();
    expect(Array.from(host(x.grad!))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, ...host(x.grad!).subarray(8, 10), 0, 0]);
    for (const t of [x, y, g]) t.dispose();
  });
});

test('CausalSelfAttention without a cache takes the fused path and matches its masked form', () => {
  setCpuPath('auto');
  const attn = new nn.CausalSelfAttention({ dModel: 8, nHeads: 2 });
  const x = tensor(randArr(2 * 5 * 8, 77), { shape: [2, 5, 8] });
  const fused = host(attn.forward(x));
  // The same computation through the explicit-mask composite.
  const explicit = noGrad(() => {
    const [B, T] = [2, 5];
    const split = (t: Tensor) => t.reshape([B, T, 2, 4]).transpose(1, 2);
    const q = split(attn.qProj.forward(x));
    const k = split(attn.kProj.forward(x));
    const v = split(attn.vProj.forward(x));
    const ones = tensor(new Float32Array(T * T).fill(1), { shape: [T, T] });
    const o = F.scaledDotProductAttention(q, k, v, { attnMask: ones.tril().gt(0) });
    return host(attn.oProj.forward(o.transpose(1, 2).reshape([B, T, 8])));
  });
  expect(maxRelErr(fused, explicit)).toBeLessThan(1e-6);
});

// The primitive at sizes that reach the wasm SIMD kernels (4096+ elements), odd key counts (vector tails),
// several causal offsets (none kept, partly kept, all kept), against float64: probabilities and the VJP
// dx = y·(g − Σ g·y)·scale, with exact zeros past the kept keys and NaN rows where none is kept.
describe.each(['cpu-wasm', 'cpu-ts'] as const)('scaledSoftmax primitive at wasm sizes on %s', (path) => {
  test.each([1, 3, 17, 33, 255])('%i keys', async (n) => {
    await usePath(path);
    const lq = 7;
    const rows = lq * Math.ceil(4100 / (n * lq));
    const scale = 0.37;
    for (const causal of [null, -2, 0, 3]) {
      const X = randArr(rows * n, n + 11);
      const Gr = randArr(rows * n, n + 12);
      const x = tensor(X, { shape: [rows / lq, lq, n], requiresGrad: true });
      const g = tensor(Gr, { shape: [rows / lq, lq, n] });
      const y = scaledSoftmax(x, scale, causal)!;
      y.mul(g).sum().backward();
      const Y = host(y);
      const DX = host(x.grad!);
      for (let r = 0; r < rows; r++) {
        const nv = causal === null ? n : Math.max(0, Math.min(n, (r % lq) + causal + 1));
        const o = r * n;
        if (nv === 0) {
          expect(Array.from(Y.subarray(o, o + n)).every(Number.isNaN)).toBe(true);
          expect(Array.from(DX.subarray(o, o + n)).every((v) => v === 0)).toBe(true);
          continue;
        }
        const z = Array.from({ length: nv }, (_, j) => Math.fround(X[o + j]! * scale));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        const p = e.map((v) => v / s);
        let gy = 0;
        for (let j = 0; j < nv; j++) gy += Gr[o + j]! * p[j]!;
        for (let j = 0; j < n; j++) {
          if (j >= nv) {
            expect(Y[o + j]).toBe(0);
            expect(DX[o + j]).toBe(0);
            continue;
          }
          expect(Math.abs(Y[o + j]! - p[j]!)).toBeLessThan(2e-7 + 2e-6 * p[j]!);
          const d = p[j]! * (Gr[o + j]! - gy) * scale;
          expect(Math.abs(DX[o + j]! - d)).toBeLessThan(1e-6 * (1 + Math.abs(d)));
        }
      }
      for (const t of [x, g, y]) t.dispose();
    }
  });
});

// Causal attention on the CPU from 512 query rows on runs by blocks of query rows (each sees only the keys up to
// its last row): the same values as the masked composition, gradients within float32 rounding (the key and value
// gradients sum the blocks in another order), and against the float64 reference with finite differences.
describe.each(['cpu-wasm', 'cpu-ts'] as const)('blocked causal attention on %s', (path) => {
  test.each([
    { hq: 2, hk: 1, lq: 516, lk: 516, d: 1, causal: true },
    { hq: 1, hk: 1, lq: 512, lk: 300, d: 2, causal: true },
    { hq: 1, hk: 1, lq: 512, lk: 700, d: 2, causal: true, lowerRight: true },
  ])('%o', async (s) => {
    await usePath(path);
    const calls = vi.spyOn(cpuKernels, 'scaledSoftmax');
    const n = (h: number, l: number) => h * l * s.d;
    const Q = randArr(n(s.hq, s.lq), 5 + s.lk);
    const K = randArr(n(s.hk, s.lk), 6 + s.lk);
    const V = randArr(n(s.hk, s.lk), 7 + s.lk);
    const G = randArr(n(s.hq, s.lq), 8 + s.lk);
    const blocked = run(Q, K, V, G, s, false);
    expect(calls).toHaveBeenCalledTimes(8); // 8 blocks of about 64 query rows
    calls.mockRestore();
    const unfused = run(Q, K, V, G, s, true);
    for (const key of ['out', 'dq', 'dk', 'dv'] as const)
      expect(maxRelErr(blocked[key], unfused[key]), key).toBeLessThan(path === 'cpu-ts' ? 1e-6 : 2e-6);
    // Central differences at every 41st element (the full table takes long at these sizes).
    const spec = { ...s, scale: 1 / Math.sqrt(s.d) };
    const fdAt = (f: (x: Float64Array) => number, x0: Float32Array, got: Float32Array) => {
      const x = Float64Array.from(x0);
      const h = 1e-6;
      let worst = 0;
      for (let i = 0; i < x.length; i += 41) {
        x[i] = x0[i]! + h;
        const up = f(x);
        x[i] = x0[i]! - h;
        const down = f(x);
        x[i] = x0[i]!;
        const want = (up - down) / (2 * h);
        worst = Math.max(worst, Math.abs(got[i]! - want) / (1 + Math.abs(want)));
      }
      return worst;
    };
    expect(
      fdAt((x) => sdpaLoss64(x, K, V, G, spec), Q, blocked.dq),
      'dq',
    ).toBeLessThan(2e-5);
    expect(
      fdAt((x) => sdpaLoss64(Q, x, V, G, spec), K, blocked.dk),
      'dk',
    ).toBeLessThan(2e-5);
    expect(
      fdAt((x) => sdpaLoss64(Q, K, x, G, spec), V, blocked.dv),
      'dv',
    ).toBeLessThan(2e-5);
  });
});

describe('lower-right causal variant: typed errors', () => {
  test('more queries than keys, a variant without isCausal, an unknown variant', () => {
    const q = tensor(randArr(6 * 4, 1), { shape: [1, 1, 6, 4] });
    const k = tensor(randArr(4 * 4, 2), { shape: [1, 1, 4, 4] });
    // Queries 0 and 1 of six would see no key of four.
    expect(() => F.scaledDotProductAttention(q, k, k, { isCausal: true, causalVariant: 'lower-right' })).toThrow(
      /lower-right causal mask needs Lq ≤ Lk.*Lq 6, Lk 4/,
    );
    expect(() => F.scaledDotProductAttention(q, k, k, { causalVariant: 'lower-right' })).toThrow(/needs isCausal/);
    expect(() =>
      F.scaledDotProductAttention(q, k, k, { isCausal: true, causalVariant: 'bottom' as unknown as 'lower-right' }),
    ).toThrow(/'upper-left' or 'lower-right'/);
    // Upper-left with more queries than keys is defined (every query sees key 0) and stays allowed.
    const o = F.scaledDotProductAttention(q, k, k, { isCausal: true });
    expect(Array.from(host(o)).every(Number.isFinite)).toBe(true);
    for (const t of [q, k, o]) t.dispose();
  });
});

test('CausalSelfAttention: a chunk over a cache takes the fused lower-right path and equals its masked form', () => {
  setCpuPath('auto');
  const attn = new nn.CausalSelfAttention({ dModel: 8, nHeads: 2 });
  const x = tensor(randArr(2 * 9 * 8, 78), { shape: [2, 9, 8] });
  const cache = new nn.KVCache();
  const calls = vi.spyOn(cpuKernels, 'scaledSoftmax');
  const outs = [x.slice(1, 0, 4), x.slice(1, 4, 9)].map((c) => host(attn.forward(c, { cache, layer: 0 })));
  // The second chunk through the fused softmax with causal offset 4 (the first, L = T, may take the one-kernel
  // causal attention instead), never the explicit mask's unfused path.
  expect(calls.mock.calls.map((c) => c[2]).at(-1)).toBe(4);
  calls.mockRestore();
  // The second chunk through the explicit bottom-right mask, from the first chunk's keys and values.
  const explicit = noGrad(() => {
    const [B, T, L] = [2, 5, 9];
    const split = (t: Tensor, n: number) => t.reshape([B, n, 2, 4]).transpose(1, 2);
    const q = split(attn.qProj.forward(x.slice(1, 4, 9)), T);
    const k = split(attn.kProj.forward(x), L);
    const v = split(attn.vProj.forward(x), L);
    const ones = tensor(new Float32Array(T * L).fill(1), { shape: [T, L] });
    const o = F.scaledDotProductAttention(q, k, v, { attnMask: ones.tril(L - T).gt(0) });
    return host(attn.oProj.forward(o.transpose(1, 2).reshape([B, T, 8])));
  });
  expect(maxRelErr(outs[1]!, explicit)).toBeLessThan(1e-6);
  // And the whole sequence in one pass gives the same rows.
  const full = host(attn.forward(x));
  const tail = new Float32Array(2 * 5 * 8);
  for (let b = 0; b < 2; b++) tail.set(full.subarray(b * 72 + 32, b * 72 + 72), b * 40);
  expect(maxRelErr(outs[1]!, tail)).toBeLessThan(1e-6);
});
