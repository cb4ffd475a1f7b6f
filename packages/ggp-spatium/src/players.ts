// Players: random, flat Monte-Carlo (ggp-base's SampleMonteCarloGamer idea), and UCT/MCTS (Kocsis & Szepesvári
// 2006) with decoupled per-role selection for simultaneous moves, a transposition table keyed by state, a node
// budget, and time management within the playclock. A `MoveBias` (spatial features, features.ts) can bias
// both tree selection (as a prior) and playouts.
import { cpuNowMs, type GameMachine, goalsOf, rng } from './machine.js';

export interface SearchOptions {
  /** wall-clock budget in ms for this decision */
  timeMs: number;
  /** stop after this many iterations (for reproducible tests) */
  maxIterations?: number;
}

export interface Player<S = unknown, M = unknown> {
  readonly name: string;
  /** called once per match, before the first move */
  start(machine: GameMachine<S, M>, role: number, seed?: number): void;
  /** the move for `state` within the time budget */
  select(state: S, opts: SearchOptions): M;
  /** statistics of the last decision */
  lastInfo?(): Record<string, number>;
}

/** Scores moves of a role in a state (higher = more likely good); features.ts provides the spatial one. */
export interface MoveBias<S = unknown, M = unknown> {
  /** a cheaper variant for playouts (default: `weights`) */
  playoutWeights?(
    machine: GameMachine<S, M>,
    state: S,
    role: number,
    moves: M[],
    lastMoves: M[] | null,
  ): Float64Array | undefined;
  /**
   * the playout's choice among `moves` (an index), drawing from `rand`; where present, playouts use it instead of
   * sampling `playoutWeights` (features.ts: decisive and anti-decisive checks)
   */
  playoutMove?(
    machine: GameMachine<S, M>,
    state: S,
    role: number,
    moves: M[],
    lastMoves: M[] | null,
    rand: () => number,
  ): number;
  /**
   * a whole biased playout from `state` making the moves the legal/next loop with `playoutMove` makes for the same
   * `rand` (features.ts: table-driven, the board followed incrementally); where present, UCT's playouts use it
   */
  playout?(
    machine: GameMachine<S, M>,
    state: S,
    rand: () => number,
    maxPlies?: number,
  ): { values: number[]; plies: number };
  /** weights per legal move (same order), or undefined for no bias */
  weights(
    machine: GameMachine<S, M>,
    state: S,
    role: number,
    moves: M[],
    lastMoves: M[] | null,
  ): Float64Array | undefined;
}

export class RandomPlayer<S, M> implements Player<S, M> {
  readonly name = 'random';
  private m!: GameMachine<S, M>;
  private role = 0;
  private rand = rng(1);
  start(machine: GameMachine<S, M>, role: number, seed = 1): void {
    this.m = machine;
    this.role = role;
    this.rand = rng(seed);
  }
  select(state: S): M {
    const ls = this.m.legal(state, this.role);
    return ls[(this.rand() * ls.length) | 0]!;
  }
}

/** Random playout from s; returns goals scaled to [0, 1] (undefined goals count as 0). */
export function playout<S, M>(
  m: GameMachine<S, M>,
  s: S,
  rand: () => number,
  bias?: MoveBias<S, M>,
  maxPlies = 2000,
): { values: number[]; plies: number } {
  const n = m.roles().length;
  const joint: M[] = new Array(n);
  let last: M[] | null = null;
  let plies = 0;
  while (plies < maxPlies && !m.isTerminal(s)) {
    for (let r = 0; r < n; r++) {
      const ls = m.legal(s, r);
      if (!ls.length) return { values: goalsOf(m, s).map((g) => (g ?? 0) / 100), plies };
      if (bias?.playoutMove && ls.length > 1) {
        joint[r] = ls[bias.playoutMove(m, s, r, ls, last, rand)]!;
        continue;
      }
      const w =
        bias && ls.length > 1
          ? bias.playoutWeights
            ? bias.playoutWeights(m, s, r, ls, last)
            : bias.weights(m, s, r, ls, last)
          : undefined;
      joint[r] = w ? ls[sampleIndex(w, rand)]! : ls[(rand() * ls.length) | 0]!;
    }
    s = m.next(s, joint);
    last = joint.slice();
    plies++;
  }
  return { values: goalsOf(m, s).map((g) => (g ?? 0) / 100), plies };
}

