// The WASM SIMD path of the CPU backend against the TypeScript path and a float64 reference: matmul on
// odd sizes and on transposed, strided, flipped and broadcast operands; strided copies (im2col windows,
// permutes, flips, int32); the committed .wasm against its source.
import { afterEach, describe, expect, test } from 'vitest';
import type { View } from '../src/backends/backend.js';
import * as builds from '../src/backends/cpu/wasm/kernels.wasm.js';
import { Arena, arenaStats, cpuPath, setCpuPath, WasmMemoryError, wasm, wasmCopy } from '../src/backends/cpu/wasm.js';
import {
  cat,
  F,
  full,
  manualSeed,
  pad,
  randint,
  randn,
  type Tensor,
  tensor,
  tidy,
  where,
  zeros,
} from '../src/index.js';
import { floor } from '../src/ops/elementwise.js';
import { unary } from '../src/ops/prims.js';
import { erfc64 } from './conformance/ref64.js';

afterEach(() => setCpuPath('auto'));

/** float64 matmul of the (already broadcast) logical values of two tensors [..., m, k] · [..., k, n]. */
function ref64(a: Tensor, b: Tensor): Float64Array {
  const A = a.dataSync();
  const B = b.dataSync();
  const r = a.shape.length;
  const m = a.shape[r - 2]!;
  const k = a.shape[r - 1]!;
  const n = b.shape[r - 1]!;
  const nb = A.length / (m * k);
  const out = new Float64Array(nb * m * n);
  for (let t = 0; t < nb; t++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[t * m * k + i * k + p]! * B[t * k * n + p * n + j]!;
        out[(t * m + i) * n + j] = s;
      }
  return out;
}

function both(f: () => Tensor): { wasm: Float32Array; ts: Float32Array } {
  setCpuPath('auto');
  const wasm = tidy(() => Float32Array.from(f().dataSync()));
  setCpuPath('ts');
  const ts = tidy(() => Float32Array.from(f().dataSync()));
  setCpuPath('auto');
  return { wasm, ts };
}

/** max |got - want| / (1 + |want|) */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let e = 0;
  for (let i = 0; i < got.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return e;
}

test('Node ≥ 20 runs the wasm path; TESSERA_CPU=ts or setCpuPath forces TypeScript', () => {
  expect(['wasm', 'wasm-fma']).toContain(cpuPath());
  setCpuPath('ts');
  expect(cpuPath()).toBe('ts');
});

test("x·Wᵀ: the weight gradient comes back contiguous in W's layout, equal to gᵀ·x in float64 and bit for bit to the gradient through a row-major Wᵀ", () => {
  for (const [m, k, n] of [
    [3, 17, 33],
    [255, 33, 17],
    [300, 64, 40],
  ] as const) {
    manualSeed(m + k + n);
    const x = randn([m, k]);
    const g = randn([m, n]);
    const w = randn([n, k]); // a linear layer's weight [out, in], used as wᵀ
    w.requiresGrad = true;
    tidy(() => x.matmul(w.transpose(0, 1)).mul(g).sum().backward());
    const gw = w.grad!;
    expect(gw.strides).toEqual([k, 1]);
    // The same product with Wᵀ materialised row-major takes matmul's other gradient formula, aᵀ·g.
    const wt = w.detach().transpose(0, 1).contiguous();
    wt.requiresGrad = true;
    tidy(() => x.matmul(wt).mul(g).sum().backward());
    expect(Float32Array.from(gw.dataSync())).toEqual(
      Float32Array.from(wt.grad!.transpose(0, 1).contiguous().dataSync()),
    );
    expect(relErr(gw.dataSync(), ref64(g.transpose(0, 1).contiguous(), x))).toBeLessThan(1e-5);
  }
});

