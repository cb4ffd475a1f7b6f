// The board extension and Go-inspired spatial move features (Łańcucki 2014, after Coulom 2007, "Computing Elo
// ratings of move patterns in the game of Go"). The paper's exact predicate names were not retrievable; ours:
//   (spatium_board <fluent functor> <x argument> <y argument>)   the board fluent, argument positions 1-based
//   (spatium_coord <constant> <integer>)                         a coordinate constant's place on its axis
// Both are ground facts, legal GDL that other players ignore. Where a sheet has none, detectBoard() guesses the
// board fluent from the initial state: the functor with the most fluents whose first two arguments look like
// coordinates (integers, or single letters a..z).

import { parseTerm, type Term, termText } from './gdl.js';
import { type GameMachine, rng } from './machine.js';
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

/**
 * Feature names, in weight order. `win` is +1 for a move that ends the game with the mover's top goal and -1
 * for one that ends it lost; it needs the move's successor state, so it is computed in the tree (once per new
 * node) and, in playouts, only for the few moves that land on a far row (the decisive-move check).
 */
export const FEATURES = ['proximity', 'edge', 'contact', 'friendly', 'capture', 'win'] as const;
export const DEFAULT_WEIGHTS = [1.0, -0.3, 0.5, 0.3, 1.5, 3.0];

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

/** The role a cell content belongs to: its name, or a content the name contains (x → xplayer); -1 for none. */
export function ownerOf(content: string, roles: readonly string[]): number {
  for (let r = 0; r < roles.length; r++) if (content === roles[r]) return r;
  for (let r = 0; r < roles.length; r++) if (content.includes(roles[r]!)) return r;
  for (let r = 0; r < roles.length; r++) if (content.length && roles[r]!.startsWith(content)) return r;
  return -1;
}

/** Fluents of the initial state and of a few seeded random playouts: boards that start empty show up here. */
function sampleFluents(m: GameMachine, playouts: number, budgetMs = 300): string[][] {
  const t0 = performance.now();
  const states: string[][] = [];
  const rand = rng(0x5eed);
  for (let p = 0; p < playouts; p++) {
    let s = m.initialState();
    if (p === 0) states.push(m.fluents(s));
    // the time cap only binds on slow reasoners (chess-class sheets); fast ones always see every sample
    for (let ply = 0; ply < 120 && !m.isTerminal(s) && performance.now() - t0 < budgetMs; ply++) {
      const joint: unknown[] = [];
      for (let r = 0; r < m.roles().length; r++) {
        const ls = m.legal(s, r);
        if (!ls.length) break;
        joint.push(ls[(rand() * ls.length) | 0]);
      }
      if (joint.length < m.roles().length) break;
      s = m.next(s, joint);
      states.push(m.fluents(s));
    }
  }
  return states;
}

/**
 * Finds the board fluent (or uses the declared extension). Candidates are a functor and two argument positions
 * whose values look like coordinates in every sampled fluent and that hold at most one fluent per cell in every
 * sampled state (a cell has one content); the best covers the most cells with the fewest distinct contents
 * (hex's `(cell b 2 red)` beats its `(connected 9 g 6)` group bookkeeping).
 */