export function sampleIndex(w: Float64Array, rand: () => number): number {
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += w[i]!;
  let x = rand() * sum;
  for (let i = 0; i < w.length; i++) {
    x -= w[i]!;
    if (x <= 0 && w[i]! > 0) return i;
  }
  return w.length - 1;
}

/** Flat Monte-Carlo: playouts after each of the role's moves (others random); best mean wins. */
export class MonteCarloPlayer<S, M> implements Player<S, M> {
  readonly name = 'montecarlo';
  private m!: GameMachine<S, M>;
  private role = 0;
  private rand = rng(1);
  private info: Record<string, number> = {};
  start(machine: GameMachine<S, M>, role: number, seed = 1): void {
    this.m = machine;
    this.role = role;
    this.rand = rng(seed);
  }
  select(state: S, opts: SearchOptions): M {
    const m = this.m;
    const t0 = performance.now();
    const mine = m.legal(state, this.role);
    if (mine.length === 1) {
      this.info = { iterations: 0 };
      return mine[0]!;
    }
    const n = m.roles().length;
    const sum = new Float64Array(mine.length);
    const cnt = new Float64Array(mine.length);
    const joint: M[] = new Array(n);
    let it = 0;
    while (performance.now() - t0 < opts.timeMs && it < (opts.maxIterations ?? Number.POSITIVE_INFINITY)) {
      const i = it % mine.length;
      for (let r = 0; r < n; r++) {
        if (r === this.role) joint[r] = mine[i]!;
        else {
          const ls = m.legal(state, r);
          joint[r] = ls[(this.rand() * ls.length) | 0]!;
        }
      }
      const v = playout(m, m.next(state, joint), this.rand).values[this.role]!;
      sum[i]! += v;
      cnt[i]! += 1;
      it++;
    }
    let best = 0;
    for (let i = 1; i < mine.length; i++) if (sum[i]! / (cnt[i] || 1) > sum[best]! / (cnt[best] || 1)) best = i;
    this.info = { iterations: it };
    return mine[best]!;
  }
  lastInfo(): Record<string, number> {
    return this.info;
  }
}

interface Node<S, M> {
  state: S;
  terminal: boolean;
  /** goals in [0, 1] at terminal nodes */
  goals: number[] | null;
  legal: M[][];
  /** per role: visits and value sums per move, and priors */
  n: Float64Array[];
  w: Float64Array[];
  prior: Array<Float64Array | null>;
  visits: number;
  children: Map<number, Node<S, M>>;
}

/** Visit counts and value sums of one role's moves at a search root (what root-parallel search merges). */
export interface RootStats {
  /** canonical GDL text of each move */
  moves: string[];
  n: number[];
  w: number[];
  iterations: number;
}

export interface UctOptions {
  /** exploration constant C in UCB1 (values are in [0, 1]) */
  c?: number;
  /** most tree nodes kept (the transposition table is cleared past it) */
  nodeBudget?: number;
  /** weight of the feature prior in selection (progressive bias: prior·k/(n+1)) */
  priorWeight?: number;
  /** bias for tree priors and playouts */
  bias?: MoveBias;
  /** use the bias in playouts too */
  biasPlayouts?: boolean;
  /**
   * plain random playouts through the reasoner's allocation-free `playout()` where it has one (the grounded net;
   * the same moves as the legal/next loop for the same random numbers); default true. Biased playouts take the
   * bias's own `playout()` where it has one (the same moves as the generic loop with its `playoutMove`), else, or
   * with this off, the generic loop.
   */
  fastPlayouts?: boolean;
  /**
   * what `timeMs` measures: wall-clock time (default) or CPU time (`cpuNowMs`: this thread's where the runtime
   * tells it, else this process's) — on a
   * loaded machine the scheduler's share then does not decide which of two in-process players searched longer
   */
  clock?: 'wall' | 'cpu';
  name?: string;
}

