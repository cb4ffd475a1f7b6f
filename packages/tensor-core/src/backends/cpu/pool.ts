// A worker_threads pool over the shared wasm memory that splits large matmuls: batches across threads
// when there are enough of them, else each product's rows (in multiples of 4). Each worker instantiates
// the same module on the same memory, sleeps in Atomics.wait on its control word and is woken by
// Atomics.notify, so nothing spins. Each element of C is computed by one thread in the same order as the
// serial kernel, so results do not depend on the thread count. Small ops (< MIN_FLOPS) stay on the
// calling thread. A worker that throws marks its job failed; one that dies or hangs is found by a
// timeout; either way the op throws a WorkerError and the backend goes back to one thread.
import { TesseraError, ValueError } from '../../errors.js';
import { Arena, type GemmRunner, MAX_THREADS, scratch, serialGemm, setGemmRunner, wasm } from './wasm.js';

/** A worker of the CPU pool failed or stopped answering; the op did not complete. */
export class WorkerError extends TesseraError {}

const MIN_FLOPS = 1 << 22;
const REC = 13; // i32 words per gemm record: a ars acs b brs bcs c ldc i0 i1 n k work
// Control words per worker: 0 job sequence (or -1: stop), 1 done sequence (negative: failed), 2 records, 3 count.
const CTRL = 4;

