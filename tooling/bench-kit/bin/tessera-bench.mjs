#!/usr/bin/env node
// Runs every `*.bench.ts` in the given folder (default: ./bench) one after another, never in
// parallel: concurrent benchmarks on a 2-core machine would only measure each other.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

// tsx is our dependency, not the calling package's: resolve it from here.
const tsx = import.meta.resolve('tsx');
const dir = resolve(process.argv[2] ?? 'bench');
const only = process.argv[3];
if (!existsSync(dir)) {
  console.log(`no benchmarks in ${dir}`);
  process.exit(0);
}
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts') && (!only || f.includes(only)))
  .sort();
let failed = 0;
for (const f of files) {
  const r = spawnSync(process.execPath, ['--conditions=@tessera/source', '--import', tsx, join(dir, f)], {
    stdio: 'inherit',
    env: process.env,
  });
  if (r.status !== 0) {
    console.error(`benchmark failed: ${f} (exit ${r.status})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
