// A GDL-II player (Thielscher 2010: imperfect information through `sees`, chance through the `random` role).
// It keeps a belief state — a weighted set of states consistent with its own moves and percepts — as a particle
// filter: each update expands every particle by the other roles' joint moves (all of them when there are few,
// else a sample), keeps the successors whose percepts for us equal what we saw, and weighs them as if every
// other role, `random` included, chose uniformly; past `particles` it resamples by weight. When no particle
// survives (the sample missed the truth) it rebuilds the belief by sampling whole histories from the initial
// state, move by move, keeping only joint moves that reproduce each recorded percept. Moves come from perfect-
// information Monte Carlo: determinizations drawn from the belief are each searched by UCT and the root
// statistics summed over them (Long, Sturtevant, Buro & Furtak 2010 on why this works despite its known flaws).
// Only moves legal in every particle are played, so the move is legal whenever the belief holds the truth.
import { IllegalMoveError } from './errors.js';
import { type GameMachine, rng } from './machine.js';
import { mergeRootStats } from './parallel.js';
import { type Player, type RootStats, type SearchOptions, UctPlayer } from './players.js';

export interface BeliefOptions {
  /** most states kept (default 64) */
  particles?: number;
  /** joint moves of the other roles enumerated per particle before sampling instead (default 256) */
  enumerate?: number;
  /** sampled histories tried per wanted particle when rebuilding an empty belief (default 50) */
  rebuildTries?: number;
  seed?: number;
}

interface Step {
  move: string;
  percepts: string[];
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** A weighted set of states consistent with one role's moves and percepts. */
export class BeliefState<S = unknown, M = unknown> {
  particles: Array<{ s: S; w: number }>;
  /** our moves and percepts so far, in order */
  readonly history: Step[] = [];
  /** times the belief emptied and was rebuilt from the history */
  rebuilds = 0;
  /** updates nothing could explain, even after a rebuild (ignored) */
  lost = 0;
  private readonly rand: () => number;
  readonly cap: number;
  private readonly enumLimit: number;
  private readonly tries: number;

  constructor(
    readonly m: GameMachine<S, M>,
    readonly role: number,
    opts: BeliefOptions = {},
  ) {
    this.cap = Math.max(1, opts.particles ?? 64);
    this.enumLimit = opts.enumerate ?? 256;
    this.tries = opts.rebuildTries ?? 50;
    this.rand = rng(opts.seed ?? 1);
    this.particles = [{ s: m.initialState(), w: 1 }];
  }

  /** Probabilities normalised to 1. */
  normalised(): Array<{ s: S; p: number }> {
    const tot = this.particles.reduce((a, x) => a + x.w, 0) || 1;
    return this.particles.map((x) => ({ s: x.s, p: x.w / tot }));
  }

  /** The other roles' joint moves from `s` with our move fixed: all, or a sample; each with its probability. */
  private joints(s: S, mine: M): Array<{ joint: M[]; p: number }> {
    const m = this.m;
    const n = m.roles().length;
    const legal: M[][] = [];
    let count = 1;
    for (let r = 0; r < n; r++) {
      if (r === this.role) {
        legal.push([mine]);
        continue;
      }
      const l = m.isTerminal(s) ? [] : m.legal(s, r);
      if (!l.length) return [];
      legal.push(l);
      count *= l.length;
    }
    const out: Array<{ joint: M[]; p: number }> = [];
    if (count <= this.enumLimit) {
      const idx = new Array(n).fill(0);
      for (let k = 0; k < count; k++) {
        out.push({ joint: legal.map((l, r) => l[idx[r]]!), p: 1 / count });
        for (let r = n - 1; r >= 0; r--) {
          if (++idx[r] < legal[r]!.length) break;
          idx[r] = 0;
        }
      }
    } else
      for (let k = 0; k < this.enumLimit; k++)
        out.push({ joint: legal.map((l) => l[(this.rand() * l.length) | 0]!), p: 1 / this.enumLimit });
    return out;
  }

