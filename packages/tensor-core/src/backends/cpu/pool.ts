// A worker pool over the shared wasm memory that splits large matmuls and convolutions (their row kernels,
// gemm and gemmx): whole products across threads when there are enough of them, else each product's rows
// (in multiples of 4). Node runs worker_threads; browsers run
// Web Workers (a Blob URL of the self-contained script below, so any bundler — or none — ships it). Each
// worker instantiates the same module on the same memory, sleeps in Atomics.wait on its control word and
// is woken by Atomics.notify, so nothing spins. Each element of C is computed by one thread in the same
// order as the serial kernel, so results do not depend on the thread count. Small ops (< MIN_FLOPS) stay
// on the calling thread. A worker that throws marks its job failed; one that dies or hangs is found by a
// timeout; either way the op throws a WorkerError and the backend goes back to one thread.
//
// The ops are synchronous, so the calling thread must wait for the workers inside the op. Browsers forbid
// Atomics.wait on the main thread (and Atomics.waitAsync cannot finish a synchronous op), so there the
// pool stays off unless the caller accepts a busy-wait ({ wait: 'spin' }); inside a Web Worker and in Node
// the caller sleeps. Where threads cannot run (no shared memory: a page that is not
// cross-origin isolated; no Worker; the TypeScript path) setCpuThreads falls back to one thread without an
// error, and cpuThreadsUnavailableReason() says why.
import { TesseraError, ValueError } from '../../errors.js';
import {
  Arena,
  type GemmRunner,
  type GemmxRunner,
  MAX_THREADS,
  scratch,
  setGemmRunner,
  setGemmxRunner,
  wasm,
} from './wasm.js';

/** A worker of the CPU pool failed or stopped answering; the op did not complete. */
export class WorkerError extends TesseraError {}

let MIN_FLOPS = 1 << 22; // below this an op stays on the calling thread (setPoolMinFlops for tests)
const ARGS = 16; // the most arguments of a row kernel (gemmx)
const REC = ARGS + 1; // i32 words per record: kernel id, then its arguments
// Row kernels: wasm exports that compute rows [i0, i1) of an output and take a scratch block, so threads
// can split their rows. Each record is the kernel's id then its arguments, padded to ARGS words; a thread
// calls the export with all ARGS (wasm ignores the extra ones). The id is the index in the worker's table.
const KERNELS = {
  // gemm(a ars acs b brs bcs c ldc i0 i1 n k work)
  gemm: { id: 0, i0: 8, work: 12 },
  // gemmx(a ars acs b bro bco c ldc cro cco i0 i1 n k accum work): B and C through offset tables (conv)
  gemmx: { id: 1, i0: 10, work: 15 },
} as const;
export type RowKernel = keyof typeof KERNELS;
const KERNEL_WORK = [KERNELS.gemm.work, KERNELS.gemmx.work];

// Control words per worker: 0 job sequence (or -1: stop), 1 done sequence (negative: failed), 2 job, 3 mode,
// 4 units done so far (for tests: proves the workers took part).
const CTRL = 5;

