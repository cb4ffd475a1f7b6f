// Fused row kernels (float32): softmax / log-softmax and its VJP, layer norm (and RMS norm) forward and
// backward, and the in-place Adam/AdamW update; and the LSTM / GRU cells (one thread per state element). Row kernels run one workgroup per row: strided loops over
// the row, then a tree in workgroup memory. Barriers sit only in uniform control flow (rows past the end
// still take part, with `valid` false), as WGSL's uniformity analysis requires. Inputs are contiguous;
// params carry their offsets.
import { WG, withHelpers } from './common.wgsl.js';

// Not constant-folded: a const-expression that evaluates to ±inf or NaN fails shader creation.
const NEG_INF = '(-inf_())';

/** The workgroup's row index: dispatches of more than 65535 rows are split over x·y. */
const ROW_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < P[0];
  let n = P[1];`;

/** Reduces `v` (one f32 per thread) over the workgroup into `into`, by `op` ('max' or 'sum'), in `arr`. */
function tree(arr: string, v: string, into: string, op: 'max' | 'sum'): string {
  const comb = op === 'max' ? `max(${arr}[lid], ${arr}[lid + s])` : `${arr}[lid] + ${arr}[lid + s]`;
  return `  ${arr}[lid] = ${v};
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arr}[lid] = ${comb}; }
    workgroupBarrier();
  }
  let ${into} = ${arr}[0];
  workgroupBarrier();`;
}

const rowLoop = (body: string) => `  if (valid) {
    for (var j = lid; j < n; j += ${WG}u) {
${body}
    }
  }`;

/** Params: [rows, n, xOffset]. */
export function softmaxShader(log: boolean): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> P: array<u32>;
var<workgroup> sh: array<f32, ${WG}>;

${ROW_MAIN}
  let xb = P[2] + r * n;
  let yb = r * n;
  var m0 = ${NEG_INF};
${rowLoop('      m0 = max(m0, X[xb + j]);')}
${tree('sh', 'm0', 'm1', 'max')}
  // A row of -inf has no finite max: NaN, as PyTorch gives.
  let m = select(m1, nan_(), m1 == ${NEG_INF});
  var s0 = 0.0;
${rowLoop('      s0 += exp(X[xb + j] - m);')}
${tree('sh', 's0', 's', 'sum')}
${rowLoop(log ? '      Y[yb + j] = X[xb + j] - m - log(s);' : '      Y[yb + j] = exp(X[xb + j] - m) / s;')}
}
`);
}

/** Params: [rows, n, yOffset, gOffset]. y is the softmax (or log-softmax) output. */
export function softmaxBackwardShader(log: boolean): string {
  return `@group(0) @binding(0) var<storage, read> Yin: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<u32>;
var<workgroup> sh: array<f32, ${WG}>;

${ROW_MAIN}
  let yb = P[2] + r * n;
  let gb = P[3] + r * n;
  let ob = r * n;
  var s0 = 0.0;
${rowLoop(log ? '      s0 += G[gb + j];' : '      s0 += G[gb + j] * Yin[yb + j];')}
${tree('sh', 's0', 's', 'sum')}
${rowLoop(
  log ? '      DX[ob + j] = G[gb + j] - exp(Yin[yb + j]) * s;' : '      DX[ob + j] = Yin[yb + j] * (G[gb + j] - s);',
)}
}
`;
}

