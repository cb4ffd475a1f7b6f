// The CPU kernels table (TypeScript). Every kernel reads strided views and writes a fresh contiguous
// typed array. `satisfies Kernels` makes a missing or mistyped kernel a compile error.
import type { ComputeDType, DType } from '../../dtype.js';
import { type AnyTypedArray, allocArray } from '../../dtype.js';
import { ValueError } from '../../errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../io/half.js';
import { contiguousStrides, isContiguous, numel } from '../../shape.js';
import type { BinaryOp, CompareOp, Kernels, ReduceOp, Storage, UnaryOp, View } from '../backend.js';
import { fusedKernels } from './fused.js';
import { gemm } from './matmul.js';
import { forEachRow } from './strided.js';
import {
  arenaArray,
  releaseStorageArray,
  wasmAdam,
  wasmAssign,
  wasmBiasAct,
  wasmBinary,
  wasmCat,
  wasmCausalAttention,
  wasmCausalAttentionBackward,
  wasmColumnSum,
  wasmCompare,
  wasmConv,
  wasmConvBackwardBias,
  wasmConvBackwardInput,
  wasmConvBackwardWeight,
  wasmConvTranspose,
  wasmCopy,
  wasmGatherRows,
  wasmMatmul,
  wasmPad,
  wasmReluBackward,
  wasmScatterRows,
  wasmUnary,
  wasmWhere,
} from './wasm.js';

const arr = (v: View): AnyTypedArray => v.storage.buf as AnyTypedArray;

function store(buf: AnyTypedArray, dtype: DType): Storage {
  return { backend: 'cpu', dtype, length: buf.length, buf, refs: 0, version: 0 };
}

/** A new storage array: float32 and int32 ones in the wasm arena where it pays (see `arenaArray`). */
function newArray(dtype: DType, n: number): AnyTypedArray {
  const a = dtype === 'float32' ? arenaArray(Float32Array, n) : dtype === 'int32' ? arenaArray(Int32Array, n) : null;
  return a ?? allocArray(dtype, n);
}

/** The view's elements as a contiguous array: the storage itself when already contiguous and whole. */
function contig(v: View): AnyTypedArray {
  const a = arr(v);
  const n = numel(v.shape);
  if (isContiguous(v.shape, v.strides))
    return v.offset === 0 && a.length === n ? a : a.subarray(v.offset, v.offset + n);
  return copyArr(v, v.dtype);
}

/** A contiguous copy; `keep` lets the wasm path put it in its arena (only for arrays that become storages). */
function copyArr(v: View, dtype: DType, keep = false): AnyTypedArray {
  const total = numel(v.shape);
  const a = arr(v);
  if (dtype === v.dtype && (a instanceof Float32Array || a instanceof Int32Array)) {
    const w = wasmCopy(a, v.shape, v.strides, v.offset, total, keep);
    if (w) return w;
  }
  const out = allocArray(dtype, total);
  const ost = contiguousStrides(v.shape);
  forEachRow(v.shape, [ost, v.strides], [0, v.offset], (o, n, s) => {
    let oi = o[0]!;
    let ai = o[1]!;
    const sa = s[1]!;
    for (let i = 0; i < n; i++, ai += sa) out[oi++] = a[ai]!;
  });
  return out;
}

const SQRT1_2 = Math.SQRT1_2;
const GELU_C = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// erfc with |relative error| < 1.2e-7 (Numerical Recipes' Chebyshev fit), enough for float32: t·exp(−z² + c(t))
// for z = |x|, t = 1/(1 + z/2), which keeps its relative accuracy in the right tail (where 1 − erf would cancel).
function erfcAbs(z: number): number {
  const t = 1 / (1 + 0.5 * z);
  return (
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    )
  );
}

export function erf(x: number): number {
  const r = erfcAbs(Math.abs(x));
  return x >= 0 ? 1 - r : r - 1;
}