describe('matmul: wasm vs TypeScript vs float64', () => {
  const sizes = [1, 3, 17, 33, 255];
  manualSeed(1);
  const cases: [number, number, number][] = [];
  for (const m of sizes) for (const n of sizes) cases.push([m, n, sizes[(m + n) % sizes.length]!]);
  cases.push([64, 300, 513], [257, 9, 260], [8, 1024, 31]);
  test.each(cases)('m=%i n=%i k=%i, plain and transposed operands', (m, n, k) => {
    const a = randn([m, k]);
    const b = randn([k, n]);
    const at = randn([k, m]);
    const bt = randn([n, k]);
    const variants: [Tensor, Tensor][] = [
      [a, b],
      [at.transpose(0, 1), b],
      [a, bt.transpose(0, 1)],
      [at.transpose(0, 1), bt.transpose(0, 1)],
    ];
    for (const [x, y] of variants) {
      const want = ref64(x.contiguous(), y.contiguous());
      const { wasm, ts } = both(() => x.matmul(y));
      const tol = 2e-6 * Math.sqrt(k) + 1e-6;
      expect(relErr(wasm, want)).toBeLessThan(tol);
      expect(relErr(ts, want)).toBeLessThan(tol);
      expect(relErr(wasm, ts)).toBeLessThan(tol);
    }
  });

  // The gemm kernel sums each output over p in order, one float32 product and add at a time from 0 in every K
  // block (blocks of ≤ 384, split evenly), then adds the blocks: a float32 emulation of that order must give the
  // same bits for every tile shape (2×16 tiles: odd m, n around 16 and above the 256-column block, two K blocks),
  // which also pins the results to the earlier 4×8 kernel's. Plain SIMD only (the FMA build rounds once per step),
  // and products of ≥ 4096 multiply-adds (smaller ones take the TypeScript loop). One row of A takes the gemv
  // kernel instead: with B's columns contiguous it sums over all p in order (no K blocks); with its rows
  // contiguous (a Linear weight) it keeps four partial sums, p ≡ 0, 1, 2, 3 (mod 4) below k − k mod 4, adds them
  // as (0 + 1) + (2 + 3), then the rest's own sum.
  test.each([
    [1, 65, 70],
    [1, 16, 256],
    [1, 7, 1025],
    [1, 300, 63],
    [1, 1030, 66],
    [2, 16, 130],
    [3, 17, 97],
    [5, 15, 385],
    [7, 33, 64],
    [4, 257, 385],
  ])("m=%i n=%i k=%i: the same bits as a float32 emulation of the kernel's summation order", (m, n, k) => {
    if (cpuPath() !== 'wasm') return;
    manualSeed(m * 1000 + n + k);
    const a = randn([m, k]);
    const bt = randn([n, k]);
    const A = a.dataSync() as Float32Array;
    const B = bt.dataSync() as Float32Array; // B[p, j] = bt[j, p]
    const f = Math.fround;
    const blocks = Math.ceil(k / 384);
    const kstep = Math.ceil(k / blocks);
    const want = new Float32Array(m * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let c = 0;
        for (let k0 = 0; k0 < k; k0 += kstep) {
          let acc = 0;
          for (let p = k0; p < Math.min(k, k0 + kstep); p++) acc = f(acc + f(A[i * k + p]! * B[j * k + p]!));
          c = k0 === 0 ? acc : f(c + acc);
        }
        want[i * n + j] = c;
      }
    // gemv (m = 1): the in-order sum (B's columns contiguous) and the four-lane sum (B's rows contiguous).
    const inOrder = new Float32Array(n);
    const lanes = new Float32Array(n);
    if (m === 1)
      for (let j = 0; j < n; j++) {
        const prod = (p: number) => f(A[p]! * B[j * k + p]!);
        let acc = 0;
        for (let p = 0; p < k; p++) acc = f(acc + prod(p));
        inOrder[j] = acc;
        const k4 = k - (k % 4);
        const L = [0, 0, 0, 0];
        for (let p = 0; p < k4; p++) L[p % 4] = f(L[p % 4]! + prod(p));
        let y = f(f(L[0]! + L[1]!) + f(L[2]! + L[3]!));
        if (k4 < k) {
          let e = 0;
          for (let p = k4; p < k; p++) e = f(e + prod(p));
          y = f(y + e);
        }
        lanes[j] = y;
      }
    const at = a.transpose(0, 1).contiguous();
    for (const x of [a, at.transpose(0, 1)])
      for (const [y, rowsContiguous] of [
        [bt.transpose(0, 1), true],
        [bt.transpose(0, 1).contiguous(), false],
      ] as const) {
        const got = tidy(() => Float32Array.from(x.matmul(y).dataSync()));
        expect(got).toEqual(m === 1 ? (rowsContiguous ? lanes : inOrder) : want);
      }
  });

  test('one-row products that gemv does not take (k past its scratch, B strided both ways, A strided) still agree with float64', () => {
    manualSeed(5);
    const big = randn([1, 384 * 256 + 5]);
    const bBig = randn([384 * 256 + 5, 3]);
    const b2 = randn([256, 130]);
    const a2 = randn([2, 128]);
    // (each product has ≥ 4096 multiply-adds, so the wasm path runs it)
    const aStrided = a2.transpose(0, 1).contiguous().transpose(0, 1).slice(0, 1, 2); // [1, 128], columns 2 apart
    const cases: [Tensor, Tensor][] = [
      [big, bBig], // k > 384 · 256: the packed gemm
      [a2.slice(0, 0, 1), b2.slice(0, 0, 256, 2).slice(1, 0, 130, 2)], // B's rows and columns both strided: gemm
      [aStrided, b2.slice(0, 0, 128).slice(1, 0, 65)], // A strided: gemv copies it to its scratch
    ];
    for (const [x, y] of cases) {
      const want = ref64(x.contiguous(), y.contiguous());
      const { wasm } = both(() => x.matmul(y));
      expect(relErr(wasm, want)).toBeLessThan(2e-6 * Math.sqrt(x.shape[1]!) + 1e-6);
    }
  });

  test('strided, flipped, sliced-with-step and broadcast (stride-0) batch operands', () => {
    manualSeed(2);
    const big = randn([5, 70, 90]);
    const x = big.slice(1, 1, 67, 2).slice(2, 0, 90, 3).flip([2]); // [5, 33, 30], odd strides, negative cols
    const w = randn([30, 17]).flip([0]);
    const w3 = randn([1, 30, 17]).expand([5, 30, 17]); // broadcast batch, stride 0
    const q = randn([4, 3, 65, 16]).permute([1, 0, 2, 3]); // batch dims permuted
    const k = randn([3, 4, 65, 16]);
    const cases: [Tensor, Tensor][] = [
      [x, w],
      [x, w3],
      [q, k.transpose(-2, -1)],
      [randn([1, 255, 3]).expand([3, 255, 3]), randn([3, 3, 255])],
    ];
    for (const [p, r] of cases) {
      const shapeB = [...p.shape.slice(0, -2), ...r.shape.slice(-2)];
      const want = ref64(p.contiguous(), r.ndim === 2 ? r.expand(shapeB).contiguous() : r.contiguous());
      const { wasm, ts } = both(() => p.matmul(r));
      expect(relErr(wasm, want)).toBeLessThan(1e-4);
      expect(relErr(ts, want)).toBeLessThan(1e-4);
    }
  });

  test("a batched A with gapped short rows (one head of [B, T, H, d]) equals its dense copy's product bit for bit", () => {
    manualSeed(7);
    const x = randn([2, 40, 3, 24]).permute([0, 2, 1, 3]); // [2, 3, 40, 24], rows 72 apart
    const y = randn([2, 3, 24, 50]);
    const got = tidy(() => Float32Array.from(x.matmul(y).dataSync()));
    const dense = x.contiguous();
    expect(got).toEqual(tidy(() => Float32Array.from(dense.matmul(y).dataSync())));
    expect(relErr(got, ref64(dense, y))).toBeLessThan(1e-5);
  });

  test('K = 0 gives zeros; one thread gives bit-identical results run to run', () => {
    const z = both(() => randn([40, 0]).matmul(randn([0, 50])));
    expect(z.wasm.every((v) => v === 0)).toBe(true);
    manualSeed(3);
    const a = randn([300, 200]);
    const b = randn([200, 130]);
    const r1 = tidy(() => Float32Array.from(a.matmul(b).dataSync()));
    const r2 = tidy(() => Float32Array.from(a.matmul(b).dataSync()));
    expect(r1).toEqual(r2);
  });

  test('gradients (AᵀB and ABᵀ in the backward pass) agree between the paths', () => {
    manualSeed(4);
    const a0 = randn([37, 65]);
    const b0 = randn([65, 29]);
    const grads = (): Float32Array => {
      const a = a0.detach();
      const b = b0.detach();
      a.requiresGrad = true;
      b.requiresGrad = true;
      tidy(() => a.matmul(b).tanh().sum().backward());
      const g = Float32Array.from([...Array.from(a.grad!.dataSync()), ...Array.from(b.grad!.dataSync())]);
      a.grad!.dispose();
      b.grad!.dispose();
      return g;
    };
    setCpuPath('ts');
    const ts = grads();
    setCpuPath('auto');
    expect(relErr(grads(), ts)).toBeLessThan(1e-5);
  });
});

