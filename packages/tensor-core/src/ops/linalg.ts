// matmul (batched, broadcasting), convolutions and pooling. Convolutions are one `conv` primitive where the
// backend has the kernel (CPU wasm: implicit GEMM, no im2col matrix); elsewhere, and as the reference, im2col
// — a strided window view (asStrided) made contiguous — followed by the blocked matmul kernel, whose
// gradients come from autograd through the same primitives (the asStrided VJP is col2im).

import { DTypeError, fmtShape, ShapeError, ValueError } from '../errors.js';
import { tidy } from '../runtime.js';
import { broadcastShapes } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { cat, pad } from './movement.js';
import * as P from './prims.js';

function float(op: string, x: Tensor): void {
  if (x.dtype !== 'float32')
    throw new DTypeError(`${op}: expects float32 tensors; got ${x.dtype} (cast with .float())`);
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return tidy(() => {
    float('matmul', a);
    float('matmul', b);
    if (a.ndim === 0 || b.ndim === 0)
      throw new ShapeError(
        `matmul: both operands need at least 1 dim; got ${fmtShape(a.shape)} x ${fmtShape(b.shape)}`,
      );
    const a2 = a.ndim === 1 ? a.unsqueeze(0) : a;
    const b2 = b.ndim === 1 ? b.unsqueeze(-1) : b;
    const m = a2.shape[a2.ndim - 2]!;
    const k = a2.shape[a2.ndim - 1]!;
    const k2 = b2.shape[b2.ndim - 2]!;
    const n = b2.shape[b2.ndim - 1]!;
    if (k !== k2)
      throw new ShapeError(`matmul expects [..., m, k] x [..., k, n]; got ${fmtShape(a.shape)} x ${fmtShape(b.shape)}`);
    const tmp: Tensor[] = [];
    let y: Tensor;
    if (b2.ndim === 2 && a2.ndim > 2) {
      // [..., m, k] · [k, n]: one big GEMM over all rows, so B is packed once.
      const af = a2.reshape([-1, k]);
      const yf = P.matmul(af, b2);
      y = yf.reshape([...a2.shape.slice(0, -1), n]);
      tmp.push(af, yf);
    } else {
      const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
      const ae =
        a2.ndim === batch.length + 2 && a2.shape.slice(0, -2).every((s, i) => s === batch[i])
          ? a2
          : a2.expand([...batch, m, k]);
      const be =
        b2.ndim === batch.length + 2 && b2.shape.slice(0, -2).every((s, i) => s === batch[i])
          ? b2
          : b2.expand([...batch, k, n]);
      y = P.matmul(ae, be);
      tmp.push(ae, be);
    }
    let out = y;
    if (a.ndim === 1) out = out.squeeze(-2);
    if (b.ndim === 1) {
      const o2 = out.squeeze(-1);
      if (out !== y) out.dispose();
      out = o2;
    }
    if (out !== y) tmp.push(y);
    for (const t of new Set([a2, b2, ...tmp])) if (t !== a && t !== b && t !== out) t.dispose();
    return out;
  });
}

export interface ConvOptions {
  bias?: Tensor | null;
  stride?: number | readonly number[];
  /** A number per side, per spatial dim, or 'same' / 'valid' (PyTorch's string modes). */
  padding?: number | readonly number[] | 'same' | 'valid';
  dilation?: number | readonly number[];
  groups?: number;
}

const tuple = (v: number | readonly number[] | undefined, n: number, dflt: number, what: string): number[] => {
  const t = v === undefined ? new Array(n).fill(dflt) : typeof v === 'number' ? new Array(n).fill(v) : [...v];
  if (t.length !== n || t.some((x) => !Number.isInteger(x) || x < 0))
    throw new ValueError(`conv: ${what} must be a non-negative integer or ${n} of them; got ${String(v)}`);
  return t;
};

