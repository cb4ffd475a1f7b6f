// Batched matmul, five kernels chosen per adapter and shape (kernels.ts):
//  - `register`: 4×4 outputs per thread in registers, operands read through their strides, no
//    workgroup memory and no barriers. Fastest measured on CPU "GPUs" (lavapipe, SwiftShader), where
//    barriers are expensive, and it handles every layout (transposed, broadcast batch) without copies.
//  - `register4`: the same with vec4 loads of A along K and of B along N, for aligned row-major operands.
//  - `tiled`: 32×32 output tile per 8×8 workgroup, 4×4 per thread, A and B tiles staged in workgroup
//    memory, vec4 loads and FMAs along N (the tfjs / onnxruntime-web design, our own code). For real
//    GPUs; needs row-major operands with K and N multiples of 4.
//  - `gemv`: 1×4 outputs per thread for a few rows (M ≤ 4) and short K, so small-M products still fill
//    the device.
//  - `gemvSplitK`: M ≤ 4 and long K (decode steps): 256 threads share each few columns' K, then sum.
// All accumulate in float32 and write a contiguous [...batch, M, N] output.
import type { DType } from '../../../dtype.js';
import { type CType, LINEAR, LINEAR_INDEX, load, WG, withHelpers } from './common.wgsl.js';
import { unravel } from './reduce.wgsl.js';

/**
 * Params shared by every kernel: [M, N, K, aOff, bOff, aRs, aCs, bRs, bCs, batch[br], aBatch[br], bBatch[br],
 * zBase] (offsets and strides in elements; zBase: first batch of this dispatch, for more than 65535).
 */
/**
 * A fused epilogue: elementwise statements applied to each output before it is stored (bias, activation,
 * residual...). `acc` is the product's value; leaf k is read at (z, row, col) through params
 * [off, zStride, rowStride, colStride] that follow zBase.
 */
export interface Epilogue {
  leaves: { dtype: DType; ctype: CType }[];
  lines: readonly string[];
  result: string;
  /**
   * A temporary also stored, contiguous like the output, into binding `save` (after the leaves): the
   * pre-activation that an activation's backward reads, written by the same dispatch.
   */
  save?: string | null;
}

function head(vec4: boolean, epi: Epilogue | null): string {
  const t = vec4 ? 'vec4<f32>' : 'u32';
  const leaves = epi?.leaves ?? [];
  return [
    `@group(0) @binding(0) var<storage, read> in0: array<${t}>;`,
    `@group(0) @binding(1) var<storage, read> in1: array<${t}>;`,
    `@group(0) @binding(2) var<storage, read_write> out0: array<${t}>;`,
    ...leaves.map((_, k) => `@group(0) @binding(${3 + k}) var<storage, read> e${k}: array<u32>;`),
    ...(epi?.save ? [`@group(0) @binding(${3 + leaves.length}) var<storage, read_write> save: array<u32>;`] : []),
    `@group(0) @binding(${3 + leaves.length + (epi?.save ? 1 : 0)}) var<storage, read> P: array<u32>;`,
  ].join('\n');
}

/** `fn epi(acc, z, row, col) -> f32`, or an identity when there is no epilogue. */
function epilogueFn(epi: Epilogue | null, br: number): string {
  if (!epi) return 'fn epi(acc: f32, z: u32, row: u32, col: u32) -> f32 { return acc; }';
  const pe = 10 + 3 * br;
  const at = (k: number, j: number) => `bitcast<i32>(P[${pe + 4 * k + j}u])`;
  const loads = epi.leaves.map(
    (l, k) =>
      `  let v${k} = ${load(l.dtype, l.ctype, `e${k}[u32(${at(k, 0)} + i32(z) * ${at(k, 1)} + i32(row) * ${at(k, 2)} + i32(col) * ${at(k, 3)})]`)};`,
  );
  return `fn epi(acc: f32, z: u32, row: u32, col: u32) -> f32 {
${loads.join('\n')}
${epi.lines.map((l) => `  ${l}`).join('\n')}
${epi.save ? `  save[(z * P[0] + row) * P[1] + col] = bitcast<u32>(${epi.save});` : ''}
  return ${epi.result};
}`;
}

function offsets(br: number): string {
  return `  let z = gid.z + P[${9 + 3 * br}u];
  var ao = bitcast<i32>(P[3]);
  var bo = bitcast<i32>(P[4]);
${unravel('z', br, '9u', [`${9 + br}u`, `${9 + 2 * br}u`], ['ao', 'bo'])}
  let ars = bitcast<i32>(P[5]);
  let acs = bitcast<i32>(P[6]);
  let brs = bitcast<i32>(P[7]);
  let bcs = bitcast<i32>(P[8]);`;
}

