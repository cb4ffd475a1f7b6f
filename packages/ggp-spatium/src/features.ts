// The board extension and Go-inspired spatial move features (Łańcucki 2014, after Coulom 2007, "Computing Elo
// ratings of move patterns in the game of Go"). The paper's exact predicate names were not retrievable; ours:
//   (spatium_board <fluent functor> <x argument> <y argument>)   the board fluent, argument positions 1-based
//   (spatium_coord <constant> <integer>)                         a coordinate constant's place on its axis
// Both are ground facts, legal GDL that other players ignore. Where a sheet has none, detectBoard() guesses the
// board fluent from the initial state: the functor with the most fluents whose first two arguments look like
// coordinates (integers, or single letters a..z).

import { parseTerm, type Term, termText } from './gdl.js';
import type { GameMachine } from './machine.js';
import type { MoveBias } from './players.js';

export interface Board {
  functor: string;
  /** 0-based argument positions of x and y in the board fluent */
  xArg: number;
  yArg: number;
  /** coordinate constant → integer */
  coord: Map<string, number>;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
  /** the most common cell content at the start (the "empty" mark), if any */
  blank?: string;
}

/** Feature names, in weight order. */
export const FEATURES = ['proximity', 'edge', 'contact', 'friendly', 'capture'] as const;
export const DEFAULT_WEIGHTS = [1.0, -0.3, 0.5, 0.3, 1.0];

const letterCoord = (s: string) => (/^[a-z]$/.test(s) ? s.charCodeAt(0) - 96 : Number.NaN);
const asCoord = (s: string, table?: Map<string, number>) =>
  table?.get(s) ?? (/^-?\d+$/.test(s) ? Number(s) : letterCoord(s));

function parseFluent(text: string): { f: string; args: string[] } {
  const t: Term = parseTerm(text);
  if (typeof t === 'string') return { f: t, args: [] };
  if ('v' in t) return { f: '', args: [] };
  return { f: t.f, args: t.args.map(termText) };
}

/** Reads the board extension facts from a sheet's text, if present. */
export function boardFromSheet(kif: string): Partial<Board> | undefined {
  const b = /\(\s*spatium_board\s+(\S+)\s+(\d+)\s+(\d+)\s*\)/i.exec(kif);
  if (!b) return undefined;
  const coord = new Map<string, number>();
  for (const m of kif.matchAll(/\(\s*spatium_coord\s+([^\s()]+)\s+(-?\d+)\s*\)/gi))
    coord.set(m[1]!.toLowerCase(), Number(m[2]));
  return { functor: b[1]!.toLowerCase(), xArg: Number(b[2]) - 1, yArg: Number(b[3]) - 1, coord };
}

/** Finds the board fluent in a machine's initial state (or uses the declared extension). */
export function detectBoard(m: GameMachine, declared?: Partial<Board>): Board | undefined {
  const fl = m.fluents(m.initialState()).map(parseFluent);
  const byF = new Map<string, Array<{ f: string; args: string[] }>>();
  for (const f of fl) if (f.args.length >= 2) byF.set(f.f, [...(byF.get(f.f) ?? []), f]);
  let best: Board | undefined;
  let bestN = 0;
  for (const [f, list] of byF) {
    if (declared?.functor && f !== declared.functor) continue;
    const xa = declared?.xArg ?? 0;
    const ya = declared?.yArg ?? 1;
    const ok = list.every(
      (x) =>
        !Number.isNaN(asCoord(x.args[xa]!, declared?.coord)) && !Number.isNaN(asCoord(x.args[ya]!, declared?.coord)),
    );
    if (!ok || list.length <= bestN) continue;
    const xs = list.map((x) => asCoord(x.args[xa]!, declared?.coord));
    const ys = list.map((x) => asCoord(x.args[ya]!, declared?.coord));
    const contents = new Map<string, number>();
    for (const x of list) {
      const c = x.args.filter((_, i) => i !== xa && i !== ya).join(' ');
      contents.set(c, (contents.get(c) ?? 0) + 1);
    }
    const [blank, nb] = [...contents].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
    best = {
      functor: f,
      xArg: xa,
      yArg: ya,
      coord: declared?.coord ?? new Map(),
      minX: Math.min(...xs),
      maxX: Math.max(...xs),
      minY: Math.min(...ys),
      maxY: Math.max(...ys),
      blank: nb > list.length * 0.3 && list.length > 4 ? blank : undefined,
    };
    bestN = list.length;
  }
  return best;
}

/** Coordinates in a move: the last two coordinate-looking arguments are the target, an earlier pair the source. */
function moveCells(text: string, b: Board): { tx: number; ty: number; sx?: number; sy?: number } | null {
  const p = parseFluent(text);
  const cs = p.args.map((a) => asCoord(a, b.coord.size ? b.coord : undefined));
  const idx = cs.map((c, i) => (Number.isNaN(c) ? -1 : i)).filter((i) => i >= 0);
  if (!idx.length) return null;
  if (idx.length === 1) return { tx: cs[idx[0]!]!, ty: Number.NaN };
  const t = idx.slice(-2);
  const s = idx.length >= 4 ? idx.slice(-4, -2) : undefined;
  return { tx: cs[t[0]!]!, ty: cs[t[1]!]!, sx: s ? cs[s[0]!] : undefined, sy: s ? cs[s[1]!] : undefined };
}

