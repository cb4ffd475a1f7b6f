import { describe, expect, test } from 'vitest';
import { BoardFeatures, boardFromSheet, detectBoard } from '../src/features.js';
import { loadGame } from '../src/game.js';
import type { GameMachine } from '../src/machine.js';
import { decode, tune } from '../src/tune.js';
import { haveSheets, sheet } from './sheets.js';

describe.skipIf(!haveSheets)('board extension and spatial features', () => {
  test('detects the ticTacToe board and its blank mark', () => {
    const b = detectBoard(loadGame(sheet('ticTacToe')) as GameMachine)!;
    expect(b).toMatchObject({ functor: 'cell', xArg: 0, yArg: 1, minX: 1, maxX: 3, minY: 1, maxY: 3, blank: 'b' });
  });
  test('reads the declared extension (ground facts other players ignore)', () => {
    const kif = `${sheet('ticTacToe')}\n(spatium_board cell 2 1)\n(spatium_coord 1 10) (spatium_coord 2 20) (spatium_coord 3 30)`;
    const decl = boardFromSheet(kif)!;
    expect(decl).toMatchObject({ functor: 'cell', xArg: 1, yArg: 0 });
    const m = loadGame(kif) as GameMachine; // still a valid game
    const b = detectBoard(m, decl)!;
    expect([b.minX, b.maxX]).toEqual([10, 30]);
  });
  test('feature values match hand-computed ones', () => {
    const m = loadGame(sheet('ticTacToe')) as GameMachine;
    const s = m.nextState(m.initialState(), ['(mark 1 1)', 'noop']);
    const f = new BoardFeatures();
    const moves = ['(mark 1 2)', '(mark 2 2)', '(mark 3 3)'].map((t) => m.parseMove(t)!);
    const last = ['(mark 1 1)', 'noop'].map((t) => m.parseMove(t)!);
    const fs = f.features(m, s, 1, moves, last)!.map((x) => [...x]);
    // proximity 1/(1+chebyshev), edge 1/(1+distance to the border), contact/8, friendly/8, capture
    expect(fs[0]).toEqual([0.5, 1, 1 / 8, 0, 0]);
    expect(fs[1]).toEqual([0.5, 0.5, 1 / 8, 0, 0]);
    expect(fs[2]).toEqual([1 / 3, 1, 0, 0, 0]);
    const w = f.weights(m, s, 1, moves, last)!;
    expect(w[0]).toBeCloseTo(Math.exp(0.5 * 1 - 0.3 * 1 + 0.5 / 8), 12);
  });
  test('capture: a breakthrough move onto an opponent piece', () => {
    const m = loadGame(sheet('breakthrough')) as GameMachine;
    let s = m.initialState();
    for (const j of [
      ['(move 1 2 1 3)', 'noop'],
      ['noop', '(move 2 7 2 6)'],
      ['(move 1 3 1 4)', 'noop'],
      ['noop', '(move 2 6 2 5)'],
    ])
      s = m.nextState(s, j);
    const moves = m.legal(s, 0);
    const fs = new BoardFeatures().features(m, s, 0, moves, null)!;
    const cap = moves.filter((_, i) => fs[i]![4] === 1).map((x) => m.moveText(x));
    expect(cap).toEqual(['(move 1 4 2 5)']);
  });
  test('SGA tuning is reproducible from its seed', async () => {
    const kif = sheet('ticTacToe');
    const opts = { generations: 2, population: 4, gamesPerEval: 2, iterations: 30, seed: 3 };
    const a = await tune(kif, opts);
    const b = await tune(kif, opts);
    expect(b).toEqual(a);
    const c = await tune(kif, { ...opts, seed: 4 });
    expect(c.history).not.toEqual(a.history);
    expect(a.history.length).toBe(2);
    expect(a.fitness).toBeGreaterThanOrEqual(0);
    expect(a.fitness).toBeLessThanOrEqual(1);
    expect(decode(Array(36).fill(0))).toEqual({ c: 0.1, weights: [-2, -2, -2, -2, -2] });
    expect(decode(Array(36).fill(1)).c).toBeCloseTo(1.5, 12);
  });
});
