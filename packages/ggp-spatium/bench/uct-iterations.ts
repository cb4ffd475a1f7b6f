// UCT iterations per CPU-second: plain UCT (random playouts through the grounded net's `playout()`) against the
// feature player in its forms — biased playouts on the table-driven fast path (`BoardFeatures.playout`), the same
// through the generic legal/next loop (`fastPlayouts: false`, the path every biased playout took before), biased
// for the first 8 plies then `playout()`, and features in the tree's prior only. Each form searches 250 ms from
// a fresh tree, from the initial state and from a mid-game state (6 seeded random plies); the forms are
// interleaved within each of 5 rounds and the median per-round rate is reported with its ratio to plain UCT.
// Not part of `pnpm bench`; run from the package directory:
//   node --conditions=@tessera/source --import tsx bench/uct-iterations.ts [sheet directory] [game...]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BoardFeatures, DEFAULT_WEIGHTS, type FeatureOptions } from '../src/features.js';
import { loadGame } from '../src/game.js';
import { type GameMachine, rng } from '../src/machine.js';
import { type UctOptions, UctPlayer } from '../src/players.js';

const dir = resolve(process.argv[2] ?? '../../../shared/ggp-games');
const games = process.argv.length > 3 ? process.argv.slice(3) : ['connectFour', 'breakthrough', 'knightThrough'];
const forms: Record<string, () => UctPlayer<unknown, unknown>> = {
  plain: () => new UctPlayer(),
  biased: () => new UctPlayer({ bias: new BoardFeatures(DEFAULT_WEIGHTS) }),
  'biased, generic loop': () => new UctPlayer({ bias: new BoardFeatures(DEFAULT_WEIGHTS), fastPlayouts: false }),
  'biased 8 plies': () => feat({ biasPlies: 8 }),
  'prior only': () => feat({}, { biasPlayouts: false }),
};
function feat(f: FeatureOptions, u: UctOptions = {}) {
  return new UctPlayer({ bias: new BoardFeatures(DEFAULT_WEIGHTS, undefined, f), ...u });
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const name of games) {
  const m = loadGame(readFileSync(join(dir, `${name}.kif`), 'utf8')) as GameMachine;
  let mid = m.initialState();
  const rand = rng(12);
  for (let p = 0; p < 6 && !m.isTerminal(mid); p++)
    mid = m.next(
      mid,
      m.roles().map((_, r) => {
        const ls = m.legal(mid, r);
        return ls[(rand() * ls.length) | 0];
      }),
    );
  for (const [label, s] of [
    ['initial', m.initialState()],
    ['mid-game', mid],
  ] as const) {
    const rate: Record<string, number[]> = {};
    for (let rep = 0; rep < 5; rep++)
      for (const [form, make] of Object.entries(forms)) {
        const p = make();
        const role = m.legal(s, 0).length > 1 ? 0 : 1;
        p.start(m, role, rep + 1);
        const c0 = process.cpuUsage();
        p.select(s, { timeMs: 250 });
        const c = process.cpuUsage(c0);
        (rate[form] ??= []).push(p.lastInfo().iterations! / ((c.user + c.system) / 1e6));
      }
    const plain = med(rate.plain!);
    console.log(
      `${name} (${m.kind}), ${label}: ${Object.entries(rate)
        .map(([f, r]) => `${f} ${Math.round(med(r))}${f === 'plain' ? '' : ` (×${(med(r) / plain).toFixed(2)})`}`)
        .join(', ')} iterations per CPU-second`,
    );
  }
}