/** Params: [rows, n, xOffset, wOffset, bOffset, eps (f32 bits)]. Outputs y, mean, rstd. */
export function layerNormShader(rms: boolean, hasW: boolean, hasB: boolean): string {
  let b = 0;
  const decl = (name: string, rw: boolean) =>
    `@group(0) @binding(${b++}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<f32>;`;
  const lines = [
    decl('X', false),
    ...(hasW ? [decl('W', false)] : []),
    ...(hasB ? [decl('B', false)] : []),
    decl('Y', true),
    decl('MEAN', true),
    decl('RSTD', true),
    `@group(0) @binding(${b}) var<storage, read> P: array<u32>;`,
  ];
  const affine = `${hasW ? ' * W[P[3] + j]' : ''}${hasB ? ' + B[P[4] + j]' : ''}`;
  return `${lines.join('\n')}
var<workgroup> sh: array<f32, ${WG}>;

${ROW_MAIN}
  let xb = P[2] + r * n;
  let yb = r * n;
  let nf = f32(n);
  var s0 = 0.0;
${rms ? '' : rowLoop('      s0 += X[xb + j];')}
${tree('sh', 's0', 's', 'sum')}
  let mu = ${rms ? '0.0' : 's / nf'};
  var q0 = 0.0;
${rowLoop('      let c = X[xb + j] - mu;\n      q0 += c * c;')}
${tree('sh', 'q0', 'q', 'sum')}
  let rs = 1.0 / sqrt(q / nf + bitcast<f32>(P[5]));
${rowLoop(`      Y[yb + j] = (X[xb + j] - mu) * rs${affine};`)}
  if (valid && lid == 0u) {
    MEAN[r] = mu;
    RSTD[r] = rs;
  }
}
`;
}

/** Params: [rows, n, gOffset, xOffset, meanOffset, rstdOffset, wOffset]. dx of layer norm, per row. */
export function layerNormBackwardShader(rms: boolean, hasW: boolean): string {
  return `@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> MEAN: array<f32>;
@group(0) @binding(3) var<storage, read> RSTD: array<f32>;
${hasW ? '@group(0) @binding(4) var<storage, read> W: array<f32>;\n' : ''}@group(0) @binding(${hasW ? 5 : 4}) var<storage, read_write> DX: array<f32>;
@group(0) @binding(${hasW ? 6 : 5}) var<storage, read> P: array<u32>;
var<workgroup> sh: array<f32, ${WG}>;

${ROW_MAIN}
  let gb = P[2] + r * n;
  let xb = P[3] + r * n;
  let ob = r * n;
  let rr = min(r, max(P[0], 1u) - 1u);
  let mu = MEAN[P[4] + rr];
  let rs = RSTD[P[5] + rr];
  let nf = f32(n);
  var a0 = 0.0;
  var b0 = 0.0;
${rowLoop(`      let gh = G[gb + j]${hasW ? ' * W[P[6] + j]' : ''};
      a0 += gh;
      b0 += gh * (X[xb + j] - mu) * rs;`)}
${tree('sh', 'a0', 'sa', 'sum')}
${tree('sh', 'b0', 'sb', 'sum')}
  let a = ${rms ? '0.0' : 'sa / nf'};
  let bb = sb / nf;
  // dx = rstd · (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·w; RMS norm drops the mean(ĝ) term.
${rowLoop(`      let gh = G[gb + j]${hasW ? ' * W[P[6] + j]' : ''};
      DX[ob + j] = rs * (gh - a - (X[xb + j] - mu) * rs * bb);`)}
}
`;
}

/**
 * Params: [rows, n, gOffset, xOffset, meanOffset, rstdOffset]. One thread per column: dweight = Σ g·x̂ and
 * dbias = Σ g over the rows.
 */
export const layerNormColumnsShader = `@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> MEAN: array<f32>;
@group(0) @binding(3) var<storage, read> RSTD: array<f32>;
@group(0) @binding(4) var<storage, read_write> DW: array<f32>;
@group(0) @binding(5) var<storage, read_write> DB: array<f32>;
@group(0) @binding(6) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * ${WG}u;
  let n = P[1];
  if (c >= n) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var r = 0u; r < P[0]; r++) {
    let g = G[P[2] + r * n + c];
    dw += g * (X[P[3] + r * n + c] - MEAN[P[4] + r]) * RSTD[P[5] + r];
    db += g;
  }
  DW[c] = dw;
  DB[c] = db;
}
`;

