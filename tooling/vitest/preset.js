// Shared vitest preset: tests resolve workspace packages to their TypeScript sources through the
// `@tessera/source` export condition, so `pnpm test` never needs a build.
import { defineConfig } from 'vitest/config';

const conditions = ['@tessera/source', 'module', 'node', 'import', 'default'];

export function preset(overrides = {}) {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@tessera/source'] } },
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 60_000,
      ...overrides,
    },
  });
}
