// Tuning by a simple genetic algorithm (Goldberg's SGA: bit-string genomes, fitness-proportional selection,
// one-point crossover, bit-flip mutation, generational replacement; we keep the best genome, which the plain
// SGA does not). A genome encodes the UCT constant and the spatial feature weights; fitness is the mean score
// of UCT+features against plain UCT in self-play, both roles, at equal time per move (or equal iterations).
// Seeded: with iteration budgets the whole run is reproducible.
import { BoardFeatures, DEFAULT_WEIGHTS, FEATURES } from './features.js';
import { loadGame } from './game.js';
import { type GameMachine, rng } from './machine.js';
import { LocalAgent, playMatch } from './match.js';
import { UctPlayer } from './players.js';

const BITS = 6;
/** genes: the UCT constant, the progressive-bias weight, then one weight per feature */
const GENES = 2 + FEATURES.length;
const C_RANGE = [0.1, 1.5] as const;
const PRIOR_RANGE = [0, 4] as const;
/** the win feature only makes sense with a positive weight; the others may come out either way */
const weightRange = (i: number): readonly [number, number] => (FEATURES[i] === 'win' ? [0, 6] : [-3, 3]);
const decodeGene = (bits: number[], i: number, lo: number, hi: number) => {
  let v = 0;
  for (let k = 0; k < BITS; k++) v = v * 2 + bits[i * BITS + k]!;
  return lo + ((hi - lo) * v) / (2 ** BITS - 1);
};

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
  /** biased plies per playout before the plain fast `playout()` takes over (default: all) */
  biasPlies?: number;
  /** bias the playouts too (default on); off: the features shape the tree's prior only and playouts stay plain
   * (the reasoner's allocation-free `playout()` where it has one) */
  biasPlayouts?: boolean;
}

export const GENOME_BITS = BITS * GENES;

export function decode(bits: number[]): Genome {
  return {
    c: decodeGene(bits, 0, ...C_RANGE),
    priorWeight: decodeGene(bits, 1, ...PRIOR_RANGE),
    weights: FEATURES.map((_, i) => decodeGene(bits, i + 2, ...weightRange(i))),
  };
}

export function encode(g: Genome): number[] {
  return [
    ...encodeValue(g.c, ...C_RANGE),
    ...encodeValue(g.priorWeight, ...PRIOR_RANGE),
    ...g.weights.flatMap((w, i) => encodeValue(w, ...weightRange(i))),
  ];
}

/** The player a genome describes. */
export function genomePlayer(g: Genome, name = 'uct+features'): UctPlayer<unknown, unknown> {
  const bias = new BoardFeatures(g.weights, undefined, {
    decisive: g.decisive,
    effects: g.effects,
    effectsAll: g.effectsAll,
    antiDecisive: g.antiDecisive,
    biasPlies: g.biasPlies,
  });
  return new UctPlayer({ c: g.c, priorWeight: g.priorWeight, bias, biasPlayouts: g.biasPlayouts, name });
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
  playclock?: number;
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
  log?: (line: string) => void;
}

export interface TuneResult extends Genome {
  fitness: number;
  history: Array<{ generation: number; best: number; mean: number }>;
}

let loaded: { kif: string; m: GameMachine } | null = null;
/** One reasoner per sheet for a whole run: both sides of every game use the same engine (loadGame's choice
 * between the grounded net and the compiler depends on a time budget, and move order differs between them). */
function machineFor(kif: string): GameMachine {
  if (loaded?.kif !== kif) loaded = { kif, m: loadGame(kif) };
  return loaded.m;
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
): Promise<number> {
  let score = 0;
  for (let i = 0; i < games; i++) {
    const m = machineFor(kif);
    const tuned = new LocalAgent(genomePlayer(g), seed + i, 0, iterations, m);
    const plain = new LocalAgent(new UctPlayer(), seed + 1000 + i, 0, opponentIterations, m);
    const first = i % 2 === 0;
    const rec = await playMatch(kif, first ? [tuned, plain] : [plain, tuned], { playclock, seed: seed + i });
    score += (rec.goals[first ? 0 : 1] ?? 0) / 100;
  }
  return score / games;
}

export async function tune(kif: string, opts: TuneOptions = {}): Promise<TuneResult> {
  const {
    generations = 6,
    population = 8,
    gamesPerEval = 4,
    playclock = 0.05,
    iterations,
    opponentIterations = iterations,
    crossover = 0.7,
    mutation = 1 / (BITS * GENES),
    switches = {},
    seed = 1,
    log = () => {},
  } = opts;
  const rand = rng(seed);
  const L = BITS * GENES;
  // start from the defaults and random genomes
  const defaults = encode({ c: 0.7, priorWeight: 1, weights: DEFAULT_WEIGHTS });
  let pop: number[][] = [
    defaults,
    ...Array.from({ length: population - 1 }, () => Array.from({ length: L }, () => (rand() < 0.5 ? 1 : 0))),
  ];
  let best = { bits: defaults, fitness: -1 };
  const history: TuneResult['history'] = [];
  for (let gen = 0; gen < generations; gen++) {
    const fit: number[] = [];
    for (const [i, bits] of pop.entries())
      fit.push(
        await evaluate(
          kif,
          { ...decode(bits), ...switches },
          gamesPerEval,
          playclock,
          seed * 7919 + gen * 101 + i,
          iterations,
          opponentIterations,
        ),
      );
    fit.forEach((f, i) => {
      if (f > best.fitness) best = { bits: pop[i]!, fitness: f };
    });
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
    const next: number[][] = [best.bits.slice()];
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
  }
  return { ...decode(best.bits), ...switches, fitness: best.fitness, history };
}
