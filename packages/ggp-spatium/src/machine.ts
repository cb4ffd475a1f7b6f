// The state machine both reasoners implement. Text methods (the API) speak canonical GDL: lower case,
// one space between tokens, no space inside parentheses, e.g. `(mark 1 1)`. Handle methods (`legal`, `next`,
// `goals`) work on opaque moves and states and are what players use in their inner loops.

export interface GameMachine<S = unknown, M = unknown> {
  /** which reasoner: "grounded", "compiled" or "interpreter" */
  readonly kind: string;
  roles(): string[];
  initialState(): S;
  /** legal moves of `role` as canonical GDL text, sorted */
  legalMoves(state: S, role: string): string[];
  /** `jointMoves[i]` is the move (text or handle) of role i */
  nextState(state: S, jointMoves: ReadonlyArray<string | M>): S;
  isTerminal(state: S): boolean;
  /** the role's goal value, or null where the sheet defines none ("goal undefined") */
  goal(state: S, role: string): number | null;
  /** the state's fluents as canonical GDL text, sorted */
  fluents(state: S): string[];

  /** legal move handles of role index `r` (order is stable for a state) */
  legal(state: S, r: number): M[];
  next(state: S, joint: ReadonlyArray<M>): S;
  /** every goal value of role index `r` (sorted; empty = undefined, several = ill-formed sheet) */
  goalValues(state: S, r: number): number[];
  moveText(m: M): string;
  /** the handle for a move given as GDL text, or undefined if the text is no known term */
  parseMove(text: string): M | undefined;
  /** a key equal for equal states (for transposition tables) */
  stateKey(state: S): string;
  /** GDL-II: what `role` sees when `jointMoves` are played in `state` (canonical text, sorted) */
  percepts(state: S, jointMoves: ReadonlyArray<string | M>, role: string): string[];
  /**
   * Optional fast path (the grounded net has it): the result of `randomPlayout(this, state, rand, maxPlies)`,
   * making the same moves for the same `rand` sequence, without building intermediate states.
   */
  playout?(state: S, rand: () => number, maxPlies?: number): PlayoutResult;
}

/** Goal of every role, with null for undefined (the max value if a sheet gives several). */
export function goalsOf<S, M>(m: GameMachine<S, M>, s: S): Array<number | null> {
  return m.roles().map((_, r) => {
    const v = m.goalValues(s, r);
    return v.length ? v[v.length - 1]! : null;
  });
}

/** Mulberry32: small, fast, seedable PRNG for reproducible playouts. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PlayoutResult {
  plies: number;
  goals: Array<number | null>;
}

/** gdl-perf's playout: uniformly random legal move per role until terminal, then every goal. */
export function randomPlayout<S, M>(m: GameMachine<S, M>, s: S, rand: () => number, maxPlies = 10_000): PlayoutResult {
  const n = m.roles().length;
  const joint: M[] = new Array(n);
  let plies = 0;
  while (!m.isTerminal(s)) {
    if (plies >= maxPlies) break;
    for (let r = 0; r < n; r++) {
      const ls = m.legal(s, r);
      if (!ls.length) return { plies, goals: goalsOf(m, s) };
      joint[r] = ls[(rand() * ls.length) | 0]!;
    }
    s = m.next(s, joint);
    plies++;
  }
  return { plies, goals: goalsOf(m, s) };
}

/**
 * CPU milliseconds for budgets and CPU-time clocks: the calling thread's where the runtime can say
 * (`process.threadCpuUsage`, Node ≥ 23.9), else the whole process's (`process.cpuUsage`: in a worker thread that
 * counts every thread, so a budget runs out as many times faster as threads are busy — loaders in worker threads
 * must not lean on it), else wall-clock ms (browsers).
 */
export function cpuNowMs(): number {
  type Usage = () => { user: number; system: number };
  const p = (globalThis as { process?: { cpuUsage?: Usage; threadCpuUsage?: Usage } }).process;
  const f = p?.threadCpuUsage ?? p?.cpuUsage;
  if (!f) return performance.now();
  const u = f.call(p);
  return (u.user + u.system) / 1000;
}
