#!/usr/bin/env node
// The main job: runs every package's benchmarks one after another, gathers their rows, prints one
// table and writes reports/bench.md and reports/bench.json at the repository root.
// Usage: npm run bench [-- <package-name-filter>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const filter = process.argv[2];
const runner = fileURLToPath(import.meta.resolve('@tessera/bench-kit/runner'));
const out = join(tmpdir(), `tessera-bench-${process.pid}.jsonl`);
rmSync(out, { force: true });

const pkgs = readdirSync(join(root, 'packages'))
  .filter((p) => existsSync(join(root, 'packages', p, 'bench')))
  .filter((p) => !filter || p.includes(filter))
  .sort();

const failed = [];
for (const p of pkgs) {
  console.log(`\n== ${p} ==`);
  const r = spawnSync(process.execPath, [runner, 'bench'], {
    cwd: join(root, 'packages', p),
    stdio: 'inherit',
    env: { ...process.env, TESSERA_BENCH_OUT: out },
  });
  if (r.status !== 0) failed.push(p);
}

const rows = existsSync(out)
  ? readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
rmSync(out, { force: true });

// Ratios are against the first implementation listed for each case (ours), so "×" reads "peer ÷ ours" or
// "ours ÷ baseline" the same way in every package: > 1 means ours is better.
const byCase = new Map();
for (const r of rows) {
  const key = `${r.package}\u0000${r.case}`;
  if (!byCase.has(key)) byCase.set(key, []);
  byCase.get(key).push(r);
}
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));
const lines = [
  '| package | case | implementation | value | unit | vs first | check |',
  '|---|---|---|---|---|---|---|',
];
for (const group of byCase.values()) {
  const base = group[0];
  for (const r of group) {
    const ratio =
      r === base ? '1.00×' : `${(r.higherIsBetter ? base.value / r.value : r.value / base.value).toFixed(2)}×`;
    lines.push(`| ${r.package} | ${r.case} | ${r.impl} | ${fmt(r.value)} | ${r.unit} | ${ratio} | ${r.check} |`);
  }
}
const when = new Date().toISOString();
const md = [
  `# Tessera benchmarks`,
  '',
  `${when} · Node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
  '',
  'Medians over repetitions. "vs first" is how many times better the first implementation of each case is than this row',
  '(for times: this ÷ first; for throughputs: first ÷ this).',
  '',
  ...lines,
  '',
].join('\n');
mkdirSync(join(root, 'reports'), { recursive: true });
writeFileSync(join(root, 'reports', 'bench.md'), md);
writeFileSync(join(root, 'reports', 'bench.json'), JSON.stringify({ when, node: process.version, rows }, null, 2));
console.log(`\n${md}`);
console.log(`written: reports/bench.md, reports/bench.json`);
if (failed.length) {
  console.error(`benchmarks failed (wrong answers or crashes): ${failed.join(', ')}`);
  process.exit(1);
}