describe('strided copy (im2col) on the wasm path', () => {
  test('float32 windows, permutes and flips copy exactly', () => {
    manualSeed(5);
    const x = randn([3, 17, 255]);
    const views = [x.permute([2, 0, 1]), x.flip([1, 2]), x.slice(2, 1, 255, 3).transpose(0, 1), x.permute([1, 2, 0])];
    // short rows (1–4 elements) written back to back: the v128-per-row path
    for (const k of [1, 2, 3, 4, 5]) views.push(randn([41, 53, k]).transpose(0, 1));
    for (const v of views) {
      const { wasm, ts } = both(() => v.contiguous());
      expect(wasm).toEqual(ts);
    }
  });

  test('int32 data keeps its bits', () => {
    const i = randint(-2147483647, 2147483647, [33, 255]);
    expect(i.dtype).toBe('int32');
    setCpuPath('auto');
    const w = tidy(() => Int32Array.from(i.transpose(0, 1).contiguous().dataSync()));
    setCpuPath('ts');
    const t = tidy(() => Int32Array.from(i.transpose(0, 1).contiguous().dataSync()));
    expect(w).toEqual(t);
  });

  test('direct: odd sizes, stride-0 and negative strides', () => {
    const data = Float32Array.from({ length: 5000 }, (_, j) => j);
    const shape = [3, 17, 55];
    const strides = [0, -55, 1];
    const got = wasmCopy(data, shape, strides, 17 * 55, 3 * 17 * 55)!;
    expect(got).not.toBeNull();
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 17; b++)
        for (let c = 0; c < 55; c++) expect(got[(a * 17 + b) * 55 + c]).toBe(17 * 55 - b * 55 + c);
  });

  test('conv1d and conv2d (im2col + matmul) agree between the paths, forward and backward', () => {
    manualSeed(6);
    const x = randn([2, 5, 300]);
    const w = randn([7, 5, 3]);
    const x2 = randn([2, 3, 17, 19]);
    const w2 = randn([4, 3, 3, 3]);
    const { wasm, ts } = both(() => F.conv1d(x, w, { padding: 'same' }));
    expect(relErr(wasm, ts)).toBeLessThan(1e-5);
    const c2 = both(() => F.conv2d(x2, w2, { padding: 1, stride: [2, 1] }));
    expect(relErr(c2.wasm, c2.ts)).toBeLessThan(1e-5);
  });
});

