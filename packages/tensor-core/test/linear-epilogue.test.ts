// nn.Linear's bias (and relu) in the product's epilogue (P.linear: `biasAct` in place on x·Wᵀ, relu's VJP in one
// `reluBackward` kernel) against the composition it replaces — matmul, add, relu — bit for bit, forward and the
// three gradients, on the wasm and the TypeScript paths; the forward and gradients against float64; odd sizes,
// strided x and W, NaN inputs, and the layouts P.linear declines (which must still give the right answer).
import { afterEach, describe, expect, test } from 'vitest';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { nn, type Tensor, tensor, tidy } from '../src/index.js';
import { linear } from '../src/ops/prims.js';
import { randArr } from './support.js';

afterEach(() => setCpuPath('auto'));

const host = (t: Tensor) => Array.from(t.dataSync() as Float32Array);

interface Run {
  y: number[];
  dx: number[];
  dw: number[];
  db: number[];
}

/** y and the gradients of Σ y·G, from leaves made by `make` (x, W and b, possibly views of leaves). */
function run(
  make: () => { x: Tensor; w: Tensor; b: Tensor; leaves: Tensor[] },
  G: Float32Array,
  f: (x: Tensor, w: Tensor, b: Tensor) => Tensor,
): Run {
  return tidy(() => {
    const { x, w, b, leaves } = make();
    const y = f(x, w, b);
    y.mul(tensor(G, { shape: y.shape }))
      .sum()
      .backward();
    const [lx, lw, lb] = leaves as [Tensor, Tensor, Tensor];
    return { y: host(y), dx: host(lx.grad!), dw: host(lw.grad!), db: host(lb.grad!) };
  });
}

const composed = (relu: boolean) => (x: Tensor, w: Tensor, b: Tensor) => {
  const y = x.matmul(w.transpose(0, 1)).add(b);
  return relu ? y.relu() : y;
};
const fused = (relu: boolean) => (x: Tensor, w: Tensor, b: Tensor) => {
  const y = linear(x, w, b, relu);
  if (!y) throw new Error('P.linear declined');
  return y;
};

/** y = act(x Wᵀ + b) in float64 and the gradients of Σ y·G, with relu's mask taken from `mask` (the kernel's). */
function ref64(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  G: Float32Array,
  m: number,
  k: number,
  n: number,
  mask: number[] | null,
) {
  const y = new Float64Array(m * n);
  const gz = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = b[j]!;
      for (let p = 0; p < k; p++) s += x[i * k + p]! * w[j * k + p]!;
      const live = !mask || mask[i * n + j]! > 0;
      y[i * n + j] = mask ? (live ? s : 0) : s;
      gz[i * n + j] = live ? G[i * n + j]! : 0;
    }
  const dx = new Float64Array(m * k);
  const dw = new Float64Array(n * k);
  const db = new Float64Array(n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      const g = gz[i * n + j]!;
      db[j] += g;
      for (let p = 0; p < k; p++) {
        dx[i * k + p] += g * w[j * k + p]!;
        dw[j * k + p] += g * x[i * k + p]!;
      }
    }
  return { y, dx, dw, db };
}

function expectClose(got: number[], want: Float64Array, terms: number) {
  // Products of values under 2 in size, summed over `terms` terms in float32.
  const tol = 4e-7 * 4 * Math.max(terms, 1) + 1e-6;
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  expect(worst).toBeLessThan(tol);
}

// [m, k, n]: 1, 3, 17, 33, 255, and sizes past the wasm kernels' 4096-element threshold.
const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 33],
  [17, 3, 255],
  [255, 33, 17],
  [33, 255, 3],
  [128, 64, 96],
  [257, 20, 33],
];