/** UCT with decoupled per-role UCB1 selection, transpositions, node budget and progressive bias. */
export class UctPlayer<S, M> implements Player<S, M> {
  readonly name: string;
  private m!: GameMachine<S, M>;
  private role = 0;
  private rand = rng(1);
  private tt = new Map<string, Node<S, M>>();
  private info: Record<string, number> = {};
  readonly c: number;
  readonly nodeBudget: number;
  readonly priorWeight: number;
  private readonly bias?: MoveBias<S, M>;
  private readonly biasPlayouts: boolean;
  private readonly fastPlayouts: boolean;
  private readonly cpuClock: boolean;
  private lastJoint: M[] | null = null;
  private lastRoot: Node<S, M> | null = null;
  private lastIterations = 0;

  constructor(opts: UctOptions = {}) {
    this.c = opts.c ?? 0.7;
    this.nodeBudget = opts.nodeBudget ?? 200_000;
    this.priorWeight = opts.priorWeight ?? 1;
    this.bias = opts.bias as MoveBias<S, M> | undefined;
    this.biasPlayouts = opts.biasPlayouts ?? true;
    this.fastPlayouts = opts.fastPlayouts ?? true;
    this.cpuClock = opts.clock === 'cpu';
    this.name = opts.name ?? (opts.bias ? 'uct+features' : 'uct');
  }

  start(machine: GameMachine<S, M>, role: number, seed = 1): void {
    this.m = machine;
    this.role = role;
    this.rand = rng(seed);
    this.tt = new Map();
    this.lastJoint = null;
  }

  /** Tells the player the joint move just played (features use the last moves). */
  observe(joint: M[]): void {
    this.lastJoint = joint.slice();
  }

  /** The node of state `s`, made on first sight; `last` (the joint move that led here) feeds the prior's proximity. */
  private node(s: S, last: M[] | null): Node<S, M> {
    const key = this.m.stateKey(s);
    let nd = this.tt.get(key);
    if (nd) return nd;
    const m = this.m;
    const nr = m.roles().length;
    const terminal = m.isTerminal(s);
    const legal = terminal ? [] : m.roles().map((_, r) => m.legal(s, r));
    const dead = !terminal && legal.some((l) => !l.length);
    nd = {
      state: s,
      terminal: terminal || dead,
      goals: terminal || dead ? goalsOf(m, s).map((g) => (g ?? 0) / 100) : null,
      legal,
      n: legal.map((l) => new Float64Array(l.length)),
      w: legal.map((l) => new Float64Array(l.length)),
      prior: legal.map((l, r) => {
        if (!this.bias || l.length < 2) return null;
        const w = this.bias.weights(m, s, r, l, last);
        if (!w) return null;
        let sum = 0;
        for (const x of w) sum += x;
        return sum > 0 ? w.map((x) => x / sum) : null;
      }),
      visits: 0,
      children: new Map(),
    };
    if (nr !== legal.length && !nd.terminal) throw new Error('legal moves per role missing');
    this.tt.set(key, nd);
    return nd;
  }

  /** Goals in [0, 1] of a playout from `s`: biased through the generic loop, else the reasoner's fast path. */
  private rollout(s: S, biased: boolean): number[] {
    const m = this.m;
    const bias = biased && this.biasPlayouts ? this.bias : undefined;
    if (bias)
      return this.fastPlayouts && bias.playout
        ? bias.playout(m, s, this.rand, 2000).values
        : playout(m, s, this.rand, bias).values;
    if (this.fastPlayouts && m.playout) {
      const goals = m.playout(s, this.rand, 2000).goals;
      const out = new Array<number>(goals.length);
      for (let r = 0; r < goals.length; r++) out[r] = (goals[r] ?? 0) / 100;
      return out;
    }
    return playout(m, s, this.rand).values;
  }

