// Node arguments for running one of this package's child scripts (conform-child, tune-child) in a process of its
// own, and the tsx entries that running from the TypeScript sources needs (also for parallel.ts's workers): the built `.js` beside this module when the package is built, else the TypeScript source through tsx's
// loader (tests and `node --import tsx`), reusing the parent's own loader flags where it already has tsx.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const tsxFound = new Map<string, string | null>();
/**
 * A tsx entry as a file URL — `tsx/esm`, the loader for `--import`, or `tsx/esm/api`, whose register() hooks a
 * worker thread — in its ESM build (the index.mjs beside the index.cjs that require() resolves); null when tsx is
 * not installed.
 */
export function tsxEntry(spec: 'tsx/esm' | 'tsx/esm/api'): string | null {
  let url = tsxFound.get(spec);
  if (url === undefined) {
    try {
      const mjs = createRequire(import.meta.url)
        .resolve(spec)
        .replace(/\.c?js$/, '.mjs');
      url = existsSync(mjs) ? pathToFileURL(mjs).href : null;
    } catch {
      url = null;
    }
    tsxFound.set(spec, url);
  }
  return url;
}

/** `process.execPath`'s arguments up to and including the entry script `name` (without extension). */
export function childArgs(name: 'conform-child' | 'tune-child', nodeFlags: string[] = []): string[] {
  const js = new URL(`./${name}.js`, import.meta.url);
  const fromSource = !(import.meta.url.endsWith('.js') && existsSync(fileURLToPath(js)));
  const entry = fileURLToPath(fromSource ? new URL(`./${name}.ts`, import.meta.url) : js);
  // (tsx already loaded: `tsx cli.ts`, `node --import tsx`; a path that merely passes through a folder named
  // tsx@… — vitest's, under pnpm — does not count)
  const hasTsx = process.execArgv.some((a) => /(^|[/\\])tsx([/\\]|$)/.test(a));
  const loader = fromSource && !hasTsx ? tsxEntry('tsx/esm') : null;
  const own = nodeFlags.map((f) => f.split('=')[0]!);
  return [
    ...process.execArgv.filter((a) => !own.some((o) => a.startsWith(o))),
    ...(loader ? ['--import', loader] : []),
    ...nodeFlags,
    entry,
  ];
}
