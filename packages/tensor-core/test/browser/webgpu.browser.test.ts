// The WebGPU backend in a real browser: the package is built with its own compiler (tsc) into a temp
// folder, served from localhost, and headless Chromium (--enable-unsafe-webgpu, SwiftShader on machines
// without a GPU) runs workload.ts through playwright-core: every 2nd row of the conformance table
// (forward and gradients, checked in the page against the float64 references), and a workload of ops
// and one training step that also runs here on the CPU, the two compared. Needs a Chromium:
// CHROMIUM_PATH or /usr/bin/chromium (Debian's `chromium`, which .ci/run installs). Skipped with the
// reason where there is none, never under CI=true.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@tessera/tensor-core';
import { afterAll, expect, test } from 'vitest';
import { cases } from '../conformance/cases.js';
import { type Results, workload } from './workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(chromium) ? null : `no Chromium at ${chromium} (set CHROMIUM_PATH, or apt install chromium)`;
if (skip && process.env.CI) throw new Error(`browser test: ${skip}`);
if (skip) console.warn(`webgpu browser test skipped: ${skip}`);

/** Every EVERY-th row of the conformance table runs in the browser (SwiftShader compiles slowly). */
const EVERY = 2;
const out = mkdtempSync(join(tmpdir(), 'tessera-browser-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

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

function build(): void {
  const tsc = join(here, '..', '..', 'node_modules', '.bin', 'tsc');
  execFileSync(tsc, ['-p', join(here, 'tsconfig.json'), '--outDir', out], { stdio: 'inherit' });
  writeFileSync(join(out, 'index.html'), PAGE.replace('EVERY', String(EVERY)));
}

function serve(): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(out, path === '/' ? 'index.html' : path);
    if (!file.startsWith(out) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = extname(file) === '.html' ? 'text/html' : 'text/javascript';
    res.writeHead(200, { 'content-type': type }).end(readFileSync(file));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        close: () => server.close(),
      }),
    ),
  );
}

test.skipIf(skip !== null)(
  'headless Chromium runs the op subset and a training step on WebGPU as Node on the CPU',
  async () => {
    build();
    const want = await workload(T, 'cpu');
    const { chromium: browserType } = await import('playwright-core');
    const server = await serve();
    // The flags keep Chromium off the network (it has none here) and enable WebGPU without a GPU.
    const browser = await browserType.launch({
      executablePath: chromium,
      headless: true,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
      ],
    });
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