/** Φ(x), the standard normal CDF, as erfc(−x/√2)/2: relatively accurate in the left tail, where GELU's x·Φ(x) lives. */
function normalCdf(x: number): number {
  const r = 0.5 * erfcAbs(Math.abs(x) * SQRT1_2);
  return x >= 0 ? 1 - r : r;
}

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg':
      return (x) => -x;
    case 'abs':
      return Math.abs;
    case 'sign':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN);
    case 'exp':
      return Math.exp;
    case 'log':
      return Math.log;
    case 'log1p':
      return Math.log1p;
    case 'expm1':
      return Math.expm1;
    case 'sqrt':
      return Math.sqrt;
    case 'rsqrt':
      return (x) => 1 / Math.sqrt(x);
    case 'sin':
      return Math.sin;
    case 'cos':
      return Math.cos;
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
    case 'relu':
      return (x) => (x > 0 ? x : x === x ? 0 : x);
    case 'gelu':
      return (x) => x * normalCdf(x);
    case 'geluTanh':
      return (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case 'silu':
      return (x) => (x >= 0 ? x / (1 + Math.exp(-x)) : (x * Math.exp(x)) / (1 + Math.exp(x)));
    case 'softplus':
      // log(1 + e^x) without overflow, as PyTorch's threshold=20 does.
      return (x) => (x > 20 ? x : Math.log1p(Math.exp(x)));
    case 'erf':
      return erf;
    case 'reciprocal':
      return (x) => 1 / x;
    case 'floor':
      return Math.floor;
    case 'round':
      // Round half to even, as torch.round does.
      return (x) => {
        const r = Math.round(x);
        return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
      };
    case 'logicalNot':
      return (x) => (x ? 0 : 1);
    case 'geluGrad':
      // Φ(x) + x·φ(x)
      return (x) => normalCdf(x) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
    case 'geluTanhGrad':
      return (x) => {
        const t = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
      };
    case 'siluGrad':
      return (x) => {
        const s = x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
        return s * (1 + x * (1 - s));
      };
  }
}

function binaryLoop(
  op: BinaryOp,
  out: AnyTypedArray,
  a: AnyTypedArray,
  b: AnyTypedArray,
  o: number[],
  n: number,
  s: number[],
) {
  let oi = o[0]!;
  let ai = o[1]!;
  let bi = o[2]!;
  const sa = s[1]!;
  const sb = s[2]!;
  switch (op) {
    case 'add':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) out[oi++] = a[ai]! + b[bi]!;
      return;
    case 'sub':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) out[oi++] = a[ai]! - b[bi]!;
      return;
    case 'mul':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) out[oi++] = a[ai]! * b[bi]!;
      return;
    case 'div':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) out[oi++] = a[ai]! / b[bi]!;
      return;
    case 'pow':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) out[oi++] = a[ai]! ** b[bi]!;
      return;
    case 'maximum':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) {
        const x = a[ai]!;
        const y = b[bi]!;
        out[oi++] = x !== x || y !== y ? Number.NaN : x > y ? x : y;
      }
      return;
    case 'minimum':
      for (let i = 0; i < n; i++, ai += sa, bi += sb) {
        const x = a[ai]!;
        const y = b[bi]!;
        out[oi++] = x !== x || y !== y ? Number.NaN : x < y ? x : y;
      }
      return;
  }
}

function cmp(op: CompareOp): (x: number, y: number) => boolean {
  switch (op) {
    case 'eq':
      return (x, y) => x === y;
    case 'ne':
      return (x, y) => x !== y;
    case 'lt':
      return (x, y) => x < y;
    case 'le':
      return (x, y) => x <= y;
    case 'gt':
      return (x, y) => x > y;
    case 'ge':
      return (x, y) => x >= y;
  }
}

