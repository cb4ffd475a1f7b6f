// Tuning by a simple genetic algorithm (Goldberg's SGA: bit-string genomes, fitness-proportional selection,
// one-point crossover, bit-flip mutation, generational replacement; we keep an elite, which the plain SGA does
// not: the genome with the best mean score over every game it has played, so a genome lucky in one noisy
// evaluation regresses as the elite plays again, and at the end the three best replay games before one is
// returned). A genome encodes the UCT constant, the progressive-bias weight, the spatial feature weights
// and the playout form (how many plies of each playout the features bias); fitness is the mean score of
// UCT+features against plain UCT in self-play, both roles, at equal time per move (optionally CPU time) or at
// given iteration budgets. Seeded: the GA's own draws and every game's seeds come from the seed, so with
// iteration budgets the whole run is reproducible; at equal time the games also depend on the clock. A run can
// keep a checkpoint (written atomically after every genome's evaluation) and resume from it.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BoardFeatures, DEFAULT_WEIGHTS, FEATURES } from './features.js';
import { loadGame } from './game.js';
import { type GameMachine, rng } from './machine.js';
import { LocalAgent, playMatch } from './match.js';
import { UctPlayer } from './players.js';
import { type PoolGame, TunePool } from './tune-pool.js';

const BITS = 6;
/** genes: the UCT constant, the progressive-bias weight, one weight per feature, then the playout form */
const GENES = 2 + FEATURES.length + 1;
const C_RANGE = [0.1, 1.5] as const;
const PRIOR_RANGE = [0, 4] as const;
/** the win feature only makes sense with a positive weight; the others may come out either way */
const weightRange = (i: number): readonly [number, number] => (FEATURES[i] === 'win' ? [0, 6] : [-3, 3]);
const decodeGene = (bits: number[], i: number, lo: number, hi: number) => {
  let v = 0;
  for (let k = 0; k < BITS; k++) v = v * 2 + bits[i * BITS + k]!;
  return lo + ((hi - lo) * v) / (2 ** BITS - 1);
};
/**
 * The playout form gene's four values (a quarter of its range each): biased plies per playout — 0 (features in
 * the tree's prior only; plain fast playouts, ≈0.75–0.9× plain UCT's iterations), 4, 16, or all of them (biased
 * throughout, ≈0.2–0.35× on connectFour and breakthrough). Which pays at equal time is what the SGA finds out.
 */
const FORMS = [0, 4, 16, Number.POSITIVE_INFINITY] as const;

export interface Genome {
  c: number;
  /** progressive-bias weight of the feature prior in UCT selection */
  priorWeight: number;
  weights: number[];
  /** feature switches (not tuned by the SGA; default on): the playouts' decisive-move check, the tree's
   * successor-state features */
  decisive?: boolean;
  effects?: boolean;
  /** the win feature from every move's successor in the tree's prior, not only the decisive-check candidates' */
  effectsAll?: boolean;
  /** the playouts' anti-decisive check (block the opponent's immediate win; default off) */
  antiDecisive?: boolean;
  /** biased plies per playout before the plain fast `playout()` takes over (default: all; JSON null: all) */
  biasPlies?: number | null;
  /** bias the playouts too (default on); off: the features shape the tree's prior only and playouts stay plain
   * (the reasoner's allocation-free `playout()` where it has one) */
  biasPlayouts?: boolean;
}

export const GENOME_BITS = BITS * GENES;

export function decode(bits: number[]): Genome {
  let form = 0;
  for (let k = 0; k < BITS; k++) form = form * 2 + (bits[(GENES - 1) * BITS + k] ?? 0);
  const plies = FORMS[Math.min(3, form >> (BITS - 2))]!;
  return {
    c: decodeGene(bits, 0, ...C_RANGE),
    priorWeight: decodeGene(bits, 1, ...PRIOR_RANGE),
    weights: FEATURES.map((_, i) => decodeGene(bits, i + 2, ...weightRange(i))),
    // JSON has no Infinity: "all plies" is written as no limit (null)
    ...(plies === 0 ? { biasPlayouts: false } : { biasPlies: Number.isFinite(plies) ? plies : null }),
  };
}

