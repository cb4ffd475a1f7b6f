// Elementwise ops: broadcasting, dtype promotion (JS numbers are weak) and the unary/binary primitives.
import type { BinaryOp, CompareOp, UnaryOp } from '../backends/backend.js';
import { type ComputeDType, isFloat, promote, promoteScalar } from '../dtype.js';
import { DTypeError } from '../errors.js';
import { broadcastShapes, sameShape } from '../shape.js';
import type { Tensor, TensorLike } from '../tensor.js';
import * as P from './prims.js';

/** Float-only unary ops cast int/bool inputs to float32 first, like torch.exp(int_tensor). */
const floatOnly = new Set<UnaryOp>([
  'exp',
  'log',
  'log1p',
  'expm1',
  'sqrt',
  'rsqrt',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'gelu',
  'geluTanh',
  'silu',
  'softplus',
  'erf',
  'reciprocal',
]);

function un(op: UnaryOp, x: Tensor): Tensor {
  if (x.dtype === 'float16' || x.dtype === 'bfloat16')
    throw new DTypeError(`${op}: ${x.dtype} is a storage dtype; cast to float32 first (x.float())`);
  if (floatOnly.has(op) && !isFloat(x.dtype)) {
    const f = x.float();
    const y = P.unary(op, f);
    f.dispose();
    return y;
  }
  if (op === 'logicalNot' && x.dtype !== 'bool') {
    const b = x.bool();
    const y = P.unary(op, b);
    b.dispose();
    return y;
  }
  return P.unary(op, x);
}

export const neg = (x: Tensor) => un('neg', x);
export const abs = (x: Tensor) => un('abs', x);
export const sign = (x: Tensor) => un('sign', x);
export const exp = (x: Tensor) => un('exp', x);
export const log = (x: Tensor) => un('log', x);
export const log1p = (x: Tensor) => un('log1p', x);
export const expm1 = (x: Tensor) => un('expm1', x);
export const sqrt = (x: Tensor) => un('sqrt', x);
export const rsqrt = (x: Tensor) => un('rsqrt', x);
export const sin = (x: Tensor) => un('sin', x);
export const cos = (x: Tensor) => un('cos', x);
export const tanh = (x: Tensor) => un('tanh', x);
export const sigmoid = (x: Tensor) => un('sigmoid', x);
export const relu = (x: Tensor) => un('relu', x);
export const gelu = (x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}) =>
  un(opts.approximate === 'tanh' ? 'geluTanh' : 'gelu', x);
export const silu = (x: Tensor) => un('silu', x);
export const erf = (x: Tensor) => un('erf', x);
export const reciprocal = (x: Tensor) => un('reciprocal', x);
export const floor = (x: Tensor) => un('floor', x);
export const round = (x: Tensor) => un('round', x);
export const logicalNot = (x: Tensor) => un('logicalNot', x);

/** softplus(x) = log(1 + e^{βx}) / β, linear above `threshold` like PyTorch. */
export function softplus(x: Tensor, opts: { beta?: number; threshold?: number } = {}): Tensor {
  const { beta = 1, threshold = 20 } = opts;
  if (beta === 1 && threshold === 20) return un('softplus', x);
  const bx = x.mul(beta);
  const sp = un('softplus', bx).div(beta);
  const out = where(bx.gt(threshold), x, sp);
  bx.dispose();
  sp.dispose();
  return out;
}

