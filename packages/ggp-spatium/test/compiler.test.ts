// The compiled reasoner's per-ply shortcuts against the interpreter: term ids kept per row of static tables
// (a lookup that finds no term is asked again later), and `next` rows appended without the duplicate check and
// read back sorted.
import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { checkConformance } from '../src/conformance.js';
import { loadInterpreter } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
import { haveSheets, sheet } from './sheets.js';

// One player marks cells of a 3-cell row, left to right or anywhere free; (cell ?x) is no term until the first
// mark, so the cached lookup of (cell ?x) in `legal` misses at first and must be asked again. Two next rules
// both keep a marked cell: the state holds it once.
const MARKS = `
  (role p)
  (init (step 0))
  (x 1) (x 2) (x 3)
  (succ 0 1) (succ 1 2) (succ 2 3)
  (<= (legal p (mark ?x)) (x ?x) (not (true (cell ?x))))
  (<= (next (cell ?x)) (does p (mark ?x)))
  (<= (next (cell ?x)) (true (cell ?x)))
  (<= (next (cell ?x)) (true (cell ?x)) (x ?x))
  (<= (next (step ?n)) (true (step ?m)) (succ ?m ?n))
  (<= terminal (true (step 3)))
  (<= (goal p 100) (true (cell 1)) (true (cell 2)) (true (cell 3)))
`;

describe('compiled reasoner: cached static-row terms and next rows', () => {
  test('a cached lookup that missed is asked again once the term exists (hand-checked states)', () => {
    const c = loadCompiled(MARKS);
    expect(c.program.source).toMatch(/function ct0\(q, v_x\)/);
    let s = c.initialState();
    expect(c.legalMoves(s, 'p')).toEqual(['(mark 1)', '(mark 2)', '(mark 3)']);
    s = c.nextState(s, ['(mark 2)']);
    expect(c.fluents(s)).toEqual(['(cell 2)', '(step 1)']);
    expect(c.legalMoves(s, 'p')).toEqual(['(mark 1)', '(mark 3)']);
    s = c.nextState(s, ['(mark 1)']);
    expect(c.fluents(s)).toEqual(['(cell 1)', '(cell 2)', '(step 2)']);
    expect(c.legalMoves(s, 'p')).toEqual(['(mark 3)']);
    s = c.nextState(s, ['(mark 3)']);
    expect(c.isTerminal(s)).toBe(true);
    expect(c.goal(s, 'p')).toBe(100);
    // ascending and once each (next rows are read back in id order), so equal states have equal keys
    const ids = [...s.ids];
    expect(ids).toHaveLength(4);
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
  });

  test.skipIf(!haveSheets)('hex: 12 seeded playouts agree with the interpreter', () => {
    const kif = sheet('hex');
    const c = loadCompiled(kif);
    // hex's legal rule reads (cell ?m ?n red), (cell ?m ?n blue) and (place ?m ?n) from row-indexed caches
    expect(c.program.source.match(/function ct\d+\(/g)?.length).toBeGreaterThanOrEqual(3);
    const r = checkConformance(loadInterpreter(kif) as GameMachine, c as GameMachine, { playouts: 12, seed: 29 });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(12);
  });
});
