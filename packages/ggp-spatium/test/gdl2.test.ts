import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadGame } from '../src/game.js';
import { BeliefState, GdlIIPlayer } from '../src/gdl2.js';
import type { GameMachine } from '../src/machine.js';
import { LocalAgent, playMatch, RemoteAgent } from '../src/match.js';
import { RandomPlayer } from '../src/players.js';
import { parseMessage, play2Message, startMessage } from '../src/protocol.js';
import { createPlayerServer, type PlayerServer } from '../src/server.js';

// Our Monty Hall sheet: the host (`random`) hides the car, the candidate chooses, the host opens another door
// without the car (the candidate sees which), the candidate may switch.
const KIF = readFileSync(new URL('./fixtures/montyHall.kif', import.meta.url), 'utf8');
const car = (m: GameMachine, s: unknown) => m.fluents(s).find((f) => f.startsWith('(car '));

describe('GDL-II belief state (Monty Hall)', () => {
  test('hand-derived beliefs: uniform after the hiding, 1/3 vs 2/3 after the host opens a door', () => {
    const m = loadGame(KIF) as GameMachine;
    const b = new BeliefState(m, 0);
    b.update('noop', []); // the host hid the car: we saw nothing
    const after1 = b.normalised().map((x) => [car(m, x.s), x.p]);
    expect(after1.sort()).toEqual([
      ['(car 1)', 1 / 3],
      ['(car 2)', 1 / 3],
      ['(car 3)', 1 / 3],
    ]);
    b.update('(choose 1)', []);
    b.update('noop', ['(open_door 3)']);
    // car 3 is impossible; the host opens 3 for sure when the car is behind 2, half the time when it is behind 1
    const after3 = b
      .normalised()
      .map((x) => [car(m, x.s), x.p] as const)
      .sort();
    expect(after3.map((x) => x[0])).toEqual(['(car 1)', '(car 2)']);
    expect(after3[0]![1]).toBeCloseTo(1 / 3, 12);
    expect(after3[1]![1]).toBeCloseTo(2 / 3, 12);
    expect(b.rebuilds).toBe(0);
    expect(
      b
        .legalMoves()
        .map((x) => m.moveText(x))
        .sort(),
    ).toEqual(['noop', 'switch']);
  });

  test('an emptied belief is rebuilt from histories that reproduce every percept', () => {
    const m = loadGame(KIF) as GameMachine;
    const b = new BeliefState(m, 0, { particles: 1, seed: 9 });
    b.update('noop', []);
    expect(b.particles).toHaveLength(1); // resampled down to one of the three
    const c = Number(car(m, b.particles[0]!.s)!.match(/\d/)![0]);
    const chosen = c === 1 ? 2 : 1;
    b.update(`(choose ${chosen})`, []);
    // the host opens the very door our only particle has the car behind: no particle survives
    b.update('noop', [`(open_door ${c})`]);
    expect(b.rebuilds).toBe(1);
    expect(b.particles.length).toBeGreaterThan(0);
    for (const { s } of b.particles) {
      expect(car(m, s)).not.toBe(`(car ${c})`);
      expect(m.fluents(s)).toContain(`(chosen ${chosen})`);
      expect(m.fluents(s)).not.toContain(`(closed ${c})`);
    }
  });
});

