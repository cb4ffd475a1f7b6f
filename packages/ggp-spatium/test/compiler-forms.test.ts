// Two compiled forms against the interpreter and against plans derived by hand: function terms of 5 to 8
// arguments built through a scratch array per arity (nested terms of the same arity included; their variables
// come from a static table, so they are also kept per table row, where a nested kept term once named the
// caller's loop counter inside the keeping function: a ReferenceError), and the
// planner's size of a `true` literal with a constant argument, taken from how many fluents of the initial state
// hold that constant rather than from a uniform share of the argument's distinct values.
import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { checkConformance } from '../src/conformance.js';
import { loadInterpreter } from '../src/interpreter.js';

// Moves and fluents of 5, 6, 8 and 9 arguments (9: the array form); the 5-argument move nests 5-argument terms
// built in the same head, so a scratch array shared by both would corrupt the outer one.
const WIDE = `
  (role p)
  (init (at 1))
  (n 1) (n 2) (n 3)
  (succ 1 2) (succ 2 3) (succ 3 1)
  (<= (legal p (hop (v ?a ?a ?a ?a ?a) ?a ?b (v ?b ?b ?b ?b ?b) ?b))
      (true (at ?a)) (succ ?a ?b))
  (<= (legal p (stay ?a ?a ?a ?a ?a ?a ?a ?a ?a)) (true (at ?a)))
  (<= (next (at ?b)) (does p (hop ?v ?a ?b ?w ?c)))
  (<= (next (at ?a)) (does p (stay ?a ?x1 ?x2 ?x3 ?x4 ?x5 ?x6 ?x7 ?x8)))
  (<= (next (six ?a ?a ?a ?b ?b ?b)) (does p (hop ?v ?a ?b ?w ?c)))
  (<= (next (eight ?a ?a ?a ?a ?b ?b ?b ?b)) (does p (hop ?v ?a ?b ?w ?c)))
  (<= (next (step ?k)) (true (step ?j)) (succ ?j ?k))
  (<= (next (step 2)) (not (true (step 1))) (not (true (step 2))) (not (true (step 3))))
  (<= (seen ?a) (true (six ?a ?a ?a ?b ?b ?b)))
  (<= terminal (true (step 3)))
  (<= (goal p 100) (seen 1))
  (<= (goal p 0) (not (seen 1)))
`;

describe('compiled reasoner: terms of 5 to 8 arguments through scratch arrays', () => {
  test('moves and next states with nested wide terms, by hand and against the interpreter', () => {
    const c = loadCompiled(WIDE);
    expect(c.program.source).toMatch(/MK5\(/);
    expect(c.program.source).toMatch(/MK6\(/);
    expect(c.program.source).toMatch(/MK8\(/);
    expect(c.program.source).toMatch(/T\.mkA\(\d+, \[/); // 9 arguments: an array literal
    const s0 = c.initialState();
    expect(c.legalMoves(s0, 'p')).toEqual(['(hop (v 1 1 1 1 1) 1 2 (v 2 2 2 2 2) 2)', '(stay 1 1 1 1 1 1 1 1 1)']);
    const s1 = c.nextState(s0, ['(hop (v 1 1 1 1 1) 1 2 (v 2 2 2 2 2) 2)']);
    expect(c.fluents(s1)).toEqual(['(at 2)', '(eight 1 1 1 1 2 2 2 2)', '(six 1 1 1 2 2 2)', '(step 2)']);
    expect(c.goal(s1, 'p')).toBe(100);
    const r = checkConformance(loadInterpreter(WIDE), c, { playouts: 20, seed: 5 });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(20);
  });
});

// 64 cells on one row, 60 of them blank; `pick` names 20 of them. With a uniform share of the 5 distinct
// contents, (true (cell ?x b)) looks like 13 rows and is enumerated first; counted in the initial state it is
// 60, so the 20 picks come first and each tests one cell.
const cells = Array.from({ length: 64 }, (_, i) => i + 1);
const content = (i: number) => (i <= 60 ? 'b' : ['r', 'g', 'k', 'w'][i - 61]!);
const PICKS = `
  (role p)
  ${cells.map((i) => `(init (cell c${i} ${content(i)}))`).join(' ')}
  (init (step 0))
  ${cells
    .filter((i) => i % 3 === 0)
    .slice(0, 20)
    .map((i) => `(pick c${i})`)
    .join(' ')}
  (succ 0 1) (succ 1 2) (succ 2 3)
  (<= (legal p (fill ?x)) (true (cell ?x b)) (pick ?x))
  (<= (legal p pass) (true (step ?n)))
  (<= (next (cell ?x r)) (does p (fill ?x)))
  (<= (next (cell ?y ?c)) (true (cell ?y ?c)) (does p (fill ?x)) (distinct ?x ?y))
  (<= (next (cell ?y ?c)) (true (cell ?y ?c)) (does p pass))
  (<= (next (step ?m)) (true (step ?n)) (succ ?n ?m))
  (<= terminal (true (step 3)))
  (<= (goal p 100) (true (cell c3 r)))
  (<= (goal p 0) (not (true (cell c3 r))))
`;

describe('compiled reasoner: the planner counts a constant argument in the initial state', () => {
  test('the 20 static picks are enumerated before the 60 blank cells', () => {
    const c = loadCompiled(PICKS);
    const legal = c.program.source.split('\n// ')[0]!;
    const fn = legal.slice(legal.indexOf('// legal'));
    const body = fn.slice(0, fn.indexOf('\n}\nfunction'));
    // the rule's first loop runs over the static `pick` table; the cell is then one membership test
    const firstLoop = body.search(/for \(let /);
    expect(firstLoop).toBeGreaterThan(-1);
    expect(body.slice(0, firstLoop + 200)).toMatch(/R\[\d+\]\.n/);
    expect(body).toMatch(/C\.mark\[/);
    const r = checkConformance(loadInterpreter(PICKS), c, { playouts: 10, seed: 2 });
    expect(r.mismatches).toEqual([]);
  });
});
