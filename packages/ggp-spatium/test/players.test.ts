import { describe, expect, test } from 'vitest';
import { loadGame } from '../src/game.js';
import type { GameMachine } from '../src/machine.js';
import { LocalAgent, playMatch } from '../src/match.js';
import { MonteCarloPlayer, RandomPlayer, UctPlayer } from '../src/players.js';
import { haveSheets, sheet } from './sheets.js';

describe.skipIf(!haveSheets)('players', () => {
  test('UCT takes an immediate win and blocks an immediate loss', () => {
    const m = loadGame(sheet('ticTacToe')) as GameMachine;
    const play = (moves: string[][]) => moves.reduce((s, j) => m.nextState(s, j), m.initialState());
    // x has (1 1) (1 2); o has (2 2) (3 3) — x to move wins with (1 3)
    const s = play([
      ['(mark 1 1)', 'noop'],
      ['noop', '(mark 2 2)'],
      ['(mark 1 2)', 'noop'],
      ['noop', '(mark 3 3)'],
    ]);
    const uct = new UctPlayer();
    uct.start(m, 0, 3);
    expect(m.moveText(uct.select(s, { timeMs: 1e9, maxIterations: 2000 }))).toBe('(mark 1 3)');
    // o to move must block (1 3)
    const s2 = play([
      ['(mark 1 1)', 'noop'],
      ['noop', '(mark 2 2)'],
      ['(mark 1 2)', 'noop'],
    ]);
    const o = new UctPlayer();
    o.start(m, 1, 4);
    expect(m.moveText(o.select(s2, { timeMs: 1e9, maxIterations: 3000 }))).toBe('(mark 1 3)');
  });
  test('UCT respects the node budget and the time budget', () => {
    const m = loadGame(sheet('connectFour')) as GameMachine;
    const uct = new UctPlayer({ nodeBudget: 500 });
    uct.start(m, 0, 1);
    const t0 = performance.now();
    uct.select(m.initialState(), { timeMs: 300 });
    const dt = performance.now() - t0;
    expect(dt).toBeLessThan(1500);
    expect(uct.lastInfo().nodes).toBeLessThanOrEqual(500);
    expect(uct.lastInfo().iterations).toBeGreaterThan(10);
  });
  test('UCT and flat Monte-Carlo beat random at ticTacToe', async () => {
    const kif = sheet('ticTacToe');
    let uctPoints = 0;
    let mcPoints = 0;
    const games = 6;
    for (let g = 0; g < games; g++) {
      const r = await playMatch(
        kif,
        [new LocalAgent(new UctPlayer(), g), new LocalAgent(new RandomPlayer(), 100 + g)],
        {
          playclock: 0.1,
          seed: g,
        },
      );
      expect(r.errors).toEqual([]);
      uctPoints += r.goals[0]!;
      const r2 = await playMatch(
        kif,
        [new LocalAgent(new RandomPlayer(), 200 + g), new LocalAgent(new MonteCarloPlayer(), g)],
        { playclock: 0.1, seed: g },
      );
      mcPoints += r2.goals[1]!;
    }
    expect(uctPoints / games).toBeGreaterThan(70);
    expect(mcPoints / games).toBeGreaterThan(60);
  });
});
