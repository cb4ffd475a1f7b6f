// Reductions, arg-reductions and cumulative sums (sorting: sort.wgsl.ts). Kept dims and reduced dims are unravelled
// separately, each through the input's own strides; the ranks are baked into the shader (few shapes
// in practice), the sizes and strides are params.
import type { DType } from '../../../dtype.js';
import type { ArgReduceOp, ReduceOp } from '../../backend.js';
import { type CType, ctypeOf, LINEAR, LINEAR_INDEX, load, store, WG, withHelpers } from './common.wgsl.js';

/** WGSL that adds to each `offs[k]` the strided offset of linear index `idx` over `rank` dims. */
export function unravel(idx: string, rank: number, shapeAt: string, strideAts: string[], offs: string[]): string {
  if (rank === 0) return '';
  const adds = strideAts.map((s, k) => `      ${offs[k]} += c * bitcast<i32>(P[${s} + u32(d)]);`).join('\n');
  return `  {
    var rem = ${idx};
    for (var d = ${rank - 1}; d >= 0; d--) {
      let s = P[${shapeAt} + u32(d)];
      let c = i32(rem % s);
      rem = rem / s;
${adds}
    }
  }`;
}

function init(op: ReduceOp, c: CType): string {
  if (op === 'sum') return c === 'f32' ? '0.0' : '0';
  if (op === 'prod') return c === 'f32' ? '1.0' : '1';
  const big = c === 'f32' ? 'inf_()' : '2147483647';
  return op === 'max' ? (c === 'f32' ? `-${big}` : '(-2147483647 - 1)') : big;
}

function combine(op: ReduceOp, c: CType, a: string, v: string): string {
  if (op === 'sum') return `${a} + ${v}`;
  if (op === 'prod') return `${a} * ${v}`;
  const better = op === 'max' ? `${v} > ${a}` : `${v} < ${a}`;
  // NaN propagates: once the accumulator is NaN it stays NaN.
  if (c === 'f32') return `select(${a}, ${v}, !isnan_(${a}) && (isnan_(${v}) || ${better}))`;
  return `select(${a}, ${v}, ${better})`;
}

/**
 * Reduce over `rr` dims for each of the outputs indexed by `kr` kept dims. Params: [outer, inner,
 * offset, keptShape[kr], keptStrides[kr], redShape[rr], redStrides[rr], chunks, chunkLen]. `grouped`:
 * one workgroup per (output, chunk of the row), a tree in workgroup memory, writing [outer, chunks]
 * (chunks > 1 splits very long rows over many workgroups; a second pass reduces the partials);
 * otherwise one thread per output.
 */
export function reduceShader(op: ReduceOp, dtype: DType, outDtype: DType, kr: number, rr: number, grouped: boolean) {
  const c = ctypeOf(outDtype);
  const ks = 3;
  const kst = 3 + kr;
  const rs = 3 + 2 * kr;
  const rst = 3 + 2 * kr + rr;
  const body = (j: string) => `      var off = base;
${unravel(j, rr, `${rs}u`, [`${rst}u`], ['off'])}
      let v = ${load(dtype, c, 'in0[u32(off)]')};
      acc = ${combine(op, c, 'acc', 'v')};`;
  const head = `@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read_write> out0: array<u32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;`;
  if (!grouped)
    return withHelpers(`${head}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let o = ${LINEAR_INDEX};
  if (o >= P[0]) { return; }
  var base = bitcast<i32>(P[2]);
${unravel('o', kr, `${ks}u`, [`${kst}u`], ['base'])}
  var acc: ${c} = ${init(op, c)};
  for (var j = 0u; j < P[1]; j++) {
${body('j')}
  }
  out0[o] = ${store(outDtype, c, 'acc')};
}
`);
  return withHelpers(`${head}
var<workgroup> sh: array<${c}, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let chunks = P[${rst + rr}u];
  let o = g / chunks;
  let lo = (g % chunks) * P[${rst + rr + 1}u];
  let hi = min(P[1], lo + P[${rst + rr + 1}u]);
  let valid = o < P[0];
  var acc: ${c} = ${init(op, c)};
  if (valid) {
    var base = bitcast<i32>(P[2]);
${unravel('o', kr, `${ks}u`, [`${kst}u`], ['base'])}
    for (var j = lo + lid; j < hi; j += ${WG}u) {
${body('j')}
    }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let a = sh[lid];
      let v = sh[lid + s];
      sh[lid] = ${combine(op, c, 'a', 'v')};
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) { out0[g] = ${store(outDtype, c, 'sh[0]')}; }
}
`);
}

/** Params: [outer, len, offset, dimStride, keptShape[kr], keptStrides[kr]]. NaN wins, like torch.argmax. */
export function argReduceShader(op: ArgReduceOp, dtype: DType, kr: number): string {
  const better = op === 'argmax' ? 'v > best' : 'v < best';
  return withHelpers(`@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read_write> out0: array<u32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let o = ${LINEAR_INDEX};
  if (o >= P[0]) { return; }
  var base = bitcast<i32>(P[2]);
${unravel('o', kr, '4u', [`${4 + kr}u`], ['base'])}
  let ds = bitcast<i32>(P[3]);
  var best = ${load(dtype, 'f32', 'in0[u32(base)]')};
  var bi = 0u;
  for (var j = 1u; j < P[1]; j++) {
    let v = ${load(dtype, 'f32', 'in0[u32(base + i32(j) * ds)]')};
    if (!isnan_(best) && (${better} || isnan_(v))) {
      best = v;
      bi = j;
    }
  }
  out0[o] = bi;
}
`);
}

/**
 * Inclusive scan along one dim, one thread per line. Params: [lines, len, offset, dimStrideIn,
 * dimStrideOut, keptShape[kr], keptStridesIn[kr], keptStridesOut[kr]].
 */
export function cumsumShader(dtype: DType, outDtype: DType, kr: number): string {
  const c = ctypeOf(outDtype);
  return withHelpers(`@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read_write> out0: array<u32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let o = ${LINEAR_INDEX};
  if (o >= P[0]) { return; }
  var ib = bitcast<i32>(P[2]);
  var ob = 0;
${unravel('o', kr, '5u', [`${5 + kr}u`, `${5 + 2 * kr}u`], ['ib', 'ob'])}
  let dsi = bitcast<i32>(P[3]);
  let dso = bitcast<i32>(P[4]);
  var acc: ${c} = ${c === 'f32' ? '0.0' : '0'};
  for (var j = 0; j < i32(P[1]); j++) {
    acc = acc + ${load(dtype, c, 'in0[u32(ib + j * dsi)]')};
    out0[u32(ob + j * dso)] = ${store(outDtype, c, 'acc')};
  }
}
`);
}
