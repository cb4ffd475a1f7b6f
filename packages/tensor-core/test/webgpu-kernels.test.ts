// The WebGPU kernels added after the conformance table: linear + activation as one matmul dispatch while
// autograd records (gradients against the CPU backend and finite differences of a float64 reference),
// the bitonic sort (stability, NaN and ties as PyTorch, odd lengths, long rows, batched rows, strided
// views), the split-K GEMV for decode-step shapes (odd K, every layout), and the f16-compute matmul
// (against a software emulation of its rounding, and a typed error where the adapter has no shader-f16).
// Skipped with the reason where no adapter exists, never under CI=true.
import {
  argsort,
  FeatureUnsupportedError,
  manualSeed,
  nn,
  noGrad,
  randn,
  setBackend,
  setWebgpuF16Compute,
  type Tensor,
  tensor,
  WebGPUError,
  webgpuAdapter,
} from '@tessera/tensor-core';
import { afterAll, describe, expect, test } from 'vitest';
import { init, webgpu } from '../src/backends/webgpu/index.js';
import { pickMatmul, splitKSplits } from '../src/backends/webgpu/kernels.js';
import { f16ToF32, f32ToF16 } from '../src/io/half.js';
import { erf64, erfc64 } from './conformance/ref64.js';
import { probeWebgpu, randArr, rng } from './support.js';

const skip = await probeWebgpu('webgpu kernels');
afterAll(() => setBackend('cpu'));

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return m;
}

/** Dispatches that `f` encodes (pending work of what it returns included). */
async function dispatchesOf(f: () => Tensor[]): Promise<{ out: Tensor[]; n: number }> {
  const n0 = webgpu.memory().dispatches;
  const out = f();
  await webgpu.sync(...out);
  return { out, n: webgpu.memory().dispatches - n0 };
}

// ------------------------------------------------------------------ linear + activation

type Act = 'relu' | 'gelu' | 'silu' | 'tanh' | 'sigmoid';
const ACTS: Record<Act, (z: number) => number> = {
  relu: (z) => Math.max(z, 0),
  gelu: (z) => 0.5 * z * (1 + erf64(z / Math.SQRT2)),
  silu: (z) => z / (1 + Math.exp(-z)),
  tanh: Math.tanh,
  sigmoid: (z) => 1 / (1 + Math.exp(-z)),
};

const [N, IN, OUT] = [6, 9, 7];

/** L = Σ R ∘ act(x Wᵀ + b) in float64. */
function loss64(act: Act, x: Float64Array, w: Float64Array, b: Float64Array, r: Float64Array): number {
  let l = 0;
  for (let i = 0; i < N; i++)
    for (let o = 0; o < OUT; o++) {
      let z = b[o]!;
      for (let k = 0; k < IN; k++) z += x[i * IN + k]! * w[o * IN + k]!;
      l += r[i * OUT + o]! * ACTS[act](z);
    }
  return l;
}

/** Central differences of loss64 with respect to each of x, w, b. */
function fdGrads(act: Act, x: Float32Array, w: Float32Array, b: Float32Array, r: Float32Array): Float64Array[] {
  const args = [x, w, b].map((a) => Float64Array.from(a));
  const R = Float64Array.from(r);
  const h = 1e-6;
  return args.map((a) =>
    Float64Array.from(a, (v, i) => {
      a[i] = v + h;
      const up = loss64(act, args[0]!, args[1]!, args[2]!, R);
      a[i] = v - h;
      const down = loss64(act, args[0]!, args[1]!, args[2]!, R);
      a[i] = v;
      return (up - down) / (2 * h);
    }),
  );
}

async function linearGrads(backend: 'cpu' | 'webgpu', act: Act, data: Float32Array[]) {
  await setBackend(backend);
  const shapes = [[N, IN], [OUT, IN], [OUT]];
  const leaves = data.slice(0, 3).map((d, i) => tensor(d, { shape: shapes[i]!, requiresGrad: true }));
  const r = tensor(data[3]!, { shape: [N, OUT] });
  const z = leaves[0]!.matmul(leaves[1]!.transpose(0, 1)).add(leaves[2]!);
  const y = z[act]();
  const fwd = backend === 'webgpu' ? await dispatchesOf(() => [y]) : null;
  y.mul(r).sum().backward();
  const grads = await Promise.all(leaves.map(async (t) => Float32Array.from(await t.grad!.data())));
  return { grads, forwardDispatches: fwd?.n ?? 0 };
}

