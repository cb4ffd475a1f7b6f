// Split grounding decided on counts: a sheet with more rule instances than the node budget is grounded again with
// its large rules split only where the counts of the split program fit; otherwise it is refused before any
// instance is built (the refusal names the split), and loadGame takes the compiler.
import { describe, expect, test } from 'vitest';
import { checkConformance } from '../src/conformance.js';
import { loadGame } from '../src/game.js';
import { GroundingError, GroundMachine, loadGrounded } from '../src/ground.js';
import { loadInterpreter } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
import { haveSheets, sheet } from './sheets.js';

// Moves set a(x, y), b(y) and d(z) over 8 values; `big` derives c(x, z). Written as one rule over a, b and d it
// has 8³ = 512 instances; ?y is in neither the head nor d, so the split reads a helper over ?x (a ∧ b: 64
// instances) and d (64): 128. A `does` in place of `a` leaves nothing to split (move sets stay whole).
const N = [1, 2, 3, 4, 5, 6, 7, 8];
const sheetWith = (big: string) => `(role r) ${N.map((x) => `(pos ${x})`).join(' ')}
  (init (step 0)) (succ 0 1) (succ 1 2) (succ 2 3) (succ 3 4) (succ 4 5)
  (<= (legal r (seta ?x ?y)) (pos ?x) (pos ?y))
  (<= (legal r (setb ?y)) (pos ?y))
  (<= (legal r (setd ?z)) (pos ?z))
  (<= (next (a ?x ?y)) (does r (seta ?x ?y)))
  (<= (next (a ?x ?y)) (true (a ?x ?y)))
  (<= (next (b ?y)) (does r (setb ?y)))
  (<= (next (b ?y)) (true (b ?y)))
  (<= (next (d ?z)) (does r (setd ?z)))
  (<= (next (d ?z)) (true (d ?z)))
  (<= (next (step ?n)) (true (step ?m)) (succ ?m ?n))
  ${big}
  (<= terminal (true (step 5)))
  (<= (goal r 100) (true (c 1 2)))
  (<= (goal r 0) (not (true (c 1 2))))`;
const splittable = sheetWith('(<= (next (c ?x ?z)) (true (a ?x ?y)) (true (b ?y)) (true (d ?z)))');
const unsplittable = sheetWith('(<= (next (c ?x ?z)) (does r (seta ?x ?y)) (true (b ?y)) (true (d ?z)))');
// (between the split net's ≈600 nodes and the unsplit program's ≈680 instances; rules above 80 are split)
const budget = { maxNodes: 640 };

describe('split grounding decided on counts', () => {
  test('a sheet past the node budget grounds with its large rule split, and plays as the interpreter', () => {
    expect(() => loadGrounded(splittable, { ...budget, projectAbove: Number.POSITIVE_INFINITY })).toThrow(
      /more than 640 instances$/,
    );
    const g = loadGrounded(splittable, budget);
    // hand-derived: a(1, 3), b(3) and d(2) hold after three moves, so c(1, 2) after the fourth, and the goal is 100
    let s = g.initialState();
    for (const m of ['(seta 1 3)', '(setb 3)', '(setd 2)', '(setb 5)']) s = g.nextState(s, [m]);
    expect(g.fluents(s)).toContain('(c 1 2)');
    expect(g.fluents(s)).not.toContain('(c 2 2)');
    s = g.nextState(s, ['(setd 4)']);
    expect(g.isTerminal(s)).toBe(true);
    expect(g.goal(s, 'r')).toBe(100);
    const r = checkConformance(loadInterpreter(splittable) as GameMachine, g as GameMachine, {
      playouts: 40,
      seed: 5,
    });
    expect(r.mismatches).toEqual([]);
    expect(r.playouts).toBe(40);
  });

  test('a sheet whose large rule cannot be split is refused on the counts, and loadGame takes the compiler', () => {
    expect(() => loadGrounded(unsplittable, budget)).toThrow(/more than 640 instances with the rules above 80 split/);
    const m = loadGame(unsplittable, { ground: budget });
    expect(m.kind).toBe('compiled');
    const r = checkConformance(loadInterpreter(unsplittable) as GameMachine, m, { playouts: 10, seed: 3 });
    expect(r.mismatches).toEqual([]);
    // with room for every instance it grounds unsplit
    expect(loadGrounded(unsplittable, { maxNodes: 1000 })).toBeInstanceOf(GroundMachine);
  });

  test.skipIf(!haveSheets)('endgame: its frame rules read `does`, so the split is refused on its counts', () => {
    // (before, the split grounding built ≈340,000 instances and ran past the step budget)
    const kif = sheet('endgame');
    let err: unknown;
    try {
      loadGrounded(kif);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GroundingError);
    expect((err as Error).message).toBe(
      'the ground rules have more than 400000 instances with the rules above 50000 split',
    );
    expect(loadGame(kif).kind).toBe('compiled');
  });
});
