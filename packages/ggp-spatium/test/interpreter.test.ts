// The reference interpreter's own mechanisms, each against hand-derived answers or a brute-force enumeration in
// this file: whole tables of static relations (recursive ones, and the fallback to tabling per call pattern where a
// whole table is unbounded or past its budget), relations that look static but reach `true` through a helper,
// the join order of indexed literals, interned terms, and recovery after a query that failed.
import { describe, expect, test } from 'vitest';
import { checkConformance } from '../src/conformance.js';
import { ReasonerError } from '../src/errors.js';
import { parseGdl } from '../src/gdl.js';
import { gtext, loadInterpreter, Prover } from '../src/interpreter.js';
import { rng } from '../src/machine.js';
import { haveSheets, sheet } from './sheets.js';

const texts = (rows: unknown[][]) => rows.map((r) => r.map((t) => gtext(t as string)).join(' ')).sort();

// lt is the transitive closure of succ: static and recursive, so its whole table is built by the fixpoint
const CLOSURE = `
(role p)
(init (at 1))
(succ 1 2) (succ 2 3) (succ 3 4) (succ 4 5)
(<= (lt ?x ?y) (succ ?x ?y))
(<= (lt ?x ?z) (succ ?x ?y) (lt ?y ?z))
(<= (legal p (jump ?y)) (true (at ?x)) (lt ?x ?y))
(<= (next (at ?y)) (does p (jump ?y)))
(<= terminal (true (at 5)))
(<= (goal p 100) (true (at 5)))
(<= (goal p 0) (not (true (at 5))))
`;

describe('interpreter: whole tables of static relations', () => {
  test('a recursive static relation (transitive closure) has every pair, asked free or bound', () => {
    const m = loadInterpreter(CLOSURE);
    const s = m.initialState();
    expect(m.legalMoves(s, 'p')).toEqual(['(jump 2)', '(jump 3)', '(jump 4)', '(jump 5)']);
    const t = m.nextState(s, ['(jump 3)']);
    expect(m.legalMoves(t, 'p')).toEqual(['(jump 4)', '(jump 5)']);
    expect(m.isTerminal(t)).toBe(false);
    expect(m.goal(t, 'p')).toBe(0);
    const u = m.nextState(t, ['(jump 5)']);
    expect(m.isTerminal(u)).toBe(true);
    expect(m.goal(u, 'p')).toBe(100);
    // the prover itself: i < j for 1 ≤ i < j ≤ 5 is 10 pairs; bound first, bound second and ground calls
    const pr = new Prover(parseGdl(CLOSURE));
    pr.setContext([], []);
    const all: string[] = [];
    for (let i = 1; i <= 5; i++) for (let j = i + 1; j <= 5; j++) all.push(`${i} ${j}`);
    expect(texts(pr.ask('lt', [0, 1]))).toEqual(all.sort());
    expect(texts(pr.ask('lt', ['3', 0]))).toEqual(['3 4', '3 5']);
    expect(texts(pr.ask('lt', [0, '2']))).toEqual(['1 2']);
    expect(pr.ask('lt', ['2', '5'])).toHaveLength(1);
    expect(pr.ask('lt', ['5', '2'])).toHaveLength(0);
    expect(pr.ask('lt', [0, 0])).toHaveLength(0); // a repeated variable: no x < x
  });

  test('a relation that reaches `true` only through a helper is recomputed for each state', () => {
    // open looks like a plain view of index, but cellok reads the state: its table must not outlive the state
    const kif = `
(role p)
(index 1) (index 2) (index 3)
(init (free 1)) (init (free 2)) (init (free 3))
(<= (cellok ?x) (true (free ?x)))
(<= (open ?x) (index ?x) (cellok ?x))
(<= (legal p (take ?x)) (open ?x))
(<= (next (free ?x)) (true (free ?x)) (does p (take ?y)) (distinct ?x ?y))
(<= terminal (not (open 1)) (not (open 2)) (not (open 3)))
(<= (goal p 100) terminal)
`;
    const m = loadInterpreter(kif);
    let s = m.initialState();
    expect(m.legalMoves(s, 'p')).toEqual(['(take 1)', '(take 2)', '(take 3)']);
    s = m.nextState(s, ['(take 2)']);
    expect(m.legalMoves(s, 'p')).toEqual(['(take 1)', '(take 3)']);
    s = m.nextState(s, ['(take 1)']);
    expect(m.legalMoves(s, 'p')).toEqual(['(take 3)']);
    expect(m.isTerminal(s)).toBe(false);
    s = m.nextState(s, ['(take 3)']);
    expect(m.legalMoves(s, 'p')).toEqual([]);
    expect(m.isTerminal(s)).toBe(true);
  });

  test('an unbounded static relation falls back to tabling per call pattern', () => {
    // nat has no finite whole table (0, (s 0), (s (s 0)), …): building it stops at the depth guard, and a call with
    // a ground argument is still answered
    const kif = `
(role p)
(nat 0)
(<= (nat (s ?x)) (nat ?x))
(init (count 0))
(<= (legal p go) (true (count ?n)) (nat ?n))
(<= (next (count (s ?n))) (true (count ?n)))
(<= terminal (true (count (s (s (s 0))))))
(<= (goal p 100) terminal)
`;
    const m = loadInterpreter(kif, { strict: false });
    let s = m.initialState();
    for (let i = 0; i < 3; i++) {
      expect(m.legalMoves(s, 'p')).toEqual(['go']);
      s = m.nextState(s, ['go']);
    }
    expect(m.fluents(s)).toEqual(['(count (s (s (s 0))))']);
    expect(m.isTerminal(s)).toBe(true);
    // asked free, the relation is still unbounded: the depth guard says so
    const pr = new Prover(parseGdl(kif));
    pr.setContext([], []);
    expect(() => pr.ask('nat', [0])).toThrow(ReasonerError);
    // and the prover is usable after the failed query
    expect(pr.ask('nat', [{ f: 's', args: [{ f: 's', args: ['0'] }] }])).toHaveLength(1);
    expect(pr.ask('nat', [{ f: 's', args: ['1'] }])).toHaveLength(0);
  });

  test('a whole table past its budget gives the same answers tabled per call pattern', () => {
    const small = new Prover(parseGdl(CLOSURE));
    small.wholeTableBudget = 3; // lt has 10 pairs: its whole table is refused, succ's (4) too
    small.setContext([], []);
    expect(texts(small.ask('lt', ['2', 0]))).toEqual(['2 3', '2 4', '2 5']);
    expect(texts(small.ask('lt', [0, 1]))).toHaveLength(10);
    expect(small.ask('lt', ['1', '5'])).toHaveLength(1);
  });
});