describe.each(['auto', 'ts'] as const)('P.linear on the %s path', (path) => {
  test.each(SIZES)('[%i, %i] · [%i]ᵀ: bit-identical to matmul + add (+ relu), and float64', (m, k, n) => {
    setCpuPath(path);
    const X = randArr(m * k, m + 1);
    const W = randArr(n * k, n + 2, 1);
    const B = randArr(n, k + 3);
    const G = randArr(m * n, 7);
    const make = () => {
      const x = tensor(X, { shape: [m, k], requiresGrad: true });
      const w = tensor(W, { shape: [n, k], requiresGrad: true });
      const b = tensor(B, { shape: [n], requiresGrad: true });
      return { x, w, b, leaves: [x, w, b] };
    };
    for (const relu of [false, true]) {
      const a = run(make, G, fused(relu));
      const c = run(make, G, composed(relu));
      expect(a).toEqual(c);
      if (relu && m * n > 8) expect(a.y.some((v) => v === 0) && a.y.some((v) => v > 0)).toBe(true);
      const r = ref64(X, W, B, G, m, k, n, relu ? a.y : null);
      expectClose(a.y, r.y, k);
      expectClose(a.dx, r.dx, n);
      expectClose(a.dw, r.dw, m);
      expectClose(a.db, r.db, m);
    }
  });

  test('strided x and W (transposed views of their leaves) and NaN inputs: still the composed bits', () => {
    setCpuPath(path);
    const [m, k, n] = [129, 33, 65];
    const X = randArr(m * k, 11);
    X[5] = Number.NaN; // leaf [0, 5] = x[5, 0]: row 5 of y is NaN (before and after relu)
    const W = randArr(n * k, 12, 1);
    const B = randArr(n, 13);
    B[3] = Number.NaN; // column 3 of y is NaN
    const G = randArr(m * n, 14);
    // x = leafᵀ with leaf [k, m]; W = leafᵀ with leaf [k, n] (a layer stored as Wᵀ).
    const make = () => {
      const xl = tensor(X, { shape: [k, m], requiresGrad: true });
      const wl = tensor(W, { shape: [k, n], requiresGrad: true });
      const b = tensor(B, { shape: [n], requiresGrad: true });
      return { x: xl.transpose(0, 1), w: wl.transpose(0, 1), b, leaves: [xl, wl, b] };
    };
    for (const relu of [false, true]) {
      const a = run(make, G, fused(relu));
      expect(a).toEqual(run(make, G, composed(relu)));
      expect(a.y.slice(5 * n, 6 * n).every(Number.isNaN)).toBe(true);
      expect(a.y.filter((_, i) => i % n === 3).every(Number.isNaN)).toBe(true);
      // relu's gradient is 0 at its NaN outputs: column 3's bias gets none; without relu it gets Σ_i G[i, 3].
      expect(a.db[3] === 0).toBe(relu);
    }
  });
});

test('relu of NaN stays NaN and its gradient is 0, as the composed relu gives', () => {
  const n = 4099; // past the wasm threshold, with a scalar tail
  const X = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? Number.NaN : i % 3 === 1 ? -1 : 2));
  const make = () => {
    const x = tensor(X, { shape: [n, 1], requiresGrad: true });
    const w = tensor([1], { shape: [1, 1], requiresGrad: true });
    const b = tensor([0], { shape: [1], requiresGrad: true });
    return { x, w, b, leaves: [x, w, b] };
  };
  const G = new Float32Array(n).fill(1);
  const a = run(make, G, fused(true));
  expect(a).toEqual(run(make, G, composed(true)));
  expect(a.y.slice(0, 3)).toEqual([Number.NaN, 0, 2]);
  expect(a.dx.slice(0, 3)).toEqual([0, 0, 1]);
});

test('P.linear declines a strided bias and non-float32 or mis-shaped operands (the caller composes)', () => {
  const x = tensor(randArr(12, 1), { shape: [4, 3] });
  const w = tensor(randArr(6, 2), { shape: [2, 3] });
  const b2 = tensor(randArr(4, 3), { shape: [4] });
  expect(linear(x, w, b2.slice(0, 0, 4, 2), false)).toBeNull();
  expect(linear(x.reshape([2, 2, 3]), w, tensor([0, 0]), false)).toBeNull();
  expect(linear(x, w, tensor([0, 0, 0]), false)).toBeNull();
  expect(linear(x.int(), w.int(), tensor([0, 0], { dtype: 'int32' }), false)).toBeNull();
});

test('nn.Linear.forwardAct over [B, T, d] (reshaped to rows) and over a non-contiguous input equals the composed ops', () => {
  const layer = new nn.Linear(17, 33);
  const X = randArr(3 * 5 * 17, 21);
  const G = randArr(3 * 5 * 33, 22);
  for (const transposed of [false, true]) {
    const make = () => {
      const leaf = tensor(X, { shape: transposed ? [3, 17, 5] : [3, 5, 17], requiresGrad: true });
      return {
        x: transposed ? leaf.transpose(1, 2) : leaf,
        w: layer.weight,
        b: layer.bias!,
        leaves: [leaf, layer.weight, layer.bias!],
      };
    };
    for (const relu of [false, true]) {
      for (const p of layer.parameters()) p.grad = null;
      const a = run(make, G, (x) => layer.forwardAct(x, relu));
      for (const p of layer.parameters()) p.grad = null;
      const c = run(make, G, composed(relu));
      expect(a).toEqual(c);
    }
  }
  for (const p of layer.parameters()) p.grad = null;
  // A wrong input width keeps matmul's error (not a reshape's) on both the fused and the composed route.
  for (const shape of [
    [4, 16],
    [2, 5, 16],
  ])
    expect(() =>
      layer.forwardAct(
        tensor(
          randArr(
            shape.reduce((a, b) => a * b),
            23,
          ),
          { shape },
        ),
        true,
      ),
    ).toThrow(/matmul expects \[\.\.\., m, k\] x \[\.\.\., k, n\]/);
});
