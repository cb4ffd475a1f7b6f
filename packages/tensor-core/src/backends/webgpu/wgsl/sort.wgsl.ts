// Bitonic sort (Batcher, "Sorting networks and their applications", 1968) of each line of a tensor
// along one dim. Each element becomes a 32-bit key whose unsigned order is the sort order (NaN the
// largest, −0 equal to +0; descending keys are the bitwise complement) and its index in the line; pairs
// compare by (key, index), a total order, so the unstable network gives the stable result the CPU and
// PyTorch's `stable=True` give, ties in index order. Lines are padded to a power of two with (max, max)
// elements, which sort last in both directions.
//
// `sortLocalShader`: one 256-thread workgroup sorts (or finishes merging) a tile of up to 2048 elements in
// workgroup memory — whole lines when they are short, which packs many lines into one tile. Longer lines
// go through global key/index buffers: `sortStepShader` runs one compare-exchange step over all of them
// for each stride of at least a tile, and the local kernel finishes each merge.
import type { DType } from '../../../dtype.js';
import { LINEAR, LINEAR_INDEX, load, WG, withHelpers } from './common.wgsl.js';
import { unravel } from './reduce.wgsl.js';

/** Elements per workgroup tile: keys and indices fill the default 16 KiB of workgroup memory. */
export const SORT_TILE = 2048;
const THREADS = 256;

/** WGSL `fn key_(raw: u32) -> u32`: the order-preserving unsigned key of a stored word. */
function keyFn(dtype: DType, descending: boolean): string {
  const flip = descending ? '~' : '';
  if (dtype === 'int32') return `fn key_(raw: u32) -> u32 { return ${flip}(raw ^ 0x80000000u); }`;
  if (dtype === 'bool') return `fn key_(raw: u32) -> u32 { return ${flip}raw; }`;
  // Floats by their bits: positives above negatives, negatives reversed; exact, no float compares.
  return `fn key_(raw: u32) -> u32 {
  let b = bitcast<u32>(${load(dtype, 'f32', 'raw')});
  var k: u32;
  if ((b & 0x7fffffffu) > 0x7f800000u) { k = 0xffffffffu; }
  else if ((b & 0x7fffffffu) == 0u) { k = 0x80000000u; }
  else if ((b & 0x80000000u) != 0u) { k = ~b; }
  else { k = b | 0x80000000u; }
  return ${flip}k;
}`;
}

/**
 * Params: [lines, len, Pw (padded length), T (tile), kFirst, kLast, jFirst (0: k/2), inOff, dimStrideIn,
 * dimStrideOut, keptShape[kr], keptStridesIn[kr], keptStridesOut[kr]]. Reads the input tensor
 * (`fromInput`) or the global keys/indices; writes the values and int32 indices (`toOutput`) or the
 * global keys/indices.
 */
export function sortLocalShader(dtype: DType, kr: number, descending: boolean, fromInput: boolean, toOutput: boolean) {
  const decl: string[] = [];
  let b = 0;
  if (fromInput || toOutput) decl.push(`@group(0) @binding(${b++}) var<storage, read> in0: array<u32>;`);
  if (toOutput)
    decl.push(
      `@group(0) @binding(${b++}) var<storage, read_write> out0: array<u32>;`,
      `@group(0) @binding(${b++}) var<storage, read_write> out1: array<u32>;`,
    );
  if (!fromInput || !toOutput)
    decl.push(
      `@group(0) @binding(${b++}) var<storage, read_write> gk: array<u32>;`,
      `@group(0) @binding(${b++}) var<storage, read_write> gi: array<u32>;`,
    );
  decl.push(`@group(0) @binding(${b}) var<storage, read> P: array<u32>;`);
  const offsets = `    var ib = bitcast<i32>(P[7]);
    var ob = 0;
  ${unravel('line', kr, '10u', [`${10 + kr}u`, `${10 + 2 * kr}u`], ['ib', 'ob'])}`;
  const load_ = fromInput
    ? `    let line = f / Pw;
    let pos = f % Pw;
    if (line < P[0] && pos < P[1]) {
${offsets}
      sk[i] = key_(in0[u32(ib + i32(pos) * bitcast<i32>(P[8]))]);
      si[i] = pos;
    } else {
      sk[i] = 0xffffffffu;
      si[i] = 0xffffffffu;
    }`
    : `    if (f < total) {
      sk[i] = gk[f];
      si[i] = gi[f];
    } else {
      sk[i] = 0xffffffffu;
      si[i] = 0xffffffffu;
    }`;
  const store_ = toOutput
    ? `    let line = f / Pw;
    let pos = f % Pw;
    if (line < P[0] && pos < P[1]) {
${offsets}
      let o = u32(ob + i32(pos) * bitcast<i32>(P[9]));
      out0[o] = in0[u32(ib + i32(si[i]) * bitcast<i32>(P[8]))];
      out1[o] = si[i];
    }`
    : `    if (f < total) {
      gk[f] = sk[i];
      gi[f] = si[i];
    }`;
  return withHelpers(`${decl.join('\n')}
${keyFn(dtype, descending)}

var<workgroup> sk: array<u32, ${SORT_TILE}>;
var<workgroup> si: array<u32, ${SORT_TILE}>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let Pw = P[2];
  let T = P[3];
  let total = P[0] * Pw;
  let base = (wid.x + wid.y * nwg.x) * T;
  for (var i = lid; i < T; i += ${THREADS}u) {
    let f = base + i;
${load_}
  }
  workgroupBarrier();
  var j = P[6];
  for (var k = P[4]; k <= P[5]; k <<= 1u) {
    if (j == 0u) { j = k >> 1u; }
    for (; j > 0u; j >>= 1u) {
      for (var p = lid; p < T / 2u; p += ${THREADS}u) {
        let i = (p / j) * 2u * j + (p % j);
        let l = i + j;
        let up = (((base + i) & (Pw - 1u)) & k) == 0u;
        let a = sk[i];
        let c = sk[l];
        let after = a > c || (a == c && si[i] > si[l]);
        if (after == up) {
          sk[i] = c;
          sk[l] = a;
          let t = si[i];
          si[i] = si[l];
          si[l] = t;
        }
      }
      workgroupBarrier();
    }
  }
  for (var i = lid; i < T; i += ${THREADS}u) {
    let f = base + i;
${store_}
  }
}
`);
}

/** One compare-exchange step (stride j ≥ a tile) of merge k over the global keys. Params: [total/2, Pw, k, j]. */
export const sortStepShader = `@group(0) @binding(0) var<storage, read_write> gk: array<u32>;
@group(0) @binding(1) var<storage, read_write> gi: array<u32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let p = ${LINEAR_INDEX};
  if (p >= P[0]) { return; }
  let k = P[2];
  let j = P[3];
  let i = (p / j) * 2u * j + (p % j);
  let l = i + j;
  let up = ((i & (P[1] - 1u)) & k) == 0u;
  let a = gk[i];
  let c = gk[l];
  let after = a > c || (a == c && gi[i] > gi[l]);
  if (after == up) {
    gk[i] = c;
    gk[l] = a;
    let t = gi[i];
    gi[i] = gi[l];
    gi[l] = t;
  }
}
`;