describe.skipIf(skip !== null)('linear + activation in one matmul dispatch while autograd records', () => {
  test.each(Object.keys(ACTS) as Act[])(
    '%s: one forward dispatch, gradients match the CPU and finite differences',
    async (act) => {
      const g = rng(11);
      // Pre-activations kept away from relu's kink (|z| ≥ 0.05), so finite differences stay smooth.
      const data = [N * IN, OUT * IN, OUT, N * OUT].map((n) => Float32Array.from({ length: n }, () => g() * 2 - 1));
      const gpu = await linearGrads('webgpu', act, data);
      const cpu = await linearGrads('cpu', act, data);
      const fd = fdGrads(act, data[0]!, data[1]!, data[2]!, data[3]!);
      expect(gpu.forwardDispatches).toBe(1);
      for (let i = 0; i < 3; i++) {
        expect(maxRelDiff(gpu.grads[i]!, cpu.grads[i]!), `${act} grad ${i} vs cpu`).toBeLessThan(2e-5);
        expect(maxRelDiff(gpu.grads[i]!, fd[i]!), `${act} grad ${i} vs finite differences`).toBeLessThan(2e-4);
      }
    },
  );

  // 'tiled' is the automatic choice on GPUs for these aligned shapes: it must read Wᵀ without a copy.
  test.each(['auto', 'tiled'] as const)(
    'an MLP forward in training is one dispatch per Linear (2-D and 3-D inputs), and trains as on the CPU (%s)',
    async (variant) => {
      const run = async (backend: 'cpu' | 'webgpu', shape: number[]) => {
        await setBackend(backend);
        if (backend === 'webgpu') webgpu.setMatmulVariant(variant);
        manualSeed(8);
        const m = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 12), new nn.GELU());
        const x = randn(shape);
        // Random inits are lazy chains too: run them before counting.
        if (backend === 'webgpu') await webgpu.sync(x, ...m.parameters());
        const n0 = backend === 'webgpu' ? webgpu.memory().dispatches : 0;
        const y = m.forward(x);
        if (backend === 'webgpu') await webgpu.sync(y);
        const n = backend === 'webgpu' ? webgpu.memory().dispatches - n0 : 0;
        y.square().mean().backward();
        if (backend === 'webgpu') webgpu.setMatmulVariant('auto');
        const grads: number[] = [];
        for (const p of m.parameters()) grads.push(...Array.from(await p.grad!.data()));
        return { n, grads };
      };
      for (const shape of [
        [5, 8],
        [2, 3, 8],
      ]) {
        const gpu = await run('webgpu', shape);
        const cpu = await run('cpu', shape);
        expect(gpu.n, `[${shape}]`).toBe(2);
        expect(maxRelDiff(gpu.grads, cpu.grads), `[${shape}]`).toBeLessThan(1e-5);
      }
    },
  );

  test.each(['register', 'register4', 'tiled', 'gemv', 'gemvSplitK'] as const)(
    'every matmul kernel stores the pre-activation beside the activation (%s)',
    async (variant) => {
      // Aligned shapes (the vec4 kernels' layout); 4 rows, so the GEMVs apply too; K splits in 2 for split-K.
      const [M, K, N] = [4, 512, 12];
      const run = async (backend: 'cpu' | 'webgpu') => {
        await setBackend(backend);
        const x = tensor(randArr(M * K, 51), { shape: [M, K], requiresGrad: true });
        const w = tensor(randArr(K * N, 52, 0.2), { shape: [K, N], requiresGrad: true });
        const b = tensor(randArr(N, 53), { shape: [N], requiresGrad: true });
        const z = x.matmul(w).add(b);
        const y = z.gelu();
        let n = 0;
        if (backend === 'webgpu') {
          const n0 = webgpu.memory().dispatches;
          await webgpu.sync(y);
          n = webgpu.memory().dispatches - n0;
          expect(webgpu.lastMatmul()).toBe(variant);
          // z came from the same dispatch: reading it runs nothing.
          const n1 = webgpu.memory().dispatches;
          await webgpu.sync(z);
          expect(webgpu.memory().dispatches).toBe(n1);
        }
        y.mul(tensor(randArr(M * N, 54), { shape: [M, N] }))
          .sum()
          .backward();
        const out = [y, z, x.grad!, w.grad!, b.grad!];
        return { n, values: (await Promise.all(out.map(async (t) => Array.from(await t.data())))).flat() };
      };
      const cpu = await run('cpu');
      webgpu.setMatmulVariant(variant);
      try {
        const gpu = await run('webgpu');
        expect(gpu.n).toBe(variant === 'gemvSplitK' ? 2 : 1);
        expect(maxRelDiff(gpu.values, cpu.values)).toBeLessThan(2e-5);
      } finally {
        webgpu.setMatmulVariant('auto');
      }
    },
  );

  test('the pre-activation comes from the same dispatch, whichever is read first; frees are safe', async () => {
    await setBackend('webgpu');
    const x = tensor(randArr(24, 1), { shape: [4, 6], requiresGrad: true });
    const w = tensor(randArr(30, 2), { shape: [6, 5], requiresGrad: true });
    const bias = tensor(randArr(5, 3));
    const want = async () => {
      const zs = Array.from(await noGrad(() => x.matmul(w).add(bias)).data());
      return { z: zs, y: zs.map((v) => Math.tanh(v)) };
    };
    const ref = await want();
    // Reading z first runs the activation's dispatch, which stores z too.
    const z1 = x.matmul(w).add(bias);
    const y1 = z1.tanh();
    const a = await dispatchesOf(() => [z1]);
    expect(a.n).toBe(1);
    const b = await dispatchesOf(() => [y1]);
    expect(b.n).toBe(0);
    expect(maxRelDiff(await z1.data(), ref.z)).toBeLessThan(1e-6);
    expect(maxRelDiff(await y1.data(), ref.y)).toBeLessThan(1e-6);
    // The activation freed unrun: z still computes (on its own).
    const z2 = x.matmul(w).add(bias);
    const y2 = z2.tanh();
    y2.dispose();
    expect(maxRelDiff(await z2.data(), ref.z)).toBeLessThan(1e-6);
    // The pre-activation freed unrun (nothing saved it: no input requires grad): y alone.
    const xc = x.detach();
    const z3 = xc.matmul(w.detach()).add(bias);
    const y3 = z3.tanh();
    z3.dispose();
    expect(maxRelDiff(await y3.data(), ref.y)).toBeLessThan(1e-6);
  });
});

