// The conformance table: one row per op case, run on every backend. Each row gives our op (`run`)
// and an independent float64 reference (`ref`); the runner checks the forward against it and our
// autograd gradient against central finite differences of the reference.
import { cat, F, stack, type Tensor, tensor } from '@tessera/tensor-core';
import {
  alongDim,
  bget,
  broadcast,
  coords,
  erf64,
  flatIndex,
  map,
  matmul64,
  Nd,
  nd,
  reduceNd,
  sumOf,
  zerosNd,
  zip,
  zip3,
} from './ref64.js';

export type Kind = 'float' | 'positive' | 'away' | 'unit' | 'int' | 'bool' | 'distinct';

export interface Input {
  shape: number[];
  kind?: Kind;
  /** int inputs: values in [lo, hi) */
  int?: [number, number];
  /** false: no gradient check for this input */
  grad?: boolean;
}

export interface Case {
  name: string;
  inputs: Input[];
  run: (...xs: Tensor[]) => Tensor;
  ref: (...xs: Nd[]) => Nd;
  /** forward tolerance (rtol = atol); gradient tolerance */
  tol?: number;
  gradTol?: number;
  noGrad?: boolean;
}

const f = (shape: number[], kind: Kind = 'float'): Input => ({ shape, kind });
const ints = (shape: number[], lo: number, hi: number): Input => ({ shape, kind: 'int', int: [lo, hi], grad: false });

const GELU = (x: number) => 0.5 * x * (1 + erf64(x / Math.SQRT2));
const GELU_T = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const sig = (x: number) => 1 / (1 + Math.exp(-x));

// Independent float64 references: Lanczos (g = 7, n = 9) for lgamma, and ψ by recurrence to x ≥ 10 plus
// the asymptotic series with more terms than the engine uses.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
function lgamma64(x: number): number {
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}
function digamma64(x: number): number {
  let r = 0;
  while (x < 10) r -= 1 / x++;
  const f = 1 / (x * x);
  return r + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))));
}

const unary: [string, (t: Tensor) => Tensor, (x: number) => number, Kind][] = [
  ['neg', (t) => t.neg(), (x) => -x, 'float'],
  ['abs', (t) => t.abs(), Math.abs, 'away'],
  ['exp', (t) => t.exp(), Math.exp, 'float'],
  ['log', (t) => t.log(), Math.log, 'positive'],
  ['log1p', (t) => t.log1p(), Math.log1p, 'positive'],
  ['expm1', (t) => t.expm1(), Math.expm1, 'float'],
  ['sqrt', (t) => t.sqrt(), Math.sqrt, 'positive'],
  ['rsqrt', (t) => t.rsqrt(), (x) => 1 / Math.sqrt(x), 'positive'],
  ['sin', (t) => t.sin(), Math.sin, 'float'],
  ['cos', (t) => t.cos(), Math.cos, 'float'],
  ['tanh', (t) => t.tanh(), Math.tanh, 'float'],
  ['sigmoid', (t) => t.sigmoid(), sig, 'float'],
  ['relu', (t) => t.relu(), (x) => Math.max(x, 0), 'away'],
  ['gelu', (t) => t.gelu(), GELU, 'float'],
  ['gelu tanh', (t) => t.gelu('tanh'), GELU_T, 'float'],
  ['silu', (t) => t.silu(), (x) => x * sig(x), 'float'],
  ['softplus', (t) => t.softplus(), (x) => Math.log1p(Math.exp(x)), 'float'],
  ['erf', (t) => t.erf(), erf64, 'float'],
  ['reciprocal', (t) => t.reciprocal(), (x) => 1 / x, 'away'],
  ['square', (t) => t.square(), (x) => x * x, 'float'],
  ['lgamma', (t) => t.lgamma(), lgamma64, 'positive'],
  ['digamma', (t) => t.digamma(), digamma64, 'positive'],
];

const binary: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number, Kind, Kind][] = [
  ['add', (a, b) => a.add(b), (x, y) => x + y, 'float', 'float'],
  ['sub', (a, b) => a.sub(b), (x, y) => x - y, 'float', 'float'],
  ['mul', (a, b) => a.mul(b), (x, y) => x * y, 'float', 'float'],
  ['div', (a, b) => a.div(b), (x, y) => x / y, 'float', 'away'],
  ['pow', (a, b) => a.pow(b), (x, y) => x ** y, 'positive', 'float'],
  ['maximum', (a, b) => a.maximum(b), Math.max, 'distinct', 'float'],
  ['minimum', (a, b) => a.minimum(b), Math.min, 'distinct', 'float'],
];

