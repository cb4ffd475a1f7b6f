// Hand-verified facts about ggp-base's edge-case sheets (games/test), checked on every reasoner.
import { describe, expect, test } from 'vitest';
import { loadCompiled } from '../src/compiler.js';
import { loadInterpreter } from '../src/interpreter.js';
import type { GameMachine } from '../src/machine.js';
import { haveSheets, sheet } from './sheets.js';

type Load = (kif: string) => GameMachine;
const engines: Array<[string, Load]> = [
  ['interpreter', (k) => loadInterpreter(k) as GameMachine],
  ['compiled', (k) => loadCompiled(k) as GameMachine],
];

/** Plays the given moves (one list per ply, one move per role) and returns the machine and final state. */
function play(load: Load, name: string, plies: string[][] = []) {
  const m = load(sheet(`test/${name}`));
  let s = m.initialState();
  for (const joint of plies) s = m.nextState(s, joint);
  return { m, s };
}

describe.skipIf(!haveSheets).each(engines)('edge cases on the %s', (_name, load) => {
  test('1a: time-invariant goal', () => {
    const { m, s } = play(load, 'test_case_1a');
    expect(m.legalMoves(s, 'you')).toEqual(['proceed']);
    expect(m.goal(s, 'you')).toBe(100);
    const t = m.nextState(s, ['proceed']);
    expect(m.isTerminal(t)).toBe(true);
    expect(m.fluents(t)).toEqual(['(state 1)']);
  });
  test('1b: legal used inside a view; no legal move ends the game', () => {
    const { m, s } = play(load, 'test_case_1b');
    expect(m.legalMoves(s, 'you')).toEqual(['lose', 'win']);
    const lost = m.nextState(s, ['lose']);
    expect(m.legalMoves(lost, 'you')).toEqual([]);
    expect(m.isTerminal(lost)).toBe(true);
    expect(m.goal(lost, 'you')).toBe(0);
    expect(m.goal(m.nextState(s, ['win']), 'you')).toBe(100);
  });
  test('2a: derived time-invariant facts in legal', () => {
    const { m, s } = play(load, 'test_case_2a');
    expect(m.legalMoves(s, 'you')).toEqual(['(move move_next 0 1)']);
    let t = s;
    for (let i = 0; i < 4; i++) t = m.nextState(t, [m.legalMoves(t, 'you')[0]!]);
    expect(m.isTerminal(t)).toBe(true);
    expect(m.goal(t, 'you')).toBe(100);
  });
  test('2b: snake on a ring', () => {
    const { m, s } = play(load, 'test_case_2b');
    expect(m.legalMoves(s, 'snake')).toEqual(['mov_left', 'mov_right']);
    const t = m.nextState(s, ['mov_right']);
    expect(m.fluents(t)).toContain('(pos c7)');
    expect(m.fluents(t)).toContain('(cell c6 mov_right)');
    expect(m.fluents(t)).toContain('evenmove');
  });
  test('3a: (open2) is the arity-0 sentence open2', () => {
    const { m, s } = play(load, 'test_case_3a');
    expect(m.legalMoves(s, 'xplayer')).toEqual(['(move correct_correct)']);
    const t = m.nextState(s, ['(move correct_correct)']);
    expect(m.fluents(t)).toEqual(['correct_correct']);
    expect(m.isTerminal(t)).toBe(true);
    expect(m.goal(t, 'xplayer')).toBe(100);
  });
  test('3b: an unused unsafe rule does not break the game', () => {
    const { m, s } = play(load, 'test_case_3b');
    expect(m.isTerminal(s)).toBe(true);
    expect(m.legalMoves(s, 'xplayer')).toEqual(['noop']);
    expect(m.goal(s, 'xplayer')).toBe(100);
  });
  test('3c: an undefined relation is false', () => {
    const { m, s } = play(load, 'test_case_3c');
    expect(m.legalMoves(s, 'xplayer')).toEqual(['win']);
    const t = m.nextState(s, ['win']);
    expect(m.isTerminal(t)).toBe(true);
    expect(m.goal(t, 'xplayer')).toBe(100);
  });
  test('3d: next from a negated true', () => {
    const { m, s } = play(load, 'test_case_3d');
    expect(m.legalMoves(s, 'xplayer')).toEqual(['win']);
    const t = m.nextState(s, ['win']);
    expect(m.fluents(t)).toEqual(['winner']);
    expect(m.goal(t, 'xplayer')).toBe(100);
  });
  test('3e: (legal ?p ?p) binds the role', () => {
    const { m, s } = play(load, 'test_case_3e');
    expect(m.legalMoves(s, 'xplayer')).toEqual(['xplayer']);
    expect(m.goal(s, 'xplayer')).toBe(100);
    expect(m.isTerminal(s)).toBe(true);
  });
  test('3f: goal with negation over the role', () => {
    const { m, s } = play(load, 'test_case_3f');
    expect(m.roles()).toEqual(['xplayer', 'yplayer', 'zplayer']);
    expect(m.roles().map((r) => m.goal(s, r))).toEqual([100, 0, 100]);
    expect(m.legalMoves(s, 'yplayer')).toEqual(['yplayer']);
  });
  test('4a: base/input sheet with a non-persistent fluent', () => {
    const { m, s } = play(load, 'test_case_4a');
    expect(m.fluents(s)).toEqual(['p']);
    expect(m.legalMoves(s, 'robot')).toEqual(['a']);
    const t = m.nextState(s, ['a']);
    expect(m.fluents(t)).toEqual(['q']);
    expect(m.isTerminal(t)).toBe(true);
  });
  test('5a: recursion through function terms', () => {
    const { m, s } = play(load, 'test_case_5a');
    expect(m.legalMoves(s, 'you')).toEqual(['proceed']);
  });
  test('5b: empty initial state, next facts, does in a view', () => {
    const { m, s } = play(load, 'test_case_5b');
    expect(m.fluents(s)).toEqual([]);
    expect(m.legalMoves(s, 'you')).toEqual(['(draw 1 1 1 2)']);
    const t = m.nextState(s, ['(draw 1 1 1 2)']);
    expect(m.fluents(t)).toEqual(['(line 1 1 1 2)', 'done']);
    expect(m.isTerminal(t)).toBe(true);
  });
  test('5c: left recursion and a cycle without base case', () => {
    const { m, s } = play(load, 'test_case_5c');
    expect(m.legalMoves(s, 'you')).toEqual(['proceed']);
  });
  test('5d: mutual recursion in init', () => {
    const { m, s } = play(load, 'test_case_5d');
    expect(m.fluents(s)).toEqual(['(rtrue 1 2)', '(rtrue 2 1)', '(strue 1 2)', '(strue 2 1)']);
    expect(m.legalMoves(s, 'you')).toEqual(['proceed']);
  });
  test('5e: recursion with the recursive literal first', () => {
    const { m, s } = play(load, 'test_case_5e');
    expect(m.legalMoves(s, 'robot')).toEqual([
      '(reduce a 0)',
      '(reduce a 1)',
      '(reduce c 0)',
      '(reduce c 1)',
      '(reduce c 2)',
      '(reduce c 3)',
      '(reduce c 4)',
    ]);
  });
  test('not/distinct cleaning', () => {
    const { m, s } = play(load, 'test_clean_not_distinct');
    expect(m.goal(s, 'player')).toBe(100);
  });
  test('distinct at the beginning of a rule', () => {
    const { m, s } = play(load, 'test_distinct_beginning_rule');
    expect(m.legalMoves(s, 'you')).toEqual(['(do a b)', '(do b a)']);
  });
  test('simpleMutex: negation through a view of fluents', () => {
    const { m, s } = play(load, 'simpleMutex');
    expect(m.legalMoves(s, 'robot')).toEqual(['a', 'b', 'c']);
    const t = m.nextState(s, ['b']);
    expect(m.fluents(t)).toEqual(['h3', 'm1', 'm4', 'm6', 't2']);
    expect(m.isTerminal(t)).toBe(true);
    expect(m.goal(t, 'robot')).toBe(100);
  });
  test('ticTacToe and connectFour from games/test', () => {
    const t = play(load, 'ticTacToe', [
      ['(mark 1 1)', 'noop'],
      ['noop', '(mark 2 2)'],
      ['(mark 1 2)', 'noop'],
      ['noop', '(mark 3 3)'],
      ['(mark 1 3)', 'noop'],
    ]);
    expect(t.m.isTerminal(t.s)).toBe(true);
    expect(t.m.roles().map((r) => t.m.goal(t.s, r))).toEqual([100, 0]);
    const c = play(load, 'connectFour', [['(drop 1)', 'noop']]);
    expect(c.m.fluents(c.s)).toEqual(['(cell 1 1 red)', '(control black)']);
    expect(c.m.legalMoves(c.s, 'red')).toEqual(['noop']);
  });
  test('illegal input gives typed errors', () => {
    const { m, s } = play(load, 'ticTacToe');
    expect(() => m.nextState(s, ['(mark 1 1)'])).toThrow(/expected 2 moves/);
    expect(() => m.legalMoves(s, 'nobody')).toThrow(/unknown role/);
  });
});

