// ggp-base's prover (ProverStateMachine on AimaProver, Java) as a peer in the same benchmark run: ProverPerf.java
// beside this file plays gdl-perf's random playouts through it and prints one JSON line per sheet. ggp-base is not
// part of this repository; GGP_PROVER_CP names its compiled classes and Guava (README.md here says how to build
// them). Without it, or without a JDK, the benchmarks fall back to the research note's prover numbers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ProverRate {
  game: string;
  playouts: number;
  /** playouts per second of the playing thread's CPU time (JIT and GC threads not counted: the prover's best case) */
  perCpuS: number;
  /** playouts per second of the whole JVM's CPU time, as Node's process.cpuUsage() counts ours */
  perProcessCpuS: number;
  perWallS: number;
  meanPlies: number;
  /** terminal states where a role's goal was not exactly one value (ggp-base throws GoalDefinitionException) */
  undefinedGoals: number;
}

export interface ProverOptions {
  warmupS: number;
  seconds: number;
  /** the timed window also lasts until this many playouts are done */
  minPlayouts: number;
}

/**
 * Measures the prover on `sheets` (paths to .kif files), one JVM for all, or returns why it cannot. A sheet the
 * prover fails on is reported by the harness as an error line and left out of the map.
 */
export function measureProver(
  sheets: string[],
  opts: ProverOptions,
): { rates: Map<string, ProverRate>; errors: string[] } | { skipped: string } {
  const cp = process.env.GGP_PROVER_CP;
  if (!cp) return { skipped: 'GGP_PROVER_CP is not set' };
  const here = dirname(fileURLToPath(import.meta.url));
  const out = mkdtempSync(join(tmpdir(), 'prover-perf-'));
  try {
    const javac = spawnSync('javac', ['-nowarn', '-cp', cp, '-d', out, resolve(here, 'ProverPerf.java')], {
      encoding: 'utf8',
    });
    if (javac.error || javac.status !== 0) {
      return { skipped: `javac failed: ${javac.error?.message ?? javac.stderr.trim().split('\n')[0]}` };
    }
    const args = ['--warmup', String(opts.warmupS), '--seconds', String(opts.seconds)];
    args.push('--min-playouts', String(opts.minPlayouts));
    // a sheet whose playouts never end would hold the bench forever: a generous limit per sheet, then give up
    const limitMs = sheets.length * (opts.warmupS + opts.seconds + 120) * 1000;
    const java = spawnSync('java', ['-Xmx4g', '-cp', `${out}${delimiter}${cp}`, 'ProverPerf', ...args, ...sheets], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      timeout: limitMs,
      killSignal: 'SIGKILL',
    });
    if (java.signal) return { skipped: `java stopped after ${(limitMs / 1000).toFixed(0)} s (${java.signal})` };
    if (java.error || java.status !== 0) {
      return { skipped: `java failed: ${java.error?.message ?? java.stderr.trim().split('\n').slice(-1)[0]}` };
    }
    return parseProverOutput(java.stdout);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** ProverPerf's output, one JSON line per sheet: the rates, and a line per sheet it could not measure. */
export function parseProverOutput(stdout: string): { rates: Map<string, ProverRate>; errors: string[] } {
  const rates = new Map<string, ProverRate>();
  const errors: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const j = JSON.parse(line) as Record<string, number | string | null>;
    if (j.error || typeof j.playouts !== 'number' || j.playouts < 1) {
      errors.push(`${j.game}: ${j.error ?? 'no playout finished'}`);
      continue;
    }
    rates.set(String(j.game), {
      game: String(j.game),
      playouts: j.playouts,
      perCpuS: Number(j.playoutsPerCpuS),
      perProcessCpuS: Number(j.playoutsPerProcessCpuS),
      perWallS: Number(j.playoutsPerWallS),
      meanPlies: Number(j.meanPlies),
      undefinedGoals: Number(j.undefinedGoals),
    });
  }
  return { rates, errors };
}