describe('interpreter: join order and indexes', () => {
  // a pair of marked cells that are orthogonally adjacent, on a 4×4 board; adj is static, pair joins two `true`
  // literals and adj: every order of the three gives the same answers, which a brute force in JS computes here
  const rows = ['1', '2', '3', '4'];
  const succ = rows
    .slice(1)
    .map((r, i) => `(succ ${rows[i]} ${r})`)
    .join(' ');
  const kif = `
(role p)
${rows.map((r) => `(index ${r})`).join(' ')}
${succ}
(<= (adj ?x ?y1 ?x ?y2) (index ?x) (succ ?y1 ?y2))
(<= (adj ?x ?y1 ?x ?y2) (index ?x) (succ ?y2 ?y1))
(<= (adj ?x1 ?y ?x2 ?y) (index ?y) (succ ?x1 ?x2))
(<= (adj ?x1 ?y ?x2 ?y) (index ?y) (succ ?x2 ?x1))
(<= (pair ?x1 ?y1 ?x2 ?y2) (true (cell ?x1 ?y1 x)) (true (cell ?x2 ?y2 x)) (adj ?x1 ?y1 ?x2 ?y2))
(<= (lonely ?x ?y) (true (cell ?x ?y x)) (not (haspair ?x ?y)))
(<= (haspair ?x ?y) (pair ?x ?y ?a ?b))
(init (cell 1 1 x))
(<= (legal p noop) (true (cell 1 1 x)))
(<= (next (cell 1 1 x)) (true (cell 1 1 x)))
(<= terminal (true (cell 4 4 x)))
(<= (goal p 0) (true (cell 1 1 x)))
`;
  test.each([
    ['tabled per call pattern', 0],
    ['with whole tables per state where they pay', 1],
  ])('answers equal a brute-force enumeration on random boards (%s)', (_how, after) => {
    const pr = new Prover(parseGdl(kif));
    // 1: every state-dependent relation asked with two or more patterns in a state is timed, then tried with whole
    // tables per state (kept or not by the timing): the answers must not change on either path
    if (after) pr.wholeAfterPatterns = after;
    else pr.wholeAfterPatterns = 0;
    const rand = rng(5);
    for (let trial = 0; trial < 40; trial++) {
      const marked: Array<[number, number]> = [];
      for (let x = 1; x <= 4; x++) for (let y = 1; y <= 4; y++) if (rand() < 0.45) marked.push([x, y]);
      const state = marked.flatMap(([x, y]) => [{ f: 'cell', args: [String(x), String(y), 'x'] }]);
      // some empty cells too, which no rule asks for but the index must skip
      state.push({ f: 'cell', args: ['9', '9', 'o'] });
      pr.setContext(state, []);
      const expected: string[] = [];
      for (const [a, b] of marked)
        for (const [c, d] of marked) if (Math.abs(a - c) + Math.abs(b - d) === 1) expected.push(`${a} ${b} ${c} ${d}`);
      expect(texts(pr.ask('pair', [0, 1, 2, 3]))).toEqual(expected.sort());
      // bound first arguments take another order of the same literals
      const [x0, y0] = marked[0] ?? [1, 1];
      expect(texts(pr.ask('pair', [String(x0), String(y0), 0, 1]))).toEqual(
        expected.filter((e) => e.startsWith(`${x0} ${y0} `)),
      );
      const lonely = marked.filter(([a, b]) => !expected.some((e) => e.startsWith(`${a} ${b} `)));
      expect(texts(pr.ask('lonely', [0, 1]))).toEqual(lonely.map(([a, b]) => `${a} ${b}`).sort());
    }
  });
});

