// UCT iterations per CPU-second with plain random playouts through the legal/next loop and through the
// reasoner's `playout()` (grounded net). Not part of `pnpm bench`; run from the package directory:
//   ../../node_modules/.bin/tsx bench/uct-iterations.ts [sheet directory]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadGame } from '../src/game.js';
import type { GameMachine } from '../src/machine.js';
import { UctPlayer } from '../src/players.js';

const dir = resolve(process.argv[2] ?? '../../../shared/ggp-games');
for (const name of ['ticTacToe', 'connectFour', 'breakthrough']) {
  const m = loadGame(readFileSync(join(dir, `${name}.kif`), 'utf8')) as GameMachine;
  const res = { slow: [] as number[], fast: [] as number[] };
  for (let rep = 0; rep < 3; rep++)
    for (const mode of ['slow', 'fast'] as const) {
      const p = new UctPlayer({ fastPlayouts: mode === 'fast', nodeBudget: 1_000_000 });
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let it = 0;
      while (performance.now() - t0 < 1500) {
        p.start(m, 0, rep + 1); // a fresh tree per decision
        p.select(m.initialState(), { timeMs: 250 });
        it += p.lastInfo().iterations!;
      }
      const c = process.cpuUsage(c0);
      res[mode].push(it / ((c.user + c.system) / 1e6));
    }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[1]!;
  console.log(
    `${name} (${m.kind}): legal/next ${Math.round(med(res.slow))}, playout() ${Math.round(med(res.fast))} iterations per CPU-second (×${(med(res.fast) / med(res.slow)).toFixed(2)})`,
  );
}
