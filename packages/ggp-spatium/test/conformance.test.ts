// Compiled ≡ interpreter on seeded random playouts: every edge-case sheet and the core tier. The full sweep
// (100 playouts over every sheet) is `ggp-spatium conformance`, which writes a report.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { checkConformance, conformSheet } from '../src/conformance.js';
import { loadInterpreter } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
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
  ])('%s (%i playouts)', (name, n) => {
    const r = conformSheet(name, sheet(name), { playouts: n, seed: 5 });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ parse: true, valid: true, normalised: true, compile: true, pass: true, playouts: n });
    expect(r.states).toBeGreaterThan(n * 5);
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
