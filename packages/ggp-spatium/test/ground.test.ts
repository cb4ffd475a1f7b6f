// The grounded net against the other reasoners: the interpreter (via conformSheet, in conformance.test.ts) and
// the compiled reasoner on more playouts here; its allocation-free playout against the generic legal/next loop;
// refusals that hand the sheet to the compiler; bad moves.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { checkConformance } from '../src/conformance.js';
import { IllegalMoveError } from '../src/errors.js';
import { loadGame } from '../src/game.js';
import { parseGdl, ruleText } from '../src/gdl.js';
import { GroundingError, GroundMachine, loadGrounded, projectBodies } from '../src/ground.js';
import { loadInterpreter } from '../src/interpreter.js';
import { type GameMachine, randomPlayout, rng } from '../src/machine.js';
import { haveSheets, SHEETS, sheet } from './sheets.js';

const slack = { maxMs: 60_000 };

describe.skipIf(!haveSheets)('grounded net vs compiled reasoner', () => {
  test.each([
    ['ticTacToe', 300],
    ['connectFour', 60],
    ['breakthrough', 10],
    ['pentago', 6],
    ['connectFourSimultaneous', 30],
    // goal-only nodes left out of the propagation (piece counts; tested below) and legal entries gated through
    // an OR (englishDraughts' captures)
    ['reversi', 6],
    ['englishDraughts', 20],
    // recursive ground rules, unrolled (unrollRecursion): liberties through chains, cups stacked on cups
    ['atariGoVariant_7x7', 10],
    ['cubicup_3player', 10],
  ])('%s (%i playouts)', (name, n) => {
    const kif = sheet(name);
    const g = loadGrounded(kif, slack);
    const r = checkConformance(loadCompiled(kif, { strict: false }) as GameMachine, g as GameMachine, {
      playouts: n,
      seed: 17,
    });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(n);
  });

  test('reversi: the piece counts only goals read are computed when goals are asked, not every ply', () => {
    const g = loadGrounded(sheet('reversi'), slack);
    expect(g.net.lazyOrder.length).toBeGreaterThan(1000);
  });

  test.each(['ticTacToe', 'connectFour', 'breakthrough', '3pConnectFour', 'reversi', 'englishDraughts'])(
    '%s: playout() makes the same moves as the legal/next loop for the same seed',
    (name) => {
      const g = loadGrounded(sheet(name), slack);
      const s0 = g.initialState();
      for (let seed = 1; seed <= 25; seed++) {
        const fast = g.playout(s0, rng(seed));
        const slow = randomPlayout(g as GameMachine, s0, rng(seed));
        expect(fast).toEqual(slow);
        // cut short: the same plies and the goals of the same (non-terminal) state
        expect(g.playout(s0, rng(seed), 3)).toEqual(randomPlayout(g as GameMachine, s0, rng(seed), 3));
      }
      // the net's incremental state does not leak into later queries
      expect(g.legalMoves(s0, g.roles()[0]!)).toEqual(
        loadCompiled(sheet(name)).legalMoves(loadCompiled(sheet(name)).initialState(), g.roles()[0]!),
      );
    },
  );

  test.each([
    ['atariGoVariant_7x7', Number.POSITIVE_INFINITY],
    ['atariGoVariant_7x7', 16],
    ['cubicup_3player', 0],
  ])('%s, recursion unrolled up to %s atoms, else in place: playout() as the legal/next loop', (name, unrollMax) => {
    const g = loadGrounded(sheet(name), { ...slack, unrollMax });
    expect(g.net.comps.length > 0).toBe(unrollMax < 49);
    const s0 = g.initialState();
    for (let seed = 1; seed <= 15; seed++) {
      expect(g.playout(s0, rng(seed))).toEqual(randomPlayout(g as GameMachine, s0, rng(seed)));
      expect(g.playout(s0, rng(seed), 5)).toEqual(randomPlayout(g as GameMachine, s0, rng(seed), 5));
    }
  });
});

