// The fused LSTM and GRU cell primitives (forward and the one-kernel VJPs) on every path (CPU with WASM,
// CPU TypeScript, WebGPU where an adapter exists) against float64 references and central finite
// differences at odd sizes; and the LSTM / GRU layers against their unfused elementwise composites.
import { afterAll, describe, expect, test } from 'vitest';
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { nn, setBackend, type Tensor, tensor } from '../src/index.js';
import { setFusedCells } from '../src/nn/recurrent.js';
import { gruCell, lstmCell } from '../src/ops/prims.js';
import { pathsFor, probeWebgpu, randArr, usePath } from './support.js';

const gpuSkip = await probeWebgpu('rnn-cell');
const PATHS = pathsFor(gpuSkip);

afterAll(async () => {
  setFusedCells(true);
  setCpuPath('auto');
  await setBackend('cpu');
});

const host = async (t: Tensor) => Float64Array.from(await t.data());

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return m;
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** float64 LSTM cell: [h (B·H), c' (B·H)]. */
function lstm64(G: ArrayLike<number>, C: ArrayLike<number>, B: number, H: number): Float64Array {
  const out = new Float64Array(2 * B * H);
  for (let b = 0; b < B; b++)
    for (let j = 0; j < H; j++) {
      const g = (k: number) => G[b * 4 * H + k * H + j]!;
      const c2 = sig(g(1)) * C[b * H + j]! + sig(g(0)) * Math.tanh(g(2));
      out[b * H + j] = sig(g(3)) * Math.tanh(c2);
      out[B * H + b * H + j] = c2;
    }
  return out;
}

/** float64 GRU cell: h' (B·H). */
function gru64(X: ArrayLike<number>, R: ArrayLike<number>, S: ArrayLike<number>, B: number, H: number): Float64Array {
  const out = new Float64Array(B * H);
  for (let b = 0; b < B; b++)
    for (let j = 0; j < H; j++) {
      const x = (k: number) => X[b * 3 * H + k * H + j]!;
      const h = (k: number) => R[b * 3 * H + k * H + j]!;
      const r = sig(x(0) + h(0));
      const z = sig(x(1) + h(1));
      const n = Math.tanh(x(2) + r * h(2));
      out[b * H + j] = (1 - z) * n + z * S[b * H + j]!;
    }
  return out;
}

/** Central finite differences (float64) of Σ f(inputs)·W with respect to each input. */
function fd(f: (xs: Float64Array[]) => Float64Array, xs: Float32Array[], W: ArrayLike<number>): Float64Array[] {
  const base = xs.map((x) => Float64Array.from(x));
  const dot = (y: Float64Array) => y.reduce((s, v, i) => s + v * W[i]!, 0);
  const eps = 1e-6;
  return base.map((x) => {
    const d = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      x[i] = v + eps;
      const p = dot(f(base));
      x[i] = v - eps;
      const m = dot(f(base));
      x[i] = v;
      d[i] = (p - m) / (2 * eps);
    }
    return d;
  });
}

const SIZES: [number, number][] = [1, 3].flatMap((B) => [1, 5, 17].map((H): [number, number] => [B, H]));

