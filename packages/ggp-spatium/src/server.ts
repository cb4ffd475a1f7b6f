// A GGP protocol player: HTTP POST on port 9147, text/acl. One match at a time (`busy` to others); every
// PLAY is answered within the playclock: a legal fallback move is fixed before searching, the search runs in
// slices so the server keeps answering, and malformed, oversized or out-of-match messages get an error reply
// instead of a crash.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadGame } from './game.js';
import type { GameMachine } from './machine.js';
import { type Player, UctPlayer } from './players.js';
import { parseMessage } from './protocol.js';

export interface ServerOptions {
  port?: number;
  host?: string;
  name?: string;
  /** larger request bodies are refused (413) */
  maxBodyBytes?: number;
  /** the player for each new match */
  makePlayer?: () => Player;
  /** kept from each clock for network and overhead, ms */
  marginMs?: number;
  log?: (line: string) => void;
}

interface Match {
  id: string;
  machine: GameMachine;
  role: number;
  player: Player;
  state: unknown;
  playclock: number;
}

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
        if (match && match.id === msg.matchId) match = null;
        return 'aborted';
      case 'stop':
        if (match && match.id === msg.matchId) match = null;
        return 'done';
      case 'start': {
        if (match && match.id !== msg.matchId) return 'busy';
        const machine = loadGame(msg.rules, { strict: false });
        const role = machine.roles().indexOf(msg.role.toLowerCase());
        if (role < 0) throw new Error(`role '${msg.role}' is not in the game (${machine.roles().join(', ')})`);
        const player = makePlayer();
        player.start(machine, role, 1);
        const m: Match = {
          id: msg.matchId,
          machine,
          role,
          player,
          state: machine.initialState(),
          playclock: msg.playclock,
        };
        match = m;
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