// The job loop, shared by both kinds of worker. `d` is { module, memory, ctrl, index, work }; `exit` ends
// the worker without answering (the test hook for a crash). A job (ctrl[2]) is a list of units that every
// thread, the caller included, takes one at a time from a shared counter, so a thread that gets less CPU
// (a busy core) simply does fewer units. Each unit is a run of records: a kernel id and its arguments, the
// scratch argument replaced by the thread's own. ctrl[3] < 0 are test hooks: -1 throws, -2 exits, -3 hangs.
const jobLoop = `
function start(d, post, exit) {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  const kernels = [inst.exports.gemm, inst.exports.gemmx];
  const WORK = [${KERNEL_WORK.join(', ')}];
  const ctrl = new Int32Array(d.memory.buffer, d.ctrl + d.index * ${CTRL * 4}, ${CTRL});
  post('ready');
  let seen = 0;
  for (;;) {
    Atomics.wait(ctrl, 0, seen);
    const seq = Atomics.load(ctrl, 0);
    if (seq < 0) return;
    seen = seq;
    let status = seq;
    try {
      const mode = ctrl[3];
      if (mode === -1) throw new Error('test: worker throws');
      if (mode === -2) return exit();
      if (mode === -3) Atomics.wait(ctrl, 0, seq);
      const job = ctrl[2];
      const head = new Int32Array(d.memory.buffer, job, 2);
      const units = head[1];
      const starts = new Int32Array(d.memory.buffer, job + 8, units + 1);
      const r = new Int32Array(d.memory.buffer, job + 8 + (units + 1) * 4, starts[units] * ${REC});
      for (let u = Atomics.add(head, 0, 1); u < units; u = Atomics.add(head, 0, 1))
      {
        for (let t = starts[u]; t < starts[u + 1]; t++) {
          const o = t * ${REC};
          const k = r[o];
          const a = Array.from(r.subarray(o + 1, o + ${REC}));
          a[WORK[k]] = d.work;
          kernels[k](...a);
        }
        Atomics.add(ctrl, 4, 1);
      }
    } catch (e) {
      status = -seq;
    }
    Atomics.store(ctrl, 1, status);
    Atomics.notify(ctrl, 1);
  }
}
`;

const nodeWorkerSource = `${jobLoop}
const { workerData, parentPort } = require('node:worker_threads');
start(workerData, (m) => parentPort.postMessage(m), () => process.exit(3));
`;

// A classic (not module) worker: it imports nothing, so a Blob URL of it runs under any bundler.
const webWorkerSource = `${jobLoop}
self.onmessage = (ev) => {
  self.onmessage = null;
  start(ev.data, (m) => self.postMessage(m), () => self.close());
};
`;

interface PoolWorker {
  terminate(): unknown;
}

interface Pool {
  workers: PoolWorker[];
  ctrl: Int32Array;
  ctrlPtr: number;
  seq: number;
  timeoutMs: number;
  /** the calling thread sleeps in Atomics.wait (true) or busy-waits (false) for the workers */
  sleep: boolean;
  /** test hook: the next job of worker 1 throws (-1), exits (-2) or hangs (-3) */
  fault: number;
  /** ops that ran on the pool (for tests: proves the threaded path ran) */
  jobs: number;
  /** gives the control words back to the arena (once the workers are gone) */
  release: () => void;
}

let pool: Pool | null = null;
let unavailable: string | null = null;

/** Threads the CPU matmul uses (1 = no pool). */
export function cpuThreads(): number {
  return pool ? pool.workers.length + 1 : 1;
}

/**
 * Why the last `setCpuThreads(n > 1)` got one thread (or why the pool stopped since), or null when the
 * threads asked for are running. E.g. a page that is not cross-origin isolated has no shared memory.
 */
export function cpuThreadsUnavailableReason(): string | null {
  return unavailable;
}

export interface CpuThreadsOptions {
  /** how long an op waits for a worker before it counts as crashed or hung (default 30 s) */
  timeoutMs?: number;
  /**
   * How the calling thread waits for the workers inside an op. 'auto' (default) sleeps in Atomics.wait,
   * and where that is not allowed (a browser's main thread) runs on one thread instead. 'spin' busy-waits
   * on the shared control word: it lets the synchronous ops use workers on a browser's main thread, at the
   * cost of a core spinning while the workers finish.
   */
  wait?: 'auto' | 'spin';
}

type Env = { process?: { versions?: { node?: string } }; crossOriginIsolated?: boolean; Worker?: unknown };
const g = globalThis as Env;