const workerSource = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, ctrl: at, index } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const gemm = inst.exports.gemm;
const ctrl = new Int32Array(memory.buffer, at + index * ${CTRL * 4}, ${CTRL});
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const seq = Atomics.load(ctrl, 0);
  if (seq < 0) break;
  seen = seq;
  let status = seq;
  try {
    const count = ctrl[3];
    if (count === -1) throw new Error('test: worker throws');
    if (count === -2) process.exit(3);
    if (count === -3) Atomics.wait(ctrl, 0, seq);
    const r = new Int32Array(memory.buffer, ctrl[2], count * ${REC});
    for (let t = 0; t < count; t++) {
      const o = t * ${REC};
      gemm(r[o], r[o + 1], r[o + 2], r[o + 3], r[o + 4], r[o + 5], r[o + 6], r[o + 7], r[o + 8], r[o + 9], r[o + 10], r[o + 11], r[o + 12]);
    }
  } catch (e) {
    status = -seq;
  }
  Atomics.store(ctrl, 1, status);
  Atomics.notify(ctrl, 1);
}
`;

interface NodeWorker {
  terminate(): Promise<number>;
  unref(): void;
  once(ev: 'message' | 'error' | 'exit', fn: (v: unknown) => void): void;
  on(ev: 'error', fn: (v: unknown) => void): void;
}

interface Pool {
  workers: NodeWorker[];
  ctrl: Int32Array;
  ctrlPtr: number;
  seq: number;
  timeoutMs: number;
  /** test hook: the next job of worker 1 throws (-1), exits (-2) or hangs (-3) */
  fault: number;
}

let pool: Pool | null = null;

/** Threads the CPU matmul uses (1 = no pool). */
export function cpuThreads(): number {
  return pool ? pool.workers.length + 1 : 1;
}

/**
 * Starts (or stops, with 1) the worker pool: `n` threads in all, the calling one included. Node only
 * (worker_threads; no flags needed), and only where the wasm memory is shared.
 */
export async function setCpuThreads(n: number, opts: { timeoutMs?: number } = {}): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS)
    throw new ValueError(`setCpuThreads: expected an integer in [1, ${MAX_THREADS}]; got ${n}`);
  await stopPool();
  if (n === 1) return;
  const e = wasm();
  if (!e?.shared)
    throw new ValueError('setCpuThreads: threads need the wasm path with shared memory (SharedArrayBuffer)');
  let wt: { Worker: new (src: string, o: object) => NodeWorker };
  try {
    wt = (await import('node:worker_threads')) as never;
  } catch {
    throw new ValueError('setCpuThreads: worker_threads is not available here (Node only for now)');
  }
  const ctrlPtr = Arena.of(e).alloc(MAX_THREADS * CTRL * 4);
  const ctrl = new Int32Array(e.memory.buffer, ctrlPtr, MAX_THREADS * CTRL);
  ctrl.fill(0);
  const workers: NodeWorker[] = [];
  for (let i = 1; i < n; i++) {
    const w = new wt.Worker(workerSource, {
      eval: true,
      workerData: { module: e.module, memory: e.memory, ctrl: ctrlPtr, index: i },
    });
    workers.push(w);
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', (err) => reject(new WorkerError(`setCpuThreads: worker ${i} failed to start: ${err}`)));
    });
    // A failure is reported through the control words; the event must not crash the process.
    w.on('error', () => {});
    w.unref();
  }
  pool = { workers, ctrl, ctrlPtr, seq: 0, timeoutMs: opts.timeoutMs ?? 30_000, fault: 0 };
  setGemmRunner(pooledGemm);
}

async function stopPool(): Promise<void> {
  const p = pool;
  if (!p) return;
  pool = null;
  setGemmRunner(null);
  for (let i = 1; i <= p.workers.length; i++) {
    Atomics.store(p.ctrl, i * CTRL, -1);
    Atomics.notify(p.ctrl, i * CTRL);
  }
  await Promise.all(p.workers.map((w) => w.terminate()));
}

/** Test hook: makes worker 1's next job throw, exit or hang. */
export function injectWorkerFault(kind: 'throw' | 'exit' | 'hang', timeoutMs?: number): void {
  if (!pool) throw new ValueError('injectWorkerFault: no pool');
  pool.fault = kind === 'throw' ? -1 : kind === 'exit' ? -2 : -3;
  if (timeoutMs !== undefined) pool.timeoutMs = timeoutMs;
}

const pooledGemm: GemmRunner = (e, s, tasks) => {
  const p = pool;
  const T = p ? p.workers.length + 1 : 1;
  if (!p || 2 * s.m * s.n * s.k * tasks.length < MIN_FLOPS) return serialGemm(e, s, tasks);
  // Shares: records [thread][...]
  const shares: number[][][] = Array.from({ length: T }, () => []);
  const rec = (t: { a: number; b: number; c: number }, i0: number, i1: number, th: number) =>
    shares[th]!.push([t.a, s.ars, s.acs, t.b, s.brs, s.bcs, t.c, s.n, i0, i1, s.n, s.k, scratch(e, th)]);
  if (tasks.length >= T) {
    const per = Math.ceil(tasks.length / T);
    for (let j = 0; j < tasks.length; j++) rec(tasks[j]!, 0, s.m, Math.floor(j / per));
  } else {
    const rows = Math.ceil(s.m / T / 4) * 4;
    for (const t of tasks)
      for (let th = 0; th < T; th++) {
        const i0 = th * rows;
        const i1 = Math.min(s.m, i0 + rows);
        if (i0 < i1) rec(t, i0, i1, th);
      }
  }
  const arena = Arena.of(e);
  const blocks: number[] = [];
  const seq = ++p.seq;
  const started: number[] = [];
  const failed: string[] = [];
  try {
    for (let w = 1; w < T; w++) {
      const recs = shares[w]!;
      if (recs.length === 0) continue;
      const at = arena.alloc(recs.length * REC * 4);
      blocks.push(at);
      new Int32Array(e.memory.buffer, at, recs.length * REC).set(recs.flat());
      const c = w * CTRL;
      p.ctrl[c + 2] = at;
      p.ctrl[c + 3] = w === 1 && p.fault ? p.fault : recs.length;
      if (w === 1) p.fault = 0;
      Atomics.store(p.ctrl, c, seq);
      Atomics.notify(p.ctrl, c);
      started.push(w);
    }
    for (const r of shares[0]!)
      e.x.gemm(r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!, r[7]!, r[8]!, r[9]!, r[10]!, r[11]!, r[12]!);
  } finally {
    // Always wait for the started workers before the records and C go back to the arena.
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
        Atomics.wait(p.ctrl, c, v, left);
      }
    }
    // A failed pool cannot be trusted any more: stop it and leak this op's records (a hung worker may
    // still read them). Later ops run on one thread.
    if (failed.length) void stopPool();
    else for (const b of blocks) arena.release(b);
  }
  if (failed.length)
    throw new WorkerError(`matmul: ${failed.join('; ')}; the CPU pool is stopped, ops continue on 1 thread`);
};
