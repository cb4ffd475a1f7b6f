import { describe, expect, test } from 'vitest';
import { KifSyntaxError } from '../src/errors.js';
import { parseGdl, parseTerm, ruleText, termText } from '../src/gdl.js';
import { parseKif, printSExpr } from '../src/kif.js';

describe('KIF parser', () => {
  test('comments, case folding and canonical text', () => {
    const rules = parseGdl('; c\n(ROLE xPlayer)\n(<= (Legal ?P (Mark ?X 1))  ; tail\n  (true (cell ?X 1 B)))');
    expect(rules.map(ruleText)).toEqual(['(role xplayer)', '(<= (legal ?p (mark ?x 1)) (true (cell ?x 1 b)))']);
    expect(termText(parseTerm('( mark  1   1 )'))).toBe('(mark 1 1)');
  });
  test('(p) is the arity-0 sentence p', () => {
    expect(parseGdl('(<= (legal r a) (open2))')[0]!.body[0]).toMatchObject({
      kind: 'atom',
      atom: { rel: 'open2', args: [] },
    });
  });
  test.each([
    ['(role x', 'unclosed', 1, 8],
    ['(role x))', "unexpected ')'", 1, 9],
    ['(role x)\n  (<= )', 'no head', 2, 3],
    ['(init ())', 'empty list', 1, 7],
    ['((f a) b)', 'relation constant', 1, 1],
    ['(<= p (not a b))', "'not' takes 1", 1, 7],
    ['(<= p (distinct a))', "'distinct' takes 2", 1, 7],
    ['(init (?f a))', 'function term must start', 1, 7],
  ])('%j fails with position', (text, msg, line, col) => {
    try {
      parseGdl(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KifSyntaxError);
      expect((e as KifSyntaxError).message).toContain(msg);
      expect((e as KifSyntaxError).pos).toMatchObject({ line, col });
    }
  });
  test('round trip of printed S-expressions', () => {
    const text = '(a (b c) (d (e f)) g)';
    expect(printSExpr(parseKif(text)[0]!)).toBe(text);
  });
});
