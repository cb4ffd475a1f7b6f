// Compiled ≡ interpreter and grounded ≡ interpreter on seeded random playouts: every edge-case sheet and the core
// tier. The full sweep (100 playouts over every sheet) is `ggp-spatium conformance`, which writes a report.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CompiledMachine, compileProgram, loadCompiled } from '../src/compiler.js';
import { checkConformance, conformSheet, sweepSheets } from '../src/conformance.js';
import { parseGdl } from '../src/gdl.js';
import { loadInterpreter } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
import { normaliseMgdl } from '../src/mgdl.js';
import { prepareRules } from '../src/prepare.js';
import { haveSheets, SHEETS, sheet } from './sheets.js';

const edge = haveSheets
  ? readdirSync(join(SHEETS, 'test'))
      .filter((f) => f.endsWith('.kif') && !f.includes('invalid'))
      .map((f) => `test/${f.slice(0, -4)}`)
  : [];

describe.skipIf(!haveSheets)('conformance: compiled vs interpreter', () => {
  test.each(edge)('%s (10 playouts)', (name) => {
    const r = conformSheet(name, sheet(name), { playouts: 10, seed: 11 });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ parse: true, compile: true, pass: true, timedOut: false, playouts: 10 });
    // every edge-case sheet is small enough to ground: the net must agree with the interpreter too
    expect(r.groundError).toBeUndefined();
    expect(r).toMatchObject({ grounded: true, groundPass: true });
  });
  test.each([
    ['ticTacToe', 100],
    ['connectFour', 15],
    ['breakthrough', 3],
    ['reversi', 1],
    ['hex', 3],
    ['pentago', 3],
    ['englishDraughts', 3],
    ['connectFourSimultaneous', 10],
    ['3pConnectFour', 8],
    ['2pffa_zerosum', 3],
    ['ruleDepthLinear', 3], // a 32-argument relation
  ])('%s (%i playouts)', (name, n) => {
    const r = conformSheet(name, sheet(name), { playouts: n, seed: 5 });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ parse: true, valid: true, normalised: true, compile: true, pass: true, playouts: n });
    expect(r.states).toBeGreaterThan(n);
    // the grounded net (hex's with its large rules split) agrees with the interpreter too
    expect(r.groundError).toBeUndefined();
    expect(r).toMatchObject({ grounded: true, groundPass: true });
  });
  test('on-demand views (wide, recursive, asked bound) agree with the interpreter', () => {
    const kif = `(role r) (init (at 1)) (init (wall 4))
      (succ 1 2) (succ 2 3) (succ 3 4) (succ 4 5) (succ 5 6)
      (<= (path ?a ?b ?c ?d ?e) (true (at ?a)) (succ ?a ?b) (succ ?b ?c) (succ ?c ?d) (succ ?d ?e))
      (<= (below ?x ?z) (succ ?x ?z) (not (true (wall ?z))))
      (<= (below ?x ?z) (succ ?x ?y) (not (true (wall ?y))) (below ?y ?z))
      (<= (legal r (go ?b)) (true (at ?a)) (path ?a ?b ?c ?d ?e))
      (<= (legal r (hop ?b)) (true (at ?a)) (succ ?a ?b) (succ ?b ?c) (below ?a ?c))
      (<= (legal r stay) (true (at ?a)))
      (<= (next (at ?b)) (does r (go ?b)))
      (<= (next (at ?b)) (does r (hop ?b)))
      (<= (next (at ?a)) (does r stay) (true (at ?a)))
      (<= (next (wall ?w)) (true (wall ?w)) (not (true (at 3))))
      (<= terminal (true (at 6)))
      (<= terminal (true (at 5)))
      (<= (goal r 100) (true (at 5)))
      (<= (goal r 0) (not (true (at 5))))`;
    const c = loadCompiled(kif);
    expect(c.program.source).toContain('(on demand)');
    const r = checkConformance(loadInterpreter(kif) as GameMachine, c as GameMachine, { playouts: 40, seed: 2 });
    expect(r.mismatches).toEqual([]);
    const s = c.initialState();
    expect(c.legalMoves(s, 'r')).toEqual(['(go 2)', '(hop 2)', 'stay']);
  });
  test('a rule body longer than 31 literals compiles (hitori has such rules)', () => {
    const lits = Array.from({ length: 40 }, (_, i) => `(v${i} ?x${i})`).join(' ');
    const facts = Array.from({ length: 40 }, (_, i) => `(v${i} ${i})`).join(' ');
    const kif = `(role r) (init s) ${facts} (<= (legal r (go ?x0 ?x39)) (true s) ${lits}) (<= (next t) (does r (go 0 39))) (<= terminal (true t)) (goal r 100)`;
    const c = loadCompiled(kif);
    expect(c.legalMoves(c.initialState(), 'r')).toEqual(['(go 0 39)']);
    expect(checkConformance(loadInterpreter(kif) as GameMachine, c as GameMachine, { playouts: 2 }).mismatches).toEqual(
      [],
    );
  });
  test('the check finds a difference: a sheet with one rule changed does not conform', () => {
    const good = sheet('ticTacToe');
    const bad = good.replace('(<= (next (control oplayer))', '(<= (next (control xplayer))');
    expect(bad).not.toBe(good);
    const r = checkConformance(loadInterpreter(good) as GameMachine, loadCompiled(bad) as GameMachine, {
      playouts: 5,
    });
    expect(r.mismatches.length).toBeGreaterThan(0);
  });
});

