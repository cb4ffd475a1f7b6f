// Random playouts/s (gdl-perf's definition: from the initial state, a uniformly random legal move per role until
// terminal, then every goal), single thread: the grounded net (its allocation-free `playout` and the generic
// legal/next loop), the relational compiler and the reference interpreter in the same process, the first two
// checked against the interpreter on seeded playouts first. Peer numbers are those measured on this VM in the research
// note (§2, `../shared/research/ggp.md`): ggp-base prover and Sancho 1.61c; ratios use the loaded-run best, the
// figures the issue quotes. Where ggp-base's prover can run (GGP_PROVER_CP: bench/peers/README.md), it is measured in
// the same run on all seven core sheets and the ratios use that. Absolute numbers move with machine load: compare ratios.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, record } from '@tessera/bench-kit';
import { checkConformance } from '../src/conformance.js';
import { loadGame } from '../src/game.js';
import { GroundMachine } from '../src/ground.js';
import { type GameMachine, randomPlayout, rng } from '../src/machine.js';
import { measureProver, type ProverRate } from './peers/prover.js';

// The base sheets live beside the repository (../shared/ggp-games); GGP_GAMES points elsewhere.
const SHEETS =
  process.env.GGP_GAMES ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/ggp-games');
if (!existsSync(SHEETS)) {
  console.log(
    `ggp-spatium: no rule sheets at ${SHEETS}; set GGP_GAMES to a folder of .kif files to run this benchmark`,
  );
  process.exit(0);
}
const PEERS: Record<string, { prover: number; sancho: number }> = {
  ticTacToe: { prover: 275, sancho: 73_900 },
  connectFour: { prover: 36, sancho: 37_600 },
  breakthrough: { prover: 8.2, sancho: 10_240 },
};
const CORE = ['ticTacToe', 'connectFour', 'breakthrough', 'reversi', 'hex', 'pentago', 'englishDraughts'];
const secs = Number(process.env.GGP_BENCH_SECONDS ?? 1.5);

// the prover first, in one JVM: a few seconds' warm-up for the JIT, then a window per sheet that also waits for ten
// playouts (reversi's take 2-3 s of CPU each)
const proverRun = measureProver(
  CORE.map((g) => resolve(SHEETS, `${g}.kif`)),
  {
    warmupS: Number(process.env.GGP_PROVER_WARMUP ?? 3),
    seconds: Number(process.env.GGP_PROVER_SECONDS ?? 10),
    minPlayouts: 10,
  },
);
if ('skipped' in proverRun) {
  console.log(`ggp-spatium: ggp-base prover not run (${proverRun.skipped}); its ratios are the research note's`);
} else for (const e of proverRun.errors) console.log(`ggp-spatium: ggp-base prover failed on ${e}`);
const measuredProver = 'rates' in proverRun ? proverRun.rates : new Map<string, ProverRate>();

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

type Playout = (rand: () => number) => { plies: number };
const generic =
  (m: GameMachine): Playout =>
  (rand) =>
    randomPlayout(m, m.initialState(), rand);

/**
 * Median playouts/s over three windows of `seconds`/3 after a warm-up (wall clock), and the rate per CPU-second
 * over all three windows.
 */
function rate(one: Playout, seconds: number): { perSec: number; cpuPerSec: number; plies: number } {
  const rand = rng(7);
  const w0 = performance.now();
  while (performance.now() - w0 < seconds * 300) one(rand);
  const rates: number[] = [];
  let plies = 0;
  let n = 0;
  const c0 = cpuMs();
  for (let w = 0; w < 3; w++) {
    let k = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < (seconds * 1000) / 3 || k === 0) {
      plies += one(rand).plies;
      k++;
    }
    n += k;
    rates.push((k * 1000) / (performance.now() - t0));
  }
  return { perSec: median(rates), cpuPerSec: (n * 1000) / (cpuMs() - c0), plies: plies / n };
}

const load = () => (process.platform === 'linux' ? readFileSync('/proc/loadavg', 'utf8').split(' ')[0] : '?');

/** One playouts/s row: the rate, its check, and a note with plies, CPU rate, load, first playout and `extra`. */
function recordRate(
  game: string,
  impl: string,
  r: ReturnType<typeof rate>,
  firstMs: number,
  check: 'ok' | 'fail',
  extra: string,
): void {
  record({
    package: 'ggp-spatium',
    case: `${game} random playouts`,
    impl,
    unit: 'playouts/s',
    value: r.perSec,
    higherIsBetter: true,
    check,
    note: `${r.plies.toFixed(1)} plies; ${r.cpuPerSec.toFixed(0)}/s of CPU time; load ${load()}; first playout ${firstMs.toFixed(0)} ms; ${extra}`,
  });
}