  private pick(nd: Node<S, M>, r: number): number {
    const n = nd.n[r]!;
    const w = nd.w[r]!;
    const k = n.length;
    if (k === 1) return 0;
    const prior = nd.prior[r];
    const logN = Math.log(nd.visits + 1);
    let best = 0;
    let bv = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < k; i++) {
      let v: number;
      if (n[i] === 0) v = 1e6 + (prior ? prior[i]! * 1e3 : 0) + this.rand();
      else {
        v = w[i]! / n[i]! + this.c * Math.sqrt(logN / n[i]!);
        if (prior) v += (this.priorWeight * prior[i]! * k) / (n[i]! + 1);
      }
      if (v > bv) {
        bv = v;
        best = i;
      }
    }
    return best;
  }

  private iterate(root: Node<S, M>): void {
    const m = this.m;
    const path: Array<{ nd: Node<S, M>; idx: number[] }> = [];
    let nd = root;
    let values: number[] | null = null;
    for (let depth = 0; depth < 400; depth++) {
      if (nd.terminal) {
        values = nd.goals!;
        break;
      }
      const idx = nd.legal.map((_, r) => this.pick(nd, r));
      path.push({ nd, idx });
      let code = 0;
      for (let r = 0; r < idx.length; r++) code = code * nd.legal[r]!.length + idx[r]!;
      const child = nd.children.get(code);
      if (child) {
        nd = child;
        continue;
      }
      const joint = idx.map((i, r) => nd.legal[r]![i]!);
      const s2 = m.next(nd.state, joint);
      if (this.tt.size >= this.nodeBudget) {
        values = this.rollout(s2, true);
        break;
      }
      const fresh = !this.tt.has(m.stateKey(s2));
      const c = this.node(s2, joint);
      nd.children.set(code, c);
      if (fresh) {
        values = c.terminal ? c.goals! : this.rollout(s2, true);
        c.visits++;
        break;
      }
      nd = c;
    }
    if (!values) values = this.rollout(nd.state, false);
    for (const { nd: p, idx } of path) {
      p.visits++;
      idx.forEach((i, r) => {
        p.n[r]![i]! += 1;
        p.w[r]![i]! += values![r] ?? 0;
      });
    }
  }

  select(state: S, opts: SearchOptions): M {
    const t0 = performance.now();
    const now = this.cpuClock ? cpuNowMs : () => performance.now();
    const c0 = now();
    if (this.tt.size > this.nodeBudget * 0.9) this.tt = new Map();
    const root = this.node(state, this.lastJoint);
    const mine = root.terminal ? this.m.legal(state, this.role) : root.legal[this.role]!;
    if (!mine.length) throw new Error('no legal move');
    // one move: nothing to decide (no pondering either, so iteration-bounded duels cost only the mover's search)
    if (mine.length === 1) {
      this.info = { iterations: 0, nodes: this.tt.size, ms: 0, value: 0 };
      this.lastRoot = null;
      return mine[0]!;
    }
    let it = 0;
    const max = opts.maxIterations ?? Number.POSITIVE_INFINITY;
    while (it < max) {
      if ((it & 15) === 0 && now() - c0 >= opts.timeMs) break;
      this.iterate(root);
      it++;
    }
    this.lastRoot = root;
    this.lastIterations = it;
    const n = root.n[this.role]!;
    let best = 0;
    for (let i = 1; i < n.length; i++) if (n[i]! > n[best]!) best = i;
    this.info = {
      iterations: it,
      nodes: this.tt.size,
      ms: performance.now() - t0,
      value: n[best] ? root.w[this.role]![best]! / n[best]! : 0,
    };
    return mine[best]!;
  }

  lastInfo(): Record<string, number> {
    return this.info;
  }

  /** The player's own root statistics after the last `select` (empty before any search). */
  rootStats(): RootStats {
    const root = this.lastRoot;
    if (!root || root.terminal) return { moves: [], n: [], w: [], iterations: 0 };
    return {
      moves: root.legal[this.role]!.map((x) => this.m.moveText(x)),
      n: [...root.n[this.role]!],
      w: [...root.w[this.role]!],
      iterations: this.lastIterations,
    };
  }
}