/** Broadcasts operands (tensors or weak JS numbers) to one shape and one compute dtype. */
export function operands(op: string, a: TensorLike, b: TensorLike, forceFloat = false): [Tensor, Tensor, ComputeDType] {
  const ta = typeof a === 'object' ? a : null;
  const tb = typeof b === 'object' ? b : null;
  const like = (ta ?? tb)!;
  if (!like) throw new DTypeError(`${op}: at least one operand must be a tensor`);
  for (const t of [ta, tb])
    if (t && (t.dtype === 'float16' || t.dtype === 'bfloat16'))
      throw new DTypeError(`${op}: ${t.dtype} is a storage dtype; cast to float32 first (x.float())`);
  let dtype: ComputeDType =
    ta && tb
      ? promote(ta.dtype, tb.dtype)
      : ta
        ? promoteScalar(ta.dtype, b as number)
        : promoteScalar(tb!.dtype, a as number);
  if (forceFloat) dtype = 'float32';
  const shape = broadcastShapes(op, ta?.shape ?? [], tb?.shape ?? []);
  const conv = (v: TensorLike): Tensor => {
    // Intermediate handles (the scalar, a cast) are released here; the returned view keeps their storage.
    const temps: Tensor[] = [];
    let t = typeof v === 'object' ? v : P.scalarLike(like, v, dtype);
    if (t !== v) temps.push(t);
    if (t.dtype !== dtype) temps.push((t = t.to(dtype)));
    const out = sameShape(t.shape, shape) ? t : t.expand(shape);
    for (const x of temps) if (x !== out) x.dispose();
    return out;
  };
  return [conv(a), conv(b), dtype];
}

function bin(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands(op, a, b, op === 'div');
  // bool arithmetic computes in int32, as numbers do.
  const dt: ComputeDType = dtype === 'bool' ? 'int32' : dtype;
  const xx = x.dtype === dt ? x : x.to(dt);
  const yy = y.dtype === dt ? y : y.to(dt);
  const out = P.binary(op, xx, yy, dt);
  for (const t of new Set([x, y, xx, yy])) if (t !== a && t !== b) t.dispose();
  return out;
}

export function add(a: TensorLike, b: TensorLike, alpha?: number): Tensor {
  if (alpha !== undefined && alpha !== 1) {
    const s = typeof b === 'object' ? b.mul(alpha) : (b as number) * alpha;
    const out = bin('add', a, s);
    if (typeof s === 'object') s.dispose();
    return out;
  }
  return bin('add', a, b);
}
export function sub(a: TensorLike, b: TensorLike, alpha?: number): Tensor {
  if (alpha !== undefined && alpha !== 1) {
    const s = typeof b === 'object' ? b.mul(alpha) : (b as number) * alpha;
    const out = bin('sub', a, s);
    if (typeof s === 'object') s.dispose();
    return out;
  }
  return bin('sub', a, b);
}
export const mul = (a: TensorLike, b: TensorLike) => bin('mul', a, b);
export const div = (a: TensorLike, b: TensorLike) => bin('div', a, b);
export const pow = (a: TensorLike, b: TensorLike) => bin('pow', a, b);
export const maximum = (a: TensorLike, b: TensorLike) => bin('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike) => bin('minimum', a, b);

function cmp(op: CompareOp, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(op, a, b);
  const out = P.compare(op, x, y);
  for (const t of new Set([x, y])) if (t !== a && t !== b) t.dispose();
  return out;
}
export const eq = (a: TensorLike, b: TensorLike) => cmp('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike) => cmp('ne', a, b);
export const lt = (a: TensorLike, b: TensorLike) => cmp('lt', a, b);
export const le = (a: TensorLike, b: TensorLike) => cmp('le', a, b);
export const gt = (a: TensorLike, b: TensorLike) => cmp('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike) => cmp('ge', a, b);

/** `cond ? a : b`, broadcasting all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool') throw new DTypeError(`where: condition must be bool; got ${cond.dtype}`);
  const [x, y] = operands('where', a, b);
  const shape = broadcastShapes('where', cond.shape, x.shape);
  const xs = sameShape(x.shape, shape) ? x : x.expand(shape);
  const ys = sameShape(y.shape, shape) ? y : y.expand(shape);
  const cs = sameShape(cond.shape, shape) ? cond : cond.expand(shape);
  const out = P.where(cs, xs, ys);
  for (const t of new Set([x, y, xs, ys, cs])) if (t !== a && t !== b && t !== cond) t.dispose();
  return out;
}

/** Clamps into [min, max]; the gradient passes where min ≤ x ≤ max, as in PyTorch. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  let out = x;
  if (min !== undefined && min !== null) {
    const m = x.lt(min);
    out = where(m, min, x);
    m.dispose();
  }
  if (max !== undefined && max !== null) {
    const m = out.gt(max);
    const o2 = where(m, max, out);
    m.dispose();
    if (out !== x) out.dispose();
    out = o2;
  }
  return out === x ? x.detachedView() : out;
}