// ------------------------------------------------------------------ sort

/** The CPU's sort (stable; NaN largest; descending reverses the order but keeps ties by index). */
async function sortOn(backend: 'cpu' | 'webgpu', t: () => Tensor, dim: number, descending: boolean) {
  await setBackend(backend);
  const s = t().sort(dim, descending);
  return { values: Array.from(await s.values.data()), indices: Array.from(await s.indices.data()) };
}

describe.skipIf(skip !== null)('gelu', () => {
  test('gelu and its derivative keep their relative accuracy in the left tail (Φ from erfc, not 1 + erf)', async () => {
    // In f32, 1 + erf(x/√2) cancels to 0 below x ≈ −5.5; the kernels compute erfc instead.
    await setBackend('webgpu');
    const xs = Array.from({ length: 64 }, (_, i) => -12 + (9 * i) / 63); // −12 … −3
    const x = tensor(xs, { requiresGrad: true });
    const y = x.gelu();
    y.sum().backward();
    const [got, grad] = [await y.data(), await x.grad!.data()];
    for (let i = 0; i < xs.length; i++) {
      const v = Math.fround(xs[i]!);
      const phi = 0.5 * erfc64(-v / Math.SQRT2);
      const xDensity = (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
      // GPU exp is not correctly rounded; 1e-4 relative still tells erfc (≈ 1e-6 off) from the cancelled 0.
      expect(Math.abs(got[i]! - v * phi), `gelu(${v})`).toBeLessThanOrEqual(1e-4 * Math.abs(v * phi));
      expect(Math.abs(grad[i]! - (phi + xDensity)), `gelu'(${v})`).toBeLessThanOrEqual(
        1e-4 * (phi + Math.abs(xDensity)),
      );
    }
  });
});

describe.skipIf(skip !== null)('bitonic sort', () => {
  const cases: [string, number[], number, () => number][] = [];
  const g = rng(5);
  // Few distinct values (ties everywhere), NaN, ±0 and ±inf mixed in.
  const special = () => {
    const u = g();
    if (u < 0.05) return Number.NaN;
    if (u < 0.1) return u < 0.075 ? -0 : 0;
    if (u < 0.13) return u < 0.115 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    return Math.floor(g() * 7) - 3;
  };
  cases.push(['one odd row', [37], 0, special]);
  cases.push(['batched rows, odd length', [5, 3, 13], 2, special]);
  cases.push(['sort along a middle dim', [4, 19, 3], 1, special]);
  cases.push(['a row longer than one workgroup tile (2048)', [2, 5001], 1, special]);
  cases.push(['long row of distinct values', [1, 4500], 1, () => g() * 100 - 50]);
  cases.push(['length 1', [6, 1], 1, special]);
  for (const [name, shape, dim, gen] of cases)
    for (const descending of [false, true])
      test(`${name}${descending ? ', descending' : ''} matches the CPU (values and indices)`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = Array.from({ length: n }, gen);
        const make = () => tensor(data).reshape(shape);
        const cpu = await sortOn('cpu', make, dim, descending);
        const gpu = await sortOn('webgpu', make, dim, descending);
        expect(gpu.indices).toEqual(cpu.indices);
        expect(gpu.values.map((v) => (Object.is(v, -0) ? '-0' : v))).toEqual(
          cpu.values.map((v) => (Object.is(v, -0) ? '-0' : v)),
        );
      });

  test('PyTorch semantics by hand: NaN last ascending and first descending, ties by index, -0 ties +0', async () => {
    await setBackend('webgpu');
    const x = tensor([2, Number.NaN, -0, 1, 0, 2, Number.NaN, -1]);
    const up = x.sort();
    expect(Array.from(await up.indices.data())).toEqual([7, 2, 4, 3, 0, 5, 1, 6]);
    const down = x.sort(0, true);
    expect(Array.from(await down.indices.data())).toEqual([1, 6, 0, 5, 3, 2, 4, 7]);
    const top = x.topk(3, 0, false);
    expect(Array.from(await top.values.data())).toEqual([-1, -0, 0]);
    expect(Array.from(await argsort(tensor([3, 1, 2, 1]), 0, true).data())).toEqual([0, 2, 1, 3]);
  });

  test('int32, bool, float16, bfloat16 and strided views', async () => {
    for (const [dtype, data] of [
      ['int32', [5, -2147483648, 3, 2147483647, -1, 3, 0]],
      ['bool', [1, 0, 1, 1, 0, 0, 1]],
      ['float16', [1.5, -2, 65504, -65504, 0.5, 1.5, -0.25]],
      ['bfloat16', [1.5, -2, 3e38, -3e38, 0.5, 1.5, -0.25]],
    ] as const) {
      const base = () => tensor(Array.from(data), { dtype });
      const make = () => base().reshape([7, 1]).expand([7, 3]).transpose(0, 1);
      // By value as stored, stable (test/half-tensors.test.ts checks the CPU backend the same way).
      await setBackend('webgpu');
      const stored = Array.from(await base().float().data());
      const order = Array.from(stored, (_, i) => i).sort((p, q) => stored[p]! - stored[q]!);
      const gpu = await sortOn('webgpu', make, 1, false);
      expect(gpu.indices, dtype).toEqual([0, 1, 2].flatMap(() => order));
      const vals = Array.from(await make().sort(1).values.float().data());
      expect(vals, dtype).toEqual([0, 1, 2].flatMap(() => order.map((i) => stored[i]!)));
    }
    const flipped = () =>
      tensor(Array.from(randArr(60, 9)))
        .reshape([6, 10])
        .flip(1)
        .slice(0, 1, 5);
    expect(await sortOn('webgpu', flipped, 0, true)).toEqual(await sortOn('cpu', flipped, 0, true));
  });

  test('gradients flow through sort and topk as on the CPU', async () => {
    const run = async (backend: 'cpu' | 'webgpu') => {
      await setBackend(backend);
      const x = tensor([0.3, -1, 2, 0.3, 5, -4, 1.5], { requiresGrad: true });
      const t = x.topk(3);
      t.values
        .mul(tensor([1, 2, 3]))
        .sum()
        .backward();
      return Array.from(await x.grad!.data());
    };
    expect(await run('webgpu')).toEqual(await run('cpu'));
  });
});