/** Whether this thread may block in Atomics.wait (not on a browser's main thread). */
function canSleep(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (or stops, with 1) the worker pool: `n` threads in all, the calling one included. Node (worker_threads,
 * no flags) and browsers (Web Workers; the page must be cross-origin isolated — served with
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` — so that the
 * wasm memory can be shared). Where threads cannot run it falls back to one thread without an error; the
 * result is the number of threads now in use and `cpuThreadsUnavailableReason()` says why it is fewer.
 */
export async function setCpuThreads(n: number, opts: CpuThreadsOptions = {}): Promise<number> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS)
    throw new ValueError(`setCpuThreads: expected an integer in [1, ${MAX_THREADS}]; got ${n}`);
  const { timeoutMs = 30_000, wait = 'auto' } = opts;
  if (!(timeoutMs > 0)) throw new ValueError(`setCpuThreads: timeoutMs must be > 0; got ${timeoutMs}`);
  if (wait !== 'auto' && wait !== 'spin')
    throw new ValueError(`setCpuThreads: wait must be 'auto' or 'spin'; got ${String(wait)}`);
  // Calls that overlap (not awaited) run one after the other, so two pools never start side by side.
  const next = settled.then(async () => {
    await stopPool();
    unavailable = null;
    if (n === 1) return 1;
    const why = await startPool(n, timeoutMs, wait);
    if (why) unavailable = `setCpuThreads(${n}): ${why}; running on 1 thread`;
    return cpuThreads();
  });
  settled = next.catch(() => {});
  return next;
}

let settled: Promise<unknown> = Promise.resolve();

/** Starts the pool, or returns why it cannot run here. */
async function startPool(n: number, timeoutMs: number, wait: 'auto' | 'spin'): Promise<string | null> {
  const isNode = typeof g.process?.versions?.node === 'string';
  const e = wasm();
  if (!e) return "threads need the wasm path, and the CPU backend runs the TypeScript kernels (cpuPath() is 'ts')";
  if (!e.shared)
    return g.crossOriginIsolated === false
      ? 'the page is not cross-origin isolated, so the wasm memory cannot be shared: serve it with the headers ' +
          "'Cross-Origin-Opener-Policy: same-origin' and 'Cross-Origin-Embedder-Policy: require-corp' (or credentialless)"
      : 'the wasm memory is not shared (no SharedArrayBuffer here, or TESSERA_WASM_SHARED=0)';
  const sleep = wait === 'auto';
  if (sleep && !canSleep())
    return (
      "this thread may not block in Atomics.wait (a browser's main thread) and the tensor ops are synchronous: " +
      "run tessera inside a Web Worker, where threads work, or pass { wait: 'spin' } to busy-wait for the workers"
    );
  const ctrlPtr = Arena.of(e).alloc(MAX_THREADS * CTRL * 4);
  const ctrl = new Int32Array(e.memory.buffer, ctrlPtr, MAX_THREADS * CTRL);
  ctrl.fill(0);
  const release = () => Arena.of(e).release(ctrlPtr);
  const p: Pool = { workers: [], ctrl, ctrlPtr, seq: 0, timeoutMs, sleep, fault: 0, jobs: 0, release };
  // A worker's error or exit event. The ops are synchronous, so this runs between ops: one in flight has
  // already seen the failure (its timeout). The pool stops at once so that no later op waits for the dead
  // worker; those ops run on one thread.
  const died = (i: number, what: string) => {
    if (pool !== p) return;
    unavailable = `the CPU pool stopped: worker ${i} ${what}; running on 1 thread`;
    void stopPool();
  };
  try {
    for (let i = 1; i < n; i++) {
      const data = { module: e.module, memory: e.memory, ctrl: ctrlPtr, index: i, work: scratch(e, i) };
      const start = isNode ? nodeWorker(data, i, died) : webWorker(data, i, died);
      p.workers.push(await withinMs(start, timeoutMs, `worker ${i} did not start within ${timeoutMs} ms`));
    }
  } catch (err) {
    void Promise.all(p.workers.map((w) => Promise.resolve(w.terminate()).catch(() => {}))).then(release);
    return (err as Error).message;
  }
  pool = p;
  setGemmRunner(pooledGemm);
  setGemmxRunner(pooledGemmx);
  return null;
}

/** `work`, or a rejection after `ms` (a worker that never answers must not hang setCpuThreads). */
function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: number;
  index: number;
  /** this worker's gemm scratch */
  work: number;
}

interface NodeWorker {
  terminate(): Promise<number>;
  unref(): void;
  once(ev: 'message' | 'error' | 'exit', fn: (v: unknown) => void): void;
  on(ev: 'error' | 'exit', fn: (v: unknown) => void): void;
}

async function nodeWorker(data: WorkerData, i: number, died: (i: number, what: string) => void): Promise<PoolWorker> {
  // The specifier is a variable so that browser bundlers do not try to resolve a Node built-in.
  const spec = 'node:worker_threads';
  let wt: { Worker: new (src: string, o: object) => NodeWorker };
  try {
    wt = (await import(/* @vite-ignore */ spec)) as never;
  } catch {
    throw new Error('worker_threads is not available here');
  }
  const w = new wt.Worker(nodeWorkerSource, { eval: true, workerData: data });
  try {
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', (err) => reject(new Error(`worker ${i} failed to start: ${err}`)));
      w.once('exit', (code) => reject(new Error(`worker ${i} exited while starting (code ${code})`)));
    });
  } catch (err) {
    void w.terminate();
    throw err;
  }
  // A failure during an op is reported through the control words; the events must not crash the process.
  w.on('error', (err) => died(i, `failed: ${err}`));
  w.on('exit', (code) => died(i, `exited (code ${code})`));
  w.unref();
  return w;
}

interface WebWorker {
  terminate(): void;
  postMessage(m: unknown): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: { message?: string; preventDefault?: () => void }) => void) | null;
  onmessageerror: ((ev: unknown) => void) | null;
}

let blobUrl: string | undefined;

async function webWorker(data: WorkerData, i: number, died: (i: number, what: string) => void): Promise<PoolWorker> {
  const W = g.Worker as (new (url: string, o?: object) => WebWorker) | undefined;
  if (typeof W !== 'function') throw new Error('no Worker constructor here (neither Node nor a browser)');
  // One Blob URL for all workers, kept for the page's life: a later pool reuses it.
  blobUrl ??= URL.createObjectURL(new Blob([webWorkerSource], { type: 'text/javascript' }));
  let w: WebWorker;
  try {
    w = new W(blobUrl, { name: `tessera-cpu-${i}` });
  } catch (err) {
    // A Content-Security-Policy without `worker-src blob:` refuses the worker.
    throw new Error(`worker ${i} could not be created (${(err as Error).message}); a CSP must allow worker-src blob:`);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (ev) => {
        ev.preventDefault?.();
        reject(new Error(`worker ${i} failed to start: ${ev.message ?? 'error event (blocked by a CSP?)'}`));
      };
      w.onmessageerror = () => reject(new Error(`worker ${i} could not receive the wasm module and memory`));
      // Throws a DataCloneError where the memory cannot be shared with a worker.
      w.postMessage(data);
    });
  } catch (err) {
    w.terminate();
    throw err;
  }
  w.onmessage = null;
  w.onerror = (ev) => {
    ev.preventDefault?.();
    died(i, `failed: ${ev.message ?? 'error event'}`);
  };
  return w;
}

async function stopPool(): Promise<void> {
  const p = pool;
  if (!p) return;
  pool = null;
  setGemmRunner(null);
  setGemmxRunner(null);
  for (let i = 1; i <= p.workers.length; i++) {
    Atomics.store(p.ctrl, i * CTRL, -1);
    Atomics.notify(p.ctrl, i * CTRL);
  }
  await Promise.all(p.workers.map((w) => Promise.resolve(w.terminate()).catch(() => {})));
  p.release();
}

/**
 * Test hook: makes worker 1's next job throw, exit or hang; 'die' makes it exit now, between ops (Node: the
 * exit event stops the pool).
 */
export function injectWorkerFault(kind: 'throw' | 'exit' | 'hang' | 'die', timeoutMs?: number): void {
  const p = pool;
  if (!p) throw new ValueError('injectWorkerFault: no pool');
  if (timeoutMs !== undefined) p.timeoutMs = timeoutMs;
  if (kind === 'die') {
    p.ctrl[CTRL + 3] = -2;
    Atomics.store(p.ctrl, CTRL, ++p.seq);
    Atomics.notify(p.ctrl, CTRL);
    return;
  }
  p.fault = kind === 'throw' ? -1 : kind === 'exit' ? -2 : -3;
}

/** Test hook: the size (FLOPs) from which ops go to the pool; 0 sends every wasm matmul and conv there. */
export function setPoolMinFlops(flops = 1 << 22): void {
  MIN_FLOPS = flops;
}

/** Test hook: how many ops the running pool has split (0 without a pool). */
export function cpuPoolJobs(): number {
  return pool?.jobs ?? 0;
}

/** Test hook: how many units of those ops the workers (not the calling thread) have run. */
export function cpuPoolWorkerUnits(): number {
  const p = pool;
  if (!p) return 0;
  let n = 0;
  for (let w = 1; w <= p.workers.length; w++) n += Atomics.load(p.ctrl, w * CTRL + 4);
  return n;
}

/** Waits until ctrl[c] leaves `v` or `left` ms pass: asleep where allowed, else busy. */
function waitWord(p: Pool, c: number, v: number, left: number): void {
  if (p.sleep) {
    Atomics.wait(p.ctrl, c, v, left);
    return;
  }
  const end = performance.now() + left;
  while (Atomics.load(p.ctrl, c) === v && performance.now() < end) {
    // busy-wait: the caller chose { wait: 'spin' } (a browser's main thread may not sleep)
  }
}

/**
 * How the calls of one op may be shared out. 'rows': units are blocks of rows, each running every call in
 * order (calls that accumulate into the same output, e.g. a weight gradient summed over images). 'calls':
 * units are whole calls (calls whose rows overlap in their output, e.g. col2im's scatter, but whose outputs
 * are disjoint). 'any': whole calls when there are at least as many as threads, else row blocks.
 */
export type RowSplit = 'rows' | 'calls' | 'any';

/**
 * Runs calls of a row kernel (`args` as the export takes them, with i0 = 0, i1 = rows, and any `work`:
 * each thread uses its own scratch) on the pool when one runs and the op has at least MIN_FLOPS (4 M), else
 * in order on this thread. Each output element is computed by one unit, in the serial order, so the result
 * does not depend on the thread count or on which thread took which unit. Throws WorkerError when a worker
 * throws, dies or hangs.
 */
export function runRowKernel(
  e: NonNullable<ReturnType<typeof wasm>>,
  kernel: RowKernel,
  calls: readonly number[][],
  split: RowSplit,
  flops: number,
): void {
  const K = KERNELS[kernel];
  const fn = exported(e, kernel);
  const p = pool;
  const T = p ? p.workers.length + 1 : 1;
  const serial = () => {
    const work = scratch(e, 0);
    for (const c of calls) {
      const a = c.slice();
      a[K.work] = work;
      fn(...a);
    }
  };
  if (!p || flops < MIN_FLOPS || (split === 'calls' && calls.length < 2)) {
    serial();
    return;
  }
  // Units: whole calls, or row blocks (each running every call, in order, on its rows). Up to four units per
  // thread, so that a thread on a busy core hands work over, but of at least 128 rows: each unit packs B
  // again, and on matmul 1024² 64-row units cost about 10 % more CPU than one block, 128-row ones within noise.
  const units: number[][][] = [];
  const rec = (c: readonly number[], i0?: number, i1?: number) => {
    const r = new Array<number>(REC).fill(0);
    r[0] = K.id;
    for (let j = 0; j < c.length; j++) r[j + 1] = c[j]!;
    if (i0 !== undefined) {
      r[K.i0 + 1] = i0;
      r[K.i0 + 2] = i1!;
    }
    return r;
  };
  if (split === 'calls' || (split === 'any' && calls.length >= T)) for (const c of calls) units.push([rec(c)]);
  else {
    const m = Math.max(...calls.map((c) => c[K.i0 + 1]!));
    // Row blocks in multiples of 4, the micro-kernel's row blocks, so each unit packs the same blocks of A.
    const most = Math.ceil(m / T / 4) * 4;
    const rows = Math.min(most, Math.max(128, Math.ceil(m / (4 * T) / 4) * 4));
    for (let i0 = 0; i0 < m; i0 += rows) {
      const unit: number[][] = [];
      for (const c of calls) {
        const i1 = Math.min(c[K.i0 + 1]!, i0 + rows);
        if (i0 < i1) unit.push(rec(c, i0, i1));
      }
      units.push(unit);
    }
  }
  // One unit (a small op in few rows): no worker would get any of it.
  if (units.length < 2) {
    serial();
    return;
  }
  p.jobs++;
  dispatch(e, p, units, kernel);
}

function exported(e: NonNullable<ReturnType<typeof wasm>>, kernel: RowKernel): (...args: number[]) => void {
  const fn = (e.x as unknown as Record<string, ((...args: number[]) => void) | undefined>)[kernel];
  if (!fn) throw new TesseraError(`the wasm kernels have no '${kernel}' export`);
  return fn;
}

const pooledGemm: GemmRunner = (e, s, tasks) =>
  runRowKernel(
    e,
    'gemm',
    tasks.map((t) => [t.a, s.ars, s.acs, t.b, s.brs, s.bcs, t.c, s.n, 0, s.m, s.n, s.k, 0]),
    'any',
    2 * s.m * s.n * s.k * tasks.length,
  );

const pooledGemmx: GemmxRunner = (e, calls, split, flops) => runRowKernel(e, 'gemmx', calls, split, flops);

/** Posts the units as one job, wakes the workers, takes units here too, and waits for the workers. */
function dispatch(e: NonNullable<ReturnType<typeof wasm>>, p: Pool, units: number[][][], kernel: RowKernel): void {
  const arena = Arena.of(e);
  const n = units.length;
  const nrec = units.reduce((t, u) => t + u.length, 0);
  // The job: [next unit, units, unit starts (n + 1), records].
  const words = 2 + n + 1 + nrec * REC;
  const job = arena.alloc(words * 4);
  const v = new Int32Array(e.memory.buffer, job, words);
  v[0] = 0;
  v[1] = n;
  let at = 0;
  let o = 2 + n + 1;
  for (let u = 0; u < n; u++) {
    v[2 + u] = at;
    for (const r of units[u]!) {
      v.set(r, o);
      o += REC;
    }
    at += units[u]!.length;
  }
  v[2 + n] = at;
  const seq = ++p.seq;
  const started: number[] = [];
  const failed: string[] = [];
  try {
    for (let w = 1; w <= p.workers.length; w++) {
      const c = w * CTRL;
      p.ctrl[c + 2] = job;
      p.ctrl[c + 3] = w === 1 && p.fault ? p.fault : 1;
      if (w === 1) p.fault = 0;
      Atomics.store(p.ctrl, c, seq);
      Atomics.notify(p.ctrl, c);
      started.push(w);
    }
    const fn = exported(e, kernel);
    const work = scratch(e, 0);
    const K = KERNELS[kernel];
    const head = new Int32Array(e.memory.buffer, job, 2);
    for (let u = Atomics.add(head, 0, 1); u < n; u = Atomics.add(head, 0, 1))
      for (const r of units[u]!) {
        const a = r.slice(1);
        a[K.work] = work;
        fn(...a);
      }
  } finally {
    // Always wait for the started workers before the job and the outputs go back to the arena.
    const deadline = performance.now() + p.timeoutMs;
    for (const w of started) {
      const c = w * CTRL + 1;
      for (;;) {
        const v = Atomics.load(p.ctrl, c);
        if (v === seq || v === -seq) {
          if (v === -seq) failed.push(`worker ${w} threw`);
          break;
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          failed.push(`worker ${w} did not finish within ${p.timeoutMs} ms (crashed or hung)`);
          break;
        }
        waitWord(p, c, v, left);
      }
    }
    // A failed pool cannot be trusted any more: stop it and leak this op's job (a hung worker may still
    // read it). Later ops run on one thread.
    if (failed.length) {
      unavailable = `the CPU pool stopped: ${failed.join('; ')}; running on 1 thread`;
      void stopPool();
    } else arena.release(job);
  }
  if (failed.length)
    throw new WorkerError(`${kernel}: ${failed.join('; ')}; the CPU pool is stopped, ops continue on 1 thread`);
}
