// The CPU worker pool as a browser sees it, written once and run in two places of one page
// (threads.browser.test.ts): inside a dedicated Web Worker, where the calling thread may sleep in
// Atomics.wait, and on the page's main thread, which may only busy-wait ({ wait: 'spin' }). Threaded
// matmuls and convolutions must equal the 1-thread path bit for bit, run to run, and match float64 dot
// products; a worker that throws or hangs must fail the op with a WorkerError. It takes the library as
// an argument, so the browser build needs no bundler.
import type * as Pool from '../../src/backends/cpu/pool.js';
import type * as TC from '../../src/index.js';

export interface ThreadsReport {
  isolated: boolean;
  path: string;
  /** threads setCpuThreads(2, opts) gave, and the reason when fewer */
  threads: number;
  reason: string | null;
  /** per op: how many times the pool split it in one run (0: the threaded path never ran) */
  jobs: Record<string, number>;
  /** whether a pool worker (not the calling thread) took a unit of the matmul within 50 tries, all equal */
  workersTookPart: boolean;
  /** per op: 2 threads equal 1 thread bit for bit, and a second 2-thread run equals the first */
  sameAsOneThread: Record<string, boolean>;
  repeatable: Record<string, boolean>;
  /** largest |matmul − float64| / (1 + |ref|) at sampled points, on 2 threads */
  matmulError: number;
  /** what a throwing and a hanging worker did to the op: the error's class name and message */
  faults: { kind: string; error: string; message: string; threadsAfter: number }[];
  /** the backend after the faults: a matmul on one thread still equals the 1-thread answer */
  recovered: boolean;
}

export async function threadsWorkload(
  T: typeof TC,
  P: typeof Pool,
  opts: Pool.CpuThreadsOptions,
): Promise<ThreadsReport> {
  T.manualSeed(3);
  const a = T.randn([300, 170]);
  const b = T.randn([170, 260]);
  const q = T.randn([8, 128, 64]);
  const x = T.randn([4, 32, 512]);
  const w1 = T.randn([32, 32, 5]);
  const img = T.randn([2, 16, 32, 32]);
  const w2 = T.randn([16, 16, 3, 3]);
  // Every op is above the pool's 4 MFLOP threshold; the convolution's gradients go through the pool too
  // (input gradient: whole images per thread; weight gradient: rows, the images summed in order).
  const values = (f: () => TC.Tensor) => () => T.tidy(() => Float32Array.from(f().dataSync()));
  const ops: Record<string, () => Float32Array> = {
    matmul: values(() => a.matmul(b)),
    'batched q·qᵀ': values(() => q.matmul(q.transpose(-2, -1))),
    conv1d: values(() => T.F.conv1d(x, w1, { padding: 'same' })),
    conv2d: values(() => T.F.conv2d(img, w2, { padding: 1 })),
    'conv2d gradients': () =>
      T.tidy(() => {
        const xx = T.tensor(img.dataSync()).reshape(img.shape).requiresGrad_();
        const ww = T.tensor(w2.dataSync()).reshape(w2.shape).requiresGrad_();
        const y = T.F.conv2d(xx, ww, { padding: 1 });
        y.mul(y.detach().cos()).sum().backward();
        const dx = xx.grad!.dataSync();
        const dw = ww.grad!.dataSync();
        const out = new Float32Array(dx.length + dw.length);
        out.set(dx);
        out.set(dw, dx.length);
        return out;
      }),
  };
  const jobs: Record<string, number> = {};
  const runAll = () => {
    const out: Record<string, Float32Array> = {};
    for (const [name, f] of Object.entries(ops)) {
      const j0 = P.cpuPoolJobs();
      out[name] = f();
      jobs[name] = P.cpuPoolJobs() - j0;
    }
    return out;
  };
  const same = (u: Float32Array, v: Float32Array) => u.length === v.length && u.every((z, i) => Object.is(z, v[i]));

  await P.setCpuThreads(1);
  const one = runAll();
  const threads = await P.setCpuThreads(2, opts);
  const reason = P.cpuThreadsUnavailableReason();
  const two = runAll();
  const again = runAll();
  const sameAsOneThread: Record<string, boolean> = {};
  const repeatable: Record<string, boolean> = {};
  for (const name of Object.keys(ops)) {
    sameAsOneThread[name] = same(two[name]!, one[name]!);
    repeatable[name] = same(again[name]!, two[name]!);
  }

  // On a loaded machine the calling thread may finish an op before a worker wakes: retry until one took part.
  const u0 = P.cpuPoolWorkerUnits();
  let workersTookPart = true;
  for (let i = 0; i < 50 && P.cpuPoolWorkerUnits() === u0; i++) workersTookPart &&= same(ops.matmul!(), one.matmul!);
  workersTookPart &&= P.cpuPoolWorkerUnits() > u0;

  const A = a.dataSync();
  const B = b.dataSync();
  let matmulError = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 97) % 300;
    const j = (s * 31) % 260;
    let ref = 0;
    for (let p = 0; p < 170; p++) ref += A[i * 170 + p]! * B[p * 260 + j]!;
    matmulError = Math.max(matmulError, Math.abs(two.matmul![i * 260 + j]! - ref) / (1 + Math.abs(ref)));
  }

  const faults: ThreadsReport['faults'] = [];
  if (threads === 2)
    for (const kind of ['throw', 'hang'] as const) {
      await P.setCpuThreads(2, opts);
      P.injectWorkerFault(kind, 500);
      let error = 'none';
      let message = '';
      try {
        T.tidy(() => a.matmul(b).dataSync());
      } catch (e) {
        error = e instanceof P.WorkerError ? 'WorkerError' : String((e as Error)?.name);
        message = String((e as Error)?.message);
      }
      faults.push({ kind, error, message, threadsAfter: P.cpuThreads() });
    }
  const recovered = same(
    T.tidy(() => Float32Array.from(a.matmul(b).dataSync())),
    one.matmul!,
  );
  await P.setCpuThreads(1);
  return {
    isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    path: T.cpuPath(),
    threads,
    reason,
    jobs,
    workersTookPart,
    sameAsOneThread,
    repeatable,
    matmulError,
    faults,
    recovered,
  };
}