const cmpOps: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => boolean][] = [
  ['eq', (a, b) => a.eq(b), (x, y) => x === y],
  ['ne', (a, b) => a.ne(b), (x, y) => x !== y],
  ['lt', (a, b) => a.lt(b), (x, y) => x < y],
  ['le', (a, b) => a.le(b), (x, y) => x <= y],
  ['gt', (a, b) => a.gt(b), (x, y) => x > y],
  ['ge', (a, b) => a.ge(b), (x, y) => x >= y],
];

const softmaxRow = (r: number[]) => {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = sumOf(e);
  return e.map((v) => v / s);
};
const lseOf = (v: number[]) => {
  const m = Math.max(...v);
  return m + Math.log(sumOf(v.map((x) => Math.exp(x - m))));
};
const variance = (v: number[], corr: number) => {
  const mu = sumOf(v) / v.length;
  return sumOf(v.map((x) => (x - mu) ** 2)) / (v.length - corr);
};

function conv64(
  x: Nd,
  w: Nd,
  b: Nd | null,
  o: { stride: number[]; pad: number[][]; dil: number[]; groups: number },
): Nd {
  // x [N, C, ...S], w [O, C/g, ...K], S and K of 1 or 2 dims (1-D is treated as H = 1).
  const sd = x.shape.length - 2;
  const X = sd === 1 ? new Nd([x.shape[0]!, x.shape[1]!, 1, x.shape[2]!], x.data) : x;
  const W = sd === 1 ? new Nd([w.shape[0]!, w.shape[1]!, 1, w.shape[2]!], w.data) : w;
  const [N, , H, Wd] = X.shape as [number, number, number, number];
  const [O, Cg, KH, KW] = W.shape as [number, number, number, number];
  const st = sd === 1 ? [1, o.stride[0]!] : o.stride;
  const dl = sd === 1 ? [1, o.dil[0]!] : o.dil;
  const pd = sd === 1 ? [[0, 0], o.pad[0]!] : o.pad;
  const HO = Math.floor((H + pd[0]![0]! + pd[0]![1]! - dl[0]! * (KH - 1) - 1) / st[0]!) + 1;
  const WO = Math.floor((Wd + pd[1]![0]! + pd[1]![1]! - dl[1]! * (KW - 1) - 1) / st[1]!) + 1;
  const out = zerosNd([N, O, HO, WO]);
  const Og = O / o.groups;
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / Og);
      for (let i = 0; i < HO; i++)
        for (let j = 0; j < WO; j++) {
          let s = b ? b.data[oc]! : 0;
          for (let c = 0; c < Cg; c++)
            for (let p = 0; p < KH; p++)
              for (let q = 0; q < KW; q++) {
                const hi = i * st[0]! + p * dl[0]! - pd[0]![0]!;
                const wi = j * st[1]! + q * dl[1]! - pd[1]![0]!;
                if (hi < 0 || hi >= H || wi < 0 || wi >= Wd) continue;
                s += X.at(n, g * Cg + c, hi, wi) * W.at(oc, c, p, q);
              }
          out.data[((n * O + oc) * HO + i) * WO + j] = s;
        }
    }
  return sd === 1 ? new Nd([N, O, WO], out.data) : out;
}

function convT64(x: Nd, w: Nd, b: Nd | null, s: number, p: number, op: number, g: number, d: number): Nd {
  const [N, Cin, L] = x.shape as [number, number, number];
  const [, Og, K] = w.shape as [number, number, number];
  const Cout = Og * g;
  const Lout = (L - 1) * s - 2 * p + d * (K - 1) + op + 1;
  const out = zerosNd([N, Cout, Lout]);
  const Cg = Cin / g;
  for (let n = 0; n < N; n++)
    for (let ci = 0; ci < Cin; ci++) {
      const grp = Math.floor(ci / Cg);
      for (let co = 0; co < Og; co++)
        for (let l = 0; l < L; l++)
          for (let k = 0; k < K; k++) {
            const t = l * s + k * d - p;
            if (t < 0 || t >= Lout) continue;
            out.data[(n * Cout + grp * Og + co) * Lout + t]! += x.at(n, ci, l) * w.at(ci, co, k);
          }
    }
  if (b) for (let i = 0; i < out.size; i++) out.data[i]! += b.data[coords(out.shape, i)[1]!]!;
  return out;
}

