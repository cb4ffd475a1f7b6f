// Relaxation gates (issue #6, chess): a yes/no question to a view is answered "no" at once when its arguments lie
// outside the view's state-independent relaxation (its rules without `true`, `does` and `not`, projected onto the
// columns that the relaxation still binds). Checked against the interpreter on a small sheet that exercises every
// case (a recursive line view with an ignored square projected away, a view whose relaxation leans on another, a
// relaxation past its row limit, a view with none), against relaxations derived by hand, and on chess against the
// same program with its gates taken out.
import { describe, expect, test } from 'vitest';
import { CompiledMachine, compileProgram, loadCompiled, relaxRules } from '../src/compiler.js';
import { checkConformance } from '../src/conformance.js';
import { parseGdl, rulesText } from '../src/gdl.js';
import { loadInterpreter } from '../src/interpreter.js';
import { type GameMachine, randomPlayout, rng } from '../src/machine.js';
import { normaliseMgdl } from '../src/mgdl.js';
import { prepareRules } from '../src/prepare.js';
import { haveSheets, sheet } from './sheets.js';

// One row of 8 cells: rooks (r) slide over blank cells, walkers (w) step to any blank cell unless that leaves the
// king (k) attacked along the row (the cell moved from ignored, as chess's `threatened` does), and `jump` is
// legal through `heavy`, a view over a 25×25 static table whose relaxation (pair × pair: 360,000 rows) is past
// the row limit and given up (its `nx` literal loops, so its questions are memoised, not straight look-ups).
const N = 25;
const pairs: string[] = [];
for (let i = 1; i <= N; i++) for (let j = 1; j <= N; j++) if (i !== j) pairs.push(`(pair ${i} ${j})`);
const ROW = `
  (role p)
  (init (cell 1 r)) (init (cell 2 b)) (init (cell 3 w)) (init (cell 4 k))
  (init (cell 5 b)) (init (cell 6 w)) (init (cell 7 b)) (init (cell 8 r))
  (init (step 0))
  (succ 1 2) (succ 2 3) (succ 3 4) (succ 4 5) (succ 5 6) (succ 6 7) (succ 7 8)
  (idx 1) (idx 2) (idx 3) (idx 4) (idx 5) (idx 6) (idx 7) (idx 8)
  (count 0 1) (count 1 2) (count 2 3) (count 3 4) (count 4 5) (count 5 6) (count 6 7) (count 7 8) (count 8 9)
  ${pairs.join(' ')}
  ${Array.from({ length: N - 1 }, (_, i) => `(nx ${i + 1} ${i + 2})`).join(' ')}
  (<= (clear ?u ?v ?ig) (succ ?u ?v) (idx ?ig))
  (<= (clear ?u ?v ?ig) (succ ?u ?ig) (clear ?ig ?v ?ig))
  (<= (clear ?u ?v ?ig) (succ ?u ?w) (true (cell ?w b)) (clear ?w ?v ?ig))
  (<= (attacked ?k ?ig) (true (cell ?u r)) (clear ?u ?k ?ig))
  (<= (attacked ?k ?ig) (true (cell ?u r)) (clear ?k ?u ?ig))
  (<= (heavy ?a ?b ?c ?d)
      (pair ?a ?b) (pair ?c ?d) (nx ?b ?e) (true (cell ?a w)) (true (cell ?c k)) (true (cell ?b b)))
  (<= (legal p (move ?u ?v))
      (true (cell ?u w)) (true (cell ?v b)) (true (cell ?k k)) (not (attacked ?k ?u)))
  (<= (legal p (move ?u ?v)) (true (cell ?u r)) (true (cell ?v b)) (clear ?u ?v ?u))
  (<= (legal p (move ?u ?v)) (true (cell ?u r)) (true (cell ?v b)) (clear ?v ?u ?u))
  (<= (legal p (jump ?u ?v)) (true (cell ?u w)) (true (cell ?v b)) (true (cell ?k k)) (heavy ?u ?v ?k ?u))
  (<= (legal p noop) (true (step ?s)))
  (<= (next (cell ?v ?x)) (does p (move ?u ?v)) (true (cell ?u ?x)))
  (<= (next (cell ?u b)) (does p (move ?u ?v)))
  (<= (next (cell ?v ?x)) (does p (jump ?u ?v)) (true (cell ?u ?x)))
  (<= (next (cell ?u b)) (does p (jump ?u ?v)))
  (<= (next (cell ?c ?x)) (true (cell ?c ?x)) (does p (move ?u ?v)) (distinct ?c ?u) (distinct ?c ?v))
  (<= (next (cell ?c ?x)) (true (cell ?c ?x)) (does p (jump ?u ?v)) (distinct ?c ?u) (distinct ?c ?v))
  (<= (next (cell ?c ?x)) (true (cell ?c ?x)) (does p noop))
  (<= (next (step ?t)) (true (step ?s)) (count ?s ?t))
  (<= terminal (true (step 8)))
  (<= (goal p 100) (true (cell ?k k)) (not (attacked ?k ?k)))
  (<= (goal p 0) (true (cell ?k k)) (attacked ?k ?k))
`;

const relIndex = (m: CompiledMachine, name: string) => m.program.rels.findIndex((r) => r.name === name);