/**
 * Spatial move features → move weights exp(w·f): proximity to the last moves, distance to the edge, contact
 * (occupied neighbours of the target), friendly neighbours, capture (target holds an opponent's piece).
 */
export class BoardFeatures<S = unknown, M = unknown> implements MoveBias<S, M> {
  readonly weights_: number[];
  private board: Board | null | undefined;
  private readonly moveCache = new Map<unknown, ReturnType<typeof moveCells>>();
  private readonly fluentCache = new Map<string, { x: number; y: number; c: string } | null>();
  private roleNames: string[] = [];

  constructor(
    weights: number[] = DEFAULT_WEIGHTS,
    private readonly declared?: Partial<Board>,
  ) {
    this.weights_ = weights;
  }

  boardOf(m: GameMachine<S, M>): Board | null {
    if (this.board === undefined) {
      this.board = detectBoard(m as GameMachine, this.declared) ?? null;
      this.roleNames = m.roles();
    }
    return this.board;
  }

  private cells(m: GameMachine<S, M>, mv: M) {
    let c = this.moveCache.get(mv);
    if (c === undefined) {
      c = moveCells(m.moveText(mv), this.board!);
      this.moveCache.set(mv, c);
    }
    return c;
  }

  /** Feature vectors of the moves (rows of FEATURES.length). */
  features(
    m: GameMachine<S, M>,
    s: S,
    role: number,
    moves: M[],
    last: M[] | null,
    cheap = false,
  ): Float64Array[] | undefined {
    const b = this.boardOf(m);
    if (!b) return undefined;
    const w = this.weights_;
    const needBoard = !cheap && (w[2] !== 0 || w[3] !== 0 || w[4] !== 0);
    let grid: Map<number, string> | undefined;
    if (needBoard) {
      grid = new Map();
      for (const t of m.fluents(s)) {
        let e = this.fluentCache.get(t);
        if (e === undefined) {
          const p = parseFluent(t);
          e =
            p.f === b.functor
              ? {
                  x: asCoord(p.args[b.xArg]!, b.coord.size ? b.coord : undefined),
                  y: asCoord(p.args[b.yArg]!, b.coord.size ? b.coord : undefined),
                  c: p.args.filter((_, i) => i !== b.xArg && i !== b.yArg).join(' '),
                }
              : null;
          this.fluentCache.set(t, e);
        }
        if (e && e.c !== b.blank) grid.set(e.x * 1000 + e.y, e.c);
      }
    }
    const me = this.roleNames[role] ?? '';
    const mine = (c: string) => c === me || me.startsWith(c) || c.includes(me);
    const lastCells = (last ?? []).map((x) => this.cells(m, x)).filter((x) => x && !Number.isNaN(x.tx));
    return moves.map((mv) => {
      const f = new Float64Array(FEATURES.length);
      const c = this.cells(m, mv);
      if (!c) return f;
      const oneD = Number.isNaN(c.ty);
      let d = Number.POSITIVE_INFINITY;
      for (const l of lastCells) d = Math.min(d, Math.max(Math.abs(l!.tx - c.tx), oneD ? 0 : Math.abs(l!.ty - c.ty)));
      f[0] = Number.isFinite(d) ? 1 / (1 + d) : 0;
      const ex = Math.min(c.tx - b.minX, b.maxX - c.tx);
      const ey = oneD ? ex : Math.min(c.ty - b.minY, b.maxY - c.ty);
      f[1] = 1 / (1 + Math.max(0, Math.min(ex, ey)));
      if (grid && !oneD) {
        let contact = 0;
        let friendly = 0;
        for (let dx = -1; dx <= 1; dx++)
          for (let dy = -1; dy <= 1; dy++) {
            if (!dx && !dy) continue;
            if (c.sx === c.tx + dx && c.sy === c.ty + dy) continue;
            const v = grid.get((c.tx + dx) * 1000 + c.ty + dy);
            if (v === undefined) continue;
            contact++;
            if (mine(v)) friendly++;
          }
        f[2] = contact / 8;
        f[3] = friendly / 8;
        const at = grid.get(c.tx * 1000 + c.ty);
        f[4] = at !== undefined && !mine(at) ? 1 : 0;
      }
      return f;
    });
  }

  /** Playouts use only the features that need no look at the state (proximity, edge): they run every ply. */
  playoutWeights(m: GameMachine<S, M>, s: S, role: number, moves: M[], last: M[] | null): Float64Array | undefined {
    return this.weights(m, s, role, moves, last, true);
  }

  weights(
    m: GameMachine<S, M>,
    s: S,
    role: number,
    moves: M[],
    last: M[] | null,
    cheap = false,
  ): Float64Array | undefined {
    const fs = this.features(m, s, role, moves, last, cheap);
    if (!fs) return undefined;
    const w = this.weights_;
    const out = new Float64Array(moves.length);
    for (let i = 0; i < moves.length; i++) {
      let z = 0;
      for (let k = 0; k < w.length; k++) z += w[k]! * fs[i]![k]!;
      out[i] = Math.exp(Math.max(-20, Math.min(20, z)));
    }
    return out;
  }
}