describe('GDL-II player', () => {
  test('perfect-information Monte Carlo over the belief switches doors', () => {
    const m = loadGame(KIF) as GameMachine;
    const p = new GdlIIPlayer({ determinizations: 8 });
    p.start(m, 0, 4);
    expect(m.moveText(p.select(undefined, { timeMs: 1e9, maxIterations: 100 }))).toBe('noop');
    p.perceive('noop', []);
    p.perceive('(choose 2)', []);
    p.perceive('noop', ['(open_door 1)']);
    expect(m.moveText(p.select(undefined, { timeMs: 1e9, maxIterations: 400 }))).toBe('switch');
  });

  test('matches against the random host: legal moves only, always switching', async () => {
    let wins = 0;
    const games = 12;
    for (let g = 0; g < games; g++) {
      const rec = await playMatch(
        KIF,
        [new LocalAgent(new GdlIIPlayer(), g + 1, 0, 200), new LocalAgent(new RandomPlayer(), 100 + g)],
        { seed: g + 1, playclock: 1 },
      );
      expect(rec.errors).toEqual([]);
      expect(rec.plies).toBe(4);
      expect(rec.moves[3]![0]).toBe('switch');
      if (rec.goals[0] === 100) wins++;
    }
    // switching wins exactly when the first choice missed the car
    expect(wins).toBeGreaterThan(0);
  });
});

describe('GDL-II protocol', () => {
  test('PLAY and STOP carry the turn, our last move and our percepts', () => {
    expect(parseMessage('(PLAY m1 0 NIL NIL)')).toEqual({
      type: 'play',
      matchId: 'm1',
      moves: null,
      gdl2: { turn: 0, lastMove: null, percepts: [] },
    });
    expect(parseMessage('(play m1 3 noop ((open_door 3) (light on)))')).toMatchObject({
      gdl2: { turn: 3, lastMove: 'noop', percepts: ['(open_door 3)', '(light on)'] },
    });
    expect(parseMessage('(STOP m1 4 switch NIL)')).toMatchObject({ type: 'stop', gdl2: { turn: 4 } });
    expect(() => parseMessage('(PLAY m1 x noop NIL)')).toThrow(/turn/);
    expect(play2Message('m1', 2, '(choose 1)', ['(a)'])).toBe('(PLAY m1 2 (choose 1) ((a)))');
  });

  let srv: PlayerServer;
  let url = '';
  const post = async (body: string) =>
    (await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/acl' }, body })).text();
  beforeAll(async () => {
    srv = createPlayerServer({ port: 0, host: '127.0.0.1', marginMs: 300 });
    url = `http://127.0.0.1:${await srv.listen()}/`;
  });
  afterAll(() => srv.close());

  test('the server plays a GDL-II match from percepts', async () => {
    const rules = KIF.replace(/;[^\n]*/g, '');
    expect(await post(startMessage('h1', 'candidate', rules, 1, 1))).toBe('ready');
    expect(await post(play2Message('h1', 0, null, null))).toBe('noop');
    const choice = await post(play2Message('h1', 1, 'noop', null));
    expect(choice).toMatch(/^\(choose [123]\)$/);
    expect(await post(play2Message('h1', 2, choice, null))).toBe('noop');
    const d = Number(choice.match(/\d/)![0]);
    const open = d === 3 ? 1 : 3;
    expect(await post(play2Message('h1', 3, 'noop', [`(open_door ${open})`]))).toBe('switch');
    // a garbled percept list: still a legal answer
    expect(['switch', 'noop']).toContain(await post(play2Message('h1', 3, 'bogus', ['(nonsense)'])));
    expect(await post(`(STOP h1 4 switch NIL)`)).toBe('done');
  });

  test('the referee runs a GDL-II match against the server: only our move and percepts are sent', async () => {
    const rec = await playMatch(KIF, [new RemoteAgent(url), new LocalAgent(new RandomPlayer(), 5)], {
      startclock: 1,
      playclock: 1,
      seed: 3,
    });
    expect(rec.errors).toEqual([]);
    expect(rec.plies).toBe(4);
    expect(rec.moves[0]![0]).toBe('noop');
    expect(rec.moves[1]![0]).toMatch(/^\(choose [123]\)$/);
    expect(rec.moves[3]![0]).toBe('switch');
    expect(play2Message('x', 0, null, [])).toBe('(PLAY x 0 NIL NIL)');
    expect(play2Message('x', 2, 'noop', [])).toBe('(PLAY x 2 noop ())');
    expect(parseMessage('(PLAY x 2 noop ())')).toMatchObject({ gdl2: { percepts: [] } });
  });
});