/** Convolution over `sd` spatial dims (1 or 2): x [N, C, ...spatial], w [O, C/groups, ...kernel]. */
function convNd(op: string, x: Tensor, w: Tensor, opts: ConvOptions, sd: number): Tensor {
  return tidy(() => {
    float(op, x);
    float(op, w);
    const groups = opts.groups ?? 1;
    if (x.ndim !== sd + 2 || w.ndim !== sd + 2)
      throw new ShapeError(
        `${op} expects input [N, C, ${sd === 1 ? 'L' : 'H, W'}] and weight [O, C/groups, ${sd === 1 ? 'k' : 'kh, kw'}]; got ${fmtShape(x.shape)} and ${fmtShape(w.shape)}`,
      );
    const [N, C] = [x.shape[0]!, x.shape[1]!];
    const O = w.shape[0]!;
    if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0 || O % groups !== 0 || w.shape[1] !== C / groups)
      throw new ShapeError(
        `${op}: input channels ${C} and weight ${fmtShape(w.shape)} do not fit groups = ${groups} (weight dim 1 must be C/groups)`,
      );
    const ks = w.shape.slice(2);
    const stride = tuple(opts.stride, sd, 1, 'stride');
    const dil = tuple(opts.dilation, sd, 1, 'dilation');
    if (stride.some((s) => s === 0) || dil.some((d) => d === 0))
      throw new ValueError(`${op}: stride and dilation must be ≥ 1`);
    let padL: number[];
    let padR: number[];
    if (opts.padding === 'same') {
      if (stride.some((s) => s !== 1))
        throw new ValueError(`${op}: padding 'same' needs stride 1; got ${fmtShape(stride)}`);
      const total = ks.map((k, i) => dil[i]! * (k - 1));
      padL = total.map((t) => Math.floor(t / 2));
      padR = total.map((t, i) => t - padL[i]!);
    } else if (opts.padding === 'valid' || opts.padding === undefined) {
      padL = padR = new Array(sd).fill(0);
    } else padL = padR = tuple(opts.padding, sd, 0, 'padding');
    const sp = x.shape.slice(2).map((s, i) => s + padL[i]! + padR[i]!);
    const outSp = sp.map((s, i) => Math.floor((s - dil[i]! * (ks[i]! - 1) - 1) / stride[i]!) + 1);
    if (outSp.some((s) => s <= 0))
      throw new ShapeError(
        `${op}: input ${fmtShape(x.shape)} is too small for kernel ${fmtShape(ks)} (padding ${fmtShape(padL)})`,
      );
    const tmps: Tensor[] = [];
    const geo = { stride, padding: padL.map((l, i) => [l, padR[i]!] as const), dilation: dil, groups };
    const im2col = (): Tensor => {
      const padArg: number[] = [];
      for (let i = sd - 1; i >= 0; i--) padArg.push(padL[i]!, padR[i]!);
      const xp = padArg.some((p) => p) ? pad(x, padArg) : x;
      const g = groups;
      const Cg = C / g;
      const Og = O / g;
      // Window view [g, N, ...out, Cg, ...k] over the padded, contiguous input.
      const spStr = sp.map((_, i) => sp.slice(i + 1).reduce((a, b) => a * b, 1));
      const plane = sp.reduce((a, b) => a * b, 1);
      const shape = [g, N, ...outSp, Cg, ...ks];
      const strides = [
        Cg * plane,
        C * plane,
        ...spStr.map((s, i) => s * stride[i]!),
        plane,
        ...spStr.map((s, i) => s * dil[i]!),
      ];
      const win = P.asStrided(xp, shape, strides, 0);
      const K = Cg * ks.reduce((a, b) => a * b, 1);
      const M = N * outSp.reduce((a, b) => a * b, 1);
      const cols = win.reshape([g, M, K]); // im2col: the one copy
      const wt = w.reshape([g, Og, K]).transpose(1, 2); // [g, K, Og]
      const y = P.matmul(cols, wt); // [g, M, Og]
      const y5 = y.reshape([g, N, ...outSp, Og]);
      const perm = [1, 0, sd + 2, ...outSp.map((_, i) => 2 + i)]; // [N, g, Og, ...out]
      const yp = y5.permute(perm);
      tmps.push(win, cols, wt, y, y5, yp);
      if (xp !== x) tmps.push(xp);
      return yp.reshape([N, O, ...outSp]);
    };
    const bias = opts.bias ?? null;
    if (bias) {
      if (bias.ndim !== 1 || bias.shape[0] !== O)
        throw new ShapeError(`${op}: bias must be [${O}]; got ${fmtShape(bias.shape)}`);
    }
    const fused = P.conv(x, w, bias, geo, [N, O, ...outSp]);
    if (fused) return fused;
    let out = im2col();
    if (opts.bias) {
      const b = opts.bias.reshape([O, ...new Array(sd).fill(1)]);
      const ob = out.add(b);
      tmps.push(b, out);
      out = ob;
    }
    for (const t of tmps) if (t !== out) t.dispose();
    return out;
  });
}