// ------------------------------------------------------------------ split-K GEMV

test('the split-K GEMV is chosen for few rows and long K on GPUs, the barrier-free GEMV on software adapters', () => {
  const at = (M: number, K: number, software: boolean) => pickMatmul({ M, K, software, aligned: true, v4: true });
  expect(at(1, 4096, false)).toBe('gemvSplitK');
  expect(at(4, 256, false)).toBe('gemvSplitK');
  expect(at(4, 255, false)).toBe('gemv');
  expect(at(5, 4096, false)).toBe('tiled');
  expect(at(1, 4096, true)).toBe('gemv');
  expect(at(64, 4096, true)).toBe('register4');
  // K split over workgroups too when the columns are few, never below 256 of K per chunk.
  expect(splitKSplits(6, 4096)).toBe(16);
  expect(splitKSplits(1, 777)).toBe(3);
  expect(splitKSplits(1, 257)).toBe(1);
  expect(splitKSplits(1024, 4096)).toBe(1);
});

describe.skipIf(skip !== null)('split-K GEMV (decode-step shapes)', () => {
  const shapes: [string, number, number, number, boolean][] = [
    // name, M, K, N, B given as the transpose of a row-major [N, K] weight (as nn.Linear passes it)
    ['M 1, odd K, weight transposed', 1, 1031, 37, true],
    ['M 3, odd K, row-major B', 3, 777, 45, false],
    ['M 4, K 4096', 4, 4096, 24, true],
    ['M 2, K just past the threshold, odd N', 2, 257, 5, false],
  ];
  for (const variant of ['auto', 'gemvSplitK'] as const)
    test.each(shapes)(`%s (${variant}) matches the CPU`, async (_name, M, K, N, transposed) => {
      const a = randArr(M * K, 21);
      const b = randArr(K * N, 22);
      const run = async (backend: 'cpu' | 'webgpu') => {
        await setBackend(backend);
        const A = tensor(Array.from(a)).reshape([M, K]);
        const B = transposed
          ? tensor(Array.from(b)).reshape([N, K]).transpose(0, 1)
          : tensor(Array.from(b)).reshape([K, N]);
        const bias = tensor(Array.from(randArr(N, 23)));
        return Float32Array.from(await noGrad(() => A.matmul(B).add(bias).relu()).data());
      };
      const cpu = await run('cpu');
      webgpu.setMatmulVariant(variant);
      try {
        await setBackend('webgpu');
        const n0 = webgpu.memory().dispatches;
        const aligned = K % 4 === 0 && N % 4 === 0;
        const gpu = await run('webgpu');
        // Bias and relu in the GEMV's store; a second pass when K is also split over workgroups.
        const gx = Math.ceil(N / (transposed ? 4 : 64));
        const twoPass = webgpu.lastMatmul() === 'gemvSplitK' && splitKSplits(gx, K) > 1;
        expect(webgpu.memory().dispatches - n0).toBe(twoPass ? 2 : 1);
        // float32 sums of K terms in another order: √K·ε relative to the row's magnitude.
        expect(maxRelDiff(gpu, cpu)).toBeLessThan(2e-5 * Math.sqrt(K / 64));
        if (variant === 'auto')
          expect(webgpu.lastMatmul()).toBe(
            pickMatmul({ M, K, software: webgpu.adapter().software, aligned, v4: false }),
          );
      } finally {
        webgpu.setMatmulVariant('auto');
      }
    });
});

