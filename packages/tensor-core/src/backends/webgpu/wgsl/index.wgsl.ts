// Indexing kernels: gather, scatter-add and the adjoint of asStrided. Scatters accumulate with atomics
// (a compare-exchange loop for float32, since WGSL has no float atomics), so repeated indices and
// overlapping windows (col2im) add up. Summation order is not fixed: results agree to rounding.
import type { DType } from '../../../dtype.js';
import { LINEAR, LINEAR_INDEX, load, WG, withHelpers } from './common.wgsl.js';
import { unravel } from './reduce.wgsl.js';

const atomicAdd = (dtype: DType) =>
  dtype === 'float32'
    ? `fn add_(i: u32, v: f32) {
  var old = atomicLoad(&out0[i]);
  loop {
    let r = atomicCompareExchangeWeak(&out0[i], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}`
    : `fn add_(i: u32, v: i32) { atomicAdd(&out0[i], bitcast<u32>(v)); }`;

/** Records an out-of-range index for the next read to throw (the first kernel to raise wins). */
const raise = `fn raise(kernel: i32, j: i32, size: i32) {
  if (atomicCompareExchangeWeak(&flag[0], 0, kernel).exchanged) {
    atomicStore(&flag[1], j);
    atomicStore(&flag[2], size);
  }
}`;

/**
 * out[e] = x[..., index[e], ...] over index's shape (rank r). Params: [n, xOffset, idxOffset, size,
 * xStrideDim, shape[r], idxStrides[r], xStrides[r] (0 at dim)]. An index out of [0, size) reads 0 and
 * raises the index flag (a ValueError at the next read), as the CPU throws at once.
 */
export function gatherShader(idxDtype: DType, r: number): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read> in1: array<u32>;
@group(0) @binding(2) var<storage, read_write> out0: array<u32>;
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(4) var<storage, read> P: array<u32>;
${raise}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let e = ${LINEAR_INDEX};
  if (e >= P[0]) { return; }
  var xo = bitcast<i32>(P[1]);
  var io = bitcast<i32>(P[2]);
${unravel('e', r, '5u', [`${5 + r}u`, `${5 + 2 * r}u`], ['io', 'xo'])}
  let j = ${load(idxDtype, 'i32', 'in1[u32(io)]')};
  if (j < 0 || j >= i32(P[3])) {
    out0[e] = 0u;
    raise(1, j, i32(P[3]));
    return;
  }
  out0[e] = in0[u32(xo + j * bitcast<i32>(P[4]))];
}
`);
}

/**
 * out (a contiguous copy of base, bound as atomics) [.., index[e], ..] += src[e]. Params: [n, idxOffset,
 * srcOffset, size, outStrideDim, shape[r], idxStrides[r], srcStrides[r], outStrides[r] (0 at dim)].
 */
export function scatterAddShader(dtype: DType, idxDtype: DType, r: number): string {
  const c = dtype === 'float32' ? 'f32' : 'i32';
  return withHelpers(`@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read> in1: array<u32>;
@group(0) @binding(2) var<storage, read_write> out0: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(4) var<storage, read> P: array<u32>;
${atomicAdd(dtype)}
${raise}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let e = ${LINEAR_INDEX};
  if (e >= P[0]) { return; }
  var io = bitcast<i32>(P[1]);
  var so = bitcast<i32>(P[2]);
  var oo = 0;
${unravel('e', r, '5u', [`${5 + r}u`, `${5 + 2 * r}u`, `${5 + 3 * r}u`], ['io', 'so', 'oo'])}
  let j = ${load(idxDtype, 'i32', 'in0[u32(io)]')};
  if (j < 0 || j >= i32(P[3])) {
    raise(2, j, i32(P[3]));
    return;
  }
  add_(u32(oo + j * bitcast<i32>(P[4])), ${load(dtype, c, 'in1[u32(so)]')});
}
`);
}

/**
 * out (zeros of the base shape, bound as atomics) at viewOffset + Σ c·viewStrides += src[c], for every
 * coordinate c of src's shape (rank r). Params: [n, viewOffset, srcOffset, shape[r], viewStrides[r],
 * srcStrides[r]].
 */
export function stridedScatterShader(dtype: DType, r: number): string {
  const c = dtype === 'float32' ? 'f32' : 'i32';
  return withHelpers(`@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read_write> out0: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> P: array<u32>;
${atomicAdd(dtype)}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let e = ${LINEAR_INDEX};
  if (e >= P[0]) { return; }
  var oo = bitcast<i32>(P[1]);
  var so = bitcast<i32>(P[2]);
${unravel('e', r, '3u', [`${3 + r}u`, `${3 + 2 * r}u`], ['oo', 'so'])}
  add_(u32(oo), ${load(dtype, c, 'in0[u32(so)]')});
}
`);
}
