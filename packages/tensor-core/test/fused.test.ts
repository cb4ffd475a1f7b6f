// The fused kernels (softmax / logSoftmax, layerNorm / rmsNorm, the Adam/AdamW update) on every path
// (CPU with WASM exp, CPU TypeScript, WebGPU where an adapter exists) against float64 reimplementations:
// odd row lengths (1, 3, 17, 255), strided inputs, -inf and huge logits; and the paths against each other.
import { afterAll, describe, expect, test } from 'vitest';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { F, optim, setBackend, type Tensor, tensor } from '../src/index.js';
import { layerNorm64, pathsFor, probeWebgpu, randArr, rng, usePath } from './support.js';

const gpuSkip = await probeWebgpu('fused');
const PATHS = pathsFor(gpuSkip);

afterAll(async () => {
  setCpuPath('auto');
  await setBackend('cpu');
});

const host = async (t: Tensor) => Float32Array.from(await t.data());

/** Elementwise closeness with NaN = NaN and equal infinities; returns the worst |a − b| / (1 + |b|). */
function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) || !Number.isFinite(y)) {
      expect(Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y)), `element ${i}: ${x} vs ${y}`).toBe(true);
      continue;
    }
    m = Math.max(m, Math.abs(x - y) / (1 + Math.abs(y)));
  }
  return m;
}

// ------------------------------------------------------------------ float64 references (rows of length n)

function softmax64(x: ArrayLike<number>, n: number, log: boolean): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = r; i < r + n; i++) m = Math.max(m, x[i]!);
    if (m === Number.NEGATIVE_INFINITY) m = Number.NaN;
    let s = 0;
    for (let i = r; i < r + n; i++) s += Math.exp(x[i]! - m);
    for (let i = r; i < r + n; i++) out[i] = log ? x[i]! - m - Math.log(s) : Math.exp(x[i]! - m) / s;
  }
  return out;
}

/** Gradient of Σ y·G through softmax (or logSoftmax) over rows of n. */
function softmaxGrad64(x: ArrayLike<number>, G: ArrayLike<number>, n: number, log: boolean): Float64Array {
  const p = softmax64(x, n, false);
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let s = 0;
    for (let i = r; i < r + n; i++) s += log ? G[i]! : G[i]! * p[i]!;
    for (let i = r; i < r + n; i++) out[i] = log ? G[i]! - p[i]! * s : p[i]! * (G[i]! - s);
  }
  return out;
}

// ------------------------------------------------------------------ softmax

describe.each(PATHS)('fused softmax on %s', (path) => {
  test.each([1, 3, 17, 255])('softmax and logSoftmax, rows of %i: values and gradients', async (n) => {
    await usePath(path);
    const rows = 5;
    const X = randArr(rows * n, n);
    const G = randArr(rows * n, n + 1);
    for (const log of [false, true]) {
      const x = tensor(X, { shape: [rows, n], requiresGrad: true });
      const g = tensor(G, { shape: [rows, n] });
      const y = log ? F.logSoftmax(x, -1) : F.softmax(x, -1);
      const l = y.mul(g).sum();
      l.backward();
      expect(worst(await host(y), softmax64(X, n, log))).toBeLessThan(2e-6);
      expect(worst(await host(x.grad!), softmaxGrad64(X, G, n, log))).toBeLessThan(2e-6);
      for (const t of [x, g, y, l]) t.dispose();
    }
  });

  test('strided input (a transposed view) and a dim other than the last', async () => {
    await usePath(path);
    const [rows, n] = [6, 17];
    const X = randArr(rows * n, 7);
    const xt = tensor(X, { shape: [rows, n] });
    // The same logical [rows, n] values, laid out column-major: a non-contiguous view.
    const colMajor = tensor(await host(xt.transpose(0, 1).contiguous()), { shape: [n, rows] });
    const strided = colMajor.transpose(0, 1);
    expect(worst(await host(F.softmax(strided, -1)), softmax64(X, n, false))).toBeLessThan(2e-6);
    // softmax over dim 0 of [n, rows] is softmax over the rows of its transpose.
    const d0 = F.logSoftmax(colMajor, 0).transpose(0, 1);
    expect(worst(await host(d0), softmax64(X, n, true))).toBeLessThan(2e-6);
    for (const t of [xt, colMajor, strided, d0]) t.dispose();
  });

  test('-inf, huge and all -inf rows', async () => {
    await usePath(path);
    const inf = Number.POSITIVE_INFINITY;
    const rowsIn = [
      [-inf, 0, 1, 2],
      [1000, 1001, 999, -1000],
      [3e38, 3e38, -3e38, 0],
      [88, 89, -1e4, 90],
      [-inf, -inf, -inf, -inf],
    ];
    const X = Float32Array.from(rowsIn.flat());
    for (const log of [false, true]) {
      const x = tensor(X, { shape: [5, 4] });
      const y = log ? F.logSoftmax(x, -1) : F.softmax(x, -1);
      // The float64 reference of the float32 inputs, rounded to float32 (−6e38 is −inf there); the all -inf
      // row is NaN, as in PyTorch.
      const ref = Float64Array.from(softmax64(X, 4, log), Math.fround);
      expect(worst(await host(y), ref)).toBeLessThan(2e-6);
      x.dispose();
      y.dispose();
    }
  });
});