describe('the committed kernels', () => {
  const need = ['gemm', 'gemmWorkBytes', 'copyStrided', 'fma'];
  const wasmBuilds = Object.entries(builds).filter(([name]) => name !== 'sourceSha256');
  test.each(wasmBuilds)('%s validates where its features exist and exports the kernels', (name, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    if (name.startsWith('relaxed') && !WebAssembly.validate(bytes)) return; // relaxed SIMD needs a newer engine
    const mod = new WebAssembly.Module(bytes);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const n of need) expect(names).toContain(n);
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
  });

  test('kernels.wasm.ts was built from the current kernels.as (source hash)', async () => {
    const { createHash } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const src = readFileSync(new URL('../src/backends/cpu/wasm/kernels.as', import.meta.url));
    expect(builds.sourceSha256).toBe(createHash('sha256').update(src).digest('hex'));
  });

  // The full rebuild (four asc builds, 5–15 s) runs in CI and with TESSERA_WASM_REBUILD=1.
  test.runIf(process.env.CI || process.env.TESSERA_WASM_REBUILD)(
    'kernels.wasm.ts is byte for byte the build of kernels.as',
    async () => {
      // @ts-expect-error: a plain .mjs script without types
      const { build, render } = await import('../scripts/build-wasm.mjs');
      const { readFileSync } = await import('node:fs');
      const committed = readFileSync(new URL('../src/backends/cpu/wasm/kernels.wasm.ts', import.meta.url), 'utf8');
      expect(render(await build())).toBe(committed);
    },
    60_000,
  );
});

