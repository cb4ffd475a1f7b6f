// The worker pool of the CPU backend: results identical to one thread (rows and batches split, units taken
// by whichever thread is free), small ops stay on the calling thread, and a worker that throws, exits or hangs fails the op with a typed
// error instead of a deadlock, after which the backend keeps working on one thread. The same for the
// busy-wait mode a browser's main thread needs ({ wait: 'spin' }); where threads cannot run,
// setCpuThreads falls back to one thread and says why. (test/browser/threads.browser.test.ts runs the
// Web Worker pool in Chromium.)
import { afterAll, describe, expect, test } from 'vitest';
import {
  cpuPoolJobs,
  cpuPoolWorkerUnits,
  cpuThreads,
  cpuThreadsUnavailableReason,
  injectWorkerFault,
  runRowKernel,
  setCpuThreads,
  WorkerError,
} from '../src/backends/cpu/pool.js';
import { Arena, setCpuPath, wasm } from '../src/backends/cpu/wasm.js';
import { F, manualSeed, randn, type Tensor, tensor, tidy } from '../src/index.js';

afterAll(() => setCpuThreads(1));

const run = (f: () => Tensor) => tidy(() => Float32Array.from(f().dataSync()));

/**
 * Runs `f` until a worker (not the calling thread) has taken a unit of it, at most 50 times, checking each
 * result against `want`: on a loaded machine the caller may finish an op before a worker wakes.
 */
function untilWorkersTakePart(f: () => unknown, want: unknown): void {
  const u0 = cpuPoolWorkerUnits();
  for (let i = 0; i < 50 && cpuPoolWorkerUnits() === u0; i++) expect(f()).toEqual(want);
  expect(cpuPoolWorkerUnits(), 'a worker took part').toBeGreaterThan(u0);
}

