// The closed set of primitives. Each runs one backend kernel (or builds a view) and, when autograd is
// recording, attaches its vector-Jacobian product. Everything user-facing in ops/ is built from these;
// adding a primitive means one function here, one kernel per backend (backends/backend.ts) and one
// conformance row.
import { type GradNode, isGradEnabled, noGrad } from '../autograd.js';
import type {
  AdamScalars,
  ArgReduceOp,
  BackendName,
  BinaryOp,
  CompareOp,
  ConvGeometry,
  ReduceOp,
  Storage,
  UnaryOp,
  View,
} from '../backends/backend.js';
import type { ComputeDType, DType } from '../dtype.js';
import { isFloat } from '../dtype.js';
import { AutogradError, DTypeError, fmtShape, ShapeError } from '../errors.js';
import { initBackend, kernelsFor, untrack } from '../runtime.js';
import { contiguousStrides, isContiguous, numel, sameShape } from '../shape.js';
import { Tensor, type TensorLike } from '../tensor.js';

export const withoutGrad = noGrad;

export function keepInternal(t: Tensor): void {
  untrack(t);
}

function make(s: Storage, shape: readonly number[]): Tensor {
  return new Tensor(s, shape);
}

const k = (t: Tensor) => kernelsFor(t.backend);

function use(op: string, ...ts: Tensor[]): void {
  for (const t of ts) t.assertUsable(op);
  const b = ts[0]!.backend;
  for (const t of ts)
    if (t.backend !== b)
      throw new DTypeError(`${op}: tensors on different backends (${b} and ${t.backend}); move one with .to()`);
}

/** Attaches a node when recording and some input requires grad. `save` lists tensors the VJP reads. */
function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  save: Tensor[],
  vjp: (g: Tensor, saved: Tensor[]) => (Tensor | null)[],
): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return out;
  if (!isFloat(out.dtype)) return out;
  const saved = save.map((t) => ({ t: t.aliasInternal(), version: t.storage.version }));
  const node: GradNode = {
    name,
    inputs,
    saved,
    released: false,
    vjp: (g) =>
      vjp(
        g,
        saved.map((s) => s.t),
      ),
  };
  out.setNode(node);
  return out;
}

/** Sums a gradient down to `shape` (the adjoint of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  const r = reduce('sum', g, dims, true);
  const out = reshapeView(r, shape);
  if (out !== r) r.dispose();
  return out;
}

// ---------------------------------------------------------------- elementwise

/** VJPs of the unary ops, given input x, output y and upstream g. null: no gradient (piecewise constant). */
const unaryVjp: Record<UnaryOp, ((x: Tensor, y: Tensor, g: Tensor) => Tensor) | null> = {
  neg: (_x, _y, g) => g.neg(),
  abs: (x, _y, g) => g.mul(x.sign()),
  sign: (_x, _y, g) => zerosLike(g),
  exp: (_x, y, g) => g.mul(y),
  log: (x, _y, g) => g.div(x),
  log1p: (x, _y, g) => g.div(x.add(1)),
  expm1: (_x, y, g) => g.mul(y.add(1)),
  sqrt: (_x, y, g) => g.div(y.mul(2)),
  rsqrt: (_x, y, g) => g.mul(y.pow(3)).mul(-0.5),
  sin: (x, _y, g) => g.mul(x.cos()),
  cos: (x, _y, g) => g.mul(x.sin()).neg(),
  tanh: (_x, y, g) => g.mul(y.mul(y).neg().add(1)),
  sigmoid: (_x, y, g) => g.mul(y.mul(y.neg().add(1))),
  // g where x > 0, else 0 (PyTorch's threshold_backward): two kernels where g·float(x > 0) took three.
  relu: (x, _y, g) => {
    const m = x.gt(0);
    const out = g.where(m, 0);
    m.dispose();
    return out;
  },
  gelu: (x, _y, g) => g.mul(unary('geluGrad', x)),
  geluTanh: (x, _y, g) => g.mul(unary('geluTanhGrad', x)),
  silu: (x, _y, g) => g.mul(unary('siluGrad', x)),
  softplus: (x, _y, g) => g.mul(x.sigmoid()),
  erf: (x, _y, g) =>
    g.mul(
      x
        .mul(x)
        .neg()
        .exp()
        .mul(2 / Math.sqrt(Math.PI)),
    ),
  reciprocal: (_x, y, g) => g.mul(y.mul(y)).neg(),
  floor: (_x, _y, g) => zerosLike(g),
  round: (_x, _y, g) => zerosLike(g),
  logicalNot: null,
  // The derivative ops are only used inside VJPs; second derivatives are not supported.
  geluGrad: null,
  geluTanhGrad: null,
  siluGrad: null,
};

