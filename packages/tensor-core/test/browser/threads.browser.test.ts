// The CPU worker pool in a real browser: headless Chromium loads the package (compiled by tsc, no bundler)
// from a page served with COOP/COEP headers, so it is cross-origin isolated and the wasm memory is shared.
// threads-workload.ts runs twice there: in a dedicated Web Worker (the recommended place for tessera in a
// browser: the calling thread sleeps in Atomics.wait) and on the main thread with { wait: 'spin' }. Both
// must give threaded matmuls and convolutions bit-identical to the 1-thread path and to themselves run to
// run, and turn a throwing or hanging worker into a WorkerError. The main thread's default refuses threads
// (it may not block) and says why; a page without the headers falls back to one thread and says why.
import { afterAll, expect, test } from 'vitest';
import { buildPage, chromiumMissing, ISOLATION_HEADERS, launchChromium, serve } from './page.js';
import type { ThreadsReport } from './threads-workload.js';

const skip = chromiumMissing('threads browser test');

const IMPORTS = `
  import * as T from './src/index.js';
  import * as P from './src/backends/cpu/pool.js';
  import { threadsWorkload } from './test/browser/threads-workload.js';`;

const INDEX = `<!doctype html>
<meta charset="utf-8">
<title>tensor-core CPU threads</title>
<script type="module">${IMPORTS}
  try {
    const autoThreads = await P.setCpuThreads(2);
    const autoReason = P.cpuThreadsUnavailableReason();
    await P.setCpuThreads(1);
    const worker = await new Promise((resolve) => {
      const w = new Worker('./threads-worker.js', { type: 'module' });
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => resolve({ error: 'worker: ' + e.message });
    });
    const main = await threadsWorkload(T, P, { wait: 'spin' });
    window.done = { autoThreads, autoReason, worker, main };
  } catch (e) {
    window.done = { error: String(e && e.stack || e) };
  }
</script>`;

const WORKER = `${IMPORTS}
try {
  self.postMessage(await threadsWorkload(T, P, {}));
} catch (e) {
  self.postMessage({ error: String(e && e.stack || e) });
}`;

// Served without COOP/COEP: no SharedArrayBuffer, so a private wasm memory and no pool.
const PLAIN = `<!doctype html>
<meta charset="utf-8">
<script type="module">${IMPORTS}
  try {
    const threads = await P.setCpuThreads(2);
    T.manualSeed(4);
    const a = T.randn([96, 80]);
    const b = T.randn([80, 72]);
    const c = a.matmul(b).dataSync();
    const A = a.dataSync(), B = b.dataSync();
    let err = 0;
    for (let i = 0; i < 96; i += 7)
      for (let j = 0; j < 72; j += 5) {
        let s = 0;
        for (let p = 0; p < 80; p++) s += A[i * 80 + p] * B[p * 72 + j];
        err = Math.max(err, Math.abs(c[i * 72 + j] - s) / (1 + Math.abs(s)));
      }
    window.done = { isolated: crossOriginIsolated, threads, reason: P.cpuThreadsUnavailableReason(), path: T.cpuPath(), err };
  } catch (e) {
    window.done = { error: String(e && e.stack || e) };
  }
</script>`;

let cleanup: () => void = () => {};
afterAll(() => cleanup());

function expectThreaded(r: ThreadsReport, where: string): void {
  expect(r.isolated, where).toBe(true);
  expect(r.reason, where).toBeNull();
  expect(r.threads, where).toBe(2);
  expect(['wasm', 'wasm-fma'], where).toContain(r.path);
  // Every op went through the pool (the convolutions' implicit GEMMs included).
  for (const [op, n] of Object.entries(r.jobs)) expect(n, `${where}: ${op} split on the pool`).toBeGreaterThan(0);
  expect(r.workersTookPart, `${where}: a pool worker computed part of the matmul`).toBe(true);
  for (const [op, ok] of Object.entries(r.sameAsOneThread))
    expect(ok, `${where}: ${op} 2 threads = 1 thread`).toBe(true);
  for (const [op, ok] of Object.entries(r.repeatable)) expect(ok, `${where}: ${op} run to run`).toBe(true);
  expect(r.matmulError, where).toBeLessThan(1e-4);
  expect(
    r.faults.map((f) => [f.kind, f.error, f.threadsAfter]),
    where,
  ).toEqual([
    ['throw', 'WorkerError', 1],
    ['hang', 'WorkerError', 1],
  ]);
  expect(r.faults[0]!.message, where).toMatch(/worker 1 threw/);
  expect(r.faults[1]!.message, where).toMatch(/did not finish/);
  expect(r.recovered, where).toBe(true);
}

test.skipIf(skip !== null)(
  'Chromium: threaded matmul and conv in a Web Worker and on the main thread equal 1 thread; no isolation → 1 thread',
  async () => {
    const page = buildPage('tsconfig.threads.json', {
      'index.html': INDEX,
      'threads-worker.js': WORKER,
      'plain.html': PLAIN,
    });
    cleanup = page.remove;
    const server = await serve(page.dir, (path) => (path === '/plain.html' ? {} : ISOLATION_HEADERS));
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      const done = async () => {
        await tab.waitForFunction(() => (window as { done?: unknown }).done !== undefined, null, { timeout: 120_000 });
        return (await tab.evaluate(() => (window as { done?: unknown }).done)) as Record<string, unknown>;
      };
      await tab.goto(server.url);
      const iso = (await done()) as {
        error?: string;
        autoThreads: number;
        autoReason: string | null;
        worker: ThreadsReport & { error?: string };
        main: ThreadsReport;
      };
      expect(iso.error, 'the isolated page threw').toBeUndefined();
      expect(iso.worker.error, 'the worker threw').toBeUndefined();
      expectThreaded(iso.worker, 'in a Web Worker');
      expectThreaded(iso.main, "main thread, { wait: 'spin' }");
      // The main thread may not sleep in Atomics.wait: by default it stays on one thread and says so.
      expect(iso.autoThreads).toBe(1);
      expect(iso.autoReason).toMatch(/Atomics\.wait.*Web Worker/);

      await tab.goto(`${server.url}plain.html`);
      const plain = (await done()) as {
        error?: string;
        isolated: boolean;
        threads: number;
        reason: string | null;
        path: string;
        err: number;
      };
      expect(plain.error, 'the plain page threw').toBeUndefined();
      expect(plain.isolated).toBe(false);
      expect(plain.threads).toBe(1);
      expect(plain.reason).toMatch(/not cross-origin isolated.*Cross-Origin-Embedder-Policy/);
      expect(['wasm', 'wasm-fma']).toContain(plain.path);
      expect(plain.err).toBeLessThan(1e-4);
    } finally {
      await browser.close();
      server.close();
    }
  },
  // tsc, Chromium's start and a few hundred MFLOP on a loaded 2-core machine.
  180_000,
);