describe.skipIf(!haveSheets)("chess through loadGame's mGDL normal form", () => {
  // the normaliser turns legal2/2 into legal2~move/6; sized as 6 wide, the planner asked it fully bound once per
  // own piece and empty square (~500 questions a state); sized by its written width it is asked with the
  // player given, one answer set a state
  const rules = parseGdl(sheet('chess'));
  const norm = normaliseMgdl(rules);
  const g = prepareRules(norm.rules, { strict: false });
  test('legal2~move is asked for the player, not square by square', () => {
    expect(norm.writtenArity).toEqual({ 'legal2~move/6': 2 });
    const src = compileProgram({ ...g, writtenArity: norm.writtenArity }).source;
    expect(src).toMatch(/function Q\d+_1\(a0\) \{ \/\/ legal2~move\/6, memoised per state/);
    expect(src).not.toMatch(/\/\/ legal2~move\/6: memoised per state/);
    // without the written width the planner falls back to the fully bound questions (what this test guards)
    expect(compileProgram(g).source).toMatch(/\/\/ legal2~move\/6: memoised per state/);
  });
  test('and it agrees with the interpreter (2 playouts of up to 40 plies)', () => {
    const m = new CompiledMachine(compileProgram({ ...g, writtenArity: norm.writtenArity }));
    const ref = loadInterpreter(sheet('chess'));
    const r = checkConformance(ref as GameMachine, m as GameMachine, { playouts: 2, maxPlies: 40, seed: 9 });
    expect(r.mismatches).toEqual([]);
    expect(r.states).toBeGreaterThan(40);
  });
});

describe('sweepSheets: which sheets a sweep runs', () => {
  test('a comma-separated list: exact names pick one sheet each, other parts every sheet containing them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ggp-sweep-'));
    try {
      mkdirSync(join(dir, 'test'));
      for (const f of ['chess', 'chess_200', 'speedChess', 'quad', 'quad_5x5', 'reversi'])
        writeFileSync(join(dir, `${f}.kif`), '');
      writeFileSync(join(dir, 'test', 'ticTacToe.kif'), '');
      writeFileSync(join(dir, 'notes.txt'), '');
      expect(sweepSheets(dir)).toEqual([
        'chess.kif',
        'chess_200.kif',
        'quad.kif',
        'quad_5x5.kif',
        'reversi.kif',
        'speedChess.kif',
        'test/ticTacToe.kif',
      ]);
      expect(sweepSheets(dir, 'chess, quad,test/ticTacToe')).toEqual(['chess.kif', 'quad.kif', 'test/ticTacToe.kif']);
      expect(sweepSheets(dir, 'Chess')).toEqual(['speedChess.kif']); // no sheet is named Chess: a substring
      expect(sweepSheets(dir, '_')).toEqual(['chess_200.kif', 'quad_5x5.kif']);
      expect(sweepSheets(dir, 'quad,reversi,speedChess', 2, 3)).toEqual(['reversi.kif', 'speedChess.kif']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