export function unary(op: UnaryOp, x: Tensor): Tensor {
  use(op, x);
  const y = make(k(x).unary(op, x), x.shape);
  const f = unaryVjp[op];
  if (!f) return y;
  return record(y, op, [x], [x, y], (g, [sx, sy]) => [f(sx!, sy!, g)]);
}

/** `a` and `b` have the same shape (callers broadcast with expand, whose VJP sums back). */
export function binary(op: BinaryOp, a: Tensor, b: Tensor, dtype: ComputeDType): Tensor {
  use(op, a, b);
  const y = make(k(a).binary(op, a, b, dtype), a.shape);
  switch (op) {
    case 'add':
      return record(y, op, [a, b], [], (g) => [g, g]);
    case 'sub':
      return record(y, op, [a, b], [], (g) => [g, g.neg()]);
    case 'mul':
      return record(y, op, [a, b], [a, b], (g, [sa, sb]) => [
        a.requiresGrad ? g.mul(sb!) : null,
        b.requiresGrad ? g.mul(sa!) : null,
      ]);
    case 'div':
      return record(y, op, [a, b], [a, b], (g, [sa, sb]) => [
        a.requiresGrad ? g.div(sb!) : null,
        b.requiresGrad ? g.mul(sa!).div(sb!.mul(sb!)).neg() : null,
      ]);
    case 'pow':
      return record(y, op, [a, b], [a, b, y], (g, [sa, sb, sy]) => [
        // PyTorch masks b = 0 to a zero gradient, avoiding 0·a^(−1) = NaN at a = 0.
        a.requiresGrad ? where(sb!.eq(0), zerosLike(g), g.mul(sb!).mul(sa!.pow(sb!.sub(1)))) : null,
        // d/db a^b = a^b log a; PyTorch masks a == 0 to 0 rather than 0·(-inf).
        b.requiresGrad ? where(sa!.eq(0), zerosLike(g), g.mul(sy!).mul(sa!.log())) : null,
      ]);
    case 'maximum':
    case 'minimum':
      // Ties split the gradient in half, as in PyTorch.
      return record(y, op, [a, b], [a, b], (g, [sa, sb]) => {
        const win = op === 'maximum' ? sa!.gt(sb!) : sa!.lt(sb!);
        const tie = sa!.eq(sb!).float().mul(0.5);
        const wa = win.float().add(tie);
        return [g.mul(wa), g.mul(wa.neg().add(1))];
      });
  }
}

export function compare(op: CompareOp, a: Tensor, b: Tensor): Tensor {
  use(op, a, b);
  return make(k(a).compare(op, a, b), a.shape);
}

/** `cond`, `a`, `b` share one shape. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  use('where', cond, a, b);
  if (cond.dtype !== 'bool') throw new DTypeError(`where: condition must be bool; got ${cond.dtype}`);
  const y = make(k(a).where(cond, a, b), a.shape);
  return record(y, 'where', [a, b], [cond], (g, [c]) => {
    const z = zerosLike(g);
    return [a.requiresGrad ? where(c!, g, z) : null, b.requiresGrad ? where(c!, z, g) : null];
  });
}

export function cast(x: Tensor, dtype: DType): Tensor {
  use('cast', x);
  if (x.dtype === dtype) return x.detachedView();
  const y = make(k(x).cast(x, dtype), x.shape);
  if (!isFloat(dtype) || !isFloat(x.dtype)) return y;
  return record(y, 'cast', [x], [], (g) => [cast(g, x.dtype)]);
}

/** A copy of `x` on another backend, detached (gradients do not cross devices). */
export async function toBackend(x: Tensor, name: BackendName): Promise<Tensor> {
  use('to', x);
  const target = await initBackend(name);
  if (x.backend === name) return x.detach();
  const data = await x.data();
  return make(target.fromArray(data, x.dtype), x.shape);
}