describe('relaxation gates', () => {
  test('relaxRules: the ignored square is projected away, the view asking it keeps what stays bound', () => {
    const g = prepareRules(parseGdl(ROW));
    const rx = relaxRules(g.rules, ['attacked/2', 'heavy/4']);
    // hand-derived: `(idx ?ig)` alone fills clear's third column, so it is dropped; attacked's ?ig was bound
    // only there, so attacked keeps its king column; heavy's columns are all bound by `pair`
    expect(rx.cols.get('clear/3')).toEqual([0, 1]);
    expect(rx.cols.get('attacked/2')).toEqual([0]);
    expect(rx.cols.get('heavy/4')).toEqual([0, 1, 2, 3]);
    expect(rulesText(rx.rules).split('\n').sort()).toEqual(
      [
        '(<= (clear|rx ?u ?v) (succ ?u ?v))',
        '(<= (clear|rx ?u ?v) (succ ?u ?ig) (clear|rx ?ig ?v))',
        '(<= (clear|rx ?u ?v) (succ ?u ?w) (clear|rx ?w ?v))',
        '(<= (attacked|rx ?k) (clear|rx ?u ?k))',
        '(<= (attacked|rx ?k) (clear|rx ?k ?u))',
        // (nx ?b ?e) only tests that ?b has a successor (?e is used nowhere else): dropped
        '(<= (heavy|rx ?a ?b ?c ?d) (pair ?a ?b) (pair ?c ?d))',
      ].sort(),
    );
  });

  test('a view with a head variable bound only by `true` has no relaxation', () => {
    const g = prepareRules(
      parseGdl(`(role p) (init (on 1)) (<= (at ?x) (true (on ?x))) (<= (legal p (go ?x)) (true (on ?x)) (at ?x))
        (<= (next (on ?x)) (true (on ?x))) (<= terminal (at 2)) (<= (goal p 0) (at 1))`),
    );
    const rx = relaxRules(g.rules, ['at/1']);
    expect(rx.relaxed.size).toBe(0);
    expect(rx.rules).toEqual([]);
  });

  test('gated questions agree with the interpreter, by hand and on seeded playouts', () => {
    const c = loadCompiled(ROW);
    // the gates are there: clear/3 and attacked/2 are asked with every argument given
    expect(c.program.source).toMatch(/\/\/ clear\/3: memoised per state\n.*RXE\(/);
    expect(c.program.source).toMatch(/\/\/ attacked\/2: memoised per state\n.*RXE\(/);
    const s0 = c.initialState();
    // by hand: the rooks at 1 and 8 slide to 2 and to 7 (the walkers at 3 and 6 block the rest); neither walker
    // may step, since leaving its cell opens a rook line onto the king at 4 (rook 1 over 2 and the ignored 3,
    // rook 8 over 7, the ignored 6 and 5); both jump to each blank cell (2, 5, 7) through `heavy`
    expect(c.legalMoves(s0, 'p')).toEqual(
      [
        '(move 1 2)',
        '(move 8 7)',
        '(jump 3 2)',
        '(jump 3 5)',
        '(jump 3 7)',
        '(jump 6 2)',
        '(jump 6 5)',
        '(jump 6 7)',
        'noop',
      ].sort(),
    );
    expect(c.goal(s0, 'p')).toBe(100);
    // the relaxation of clear: every ordered pair u < v of the 8 cells (28), computed on first use
    expect(c.R[relIndex(c, 'clear|rx')]!.n).toBe(28);
    // heavy's relaxation ran past its row limit and was given up (its questions go to the rules)
    expect(c.R[relIndex(c, 'heavy|rx')]!.n).toBeGreaterThan(200_000);
    const r = checkConformance(loadInterpreter(ROW), c, { playouts: 30, seed: 3 });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(30);
  });

  test.skipIf(!haveSheets)('chess: the same moves, states and goals with and without its gates', () => {
    const rules = parseGdl(sheet('chess'));
    const norm = normaliseMgdl(rules);
    const g = prepareRules(norm.rules, { strict: false });
    const p = compileProgram({ ...g, writtenArity: norm.writtenArity });
    const gated = new CompiledMachine(p);
    // the reference: the same program with every gate switched off before its first question
    const source = p.source.replace(/if \(RX(\d+) === 0\) RX\d+ = RXE\(\[[0-9, ]*\]\);/g, 'RX$1 = -1;');
    expect(source).not.toBe(p.source);
    const plain = new CompiledMachine({ ...p, hash: `${p.hash}:ungated`, source });
    let states = 0;
    for (let seed = 1; seed <= 3; seed++) {
      const ra = rng(seed);
      const rb = rng(seed);
      let a = gated.initialState();
      let b = plain.initialState();
      for (let ply = 0; ply < 80 && !gated.isTerminal(a); ply++) {
        expect(plain.isTerminal(b)).toBe(false);
        const ja = gated.roles().map((role) => {
          const l = gated.legalMoves(a, role);
          expect(l).toEqual(plain.legalMoves(b, role));
          return l[(ra() * l.length) | 0]!;
        });
        const jb = plain.roles().map((role) => {
          const l = plain.legalMoves(b, role);
          return l[(rb() * l.length) | 0]!;
        });
        a = gated.nextState(a, ja);
        b = plain.nextState(b, jb);
        expect(gated.fluents(a)).toEqual(plain.fluents(b));
        states++;
      }
      expect(gated.roles().map((role) => gated.goal(a, role))).toEqual(
        plain.roles().map((role) => plain.goal(b, role)),
      );
    }
    expect(states).toBeGreaterThan(200);
    // and the gates turned questions away: chess's diagonal walks were relaxed and computed
    expect(gated.R[relIndex(gated, 'clear_diagonal_ne_ig|rx')]!.n).toBe(140);
    // a random playout makes the same moves through the handles of both
    expect(randomPlayout(gated as GameMachine, gated.initialState(), rng(9), 60)).toEqual(
      randomPlayout(plain as GameMachine, plain.initialState(), rng(9), 60),
    );
  });
});
