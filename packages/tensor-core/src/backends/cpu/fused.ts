// Fused CPU kernels (TypeScript): softmax / log-softmax over the last dim and its VJP, attention's scaled and
// causally masked softmax and its VJP, layer norm (and RMS
// norm) forward with its saved row statistics and a one-pass backward, the LSTM and GRU cells (gate
// arithmetic of one time step, forward and a backward that recomputes the gates), and the in-place Adam/AdamW
// update.
// Each replaces a chain of 4–10 elementwise and reduction kernels, each a full pass over memory, with one.
// float32 only: the prims fall back to their composites for other dtypes.
// Layer norm and cross-entropy (forward and backward) hand contiguous inputs of 4096+ elements to wasm SIMD
// kernels (wasm.ts), as kernels.ts does for Adam; these loops stay the reference (`setCpuPath('ts')`) and take
// the rest.
import { ValueError } from '../../errors.js';
import { numel } from '../../shape.js';
import type { AdamScalars, Kernels, Storage, View } from '../backend.js';
import { forEachRow } from './strided.js';
import {
  Arena,
  releaseStorageArray,
  wasm,
  wasmCrossEntropy,
  wasmCrossEntropyBackward,
  wasmLayerNorm,
  wasmLayerNormBackward,
  wasmScaledSoftmax,
  wasmScaledSoftmaxBackward,
  wasmUnary,
} from './wasm.js';

const fr = Math.fround;

/** An output array: in the wasm arena where the engine shares its memory (no GC churn), else on the JS heap. */
function alloc(n: number): Float32Array {
  const e = wasm();
  if (!e?.shared || n === 0) return new Float32Array(n);
  const a = Arena.of(e);
  return a.view(Float32Array, a.alloc(n * 4), n);
}

function store(buf: Float32Array): Storage {
  return { backend: 'cpu', dtype: 'float32', length: buf.length, buf, refs: 0, version: 0 };
}

/** The view's elements, row-major: a subarray when it is contiguous, else a copy. */
function dense(v: View): Float32Array {
  const a = v.storage.buf as Float32Array;
  const n = numel(v.shape);
  let contiguous = true;
  for (let d = v.shape.length - 1, s = 1; d >= 0; d--) {
    if (v.shape[d] !== 1 && v.strides[d] !== s) contiguous = false;
    s *= v.shape[d]!;
  }
  if (contiguous) return a.subarray(v.offset, v.offset + n);
  const out = new Float32Array(n);
  let oi = 0;
  forEachRow(v.shape, [v.strides], [v.offset], (o, len, s) => {
    let ai = o[0]!;
    const st = s[0]!;
    for (let i = 0; i < len; i++, ai += st) out[oi++] = a[ai]!;
  });
  return out;
}

/**
 * exp of every element: a new array from the wasm kernel, or (on the TypeScript path and for small
 * inputs) computed in place in `a` when `inPlace`, else in a new array.
 */