export function contiguousCopy(x: Tensor): Tensor {
  use('contiguous', x);
  const y = make(k(x).copy(x), x.shape);
  return record(y, 'copy', [x], [], (g) => [g]);
}

// ---------------------------------------------------------------- reductions

/** Reduces sorted `dims`; keepdim keeps them as size 1. */
export function reduce(op: ReduceOp, x: Tensor, dims: number[], keepdim: boolean): Tensor {
  use(op, x);
  if ((op === 'max' || op === 'min') && dims.some((d) => x.shape[d] === 0))
    throw new ShapeError(`${op}: cannot reduce an empty dim (shape ${fmtShape(x.shape)})`);
  const kshape = x.shape.map((s, i) => (dims.includes(i) ? 1 : s));
  const oshape = keepdim ? kshape : x.shape.filter((_, i) => !dims.includes(i));
  const y = make(k(x).reduce(op, x, dims), oshape);
  return record(y, op, [x], op === 'sum' ? [] : [x, y], (g, [sx, sy]) => {
    const gk = reshapeView(g, kshape).expand(x.shape);
    if (op === 'sum') return [gk];
    const yk = reshapeView(sy!, kshape).expand(x.shape);
    if (op === 'prod') {
      // ∂/∂x_i = ∏_{j≠i} x_j. With no zero in the group that is y/x_i; with one zero only the zero's entry
      // is non-zero (the product of the others); with two or more zeros the whole gradient is 0.
      const isZero = sx!.eq(0);
      const nz = reduce('sum', isZero.float(), dims, true).expand(x.shape);
      const pnz = reduce('prod', where(isZero, onesLike(sx!), sx!), dims, true).expand(x.shape);
      const safe = where(isZero, onesLike(sx!), sx!);
      const noZero = gk.mul(yk).div(safe);
      const oneZero = where(isZero, gk.mul(pnz), zerosLike(gk));
      return [where(nz.eq(0), noZero, where(nz.eq(1), oneZero, zerosLike(gk)))];
    }
    // max/min: the gradient is shared equally among the elements that attain the extreme (amax semantics).
    const mask = sx!.eq(yk).float();
    const count = reduce('sum', mask, dims, true);
    return [gk.mul(mask).div(count)];
  });
}

export function argReduce(op: ArgReduceOp, x: Tensor, dim: number, keepdim: boolean): Tensor {
  use(op, x);
  if (x.shape[dim] === 0) throw new ShapeError(`${op}: cannot reduce an empty dim (shape ${fmtShape(x.shape)})`);
  const shape = keepdim ? x.shape.map((s, i) => (i === dim ? 1 : s)) : x.shape.filter((_, i) => i !== dim);
  return make(k(x).argReduce(op, x, dim), shape);
}

export function cumsum(x: Tensor, dim: number): Tensor {
  use('cumsum', x);
  const y = make(k(x).cumsum(x, dim), x.shape);
  return record(y, 'cumsum', [x], [], (g) => [cumsum(g.flip(dim), dim).flip(dim)]);
}

// ---------------------------------------------------------------- linear algebra

/** `a` [...B, m, k] · `b` [...B, k, n] with equal batch shapes (expanded views are fine). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  use('matmul', a, b);
  const r = a.ndim;
  const y = make(k(a).matmul(a, b), [...a.shape.slice(0, r - 1), b.shape[r - 1]!]);
  // b = Wᵀ, the transposed view of a row-major W (x·Wᵀ in a linear layer): its gradient aᵀ·g would come back in
  // W's transposed layout and be copied when it reaches W; (gᵀ·a)ᵀ is the same sums in the same order (the same
  // bits), already laid out as W.
  const bT = r === 2 && b.ndim === 2 && b.strides[0] === 1 && b.strides[1] === b.shape[0] && b.shape[1]! > 1;
  return record(y, 'matmul', [a, b], [a, b], (g, [sa, sb]) => [
    a.requiresGrad ? matmul(g, sb!.transpose(-2, -1)) : null,
    b.requiresGrad
      ? bT
        ? matmul(g.transpose(-2, -1), sa!).transpose(-2, -1)
        : matmul(sa!.transpose(-2, -1), g)
      : null,
  ]);
}

/**
 * a·b for causal attention (float32, equal batch dims), where entry (i, j) of an [L, L'] matrix is live when
 * j ≤ i + off: tri 1 keeps the product's live entries (0 elsewhere); 2 takes a as 0 past its live entries and 3
 * as the transpose of such a matrix, so the kernel may skip those terms. Internal to attention, whose VJPs rely
 * on what it guarantees: tri 1's consumer (the causal softmax) gives 0 gradient on the dead entries, and the
 * producer of a tri 2 or 3 operand ignores the gradient there. Null where the backend has no kernel for it.
 */