describe('interpreter: terms', () => {
  test('a parsed move is the same object as the legal move, and outside terms are answered alike', () => {
    const m = loadInterpreter(CLOSURE);
    const s = m.initialState();
    const legal = m.legal(s, 0);
    const parsed = m.parseMove('(jump 3)');
    expect(legal).toContain(parsed);
    // a state given as plain objects (not interned) is answered like the interned one
    const pr = new Prover(parseGdl(CLOSURE));
    pr.setContext([{ f: 'at', args: ['4'] }], []);
    expect(texts(pr.ask('legal', ['p', 0]))).toEqual(['p (jump 5)']);
    pr.setContext([{ f: 'at', args: ['4'] }], [['p', { f: 'jump', args: ['5'] }]]);
    expect(texts(pr.ask('next', [0]))).toEqual(['(at 5)']);
  });

  test('interned terms: one object per term, built from parts or given as plain objects', () => {
    const pr = new Prover(parseGdl(CLOSURE));
    const a = pr.terms.mk('f', ['1', '2']);
    expect(pr.terms.mk('f', ['1', '2'])).toBe(a);
    expect(pr.terms.mk('f', ['2', '1'])).not.toBe(a);
    expect(pr.terms.mk('f', ['1'])).not.toBe(a); // same functor, another arity
    const g = pr.terms.mk('g', [a, '3']);
    expect(g.t).toBe('(g (f 1 2) 3)');
    expect(pr.terms.own({ f: 'g', args: [{ f: 'f', args: ['1', '2'] }, '3'] })).toBe(g);
    // a compound made from a plain (not interned) argument still finds the one object, by its text
    expect(pr.terms.mk('g', [{ f: 'f', args: ['1', '2'], t: '(f 1 2)', d: 1 }, '3'])).toBe(g);
  });

  test('answers stay a set past the size where tables stop scanning: every tuple once, ground calls exact', () => {
    // pair holds 6 × 6 × 2 tuples (past the scan threshold), each derived by three rules; the compound argument
    // (box ?z) makes the tuples mix interned objects and constants
    const kif = `
(role p) (init (s 1)) (<= terminal (true (s 1))) (<= (goal p 0) (true (s 1))) (<= (legal p noop) (true (s 1)))
(n 1) (n 2) (n 3) (n 4) (n 5) (n 6) (k a) (k b)
(<= (pair ?x ?y (box ?z)) (n ?x) (n ?y) (k ?z))
(<= (pair ?x ?y (box ?z)) (k ?z) (n ?y) (n ?x))
(<= (pair ?x ?y ?w) (n ?y) (k ?z) (n ?x) (same ?w (box ?z)))
(<= (same ?v ?v) (k ?z) (box ?z ?v))
(<= (box ?z (box ?z)) (k ?z))
(<= (boxed ?x ?z) (n ?x) (pair ?x 1 (box ?z)))
(<= (live ?x ?y ?w) (true (s 1)) (pair ?x ?y ?w))
(<= (lboxed ?x ?z) (n ?x) (live ?x 1 (box ?z)))`;
    const pr = new Prover(parseGdl(kif));
    pr.setContext([], []);
    const all: string[] = [];
    for (let x = 1; x <= 6; x++)
      for (let y = 1; y <= 6; y++) for (const z of ['a', 'b']) all.push(`${x} ${y} (box ${z})`);
    expect(texts(pr.ask('pair', [0, 1, 2]))).toEqual(all.sort());
    expect(texts(pr.ask('pair', ['3', 0, 1]))).toEqual(all.filter((r) => r.startsWith('3 ')).sort());
    for (const row of ['1 1 (box a)', '6 6 (box b)', '4 2 (box a)']) {
      const [x, y] = row.split(' ');
      const z = row.slice(-2, -1);
      expect(pr.ask('pair', [x!, y!, { f: 'box', args: [z] }])).toHaveLength(1);
    }
    expect(pr.ask('pair', ['7', '1', { f: 'box', args: ['a'] }])).toHaveLength(0);
    expect(pr.ask('pair', ['1', '1', { f: 'box', args: ['c'] }])).toHaveLength(0);
    expect(pr.ask('pair', ['1', '1', 'a'])).toHaveLength(0);
    // a compound with a variable inside, in a query and in a rule body (a call pattern keyed by its text)
    expect(texts(pr.ask('pair', [0, 1, { f: 'box', args: [2] }]))).toEqual(all.sort());
    expect(texts(pr.ask('pair', ['2', 0, { f: 'box', args: ['b'] }]))).toEqual(
      ['1', '2', '3', '4', '5', '6'].map((y) => `2 ${y} (box b)`),
    );
    const boxed: string[] = [];
    for (let x = 1; x <= 6; x++) for (const z of ['a', 'b']) boxed.push(`${x} ${z}`);
    expect(texts(pr.ask('boxed', [0, 1]))).toEqual(boxed.sort());
    // the same through a state-dependent relation, tabled per call pattern: (live ?x 1 (box ?z)) is a call
    expect(pr.ask('lboxed', [0, 1])).toHaveLength(0);
    pr.setContext([{ f: 's', args: ['1'] }], []);
    expect(texts(pr.ask('lboxed', [0, 1]))).toEqual(boxed.sort());
    expect(texts(pr.ask('live', ['3', 0, { f: 'box', args: [1] }]))).toEqual(
      all.filter((r) => r.startsWith('3 ')).sort(),
    );
  });

  test('a query past maxAnswers throws ReasonerError and the next query is answered in full', () => {
    const pr = new Prover(parseGdl(CLOSURE));
    pr.setContext([{ f: 'at', args: ['1'] }], []);
    pr.maxAnswers = 2;
    expect(() => pr.ask('legal', ['p', 0])).toThrow(ReasonerError);
    pr.maxAnswers = 1000;
    expect(texts(pr.ask('legal', ['p', 0]))).toHaveLength(4);
  });
});

describe.skipIf(!haveSheets)('interpreter: whole tables against tabling per call pattern on real sheets', () => {
  // wholeTableBudget 0 refuses every non-empty whole table and wholeAfterPatterns 0 keeps state-dependent relations
  // tabled per call pattern: static relations keep their written join order, the interpreter as it was before
  // whole tables; both must agree (othello moves relations to whole tables per state)
  test.each([
    ['ticTacToe', 20],
    ['connectFour', 3],
    ['breakthrough', 1],
    ['pentago', 1],
    ['othello-comp2007', 1],
    ['test/test_case_2a', 5],
    ['test/test_case_5c', 5],
  ])('%s (%i playouts)', (name, playouts) => {
    const fast = loadInterpreter(sheet(name), { strict: false });
    const plain = loadInterpreter(sheet(name), { strict: false });
    plain.prover.wholeTableBudget = 0;
    plain.prover.wholeAfterPatterns = 0;
    const r = checkConformance(fast, plain, { playouts, seed: 3 });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(playouts);
  });
});