function expOf(a: Float32Array, inPlace = true): Float32Array {
  const w = wasmUnary('exp', a);
  if (w) return w;
  const out = inPlace ? a : alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.exp(a[i]!);
  return out;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

const lastDim = (v: View) => (v.shape.length ? v.shape[v.shape.length - 1]! : 1);

/** Keys row `i` of an attention matrix keeps: all `n`, or under a causal mask with offset c those j ≤ i + c. */
const keptKeys = (i: number, n: number, causal: number | null) =>
  causal === null ? n : Math.max(0, Math.min(n, i + causal + 1));

export const fusedKernels = {
  softmax(x, log) {
    const X = dense(x);
    const n = lastDim(x);
    // z = x − rowmax, then exp by the wasm SIMD kernel where it runs (one vector pass beats Math.exp per
    // element several times over), then the row sums and the normalisation.
    const z = alloc(X.length);
    for (let r = 0; r < X.length; r += n) {
      let m = Number.NEGATIVE_INFINITY;
      for (let i = r; i < r + n; i++) if (X[i]! > m) m = X[i]!;
      // A row of -inf (or one with NaN) gives NaN, as PyTorch's does.
      if (m === Number.NEGATIVE_INFINITY) m = Number.NaN;
      for (let i = r; i < r + n; i++) z[i] = X[i]! - m;
    }
    const e = expOf(z, !log);
    for (let r = 0; r < X.length; r += n) {
      let s = 0;
      for (let i = r; i < r + n; i++) s += e[i]!;
      if (log) {
        const l = Math.log(s);
        for (let i = r; i < r + n; i++) z[i] = z[i]! - l;
      } else {
        const inv = 1 / s;
        for (let i = r; i < r + n; i++) e[i] = e[i]! * inv;
      }
    }
    if (log) {
      if (e !== z) releaseStorageArray(e);
      return store(z);
    }
    if (e !== z) releaseStorageArray(z);
    return store(e);
  },

  softmaxBackward(y, g, log) {
    const Y = dense(y);
    const G = dense(g);
    const n = lastDim(y);
    if (log) {
      // g − softmax·Σg, softmax = exp(y).
      const out = expOf(Y, false);
      for (let r = 0; r < Y.length; r += n) {
        let s = 0;
        for (let i = r; i < r + n; i++) s += G[i]!;
        for (let i = r; i < r + n; i++) out[i] = G[i]! - out[i]! * s;
      }
      return store(out);
    }
    const out = alloc(Y.length);
    for (let r = 0; r < Y.length; r += n) {
      let s = 0;
      for (let i = r; i < r + n; i++) s += G[i]! * Y[i]!;
      for (let i = r; i < r + n; i++) out[i] = Y[i]! * (G[i]! - s);
    }
    return store(out);
  },

  scaledSoftmax(x, scale, causal) {
    const lq = x.shape.length >= 2 ? x.shape[x.shape.length - 2]! : 1;
    const w = wasmScaledSoftmax(x, lq, fr(scale), causal);
    if (w) return store(w);
    const X = dense(x);
    const n = lastDim(x);
    const rows = n === 0 ? 0 : X.length / n;
    const sc = fr(scale);
    // Only the kept keys of each row go through exp, packed one row after another (half the work under a
    // causal mask); z = fl(scale·x) − rowmax as the unfused mul + softmax round it.
    let kept = 0;
    for (let r = 0; r < rows; r++) kept += keptKeys(r % lq, n, causal);
    const z = alloc(kept);
    for (let r = 0, o = 0, pos = 0; r < rows; r++, o += n) {
      const nv = keptKeys(r % lq, n, causal);
      let m = Number.NEGATIVE_INFINITY;
      for (let i = o; i < o + nv; i++) {
        const v = fr(X[i]! * sc);
        if (v > m) m = v;
      }
      if (m === Number.NEGATIVE_INFINITY) m = Number.NaN;
      for (let i = o; i < o + nv; i++) z[pos++] = fr(X[i]! * sc) - m;
    }
    const e = expOf(z);
    const y = alloc(X.length);
    for (let r = 0, o = 0, pos = 0; r < rows; r++, o += n) {
      const nv = keptKeys(r % lq, n, causal);
      if (nv === 0) {
        y.fill(Number.NaN, o, o + n); // all keys masked: softmax of −inf everywhere, as the composite gives
        continue;
      }
      let s = 0;
      for (let i = pos; i < pos + nv; i++) s += e[i]!;
      const inv = 1 / s;
      for (let i = 0; i < nv; i++) y[o + i] = e[pos + i]! * inv;
      y.fill(0, o + nv, o + n);
      pos += nv;
    }
    if (e !== z) releaseStorageArray(e);
    releaseStorageArray(z);
    return store(y);
  },

  scaledSoftmaxBackward(y, g, scale, causal) {
    const lq = y.shape.length >= 2 ? y.shape[y.shape.length - 2]! : 1;
    const w = wasmScaledSoftmaxBackward(y, g, lq, fr(scale), causal);
    if (w) return store(w);
    const Y = dense(y);
    const G = dense(g);
    const n = lastDim(y);
    const rows = n === 0 ? 0 : Y.length / n;
    const sc = fr(scale);
    const out = alloc(Y.length);
    for (let r = 0, o = 0; r < rows; r++, o += n) {
      const nv = keptKeys(r % lq, n, causal);
      let s = 0;
      for (let i = o; i < o + nv; i++) s += G[i]! * Y[i]!;
      // Rounded as softmaxBackward then the scale's mul round it.
      for (let i = o; i < o + nv; i++) out[i] = fr(Y[i]! * (G[i]! - s)) * sc;
      out.fill(0, o + nv, o + n);
    }
    return store(out);
  },

  crossEntropy(x, target, ignoreIndex) {
    const k = wasmCrossEntropy(x, target, ignoreIndex);
    if (k) return [store(k[0]), store(k[1])];
    const X = dense(x);
    const [N, C] = x.shape as [number, number];
    const T = target.storage.buf as Int32Array;
    const loss = alloc(N);
    const lse = alloc(N);
    // z = x − rowmax; exp by the wasm kernel; lse = max + log Σ exp; loss = lse − x[target].
    const z = alloc(X.length);
    const mx = new Float64Array(N);
    for (let r = 0, o = 0; r < N; r++, o += C) {
      let m = Number.NEGATIVE_INFINITY;
      for (let i = o; i < o + C; i++) if (X[i]! > m) m = X[i]!;
      if (m === Number.NEGATIVE_INFINITY) m = Number.NaN;
      mx[r] = m;
      for (let i = o; i < o + C; i++) z[i] = X[i]! - m;
    }
    const e = expOf(z);
    for (let r = 0, o = 0; r < N; r++, o += C) {
      let s = 0;
      for (let i = o; i < o + C; i++) s += e[i]!;
      const l = mx[r]! + Math.log(s);
      lse[r] = l;
      loss[r] = 0; // arena blocks are not zeroed
      const t = T[target.offset + r * target.strides[0]!]!;
      if (t === ignoreIndex) continue;
      if (t < 0 || t >= C) {
        releaseStorageArray(z);
        if (e !== z) releaseStorageArray(e);
        throw new ValueError(`crossEntropy: target ${t} out of range for ${C} classes`);
      }
      loss[r] = l - X[o + t]!;
    }
    if (e !== z) releaseStorageArray(e);
    releaseStorageArray(z);
    return [store(loss), store(lse)];
  },

  crossEntropyBackward(x, target, lse, g, ignoreIndex) {
    const k = wasmCrossEntropyBackward(x, target, lse, g, ignoreIndex);
    if (k) return store(k);
    const X = dense(x);
    const L = dense(lse);
    const G = dense(g);
    const [N, C] = x.shape as [number, number];
    const T = target.storage.buf as Int32Array;
    const z = alloc(X.length);
    for (let r = 0, o = 0; r < N; r++, o += C) {
      const l = L[r]!;
      for (let i = o; i < o + C; i++) z[i] = X[i]! - l;
    }
    const p = expOf(z);
    if (p !== z) releaseStorageArray(z);
    for (let r = 0, o = 0; r < N; r++, o += C) {
      const t = T[target.offset + r * target.strides[0]!]!;
      if (t === ignoreIndex) {
        p.fill(0, o, o + C);
        continue;
      }
      const gr = G[r]!;
      for (let i = o; i < o + C; i++) p[i] = p[i]! * gr;
      if (t >= 0 && t < C) p[o + t] = p[o + t]! - gr;
    }
    return store(p);
  },

  lstmCell(gates, c) {
    const G = dense(gates);
    const C = dense(c);
    const [B, H] = c.shape as [number, number];
    const BH = B * H;
    const out = alloc(2 * BH);
    for (let b = 0; b < B; b++) {
      const gb = b * 4 * H;
      for (let j = 0; j < H; j++) {
        const e = b * H + j;
        const c2 = sigmoid(G[gb + H + j]!) * C[e]! + sigmoid(G[gb + j]!) * Math.tanh(G[gb + 2 * H + j]!);
        out[e] = sigmoid(G[gb + 3 * H + j]!) * Math.tanh(c2);
        out[BH + e] = c2;
      }
    }
    return store(out);
  },

  lstmCellBackward(gates, c, g) {
    const G = dense(gates);
    const C = dense(c);
    const D = dense(g);
    const [B, H] = c.shape as [number, number];
    const BH = B * H;
    const out = alloc(5 * BH);
    for (let b = 0; b < B; b++) {
      const gb = b * 4 * H;
      for (let j = 0; j < H; j++) {
        const e = b * H + j;
        const i = sigmoid(G[gb + j]!);
        const f = sigmoid(G[gb + H + j]!);
        const gg = Math.tanh(G[gb + 2 * H + j]!);
        const o = sigmoid(G[gb + 3 * H + j]!);
        const cv = C[e]!;
        const tc = Math.tanh(f * cv + i * gg);
        const dh = D[e]!;
        const dc = D[BH + e]! + dh * o * (1 - tc * tc);
        out[gb + j] = dc * gg * i * (1 - i);
        out[gb + H + j] = dc * cv * f * (1 - f);
        out[gb + 2 * H + j] = dc * i * (1 - gg * gg);
        out[gb + 3 * H + j] = dh * tc * o * (1 - o);
        out[4 * BH + e] = dc * f;
      }
    }
    return store(out);
  },

  gruCell(xp, hh, h) {
    const X = dense(xp);
    const R = dense(hh);
    const Hs = dense(h);
    const [B, H] = h.shape as [number, number];
    const out = alloc(B * H);
    for (let b = 0; b < B; b++) {
      const gb = b * 3 * H;
      for (let j = 0; j < H; j++) {
        const e = b * H + j;
        const r = sigmoid(X[gb + j]! + R[gb + j]!);
        const z = sigmoid(X[gb + H + j]! + R[gb + H + j]!);
        const n = Math.tanh(X[gb + 2 * H + j]! + r * R[gb + 2 * H + j]!);
        out[e] = n + z * (Hs[e]! - n);
      }
    }
    return store(out);
  },

  gruCellBackward(xp, hh, h, g) {
    const X = dense(xp);
    const R = dense(hh);
    const Hs = dense(h);
    const D = dense(g);
    const [B, H] = h.shape as [number, number];
    const BH = B * H;
    const out = alloc(7 * BH);
    for (let b = 0; b < B; b++) {
      const gb = b * 3 * H;
      const hb = 3 * BH + gb;
      for (let j = 0; j < H; j++) {
        const e = b * H + j;
        const r = sigmoid(X[gb + j]! + R[gb + j]!);
        const z = sigmoid(X[gb + H + j]! + R[gb + H + j]!);
        const hn = R[gb + 2 * H + j]!;
        const n = Math.tanh(X[gb + 2 * H + j]! + r * hn);
        const d = D[e]!;
        const dn = d * (1 - z) * (1 - n * n);
        const dr = dn * hn * r * (1 - r);
        const dz = d * (Hs[e]! - n) * z * (1 - z);
        out[gb + j] = dr;
        out[gb + H + j] = dz;
        out[gb + 2 * H + j] = dn;
        out[hb + j] = dr;
        out[hb + H + j] = dz;
        out[hb + 2 * H + j] = dn * r;
        out[6 * BH + e] = d * z;
      }
    }
    return store(out);
  },

  layerNorm(x, n, weight, bias, eps, rms) {
    const k = wasmLayerNorm(x, n, weight, bias, eps, rms);
    if (k) return [store(k[0]), store(k[1]), store(k[2])];
    const X = dense(x);
    const W = weight && dense(weight);
    const B = bias && dense(bias);
    const rows = n === 0 ? 0 : X.length / n;
    const y = alloc(X.length);
    const mean = alloc(rows);
    const rstd = alloc(rows);
    for (let r = 0, o = 0; r < rows; r++, o += n) {
      let mu = 0;
      if (!rms) {
        for (let i = o; i < o + n; i++) mu += X[i]!;
        mu /= n;
      }
      // Two passes (mean, then centred squares), as the composite did: no cancellation.
      let ss = 0;
      for (let i = o; i < o + n; i++) {
        const c = X[i]! - mu;
        ss += c * c;
      }
      const rs = 1 / Math.sqrt(fr(ss / n) + eps);
      mean[r] = mu;
      rstd[r] = rs;
      for (let i = 0; i < n; i++) {
        let v = (X[o + i]! - mu) * rs;
        if (W) v *= W[i]!;
        if (B) v += B[i]!;
        y[o + i] = v;
      }
    }
    return [store(y), store(mean), store(rstd)];
  },

  layerNormBackward(g, x, mean, rstd, weight, rms, needW, needB) {
    const k = wasmLayerNormBackward(g, x, mean, rstd, weight, rms, needW, needB);
    if (k) return [store(k[0]), k[1] && store(k[1]), k[2] && store(k[2])];
    const G = dense(g);
    const X = dense(x);
    const M = dense(mean);
    const R = dense(rstd);
    const W = weight && dense(weight);
    const rows = M.length;
    const n = rows === 0 ? 0 : X.length / rows;
    const dx = alloc(X.length);
    const dw = needW ? new Float64Array(n) : null;
    const db = needB ? new Float64Array(n) : null;
    for (let r = 0, o = 0; r < rows; r++, o += n) {
      const mu = M[r]!;
      const rs = R[r]!;
      // dx = rstd · (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w; RMS norm drops the mean(ĝ) term.
      let sg = 0;
      let sgx = 0;
      for (let i = 0; i < n; i++) {
        const gi = G[o + i]!;
        const xh = (X[o + i]! - mu) * rs;
        const gh = W ? gi * W[i]! : gi;
        sg += gh;
        sgx += gh * xh;
        if (dw) dw[i] = dw[i]! + gi * xh;
        if (db) db[i] = db[i]! + gi;
      }
      const a = rms ? 0 : sg / n;
      const b = sgx / n;
      for (let i = 0; i < n; i++) {
        const xh = (X[o + i]! - mu) * rs;
        const gh = W ? G[o + i]! * W[i]! : G[o + i]!;
        dx[o + i] = rs * (gh - a - xh * b);
      }
    }
    const f32 = (a: Float64Array) => {
      const o = alloc(a.length);
      o.set(a);
      return store(o);
    };
    return [store(dx), dw && f32(dw), db && f32(db)];
  },

  adam(p, grad, m, v, s: AdamScalars) {
    const P = p.storage.buf as Float32Array;
    const M = m.storage.buf as Float32Array;
    const V = v.storage.buf as Float32Array;
    const G = dense(grad);
    const n = G.length;
    // Every constant and every step rounded to float32 as the composite's scalar tensors and kernels were,
    // so the fused update matches it (and PyTorch's goldens) to the last bit in almost every element.
    const decay = fr(1 - s.lr * s.weightDecay);
    const wd = fr(s.weightDecay);
    const b1 = fr(s.beta1);
    const c1 = fr(1 - s.beta1);
    const b2 = fr(s.beta2);
    const c2 = fr(1 - s.beta2);
    const bc2 = fr(s.bc2Sqrt);
    const eps = fr(s.eps);
    const step = fr(s.stepSize);
    const useWd = s.weightDecay !== 0;
    for (let i = 0; i < n; i++) {
      const pi = p.offset + i;
      let pv = P[pi]!;
      let d = G[i]!;
      if (useWd) {
        if (s.decoupled) pv = fr(pv * decay);
        else d = fr(d + fr(pv * wd));
      }
      const mv = fr(fr(M[m.offset + i]! * b1) + fr(d * c1));
      const vv = fr(fr(V[v.offset + i]! * b2) + fr(fr(d * d) * c2));
      M[m.offset + i] = mv;
      V[v.offset + i] = vv;
      const denom = fr(fr(fr(Math.sqrt(vv)) / bc2) + eps);
      P[pi] = pv - fr(fr(mv / denom) * step);
    }
  },
} satisfies Pick<
  Kernels,
  | 'softmax'
  | 'softmaxBackward'
  | 'scaledSoftmax'
  | 'scaledSoftmaxBackward'
  | 'crossEntropy'
  | 'crossEntropyBackward'
  | 'layerNorm'
  | 'layerNormBackward'
  | 'lstmCell'
  | 'lstmCellBackward'
  | 'gruCell'
  | 'gruCellBackward'
  | 'adam'
>;
