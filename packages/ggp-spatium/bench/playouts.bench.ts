// Random playouts/s (gdl-perf's definition: from the initial state, a uniformly random legal move per role until
// terminal, then every goal), single thread, compiled vs the reference interpreter in the same process, each
// checked against the other on seeded playouts first. Peer numbers are those measured on this VM in the research
// note (§2, `../shared/research/ggp.md`): ggp-base prover and Sancho 1.61c; ratios use the loaded-run best, the
// figures the issue quotes. Absolute numbers move with machine load: compare ratios.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, record } from '@tessera/bench-kit';
import { checkConformance } from '../src/conformance.js';
import { loadGame } from '../src/game.js';
import { type GameMachine, randomPlayout, rng } from '../src/machine.js';

const SHEETS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/ggp-games');
const PEERS: Record<string, { prover: number; sancho: number }> = {
  ticTacToe: { prover: 275, sancho: 73_900 },
  connectFour: { prover: 36, sancho: 37_600 },
  breakthrough: { prover: 8.2, sancho: 10_240 },
};
const CORE = ['ticTacToe', 'connectFour', 'breakthrough', 'reversi', 'hex', 'pentago', 'englishDraughts'];
const secs = Number(process.env.GGP_BENCH_SECONDS ?? 1.5);

/** Median playouts/s over three windows of `secs` seconds after a warm-up. */
function rate(m: GameMachine, seconds: number): { perSec: number; plies: number } {
  const rand = rng(7);
  const w0 = performance.now();
  while (performance.now() - w0 < seconds * 300) randomPlayout(m, m.initialState(), rand);
  const rates: number[] = [];
  let plies = 0;
  let n = 0;
  for (let w = 0; w < 3; w++) {
    let k = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < (seconds * 1000) / 3 || k === 0) {
      plies += randomPlayout(m, m.initialState(), rand).plies;
      k++;
    }
    n += k;
    rates.push((k * 1000) / (performance.now() - t0));
  }
  return { perSec: median(rates), plies: plies / n };
}

for (const game of CORE) {
  const kif = readFileSync(resolve(SHEETS, `${game}.kif`), 'utf8');
  const t0 = performance.now();
  const compiled = loadGame(kif, { engine: 'compiled' });
  randomPlayout(compiled, compiled.initialState(), rng(1));
  const firstMs = performance.now() - t0;
  const interp = loadGame(kif, { engine: 'interpreter' });
  const conf = checkConformance(interp, compiled, { playouts: 2, seed: 3 });
  const check = conf.mismatches.length === 0 && conf.playouts === 2 ? 'ok' : 'fail';
  const c = rate(compiled, secs);
  const i = rate(interp, Math.min(secs, 1));
  const peer = PEERS[game];
  const vs = peer
    ? `; ${(c.perSec / peer.prover).toFixed(0)}× ggp-base prover, ${(c.perSec / peer.sancho).toFixed(2)}× Sancho`
    : '';
  record({
    package: 'ggp-spatium',
    case: `${game} random playouts`,
    impl: 'compiled (JS)',
    unit: 'playouts/s',
    value: c.perSec,
    higherIsBetter: true,
    check,
    note: `${c.plies.toFixed(1)} plies; first playout ${firstMs.toFixed(0)} ms; ${(c.perSec / i.perSec).toFixed(0)}× interpreter${vs}`,
  });
  record({
    package: 'ggp-spatium',
    case: `${game} random playouts`,
    impl: 'interpreter (tabled)',
    unit: 'playouts/s',
    value: i.perSec,
    higherIsBetter: true,
    check,
    note: peer ? `${(i.perSec / peer.prover).toFixed(1)}× ggp-base prover` : undefined,
  });
}

// stress tier: time to first playout within a 30 s startclock, and random playouts/s
for (const game of ['chess', 'speedChess', 'checkers']) {
  const kif = readFileSync(resolve(SHEETS, `${game}.kif`), 'utf8');
  const t0 = performance.now();
  const m = loadGame(kif);
  const first = randomPlayout(m, m.initialState(), rng(1));
  const firstMs = performance.now() - t0;
  const goalsOk = first.goals.every((g) => g === null || (g >= 0 && g <= 100));
  const c = rate(m, Math.max(1.5, secs));
  record({
    package: 'ggp-spatium',
    case: `${game} random playouts`,
    impl: `${m.kind} (JS)`,
    unit: 'playouts/s',
    value: c.perSec,
    higherIsBetter: true,
    check: goalsOk && firstMs < 30_000 ? 'ok' : 'fail',
    note: `${c.plies.toFixed(0)} plies; first playout ${(firstMs / 1000).toFixed(2)} s (startclock 30 s)`,
  });
}
