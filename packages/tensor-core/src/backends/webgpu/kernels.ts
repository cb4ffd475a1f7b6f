// The WebGPU kernels table. Kernels encode their dispatches into the context's open command encoder
// and return the output Storage at once; only `read` waits for the GPU. Elementwise kernels and matmul
// return lazy storages instead: chains of them run as one generated shader (a matmul's consumer as its
// epilogue) when a kernel, a read or an in-place write needs the buffer. `satisfies Kernels` makes a
// missing or mistyped kernel a compile error.
import { isGradEnabled } from '../../autograd.js';
import type { DType } from '../../dtype.js';
import { f32ToBf16, f32ToF16 } from '../../io/half.js';
import { contiguousStrides, isContiguous, numel } from '../../shape.js';
import type { Kernels, Storage, View } from '../backend.js';
import type { Context } from './context.js';
import { DeviceLostError, FeatureUnsupportedError, SyncReadError, WebGPUError } from './errors.js';
import { collapse, Params } from './layout.js';
import { type CType, ctypeOf, load, store, WG } from './wgsl/common.wgsl.js';
import { binaryExpr, compareExpr, fillShader, mapShader, type Operand, unaryExpr } from './wgsl/elementwise.wgsl.js';
import {
  adamShader,
  crossEntropyBackwardShader,
  crossEntropyShader,
  gruCellBackwardShader,
  gruCellShader,
  layerNormBackwardShader,
  layerNormColumnsShader,
  layerNormShader,
  lstmCellBackwardShader,
  lstmCellShader,
  softmaxBackwardShader,
  softmaxShader,
} from './wgsl/fused.wgsl.js';
import { gatherShader, scatterAddShader, stridedScatterShader } from './wgsl/index.wgsl.js';
import {
  type Epilogue,
  gemvShader,
  gemvSplitKShader,
  register4Shader,
  registerShader,
  splitKReduceShader,
  tiledShader,
} from './wgsl/matmul.wgsl.js';
import { argReduceShader, cumsumShader, reduceShader } from './wgsl/reduce.wgsl.js';
import { SORT_TILE, sortLocalShader, sortStepShader } from './wgsl/sort.wgsl.js';

/**
 * What a WebGPU Storage's `buf` holds: the buffer and the context (device) it belongs to, or — for the
 * result of an elementwise op not yet needed — a lazy expression (fused into one shader when something
 * needs the buffer). `pins` counts lazy expressions that read this buffer: its release waits for them.
 */
export interface GpuBuf {
  buffer: GPUBuffer | null;
  ctx: Context;
  lazy: Lazy | null;
  pins: number;
  freed: boolean;
  /** Lazy expressions reading this buffer: computed before anything writes it in place. */
  readers: Set<GpuBuf> | null;
}

/** A materialised input of a fused expression, as the output's shape sees it (broadcast strides). */
interface Leaf {
  b: GpuBuf;
  dtype: DType;
  strides: readonly number[];
  offset: number;
  ctype: CType;
}

/** A fused elementwise chain: `let` lines over leaves v0.. and temporaries t0.., ending in `result`. */
interface Lazy {
  leaves: Leaf[];
  lines: string[];
  result: string;
  ctype: CType;
  dtype: DType;
  shape: readonly number[];
  /** A pending matmul whose output is `acc`: the statements become its epilogue (bias, activation). */
  mm: { a: View; b: View; shape: readonly number[] } | null;
  /** Not inlined into consumers (a matmul chain while autograd records: see lazyMap). */
  sealed: boolean;
  /**
   * A matmul chain this one inlined while autograd records (an activation of `x·Wᵀ + b`): the matmul's
   * store also writes that chain's value `value` into its buffer `b`, so backward reads the
   * pre-activation without running the matmul again.
   */
  also?: { b: GpuBuf; value: string } | null;
  /** On such an inlined chain: the chain that computes it as a by-product (run that one instead). */
  partner?: GpuBuf | null;
}

let current: Context | null = null;

export function setContext(c: Context | null): void {
  // A new device starts in float32 (it may lack shader-f16).
  if (c !== current) f16Compute = false;
  current = c;
}

export function getContext(): Context {
  if (!current) throw new WebGPUError("WebGPU: the backend is not initialised; call await setBackend('webgpu') first");
  return current;
}

/** The matmul kernel: chosen per adapter and shape ('auto'), or forced (tests, benchmarks). */
export type MatmulVariant = 'auto' | 'register' | 'register4' | 'tiled' | 'gemv' | 'gemvSplitK';
let matmulVariant: MatmulVariant = 'auto';
export function setMatmulVariant(v: MatmulVariant): void {
  matmulVariant = v;
}
/** The kernel the last matmul ran (tests check the choice by shape). */
let lastVariant: Variant | null = null;
export const lastMatmul = (): Variant | null => lastVariant;

/**
 * f16 compute: matmul operands rounded to f16 and multiplied in f16, products summed in f32 (twice the
 * arithmetic rate on GPUs with packed f16). Off by default; needs the adapter's `shader-f16`.
 */
let f16Compute = false;
export function setF16Compute(on: boolean): void {
  const a = getContext().gpu.adapter;
  if (on && !a.f16)
    throw new FeatureUnsupportedError(
      `setF16Compute: the adapter ${a.name} does not expose the WebGPU feature 'shader-f16'; matmuls stay float32`,
    );
  f16Compute = on;
}

// ------------------------------------------------------------------ helpers

function live(b: GpuBuf | null, op: string): GpuBuf {
  const ctx = getContext();
  if (!b) throw new WebGPUError(`${op}: storage already freed`);
  if (b.ctx !== ctx)
    throw new DeviceLostError(
      `${op}: this tensor lives on a WebGPU device that was lost or replaced; recreate it on the current device`,
    );
  return b;
}

/** Runs a pending (lazy) storage's kernels now, e.g. before timing with sync(). */
export function realize(s: Storage): void {
  if (s.buf) gbuf(s, 'realize');
}

/** The storage's buffer, computing a pending fused expression first. */
function gbuf(s: Storage, op: string): GPUBuffer {
  const b = live(s.buf as GpuBuf | null, op);
  if (b.lazy) materialize(b, s.length, op);
  return b.buffer!;
}

function newBuf(buffer: GPUBuffer | null, lazy: Lazy | null = null): GpuBuf {
  return { buffer, ctx: getContext(), lazy, pins: 0, freed: false, readers: null };
}

function alloc(n: number, dtype: DType, op: string): Storage {
  const buf = newBuf(getContext().alloc(Math.max(n, 1) * 4, undefined, op));
  return { backend: 'webgpu', dtype, length: n, buf, refs: 0, version: 0 };
}

const shaderMemo = new Map<string, string>();
function shader(key: string, make: () => string): string {
  let code = shaderMemo.get(key);
  if (code === undefined) shaderMemo.set(key, (code = make()));
  return code;
}

function run(name: string, key: string, make: () => string, bufs: GPUBuffer[], params: Params, groups: number) {
  const ctx = getContext();
  ctx.dispatch(ctx.kernel(name, shader(key, make)), bufs, params.build(), groups);
}

const groupsFor = (n: number) => Math.ceil(n / WG);
/** The smallest power of two ≥ n (1 for n ≤ 1). */
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

/**
 * One thread per element of `shape`: inputs read through their strides, the output written
 * contiguously or (for `assign`, `cat`, `pad`) into a strided view of an existing buffer.
 */
