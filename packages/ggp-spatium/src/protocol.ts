// GGP protocol messages (Genesereth, Love & Pell, AI Magazine 26(2), 2005; ggp.org's INFO/ABORT/PREVIEW):
// one S-expression per HTTP POST, `Content-Type: text/acl`.
import { ProtocolError } from './errors.js';
import { isAtom, parseKif, printSExpr, type SExpr } from './kif.js';

export type Message =
  | { type: 'info' }
  | { type: 'start'; matchId: string; role: string; rules: string; startclock: number; playclock: number }
  | { type: 'play'; matchId: string; moves: string[] | null; gdl2?: Gdl2Info }
  | { type: 'stop'; matchId: string; moves: string[] | null; gdl2?: Gdl2Info }
  | { type: 'abort'; matchId: string }
  | { type: 'preview'; rules: string; previewclock: number };

/**
 * GDL-II's PLAY and STOP (the Dresden ggpserver's protocol): `(PLAY <id> <turn> <lastmove> <percepts>)`, turn 0
 * with NIL NIL first; the last move is the one the game master played for us, the percepts what `sees` gives us.
 */
export interface Gdl2Info {
  turn: number;
  lastMove: string | null;
  percepts: string[];
}

const atom = (e: SExpr | undefined, what: string): string => {
  if (!e || !isAtom(e)) throw new ProtocolError(`expected ${what} as a symbol`);
  return e.atom;
};
const num = (e: SExpr | undefined, what: string): number => {
  const v = Number(atom(e, what));
  if (!Number.isFinite(v) || v < 0) throw new ProtocolError(`expected ${what} as a non-negative number`);
  return v;
};
const moves = (e: SExpr | undefined): string[] | null => {
  if (!e) throw new ProtocolError('expected the last moves or nil');
  if (isAtom(e)) {
    if (e.atom === 'nil') return null;
    throw new ProtocolError(`expected a list of moves or nil, got '${e.atom}'`);
  }
  return e.list.map(printSExpr);
};
const rulesOf = (e: SExpr | undefined): string => {
  if (!e || isAtom(e)) throw new ProtocolError('expected the rules as a list');
  return e.list.map(printSExpr).join('\n');
};

/** Parses one protocol message (throws ProtocolError or KifSyntaxError). */
export function parseMessage(text: string): Message {
  const es = parseKif(text);
  if (es.length !== 1) throw new ProtocolError(`expected one message, got ${es.length} expressions`);
  const e = es[0]!;
  if (isAtom(e)) {
    if (e.atom === 'info') return { type: 'info' };
    throw new ProtocolError(`unknown message '${e.atom}'`);
  }
  const [head, ...a] = e.list;
  const kind = atom(head, 'the message type');
  switch (kind) {
    case 'info':
      return { type: 'info' };
    case 'start':
      if (a.length !== 5) throw new ProtocolError(`START takes 5 arguments, got ${a.length}`);
      return {
        type: 'start',
        matchId: atom(a[0], 'the match id'),
        role: atom(a[1], 'the role'),
        rules: rulesOf(a[2]),
        startclock: num(a[3], 'the startclock'),
        playclock: num(a[4], 'the playclock'),
      };
    case 'play':
    case 'stop':
      if (a.length === 4) {
        const last = a[2]!;
        const per = a[3]!;
        return {
          type: kind,
          matchId: atom(a[0], 'the match id'),
          moves: null,
          gdl2: {
            turn: num(a[1], 'the turn'),
            lastMove: isAtom(last) && last.atom === 'nil' ? null : printSExpr(last),
            percepts: isAtom(per) ? (per.atom === 'nil' ? [] : [per.atom]) : per.list.map(printSExpr),
          },
        };
      }
      if (a.length !== 2)
        throw new ProtocolError(`${kind.toUpperCase()} takes 2 arguments (GDL-II: 4), got ${a.length}`);
      return { type: kind, matchId: atom(a[0], 'the match id'), moves: moves(a[1]) };
    case 'abort':
      if (a.length !== 1) throw new ProtocolError(`ABORT takes 1 argument, got ${a.length}`);
      return { type: 'abort', matchId: atom(a[0], 'the match id') };
    case 'preview':
      if (a.length !== 2) throw new ProtocolError(`PREVIEW takes 2 arguments, got ${a.length}`);
      return { type: 'preview', rules: rulesOf(a[0]), previewclock: num(a[1], 'the previewclock') };
    default:
      throw new ProtocolError(`unknown message '${kind}'`);
  }
}

export const startMessage = (id: string, role: string, rules: string, sc: number, pc: number): string =>
  `(START ${id} ${role} (${rules}) ${sc} ${pc})`;
export const playMessage = (id: string, moves: string[] | null): string =>
  `(PLAY ${id} ${moves ? `(${moves.join(' ')})` : 'NIL'})`;
export const play2Message = (id: string, turn: number, lastMove: string | null, percepts: string[] | null): string =>
  `(PLAY ${id} ${turn} ${lastMove ?? 'NIL'} ${percepts && lastMove !== null ? `(${percepts.join(' ')})` : 'NIL'})`;
export const stop2Message = (id: string, turn: number, lastMove: string | null, percepts: string[] | null): string =>
  `(STOP ${id} ${turn} ${lastMove ?? 'NIL'} ${percepts && lastMove !== null ? `(${percepts.join(' ')})` : 'NIL'})`;
export const stopMessage = (id: string, moves: string[] | null): string =>
  `(STOP ${id} ${moves ? `(${moves.join(' ')})` : 'NIL'})`;
