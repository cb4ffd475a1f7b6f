// A GGP protocol player: HTTP POST on port 9147, text/acl. One match at a time (`busy` to others); every
// PLAY is answered within the playclock: a legal fallback move is fixed before searching, the search runs in
// slices so the server keeps answering, and malformed, oversized or out-of-match messages get an error reply
// instead of a crash.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadGame } from './game.js';
import { GdlIIPlayer } from './gdl2.js';
import type { GameMachine } from './machine.js';
import { type Player, UctPlayer } from './players.js';
import { type Gdl2Info, parseMessage } from './protocol.js';

export interface ServerOptions {
  port?: number;
  host?: string;
  name?: string;
  /** larger request bodies are refused (413) */
  maxBodyBytes?: number;
  /** the player for each new match */
  makePlayer?: () => Player;
  /** the player for GDL-II matches (sheets with `sees` or a `random` role); default GdlIIPlayer */
  makeGdl2Player?: () => GdlIIPlayer;
  /** kept from each clock for network and overhead, ms */
  marginMs?: number;
  log?: (line: string) => void;
}

interface Match {
  id: string;
  machine: GameMachine;
  role: number;
  player: Player;
  /** GDL-II: the player keeps a belief instead of the state */
  gdl2: GdlIIPlayer | null;
  state: unknown;
  playclock: number;
}

const isGdl2 = (rules: string, m: GameMachine) => /\(\s*sees\s/i.test(rules) || m.roles().includes('random');
const closePlayer = (p: Player) => void (p as { close?: () => Promise<void> }).close?.();

export interface PlayerServer {
  server: Server;
  listen(): Promise<number>;
  close(): Promise<void>;
}

const sleep0 = () => new Promise<void>((r) => setImmediate(r));

/** Searches in short slices until the deadline, yielding to the event loop between them. */
async function searchUntil(player: Player, state: unknown, deadline: number, fallback: unknown): Promise<unknown> {
  let best = fallback;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 5) return best;
    best = player.select(state, { timeMs: Math.min(50, left - 5) });
    if (player.name === 'random') return best;
    await sleep0();
  }
}

