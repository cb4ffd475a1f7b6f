// The WASM SIMD path of the CPU backend: loads the kernels built from wasm/kernels.as (relaxed-SIMD FMA
// when the engine validates it, plain SIMD128 otherwise, none where wasm SIMD is missing) and runs
// matmul, convolutions (implicit GEMM: gemmx over im2col offset tables), elementwise ops, strided copies, and
// the fused layer norm, cross-entropy and Adam rows in one wasm memory. Results stay in the arena where memory is shared; an operand outside it is staged (the
// part of its storage the view spans, one memcpy) before the kernel runs.
// `setCpuPath('ts')` (or TESSERA_CPU=ts in the environment) forces the TypeScript reference kernels.
import { TesseraError } from '../../errors.js';
import { contiguousStrides, isContiguous, numel } from '../../shape.js';
import type { AdamScalars, BinaryOp, CompareOp, ConvGeometry, UnaryOp, View } from '../backend.js';
import { collapse } from './strided.js';
import * as builds from './wasm/kernels.wasm.js';

/** The wasm memory cannot grow to what an op needs; the backend stays usable for smaller ops. */
export class WasmMemoryError extends TesseraError {}

interface WasmExports {
  gemm(
    a: number,
    ars: number,
    acs: number,
    b: number,
    brs: number,
    bcs: number,
    c: number,
    ldc: number,
    i0: number,
    i1: number,
    n: number,
    k: number,
    work: number,
  ): void;
  /** gemm with attention's causal structure (`tri` 1, 2, 3 and the diagonal offset `off`: see kernels.as). */
  gemmTri(...args: number[]): void;
  gemmWorkBytes(): number;
  /** One row of A times B without packing (see kernels.as); 0 when the layout is not one it takes. */
  gemv(
    a: number,
    acs: number,
    b: number,
    brs: number,
    bcs: number,
    c: number,
    n: number,
    k: number,
    work: number,
  ): number;
  gemmx(
    a: number,
    ars: number,
    acs: number,
    b: number,
    bro: number,
    bco: number,
    c: number,
    ldc: number,
    cro: number,
    cco: number,
    i0: number,
    i1: number,
    n: number,
    k: number,
    accum: number,
    work: number,
  ): void;
  copyStrided(
    dst: number,
    src: number,
    nd: number,
    shape: number,
    dstStrides: number,
    srcStrides: number,
    idx: number,
  ): void;
  fill32(dst: number, bits: number, n: number): void;
  unary(op: number, dst: number, src: number, n: number): void;
  colsum(dst: number, src: number, R: number, C: number, work: number): void;
  biasAct(y: number, bias: number, rows: number, n: number, relu: number): void;
  reluBackward(dst: number, g: number, y: number, n: number): void;
  scatterRows(out: number, src: number, idx: number, rows: number, n: number, ld: number): void;
  gatherRows(out: number, x: number, idx: number, rows: number, n: number, ldx: number): void;
  adam(
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    decay: number,
    wd: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    bc2: number,
    eps: number,
    step: number,
    flags: number,
  ): void;
  select(
    dst: number,
    cond: number,
    a: number,
    b: number,
    nd: number,
    shape: number,
    cStrides: number,
    aStrides: number,
    bStrides: number,
    idx: number,
  ): void;
  compare(
    op: number,
    dst: number,
    a: number,
    b: number,
    nd: number,
    shape: number,
    aStrides: number,
    bStrides: number,
    idx: number,
  ): void;
  binary(
    op: number,
    dst: number,
    a: number,
    b: number,
    nd: number,
    shape: number,
    aStrides: number,
    bStrides: number,
    idx: number,
  ): void;
  layerNorm(
    y: number,
    mean: number,
    rstd: number,
    x: number,
    w: number,
    b: number,
    rows: number,
    n: number,
    eps: number,
    flags: number,
  ): void;
  layerNormBackward(
    dx: number,
    dw: number,
    db: number,
    acc: number,
    g: number,
    x: number,
    mean: number,
    rstd: number,
    w: number,
    rows: number,
    n: number,
    flags: number,
  ): void;
  crossEntropy(
    loss: number,
    lse: number,
    x: number,
    target: number,
    ts: number,
    N: number,
    C: number,
    ignore: number,
  ): void;
  crossEntropyBackward(
    dx: number,
    x: number,
    lse: number,
    g: number,
    target: number,
    ts: number,
    N: number,
    C: number,
    ignore: number,
  ): void;
  scaledSoftmax(
    y: number,
    x: number,
    rows: number,
    n: number,
    lq: number,
    scale: number,
    masked: number,
    causal: number,
  ): void;
  scaledSoftmaxBackward(
    dx: number,
    y: number,
    g: number,
    rows: number,
    n: number,
    lq: number,
    scale: number,
    masked: number,
    causal: number,
  ): void;
  fma(): number;
}

export type CpuPath = 'wasm-fma' | 'wasm' | 'ts';

interface Engine {
  path: 'wasm-fma' | 'wasm';
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  shared: boolean;
  x: WasmExports;
}

const PAGE = 65536;
// Bytes [0, BASE) stay free for the AssemblyScript stub runtime; the gemm scratch of thread 0 follows.
const BASE = PAGE;
const MAX_PAGES = 65536;

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function load(): Engine | null {
  if (typeof WebAssembly !== 'object') return null;
  // Shared memory needs SharedArrayBuffer (browsers: cross-origin isolated pages); TESSERA_WASM_SHARED=0
  // forces the private-memory engine, whose results are copied out of wasm memory instead of kept there.
  const shared = typeof SharedArrayBuffer === 'function' && env?.TESSERA_WASM_SHARED !== '0';
  const order: [Engine['path'], string, boolean][] = [
    ['wasm-fma', builds.relaxedShared, true],
    ['wasm-fma', builds.relaxed, false],
    ['wasm', builds.simdShared, true],
    ['wasm', builds.simd, false],
  ];
  for (const [path, b64, sh] of order) {
    if (sh && !shared) continue;
    const bytes = decode(b64);
    if (!WebAssembly.validate(bytes)) continue;
    try {
      const module = new WebAssembly.Module(bytes);
      const memory = new WebAssembly.Memory(
        sh ? { initial: 16, maximum: MAX_PAGES, shared: true } : { initial: 16, maximum: MAX_PAGES },
      );
      const inst = new WebAssembly.Instance(module, { env: { memory } });
      return { path, module, memory, shared: sh, x: inst.exports as unknown as WasmExports };
    } catch {
      // An engine that validates but refuses to compile or instantiate (e.g. no shared memory): try the next.
    }
  }
  return null;
}

let engine: Engine | null | undefined;
let forceTs = env?.TESSERA_CPU === 'ts';

function getEngine(): Engine | null {
  if (engine === undefined) engine = load();
  return engine;
}

/** The path the CPU kernels take now: 'wasm-fma' (relaxed SIMD), 'wasm' (SIMD128) or 'ts'. */
export function cpuPath(): CpuPath {
  if (forceTs) return 'ts';
  return getEngine()?.path ?? 'ts';
}

/** Forces the TypeScript kernels ('ts') or goes back to the fastest available path ('auto'). */
export function setCpuPath(path: 'auto' | 'ts'): void {
  forceTs = path === 'ts';
}

/** The loaded engine for the hot path, or null when the TypeScript kernels must run. */
export function wasm(): Engine | null {
  return forceTs ? null : getEngine();
}

/** Grows the memory so that [0, bytes) is addressable; a typed error past the engine's limit. */
export function ensure(e: Engine, bytes: number): void {
  const have = e.memory.buffer.byteLength;
  if (bytes <= have) return;
  const pages = Math.ceil((bytes - have) / PAGE);
  try {
    if (bytes > MAX_PAGES * PAGE) throw new RangeError('over the wasm32 limit');
    e.memory.grow(pages);
  } catch (err) {
    throw new WasmMemoryError(
      `wasm memory: an op needs ${(bytes / 2 ** 20).toFixed(1)} MiB, the engine has ${(have / 2 ** 20).toFixed(1)} MiB and cannot grow (${(err as Error).message})`,
    );
  }
}

// Memory map: [0, BASE) for the AssemblyScript stub runtime, then one gemm scratch block per thread, then
// the arena. The arena hands out 16-byte aligned blocks in size classes (powers of two up to 1 MiB, then
// whole MiBs) and keeps freed blocks on per-class free lists; wasm memory never shrinks, so a freed block
// is reused by the next op of its class.
export const MAX_THREADS = 8;

export function scratch(e: Engine, thread: number): number {
  return BASE + thread * align(e.x.gemmWorkBytes());
}

const arenas = new WeakMap<Engine, Arena>();