function ce64(logits: Nd, target: Nd, o: { ignore?: number; smooth?: number; weight?: Nd; reduction?: string }): Nd {
  // logits [N, C, ...], integer targets [N, ...]
  const C = logits.shape[1]!;
  const logp = alongDim(logits, 1, (r) => {
    const l = lseOf(r);
    return r.map((v) => v - l);
  });
  const ign = o.ignore ?? -100;
  const eps = o.smooth ?? 0;
  const per: number[] = [];
  let denom = 0;
  for (let i = 0; i < target.size; i++) {
    const t = target.data[i]!;
    const c = coords(target.shape, i);
    const lp = (k: number) => logp.at(c[0]!, k, ...c.slice(1));
    if (t === ign) {
      per.push(0);
      continue;
    }
    const wt = o.weight ? o.weight.data[t]! : 1;
    let smooth = 0;
    for (let k = 0; k < C; k++) smooth += (o.weight ? o.weight.data[k]! : 1) * lp(k);
    per.push((1 - eps) * -wt * lp(t) + (eps * -smooth) / C);
    denom += wt;
  }
  if (o.reduction === 'none') return nd(target.shape, per);
  if (o.reduction === 'sum') return nd([], [sumOf(per)]);
  return nd([], [sumOf(per) / denom]);
}

const R = (v: number[], shape: number[] = []) => nd(shape, v);