export function encode(g: Genome): number[] {
  const plies = g.biasPlayouts === false ? 0 : (g.biasPlies ?? Number.POSITIVE_INFINITY);
  // the form whose value is nearest at or below the genome's plies, at the middle of its quarter
  let f = 0;
  for (let i = 0; i < FORMS.length; i++) if (plies >= FORMS[i]!) f = i;
  return [
    ...encodeValue(g.c, ...C_RANGE),
    ...encodeValue(g.priorWeight, ...PRIOR_RANGE),
    ...g.weights.flatMap((w, i) => encodeValue(w, ...weightRange(i))),
    ...Array.from({ length: BITS }, (_, k) => (((f << (BITS - 2)) | (1 << (BITS - 3))) >> (BITS - 1 - k)) & 1),
  ];
}

/** The player a genome describes (`clock: 'cpu'` measures its time per move as CPU time). */
export function genomePlayer(g: Genome, name = 'uct+features', clock?: 'wall' | 'cpu'): UctPlayer<unknown, unknown> {
  const bias = new BoardFeatures(g.weights, undefined, {
    decisive: g.decisive,
    effects: g.effects,
    effectsAll: g.effectsAll,
    antiDecisive: g.antiDecisive,
    biasPlies: g.biasPlies ?? undefined,
  });
  return new UctPlayer({ c: g.c, priorWeight: g.priorWeight, bias, biasPlayouts: g.biasPlayouts, name, clock });
}

function encodeValue(v: number, lo: number, hi: number): number[] {
  const q = Math.max(0, Math.min(2 ** BITS - 1, Math.round(((v - lo) / (hi - lo)) * (2 ** BITS - 1))));
  return Array.from({ length: BITS }, (_, k) => (q >> (BITS - 1 - k)) & 1);
}

export interface TuneOptions {
  generations?: number;
  population?: number;
  /** games per fitness evaluation (roles alternate) */
  gamesPerEval?: number;
  /** seconds per move for both sides (equal time) when `iterations` is not given */
  playclock?: number;
  /** measure the playclock as CPU time of this process instead of wall-clock time (both sides) */
  cpuClock?: boolean;
  /** search iterations per move instead of the playclock (reproducible from the seed) */
  iterations?: number;
  /** plain UCT's iterations per move (default `iterations`): more than ours stands in for the features' cost, as
   * at equal time, and keeps the fitness from saturating when every genome beats an equal-iteration opponent */
  opponentIterations?: number;
  crossover?: number;
  mutation?: number;
  /** feature switches given to every genome of the run (and recorded in the result), e.g. `antiDecisive: true`;
   * the SGA does not tune them */
  switches?: Pick<Genome, 'decisive' | 'effects' | 'effectsAll' | 'antiDecisive' | 'biasPlayouts' | 'biasPlies'>;
  seed?: number;
  /** false: load the rules leniently (see `MatchOptions.strict`); default true */
  strict?: boolean;
  /**
   * processes that play a generation's fitness games side by side (default 1: all in this process); each loads
   * the sheet on the reasoner this process chose and plays one game at a time, so results do not depend on it —
   * with iteration budgets a run gives the same result for any `jobs` — while the wall-clock time falls with it
   */
  jobs?: number;
  /**
   * with `jobs` > 1: seconds a child process may go without finishing a ply (default 300) before it is stopped as
   * hung and the run fails with a TuneJobError (the checkpoint keeps finished evaluations); loading the sheet gets
   * at least 600
   */
  jobTimeout?: number;
  /**
   * games each of the (up to) three genomes with the best mean score plays again after the last generation before
   * one is returned (default `gamesPerEval`; 0: none). A fitness from a few games is noisy, and the highest single
   * estimate of many genomes is mostly luck: the returned genome is the best of these on all its games.
   */
  confirmGames?: number;
  /**
   * a checkpoint file: written atomically (temp file, then rename) after every genome's evaluation; a run given
   * an existing checkpoint of the same sheet and settings resumes from it (a different one is an error)
   */
  checkpoint?: string;
  log?: (line: string) => void;
}

export interface TuneResult extends Genome {
  /** the returned genome's mean score over every game it played (its evaluations, as elite too, and confirmation) */
  fitness: number;
  /** how many games `fitness` is the mean of */
  games: number;
  history: Array<{ generation: number; best: number; mean: number }>;
}

/** Every genome evaluated in a run, by its bits: the games it has played and their summed score. */
export interface Tally {
  bits: number[];
  sum: number;
  games: number;
}