describe.skipIf(skip !== null)('split-K over workgroups', () => {
  test('batched decode attention P·V (few columns, long K) with a residual epilogue, in both passes', async () => {
    // 6 heads × [1, 1000] · [1000, 16]: 1 workgroup of columns per head, so K splits in 3 chunks.
    const run = async (backend: 'cpu' | 'webgpu') => {
      await setBackend(backend);
      const p = tensor(randArr(6 * 1000, 41), { shape: [6, 1, 1000] }).softmax(-1);
      const v = tensor(randArr(6 * 1000 * 16, 42), { shape: [6, 1000, 16] });
      const res = tensor(randArr(6 * 16, 43), { shape: [6, 1, 16] });
      if (backend === 'webgpu') await webgpu.sync(p, v, res);
      const n0 = backend === 'webgpu' ? webgpu.memory().dispatches : 0;
      const y = noGrad(() => p.matmul(v).add(res));
      if (backend === 'webgpu') {
        await webgpu.sync(y);
        // The partial sums, then one pass that adds them and the residual.
        expect(webgpu.memory().dispatches - n0).toBe(2);
      }
      return Float32Array.from(await y.data());
    };
    const cpu = await run('cpu');
    webgpu.setMatmulVariant('gemvSplitK');
    try {
      const gpu = await run('webgpu');
      expect(webgpu.lastMatmul()).toBe('gemvSplitK');
      expect(splitKSplits(6, 1000)).toBe(3);
      expect(maxRelDiff(gpu, cpu)).toBeLessThan(1e-5);
    } finally {
      webgpu.setMatmulVariant('auto');
    }
  });
});

// ------------------------------------------------------------------ f16 compute