// ------------------------------------------------------------------ crossEntropy

describe.each(PATHS)('fused crossEntropy on %s', (path) => {
  test.each([1, 3, 17, 255])('%i classes, an ignored row: loss (mean, sum, none) and gradient', async (C) => {
    await usePath(path);
    const N = 7;
    const X = randArr(N * C, 5 * C, 10);
    const r = rng(C);
    const T = Int32Array.from({ length: N }, (_, i) => (i === 2 ? -100 : Math.floor(r() * C)));
    const lp = softmax64(X, C, true);
    const per = Array.from(T, (t, i) => (t === -100 ? 0 : -lp[i * C + t]!));
    const valid = T.filter((t) => t !== -100).length;
    const sum = per.reduce((a, b) => a + b, 0);
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const x = tensor(X, { shape: [N, C], requiresGrad: true });
      const t = tensor(T, { shape: [N], dtype: 'int32' });
      const loss = F.crossEntropy(x, t, { reduction });
      const want = reduction === 'none' ? per : [reduction === 'sum' ? sum : sum / valid];
      expect(worst(await host(loss), want), reduction).toBeLessThan(2e-6);
      // d/dx of Σ loss·w: (softmax − onehot)·w_row (1/valid for mean, 1 for sum), 0 on the ignored row.
      const w = reduction === 'none' ? Float32Array.from({ length: N }, (_, i) => i + 1) : null;
      const l = w ? loss.mul(tensor(w, { shape: [N] })).sum() : loss;
      l.backward();
      const p = softmax64(X, C, false);
      const dx = new Float64Array(N * C);
      for (let i = 0; i < N; i++) {
        if (T[i] === -100) continue;
        const s = w ? w[i]! : reduction === 'mean' ? 1 / valid : 1;
        for (let c = 0; c < C; c++) dx[i * C + c] = (p[i * C + c]! - (c === T[i] ? 1 : 0)) * s;
      }
      expect(worst(await host(x.grad!), dx), `${reduction} grad`).toBeLessThan(2e-6);
      for (const u of new Set([x, t, loss, l])) u.dispose();
    }
  });

  test('a target out of range is an index error', async () => {
    await usePath(path);
    const x = tensor(randArr(6, 1), { shape: [2, 3] });
    const t = tensor([0, 3], { dtype: 'int32' });
    await expect(async () => {
      const l = F.crossEntropy(x, t);
      await l.data();
    }).rejects.toThrow(/out of range/);
    x.dispose();
    t.dispose();
  });
});

// ------------------------------------------------------------------ layerNorm / rmsNorm

describe.each(PATHS)('fused layerNorm on %s', (path) => {
  test.each([1, 3, 17, 255])('layerNorm and rmsNorm, rows of %i: values and gradients', async (n) => {
    await usePath(path);
    const rows = 6;
    const X = randArr(rows * n, 3 * n);
    const G = randArr(rows * n, 3 * n + 1);
    const W = randArr(n, 3 * n + 2);
    const B = randArr(n, 3 * n + 3);
    for (const rms of [false, true])
      for (const affine of [false, true]) {
        const x = tensor(X, { shape: [2, rows / 2, n], requiresGrad: true });
        const w = affine ? tensor(W, { shape: [n], requiresGrad: true }) : null;
        const b = affine && !rms ? tensor(B, { shape: [n], requiresGrad: true }) : null;
        const g = tensor(G, { shape: [2, rows / 2, n] });
        const eps = rms ? 1e-6 : 1e-5;
        const y = rms ? F.rmsNorm(x, [n], { weight: w, eps }) : F.layerNorm(x, [n], { weight: w, bias: b, eps });
        const l = y.mul(g).sum();
        l.backward();
        const ref = layerNorm64(X, w ? W : new Float64Array(n).fill(1), b ? B : new Float64Array(n), G, n, eps, rms);
        const what = `${rms ? 'rms' : 'layer'}Norm${affine ? ' affine' : ''}`;
        expect(worst(await host(y), ref.y), what).toBeLessThan(5e-6);
        expect(worst(await host(x.grad!), ref.dx), `${what} dx`).toBeLessThan(2e-5);
        if (w) expect(worst(await host(w.grad!), ref.dw), `${what} dw`).toBeLessThan(5e-6);
        if (b) expect(worst(await host(b.grad!), ref.db), `${what} db`).toBeLessThan(5e-6);
        for (const t of [x, w, b, g, y, l]) t?.dispose();
      }
  });

  test('strided input (a transposed view)', async () => {
    await usePath(path);
    const [rows, n] = [5, 33];
    const X = randArr(rows * n, 11);
    const G = randArr(rows * n, 12);
    const ones = new Float64Array(n).fill(1);
    const ref = layerNorm64(X, ones, new Float64Array(n), G, n, 1e-5, false);
    const xt = tensor(X, { shape: [rows, n] });
    const colMajor = tensor(await host(xt.transpose(0, 1).contiguous()), { shape: [n, rows], requiresGrad: true });
    const y = F.layerNorm(colMajor.transpose(0, 1), [n]);
    const l = y.mul(tensor(G, { shape: [rows, n] })).sum();
    l.backward();
    expect(worst(await host(y), ref.y)).toBeLessThan(5e-6);
    expect(worst(await host(colMajor.grad!.transpose(0, 1)), ref.dx)).toBeLessThan(2e-5);
    for (const t of [xt, colMajor, y, l]) t.dispose();
  });
});