function map(
  op: string,
  shape: readonly number[],
  inputs: { v: View; ctype: CType }[],
  out: { s: Storage; ctype: CType; strides?: readonly number[]; offset?: number },
  expr: (vals: string[]) => string,
): void {
  const leaves = inputs.map((i) => ({
    b: live(i.v.storage.buf as GpuBuf, op),
    dtype: i.v.dtype,
    strides: i.v.strides,
    offset: i.v.offset,
    ctype: i.ctype,
  }));
  for (const i of inputs) gbuf(i.v.storage, op);
  runMap(op, shape, leaves, [], expr(leaves.map((_, k) => `v${k}`)), out);
}

function runMap(
  op: string,
  shape: readonly number[],
  leaves: readonly Leaf[],
  lines: readonly string[],
  result: string,
  out: { s: Storage; ctype: CType; strides?: readonly number[]; offset?: number },
): void {
  const n = numel(shape);
  const dst = gbuf(out.s, op);
  if (n === 0) return;
  const strided = out.strides !== undefined;
  const all = [...(strided ? [out.strides!] : []), ...leaves.map((l) => l.strides)];
  const offs = [...(strided ? [out.offset ?? 0] : []), ...leaves.map((l) => l.offset)];
  const c = collapse(shape, all.length ? all : [contiguousStrides(shape)]);
  const p = new Params().u(n, c.shape.length).u(...c.shape);
  all.forEach((_, o) => {
    p.i(offs[o]!).i(...c.strides[o]!);
  });
  const operands: Operand[] = leaves.map((l) => ({ dtype: l.dtype, ctype: l.ctype }));
  const bufs = [...leaves.map((l) => l.b.buffer!), dst];
  const key = `map:${operands.map((o) => `${o.dtype}/${o.ctype}`).join(',')}>${out.s.dtype}/${out.ctype}${strided ? 's' : ''}:${lines.join('')}:${result}`;
  run(
    op,
    key,
    () => mapShader(operands, { dtype: out.s.dtype, ctype: out.ctype, strided }, () => result, lines),
    bufs,
    p,
    groupsFor(n),
  );
}

// ------------------------------------------------------------------ fusion of elementwise chains

/** Fused inputs per shader (bindings: leaves + output + params within the default limit of 8). */
const MAX_LEAVES = 6;
/** Statements per fused shader, so a saved activation re-read in backward stays cheap to inline. */
const MAX_LINES = 24;

const isPlain = (v: View, shape: readonly number[]) =>
  v.offset === 0 &&
  v.shape.length === shape.length &&
  v.shape.every((d, i) => d === shape[i]) &&
  v.strides.every((st, i) => st === contiguousStrides(shape)[i] || v.shape[i] === 1);

/** A whole contiguous view in another shape (a matmul folded [..., m, k]·[k, n] into 2-D). */
const isReshape = (v: View, shape: readonly number[]) =>
  v.offset === 0 && isContiguous(v.shape, v.strides) && numel(v.shape) === numel(shape);

function addLeaf(leaves: Leaf[], l: Leaf): number {
  const i = leaves.findIndex(
    (m) =>
      m.b === l.b &&
      m.dtype === l.dtype &&
      m.ctype === l.ctype &&
      m.offset === l.offset &&
      m.strides.every((st, d) => st === l.strides[d]),
  );
  if (i >= 0) return i;
  leaves.push(l);
  return leaves.length - 1;
}

/** `value` of ctype `from`, stored as `dtype` and read back as ctype `to` (exact for every dtype). */
function convert(dtype: DType, from: CType, to: CType, value: string): string {
  if (from === to && (dtype === 'float32' || dtype === 'int32') && ctypeOf(dtype) === from) return value;
  return load(dtype, to, store(dtype, from, value));
}

/**
 * An elementwise op as a lazy storage: inputs that are themselves pending chains, viewed whole, are
 * inlined (their statements renamed into this one), others become leaves. Nothing runs until a kernel,
 * a read or an in-place write needs the buffer.
 */
function lazyMap(
  op: string,
  shape: readonly number[],
  inputs: { v: View; ctype: CType }[],
  dtype: DType,
  ctype: CType,
  expr: (vals: string[]) => string,
): Storage {
  const leaves: Leaf[] = [];
  const lines: string[] = [];
  const vals: string[] = [];
  let mm: Lazy['mm'] = null;
  let also: Lazy['also'] = null;
  const held: GpuBuf[] = [];
  inputs.forEach((inp, k) => {
    const b = live(inp.v.storage.buf as GpuBuf, op);
    const lz = b.lazy;
    const rest = inputs.length - k - 1;
    // A chain absorbs at most one matmul, which binds A and B besides the leaves.
    const withMm = mm !== null || lz?.mm != null;
    // While autograd records, a unary op (an activation) takes a whole matmul chain whose epilogue can
    // fuse, and the matmul stores both: the chain's value (which the VJP saves) and the activation.
    const dual =
      lz !== null &&
      lz.mm !== null &&
      isGradEnabled() &&
      inputs.length === 1 &&
      ctype === 'f32' &&
      dtype === 'float32' &&
      lz.dtype === 'float32' &&
      lz.ctype === 'f32' &&
      !lz.also &&
      !lz.partner &&
      isPlain(inp.v, lz.shape) &&
      lz.leaves.length <= MAX_LEAVES - 3 &&
      lines.length + lz.lines.length < MAX_LINES &&
      epilogueWords(lz) !== null;
    if (dual) {
      for (const i of inputsOf(lz)) {
        i.pins++;
        held.push(i);
      }
      for (const l of lz.leaves) addLeaf(leaves, l);
      for (const line of lz.lines) lines.push(line);
      const t = `t${lines.length}`;
      lines.push(`let ${t} = ${lz.result};`);
      vals.push(t);
      mm = lz.mm;
      also = { b, value: t };
    } else if (
      // Half-precision results are stored before use: drivers fold unpack(pack(x)) into x, skipping the rounding.
      lz &&
      !lz.sealed &&
      (!lz.mm || !isGradEnabled() || op === 'add' || op === 'sub') &&
      !(mm && lz.mm) &&
      lz.dtype !== 'float16' &&
      lz.dtype !== 'bfloat16' &&
      (isPlain(inp.v, lz.shape) || (lz.mm !== null && lz.lines.length === 0 && isReshape(inp.v, lz.shape))) &&
      leaves.length + lz.leaves.length + rest <= (withMm ? MAX_LEAVES - 2 : MAX_LEAVES) &&
      lines.length + lz.lines.length < MAX_LINES
    ) {
      mm ??= lz.mm;
      // Hold what the inlined chain reads until this chain pins it: a later input may materialize that
      // same chain (g.mul(g)), which unpins its inputs and could release them in between.
      for (const i of inputsOf(lz)) {
        i.pins++;
        held.push(i);
      }
      const leafMap = lz.leaves.map((l) => addLeaf(leaves, l));
      const base = lines.length;
      const rename = (text: string) =>
        text.replace(/\b([vt])(\d+)\b/g, (_, kind: string, i: string) =>
          kind === 'v' ? `v${leafMap[Number(i)]}` : `t${base + Number(i)}`,
        );
      for (const line of lz.lines) lines.push(rename(line));
      const t = `t${lines.length}`;
      lines.push(`let ${t} = ${convert(inp.v.dtype, lz.ctype, inp.ctype, rename(lz.result))};`);
      vals.push(t);
    } else {
      gbuf(inp.v.storage, op);
      const i = addLeaf(leaves, {
        b,
        dtype: inp.v.dtype,
        strides: inp.v.strides,
        offset: inp.v.offset,
        ctype: inp.ctype,
      });
      vals.push(`v${i}`);
    }
  });
  const t = `t${lines.length}`;
  lines.push(`let ${t}: ${ctype} = ${expr(vals)};`);
  // While autograd records, ops that save their inputs (activations, mul) would re-run the matmul in
  // backward if they inlined it; so a matmul takes only a bias or residual add, and the result is sealed.
  const out = pending({
    leaves,
    lines,
    result: t,
    ctype,
    dtype,
    shape: [...shape],
    mm,
    sealed: mm !== null && isGradEnabled(),
    also,
  });
  // (Set inside the forEach above, which TypeScript does not see.)
  const dualOf = also as Lazy['also'];
  if (dualOf) dualOf.b.lazy!.partner = out.buf as GpuBuf;
  for (const i of held) if (--i.pins === 0 && i.freed) release(i);
  return out;
}