export function causalMatmul(a: Tensor, b: Tensor, tri: 1 | 2 | 3, off: number): Tensor | null {
  use('causalMatmul', a, b);
  const ka = k(a);
  const r = a.ndim;
  if (!ka.causalMatmul || a.dtype !== 'float32' || b.dtype !== 'float32' || r < 2 || b.ndim !== r) return null;
  if (a.shape[r - 1] !== b.shape[r - 2] || !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2))) return null;
  const y = make(ka.causalMatmul(a, b, tri, off), [...a.shape.slice(0, -1), b.shape[r - 1]!]);
  const tr = (t: Tensor) => t.transpose(-2, -1);
  return record(y, 'causalMatmul', [a, b], [a, b], (g, [sa, sb]) => {
    // tri 1: dA = g·bᵀ with g 0 past the live entries (tri 2), dB = (gᵀ·a)ᵀ with gᵀ its transpose (tri 3).
    // tri 2: dA is needed on a's live entries only (tri 1), dB = aᵀ·g (tri 3). tri 3: dB = aᵀ·g (tri 2).
    const da = () => (tri === 3 ? null : causalMatmul(g, tr(sb!), tri === 1 ? 2 : 1, off)) ?? matmul(g, tr(sb!));
    const db = () => {
      if (tri === 1) {
        const t = causalMatmul(tr(g), sa!, 3, off);
        return t ? tr(t) : matmul(tr(sa!), g);
      }
      return causalMatmul(tr(sa!), g, tri === 2 ? 3 : 2, off) ?? matmul(tr(sa!), g);
    };
    return [a.requiresGrad ? da() : null, b.requiresGrad ? db() : null];
  });
}

/**
 * Causal self-attention softmax(fl(scale·q kᵀ), keys j ≤ i) v of float32 q, k, v [B, H, L, d] in one kernel per
 * direction where the backend has one (the CPU wasm path: each head's scores, softmax and product while they are
 * in cache, the output already in [B, L, H, d] order): the values and gradients of `causalMatmul` → `scaledSoftmax`
 * → `causalMatmul`, bit for bit. Null where it does not apply; the caller composes those ops.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor | null {
  use('causalAttention', q, k, v);
  const kq = kernelsFor(q.backend);
  if (!kq.causalAttention || !kq.causalAttentionBackward || q.ndim !== 4) return null;
  if (!sameShape(q.shape, k.shape) || !sameShape(q.shape, v.shape)) return null;
  const r = kq.causalAttention(q, k, v, scale);
  if (!r) return null;
  const o = new Tensor(r.o, q.shape, r.oStrides);
  const p = make(r.p, [...q.shape.slice(0, 3), q.shape[2]!]);
  const out = record(o, 'causalAttention', [q, k, v], [q, k, v, p], (g, [sq, sk, sv, sp]) => {
    // The kernel reads rows with unit column stride; any other layout of g is copied first.
    const gg = g.strides[3] === 1 ? g : g.contiguous();
    const ds = kq.causalAttentionBackward!(sq!, sk!, sv!, sp!, gg, scale);
    if (gg !== g) gg.dispose();
    return ds.map((s) => new Tensor(s, q.shape, r.oStrides));
  });
  p.dispose();
  return out;
}

/**
 * nn.Linear's x·Wᵀ + bias (then relu when `relu`) of float32 x [m, k], weight [n, k] and contiguous bias [n], with
 * the bias and relu applied in place on the product where the backend has those kernels (`biasAct`, and
 * `reluBackward` for the VJP): the values and gradients of matmul → add → relu bit for bit, one pass over the
 * output where the composed path makes two new arrays, and relu's VJP in one kernel instead of two. Null where
 * it does not apply; the caller composes those ops.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor, relu: boolean): Tensor | null {
  use('linear', x, weight, bias);
  const kx = k(x);
  if (!kx.biasAct || !kx.reluBackward || x.ndim !== 2 || weight.ndim !== 2 || bias.ndim !== 1) return null;
  if (x.dtype !== 'float32' || weight.dtype !== 'float32' || bias.dtype !== 'float32') return null;
  const n = weight.shape[0]!;
  if (x.shape[1] !== weight.shape[1] || bias.shape[0] !== n || bias.strides[0] !== 1 || n === 0) return null;
  // The kernels' product, already a fresh contiguous storage, takes the epilogue in place.
  // Wᵀ as a bare view for the kernel (a Tensor view would need disposing and, while recording, a node).
  const wt: View = {
    storage: weight.storage,
    shape: [weight.shape[1]!, n],
    strides: [weight.strides[1]!, weight.strides[0]!],
    offset: weight.offset,
    dtype: 'float32',
  };
  const y = make(kx.matmul(x, wt), [x.shape[0]!, n]);
  kx.biasAct(y, bias, relu);
  return record(
    y,
    relu ? 'linearRelu' : 'linear',
    [x, weight, bias],
    relu ? [x, weight, y] : [x, weight],
    (g, [sx, sw, sy]) => {
      const gc = relu && !isContiguous(g.shape, g.strides) ? g.contiguous() : g;
      const gz = relu ? make(kx.reluBackward!(gc, sy!), g.shape) : g;
      if (gc !== g) gc.dispose();
      // The composed path's gradients: g·W for x, (gᵀ·x) for W (matmul's bT case seen through the transpose), and
      // g summed over the rows for the bias (add's broadcast).
      const gT = gz.transpose(0, 1);
      const ds = [
        x.requiresGrad ? matmul(gz, sw!) : null,
        weight.requiresGrad ? matmul(gT, sx!) : null,
        bias.requiresGrad ? sumToShape(gz, bias.shape) : null,
      ];
      gT.dispose();
      if (gz !== g && ds[2] !== gz) gz.dispose();
      return ds;
    },
  );
}

/** Whether the backend of `t` has a convolution kernel (it may still decline a call: see `conv`). */
export const hasConv = (t: Tensor): boolean => k(t).conv !== undefined;