export function createPlayerServer(opts: ServerOptions = {}): PlayerServer {
  const {
    port = 9147,
    host = '0.0.0.0',
    name = 'ggp-spatium',
    maxBodyBytes = 4 << 20,
    marginMs = 800,
    makePlayer = () => new UctPlayer(),
    makeGdl2Player = () => new GdlIIPlayer(),
    log = () => {},
  } = opts;
  let match: Match | null = null;

  const handle = async (text: string, received: number): Promise<string> => {
    const msg = parseMessage(text);
    switch (msg.type) {
      case 'info':
        return `((name ${name}) (status ${match ? 'busy' : 'available'}) (species bot))`;
      case 'preview':
        return 'ready';
      case 'abort':
        if (match && match.id === msg.matchId) {
          closePlayer(match.player);
          match = null;
        }
        return 'aborted';
      case 'stop':
        if (match && match.id === msg.matchId) {
          closePlayer(match.player);
          match = null;
        }
        return 'done';
      case 'start': {
        if (match && match.id !== msg.matchId) return 'busy';
        const machine = loadGame(msg.rules, { strict: false });
        const role = machine.roles().indexOf(msg.role.toLowerCase());
        if (role < 0) throw new Error(`role '${msg.role}' is not in the game (${machine.roles().join(', ')})`);
        const gdl2 = isGdl2(msg.rules, machine) ? makeGdl2Player() : null;
        const player: Player = gdl2 ?? makePlayer();
        // players that search in worker threads load the rules there
        (player as { setRules?: (kif: string) => void }).setRules?.(msg.rules);
        player.start(machine, role, 1);
        const m: Match = {
          id: msg.matchId,
          machine,
          role,
          player,
          gdl2,
          state: machine.initialState(),
          playclock: msg.playclock,
        };
        match = m;
        if (gdl2) {
          log(`start ${msg.matchId} as ${msg.role} (GDL-II, ${machine.kind})`);
          return 'ready';
        }
        // meta-gaming: warm the search tree on the initial state within the startclock
        const deadline = received + msg.startclock * 1000 - marginMs;
        if (!machine.isTerminal(m.state)) {
          const fb = machine.legal(m.state, role)[0];
          if (fb !== undefined) await searchUntil(player, m.state, Math.min(deadline, received + 10_000), fb);
        }
        log(`start ${msg.matchId} as ${msg.role} (${machine.kind})`);
        return 'ready';
      }
      case 'play': {
        const m = match;
        if (!m || m.id !== msg.matchId) return 'busy';
        if (m.gdl2) return playGdl2(m, m.gdl2, msg.gdl2, msg.moves, received);
        if (msg.gdl2) log(`play ${m.id}: a GDL-II message in a GDL match; moves unknown, state kept`);
        if (msg.moves) {
          try {
            const joint = msg.moves.map((t) => {
              const h = m.machine.parseMove(t);
              if (h === undefined) throw new Error(`unparsable move '${t}'`);
              return h;
            });
            if (joint.length !== m.machine.roles().length)
              throw new Error(`expected ${m.machine.roles().length} moves`);
            joint.forEach((h, r) => {
              if (!m.machine.legal(m.state, r).includes(h))
                throw new Error(`'${m.machine.moveText(h)}' is not legal for ${m.machine.roles()[r]}`);
            });
            m.state = m.machine.next(m.state, joint);
            (m.player as { observe?: (j: unknown[]) => void }).observe?.(joint);
          } catch (e) {
            // a referee's illegal or garbled moves: keep our state, still answer with a legal move
            log(`play ${m.id}: ignoring moves ${msg.moves.join(' ')}: ${(e as Error).message}`);
          }
        }
        const legal = m.machine.isTerminal(m.state) ? [] : m.machine.legal(m.state, m.role);
        if (!legal.length) return 'nil';
        const fallback = legal[0];
        const deadline = received + m.playclock * 1000 - marginMs;
        let move: unknown = fallback;
        try {
          move = await searchUntil(m.player, m.state, deadline, fallback);
        } catch (e) {
          log(`play ${m.id}: search failed (${(e as Error).message}); fallback move`);
        }
        return m.machine.moveText(move);
      }
    }
  };

  /** GDL-II: update the belief with our last move and percepts, then search determinizations in slices. */
  const playGdl2 = async (
    m: Match,
    p: GdlIIPlayer,
    info: Gdl2Info | undefined,
    moves: string[] | null,
    received: number,
  ): Promise<string> => {
    try {
      if (info?.lastMove) p.perceive(info.lastMove, info.percepts);
      else if (moves) throw new Error('a GDL-II match needs (PLAY <id> <turn> <lastmove> <percepts>)');
    } catch (e) {
      log(`play ${m.id}: belief not updated: ${(e as Error).message}`);
    }
    const cand = p.candidates();
    if (!cand.length) return 'nil';
    let move: unknown = cand[0];
    try {
      move = await searchUntil(p as Player, undefined, received + m.playclock * 1000 - marginMs, cand[0]);
    } catch (e) {
      log(`play ${m.id}: search failed (${(e as Error).message}); fallback move`);
    }
    return m.machine.moveText(move);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const received = performance.now();
    const headers = {
      'Content-Type': 'text/acl',
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Methods': 'POST, GET, OPTIONS',
      'Access-Control-Allow-Headers': 'Content-Type, Receiver, Sender',
    };
    const reply = (code: number, body: string) => {
      if (res.headersSent) return;
      res.writeHead(code, { ...headers, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method === 'OPTIONS') return reply(200, '');
    if (req.method !== 'POST') return reply(200, `((name ${name}) (status ${match ? 'busy' : 'available'}))`);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) tooBig = true;
      else chunks.push(c);
    });
    req.on('error', () => reply(400, 'error: broken request'));
    req.on('end', () => {
      if (tooBig) return reply(413, `error: message larger than ${maxBodyBytes} bytes`);
      const text = Buffer.concat(chunks).toString('utf8');
      handle(text, received).then(
        (body) => reply(200, body),
        (e: Error) => {
          log(`error: ${e.message.split('\n')[0]}`);
          reply(400, `error: ${e.message.split('\n')[0]}`);
        },
      );
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());

  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