/** The buffers a lazy expression reads: its leaves and a pending matmul's operands. */
const inputsOf = (lz: Lazy): GpuBuf[] => [
  ...lz.leaves.map((l) => l.b),
  ...(lz.mm ? [lz.mm.a.storage.buf as GpuBuf, lz.mm.b.storage.buf as GpuBuf] : []),
];

/** A storage for a lazy expression, pinning what it reads. */
function pending(lazy: Lazy): Storage {
  const buf = newBuf(null, lazy);
  for (const b of inputsOf(lazy)) {
    b.pins++;
    (b.readers ??= new Set()).add(buf);
  }
  return { backend: 'webgpu', dtype: lazy.dtype, length: numel(lazy.shape), buf, refs: 0, version: 0 };
}

/** Drops a lazy expression's hold on its leaves (after it ran, or when it is freed unrun). */
function unpin(b: GpuBuf): void {
  const lz = b.lazy!;
  b.lazy = null;
  // The inlined chain computes on its own again; a freed inlined chain is not stored.
  const other = lz.also?.b.lazy;
  if (other?.partner === b) other.partner = null;
  if (lz.partner?.lazy?.also?.b === b) lz.partner.lazy.also = null;
  for (const i of inputsOf(lz)) {
    i.readers?.delete(b);
    if (--i.pins === 0 && i.freed) release(i);
  }
}

function materialize(b: GpuBuf, n: number, op: string): void {
  const lz = b.lazy!;
  // Computed as a by-product of the activation that inlined it: run that (one dispatch for both).
  const p = lz.partner?.lazy;
  if (p?.also?.b === b) {
    materialize(lz.partner!, numel(p.shape), op);
    return;
  }
  const ctx = getContext();
  b.buffer = ctx.alloc(Math.max(n, 1) * 4, undefined, op);
  const out: Storage = { backend: 'webgpu', dtype: lz.dtype, length: n, buf: b, refs: 0, version: 0 };
  const also = lz.also?.b.lazy ? lz.also : null;
  if (also) also.b.buffer = ctx.alloc(Math.max(n, 1) * 4, undefined, op);
  b.lazy = null;
  if (lz.mm) runMatmulChain(lz, out, op, also);
  else runMap(op, lz.shape, lz.leaves, lz.lines, lz.result, { s: out, ctype: lz.ctype });
  b.lazy = lz;
  if (also) unpin(also.b);
  unpin(b);
}

/**
 * A matmul with the chain that consumed it: fused into the matmul's store when the chain ends in float32
 * and every leaf is addressed as off + z·zs + row·rs + col·cs; else the product goes through a buffer.
 */
function runMatmulChain(lz: Lazy, out: Storage, op: string, also: Lazy['also'] = null): void {
  const { a, b } = lz.mm!;
  if (lz.lines.length === 0) {
    matmulInto(a, b, out, null);
    return;
  }
  const words = lz.dtype === 'float32' && lz.ctype === 'f32' ? epilogueWords(lz) : null;
  if (words) {
    const leaves = lz.leaves.map((l, k) => ({ l, words: words[k]! }));
    const save = also ? { buffer: also.b.buffer!, value: also.value } : null;
    matmulInto(a, b, out, { leaves, lines: lz.lines, result: lz.result, save });
    return;
  }
  if (also) throw new WebGPUError(`${op}: internal: a dual-output matmul chain lost its epilogue`);
  const tmp = alloc(numel(lz.shape), 'float32', op);
  matmulInto(a, b, tmp, null);
  const v = `v${lz.leaves.length}`;
  const acc = (text: string) => text.replace(/\bacc\b/g, v);
  const leaves = [
    ...lz.leaves,
    {
      b: tmp.buf as GpuBuf,
      dtype: 'float32' as DType,
      strides: contiguousStrides(lz.shape),
      offset: 0,
      ctype: 'f32' as CType,
    },
  ];
  runMap(op, lz.shape, leaves, lz.lines.map(acc), acc(lz.result), { s: out, ctype: lz.ctype });
  webgpuKernels.free(tmp);
}

/**
 * Each leaf's epilogue address words [off, zStride, rowStride, colStride] over the product's shape, or
 * null when some leaf cannot be addressed so (then the product goes through a buffer).
 */
function epilogueWords(lz: Lazy): number[][] | null {
  const shape = lz.mm!.shape;
  const r = shape.length;
  const batch = shape.slice(0, r - 2);
  const out: number[][] = [];
  for (const l of lz.leaves) {
    // Leaves are strided over the chain's shape; the epilogue addresses them over the product's.
    const st = restride(lz.shape, l.strides, shape);
    const zs = st && zStride(batch, st.slice(0, r - 2));
    if (!st || zs === null) return null;
    out.push([l.offset, zs, st[r - 2]!, st[r - 1]!]);
  }
  return out;
}

/**
 * Strides that address the same elements in `to` as `strides` do in `from` (equal sizes), or null when
 * no strides can: PyTorch's view rule, stride-0 (broadcast) dims included.
 */
function restride(from: readonly number[], strides: readonly number[], to: readonly number[]): number[] | null {
  if (numel(from) === 0) return contiguousStrides(to);
  const out = new Array<number>(to.length);
  let v = to.length - 1;
  let chunk = strides[from.length - 1] ?? 1;
  let tn = 1;
  let vn = 1;
  for (let d = from.length - 1; d >= 0; d--) {
    tn *= from[d]!;
    if (d === 0 || (from[d - 1] !== 1 && strides[d - 1] !== tn * chunk)) {
      while (v >= 0 && (vn < tn || to[v] === 1)) {
        out[v] = vn * chunk;
        vn *= to[v]!;
        v--;
      }
      if (vn !== tn) return null;
      if (d > 0) {
        chunk = strides[d - 1]!;
        tn = 1;
        vn = 1;
      }
    }
  }
  return v === -1 ? out : null;
}

/** The z-stride of a view whose batch dims (row-major, flattened to z) are addressed linearly, or null. */
function zStride(batch: readonly number[], strides: readonly number[]): number | null {
  let zs: number | null = null;
  let span = 1;
  for (let d = batch.length - 1; d >= 0; d--) {
    if (batch[d] !== 1) {
      if (zs === null) zs = span === 1 ? strides[d]! : strides[d]! / span;
      if (strides[d] !== zs * span) return null;
    }
    span *= batch[d]!;
  }
  return zs ?? 0;
}

/** Before an in-place write: every pending expression that reads the buffer runs first. */
function settleReaders(b: GpuBuf, op: string): void {
  if (!b.readers) return;
  for (const r of [...b.readers]) if (r.lazy) materialize(r, numel(r.lazy.shape), op);
}

