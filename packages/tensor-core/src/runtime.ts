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

/** Selects the backend new tensors are created on. WebGPU registers itself when its module is loaded. */
export async function setBackend(name: BackendName): Promise<void> {
  if (!backends.has(name))
    throw new ValueError(
      `setBackend: backend '${name}' is not available here (available: ${[...backends.keys()].join(', ')})`,
    );
  active = name;
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
}

export function memory(): MemoryInfo {
  return { numTensors: stats.tensors, numStorages: stats.storages, numBytes: stats.bytes, numLeaked: stats.leaked };
}

const scopes: Set<Tensor>[] = [];

export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

export function untrack(t: Tensor): void {
  for (const s of scopes) s.delete(t);
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns (a tensor, or tensors inside
 * an array or plain object) and those passed to `keep()`. Returned tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
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
