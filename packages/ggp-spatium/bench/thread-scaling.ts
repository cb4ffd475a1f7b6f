// Root-parallel UCT (`ParallelUctPlayer`): search iterations per wall-second at 1, 2, 4, … threads, summed
// over the searchers, from the initial state of each sheet. Each (sheet, threads) gets a fresh player whose
// workers are all loaded before the clock starts, one warm-up decision (JIT, worker start), then `reps` timed
// decisions of `ms` each; the median is reported with its ratio to one thread and the efficiency
// (ratio / threads). CPU time of the process over each decision is recorded too: CPU / wall ≈ threads says
// the workers really ran side by side. Only meaningful on an otherwise idle machine with at least as many
// cores as threads: wall-clock is what root parallelism buys. Not part of `pnpm bench`; from the package:
//   node --conditions=@tessera/source --import tsx bench/thread-scaling.ts [--dir sheets] [--threads 1,2,4] [--ms 1000]
//     [--reps 3] [--out file.jsonl] [game...]
import { appendFileSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { loadGame } from '../src/game.js';
import type { GameMachine } from '../src/machine.js';
import { ParallelUctPlayer } from '../src/parallel.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = args[i + 1]!;
  args.splice(i, 2);
  return v;
};
const cores = availableParallelism();
const threadList = opt('threads', [1, 2, 4, 8, 16].filter((t) => t <= cores).join(','))
  .split(',')
  .map(Number);
const ms = Number(opt('ms', '1000'));
const reps = Number(opt('reps', '3'));
const out = opt('out', '');
const dir = resolve(opt('dir', '../../../shared/ggp-games'));
const games = args.length ? args : ['connectFour', 'breakthrough', 'reversi'];
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

console.log(`${cores} cores (availableParallelism), threads ${threadList.join(', ')}, ${reps} × ${ms} ms per point`);
for (const name of games) {
  const kif = readFileSync(join(dir, `${name}.kif`), 'utf8');
  const m = loadGame(kif) as GameMachine;
  const s0 = m.initialState();
  const role = m.legal(s0, 0).length > 1 ? 0 : 1;
  let base = 0;
  for (const threads of threadList) {
    const p = new ParallelUctPlayer({ threads, rules: kif, readyWaitMs: 120_000 });
    p.start(m, role, 1);
    p.select(s0, { timeMs: Math.min(ms, 500) }); // warm-up: JIT in every searcher
    const rate: number[] = [];
    const cpu: number[] = [];
    let searchers = 0;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      p.select(s0, { timeMs: ms });
      const c = process.cpuUsage(c0);
      const wall = (performance.now() - t0) / 1000;
      const info = p.lastInfo();
      searchers = info.searchers ?? 1;
      rate.push(info.iterations! / wall);
      cpu.push((c.user + c.system) / 1e6 / wall);
    }
    const errors = p.workerErrors().map((e) => e.message);
    // the reasoner of each searcher (main thread first): they must all be the main thread's
    const kinds: Record<string, number> = { [m.kind]: 1 };
    for (const k of p.workerKinds()) kinds[k ?? 'not loaded'] = (kinds[k ?? 'not loaded'] ?? 0) + 1;
    // the check of this bench's answer: a searcher on another reasoner (or none) makes its rate meaningless
    if (Object.keys(kinds).length > 1 || errors.length) {
      console.error(`${name}, ${threads} threads: searchers on ${JSON.stringify(kinds)}; errors: ${errors.join('; ')}`);
      process.exitCode = 1;
    }
    await p.close();
    const r = med(rate);
    if (threads === threadList[0]) base = r / threads;
    const row = {
      game: name,
      kind: m.kind,
      threads,
      searchers,
      iterationsPerSecond: Math.round(r),
      vsOne: r / base,
      efficiency: r / base / threads,
      cpuPerWall: med(cpu),
      rates: rate.map(Math.round),
      kinds,
      errors,
    };
    console.log(
      `${name} (${m.kind}) ${threads} threads (${searchers} searched): ${row.iterationsPerSecond} iterations/s, ` +
        `×${row.vsOne.toFixed(2)} one thread, efficiency ${row.efficiency.toFixed(2)}, CPU/wall ${row.cpuPerWall.toFixed(1)}, ` +
        `reasoners ${JSON.stringify(kinds)}` +
        (errors.length ? `, worker errors: ${errors.join('; ')}` : ''),
    );
    if (out) appendFileSync(out, `${JSON.stringify({ cores, ms, reps, ...row })}\n`);
  }
}
process.exit(process.exitCode ?? 0);
