// Duels between two players on a sheet, colours alternated, with 95% Wilson intervals: the experiment behind
// the claim that spatial features with tuned weights beat plain UCT. A game scores 1 for a win, ½ for a
// draw (equal goals), 0 for a loss, for the first player. Per-move search effort is recorded for both sides so
// equal-time and equal-iteration runs can be told apart.
import { loadGame } from './game.js';
import { LocalAgent, playMatch } from './match.js';
import type { Player } from './players.js';

/** Wilson score interval for `k` successes in `n` trials (k may be fractional: draws count ½). */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n <= 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const den = 1 + z2 / n;
  const mid = (p + z2 / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / den;
  return [Math.max(0, mid - half), Math.min(1, mid + half)];
}

export interface DuelOptions {
  games: number;
  /** search iterations per move (equal effort, reproducible); else `playclock` seconds per move */
  iterations?: number;
  playclock?: number;
  seed?: number;
  game?: string;
  /** false: load the rules leniently (see `MatchOptions.strict`); default true */
  strict?: boolean;
  /** called after each game with the running totals and that game's record */
  progress?: (done: number, r: DuelResult, game: DuelGame) => void;
}

/** One game of a duel: enough to recount the totals, check colour alternation and replay it from its seeds. */
export interface DuelGame {
  game: string;
  /** 0-based index of the game in this duel */
  index: number;
  /** the referee's seed (`seed·1000 + index`) and each player's search seed */
  seed: number;
  seedA: number;
  seedB: number;
  /** which player held the first role */
  first: 'a' | 'b';
  roleA: string;
  roleB: string;
  goalA: number;
  goalB: number;
  /** 1 win, ½ draw (equal goals), 0 loss; scoreA + scoreB = 1 */
  scoreA: number;
  scoreB: number;
  plies: number;
  /** decisions with a choice, and their mean iterations, wall ms and CPU ms, per side */
  movesA: number;
  movesB: number;
  itersA: number;
  itersB: number;
  msA: number;
  msB: number;
  cpuMsA: number;
  cpuMsB: number;
  /** the referee's notes: moves answered over a second past the playclock in wall time (logged, still played;
   * under load a CPU-time playclock takes longer than that), and illegal or missing moves it replaced */
  late: number;
  replaced: number;
}

export interface DuelResult {
  game: string;
  a: string;
  b: string;
  games: number;
  wins: number;
  draws: number;
  losses: number;
  /** (wins + draws/2) / games, for player a */
  score: number;
  lo: number;
  hi: number;
  /** mean search iterations and ms per decision (moves with a choice only), per side */
  itersA: number;
  itersB: number;
  msA: number;
  msB: number;
  plies: number;
}

/** Records the search statistics of each decision a player makes. */
class Meter<S, M> implements Player<S, M> {
  iters = 0;
  ms = 0;
  /** process CPU time: the duel runs both players on this thread, so the delta is this decision's */
  cpuMs = 0;
  n = 0;
  constructor(readonly inner: Player<S, M>) {}
  get name() {
    return this.inner.name;
  }
  start(...a: Parameters<Player<S, M>['start']>) {
    this.inner.start(...a);
  }
  observe(joint: M[]) {
    (this.inner as { observe?: (j: M[]) => void }).observe?.(joint);
  }
  select(state: S, opts: Parameters<Player<S, M>['select']>[1]): M {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const mv = this.inner.select(state, opts);
    const info = this.inner.lastInfo?.();
    if (info && (info.iterations ?? 0) > 0) {
      const c = process.cpuUsage(c0);
      this.iters += info.iterations;
      this.ms += performance.now() - t0;
      this.cpuMs += (c.user + c.system) / 1000;
      this.n++;
    }
    return mv;
  }
  lastInfo() {
    return this.inner.lastInfo?.() ?? {};
  }
}

