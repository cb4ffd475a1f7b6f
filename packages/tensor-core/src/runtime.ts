// Process-wide engine state: the active backend, storage reference counts, tidy scopes and the
// memory report. Explicit dispose() and tidy() are the primary mechanism because the garbage collector
// sees neither GPU buffers nor a wasm heap; a FinalizationRegistry frees what leaks and counts it.
import type { BackendName, Kernels, Storage } from './backends/backend.js';
import { cpuKernels } from './backends/cpu/kernels.js';
import { itemSize } from './dtype.js';
import { ValueError } from './errors.js';
import type { Tensor } from './tensor.js';

const backends = new Map<BackendName, Kernels>([['cpu', cpuKernels]]);
let active: BackendName = 'cpu';

export function kernelsFor(name: BackendName): Kernels {
  const k = backends.get(name);
  if (!k) throw new ValueError(`backend ${name} is not registered; call setBackend('${name}') first`);
  return k;
}

export function registerBackend(name: BackendName, kernels: Kernels): void {
  backends.set(name, kernels);
}

export function getBackend(): BackendName {
  return active;
}

/**
 * Makes a backend available without selecting it: WebGPU's module is imported on first use (it
 * acquires the adapter and device, or re-acquires them after a device loss). Throws the backend's
 * typed error (e.g. NoAdapterError) and leaves the active backend as it was.
 */
export async function initBackend(name: BackendName): Promise<Kernels> {
  if (name === 'webgpu') {
    const gpu = await import('./backends/webgpu/index.js');
    await gpu.init();
    backends.set('webgpu', gpu.webgpuKernels);
    memoryReporters.set('webgpu', () => gpu.memoryStats());
  }
  return kernelsFor(name);
}

/** Selects the backend new tensors are created on (`await setBackend('webgpu')`). */
export async function setBackend(name: BackendName): Promise<void> {
  if (name !== 'cpu' && name !== 'webgpu')
    throw new ValueError(
      `setBackend: backend '${name}' is not available here (available: ${[...backends.keys(), 'webgpu'].join(', ')})`,
    );
  await initBackend(name);
  active = name;
}

const memoryReporters = new Map<BackendName, () => BackendMemory | null>();

/** A backend's own buffer pool: buffers created on the device (live and idle) and the idle ones. */
export interface BackendMemory {
  buffers: number;
  bytes: number;
  pooledBuffers: number;
  pooledBytes: number;
}

const stats = { storages: 0, bytes: 0, tensors: 0, leaked: 0 };

export function retain(s: Storage): void {
  if (s.refs === 0) {
    stats.storages++;
    stats.bytes += s.length * itemSize(s.dtype);
  }
  s.refs++;
}

export function release(s: Storage): void {
  if (s.refs <= 0) return;
  if (--s.refs === 0) {
    stats.storages--;
    stats.bytes -= s.length * itemSize(s.dtype);
    kernelsFor(s.backend).free(s);
  }
}

export function countTensor(delta: 1 | -1): void {
  stats.tensors += delta;
}

// A handle collected without dispose(): free its storage reference and count the leak.
export const leakRegistry = new FinalizationRegistry<Storage>((s) => {
  stats.leaked++;
  stats.tensors--;
  release(s);
});

export interface MemoryInfo {
  /** Live tensor handles (views count once each). */
  numTensors: number;
  /** Live storages and their bytes. */
  numStorages: number;
  numBytes: number;
  /** Handles the garbage collector found undisposed (a leak report, not an error). */
  numLeaked: number;
  /** The WebGPU buffer pool, once that backend is initialised. */
  webgpu?: BackendMemory;
}

export function memory(): MemoryInfo {
  const info: MemoryInfo = {
    numTensors: stats.tensors,
    numStorages: stats.storages,
    numBytes: stats.bytes,
    numLeaked: stats.leaked,
  };
  const gpu = memoryReporters.get('webgpu')?.();
  if (gpu) info.webgpu = gpu;
  return info;
}

const scopes: Set<Tensor>[] = [];

// Registering with the FinalizationRegistry costs about as much as the rest of making a small tensor, and most
// tensors are made and disposed inside one tidy() scope, which holds them and so no collector can find them
// undisposed. A tensor is registered once it is outside every scope: made outside one, returned from the
// outermost, or kept.
function watch(t: Tensor): void {
  if (t.leakWatched || t.isDisposed) return;
  t.leakWatched = true;
  leakRegistry.register(t, t.storage, t);
}

/** A new (or returned) tensor joins the innermost tidy() scope, or is watched for leaks outside any. */
export function track(t: Tensor): void {
  const scope = scopes[scopes.length - 1];
  if (scope) scope.add(t);
  else watch(t);
}

export function untrack(t: Tensor): void {
  for (const s of scopes) s.delete(t);
  watch(t);
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns (a tensor, or tensors inside
 * an array or plain object) and those passed to `keep()`. Returned tensors move to the enclosing scope.
 * If `fn` throws, every tensor it created and did not `keep()` is disposed before the error propagates.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // A throwing function's intermediates are as dead as a returning one's: free them now rather than
    // leave them to the garbage collector (which counts them as leaks and frees GPU buffers late).
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new ValueError('tidy: the function must be synchronous; it returned a Promise');
  const out = new Set<Tensor>();
  collect(result, out, 0);
  for (const t of scope) {
    if (out.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

/** Keeps a tensor alive past the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  untrack(t);
  return t;
}

function collect(v: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if ((v as Tensor).isTensor === true) {
    out.add(v as Tensor);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, depth + 1);
}
