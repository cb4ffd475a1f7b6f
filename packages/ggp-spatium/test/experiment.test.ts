import { describe, expect, test } from 'vitest';
import { duel, duelTable, wilson } from '../src/experiment.js';
import { RandomPlayer, UctPlayer } from '../src/players.js';
import { haveSheets, sheet } from './sheets.js';

describe('Wilson score interval', () => {
  test('hand-computed values', () => {
    // 5/10: centre 0.5, half-width 1.96·sqrt(0.025 + 0.009604)/1.38416 = 0.263415
    const [lo, hi] = wilson(5, 10);
    expect(lo).toBeCloseTo(0.236585, 5);
    expect(hi).toBeCloseTo(0.763415, 5);
    // 0/10: the lower end is 0, the upper 2·0.19208/1.38416
    const [lo0, hi0] = wilson(0, 10);
    expect(lo0).toBeCloseTo(0, 12);
    expect(hi0).toBeCloseTo(0.277539, 5);
    // symmetric: k/n and (n−k)/n mirror each other
    const [a, b] = wilson(3, 20);
    const [c, d] = wilson(17, 20);
    expect(a).toBeCloseTo(1 - d, 12);
    expect(b).toBeCloseTo(1 - c, 12);
    expect(wilson(0, 0)).toEqual([0, 1]);
  });
});

describe.skipIf(!haveSheets)('duels', () => {
  test('counts games and records the effort of each side', async () => {
    const r = await duel(
      sheet('ticTacToe'),
      () => new UctPlayer(),
      () => new RandomPlayer(),
      {
        games: 4,
        iterations: 300,
        game: 'ticTacToe',
      },
    );
    expect(r.wins + r.draws + r.losses).toBe(4);
    expect(r.score).toBeGreaterThan(0.5);
    // every decision with a choice ran exactly the iteration budget; the random player reports none
    expect(r.itersA).toBe(300);
    expect(r.itersB).toBe(0);
    expect([r.lo, r.hi]).toEqual(wilson(r.wins + r.draws / 2, 4));
    const t = duelTable([r]);
    expect(t).toContain('| ticTacToe | 4 |');
    expect(t.split('\n')).toHaveLength(3);
  });
});