function release(b: GpuBuf): void {
  const buffer = b.buffer;
  b.buffer = null;
  // Buffers of a lost or replaced device are gone with it.
  if (buffer && b.ctx === current && b.ctx.gpu.lost === null) b.ctx.release(buffer);
}

function copyInto(op: string, x: View, dst: Storage, strides?: readonly number[], offset?: number): void {
  const c = ctypeOf(x.dtype);
  map(op, x.shape, [{ v: x, ctype: c }], { s: dst, ctype: c, strides, offset }, (v) => v[0]!);
}

function contiguous(x: View, op: string): Storage {
  const out = alloc(numel(x.shape), x.dtype, op);
  copyInto(op, x, out);
  return out;
}

/** A float64 value as the 32-bit word of `dtype`. */
function word(value: number, dtype: DType): number {
  switch (dtype) {
    case 'float32':
      return new Uint32Array(Float32Array.of(value).buffer)[0]!;
    case 'int32':
      return value | 0;
    case 'bool':
      return value ? 1 : 0;
    case 'float16':
      return f32ToF16(Float32Array.of(value))[0]!;
    case 'bfloat16':
      return f32ToBf16(Float32Array.of(value))[0]!;
  }
}

function fillInto(s: Storage, n: number, value: number): void {
  const ctx = getContext();
  const buffer = gbuf(s, 'full');
  if (n === 0) return;
  const w = word(value, s.dtype);
  // Small fills (the scalars of `x.mul(2)`) are one queue write; big ones a clear or a fill kernel.
  if (n <= 1024) ctx.upload(buffer, new Uint32Array(n).fill(w));
  else if (w === 0) ctx.clear(buffer);
  else ctx.dispatch(ctx.kernel('fill', fillShader), [buffer], Uint32Array.of(n, w), groupsFor(n));
}

/** Kept dims (not in `dims`) and reduced dims, each collapsed, as params. */
function splitDims(x: View, dims: readonly number[]) {
  const keptIdx = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const kept = collapse(
    keptIdx.map((i) => x.shape[i]!),
    [keptIdx.map((i) => x.strides[i]!)],
  );
  const red = collapse(
    dims.map((i) => x.shape[i]!),
    [dims.map((i) => x.strides[i]!)],
  );
  return { kept, red, outer: numel(kept.shape), inner: numel(red.shape) };
}

function toHost(words: ArrayBuffer, dtype: DType): ArrayLike<number> {
  switch (dtype) {
    case 'float32':
      return new Float32Array(words);
    case 'int32':
      return new Int32Array(words);
    case 'bool':
      return Uint8Array.from(new Uint32Array(words));
    default:
      return Uint16Array.from(new Uint32Array(words));
  }
}

function toWords(data: ArrayLike<number>, dtype: DType): Uint32Array | Float32Array | Int32Array {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case 'int32':
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case 'bool':
      return Uint32Array.from(data, (v) => (v ? 1 : 0));
    default:
      return Uint32Array.from(data);
  }
}

// ------------------------------------------------------------------ matmul

export type Variant = 'register' | 'register4' | 'tiled' | 'gemv' | 'gemvSplitK';

/** K from which a few-row product splits K over a workgroup (below it one thread per 4 outputs is enough). */
const SPLIT_K_MIN = 256;

function chooseMatmul(a: View, b: View, M: number, N: number, K: number): Variant {
  const v = chooseKernel(a, b, M, N, K);
  // The f16 path has the strided kernels only (f16 loads of any layout).
  return f16Compute && (v === 'register4' || v === 'tiled') ? 'register' : v;
}

function chooseKernel(a: View, b: View, M: number, N: number, K: number): Variant {
  const aligned = K % 4 === 0 && N % 4 === 0;
  const v4 = aligned && vec4Ready(a) && vec4Ready(b);
  switch (matmulVariant) {
    case 'register':
    case 'gemv':
      return matmulVariant;
    case 'gemvSplitK':
      return M <= 4 ? 'gemvSplitK' : 'register';
    case 'register4':
      return v4 ? 'register4' : 'register';
    case 'tiled':
      return aligned ? 'tiled' : 'register';
  }
  const float = a.dtype === 'float32' && b.dtype === 'float32';
  return pickMatmul({ M, K, software: getContext().gpu.adapter.software, aligned: aligned && float, v4 });
}

/**
 * The automatic choice, by adapter and shape. Barriers cost more than they save on CPU "GPUs" (measured
 * on lavapipe: the split-K GEMV and the tiled kernel lose there), so software adapters get the
 * barrier-free kernels; GPUs get the workgroup-memory tiles, and for decode steps (a few rows times a
 * weight, long K) the split-K GEMV.
 */
export function pickMatmul(s: { M: number; K: number; software: boolean; aligned: boolean; v4: boolean }): Variant {
  if (s.M <= 4) return !s.software && s.K >= SPLIT_K_MIN ? 'gemvSplitK' : 'gemv';
  if (!s.software && s.aligned) return 'tiled';
  return s.v4 ? 'register4' : 'register';
}

/** Row-major with every offset and stride a multiple of 4, as the vec4 kernels bind them. */
const vec4Ready = (v: View): boolean => vec4Along(v, v.shape.length - 1);

/** Unit stride along `dim` and every other stride and the offset a multiple of 4: vec4 loads along `dim`. */
function vec4Along(v: View, dim: number): boolean {
  if (v.dtype !== 'float32' || v.offset % 4 !== 0) return false;
  if (v.shape[dim]! > 1 && v.strides[dim] !== 1) return false;
  return v.strides.every((s, i) => i === dim || s % 4 === 0 || v.shape[i] === 1);
}

interface EpilogueLeaves {
  leaves: { l: Leaf; words: number[] }[];
  lines: readonly string[];
  result: string;
  /** Also store this temporary (an activation's input) into `buffer`, contiguous like the output. */
  save: { buffer: GPUBuffer; value: string } | null;
}

