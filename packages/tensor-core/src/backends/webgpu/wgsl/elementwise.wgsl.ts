// Elementwise kernels (unary, binary, compare, where, cast, copy, assign, fill): one thread per
// output element, each operand read through its own strides, so broadcast (stride 0), flipped
// (negative) and transposed views need no copy first. The index loop runs over collapsed dims.
import type { DType } from '../../../dtype.js';
import type { BinaryOp, CompareOp, UnaryOp } from '../../backend.js';
import { type CType, LINEAR, LINEAR_INDEX, load, store, WG, withHelpers } from './common.wgsl.js';

export interface Operand {
  dtype: DType;
  /** The type the expression reads it as. */
  ctype: CType;
}

/**
 * A map kernel; `lines` (let statements over v0.., from fused elementwise chains) run before the store.
 * Params: [n, rank, shape[rank], then per strided operand (the output first when
 * `outStrided`, then the inputs) offset, strides[rank]].
 */
export function mapShader(
  inputs: readonly Operand[],
  out: { dtype: DType; ctype: CType; strided: boolean },
  expr: (vals: string[]) => string,
  lines: readonly string[] = [],
): string {
  const ops = inputs.length + (out.strided ? 1 : 0);
  const decl = inputs.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<u32>;`);
  decl.push(`@group(0) @binding(${inputs.length}) var<storage, read_write> out0: array<u32>;`);
  decl.push(`@group(0) @binding(${inputs.length + 1}) var<storage, read> P: array<u32>;`);
  const base = (o: number) => `2u + rank + ${o}u * (rank + 1u)`;
  const init = Array.from({ length: ops }, (_, o) => `  var o${o} = bitcast<i32>(P[${base(o)}]);`).join('\n');
  const step = Array.from(
    { length: ops },
    (_, o) => `    o${o} += c * bitcast<i32>(P[${base(o)} + 1u + u32(d)]);`,
  ).join('\n');
  const first = out.strided ? 1 : 0;
  const vals = inputs.map((op, k) => `  let v${k} = ${load(op.dtype, op.ctype, `in${k}[u32(o${k + first})]`)};`);
  const dst = out.strided ? 'u32(o0)' : 'i';
  return withHelpers(`${decl.join('\n')}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let i = ${LINEAR_INDEX};
  if (i >= P[0]) { return; }
  let rank = P[1];
${init}
  var rem = i;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let s = P[2u + u32(d)];
    let c = i32(rem % s);
    rem = rem / s;
${step}
  }
${vals.join('\n')}
${lines.map((l) => `  ${l}`).join('\n')}
  out0[${dst}] = ${store(out.dtype, out.ctype, expr(inputs.map((_, k) => `v${k}`)))};
}
`);
}

/** Fill: every word of the output set to P[1] (the value already encoded in the dtype's word). */
export const fillShader = `@group(0) @binding(0) var<storage, read_write> out0: array<u32>;
@group(0) @binding(1) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let i = ${LINEAR_INDEX};
  if (i >= P[0]) { return; }
  out0[i] = P[1];
}
`;

const NAN = 'nan_()';

/** The WGSL of a unary op on a value `x` of ctype `c`. */
export function unaryExpr(op: UnaryOp, c: CType, x: string): string {
  if (c !== 'f32') {
    // Integer and bool inputs: only the ops that keep integers.
    switch (op) {
      case 'neg':
        return c === 'i32' ? `-${x}` : x;
      case 'abs':
        return c === 'i32' ? `abs(${x})` : x;
      case 'sign':
        return c === 'i32' ? `sign(${x})` : x;
      case 'relu':
        return c === 'i32' ? `max(${x}, 0)` : x;
      case 'logicalNot':
        return c === 'i32' ? `select(0, 1, ${x} == 0)` : `(1u - min(${x}, 1u))`;
      default:
        return x;
    }
  }
  switch (op) {
    case 'neg':
      return `-${x}`;
    case 'abs':
      return `abs(${x})`;
    case 'sign':
      return `select(sign(${x}), ${NAN}, isnan_(${x}))`;
    case 'exp':
      return `exp(${x})`;
    case 'log':
      return `log(${x})`;
    case 'log1p':
      return `log1p_(${x})`;
    case 'expm1':
      return `expm1_(${x})`;
    case 'sqrt':
      return `sqrt(${x})`;
    case 'rsqrt':
      return `(1.0 / sqrt(${x}))`;
    case 'sin':
      return `sincos_(${x}, 0)`;
    case 'cos':
      return `sincos_(${x}, 1)`;
    case 'tanh':
      return `tanh_(${x})`;
    case 'sigmoid':
      return `sigmoid_(${x})`;
    case 'relu':
      return `select(0.0, ${x}, ${x} > 0.0 || isnan_(${x}))`;
    case 'gelu':
      return `(${x} * normalCdf_(${x}))`;
    case 'geluTanh':
      return `(0.5 * ${x} * (1.0 + tanh_(0.79788456080286536 * (${x} + 0.044715 * ${x} * ${x} * ${x}))))`;
    case 'silu':
      return `(${x} * sigmoid_(${x}))`;
    case 'softplus':
      return `select(log1p_(exp(${x})), ${x}, ${x} > 20.0)`;
    case 'erf':
      return `erf_(${x})`;
    case 'reciprocal':
      return `(1.0 / ${x})`;
    case 'floor':
      return `floor(${x})`;
    case 'round':
      // WGSL's round() rounds half to even, as torch.round does.
      return `round(${x})`;
    case 'logicalNot':
      return `select(0.0, 1.0, ${x} == 0.0)`;
    case 'geluGrad':
      return `(normalCdf_(${x}) + ${x} * exp(-0.5 * ${x} * ${x}) * 0.39894228040143268)`;
    case 'geluTanhGrad':
      return `geluTanhGrad_(${x})`;
    case 'siluGrad':
      return `(sigmoid_(${x}) * (1.0 + ${x} * (1.0 - sigmoid_(${x}))))`;
  }
}

export function binaryExpr(op: BinaryOp, c: CType, a: string, b: string): string {
  const f = c === 'f32';
  switch (op) {
    case 'add':
      return `(${a} + ${b})`;
    case 'sub':
      return `(${a} - ${b})`;
    case 'mul':
      return `(${a} * ${b})`;
    case 'div':
      return f ? `(${a} / ${b})` : `select(0, ${a} / ${b}, ${b} != 0)`;
    case 'pow':
      return f ? `pow_(${a}, ${b})` : `i32(trunc(pow_(f32(${a}), f32(${b}))))`;
    case 'maximum':
      return f ? `select(max(${a}, ${b}), ${NAN}, isnan_(${a}) || isnan_(${b}))` : `max(${a}, ${b})`;
    case 'minimum':
      return f ? `select(min(${a}, ${b}), ${NAN}, isnan_(${a}) || isnan_(${b}))` : `min(${a}, ${b})`;
  }
}

export function compareExpr(op: CompareOp, a: string, b: string): string {
  const sym = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' }[op];
  return `select(0u, 1u, ${a} ${sym} ${b})`;
}