export const cases: Case[] = [
  ...unary.map(([name, run, fn, kind]): Case => ({ name, inputs: [f([3, 5], kind)], run, ref: (x) => map(x, fn) })),
  ...binary.map(
    ([name, run, fn, ka, kb]): Case => ({
      name: `${name} (broadcast)`,
      inputs: [f([2, 3, 4], ka), f([3, 1], kb)],
      run,
      ref: (a, b) => zip(a, b, fn),
    }),
  ),
  ...binary.map(
    ([name, run, fn, ka]): Case => ({
      name: `${name} with scalar`,
      inputs: [f([4, 3], ka)],
      run: (a) => run(a, 1.5 as unknown as Tensor),
      ref: (a) => map(a, (x) => fn(x, 1.5)),
    }),
  ),
  ...cmpOps.map(
    ([name, run, fn]): Case => ({
      name,
      inputs: [ints([3, 4], -2, 3), ints([4], -2, 3)],
      run,
      ref: (a, b) => zip(a, b, (x, y) => (fn(x, y) ? 1 : 0)),
      noGrad: true,
    }),
  ),
  {
    name: 'where',
    inputs: [{ shape: [3, 4], kind: 'bool', grad: false }, f([3, 4]), f([4])],
    run: (c, a, b) => a.where(c, b),
    ref: (c, a, b) => zip3(c, a, b, (x, y, z) => (x ? y : z)),
  },
  {
    name: 'clamp',
    inputs: [f([4, 5], 'distinct')],
    run: (x) => x.clamp(-0.5, 0.7),
    ref: (x) => map(x, (v) => Math.min(Math.max(v, -0.5), 0.7)),
  },
  {
    name: 'cast float→int',
    inputs: [f([6])],
    run: (x) => x.mul(3).int(),
    ref: (x) => map(x, (v) => Math.trunc(Math.fround(v * 3))),
    noGrad: true,
  },
  // ---- reductions
  { name: 'sum all', inputs: [f([3, 4, 5])], run: (x) => x.sum(), ref: (x) => reduceNd(x, [0, 1, 2], false, sumOf) },
  {
    name: 'sum dims keepdim',
    inputs: [f([3, 4, 5])],
    run: (x) => x.sum([0, 2], true),
    ref: (x) => reduceNd(x, [0, 2], true, sumOf),
  },
  {
    name: 'mean dim',
    inputs: [f([3, 4, 5])],
    run: (x) => x.mean(1),
    ref: (x) => reduceNd(x, [1], false, (v) => sumOf(v) / v.length),
  },
  {
    name: 'prod dim',
    inputs: [f([3, 4], 'away')],
    run: (x) => x.prod(1),
    ref: (x) => reduceNd(x, [1], false, (v) => v.reduce((a, b) => a * b, 1)),
  },
  {
    name: 'amax dims',
    inputs: [f([3, 4, 5], 'distinct')],
    run: (x) => x.amax([0, 2]),
    ref: (x) => reduceNd(x, [0, 2], false, (v) => Math.max(...v)),
  },
  {
    name: 'max all',
    inputs: [f([3, 4], 'distinct')],
    run: (x) => x.max(),
    ref: (x) => reduceNd(x, [0, 1], false, (v) => Math.max(...v)),
  },
  {
    name: 'max(dim).values',
    inputs: [f([3, 4, 5], 'distinct')],
    run: (x) => x.max(1).values,
    ref: (x) => reduceNd(x, [1], false, (v) => Math.max(...v)),
  },
  {
    name: 'min(dim, keepdim).values',
    inputs: [f([3, 4, 5], 'distinct')],
    run: (x) => x.min(-1, true).values,
    ref: (x) => reduceNd(x, [2], true, (v) => Math.min(...v)),
  },
  {
    name: 'argmax dim',
    inputs: [f([3, 4, 5], 'distinct')],
    run: (x) => x.argmax(1),
    ref: (x) => reduceNd(x, [1], false, (v) => v.indexOf(Math.max(...v))),
    noGrad: true,
  },
  {
    name: 'argmin flat',
    inputs: [f([3, 4], 'distinct')],
    run: (x) => x.argmin(),
    ref: (x) => R([Array.from(x.data).indexOf(Math.min(...x.data))]),
    noGrad: true,
  },
  { name: 'logsumexp', inputs: [f([3, 6])], run: (x) => x.logsumexp(-1), ref: (x) => reduceNd(x, [1], false, lseOf) },
  {
    name: 'var unbiased',
    inputs: [f([4, 6])],
    run: (x) => x.var(1),
    ref: (x) => reduceNd(x, [1], false, (v) => variance(v, 1)),
  },
  {
    name: 'std biased keepdim',
    inputs: [f([4, 6])],
    run: (x) => x.std(0, { correction: 0, keepdim: true }),
    ref: (x) => reduceNd(x, [0], true, (v) => Math.sqrt(variance(v, 0))),
  },
  {
    name: 'cumsum',
    inputs: [f([3, 5])],
    run: (x) => x.cumsum(1),
    ref: (x) =>
      alongDim(x, 1, (r) => {
        let s = 0;
        return r.map((v) => (s += v));
      }),
  },
  // ---- matmul
  { name: 'matmul 2-D', inputs: [f([5, 7]), f([7, 3])], run: (a, b) => a.matmul(b), ref: matmul64 },
  {
    name: 'matmul batched broadcast',
    inputs: [f([2, 1, 4, 6]), f([3, 6, 5])],
    run: (a, b) => a.matmul(b),
    ref: matmul64,
  },
  { name: 'matmul N-D · 2-D', inputs: [f([2, 3, 6]), f([6, 4])], run: (a, b) => a.matmul(b), ref: matmul64 },
  { name: 'matmul vector', inputs: [f([6]), f([2, 6, 3])], run: (a, b) => a.matmul(b), ref: matmul64 },
  {
    name: 'matmul transposed views',
    inputs: [f([7, 5]), f([3, 7])],
    run: (a, b) => a.mT.matmul(b.mT),
    ref: (a, b) => matmul64(tr(a), tr(b)),
  },
  // ---- convolution and pooling
  {
    name: 'conv1d stride 2 pad 1 bias',
    inputs: [f([2, 3, 9]), f([4, 3, 3]), f([4])],
    run: (x, w, b) => F.conv1d(x, w, { bias: b, stride: 2, padding: 1 }),
    ref: (x, w, b) => conv64(x, w, b, { stride: [2], pad: [[1, 1]], dil: [1], groups: 1 }),
  },
  {
    name: "conv1d 'same' dilation 2",
    inputs: [f([2, 2, 8]), f([3, 2, 4])],
    run: (x, w) => F.conv1d(x, w, { padding: 'same', dilation: 2 }),
    ref: (x, w) => conv64(x, w, null, { stride: [1], pad: [[3, 3]], dil: [2], groups: 1 }),
  },
  {
    name: 'conv1d groups 2',
    inputs: [f([1, 4, 7]), f([6, 2, 3])],
    run: (x, w) => F.conv1d(x, w, { groups: 2 }),
    ref: (x, w) => conv64(x, w, null, { stride: [1], pad: [[0, 0]], dil: [1], groups: 2 }),
  },
  {
    name: 'conv2d stride/pad/dilation/groups',
    inputs: [f([2, 4, 6, 5]), f([4, 2, 3, 2]), f([4])],
    run: (x, w, b) => F.conv2d(x, w, { bias: b, stride: [2, 1], padding: [1, 1], dilation: [1, 2], groups: 2 }),
    ref: (x, w, b) =>
      conv64(x, w, b, {
        stride: [2, 1],
        pad: [
          [1, 1],
          [1, 1],
        ],
        dil: [1, 2],
        groups: 2,
      }),
  },
  {
    name: 'convTranspose1d stride 2 pad 1 outputPadding 1',
    inputs: [f([2, 3, 5]), f([3, 2, 3]), f([2])],
    run: (x, w, b) => F.convTranspose1d(x, w, { bias: b, stride: 2, padding: 1, outputPadding: 1 }),
    ref: (x, w, b) => convT64(x, w, b, 2, 1, 1, 1, 1),
  },
  {
    name: 'convTranspose1d groups 2 dilation 2',
    inputs: [f([1, 4, 4]), f([4, 1, 3])],
    run: (x, w) => F.convTranspose1d(x, w, { groups: 2, dilation: 2 }),
    ref: (x, w) => convT64(x, w, null, 1, 0, 0, 2, 2),
  },
  {
    name: 'maxPool1d k3 s2 p1',
    inputs: [f([2, 3, 8], 'distinct')],
    run: (x) => F.maxPool1d(x, 3, { stride: 2, padding: 1 }),
    ref: (x) => pool64(x, 3, 2, 1, (v) => Math.max(...v), Number.NEGATIVE_INFINITY),
  },
  {
    name: 'avgPool1d k2',
    inputs: [f([2, 3, 7])],
    run: (x) => F.avgPool1d(x, 2),
    ref: (x) => pool64(x, 2, 2, 0, (v) => sumOf(v) / v.length, 0),
  },
  // ---- movement and indexing
  {
    name: 'transpose+reshape',
    inputs: [f([3, 4, 2])],
    run: (x) => x.transpose(0, 2).reshape([2, 12]),
    ref: (x) => nd([2, 12], permuteData(x, [2, 1, 0])),
  },
  {
    name: 'permute',
    inputs: [f([2, 3, 4])],
    run: (x) => x.permute([1, 2, 0]).contiguous(),
    ref: (x) => nd([3, 4, 2], permuteData(x, [1, 2, 0])),
  },
  {
    name: 'slice with step',
    inputs: [f([5, 7])],
    run: (x) => x.slice(1, 1, 7, 2).slice(0, -3),
    ref: (x) => pick(x, [3, 3], ([i, j]) => [i! + 2, 1 + 2 * j!]),
  },
  {
    name: 'expand',
    inputs: [f([3, 1])],
    run: (x) => x.expand([2, 3, 4]).mul(1),
    ref: (x) => pick(x, [2, 3, 4], ([, i]) => [i!, 0]),
  },
  {
    name: 'flip',
    inputs: [f([3, 4])],
    run: (x) => x.flip([0, 1]).mul(1),
    ref: (x) => pick(x, [3, 4], ([i, j]) => [2 - i!, 3 - j!]),
  },
  {
    name: 'squeeze/unsqueeze',
    inputs: [f([3, 1, 4])],
    run: (x) => x.squeeze(1).unsqueeze(0).mul(2),
    ref: (x) =>
      new Nd(
        [1, 3, 4],
        x.data.map((v) => 2 * v),
      ),
  },
  {
    name: 'cat dim 1',
    inputs: [f([2, 3]), f([2, 2])],
    run: (a, b) => cat([a, b], 1),
    ref: catRef,
  },
  {
    name: 'stack dim 1',
    inputs: [f([2, 3]), f([2, 3])],
    run: (a, b) => stack([a, b], 1),
    ref: (a, b) =>
      nd([2, 2, 3], [...a.data.slice(0, 3), ...b.data.slice(0, 3), ...a.data.slice(3), ...b.data.slice(3)]),
  },
  {
    name: 'split',
    inputs: [f([7, 2])],
    run: (x) => {
      const [a, , c] = x.split(3, 0);
      return cat([a!, c!.mul(3)], 0);
    },
    ref: (x) => nd([4, 2], [...x.data.slice(0, 6), 3 * x.at(6, 0), 3 * x.at(6, 1)]),
  },
  {
    name: 'chunk',
    inputs: [f([7, 2])],
    run: (x) => {
      const [p, q] = x.chunk(2, 1);
      return p!.sub(q!);
    },
    ref: (x) =>
      nd(
        [7, 1],
        [0, 1, 2, 3, 4, 5, 6].map((r) => x.at(r, 0) - x.at(r, 1)),
      ),
  },
  {
    name: 'pad constant',
    inputs: [f([2, 3])],
    run: (x) => F.pad(x, [1, 2, 0, 1], 0.5),
    ref: (x) => pick(x, [3, 6], ([i, j]) => [i!, j! - 1], 0.5),
  },
  {
    name: 'pad negative crops',
    inputs: [f([2, 5])],
    run: (x) => F.pad(x, [-1, 1]),
    ref: (x) => pick(x, [2, 5], ([i, j]) => [i!, j! + 1], 0),
  },
  {
    name: 'repeat',
    inputs: [f([2, 3])],
    run: (x) => x.repeat([2, 1, 2]),
    ref: (x) => pick(x, [2, 2, 6], ([, i, j]) => [i!, j! % 3]),
  },
  {
    name: 'gather',
    inputs: [f([3, 5]), ints([3, 4], 0, 5)],
    run: (x, i) => x.gather(1, i),
    ref: (x, i) =>
      pick(
        i,
        [3, 4],
        ([r, c]) => [r!, c!],
        0,
        (r, c) => x.at(r!, i.at(r!, c!)),
      ),
  },
  {
    name: 'indexSelect dim 0',
    inputs: [f([4, 3]), ints([5], 0, 4)],
    run: (x, i) => x.indexSelect(0, i),
    ref: (x, i) => pick(x, [5, 3], ([r, c]) => [i.data[r!]!, c!]),
  },
  {
    name: 'scatterAdd',
    inputs: [f([3, 4]), ints([3, 5], 0, 4), f([3, 5])],
    run: (x, i, s) => x.scatterAdd(1, i, s),
    ref: (x, i, s) => {
      const out = new Nd([3, 4], x.data.slice());
      for (let r = 0; r < 3; r++) for (let c = 0; c < 5; c++) out.data[r * 4 + i.at(r, c)]! += s.at(r, c);
      return out;
    },
  },
  {
    name: 'tril',
    inputs: [f([4, 5])],
    run: (x) => x.tril(1),
    ref: (x) =>
      pick(
        x,
        [4, 5],
        ([i, j]) => [i!, j!],
        0,
        (i, j, v) => (j! - i! <= 1 ? v : 0),
      ),
  },
  {
    name: 'triu',
    inputs: [f([2, 4, 4])],
    run: (x) => x.triu(),
    ref: (x) =>
      pick(
        x,
        [2, 4, 4],
        (c) => c,
        0,
        (_, i, j, v) => (j! >= i! ? v : 0),
      ),
  },
  {
    name: 'oneHot',
    inputs: [ints([2, 3], 0, 4)],
    run: (i) => F.oneHot(i, 4),
    ref: (i) =>
      nd(
        [2, 3, 4],
        Array.from(i.data).flatMap((c) => [0, 1, 2, 3].map((k) => (k === c ? 1 : 0))),
      ),
    noGrad: true,
  },
  {
    name: 'sort values descending',
    inputs: [f([3, 5], 'distinct')],
    run: (x) => x.sort(1, true).values,
    ref: (x) => alongDim(x, 1, (r) => [...r].sort((a, b) => b - a)),
  },
  {
    name: 'sort indices',
    inputs: [f([3, 5], 'distinct')],
    run: (x) => x.sort(0).indices,
    ref: (x) =>
      alongDim(x, 0, (r) =>
        r
          .map((v, i) => [v, i] as const)
          .sort((a, b) => a[0] - b[0])
          .map((p) => p[1]),
      ),
    noGrad: true,
  },
  {
    name: 'topk',
    inputs: [f([3, 6], 'distinct')],
    run: (x) => x.topk(2, -1).values,
    ref: (x) =>
      nd(
        [3, 2],
        [0, 1, 2].flatMap((r) => [...Array.from(x.data.slice(r * 6, r * 6 + 6))].sort((a, b) => b - a).slice(0, 2)),
      ),
  },
  // ---- composites
  {
    name: 'softmax',
    inputs: [f([3, 5])],
    run: (x) => x.softmax(-1),
    ref: (x) => alongDim(x, 1, softmaxRow),
  },
  {
    name: 'logSoftmax dim 0',
    inputs: [f([4, 3])],
    run: (x) => x.logSoftmax(0),
    ref: (x) =>
      alongDim(x, 0, (r) => {
        const l = lseOf(r);
        return r.map((v) => v - l);
      }),
  },
  {
    name: 'layerNorm affine',
    inputs: [f([3, 6]), f([6]), f([6])],
    run: (x, w, b) => F.layerNorm(x, [6], { weight: w, bias: b }),
    ref: (x, w, b) => {
      const n = alongDim(x, 1, (r) => {
        const mu = sumOf(r) / r.length;
        const v = variance(r, 0);
        return r.map((a) => (a - mu) / Math.sqrt(v + 1e-5));
      });
      return zip(
        zip(n, w, (a, c) => a * c),
        b,
        (a, c) => a + c,
      );
    },
  },
  {
    name: 'rmsNorm',
    inputs: [f([3, 6]), f([6])],
    run: (x, w) => F.rmsNorm(x, [6], { weight: w, eps: 1e-6 }),
    ref: (x, w) =>
      zip(
        alongDim(x, 1, (r) => {
          const ms = sumOf(r.map((a) => a * a)) / r.length;
          return r.map((a) => a / Math.sqrt(ms + 1e-6));
        }),
        w,
        (a, c) => a * c,
      ),
  },
  {
    name: 'batchNorm training',
    inputs: [f([4, 3, 5]), f([3]), f([3])],
    run: (x, w, b) => F.batchNorm(x, null, null, { weight: w, bias: b, training: true }),
    ref: (x, w, b) => {
      const out = zerosNd(x.shape);
      for (let c = 0; c < 3; c++) {
        const vals: number[] = [];
        for (let n = 0; n < 4; n++) for (let l = 0; l < 5; l++) vals.push(x.at(n, c, l));
        const mu = sumOf(vals) / vals.length;
        const v = variance(vals, 0);
        for (let n = 0; n < 4; n++)
          for (let l = 0; l < 5; l++)
            out.data[(n * 3 + c) * 5 + l] = ((x.at(n, c, l) - mu) / Math.sqrt(v + 1e-5)) * w.data[c]! + b.data[c]!;
      }
      return out;
    },
  },
  {
    name: 'embedding',
    inputs: [ints([2, 3], 0, 5), f([5, 4])],
    run: (i, w) => F.embedding(i, w),
    ref: (i, w) => pick(w, [2, 3, 4], ([a, b, c]) => [i.at(a!, b!), c!]),
  },
  {
    name: 'crossEntropy ignoreIndex + labelSmoothing + weight',
    inputs: [f([4, 5]), { shape: [4], kind: 'int', int: [0, 5], grad: false }, f([5], 'positive')],
    run: (x, t, w) => F.crossEntropy(x, t.where(t.ne(3), -100), { labelSmoothing: 0.1, weight: w }),
    ref: (x, t, w) =>
      ce64(
        x,
        map(t, (v) => (v === 3 ? -100 : v)),
        { smooth: 0.1, weight: w },
      ),
  },
  {
    name: 'crossEntropy class dim 1 with extra dims',
    inputs: [f([2, 4, 3]), ints([2, 3], 0, 4)],
    run: (x, t) => F.crossEntropy(x, t, { reduction: 'sum' }),
    ref: (x, t) => ce64(x, t, { reduction: 'sum' }),
  },
  {
    name: 'crossEntropy probability targets',
    inputs: [f([3, 4]), f([3, 4], 'positive')],
    run: (x, p) => F.crossEntropy(x, p.div(p.sum(1, true))),
    ref: (x, p) => {
      const q = alongDim(p, 1, (r) => r.map((v) => v / sumOf(r)));
      const lp = alongDim(x, 1, (r) => r.map((v) => v - lseOf(r)));
      return R([-sumOf(Array.from(lp.data, (v, i) => v * q.data[i]!)) / 3]);
    },
  },
  {
    name: 'nllLoss',
    inputs: [f([4, 3]), ints([4], 0, 3)],
    run: (x, t) => F.nllLoss(x, t),
    ref: (x, t) => R([-sumOf(Array.from(t.data, (c, i) => x.at(i, c))) / 4]),
  },
  {
    name: 'mseLoss',
    inputs: [f([3, 4]), f([3, 4])],
    run: (a, b) => F.mseLoss(a, b),
    ref: (a, b) => R([sumOf(Array.from(a.data, (v, i) => (v - b.data[i]!) ** 2)) / 12]),
  },
  {
    name: 'l1Loss sum',
    inputs: [f([3, 4]), f([3, 4], 'distinct')],
    run: (a, b) => F.l1Loss(a, b, { reduction: 'sum' }),
    ref: (a, b) => R([sumOf(Array.from(a.data, (v, i) => Math.abs(v - b.data[i]!)))]),
  },
  {
    name: 'binaryCrossEntropyWithLogits posWeight',
    inputs: [f([3, 4]), f([3, 4], 'unit'), f([4], 'positive')],
    run: (x, y, pw) => F.binaryCrossEntropyWithLogits(x, y, { posWeight: pw }),
    ref: (x, y, pw) =>
      R([
        sumOf(
          Array.from(x.data, (v, i) => {
            const t = y.data[i]!;
            const p = pw.data[i % 4]!;
            return -(p * t * Math.log(sig(v)) + (1 - t) * Math.log(1 - sig(v)));
          }),
        ) / 12,
      ]),
  },
  {
    name: 'klDiv batchmean',
    inputs: [f([3, 4]), f([3, 4], 'unit')],
    run: (x, p) => F.klDiv(x.logSoftmax(1), p, { reduction: 'batchmean' }),
    ref: (x, p) => {
      const lp = alongDim(x, 1, (r) => r.map((v) => v - lseOf(r)));
      return R([sumOf(Array.from(p.data, (t, i) => t * (Math.log(t) - lp.data[i]!))) / 3]);
    },
  },
  {
    name: 'attention chain (causal SDPA)',
    inputs: [f([1, 2, 4, 3]), f([1, 2, 4, 3]), f([1, 2, 4, 3])],
    run: (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }),
    ref: (q, k, v) => {
      const s = matmul64(q, tr(k));
      const m = map(s, (x) => x / Math.sqrt(3));
      for (let i = 0; i < m.size; i++) {
        const c = coords(m.shape, i);
        if (c[3]! > c[2]!) m.data[i] = Number.NEGATIVE_INFINITY;
      }
      return matmul64(alongDim(m, 3, softmaxRow), v);
    },
  },
];