/**
 * Convolution (with its bias, if any) in one kernel where the backend has one (the CPU wasm path: implicit GEMM),
 * with one-kernel VJPs; null otherwise, and the caller composes im2col + matmul instead.
 */
export function conv(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  geo: ConvGeometry,
  outShape: readonly number[],
): Tensor | null {
  const ins = bias ? [x, w, bias] : [x, w];
  use('conv', ...ins);
  const kx = k(x);
  const s = kx.conv?.(x, w, bias, geo);
  if (!s) return null;
  const y = make(s, outShape);
  return record(y, 'conv', ins, [x, w], (g, [sx, sw]) => [
    x.requiresGrad ? make(kx.convBackwardInput!(g, sw!, x.shape, geo), x.shape) : null,
    w.requiresGrad ? make(kx.convBackwardWeight!(g, sx!, w.shape, geo), w.shape) : null,
    bias?.requiresGrad ? make(kx.convBackwardBias!(g), bias.shape) : null,
  ]);
}

/**
 * Transposed convolution in one kernel where the backend has one: x [N, O, ...] and w [O, C/groups, ...k] (the
 * layout of the convolution it transposes) into `outShape` [N, C, ...]. Its input VJP is that convolution, which
 * the caller passes (`convOf`, so that it can run fused or composed); its weight VJP is the convolution's weight
 * gradient with the roles of input and upstream gradient swapped. Null where the backend declines.
 */
export function convTranspose(
  x: Tensor,
  w: Tensor,
  geo: ConvGeometry,
  outShape: readonly number[],
  convOf: (g: Tensor) => Tensor,
): Tensor | null {
  use('convTranspose', x, w);
  const kx = k(x);
  const s = kx.convTranspose?.(x, w, outShape, geo);
  if (!s) return null;
  const y = make(s, outShape);
  return record(y, 'convTranspose', [x, w], [x], (g, [sx]) => [
    x.requiresGrad ? convOf(g) : null,
    w.requiresGrad ? make(kx.convBackwardWeight!(sx!, g, w.shape, geo), w.shape) : null,
  ]);
}