/**
 * In-place Adam/AdamW, one thread per element, in the composite's float32 order. Params: [n, pOff, gOff,
 * mOff, vOff, then f32 bits: 1 − lr·wd, wd, β1, 1 − β1, β2, 1 − β2, √bc2, eps, lr/bc1; then flags
 * (1: weight decay, 2: decoupled)].
 */
export const adamShader = `@group(0) @binding(0) var<storage, read_write> Pm: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> M: array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<f32>;
@group(0) @binding(4) var<storage, read> P: array<u32>;

fn f(i: u32) -> f32 { return bitcast<f32>(P[i]); }

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= P[0]) { return; }
  let flags = P[14];
  var p = Pm[P[1] + i];
  var d = G[P[2] + i];
  if ((flags & 1u) != 0u) {
    if ((flags & 2u) != 0u) { p = p * f(5u); } else { d = d + p * f(6u); }
  }
  let m = M[P[3] + i] * f(7u) + d * f(8u);
  let v = V[P[4] + i] * f(9u) + (d * d) * f(10u);
  M[P[3] + i] = m;
  V[P[4] + i] = v;
  let denom = sqrt(v) / f(11u) + f(12u);
  Pm[P[1] + i] = p - (m / denom) * f(13u);
}
`;

/**
 * Cross-entropy rows. Params: [rows, C, xOffset, tOffset, tStride, ignoreIndex]. Writes loss (0 on ignored
 * rows) and logsumexp per row; a target outside [0, C) raises the index flag (a ValueError at the next read).
 */
export function crossEntropyShader(): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> T: array<i32>;
@group(0) @binding(2) var<storage, read_write> LOSS: array<f32>;
@group(0) @binding(3) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(4) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(5) var<storage, read> P: array<u32>;
var<workgroup> sh: array<f32, ${WG}>;

${ROW_MAIN}
  let xb = P[2] + r * n;
  var m0 = ${NEG_INF};
${rowLoop('      m0 = max(m0, X[xb + j]);')}
${tree('sh', 'm0', 'm1', 'max')}
  let m = select(m1, nan_(), m1 == ${NEG_INF});
  var s0 = 0.0;
${rowLoop('      s0 += exp(X[xb + j] - m);')}
${tree('sh', 's0', 's', 'sum')}
  if (valid && lid == 0u) {
    let l = m + log(s);
    LSE[r] = l;
    let t = T[i32(P[3]) + i32(r) * bitcast<i32>(P[4])];
    var loss = 0.0;
    if (t != bitcast<i32>(P[5])) {
      if (t < 0 || t >= i32(n)) {
        if (atomicCompareExchangeWeak(&flag[0], 0, 1).exchanged) {
          atomicStore(&flag[1], t);
          atomicStore(&flag[2], i32(n));
        }
      } else {
        loss = l - X[xb + u32(t)];
      }
    }
    LOSS[r] = loss;
  }
}
`);
}

/** Params: [total, C, xOffset, tOffset, tStride, ignoreIndex, lseOffset, gOffset]. One thread per element. */
export const crossEntropyBackwardShader = `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> T: array<i32>;
@group(0) @binding(2) var<storage, read> LSE: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read_write> DX: array<f32>;
@group(0) @binding(5) var<storage, read> P: array<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= P[0]) { return; }
  let c = P[1];
  let r = e / c;
  let col = i32(e % c);
  let t = T[i32(P[3]) + i32(r) * bitcast<i32>(P[4])];
  if (t == bitcast<i32>(P[5])) {
    DX[e] = 0.0;
    return;
  }
  let p = exp(X[P[2] + e] - LSE[P[6] + r]);
  DX[e] = (p - select(0.0, 1.0, col == t)) * G[P[7] + r];
}
`;

/** One thread per (row, unit) of the [B, H] state: `e` and the split of the dispatch over x·y. */
const CELL_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= P[0]) { return; }
  let H = P[1];
  let b = e / H;
  let j = e % H;`;

