// The interpreter's renaming of a call's unbound variables (one renaming reused by every call, typed arrays under
// a generation stamp): rules with more variable slots than its initial size, and a variable repeated within a
// call, against answers derived by hand.
import { describe, expect, test } from 'vitest';
import { parseGdl } from '../src/gdl.js';
import { gtext, Prover } from '../src/interpreter.js';

// 70 `s` literals put ?w at slot 70, past the renaming's first 64 slots; (pair ?w ?w) is asked with ?w unbound
// (a repeated pattern variable) wherever the planner places it
const vars = Array.from({ length: 70 }, (_, i) => `?a${i}`);
const WIDE = `
(role p)
(s c)
(pair a b) (pair b b) (pair c c) (pair c a)
(q b) (q c) (q d)
(<= (r ?w) ${vars.map((v) => `(s ${v})`).join(' ')} (pair ?w ?w) (q ?w))
(<= (r2 ?w ?v) ${vars.map((v) => `(s ${v})`).join(' ')} (pair ?w ?v))
(<= (twice ?x ?y) (pair ?x ?y) (pair ?y ?x))
`;

describe('interpreter: renaming of unbound call variables', () => {
  test('a call with a repeated unbound variable past slot 64 keeps the two occurrences equal', () => {
    const p = new Prover(parseGdl(WIDE));
    p.setContext([], []);
    // pair(w, w) holds for b and c; q holds for b, c and d: r = {b, c}
    expect(
      p
        .ask('r', [0])
        .map((t) => gtext(t[0]!))
        .sort(),
    ).toEqual(['b', 'c']);
    // asked again with fresh variables (the renaming is reset per call, not per query)
    expect(p.ask('r', ['b']).length).toBe(1);
    expect(p.ask('r', ['a']).length).toBe(0);
    // two distinct unbound variables past slot 64 stay distinct: every pair
    expect(
      p
        .ask('r2', [0, 1])
        .map((t) => `${gtext(t[0]!)} ${gtext(t[1]!)}`)
        .sort(),
    ).toEqual(['a b', 'b b', 'c a', 'c c']);
  });

  test('two calls in one body rename their variables independently', () => {
    const p = new Prover(parseGdl(WIDE));
    p.setContext([], []);
    // pair(x, y) and pair(y, x): (b b) and (c c); (c a) has no (a c), (a b) no (b a)
    const rows = p
      .ask('twice', [0, 1])
      .map((t) => `${gtext(t[0]!)} ${gtext(t[1]!)}`)
      .sort();
    expect(rows).toEqual(['b b', 'c c']);
  });
});