function matmulInto(a: View, b: View, out: Storage, epi: EpilogueLeaves | null): void {
  const r = a.shape.length;
  const M = a.shape[r - 2]!;
  const K = a.shape[r - 1]!;
  const N = b.shape[r - 1]!;
  const batchShape = a.shape.slice(0, r - 2);
  const nb = numel(batchShape);
  if (nb * M * N === 0) return;
  if (K === 0) {
    fillInto(out, nb * M * N, 0);
    return;
  }
  const variant = chooseMatmul(a, b, M, N, K);
  const temps: Storage[] = [];
  // The tiled kernel reads row-major operands and transposed ones (Aᵀ with M a multiple of 4, Bᵀ) as
  // they lie; anything else is copied row-major first.
  const tiled = variant === 'tiled';
  const aT = tiled && !vec4Ready(a) && M % 4 === 0 && vec4Along(a, r - 2);
  const bT = tiled && !vec4Ready(b) && vec4Along(b, r - 2);
  const prep = (v: View, asIs: boolean): View => {
    if (!tiled || asIs || vec4Ready(v)) return v;
    const s = contiguous(v, 'matmul');
    temps.push(s);
    return { storage: s, shape: v.shape, strides: contiguousStrides(v.shape), offset: 0, dtype: v.dtype };
  };
  const A = prep(a, aT);
  const B = prep(b, bT);
  const batch = collapse(batchShape, [A.strides.slice(0, r - 2), B.strides.slice(0, r - 2)]);
  const br = batch.shape.length;
  const head = new Params()
    .u(M, N, K)
    .i(A.offset, B.offset, A.strides[r - 2]!, A.strides[r - 1]!, B.strides[r - 2]!, B.strides[r - 1]!)
    .u(...batch.shape)
    .i(...batch.strides[0]!, ...batch.strides[1]!);
  const ctx = getContext();
  const bufs = [gbuf(A.storage, 'matmul'), gbuf(B.storage, 'matmul'), gbuf(out, 'matmul')];
  const e: Epilogue | null = epi && {
    leaves: epi.leaves.map(({ l }) => ({ dtype: l.dtype, ctype: l.ctype })),
    lines: epi.lines,
    result: epi.result,
    save: epi.save?.value ?? null,
  };
  for (const { l } of epi?.leaves ?? []) bufs.push(l.b.buffer!);
  if (epi?.save) bufs.push(epi.save.buffer);
  const tail = (epi?.leaves ?? []).flatMap((x) => x.words);
  const ek = e
    ? `:${e.leaves.map((l) => `${l.dtype}/${l.ctype}`).join(',')}:${e.lines.join('')}:${e.result}:${e.save}`
    : '';
  // B's K stride 1 (a transposed weight): the split-K threads walk K; else they walk N.
  const kMajor = B.strides[r - 2] === 1 && N > 1;
  const h = f16Compute;
  const dt = `${A.dtype}:${B.dtype}:${br}:${h}`;
  const code =
    variant === 'tiled'
      ? shader(`mm:t:${br}:${aT}:${bT}${ek}`, () => tiledShader(br, e, aT, bT))
      : variant === 'register4'
        ? shader(`mm:r4:${br}${ek}`, () => register4Shader(br, e))
        : variant === 'gemv'
          ? shader(`mm:g:${dt}${ek}`, () => gemvShader(A.dtype, B.dtype, br, e, h))
          : variant === 'gemvSplitK'
            ? shader(`mm:sk:${dt}:${kMajor}${ek}`, () => gemvSplitKShader(A.dtype, B.dtype, br, kMajor, e, h))
            : shader(`mm:r:${dt}${ek}`, () => registerShader(A.dtype, B.dtype, br, e, h));
  lastVariant = variant;
  // Workgroups: tiled 32×32 outputs; register 8×8 threads of 4×4; gemv 64 threads of 1×4; split-K
  // 4 (K-major) or 64 columns and every row.
  const gx =
    variant === 'gemv'
      ? Math.ceil(N / 256)
      : variant === 'gemvSplitK'
        ? Math.ceil(N / (kMajor ? 4 : 64))
        : Math.ceil(N / 32);
  const gy = variant === 'gemv' ? M : variant === 'gemvSplitK' ? 1 : Math.ceil(M / 32);
  const splits = variant === 'gemvSplitK' ? splitKSplits(gx * nb, K) : 1;
  if (splits > 1) {
    splitKAcrossWorkgroups(A, B, out, { M, N, K, nb, br, gx, splits, kMajor, half: h }, head, e, bufs.slice(3), tail);
    for (const t of temps) webgpuKernels.free(t);
    return;
  }
  const k = ctx.kernel(`matmul-${variant}`, code);
  for (let z0 = 0; z0 < nb; z0 += 65535) {
    const p = Uint32Array.from([...head.build(), z0, ...tail], (w) => w >>> 0);
    ctx.dispatch(k, bufs, p, [gx, gy, Math.min(nb - z0, 65535)]);
  }
  for (const t of temps) webgpuKernels.free(t);
}

/** Workgroups a split-K GEMV aims for before it also splits K over workgroups. */
const SPLIT_K_TARGET_GROUPS = 128;

/**
 * How many chunks of K a split-K GEMV of `groups` workgroups (columns × batch) takes: enough for about
 * 128 workgroups when the columns are few (attention's P·V at decode: N = head size, K = context), at
 * least 256 of K per chunk; 1 (one pass, epilogue in the store) otherwise.
 */
export function splitKSplits(groups: number, K: number): number {
  return Math.max(1, Math.min(Math.ceil(SPLIT_K_TARGET_GROUPS / groups), Math.floor(K / SPLIT_K_MIN)));
}

/** Split-K over workgroups: partial sums per chunk of K into a buffer, then one pass sums them (and the epilogue). */
function splitKAcrossWorkgroups(
  A: View,
  B: View,
  out: Storage,
  g: {
    M: number;
    N: number;
    K: number;
    nb: number;
    br: number;
    gx: number;
    splits: number;
    kMajor: boolean;
    half: boolean;
  },
  head: Params,
  e: Epilogue | null,
  epiBufs: GPUBuffer[],
  tail: number[],
): void {
  const ctx = getContext();
  const { M, N, K, nb, br, splits } = g;
  const partials = alloc(splits * nb * M * N, 'float32', 'matmul');
  const key = `mm:skp:${A.dtype}:${B.dtype}:${br}:${g.half}:${g.kMajor}`;
  const code = shader(key, () => gemvSplitKShader(A.dtype, B.dtype, br, g.kMajor, null, g.half, true));
  const k = ctx.kernel('matmul-gemvSplitK', code);
  const bufs = [gbuf(A.storage, 'matmul'), gbuf(B.storage, 'matmul'), gbuf(partials, 'matmul')];
  const chunk = Math.ceil(K / splits);
  for (let z0 = 0; z0 < nb; z0 += 65535) {
    const p = Uint32Array.from([...head.build(), z0, chunk, nb], (w) => w >>> 0);
    ctx.dispatch(k, bufs, p, [g.gx, splits, Math.min(nb - z0, 65535)]);
  }
  const ek = e
    ? `:${e.leaves.map((l) => `${l.dtype}/${l.ctype}`).join(',')}:${e.lines.join('')}:${e.result}:${e.save}`
    : '';
  const rk = ctx.kernel(
    'matmul-splitKReduce',
    shader(`mm:skr:${br}${ek}`, () => splitKReduceShader(br, e)),
  );
  const p = Uint32Array.from([M, N, splits, nb, ...new Array<number>(6 + 3 * br).fill(0), ...tail], (w) => w >>> 0);
  ctx.dispatch(rk, [gbuf(partials, 'matmul'), gbuf(out, 'matmul'), ...epiBufs], p, groupsFor(nb * M * N));
  webgpuKernels.free(partials);
}

// ------------------------------------------------------------------ fused row kernels

/** A float32 view as a contiguous buffer and offset: its own when it is one, else a copy (kept in `temps`). */
function dense(v: View, op: string, temps: Storage[]): { buf: GPUBuffer; off: number } {
  if (v.dtype === 'float32' && isContiguous(v.shape, v.strides)) return { buf: gbuf(v.storage, op), off: v.offset };
  const s = contiguous(v, op);
  temps.push(s);
  return { buf: gbuf(s, op), off: 0 };
}

const lastDim = (v: View) => (v.shape.length ? v.shape[v.shape.length - 1]! : 1);
const freeAll = (temps: Storage[]) => {
  for (const t of temps) webgpuKernels.free(t);
};

// ------------------------------------------------------------------ the table