/**
 * The genome with the highest mean score over all its games (the elite): ties go to more games, then to the one
 * seen first. The elite plays again every generation, so a genome that was lucky once regresses.
 */
export function bestOf(tally: readonly Tally[]): Tally | undefined {
  let best: Tally | undefined;
  for (const t of tally)
    if (
      !best ||
      t.sum / t.games > best.sum / best.games ||
      (t.sum / t.games === best.sum / best.games && t.games > best.games)
    )
      best = t;
  return best;
}

/** What a checkpoint holds: enough to continue the run exactly where it stopped. */
interface Checkpoint {
  version: 2;
  /** the sheet and the settings that decide the run: a checkpoint of another run is refused */
  key: string;
  generation: number;
  pop: number[][];
  /** fitness of the genomes of `pop` evaluated so far, in order */
  fit: number[];
  tally: Tally[];
  history: TuneResult['history'];
  /** numbers drawn from the GA's generator so far (a resumed run draws them again to reach its state) */
  draws: number;
}

export class CheckpointError extends Error {}

let loaded: { kif: string; strict?: boolean; m: GameMachine } | null = null;
/** One reasoner per sheet for a whole run: both sides of every game use the same engine (loadGame's choice
 * between the grounded net and the compiler depends on a time budget, and move order differs between them). */
function machineFor(kif: string, strict?: boolean): GameMachine {
  if (loaded?.kif !== kif || loaded.strict !== strict) loaded = { kif, strict, m: loadGame(kif, { strict }) };
  return loaded.m;
}

/** One fitness game: what it needs besides the sheet and the genome (also the tune child's task). */
export interface GameTask {
  /** the game's index within its evaluation: colours alternate with it, and it offsets the seeds */
  index: number;
  playclock: number;
  /** the evaluation's seed: the players' and the referee's seeds derive from it and `index` */
  seed: number;
  iterations?: number;
  opponentIterations?: number;
  cpuClock?: boolean;
  strict?: boolean;
}

/** Goal (0..1) of UCT with genome g in game `t.index` against plain UCT, on the given reasoner. */
export async function playFitnessGame(
  kif: string,
  g: Genome,
  t: GameTask,
  m: GameMachine,
  /** called after each ply (the tune child's sign of life to its pool) */
  onPly?: (plies: number) => void,
): Promise<number> {
  const i = t.index;
  const clock = t.cpuClock ? 'cpu' : 'wall';
  const tuned = new LocalAgent(genomePlayer(g, 'uct+features', clock), t.seed + i, 0, t.iterations, m);
  const plain = new LocalAgent(new UctPlayer({ clock }), t.seed + 1000 + i, 0, t.opponentIterations, m);
  const first = i % 2 === 0;
  const rec = await playMatch(kif, first ? [tuned, plain] : [plain, tuned], {
    playclock: t.playclock,
    seed: t.seed + i,
    strict: t.strict,
    onPly,
  });
  return (rec.goals[first ? 0 : 1] ?? 0) / 100;
}

/** Score (0..1) of UCT with genome g against plain UCT over `games` games on a two-player sheet. */
export async function evaluate(
  kif: string,
  g: Genome,
  games: number,
  playclock: number,
  seed: number,
  iterations?: number,
  opponentIterations = iterations,
  cpuClock = false,
  /** false: load the rules leniently (see `MatchOptions.strict`) */
  strict?: boolean,
): Promise<number> {
  let score = 0;
  for (let index = 0; index < games; index++)
    score += await playFitnessGame(
      kif,
      g,
      { index, playclock, seed, iterations, opponentIterations, cpuClock, strict },
      machineFor(kif, strict),
    );
  return score / games;
}

/** Writes `data` as JSON to `path` through a temp file and a rename, so a cut run never leaves half a file. */
function writeAtomic(path: string, data: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, path);
}