export class Arena {
  private top: number;
  private readonly free = new Map<number, number[]>();
  private readonly live = new Map<number, number>();
  /** Every SharedArrayBuffer the memory has shown, so arena views can be recognised after a grow. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  constructor(private readonly e: Engine) {
    this.top = scratch(e, MAX_THREADS);
    ensure(e, this.top);
  }
  static of(e: Engine): Arena {
    let a = arenas.get(e);
    if (!a) arenas.set(e, (a = new Arena(e)));
    return a;
  }
  alloc(bytes: number): number {
    const c =
      bytes <= 64 ? 64 : bytes <= 1 << 20 ? 2 ** Math.ceil(Math.log2(bytes)) : Math.ceil(bytes / 2 ** 20) * 2 ** 20;
    const list = this.free.get(c);
    let p = list?.pop();
    if (p === undefined) {
      p = this.top;
      // 64 bytes of slack past the top: vector loops may read a few bytes beyond a block.
      ensure(this.e, p + c + 64);
      this.top = p + c;
    }
    this.live.set(p, c);
    return p;
  }
  release(p: number): void {
    const c = this.live.get(p);
    if (c === undefined) return;
    this.live.delete(p);
    const list = this.free.get(c);
    if (list) list.push(p);
    else this.free.set(c, [p]);
  }
  /** A Float32Array or Int32Array view of a block (shared memory only: views survive grows). */
  view<T extends Float32Array | Int32Array | Uint8Array>(
    ctor: new (b: ArrayBufferLike, o: number, n: number) => T,
    p: number,
    n: number,
  ): T {
    const buf = this.e.memory.buffer;
    this.buffers.add(buf);
    return new ctor(buf, p, n);
  }
  /** The byte address of `a[0]` when `a` lies in this memory, else -1. */
  addressOf(a: ArrayBufferView): number {
    return this.e.shared && this.buffers.has(a.buffer) ? a.byteOffset : -1;
  }
  /** Frees the block of an arena-owned storage array; no-op for anything else. */
  releaseArray(a: ArrayBufferView): void {
    if (this.addressOf(a) >= 0) this.release(a.byteOffset);
  }
  get stats(): { liveBytes: number; freeBytes: number; heapBytes: number } {
    let liveBytes = 0;
    let freeBytes = 0;
    for (const c of this.live.values()) liveBytes += c;
    for (const [c, l] of this.free) freeBytes += c * l.length;
    return { liveBytes, freeBytes, heapBytes: this.top };
  }
}

/**
 * A fresh float32/int32 array of n elements in the arena (not zeroed), for a storage that ops will read: a
 * tensor made by `tensor()`, `zeros`, `randn`, a parameter or an optimizer's moment then needs no copy into
 * wasm memory before each kernel (and the Adam update none back out). Null on the TypeScript path, without
 * shared memory (arrays of a private memory would detach when it grows), for small arrays (their copy is
 * cheap) and when the memory cannot grow: the caller then allocates a plain array.
 */
export function arenaArray<T extends Float32Array | Int32Array>(ctor: new (n: number) => T, n: number): T | null {
  const e = wasm();
  if (!e?.shared || n < 2048) return null;
  const a = Arena.of(e);
  let p: number;
  try {
    p = a.alloc(n * 4);
  } catch (err) {
    if (err instanceof WasmMemoryError) return null;
    throw err;
  }
  return a.view(ctor as never, p, n) as T;
}

/** Frees the arena block behind a CPU storage's array, if it has one (called by the kernels' `free`). */
export function releaseStorageArray(buf: unknown): void {
  if (engine && ArrayBuffer.isView(buf)) arenas.get(engine)?.releaseArray(buf);
}

/** Arena statistics of the loaded engine (null on the TypeScript path). */
export function arenaStats(): { liveBytes: number; freeBytes: number; heapBytes: number } | null {
  const e = wasm();
  return e ? Arena.of(e).stats : null;
}

const align = (n: number) => (n + 15) & ~15;

/** Where a strided view lies in its storage: [lo, hi] in elements, inclusive. */
export function span(shape: readonly number[], strides: readonly number[], offset: number): { lo: number; hi: number } {
  let lo = offset;
  let hi = offset;
  for (let d = 0; d < shape.length; d++) {
    const ext = (shape[d]! - 1) * strides[d]!;
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  return { lo, hi };
}

/** Temporary blocks of one op, freed together. */
class Temps {
  private readonly blocks: number[] = [];
  constructor(readonly arena: Arena) {}
  take(bytes: number): number {
    const p = this.arena.alloc(bytes);
    this.blocks.push(p);
    return p;
  }
  done(): void {
    for (const p of this.blocks) this.arena.release(p);
    this.blocks.length = 0;
  }
}

/** A contiguous result of `n` elements: an arena block when `keep` (shared memory), else a temp to copy out. */
function result<T extends Float32Array | Int32Array>(
  e: Engine,
  T: Temps,
  ctor: new (n: number) => T,
  n: number,
  keep: boolean,
): { p: number; out: () => T } {
  if (keep && e.shared) {
    const p = T.arena.alloc(n * 4);
    return { p, out: () => T.arena.view(ctor as never, p, n) as T };
  }
  const p = T.take(n * 4);
  return {
    p,
    out: () => {
      // (TypedArray.slice out of wasm memory is several times slower than allocate + set.)
      const o = new ctor(n);
      o.set(new (ctor as unknown as Float32ArrayConstructor)(e.memory.buffer, p, n) as never);
      return o;
    },
  };
}

/**
 * Byte address of element `offset` of a view in wasm memory: the array itself when it lives in the arena,
 * else a temp holding the storage span the view touches. Null when the span is much larger than the view.
 */
function place(
  e: Engine,
  T: Temps,
  data: Float32Array | Int32Array,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  total: number,
): number | null {
  const at = T.arena.addressOf(data);
  if (at >= 0) return at + offset * 4;
  const { lo, hi } = span(shape, strides, offset);
  if (hi - lo + 1 > 4 * total + 4096) return null;
  const p = T.take((hi - lo + 1) * 4);
  const dst = data instanceof Float32Array ? new Float32Array(e.memory.buffer) : new Int32Array(e.memory.buffer);
  dst.set(data.subarray(lo, hi + 1), p >> 2);
  return p + (offset - lo) * 4;
}

/** dst[view] = src[view] for 4-byte elements, both strided (element strides), through the wasm loop. */
function strided(
  e: Engine,
  T: Temps,
  dst: number,
  dstStrides: readonly number[],
  src: number,
  srcStrides: readonly number[],
  shape: readonly number[],
): void {
  const { outer, outerStrides, n, inner } = collapse(shape, [dstStrides, srcStrides]);
  const dims = [...outer, n];
  const nd = dims.length;
  const meta = T.take(nd * 16);
  const i32 = new Int32Array(e.memory.buffer, meta, nd * 4);
  i32.set(dims, 0);
  i32.set([...outerStrides[0]!, inner[0]!], nd);
  i32.set([...outerStrides[1]!, inner[1]!], 2 * nd);
  e.x.copyStrided(dst, src, nd, meta, meta + nd * 4, meta + nd * 8, meta + nd * 12);
}

type Arr4 = Float32Array | Int32Array;

/**
 * Contiguous copy of a 4-byte view (float32 or int32) through the wasm loop; `keep` puts the result
 * in the arena (for storages), otherwise it is a plain array. Null where the TypeScript loop is as
 * good: small views, or views that touch a small part of a large span.
 */
export function wasmCopy(
  data: Arr4,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  total: number,
  keep = false,
): Arr4 | null {
  const e = wasm();
  if (!e || total < 2048) return null;
  const T = new Temps(Arena.of(e));
  try {
    const src = place(e, T, data, shape, strides, offset, total);
    if (src === null) return null;
    const ctor = data instanceof Float32Array ? Float32Array : Int32Array;
    const r = result<Arr4>(e, T, ctor, total, keep);
    strided(e, T, r.p, contiguousStrides(shape), src, strides, shape);
    return r.out();
  } finally {
    T.done();
  }
}

/**
 * cat of 4-byte views (float32 or int32, any strides) along `dim` into a fresh arena array through the wasm
 * strided copy; null where the TypeScript loop runs (small outputs, other dtypes, views of a huge storage).
 */
export function wasmCat(xs: readonly View[], dim: number, shape: readonly number[]): Arr4 | null {
  const e = wasm();
  const total = numel(shape);
  const first = xs[0]!.storage.buf;
  if (!e || total < 4096 || !(first instanceof Float32Array || first instanceof Int32Array)) return null;
  const ctor = first instanceof Float32Array ? Float32Array : Int32Array;
  const T = new Temps(Arena.of(e));
  try {
    const srcs: number[] = [];
    for (const x of xs) {
      const n = numel(x.shape);
      const p =
        n === 0 || !(x.storage.buf instanceof ctor)
          ? null
          : place(e, T, x.storage.buf as Arr4, x.shape, x.strides, x.offset, n);
      if (n !== 0 && p === null) return null;
      srcs.push(p ?? 0);
    }
    const r = result<Arr4>(e, T, ctor, total, true);
    const ost = contiguousStrides(shape);
    let pos = 0;
    xs.forEach((x, i) => {
      if (numel(x.shape) !== 0) strided(e, T, r.p + pos * ost[dim]! * 4, ost, srcs[i]!, x.strides, x.shape);
      pos += x.shape[dim]!;
    });
    return r.out();
  } finally {
    T.done();
  }
}

/** In-place dst[view] = src[view] when dst's storage is an arena array (4-byte dtypes); false otherwise. */
export function wasmAssign(
  dst: Arr4,
  dstStrides: readonly number[],
  dstOffset: number,
  src: Arr4,
  srcStrides: readonly number[],
  srcOffset: number,
  shape: readonly number[],
): boolean {
  const e = wasm();
  const total = numel(shape);
  if (!e || total < 4096 || dst.constructor !== src.constructor) return false;
  const T = new Temps(Arena.of(e));
  try {
    const at = T.arena.addressOf(dst);
    if (at < 0) return false;
    // Overlapping source and destination keep the TypeScript loop's element order.
    const sa = T.arena.addressOf(src);
    if (sa >= 0 && sa < at + dst.byteLength && at < sa + src.byteLength) return false;
    const ps = place(e, T, src, shape, srcStrides, srcOffset, total);
    if (ps === null) return false;
    strided(e, T, at + dstOffset * 4, dstStrides, ps, srcStrides, shape);
    return true;
  } finally {
    T.done();
  }
}

/** Constant padding of a 4-byte view into a fresh contiguous array (in the arena where memory is shared). */
export function wasmPad(
  data: Arr4,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  pads: readonly (readonly [number, number])[],
  value: number,
): Arr4 | null {
  const e = wasm();
  const total = numel(shape);
  const outShape = shape.map((s, i) => s + pads[i]![0] + pads[i]![1]);
  const outTotal = numel(outShape);
  if (!e || outTotal < 2048) return null;
  const T = new Temps(Arena.of(e));
  try {
    const src = total === 0 ? 0 : place(e, T, data, shape, strides, offset, total);
    if (src === null) return null;
    const f32 = data instanceof Float32Array;
    const r = result<Arr4>(e, T, f32 ? Float32Array : Int32Array, outTotal, true);
    const bits = f32 ? new Int32Array(Float32Array.of(value).buffer)[0]! : value | 0;
    e.x.fill32(r.p, bits, outTotal);
    const ost = contiguousStrides(outShape);
    const at = pads.reduce((acc, p, i) => acc + p[0] * ost[i]!, 0);
    if (total > 0) strided(e, T, r.p + at * 4, ost, src, strides, shape);
    return r.out();
  } finally {
    T.done();
  }
}

const BINARY_OPS: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5 };