describe('the wasm arena', () => {
  test('matmul and copy results live in the arena and their blocks are reused after dispose', () => {
    manualSeed(7);
    const a = randn([200, 300]);
    const b = randn([300, 100]);
    const step = () => tidy(() => a.matmul(b).transpose(0, 1).contiguous().sum().itemSync());
    step();
    const before = arenaStats()!;
    for (let i = 0; i < 5; i++) step();
    const after = arenaStats()!;
    expect(after.heapBytes).toBe(before.heapBytes);
    expect(after.liveBytes).toBe(before.liveBytes);
    const y = a.matmul(b);
    expect(arenaStats()!.liveBytes).toBeGreaterThan(before.liveBytes);
    y.dispose();
    expect(arenaStats()!.liveBytes).toBe(before.liveBytes);
  });

  test('tensor(), zeros, full and randn put float32/int32 storages in the arena; reused blocks come back zeroed or filled', () => {
    const e = wasm()!;
    const inArena = (t: Tensor) => Arena.of(e).addressOf(t.storage.buf as Float32Array) >= 0;
    const n = 64 * 64;
    const before = arenaStats()!.liveBytes;
    const made = [
      tensor(Array.from({ length: n }, (_, i) => i - 5)),
      tensor(
        Int32Array.from({ length: n }, (_, i) => 3 * i),
        { dtype: 'int32' },
      ),
      full([64, 64], 2.5),
      randn([64, 64]),
    ];
    for (const t of made) expect(inArena(t)).toBe(e.shared);
    expect(made[0]!.dataSync()[7]).toBe(2);
    expect(made[1]!.dataSync()[n - 1]).toBe(3 * (n - 1));
    expect(arenaStats()!.liveBytes - before).toBe(e.shared ? 4 * 16384 : 0);
    // Dispose blocks full of non-zero values, then ask for zeros (and a fill) of the same size class: the
    // freed blocks come back (the arena does not grow) and hold exactly the asked-for values.
    const heap = arenaStats()!.heapBytes;
    for (const t of made) t.dispose();
    expect(arenaStats()!.liveBytes).toBe(before);
    const z = [zeros([n]), zeros([n], { dtype: 'int32' }), full([n], -1, { dtype: 'int32' }), zeros([n])];
    expect(arenaStats()!.heapBytes).toBe(heap);
    for (const [i, t] of z.entries()) expect(Array.from(t.dataSync())).toEqual(new Array(n).fill(i === 2 ? -1 : 0));
    for (const t of z) t.dispose();
    // Small tensors stay plain arrays (their copy into the arena costs less than a block).
    const small = zeros([10]);
    expect(inArena(small)).toBe(false);
    small.dispose();
  });

  test('embedding lookups (gather) and their gradients (scatterAdd) return arena storages with the right values', () => {
    const e = wasm()!;
    manualSeed(12);
    const table = randn([50, 64]);
    table.requiresGrad = true;
    const ids = randint(0, 50, [40]);
    const g = randn([40, 64]);
    const y = F.embedding(ids, table);
    y.mul(g).sum().backward();
    expect(Arena.of(e).addressOf(y.storage.buf as Float32Array) >= 0).toBe(e.shared);
    expect(Arena.of(e).addressOf(table.grad!.storage.buf as Float32Array) >= 0).toBe(e.shared);
    // Against plain loops: row i of y is table[ids[i]]; the gradient sums g's rows per id.
    const T = table.dataSync();
    const I = ids.dataSync();
    const G = g.dataSync();
    const want = new Float32Array(40 * 64);
    const dw = new Float64Array(50 * 64);
    for (let i = 0; i < 40; i++)
      for (let c = 0; c < 64; c++) {
        want[i * 64 + c] = T[I[i]! * 64 + c]!;
        dw[I[i]! * 64 + c]! += G[i * 64 + c]!;
      }
    expect(Float32Array.from(y.dataSync())).toEqual(want);
    expect(relErr(table.grad!.dataSync(), dw)).toBeLessThan(1e-6);
  });

  test('an allocation past the wasm32 limit is a typed error and the backend stays usable', () => {
    const e = wasm()!;
    expect(() => Arena.of(e).alloc(5 * 2 ** 30)).toThrow(WasmMemoryError);
    manualSeed(8);
    const a = randn([70, 80]);
    const b = randn([80, 90]);
    const { wasm: w, ts } = both(() => a.matmul(b));
    expect(relErr(w, ts)).toBeLessThan(1e-5);
  });
});

test('pad on the wasm path equals the TypeScript pad (float32 and int32, strided input, non-zero value)', () => {
  manualSeed(9);
  const x = randn([4, 30, 70]).transpose(1, 2).flip([0]);
  const w = both(() => pad(x, [2, 3, 0, 1, 1, 0], 0.5));
  expect(w.wasm).toEqual(w.ts);
  const i = randint(-1000, 1000, [33, 100]);
  setCpuPath('auto');
  const a = tidy(() => Int32Array.from(pad(i.transpose(0, 1), [1, 2, 3, 4], 7).dataSync()));
  setCpuPath('ts');
  const b = tidy(() => Int32Array.from(pad(i.transpose(0, 1), [1, 2, 3, 4], 7).dataSync()));
  expect(a).toEqual(b);
});

test('cat on the wasm path equals the TypeScript cat (float32 and int32, strided, flipped and empty pieces), and its gradient (unit-step slices: zero padding) too', () => {
  manualSeed(10);
  const a = randn([3, 40, 50]);
  const b = randn([3, 50, 7]).transpose(1, 2).flip([0]); // [3, 7, 50], strided
  const c = randn([3, 0, 50]);
  const d = randn([3, 1, 50]).expand([3, 9, 50]); // stride 0
  for (const dim of [1, -2]) {
    const w = both(() => cat([a, b, c, d], dim));
    expect(w.wasm).toEqual(w.ts);
  }
  const i = randint(-1000, 1000, [64, 70]);
  setCpuPath('auto');
  const x = tidy(() => Int32Array.from(cat([i, i.flip([1])], 1).dataSync()));
  setCpuPath('ts');
  const y = tidy(() => Int32Array.from(cat([i, i.flip([1])], 1).dataSync()));
  expect(x).toEqual(y);
  // Gradients through cat and unit-step slices (pad) against those through stepped slices (scatter).
  const g = randn([3, 66, 50]);
  const grads = (step: number) => {
    const leaf = randn([3, 66, 50]);
    leaf.requiresGrad = true;
    const parts =
      step === 1 ? [leaf.slice(1, 0, 33), leaf.slice(1, 33)] : [leaf.slice(1, 0, 66, 2), leaf.slice(1, 1, 66, 2)];
    const out = cat(parts, 1)
      .mul(step === 1 ? g : cat([g.slice(1, 0, 66, 2), g.slice(1, 1, 66, 2)], 1))
      .sum();
    out.backward();
    return Float32Array.from(leaf.grad!.dataSync());
  };
  expect(grads(1)).toEqual(Float32Array.from(g.dataSync()));
  expect(grads(2)).toEqual(Float32Array.from(g.dataSync()));
});