// ---------------------------------------------------------------- indexing

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  use('gather', x, index);
  const y = make(k(x).gather(x, dim, index), index.shape);
  return record(y, 'gather', [x], [index], (g, [idx]) => [scatterAdd(zerosOf(x.shape, g.dtype, x), dim, idx!, g)]);
}

export function scatterAdd(base: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  use('scatterAdd', base, index, src);
  const y = make(k(base).scatterAdd(base, dim, index, src), base.shape);
  return record(y, 'scatterAdd', [base, src], [index], (g, [idx]) => [
    base.requiresGrad ? g : null,
    src.requiresGrad ? gather(g, dim, idx!) : null,
  ]);
}

/**
 * A strided window onto a contiguous tensor (unfold, sliding windows for conv and pooling). Windows
 * may overlap; the VJP accumulates them back (col2im).
 */
export function asStrided(x: Tensor, shape: readonly number[], strides: readonly number[], offset = 0): Tensor {
  use('asStrided', x);
  const src = isContiguous(x.shape, x.strides) ? x : contiguousCopy(x);
  const y = new Tensor(src.storage, shape, strides, src.offset + offset);
  if (src !== x) src.dispose();
  y.setNodeIfRecording('asStrided', [x], (g) => [asStridedScatter(g, x.shape, strides, offset)]);
  return y;
}

export function asStridedScatter(
  src: Tensor,
  baseShape: readonly number[],
  strides: readonly number[],
  offset: number,
): Tensor {
  use('asStridedScatter', src);
  const y = make(k(src).asStridedScatter(src, baseShape, strides, offset), baseShape);
  return record(y, 'asStridedScatter', [src], [], (g) => {
    const c = isContiguous(g.shape, g.strides) ? g : contiguousCopy(g);
    return [new Tensor(c.storage, src.shape, strides, c.offset + offset)];
  });
}

export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor {
  use('pad', x);
  const y = make(
    k(x).pad(x, pads, value),
    x.shape.map((s, i) => s + pads[i]![0] + pads[i]![1]),
  );
  return record(y, 'pad', [x], [], (g) => {
    let r = g;
    pads.forEach(([b], i) => {
      if (b !== 0 || g.shape[i] !== x.shape[i]) r = r.slice(i, b, b + x.shape[i]!);
    });
    return [r];
  });
}

export function cat(xs: Tensor[], dim: number): Tensor {
  use('cat', ...xs);
  const shape = [...xs[0]!.shape];
  shape[dim] = xs.reduce((acc, t) => acc + t.shape[dim]!, 0);
  const y = make(k(xs[0]!).cat(xs, dim), shape);
  return record(y, 'cat', xs, [], (g) => {
    let pos = 0;
    return xs.map((t) => {
      const s = g.slice(dim, pos, pos + t.shape[dim]!);
      pos += t.shape[dim]!;
      return t.requiresGrad ? s : null;
    });
  });
}

export function sort(x: Tensor, dim: number, descending: boolean): { values: Tensor; indices: Tensor } {
  use('sort', x);
  const [vs, is] = k(x).sort(x, dim, descending);
  const values = make(vs, x.shape);
  const indices = make(is, x.shape);
  record(values, 'sort', [x], [indices], (g, [idx]) => [scatterAdd(zerosOf(x.shape, g.dtype, x), dim, idx!, g)]);
  return { values, indices };
}

// ---------------------------------------------------------------- fused (float32; composites cover the rest)

/** softmax (or log-softmax) over the last dim, in one kernel; its VJP is one kernel too. */
export function softmax(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  use(op, x);
  const y = make(k(x).softmax(x, log), x.shape);
  return record(y, op, [x], [y], (g, [sy]) => [make(k(g).softmaxBackward(sy!, g, log), x.shape)]);
}

/**
 * Attention's softmax(fl(scale·x)) over the last dim with an optional causal mask (row i keeps keys j ≤ i +
 * `causal`), one kernel forward and one backward; null where the backend has no such kernel (the caller
 * composes mul, where and softmax).
 */
export function scaledSoftmax(x: Tensor, scale: number, causal: number | null): Tensor | null {
  use('scaledSoftmax', x);
  const kx = k(x);
  if (x.dtype !== 'float32' || x.ndim < 2 || !kx.scaledSoftmax || !kx.scaledSoftmaxBackward) return null;
  const y = make(kx.scaledSoftmax(x, scale, causal), x.shape);
  return record(y, 'scaledSoftmax', [x], [y], (g, [sy]) => [
    make(kx.scaledSoftmaxBackward!(sy!, g, scale, causal), x.shape),
  ]);
}

