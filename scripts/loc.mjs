#!/usr/bin/env node
// Prints the size of tensor-core/src (STYLE.md: keep it small, treat growth as a cost) and of every package.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function count(dir) {
  let lines = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) lines += count(p);
    else if (/\.(ts|mjs|js)$/.test(e) && !e.endsWith('.d.ts')) lines += readFileSync(p, 'utf8').split('\n').length;
  }
  return lines;
}
const root = new URL('..', import.meta.url).pathname;
for (const p of readdirSync(join(root, 'packages')).sort()) {
  try {
    console.log(`${p.padEnd(14)} src ${String(count(join(root, 'packages', p, 'src'))).padStart(6)} lines`);
  } catch {}
}
