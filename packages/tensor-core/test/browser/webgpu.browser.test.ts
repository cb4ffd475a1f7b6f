// The WebGPU backend in a real browser: the package is built with its own compiler (tsc) into a temp
// folder, served from localhost, and headless Chromium (--enable-unsafe-webgpu, SwiftShader on machines
// without a GPU) runs workload.ts through playwright-core: every 2nd row of the conformance table
// (forward and gradients, checked in the page against the float64 references), and a workload of ops
// and one training step that also runs here on the CPU, the two compared. Needs a Chromium:
// CHROMIUM_PATH or /usr/bin/chromium (Debian's `chromium`, which .ci/run installs). Skipped with the
// reason where there is none, never under CI=true.
import * as T from '@tessera/tensor-core';
import { afterAll, expect, test } from 'vitest';
import { cases } from '../conformance/cases.js';
import { buildPage, chromiumMissing, launchChromium, serve } from './page.js';
import { type Results, workload } from './workload.js';

const skip = chromiumMissing('webgpu browser test');

/** Every EVERY-th row of the conformance table runs in the browser (SwiftShader compiles slowly). */
const EVERY = 2;
let cleanup: () => void = () => {};
afterAll(() => cleanup());

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tensor-core on WebGPU</title>
<script type="importmap">{ "imports": { "@tessera/tensor-core": "./src/index.js" } }</script>
<script type="module">
  import * as T from './src/index.js';
  import { workload, tableSubset } from './test/browser/workload.js';
  import { cases } from './test/conformance/cases.js';
  import { Nd } from './test/conformance/ref64.js';
  try {
    const results = await workload(T, 'webgpu');
    const table = await tableSubset(T, cases, Nd, 'webgpu', EVERY);
    const { webgpu } = await import('./src/backends/webgpu/index.js');
    window.done = { results, table, adapter: webgpu.adapter() };
  } catch (e) {
    window.done = { error: String(e && e.stack || e) };
  }
</script>`;

test.skipIf(skip !== null)(
  'headless Chromium runs the op subset and a training step on WebGPU as Node on the CPU',
  async () => {
    const built = buildPage('tsconfig.json', { 'index.html': PAGE.replace('EVERY', String(EVERY)) });
    cleanup = built.remove;
    const want = await workload(T, 'cpu');
    const server = await serve(built.dir);
    // WebGPU without a GPU (SwiftShader); page.ts adds the flags that keep Chromium off the network.
    const browser = await launchChromium(['--enable-unsafe-webgpu']);
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      await page.waitForFunction(() => (window as { done?: unknown }).done !== undefined, null, { timeout: 180_000 });
      const done = (await page.evaluate(() => (window as { done?: unknown }).done)) as {
        results?: Results;
        table?: { ran: string[]; failures: string[] };
        adapter?: { name: string; software: boolean; f16: boolean };
        error?: string;
      };
      expect(done.error, 'the page threw').toBeUndefined();
      console.info(
        `browser adapter: ${done.adapter!.name}${done.adapter!.software ? ' (software)' : ''}, shader-f16: ${done.adapter!.f16 ? 'yes' : 'no'}`,
      );
      expect(done.table!.ran.length).toBeGreaterThanOrEqual(Math.floor(cases.length / EVERY));
      expect(done.table!.failures).toEqual([]);
      const got = done.results!;
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const [name, w] of Object.entries(want)) {
        const g = got[name]!;
        expect(g.length, name).toBe(w.length);
        for (let i = 0; i < w.length; i++)
          expect(Math.abs(g[i]! - w[i]!), `${name}[${i}]: ${g[i]} vs ${w[i]}`).toBeLessThan(
            1e-4 * (1 + Math.abs(w[i]!)),
          );
      }
    } finally {
      await browser.close();
      server.close();
    }
  },
  // Build, browser start and SwiftShader's shader compiles: generous on a loaded 2-core machine.
  240_000,
);