/** Moves `dims` to the end and returns a contiguous array laid out [kept..., reduced...]. */
function reduceLayout(x: View, dims: readonly number[]): { data: AnyTypedArray; outer: number; inner: number } {
  const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const perm = [...kept, ...dims];
  const shape = perm.map((p) => x.shape[p]!);
  const strides = perm.map((p) => x.strides[p]!);
  const inner = dims.reduce((acc, d) => acc * x.shape[d]!, 1);
  const data = contig({ ...x, shape, strides });
  return { data, outer: inner === 0 ? numel(kept.map((k) => x.shape[k]!)) : data.length / inner, inner };
}

function reduceRow(op: ReduceOp, a: AnyTypedArray, start: number, n: number): number {
  switch (op) {
    case 'sum': {
      let acc = 0;
      for (let i = start, e = start + n; i < e; i++) acc += a[i]!;
      return acc;
    }
    case 'prod': {
      let acc = 1;
      for (let i = start, e = start + n; i < e; i++) acc *= a[i]!;
      return acc;
    }
    case 'max': {
      let acc = Number.NEGATIVE_INFINITY;
      for (let i = start, e = start + n; i < e; i++) {
        const v = a[i]!;
        if (v > acc || v !== v) acc = v;
        if (v !== v) break;
      }
      return acc;
    }
    case 'min': {
      let acc = Number.POSITIVE_INFINITY;
      for (let i = start, e = start + n; i < e; i++) {
        const v = a[i]!;
        if (v < acc || v !== v) acc = v;
        if (v !== v) break;
      }
      return acc;
    }
  }
}

/** Splits a contiguous shape around `dim` into (outer, len, inner) for per-dim loops. */
function around(shape: readonly number[], dim: number) {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < dim; i++) outer *= shape[i]!;
  for (let i = dim + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, len: shape[dim]!, inner };
}

