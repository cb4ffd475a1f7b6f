// The board extension and Go-inspired spatial move features (Łańcucki 2014, after Coulom 2007, "Computing Elo
// ratings of move patterns in the game of Go"). The paper's exact predicate names were not retrievable; ours:
//   (spatium_board <fluent functor> <x argument> <y argument>)   the board fluent, argument positions 1-based
//   (spatium_coord <constant> <integer>)                         a coordinate constant's place on its axis
// Both are ground facts, legal GDL that other players ignore. Where a sheet has none, detectBoard() guesses the
// board fluent from the initial state: the functor with the most fluents whose first two arguments look like
// coordinates (integers, or single letters a..z).

import { parseTerm, type Term, termText } from './gdl.js';
import { type GameMachine, rng } from './machine.js';
import { playout as genericPlayout, type MoveBias, sampleIndex } from './players.js';

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
  for (let p = 0; p < playouts && (p === 0 || performance.now() - t0 < budgetMs); p++) {
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
  const memo = new Map<string, { f: string; args: string[] }>();
  const parse = (t: string) => {
    let p = memo.get(t);
    if (!p) memo.set(t, (p = parseFluent(t)));
    return p;
  };
  const states = sampleFluents(m, playouts).map((st) => st.map(parse));
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

const detected = new WeakMap<object, Board | null>();

export interface FeatureOptions {
  /** in playouts, play a move that wins at once when one of the few far-row candidates does (default true) */
  decisive?: boolean;
  /** most candidates checked per playout ply (each costs a state transition) */
  decisiveMax?: number;
  /**
   * tree priors look at moves' successors: the win feature, and the landing cell of drop-style moves — for the
   * moves the decisive check would try (drop-style moves, moves landing on a far row, moves naming no cell), or
   * every move with `effectsAll`
   */
  effects?: boolean;
  /** the win feature from every move's successor, not only the candidates' (default false: a successor state
   * per move costs breakthrough-like games a transition for each of their ~25 moves at every new node) */
  effectsAll?: boolean;
  /**
   * in playouts of turn-taking games, after the move is drawn: if the opponent then has a move among its few
   * far-row (drop-style: all) candidates that wins at once, play instead one of our candidates after which that
   * move no longer wins, when there is one (default false; at most 1 + 2·`decisiveMax` extra transitions a ply)
   */
  antiDecisive?: boolean;
  /**
   * biased plies per playout (default: all): past them the playout finishes with the reasoner's plain `playout()`
   * (the grounded net's allocation-free one) — the features where the playout is still near the tree, plain
   * speed after
   */
  biasPlies?: number;
}

/** What a fluent says about the board: the cell's index in the grid, its content code and owner (-1: none). */
interface CellNote {
  i: number;
  code: number;
  owner: number;
}

/** The occupied cells of one state on a dense array over the board's box (reused between states). */
export class Grid {
  readonly w: number;
  readonly h: number;
  /** content code + 1 per cell; 0 = empty (or the blank mark) */
  readonly content: Int32Array;
  readonly owner: Int8Array;
  readonly used: number[] = [];
  constructor(readonly b: Board) {
    this.w = b.maxX - b.minX + 1;
    this.h = b.maxY - b.minY + 1;
    this.content = new Int32Array(this.w * this.h);
    this.owner = new Int8Array(this.w * this.h);
  }
  /** cell index of (x, y), or -1 off the board */
  at(x: number, y: number): number {
    const i = x - this.b.minX;
    const j = y - this.b.minY;
    return i >= 0 && j >= 0 && i < this.w && j < this.h ? i * this.h + j : -1;
  }
  clear(): void {
    for (const i of this.used) this.content[i] = 0;
    this.used.length = 0;
  }
  set(n: CellNote): void {
    this.setCell(n.i, n.code, n.owner);
  }
  setCell(i: number, code: number, owner: number): void {
    if (!this.content[i]) this.used.push(i);
    this.content[i] = code + 1;
    this.owner[i] = owner;
  }
  /** empties cell i if it still holds `code` (a fluent leaving a cell may be processed after the one arriving) */
  unsetCell(i: number, code: number): void {
    if (this.content[i] === code + 1) this.content[i] = 0;
  }
}

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
  /** per fluent (id on the compiled reasoner, else text): its cell, or null for other fluents */
  private readonly notes = new Map<number | string, CellNote | null>();
  private readonly codes = new Map<string, number>();
  private grids: Grid[] = [];
  private roleNames: string[] = [];
  /** set by `playoutWeights` when it returned a decisive move */
  private decided = false;
  /** after an anti-decisive check found no win for `role` once `joint` is played: the next ply need not look */
  private noWin: { role: number; joint: M[] } | null = null;
  private skipDecisive = false;
  /** whether the last `winning` call tried its candidates (else it knows nothing) */
  private winningChecked = false;
  // The fast path's tables (see `playout`): what a move's text says, once per move handle — slot numbers by handle
  // (numeric handles index an array: 2 + slot, 1 = no cells, 0 = not seen yet), then per slot its target
  // coordinates, target cell, on-board neighbour cells other than its source, edge term and whether it is a
  // decisive-check candidate.
  private slotById = new Int32Array(0);
  private readonly slotByKey = new Map<unknown, number>();
  private nSlots = 0;
  private sTx = new Float64Array(64);
  private sTy = new Float64Array(64);
  private sCell = new Int32Array(64);
  private sNbr = new Int32Array(64 * 8);
  private sNbrN = new Uint8Array(64);
  private sEdge = new Float64Array(64);
  private sEdgeF = new Float64Array(64);
  private sCand = new Uint8Array(64);
  /** per grounded fluent (bit index): its cell, or -1 (not a board cell), -2 (not looked at yet); code and owner */
  private fCell = new Int32Array(0);
  private fCode = new Int32Array(0);
  private fOwner = new Int8Array(0);
  private wbuf = new Float64Array(64);
  private slotBuf = new Int32Array(64);
  private readonly othersBuf: M[] = [];
  /** `weights` through `priorWeights` where it applies (off: always through `features`, the reference) */
  fastPrior = true;

  constructor(
    weights: number[] = DEFAULT_WEIGHTS,
    private readonly declared?: Partial<Board>,
    opts: FeatureOptions = {},
  ) {
    this.weights_ = FEATURES.map((_, i) => weights[i] ?? 0);
    this.opts = {
      decisive: opts.decisive ?? true,
      decisiveMax: opts.decisiveMax ?? 8,
      effects: opts.effects ?? true,
      effectsAll: opts.effectsAll ?? false,
      antiDecisive: opts.antiDecisive ?? false,
      biasPlies: opts.biasPlies ?? Number.POSITIVE_INFINITY,
    };
  }

  boardOf(m: GameMachine<S, M>): Board | null {
    if (this.board === undefined) {
      // detection samples random playouts: once per reasoner when the sheet declares nothing
      const key = m as unknown as object;
      if (this.declared) this.board = detectBoard(m as GameMachine, this.declared) ?? null;
      else {
        if (!detected.has(key)) detected.set(key, detectBoard(m as GameMachine) ?? null);
        this.board = detected.get(key)!;
      }
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

  private note(m: GameMachine<S, M>, key: number | string): CellNote | null {
    let e = this.notes.get(key);
    if (e !== undefined) return e;
    const b = this.board!;
    const table = b.coord.size ? b.coord : undefined;
    // keys: a compiled fluent id (≥ 0), -1 - a grounded fluent index, or the fluent's text
    let text: string;
    if (typeof key === 'string') text = key;
    else if (key >= 0) text = (m as unknown as { termText(id: number): string }).termText(key);
    else {
      const net = (m as unknown as { net: { fluents: Int32Array; terms: { text(id: number): string } } }).net;
      text = net.terms.text(net.fluents[-1 - key]!);
    }
    const p = parseFluent(text);
    e = null;
    if (p.f === b.functor && p.args.length > Math.max(b.xArg, b.yArg)) {
      const c = p.args.filter((_, i) => i !== b.xArg && i !== b.yArg).join(' ');
      const i = (this.grids[0] ??= new Grid(b)).at(asCoord(p.args[b.xArg]!, table), asCoord(p.args[b.yArg]!, table));
      if (i >= 0 && c !== b.blank) {
        let code = this.codes.get(c);
        if (code === undefined) this.codes.set(c, (code = this.codes.size));
        e = { i, code, owner: ownerOf(c, this.roleNames) };
      }
    }
    this.notes.set(key, e);
    return e;
  }

  /**
   * The occupied cells of a state, in reusable grid `slot`. Building fluent texts (and sorting them) at every
   * playout ply costs more than the playout itself, so the two fast reasoners are read by fluent number where
   * their public shape allows it — the compiled one's `CState.ids` with `termText`, the grounded one's bitset
   * over `net.fluents` — and any other reasoner through `fluents()`.
   */
  grid(m: GameMachine<S, M>, s: S, slot = 0): Grid {
    const g = (this.grids[slot] ??= new Grid(this.board!));
    g.clear();
    const ids = (s as { ids?: unknown }).ids;
    if (ids instanceof Int32Array && typeof (m as { termText?: unknown }).termText === 'function') {
      for (let k = 0; k < ids.length; k++) {
        const e = this.note(m, ids[k]!);
        if (e) g.set(e);
      }
    } else if (this.bitTables(m, s)) this.loadBits(m, s as Uint32Array, g);
    else
      for (const t of m.fluents(s)) {
        const e = this.note(m, t);
        if (e) g.set(e);
      }
    return g;
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
    const grid = effects || w[2] !== 0 || w[3] !== 0 || w[4] !== 0 ? this.grid(m, s, 1) : undefined;
    const others = effects ? this.othersJoint(m, s, role) : undefined;
    const lastCells = (last ?? []).map((x) => this.cells(m, x)).filter((x) => x && !Number.isNaN(x.tx));
    return moves.map((mv) => {
      const f = new Float64Array(FEATURES.length);
      let c = this.cells(m, mv);
      // (the slot first: making it may grow the tables, so `this.sCand` is read after)
      const slot = this.slotOf(m, mv);
      if (others && grid && (this.opts.effectsAll || !c || Number.isNaN(c.ty) || this.sCand[slot]!)) {
        others[role] = mv;
        const s2 = m.next(s, others);
        f[5] = this.outcome(m, s2, role);
        // drop-style moves name a column only: the landing cell is the one the move fills with the role's piece
        if (!c || Number.isNaN(c.ty)) {
          const g2 = this.grid(m, s2, 2);
          for (const k of g2.used)
            if (g2.owner[k] === role && grid.content[k] !== g2.content[k]) {
              c = { tx: b.minX + Math.floor(k / g2.h), ty: b.minY + (k % g2.h) };
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
            const k = grid.at(c.tx + dx, c.ty + dy);
            if (k < 0 || !grid.content[k]) continue;
            contact++;
            if (grid.owner[k] === role) friendly++;
          }
        f[2] = contact / 8;
        f[3] = friendly / 8;
        const k = grid.at(c.tx, c.ty);
        f[4] = k >= 0 && grid.content[k] && grid.owner[k] >= 0 && grid.owner[k] !== role ? 1 : 0;
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
    if (this.opts.decisive && !this.skipDecisive) {
      const cand = this.candidates(m, moves, b);
      if (cand.length && cand.length <= this.opts.decisiveMax) {
        const others = this.othersJoint(m, s, role);
        if (others)
          for (const i of cand) {
            others[role] = moves[i]!;
            if (this.outcome(m, m.next(s, others), role) === 1) {
              this.decided = true;
              const one = new Float64Array(moves.length);
              one[i] = 1;
              return one;
            }
          }
      }
    }
    return this.cheapWeights(m, s, role, moves, last, b);
  }

  /** Indexes of the moves that land on a far row, or every move of a drop-style game (decisive-check candidates). */
  private candidates(m: GameMachine<S, M>, moves: M[], _b: Board): number[] {
    const cand: number[] = [];
    for (let i = 0; i < moves.length; i++) {
      const k = this.slotOf(m, moves[i]!);
      if (k >= 0 && this.sCand[k]) cand.push(i);
    }
    return cand;
  }

  /** The index of a move among `moves` that wins at once for `role` in `s`, among its few candidates; else -1. */
  private winning(m: GameMachine<S, M>, s: S, role: number, moves: M[], b: Board): number {
    this.winningChecked = false;
    const cand = this.candidates(m, moves, b);
    if (!cand.length || cand.length > this.opts.decisiveMax) return -1;
    const others = this.othersJoint(m, s, role);
    if (!others) return -1;
    this.winningChecked = true;
    for (const i of cand) {
      others[role] = moves[i]!;
      if (this.outcome(m, m.next(s, others), role) === 1) return i;
    }
    return -1;
  }

  /**
   * The playout's move: drawn from `playoutWeights` (a decisive move when there is one); then, with
   * `antiDecisive`, the anti-decisive check (Teytaud & Teytaud 2010) in turn-taking games: if after the drawn move
   * the single opponent to move has a decisive move, our candidates (far-row or drop moves, at most `decisiveMax`,
   * those naming the opponent's winning move first) are tried, and one after which that move is no longer legal
   * and winning is played instead. Only the threat found is checked, so the cost stays within 1 + 2·`decisiveMax`
   * transitions a ply.
   */
  playoutMove(m: GameMachine<S, M>, s: S, role: number, moves: M[], last: M[] | null, rand: () => number): number {
    this.decided = false;
    // the ply after an anti-decisive check that found the mover no winning move (the same playout: `last` is the
    // joint move it checked) skips the decisive check, which would repeat those transitions
    const nw = this.noWin;
    this.noWin = null;
    this.skipDecisive = nw !== null && last !== null && nw.role === role && nw.joint.every((x, r) => last[r] === x);
    const w = this.playoutWeights(m, s, role, moves, last);
    this.skipDecisive = false;
    const i = w ? sampleIndex(w, rand) : (rand() * moves.length) | 0;
    if (!this.opts.antiDecisive || !w || this.decided) return i; // no board, or a move that wins at once
    return this.antiDecisiveMove(m, s, role, moves, i);
  }

  /** The anti-decisive check after move `i` was drawn (see `playoutMove`): `i`, or a move that blocks a threat. */
  private antiDecisiveMove(m: GameMachine<S, M>, s: S, role: number, moves: M[], i: number): number {
    const b = this.board!;
    const others = this.othersJoint(m, s, role);
    if (!others) return i;
    others[role] = moves[i]!;
    const s1 = m.next(s, others);
    if (m.isTerminal(s1)) return i;
    const opp = this.onlyMover(m, s1);
    if (opp < 0 || opp === role) return i;
    const theirs = m.legal(s1, opp);
    const k = this.winning(m, s1, opp, theirs, b);
    if (k < 0) {
      if (this.winningChecked) this.noWin = { role: opp, joint: others.slice() };
      return i;
    }
    const threat = m.moveText(theirs[k]!);
    const cand = this.candidates(m, moves, b);
    if (!cand.length || cand.length > this.opts.decisiveMax) return i;
    // moves named like the threat (drop-style: the same column) first
    cand.sort((x, y) => Number(m.moveText(moves[y]!) === threat) - Number(m.moveText(moves[x]!) === threat));
    for (const a of cand) {
      if (a === i) continue;
      others[role] = moves[a]!;
      const s2 = m.next(s, others);
      if (m.isTerminal(s2)) continue;
      const ls = m.legal(s2, opp);
      let still = false;
      for (const mv of ls)
        if (m.moveText(mv) === threat) {
          const rest = this.othersJoint(m, s2, opp);
          if (rest) {
            rest[opp] = mv;
            still = this.outcome(m, m.next(s2, rest), opp) === 1;
          }
          break;
        }
      if (!still) return a;
    }
    return i;
  }

  /** The one role with more than one legal move, -1 when none or several (not a turn-taking position). */
  private onlyMover(m: GameMachine<S, M>, s: S): number {
    let who = -1;
    for (let r = 0; r < this.roleNames.length; r++)
      if (m.legal(s, r).length > 1) {
        if (who >= 0) return -1;
        who = r;
      }
    return who;
  }

  /** exp(w·f) over the features read off the move and the board, without per-move allocations (playouts). */
  private cheapWeights(m: GameMachine<S, M>, s: S, role: number, moves: M[], last: M[] | null, b: Board): Float64Array {
    const w = this.weights_;
    const grid = w[2] !== 0 || w[3] !== 0 || w[4] !== 0 ? this.grid(m, s, 0) : undefined;
    let lx0 = Number.NaN;
    let ly0 = Number.NaN;
    let lx1 = Number.NaN;
    let ly1 = Number.NaN;
    if (last)
      for (const x of last) {
        const l = this.cells(m, x);
        if (!l || Number.isNaN(l.tx)) continue;
        if (Number.isNaN(lx0)) [lx0, ly0] = [l.tx, l.ty];
        else [lx1, ly1] = [l.tx, l.ty];
      }
    const out = new Float64Array(moves.length);
    for (let i = 0; i < moves.length; i++) {
      const c = this.cells(m, moves[i]!);
      if (!c) {
        out[i] = 1;
        continue;
      }
      const oneD = Number.isNaN(c.ty);
      let z = 0;
      if (!Number.isNaN(lx0)) {
        let d = Math.max(Math.abs(lx0 - c.tx), oneD || Number.isNaN(ly0) ? 0 : Math.abs(ly0 - c.ty));
        if (!Number.isNaN(lx1))
          d = Math.min(d, Math.max(Math.abs(lx1 - c.tx), oneD || Number.isNaN(ly1) ? 0 : Math.abs(ly1 - c.ty)));
        z += w[0]! / (1 + d);
      }
      const ex = Math.min(c.tx - b.minX, b.maxX - c.tx);
      const ey = oneD ? ex : Math.min(c.ty - b.minY, b.maxY - c.ty);
      z += w[1]! / (1 + Math.max(0, Math.min(ex, ey)));
      if (grid && !oneD) {
        let contact = 0;
        let friendly = 0;
        for (let dx = -1; dx <= 1; dx++)
          for (let dy = -1; dy <= 1; dy++) {
            if ((!dx && !dy) || (c.sx === c.tx + dx && c.sy === c.ty + dy)) continue;
            const k = grid.at(c.tx + dx, c.ty + dy);
            if (k < 0 || !grid.content[k]) continue;
            contact++;
            if (grid.owner[k] === role) friendly++;
          }
        const k = grid.at(c.tx, c.ty);
        const capture = k >= 0 && grid.content[k] && grid.owner[k] >= 0 && grid.owner[k] !== role ? 1 : 0;
        z += (w[2]! * contact) / 8 + (w[3]! * friendly) / 8 + w[4]! * capture;
      }
      out[i] = Math.exp(Math.max(-20, Math.min(20, z)));
    }
    return out;
  }

  /** The table slot of a move (its facts from the move text, computed once per handle), or -1 when it names no cell. */
  private slotOf(m: GameMachine<S, M>, mv: M): number {
    const numeric = typeof mv === 'number' && mv >= 0 && mv < 1 << 24;
    if (numeric) {
      const v = this.slotById[mv as number];
      if (v) return v - 2;
    } else {
      const v = this.slotByKey.get(mv);
      if (v !== undefined) return v;
    }
    const b = this.board!;
    const c = this.cells(m, mv);
    let k = -1;
    if (c) {
      k = this.nSlots++;
      if (k >= this.sTx.length) this.growSlots();
      const oneD = Number.isNaN(c.ty);
      this.sTx[k] = c.tx;
      this.sTy[k] = c.ty;
      this.sCand[k] = oneD || c.ty === b.minY || c.ty === b.maxY ? 1 : 0;
      // the same expression as cheapWeights' edge term, so the fast path's weights are bit-identical
      const ex = Math.min(c.tx - b.minX, b.maxX - c.tx);
      const ey = oneD ? ex : Math.min(c.ty - b.minY, b.maxY - c.ty);
      this.sEdge[k] = this.weights_[1]! / (1 + Math.max(0, Math.min(ex, ey)));
      this.sEdgeF[k] = 1 / (1 + Math.max(0, Math.min(ex, ey)));
      const g = (this.grids[0] ??= new Grid(b));
      this.sCell[k] = oneD ? -1 : g.at(c.tx, c.ty);
      let nn = 0;
      if (!oneD)
        for (let dx = -1; dx <= 1; dx++)
          for (let dy = -1; dy <= 1; dy++) {
            if ((!dx && !dy) || (c.sx === c.tx + dx && c.sy === c.ty + dy)) continue;
            const at = g.at(c.tx + dx, c.ty + dy);
            if (at >= 0) this.sNbr[k * 8 + nn++] = at;
          }
      this.sNbrN[k] = nn;
    }
    if (numeric) {
      const id = mv as number;
      if (id >= this.slotById.length) {
        const t = new Int32Array(Math.max(id + 1, this.slotById.length * 2, 256));
        t.set(this.slotById);
        this.slotById = t;
      }
      this.slotById[id] = k + 2;
    } else this.slotByKey.set(mv, k);
    return k;
  }

  private growSlots(): void {
    const n = this.sTx.length * 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(a: T, make: (n: number) => T, per = 1): T => {
      const t = make(n * per);
      t.set(a as never);
      return t;
    };
    this.sTx = grow(this.sTx, (k) => new Float64Array(k));
    this.sTy = grow(this.sTy, (k) => new Float64Array(k));
    this.sCell = grow(this.sCell, (k) => new Int32Array(k));
    this.sNbr = grow(this.sNbr, (k) => new Int32Array(k), 8);
    this.sNbrN = grow(this.sNbrN, (k) => new Uint8Array(k));
    this.sEdge = grow(this.sEdge, (k) => new Float64Array(k));
    this.sEdgeF = grow(this.sEdgeF, (k) => new Float64Array(k));
    this.sCand = grow(this.sCand, (k) => new Uint8Array(k));
  }

  /** Grounded fluent `i`'s cell (-1: none), filling its code and owner tables on first sight. */
  private fluentCell(m: GameMachine<S, M>, i: number): number {
    let c = this.fCell[i]!;
    if (c === -2) {
      const e = this.note(m, -1 - i);
      c = e ? e.i : -1;
      this.fCell[i] = c;
      if (e) {
        this.fCode[i] = e.code;
        this.fOwner[i] = e.owner;
      }
    }
    return c;
  }

  /** Whether `s` is a grounded bitset state (then the per-fluent tables are sized for its net). */
  private bitTables(m: GameMachine<S, M>, s: S): boolean {
    const net = (m as { net?: { fluents?: unknown; terms?: { text?: unknown } } }).net;
    if (!(s instanceof Uint32Array && net?.fluents instanceof Int32Array && typeof net.terms?.text === 'function'))
      return false;
    const nf = net.fluents.length;
    if (this.fCell.length !== nf) {
      this.fCell = new Int32Array(nf).fill(-2);
      this.fCode = new Int32Array(nf);
      this.fOwner = new Int8Array(nf);
    }
    return true;
  }

  /** Fills grid `g` from a grounded bitset state (every set bit). */
  private loadBits(m: GameMachine<S, M>, s: Uint32Array, g: Grid): void {
    g.clear();
    for (let wd = 0; wd < s.length; wd++) {
      let bits = s[wd]!;
      while (bits) {
        const low = bits & -bits;
        const i = wd * 32 + 31 - Math.clz32(low);
        const c = this.fluentCell(m, i);
        if (c >= 0) g.setCell(c, this.fCode[i]!, this.fOwner[i]!);
        bits ^= low;
      }
    }
  }

  /** Moves grid `g` from bitset state `a` to `b`: only the fluents that differ are looked at. */
  private updateBits(m: GameMachine<S, M>, a: Uint32Array, b: Uint32Array, g: Grid): void {
    for (let wd = 0; wd < a.length; wd++) {
      let x = (a[wd]! ^ b[wd]!) >>> 0;
      while (x) {
        const low = x & -x;
        const bit = 31 - Math.clz32(low);
        const i = wd * 32 + bit;
        const c = this.fluentCell(m, i);
        if (c >= 0) {
          if ((b[wd]! >>> bit) & 1) g.setCell(c, this.fCode[i]!, this.fOwner[i]!);
          else g.unsetCell(c, this.fCode[i]!);
        }
        x ^= low;
      }
    }
  }

  /**
   * A whole biased playout from `s`: the moves that `playout(m, s, rand, this)` (players.ts, the legal/next loop
   * calling `playoutMove`) makes for the same `rand` sequence (tested), for less. What a move's text says comes
   * from tables filled once per move handle; on the grounded net the board grid follows the state through the
   * few fluents each transition changes instead of being rebuilt from every fluent at each ply; weights go into
   * a reused buffer; the decisive check reads the other roles' single moves from the legal lists already built.
   */
  playout(m: GameMachine<S, M>, s: S, rand: () => number, maxPlies = 2000): { values: number[]; plies: number } {
    const b = this.boardOf(m);
    if (!b) return genericPlayout(m, s, rand, this as MoveBias<S, M>, maxPlies);
    const n = this.roleNames.length;
    const w = this.weights_;
    const needGrid = w[2] !== 0 || w[3] !== 0 || w[4] !== 0;
    const bitset = this.bitTables(m, s);
    const grid = needGrid ? (this.grids[0] ??= new Grid(b)) : undefined;
    if (grid && bitset) this.loadBits(m, s as Uint32Array, grid);
    const legal: M[][] = new Array(n);
    let joint: M[] = new Array(n);
    let last: M[] | null = null;
    let spare: M[] = new Array(n);
    let plies = 0;
    const biasPlies = this.opts.biasPlies;
    while (plies < maxPlies && !m.isTerminal(s)) {
      if (plies >= biasPlies && m.playout) {
        const rest = m.playout(s, rand, maxPlies - plies);
        return { values: rest.goals.map((g) => (g ?? 0) / 100), plies: plies + rest.plies };
      }
      for (let r = 0; r < n; r++) {
        const ls = m.legal(s, r);
        if (!ls.length) return { values: this.values(m, s), plies };
        legal[r] = ls;
      }
      for (let r = 0; r < n; r++) {
        const ls = legal[r]!;
        // a single move still draws a number, as the legal/next loop does
        joint[r] =
          ls.length > 1 ? ls[this.fastMove(m, s, r, legal, last, rand, grid, bitset)]! : ls[(rand() * ls.length) | 0]!;
      }
      const s2 = m.next(s, joint);
      if (grid && bitset) this.updateBits(m, s as Uint32Array, s2 as Uint32Array, grid);
      s = s2;
      // the joint move becomes `last`; the array `last` held is reused for the next ply's joint move
      const t = last ?? spare;
      last = joint;
      joint = t;
      spare = t;
      plies++;
    }
    return { values: this.values(m, s), plies };
  }

  private values(m: GameMachine<S, M>, s: S): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.roleNames.length; r++) {
      const g = m.goalValues(s, r);
      out.push((g.length ? g[g.length - 1]! : 0) / 100);
    }
    return out;
  }

  /** `playoutMove` for the fast playout: the same checks and draws, over the slot tables and a current grid. */
  private fastMove(
    m: GameMachine<S, M>,
    s: S,
    role: number,
    legal: M[][],
    last: M[] | null,
    rand: () => number,
    grid: Grid | undefined,
    gridCurrent: boolean,
  ): number {
    const moves = legal[role]!;
    const k = moves.length;
    this.decided = false;
    const nw = this.noWin;
    this.noWin = null;
    const skip = nw !== null && last !== null && nw.role === role && nw.joint.every((x, r) => last[r] === x);
    if (k > this.slotBuf.length) {
      this.slotBuf = new Int32Array(k * 2);
      this.wbuf = new Float64Array(k * 2);
    }
    const slots = this.slotBuf;
    let nCand = 0;
    for (let i = 0; i < k; i++) {
      const sl = this.slotOf(m, moves[i]!);
      slots[i] = sl;
      if (sl >= 0 && this.sCand[sl]) nCand++;
    }
    // the other roles' single moves (turn-taking), as othersJoint would find them
    let turn = true;
    for (let r = 0; r < legal.length; r++) if (r !== role && legal[r]!.length !== 1) turn = false;
    if (this.opts.decisive && !skip && nCand && nCand <= this.opts.decisiveMax && turn) {
      const others = this.othersBuf;
      others.length = legal.length;
      for (let r = 0; r < legal.length; r++) others[r] = legal[r]![0]!;
      for (let i = 0; i < k; i++) {
        const sl = slots[i]!;
        if (sl < 0 || !this.sCand[sl]) continue;
        others[role] = moves[i]!;
        if (this.outcome(m, m.next(s, others), role) === 1) {
          this.decided = true;
          rand(); // sampleIndex over a one-hot vector draws once
          return i;
        }
      }
    }
    if (grid && !gridCurrent) this.grid(m, s, 0);
    const out = this.wbuf;
    const w = this.weights_;
    let lx0 = Number.NaN;
    let ly0 = Number.NaN;
    let lx1 = Number.NaN;
    let ly1 = Number.NaN;
    if (last)
      for (const x of last) {
        const l = this.slotOf(m, x);
        if (l < 0 || Number.isNaN(this.sTx[l]!)) continue;
        if (Number.isNaN(lx0)) [lx0, ly0] = [this.sTx[l]!, this.sTy[l]!];
        else [lx1, ly1] = [this.sTx[l]!, this.sTy[l]!];
      }
    const content = grid?.content;
    const owner = grid?.owner;
    const w0 = w[0]!;
    const w2 = w[2]!;
    const w3 = w[3]!;
    const w4 = w[4]!;
    for (let i = 0; i < k; i++) {
      const sl = slots[i]!;
      if (sl < 0) {
        out[i] = 1;
        continue;
      }
      const tx = this.sTx[sl]!;
      const ty = this.sTy[sl]!;
      const oneD = Number.isNaN(ty);
      // the same terms in the same order as cheapWeights (bit-identical weights, hence identical draws)
      let z = 0;
      if (!Number.isNaN(lx0)) {
        let d = Math.max(Math.abs(lx0 - tx), oneD || Number.isNaN(ly0) ? 0 : Math.abs(ly0 - ty));
        if (!Number.isNaN(lx1))
          d = Math.min(d, Math.max(Math.abs(lx1 - tx), oneD || Number.isNaN(ly1) ? 0 : Math.abs(ly1 - ty)));
        z += w0 / (1 + d);
      }
      z += this.sEdge[sl]!;
      if (content && owner && !oneD) {
        let contact = 0;
        let friendly = 0;
        for (let j = sl * 8, end = j + this.sNbrN[sl]!; j < end; j++) {
          const c = this.sNbr[j]!;
          if (!content[c]) continue;
          contact++;
          if (owner[c] === role) friendly++;
        }
        const c = this.sCell[sl]!;
        const capture = c >= 0 && content[c] && owner[c]! >= 0 && owner[c] !== role ? 1 : 0;
        z += (w2 * contact) / 8 + (w3 * friendly) / 8 + w4 * capture;
      }
      out[i] = Math.exp(Math.max(-20, Math.min(20, z)));
    }
    // sampleIndex over the first k weights
    let sum = 0;
    for (let i = 0; i < k; i++) sum += out[i]!;
    let x = rand() * sum;
    let pick = k - 1;
    for (let i = 0; i < k; i++) {
      x -= out[i]!;
      if (x <= 0 && out[i]! > 0) {
        pick = i;
        break;
      }
    }
    if (!this.opts.antiDecisive) return pick;
    return this.antiDecisiveMove(m, s, role, moves, pick);
  }

  /**
   * The tree's prior weights exp(w·f): `weights` without a feature vector per move — the slot tables give each
   * move's cells, the grid comes from the state's bits — for bitset states whose moves all name a target cell
   * (no drop-style move needs its successor's landing cell). Undefined where that does not hold: the caller
   * takes `features`. Bit-identical to `weights` (the same products summed in the same order; tested).
   */
  private priorWeights(
    m: GameMachine<S, M>,
    s: S,
    role: number,
    moves: M[],
    last: M[] | null,
  ): Float64Array | undefined {
    const k = moves.length;
    if (k > this.slotBuf.length) {
      this.slotBuf = new Int32Array(k * 2);
      this.wbuf = new Float64Array(k * 2);
    }
    const slots = this.slotBuf;
    for (let i = 0; i < k; i++) {
      const sl = this.slotOf(m, moves[i]!);
      if (sl < 0 || Number.isNaN(this.sTy[sl]!)) return undefined;
      slots[i] = sl;
    }
    if (!this.bitTables(m, s)) return undefined;
    const b = this.board!;
    const w = this.weights_;
    const effects = this.opts.effects;
    const grid = effects || w[2] !== 0 || w[3] !== 0 || w[4] !== 0 ? (this.grids[1] ??= new Grid(b)) : undefined;
    if (grid) this.loadBits(m, s as Uint32Array, grid);
    const others = effects ? this.othersJoint(m, s, role) : undefined;
    // the last moves' target cells, as `features` lists them
    const lx: number[] = [];
    const ly: number[] = [];
    for (const x of last ?? []) {
      const l = this.slotOf(m, x);
      if (l >= 0 && !Number.isNaN(this.sTx[l]!)) {
        lx.push(this.sTx[l]!);
        ly.push(this.sTy[l]!);
      }
    }
    const out = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      const sl = slots[i]!;
      const tx = this.sTx[sl]!;
      const ty = this.sTy[sl]!;
      let win = 0;
      if (others && grid && (this.opts.effectsAll || this.sCand[sl])) {
        others[role] = moves[i]!;
        win = this.outcome(m, m.next(s, others), role);
      }
      let d = Number.POSITIVE_INFINITY;
      for (let j = 0; j < lx.length; j++)
        d = Math.min(d, Math.max(Math.abs(lx[j]! - tx), Number.isNaN(ly[j]!) ? 0 : Math.abs(ly[j]! - ty)));
      let contact = 0;
      let friendly = 0;
      let capture = 0;
      if (grid) {
        for (let j = sl * 8, end = j + this.sNbrN[sl]!; j < end; j++) {
          const c = this.sNbr[j]!;
          if (!grid.content[c]) continue;
          contact++;
          if (grid.owner[c] === role) friendly++;
        }
        const c = this.sCell[sl]!;
        capture = c >= 0 && grid.content[c] && grid.owner[c]! >= 0 && grid.owner[c] !== role ? 1 : 0;
      }
      let z = 0;
      z += w[0]! * (Number.isFinite(d) ? 1 / (1 + d) : 0);
      z += w[1]! * this.sEdgeF[sl]!;
      z += w[2]! * (contact / 8);
      z += w[3]! * (friendly / 8);
      z += w[4]! * capture;
      z += w[5]! * win;
      out[i] = Math.exp(Math.max(-20, Math.min(20, z)));
    }
    return out;
  }

  weights(
    m: GameMachine<S, M>,
    s: S,
    role: number,
    moves: M[],
    last: M[] | null,
    cheap = false,
  ): Float64Array | undefined {
    if (!cheap && this.fastPrior && this.boardOf(m)) {
      const fw = this.priorWeights(m, s, role, moves, last);
      if (fw) return fw;
    }
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
