// Node arguments for running one of this package's child scripts (conform-child, tune-child) in a process of its
// own: the built `.js` beside this module when the package is built, else the TypeScript source through tsx's
// loader (tests and `node --import tsx`), reusing the parent's own loader flags where it already has tsx.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

let tsxEsm: string | null | undefined;
/** tsx's ESM loader as a file URL for `--import`; null when tsx is not installed. */
function tsxImport(): string | null {
  if (tsxEsm === undefined) {
    try {
      const cjs = createRequire(import.meta.url).resolve('tsx/esm');
      const mjs = cjs.replace(/\.c?js$/, '.mjs');
      tsxEsm = existsSync(mjs) ? pathToFileURL(mjs).href : null;
    } catch {
      tsxEsm = null;
    }
  }
  return tsxEsm;
}

/** `process.execPath`'s arguments up to and including the entry script `name` (without extension). */
export function childArgs(name: 'conform-child' | 'tune-child', nodeFlags: string[] = []): string[] {
  const js = new URL(`./${name}.js`, import.meta.url);
  const fromSource = !(import.meta.url.endsWith('.js') && existsSync(fileURLToPath(js)));
  const entry = fileURLToPath(fromSource ? new URL(`./${name}.ts`, import.meta.url) : js);
  // (tsx already loaded: `tsx cli.ts`, `node --import tsx`; a path that merely passes through a folder named
  // tsx@… — vitest's, under pnpm — does not count)
  const hasTsx = process.execArgv.some((a) => /(^|[/\\])tsx([/\\]|$)/.test(a));
  const loader = fromSource && !hasTsx ? tsxImport() : null;
  const own = nodeFlags.map((f) => f.split('=')[0]!);
  return [
    ...process.execArgv.filter((a) => !own.some((o) => a.startsWith(o))),
    ...(loader ? ['--import', loader] : []),
    ...nodeFlags,
    entry,
  ];
}