describe('CPU worker pool', () => {
  test('2 (and 3) threads give bit-identical results to 1 thread (rows split, batches split, transposed B)', async () => {
    manualSeed(11);
    const a = randn([131, 201]);
    const b = randn([201, 97]);
    const q = randn([6, 130, 40]);
    const k = randn([6, 130, 40]);
    const ops = [() => a.matmul(b), () => q.matmul(k.transpose(-2, -1)), () => a.transpose(0, 1).matmul(a)];
    await setCpuThreads(1);
    const one = ops.map(run);
    await setCpuThreads(2);
    expect(cpuThreads()).toBe(2);
    for (let i = 0; i < ops.length; i++) untilWorkersTakePart(() => run(ops[i]!), one[i]!);
    // 3 threads on this 2-core machine: oversubscribed, but still the same bits.
    await setCpuThreads(3);
    untilWorkersTakePart(() => run(ops[0]!), one[0]!);
  }, 30_000);

  test('a worker that throws fails the op with WorkerError; the backend continues on one thread', async () => {
    manualSeed(12);
    const a = randn([256, 256]);
    const want = run(() => a.matmul(a));
    await setCpuThreads(2);
    injectWorkerFault('throw');
    expect(() => tidy(() => a.matmul(a))).toThrow(WorkerError);
    expect(cpuThreads()).toBe(1);
    expect(run(() => a.matmul(a))).toEqual(want);
  }, 30_000);

  test('a worker that exits or hangs is caught by the timeout, not a deadlock', async () => {
    manualSeed(13);
    const a = randn([256, 256]);
    for (const kind of ['exit', 'hang'] as const) {
      await setCpuThreads(2);
      injectWorkerFault(kind, 300);
      const t0 = performance.now();
      expect(() => tidy(() => a.matmul(a))).toThrow(/did not finish/);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(cpuThreads()).toBe(1);
    }
  }, 30_000);

  test('a worker that dies between ops stops the pool: later ops run on one thread (no wait, no error), the reason is kept', async () => {
    manualSeed(16);
    const a = randn([256, 256]);
    const want = run(() => a.matmul(a));
    await setCpuThreads(2);
    injectWorkerFault('die');
    // Node reports the exit as an event: let the event loop turn until it has.
    for (let i = 0; i < 250 && !cpuThreadsUnavailableReason(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(cpuThreadsUnavailableReason()).toMatch(/worker 1 exited/);
    expect(cpuThreads()).toBe(1);
    const t0 = performance.now();
    expect(run(() => a.matmul(a))).toEqual(want);
    expect(performance.now() - t0).toBeLessThan(5000); // not the 30 s timeout of a wait for the dead worker
  }, 30_000);

  test('a fixed thread count is deterministic: matmul, convs and their gradients bit-identical to 1 thread and run to run, each split on the pool', async () => {
    manualSeed(14);
    const a = randn([300, 170]);
    const b = randn([170, 260]);
    const x = randn([4, 32, 512]);
    const w1 = randn([32, 32, 5]);
    const img = randn([2, 16, 32, 32]);
    const w2 = randn([16, 16, 3, 3]);
    // Forward, input gradient (the pool takes whole images: col2im's rows overlap) and weight gradient
    // (the pool splits rows: the images accumulate into it) of one convolution.
    const grads = (f: typeof F.conv1d, xv: Tensor, wv: Tensor, opts: Parameters<typeof F.conv1d>[2]) => () =>
      tidy(() => {
        const xx = tensor(xv.dataSync()).reshape(xv.shape).requiresGrad_();
        const ww = tensor(wv.dataSync()).reshape(wv.shape).requiresGrad_();
        const y = f(xx, ww, opts);
        y.mul(y.detach().cos()).sum().backward();
        return [y, xx.grad!, ww.grad!].map((t) => Float32Array.from(t.dataSync()));
      });
    const ops: Record<string, () => Float32Array[]> = {
      matmul: () => [run(() => a.matmul(b))],
      conv1d: grads(F.conv1d, x, w1, { padding: 'same' }),
      conv2d: grads(F.conv2d, img, w2, { padding: 1 }),
    };
    const all = () => Object.values(ops).map((f) => f());
    await setCpuThreads(1);
    const one = all();
    expect(await setCpuThreads(2)).toBe(2);
    expect(cpuThreadsUnavailableReason()).toBeNull();
    for (const [name, f] of Object.entries(ops)) {
      const j0 = cpuPoolJobs();
      f();
      // matmul: 1 split; a convolution: at least forward, input and weight gradient.
      expect(cpuPoolJobs() - j0, `${name} split on the pool`).toBeGreaterThanOrEqual(name === 'matmul' ? 1 : 3);
    }
    const first = all();
    expect(all()).toEqual(first);
    expect(first).toEqual(one);
    for (const [i, f] of Object.values(ops).entries()) untilWorkersTakePart(f, one[i]);
  }, 30_000);

  test("{ wait: 'spin' } (a browser main thread's mode): same bits, and a hung worker still times out", async () => {
    manualSeed(15);
    const a = randn([256, 256]);
    const want = run(() => a.matmul(a));
    expect(await setCpuThreads(2, { wait: 'spin' })).toBe(2);
    expect(run(() => a.matmul(a))).toEqual(want);
    expect(cpuPoolJobs()).toBe(1);
    injectWorkerFault('hang', 300);
    expect(() => tidy(() => a.matmul(a))).toThrow(WorkerError);
    expect(cpuThreads()).toBe(1);
    expect(cpuThreadsUnavailableReason()).toMatch(/did not finish/);
    expect(run(() => a.matmul(a))).toEqual(want);
  }, 30_000);

  test("runRowKernel: 'rows' and 'calls' splits of gemm calls equal the serial calls bit for bit", async () => {
    const e = wasm()!;
    const [m, k, n, calls] = [72, 96, 112, 3]; // 4.6 MFLOP: above the pool's threshold
    const arena = Arena.of(e);
    const a = arena.alloc(calls * m * k * 4);
    const b = arena.alloc(k * n * 4);
    const c = arena.alloc(calls * m * n * 4);
    const f32 = () => new Float32Array(e.memory.buffer);
    for (let i = 0; i < calls * m * k; i++) f32()[(a >> 2) + i] = Math.sin(i * 0.37);
    for (let i = 0; i < k * n; i++) f32()[(b >> 2) + i] = Math.cos(i * 0.11);
    const args = Array.from({ length: calls }, (_, t) => [
      a + t * m * k * 4,
      k,
      1,
      b,
      n,
      1,
      c + t * m * n * 4,
      n,
      0,
      m,
      n,
      k,
      0,
    ]);
    const out = () => f32().slice(c >> 2, (c >> 2) + calls * m * n);
    const flops = 2 * m * n * k * calls;
    await setCpuThreads(1);
    runRowKernel(e, 'gemm', args, 'any', flops);
    const want = out();
    await setCpuThreads(2);
    for (const split of ['rows', 'calls', 'any'] as const) {
      f32().fill(Number.NaN, c >> 2, (c >> 2) + calls * m * n);
      const j0 = cpuPoolJobs();
      runRowKernel(e, 'gemm', args, split, flops);
      expect(cpuPoolJobs(), split).toBe(j0 + 1);
      expect(out(), split).toEqual(want);
    }
    for (const p of [a, b, c]) arena.release(p);
  }, 30_000);

  test('no wasm path: setCpuThreads falls back to 1 thread without an error and says why', async () => {
    setCpuPath('ts');
    try {
      expect(await setCpuThreads(2)).toBe(1);
      expect(cpuThreadsUnavailableReason()).toMatch(/TypeScript kernels/);
    } finally {
      setCpuPath('auto');
    }
  });

  test('the README example runs as written', async () => {
    const n = await setCpuThreads(2); // threads now in use, the calling one included
    if (n < 2) console.warn(cpuThreadsUnavailableReason());
    expect(n).toBe(2); // Node with shared memory: nothing stands in the way
    await setCpuThreads(1);
  });

  test('overlapping setCpuThreads calls run in turn: the last one wins, no second pool', async () => {
    const [x, y] = await Promise.all([setCpuThreads(2), setCpuThreads(3)]);
    expect([x, y, cpuThreads()]).toEqual([2, 3, 3]);
    await setCpuThreads(1);
  }, 30_000);

  test('bad thread counts are rejected', async () => {
    await expect(setCpuThreads(0)).rejects.toThrow(/integer/);
    await expect(setCpuThreads(1.5)).rejects.toThrow(/integer/);
    await expect(setCpuThreads(2, { wait: 'sleep' as never })).rejects.toThrow(/wait/);
    await expect(setCpuThreads(2, { timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
  });
});