describe.skipIf(!haveSheets)('grounded net: rules split by variable elimination', () => {
  test('every rule split (projectAbove 0) grounds to the same game', () => {
    for (const [name, n] of [
      ['ticTacToe', 40],
      ['connectFour', 10],
      ['pentago', 3],
      ['reversi', 2],
      ['englishDraughts', 5],
    ] as const) {
      const kif = sheet(name);
      const g = loadGrounded(kif, { ...slack, projectAbove: 0 });
      const r = checkConformance(loadCompiled(kif, { strict: false }) as GameMachine, g as GameMachine, {
        playouts: n,
        seed: 5,
      });
      expect(r.mismatches, name).toEqual([]);
      expect(r.playouts, name).toBe(n);
      // the split did happen (ticTacToe's rules have no variable to eliminate)
      if (name !== 'ticTacToe') expect(g.net.nNodes, name).not.toBe(loadGrounded(kif, slack).net.nNodes);
    }
  });

  test('hex grounds only with its large rules split, and plays as the compiled reasoner', () => {
    const kif = sheet('hex');
    expect(() => loadGrounded(kif, { projectAbove: Number.POSITIVE_INFINITY })).toThrow(GroundingError);
    const g = loadGrounded(kif, { ...slack, projectAbove: 50_000 });
    // by default a sheet with too many instances is split the same way, and loadGame takes that net
    expect(loadGrounded(kif, slack).net.nNodes).toBe(g.net.nNodes);
    expect(loadGame(kif, { ground: slack }).kind).toBe('grounded');
    const r = checkConformance(loadCompiled(kif, { strict: false }) as GameMachine, g as GameMachine, {
      playouts: 4,
      seed: 8,
    });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(4);
    const s0 = g.initialState();
    for (let seed = 1; seed <= 3; seed++) expect(g.playout(s0, rng(seed))).toEqual(randomPlayout(g, s0, rng(seed)));
    // (three groundings of hex and a compile: ≈ 12 s on a quiet machine, past the 60 s default at load 15)
  }, 240_000);
});

