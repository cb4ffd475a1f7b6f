// The wasm SIMD layer norm / RMS norm and cross-entropy kernels (forward and backward) against a float64
// reference and the TypeScript kernel: odd row lengths (the scalar tails of the 4-lane loops), rows offset far
// from zero, views at an offset into their storage, strided views (which must fall back to the TypeScript
// kernel), ignored and out-of-range targets, and a finite-difference check of the reference's gradient.
import { afterAll, describe, expect, test } from 'vitest';
import type { Storage, View } from '../src/backends/backend.js';
import {
  cpuPath,
  setCpuPath,
  wasmCrossEntropy,
  wasmCrossEntropyBackward,
  wasmLayerNorm,
  wasmLayerNormBackward,
} from '../src/backends/cpu/wasm.js';
import { F, setBackend, tensor } from '../src/index.js';
import { layerNorm64, randArr, rng } from './support.js';

afterAll(async () => {
  setCpuPath('auto');
  await setBackend('cpu');
});

const hasWasm = cpuPath() !== 'ts';

/** The worst |a − b| / (scale + |b|) with scale the largest |b| (errors relative to the data's magnitude). */
function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i]!)) scale = Math.max(scale, Math.abs(b[i]!));
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue;
    w = Math.max(w, Math.abs(a[i]! - b[i]!) / (Math.max(1e-3 * scale, 1e-30) + Math.abs(b[i]!)));
  }
  return w;
}

const storage = (buf: Float32Array): Storage => ({
  backend: 'cpu',
  dtype: 'float32',
  length: buf.length,
  buf,
  refs: 0,
  version: 0,
});

/** A contiguous float32 view of `data` placed `pad` elements into a larger storage. */
function viewOf(data: Float32Array, shape: number[], pad = 0): View {
  const buf = new Float32Array(data.length + 2 * pad);
  buf.set(data, pad);
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((p, s) => p * s, 1));
  return { storage: storage(buf), shape, strides, offset: pad, dtype: 'float32' };
}

type Run = { y: Float32Array; dx: Float32Array; dw?: Float32Array; db?: Float32Array };

/** One layerNorm forward and backward of Σ y·G through the public API on the current CPU path. */
async function run(X: Float32Array, G: Float32Array, W: Float32Array, B: Float32Array, n: number, rms: boolean) {
  const rows = X.length / n;
  const x = tensor(X, { shape: [rows, n], requiresGrad: true });
  const w = tensor(W, { shape: [n], requiresGrad: true });
  const b = rms ? null : tensor(B, { shape: [n], requiresGrad: true });
  const y = rms ? F.rmsNorm(x, [n], { weight: w, eps: 1e-6 }) : F.layerNorm(x, [n], { weight: w, bias: b, eps: 1e-5 });
  const l = y.mul(tensor(G, { shape: [rows, n] })).sum();
  l.backward();
  const out: Run = {
    y: Float32Array.from(await y.data()),
    dx: Float32Array.from(await x.grad!.data()),
    dw: Float32Array.from(await w.grad!.data()),
    db: b ? Float32Array.from(await b.grad!.data()) : undefined,
  };
  for (const t of [x, w, b, y, l]) t?.dispose();
  return out;
}