describe('elementwise kernels on the wasm path', () => {
  test('binary add/sub/mul/div/maximum/minimum equal the TypeScript path bit for bit (odd, broadcast, strided, NaN)', () => {
    manualSeed(10);
    const x = randn([3, 17, 255]);
    const xs = x.flip([2]).slice(1, 0, 17, 2); // [3, 9, 255], negative inner stride
    const row = randn([255]); // broadcast along rows (stride 0)
    const col = randn([3, 9, 1]); // broadcast along the inner dim
    const nan = tensor(Float32Array.from({ length: 4590 }, (_, i) => (i % 7 === 0 ? Number.NaN : i - 2000))).reshape([
      18, 255,
    ]);
    const pairs: [Tensor, Tensor][] = [
      [xs, row],
      [xs, col],
      [col, xs],
      [x.transpose(0, 2), x.transpose(0, 2)],
      [nan, nan.flip([1])],
    ];
    for (const [p, q] of pairs)
      for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
        const f = () => (op === 'maximum' ? p.maximum(q) : op === 'minimum' ? p.minimum(q) : p[op](q));
        const { wasm, ts } = both(f);
        expect(wasm).toEqual(ts);
      }
  });

  test('unary neg/abs/sqrt/relu/reciprocal/floor equal the TypeScript path bit for bit', () => {
    const v = tensor(
      Float32Array.from({ length: 4099 }, (_, i) => (i % 11 === 0 ? Number.NaN : (i - 2049) / 7.3 + (i % 3) * 1e-3)),
    );
    for (const op of ['neg', 'abs', 'sqrt', 'relu', 'reciprocal', 'floor'] as const) {
      const { wasm, ts } = both(() => (op === 'floor' ? floor(v) : v[op]()));
      expect(wasm).toEqual(ts);
    }
  });
});

test('in-place updates (assign) of arena storages equal the TypeScript path', () => {
  manualSeed(14);
  const a = randn([90, 60]);
  const b = randn([90, 60]);
  const d = randn([60, 90]);
  const run = () =>
    tidy(() => {
      const x = a.add(b); // an arena storage on the wasm path (binary is bit-identical between paths)
      x.sub_(d.transpose(0, 1).mul(0.5));
      x.narrow(0, 3, 40).mul_(2);
      return Float32Array.from(x.dataSync());
    });
  setCpuPath('ts');
  const ts = run();
  setCpuPath('auto');
  expect(run()).toEqual(ts);
});

test('compare, where and leading-dim sums on the wasm path equal the TypeScript path bit for bit', () => {
  manualSeed(15);
  const x = randn([6, 33, 255]);
  const y = randn([33, 1]);
  const nan = tensor(Float32Array.from({ length: 6 * 33 * 255 }, (_, i) => (i % 5 === 0 ? Number.NaN : i % 7))).reshape(
    [6, 33, 255],
  );
  const cases: (() => Tensor)[] = [
    () => x.lt(y),
    () => x.transpose(0, 2).ge(0),
    () => nan.eq(nan.flip([2])),
    () => nan.ne(3),
    () => x.le(nan).logicalNot(),
    () => where(x.gt(y), x, y),
    () => where(y.gt(0).expand([6, 33, 255]), x, 0.5),
    () => x.sum([0, 1]),
    () => x.sum(0),
    () => x.permute([2, 0, 1]).contiguous().sum([0]),
    () => x.flip([0]).sum([0, 1]),
    // colsum's widths: 1, 3 and 17 columns (scalar tails), and 2049 (two 1024-column panels and one column).
    () => x.reshape([-1, 1]).sum(0),
    () => x.reshape([-1, 3]).sum(0),
    () => x.reshape([-1, 17]).sum(0),
    () =>
      x
        .reshape([-1])
        .slice(0, 0, 5 * 2049)
        .reshape([5, 2049])
        .sum(0),
  ];
  for (const f of cases) {
    setCpuPath('auto');
    const w = tidy(() => Array.from(f().dataSync()));
    setCpuPath('ts');
    const t = tidy(() => Array.from(f().dataSync()));
    setCpuPath('auto');
    expect(w).toEqual(t);
  }
});