describe.skipIf(!haveSheets)('grounded net: watched literals and demultiplexers', () => {
  test.each([
    ['englishDraughts', 'interpreter', {}, 10],
    ['hex', 'interpreter', { projectAbove: 50_000 }, 4],
  ] as const)('%s: the net with watched literals plays as the %s and as the net without them', (name, ref, o, n) => {
    const kif = sheet(name);
    const g = loadGrounded(kif, { ...slack, ...o });
    const plain = loadGrounded(kif, { ...slack, ...o, watchPlies: 0 });
    // the profile did choose watches here (else this would test nothing new), and none without a profile
    expect(g.net.watch.some((w) => w >= 0)).toBe(true);
    expect(plain.net.watch.every((w) => w < 0)).toBe(true);
    expect(plain.net.famX.length).toBe(0);
    // hex's `(step ?k)` and englishDraughts' turn and move counters feed demultiplexers
    expect(g.net.famX.length).toBeGreaterThan(0);
    const other = ref === 'interpreter' ? loadInterpreter(kif) : loadCompiled(kif, { strict: false });
    const r = checkConformance(other as GameMachine, g as GameMachine, { playouts: n, seed: 21 });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(n);
    const s0 = g.initialState();
    for (let seed = 1; seed <= 5; seed++) {
      expect(g.playout(s0, rng(seed))).toEqual(plain.playout(plain.initialState(), rng(seed)));
      expect(g.playout(s0, rng(seed))).toEqual(randomPlayout(g as GameMachine, s0, rng(seed)));
    }
  });

  test('two ANDs of the same member and X: one is demultiplexed, the other stays counted (test_case_2b)', () => {
    // the snake's (next (pos ?xn)) and (next (cell ?x ?move)) both read (does snake ?move) ∧ (true (pos ?x))
    const kif = sheet('test/test_case_2b');
    // (the profile alone would not keep them on so small a net)
    const g = loadGrounded(kif, { watchMin: 0 });
    expect(g.net.famX.length).toBeGreaterThan(0);
    const s1 = g.nextState(g.initialState(), ['mov_right']);
    expect(g.fluents(s1)).toContain('(pos c7)');
    expect(g.fluents(s1)).toContain('(cell c6 mov_right)');
    const r = checkConformance(loadInterpreter(kif) as GameMachine, g as GameMachine, { playouts: 20, seed: 4 });
    expect(r.mismatches).toEqual([]);
  });

  test('every edge-case sheet with watches and demuxes forced on (watchMin 0) plays as the interpreter', () => {
    // and a few of the core tier, whose nets the profile leaves alone by default
    const names = readdirSync(join(SHEETS, 'test'))
      .filter((f) => f.endsWith('.kif'))
      .map((f) => `test/${f.slice(0, -4)}`)
      .concat(['ticTacToe', 'connectFour', 'breakthrough', 'pentago']);
    let forced = 0;
    for (const name of names) {
      const kif = sheet(name);
      let g: GroundMachine;
      try {
        g = loadGrounded(kif, { watchMin: 0 });
      } catch {
        // (sheets the validator or the grounder refuses are the conformance tests' business)
        continue;
      }
      if (g.net.watch.some((w) => w >= 0) || g.net.famX.length) forced++;
      const r = checkConformance(loadInterpreter(kif, { strict: false }) as GameMachine, g as GameMachine, {
        playouts: 5,
        seed: 6,
      });
      expect(r.mismatches, name).toEqual([]);
    }
    expect(forced).toBeGreaterThanOrEqual(9);
  });

  test('small nets where watches would save little are left as they were', () => {
    for (const name of ['ticTacToe', 'connectFour']) {
      const net = loadGrounded(sheet(name), slack).net;
      expect(net.watch.every((w) => w < 0)).toBe(true);
      expect(net.famX.length).toBe(0);
    }
  });
});