describe.skipIf(!hasWasm)('wasm layerNorm / rmsNorm', () => {
  test.each([1, 3, 17, 33, 255])('rows of %i: wasm and TypeScript against float64 and each other', async (n) => {
    await setBackend('cpu');
    const rows = Math.ceil(4500 / n); // over the wasm kernels' size threshold
    const X = randArr(rows * n, 7 * n);
    const G = randArr(rows * n, 7 * n + 1);
    const W = randArr(n, 7 * n + 2);
    const B = randArr(n, 7 * n + 3);
    // Rows far from zero: the centring must not cancel. Their gradients are ill-conditioned against float64
    // (both paths read the float32 mean back), so there the two paths are held to each other.
    const Xo = X.map((v) => v + 10);
    for (const rms of [false, true]) {
      const eps = rms ? 1e-6 : 1e-5;
      const ref = layerNorm64(X, W, rms ? new Float64Array(n) : B, G, n, eps, rms);
      const refo = layerNorm64(Xo, W, rms ? new Float64Array(n) : B, G, n, eps, rms);
      setCpuPath('auto');
      const a = await run(X, G, W, B, n, rms);
      const ao = await run(Xo, G, W, B, n, rms);
      setCpuPath('ts');
      const t = await run(X, G, W, B, n, rms);
      const to = await run(Xo, G, W, B, n, rms);
      setCpuPath('auto');
      for (const [what, r, ro] of [
        ['ts', t, to],
        ['wasm', a, ao],
      ] as const) {
        const tag = `${what} ${rms ? 'rms' : 'layer'}Norm n=${n}`;
        expect(worst(r.y, ref.y), `${tag} y`).toBeLessThan(1e-5);
        expect(worst(ro.y, refo.y), `${tag} offset y`).toBeLessThan(1e-5);
        // RMS norm of rows of 1 has dx = rstd·g·eps/(x² + eps): rounding noise against float64. Among 1500
        // rows of 3 some are nearly constant, and their large rstd amplifies the float32 rounding of the
        // saved mean and rstd (the TypeScript path's error is the same).
        if (!(rms && n === 1)) expect(worst(r.dx, ref.dx), `${tag} dx`).toBeLessThan(n <= 3 ? 1e-3 : 5e-5);
        expect(worst(r.dw!, ref.dw), `${tag} dw`).toBeLessThan(1e-5);
        if (!rms) expect(worst(r.db!, ref.db), `${tag} db`).toBeLessThan(1e-5);
      }
      // The same double arithmetic in another summation order: a few float32 ulps apart at most.
      for (const [k, tol] of [
        ['y', 1e-6],
        ['dx', 1e-5],
        ['dw', 1e-6],
        ['db', 1e-6],
      ] as const) {
        if (!a[k]) continue;
        expect(worst(a[k], t[k]!), `wasm vs ts ${k}`).toBeLessThan(tol);
        expect(worst(ao[k]!, to[k]!), `wasm vs ts offset ${k}`).toBeLessThan(tol);
      }
    }
  });

  test('the kernels run on contiguous views at an offset, without affine or gradient outputs', () => {
    setCpuPath('auto');
    const n = 33;
    const rows = 200;
    const X = randArr(rows * n, 91);
    const G = randArr(rows * n, 92);
    const ref = layerNorm64(X, new Float64Array(n).fill(1), new Float64Array(n), G, n, 1e-5, false);
    const f = wasmLayerNorm(viewOf(X, [rows, n], 5), n, null, null, 1e-5, false);
    expect(f).not.toBeNull();
    const [y, mean, rstd] = f!;
    expect(worst(y, ref.y)).toBeLessThan(1e-5);
    const b = wasmLayerNormBackward(
      viewOf(G, [rows, n], 3),
      viewOf(X, [rows, n], 5),
      viewOf(mean, [rows], 1),
      viewOf(rstd, [rows], 2),
      null,
      false,
      false,
      false,
    );
    expect(b).not.toBeNull();
    expect(b![1]).toBeNull();
    expect(b![2]).toBeNull();
    expect(worst(b![0], ref.dx)).toBeLessThan(5e-5);
  });

  test('strided inputs fall back to the TypeScript kernel, with the same results', async () => {
    setCpuPath('auto');
    const [rows, n] = [160, 33];
    const X = randArr(rows * n, 11);
    const G = randArr(rows * n, 12);
    const T = new Float32Array(rows * n); // X transposed: column-major storage of the [rows, n] matrix
    for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) T[i * rows + r] = X[r * n + i]!;
    const strided: View = { ...viewOf(T, [n, rows]), shape: [rows, n], strides: [1, rows] };
    expect(wasmLayerNorm(strided, n, null, null, 1e-5, false)).toBeNull();
    const ref = layerNorm64(X, new Float64Array(n).fill(1), new Float64Array(n), G, n, 1e-5, false);
    const colMajor = tensor(T, { shape: [n, rows], requiresGrad: true });
    const y = F.layerNorm(colMajor.transpose(0, 1), [n]);
    const l = y.mul(tensor(G, { shape: [rows, n] })).sum();
    l.backward();
    expect(worst(Float32Array.from(await y.data()), ref.y)).toBeLessThan(1e-5);
    const gt = colMajor.grad!.transpose(0, 1).contiguous();
    expect(worst(Float32Array.from(await gt.data()), ref.dx)).toBeLessThan(5e-5);
    for (const t of [colMajor, y, l, gt]) t.dispose();
  });

  test('the float64 gradient agrees with finite differences, and the wasm one with it', async () => {
    setCpuPath('auto');
    const [rows, n] = [130, 33];
    const X = randArr(rows * n, 21);
    const G = randArr(rows * n, 22);
    const W = randArr(n, 23);
    const B = randArr(n, 24);
    const X64 = Float64Array.from(X);
    const ref = layerNorm64(X64, W, B, G, n, 1e-5, false);
    const loss = (x: ArrayLike<number>) =>
      layerNorm64(x, W, B, G, n, 1e-5, false).y.reduce((s, v, i) => s + v * G[i]!, 0);
    const h = 1e-6;
    for (const k of [0, 5, 32, 33 * 7 + 3, X.length - 1]) {
      const xp = Float64Array.from(X64);
      const xm = Float64Array.from(X64);
      xp[k] = xp[k]! + h;
      xm[k] = xm[k]! - h;
      const fd = (loss(xp) - loss(xm)) / (2 * h);
      expect(Math.abs(fd - ref.dx[k]!)).toBeLessThan(1e-5 * (1 + Math.abs(fd)));
    }
    const a = await run(X, G, W, B, n, false);
    expect(worst(a.dx, ref.dx)).toBeLessThan(5e-5);
    expect(worst(a.dw!, ref.dw)).toBeLessThan(1e-5);
  });
});