export const conv1d = (x: Tensor, w: Tensor, opts: ConvOptions = {}) => convNd('conv1d', x, w, opts, 1);
export const conv2d = (x: Tensor, w: Tensor, opts: ConvOptions = {}) => convNd('conv2d', x, w, opts, 2);

export interface ConvTransposeOptions {
  bias?: Tensor | null;
  stride?: number;
  padding?: number;
  outputPadding?: number;
  dilation?: number;
  groups?: number;
}

/** x [N, Cin, L], w [Cin, Cout/groups, k] (PyTorch's layout): on the conv kernels, else columns + col2im. */
export function convTranspose1d(x: Tensor, w: Tensor, opts: ConvTransposeOptions = {}): Tensor {
  return tidy(() => {
    float('convTranspose1d', x);
    float('convTranspose1d', w);
    const { stride: s = 1, padding: p = 0, outputPadding: op = 0, dilation: d = 1, groups: g = 1 } = opts;
    if (x.ndim !== 3 || w.ndim !== 3)
      throw new ShapeError(
        `convTranspose1d expects input [N, Cin, L] and weight [Cin, Cout/groups, k]; got ${fmtShape(x.shape)} and ${fmtShape(w.shape)}`,
      );
    const [N, Cin, L] = x.shape as [number, number, number];
    const [Cw, Og, k] = w.shape as [number, number, number];
    if (Cw !== Cin || Cin % g !== 0)
      throw new ShapeError(
        `convTranspose1d: weight ${fmtShape(w.shape)} does not fit input channels ${Cin} and groups ${g}`,
      );
    if (op >= s && op >= d)
      throw new ValueError(`convTranspose1d: outputPadding ${op} must be smaller than stride or dilation`);
    const Cout = Og * g;
    const Lout = (L - 1) * s - 2 * p + d * (k - 1) + op + 1;
    if (Lout <= 0) throw new ShapeError(`convTranspose1d: output length ${Lout} ≤ 0 for input ${fmtShape(x.shape)}`);
    if (opts.bias && (opts.bias.ndim !== 1 || opts.bias.shape[0] !== Cout))
      throw new ShapeError(`convTranspose1d: bias must be [${Cout}]; got ${fmtShape(opts.bias.shape)}`);
    if (s === 1 && P.hasConv(x)) {
      // Stride 1: a convolution, on the conv kernel (gradients included), of x padded by d(k − 1) − p on the left
      // and d(k − 1) − p + op on the right (negative: cropped) with the weight transposed per group to
      // [Cout, Cin/g, k] and flipped. (For stride s it would need s − 1 zeros between samples: s times the
      // work, slower than the col2im below, measured.)
      const e = d * (k - 1) - p;
      const xp = pad(x, [e, e + op]);
      const wt = w.reshape([g, Cin / g, Og, k]).permute([0, 2, 1, 3]);
      const wf = wt.reshape([Cout, Cin / g, k]).flip(-1);
      const geo = { stride: [1], padding: [[0, 0] as const], dilation: [d], groups: g };
      const y = P.conv(xp, wf, opts.bias ?? null, geo, [N, Cout, Lout]);
      for (const t of [xp, wt, wf]) if (t !== x && t !== y) t.dispose();
      if (y) return y;
    }
    if (op < s) {
      // The input gradient of the conv1d that maps [N, Cout, Lout] to x's shape (its floor division absorbs an
      // output padding below the stride), on the conv kernel; its own input gradient is that conv1d.
      const geo = { stride: [s], padding: [[p, p] as const], dilation: [d], groups: g };
      const y = P.convTranspose(x, w, geo, [N, Cout, Lout], (gy) =>
        conv1d(gy, w, { stride: s, padding: p, dilation: d, groups: g }),
      );
      if (y) {
        if (!opts.bias) return y;
        const b = opts.bias.reshape([Cout, 1]);
        const out = y.add(b);
        y.dispose();
        b.dispose();
        return out;
      }
    }
    const Lfull = Math.max((L - 1) * s + d * (k - 1) + 1, p + Lout);
    const xg = x.reshape([N, g, Cin / g, L]);
    const wg = w.reshape([g, Cin / g, Og * k]).transpose(1, 2); // [g, Og·k, Cin/g]
    const we = wg.unsqueeze(0).expand([N, g, Og * k, Cin / g]);
    const cols = P.matmul(we, xg); // [N, g, Og·k, L]
    const c4 = cols.reshape([N, Cout, k, L]);
    const full = P.asStridedScatter(c4, [N, Cout, Lfull], [Cout * Lfull, Lfull, d, s], 0);
    let out = full.slice(2, p, p + Lout);
    const tmps = [xg, wg, we, cols, c4, full];
    if (opts.bias) {
      const b = opts.bias.reshape([Cout, 1]);
      const ob = out.add(b);
      tmps.push(b, out);
      out = ob;
    }
    for (const t of tmps) if (t !== out) t.dispose();
    return out;
  });
}