/** f32 → nearest f16 → f32, as WGSL's f16() conversion rounds. */
const toHalf = (v: number) => f16ToF32(f32ToF16(Float32Array.of(v)))[0]!;

describe.skipIf(skip !== null)('f16 compute (f16 products, f32 accumulation)', () => {
  test('matches a software emulation of its rounding, not the float32 product', async () => {
    await setBackend('webgpu');
    if (!webgpu.adapter().f16) {
      console.warn(`f16 compute test skipped: ${webgpu.adapter().name} has no shader-f16`);
      expect(() => webgpu.setF16Compute(true)).toThrow(WebGPUError);
      return;
    }
    /** Emulation: operands rounded to f16, each product rounded to f16, sums in float64. */
    const emulate = (M: number, K: number, N: number) => {
      const a = randArr(M * K, 31, 8);
      const b = randArr(K * N, 32, 8);
      const emu = new Float64Array(M * N);
      const exact = new Float64Array(M * N);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++)
          for (let k = 0; k < K; k++) {
            emu[i * N + j] += toHalf(toHalf(a[i * K + k]!) * toHalf(b[k * N + j]!));
            exact[i * N + j] += a[i * K + k]! * b[k * N + j]!;
          }
      return { a, b, emu, exact };
    };
    await setWebgpuF16Compute(true);
    try {
      // A few rows and a long K (split-K GEMV, K split over 2 workgroups), more rows (register kernel);
      // forced kernels fall back to the f16-capable ones.
      for (const [M, K, N] of [
        [5, 67, 9],
        [2, 600, 9],
      ] as const)
        for (const variant of ['auto', 'gemv', 'gemvSplitK', 'register4', 'tiled'] as const) {
          const { a, b, emu, exact } = emulate(M, K, N);
          webgpu.setMatmulVariant(variant);
          const A = tensor(Array.from(a)).reshape([M, K]);
          const B = tensor(Array.from(b)).reshape([K, N]);
          const got = await noGrad(() => A.matmul(B)).data();
          const scale = Math.sqrt(K) * 16;
          let errEmu = 0;
          let errExact = 0;
          for (let i = 0; i < M * N; i++) {
            errEmu = Math.max(errEmu, Math.abs(got[i]! - emu[i]!) / scale);
            errExact = Math.max(errExact, Math.abs(got[i]! - exact[i]!) / scale);
          }
          // f32 accumulation of the same f16 products: agrees to float32 rounding; the float32 product
          // differs by f16 rounding (~2^-11 relative per term), a hundred times more.
          expect(errEmu, variant).toBeLessThan(2e-6);
          expect(errExact, variant).toBeGreaterThan(2e-5);
        }
    } finally {
      webgpu.setF16Compute(false);
      webgpu.setMatmulVariant('auto');
    }
  });

  test('f16 half-words pack and unpack as the CPU converts them (software emulation of the packing)', async () => {
    await setBackend('webgpu');
    const vals = [0, -0, 1, -1.5, 65504, 65520, 1e-8, 5.96e-8, 6.1e-5, 0.1, 3.3, Number.NaN, 1e6, -1e6];
    const got = Array.from(await tensor(vals).to('float16').float().data());
    const want = Array.from(f16ToF32(f32ToF16(Float32Array.from(vals))));
    expect(got.map(String)).toEqual(want.map(String));
  });

  test('setF16Compute on an adapter without shader-f16 is a typed error naming the adapter', async () => {
    // The real adapter, with shader-f16 hidden from its feature list.
    const { create } = (await import(/* @vite-ignore */ 'webgpu')) as { create(f: string[]): GPU };
    const real = create([]);
    const hide = (a: GPUAdapter) =>
      new Proxy(a, {
        get(t, p) {
          if (p === 'features') return new Set([...t.features].filter((f) => f !== 'shader-f16'));
          const v = Reflect.get(t, p, t);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    const gpu = { requestAdapter: async (o?: GPURequestAdapterOptions) => hide((await real.requestAdapter(o))!) };
    await init({ gpu: gpu as unknown as GPU });
    try {
      expect((await webgpuAdapter()).f16).toBe(false);
      expect(() => webgpu.setF16Compute(true)).toThrow(FeatureUnsupportedError);
      await expect(setWebgpuF16Compute(true)).rejects.toThrow(/does not expose the WebGPU feature 'shader-f16'/);
      await expect(setWebgpuF16Compute(true)).rejects.toThrow(WebGPUError);
      await setWebgpuF16Compute(false);
    } finally {
      await init({ gpu: real });
      await setBackend('cpu');
    }
  });
});