  /** Our move `mine` was played and we perceived `percepts` (GDL text). */
  update(mine: M | string, percepts: readonly string[]): void {
    const m = this.m;
    const mv = typeof mine === 'string' ? m.parseMove(mine) : mine;
    if (mv === undefined) throw new IllegalMoveError(`'${String(mine)}' is not a move`);
    const text = m.moveText(mv);
    if (!this.particles.some(({ s }) => !m.isTerminal(s) && m.legal(s, this.role).some((x) => m.moveText(x) === text)))
      throw new IllegalMoveError(`'${text}' is legal for us in no state we consider possible; belief kept`);
    const seen = [...percepts].sort();
    const before = this.particles;
    this.history.push({ move: text, percepts: seen });
    const role = m.roles()[this.role]!;
    const next = new Map<string, { s: S; w: number }>();
    for (const { s, w } of this.particles)
      for (const { joint, p } of this.joints(s, mv)) {
        if (!sameList(m.percepts(s, joint, role), seen)) continue;
        const s2 = m.next(s, joint);
        const k = m.stateKey(s2);
        const e = next.get(k);
        if (e) e.w += w * p;
        else next.set(k, { s: s2, w: w * p });
      }
    this.particles = [...next.values()];
    if (!this.particles.length) this.rebuild();
    else if (this.particles.length > this.cap) this.resample();
    if (!this.particles.length) {
      // nothing explains what we saw (a garbled message, or a sheet we misread): keep acting on what we had
      this.history.pop();
      this.particles = before;
      this.lost++;
    }
  }

  /** Keeps `cap` states drawn by weight (systematic resampling); duplicates merge into weights. */
  private resample(): void {
    const tot = this.particles.reduce((a, x) => a + x.w, 0);
    const step = tot / this.cap;
    let u = this.rand() * step;
    let acc = 0;
    const kept = new Map<S, { s: S; w: number }>();
    for (const x of this.particles) {
      acc += x.w;
      while (u < acc) {
        const e = kept.get(x.s);
        if (e) e.w += step;
        else kept.set(x.s, { s: x.s, w: step });
        u += step;
      }
    }
    this.particles = [...kept.values()];
  }

  /** Samples whole histories consistent with every recorded move and percept (sequential rejection). */
  private rebuild(): void {
    this.rebuilds++;
    const m = this.m;
    const role = m.roles()[this.role]!;
    const found = new Map<string, { s: S; w: number }>();
    for (let t = 0; t < this.cap * this.tries && found.size < this.cap; t++) {
      let s = m.initialState();
      let ok = true;
      for (const step of this.history) {
        const mv = m.parseMove(step.move);
        if (mv === undefined) {
          ok = false;
          break;
        }
        const options = this.joints(s, mv).filter(({ joint }) => sameList(m.percepts(s, joint, role), step.percepts));
        if (!options.length) {
          ok = false;
          break;
        }
        s = m.next(s, options[(this.rand() * options.length) | 0]!.joint);
      }
      if (!ok) continue;
      const k = m.stateKey(s);
      const e = found.get(k);
      if (e) e.w += 1;
      else found.set(k, { s, w: 1 });
    }
    this.particles = [...found.values()];
  }

  /** Our moves legal in every particle (in a well-formed game: in every state we cannot tell apart). */
  legalMoves(): M[] {
    const m = this.m;
    let common: Map<string, M> | undefined;
    for (const { s } of this.particles) {
      if (m.isTerminal(s)) continue;
      const here = new Map(m.legal(s, this.role).map((x) => [m.moveText(x), x] as const));
      common = common ? new Map([...common].filter(([k]) => here.has(k))) : here;
    }
    return common ? [...common.values()] : [];
  }

