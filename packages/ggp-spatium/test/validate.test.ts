import { describe, expect, test } from 'vitest';
import { GdlValidationError } from '../src/errors.js';
import { parseGdl } from '../src/gdl.js';
import { loadInterpreter } from '../src/interpreter.js';
import { sccs, validateRules } from '../src/validate.js';
import { haveSheets, sheet } from './sheets.js';

const base = '(role r) (init s) (legal r a) (<= (next s) (true s)) (<= terminal (true s)) (goal r 100)\n';
const kinds = (text: string) => validateRules(parseGdl(base + text)).errors.map((e) => e.kind);

describe('GDL validity checks', () => {
  test('a valid sheet has no errors', () => expect(kinds('')).toEqual([]));
  test.each([
    ['(<= (legal r (m ?x)) (true s))', 'safety'],
    ['(<= (legal r b) (true s) (not (p ?y)))', 'safety'],
    ['(<= (legal r b) (true s) (distinct ?y c))', 'safety'],
    ['(<= p (not q)) (<= q (not p)) (<= (legal r b) p)', 'stratification'],
    ['(<= (legal r b) (q ?x)) (q 1) (r 1) (<= (q ?x) (r ?x) (q ?y))', 'recursion'],
    ['(<= (init s2) (true s))', 'init'],
    ['(<= (legal r b) (does r a))', 'dependency'],
    ['(<= terminal (does r a))', 'dependency'],
    ['(<= (role q) (true s))', 'role'],
    ['(<= (true s) (true s))', 'keyword'],
    ['(<= (legal r b) (next s))', 'keyword'],
    ['(foo a) (foo a b) (<= (legal r b) (foo a))', 'arity'],
    ['(legal r (f 1)) (legal r (f 1 2))', 'arity'],
    ['(<= (goal r) (true s))', 'arity'],
  ])('%s → %s', (text, kind) => {
    expect(kinds(text)).toContain(kind);
  });
  test('unsafe rules of unused relations are warnings, unknown relations too', () => {
    const rep = validateRules(parseGdl(`${base}(<= (d ?x ?y) (distinct ?x ?y)) (<= (legal r b) squee)`));
    expect(rep.errors).toEqual([]);
    expect(new Set(rep.warnings.map((w) => w.kind))).toEqual(new Set(['safety', 'unknown-relation']));
  });
  test('loadGame throws a typed error with line:column', () => {
    expect(() => loadInterpreter(`${base}\n(<= (legal r (m ?x)) (true s))`)).toThrowError(GdlValidationError);
    expect(() => loadInterpreter(`${base}\n(<= (legal r (m ?x)) (true s))`)).toThrowError(
      /3:1 \[safety\] variable \?x/,
    );
  });
  test.skipIf(!haveSheets).each(['test_invalid_function_arities_differ', 'test_invalid_sentence_arities_differ'])(
    '%s is rejected',
    (name) => {
      const rep = validateRules(parseGdl(sheet(`test/${name}`)));
      expect(rep.errors.map((e) => e.kind)).toContain('arity');
    },
  );
});

describe('strongly connected components', () => {
  test('dependencies first, cycles grouped, and chains deeper than the call stack', () => {
    // a → b → c → a, c → d, d → d, e alone
    const g: Record<string, string[]> = { a: ['b'], b: ['c'], c: ['a', 'd'], d: ['d'], e: [] };
    const comps = sccs(Object.keys(g), (n) => g[n]!).map((c) => c.slice().sort().join(''));
    expect(comps).toEqual(['d', 'abc', 'e']);
    // a ground net's chain: 200,000 atoms, the last one leading back to the first
    const n = 200_000;
    const deep = sccs(['0'], (v) => [String((Number(v) + 1) % n)]);
    expect(deep).toHaveLength(1);
    expect(deep[0]).toHaveLength(n);
  });
});
