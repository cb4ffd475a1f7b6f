// The implicit-GEMM convolution kernels of the CPU wasm path (forward, input gradient, weight gradient)
// against a float64 direct convolution and against the TypeScript path (im2col + matmul, the reference). The
// input gradient has two forms (a flipped-weight correlation for stride 1, a col2im store otherwise), both here:
// odd sizes (1, 3, 17, 33), every padding mode, stride, dilation and group count the API takes, and inputs,
// weights and upstream gradients that are strided views (transposed, sliced, flipped).
import { afterEach, describe, expect, test } from 'vitest';
import { cpuKernels } from '../src/backends/cpu/kernels.js';
import { cpuPath, setCpuPath } from '../src/backends/cpu/wasm.js';
import { F, type Tensor, tensor, tidy } from '../src/index.js';
import type { ConvOptions } from '../src/ops/linalg.js';
import { randArr } from './support.js';

afterEach(() => setCpuPath('auto'));

interface Geo {
  st: [number, number];
  pad: [number, number, number, number]; // top, bottom, left, right
  dil: [number, number];
  groups: number;
}

/** float64 direct convolution in 2-D terms and its two VJPs for an upstream gradient `g`. */
function conv64(
  x: ArrayLike<number>,
  [N, C, H, W]: number[],
  w: ArrayLike<number>,
  [O, Cg, KH, KW]: number[],
  o: Geo,
  g?: ArrayLike<number>,
): { y: Float64Array; dx: Float64Array; dw: Float64Array; Ho: number; Wo: number } {
  const Ho = Math.floor((H! + o.pad[0] + o.pad[1] - o.dil[0] * (KH! - 1) - 1) / o.st[0]) + 1;
  const Wo = Math.floor((W! + o.pad[2] + o.pad[3] - o.dil[1] * (KW! - 1) - 1) / o.st[1]) + 1;
  const y = new Float64Array(N! * O! * Ho * Wo);
  const dx = new Float64Array(N! * C! * H! * W!);
  const dw = new Float64Array(O! * Cg! * KH! * KW!);
  const Og = O! / o.groups;
  for (let n = 0; n < N!; n++)
    for (let oc = 0; oc < O!; oc++) {
      const gr = Math.floor(oc / Og);
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          const yi = ((n * O! + oc) * Ho + i) * Wo + j;
          const gy = g ? g[yi]! : 0;
          let s = 0;
          for (let c = 0; c < Cg!; c++)
            for (let p = 0; p < KH!; p++)
              for (let q = 0; q < KW!; q++) {
                const hi = i * o.st[0] + p * o.dil[0] - o.pad[0];
                const wi = j * o.st[1] + q * o.dil[1] - o.pad[2];
                if (hi < 0 || hi >= H! || wi < 0 || wi >= W!) continue;
                const xi = ((n * C! + gr * Cg! + c) * H! + hi) * W! + wi;
                const wj = ((oc * Cg! + c) * KH! + p) * KW! + q;
                s += x[xi]! * w[wj]!;
                dx[xi] = dx[xi]! + gy * w[wj]!;
                dw[wj] = dw[wj]! + gy * x[xi]!;
              }
          y[yi] = s;
        }
    }
  return { y, dx, dw, Ho, Wo };
}

/** max |got − want| / (1 + |want|) */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let e = 0;
  for (let i = 0; i < got.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return e;
}

interface Case {
  x: number[];
  w: number[];
  opts: ConvOptions;
  /** the geometry the options mean, for the float64 reference (2-D terms) */
  geo: Geo;
}

const c1 = (x: number[], w: number[], opts: ConvOptions, st = 1, pad: [number, number] = [0, 0], dil = 1): Case => ({
  x,
  w,
  opts,
  geo: { st: [1, st], pad: [0, 0, pad[0], pad[1]], dil: [1, dil], groups: opts.groups ?? 1 },
});
const c2 = (x: number[], w: number[], opts: ConvOptions, geo: Omit<Geo, 'groups'>): Case => ({
  x,
  w,
  opts,
  geo: { ...geo, groups: opts.groups ?? 1 },
});