export interface Pool1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
}

function windows(op: string, x: Tensor, kernel: number, o: Pool1dOptions, padValue: number): Tensor {
  float(op, x);
  if (x.ndim !== 3 && x.ndim !== 2) throw new ShapeError(`${op} expects [N, C, L] or [C, L]; got ${fmtShape(x.shape)}`);
  const { stride = kernel, padding = 0, dilation = 1 } = o;
  if (padding > kernel / 2) throw new ValueError(`${op}: padding ${padding} must be at most half the kernel ${kernel}`);
  const x3 = x.ndim === 2 ? x.unsqueeze(0) : x;
  const xp = padding ? pad(x3, [padding, padding], padValue) : x3;
  const [N, C, Lp] = xp.shape as [number, number, number];
  const Lo = Math.floor((Lp - dilation * (kernel - 1) - 1) / stride) + 1;
  if (Lo <= 0) throw new ShapeError(`${op}: input ${fmtShape(x.shape)} is shorter than the kernel ${kernel}`);
  const win = P.asStrided(xp, [N, C, Lo, kernel], [C * Lp, Lp, stride, dilation], 0);
  if (xp !== x3) xp.dispose();
  if (x3 !== x) x3.dispose();
  return win;
}

export function maxPool1d(x: Tensor, kernel: number, opts: Pool1dOptions = {}): Tensor {
  return tidy(() => {
    const win = windows('maxPool1d', x, kernel, opts, Number.NEGATIVE_INFINITY);
    const { values, indices } = win.max(-1);
    indices.dispose();
    win.dispose();
    if (x.ndim === 2) {
      const v = values.squeeze(0);
      values.dispose();
      return v;
    }
    return values;
  });
}

/** Average pooling; padded zeros count in the mean (PyTorch's countIncludePad = true). */
export function avgPool1d(x: Tensor, kernel: number, opts: Omit<Pool1dOptions, 'dilation'> = {}): Tensor {
  return tidy(() => {
    const win = windows('avgPool1d', x, kernel, opts, 0);
    const m = win.mean(-1);
    win.dispose();
    if (x.ndim === 2) {
      const v = m.squeeze(0);
      m.dispose();
      return v;
    }
    return m;
  });
}

export { cat };