/** Rows per thread × 4 columns per thread; workgroup [wx, wy]. */
function strided(
  ta: DType,
  tb: DType,
  br: number,
  rows: number,
  wx: number,
  wy: number,
  epi: Epilogue | null,
  half: boolean,
): string {
  const la = (e: string) => load(ta, 'f32', `in0[u32(${e})]`);
  const lb = (e: string) => load(tb, 'f32', `in1[u32(${e})]`);
  // f16 compute: operands rounded to f16, each product rounded to f16, sums in f32.
  const vb = half ? 'vec4<f16>' : 'vec4<f32>';
  const mac = (a: string, c: string) => (half ? `${c} + vec4<f32>(f16(${a}) * b)` : `fma(vec4<f32>(${a}), b, ${c})`);
  const R = Array.from({ length: rows }, (_, r) => r);
  const C = [0, 1, 2, 3];
  return enableF16(
    half,
    withHelpers(`${head(false, epi)}
${epilogueFn(epi, br)}

@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = P[0];
  let N = P[1];
  let K = P[2];
  let row0 = gid.y * ${rows}u;
  let col0 = gid.x * 4u;
  if (row0 >= M || col0 >= N) { return; }
${offsets(br)}
${R.map((r) => `  let a${r} = ao + i32(min(row0 + ${r}u, M - 1u)) * ars;`).join('\n')}
${C.map((c) => `  let b${c} = bo + i32(min(col0 + ${c}u, N - 1u)) * bcs;`).join('\n')}
${R.map((r) => `  var c${r} = vec4<f32>(0.0);`).join('\n')}
  for (var k = 0; k < i32(K); k++) {
    let kb = k * brs;
    let b = ${vb}(vec4<f32>(${C.map((c) => lb(`b${c} + kb`)).join(', ')}));
    let ka = k * acs;
${R.map((r) => `    c${r} = ${mac(la(`a${r} + ka`), `c${r}`)};`).join('\n')}
  }
  let base = z * M * N;
${R.map(
  (r) => `  if (row0 + ${r}u < M) {
${C.map((c) => `    if (col0 + ${c}u < N) { out0[base + (row0 + ${r}u) * N + col0 + ${c}u] = bitcast<u32>(epi(c${r}[${c}], z, row0 + ${r}u, col0 + ${c}u)); }`).join('\n')}
  }`,
).join('\n')}
}
`),
  );
}

/** `enable f16;` leads the module (it must precede every declaration). */
const enableF16 = (half: boolean, code: string) => (half ? `enable f16;\n${code}` : code);

export const registerShader = (ta: DType, tb: DType, br: number, epi: Epilogue | null = null, half = false) =>
  strided(ta, tb, br, 4, 8, 8, epi, half);

/**
 * The register kernel with vec4 loads: A read 4 values of K at a time, B 4 columns at a time, 16 FMAs of
 * vec4 per step and still no workgroup memory (the fastest design measured on lavapipe). Operands as
 * for the tiled kernel: row-major, K and N multiples of 4, offsets and strides multiples of 4.
 */
export function register4Shader(br: number, epi: Epilogue | null = null): string {
  const R = [0, 1, 2, 3];
  const lanes = ['x', 'y', 'z', 'w'];
  return withHelpers(`${head(true, epi)}
${epilogueFn(epi, br)}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = P[0];
  let N = P[1];
  let K = P[2];
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= M || col0 >= N) { return; }
${offsets(br)}
${R.map((r) => `  let a${r} = (ao + i32(min(row0 + ${r}u, M - 1u)) * ars) / 4;`).join('\n')}
  let b0 = (bo + i32(col0)) / 4;
  let bs = brs / 4;
${R.map((r) => `  var c${r} = vec4<f32>(0.0);`).join('\n')}
  for (var k = 0; k < i32(K) / 4; k++) {
    let kb = b0 + 4 * k * bs;
${R.map((j) => `    let b${j}v = in1[kb + ${j} * bs];`).join('\n')}
${R.map((r) => `    let a${r}v = in0[a${r} + k];\n${R.map((j) => `    c${r} = fma(vec4<f32>(a${r}v.${lanes[j]}), b${j}v, c${r});`).join('\n')}`).join('\n')}
  }
  let base = (z * M * N + col0) / 4u;
${R.map((r) => `  if (row0 + ${r}u < M) { out0[base + (row0 + ${r}u) * N / 4u] = ${vec4Epi(`c${r}`, `row0 + ${r}u`, 'col0')}; }`).join('\n')}
}
`);
}

/** A vec4 of outputs through the epilogue, lane by lane. */
const vec4Epi = (v: string, row: string, col: string) =>
  `vec4<f32>(${['x', 'y', 'z', 'w'].map((l, i) => `epi(${v}.${l}, z, ${row}, ${col} + ${i}u)`).join(', ')})`;
