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
  test('UCT on the grounded net takes its fast playout path and searches exactly as the legal/next loop does', () => {
    for (const name of ['ticTacToe', 'connectFour']) {
      const m = loadGame(sheet(name)) as GameMachine;
      expect(m.kind).toBe('grounded');
      expect(typeof m.playout).toBe('function');
      // count the fast path's calls on the instance itself (the net keeps its working state on the object)
      let calls = 0;
      const net = m.playout!.bind(m);
      m.playout = (s, rand, max) => {
        calls++;
        return net(s, rand, max);
      };
      const fast = new UctPlayer({ fastPlayouts: true });
      const slow = new UctPlayer({ fastPlayouts: false });
      fast.start(m, 0, 11);
      slow.start(m, 0, 11);
      const s = m.initialState();
      const a = fast.select(s, { timeMs: 1e9, maxIterations: 400 });
      const fastCalls = calls;
      const b = slow.select(s, { timeMs: 1e9, maxIterations: 400 });
      delete (m as { playout?: unknown }).playout; // back to the class's method
      expect(calls).toBe(fastCalls);
      expect(calls).toBeGreaterThan(300);
      expect(m.legal(s, 0)).toContain(a);
      // the net's playout draws the same random numbers for the same moves: identical trees, identical statistics
      expect(fast.rootStats()).toEqual(slow.rootStats());
      expect(m.moveText(a)).toBe(m.moveText(b));
    }
  });
  test('UCT with a CPU clock searches until its CPU time is spent', () => {
    const m = loadGame(sheet('connectFour')) as GameMachine;
    const p = new UctPlayer({ clock: 'cpu' });
    p.start(m, 0, 3);
    const c0 = process.cpuUsage();
    p.select(m.initialState(), { timeMs: 60 });
    const c = process.cpuUsage(c0);
    // it checks the clock every 16 iterations, so it stops only once 60 ms of CPU time have gone
    expect((c.user + c.system) / 1000).toBeGreaterThanOrEqual(60);
    expect(p.lastInfo().iterations).toBeGreaterThan(16);
  });
  test('UCT with fast playouts still finds the forced win in ticTacToe', () => {
    const m = loadGame(sheet('ticTacToe')) as GameMachine;
    const s = [
      ['(mark 1 1)', 'noop'],
      ['noop', '(mark 1 2)'],
      ['(mark 2 2)', 'noop'],
      ['noop', '(mark 3 3)'],
    ].reduce((st, j) => m.nextState(st, j), m.initialState());
    // x (1 1) (2 2) against o (1 2) (3 3): (2 1) threatens (3 1) and (2 3) at once — a fork that wins by force
    for (const seed of [1, 2, 3]) {
      const uct = new UctPlayer();
      uct.start(m, 0, seed);
      const mv = m.moveText(uct.select(s, { timeMs: 1e9, maxIterations: 3000 }));
      expect(['(mark 2 1)', '(mark 3 1)']).toContain(mv);
      expect(uct.rootStats().moves.length).toBe(5);
    }
  });
});
