// What the browser tests share: the package compiled with its own tsc into a temp folder (no bundler),
// a localhost server for it with per-path response headers (COOP/COEP for cross-origin isolation), and a
// headless Chromium through playwright-core. Chromium is CHROMIUM_PATH or /usr/bin/chromium; where there
// is none the tests skip with the reason, never under CI=true.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Null when Chromium is there, else why the browser tests skip (an error under CI=true). */
export function chromiumMissing(what: string): string | null {
  const skip = existsSync(chromiumPath)
    ? null
    : `no Chromium at ${chromiumPath} (set CHROMIUM_PATH, or apt install chromium)`;
  if (skip && process.env.CI) throw new Error(`${what}: ${skip}`);
  if (skip) console.warn(`${what} skipped: ${skip}`);
  return skip;
}

/** Compiles `tsconfig` (relative to test/browser) into a fresh temp folder and adds `files` to it. */
export function buildPage(tsconfig: string, files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-browser-'));
  const tsc = join(here, '..', '..', 'node_modules', '.bin', 'tsc');
  execFileSync(tsc, ['-p', join(here, tsconfig), '--outDir', dir], { stdio: 'inherit' });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Cross-origin isolation: what a page needs for SharedArrayBuffer (and so for shared wasm memory). */
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/** Serves `dir` on 127.0.0.1; `headers(path)` adds response headers per request path. */
export function serve(
  dir: string,
  headers: (path: string) => Record<string, string> = () => ({}),
): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = extname(file) === '.html' ? 'text/html' : 'text/javascript';
    res.writeHead(200, { 'content-type': type, ...headers(path) }).end(readFileSync(file));
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

/** Headless Chromium kept off the network (it has none here); `extra` adds flags (e.g. WebGPU). */
export async function launchChromium(extra: string[] = []) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      ...extra,
      '--no-sandbox',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}
