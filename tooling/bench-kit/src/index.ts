// Shared helpers for `bench/*.bench.ts`: repeated timing with medians (these machines are shared and
// noisy), answer checks that fail the run, and rows that apps/bench gathers into one report.
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

// Benchmarks time the sources. Without `--conditions=@tessera/source` (tessera-bench and `pnpm bench` pass it),
// workspace packages resolve to their dist/ build, which may be stale: a run would then time old code under the
// new names, silently. Refuse instead.
const sourceCondition = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
  a.includes('@tessera/source'),
);
if (!sourceCondition && !process.env.VITEST)
  throw new Error(
    'benchmarks must run on the sources: use `pnpm bench` (tessera-bench) or node --conditions=@tessera/source --import tsx <file>',
  );

export interface Timing {
  medianMs: number;
  minMs: number;
  reps: number;
}

/** Runs `fn` `warmup` times, then at least `reps` times and until `minMs` elapsed; reports median and min. */
export function timeit(fn: () => unknown, opts: { reps?: number; warmup?: number; minMs?: number } = {}): Timing {
  const { reps = 7, warmup = 2, minMs = 200 } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < reps || (performance.now() - start < minMs && samples.length < 1000)) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), reps: samples.length };
}

export async function timeitAsync(
  fn: () => Promise<unknown>,
  opts: { reps?: number; warmup?: number; minMs?: number } = {},
): Promise<Timing> {
  const { reps = 7, warmup = 2, minMs = 200 } = opts;
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < reps || (performance.now() - start < minMs && samples.length < 1000)) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), reps: samples.length };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface BenchRow {
  /** e.g. "tensor-core" */
  package: string;
  /** the benchmark file's case, e.g. "matmul 256²" */
  case: string;
  /** implementation measured, e.g. "tessera cpu (ts)" or "tfjs-wasm" */
  impl: string;
  /** headline metric, e.g. "GFLOP/s" or "ms" */
  unit: string;
  value: number;
  /** true when a higher value is better (throughput), false for times */
  higherIsBetter: boolean;
  /** whether the answer was checked against a reference and matched */
  check: 'ok' | 'fail' | 'n/a';
  note?: string;
}

const rows: BenchRow[] = [];
let failed = false;

/** Records a row, prints it, and appends it to $TESSERA_BENCH_OUT (JSON lines) when apps/bench asks for it. */
export function record(row: BenchRow): void {
  rows.push(row);
  if (row.check === 'fail') {
    failed = true;
    process.exitCode = 1;
  }
  const out = process.env.TESSERA_BENCH_OUT;
  if (out) appendFileSync(out, `${JSON.stringify(row)}\n`);
  const v = row.value >= 100 ? row.value.toFixed(0) : row.value.toPrecision(3);
  console.log(
    `${row.package.padEnd(12)} ${row.case.padEnd(36)} ${row.impl.padEnd(22)} ${v.padStart(9)} ${row.unit.padEnd(8)} ${row.check}${row.note ? `  ${row.note}` : ''}`,
  );
}

/** Max |a-b| / (atol + rtol |b|) style check; returns true when every element is within tolerance. */
export function allClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-4, atol = 1e-5): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return false;
  }
  return true;
}

export function benchFailed(): boolean {
  return failed;
}