for (const game of CORE) {
  const kif = readFileSync(resolve(SHEETS, `${game}.kif`), 'utf8');
  const interp = loadGame(kif, { engine: 'interpreter' });
  const check = (m: GameMachine): 'ok' | 'fail' => {
    const conf = checkConformance(interp, m, { playouts: 2, seed: 3 });
    return conf.mismatches.length === 0 && conf.playouts === 2 ? 'ok' : 'fail';
  };
  const i = rate(generic(interp), Math.min(secs, 1));
  const measured = measuredProver.get(game);
  const prover = measured?.perCpuS ?? PEERS[game]?.prover;
  const sancho = PEERS[game]?.sancho;
  const proverSource = measured ? 'this run' : 'research note';
  // the machine is shared: ratios use the CPU-time rates, which foreign load disturbs far less than wall time
  const vs = (cpu: number) =>
    (prover ? `; per CPU-second ${(cpu / prover).toFixed(0)}× ggp-base prover (${proverSource})` : '') +
    (sancho ? `, ${(cpu / sancho).toFixed(2)}× Sancho (research note)` : '');
  let ourPlies = 0;
  const row = (impl: string, one: Playout, firstMs: number, c: 'ok' | 'fail') => {
    const r = rate(one, secs);
    ourPlies ||= r.plies;
    recordRate(game, impl, r, firstMs, c, `${(r.cpuPerSec / i.cpuPerSec).toFixed(0)}× interpreter${vs(r.cpuPerSec)}`);
  };
  let t0 = performance.now();
  let grounded: GameMachine | undefined;
  // hex grounds by default with its large rules split (the grounder's fallback for too many instances, which
  // loadGame uses); the explicit split below is for a sheet the default refuses on time
  let split = game === 'hex' ? ' (rules split)' : '';
  for (const ground of [{}, { projectAbove: 50_000 }]) {
    try {
      grounded = loadGame(kif, { engine: 'grounded', ground });
      randomPlayout(grounded, grounded.initialState(), rng(1));
      break;
    } catch (e) {
      console.log(`ggp-spatium: ${game} not grounded with ${JSON.stringify(ground)}: ${(e as Error).message}`);
      split = ' (rules split, projectAbove 50,000)';
    }
  }
  if (grounded instanceof GroundMachine) {
    const g = grounded;
    const first = performance.now() - t0;
    const c = check(g);
    const s0 = g.initialState();
    row(`grounded net${split}, playout()`, (rand) => g.playout(s0, rand), first, c);
    row(`grounded net${split}, legal/next`, generic(g), first, c);
  }
  t0 = performance.now();
  const compiled = loadGame(kif, { engine: 'compiled' });
  randomPlayout(compiled, compiled.initialState(), rng(1));
  row('compiled (JS)', generic(compiled), performance.now() - t0, check(compiled));
  record({
    package: 'ggp-spatium',
    case: `${game} random playouts`,
    impl: 'interpreter (tabled)',
    unit: 'playouts/s',
    value: i.perSec,
    higherIsBetter: true,
    check: 'ok',
    note: `${i.cpuPerSec.toFixed(1)}/s of CPU time${prover ? `; ${(i.cpuPerSec / prover).toFixed(1)}× ggp-base prover per CPU-second (${proverSource})` : ''}`,
  });
  if (measured) {
    // the check: the prover's playouts are as long as ours (the same game, played to the end), within what a few
    // dozen random playouts of a game like hex scatter
    const same = Math.abs(measured.meanPlies / ourPlies - 1) < 0.2;
    record({
      package: 'ggp-spatium',
      case: `${game} random playouts`,
      impl: 'peer: ggp-base prover (Java, AimaProver)',
      unit: 'playouts/s',
      value: measured.perWallS,
      higherIsBetter: true,
      check: same ? 'ok' : 'fail',
      note: `${measured.meanPlies.toFixed(1)} plies over ${measured.playouts} playouts (ours ${ourPlies.toFixed(1)}); ${measured.perCpuS.toPrecision(3)}/s of the thread's CPU time, ${measured.perProcessCpuS.toPrecision(3)}/s of the JVM's${measured.undefinedGoals ? `; ${measured.undefinedGoals} terminal states with a goal that is not one value` : ''}`,
    });
  }
}