describe.each(PATHS)('fused RNN cells on %s', (path) => {
  test.each(SIZES)('lstmCell B=%i H=%i: forward and gradients', async (B, H) => {
    await usePath(path);
    const G = randArr(B * 4 * H, 7 * B + H, 6);
    const C = randArr(B * H, 11 * B + H, 4);
    const W = randArr(2 * B * H, 13 * B + H, 2);
    const g = tensor(G, { shape: [B, 4 * H], requiresGrad: true });
    const c = tensor(C, { shape: [B, H], requiresGrad: true });
    const y = lstmCell(g, c);
    expect(y.shape).toEqual([2, B, H]);
    expect(worst(await host(y), lstm64(G, C, B, H))).toBeLessThan(2e-6);
    const l = y.mul(tensor(W, { shape: [2, B, H] })).sum();
    l.backward();
    const [dg, dc] = fd(([a, b]) => lstm64(a!, b!, B, H), [G, C], W);
    expect(worst(await host(g.grad!), dg!), 'dgates').toBeLessThan(1e-5);
    expect(worst(await host(c.grad!), dc!), 'dc').toBeLessThan(1e-5);
    for (const t of [g, c, y, l]) t.dispose();
  });

  test.each(SIZES)('gruCell B=%i H=%i: forward and gradients', async (B, H) => {
    await usePath(path);
    const X = randArr(B * 3 * H, 17 * B + H, 6);
    const R = randArr(B * 3 * H, 19 * B + H, 6);
    const S = randArr(B * H, 23 * B + H, 2);
    const W = randArr(B * H, 29 * B + H, 2);
    const x = tensor(X, { shape: [B, 3 * H], requiresGrad: true });
    const r = tensor(R, { shape: [B, 3 * H], requiresGrad: true });
    const h = tensor(S, { shape: [B, H], requiresGrad: true });
    const y = gruCell(x, r, h);
    expect(y.shape).toEqual([B, H]);
    expect(worst(await host(y), gru64(X, R, S, B, H))).toBeLessThan(2e-6);
    const l = y.mul(tensor(W, { shape: [B, H] })).sum();
    l.backward();
    const [dx, dr, dh] = fd(([a, b, s]) => gru64(a!, b!, s!, B, H), [X, R, S], W);
    expect(worst(await host(x.grad!), dx!), 'dxp').toBeLessThan(1e-5);
    expect(worst(await host(r.grad!), dr!), 'dhh').toBeLessThan(1e-5);
    expect(worst(await host(h.grad!), dh!), 'dh').toBeLessThan(1e-5);
    for (const t of [x, r, h, y, l]) t.dispose();
  });

  test('strided (non-contiguous) inputs', async () => {
    await usePath(path);
    const B = 3;
    const H = 5;
    const G = randArr(4 * H * B, 31, 6);
    const C = randArr(H * B, 37, 4);
    // gates and c as transposed views of [4H, B] and [H, B].
    const g = tensor(G, { shape: [4 * H, B] }).transpose(0, 1);
    const c = tensor(C, { shape: [H, B] }).transpose(0, 1);
    const gd = Float64Array.from(await g.contiguous().data());
    const cd = Float64Array.from(await c.contiguous().data());
    expect(worst(await host(lstmCell(g, c)), lstm64(gd, cd, B, H))).toBeLessThan(2e-6);
    const xs = tensor(randArr(3 * H * B, 41, 6), { shape: [3 * H, B] }).transpose(0, 1);
    const hs = tensor(randArr(H * B, 43, 2), { shape: [H, B] }).transpose(0, 1);
    const [xd, hd] = [await host(xs.contiguous()), await host(hs.contiguous())];
    expect(worst(await host(gruCell(xs, xs, hs)), gru64(xd, xd, hd, B, H))).toBeLessThan(2e-6);
  });

  test('shape errors', async () => {
    await usePath(path);
    expect(() => lstmCell(tensor(randArr(8, 1), { shape: [1, 8] }), tensor(randArr(3, 1), { shape: [1, 3] }))).toThrow(
      /expected/,
    );
  });
});

// ------------------------------------------------------------------ layers vs the unfused composite

type Layer = nn.LSTM | nn.GRU;

/** Outputs, input gradient and parameter gradients of one forward/backward of `m` (same module both ways). */
async function layerRun(m: Layer, batchFirst: boolean, fused: boolean): Promise<Float64Array[]> {
  setFusedCells(fused);
  m.zeroGrad();
  const [I, T, B] = [m.inputSize, 6, 3];
  const x = tensor(randArr(T * B * I, 3, 2), { shape: batchFirst ? [B, T, I] : [T, B, I], requiresGrad: true });
  const outs: Tensor[] = [];
  if (m instanceof nn.LSTM) {
    const r = m.forward(x);
    outs.push(r.output, r.h, r.c);
  } else {
    const r = m.forward(x);
    outs.push(r.output, r.h);
  }
  const l = outs.reduce<Tensor>(
    (acc, o, i) =>
      acc.add(
        o
          .mul(o)
          .mul(i + 1)
          .sum(),
      ),
    tensor(0),
  );
  l.backward();
  const got = [...outs, x.grad!, ...m.parameters().map((p) => p.grad!)];
  const data = await Promise.all(got.map(host));
  for (const t of [x, l, ...outs]) t.dispose();
  return data;
}

describe.each(PATHS)('RNN layers fused vs composite on %s', (path) => {
  const CASES: [string, 'LSTM' | 'GRU', nn.RNNOptions][] = [
    ['LSTM', 'LSTM', {}],
    ['LSTM 2-layer bidirectional batch-first', 'LSTM', { numLayers: 2, bidirectional: true, batchFirst: true }],
    ['LSTM no bias', 'LSTM', { bias: false }],
    ['GRU', 'GRU', {}],
    ['GRU 2-layer bidirectional batch-first', 'GRU', { numLayers: 2, bidirectional: true, batchFirst: true }],
    ['GRU no bias', 'GRU', { bias: false }],
  ];
  test.each(CASES)('%s: outputs and gradients unchanged', async (_name, kind, opts) => {
    await usePath(path);
    const m = kind === 'LSTM' ? new nn.LSTM(4, 5, opts) : new nn.GRU(4, 5, opts);
    const a = await layerRun(m, opts.batchFirst ?? false, false);
    const b = await layerRun(m, opts.batchFirst ?? false, true);
    setFusedCells(true);
    expect(b.length).toBe(a.length);
    for (const [i, ref] of a.entries()) expect(worst(b[i]!, ref), `tensor ${i}`).toBeLessThan(1e-5);
  });
});