function tr(a: Nd): Nd {
  const r = a.shape.length;
  const perm = a.shape.map((_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
  return nd(
    perm.map((p) => a.shape[p]!),
    permuteData(a, perm),
  );
}

function permuteData(a: Nd, perm: number[]): number[] {
  const shape = perm.map((p) => a.shape[p]!);
  const out: number[] = [];
  for (let i = 0; i < a.size; i++) {
    const c = coords(shape, i);
    const src = new Array<number>(perm.length);
    perm.forEach((p, j) => {
      src[p] = c[j]!;
    });
    out.push(a.data[flatIndex(a.shape, src)]!);
  }
  return out;
}

/** out[c] = a[map(c)] (fill outside), optionally transformed by `g(...c, value)`. */
function pick(a: Nd, shape: number[], m: (c: number[]) => number[], fill = 0, g?: (...args: number[]) => number): Nd {
  const out = zerosNd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = coords(shape, i);
    const s = m(c);
    const inside = s.every((v, j) => v >= 0 && v < a.shape[j]!);
    const v = inside ? a.data[flatIndex(a.shape, s)]! : fill;
    out.data[i] = g ? g(...c, v) : v;
  }
  return out;
}

function catRef(a: Nd, b: Nd): Nd {
  const out = zerosNd([2, 5]);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 5; j++) out.data[i * 5 + j] = j < 3 ? a.at(i, j) : b.at(i, j - 3);
  return out;
}

function pool64(x: Nd, k: number, s: number, p: number, fn: (v: number[]) => number, padv: number): Nd {
  const [N, C, L] = x.shape as [number, number, number];
  const Lo = Math.floor((L + 2 * p - k) / s) + 1;
  const out = zerosNd([N, C, Lo]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let o = 0; o < Lo; o++) {
        const v: number[] = [];
        for (let j = 0; j < k; j++) {
          const t = o * s + j - p;
          v.push(t < 0 || t >= L ? padv : x.at(n, c, t));
        }
        out.data[(n * C + c) * Lo + o] = fn(v);
      }
  return out;
}

export { bget, broadcast, tensor };