/**
 * float32 `a op b` (same shape, broadcast as stride 0) into a fresh contiguous array in the arena, for
 * add, sub, mul, div, maximum, minimum; null otherwise (and for small ops, where the JS loop is as fast).
 */
export function wasmBinary(op: BinaryOp, a: View, b: View): Float32Array | null {
  const code = BINARY_OPS[op];
  if (code === undefined) return null;
  return elementwise(
    a,
    b,
    (e, d, pa, pb, nd, m) => e.x.binary(code, d, pa, pb, nd, m, m + nd * 4, m + nd * 8, m + nd * 12),
    Float32Array,
  );
}

const COMPARE_OPS: Record<CompareOp, number> = { eq: 0, ne: 1, lt: 2, le: 3, gt: 4, ge: 5 };

/** float32 comparison into a fresh bool (Uint8Array) array in the arena; null for small ops. */
export function wasmCompare(op: CompareOp, a: View, b: View): Uint8Array | null {
  const code = COMPARE_OPS[op];
  return elementwise(
    a,
    b,
    (e, d, pa, pb, nd, m) => e.x.compare(code, d, pa, pb, nd, m, m + nd * 4, m + nd * 8, m + nd * 12),
    Uint8Array,
  );
}

function elementwise<T extends Float32Array | Uint8Array>(
  a: View,
  b: View,
  run: (e: Engine, dst: number, pa: number, pb: number, nd: number, meta: number) => void,
  ctor: new (buf: ArrayBufferLike, off: number, n: number) => T,
): T | null {
  const e = wasm();
  const total = numel(a.shape);
  if (!e || total < 4096 || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const A = a.storage.buf as Float32Array;
  const B = b.storage.buf as Float32Array;
  const T = new Temps(Arena.of(e));
  try {
    const pa = place(e, T, A, a.shape, a.strides, a.offset, total);
    const pb = place(e, T, B, b.shape, b.strides, b.offset, total);
    if (pa === null || pb === null) return null;
    const bytes = ctor === (Uint8Array as unknown) ? 1 : 4;
    const keep = e.shared;
    const p = keep ? T.arena.alloc(total * bytes) : T.take(total * bytes);
    const { outer, outerStrides, n, inner } = collapse(a.shape, [contiguousStrides(a.shape), a.strides, b.strides]);
    const dims = [...outer, n];
    const nd = dims.length;
    const meta = T.take(nd * 16);
    const i32 = new Int32Array(e.memory.buffer, meta, nd * 4);
    i32.set(dims, 0);
    i32.set([...outerStrides[1]!, inner[1]!], nd);
    i32.set([...outerStrides[2]!, inner[2]!], 2 * nd);
    run(e, p, pa, pb, nd, meta);
    if (keep) return T.arena.view(ctor as never, p, total) as T;
    const out = new (ctor as unknown as new (n: number) => T)(total);
    out.set(new ctor(e.memory.buffer, p, total) as never);
    return out;
  } finally {
    T.done();
  }
}

/** Byte address of element `offset` of a bool (Uint8Array) view: in place in the arena, else a staged span. */
function placeBytes(
  e: Engine,
  T: Temps,
  data: Uint8Array,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  total: number,
): number | null {
  const at = T.arena.addressOf(data);
  if (at >= 0) return at + offset;
  const { lo, hi } = span(shape, strides, offset);
  if (hi - lo + 1 > 4 * total + 4096) return null;
  const p = T.take(hi - lo + 1);
  new Uint8Array(e.memory.buffer).set(data.subarray(lo, hi + 1), p);
  return p + (offset - lo);
}

/** float32 `where(cond, a, b)` (bool cond, all broadcast to one shape) into the arena; null for small ops. */
export function wasmWhere(c: View, a: View, b: View): Float32Array | null {
  const e = wasm();
  const total = numel(a.shape);
  if (!e?.shared || total < 4096 || a.dtype !== 'float32' || b.dtype !== 'float32' || c.dtype !== 'bool') return null;
  const T = new Temps(Arena.of(e));
  try {
    const pc = placeBytes(e, T, c.storage.buf as Uint8Array, c.shape, c.strides, c.offset, total);
    const pa = place(e, T, a.storage.buf as Float32Array, a.shape, a.strides, a.offset, total);
    const pb = place(e, T, b.storage.buf as Float32Array, b.shape, b.strides, b.offset, total);
    if (pc === null || pa === null || pb === null) return null;
    const p = T.arena.alloc(total * 4);
    const { outer, outerStrides, n, inner } = collapse(a.shape, [c.strides, a.strides, b.strides]);
    const dims = [...outer, n];
    const nd = dims.length;
    const meta = T.take(nd * 20);
    const i32 = new Int32Array(e.memory.buffer, meta, nd * 5);
    for (let k = 0; k < 3; k++) i32.set([...outerStrides[k]!, inner[k]!], (k + 1) * nd);
    i32.set(dims, 0);
    e.x.select(p, pc, pa, pb, nd, meta, meta + nd * 4, meta + nd * 8, meta + nd * 12, meta + nd * 16);
    return T.arena.view(Float32Array, p, total);
  } finally {
    T.done();
  }
}

/**
 * float32 sum over the leading dims `dims` = [0, …, p-1] of a contiguous view (bias and norm-weight gradients)
 * into the arena, bit-identical to the TypeScript kernel; null for other reductions.
 */
export function wasmColumnSum(x: View, dims: readonly number[]): Float32Array | null {
  const e = wasm();
  const total = numel(x.shape);
  if (!e?.shared || total < 4096 || x.dtype !== 'float32' || dims.length === 0) return null;
  if (dims.some((d, i) => d !== i) || dims.length === x.shape.length) return null;
  const data = x.storage.buf as Float32Array;
  if (!isContiguous(x.shape, x.strides)) return null;
  const R = numel(x.shape.slice(0, dims.length));
  const C = total / R;
  const T = new Temps(Arena.of(e));
  try {
    const src = place(e, T, data, x.shape, x.strides, x.offset, total);
    if (src === null) return null;
    const p = T.arena.alloc(C * 4);
    e.x.colsum(p, src, R, C, T.take(Math.min(C, 1024) * 8));
    return T.arena.view(Float32Array, p, C);
  } finally {
    T.done();
  }
}

/**
 * The fused Adam/AdamW step in wasm SIMD, bit-identical to the TypeScript kernel (every operation rounded to
 * float32 in the same order). Parameters and moments outside the arena are staged and copied back. False
 * where the TypeScript kernel should run (small or non-contiguous tensors).
 */
export function wasmAdam(p: View, grad: View, m: View, v: View, s: AdamScalars): boolean {
  const e = wasm();
  const n = numel(p.shape);
  if (!e || n < 4096) return false;
  for (const t of [p, grad, m, v])
    if (t.dtype !== 'float32' || !isContiguous(t.shape, t.strides) || numel(t.shape) !== n) return false;
  const T = new Temps(Arena.of(e));
  try {
    const back: [Float32Array, number, number][] = [];
    const inPlace = (t: View): number => {
      const data = t.storage.buf as Float32Array;
      const at = place(e, T, data, [n], [1], t.offset, n)!;
      if (T.arena.addressOf(data) < 0) back.push([data, t.offset, at]);
      return at;
    };
    const pp = inPlace(p);
    const pm = inPlace(m);
    const pv = inPlace(v);
    const pg = place(e, T, grad.storage.buf as Float32Array, [n], [1], grad.offset, n)!;
    const fr = Math.fround;
    e.x.adam(
      pp,
      pg,
      pm,
      pv,
      n,
      fr(1 - s.lr * s.weightDecay),
      fr(s.weightDecay),
      fr(s.beta1),
      fr(1 - s.beta1),
      fr(s.beta2),
      fr(1 - s.beta2),
      fr(s.bc2Sqrt),
      fr(s.eps),
      fr(s.stepSize),
      (s.weightDecay !== 0 ? 1 : 0) | (s.decoupled ? 2 : 0),
    );
    for (const [data, off, at] of back) data.set(new Float32Array(e.memory.buffer, at, n), off);
    return true;
  } finally {
    T.done();
  }
}

/** Contiguous float32 views of whole rows of n, else null (the TypeScript kernel copies strided ones). */
function normViews(n: number, vs: (View | null)[]): boolean {
  for (const v of vs)
    if (v && (v.dtype !== 'float32' || !isContiguous(v.shape, v.strides) || numel(v.shape) % n !== 0)) return false;
  return true;
}

/** Byte address of a contiguous float32 view (staged into a temp when outside the arena); 0 for none. */
function at(e: Engine, T: Temps, v: View | null): number {
  if (!v) return 0;
  const total = numel(v.shape);
  return place(e, T, v.storage.buf as Float32Array, [total], [1], v.offset, total)!;
}

/**
 * Layer norm (RMS norm) of rows of n in wasm SIMD: [y, mean, rstd] as the TypeScript kernel computes them,
 * equal within float32 rounding (f64 row sums; the affine in float32). Null for small or strided inputs.
 */
export function wasmLayerNorm(
  x: View,
  n: number,
  weight: View | null,
  bias: View | null,
  eps: number,
  rms: boolean,
): [Float32Array, Float32Array, Float32Array] | null {
  const e = wasm();
  const total = numel(x.shape);
  if (!e || total < 4096 || n === 0 || !normViews(n, [x, weight, bias])) return null;
  const rows = total / n;
  const T = new Temps(Arena.of(e));
  try {
    const px = at(e, T, x);
    const pw = at(e, T, weight);
    const pb = at(e, T, bias);
    const y = result<Float32Array>(e, T, Float32Array, total, true);
    const m = result<Float32Array>(e, T, Float32Array, rows, true);
    const s = result<Float32Array>(e, T, Float32Array, rows, true);
    e.x.layerNorm(y.p, m.p, s.p, px, pw, pb, rows, n, eps, (weight ? 1 : 0) | (bias ? 2 : 0) | (rms ? 4 : 0));
    return [y.out(), m.out(), s.out()];
  } finally {
    T.done();
  }
}

/** The layer norm VJP in wasm SIMD: [dx, dw, db] (null where not asked), or null where the TypeScript kernel runs. */
export function wasmLayerNormBackward(
  g: View,
  x: View,
  mean: View,
  rstd: View,
  weight: View | null,
  rms: boolean,
  needW: boolean,
  needB: boolean,
): [Float32Array, Float32Array | null, Float32Array | null] | null {
  const e = wasm();
  const total = numel(x.shape);
  const rows = numel(mean.shape);
  if (!e || total < 4096 || rows === 0 || numel(g.shape) !== total) return null;
  const n = total / rows;
  if (!normViews(n, [g, x, weight]) || !normViews(1, [mean, rstd])) return null;
  const T = new Temps(Arena.of(e));
  try {
    const pg = at(e, T, g);
    const px = at(e, T, x);
    const pm = at(e, T, mean);
    const ps = at(e, T, rstd);
    const pw = at(e, T, weight);
    const dx = result<Float32Array>(e, T, Float32Array, total, true);
    const dw = needW ? result<Float32Array>(e, T, Float32Array, n, true) : null;
    const db = needB ? result<Float32Array>(e, T, Float32Array, n, true) : null;
    const acc = T.take(n * 16);
    e.x.layerNormBackward(
      dx.p,
      dw ? dw.p : 0,
      db ? db.p : 0,
      acc,
      pg,
      px,
      pm,
      ps,
      pw,
      rows,
      n,
      (weight ? 1 : 0) | (rms ? 4 : 0) | (needW ? 8 : 0) | (needB ? 16 : 0),
    );
    return [dx.out(), dw ? dw.out() : null, db ? db.out() : null];
  } finally {
    T.done();
  }
}

/**
 * Byte address of the int32 targets [N] (any stride, staged when outside the arena), or null when one is
 * outside [0, C) and not `ignore`: the TypeScript kernel then raises the error.
 */
function targets(e: Engine, T: Temps, t: View, C: number, ignore: number): number | null {
  const data = t.storage.buf as Int32Array;
  const N = t.shape[0]!;
  const st = t.strides[0]!;
  for (let r = 0; r < N; r++) {
    const v = data[t.offset + r * st]!;
    if (v !== ignore && (v < 0 || v >= C)) return null;
  }
  return place(e, T, data, [N], [st], t.offset, N);
}

/** Cross-entropy [loss, lse] of contiguous logits [N, C] in wasm SIMD; null where the TypeScript kernel runs. */
export function wasmCrossEntropy(x: View, target: View, ignore: number): [Float32Array, Float32Array] | null {
  const e = wasm();
  const total = numel(x.shape);
  if (!e || total < 4096 || !normViews(1, [x])) return null;
  const [N, C] = x.shape as [number, number];
  const T = new Temps(Arena.of(e));
  try {
    const pt = targets(e, T, target, C, ignore);
    if (pt === null) return null;
    const px = at(e, T, x);
    const loss = result<Float32Array>(e, T, Float32Array, N, true);
    const lse = result<Float32Array>(e, T, Float32Array, N, true);
    e.x.crossEntropy(loss.p, lse.p, px, pt, target.strides[0]!, N, C, ignore);
    return [loss.out(), lse.out()];
  } finally {
    T.done();
  }
}

/**
 * The cross-entropy VJP [N, C] in wasm SIMD: the TypeScript kernel's float32 steps with the same exp as its wasm
 * `unary` (so bit-identical to it where that exp runs); else null.
 */
export function wasmCrossEntropyBackward(
  x: View,
  target: View,
  lse: View,
  g: View,
  ignore: number,
): Float32Array | null {
  const e = wasm();
  const total = numel(x.shape);
  // g is often the mean's gradient broadcast to [N] (stride 0): lse and g, N elements each, are staged dense.
  if (!e || total < 4096 || !normViews(1, [x]) || lse.dtype !== 'float32' || g.dtype !== 'float32') return null;
  const [N, C] = x.shape as [number, number];
  const T = new Temps(Arena.of(e));
  try {
    const pt = targets(e, T, target, C, ignore);
    if (pt === null) return null;
    const dx = result<Float32Array>(e, T, Float32Array, total, true);
    e.x.crossEntropyBackward(dx.p, at(e, T, x), dense(e, T, lse), dense(e, T, g), pt, target.strides[0]!, N, C, ignore);
    return dx.out();
  } finally {
    T.done();
  }
}

/**
 * Attention's scaled, causally masked softmax of contiguous rows of n (`lq` query rows per matrix) in wasm SIMD:
 * the TypeScript kernel's float32 steps and exp of this path, the row sums in f64 lanes; null where it runs.
 */
export function wasmScaledSoftmax(x: View, lq: number, scale: number, causal: number | null): Float32Array | null {
  const e = wasm();
  const total = numel(x.shape);
  const n = x.shape.length ? x.shape[x.shape.length - 1]! : 1;
  if (!e || total < 4096 || n === 0 || !normViews(n, [x])) return null;
  const T = new Temps(Arena.of(e));
  try {
    const y = result<Float32Array>(e, T, Float32Array, total, true);
    e.x.scaledSoftmax(y.p, at(e, T, x), total / n, n, lq, scale, causal === null ? 0 : 1, causal ?? 0);
    return y.out();
  } finally {
    T.done();
  }
}

/** Its VJP from the saved probabilities `y` in wasm SIMD (the same steps, the dot products in f64 lanes); else null. */
export function wasmScaledSoftmaxBackward(
  y: View,
  g: View,
  lq: number,
  scale: number,
  causal: number | null,
): Float32Array | null {
  const e = wasm();
  const total = numel(y.shape);
  const n = y.shape.length ? y.shape[y.shape.length - 1]! : 1;
  if (!e || total < 4096 || n === 0 || numel(g.shape) !== total || !normViews(n, [y, g])) return null;
  const T = new Temps(Arena.of(e));
  try {
    const dx = result<Float32Array>(e, T, Float32Array, total, true);
    e.x.scaledSoftmaxBackward(
      dx.p,
      at(e, T, y),
      at(e, T, g),
      total / n,
      n,
      lq,
      scale,
      causal === null ? 0 : 1,
      causal ?? 0,
    );
    return dx.out();
  } finally {
    T.done();
  }
}

// exp (6) is a vector polynomial, within about 1 ulp of the correctly rounded result; gelu (7) and its
// derivative (8) are exact GELU (erf, not tanh) through the same polynomial erfc as the TypeScript kernel, and
// sigmoid (9), silu (10) and its derivative (11) are built on that exp, all in float32 (a few ulps); the others
// are exact.
const UNARY_OPS: Partial<Record<UnaryOp, number>> = {
  neg: 0,
  abs: 1,
  sqrt: 2,
  relu: 3,
  reciprocal: 4,
  floor: 5,
  exp: 6,
  gelu: 7,
  geluGrad: 8,
  sigmoid: 9,
  silu: 10,
  siluGrad: 11,
};

// The smallest input worth a call into wasm. The TypeScript loop spends ~50 ns an element on exp, erfc and
// their kind against ~1 µs of fixed cost here, so those pay from ~128 elements (a decoding step's
// [1, 4·d] GELU); the cheap ones (neg, abs, relu, …) only from 4096, like the other kernels.
const TRANSCENDENTAL_MIN = 128;
const TRANSCENDENTAL = new Set<UnaryOp>(['exp', 'gelu', 'geluGrad', 'sigmoid', 'silu', 'siluGrad']);

/** float32 unary op on a contiguous array (`UNARY_OPS`) into the arena; else null. */
export function wasmUnary(op: UnaryOp, x: Float32Array): Float32Array | null {
  const code = UNARY_OPS[op];
  const e = wasm();
  const total = x.length;
  if (!e || code === undefined || total < (TRANSCENDENTAL.has(op) ? TRANSCENDENTAL_MIN : 4096)) return null;
  const T = new Temps(Arena.of(e));
  try {
    const p = place(e, T, x, [total], [1], 0, total)!;
    const r = result<Float32Array>(e, T, Float32Array, total, true);
    e.x.unary(code, r.p, p, total);
    return r.out();
  } finally {
    T.done();
  }
}

/**
 * In place on y's contiguous float32 [rows, n] in the arena: y = act(y + bias) (nn.Linear's epilogue, see
 * `biasAct` in kernels.as). False where y is not in the arena or small; the caller runs the TypeScript loop.
 */
export function wasmBiasAct(y: Float32Array, bias: Float32Array, n: number, relu: boolean): boolean {
  const e = wasm();
  if (!e || y.length < 4096) return false;
  const T = new Temps(Arena.of(e));
  try {
    const py = T.arena.addressOf(y);
    if (py < 0) return false;
    const pb = place(e, T, bias, [n], [1], 0, n)!;
    e.x.biasAct(py, pb, y.length / n, n, relu ? 1 : 0);
    return true;
  } finally {
    T.done();
  }
}

/** relu's VJP y > 0 ? g : 0 of contiguous float32 g and y (equal lengths) into the arena; null for small ones. */
export function wasmReluBackward(g: Float32Array, y: Float32Array): Float32Array | null {
  const e = wasm();
  const total = g.length;
  if (!e || total < 4096) return null;
  const T = new Temps(Arena.of(e));
  try {
    const pg = place(e, T, g, [total], [1], 0, total)!;
    const py = place(e, T, y, [total], [1], 0, total)!;
    const r = result<Float32Array>(e, T, Float32Array, total, true);
    e.x.reluBackward(r.p, pg, py, total);
    return r.out();
  } finally {
    T.done();
  }
}

/**
 * out[r, :] = x[idx[r], :] for 4-byte rows of n (`out` contiguous in the arena; x's rows `ldx` apart from
 * `xOffset`, spanning `xRows` rows); indices already checked. False where the TypeScript loop should run.
 */
export function wasmGatherRows(
  out: Float32Array | Int32Array,
  n: number,
  x: Float32Array | Int32Array,
  xOffset: number,
  xRows: number,
  ldx: number,
  idx: Int32Array,
): boolean {
  return rowsByIndex(out, n, x, xOffset, xRows, ldx, idx, (e, po, px, pi) =>
    e.x.gatherRows(po, px, pi, idx.length, n, ldx),
  );
}

/**
 * out[idx[r], :] += src[r, :] in row order, in place on `out` (contiguous rows of n, in the arena) from float32
 * rows of `src` `ld` apart starting at `srcOffset`; indices already checked. False where the TypeScript loop
 * should run (no shared arena, out outside it, or small).
 */
export function wasmScatterRows(
  out: Float32Array,
  n: number,
  src: Float32Array,
  srcOffset: number,
  ld: number,
  idx: Int32Array,
): boolean {
  return rowsByIndex(out, n, src, srcOffset, idx.length, ld, idx, (e, po, ps, pi) =>
    e.x.scatterRows(po, ps, pi, idx.length, n, ld),
  );
}

/**
 * The shared staging of the row gather/scatter kernels: `out` must already be in the arena (it is written in
 * place), the other operand (`srcRows` rows `ld` apart) and the indices are placed as temporaries for the call.
 */
function rowsByIndex(
  out: Float32Array | Int32Array,
  n: number,
  src: Float32Array | Int32Array,
  srcOffset: number,
  srcRows: number,
  ld: number,
  idx: Int32Array,
  call: (e: Engine, out: number, src: number, idx: number) => void,
): boolean {
  const e = wasm();
  const rows = idx.length;
  if (!e || rows * n < 4096) return false;
  const T = new Temps(Arena.of(e));
  try {
    const po = T.arena.addressOf(out);
    if (po < 0) return false;
    const ps = place(e, T, src, [srcRows, n], [ld, 1], srcOffset, srcRows * n);
    if (ps === null) return false;
    const pi = T.take(rows * 4);
    new Int32Array(e.memory.buffer, pi, rows).set(idx);
    call(e, po, ps, pi);
    return true;
  } finally {
    T.done();
  }
}

/** One m×n product: byte addresses of A, B and C. */
export interface GemmTask {
  a: number;
  b: number;
  c: number;
}

export interface GemmShape {
  m: number;
  n: number;
  k: number;
  ars: number;
  acs: number;
  brs: number;
  bcs: number;
}

/** Runs the gemms of one matmul; the worker pool replaces it for large ops (pool.ts). */
export type GemmRunner = (e: Engine, s: GemmShape, tasks: GemmTask[]) => void;

export const serialGemm: GemmRunner = (e, s, tasks) => {
  const work = scratch(e, 0);
  for (const t of tasks) e.x.gemm(t.a, s.ars, s.acs, t.b, s.brs, s.bcs, t.c, s.n, 0, s.m, s.n, s.k, work);
};
let runner: GemmRunner = serialGemm;

export function setGemmRunner(r: GemmRunner | null): void {
  runner = r ?? serialGemm;
}

/**
 * Runs the gemmx calls of one convolution (all 16 arguments, i0 = 0, i1 = rows; `work` is set per thread), in
 * order on this thread; the worker pool replaces it for large ops (pool.ts). `split` says how threads may share
 * them: 'rows' when calls accumulate into one output, 'calls' when a call's rows overlap in its output.
 */
export type GemmxRunner = (e: Engine, calls: number[][], split: 'rows' | 'calls' | 'any', flops: number) => void;

const serialGemmx: GemmxRunner = (e, calls) => {
  const work = scratch(e, 0);
  const gemmx = e.x.gemmx as (...args: number[]) => void;
  for (const c of calls) gemmx(...c.slice(0, 15), work);
};
let gemmxRunner: GemmxRunner = serialGemmx;

export function setGemmxRunner(r: GemmxRunner | null): void {
  gemmxRunner = r ?? serialGemmx;
}

/**
 * Batched matmul on the wasm path: `a` [...batch, m, k] · `b` [...batch, k, n] (batch dims broadcast,
 * any strides) into a fresh contiguous Float32Array (in the arena where memory is shared). Null when
 * the TypeScript kernel should run.
 */
/**
 * Batched a·b in wasm; null where the product is tiny or wasm is off. `tri` (with diagonal offset `off`) asks for
 * the causal-attention variants of `gemmTri` (kernels.as), which run on this thread.
 */
export function wasmMatmul(
  a: View,
  b: View,
  contig: (v: View) => Float32Array,
  tri: 0 | 1 | 2 | 3 = 0,
  off = 0,
): Float32Array | null {
  const e = wasm();
  if (!e) return null;
  const r = a.shape.length;
  const m = a.shape[r - 2]!;
  const k = a.shape[r - 1]!;
  const n = b.shape[r - 1]!;
  const batch = a.shape.slice(0, r - 2);
  const nb = numel(batch);
  // Tiny products cost more to stage than to compute.
  if (nb * m * n * k < 4096 || m * n === 0 || nb === 0) return null;
  const T = new Temps(Arena.of(e));
  try {
    const operand = (v: View): { p: number; strides: readonly number[] } => {
      const data = v.storage.buf as Float32Array;
      const p = place(e, T, data, v.shape, v.strides, v.offset, numel(v.shape));
      if (p !== null) return { p, strides: v.strides };
      // A sparse view of a large storage: its contiguous copy instead.
      const dense = contig(v);
      const q = T.take(dense.length * 4);
      new Float32Array(e.memory.buffer).set(dense, q >> 2);
      return { p: q, strides: contiguousStrides(v.shape) };
    };
    let A = operand(a);
    // Short rows with gaps between them (one head's slice of [B, T, H, d] as attention's q): copied dense first.
    // The strip's two rows then sit in adjacent lines; read in place they ran at 0.72× the dense speed.
    if (k <= 64 && a.strides[r - 1] === 1 && a.strides[r - 2]! > k && nb > 1) {
      const dense = contiguousStrides(a.shape);
      const q = T.take(nb * m * k * 4);
      strided(e, T, q, dense, A.p, A.strides, a.shape);
      A = { p: q, strides: dense };
    }
    const B = operand(b);
    const res = result(e, T, Float32Array, nb * m * n, true);
    const tasks: GemmTask[] = new Array(nb);
    const idx = new Array<number>(batch.length).fill(0);
    for (let t = 0; t < nb; t++) {
      let ao = 0;
      let bo = 0;
      for (let d = 0; d < batch.length; d++) {
        ao += idx[d]! * A.strides[d]!;
        bo += idx[d]! * B.strides[d]!;
      }
      tasks[t] = { a: A.p + ao * 4, b: B.p + bo * 4, c: res.p + t * m * n * 4 };
      for (let d = batch.length - 1; d >= 0; d--) {
        if (++idx[d]! < batch[d]!) break;
        idx[d] = 0;
      }
    }
    const shape: GemmShape = {
      m,
      n,
      k,
      ars: A.strides[r - 2]!,
      acs: A.strides[r - 1]!,
      brs: B.strides[r - 2]!,
      bcs: B.strides[r - 1]!,
    };
    // One row (decoding): straight over B, no packing, on this thread. gemv answers 0 for a layout it does not
    // take, which depends on the shape only, so the first task decides.
    const work = scratch(e, 0);
    const gemv = (t: GemmTask) => e.x.gemv(t.a, shape.acs, t.b, shape.brs, shape.bcs, t.c, n, k, work) === 1;
    if (tri !== 0)
      for (const t of tasks)
        e.x.gemmTri(t.a, shape.ars, shape.acs, t.b, shape.brs, shape.bcs, t.c, n, 0, m, n, k, work, tri, off);
    else if (!(m === 1 && tasks.every(gemv))) runner(e, shape, tasks);
    return res.out();
  } finally {
    T.done();
  }
}

// ---------------------------------------------------------------- convolutions (implicit GEMM)

/** A convolution in 2-D terms (a 1-D one is H = 1): sizes, and the im2col offset tables for given strides. */
interface ConvPlan {
  N: number;
  C: number;
  O: number;
  groups: number;
  Cg: number;
  Og: number;
  /** rows of the im2col matrix per group: Cg·kh·kw */
  K: number;
  H: number;
  W: number;
  Hp: number;
  Wp: number;
  Ho: number;
  Wo: number;
  kh: number;
  kw: number;
  st: [number, number];
  dil: [number, number];
  pad: [number, number, number, number];
}

function plan(xShape: readonly number[], wShape: readonly number[], geo: ConvGeometry): ConvPlan {
  const one = xShape.length === 3;
  const [N, C] = [xShape[0]!, xShape[1]!];
  const H = one ? 1 : xShape[2]!;
  const W = xShape[xShape.length - 1]!;
  const kh = one ? 1 : wShape[2]!;
  const kw = wShape[wShape.length - 1]!;
  const st: [number, number] = one ? [1, geo.stride[0]!] : [geo.stride[0]!, geo.stride[1]!];
  const dil: [number, number] = one ? [1, geo.dilation[0]!] : [geo.dilation[0]!, geo.dilation[1]!];
  const ph = one ? [0, 0] : geo.padding[0]!;
  const pw = geo.padding[geo.padding.length - 1]!;
  const pad: [number, number, number, number] = [ph[0]!, ph[1]!, pw[0], pw[1]];
  const Hp = H + pad[0] + pad[1];
  const Wp = W + pad[2] + pad[3];
  const O = wShape[0]!;
  const groups = geo.groups;
  return {
    N,
    C,
    O,
    groups,
    Cg: C / groups,
    Og: O / groups,
    K: (C / groups) * kh * kw,
    H,
    W,
    Hp,
    Wp,
    Ho: Math.floor((Hp - dil[0] * (kh - 1) - 1) / st[0]) + 1,
    Wo: Math.floor((Wp - dil[1] * (kw - 1) - 1) / st[1]) + 1,
    kh,
    kw,
    st,
    dil,
    pad,
  };
}

/**
 * The im2col matrix of one (image, group) over an input with element strides [sC, sH, sW]: row r = (c, dy, dx)
 * starts at rows[r], column j = (h, w) adds cols[j]. Written into `T` temps; returns the two byte addresses.
 */
function im2colTables(e: Engine, T: Temps, q: ConvPlan, sC: number, sH: number, sW: number): [number, number] {
  const rows = T.take(q.K * 4 + 4);
  const cols = T.take(q.Ho * q.Wo * 4 + 4);
  const r32 = new Int32Array(e.memory.buffer, rows, q.K);
  let r = 0;
  for (let c = 0; c < q.Cg; c++)
    for (let dy = 0; dy < q.kh; dy++)
      for (let dx = 0; dx < q.kw; dx++) r32[r++] = c * sC + dy * q.dil[0] * sH + dx * q.dil[1] * sW;
  const c32 = new Int32Array(e.memory.buffer, cols, q.Ho * q.Wo);
  let j = 0;
  for (let h = 0; h < q.Ho; h++) for (let w = 0; w < q.Wo; w++) c32[j++] = h * q.st[0] * sH + w * q.st[1] * sW;
  return [rows, cols];
}

/** i32 table [0, s, 2s, …) of `n` entries in a temp. */
function ramp(e: Engine, T: Temps, n: number, s: number): number {
  const p = T.take(n * 4 + 4);
  const t = new Int32Array(e.memory.buffer, p, n);
  for (let i = 0; i < n; i++) t[i] = i * s;
  return p;
}

/** Byte address of a float32 view's elements in contiguous order: in place when contiguous, else a staged copy. */
function dense(e: Engine, T: Temps, v: View): number {
  const data = v.storage.buf as Float32Array;
  const total = numel(v.shape);
  if (isContiguous(v.shape, v.strides)) {
    const p = place(e, T, data, [total], [1], v.offset, total);
    if (p !== null) return p;
  }
  const src = place(e, T, data, v.shape, v.strides, v.offset, total);
  const p = T.take(total * 4 + 4);
  if (src === null) new Float32Array(e.memory.buffer).set(densify(v), p >> 2);
  else strided(e, T, p, contiguousStrides(v.shape), src, v.strides, v.shape);
  return p;
}

/** A strided view's elements in order, in plain JS (for views that touch a small part of a huge storage). */
function densify(v: View): Float32Array {
  const out = new Float32Array(numel(v.shape));
  const a = v.storage.buf as Float32Array;
  const idx = new Array<number>(v.shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let o = v.offset;
    for (let d = 0; d < idx.length; d++) o += idx[d]! * v.strides[d]!;
    out[i] = a[o]!;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < v.shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The input as the kernels read it, one image at a time: `image(n)` is the byte address of image n's element
 * [0, 0, 0] and `s` its element strides [sC, sH, sW]. Unpadded, that is the input in place; padded, one
 * zero-bordered image buffer reused for every image (its border stays zero, the interior is overwritten), so the
 * copy is still in cache when the GEMM packs it and only one image's worth is ever zero-filled.
 */
function convInput(e: Engine, T: Temps, x: View, q: ConvPlan): { image: (n: number) => number; s: number[] } {
  const one = x.shape.length === 3;
  const padded = q.pad.some((v) => v !== 0);
  const data = x.storage.buf as Float32Array;
  const total = numel(x.shape);
  let src = place(e, T, data, x.shape, x.strides, x.offset, total);
  let st = one ? [x.strides[0]!, x.strides[1]!, 0, x.strides[2]!] : [...x.strides];
  if (src === null) {
    // A sparse view of a large storage: its dense copy.
    src = T.take(total * 4 + 4);
    new Float32Array(e.memory.buffer).set(densify(x), src >> 2);
    st = contiguousStrides([q.N, q.C, q.H, q.W]);
  }
  const base = src;
  const sN = st[0]!;
  if (!padded) return { image: (n) => base + n * sN * 4, s: st.slice(1) };
  const ps = contiguousStrides([q.C, q.Hp, q.Wp]);
  const buf = T.take(q.C * q.Hp * q.Wp * 4 + 4);
  e.x.fill32(buf, 0, q.C * q.Hp * q.Wp);
  const inner = buf + (q.pad[0] * ps[1]! + q.pad[2]) * 4;
  const shape = [q.C, q.H, q.W];
  return {
    image: (n) => {
      strided(e, T, inner, ps, base + n * sN * 4, st.slice(1), shape);
      return buf;
    },
    s: ps,
  };
}

/**
 * float32 convolution on the wasm path: per (image, group) one implicit GEMM, weight [Og, K] as A (read in
 * place), the input as B through im2col offset tables, the output written in NC(H)W order. Null off the wasm
 * path or for shapes it does not cover.
 */
export function wasmConv(x: View, w: View, bias: View | null, geo: ConvGeometry): Float32Array | null {
  const e = wasm();
  const sd = x.shape.length - 2;
  if (!e || x.dtype !== 'float32' || w.dtype !== 'float32' || sd < 1 || sd > 2) return null;
  if (bias && bias.dtype !== 'float32') return null;
  const q = plan(x.shape, w.shape, geo);
  const HW = q.Ho * q.Wo;
  const T = new Temps(Arena.of(e));
  try {
    const X = convInput(e, T, x, q);
    const pw = dense(e, T, w);
    const [rows, cols] = im2colTables(e, T, q, X.s[0]!, X.s[1]!, X.s[2]!);
    const res = result(e, T, Float32Array, q.N * q.O * HW, true);
    // A bias is the starting value of each output row; the GEMM then accumulates onto it.
    const b32 = bias ? new Int32Array(Float32Array.from(densify(bias)).buffer) : null;
    if (b32) for (let r = 0; r < q.N * q.O; r++) e.x.fill32(res.p + r * HW * 4, b32[r % q.O]!, HW);
    for (let n = 0; n < q.N; n++) {
      const img = X.image(n);
      const calls: number[][] = [];
      for (let g = 0; g < q.groups; g++) {
        const b = img + g * q.Cg * X.s[0]! * 4;
        const c = res.p + (n * q.O + g * q.Og) * HW * 4;
        calls.push([pw + g * q.Og * q.K * 4, q.K, 1, b, rows, cols, c, HW, 0, 0, 0, q.Og, HW, q.K, b32 ? 1 : 0, 0]);
      }
      gemmxRunner(e, calls, 'any', 2 * q.O * q.K * HW);
    }
    return res.out();
  } finally {
    T.done();
  }
}

/**
 * Gradient of a convolution's bias: g [N, O, ...out] summed over images and positions, as GEMVs against a vector
 * of ones (B[p, 0] = 1 through offset tables that all point at one 1.0), accumulated image after image.
 */
export function wasmConvBackwardBias(g: View): Float32Array {
  const e = backwardEngine();
  const [N, O] = [g.shape[0]!, g.shape[1]!];
  const HW = numel(g.shape.slice(2));
  const T = new Temps(Arena.of(e));
  try {
    const pg = dense(e, T, g);
    const one = T.take(16);
    new Float32Array(e.memory.buffer, one, 1)[0] = 1;
    const zeros = T.take(HW * 4 + 4);
    e.x.fill32(zeros, 0, HW + 1);
    const res = result(e, T, Float32Array, O, true);
    e.x.fill32(res.p, 0, O);
    const work = scratch(e, 0);
    for (let n = 0; n < N; n++)
      e.x.gemmx(pg + n * O * HW * 4, HW, 1, one, zeros, zeros, res.p, 1, 0, 0, 0, O, 1, HW, 1, work);
    return res.out();
  } finally {
    T.done();
  }
}

/** The wasm engine for a backward pass whose forward ran on it (even if the path was switched since). */
function backwardEngine(): Engine {
  const e = getEngine();
  if (!e) throw new TesseraError('conv backward: the wasm engine is missing, but the forward ran on it');
  return e;
}

/** The transposed convolution on the wasm path (the input-gradient kernel run forward); null off it. */
export function wasmConvTranspose(
  x: View,
  w: View,
  outShape: readonly number[],
  geo: ConvGeometry,
): Float32Array | null {
  if (!wasm() || x.dtype !== 'float32' || w.dtype !== 'float32') return null;
  return wasmConvBackwardInput(x, w, outShape, geo);
}

/**
 * Gradient of a convolution for its input: per (image, group) Wᵀ·g [K, HW], scattered and summed into the
 * (padded) input by the GEMM's store through the im2col tables (col2im without the column matrix).
 */
export function wasmConvBackwardInput(g: View, w: View, xShape: readonly number[], geo: ConvGeometry): Float32Array {
  const e = backwardEngine();
  const q = plan(xShape, w.shape, geo);
  const HW = q.Ho * q.Wo;
  const T = new Temps(Arena.of(e));
  try {
    const pg = dense(e, T, g);
    const pw = dense(e, T, w);
    const total = numel(xShape);
    const res = result(e, T, Float32Array, total, true);
    if (q.st[0] === 1 && q.st[1] === 1) {
      fullCorrelation(e, T, q, pg, pw, res.p);
      return res.out();
    }
    const padded = q.pad.some((v) => v !== 0);
    const padShape = [q.N, q.C, q.Hp, q.Wp];
    const ps = contiguousStrides(padShape);
    const dx = padded ? T.take(numel(padShape) * 4 + 4) : res.p;
    e.x.fill32(dx, 0, padded ? numel(padShape) : total);
    const [rows, cols] = im2colTables(e, T, q, ps[1]!, ps[2]!, ps[3]!);
    const bro = ramp(e, T, q.Og, HW);
    const bco = ramp(e, T, HW, 1);
    const calls: number[][] = [];
    for (let n = 0; n < q.N; n++)
      for (let gi = 0; gi < q.groups; gi++) {
        const c = dx + (n * ps[0]! + gi * q.Cg * ps[1]!) * 4;
        const b = pg + (n * q.O + gi * q.Og) * HW * 4;
        // A = W_gᵀ: A[r, o] = W[o, r], rows adjacent (ars 1), columns K apart.
        calls.push([pw + gi * q.Og * q.K * 4, 1, q.K, b, bro, bco, c, 0, rows, cols, 0, q.K, HW, q.Og, 1, 0]);
      }
    // The scatter store of one call's rows overlaps (col2im): threads take whole calls (disjoint images/groups).
    gemmxRunner(e, calls, 'calls', 2 * q.N * q.O * q.K * HW);
    if (padded) {
      const shape4 = [q.N, q.C, q.H, q.W];
      strided(e, T, res.p, contiguousStrides(shape4), dx + (q.pad[0] * ps[2]! + q.pad[2]) * 4, ps, shape4);
    }
    return res.out();
  } finally {
    T.done();
  }
}

/**
 * The input gradient of a stride-1 convolution as a forward one: dx[c, h, w] = Σ W[o, c, i, j]·g[o, h + pt − i·dh,
 * w + pl − j·dw] is the correlation of g, zero-bordered, with the weight flipped and transposed to [C, O/groups,
 * kh, kw]. Its GEMM has K = (O/groups)·kh·kw and plain stores, where the col2im form has K = O/groups (short for
 * attention-sized channel counts) and scattered stores.
 */
function fullCorrelation(e: Engine, T: Temps, q: ConvPlan, pg: number, pw: number, out: number): void {
  const [dh, dw] = q.dil;
  const Hg = q.H + (q.kh - 1) * dh;
  const Wg = q.W + (q.kw - 1) * dw;
  // g row r lands on row r + top of the bordered gradient (top < 0 crops rows no input element reads).
  const top = (q.kh - 1) * dh - q.pad[0];
  const left = (q.kw - 1) * dw - q.pad[2];
  const r0 = Math.max(0, -top);
  const r1 = Math.min(q.Ho, Hg - top);
  const c0 = Math.max(0, -left);
  const c1 = Math.min(q.Wo, Wg - left);
  const gShape = [q.N, q.O, Hg, Wg];
  const gs = contiguousStrides(gShape);
  const gp = T.take(numel(gShape) * 4 + 4);
  e.x.fill32(gp, 0, numel(gShape));
  if (r1 > r0 && c1 > c0) {
    const part = [q.N, q.O, r1 - r0, c1 - c0];
    const from = pg + (r0 * q.Wo + c0) * 4;
    strided(e, T, gp + ((r0 + top) * Wg + c0 + left) * 4, gs, from, [q.O * q.Ho * q.Wo, q.Ho * q.Wo, q.Wo, 1], part);
  }
  // W' [groups, Cg, Og, kh, kw] = W[g·Og + o, c, kh−1−i, kw−1−j], through a strided copy with negative strides.
  const kk = q.kh * q.kw;
  const wt = T.take(q.O * q.K * 4 + 4);
  const wShape = [q.groups, q.Cg, q.Og, q.kh, q.kw];
  strided(e, T, wt, contiguousStrides(wShape), pw + (kk - 1) * 4, [q.Og * q.K, kk, q.K, -q.kw, -1], wShape);
  const K2 = q.Og * kk;
  const rows = T.take(K2 * 4 + 4);
  const r32 = new Int32Array(e.memory.buffer, rows, K2);
  let r = 0;
  for (let o = 0; o < q.Og; o++)
    for (let i = 0; i < q.kh; i++) for (let j = 0; j < q.kw; j++) r32[r++] = o * gs[1]! + i * dh * Wg + j * dw;
  const HW = q.H * q.W;
  const cols = T.take(HW * 4 + 4);
  const c32 = new Int32Array(e.memory.buffer, cols, HW);
  for (let h = 0, jj = 0; h < q.H; h++) for (let x = 0; x < q.W; x++) c32[jj++] = h * Wg + x;
  const calls: number[][] = [];
  for (let n = 0; n < q.N; n++)
    for (let gi = 0; gi < q.groups; gi++) {
      const b = gp + (n * gs[0]! + gi * q.Og * gs[1]!) * 4;
      const c = out + (n * q.C + gi * q.Cg) * HW * 4;
      calls.push([wt + gi * q.Cg * K2 * 4, K2, 1, b, rows, cols, c, HW, 0, 0, 0, q.Cg, HW, K2, 0, 0]);
    }
  gemmxRunner(e, calls, 'any', 2 * q.N * q.C * K2 * HW);
}

/** Gradient of a convolution for its weight: Σ over images of g [Og, HW] · im2col(x)ᵀ [HW, K], per group. */
export function wasmConvBackwardWeight(g: View, x: View, wShape: readonly number[], geo: ConvGeometry): Float32Array {
  const e = backwardEngine();
  const q = plan(x.shape, wShape, geo);
  const HW = q.Ho * q.Wo;
  const T = new Temps(Arena.of(e));
  try {
    const pg = dense(e, T, g);
    const X = convInput(e, T, x, q);
    const [rows, cols] = im2colTables(e, T, q, X.s[0]!, X.s[1]!, X.s[2]!);
    const res = result(e, T, Float32Array, q.O * q.K, true);
    e.x.fill32(res.p, 0, q.O * q.K);
    for (let n = 0; n < q.N; n++) {
      const img = X.image(n);
      const calls: number[][] = [];
      for (let gi = 0; gi < q.groups; gi++) {
        const a = pg + (n * q.O + gi * q.Og) * HW * 4;
        const b = img + gi * q.Cg * X.s[0]! * 4;
        // B[p, r] = im2col[r, p]: the column table walks the rows of this GEMM, the row table its columns.
        calls.push([a, HW, 1, b, cols, rows, res.p + gi * q.Og * q.K * 4, q.K, 0, 0, 0, q.Og, q.K, HW, 1, 0]);
      }
      // The images accumulate into one weight gradient, in order: threads split its rows.
      gemmxRunner(e, calls, 'rows', 2 * q.O * q.K * HW);
    }
    return res.out();
  } finally {
    T.done();
  }
}

/** Byte address of element [b, h, 0, 0] of a [B, H, L, d] view placed at `p` (its offset included). */
const headAt = (p: number, v: View, b: number, h: number) => p + (b * v.strides[0]! + h * v.strides[1]!) * 4;

/** Whether q, k, v (and more) are float32 [B, H, L, d] views with unit column stride, as the fused kernels read. */
function headViews(vs: View[]): boolean {
  const s = vs[0]!.shape;
  return vs.every(
    (v) => v.dtype === 'float32' && v.shape.length === 4 && v.strides[3] === 1 && v.shape.every((n, i) => n === s[i]),
  );
}

/**
 * Causal self-attention of q, k, v [B, H, L, d] one head at a time: the scores q·kᵀ (live entries only), the scaled
 * causal softmax in place over them, and p·v, while the head's [L, L] block is in cache — the kernels and sums of
 * the unfused path (`causalMatmul` 1, `scaledSoftmax`, `causalMatmul` 2), so the same bits. o is written in
 * [B, L, H, d] order (heads side by side, as the output projection reads them); p [B, H, L, L] is kept for the VJP.
 * Null where the unfused path runs (wasm off, other layouts, spans much larger than the views).
 */
export function wasmCausalAttention(
  q: View,
  k: View,
  v: View,
  scale: number,
): { o: Float32Array; p: Float32Array } | null {
  const e = wasm();
  if (!e || !headViews([q, k, v])) return null;
  const [B, H, L, d] = q.shape as [number, number, number, number];
  if (B * H * L * L < 4096 || d === 0) return null;
  const T = new Temps(Arena.of(e));
  try {
    const ps: number[] = [];
    for (const t of [q, k, v]) {
      const p = place(e, T, t.storage.buf as Float32Array, t.shape, t.strides, t.offset, numel(t.shape));
      if (p === null) return null;
      ps.push(p);
    }
    const [pq, pk, pv] = ps as [number, number, number];
    const o = result<Float32Array>(e, T, Float32Array, B * L * H * d, true);
    const p = result<Float32Array>(e, T, Float32Array, B * H * L * L, true);
    const work = scratch(e, 0);
    const s = T.take(L * L * 4);
    const rows = denseRows(e, T, L, d);
    const put = headOut(e, T, L, d, H * d);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const ph = p.p + (b * H + h) * L * L * 4;
        const qh = rows(headAt(pq, q, b, h), q.strides[2]!);
        e.x.gemmTri(qh.p, qh.rs, 1, headAt(pk, k, b, h), 1, k.strides[2]!, s, L, 0, L, L, d, work, 4, 0);
        e.x.scaledSoftmax(ph, s, L, L, L, scale, 1, 0);
        e.x.gemmTri(ph, L, 1, headAt(pv, v, b, h), v.strides[2]!, 1, put.p, d, 0, L, d, L, work, 2, 0);
        put.to(o.p + (b * L * H + h) * d * 4);
      }
    return { o: o.out(), p: p.out() };
  } finally {
    T.done();
  }
}

/**
 * The VJP of `wasmCausalAttention` from its saved p and the output gradient g [B, H, L, d], per head: dP = g·vᵀ,
 * dS = the scaled softmax VJP (in place), dV = pᵀ·g, dQ = dS·k, dK = dSᵀ·q — the unfused path's kernels and
 * sums. dq, dk, dv come in [B, L, H, d] order as o does. Null where it does not apply (the caller then has none).
 */
export function wasmCausalAttentionBackward(
  q: View,
  k: View,
  v: View,
  p: View,
  g: View,
  scale: number,
): [Float32Array, Float32Array, Float32Array] | null {
  const e = wasm();
  if (!e || !headViews([q, k, v, g]) || !isContiguous(p.shape, p.strides)) return null;
  const [B, H, L, d] = q.shape as [number, number, number, number];
  const T = new Temps(Arena.of(e));
  try {
    const ps: number[] = [];
    for (const t of [q, k, v, g]) {
      const a = place(e, T, t.storage.buf as Float32Array, t.shape, t.strides, t.offset, numel(t.shape));
      if (a === null) return null;
      ps.push(a);
    }
    const [pq, pk, pv, pg] = ps as [number, number, number, number];
    const pp = at(e, T, p);
    const n = B * L * H * d;
    const [dq, dk, dv] = [0, 1, 2].map(() => result<Float32Array>(e, T, Float32Array, n, true));
    const ds = T.take(L * L * 4);
    const work = scratch(e, 0);
    const rows = denseRows(e, T, L, d);
    const put = headOut(e, T, L, d, H * d);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const ph = pp + (b * H + h) * L * L * 4;
        const gh = headAt(pg, g, b, h);
        const kh = headAt(pk, k, b, h);
        const out = (b * L * H + h) * d * 4;
        const ga = rows(gh, g.strides[2]!);
        e.x.gemmTri(ga.p, ga.rs, 1, headAt(pv, v, b, h), 1, v.strides[2]!, ds, L, 0, L, L, d, work, 4, 0);
        e.x.scaledSoftmaxBackward(ds, ph, ds, L, L, L, scale, 1, 0);
        e.x.gemmTri(ph, 1, L, gh, g.strides[2]!, 1, put.p, d, 0, L, d, L, work, 3, 0);
        put.to(dv!.p + out);
        e.x.gemmTri(ds, L, 1, kh, k.strides[2]!, 1, put.p, d, 0, L, d, L, work, 2, 0);
        put.to(dq!.p + out);
        e.x.gemmTri(ds, 1, L, headAt(pq, q, b, h), q.strides[2]!, 1, put.p, d, 0, L, d, L, work, 3, 0);
        put.to(dk!.p + out);
      }
    return [dq!.out(), dk!.out(), dv!.out()];
  } finally {
    T.done();
  }
}

/**
 * A dense [L, d] block for a head's product, and its copy into the head's rows `ld` apart in the output: the
 * micro-kernel's stores into the output's rows ran ~1.4× slower than into this block, which stays in cache.
 */
function headOut(e: Engine, T: Temps, L: number, d: number, ld: number): { p: number; to: (dst: number) => void } {
  const p = T.take(L * d * 4);
  const meta = T.take(32);
  new Int32Array(e.memory.buffer, meta, 6).set([L, d, ld, 1, d, 1]);
  return { p, to: (dst) => e.x.copyStrided(dst, p, 2, meta, meta + 8, meta + 16, meta + 24) };
}

/**
 * A head's [L, d] rows as the A operand of a product: in place when they are dense, else copied into one reused
 * dense block (rows with gaps between them, a head of [B, L, H, d]: read in place they ran at 0.72× the speed).
 */
function denseRows(e: Engine, T: Temps, L: number, d: number): (p: number, rs: number) => { p: number; rs: number } {
  let buf = -1;
  let meta = -1;
  return (p, rs) => {
    if (rs === d) return { p, rs };
    if (buf < 0) {
      buf = T.take(L * d * 4);
      meta = T.take(32);
      new Int32Array(e.memory.buffer, meta, 6).set([L, d, d, 1, 0, 1]);
    }
    new Int32Array(e.memory.buffer, meta + 16, 1)[0] = rs;
    e.x.copyStrided(buf, p, 2, meta, meta + 8, meta + 16, meta + 24);
    return { p: buf, rs: d };
  };
}