// ------------------------------------------------------------------ Adam / AdamW

/** PyTorch's Adam/AdamW (single-tensor, not amsgrad) in float64 over the given gradients. */
function adam64(
  p0: ArrayLike<number>,
  grads: ArrayLike<number>[],
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean },
): Float64Array {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      let d = g[i]!;
      if (o.wd) {
        if (o.decoupled) p[i] = p[i]! * (1 - o.lr * o.wd);
        else d += o.wd * p[i]!;
      }
      m[i] = o.b1 * m[i]! + (1 - o.b1) * d;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * d * d;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      p[i] = p[i]! - (o.lr / (1 - o.b1 ** t)) * (m[i]! / denom);
    }
  });
  return p;
}

describe('fused Adam/AdamW', () => {
  test.each([
    ['Adam', false, 0],
    ['Adam', false, 0.1],
    ['AdamW', true, 0.01],
  ] as const)(
    '%s (decoupled %s, weight decay %s) over 3 steps matches float64 on every path',
    async (name, decoupled, wd) => {
      const n = 255;
      const P0 = randArr(n, 21);
      const grads = [0, 1, 2].map((k) => randArr(n, 30 + k, 2));
      const o = { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd, decoupled };
      const ref = adam64(P0, grads, o);
      const results: Float32Array[] = [];
      for (const path of PATHS) {
        await usePath(path);
        const p = tensor(P0, { shape: [15, 17], requiresGrad: true });
        const Opt = name === 'Adam' ? optim.Adam : optim.AdamW;
        const opt = new Opt([p], { lr: o.lr, betas: [o.b1, o.b2], eps: o.eps, weightDecay: wd });
        for (const g of grads) {
          p.grad = tensor(g, { shape: [15, 17] });
          opt.step();
          opt.zeroGrad();
        }
        const got = await host(p);
        // Each step moves p by ~lr; float32 keeps it to a few ulps of |p| ≈ 2.
        expect(worst(got, ref), path).toBeLessThan(1e-6);
        results.push(got);
        p.dispose();
      }
      // The paths agree with each other to float32 rounding.
      for (const r of results.slice(1)) expect(worst(r, results[0]!)).toBeLessThan(5e-7);
    },
  );
});

describe('paths agree', () => {
  test('softmax backward and layerNorm backward: wasm, TypeScript and WebGPU within float32 rounding', async () => {
    const [rows, n] = [8, 255];
    const X = randArr(rows * n, 41, 8);
    const G = randArr(rows * n, 42);
    const outs: Float32Array[][] = [];
    for (const path of PATHS) {
      await usePath(path);
      const x = tensor(X, { shape: [rows, n], requiresGrad: true });
      const g = tensor(G, { shape: [rows, n] });
      const y1 = F.softmax(x, -1);
      const y2 = F.logSoftmax(x, -1);
      const y3 = F.layerNorm(x, [n]);
      const l = y1.mul(g).sum().add(y2.mul(g).sum()).add(y3.mul(g).sum());
      l.backward();
      outs.push([await host(y1), await host(y2), await host(y3), await host(x.grad!)]);
      for (const t of [x, g, y1, y2, y3, l]) t.dispose();
    }
    for (const o of outs.slice(1))
      o.forEach((a, i) => {
        expect(worst(a, outs[0]![i]!)).toBeLessThan(2e-6);
      });
  });
});