  /** A state drawn by weight. */
  sample(): S {
    const tot = this.particles.reduce((a, x) => a + x.w, 0);
    let u = this.rand() * tot;
    for (const x of this.particles) {
      u -= x.w;
      if (u <= 0) return x.s;
    }
    return this.particles[this.particles.length - 1]!.s;
  }
}

export interface GdlIIOptions extends BeliefOptions {
  /** determinizations searched per decision (default 8) */
  determinizations?: number;
  c?: number;
  name?: string;
}

/**
 * The GDL-II player. Tell it what happened with `perceive(ourMove, percepts)` after every step; `select`
 * ignores its state argument (the player cannot know the state) and decides from the belief.
 */
export class GdlIIPlayer<S = unknown, M = unknown> implements Player<S, M> {
  readonly name: string;
  private m!: GameMachine<S, M>;
  private role = 0;
  private seed = 1;
  belief!: BeliefState<S, M>;
  private info: Record<string, number> = {};
  /** statistics gathered so far for the current step (select may be called in slices) */
  private acc: RootStats = { moves: [], n: [], w: [], iterations: 0 };
  private accStep = -1;
  private calls = 0;

  constructor(private readonly opts: GdlIIOptions = {}) {
    this.name = opts.name ?? 'gdl2-pimc';
  }

  start(machine: GameMachine<S, M>, role: number, seed = 1): void {
    this.m = machine;
    this.role = role;
    this.seed = seed;
    this.belief = new BeliefState(machine, role, { ...this.opts, seed });
    this.accStep = -1;
  }

  /** Our last move (what the game master says was played for us) and the percepts that came with it. */
  perceive(move: M | string, percepts: readonly string[]): void {
    this.belief.update(move, percepts);
  }

  /** Moves we may play now: legal in every particle; if the particles disagree, those of the likeliest one. */
  candidates(): M[] {
    const common = this.belief.legalMoves();
    if (common.length) return common;
    const best = [...this.belief.particles].sort((a, b) => b.w - a.w)[0];
    return best && !this.m.isTerminal(best.s) ? this.m.legal(best.s, this.role) : [];
  }

  select(_state: S | undefined, opts: SearchOptions): M {
    const m = this.m;
    const t0 = performance.now();
    const mine = this.candidates();
    if (!mine.length) throw new Error('no legal move in any state of the belief');
    if (mine.length === 1) {
      this.info = { iterations: 0, particles: this.belief.particles.length };
      return mine[0]!;
    }
    const step = this.belief.history.length;
    if (step !== this.accStep) {
      this.acc = { moves: [], n: [], w: [], iterations: 0 };
      this.accStep = step;
    }
    const k = Math.max(1, this.opts.determinizations ?? 8);
    const budget = opts.maxIterations === undefined ? undefined : Math.max(1, Math.ceil(opts.maxIterations / k));
    const uct = new UctPlayer<S, M>({ c: this.opts.c });
    const parts: RootStats[] = [this.acc];
    // few states: search each, its statistics weighted by its probability (no sampling noise); many: sample
    const all = this.belief.particles.length <= k ? this.belief.normalised() : null;
    const rounds = all ? all.length : k;
    for (let d = 0; d < rounds; d++) {
      const left = opts.timeMs - (performance.now() - t0);
      if (d > 0 && left <= 0) break;
      const s = all ? all[d]!.s : this.belief.sample();
      if (m.isTerminal(s)) continue;
      uct.start(m, this.role, this.seed * 7919 + ++this.calls);
      uct.select(s, { timeMs: Math.max(1, left / (rounds - d)), maxIterations: budget });
      const st = uct.rootStats();
      if (all) {
        const p = all[d]!.p * all.length;
        st.n = st.n.map((x) => x * p);
        st.w = st.w.map((x) => x * p);
      }
      parts.push(st);
    }
    this.acc = mergeRootStats(parts);
    // the best mean value among the moves we can play, ties to more visits
    let best: M = mine[0]!;
    let bv = Number.NEGATIVE_INFINITY;
    for (const mv of mine) {
      const i = this.acc.moves.indexOf(m.moveText(mv));
      if (i < 0 || !this.acc.n[i]) continue;
      const v = this.acc.w[i]! / this.acc.n[i]! + 1e-9 * this.acc.n[i]!;
      if (v > bv) {
        bv = v;
        best = mv;
      }
    }
    this.info = {
      iterations: this.acc.iterations,
      particles: this.belief.particles.length,
      rebuilds: this.belief.rebuilds,
      ms: performance.now() - t0,
    };
    return best;
  }

  lastInfo(): Record<string, number> {
    return this.info;
  }
}