const cases: [string, Case][] = [
  ['conv1d 1×1 kernel on length 1', c1([1, 1, 1], [1, 1, 1], {})],
  ['conv1d odd sizes k3 valid', c1([3, 17, 33], [3, 17, 3], {})],
  ["conv1d k3 'same'", c1([2, 3, 17], [5, 3, 3], { padding: 'same' }, 1, [1, 1])],
  [
    "conv1d k4 'same' dilation 2 (3 each side)",
    c1([2, 3, 17], [4, 3, 4], { padding: 'same', dilation: 2 }, 1, [3, 3], 2),
  ],
  ["conv1d k4 'same' (left 1, right 2)", c1([1, 4, 33], [3, 4, 4], { padding: 'same' }, 1, [1, 2])],
  ['conv1d stride 2 pad 1', c1([2, 3, 17], [17, 3, 3], { stride: 2, padding: 1 }, 2, [1, 1])],
  ['conv1d stride 3 dilation 2 pad 2', c1([3, 4, 33], [5, 4, 3], { stride: 3, dilation: 2, padding: 2 }, 3, [2, 2], 2)],
  ['conv1d padding wider than the kernel (k3 pad 4)', c1([2, 3, 17], [4, 3, 3], { padding: 4 }, 1, [4, 4])],
  ['conv1d groups 3', c1([2, 6, 17], [9, 2, 3], { groups: 3, padding: 1 }, 1, [1, 1])],
  ['conv1d depthwise', c1([2, 5, 33], [5, 1, 5], { groups: 5, padding: 'same' }, 1, [2, 2])],
  ["conv1d 'valid' kernel as long as the input", c1([2, 3, 5], [4, 3, 5], { padding: 'valid' })],
  ['conv2d 3×3 pad 1', c2([2, 3, 17, 9], [5, 3, 3, 3], { padding: 1 }, { st: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1] })],
  [
    'conv2d 1×1 pad [1, 2]',
    c2([2, 3, 5, 7], [4, 3, 1, 1], { padding: [1, 2] }, { st: [1, 1], pad: [1, 1, 2, 2], dil: [1, 1] }),
  ],
  ['conv2d 1×1', c2([1, 17, 3, 33], [3, 17, 1, 1], {}, { st: [1, 1], pad: [0, 0, 0, 0], dil: [1, 1] })],
  [
    'conv2d stride [2, 1] pad [1, 2] dilation [1, 2] groups 2',
    c2(
      [2, 4, 9, 11],
      [6, 2, 3, 2],
      { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 },
      { st: [2, 1], pad: [1, 1, 2, 2], dil: [1, 2] },
    ),
  ],
  [
    "conv2d 'same' 4×2 dilation [2, 3]",
    c2(
      [1, 3, 17, 17],
      [3, 3, 4, 2],
      { padding: 'same', dilation: [2, 3] },
      { st: [1, 1], pad: [3, 3, 1, 2], dil: [2, 3] },
    ),
  ],
  [
    'conv2d stride 3 (rows of 1)',
    c2([3, 2, 1, 17], [4, 2, 1, 3], { stride: 3 }, { st: [3, 3], pad: [0, 0, 0, 0], dil: [1, 1] }),
  ],
  [
    'conv2d depthwise 3×3',
    c2([2, 4, 8, 8], [4, 1, 3, 3], { groups: 4, padding: 1 }, { st: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1] }),
  ],
];