/** Plays `games` games of `makeA()` against `makeB()`, a moving first in the even games. */
export async function duel(
  kif: string,
  makeA: () => Player,
  makeB: () => Player,
  opts: DuelOptions,
): Promise<DuelResult> {
  const { games, iterations, playclock = 0.2, seed = 1, game = 'game' } = opts;
  const r: DuelResult = {
    game,
    a: '',
    b: '',
    games: 0,
    wins: 0,
    draws: 0,
    losses: 0,
    score: 0,
    lo: 0,
    hi: 1,
    itersA: 0,
    itersB: 0,
    msA: 0,
    msB: 0,
    plies: 0,
  };
  const tot = { ia: 0, ib: 0, ma: 0, mb: 0, na: 0, nb: 0, plies: 0 };
  // one reasoner for both sides and every game: the same engine (loadGame may pick the grounded net or the
  // compiler depending on a time budget), and no load time inside anyone's clock
  const machine = loadGame(kif, { strict: opts.strict });
  for (let g = 0; g < games; g++) {
    const A = new Meter(makeA());
    const B = new Meter(makeB());
    r.a = A.name;
    r.b = B.name;
    const first = g % 2 === 0;
    const seedA = seed * 1000 + 2 * g;
    const seedB = seed * 1000 + 2 * g + 1;
    const agents = [
      new LocalAgent(A as Player, seedA, 0, iterations, machine),
      new LocalAgent(B as Player, seedB, 0, iterations, machine),
    ];
    const rec = await playMatch(kif, first ? agents : [agents[1]!, agents[0]!], {
      playclock,
      seed: seed * 1000 + g,
      game,
      strict: opts.strict,
    });
    const ga = rec.goals[first ? 0 : 1] ?? 0;
    const gb = rec.goals[first ? 1 : 0] ?? 0;
    if (ga > gb) r.wins++;
    else if (ga === gb) r.draws++;
    else r.losses++;
    tot.ia += A.iters;
    tot.ib += B.iters;
    tot.ma += A.ms;
    tot.mb += B.ms;
    tot.na += A.n;
    tot.nb += B.n;
    tot.plies += rec.plies;
    r.games = g + 1;
    r.score = (r.wins + r.draws / 2) / r.games;
    [r.lo, r.hi] = wilson(r.wins + r.draws / 2, r.games);
    r.itersA = tot.ia / Math.max(1, tot.na);
    r.itersB = tot.ib / Math.max(1, tot.nb);
    r.msA = tot.ma / Math.max(1, tot.na);
    r.msB = tot.mb / Math.max(1, tot.nb);
    r.plies = tot.plies / r.games;
    const scoreA = ga > gb ? 1 : ga === gb ? 0.5 : 0;
    const mean = (x: number, n: number) => x / Math.max(1, n);
    opts.progress?.(r.games, r, {
      game,
      index: g,
      seed: seed * 1000 + g,
      seedA,
      seedB,
      first: first ? 'a' : 'b',
      roleA: rec.roles[first ? 0 : 1] ?? '',
      roleB: rec.roles[first ? 1 : 0] ?? '',
      goalA: ga,
      goalB: gb,
      scoreA,
      scoreB: 1 - scoreA,
      plies: rec.plies,
      movesA: A.n,
      movesB: B.n,
      itersA: mean(A.iters, A.n),
      itersB: mean(B.iters, B.n),
      msA: mean(A.ms, A.n),
      msB: mean(B.ms, B.n),
      cpuMsA: mean(A.cpuMs, A.n),
      cpuMsB: mean(B.cpuMs, B.n),
      late: rec.errors.filter((e) => /: late \(\d+ ms\)$/.test(e)).length,
      // every replaced move leaves one 'illegal move … played …' note (a failed or missing move too)
      replaced: rec.errors.filter((e) => /: illegal move .*; played /.test(e)).length,
    });
  }
  return r;
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** A Markdown table of duel results. */
export function duelTable(rows: DuelResult[]): string {
  const head = `| game | games | W / D / L | score of ${rows[0]?.a ?? 'a'} | 95% Wilson | iterations/move (a / b) | ms/move (a / b) |`;
  const sep = '|---|---:|---|---:|---|---|---|';
  const lines = rows.map(
    (r) =>
      `| ${r.game} | ${r.games} | ${r.wins} / ${r.draws} / ${r.losses} | ${pct(r.score)} | ${pct(r.lo)} – ${pct(r.hi)} | ${r.itersA.toFixed(0)} / ${r.itersB.toFixed(0)} | ${r.msA.toFixed(0)} / ${r.msB.toFixed(0)} |`,
  );
  return [head, sep, ...lines].join('\n');
}