// recursive tier: sheets whose ground atoms form cycles, grounded by unrolling each component into layers (one per
// atom) or, where that would not fit (linesOfAction), by a fixpoint per component in place. The net against the
// compiled reasoner, both checked first.
for (const game of ['cubicup_3player', 'amazonsTorus_10x10', 'atariGoVariant_7x7', 'linesOfAction']) {
  const kif = readFileSync(resolve(SHEETS, `${game}.kif`), 'utf8');
  const interp = loadGame(kif, { engine: 'interpreter' });
  const check = (m: GameMachine): 'ok' | 'fail' => {
    const conf = checkConformance(interp, m, { playouts: 2, seed: 3 });
    return conf.mismatches.length === 0 && conf.playouts === 2 ? 'ok' : 'fail';
  };
  let t0 = performance.now();
  const g = loadGame(kif, { engine: 'grounded' }) as unknown as GroundMachine;
  const s0 = g.initialState();
  g.playout(s0, rng(1));
  const gFirst = performance.now() - t0;
  t0 = performance.now();
  const compiled = loadGame(kif, { engine: 'compiled' });
  randomPlayout(compiled, compiled.initialState(), rng(1));
  const cFirst = performance.now() - t0;
  const chosen = loadGame(kif).kind;
  const rg = rate((rand) => g.playout(s0, rand), secs);
  const rc = rate(generic(compiled), secs);
  const rows: Array<[string, typeof rg, number, 'ok' | 'fail', string]> = [
    [
      g.net.comps.length
        ? `grounded net, ${g.net.comps.length} components in place, playout()`
        : `grounded net, unrolled (${g.net.unrolledDepth} layers), playout()`,
      rg,
      gFirst,
      check(g as unknown as GameMachine),
      `${(rg.cpuPerSec / rc.cpuPerSec).toFixed(2)}× compiled per CPU-second; ${g.net.unrolled} atoms added to ${g.net.nNodes} nodes`,
    ],
    ['compiled (JS)', rc, cFirst, check(compiled), `loadGame's choice: ${chosen}`],
  ];
  for (const [impl, r, first, c, extra] of rows) recordRate(game, impl, r, first, c, extra);
}

// stress tier: time to the first state transitions (within a 30 s startclock) and random plies/s; playouts/s is
// plies/s over the mean length of the playouts completed in the window, or over the research note's mean length
// (211 plies for chess) where none completed
const LENGTH: Record<string, number> = { chess: 211, speedChess: 211, checkers: 100 };
for (const game of ['chess', 'speedChess', 'checkers']) {
  const kif = readFileSync(resolve(SHEETS, `${game}.kif`), 'utf8');
  const t0 = performance.now();
  const m = loadGame(kif);
  const rand = rng(1);
  let s = m.initialState();
  let done = 0;
  let donePlies = 0;
  let plies = 0;
  const step = () => {
    if (m.isTerminal(s)) {
      s = m.initialState();
      done++;
      donePlies += plies;
      plies = 0;
      return;
    }
    plies++;
    s = m.next(
      s,
      m.roles().map((_, r) => {
        const l = m.legal(s, r);
        return l[(rand() * l.length) | 0];
      }),
    );
  };
  step();
  const firstMs = performance.now() - t0;
  let n = 0;
  const t1 = performance.now();
  const c1 = cpuMs();
  while (performance.now() - t1 < secs * 4000) {
    step();
    n++;
  }
  const perSec = (n * 1000) / (performance.now() - t1);
  const cpuPerSec = (n * 1000) / (cpuMs() - c1);
  const len = done ? donePlies / done : LENGTH[game]!;
  record({
    package: 'ggp-spatium',
    case: `${game} random plies`,
    impl: `${m.kind} (JS)`,
    unit: 'states/s',
    value: perSec,
    higherIsBetter: true,
    check: firstMs < 30_000 && n > 0 ? 'ok' : 'fail',
    note: `≈${(perSec / len).toFixed(3)} playouts/s (${(cpuPerSec / len).toFixed(3)} per CPU-second) at ${len.toFixed(0)} plies${done ? ` (mean of ${done} completed)` : ' (research note)'}; ${cpuPerSec.toFixed(1)}/s of CPU time; load ${load()}; first transition ${(firstMs / 1000).toFixed(2)} s (startclock 30 s)`,
  });
}