function run(c: Case, seed: number, viewOf?: (t: Tensor) => Tensor, withBias = false) {
  const nx = c.x.reduce((a, b) => a * b, 1);
  const nw = c.w.reduce((a, b) => a * b, 1);
  const xd = randArr(nx, seed);
  const wd = randArr(nw, seed + 1, 1);
  const bd = randArr(c.w[0]!, seed + 3);
  const f = c.x.length === 3 ? F.conv1d : F.conv2d;
  return tidy(() => {
    const x = tensor(xd).reshape(c.x).requiresGrad_();
    const w = tensor(wd).reshape(c.w).requiresGrad_();
    const b = withBias ? tensor(bd).requiresGrad_() : null;
    const y = f(viewOf ? viewOf(x) : x, w, { ...c.opts, bias: b });
    const g = tensor(randArr(y.size, seed + 2)).reshape(y.shape);
    y.mul(g).sum().backward();
    return {
      xd,
      wd,
      bd,
      gd: g.dataSync(),
      y: Float32Array.from(y.dataSync()),
      dx: Float32Array.from(x.grad!.dataSync()),
      dw: Float32Array.from(w.grad!.dataSync()),
      db: b ? Float32Array.from(b.grad!.dataSync()) : null,
    };
  });
}

const to4 = (s: number[]) => (s.length === 3 ? [s[0]!, s[1]!, 1, s[2]!] : s);