/** Per-row cross-entropy in float64 and the gradient of Σ loss·w (w[r] = 1 + r mod 5); ignored rows 0. */
function crossEntropy64(x: ArrayLike<number>, T: Int32Array, C: number) {
  const N = T.length;
  const loss = new Float64Array(N);
  const dx = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    if (T[r] === -100) continue;
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < C; i++) m = Math.max(m, x[r * C + i]!);
    let s = 0;
    for (let i = 0; i < C; i++) s += Math.exp(x[r * C + i]! - m);
    loss[r] = m + Math.log(s) - x[r * C + T[r]!]!;
    for (let i = 0; i < C; i++)
      dx[r * C + i] = (Math.exp(x[r * C + i]! - m) / s - (i === T[r] ? 1 : 0)) * (1 + (r % 5));
  }
  return { loss, dx };
}

async function runCe(X: Float32Array, T: Int32Array, C: number, targetStride = 1) {
  const N = T.length;
  const x = tensor(X, { shape: [N, C], requiresGrad: true });
  // A strided target: every other element of a longer vector.
  const wide = new Int32Array(N * targetStride);
  for (let r = 0; r < N; r++) wide[r * targetStride] = T[r]!;
  const tw = tensor(wide, { shape: [N * targetStride], dtype: 'int32' });
  const t = targetStride === 1 ? tw : tw.slice(0, 0, N * targetStride, targetStride);
  const loss = F.crossEntropy(x, t, { reduction: 'none' });
  const l = loss
    .mul(
      tensor(
        Float32Array.from({ length: N }, (_, i) => 1 + (i % 5)),
        { shape: [N] },
      ),
    )
    .sum();
  l.backward();
  const out = { loss: Float32Array.from(await loss.data()), dx: Float32Array.from(await x.grad!.data()) };
  for (const u of new Set([x, tw, t, loss, l])) u.dispose();
  return out;
}