export const webgpuKernels = {
  // The elementwise kernels return lazy storages; chains of them run as one fused shader.
  unary(op, x) {
    const c = ctypeOf(x.dtype);
    const dtype: DType = op === 'logicalNot' ? 'bool' : x.dtype;
    return lazyMap(op, x.shape, [{ v: x, ctype: c }], dtype, c, (v) => unaryExpr(op, c, v[0]!));
  },

  binary(op, a, b, dtype) {
    const c = ctypeOf(dtype);
    const ins = [
      { v: a, ctype: c },
      { v: b, ctype: c },
    ];
    return lazyMap(op, a.shape, ins, dtype, c, (v) => binaryExpr(op, c, v[0]!, v[1]!));
  },

  compare(op, a, b) {
    const ca = ctypeOf(a.dtype);
    const c: CType = ca === 'f32' || ctypeOf(b.dtype) === 'f32' ? 'f32' : ca === 'u32' ? ctypeOf(b.dtype) : 'i32';
    const ins = [
      { v: a, ctype: c },
      { v: b, ctype: c },
    ];
    return lazyMap(op, a.shape, ins, 'bool', 'u32', (v) => compareExpr(op, v[0]!, v[1]!));
  },

  where(cond, a, b) {
    const c = ctypeOf(a.dtype);
    const ins = [
      { v: cond, ctype: 'u32' as CType },
      { v: a, ctype: c },
      { v: b, ctype: c },
    ];
    return lazyMap('where', a.shape, ins, a.dtype, c, (v) => `select(${v[2]}, ${v[1]}, ${v[0]} != 0u)`);
  },

  cast(x, dtype) {
    const c = ctypeOf(dtype);
    return lazyMap('cast', x.shape, [{ v: x, ctype: c }], dtype, c, (v) => v[0]!);
  },

  copy(x) {
    return contiguous(x, 'copy');
  },

  reduce(op, x, dims) {
    const outDtype: DType = x.dtype === 'bool' ? 'int32' : x.dtype;
    const { kept, red, outer, inner } = splitDims(x, dims);
    const grouped = inner > 256;
    // Few very long rows (a loss over everything): split each row over many workgroups, then reduce
    // the partials, so a GPU is not left with a handful of busy workgroups.
    const chunks = grouped && outer < 256 && inner > 16384 ? Math.ceil(inner / 4096) : 1;
    const out = alloc(outer * chunks, outDtype, op);
    if (outer === 0) return out;
    const kr = kept.shape.length;
    const rr = red.shape.length;
    const p = new Params()
      .u(outer, inner)
      .i(x.offset)
      .u(...kept.shape)
      .i(...kept.strides[0]!)
      .u(...red.shape)
      .i(...red.strides[0]!)
      .u(chunks, Math.ceil(inner / chunks));
    run(
      op,
      `red:${op}:${x.dtype}:${kr}:${rr}:${grouped}`,
      () => reduceShader(op, x.dtype, outDtype, kr, rr, grouped),
      [gbuf(x.storage, op), gbuf(out, op)],
      p,
      grouped ? outer * chunks : groupsFor(outer),
    );
    if (chunks === 1) return out;
    const partials: View = { storage: out, shape: [outer, chunks], strides: [chunks, 1], offset: 0, dtype: outDtype };
    const total: Storage = webgpuKernels.reduce(op, partials, [1]);
    webgpuKernels.free(out);
    return total;
  },

  argReduce(op, x, dim) {
    const { kept, outer } = splitDims(x, [dim]);
    const out = alloc(outer, 'int32', op);
    const kr = kept.shape.length;
    const p = new Params()
      .u(outer, x.shape[dim]!)
      .i(x.offset, x.strides[dim]!)
      .u(...kept.shape)
      .i(...kept.strides[0]!);
    run(
      op,
      `arg:${op}:${x.dtype}:${kr}`,
      () => argReduceShader(op, x.dtype, kr),
      [gbuf(x.storage, op), gbuf(out, op)],
      p,
      groupsFor(outer),
    );
    return out;
  },

  cumsum(x, dim) {
    const outDtype: DType = x.dtype === 'bool' ? 'int32' : x.dtype;
    const n = numel(x.shape);
    const out = alloc(n, outDtype, 'cumsum');
    if (n === 0) return out;
    const ost = contiguousStrides(x.shape);
    const keptIdx = x.shape.map((_, i) => i).filter((i) => i !== dim);
    const kr = keptIdx.length;
    const lines = n / x.shape[dim]!;
    const p = new Params()
      .u(lines, x.shape[dim]!)
      .i(x.offset, x.strides[dim]!, ost[dim]!)
      .u(...keptIdx.map((i) => x.shape[i]!))
      .i(...keptIdx.map((i) => x.strides[i]!), ...keptIdx.map((i) => ost[i]!));
    run(
      'cumsum',
      `cumsum:${x.dtype}:${kr}`,
      () => cumsumShader(x.dtype, outDtype, kr),
      [gbuf(x.storage, 'cumsum'), gbuf(out, 'cumsum')],
      p,
      groupsFor(lines),
    );
    return out;
  },

  // Lazy too: a following bias add or activation becomes the kernel's epilogue.
  matmul(a, b) {
    const r = a.shape.length;
    gbuf(a.storage, 'matmul');
    gbuf(b.storage, 'matmul');
    const shape = [...a.shape.slice(0, r - 1), b.shape[r - 1]!];
    // Own copies of the views: the caller may free its Storage objects before this runs.
    const own = (v: View): View => ({ ...v, storage: { ...v.storage } });
    const mm = { a: own(a), b: own(b), shape };
    return pending({ leaves: [], lines: [], result: 'acc', ctype: 'f32', dtype: 'float32', shape, mm, sealed: false });
  },

  gather(x, dim, index) {
    const n = numel(index.shape);
    const out = alloc(n, x.dtype, 'gather');
    if (n === 0) return out;
    const r = index.shape.length;
    const p = new Params()
      .u(n)
      .i(x.offset, index.offset)
      .u(x.shape[dim]!)
      .i(x.strides[dim]!)
      .u(...index.shape)
      .i(...index.strides, ...x.strides.map((s, d) => (d === dim ? 0 : s)));
    run(
      'gather',
      `gather:${index.dtype}:${r}`,
      () => gatherShader(index.dtype, r),
      [gbuf(x.storage, 'gather'), gbuf(index.storage, 'gather'), gbuf(out, 'gather'), getContext().indexFlag()],
      p,
      groupsFor(n),
    );
    return out;
  },

  scatterAdd(base, dim, index, src) {
    const out = contiguous(base, 'scatterAdd');
    const n = numel(index.shape);
    if (n === 0) return out;
    const r = index.shape.length;
    const ost = contiguousStrides(base.shape);
    const p = new Params()
      .u(n)
      .i(index.offset, src.offset)
      .u(base.shape[dim]!)
      .i(ost[dim]!)
      .u(...index.shape)
      .i(...index.strides, ...src.strides.slice(0, r), ...ost.map((s, d) => (d === dim ? 0 : s)));
    run(
      'scatterAdd',
      `scatter:${base.dtype}:${index.dtype}:${r}`,
      () => scatterAddShader(base.dtype, index.dtype, r),
      [
        gbuf(index.storage, 'scatterAdd'),
        gbuf(src.storage, 'scatterAdd'),
        gbuf(out, 'scatterAdd'),
        getContext().indexFlag(),
      ],
      p,
      groupsFor(n),
    );
    return out;
  },

  asStridedScatter(src, baseShape, viewStrides, viewOffset) {
    const total = numel(baseShape);
    const out = alloc(total, src.dtype, 'asStridedScatter');
    fillInto(out, total, 0);
    const n = numel(src.shape);
    if (n === 0) return out;
    const r = src.shape.length;
    const p = new Params()
      .u(n)
      .i(viewOffset, src.offset)
      .u(...src.shape)
      .i(...viewStrides, ...src.strides);
    run(
      'asStridedScatter',
      `sscatter:${src.dtype}:${r}`,
      () => stridedScatterShader(src.dtype, r),
      [gbuf(src.storage, 'asStridedScatter'), gbuf(out, 'asStridedScatter')],
      p,
      groupsFor(n),
    );
    return out;
  },

  pad(x, pads, value) {
    const shape = x.shape.map((s, i) => s + pads[i]![0] + pads[i]![1]);
    const total = numel(shape);
    const out = alloc(total, x.dtype, 'pad');
    fillInto(out, total, value);
    const ost = contiguousStrides(shape);
    const off = pads.reduce((acc, p, i) => acc + p[0] * ost[i]!, 0);
    copyInto('pad', x, out, ost, off);
    return out;
  },

  cat(xs, dim) {
    const shape = [...xs[0]!.shape];
    shape[dim] = xs.reduce((acc, v) => acc + v.shape[dim]!, 0);
    const out = alloc(numel(shape), xs[0]!.dtype, 'cat');
    const ost = contiguousStrides(shape);
    let pos = 0;
    for (const x of xs) {
      copyInto('cat', x, out, ost, pos * ost[dim]!);
      pos += x.shape[dim]!;
    }
    return out;
  },

  // Bitonic: short lines sort inside one workgroup tile each (many lines per tile); longer lines merge
  // through global key/index buffers (see wgsl/sort.wgsl.ts).
  sort(x, dim, descending) {
    const n = numel(x.shape);
    const vals = alloc(n, x.dtype, 'sort');
    const inds = alloc(n, 'int32', 'sort');
    if (n === 0) return [vals, inds];
    const ost = contiguousStrides(x.shape);
    const keptIdx = x.shape.map((_, i) => i).filter((i) => i !== dim);
    const kr = keptIdx.length;
    const len = x.shape[dim]!;
    const lines = n / len;
    const Pw = pow2(len);
    const T = Math.min(SORT_TILE, Pw * pow2(lines));
    const tiles = Math.ceil((lines * Pw) / T);
    const head = (kFirst: number, kLast: number, jFirst: number) =>
      new Params()
        .u(lines, len, Pw, T, kFirst, kLast, jFirst)
        .i(x.offset, x.strides[dim]!, ost[dim]!)
        .u(...keptIdx.map((i) => x.shape[i]!))
        .i(...keptIdx.map((i) => x.strides[i]!), ...keptIdx.map((i) => ost[i]!));
    const local = (from: boolean, to: boolean, bufs: GPUBuffer[], p: Params) =>
      run(
        'sort',
        `sort:${x.dtype}:${kr}:${descending}:${from}:${to}`,
        () => sortLocalShader(x.dtype, kr, descending, from, to),
        bufs,
        p,
        tiles,
      );
    const xin = gbuf(x.storage, 'sort');
    const outs = [gbuf(vals, 'sort'), gbuf(inds, 'sort')];
    if (Pw <= T) {
      local(true, true, [xin, ...outs], head(2, Pw, 0));
      return [vals, inds];
    }
    const keys = alloc(lines * Pw, 'int32', 'sort');
    const idx = alloc(lines * Pw, 'int32', 'sort');
    const g = [gbuf(keys, 'sort'), gbuf(idx, 'sort')];
    local(true, false, [xin, ...g], head(2, T, 0));
    for (let k = 2 * T; k <= Pw; k *= 2) {
      for (let j = k / 2; j >= T; j /= 2) {
        const p = new Params().u((lines * Pw) / 2, Pw, k, j);
        run('sort', 'sortStep', () => sortStepShader, g, p, groupsFor((lines * Pw) / 2));
      }
      if (k === Pw) local(false, true, [xin, ...outs, ...g], head(k, k, T / 2));
      else local(false, false, g, head(k, k, T / 2));
    }
    webgpuKernels.free(keys);
    webgpuKernels.free(idx);
    return [vals, inds];
  },

  fromArray(data, dtype) {
    const out = alloc(data.length, dtype, 'fromArray');
    if (data.length) getContext().upload(gbuf(out, 'fromArray'), toWords(data, dtype));
    return out;
  },

  full(length, value, dtype) {
    const out = alloc(length, dtype, 'full');
    fillInto(out, length, value);
    return out;
  },

  async read(x) {
    const ctx = getContext();
    const n = numel(x.shape);
    if (n === 0) return toHost(new ArrayBuffer(0), x.dtype);
    if (isContiguous(x.shape, x.strides))
      return toHost(await ctx.read(gbuf(x.storage, 'read'), x.offset * 4, n * 4), x.dtype);
    const tmp = contiguous(x, 'read');
    try {
      return toHost(await ctx.read(gbuf(tmp, 'read'), 0, n * 4), x.dtype);
    } finally {
      webgpuKernels.free(tmp);
    }
  },

  readSync(x) {
    throw new SyncReadError(
      `dataSync: a tensor of shape [${x.shape}] lives on the GPU (webgpu), which cannot be read synchronously; use await t.data() (or await t.item()), or move it with await t.to('cpu')`,
    );
  },

  assign(dst, src) {
    // Pending expressions that read dst's old values run before it changes.
    settleReaders(live(dst.storage.buf as GpuBuf, 'assign'), 'assign');
    copyInto('assign', src, dst.storage, dst.strides, dst.offset);
  },

  free(s) {
    const b = s.buf as GpuBuf | null;
    s.buf = null;
    if (!b) return;
    if (b.lazy) unpin(b);
    else if (b.pins > 0) b.freed = true;
    else release(b);
  },

  // Fused row kernels: one workgroup per row (see wgsl/fused.wgsl.ts).
  softmax(x, log) {
    const n = lastDim(x);
    const total = numel(x.shape);
    const rows = n === 0 ? 0 : total / n;
    const out = alloc(total, 'float32', 'softmax');
    if (rows === 0 || n === 0) return out;
    const temps: Storage[] = [];
    const X = dense(x, 'softmax', temps);
    const p = new Params().u(rows, n, X.off);
    run('softmax', `softmax:${log}`, () => softmaxShader(log), [X.buf, gbuf(out, 'softmax')], p, rows);
    freeAll(temps);
    return out;
  },

  softmaxBackward(y, g, log) {
    const n = lastDim(y);
    const total = numel(y.shape);
    const rows = n === 0 ? 0 : total / n;
    const out = alloc(total, 'float32', 'softmaxBackward');
    if (rows === 0 || n === 0) return out;
    const temps: Storage[] = [];
    const Y = dense(y, 'softmaxBackward', temps);
    const G = dense(g, 'softmaxBackward', temps);
    const p = new Params().u(rows, n, Y.off, G.off);
    const bufs = [Y.buf, G.buf, gbuf(out, 'softmaxBackward')];
    run('softmaxBackward', `softmaxBwd:${log}`, () => softmaxBackwardShader(log), bufs, p, rows);
    freeAll(temps);
    return out;
  },

  crossEntropy(x, target, ignoreIndex) {
    const [N, C] = x.shape as [number, number];
    const loss = alloc(N, 'float32', 'crossEntropy');
    const lse = alloc(N, 'float32', 'crossEntropy');
    if (N === 0) return [loss, lse];
    const temps: Storage[] = [];
    const X = dense(x, 'crossEntropy', temps);
    const p = new Params().u(N, C).i(X.off, target.offset, target.strides[0]!, ignoreIndex);
    const bufs = [X.buf, gbuf(target.storage, 'crossEntropy'), gbuf(loss, 'crossEntropy'), gbuf(lse, 'crossEntropy')];
    bufs.push(getContext().indexFlag());
    run('crossEntropy', 'ce', crossEntropyShader, bufs, p, N);
    freeAll(temps);
    return [loss, lse];
  },

  crossEntropyBackward(x, target, lse, g, ignoreIndex) {
    const [N, C] = x.shape as [number, number];
    const op = 'crossEntropyBackward';
    const dx = alloc(N * C, 'float32', op);
    if (N * C === 0) return dx;
    const temps: Storage[] = [];
    const X = dense(x, op, temps);
    const L = dense(lse, op, temps);
    const G = dense(g, op, temps);
    const p = new Params().u(N * C, C).i(X.off, target.offset, target.strides[0]!, ignoreIndex, L.off, G.off);
    const bufs = [X.buf, gbuf(target.storage, op), L.buf, G.buf, gbuf(dx, op)];
    run(op, 'ceBwd', () => crossEntropyBackwardShader, bufs, p, groupsFor(N * C));
    freeAll(temps);
    return dx;
  },

  layerNorm(x, n, weight, bias, eps, rms) {
    const total = numel(x.shape);
    const rows = n === 0 ? 0 : total / n;
    const y = alloc(total, 'float32', 'layerNorm');
    const mean = alloc(rows, 'float32', 'layerNorm');
    const rstd = alloc(rows, 'float32', 'layerNorm');
    if (rows === 0) return [y, mean, rstd];
    const temps: Storage[] = [];
    const X = dense(x, 'layerNorm', temps);
    const W = weight && dense(weight, 'layerNorm', temps);
    const B = bias && dense(bias, 'layerNorm', temps);
    const p = new Params().u(rows, n, X.off, W?.off ?? 0, B?.off ?? 0).f(eps);
    const bufs = [X.buf, ...(W ? [W.buf] : []), ...(B ? [B.buf] : [])];
    bufs.push(gbuf(y, 'layerNorm'), gbuf(mean, 'layerNorm'), gbuf(rstd, 'layerNorm'));
    run('layerNorm', `ln:${rms}:${!!W}:${!!B}`, () => layerNormShader(rms, !!W, !!B), bufs, p, rows);
    freeAll(temps);
    return [y, mean, rstd];
  },

  layerNormBackward(g, x, mean, rstd, weight, rms, needW, needB) {
    const total = numel(x.shape);
    const rows = numel(mean.shape);
    const n = rows === 0 ? 0 : total / rows;
    const op = 'layerNormBackward';
    const dx = alloc(total, 'float32', op);
    const dw = needW || needB ? alloc(n, 'float32', op) : null;
    const db = needW || needB ? alloc(n, 'float32', op) : null;
    if (rows === 0 || n === 0) {
      if (dw) fillInto(dw, n, 0);
      if (db) fillInto(db, n, 0);
    } else {
      const temps: Storage[] = [];
      const G = dense(g, op, temps);
      const X = dense(x, op, temps);
      const M = dense(mean, op, temps);
      const R = dense(rstd, op, temps);
      const W = weight && dense(weight, op, temps);
      const p = new Params().u(rows, n, G.off, X.off, M.off, R.off, W?.off ?? 0);
      const bufs = [G.buf, X.buf, M.buf, R.buf, ...(W ? [W.buf] : []), gbuf(dx, op)];
      run(op, `lnBwd:${rms}:${!!W}`, () => layerNormBackwardShader(rms, !!W), bufs, p, rows);
      if (dw && db) {
        const pc = new Params().u(rows, n, G.off, X.off, M.off, R.off);
        const cb = [G.buf, X.buf, M.buf, R.buf, gbuf(dw, op), gbuf(db, op)];
        run(op, 'lnCols', () => layerNormColumnsShader, cb, pc, groupsFor(n));
      }
      freeAll(temps);
    }
    const keepW = needW ? dw : null;
    const keepB = needB ? db : null;
    if (dw && !needW) webgpuKernels.free(dw);
    if (db && !needB) webgpuKernels.free(db);
    return [dx, keepW, keepB];
  },

  lstmCell(gates, c) {
    const [B, H] = c.shape as [number, number];
    const op = 'lstmCell';
    const out = alloc(2 * B * H, 'float32', op);
    if (B * H === 0) return out;
    const temps: Storage[] = [];
    const G = dense(gates, op, temps);
    const C = dense(c, op, temps);
    const p = new Params().u(B * H, H, G.off, C.off);
    run(op, 'lstmCell', lstmCellShader, [G.buf, C.buf, gbuf(out, op)], p, groupsFor(B * H));
    freeAll(temps);
    return out;
  },

  lstmCellBackward(gates, c, g) {
    const [B, H] = c.shape as [number, number];
    const op = 'lstmCellBackward';
    const out = alloc(5 * B * H, 'float32', op);
    if (B * H === 0) return out;
    const temps: Storage[] = [];
    const G = dense(gates, op, temps);
    const C = dense(c, op, temps);
    const D = dense(g, op, temps);
    const p = new Params().u(B * H, H, G.off, C.off, D.off);
    run(op, 'lstmCellBwd', lstmCellBackwardShader, [G.buf, C.buf, D.buf, gbuf(out, op)], p, groupsFor(B * H));
    freeAll(temps);
    return out;
  },

  gruCell(xp, hh, h) {
    const [B, H] = h.shape as [number, number];
    const op = 'gruCell';
    const out = alloc(B * H, 'float32', op);
    if (B * H === 0) return out;
    const temps: Storage[] = [];
    const X = dense(xp, op, temps);
    const R = dense(hh, op, temps);
    const S = dense(h, op, temps);
    const p = new Params().u(B * H, H, X.off, R.off, S.off);
    run(op, 'gruCell', gruCellShader, [X.buf, R.buf, S.buf, gbuf(out, op)], p, groupsFor(B * H));
    freeAll(temps);
    return out;
  },

  gruCellBackward(xp, hh, h, g) {
    const [B, H] = h.shape as [number, number];
    const op = 'gruCellBackward';
    const out = alloc(7 * B * H, 'float32', op);
    if (B * H === 0) return out;
    const temps: Storage[] = [];
    const X = dense(xp, op, temps);
    const R = dense(hh, op, temps);
    const S = dense(h, op, temps);
    const D = dense(g, op, temps);
    const p = new Params().u(B * H, H, X.off, R.off, S.off, D.off);
    const bufs = [X.buf, R.buf, S.buf, D.buf, gbuf(out, op)];
    run(op, 'gruCellBwd', gruCellBackwardShader, bufs, p, groupsFor(B * H));
    freeAll(temps);
    return out;
  },

  adam(p, grad, m, v, s) {
    const n = numel(p.shape);
    if (n === 0) return;
    const temps: Storage[] = [];
    const G = dense(grad, 'adam', temps);
    const bufs = [gbuf(p.storage, 'adam'), G.buf, gbuf(m.storage, 'adam'), gbuf(v.storage, 'adam')];
    // Pending expressions that read the old values run before the update overwrites them.
    for (const t of [p, m, v]) settleReaders(live(t.storage.buf as GpuBuf, 'adam'), 'adam');
    const prm = new Params()
      .u(n, p.offset, G.off, m.offset, v.offset)
      .f(1 - s.lr * s.weightDecay)
      .f(s.weightDecay)
      .f(s.beta1)
      .f(1 - s.beta1)
      .f(s.beta2)
      .f(1 - s.beta2)
      .f(s.bc2Sqrt)
      .f(s.eps)
      .f(s.stepSize)
      .u((s.weightDecay !== 0 ? 1 : 0) | (s.decoupled ? 2 : 0));
    run('adam', 'adam', () => adamShader, [bufs[0]!, bufs[1]!, bufs[2]!, bufs[3]!], prm, groupsFor(n));
    freeAll(temps);
  },
} satisfies Kernels;