export const gemvShader = (ta: DType, tb: DType, br: number, epi: Epilogue | null = null, half = false) =>
  strided(ta, tb, br, 1, 64, 1, epi, half);

// The tiled kernel's operand loads, 4 per thread per K step (idx: 0..255 over the 8×8 threads × 4).
const aTile = `      // A tile: 32 rows × 8 vec4 along K.
      let ar = idx / 8u;
      let ak = idx % 8u;
      var av = vec4<f32>(0.0);
      if (tileRow + ar < M && k0 + ak * 4u < K) {
        av = in0[u32(ao + i32(tileRow + ar) * ars + i32(k0 + ak * 4u)) / 4u];
      }
      As[ar][ak * 4u] = av.x;
      As[ar][ak * 4u + 1u] = av.y;
      As[ar][ak * 4u + 2u] = av.z;
      As[ar][ak * 4u + 3u] = av.w;`;
const aTileT = `      // A tile from Aᵀ (unit stride along M): 32 along K × 8 vec4 along M.
      let ak = idx / 8u;
      let ar = idx % 8u;
      var av = vec4<f32>(0.0);
      if (k0 + ak < K && tileRow + ar * 4u < M) {
        av = in0[u32(ao + i32(k0 + ak) * acs + i32(tileRow + ar * 4u)) / 4u];
      }
      As[ar * 4u][ak] = av.x;
      As[ar * 4u + 1u][ak] = av.y;
      As[ar * 4u + 2u][ak] = av.z;
      As[ar * 4u + 3u][ak] = av.w;`;
const bTile = `      // B tile: 32 rows along K × 8 vec4 along N.
      let bk = idx / 8u;
      let bn = idx % 8u;
      var bv = vec4<f32>(0.0);
      if (k0 + bk < K && tileCol + bn * 4u < N) {
        bv = in1[u32(bo + i32(k0 + bk) * brs + i32(tileCol + bn * 4u)) / 4u];
      }
      Bs[bk][bn] = bv;`;
const bTileT = `      // B tile from Bᵀ (unit stride along K): 32 along N × 8 vec4 along K.
      let bn = idx / 8u;
      let bk = idx % 8u;
      var bv = vec4<f32>(0.0);
      if (tileCol + bn < N && k0 + bk * 4u < K) {
        bv = in1[u32(bo + i32(tileCol + bn) * bcs + i32(k0 + bk * 4u)) / 4u];
      }
      Bs[bk * 4u][bn / 4u][bn % 4u] = bv.x;
      Bs[bk * 4u + 1u][bn / 4u][bn % 4u] = bv.y;
      Bs[bk * 4u + 2u][bn / 4u][bn % 4u] = bv.z;
      Bs[bk * 4u + 3u][bn / 4u][bn % 4u] = bv.w;`;

/**
 * Workgroup-memory tiled float32 kernel. Operands bind as vec4 arrays: K, N, offsets and the strides
 * other than the unit one are multiples of 4. Each operand is read as it lies, so no copy comes first:
 * row-major, or (`aT`, `bT`) transposed — A with unit stride along M (M a multiple of 4 too), B with unit
 * stride along K, as nn.Linear's weight Wᵀ and the backward's dYᵀ arrive. A transposed tile is loaded
 * as vec4s along its unit-stride dim and scattered into the same workgroup layout, so the inner loop
 * is one for all four cases.
 */
export function tiledShader(br: number, epi: Epilogue | null = null, aT = false, bT = false): string {
  return withHelpers(`${head(true, epi)}
${epilogueFn(epi, br)}

const TS = 32u;
var<workgroup> As: array<array<f32, 32>, 32>;
var<workgroup> Bs: array<array<vec4<f32>, 8>, 32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let gid = wid;
  let M = P[0];
  let N = P[1];
  let K = P[2];
${offsets(br)}
  let tileRow = wid.y * TS;
  let tileCol = wid.x * TS;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < K; k0 += TS) {
    for (var t = 0u; t < 4u; t++) {
      let idx = li + t * 64u;
${aT ? aTileT : aTile}
${bT ? bTileT : bTile}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TS; kk++) {
      let b = Bs[kk][lid.x];
      for (var r = 0u; r < 4u; r++) {
        acc[r] = fma(vec4<f32>(As[lid.y * 4u + r][kk]), b, acc[r]);
      }
    }
    workgroupBarrier();
  }
  let col = tileCol + lid.x * 4u;
  if (col >= N) { return; }
  for (var r = 0u; r < 4u; r++) {
    let row = tileRow + lid.y * 4u + r;
    if (row < M) { out0[(z * M * N + row * N + col) / 4u] = ${vec4Epi('acc[r]', 'row', 'col')}; }
  }
}
`);
}