export function detectBoard(m: GameMachine, declared?: Partial<Board>, playouts = 16): Board | undefined {
  const states = sampleFluents(m, playouts).map((st) => st.map(parseFluent));
  const table = declared?.coord?.size ? declared.coord : undefined;
  const byF = new Map<string, number>();
  for (const st of states)
    for (const f of st) if (f.args.length >= 2) byF.set(f.f, Math.max(byF.get(f.f) ?? 0, f.args.length));
  let best: Board | undefined;
  let bestScore = 0;
  for (const [f, arity] of byF) {
    if (declared?.functor && f !== declared.functor) continue;
    const pairs: Array<[number, number]> = [];
    if (declared?.xArg !== undefined && declared.yArg !== undefined) pairs.push([declared.xArg, declared.yArg]);
    else
      for (let i = 0; i < Math.min(arity, 3); i++) for (let j = i + 1; j < Math.min(arity, 3); j++) pairs.push([i, j]);
    for (const [xa, ya] of pairs) {
      const cells = new Set<number>();
      const contents = new Map<string, number>();
      let ok = true;
      let minX = Infinity;
      let maxX = -Infinity;
      let minY = Infinity;
      let maxY = -Infinity;
      for (const st of states) {
        const here = new Set<number>();
        for (const fl of st) {
          if (fl.f !== f) continue;
          const x = asCoord(fl.args[xa] ?? '', table);
          const y = asCoord(fl.args[ya] ?? '', table);
          if (Number.isNaN(x) || Number.isNaN(y) || fl.args.length !== arity) {
            ok = false;
            break;
          }
          const k = x * 1000 + y;
          if (here.has(k)) {
            ok = false;
            break;
          }
          here.add(k);
          cells.add(k);
          const c = fl.args.filter((_, i) => i !== xa && i !== ya).join(' ');
          contents.set(c, (contents.get(c) ?? 0) + 1);
          minX = Math.min(minX, x);
          maxX = Math.max(maxX, x);
          minY = Math.min(minY, y);
          maxY = Math.max(maxY, y);
        }
        if (!ok) break;
      }
      if (!ok || cells.size < 4) continue;
      const score = cells.size / (1 + Math.log2(Math.max(1, contents.size)));
      if (score <= bestScore) continue;
      bestScore = score;
      // the blank mark: the most common content that belongs to no role, if it is common
      const total = [...contents.values()].reduce((a, b) => a + b, 0);
      const free = [...contents].filter(([c]) => ownerOf(c, m.roles()) < 0).sort((a, b) => b[1] - a[1])[0];
      best = {
        functor: f,
        xArg: xa,
        yArg: ya,
        coord: declared?.coord ?? new Map(),
        minX,
        maxX,
        minY,
        maxY,
        blank: free && free[1] >= total * 0.2 ? free[0] : undefined,
      };
    }
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

export interface FeatureOptions {
  /** in playouts, play a move that wins at once when one of the few far-row candidates does (default true) */
  decisive?: boolean;
  /** most candidates checked per playout ply (each costs a state transition) */
  decisiveMax?: number;
  /** tree priors look at each move's successor: the win feature, and the landing cell of drop-style moves */
  effects?: boolean;
}

type Grid = Map<number, { c: string; owner: number }>;

/**
 * Spatial move features → move weights exp(w·f): proximity to the last moves, distance to the edge, contact
 * (occupied neighbours of the target), friendly neighbours, capture (target holds an opponent's piece), and
 * win/loss at once. The tree's prior uses all of them; playouts use the ones read off the move and the board,
 * plus a decisive-move check.
 */
export class BoardFeatures<S = unknown, M = unknown> implements MoveBias<S, M> {
  readonly weights_: number[];
  readonly opts: Required<FeatureOptions>;
  private board: Board | null | undefined;
  private readonly moveCache = new Map<unknown, ReturnType<typeof moveCells>>();
  private readonly fluentCache = new Map<string, { x: number; y: number; c: string; owner: number } | null>();
  private roleNames: string[] = [];

  constructor(
    weights: number[] = DEFAULT_WEIGHTS,
    private readonly declared?: Partial<Board>,
    opts: FeatureOptions = {},
  ) {
    this.weights_ = FEATURES.map((_, i) => weights[i] ?? 0);
    this.opts = { decisive: opts.decisive ?? true, decisiveMax: opts.decisiveMax ?? 8, effects: opts.effects ?? true };
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

  /** The occupied cells of a state: cell key x·1000+y → content and owning role. */
  grid(m: GameMachine<S, M>, s: S): Grid {
    const b = this.board!;
    const grid: Grid = new Map();
    const table = b.coord.size ? b.coord : undefined;
    for (const t of m.fluents(s)) {
      let e = this.fluentCache.get(t);
      if (e === undefined) {
        const p = parseFluent(t);
        if (p.f === b.functor && p.args.length > Math.max(b.xArg, b.yArg)) {
          const c = p.args.filter((_, i) => i !== b.xArg && i !== b.yArg).join(' ');
          e = {
            x: asCoord(p.args[b.xArg]!, table),
            y: asCoord(p.args[b.yArg]!, table),
            c,
            owner: ownerOf(c, this.roleNames),
          };
        } else e = null;
        this.fluentCache.set(t, e);
      }
      if (e && e.c !== b.blank) grid.set(e.x * 1000 + e.y, { c: e.c, owner: e.owner });
    }
    return grid;
  }

  /** The other roles' moves when each has exactly one (turn-taking games); undefined otherwise. */
  private othersJoint(m: GameMachine<S, M>, s: S, role: number): M[] | undefined {
    const n = this.roleNames.length;
    const joint: M[] = new Array(n);
    for (let r = 0; r < n; r++) {
      if (r === role) continue;
      const ls = m.legal(s, r);
      if (ls.length !== 1) return undefined;
      joint[r] = ls[0]!;
    }
    return joint;
  }

  /** +1: the move ends the game with the role's best goal; -1: ends it with less than half; else 0. */
  private outcome(m: GameMachine<S, M>, s2: S, role: number): number {
    if (!m.isTerminal(s2)) return 0;
    const g = m.goalValues(s2, role);
    const v = g.length ? g[g.length - 1]! : 0;
    return v >= 100 ? 1 : v < 50 ? -1 : 0;
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
    const effects = !cheap && this.opts.effects;
    const grid = effects || w[2] !== 0 || w[3] !== 0 || w[4] !== 0 ? this.grid(m, s) : undefined;
    const others = effects ? this.othersJoint(m, s, role) : undefined;
    const lastCells = (last ?? []).map((x) => this.cells(m, x)).filter((x) => x && !Number.isNaN(x.tx));
    return moves.map((mv) => {
      const f = new Float64Array(FEATURES.length);
      let c = this.cells(m, mv);
      if (others && grid) {
        others[role] = mv;
        const s2 = m.next(s, others);
        f[5] = this.outcome(m, s2, role);
        // drop-style moves name a column only: the landing cell is the one the move fills with the role's piece
        if (!c || Number.isNaN(c.ty)) {
          for (const [k, v] of this.grid(m, s2))
            if (v.owner === role && grid.get(k)?.c !== v.c) {
              c = { tx: Math.floor(k / 1000), ty: k - Math.floor(k / 1000) * 1000 };
              break;
            }
        }
      }
      if (!c) return f;
      const oneD = Number.isNaN(c.ty);
      let d = Number.POSITIVE_INFINITY;
      for (const l of lastCells)
        d = Math.min(d, Math.max(Math.abs(l!.tx - c.tx), oneD || Number.isNaN(l!.ty) ? 0 : Math.abs(l!.ty - c.ty)));
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
            if (v.owner === role) friendly++;
          }
        f[2] = contact / 8;
        f[3] = friendly / 8;
        const at = grid.get(c.tx * 1000 + c.ty);
        f[4] = at !== undefined && at.owner >= 0 && at.owner !== role ? 1 : 0;
      }
      return f;
    });
  }

  /**
   * Playout weights: the features read off the move and the board, and the decisive-move check (Teytaud &
   * Teytaud 2010): the moves that land on a far row (or every move of a drop-style game), if there are at most
   * `decisiveMax` of them, are tried, and one that wins at once is played.
   */
  playoutWeights(m: GameMachine<S, M>, s: S, role: number, moves: M[], last: M[] | null): Float64Array | undefined {
    const b = this.boardOf(m);
    if (!b) return undefined;
    if (this.opts.decisive) {
      const cand: number[] = [];
      for (let i = 0; i < moves.length; i++) {
        const c = this.cells(m, moves[i]!);
        if (c && (Number.isNaN(c.ty) || c.ty === b.minY || c.ty === b.maxY)) cand.push(i);
      }
      if (cand.length && cand.length <= this.opts.decisiveMax) {
        const others = this.othersJoint(m, s, role);
        if (others)
          for (const i of cand) {
            others[role] = moves[i]!;
            if (this.outcome(m, m.next(s, others), role) === 1) {
              const one = new Float64Array(moves.length);
              one[i] = 1;
              return one;
            }
          }
      }
    }
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