describe('grounded net: small sheets, refusals and bad input', () => {
  test('projectBodies: a variable only some literals share goes into a helper over what the rest needs', () => {
    // hex's transfer frame rule, hand-split: ?e appears in two literals and not in the head
    const [r] = parseGdl('(<= (next (c ?k ?m)) (t ?e) (true (c ?e ?m)) (true (s ?k)))');
    expect(projectBodies([r!]).map(ruleText)).toEqual([
      '(<= (next~proj1 ?m) (t ?e) (true (c ?e ?m)))',
      '(<= (next (c ?k ?m)) (true (s ?k)) (next~proj1 ?m))',
    ]);
    // not split: literals with `does` (the net's move sets read whole bodies), a helper that would be unsafe
    // (?y of the `not` bound outside it) or wider than the literal it replaces, or only static literals
    for (const text of [
      '(<= (h ?x) (does ?r (m ?x ?y)) (true (p ?y)))',
      '(<= (h ?x) (true (a ?x ?z)) (not (true (b ?z ?y))) (true (d ?y)))',
      '(<= (h ?x ?y) (true (a ?x ?c)) (true (a ?y ?c)))',
      '(<= (h ?x) (true (a ?x)) (s ?x ?y) (t ?y ?z))',
    ]) {
      const rs = parseGdl(text);
      expect(projectBodies(rs).map(ruleText), text).toEqual(rs.map(ruleText));
    }
  });

  const frame = `(role a) (role b) (init (at 1)) (init (turn a))
    (succ 1 2) (succ 2 3) (succ 3 4)
    (<= (legal ?r (go ?y)) (true (turn ?r)) (true (at ?x)) (succ ?x ?y))
    (<= (legal ?r wait) (role ?r) (not (true (turn ?r))))
    (<= (next (at ?y)) (does ?r (go ?y)))
    (<= (next (at ?x)) (true (at ?x)) (not (moved)))
    (<= moved (does ?r (go ?y)))
    (<= (next (turn a)) (true (turn b)))
    (<= (next (turn b)) (true (turn a)))
    (<= terminal (true (at 4)))
    (<= (goal a 100) (true (at 4)) (true (turn b)))
    (<= (goal a 0) (not (true (at 4))))
    (<= (goal a 0) (true (turn a)))
    (<= (goal b 100) (true (at 4)) (true (turn a)))
    (<= (goal b 0) (not (true (at 4))))
    (<= (goal b 0) (true (turn b)))`;

  test('a hand-checked sheet: states, moves, goals', () => {
    const g = loadGrounded(frame);
    let s = g.initialState();
    expect(g.fluents(s)).toEqual(['(at 1)', '(turn a)']);
    expect(g.legalMoves(s, 'a')).toEqual(['(go 2)']);
    expect(g.legalMoves(s, 'b')).toEqual(['wait']);
    s = g.nextState(s, ['(go 2)', 'wait']);
    expect(g.fluents(s)).toEqual(['(at 2)', '(turn b)']);
    s = g.nextState(s, ['wait', '(go 3)']);
    s = g.nextState(s, ['(go 4)', 'wait']);
    expect(g.isTerminal(s)).toBe(true);
    expect([g.goal(s, 'a'), g.goal(s, 'b')]).toEqual([100, 0]);
    const r = checkConformance(loadInterpreter(frame) as GameMachine, g as GameMachine, { playouts: 20 });
    expect(r.mismatches).toEqual([]);
  });

  test('a move that is never legal is a typed error; a wrong number of moves too', () => {
    const g = loadGrounded(frame);
    const s = g.initialState();
    expect(() => g.nextState(s, ['(go 9)', 'wait'])).toThrow(IllegalMoveError);
    expect(() => g.nextState(s, ['(go 2)'])).toThrow(IllegalMoveError);
    expect(() => g.legalMoves(s, 'c')).toThrow(IllegalMoveError);
  });

  test('ground dependencies with a cycle are unrolled: a loop goes false when its support goes', () => {
    // reach runs around the loop 2 → 3 → 4 → 2; cutting 1 → 2 must take all three down, which a counter net
    // evaluated on the cycle itself would not (each would keep the next one up). (Two bodies without reach — the
    // second never holds here — so every layer reads them through layer 0.)
    const cyclic = `(role r) (init (src 1)) (init (edge 1 2)) (init (edge 2 3)) (init (edge 3 4)) (init (edge 4 2))
      (init (step 0)) (succ 0 1) (succ 1 2) (succ 2 3) (succ 3 4)
      (<= (reach ?x) (true (src ?x)))
      (<= (reach ?x) (true (src ?y)) (true (edge ?y ?x)) (true (edge ?x ?y)))
      (<= (reach ?y) (reach ?x) (true (edge ?x ?y)))
      (<= (legal r (cut ?x ?y)) (true (edge ?x ?y)))
      (<= (legal r (move ?x)) (reach ?x) (true (src ?y)) (distinct ?x ?y))
      (<= (legal r wait) (true (step ?n)))
      (<= moving (does r (move ?x)))
      (<= (next (src ?x)) (does r (move ?x)))
      (<= (next (src ?x)) (true (src ?x)) (not moving))
      (<= (next (edge ?x ?y)) (true (edge ?x ?y)) (not (does r (cut ?x ?y))))
      (<= (next (step ?m)) (true (step ?n)) (succ ?n ?m))
      (<= terminal (true (step 4)))
      (<= (goal r 100) (reach 4))
      (<= (goal r 0) (not (reach 4)))`;
    // reach 2, 3 and 4 form one component (no edge leads to 1): 3 layers, 2 of them added per atom; or, past
    // `unrollMax`, a fixpoint evaluated in place
    const unrolled = loadGrounded(cyclic);
    expect(unrolled.net.unrolled).toBe(6);
    expect(unrolled.net.unrolledDepth).toBe(3);
    const inPlace = loadGrounded(cyclic, { unrollMax: 2 });
    expect(inPlace.net.comps.map((c) => c.atoms.length)).toEqual([3]);
    expect(inPlace.net.unrolled).toBe(0);
    expect(loadGame(cyclic).kind).toBe('grounded');
    for (const g of [unrolled, inPlace]) playsTheLoop(g, cyclic);
  });

  test('a recursive component that reads the moves settles again when they are set and taken back', () => {
    // `flow` crosses an edge unless this ply's move cuts it, and the next state records where it went: the
    // successor depends on the recursion under the joint move (legal may not read moves: GDL)
    const kif = `(role r) (init (edge 1 2)) (init (edge 2 3)) (init (edge 3 1)) (init (edge 3 4)) (init (step 0))
      (succ 0 1) (succ 1 2) (succ 2 3) (succ 3 4) (succ 4 5)
      (<= (flow 1) (true (step ?n)))
      (<= (flow ?y) (flow ?x) (true (edge ?x ?y)) (not (does r (cut ?x ?y))))
      (<= (legal r (cut ?x ?y)) (true (edge ?x ?y)))
      (<= (legal r wait) (true (step ?n)))
      (<= (next (edge ?x ?y)) (true (edge ?x ?y)) (not (does r (cut ?x ?y))))
      (<= (next (wet ?x)) (flow ?x))
      (<= (next (step ?m)) (true (step ?n)) (succ ?n ?m))
      (<= terminal (true (step 5)))
      (<= (goal r 100) (true (wet 4)))
      (<= (goal r 0) (not (true (wet 4))))`;
    const ref = loadInterpreter(kif) as GameMachine;
    const inPlace = loadGrounded(kif, { unrollMax: 0 });
    expect(inPlace.net.comps.map((c) => [c.atoms.length, c.readsMoves])).toEqual([[3, true]]);
    for (const g of [loadGrounded(kif), inPlace]) {
      const s1 = g.nextState(g.initialState(), ['(cut 1 2)']);
      expect(g.fluents(s1)).toEqual(['(edge 2 3)', '(edge 3 1)', '(edge 3 4)', '(step 1)', '(wet 1)']);
      expect(g.legalMoves(s1, 'r')).toEqual(['(cut 2 3)', '(cut 3 1)', '(cut 3 4)', 'wait']);
      // waiting instead: the water reaches 4 through 1 → 2 → 3 → 4
      expect(g.fluents(g.nextState(g.initialState(), ['wait']))).toContain('(wet 4)');
      const r = checkConformance(ref, g as GameMachine, { playouts: 200, seed: 5 });
      expect(r.mismatches).toEqual([]);
    }
  });

  test('negation inside a cycle of ground atoms (a sheet loaded leniently) is refused, and loadGame compiles it', () => {
    // b needs a and not a, a needs b or f: unstratified, which the validator reports and --lenient lets through
    const kif = `(role r) (init (f 1)) (init (f 2))
      (<= (a ?x) (true (f ?x)) (b ?x))
      (<= (a ?x) (true (f ?x)))
      (<= (b ?x) (a ?x) (not (a ?x)))
      (<= (legal r (go ?x)) (a ?x))
      (<= (next (f ?x)) (true (f ?x)))
      (<= terminal (b 1))
      (goal r 100)`;
    expect(() => loadGrounded(kif, { strict: false })).toThrow(/negation within recursion at a\/1/);
    const m = loadGame(kif, { strict: false });
    expect(m.kind).not.toBe('grounded');
    expect(m.legalMoves(m.initialState(), 'r')).toEqual(['(go 1)', '(go 2)']);
  });

  const playsTheLoop = (g: GroundMachine, cyclic: string) => {
    const s0 = g.initialState();
    expect(g.legalMoves(s0, 'r').sort()).toEqual(
      ['(cut 1 2)', '(cut 2 3)', '(cut 3 4)', '(cut 4 2)', '(move 2)', '(move 3)', '(move 4)', 'wait'].sort(),
    );
    expect(g.goal(s0, 'r')).toBe(100);
    const s1 = g.nextState(s0, ['(cut 1 2)']);
    expect(g.legalMoves(s1, 'r').sort()).toEqual(['(cut 2 3)', '(cut 3 4)', '(cut 4 2)', 'wait'].sort());
    expect(g.goal(s1, 'r')).toBe(0);
    // from inside the loop it is reachable again; cutting the loop's back edge leaves 2 → 3 → 4
    const s2 = g.nextState(g.nextState(s0, ['(move 3)']), ['(cut 4 2)']);
    expect(g.legalMoves(s2, 'r').sort()).toEqual(['(cut 1 2)', '(cut 2 3)', '(cut 3 4)', '(move 4)', 'wait'].sort());
    expect(g.goal(s2, 'r')).toBe(100);
    // every state of seeded random playouts against the interpreter
    const r = checkConformance(loadInterpreter(cyclic) as GameMachine, g as GameMachine, { playouts: 200, seed: 3 });
    expect(r.mismatches).toEqual([]);
    // the random playouts inside the net as well
    const rand = rng(4);
    for (let k = 0; k < 50; k++) {
      const p = g.playout(s0, rand);
      expect(p.goals[0] === 0 || p.goals[0] === 100).toBe(true);
    }
  };

  test.skipIf(!haveSheets)('recursive sheets: unrolled nets, and fixpoints in place', () => {
    // cubicup's components have ≤ 3 atoms; atariGo's liberties run through chains of up to 49 stones: 49 layers
    // (its bodies without a liberty chain, "a neighbour is empty", read once through layer 0); linesOfAction's
    // closure from every square would unroll to millions of bodies, so its 128 components are evaluated in place
    const cubicup = loadGrounded(sheet('cubicup_3player'), slack);
    expect(cubicup.net.unrolledDepth).toBe(3);
    const atariGo = loadGrounded(sheet('atariGoVariant_7x7'), slack);
    expect(atariGo.net.unrolledDepth).toBe(49);
    const atariGoInPlace = loadGrounded(sheet('atariGoVariant_7x7'), { ...slack, unrollMax: 16 });
    expect(atariGoInPlace.net.comps.map((c) => c.atoms.length)).toEqual([49, 49]);
    const loa = loadGrounded(sheet('linesOfAction'), slack);
    expect(loa.net.comps).toHaveLength(128);
    expect(loa.net.comps.every((c) => c.atoms.length === 64 && !c.readsMoves)).toBe(true);
    for (const [name, g, n] of [
      ['atariGoVariant_7x7', atariGoInPlace, 10],
      ['linesOfAction', loa, 3],
    ] as const) {
      const r = checkConformance(loadCompiled(sheet(name), { strict: false }) as GameMachine, g as GameMachine, {
        playouts: n,
        seed: 17,
      });
      expect(r.mismatches).toEqual([]);
      expect(r.playouts).toBe(n);
    }
    expect(loadGame(sheet('linesOfAction')).kind).toBe('grounded');
  });

  test('more rule instances than the node budget: refused before any instance is built', () => {
    // the frame sheet has 4 `go` moves and 4 positions: a handful of instances, more than 3
    expect(() => loadGrounded(frame, { maxNodes: 3 })).toThrow(/more than 3 instances/);
    expect(loadGrounded(frame, { maxNodes: 1000 })).toBeInstanceOf(GroundMachine);
  });

  test('past the step budget the sheet is refused', () => {
    expect(() => loadGrounded(frame, { maxSteps: 10 })).toThrow(GroundingError);
    expect(loadGame(frame, { ground: { maxSteps: 10 } }).kind).toBe('compiled');
    expect(loadGame(frame)).toBeInstanceOf(GroundMachine);
  });
});