describe('implicit-GEMM convolution (wasm) against float64 and the TypeScript path', () => {
  test.each(cases)('%s', (_, c) => {
    const got = run(c, 11);
    const ref = conv64(got.xd, to4(c.x), got.wd, to4(c.w), c.geo, got.gd);
    expect(relErr(got.y, ref.y)).toBeLessThan(1e-5);
    expect(relErr(got.dx, ref.dx)).toBeLessThan(1e-5);
    expect(relErr(got.dw, ref.dw)).toBeLessThan(1e-5);
    setCpuPath('ts');
    const ts = run(c, 11);
    setCpuPath('auto');
    expect(relErr(got.y, ts.y)).toBeLessThan(1e-5);
    expect(relErr(got.dx, ts.dx)).toBeLessThan(1e-5);
    expect(relErr(got.dw, ts.dw)).toBeLessThan(1e-5);
  });

  test('the wasm kernel runs (the composite is the fallback, not the path under test)', () => {
    const x = tensor(randArr(2 * 3 * 17, 1)).reshape([2, 3, 17]);
    const w = tensor(randArr(4 * 3 * 3, 2)).reshape([4, 3, 3]);
    const geo = { stride: [1], padding: [[1, 1]] as const, dilation: [1], groups: 1 };
    expect(cpuKernels.conv(x, w, null, geo)).not.toBeNull();
    setCpuPath('ts');
    expect(cpuKernels.conv(x, w, null, geo)).toBeNull();
  });

  test('strided inputs: a transposed, a sliced and a flipped view of x, and a non-contiguous upstream gradient', () => {
    // x [2, 3, 17] as the transpose of a [2, 17, 3] tensor, as a slice of a longer one, and flipped.
    const c = cases[2]![1];
    const views: [string, number[], (t: Tensor) => Tensor, (d: Float32Array) => Float32Array][] = [
      [
        'transpose',
        [2, 17, 3],
        (t) => t.transpose(1, 2),
        (d) =>
          Float32Array.from(
            { length: 2 * 3 * 17 },
            (_, i) => d[((i / 51) | 0) * 51 + (i % 17) * 3 + (((i / 17) | 0) % 3)]!,
          ),
      ],
      [
        'slice',
        [2, 3, 21],
        (t) => t.slice(2, 2, 19),
        (d) => Float32Array.from({ length: 2 * 3 * 17 }, (_, i) => d[((i / 17) | 0) * 21 + 2 + (i % 17)]!),
      ],
      [
        'flip',
        [2, 3, 17],
        (t) => t.flip(-1),
        (d) => Float32Array.from({ length: 2 * 3 * 17 }, (_, i) => d[((i / 17) | 0) * 17 + 16 - (i % 17)]!),
      ],
    ];
    for (const [name, base, view, logical] of views) {
      const got = run({ ...c, x: base }, 5, view);
      const ref = conv64(logical(got.xd), to4(c.x), got.wd, to4(c.w), c.geo, got.gd);
      expect(relErr(got.y, ref.y), name).toBeLessThan(1e-5);
      expect(relErr(got.dw, ref.dw), name).toBeLessThan(1e-5);
      setCpuPath('ts');
      const ts = run({ ...c, x: base }, 5, view);
      setCpuPath('auto');
      expect(relErr(got.dx, ts.dx), name).toBeLessThan(1e-5);
    }
    // A permuted weight view and an upstream gradient that arrives transposed.
    const wv = tidy(() => {
      const wt = tensor(randArr(3 * 5 * 3, 9, 1))
        .reshape([3, 5, 3])
        .requiresGrad_();
      const x = tensor(randArr(2 * 3 * 17, 8))
        .reshape([2, 3, 17])
        .requiresGrad_();
      const y = F.conv1d(x, wt.transpose(0, 1), { padding: 1 }); // [2, 5, 17]
      y.transpose(1, 2)
        .contiguous()
        .mul(tensor(randArr(2 * 17 * 5, 7)).reshape([2, 17, 5]))
        .sum()
        .backward();
      return [y.dataSync(), x.grad!.dataSync(), wt.grad!.dataSync()].map((a) => Float32Array.from(a));
    });
    setCpuPath('ts');
    const wts = tidy(() => {
      const wt = tensor(randArr(3 * 5 * 3, 9, 1))
        .reshape([3, 5, 3])
        .requiresGrad_();
      const x = tensor(randArr(2 * 3 * 17, 8))
        .reshape([2, 3, 17])
        .requiresGrad_();
      const y = F.conv1d(x, wt.transpose(0, 1), { padding: 1 });
      y.transpose(1, 2)
        .contiguous()
        .mul(tensor(randArr(2 * 17 * 5, 7)).reshape([2, 17, 5]))
        .sum()
        .backward();
      return [y.dataSync(), x.grad!.dataSync(), wt.grad!.dataSync()].map((a) => Float32Array.from(a));
    });
    setCpuPath('auto');
    for (let i = 0; i < 3; i++) expect(relErr(wv[i]!, wts[i]!)).toBeLessThan(1e-5);
  });

  test.each([cases[2]!, cases[7]!, cases[12]!])('with a bias (one kernel, its gradient a GEMV): %s', (_, c) => {
    const got = run(c, 21, undefined, true);
    const ref = conv64(got.xd, to4(c.x), got.wd, to4(c.w), c.geo, got.gd);
    const O = c.w[0]!;
    const plane = ref.Ho * ref.Wo;
    const yb = ref.y.map((v, i) => v + got.bd[Math.floor(i / plane) % O]!);
    const db = new Float64Array(O);
    for (let i = 0; i < got.gd.length; i++) {
      const o = Math.floor(i / plane) % O;
      db[o] = db[o]! + got.gd[i]!;
    }
    expect(relErr(got.y, yb)).toBeLessThan(1e-5);
    expect(relErr(got.dx, ref.dx)).toBeLessThan(1e-5);
    expect(relErr(got.dw, ref.dw)).toBeLessThan(1e-5);
    expect(relErr(got.db!, db)).toBeLessThan(1e-5);
  });

  test.each([
    { padding: 0 },
    { padding: 1, dilation: 2, outputPadding: 1 },
    { padding: 3 }, // padding past d(k − 1): the input is cropped
    { groups: 2, dilation: 3, padding: 2 },
    { stride: 2, padding: 1, outputPadding: 1 },
    { stride: 3, padding: 4, dilation: 2, outputPadding: 2 },
    { stride: 2, groups: 2, dilation: 3 },
  ])('convTranspose1d %o on the conv kernels equals the matmul + col2im composite (values, gradients)', (o) => {
    const kinds: string[] = [];
    const go = () =>
      tidy(() => {
        const x = tensor(randArr(2 * 4 * 17, 31))
          .reshape([2, 4, 17])
          .requiresGrad_();
        const w = tensor(randArr(4 * 3 * 3, 32, 1))
          .reshape([4, 3, 3])
          .requiresGrad_();
        const b = tensor(randArr(3 * (o.groups ?? 1), 33)).requiresGrad_();
        const y = F.convTranspose1d(x, w, { ...o, bias: b });
        // stride 1: one conv node (bias fused); strided: the bias add over a convTranspose node.
        kinds.push(y.gradNode?.name === 'conv' ? 'conv' : (y.gradNode?.inputs[0]?.gradNode?.name ?? ''));
        y.mul(tensor(randArr(y.size, 34)).reshape(y.shape))
          .sum()
          .backward();
        return [y, x.grad!, w.grad!, b.grad!].map((t) => Float32Array.from(t.dataSync()));
      });
    const got = go();
    setCpuPath('ts');
    const ref = go();
    setCpuPath('auto');
    expect(kinds[0]).toBe((o.stride ?? 1) === 1 ? 'conv' : 'convTranspose');
    expect(['conv', 'convTranspose']).not.toContain(kinds[1]);
    for (let i = 0; i < 4; i++) expect(relErr(got[i]!, ref[i]!)).toBeLessThan(1e-5);
  });

  // The implicit GEMM sums each output over p = (channel, tap) in order, one float32 product and add at a time
  // from 0 in every K block (≤ 384, split evenly), and adds each block's sum to the output, which starts at the
  // bias (or at the first block's sum); the weight gradient adds image after image onto zeros. A float32
  // emulation of that order must give the same bits for any tile shape: here 5 output rows (a 1-row edge strip),
  // 37 positions (a 16-column panel with an 8-column half and a 5-column one), K 390 (two blocks of 195).
  test.each([false, true])(
    "forward and weight gradient: the same bits as a float32 emulation of the kernel's order (bias %s)",
    (withBias) => {
      if (cpuPath() !== 'wasm') return;
      const [N, C, L, O, ks] = [2, 130, 37, 5, 3];
      const c = c1([N, C, L], [O, C, ks], { padding: 'same' }, 1, [1, 1]);
      const got = run(c, 21, undefined, withBias);
      const f = Math.fround;
      const K = C * ks;
      const kstep = Math.ceil(K / Math.ceil(K / 384));
      // im2col[n][p, j]: input at position j + tap − 1, 0 in the padding.
      const col = (n: number, p: number, j: number) => {
        const pos = j + (p % ks) - 1;
        return pos < 0 || pos >= L ? 0 : got.xd[(n * C + Math.floor(p / ks)) * L + pos]!;
      };
      const y = new Float32Array(N * O * L);
      for (let n = 0; n < N; n++)
        for (let o = 0; o < O; o++)
          for (let j = 0; j < L; j++) {
            let v: number | null = withBias ? got.bd[o]! : null;
            for (let k0 = 0; k0 < K; k0 += kstep) {
              let acc = 0;
              for (let p = k0; p < Math.min(K, k0 + kstep); p++) acc = f(acc + f(got.wd[o * K + p]! * col(n, p, j)));
              v = v === null ? acc : f(v + acc);
            }
            y[(n * O + o) * L + j] = v!;
          }
      expect(got.y).toEqual(y);
      const dw = new Float32Array(O * K);
      for (let o = 0; o < O; o++)
        for (let p = 0; p < K; p++) {
          let v = 0;
          for (let n = 0; n < N; n++) {
            let acc = 0;
            for (let j = 0; j < L; j++) acc = f(acc + f(got.gd[(n * O + o) * L + j]! * col(n, p, j)));
            v = f(v + acc);
          }
          dw[o * K + p] = v;
        }
      expect(got.dw).toEqual(dw);
    },
  );

  test('sizes past one K block and one N block of the GEMM (K 3·136 > 384, N 300 > 256)', () => {
    const c = c1([2, 136, 300], [9, 136, 3], { padding: 'same' }, 1, [1, 1]);
    const got = run(c, 3);
    const ref = conv64(got.xd, to4(c.x), got.wd, to4(c.w), c.geo, got.gd);
    expect(relErr(got.y, ref.y)).toBeLessThan(1e-5);
    expect(relErr(got.dx, ref.dx)).toBeLessThan(1e-5);
    expect(relErr(got.dw, ref.dw)).toBeLessThan(1e-4);
  });
});