test('the wasm Adam/AdamW step equals the TypeScript fused kernel bit for bit (operands staged from JS arrays, p at an offset)', async () => {
  const { cpuKernels } = await import('../src/backends/cpu/kernels.js');
  const { fusedKernels } = await import('../src/backends/cpu/fused.js');
  const n = 4099;
  const rnd = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);
  const view = (buf: Float32Array, offset = 0): View => ({
    storage: { backend: 'cpu', dtype: 'float32', length: buf.length, buf, refs: 1, version: 0 },
    shape: [n],
    strides: [1],
    offset,
    dtype: 'float32',
  });
  for (const [decoupled, weightDecay] of [
    [false, 0],
    [false, 0.01],
    [true, 0.01],
  ] as const) {
    const s = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay, decoupled, stepSize: 0.01, bc2Sqrt: 0.05 };
    const g = rnd(1);
    const run = (k: typeof fusedKernels.adam) => {
      // p at an offset inside a larger storage, m/v fresh, v non-negative
      const p = new Float32Array(n + 5);
      p.set(rnd(2), 5);
      const m = rnd(3);
      const v = rnd(4).map(Math.abs);
      for (let step = 0; step < 3; step++) k(view(p, 5), view(g), view(m), view(v), s);
      return [p, m, v];
    };
    expect(run(cpuKernels.adam)).toEqual(run(fusedKernels.adam));
  }
});

test('gelu and its derivative on both CPU paths: float64 erfc within a few ulps, the left tail relatively too', () => {
  // Φ(x) = erfc(−x/√2)/2 in float64; GELU = x·Φ, GELU′ = Φ + x·φ. The float32 kernels' error grows with x²
  // (z² = x²/2 is rounded once before exp), hence the bound's 1e-7·x²; GELU′ is scaled by Φ + |x·φ| because
  // it crosses zero near x = −0.75, where its own size says nothing about the error.
  const xs: number[] = [];
  // Over 4 096 elements, so the wasm path runs (smaller arrays take the TypeScript loop).
  for (let x = -12; x <= 12; x += 0.00431) xs.push(x);
  xs.push(0, -0, 1e-30, -1e-30, 1e-3, -1e-3, 30, -30, 200, -200);
  const x = tensor(Float32Array.from(xs));
  for (const path of ['auto', 'ts'] as const) {
    setCpuPath(path);
    const [g, d] = tidy(() => [x.gelu().dataSync(), unary('geluGrad', x).dataSync()].map((a) => Float32Array.from(a)));
    let checked = 0;
    for (let i = 0; i < xs.length; i++) {
      const v = Math.fround(xs[i]!);
      const phi = 0.5 * erfc64(-v / Math.SQRT2);
      const xDensity = (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
      const tol = 4e-7 + 1e-7 * v * v;
      const gelu = v * phi;
      if (Math.abs(gelu) > 1e-36) {
        expect(Math.abs(g[i]! - gelu), `${path} gelu(${v})`).toBeLessThanOrEqual(tol * Math.abs(gelu));
        checked++;
      } else expect(Math.abs(g[i]!), `${path} gelu(${v})`).toBeLessThan(1e-36);
      expect(Math.abs(d[i]! - (phi + xDensity)), `${path} gelu'(${v})`).toBeLessThanOrEqual(
        tol * (phi + Math.abs(xDensity)) + 1e-40,
      );
    }
    expect(checked).toBeGreaterThan(5000);
  }
  setCpuPath('auto');
  const special = tensor([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, ...new Array(4100).fill(0)]);
  const [g, d] = tidy(() => [special.gelu(), unary('geluGrad', special)].map((t) => Array.from(t.dataSync())));
  // gelu(−∞) = −∞·Φ(−∞) = −∞·0: NaN, as x·Φ(x) is in PyTorch.
  expect(g!.slice(0, 3)).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NaN]);
  // gelu′(±∞) = Φ + (±∞)·φ(±∞) = Φ + ∞·0: NaN, as PyTorch's cdf + x·pdf is.
  expect(d!.slice(0, 3)).toEqual([Number.NaN, Number.NaN, Number.NaN]);
});