describe.each(engines)('GDL-II on the %s', (_name, load) => {
  // a tiny game with the random role and private percepts: random hides a coin, the guesser sees a hint
  const kif = `(role random) (role guesser)
    (init (phase hide))
    (<= (legal random (hide ?c)) (true (phase hide)) (coin ?c))
    (<= (legal random noop) (true (phase guess)))
    (<= (legal guesser noop) (true (phase hide)))
    (<= (legal guesser (guess ?c)) (true (phase guess)) (coin ?c))
    (coin heads) (coin tails)
    (<= (sees guesser (hint ?c)) (does random (hide ?c)) (not (true (secret))))
    (<= (sees random (told ?c)) (does guesser (guess ?c)))
    (<= (next (hidden ?c)) (does random (hide ?c)))
    (<= (next (hidden ?c)) (true (hidden ?c)))
    (<= (next (phase guess)) (true (phase hide)))
    (<= (next (phase done)) (true (phase guess)))
    (<= (next (right)) (does guesser (guess ?c)) (true (hidden ?c)))
    (<= terminal (true (phase done)))
    (<= (goal guesser 100) (true right)) (<= (goal guesser 0) (not (true right)))
    (goal random 0)`;
  test('sees gives each role its percepts', () => {
    const m = load(kif);
    const s = m.initialState();
    expect(m.roles()).toEqual(['random', 'guesser']);
    expect(m.percepts(s, ['(hide tails)', 'noop'], 'guesser')).toEqual(['(hint tails)']);
    expect(m.percepts(s, ['(hide tails)', 'noop'], 'random')).toEqual([]);
    const t = m.nextState(s, ['(hide tails)', 'noop']);
    expect(m.percepts(t, ['noop', '(guess heads)'], 'random')).toEqual(['(told heads)']);
    const u = m.nextState(t, ['noop', '(guess tails)']);
    expect(m.isTerminal(u)).toBe(true);
    expect(m.goal(u, 'guesser')).toBe(100);
  });
  test('percepts of a malformed joint move are a typed error, as in nextState', () => {
    const m = load(kif);
    const s = m.initialState();
    expect(() => m.percepts(s, ['(hide tails'], 'guesser')).toThrow(/expected 2 moves|not a GDL term/);
    expect(() => m.percepts(s, ['(hide tails', 'noop'], 'guesser')).toThrow(/not a GDL term/);
  });
});