/**
 * Split-K GEMV for M ≤ 4 and long K (a language model's decode step: one token's row times a weight).
 * A workgroup of 256 threads owns a few columns and splits K among its threads, then sums the partial
 * products in workgroup memory; so a long K runs over 256 threads instead of one, and the loads stay
 * coalesced: with B's K stride 1 (a transposed row-major weight, as nn.Linear passes it) 64 threads
 * walk K for each of 4 columns; with B's N stride 1, 64 columns each get 4 slices of K.
 */
export function gemvSplitKShader(
  ta: DType,
  tb: DType,
  br: number,
  kMajor: boolean,
  epi: Epilogue | null = null,
  half = false,
  partial = false,
) {
  const la = (e: string) => load(ta, 'f32', `in0[u32(${e})]`);
  const lb = (e: string) => load(tb, 'f32', `in1[u32(${e})]`);
  // C columns per workgroup × S slices of K = 256 threads.
  const [C, S] = kMajor ? [4, 64] : [64, 4];
  const slice = kMajor ? `li % ${S}u` : `li / ${C}u`;
  const column = kMajor ? `li / ${S}u` : `li % ${C}u`;
  const partner = kMajor ? 'li + s' : `li + s * ${C}u`;
  const R = [0, 1, 2, 3];
  return enableF16(
    half,
    withHelpers(`${head(false, epi)}
${epilogueFn(epi, br)}

var<workgroup> red: array<array<f32, 256>, 4>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let gid = wid;
  let M = P[0];
  let N = P[1];
  let K = P[2];
${offsets(br)}
  let sl = ${slice};
  let col = wid.x * ${C}u + ${column};
  let bcol = bo + i32(min(col, N - 1u)) * bcs;
${R.map((r) => `  let a${r} = ao + i32(min(${r}u, M - 1u)) * ars;`).join('\n')}
  var acc = vec4<f32>(0.0);
  // Partial mode: workgroup row wid.y takes one chunk of K (P[${10 + 3 * br}]: chunk length).
  let k0 = ${partial ? `i32(wid.y * P[${10 + 3 * br}u])` : '0'};
  let k1 = ${partial ? `min(i32(K), k0 + i32(P[${10 + 3 * br}u]))` : 'i32(K)'};
  for (var k = k0 + i32(sl); k < k1; k += ${S}) {
    let b = ${lb('bcol + k * brs')};
    let a = vec4<f32>(${R.map((r) => la(`a${r} + k * acs`)).join(', ')});
    acc = ${half ? 'acc + vec4<f32>(vec4<f16>(a) * f16(b))' : 'fma(a, vec4<f32>(b), acc)'};
  }
${R.map((r) => `  red[${r}][li] = acc[${r}];`).join('\n')}
  workgroupBarrier();
  for (var s = ${S / 2}u; s > 0u; s >>= 1u) {
    if (sl < s) {
${R.map((r) => `      red[${r}][li] += red[${r}][${partner}];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (sl != 0u || col >= N) { return; }
  let base = ${partial ? `(wid.y * P[${11 + 3 * br}u] + z) * M * N` : 'z * M * N'};
  for (var r = 0u; r < M; r++) {
    out0[base + r * N + col] = bitcast<u32>(${partial ? 'red[r][li]' : 'epi(red[r][li], z, r, col)'});
  }
}
`),
  );
}

/**
 * The second pass of a split-K GEMV split over workgroups too: out[z, r, c] = epi(Σ_s partial[s, z, r, c]).
 * Params: [M, N, splits, batches, 0 × (6 + 3·br), epilogue words] (the epilogue reads its words where the
 * matmul kernels keep them).
 */
export function splitKReduceShader(br: number, epi: Epilogue | null): string {
  const leaves = epi?.leaves ?? [];
  const decl = [
    '@group(0) @binding(0) var<storage, read> in0: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> out0: array<u32>;',
    ...leaves.map((_, k) => `@group(0) @binding(${2 + k}) var<storage, read> e${k}: array<u32>;`),
    ...(epi?.save ? [`@group(0) @binding(${2 + leaves.length}) var<storage, read_write> save: array<u32>;`] : []),
    `@group(0) @binding(${2 + leaves.length + (epi?.save ? 1 : 0)}) var<storage, read> P: array<u32>;`,
  ];
  return withHelpers(`${decl.join('\n')}
${epilogueFn(epi, br)}

@compute @workgroup_size(${WG})
fn main(${LINEAR}) {
  let i = ${LINEAR_INDEX};
  let M = P[0];
  let N = P[1];
  let per = M * N;
  let total = P[3] * per;
  if (i >= total) { return; }
  var acc = 0.0;
  for (var s = 0u; s < P[2]; s++) { acc += in0[s * total + i]; }
  let z = i / per;
  let row = (i % per) / N;
  let col = i % N;
  out0[i] = bitcast<u32>(epi(acc, z, row, col));
}
`);
}