/** The TypeScript batched product (the reference, and the path where wasm is off or the product tiny). */
function tsMatmul(a: View, b: View): Float32Array {
  const r = a.shape.length;
  const m = a.shape[r - 2]!;
  const k = a.shape[r - 1]!;
  const n = b.shape[r - 1]!;
  const batch = a.shape.slice(0, r - 2);
  const nb = numel(batch);
  const out = new Float32Array(nb * m * n);
  const A = arr(a) as Float32Array;
  const B = arr(b) as Float32Array;
  const idx = new Array<number>(batch.length).fill(0);
  for (let t = 0; t < nb; t++) {
    let ao = a.offset;
    let bo = b.offset;
    for (let d = 0; d < batch.length; d++) {
      ao += idx[d]! * a.strides[d]!;
      bo += idx[d]! * b.strides[d]!;
    }
    gemm(
      out,
      t * m * n,
      { data: A, offset: ao, rs: a.strides[r - 2]!, cs: a.strides[r - 1]! },
      { data: B, offset: bo, rs: b.strides[r - 2]!, cs: b.strides[r - 1]! },
      m,
      n,
      k,
    );
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d]! < batch[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

export const cpuKernels = {
  ...fusedKernels,

  adam(p, grad, m, v, s) {
    if (!wasmAdam(p, grad, m, v, s)) fusedKernels.adam(p, grad, m, v, s);
  },

  unary(op, x) {
    const a = contig(x);
    if (a instanceof Float32Array && x.dtype === 'float32') {
      const w = wasmUnary(op, a);
      if (w) return store(w, 'float32');
    }
    // Allocated only here: the wasm path writes its own output, and a dead [2048, 512] array costs its zeroing.
    const out = allocArray(
      x.dtype === 'bool' || op === 'logicalNot' ? (op === 'logicalNot' ? 'bool' : x.dtype) : x.dtype,
      numel(x.shape),
    );
    const f = unaryFn(op);
    // The common activations get a loop without a call per element.
    if (op === 'relu') for (let i = 0; i < a.length; i++) out[i] = a[i]! > 0 || a[i] !== a[i] ? a[i]! : 0;
    else if (op === 'neg') for (let i = 0; i < a.length; i++) out[i] = -a[i]!;
    else if (op === 'exp') for (let i = 0; i < a.length; i++) out[i] = Math.exp(a[i]!);
    else for (let i = 0; i < a.length; i++) out[i] = f(a[i]!);
    return store(out, out instanceof Uint8Array ? 'bool' : x.dtype);
  },

  binary(op, a, b, dtype: ComputeDType) {
    if (dtype === 'float32') {
      const w = wasmBinary(op, a, b);
      if (w) return store(w, dtype);
    }
    const out = allocArray(dtype, numel(a.shape));
    const A = arr(a);
    const B = arr(b);
    forEachRow(a.shape, [contiguousStrides(a.shape), a.strides, b.strides], [0, a.offset, b.offset], (o, n, s) =>
      binaryLoop(op, out, A, B, o, n, s),
    );
    return store(out, dtype);
  },

  compare(op, a, b) {
    const w = wasmCompare(op, a, b);
    if (w) return store(w, 'bool');
    const out = new Uint8Array(numel(a.shape));
    const A = arr(a);
    const B = arr(b);
    const f = cmp(op);
    forEachRow(a.shape, [contiguousStrides(a.shape), a.strides, b.strides], [0, a.offset, b.offset], (o, n, s) => {
      let oi = o[0]!;
      let ai = o[1]!;
      let bi = o[2]!;
      for (let i = 0; i < n; i++, ai += s[1]!, bi += s[2]!) out[oi++] = f(A[ai]!, B[bi]!) ? 1 : 0;
    });
    return store(out, 'bool');
  },

  where(c, a, b) {
    const w = wasmWhere(c, a, b);
    if (w) return store(w, 'float32');
    const out = allocArray(a.dtype, numel(a.shape));
    const C = arr(c);
    const A = arr(a);
    const B = arr(b);
    forEachRow(
      a.shape,
      [contiguousStrides(a.shape), c.strides, a.strides, b.strides],
      [0, c.offset, a.offset, b.offset],
      (o, n, s) => {
        let oi = o[0]!;
        let ci = o[1]!;
        let ai = o[2]!;
        let bi = o[3]!;
        for (let i = 0; i < n; i++, ci += s[1]!, ai += s[2]!, bi += s[3]!) out[oi++] = C[ci] ? A[ai]! : B[bi]!;
      },
    );
    return store(out, a.dtype);
  },

  cast(x, dtype) {
    let src = contig(x);
    // Half-precision storage goes through float32 (round to nearest even on the way down).
    if (x.dtype === 'float16') src = f16ToF32(src as Uint16Array);
    else if (x.dtype === 'bfloat16') src = bf16ToF32(src as Uint16Array);
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const f = src instanceof Float32Array ? src : Float32Array.from(src);
      return store(dtype === 'float16' ? f32ToF16(f) : f32ToBf16(f), dtype);
    }
    const out = allocArray(dtype, src.length);
    if (dtype === 'int32') for (let i = 0; i < src.length; i++) out[i] = Math.trunc(src[i]!);
    else if (dtype === 'bool') for (let i = 0; i < src.length; i++) out[i] = src[i] ? 1 : 0;
    else out.set(src);
    return store(out, dtype);
  },

  copy(x) {
    return store(copyArr(x, x.dtype, true), x.dtype);
  },

  reduce(op, x, dims) {
    if (op === 'sum') {
      const w = wasmColumnSum(x, dims);
      if (w) return store(w, 'float32');
    }
    const { data, outer, inner } = reduceLayout(x, dims);
    const out = allocArray(x.dtype === 'bool' ? 'int32' : x.dtype, outer);
    for (let i = 0; i < outer; i++) out[i] = reduceRow(op, data, i * inner, inner);
    return store(out, x.dtype === 'bool' ? 'int32' : x.dtype);
  },

  argReduce(op, x, dim) {
    const { data, outer, inner } = reduceLayout(x, [dim]);
    const out = new Int32Array(outer);
    const better = op === 'argmax' ? (v: number, b: number) => v > b : (v: number, b: number) => v < b;
    for (let i = 0; i < outer; i++) {
      let best = data[i * inner]!;
      let bi = 0;
      for (let j = 1; j < inner && best === best; j++) {
        const v = data[i * inner + j]!;
        // NaN wins, like torch.argmax.
        if (better(v, best) || v !== v) {
          best = v;
          bi = j;
        }
      }
      out[i] = bi;
    }
    return store(out, 'int32');
  },

  cumsum(x, dim) {
    const a = contig(x);
    const { outer, len, inner } = around(x.shape, dim);
    const out = allocArray(x.dtype === 'bool' ? 'int32' : x.dtype, a.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let l = 0; l < len; l++) {
          const p = (o * len + l) * inner + i;
          acc += a[p]!;
          out[p] = acc;
        }
      }
    return store(out, x.dtype === 'bool' ? 'int32' : x.dtype);
  },

  matmul(a, b) {
    const w = wasmMatmul(a, b, (v) => copyArr(v, 'float32') as Float32Array);
    return store(w ?? tsMatmul(a, b), 'float32');
  },

  causalMatmul(a, b, tri, off) {
    const w = wasmMatmul(a, b, (v) => copyArr(v, 'float32') as Float32Array, tri, off);
    if (w) return store(w, 'float32');
    // The TypeScript product sums every term (the ones the wasm kernel skips are zeros); tri 1 then clears the
    // entries past each row's live ones.
    const out = tsMatmul(a, b);
    if (tri === 1) {
      const m = a.shape[a.shape.length - 2]!;
      const n = b.shape[b.shape.length - 1]!;
      for (let o = 0; o < out.length; o += n) {
        const i = (o / n) % m;
        out.fill(0, Math.min(n, Math.max(0, i + off + 1)) + o, o + n);
      }
    }
    return store(out, 'float32');
  },

  biasAct(y, bias, relu) {
    const n = bias.shape[0]!;
    const total = numel(y.shape);
    const yd = (y.storage.buf as Float32Array).subarray(y.offset, y.offset + total);
    const bd = (bias.storage.buf as Float32Array).subarray(bias.offset, bias.offset + n);
    if (wasmBiasAct(yd, bd, n, relu)) return;
    for (let o = 0; o < total; o += n)
      for (let j = 0; j < n; j++) {
        const x = Math.fround(yd[o + j]! + bd[j]!);
        yd[o + j] = relu && !(x > 0 || x !== x) ? 0 : x;
      }
  },

  reluBackward(g, y) {
    const total = numel(g.shape);
    const gd = (g.storage.buf as Float32Array).subarray(g.offset, g.offset + total);
    const yd = (y.storage.buf as Float32Array).subarray(y.offset, y.offset + total);
    const w = wasmReluBackward(gd, yd);
    if (w) return store(w, 'float32');
    const out = new Float32Array(total);
    for (let i = 0; i < total; i++) out[i] = yd[i]! > 0 ? gd[i]! : 0;
    return store(out, 'float32');
  },

  causalAttention(q, k, v, scale) {
    const w = wasmCausalAttention(q, k, v, Math.fround(scale));
    if (!w) return null;
    const [, H, L, d] = q.shape as [number, number, number, number];
    return { o: store(w.o, 'float32'), oStrides: [L * H * d, d, H * d, 1], p: store(w.p, 'float32') };
  },

  causalAttentionBackward(q, k, v, p, g, scale) {
    const w = wasmCausalAttentionBackward(q, k, v, p, g, Math.fround(scale));
    if (!w) throw new ValueError('causalAttentionBackward: the saved tensors no longer fit the wasm kernel');
    return [store(w[0], 'float32'), store(w[1], 'float32'), store(w[2], 'float32')];
  },

  gather(x, dim, index) {
    const I = arr(index) as Int32Array;
    const n = numel(index.shape);
    // Every element is written: an arena block needs no zeroing (an embedding's output then feeds the wasm
    // kernels without a copy).
    const out = newArray(x.dtype, n);
    const X = arr(x);
    const size = x.shape[dim]!;
    const sd = x.strides[dim]!;
    // Rows of the index view against x with `dim` stepped by the index values, not by its stride: the
    // inner loop reads one index and one value per element, with no per-element coordinate arithmetic.
    const xs = x.strides.map((s, d) => (d === dim ? 0 : s));
    // An embedding lookup (one index per row of a 2-D table along dim 0, the table's rows unit-stride): wasm rows.
    if (
      (out instanceof Float32Array || out instanceof Int32Array) &&
      (X instanceof Float32Array || X instanceof Int32Array) &&
      dim === 0 &&
      x.shape.length === 2 &&
      index.shape.length === 2 &&
      index.strides[1] === 0 &&
      x.strides[1] === 1 &&
      sd > 0 &&
      index.shape[1] === x.shape[1]
    ) {
      const rows = index.shape[0]!;
      const idx = new Int32Array(rows);
      for (let r = 0, ii = index.offset; r < rows; r++, ii += index.strides[0]!) {
        const j = I[ii]!;
        if (j < 0 || j >= size) throw new ValueError(`gather: index ${j} out of range for dim ${dim} of size ${size}`);
        idx[r] = j;
      }
      if (wasmGatherRows(out, x.shape[1]!, X, x.offset, size, sd, idx)) return store(out, x.dtype);
    }
    forEachRow(
      index.shape,
      [contiguousStrides(index.shape), index.strides, xs],
      [0, index.offset, x.offset],
      (o, len, s) => {
        let oi = o[0]!;
        let ii = o[1]!;
        let xi = o[2]!;
        const si = s[1]!;
        const sx = s[2]!;
        if (si === 0 && sx === 1) {
          // One index for a contiguous row (an embedding lookup): a block copy.
          const j = I[ii]!;
          if (j < 0 || j >= size)
            throw new ValueError(`gather: index ${j} out of range for dim ${dim} of size ${size}`);
          out.set(X.subarray(xi + j * sd, xi + j * sd + len), oi);
          return;
        }
        for (let e = 0; e < len; e++, ii += si, xi += sx) {
          const j = I[ii]!;
          if (j < 0 || j >= size)
            throw new ValueError(`gather: index ${j} out of range for dim ${dim} of size ${size}`);
          out[oi++] = X[xi + j * sd]!;
        }
      },
    );
    return store(out, x.dtype);
  },

  scatterAdd(base, dim, index, src) {
    const out = copyArr(base, base.dtype, true);
    const I = arr(index) as Int32Array;
    const S = arr(src);
    const size = base.shape[dim]!;
    const ost = contiguousStrides(base.shape);
    const od = ost[dim]!;
    // The index view's elements in row-major order (the order the sums are taken in), as gather reads them.
    const os = ost.map((s, d) => (d === dim ? 0 : s));
    // An embedding's gradient (rows of src added at one index each, along dim 0 of a 2-D base): the wasm loop.
    if (
      out instanceof Float32Array &&
      dim === 0 &&
      base.shape.length === 2 &&
      index.shape.length === 2 &&
      index.strides[1] === 0 &&
      src.strides[1] === 1 &&
      index.shape[1] === base.shape[1] &&
      src.shape[0] === index.shape[0] &&
      src.shape[1] === index.shape[1]
    ) {
      const rows = index.shape[0]!;
      const idx = new Int32Array(rows);
      for (let r = 0, ii = index.offset; r < rows; r++, ii += index.strides[0]!) {
        const j = I[ii]!;
        if (j < 0 || j >= size)
          throw new ValueError(`scatterAdd: index ${j} out of range for dim ${dim} of size ${size}`);
        idx[r] = j;
      }
      if (wasmScatterRows(out, base.shape[1]!, S as Float32Array, src.offset, src.strides[0]!, idx))
        return store(out, base.dtype);
    }
    forEachRow(index.shape, [os, index.strides, src.strides], [0, index.offset, src.offset], (o, len, s) => {
      let oi = o[0]!;
      let ii = o[1]!;
      let si = o[2]!;
      const so = s[0]!;
      const sj = s[1]!;
      const ss = s[2]!;
      if (sj === 0) {
        // One index for the whole row (an embedding's gradient): check it once.
        const j = I[ii]!;
        if (j < 0 || j >= size)
          throw new ValueError(`scatterAdd: index ${j} out of range for dim ${dim} of size ${size}`);
        for (let e = 0, o2 = oi + j * od; e < len; e++, o2 += so, si += ss) out[o2] = out[o2]! + S[si]!;
        return;
      }
      for (let e = 0; e < len; e++, oi += so, ii += sj, si += ss) {
        const j = I[ii]!;
        if (j < 0 || j >= size)
          throw new ValueError(`scatterAdd: index ${j} out of range for dim ${dim} of size ${size}`);
        out[oi + j * od] = out[oi + j * od]! + S[si]!;
      }
    });
    return store(out, base.dtype);
  },

  asStridedScatter(src, baseShape, viewStrides, viewOffset) {
    const out = allocArray(src.dtype, numel(baseShape));
    const S = arr(src);
    forEachRow(src.shape, [viewStrides, src.strides], [viewOffset, src.offset], (o, n, s) => {
      let oi = o[0]!;
      let si = o[1]!;
      for (let i = 0; i < n; i++, oi += s[0]!, si += s[1]!) out[oi] = out[oi]! + S[si]!;
    });
    return store(out, src.dtype);
  },

  pad(x, pads, value) {
    const a = arr(x);
    if (a instanceof Float32Array || (a instanceof Int32Array && Number.isInteger(value))) {
      const w = wasmPad(a, x.shape, x.strides, x.offset, pads, value);
      if (w) return store(w, x.dtype);
    }
    const shape = x.shape.map((s, i) => s + pads[i]![0] + pads[i]![1]);
    const out = allocArray(x.dtype, numel(shape));
    if (value !== 0) out.fill(value);
    const ost = contiguousStrides(shape);
    const off = pads.reduce((acc, p, i) => acc + p[0] * ost[i]!, 0);
    const X = arr(x);
    forEachRow(x.shape, [ost, x.strides], [off, x.offset], (o, n, s) => {
      let oi = o[0]!;
      let xi = o[1]!;
      for (let i = 0; i < n; i++, oi += s[0]!, xi += s[1]!) out[oi] = X[xi]!;
    });
    return store(out, x.dtype);
  },

  cat(xs, dim) {
    const shape = [...xs[0]!.shape];
    shape[dim] = xs.reduce((acc, v) => acc + v.shape[dim]!, 0);
    const dtype = xs[0]!.dtype;
    if (dtype === 'float32' || dtype === 'int32') {
      const w = wasmCat(xs, dim, shape);
      if (w) return store(w, dtype);
    }
    const out = allocArray(dtype, numel(shape));
    const ost = contiguousStrides(shape);
    let pos = 0;
    for (const x of xs) {
      const X = arr(x);
      forEachRow(x.shape, [ost, x.strides], [pos * ost[dim]!, x.offset], (o, n, s) => {
        let oi = o[0]!;
        let xi = o[1]!;
        for (let i = 0; i < n; i++, oi += s[0]!, xi += s[1]!) out[oi] = X[xi]!;
      });
      pos += x.shape[dim]!;
    }
    return store(out, dtype);
  },

  sort(x, dim, descending) {
    const a = contig(x);
    const { outer, len, inner } = around(x.shape, dim);
    const vals = allocArray(x.dtype, a.length);
    const inds = new Int32Array(a.length);
    const order = new Array<number>(len);
    // Half dtypes hold bit patterns: compare their decoded values, not the bits.
    const keys =
      x.dtype === 'float16' ? f16ToF32(a as Uint16Array) : x.dtype === 'bfloat16' ? bf16ToF32(a as Uint16Array) : a;
    // NaN sorts as the largest value, as in PyTorch.
    const key = (v: number) => (v !== v ? Number.POSITIVE_INFINITY : v);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        for (let l = 0; l < len; l++) order[l] = l;
        order.sort((p, q) => {
          const vp = keys[base + p * inner]!;
          const vq = keys[base + q * inner]!;
          const d = key(vp) - key(vq) || (vp !== vp ? 1 : 0) - (vq !== vq ? 1 : 0);
          return descending ? -d : d;
        });
        for (let l = 0; l < len; l++) {
          vals[base + l * inner] = a[base + order[l]! * inner]!;
          inds[base + l * inner] = order[l]!;
        }
      }
    return [store(vals, x.dtype), store(inds, 'int32')];
  },

  fromArray(data, dtype) {
    const out = newArray(dtype, data.length);
    if (dtype === 'bool') for (let i = 0; i < data.length; i++) out[i] = data[i] ? 1 : 0;
    else out.set(data as ArrayLike<number>);
    return store(out, dtype);
  },

  full(length, value, dtype) {
    const out = newArray(dtype, length);
    // `value` is a value for every dtype (as on WebGPU): half dtypes store its bit pattern.
    const fill =
      dtype === 'bool'
        ? value
          ? 1
          : 0
        : dtype === 'float16'
          ? f32ToF16(Float32Array.of(value))[0]!
          : dtype === 'bfloat16'
            ? f32ToBf16(Float32Array.of(value))[0]!
            : value;
    // Arena blocks are reused, not zeroed.
    if (fill !== 0 || !(out.buffer instanceof ArrayBuffer)) out.fill(fill);
    return store(out, dtype);
  },

  async read(x) {
    return copyArr(x, x.dtype);
  },

  readSync(x) {
    return copyArr(x, x.dtype);
  },

  assign(dst, src) {
    const D = arr(dst);
    const S = arr(src);
    if (
      (D instanceof Float32Array || D instanceof Int32Array) &&
      (S instanceof Float32Array || S instanceof Int32Array) &&
      wasmAssign(D, dst.strides, dst.offset, S, src.strides, src.offset, dst.shape)
    )
      return;
    forEachRow(dst.shape, [dst.strides, src.strides], [dst.offset, src.offset], (o, n, s) => {
      let di = o[0]!;
      let si = o[1]!;
      for (let i = 0; i < n; i++, di += s[0]!, si += s[1]!) D[di] = S[si]!;
    });
  },

  free(s) {
    releaseStorageArray(s.buf);
    s.buf = null;
  },

  // Implicit-GEMM convolutions on the wasm path; on the TypeScript path `conv` declines and the op runs as
  // its im2col composite (the reference).
  conv(x, w, bias, geo) {
    const y = wasmConv(x, w, bias, geo);
    return y && store(y, 'float32');
  },
  convBackwardBias: (g) => store(wasmConvBackwardBias(g), 'float32'),
  convTranspose(x, w, outShape, geo) {
    const y = wasmConvTranspose(x, w, outShape, geo);
    return y && store(y, 'float32');
  },
  convBackwardInput: (g, w, xShape, geo) => store(wasmConvBackwardInput(g, w, xShape, geo), 'float32'),
  convBackwardWeight: (g, x, wShape, geo) => store(wasmConvBackwardWeight(g, x, wShape, geo), 'float32'),
} satisfies Kernels;
