// The WASM SIMD path of the CPU backend: loads the kernels built from wasm/kernels.as (relaxed-SIMD FMA
// when the engine validates it, plain SIMD128 otherwise, none where wasm SIMD is missing) and runs
// matmul and strided copies in one wasm memory. Operands live in JS typed arrays, so each call stages
// the part of a storage a view spans (one memcpy), runs the kernel, and copies the result out.
// `setCpuPath('ts')` (or TESSERA_CPU=ts in the environment) forces the TypeScript reference kernels.
import { TesseraError } from '../../errors.js';
import { contiguousStrides, numel } from '../../shape.js';
import type { View } from '../backend.js';
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
  gemmWorkBytes(): number;
  copyStrided(dst: number, src: number, nd: number, shape: number, strides: number, idx: number): void;
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

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function load(): Engine | null {
  if (typeof WebAssembly !== 'object') return null;
  const shared = typeof SharedArrayBuffer === 'function';
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

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
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

/** A bump layout for one op: 16-byte aligned blocks from `BASE + gemm scratch` on. */
export class Layout {
  end: number;
  constructor(e: Engine, scratchBlocks = 1) {
    this.end = BASE + scratchBlocks * align(e.x.gemmWorkBytes());
  }
  take(bytes: number): number {
    const p = this.end;
    this.end = align(p + bytes);
    return p;
  }
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

/**
 * Contiguous copy of a 4-byte view (float32 or int32) through the wasm gather. Returns null where the
 * TypeScript loop is as good: small views, or views that touch a small part of a large span.
 */
export function wasmCopy(
  data: Float32Array | Int32Array,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  total: number,
): Float32Array | Int32Array | null {
  const e = wasm();
  if (!e || total < 2048) return null;
  const { lo, hi } = span(shape, strides, offset);
  const n = hi - lo + 1;
  if (n > 4 * total) return null;
  const { outer, outerStrides, n: rowLen, inner } = collapse(shape, [strides]);
  const dims = [...outer, rowLen];
  const st = [...outerStrides[0]!, inner[0]!];
  const L = new Layout(e);
  const meta = L.take(dims.length * 12);
  const src = L.take(n * 4);
  const dst = L.take(total * 4);
  ensure(e, L.end);
  const buf = e.memory.buffer;
  const i32 = new Int32Array(buf);
  i32.set(dims, meta >> 2);
  i32.set(st, (meta >> 2) + dims.length);
  const view = data instanceof Float32Array ? new Float32Array(buf) : new Int32Array(buf);
  view.set(data.subarray(lo, hi + 1), src >> 2);
  e.x.copyStrided(dst, src + (offset - lo) * 4, dims.length, meta, meta + dims.length * 4, meta + dims.length * 8);
  const out = data instanceof Float32Array ? new Float32Array(total) : new Int32Array(total);
  out.set(view.subarray(dst >> 2, (dst >> 2) + total));
  return out;
}

interface Staged {
  /** byte address of element `offset` of the view */
  ptr: number;
  strides: readonly number[];
}

/** Copies the span of `v`'s storage into wasm memory (or, for a sparse view, its contiguous copy). */
function stage(e: Engine, L: Layout, v: View, contig: (v: View) => Float32Array): () => Staged {
  const data = v.storage.buf as Float32Array;
  const total = numel(v.shape);
  const { lo, hi } = span(v.shape, v.strides, v.offset);
  if (hi - lo + 1 <= 4 * total + 4096) {
    const p = L.take((hi - lo + 1) * 4);
    return () => {
      new Float32Array(e.memory.buffer).set(data.subarray(lo, hi + 1), p >> 2);
      return { ptr: p + (v.offset - lo) * 4, strides: v.strides };
    };
  }
  // Made contiguous now, before this op writes anything to wasm memory (contig may use it too).
  const dense = contig(v);
  const p = L.take(total * 4);
  return () => {
    new Float32Array(e.memory.buffer).set(dense, p >> 2);
    return { ptr: p, strides: contiguousStrides(v.shape) };
  };
}

/** One m×n block of C: rows of A and B start at the given byte addresses. */
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

/** Runs the gemms; the thread pool may take over this step for large ops (see pool.ts). */
export type GemmRunner = (e: Engine, L: Layout, s: GemmShape, tasks: GemmTask[]) => void;

const serialRunner: GemmRunner = (e, _L, s, tasks) => {
  for (const t of tasks) e.x.gemm(t.a, s.ars, s.acs, t.b, s.brs, s.bcs, t.c, s.n, 0, s.m, s.n, s.k, BASE);
};
let runner: GemmRunner = serialRunner;

export function setGemmRunner(r: GemmRunner | null): void {
  runner = r ?? serialRunner;
}

/**
 * Batched matmul on the wasm path: `a` [...batch, m, k] · `b` [...batch, k, n] (batch dims broadcast,
 * any strides) into a fresh contiguous Float32Array. Null when the TypeScript kernel should run.
 */
export function wasmMatmul(a: View, b: View, contig: (v: View) => Float32Array): Float32Array | null {
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
  const L = new Layout(e, 1);
  const sa = stage(e, L, a, contig);
  const sb = stage(e, L, b, contig);
  const c = L.take(nb * m * n * 4);
  ensure(e, L.end);
  const A = sa();
  const B = sb();
  const tasks: GemmTask[] = new Array(nb);
  const idx = new Array<number>(batch.length).fill(0);
  for (let t = 0; t < nb; t++) {
    let ao = 0;
    let bo = 0;
    for (let d = 0; d < batch.length; d++) {
      ao += idx[d]! * A.strides[d]!;
      bo += idx[d]! * B.strides[d]!;
    }
    tasks[t] = { a: A.ptr + ao * 4, b: B.ptr + bo * 4, c: c + t * m * n * 4 };
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
  runner(e, L, shape, tasks);
  // (TypedArray.slice out of wasm memory is several times slower than allocate + set.)
  const out = new Float32Array(nb * m * n);
  out.set(new Float32Array(e.memory.buffer, c, nb * m * n));
  return out;
}
