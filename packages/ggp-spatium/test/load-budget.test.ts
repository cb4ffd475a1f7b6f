// loadGame's budgets: a sheet whose static relation grows without bound (here `nat`, as laikLee_hex's lists) is
// refused by the grounder, then by the compiler once its tables outgrow the CPU-time budget, and served by the
// interpreter, which only asks `nat` with bound arguments; the budget itself, on a table.
import { describe, expect, test } from 'vitest';
import { loadGame } from '../src/game.js';
import { TupleSet, withTableBudget } from '../src/terms.js';

const NAT = `
(role p)
(init (at z))
(nat z)
(<= (nat (s ?x)) (nat ?x))
(<= (legal p (step (s ?x))) (true (at ?x)) (nat ?x))
(<= (next (at ?y)) (does p (step ?y)))
(<= terminal (true (at (s (s (s z))))))
(<= (goal p 100) terminal)
(<= (goal p 0) (not terminal))
`;

describe('loadGame: budgets', () => {
  test('an unbounded static relation goes to the interpreter, which plays the sheet as written', () => {
    const m = loadGame(NAT, { ground: { maxMs: 200 }, compileMs: 200 });
    expect(m.kind).toBe('interpreter');
    let s = m.initialState();
    const seen: string[] = [];
    while (!m.isTerminal(s)) {
      const moves = m.legalMoves(s, 'p');
      expect(moves).toHaveLength(1);
      seen.push(moves[0]!);
      s = m.nextState(s, moves);
    }
    expect(seen).toEqual(['(step (s z))', '(step (s (s z)))', '(step (s (s (s z))))']);
    expect(m.goal(s, 'p')).toBe(100);
    // a hang guard, not a speed test: with these budgets the load takes well under a second of CPU; without the
    // compiler's budget it ran ≈ 20 s here (its tables grow to the row limit)
  }, 15_000);

  test('a table growing past the budget throws RangeError; without one, or after it, it does not', () => {
    const fill = (rows: number) => {
      const t = new TupleSet(1, 'grow');
      for (let i = 0; i < rows; i++) {
        t.t[0] = i;
        t.add();
      }
      return t.n;
    };
    // a budget already spent: the first check (at 65,536 rows) throws
    expect(() => withTableBudget(-1, () => fill(200_000))).toThrow(/grow: tables still growing past the load budget/);
    expect(withTableBudget(60_000, () => fill(70_000))).toBe(70_000);
    expect(fill(200_000)).toBe(200_000); // the budget ends with its call
  });
});
