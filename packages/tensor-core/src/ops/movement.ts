// Movement: views (reshape, permute, expand, slice, flip: strides only, no copy), and the indexing
// and joining ops built on the gather/scatterAdd/cat/pad/sort primitives.

import { DTypeError, fmtShape, ShapeError, ValueError } from '../errors.js';
import { tidy } from '../runtime.js';
import { contiguousStrides, isContiguous, normDim, normDims, numel, sameShape } from '../shape.js';
import type { Dims, Tensor } from '../tensor.js';
import * as P from './prims.js';

function inferShape(x: Tensor, shape: readonly number[], op: string): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) throw new ShapeError(`${op}: only one dimension can be -1; got ${fmtShape(shape)}`);
  for (const s of out)
    if (!Number.isInteger(s) || s < -1) throw new ShapeError(`${op}: invalid shape ${fmtShape(shape)}`);
  if (neg >= 0) {
    const rest = out.reduce((a, s, i) => (i === neg ? a : a * s), 1);
    if (rest === 0 || x.size % rest !== 0)
      throw new ShapeError(`${op}: cannot infer -1 in ${fmtShape(shape)} for ${x.size} elements`);
    out[neg] = x.size / rest;
  }
  if (numel(out) !== x.size)
    throw new ShapeError(
      `${op}: shape ${fmtShape(shape)} has ${numel(out)} elements; input ${fmtShape(x.shape)} has ${x.size}`,
    );
  return out;
}

/** Strides for viewing (shape, strides) as `target` without a copy, or null (PyTorch's computeStride). */
function viewStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] | null {
  const out = new Array<number>(target.length);
  let ti = target.length - 1;
  // Walk chunks of input dims that are contiguous with each other.
  let chunkBase = strides[shape.length - 1] ?? 1;
  let chunkN = 1;
  let tn = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    chunkN *= shape[i]!;
    if (i === 0 || (shape[i - 1] !== 1 && strides[i - 1] !== strides[i]! * shape[i]!)) {
      while (ti >= 0 && (tn < chunkN || target[ti] === 1)) {
        out[ti] = tn * chunkBase;
        tn *= target[ti]!;
        ti--;
      }
      if (tn !== chunkN) return null;
      if (i > 0) {
        chunkBase = strides[i - 1]!;
        chunkN = 1;
        tn = 1;
      }
    }
  }
  while (ti >= 0) out[ti--] = 1;
  return out;
}

export function view(x: Tensor, shape: readonly number[]): Tensor {
  const s = inferShape(x, shape, 'view');
  const st = x.size === 0 ? contiguousStrides(s) : viewStrides(x.shape, x.strides, s);
  if (!st)
    throw new ShapeError(
      `view: cannot view ${fmtShape(x.shape)} with strides ${fmtShape(x.strides)} as ${fmtShape(s)} without a copy; use reshape()`,
    );
  return P.makeView(x, 'view', s, st, x.offset, (g) => reshape(g, x.shape));
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = inferShape(x, shape, 'reshape');
  const st = x.size === 0 ? contiguousStrides(s) : viewStrides(x.shape, x.strides, s);
  if (st) return P.makeView(x, 'reshape', s, st, x.offset, (g) => reshape(g, x.shape));
  return P.reshapeView(x, s);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim(startDim, x.ndim, 'flatten');
  const e = normDim(endDim, x.ndim, 'flatten');
  if (e < s) throw new ValueError(`flatten: endDim ${endDim} comes before startDim ${startDim}`);
  const mid = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim)
    throw new ShapeError(`permute: expected ${x.ndim} dims for shape ${fmtShape(x.shape)}; got ${fmtShape(dims)}`);
  const d = dims.map((v) => normDim(v, x.ndim, 'permute'));
  if (new Set(d).size !== d.length) throw new ValueError(`permute: repeated dim in ${fmtShape(dims)}`);
  const inv = new Array<number>(d.length);
  d.forEach((v, i) => {
    inv[v] = i;
  });
  return P.makeView(
    x,
    'permute',
    d.map((i) => x.shape[i]!),
    d.map((i) => x.strides[i]!),
    x.offset,
    (g) => permute(g, inv),
  );
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normDim(d0, x.ndim, 'transpose');
  const b = normDim(d1, x.ndim, 'transpose');
  const perm = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.ndim + 1, 'unsqueeze');
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.ndim ? x.strides[d]! * x.shape[d]! : 1);
  return P.makeView(x, 'unsqueeze', shape, strides, x.offset, (g) => reshape(g, x.shape));
}

