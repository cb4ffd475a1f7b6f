import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalAgent, playMatch, RemoteAgent } from '../src/match.js';
import { RandomPlayer, UctPlayer } from '../src/players.js';
import { parseMessage, startMessage } from '../src/protocol.js';
import { createPlayerServer, type PlayerServer } from '../src/server.js';
import { haveSheets, sheet } from './sheets.js';

describe('protocol messages', () => {
  test('parse', () => {
    expect(parseMessage('(INFO)')).toEqual({ type: 'info' });
    expect(parseMessage('(PLAY m1 NIL)')).toEqual({ type: 'play', matchId: 'm1', moves: null });
    expect(parseMessage('(play m1 ((mark 1 1) noop))')).toEqual({
      type: 'play',
      matchId: 'm1',
      moves: ['(mark 1 1)', 'noop'],
    });
    expect(parseMessage('(START m1 xplayer ((role xplayer) (init p)) 30 15)')).toMatchObject({
      type: 'start',
      role: 'xplayer',
      rules: '(role xplayer)\n(init p)',
      startclock: 30,
      playclock: 15,
    });
    expect(() => parseMessage('(START m1 x)')).toThrow(/START takes 5 arguments/);
    expect(() => parseMessage('(FOO)')).toThrow(/unknown message/);
    expect(() => parseMessage('(PLAY m1 (')).toThrow(/unclosed/);
  });
});

describe.skipIf(!haveSheets)('player server', () => {
  let srv: PlayerServer;
  let url = '';
  const post = async (body: string) => {
    const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/acl' }, body });
    return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
  };
  beforeAll(async () => {
    srv = createPlayerServer({ port: 0, host: '127.0.0.1', marginMs: 300 });
    url = `http://127.0.0.1:${await srv.listen()}/`;
  });
  afterAll(() => srv.close());

  test('INFO, START, busy, PLAY with a legal move in time, bad input, STOP', async () => {
    expect((await post('(INFO)')).text).toContain('(status available)');
    const rules = sheet('ticTacToe').replace(/;[^\n]*/g, '');
    const st = await post(startMessage('m1', 'xplayer', rules, 2, 1));
    expect(st).toMatchObject({ status: 200, text: 'ready', type: 'text/acl' });
    expect((await post('(INFO)')).text).toContain('(status busy)');
    expect((await post(startMessage('m2', 'oplayer', rules, 2, 1))).text).toBe('busy');
    let t0 = performance.now();
    const mv = await post('(PLAY m1 NIL)');
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(mv.text).toMatch(/^\(mark [123] [123]\)$/);
    // an illegal joint move from the referee: still a legal answer, in time
    t0 = performance.now();
    const mv2 = await post('(PLAY m1 ((mark 9 9) (bogus)))');
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(mv2.text).toMatch(/^\(mark [123] [123]\)$/);
    // malformed and oversized messages: errors, and the server keeps answering
    expect((await post('(PLAY m1 ((mark 1 1)')).status).toBe(400);
    expect((await post(')))')).status).toBe(400);
    expect((await post(`(INFO ${'x'.repeat(5 << 20)})`)).status).toBe(413);
    expect((await post('(INFO)')).status).toBe(200);
    expect((await post('(STOP m1 NIL)')).text).toBe('done');
    expect((await post('(INFO)')).text).toContain('(status available)');
    expect((await post('(ABORT m3)')).text).toBe('aborted');
  });

  test('a playclock too short to think still gets a legal move at once', async () => {
    const rules = sheet('connectFour').replace(/;[^\n]*/g, '');
    expect((await post(startMessage('q1', 'red', rules, 0, 0))).text).toBe('ready');
    const t0 = performance.now();
    const mv = await post('(PLAY q1 NIL)');
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(mv.text).toMatch(/^\(drop [1-8]\)$/);
    expect((await post('(ABORT q1)')).text).toBe('aborted');
  });
  test('the referee plays a match against the server by URL and writes a record', async () => {
    const rec = await playMatch(sheet('ticTacToe'), [new RemoteAgent(url), new LocalAgent(new RandomPlayer(), 3)], {
      startclock: 1,
      playclock: 1,
      seed: 2,
      game: 'ticTacToe',
    });
    expect(rec.roles).toEqual(['xplayer', 'oplayer']);
    expect(rec.errors).toEqual([]);
    expect(rec.plies).toBeGreaterThanOrEqual(5);
    expect(rec.goals[0]! + rec.goals[1]!).toBe(100);
    expect(rec.players[0]).toBe(url);
    void UctPlayer;
  });
});