describe.skipIf(!hasWasm)('wasm crossEntropy', () => {
  test.each([1, 3, 17, 33, 255])('%i classes: wasm and TypeScript against float64 and each other', async (C) => {
    await setBackend('cpu');
    const N = Math.ceil(4500 / C);
    const X = randArr(N * C, 13 * C, 16);
    const r = rng(C + 1);
    const T = Int32Array.from({ length: N }, (_, i) => (i % 7 === 2 ? -100 : Math.floor(r() * C)));
    const ref = crossEntropy64(X, T, C);
    for (const stride of [1, 2]) {
      setCpuPath('auto');
      const a = await runCe(X, T, C, stride);
      setCpuPath('ts');
      const t = await runCe(X, T, C, stride);
      setCpuPath('auto');
      for (const [what, v] of [
        ['ts', t],
        ['wasm', a],
      ] as const) {
        expect(worst(v.loss, ref.loss), `${what} loss`).toBeLessThan(1e-6);
        // A near-certain row's p − 1 cancels the float32 rounding of p (on both paths).
        expect(worst(v.dx, ref.dx), `${what} dx`).toBeLessThan(5e-4);
      }
      // The wasm exp (≈ 1 ulp) against Math.exp, and the forward's f64 row sum in another order; dx as above.
      expect(worst(a.loss, t.loss)).toBeLessThan(1e-6);
      expect(worst(a.dx, t.dx)).toBeLessThan(5e-5);
    }
  });

  test('the backward takes a broadcast upstream gradient (the mean reduction) in wasm, against float64', async () => {
    setCpuPath('auto');
    const [N, C] = [40, 131];
    const X = randArr(N * C, 21, 8);
    const T = Int32Array.from({ length: N }, (_, i) => (i % 9 === 4 ? -100 : (i * 37) % C));
    const ref = crossEntropy64(X, T, C);
    const x = tensor(X, { shape: [N, C] });
    const t = tensor(T, { shape: [N], dtype: 'int32' });
    const [, lse] = wasmCrossEntropy(x, t, -100)!;
    const l = tensor(lse, { shape: [N] });
    const g0 = tensor([0.25], { shape: [1] });
    const g = g0.expand([N]); // stride 0
    const dx = wasmCrossEntropyBackward(x, t, l, g, -100);
    expect(dx).not.toBeNull();
    // crossEntropy64's dx is the gradient of Σ loss·(1 + r mod 5): rescale to 0.25 per row.
    const want = ref.dx.map((v, i) => (v / (1 + (Math.floor(i / C) % 5))) * 0.25);
    expect(worst(dx!, want)).toBeLessThan(5e-5);
    for (const u of [x, t, l, g0, g]) u.dispose();
  });

  test('rows of −inf and NaN give NaN; strided logits fall back; a bad target still throws', async () => {
    setCpuPath('auto');
    const [N, C] = [64, 80];
    const X = randArr(N * C, 3, 8);
    X.fill(Number.NEGATIVE_INFINITY, 5 * C, 6 * C);
    X[9 * C + 4] = Number.NaN;
    const T = Int32Array.from({ length: N }, (_, i) => i % C);
    const a = await runCe(X, T, C);
    setCpuPath('ts');
    const t = await runCe(X, T, C);
    setCpuPath('auto');
    expect(a.loss[5]).toBeNaN();
    expect(a.loss[9]).toBeNaN();
    expect(worst(a.dx, t.dx)).toBeLessThan(1e-6);
    expect(worst(a.loss, t.loss)).toBeLessThan(1e-6);
    const tt = tensor(T, { shape: [N], dtype: 'int32' });
    const xt = tensor(X, { shape: [C, N] }).transpose(0, 1);
    expect(wasmCrossEntropy(xt, tt, -100)).toBeNull();
    const bad = tensor(
      T.map((v, i) => (i === 40 ? C : v)),
      { shape: [N], dtype: 'int32' },
    );
    const x = tensor(X, { shape: [N, C] });
    await expect(async () => {
      const l = F.crossEntropy(x, bad);
      await l.data();
    }).rejects.toThrow(/out of range/);
    for (const u of [tt, xt, bad, x]) u.dispose();
  });
});