export function squeeze(x: Tensor, dim?: Dims): Tensor {
  const dims = dim === undefined ? x.shape.map((_, i) => i) : normDims(dim, x.ndim, 'squeeze');
  const keep = x.shape.map((s, i) => !(s === 1 && dims.includes(i)));
  return P.makeView(
    x,
    'squeeze',
    x.shape.filter((_, i) => keep[i]),
    x.strides.filter((_, i) => keep[i]),
    x.offset,
    (g) => reshape(g, x.shape),
  );
}

export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim)
    throw new ShapeError(`expand: target ${fmtShape(shape)} has fewer dims than input ${fmtShape(x.shape)}`);
  const lead = shape.length - x.ndim;
  const out: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const want = shape[i]!;
    if (i < lead) {
      if (want < 0) throw new ShapeError(`expand: cannot use -1 for a new leading dim in ${fmtShape(shape)}`);
      out.push(want);
      strides.push(0);
      continue;
    }
    const have = x.shape[i - lead]!;
    const w = want === -1 ? have : want;
    if (have === w) {
      out.push(w);
      strides.push(x.strides[i - lead]!);
    } else if (have === 1) {
      out.push(w);
      strides.push(0);
    } else throw new ShapeError(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  if (sameShape(out, x.shape)) return x.detachedView();
  return P.makeView(x, 'expand', out, strides, x.offset, (g) => P.sumToShape(g, x.shape));
}

export function slice(x: Tensor, dim: number, start?: number, end?: number, step = 1): Tensor {
  const d = normDim(dim, x.ndim, 'slice');
  if (!Number.isInteger(step) || step <= 0) throw new ValueError(`slice: step must be a positive integer; got ${step}`);
  // A fractional bound would make a view whose rows straddle the dim's elements.
  for (const [name, v] of [
    ['start', start],
    ['end', end],
  ] as const)
    if (v !== undefined && !Number.isInteger(v) && Math.abs(v) !== Number.POSITIVE_INFINITY)
      throw new ValueError(`slice: ${name} must be an integer; got ${v}`);
  const n = x.shape[d]!;
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = start === undefined ? 0 : clampIdx(start);
  const e = end === undefined ? n : clampIdx(end);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...x.shape];
  shape[d] = len;
  const strides = [...x.strides];
  strides[d] = x.strides[d]! * step;
  const cst = contiguousStrides(x.shape);
  const vst = [...cst];
  vst[d] = cst[d]! * step;
  // The gradient of a unit-step slice is the gradient padded with zeros (one pass, in wasm on the CPU); a
  // stepped slice scatters.
  const pads = x.shape.map((_, i): [number, number] => (i === d ? [s, n - s - len] : [0, 0]));
  return P.makeView(x, 'slice', shape, strides, x.offset + s * x.strides[d]!, (g) =>
    step === 1 ? P.pad(g, pads, 0) : P.asStridedScatter(g, x.shape, vst, s * cst[d]!),
  );
}

export function select(x: Tensor, dim: number, index: number): Tensor {
  return tidy(() => {
    const d = normDim(dim, x.ndim, 'select');
    const n = x.shape[d]!;
    if (!Number.isInteger(index)) throw new ValueError(`select: index must be an integer; got ${index}`);
    const i = index < 0 ? index + n : index;
    if (i < 0 || i >= n) throw new ValueError(`select: index ${index} out of range for dim ${dim} of size ${n}`);
    const s = slice(x, d, i, i + 1);
    const out = squeeze(s, d);
    s.dispose();
    return out;
  });
}

export function flip(x: Tensor, dims: Dims): Tensor {
  const ds = normDims(dims, x.ndim, 'flip');
  let offset = x.offset;
  const strides = [...x.strides];
  for (const d of ds) {
    if (x.shape[d]! > 0) offset += (x.shape[d]! - 1) * x.strides[d]!;
    strides[d] = -x.strides[d]!;
  }
  return P.makeView(x, 'flip', x.shape, strides, offset, (g) => flip(g, ds));
}

export function contiguous(x: Tensor): Tensor {
  if (isContiguous(x.shape, x.strides)) return x.detachedView();
  return P.contiguousCopy(x);
}

export function repeat(x: Tensor, reps: readonly number[]): Tensor {
  return tidy(() => {
    if (reps.length < x.ndim)
      throw new ShapeError(`repeat: ${reps.length} repeats for a tensor of rank ${x.ndim}; need at least ${x.ndim}`);
    const lead = reps.length - x.ndim;
    const src = reshape(x, [...new Array(lead).fill(1), ...x.shape]);
    // [a, b] → [1, a, 1, b] → expand [r0, a, r1, b] → reshape [r0·a, r1·b]
    const inter: number[] = [];
    const big: number[] = [];
    src.shape.forEach((s, i) => {
      inter.push(1, s);
      big.push(reps[i]!, s);
    });
    const u = reshape(src, inter);
    const e = expand(u, big);
    const out = reshape(
      e,
      src.shape.map((s, i) => s * reps[i]!),
    );
    for (const t of [src, u, e]) if (t !== out) t.dispose();
    return out;
  });
}

