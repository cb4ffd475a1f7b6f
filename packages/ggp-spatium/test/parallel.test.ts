import { afterEach, describe, expect, test } from 'vitest';
import { loadGame } from '../src/game.js';
import type { GameMachine } from '../src/machine.js';
import { mergeRootStats, ParallelUctPlayer, WorkerCrashError } from '../src/parallel.js';
import { haveSheets, sheet } from './sheets.js';

describe('root statistics merge', () => {
  test('sums visits and values by move text, keeps every move, adds iterations', () => {
    const m = mergeRootStats([
      { moves: ['(a)', '(b)'], n: [3, 1], w: [2, 0.5], iterations: 4 },
      { moves: ['(b)', '(c)'], n: [2, 5], w: [1, 4], iterations: 7 },
      { moves: [], n: [], w: [], iterations: 0 },
    ]);
    expect(m).toEqual({ moves: ['(a)', '(b)', '(c)'], n: [3, 3, 5], w: [2, 1.5, 4], iterations: 11 });
    expect(mergeRootStats([])).toEqual({ moves: [], n: [], w: [], iterations: 0 });
  });
});

describe.skipIf(!haveSheets)('root-parallel UCT over worker threads', () => {
  let player: ParallelUctPlayer | undefined;
  afterEach(async () => {
    await player?.close();
  });
  // worker start-up loads the TypeScript sources and compiles the sheet: generous waits on a loaded machine
  const opts = { threads: 2, readyWaitMs: 60_000, graceMs: 60_000 };

  test('answers a legal move; the merged root holds every searcher iteration', () => {
    const kif = sheet('ticTacToe');
    const m = loadGame(kif) as GameMachine;
    player = new ParallelUctPlayer({ ...opts, rules: kif });
    player.start(m, 0, 5);
    const s = m.initialState();
    const mv = player.select(s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: 400 });
    expect(m.legalMoves(s, 'xplayer')).toContain(m.moveText(mv));
    expect(player.workerErrors()).toEqual([]);
    expect(player.lastInfo().searchers).toBe(2);
    // fresh trees: every iteration adds one visit to one root move, so the merged visits count both searchers'
    // 200 iterations each (more than either alone), and the merged moves are the legal ones
    const st = player.rootStats();
    expect(st.iterations).toBe(400);
    expect(st.n.reduce((a, b) => a + b, 0)).toBe(400);
    expect([...st.moves].sort()).toEqual(m.legalMoves(s, 'xplayer'));
  }, 120_000);

  test('workers search on the reasoner the main thread loaded, not one they choose again', () => {
    // 'auto' grounds ticTacToe; a worker choosing again would ground it too, so a main thread on the compiler
    // tells the two apart. (The choice must not be made again: its CPU-time budgets count every busy thread in a
    // worker on Node < 23.9, and 16 workers loading breakthrough at once all fell back to the slower compiler.)
    const kif = sheet('ticTacToe');
    for (const engine of ['compiled', 'grounded', 'interpreter'] as const) {
      const m = loadGame(kif, { engine }) as GameMachine;
      expect(m.kind).toBe(engine);
      player = new ParallelUctPlayer({ ...opts, threads: 3, rules: kif });
      player.start(m, 0, 1);
      expect(player.workerKinds()).toEqual([engine, engine]);
      const s = m.initialState();
      expect(m.legalMoves(s, 'xplayer')).toContain(m.moveText(player.select(s, { timeMs: 50 })));
      expect(player.workerErrors()).toEqual([]);
    }
  }, 180_000);

  test('finds the winning move after the moves it was told, through the workers', () => {
    const kif = sheet('ticTacToe');
    const m = loadGame(kif) as GameMachine;
    player = new ParallelUctPlayer({ ...opts, rules: kif });
    player.start(m, 0, 3);
    let s = m.initialState();
    for (const j of [
      ['(mark 1 1)', 'noop'],
      ['noop', '(mark 2 2)'],
      ['(mark 1 2)', 'noop'],
      ['noop', '(mark 3 3)'],
    ]) {
      const joint = j.map((t) => m.parseMove(t)!);
      s = m.next(s, joint);
      player.observe(joint);
    }
    const mv = player.select(s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: 2000 });
    expect(m.moveText(mv)).toBe('(mark 1 3)');
    expect(player.lastInfo().searchers).toBe(2);
  }, 120_000);

  test('a crashed worker is a typed error and the player still answers legally', () => {
    const kif = sheet('connectFour');
    const m = loadGame(kif) as GameMachine;
    player = new ParallelUctPlayer({ ...opts, threads: 3, rules: kif });
    player.start(m, 0, 1);
    const s = m.initialState();
    player.crashWorkerAtNextSearch(0);
    const mv = player.select(s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: 300 });
    expect(m.legalMoves(s, 'red')).toContain(m.moveText(mv));
    const errs = player.workerErrors();
    expect(errs).toHaveLength(1);
    expect(errs[0]).toBeInstanceOf(WorkerCrashError);
    expect(errs[0]!.worker).toBe(0);
    expect(errs[0]!.message).toMatch(/exited/);
    expect(player.lastInfo().searchers).toBe(2);
    // the dead worker is skipped from then on; the others keep searching
    const mv2 = player.select(s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: 300 });
    expect(m.legalMoves(s, 'red')).toContain(m.moveText(mv2));
    expect(player.lastInfo().searchers).toBe(2);
    expect(player.workerErrors()).toHaveLength(1);
  }, 120_000);

  test('a sheet the server loads leniently (goal negated within its own definition) is searched by the workers too', () => {
    // strict validation rejects this sheet (as it does 14 ggp.org base sheets); the protocol server loads rules
    // leniently, so its workers must as well, or they fail to load and the player searches alone
    const kif = `
(role p)
(init (at 0))
(succ 0 1) (succ 1 2) (succ 2 3)
(<= (legal p (go ?y)) (true (at ?x)) (succ ?x ?y))
(<= (legal p stay) (true (at ?x)))
(<= (next (at ?y)) (does p (go ?y)))
(<= (next (at ?x)) (does p stay) (true (at ?x)))
(<= terminal (true (at 3)))
(<= (goal p 100) (true (at 3)))
(<= (goal p 0) (not (goal p 100)))`;
    expect(() => loadGame(kif)).toThrow(/stratification|stratified/);
    const m = loadGame(kif, { strict: false }) as GameMachine;
    player = new ParallelUctPlayer({ ...opts, rules: kif });
    player.start(m, 0, 1);
    const s = m.initialState();
    const mv = player.select(s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: 200 });
    expect(m.legalMoves(s, 'p')).toContain(m.moveText(mv));
    expect(player.workerErrors()).toEqual([]);
    expect(player.lastInfo().searchers).toBe(2);
  }, 120_000);

  test('a worker that cannot load the rules is reported at once, and the player searches without it', () => {
    const m = loadGame(sheet('ticTacToe')) as GameMachine;
    player = new ParallelUctPlayer({ ...opts, rules: '(role xplayer) (init (cell 1 1 b)' });
    player.start(m, 0, 1);
    // reported when the worker exits, not after the ready wait (60 s here) with nothing said
    const errs = player.workerErrors();
    expect(errs).toHaveLength(1);
    expect(errs[0]!.message).toMatch(/exited while loading the rules/);
    const mv = player.select(m.initialState(), { timeMs: Number.POSITIVE_INFINITY, maxIterations: 100 });
    expect(m.legalMoves(m.initialState(), 'xplayer')).toContain(m.moveText(mv));
    expect(player.lastInfo().searchers).toBe(1);
  }, 120_000);

  test('without the rules it searches on the main thread alone', () => {
    const m = loadGame(sheet('ticTacToe')) as GameMachine;
    player = new ParallelUctPlayer({ threads: 4 });
    player.start(m, 0, 1);
    const mv = player.select(m.initialState(), { timeMs: Number.POSITIVE_INFINITY, maxIterations: 100 });
    expect(m.legalMoves(m.initialState(), 'xplayer')).toContain(m.moveText(mv));
    expect(player.lastInfo()).toMatchObject({ searchers: 1, iterations: 100 });
  });
});