export async function tune(kif: string, opts: TuneOptions = {}): Promise<TuneResult> {
  const {
    generations = 6,
    population = 8,
    gamesPerEval = 4,
    playclock = 0.05,
    cpuClock = false,
    iterations,
    opponentIterations = iterations,
    crossover = 0.7,
    mutation = 1 / (BITS * GENES),
    switches = {},
    seed = 1,
    checkpoint,
    jobs = 1,
    confirmGames = gamesPerEval,
    log = () => {},
  } = opts;
  if (!Number.isInteger(confirmGames) || confirmGames < 0) throw new RangeError('confirmGames must be an integer ≥ 0');
  if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError('jobs must be an integer ≥ 1');
  if (opts.jobTimeout !== undefined && !(opts.jobTimeout > 0)) throw new RangeError('jobTimeout must be > 0 seconds');
  if (!Number.isInteger(population) || population < 2) throw new RangeError('population must be an integer ≥ 2');
  if (!Number.isInteger(generations) || generations < 1) throw new RangeError('generations must be an integer ≥ 1');
  if (!Number.isInteger(gamesPerEval) || gamesPerEval < 1) throw new RangeError('games must be an integer ≥ 1');
  const base = rng(seed);
  let draws = 0;
  const rand = () => {
    draws++;
    return base();
  };
  const L = BITS * GENES;
  const key = JSON.stringify({
    kif: kif.length,
    head: kif.slice(0, 200),
    generations,
    population,
    gamesPerEval,
    playclock,
    cpuClock,
    iterations,
    opponentIterations,
    crossover,
    mutation,
    switches,
    seed,
    confirmGames,
  });
  // start from the defaults and random genomes
  const defaults = encode({ c: 0.7, priorWeight: 1, weights: DEFAULT_WEIGHTS });
  let pop: number[][] = [
    defaults,
    ...Array.from({ length: population - 1 }, () => Array.from({ length: L }, () => (rand() < 0.5 ? 1 : 0))),
  ];
  let tally: Tally[] = [];
  let history: TuneResult['history'] = [];
  let startGen = 0;
  let fit: number[] = [];
  if (checkpoint && existsSync(checkpoint)) {
    let ck: Checkpoint;
    try {
      ck = JSON.parse(readFileSync(checkpoint, 'utf8')) as Checkpoint;
    } catch (e) {
      throw new CheckpointError(`checkpoint ${checkpoint} is not readable JSON: ${(e as Error).message}`);
    }
    if (ck.version !== 2)
      throw new CheckpointError(`checkpoint ${checkpoint} was written by an earlier version of tune: start afresh`);
    if (ck.key !== key)
      throw new CheckpointError(`checkpoint ${checkpoint} belongs to another run (sheet or settings differ)`);
    while (draws < ck.draws) rand();
    ({ pop, fit, tally, history } = ck);
    startGen = ck.generation;
    log(`resuming at generation ${startGen + 1}, genome ${fit.length + 1} (checkpoint ${checkpoint})`);
  }
  const save = (generation: number) => {
    if (checkpoint)
      writeAtomic(checkpoint, { version: 2, key, generation, pop, fit, tally, history, draws } satisfies Checkpoint);
  };
  const count = (bits: number[], f: number, games: number) => {
    const k = bits.join('');
    let t = tally.find((x) => x.bits.join('') === k);
    if (!t) tally.push((t = { bits: bits.slice(), sum: 0, games: 0 }));
    t.sum += f * games;
    t.games += games;
  };
  const stallMs = (opts.jobTimeout ?? 300) * 1000;
  const pool =
    jobs > 1
      ? new TunePool(kif, jobs, machineFor(kif, opts.strict).kind, opts.strict, {
          stallMs,
          loadMs: Math.max(600_000, stallMs),
        })
      : null;
  try {
    for (let gen = startGen; gen < generations; gen++) {
      const evalSeed = (i: number) => seed * 7919 + gen * 101 + i;
      const record = (i: number, f: number) => {
        fit.push(f);
        count(pop[i]!, f, gamesPerEval);
        log(`  generation ${gen + 1} genome ${i + 1}/${pop.length}: fitness ${f.toFixed(3)}`);
        save(gen);
      };
      if (pool) {
        // every remaining genome's games at once; genomes are recorded in order as their last game ends, each
        // fitness summed in game order, so checkpoints, `best` and the log are those of a one-process run
        const first = fit.length;
        const games: PoolGame[] = [];
        for (let i = first; i < pop.length; i++)
          for (let index = 0; index < gamesPerEval; index++)
            games.push({
              genome: { ...decode(pop[i]!), ...switches },
              task: {
                index,
                playclock,
                seed: evalSeed(i),
                iterations,
                opponentIterations,
                cpuClock,
                strict: opts.strict,
              },
            });
        const scores: number[] = new Array(games.length).fill(0);
        const left: number[] = new Array(pop.length).fill(gamesPerEval);
        await pool.run(games, (k, score) => {
          scores[k] = score;
          left[first + Math.floor(k / gamesPerEval)]!--;
          for (let i = fit.length; i < pop.length && left[i] === 0; i = fit.length) {
            const from = (i - first) * gamesPerEval;
            record(i, scores.slice(from, from + gamesPerEval).reduce((a, b) => a + b, 0) / gamesPerEval);
          }
        });
      } else
        for (let i = fit.length; i < pop.length; i++)
          record(
            i,
            await evaluate(
              kif,
              { ...decode(pop[i]!), ...switches },
              gamesPerEval,
              playclock,
              evalSeed(i),
              iterations,
              opponentIterations,
              cpuClock,
              opts.strict,
            ),
          );
      const mean = fit.reduce((a, b) => a + b, 0) / fit.length;
      history.push({ generation: gen, best: Math.max(...fit), mean });
      log(`generation ${gen + 1}/${generations}: best ${Math.max(...fit).toFixed(3)} mean ${mean.toFixed(3)}`);
      // roulette-wheel selection, one-point crossover, bit-flip mutation; the best genome survives
      const total = fit.reduce((a, b) => a + b + 1e-3, 0);
      const spin = () => {
        let x = rand() * total;
        for (let i = 0; i < pop.length; i++) {
          x -= fit[i]! + 1e-3;
          if (x <= 0) return pop[i]!;
        }
        return pop[pop.length - 1]!;
      };
      const next: number[][] = [bestOf(tally)!.bits.slice()];
      while (next.length < population) {
        let a = spin().slice();
        let b = spin().slice();
        if (rand() < crossover) {
          const cut = 1 + ((rand() * (L - 1)) | 0);
          [a, b] = [
            [...a.slice(0, cut), ...b.slice(cut)],
            [...b.slice(0, cut), ...a.slice(cut)],
          ];
        }
        for (const g of [a, b]) for (let k = 0; k < L; k++) if (rand() < mutation) g[k] = 1 - g[k]!;
        next.push(a);
        if (next.length < population) next.push(b);
      }
      pop = next;
      fit = [];
      save(gen + 1);
    }
    // confirmation: the three best by mean play again on fresh seeds (past every generation's), and the best of
    // them on all their games is returned; not checkpointed on its own (a resumed run plays it again, the same)
    const ranked = [...tally].sort((a, b) => b.sum / b.games - a.sum / a.games || b.games - a.games);
    const finalists = confirmGames > 0 ? ranked.slice(0, 3) : ranked.slice(0, 1);
    if (confirmGames > 0) {
      const confirmSeed = (r: number) => seed * 7919 + generations * 101 + r;
      let scores: number[];
      if (pool) {
        const games: PoolGame[] = finalists.flatMap((t, r) =>
          Array.from({ length: confirmGames }, (_, index) => ({
            genome: { ...decode(t.bits), ...switches },
            task: {
              index,
              playclock,
              seed: confirmSeed(r),
              iterations,
              opponentIterations,
              cpuClock,
              strict: opts.strict,
            },
          })),
        );
        const all = await pool.run(games);
        scores = finalists.map(
          (_, r) => all.slice(r * confirmGames, (r + 1) * confirmGames).reduce((a, b) => a + b, 0) / confirmGames,
        );
      } else {
        scores = [];
        for (const [r, t] of finalists.entries())
          scores.push(
            await evaluate(
              kif,
              { ...decode(t.bits), ...switches },
              confirmGames,
              playclock,
              confirmSeed(r),
              iterations,
              opponentIterations,
              cpuClock,
              opts.strict,
            ),
          );
      }
      for (const [r, t] of finalists.entries()) {
        const before = t.sum / t.games;
        count(t.bits, scores[r]!, confirmGames);
        log(
          `confirm ${r + 1}/${finalists.length}: ${scores[r]!.toFixed(3)} in ${confirmGames} more games (was ${before.toFixed(3)}), ${(t.sum / t.games).toFixed(3)} over ${t.games}`,
        );
      }
    }
    const best = bestOf(finalists)!;
    return { ...decode(best.bits), ...switches, fitness: best.sum / best.games, games: best.games, history };
  } finally {
    pool?.close();
  }
}