export function split(x: Tensor, size: number | readonly number[], dim = 0): Tensor[] {
  const d = normDim(dim, x.ndim, 'split');
  const n = x.shape[d]!;
  const sizes: number[] = [];
  if (typeof size === 'number') {
    if (!(size > 0)) throw new ValueError(`split: size must be positive; got ${size}`);
    for (let p = 0; p < n; p += size) sizes.push(Math.min(size, n - p));
  } else {
    if (size.reduce((a, b) => a + b, 0) !== n)
      throw new ShapeError(`split: sizes ${fmtShape(size)} do not sum to dim ${dim} of size ${n}`);
    sizes.push(...size);
  }
  let p = 0;
  return sizes.map((s) => {
    const t = slice(x, d, p, p + s);
    p += s;
    return t;
  });
}

export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  const d = normDim(dim, x.ndim, 'chunk');
  return split(x, Math.max(1, Math.ceil(x.shape[d]! / chunks)), d);
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'int32') throw new DTypeError(`${op}: index must be int32; got ${index.dtype}`);
}

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('gather', index);
  const d = normDim(dim, x.ndim, 'gather');
  if (index.ndim !== x.ndim)
    throw new ShapeError(`gather: index rank ${index.ndim} must equal input rank ${x.ndim} (${fmtShape(x.shape)})`);
  for (let i = 0; i < x.ndim; i++)
    if (i !== d && index.shape[i]! > x.shape[i]!)
      throw new ShapeError(
        `gather: index ${fmtShape(index.shape)} is larger than input ${fmtShape(x.shape)} at dim ${i}`,
      );
  return P.gather(x, d, index);
}

export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkIndex('scatterAdd', index);
  const d = normDim(dim, x.ndim, 'scatterAdd');
  if (index.ndim !== x.ndim || src.ndim !== x.ndim)
    throw new ShapeError(
      `scatterAdd: self ${fmtShape(x.shape)}, index ${fmtShape(index.shape)} and src ${fmtShape(src.shape)} must have one rank`,
    );
  for (let i = 0; i < x.ndim; i++)
    if (index.shape[i]! > src.shape[i]! || (i !== d && index.shape[i]! > x.shape[i]!))
      throw new ShapeError(
        `scatterAdd: index ${fmtShape(index.shape)} must fit src ${fmtShape(src.shape)} and self ${fmtShape(x.shape)} at dim ${i}`,
      );
  const s = src.dtype === x.dtype ? src : src.to(x.dtype);
  const out = P.scatterAdd(x, d, index, s);
  if (s !== src) s.dispose();
  return out;
}

export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  return tidy(() => {
    checkIndex('indexSelect', index);
    if (index.ndim > 1) throw new ShapeError(`indexSelect: index must be 1-D; got ${fmtShape(index.shape)}`);
    const d = normDim(dim, x.ndim, 'indexSelect');
    // index [n] → [1,..,n,..,1] → expand to the output shape; gather reads it with stride 0.
    const shape = [...x.shape];
    shape[d] = index.size;
    const ishape = x.shape.map((_, i) => (i === d ? index.size : 1));
    const r = reshape(index, ishape);
    const e = expand(r, shape);
    const out = P.gather(x, d, e);
    r.dispose();
    e.dispose();
    return out;
  });
}

export function cat(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new ValueError('cat: expected at least one tensor');
  const first = xs[0]!;
  const d = normDim(dim, first.ndim, 'cat');
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i]))
      throw new ShapeError(
        `cat: shapes must match except in dim ${dim}; got ${xs.map((v) => fmtShape(v.shape)).join(', ')}`,
      );
    if (t.dtype !== first.dtype) throw new DTypeError(`cat: dtypes differ (${first.dtype} and ${t.dtype})`);
  }
  return P.cat([...xs], d);
}

export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  return tidy(() => {
    if (xs.length === 0) throw new ValueError('stack: expected at least one tensor');
    const d = normDim(dim, xs[0]!.ndim + 1, 'stack');
    for (const t of xs)
      if (!sameShape(t.shape, xs[0]!.shape))
        throw new ShapeError(`stack: all shapes must be equal; got ${xs.map((v) => fmtShape(v.shape)).join(', ')}`);
    const us = xs.map((t) => unsqueeze(t, d));
    const out = P.cat(us, d);
    for (const u of us) u.dispose();
    return out;
  });
}