/** LSTM cell. Params: [B·H, H, gatesOffset, cOffset]. Writes [h, c'] ([2, B, H]). */
export function lstmCellShader(): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> C: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<storage, read> P: array<u32>;

${CELL_MAIN}
  let gb = P[2] + b * 4u * H + j;
  let c2 = sigmoid_(G[gb + H]) * C[P[3] + e] + sigmoid_(G[gb]) * tanh_(G[gb + 2u * H]);
  OUT[e] = sigmoid_(G[gb + 3u * H]) * tanh_(c2);
  OUT[P[0] + e] = c2;
}
`);
}

/** LSTM cell VJP. Params: [B·H, H, gatesOffset, cOffset, gOffset]. Writes dgates [B, 4H] then dc [B, H]. */
export function lstmCellBackwardShader(): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> C: array<f32>;
@group(0) @binding(2) var<storage, read> D: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(4) var<storage, read> P: array<u32>;

${CELL_MAIN}
  let gb = P[2] + b * 4u * H + j;
  let i = sigmoid_(G[gb]);
  let f = sigmoid_(G[gb + H]);
  let g = tanh_(G[gb + 2u * H]);
  let o = sigmoid_(G[gb + 3u * H]);
  let c = C[P[3] + e];
  let tc = tanh_(f * c + i * g);
  let dh = D[P[4] + e];
  let dc = D[P[4] + P[0] + e] + dh * o * (1.0 - tc * tc);
  let ob = b * 4u * H + j;
  OUT[ob] = dc * g * i * (1.0 - i);
  OUT[ob + H] = dc * c * f * (1.0 - f);
  OUT[ob + 2u * H] = dc * i * (1.0 - g * g);
  OUT[ob + 3u * H] = dh * tc * o * (1.0 - o);
  OUT[4u * P[0] + e] = dc * f;
}
`);
}

/** GRU cell. Params: [B·H, H, xpOffset, hhOffset, hOffset]. Writes h' [B, H]. */
export function gruCellShader(): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> R: array<f32>;
@group(0) @binding(2) var<storage, read> Hs: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(4) var<storage, read> P: array<u32>;

${CELL_MAIN}
  let xb = P[2] + b * 3u * H + j;
  let rb = P[3] + b * 3u * H + j;
  let r = sigmoid_(X[xb] + R[rb]);
  let z = sigmoid_(X[xb + H] + R[rb + H]);
  let n = tanh_(X[xb + 2u * H] + r * R[rb + 2u * H]);
  OUT[e] = n + z * (Hs[P[4] + e] - n);
}
`);
}

/**
 * GRU cell VJP. Params: [B·H, H, xpOffset, hhOffset, hOffset, gOffset]. Writes dxp [B, 3H], dhh [B, 3H],
 * then dh [B, H].
 */
export function gruCellBackwardShader(): string {
  return withHelpers(`@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> R: array<f32>;
@group(0) @binding(2) var<storage, read> Hs: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(5) var<storage, read> P: array<u32>;

${CELL_MAIN}
  let xb = P[2] + b * 3u * H + j;
  let rb = P[3] + b * 3u * H + j;
  let r = sigmoid_(X[xb] + R[rb]);
  let z = sigmoid_(X[xb + H] + R[rb + H]);
  let hn = R[rb + 2u * H];
  let n = tanh_(X[xb + 2u * H] + r * hn);
  let d = D[P[5] + e];
  let dn = d * (1.0 - z) * (1.0 - n * n);
  let dr = dn * hn * r * (1.0 - r);
  let dz = d * (Hs[P[4] + e] - n) * z * (1.0 - z);
  let ob = b * 3u * H + j;
  let hb = 3u * P[0] + ob;
  OUT[ob] = dr;
  OUT[ob + H] = dz;
  OUT[ob + 2u * H] = dn;
  OUT[hb] = dr;
  OUT[hb + H] = dz;
  OUT[hb + 2u * H] = dn * r;
  OUT[6u * P[0] + e] = d * z;
}
`);
}
