// The wasm SIMD layer norm / RMS norm kernels (forward and backward) against a float64 reference and the
// TypeScript kernel: odd row lengths (the scalar tails of the 4-lane loops), rows offset far from zero, views
// at an offset into their storage, strided views (which must fall back to the TypeScript kernel), and a
// finite-difference check of the reference's gradient.
import { afterAll, describe, expect, test } from 'vitest';
import type { Storage, View } from '../src/backends/backend.js';
import { cpuPath, setCpuPath, wasmLayerNorm, wasmLayerNormBackward } from '../src/backends/cpu/wasm.js';
import { F, setBackend, tensor } from '../src/index.js';
import { randArr } from './support.js';

afterAll(async () => {
  setCpuPath('auto');
  await setBackend('cpu');
});

const hasWasm = cpuPath() !== 'ts';

interface Ln64 {
  y: Float64Array;
  dx: Float64Array;
  dw: Float64Array;
  db: Float64Array;
}

/** layerNorm (or rmsNorm) of rows of n with weight w and bias b in float64, and the gradients of Σ y·G. */
function layerNorm64(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  G: ArrayLike<number>,
  n: number,
  eps: number,
  rms: boolean,
): Ln64 {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(n);
  const db = new Float64Array(n);
  for (let r = 0; r < x.length; r += n) {
    let mu = 0;
    if (!rms) for (let i = 0; i < n; i++) mu += x[r + i]! / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r + i]! - mu) ** 2 / n;
    const rs = 1 / Math.sqrt(v + eps);
    let sg = 0;
    let sgx = 0;
    for (let i = 0; i < n; i++) {
      const xh = (x[r + i]! - mu) * rs;
      sg += G[r + i]! * w[i]!;
      sgx += G[r + i]! * w[i]! * xh;
    }
    const a = rms ? 0 : sg / n;
    const c = sgx / n;
    for (let i = 0; i < n; i++) {
      const xh = (x[r + i]! - mu) * rs;
      y[r + i] = xh * w[i]! + b[i]!;
      dx[r + i] = rs * (G[r + i]! * w[i]! - a - xh * c);
      dw[i] = dw[i]! + G[r + i]! * xh;
      db[i] = db[i]! + G[r + i]!;
    }
  }
  return { y, dx, dw, db };
}

/** The worst |a − b| / (scale + |b|) with scale the largest |b| (errors relative to the data's magnitude). */
function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let w = 0;
  for (let i = 0; i < a.length; i++)
    w = Math.max(w, Math.abs(a[i]! - b[i]!) / (Math.max(1e-3 * scale, 1e-30) + Math.abs(b[i]!)));
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