test('exp, gelu, sigmoid, silu and their derivatives take wasm from 128 elements: odd lengths agree with the TypeScript loop', () => {
  // These go to wasm far below the 4 096 of the cheap ops (a decoding step's [1, 4·d] GELU); the kernel's
  // vector loop must then finish short and odd-length arrays exactly as the TypeScript loop would, to float32
  // rounding. Each TypeScript form is checked against float64 in the tests around this one.
  manualSeed(21);
  const ops = ['exp', 'gelu', 'geluGrad', 'sigmoid', 'silu', 'siluGrad'] as const;
  for (const n of [127, 128, 129, 131, 1000, 1023, 4095]) {
    const x = randn([n]).mul(6);
    for (const op of ops) {
      const { wasm: w, ts } = both(() => unary(op, x));
      expect(w.length).toBe(n);
      // The derivatives cross zero (sums of O(1) terms), so they get a few ulps of 1 besides the relative bound.
      const abs = op.endsWith('Grad') ? 1e-7 : 1e-30;
      for (let i = 0; i < n; i++)
        expect(Math.abs(w[i]! - ts[i]!), `${op} n=${n} i=${i}`).toBeLessThanOrEqual(4e-6 * Math.abs(ts[i]!) + abs);
    }
    x.dispose();
  }
});

test('sigmoid, silu and its derivative on both CPU paths: float64 within a few ulps down to e^−85', () => {
  // 1 − s is e^−x·s in float64 (no cancellation); the derivative crosses zero near x = −1.28, so its error is
  // scaled by s·(1 + |x|·(1 − s)).
  const xs: number[] = [];
  for (let x = -85; x <= 30; x += 0.0231) xs.push(x);
  for (let x = -6; x <= 6; x += 0.00437) xs.push(x);
  xs.push(0, -0, 1e-30, -1e-30);
  expect(xs.length).toBeGreaterThan(4096); // so the wasm path runs
  const x = tensor(Float32Array.from(xs));
  for (const path of ['auto', 'ts'] as const) {
    setCpuPath(path);
    const [sg, sl, sd] = tidy(() =>
      [x.sigmoid(), F.silu(x), unary('siluGrad', x)].map((t) => Float32Array.from(t.dataSync())),
    );
    for (let i = 0; i < xs.length; i++) {
      const v = Math.fround(xs[i]!);
      const s = 1 / (1 + Math.exp(-v));
      const oneMinusS = Math.exp(-v) * s;
      const tol = 4e-7;
      expect(Math.abs(sg[i]! - s), `${path} sigmoid(${v})`).toBeLessThanOrEqual(tol * s);
      expect(Math.abs(sl[i]! - v * s), `${path} silu(${v})`).toBeLessThanOrEqual(tol * Math.abs(v * s));
      const d = s * (1 + v * oneMinusS);
      expect(Math.abs(sd[i]! - d), `${path} silu'(${v})`).toBeLessThanOrEqual(tol * s * (1 + Math.abs(v) * oneMinusS));
    }
  }
  setCpuPath('auto');
  const special = tensor([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, ...new Array(4100).fill(0)]);
  const [sg, sl, sd] = tidy(() =>
    [special.sigmoid(), F.silu(special), unary('siluGrad', special)].map((t) => Array.from(t.dataSync())),
  );
  expect(sg!.slice(0, 3)).toEqual([Number.NaN, 1, 0]);
  // silu(−∞) = −∞·0 and both infinities' derivative (∞·0 inside): NaN, as PyTorch's x·σ(x) and σ·(1 + x·(1 − σ)) are.
  expect(sl!.slice(0, 3)).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NaN]);
  expect(sd!.slice(0, 3)).toEqual([Number.NaN, Number.NaN, Number.NaN]);
});

test('wasm exp is within 1 ulp of the correctly rounded float32 exp, with the IEEE special cases', () => {
  const xs: number[] = [];
  for (let x = -110; x <= 90; x += 0.0137) xs.push(x);
  xs.push(
    0,
    -0,
    1e-30,
    -1e-30,
    88.72,
    88.73,
    -87.3,
    -103.9,
    -104.5,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  );
  xs.push(Number.NaN, 1, 2, 3);
  const x = tensor(Float32Array.from(xs));
  const got = tidy(() => Float32Array.from(x.exp().dataSync()));
  const bits = new Int32Array(got.buffer);
  const want = Float32Array.from(x.dataSync(), (v) => Math.exp(v));
  const wbits = new Int32Array(want.buffer);
  let worst = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(want[i]!)) {
      expect(got[i]).toBeNaN();
      continue;
    }
    if (!Number.isFinite(want[i]!) || want[i] === 0) {
      expect(got[i]).toBe(want[i]);
      continue;
    }
    // denormal results: absolute error below one denormal step of 2^-149 × 4
    if (want[i]! < 1.2e-38) {
      expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(4 * 2 ** -149 + 1e-6 * want[i]!);
      continue;
    }
    worst = Math.max(worst, Math.abs(bits[i]! - wbits[i]!));
  }
  expect(worst).toBeLessThanOrEqual(1);
});