/**
 * Layer norm (or RMS norm) over the last `n` elements of each row, with optional affine weight/bias
 * (contiguous, n elements). The kernel saves each row's mean and rstd for the fused backward.
 */
export function layerNorm(
  x: Tensor,
  n: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  rms: boolean,
): Tensor {
  const op = rms ? 'rmsNorm' : 'layerNorm';
  const affine = [weight, bias].filter((t): t is Tensor => t !== null);
  use(op, x, ...affine);
  const rows = n === 0 ? 0 : x.size / n;
  const [ys, ms, rs] = k(x).layerNorm(x, n, weight, bias, eps, rms);
  const y = make(ys, x.shape);
  const mean = make(ms, [rows]);
  const rstd = make(rs, [rows]);
  const out = record(y, op, [x, ...affine], [x, mean, rstd, ...(weight ? [weight] : [])], (g, [sx, sm, sr, sw]) => {
    const [dx, dw, db] = k(g).layerNormBackward(
      g,
      sx!,
      sm!,
      sr!,
      sw ?? null,
      rms,
      weight?.requiresGrad ?? false,
      bias?.requiresGrad ?? false,
    );
    return [
      make(dx, x.shape),
      ...(weight ? [dw && make(dw, weight.shape)] : []),
      ...(bias ? [db && make(db, bias.shape)] : []),
    ];
  });
  mean.dispose();
  rstd.dispose();
  return out;
}

/**
 * Cross-entropy per row of float32 logits [N, C] at int32 targets [N] (0 where the target is ignoreIndex):
 * logsumexp and the pick in one kernel, the VJP (softmax − onehot)·g in one more.
 */
export function crossEntropy(x: Tensor, target: Tensor, ignoreIndex: number): Tensor {
  use('crossEntropy', x, target);
  const [ls, lses] = k(x).crossEntropy(x, target, ignoreIndex);
  const loss = make(ls, [x.shape[0]!]);
  const lse = make(lses, [x.shape[0]!]);
  const out = record(loss, 'crossEntropy', [x], [x, target, lse], (g, [sx, st, sl]) => [
    make(k(g).crossEntropyBackward(sx!, st!, sl!, g, ignoreIndex), x.shape),
  ]);
  lse.dispose();
  return out;
}

function cellCheck(op: string, ts: Tensor[], shapes: number[][]): void {
  use(op, ...ts);
  ts.forEach((t, i) => {
    if (t.dtype !== 'float32') throw new DTypeError(`${op}: float32 only; got ${t.dtype}`);
    if (!sameShape(t.shape, shapes[i]!))
      throw new ShapeError(`${op}: expected ${fmtShape(shapes[i]!)}; got ${fmtShape(t.shape)}`);
  });
}

/**
 * One fused LSTM step: gate pre-activations `gates` [B, 4H] (i, f, g, o; biases added) and cell `c` [B, H]
 * → [2, B, H] = [h, c'] (take them with select(0, ·)). Its VJP is one kernel that recomputes the gates.
 */
export function lstmCell(gates: Tensor, c: Tensor): Tensor {
  const [B, H] = [c.shape[0] ?? 0, c.shape[1] ?? 0];
  cellCheck(
    'lstmCell',
    [gates, c],
    [
      [B, 4 * H],
      [B, H],
    ],
  );
  const out = make(k(c).lstmCell(gates, c), [2, B, H]);
  return record(out, 'lstmCell', [gates, c], [gates, c], (g, [sg, sc]) => {
    const s = k(g).lstmCellBackward(sg!, sc!, g);
    return [new Tensor(s, [B, 4 * H]), new Tensor(s, [B, H], undefined, 4 * B * H)];
  });
}

/**
 * One fused GRU step: input projection `xp` [B, 3H] (r, z, n; bias_ih added), hidden projection `hh`
 * [B, 3H] (bias_hh added) and `h` [B, H] → h' [B, H]. Its VJP is one kernel giving dxp, dhh and dh.
 */