/**
 * Constant padding in PyTorch's F.pad order: `[left, right]` pads the last dim, `[l, r, top, bottom]`
 * the last two, and so on. Negative amounts crop.
 */
export function pad(x: Tensor, amounts: readonly number[], value = 0): Tensor {
  if (amounts.length % 2 !== 0 || amounts.length / 2 > x.ndim)
    throw new ShapeError(`pad: expected pairs for at most ${x.ndim} dims; got ${fmtShape(amounts)}`);
  const pads: [number, number][] = x.shape.map(() => [0, 0]);
  let cropped = x;
  for (let i = 0; i < amounts.length / 2; i++) {
    const d = x.ndim - 1 - i;
    const [b, a] = [amounts[2 * i]!, amounts[2 * i + 1]!];
    if (b < 0 || a < 0) {
      const next = slice(cropped, d, Math.max(0, -b), cropped.shape[d]! - Math.max(0, -a));
      if (cropped !== x) cropped.dispose();
      cropped = next;
    }
    pads[d] = [Math.max(0, b), Math.max(0, a)];
  }
  const out = P.pad(cropped, pads, value);
  if (cropped !== x) cropped.dispose();
  return out;
}

function triMask(x: Tensor, diagonal: number, upper: boolean): Tensor {
  if (x.ndim < 2)
    throw new ShapeError(`${upper ? 'triu' : 'tril'}: expected at least 2 dims; got ${fmtShape(x.shape)}`);
  const r = x.shape[x.ndim - 2]!;
  const c = x.shape[x.ndim - 1]!;
  const m = new Uint8Array(r * c);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < c; j++) m[i * c + j] = (upper ? j - i >= diagonal : j - i <= diagonal) ? 1 : 0;
  return P.fromHost(x, m, [r, c], 'bool');
}

export function tril(x: Tensor, diagonal = 0): Tensor {
  return tidy(() => {
    const m = triMask(x, diagonal, false);
    const out = x.where(m, 0);
    m.dispose();
    return out;
  });
}

export function triu(x: Tensor, diagonal = 0): Tensor {
  return tidy(() => {
    const m = triMask(x, diagonal, true);
    const out = x.where(m, 0);
    m.dispose();
    return out;
  });
}

export function sort(x: Tensor, dim = -1, descending = false): { values: Tensor; indices: Tensor } {
  return P.sort(x, normDim(dim, x.ndim, 'sort'), descending);
}

/** Indices that sort `x` along `dim` (stable: ties keep their order; NaN sorts as the largest). */
export function argsort(x: Tensor, dim = -1, descending = false): Tensor {
  const s = P.sort(x, normDim(dim, x.ndim, 'argsort'), descending);
  s.values.dispose();
  return s.indices;
}

export function topk(x: Tensor, k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
  return tidy(() => {
    const d = normDim(dim, x.ndim, 'topk');
    if (!Number.isInteger(k) || k < 0 || k > x.shape[d]!)
      throw new ValueError(`topk: k = ${k} out of range for dim ${dim} of size ${x.shape[d]}`);
    const s = P.sort(x, d, largest);
    const values = slice(s.values, d, 0, k);
    const indices = slice(s.indices, d, 0, k);
    s.values.dispose();
    s.indices.dispose();
    return { values, indices };
  });
}

/** One-hot int32 encoding of int32 class indices, a new last dim of `numClasses`. */
export function oneHot(index: Tensor, numClasses: number): Tensor {
  checkIndex('oneHot', index);
  if (index.backend !== 'cpu' && numClasses >= 0) {
    // On a GPU: compare with 0..n-1 rather than read back (an out-of-range class gives a zero row).
    const classes = P.fromHost(
      index,
      Int32Array.from({ length: numClasses }, (_, i) => i),
      [numClasses],
      'int32',
    );
    const col = index.unsqueeze(-1);
    const hit = col.eq(classes);
    const out = hit.int();
    for (const t of [classes, col, hit]) t.dispose();
    return out;
  }
  const data = index.dataSync();
  let n = numClasses;
  if (n < 0) for (let i = 0; i < data.length; i++) n = Math.max(n, data[i]! + 1);
  const out = new Int32Array(data.length * n);
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c < 0 || c >= n) throw new ValueError(`oneHot: class ${c} out of range [0, ${n})`);
    out[i * n + c] = 1;
  }
  return P.fromHost(index, out, [...index.shape, n], 'int32');
}
