// A user who installs the package and bundles it for the browser (esbuild, Vite) must not hit Node built-ins:
// every `node:` module is reached only through a runtime specifier (worker pool, checkpoint files), so a plain
// browser bundle of the entry point resolves with no externals and carries no static `node:` import.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

it('bundles for the browser without Node built-ins', async () => {
  const out = await build({
    entryPoints: [join(root, 'src', 'index.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    conditions: ['@tessera/source'],
    logLevel: 'silent',
    metafile: true,
    // `webgpu` (Dawn for Node) is an optional dependency loaded only in Node; browsers use navigator.gpu.
    external: ['webgpu'],
  });
  expect(out.errors).toEqual([]);
  expect(out.outputFiles[0]!.text.length).toBeGreaterThan(100_000);
  // A static `node:` import would have failed to resolve on platform 'browser'; check the graph says so too.
  const imports = Object.values(out.metafile!.inputs).flatMap((i) => i.imports.map((x) => x.path));
  expect(imports.length).toBeGreaterThan(20);
  expect(imports.filter((p) => p.startsWith('node:'))).toEqual([]);
}, 60_000);
