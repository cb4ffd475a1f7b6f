import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { checkConformance } from '../src/conformance.js';
import { parseGdl, rulesText } from '../src/gdl.js';
import { interpreterFromRules } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
import { checkMgdl, normaliseMgdl } from '../src/mgdl.js';

const game = `(role r) (init (at 1)) (succ 1 2) (succ 2 3)
(<= (legal2 ?p (step ?x ?y)) (role ?p) (true (at ?x)) (succ ?x ?y))
(<= (legal2 ?p wait) (role ?p) (true (at 3)))
(<= (legal ?p ?m) (legal2 ?p ?m))
(<= (next (at ?y)) (does r (step ?x ?y)))
(<= (next (at 3)) (true (at 3)))
(<= terminal (or (true (at 3)) (true (at 4))))
(goal r 100)`;

describe('mGDL', () => {
  test('the checker says why a sheet is not mGDL', () => {
    const why = checkMgdl(parseGdl(game)).map((i) => i.message);
    expect(why).toContain("function term 'step' as argument 2 of 'legal2'");
    expect(why).toContain("'or' in the rule for terminal");
    expect(checkMgdl(parseGdl('(role r) (init (cell 1 (f 2)))')).map((i) => i.message)).toEqual([
      'nested function term in init: (init (cell 1 (f 2)))',
    ]);
  });
  test('positions with a constant in some head are not spread (not mechanical)', () => {
    const n = normaliseMgdl(parseGdl(game));
    expect(n.spread).toEqual([]);
    expect(n.remaining.map((i) => i.message)).toEqual(["function term 'step' as argument 2 of 'legal2'"]);
  });
  test('the normaliser spreads helper relations and removes or, preserving the game', () => {
    const g2 = game.replace(
      '(<= (legal2 ?p wait) (role ?p) (true (at 3)))',
      '(<= (legal2 ?p (wait)) (role ?p) (true (at 3)))',
    );
    const rules = parseGdl(g2.replace('(wait)', '(pass 0)'));
    const n = normaliseMgdl(rules);
    expect(n.spread).toEqual(['legal2/2']);
    expect(n.remaining).toEqual([]);
    // each spread relation remembers its arity as written (the compiler sizes views by it)
    expect(n.writtenArity).toEqual({ 'legal2~step/3': 2, 'legal2~pass/2': 2 });
    const text = rulesText(n.rules);
    expect(text).toContain('(<= (legal2~step ?p ?x ?y) (role ?p) (true (at ?x)) (succ ?x ?y))');
    expect(text).toContain('(<= (legal ?p (step ?m~step~0 ?m~step~1)) (legal2~step ?p ?m~step~0 ?m~step~1))');
    expect(text).not.toContain('(or ');
    const ref = interpreterFromRules(rules) as GameMachine;
    const norm = interpreterFromRules(n.rules) as GameMachine;
    expect(checkConformance(ref, norm, { playouts: 10 }).mismatches).toEqual([]);
  });
  test('compiled code handles nested function terms too (no mGDL needed)', () => {
    const m = loadCompiled(
      '(role r) (init (c (f (g 1)))) (<= (legal r (m ?x)) (true (c (f ?x)))) (<= (next (c ?x)) (does r (m ?x))) (<= terminal (true (c 1))) (goal r 100)',
    );
    const s = m.initialState();
    expect(m.legalMoves(s, 'r')).toEqual(['(m (g 1))']);
    expect(m.fluents(m.nextState(s, ['(m (g 1))']))).toEqual(['(c (g 1))']);
  });
});
