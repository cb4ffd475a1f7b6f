import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { BoardFeatures, boardFromSheet, DEFAULT_WEIGHTS, detectBoard } from '../src/features.js';
import { loadGame } from '../src/game.js';
import { type GameMachine, rng } from '../src/machine.js';
import { LocalAgent, playMatch } from '../src/match.js';
import { playout, RandomPlayer, sampleIndex, UctPlayer } from '../src/players.js';
import { bestOf, CheckpointError, decode, encode, GENOME_BITS, type Genome, genomePlayer, tune } from '../src/tune.js';
import { TuneJobError, TunePool } from '../src/tune-pool.js';
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
    expect(fs[0]).toEqual([0.5, 1, 1 / 8, 0, 0, 0]);
    expect(fs[1]).toEqual([0.5, 0.5, 1 / 8, 0, 0, 0]);
    expect(fs[2]).toEqual([1 / 3, 1, 0, 0, 0, 0]);
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
    // white's own pieces count as friendly (not as the blank): (move 2 2 1 3) lands at (1 3), whose neighbours
    // other than the source (2 2) are (1 2) empty (that piece went to (1 4)), (2 3) empty, (1 4) white, (2 4) empty
    const i = moves.findIndex((x) => m.moveText(x) === '(move 2 2 1 3)');
    expect(fs[i]![2]).toBe(1 / 8);
    expect(fs[i]![3]).toBe(1 / 8);
    // (move 1 4 2 5) captures at (2 5); no white piece touches that cell
    expect(fs[moves.findIndex((x) => m.moveText(x) === '(move 1 4 2 5)')]![3]).toBe(0);
  });
  test('boards that start empty are found from sampled states (connectFour, hex)', () => {
    const c4 = detectBoard(loadGame(sheet('connectFour')) as GameMachine)!;
    expect(c4).toMatchObject({ functor: 'cell', xArg: 0, yArg: 1, minX: 1, maxX: 8, minY: 1, maxY: 6 });
    expect(c4.blank).toBeUndefined();
    // hex also keeps (connected <group> <col> <row>); the one-content-per-cell board is (cell <col> <row> <colour>)
    const hex = detectBoard(loadGame(sheet('hex')) as GameMachine)!;
    expect(hex).toMatchObject({ functor: 'cell', xArg: 0, yArg: 1, minX: 1, maxX: 9 });
  });
  test('win feature and the decisive-move check (connectFour: red has three in row 1)', () => {
    const m = loadGame(sheet('connectFour')) as GameMachine;
    let s = m.initialState();
    for (const j of [
      ['(drop 1)', 'noop'],
      ['noop', '(drop 1)'],
      ['(drop 2)', 'noop'],
      ['noop', '(drop 2)'],
      ['(drop 3)', 'noop'],
      ['noop', '(drop 3)'],
    ])
      s = m.nextState(s, j);
    const moves = m.legal(s, 0);
    const f = new BoardFeatures();
    const fs = f.features(m, s, 0, moves, null)!;
    const win = moves.filter((_, i) => fs[i]![5] === 1).map((x) => m.moveText(x));
    expect(win).toEqual(['(drop 4)']);
    // the landing cell of (drop 4) is (4 1): neighbours (3 1) red, (3 2) black → contact 2/8, friendly 1/8
    const i4 = moves.findIndex((x) => m.moveText(x) === '(drop 4)');
    expect([fs[i4]![2], fs[i4]![3]]).toEqual([2 / 8, 1 / 8]);
    // in playouts the winning drop is played outright
    const pw = f.playoutWeights(m, s, 0, moves, null)!;
    expect([...pw].map((x, i) => (x > 0 ? m.moveText(moves[i]!) : null)).filter(Boolean)).toEqual(['(drop 4)']);
  });
  test('anti-decisive check in playouts (connectFour: black must block red three in row 1)', () => {
    const m = loadGame(sheet('connectFour')) as GameMachine;
    let s = m.initialState();
    for (const j of [
      ['(drop 1)', 'noop'],
      ['noop', '(drop 1)'],
      ['(drop 2)', 'noop'],
      ['noop', '(drop 2)'],
      ['(drop 3)', 'noop'],
    ])
      s = m.nextState(s, j);
    const moves = m.legal(s, 1);
    const text = (i: number) => m.moveText(moves[i]!);
    const anti = new BoardFeatures(DEFAULT_WEIGHTS, undefined, { antiDecisive: true });
    const plain = new BoardFeatures();
    const seen = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      expect(text(anti.playoutMove(m, s, 1, moves, null, rng(seed)))).toBe('(drop 4)');
      // switched off, the move is the one drawn from the playout weights with the same random numbers
      const i = plain.playoutMove(m, s, 1, moves, null, rng(seed));
      expect(i).toBe(sampleIndex(plain.playoutWeights(m, s, 1, moves, null)!, rng(seed)));
      seen.add(text(i));
    }
    expect(seen.size).toBeGreaterThan(1);
    // red to move with its own win: the decisive move comes first, the anti-decisive check does not override it
    const s2 = m.nextState(s, ['noop', '(drop 7)']);
    const red = m.legal(s2, 0);
    for (let seed = 1; seed <= 10; seed++)
      expect(m.moveText(red[anti.playoutMove(m, s2, 0, red, null, rng(seed))]!)).toBe('(drop 4)');
    // and a whole biased playout with the check stays legal to the end
    const uct = new UctPlayer({ bias: anti });
    uct.start(m, 1, 5);
    expect(m.moveText(uct.select(s, { timeMs: 1e9, maxIterations: 200 }))).toBe('(drop 4)');
  });
  test('the fast biased playout makes the moves of the legal/next loop with playoutMove', () => {
    for (const name of ['breakthrough', 'connectFour', 'ticTacToe']) {
      const m = loadGame(sheet(name)) as GameMachine;
      expect(m.kind).toBe('grounded');
      for (const antiDecisive of [false, true]) {
        // tuned-like weights with every term non-zero, so the grid, proximity and capture all count
        const w = [-1.7, -2.8, -0.8, 1.6, 1.5, 4.8];
        const fast = new BoardFeatures(w, undefined, { antiDecisive });
        const ref = new BoardFeatures(w, undefined, { antiDecisive });
        let s = m.initialState();
        let total = 0;
        for (let seed = 1; seed <= 30; seed++) {
          const ra = rng(seed);
          const rb = rng(seed);
          const a = fast.playout(m, s, ra);
          const b = playout(m, s, rb, ref);
          expect(a).toEqual(b);
          expect(ra()).toBe(rb()); // the same number of draws
          total += a.plies;
          // also from later states: one step of a seeded random game every few playouts
          if (seed % 5 === 0 && !m.isTerminal(s))
            s = m.next(
              s,
              m.roles().map((_, r) => m.legal(s, r)[seed % m.legal(s, r).length]!),
            );
        }
        expect(total).toBeGreaterThan(30);
      }
    }
  });
  test('UCT with features grows the same tree through the fast biased playout as through the generic loop', () => {
    const m = loadGame(sheet('breakthrough')) as GameMachine;
    const make = (fastPlayouts: boolean) => new UctPlayer({ bias: new BoardFeatures(), fastPlayouts });
    const a = make(true);
    const b = make(false);
    a.start(m, 0, 4);
    b.start(m, 0, 4);
    const s = m.initialState();
    a.select(s, { timeMs: 1e9, maxIterations: 150 });
    b.select(s, { timeMs: 1e9, maxIterations: 150 });
    expect(a.rootStats()).toEqual(b.rootStats());
    expect(a.rootStats().iterations).toBe(150);
  });
  test("biasPlies: past them the playout is the net's plain playout()", () => {
    const m = loadGame(sheet('breakthrough')) as GameMachine;
    const f = new BoardFeatures(DEFAULT_WEIGHTS, undefined, { biasPlies: 0 });
    for (let seed = 1; seed <= 10; seed++) {
      const a = f.playout(m, m.initialState(), rng(seed));
      const b = m.playout!(m.initialState(), rng(seed), 2000);
      expect(a).toEqual({ plies: b.plies, values: b.goals.map((g) => (g ?? 0) / 100) });
    }
    // 4 biased plies, then plain: the first 4 joint moves are those of the fully biased playout
    const seen = { four: [] as string[], all: [] as string[] };
    for (const [k, bf] of [
      ['four', new BoardFeatures(DEFAULT_WEIGHTS, undefined, { biasPlies: 4 })],
      ['all', new BoardFeatures(DEFAULT_WEIGHTS)],
    ] as const) {
      bf.boardOf(m);
      bf.playout(
        spyNext(m, (j) => seen[k].push(j.map((x) => m.moveText(x)).join())),
        m.initialState(),
        rng(9),
      );
    }
    expect(seen.four.length).toBeGreaterThanOrEqual(4);
    expect(seen.all.slice(0, 4)).toEqual(seen.four.slice(0, 4));
  });
  test('tree priors take successor states only for decisive-check candidates unless effectsAll', () => {
    const m = loadGame(sheet('breakthrough')) as GameMachine;
    const s = m.initialState();
    const moves = m.legal(s, 0);
    const count = (opts: { effectsAll?: boolean }) => {
      let n = 0;
      const f = new BoardFeatures(DEFAULT_WEIGHTS, undefined, opts);
      f.boardOf(m); // board detection samples playouts: not counted
      f.features(
        spyNext(m, () => n++),
        s,
        0,
        moves,
        null,
      );
      return n;
    };
    // no opening move lands on a far row (1 or 8): no successor; with effectsAll one per move
    expect(count({})).toBe(0);
    expect(count({ effectsAll: true })).toBe(moves.length);
  });
  test('the table-driven prior equals exp(w·f) over the feature vectors, bit for bit', () => {
    for (const name of ['breakthrough', 'knightThrough', 'ticTacToe', 'connectFour']) {
      const m = loadGame(sheet(name)) as GameMachine;
      const w = [-1.7, -2.8, -0.8, 1.6, 1.5, 4.8];
      const fast = new BoardFeatures(w);
      const ref = new BoardFeatures(w);
      ref.fastPrior = false;
      const rand = rng(5);
      let compared = 0;
      for (let game = 0; game < 4; game++) {
        let s = m.initialState();
        let last: unknown[] | null = null;
        while (!m.isTerminal(s)) {
          for (let r = 0; r < m.roles().length; r++) {
            const ls = m.legal(s, r);
            if (ls.length < 2) continue;
            expect(fast.weights(m, s, r, ls, last)).toEqual(ref.weights(m, s, r, ls, last));
            compared++;
          }
          last = m.roles().map((_, r) => {
            const ls = m.legal(s, r);
            return ls[(rand() * ls.length) | 0];
          });
          s = m.next(s, last);
        }
      }
      expect(compared).toBeGreaterThan(10);
    }
  });
  test('genome switch: antiDecisive reaches the features', () => {
    const g = { ...decode(new Array(GENOME_BITS).fill(0)), antiDecisive: true };
    const p = genomePlayer(g) as unknown as { bias: BoardFeatures };
    expect(p.bias.opts.antiDecisive).toBe(true);
    expect(
      (genomePlayer(decode(new Array(GENOME_BITS).fill(0))) as unknown as { bias: BoardFeatures }).bias.opts
        .antiDecisive,
    ).toBe(false);
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
    expect(GENOME_BITS).toBe(54);
    // the last gene is the playout form: its lowest quarter keeps the features in the tree's prior only
    expect(decode(Array(54).fill(0))).toEqual({
      c: 0.1,
      priorWeight: 0,
      weights: [-3, -3, -3, -3, -3, 0],
      biasPlayouts: false,
    });
    expect(decode(Array(54).fill(1)).c).toBeCloseTo(1.5, 12);
    expect(decode(Array(54).fill(1)).biasPlies).toBeNull(); // the top quarter: every ply biased
    const g = { c: 0.7, priorWeight: 1, weights: [1, -0.3, 0.5, 0.3, 1.5, 3] };
    // 6-bit genes: decoding an encoding is within half a quantisation step of the value
    const back = decode(encode(g));
    expect(Math.abs(back.c - g.c)).toBeLessThanOrEqual(1.4 / 63 / 2 + 1e-12);
    for (const [i, w] of back.weights.entries())
      expect(Math.abs(w - g.weights[i]!)).toBeLessThanOrEqual(6 / 63 / 2 + 1e-12);
    // the playout form survives a round trip: prior only, 4 and 16 biased plies, all of them
    expect(back.biasPlies).toBeNull();
    expect(decode(encode({ ...g, biasPlayouts: false })).biasPlayouts).toBe(false);
    expect(decode(encode({ ...g, biasPlies: 4 })).biasPlies).toBe(4);
    expect(decode(encode({ ...g, biasPlies: 16 })).biasPlies).toBe(16);
    expect((genomePlayer({ ...g, biasPlies: 4 }) as unknown as { bias: BoardFeatures }).bias.opts.biasPlies).toBe(4);
  });
  test('SGA elite and result: the best mean over all games, not the best single evaluation', async () => {
    const t = (b: number, sum: number, games: number) => ({ bits: [b], sum, games });
    // 11/12 once is a higher mean than 20/24, and wins; equal means go to more games, then to the first seen
    expect(bestOf([t(0, 20, 24), t(1, 11, 12)])!.bits).toEqual([1]);
    expect(bestOf([t(0, 6, 12), t(1, 12, 24)])!.bits).toEqual([1]);
    expect(bestOf([t(0, 6, 12), t(1, 6, 12)])!.bits).toEqual([0]);
    expect(bestOf([])).toBeUndefined();
    // in a run: the three best replay `confirmGames` games and the returned fitness is the mean of all its games
    const kif = sheet('ticTacToe');
    const lines: string[] = [];
    const opts = { generations: 2, population: 4, gamesPerEval: 2, iterations: 30, seed: 3 };
    const r = await tune(kif, { ...opts, confirmGames: 4, log: (l) => lines.push(l) });
    const confirms = lines.filter((l) => l.startsWith('confirm '));
    expect(confirms).toHaveLength(3);
    const last = /(\d\.\d+) over (\d+)$/;
    // the returned genome's line is the one whose pooled mean is highest
    const pooled = confirms.map((l) => Number(last.exec(l)![1]));
    expect(r.fitness).toBeCloseTo(Math.max(...pooled), 3);
    expect(r.games).toBeGreaterThanOrEqual(2 + 4);
    expect(r.games % 2).toBe(0);
    // with confirmation off, the elite is returned as it stands, after no extra games
    const r0 = await tune(kif, { ...opts, confirmGames: 0 });
    expect(r0.games % 2).toBe(0);
    await expect(tune(kif, { ...opts, confirmGames: -1 })).rejects.toThrow(RangeError);
    // a checkpoint of the earlier format (best single estimate, no tally) is refused with a clear message
    const tmp = mkdtempSync(join(tmpdir(), 'ggp-tune-'));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    const ck = join(tmp, 'ck.json');
    writeFileSync(ck, JSON.stringify({ version: 1, key: 'x', generation: 0, pop: [], fit: [], history: [], draws: 0 }));
    await expect(tune(kif, { ...opts, checkpoint: ck })).rejects.toThrow(/earlier version/);
  });
  test('SGA over child processes (jobs): the same result as one process, checkpoints and resume included', async () => {
    const kif = sheet('ticTacToe');
    const opts = { generations: 2, population: 4, gamesPerEval: 3, iterations: 30, seed: 7 };
    const lines1: string[] = [];
    const one = await tune(kif, { ...opts, log: (l) => lines1.push(l) });
    const lines3: string[] = [];
    const three = await tune(kif, { ...opts, jobs: 3, log: (l) => lines3.push(l) });
    expect(three).toEqual(one);
    // genomes are logged (and checkpointed) in order, with the fitness a one-process run computes
    expect(lines3).toEqual(lines1);
    // cut inside the second generation, resumed with another number of jobs: the uncut result
    const tmp = mkdtempSync(join(tmpdir(), 'ggp-tune-'));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    const ck = join(tmp, 'ck.json');
    let n = 0;
    const cut = (l: string) => {
      if (l.includes('genome') && ++n === 6) throw new Error('cut');
    };
    await expect(tune(kif, { ...opts, jobs: 2, checkpoint: ck, log: cut })).rejects.toThrow('cut');
    const resumed = await tune(kif, { ...opts, jobs: 3, checkpoint: ck });
    expect(resumed).toEqual(one);
    await expect(tune(kif, { ...opts, jobs: 0 })).rejects.toThrow(RangeError);
  }, 120_000);
  test('a failing tune job is a typed error, and the pool stops', async () => {
    const kif = sheet('ticTacToe');
    const pool = new TunePool(kif, 2, 'grounded');
    const task = { index: 0, playclock: 1, seed: 1, iterations: 10 };
    // null weights: the child's player cannot be built, the game fails there
    const bad = { c: 0.7, priorWeight: 1, weights: null } as unknown as Genome;
    const good = decode(new Array(GENOME_BITS).fill(0));
    await expect(
      pool.run([
        { genome: good, task },
        { genome: bad, task: { ...task, index: 1 } },
      ]),
    ).rejects.toThrow(TuneJobError);
    await expect(pool.run([{ genome: good, task }])).rejects.toThrow(/closed/);
    // a child that cannot load the sheet: refused before any game, not a hang
    const broken = new TunePool('(role x', 1, 'grounded');
    await expect(broken.run([{ genome: good, task }])).rejects.toThrow(TuneJobError);
    broken.close();
    // and a pool that works plays every game it is given, scores in task order
    const ok = new TunePool(kif, 2, 'compiled');
    try {
      const s = await ok.run([0, 1, 2].map((index) => ({ genome: good, task: { ...task, index } })));
      expect(s).toHaveLength(3);
      for (const x of s) expect([0, 0.5, 1]).toContain(x);
    } finally {
      ok.close();
    }
  }, 120_000);
  test('the tune pool stops a hung child: a typed error naming what it was doing, not a wait forever', async () => {
    const kif = sheet('ticTacToe');
    const good = decode(new Array(GENOME_BITS).fill(0));
    // a billion iterations for the first move: far longer than the half-second the watchdog allows a ply
    const task = { index: 0, playclock: 1, seed: 1, iterations: 1e9 };
    const pool = new TunePool(kif, 1, 'grounded', true, { stallMs: 500 });
    await expect(pool.run([{ genome: good, task }])).rejects.toThrow(
      /tune job 0: no answer for 0\.5 s in game 0 before its first ply; stopped as hung/,
    );
    pool.close();
    // loading has its own limit: no child loads a sheet in a millisecond
    const slow = new TunePool(kif, 2, 'grounded', true, { loadMs: 1 });
    await expect(slow.run([{ genome: good, task }])).rejects.toThrow(/no answer for 0\.001 s loading the sheet/);
    slow.close();
    expect(() => new TunePool(kif, 1, 'grounded', true, { stallMs: 0 })).toThrow(RangeError);
    await expect(tune(kif, { jobs: 2, jobTimeout: -1 })).rejects.toThrow(/jobTimeout/);
  }, 120_000);
  test('playMatch reports each ply (the tune child sends it to its pool as a sign of life)', async () => {
    const kif = sheet('ticTacToe');
    const seen: number[] = [];
    const rec = await playMatch(kif, [new LocalAgent(new RandomPlayer(), 1), new LocalAgent(new RandomPlayer(), 2)], {
      seed: 3,
      onPly: (n) => seen.push(n),
    });
    expect(rec.plies).toBeGreaterThan(4);
    expect(seen).toEqual(Array.from({ length: rec.plies }, (_, i) => i + 1));
  });
  test('SGA checkpoint: a run cut anywhere resumes to the result of an uncut run', async () => {
    const kif = sheet('ticTacToe');
    const opts = { generations: 2, population: 4, gamesPerEval: 2, iterations: 30, seed: 5 };
    const full = await tune(kif, opts);
    for (const cutAt of [3, 5]) {
      // 3: inside the first generation; 5: the first genome of the second
      const tmp = mkdtempSync(join(tmpdir(), 'ggp-tune-'));
      onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
      const ck = join(tmp, 'ck.json');
      let n = 0;
      const cut = (l: string) => {
        if (l.includes('genome') && ++n === cutAt) throw new Error('cut');
      };
      await expect(tune(kif, { ...opts, checkpoint: ck, log: cut })).rejects.toThrow('cut');
      expect(existsSync(ck)).toBe(true);
      const lines: string[] = [];
      const resumed = await tune(kif, { ...opts, checkpoint: ck, log: (l) => lines.push(l) });
      expect(resumed).toEqual(full);
      expect(lines[0]).toMatch(/^resuming at generation/);
      // genomes evaluated before the cut are not played again
      expect(lines.filter((l) => /^ +generation \d+ genome/.test(l)).length).toBe(8 - (cutAt - 1));
      // a checkpoint of another run is refused, not silently mixed in
      await expect(tune(kif, { ...opts, seed: 6, checkpoint: ck })).rejects.toThrow(CheckpointError);
    }
  });
});

/** `m` with a hook on `next` (every method still runs on `m` itself, whose net keeps its working state) */
function spyNext(m: GameMachine, seen: (joint: readonly unknown[]) => void): GameMachine {
  return new Proxy(m, {
    get(t, k) {
      if (k === 'next')
        return (st: unknown, j: readonly unknown[]) => {
          seen(j);
          return t.next(st, j);
        };
      const v = Reflect.get(t, k);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}