export function gruCell(xp: Tensor, hh: Tensor, h: Tensor): Tensor {
  const [B, H] = [h.shape[0] ?? 0, h.shape[1] ?? 0];
  cellCheck(
    'gruCell',
    [xp, hh, h],
    [
      [B, 3 * H],
      [B, 3 * H],
      [B, H],
    ],
  );
  const out = make(k(h).gruCell(xp, hh, h), [B, H]);
  return record(out, 'gruCell', [xp, hh, h], [xp, hh, h], (g, [sx, sr, sh]) => {
    const s = k(g).gruCellBackward(sx!, sr!, sh!, g);
    return [
      new Tensor(s, [B, 3 * H]),
      new Tensor(s, [B, 3 * H], undefined, 3 * B * H),
      new Tensor(s, [B, H], undefined, 6 * B * H),
    ];
  });
}

/** One in-place Adam/AdamW step of `p`, `m`, `v` (same shape, contiguous float32) from `grad`. */
export function adamStep(p: Tensor, grad: Tensor, m: Tensor, v: Tensor, s: AdamScalars): void {
  use('adam', p, grad, m, v);
  k(p).adam(p, grad, m, v, s);
  for (const t of [p, m, v]) t.storage.version++;
}

// ---------------------------------------------------------------- views (no kernel, only strides)

/** A view of `x` with new shape/strides/offset, whose VJP is given. */
export function makeView(
  x: Tensor,
  name: string,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  vjp: (g: Tensor) => Tensor,
): Tensor {
  use(name, x);
  const y = new Tensor(x.storage, shape, strides, offset);
  y.setNodeIfRecording(name, [x], (g) => [vjp(g)]);
  return y;
}

/** Reshape as a view when the strides allow it, else through a contiguous copy. */
export function reshapeView(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  if (isContiguous(x.shape, x.strides))
    return makeView(x, 'reshape', shape, contiguousStrides(shape), x.offset, (g) => reshapeView(g, x.shape));
  const c = contiguousCopy(x);
  const y = makeView(c, 'reshape', shape, contiguousStrides(shape), c.offset, (g) => reshapeView(g, c.shape));
  c.dispose();
  return y;
}

// ---------------------------------------------------------------- writes

/** In-place write of `src` into the view `dst`; refuses leaves that require grad while recording. */
export function assign(dst: Tensor, src: TensorLike): void {
  use('assign', dst);
  if (isGradEnabled() && dst.requiresGrad && dst.isLeaf)
    throw new AutogradError(
      'in-place edit of a leaf that requires grad; wrap parameter updates in noGrad() (optimizers do)',
    );
  if (isGradEnabled() && dst.gradNode)
    throw new AutogradError('in-place edit of a tensor that is part of an autograd graph; clone() it first');
  const s = typeof src === 'object' ? src : scalarLike(dst, src);
  if (typeof src === 'object') use('assign', src);
  const srcB = s.shape.length === dst.shape.length && sameShape(s.shape, dst.shape) ? s : s.expand(dst.shape);
  // Copy first when src shares storage with dst, so overlapping reads see the old values.
  const safe = srcB.storage === dst.storage ? contiguousCopy(srcB) : srcB;
  const src2 = safe.dtype === dst.dtype ? safe : cast(safe, dst.dtype);
  k(dst).assign(dst, src2);
  dst.storage.version++;
  for (const t of new Set([s, srcB, safe, src2])) if (t !== src) t.dispose();
}

// ---------------------------------------------------------------- helpers

export function scalarLike(like: Tensor, v: number | boolean, dtype: DType = like.dtype): Tensor {
  return make(kernelsFor(like.backend).full(1, Number(v), dtype), []);
}

export function zerosOf(shape: readonly number[], dtype: DType, like: Tensor): Tensor {
  return make(kernelsFor(like.backend).full(numel(shape), 0, dtype), shape);
}

export function zerosLike(t: Tensor): Tensor {
  return zerosOf(t.shape, t.dtype, t);
}

function onesLike(t: Tensor): Tensor {
  return make(kernelsFor(t.backend).full(t.size, 1, t.dtype), t.shape);
}

/** A new tensor from host data on the same backend as `like`. */
export function fromHost(like: Tensor, data: ArrayLike<number>, shape: readonly number[], dtype: DType): Tensor {
  return make(kernelsFor(like.backend).fromArray(data, dtype), shape);
}
