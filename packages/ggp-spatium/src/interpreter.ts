// The reference reasoner: top-down evaluation with tabling. Every subgoal (a relation and a call pattern, with
// variables renamed in order) gets a table of ground answers; a call that meets a subgoal still being evaluated
// marks the strongly connected set of subgoals, whose leader re-evaluates until no table grows (a fixpoint, as
// ggp-base's AimaProver recursion handler does). Plain on purpose: it is what the compiler is checked against, and
// it runs the sheets the compiler refuses, so it shares none of the compiler's code. What makes it fast enough to
// check 100 playouts of a large sheet is kept to mechanisms a reader can check by eye:
// - ground compound terms are interned (one object per term, text and depth computed once), so equality is
//   identity and a table key is a join of cached texts;
// - a relation that depends on neither `true` nor `does` (static) gets its whole table once per game, through the
//   same tabled evaluation with every argument free, and a call is answered from it by an index on the call's
//   ground arguments; where the whole table is past a budget or cannot be built without bound arguments (unbounded
//   function terms, unsafe rules in lenient mode), that relation is tabled per call pattern instead;
// - `true` is answered from an index of the state on the call's ground arguments;
// - within a rule body, literals answered from an index are joined most selective first (`plan`); a literal
//   tabled per call pattern keeps its written place;
// - a state-dependent relation asked with many call patterns in one state is timed, then tried with a whole table
//   per state, which it keeps where that halves its time (`decide`);
// - tables of relations that depend on `true` but not on `does` live as long as the state, those that depend on
//   `does` as long as the joint move.
// None of these changes an answer set; the interning table lives as long as the prover (one game).
import { IllegalMoveError, ReasonerError } from './errors.js';
import { isCompound, isVar, type Literal, parseTerm, type Rule, type Term } from './gdl.js';
import type { GameMachine } from './machine.js';
import { type LoadOptions, prepareGame, prepareRules } from './prepare.js';
import { dependencyGraph, reachable } from './validate.js';

/** Rule-local term: a constant, a variable slot (number), or a compound. Ground terms contain no numbers. */
export type ITerm = string | number | ICompound;
export interface ICompound {
  f: string;
  args: ITerm[];
  /** a ground compound's text; ground compounds carry it and are interned, so equal ground terms are one object */
  t?: string;
  /** a ground compound's nesting depth */
  d?: number;
}
type Ground = string | ICompound;

type IBody =
  | { k: 'atom'; rel: string; args: ITerm[] }
  | { k: 'not'; inner: IBody }
  | { k: 'distinct'; a: ITerm; b: ITerm };

interface IRule {
  head: ITerm[];
  /** positive literals in written order */
  pos: IBody[];
  /** not / distinct, in written order */
  neg: IBody[];
  /** variable slots of each literal (pos, then neg) */
  vars: Map<IBody, number[]>;
  nvars: number;
  /** the order the body runs in, per set of variables bound when it starts (see `Prover.plan`) */
  plans: Map<number | string, IBody[]>;
}

export function gtext(t: ITerm): string {
  if (typeof t === 'string') return t;
  if (typeof t === 'number') return `?${t}`;
  if (t.t !== undefined) return t.t;
  let s = `(${t.f}`;
  for (const a of t.args) s += ` ${gtext(a)}`;
  return `${s})`;
}

const isGroundI = (t: ITerm): boolean => typeof t === 'string' || (typeof t === 'object' && t.t !== undefined);

const EMPTY: Ground[][] = [];

/** The intern table of ground compounds: `mk` returns the one object of a term, made from interned parts. */
export class Terms {
  private readonly table = new Map<string, ICompound>();
  /** functor → arity → a trie over the argument objects, whose last level maps to the compound */
  private readonly byF = new Map<string, Array<Map<Ground, unknown>>>();

  /**
   * The interned compound for a functor and interned arguments. Found through a trie keyed by the arguments'
   * identities (one Map lookup per argument, nothing allocated), since most calls ask for a term that exists;
   * the text is built only for a new term.
   */
  mk(f: string, args: Ground[]): ICompound {
    const n = args.length;
    if (n === 0) return this.make(f, args);
    let byArity = this.byF.get(f);
    if (byArity === undefined) this.byF.set(f, (byArity = []));
    let m = (byArity[n] ??= new Map());
    for (let i = 0; i < n - 1; i++) {
      const a = args[i]!;
      let next = m.get(a) as Map<Ground, unknown> | undefined;
      if (next === undefined) m.set(a, (next = new Map()));
      m = next;
    }
    let c = m.get(args[n - 1]!) as ICompound | undefined;
    if (c === undefined) m.set(args[n - 1]!, (c = this.make(f, args)));
    return c;
  }

  /** The interned compound by its text (a term whose arguments were not interned still finds its one object). */
  private make(f: string, args: Ground[]): ICompound {
    let s = `(${f}`;
    let d = 0;
    for (const a of args) {
      if (typeof a === 'string') s += ` ${a}`;
      else {
        s += ` ${a.t}`;
        if (a.d! > d) d = a.d!;
      }
    }
    s += ')';
    let c = this.table.get(s);
    if (c === undefined) {
      c = { f, args, t: s, d: d + 1 };
      this.table.set(s, c);
    }
    return c;
  }

  /** A ground term made elsewhere (a caller's state or move): this table's object for it. */
  own(t: ITerm): Ground {
    if (typeof t === 'string') return t;
    if (typeof t === 'number') throw new ReasonerError(`a ground term was expected, got variable ?${t}`);
    if (t.t !== undefined && this.table.get(t.t) === t) return t;
    return this.mk(
      t.f,
      t.args.map((a) => this.own(a)),
    );
  }

  /** A call pattern made elsewhere: its ground parts interned, so that they are recognised as ground. */
  pattern(t: ITerm): ITerm {
    if (typeof t !== 'object' || (t.t !== undefined && this.table.get(t.t) === t)) return t;
    const args = t.args.map((a) => this.pattern(a));
    return args.every(isGroundI) ? this.mk(t.f, args as Ground[]) : { f: t.f, args };
  }

  /** Number of interned compounds (tests). */
  get size(): number {
    return this.table.size;
  }
}

function compileRule(r: Rule, terms: Terms): IRule {
  const slots = new Map<string, number>();
  const tr = (t: Term): ITerm => {
    if (typeof t === 'string') return t;
    if (isVar(t)) {
      if (!slots.has(t.v)) slots.set(t.v, slots.size);
      return slots.get(t.v)!;
    }
    const args = t.args.map(tr);
    // ground parts of a rule are interned like any ground term, so that matching them is an identity test
    return args.every(isGroundI) ? terms.mk(t.f, args as Ground[]) : { f: t.f, args };
  };
  const lit = (l: Literal): IBody => {
    if (l.kind === 'atom') return { k: 'atom', rel: l.atom.rel, args: l.atom.args.map(tr) };
    if (l.kind === 'not') return { k: 'not', inner: lit(l.lit) };
    if (l.kind === 'distinct') return { k: 'distinct', a: tr(l.a), b: tr(l.b) };
    throw new ReasonerError('or must be removed before compiling rules');
  };
  const head = r.head.args.map(tr);
  const pos = r.body.filter((l) => l.kind === 'atom').map(lit);
  const neg = r.body.filter((l) => l.kind !== 'atom').map(lit);
  const vars = new Map<IBody, number[]>();
  for (const l of [...pos, ...neg]) vars.set(l, [...varsOf(l, new Set())]);
  return { head, pos, neg, vars, nvars: slots.size, plans: new Map() };
}

function varsOf(b: IBody, out: Set<number>): Set<number> {
  const t = (x: ITerm) => {
    if (typeof x === 'number') out.add(x);
    else if (typeof x === 'object') for (const a of x.args) t(a);
  };
  if (b.k === 'atom') b.args.forEach(t);
  else if (b.k === 'not') varsOf(b.inner, out);
  else {
    t(b.a);
    t(b.b);
  }
  return out;
}

/**
 * A set of ground tuples of one arity, keyed by the terms' identities: ground terms are interned (equal terms are
 * one string or one object), so identity is equality and no key text is built per test. A trie of Maps whose last
 * level is a Set.
 */
class TupleSet {
  private readonly root: Map<Ground, unknown> | Set<Ground>;
  /** arity 0: whether the set holds the empty tuple */
  private holdsEmpty = false;

  constructor(private readonly arity: number) {
    this.root = arity <= 1 ? new Set() : new Map();
  }

  has(t: readonly Ground[]): boolean {
    if (this.arity === 0) return this.holdsEmpty;
    let m: unknown = this.root;
    for (let i = 0; i < this.arity - 1; i++) {
      m = (m as Map<Ground, unknown>).get(t[i]!);
      if (m === undefined) return false;
    }
    return (m as Set<Ground>).has(t[this.arity - 1]!);
  }

  /** Adds the tuple; false where it was already there. */
  add(t: readonly Ground[]): boolean {
    if (this.arity === 0) {
      if (this.holdsEmpty) return false;
      return (this.holdsEmpty = true);
    }
    let m: unknown = this.root;
    for (let i = 0; i < this.arity - 1; i++) {
      const level = m as Map<Ground, unknown>;
      let next = level.get(t[i]!);
      if (next === undefined) level.set(t[i]!, (next = i === this.arity - 2 ? new Set() : new Map()));
      m = next;
    }
    const last = m as Set<Ground>;
    const n = last.size;
    last.add(t[this.arity - 1]!);
    return last.size !== n;
  }
}

/** Tables of at most this many answers are searched by a scan (most per-pattern tables hold 0–2 answers). */
const SMALL_TABLE = 8;

/** Is the ground tuple among the entry's answers? (Interned terms: identity is equality.) */
function hasAnswer(e: Entry, t: readonly Ground[]): boolean {
  const answers = e.answers;
  if (e.keys === null) {
    if (answers.length <= SMALL_TABLE) {
      for (const u of answers) {
        let i = 0;
        while (i < t.length && u[i] === t[i]) i++;
        if (i === t.length) return true;
      }
      return false;
    }
    e.keys = new TupleSet(t.length);
    for (const u of answers) e.keys.add(u);
  }
  return e.keys.has(t);
}

const COMPLETE = 0;
const EVALUATING = 1;
const INCOMPLETE = 2;

interface Entry {
  answers: Ground[][];
  /** the answers as a set, built once there are more than `SMALL_TABLE` (below that a scan is cheaper) */
  keys: TupleSet | null;
  status: number;
  depth: number;
  low: number;
  leader: boolean;
  /** a whole table's indexes: ground-argument mask → (texts of those arguments → answers, answers indexed) */
  index?: Map<number, { byKey: Map<string, Ground[][]>; n: number }>;
}

/**
 * The renaming of one call's unbound slots to pattern variables 0, 1, …; one renaming serves every call, since a
 * call pattern is built completely (by `subst`) before anything else runs. Typed arrays under a generation stamp,
 * not a Map: `clear()` gives a Map a new backing store, and a long-lived Map's goes to the old generation, so one
 * Map cleared per literal call filled the old generation with garbage (amazons: 11 mark-compacts in 60 states
 * instead of 4, the interpreter's slowdown since 4bfc162).
 */
class Renaming {
  private gen = 1;
  private stamp = new Int32Array(64);
  private val = new Int32Array(64);
  /** pattern variables handed out since the last `reset` */
  size = 0;

  reset(): this {
    this.size = 0;
    if (++this.gen === 0x7fffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
    return this;
  }

  /** The pattern variable of `slot`, numbered on first sight. */
  of(slot: number): number {
    if (slot >= this.stamp.length) {
      const n = Math.max(slot + 1, this.stamp.length * 2);
      const st = new Int32Array(n);
      st.set(this.stamp);
      const v = new Int32Array(n);
      v.set(this.val);
      this.stamp = st;
      this.val = v;
    }
    if (this.stamp[slot] !== this.gen) {
      this.stamp[slot] = this.gen;
      this.val[slot] = this.size++;
    }
    return this.val[slot]!;
  }
}
const FRESH = new Renaming();

/** Instantiates a rule-local term under `env`; unbound slots become pattern variables via `fresh`. */
function subst(t: ITerm, env: Array<Ground | undefined>, fresh: Renaming | null, terms: Terms): ITerm {
  if (typeof t === 'string') return t;
  if (typeof t === 'number') {
    const v = env[t];
    if (v !== undefined) return v;
    if (!fresh) throw new ReasonerError('unbound variable in a ground position');
    return fresh.of(t);
  }
  if (t.t !== undefined) return t;
  const args = new Array<ITerm>(t.args.length);
  let ground = true;
  for (let i = 0; i < args.length; i++) {
    const a = subst(t.args[i]!, env, fresh, terms);
    args[i] = a;
    if (!isGroundI(a)) ground = false;
  }
  return ground ? terms.mk(t.f, args as Ground[]) : { f: t.f, args };
}

/** One-way match of a ground term into a pattern, binding slots in env; records bound slots in `trail`. */
function match(p: ITerm, g: Ground, env: Array<Ground | undefined>, trail: number[]): boolean {
  if (typeof p === 'string') return p === g;
  if (typeof p === 'number') {
    const v = env[p];
    if (v === undefined) {
      env[p] = g;
      trail.push(p);
      return true;
    }
    return v === g; // both interned
  }
  if (p.t !== undefined) return p === g;
  if (typeof g !== 'object' || g.f !== p.f || g.args.length !== p.args.length) return false;
  for (let i = 0; i < p.args.length; i++) if (!match(p.args[i]!, g.args[i] as Ground, env, trail)) return false;
  return true;
}

function matchTuple(pat: ITerm[], tuple: Ground[], env: Array<Ground | undefined>, trail: number[]): boolean {
  if (tuple.length !== pat.length) return false;
  for (let i = 0; i < pat.length; i++) if (!match(pat[i]!, tuple[i]!, env, trail)) return false;
  return true;
}

/** Answers of a call pattern among candidates that may include tuples the pattern does not match. */
const matching = (pat: ITerm[], tuples: Ground[][]): Ground[][] => tuples.filter((t) => matchesPattern(pat, t));

/** Scratch bindings for `matchesPattern` (a call pattern's variables), cleared after each use. */
const SCRATCH: Array<Ground | undefined> = [];
const SCRATCH_TRAIL: number[] = [];

/** Does a ground tuple match a call pattern (variables numbered from 0, a repeated one bound once)? */
function matchesPattern(pat: ITerm[], tuple: Ground[]): boolean {
  const ok = matchTuple(pat, tuple, SCRATCH, SCRATCH_TRAIL);
  for (const v of SCRATCH_TRAIL) SCRATCH[v] = undefined;
  SCRATCH_TRAIL.length = 0;
  return ok;
}

/** Slots bound while matching answers into a rule body, unwound to a mark after each answer. */
const TRAIL: number[] = [];

/** Can a head argument (rule-local) match a call pattern argument? Only constants and functors are compared. */
function compatible(h: ITerm, c: ITerm): boolean {
  if (h === c || typeof h === 'number' || typeof c === 'number') return true;
  if (typeof h === 'string' || typeof c === 'string') return false;
  if (h.t !== undefined && c.t !== undefined) return false; // distinct interned ground terms
  return h.f === c.f && h.args.length === c.args.length && h.args.every((a, i) => compatible(a, c.args[i]!));
}

const FREE: number[][] = [];
/** The call pattern with every argument free (one array per arity, never changed). */
const freePattern = (arity: number): number[] => (FREE[arity] ??= Array.from({ length: arity }, (_, i) => i));

/** What a call pattern's argument is keyed by: constants and pattern variables by value, interned ground
 * compounds by identity, other compounds (never interned) by their text, which no constant can equal. */
const argKey = (t: ITerm): unknown => (typeof t === 'object' && t.t === undefined ? gtext(t) : t);

/**
 * Tabled calls by relation and call pattern: a trie over the pattern's arguments (`argKey`), so that a call finds
 * its entry with one Map lookup per argument and builds no key text (most calls are answered from a table).
 */
class CallTable {
  private readonly roots = new Map<string, Array<Map<unknown, unknown> | undefined>>();
  private readonly nullary = new Map<string, Entry>();

  get(rel: string, pat: readonly ITerm[]): Entry | undefined {
    const n = pat.length;
    if (n === 0) return this.nullary.get(rel);
    let m = this.roots.get(rel)?.[n];
    for (let i = 0; m !== undefined && i < n - 1; i++) m = m.get(argKey(pat[i]!)) as Map<unknown, unknown> | undefined;
    return m?.get(argKey(pat[n - 1]!)) as Entry | undefined;
  }

  set(rel: string, pat: readonly ITerm[], e: Entry): void {
    const n = pat.length;
    if (n === 0) {
      this.nullary.set(rel, e);
      return;
    }
    let byArity = this.roots.get(rel);
    if (byArity === undefined) this.roots.set(rel, (byArity = []));
    let m = (byArity[n] ??= new Map());
    for (let i = 0; i < n - 1; i++) {
      const k = argKey(pat[i]!);
      let next = m.get(k) as Map<unknown, unknown> | undefined;
      if (next === undefined) m.set(k, (next = new Map()));
      m = next;
    }
    m.set(argKey(pat[n - 1]!), e);
  }

  delete(rel: string, pat: readonly ITerm[]): void {
    const n = pat.length;
    if (n === 0) {
      this.nullary.delete(rel);
      return;
    }
    let m = this.roots.get(rel)?.[n];
    for (let i = 0; m !== undefined && i < n - 1; i++) m = m.get(argKey(pat[i]!)) as Map<unknown, unknown> | undefined;
    m?.delete(argKey(pat[n - 1]!));
  }

  /** Drops every entry whose evaluation did not finish (after a query stopped by an error). */
  dropUnfinished(): void {
    for (const [rel, e] of this.nullary) if (e.status !== COMPLETE) this.nullary.delete(rel);
    const walk = (m: Map<unknown, unknown>, depth: number): void => {
      for (const [k, v] of m)
        if (depth === 0) {
          if ((v as Entry).status !== COMPLETE) m.delete(k);
        } else walk(v as Map<unknown, unknown>, depth - 1);
    };
    for (const byArity of this.roots.values())
      byArity.forEach((m, n) => {
        if (m) walk(m, n - 1);
      });
  }
}

/** Bit i set where argument i (i < 31) of a call pattern is ground: the arguments an index can key on. */
function groundMask(pat: ITerm[]): number {
  let m = 0;
  for (let i = 0; i < pat.length && i < 31; i++) if (isGroundI(pat[i]!)) m |= 1 << i;
  return m;
}

function maskKey(args: ITerm[], mask: number): string {
  let k = '';
  for (let i = 0; i < args.length && i < 31; i++) if (mask & (1 << i)) k += ` ${gtext(args[i]!)}`;
  return k;
}

/** Groups tuples by the texts of the arguments `mask` selects (`arg` picks the argument list of a tuple). */
function buildIndex(tuples: Ground[][], mask: number, arity: number, arg: (t: Ground[]) => ITerm[] | null) {
  const ix = new Map<string, Ground[][]>();
  for (const t of tuples) {
    const a = arg(t);
    if (a === null || a.length !== arity) continue;
    const k = maskKey(a, mask);
    const l = ix.get(k);
    if (l) l.push(t);
    else ix.set(k, [t]);
  }
  return ix;
}

export class Prover {
  readonly terms = new Terms();
  private readonly byRel = new Map<string, IRule[]>();
  /** relations that depend on neither `true` nor `does` */
  private readonly staticRels: Set<string>;
  /** relations that depend on `does` */
  private readonly moveRels: Set<string>;
  private readonly staticTable = new CallTable();
  /** relations whose whole table could not be built: tabled per call pattern for the rest of the game */
  private readonly perPattern = new Set<string>();
  /** state-dependent relations asked with many call patterns in one state: whole tables per state from then on */
  private readonly wholePerState = new Set<string>();
  /** call patterns tabled per state-dependent relation in the current state (see `decide`) */
  private patternCount = new Map<string, number>();
  /** relations being weighed: timed per call pattern, then with whole tables (ms, in `timeIn` per state) */
  private readonly candidates = new Map<string, { phase: 'measure' | 'trial'; before: number }>();
  private timeIn = new Map<string, number>();
  private readonly active = new Set<string>();
  private stateTable = new CallTable();
  private moveTable = new CallTable();
  /** complete whole tables by relation and arity, one map per table (a shortcut past the table key) */
  private readonly staticWhole = new Map<string, Entry[]>();
  private stateWhole = new Map<string, Entry[]>();
  private moveWhole = new Map<string, Entry[]>();
  private readonly stack: Entry[] = [];
  private readonly pending: Entry[] = [];
  private changes = 0;
  private state: Ground[] = [];
  private stateTuples: Ground[][] = [];
  private stateSet = new Set<Ground>();
  private stateByF = new Map<string, Ground[][]>();
  private trueIndex = new Map<string, Map<string, Ground[][]>>();
  private moves: Ground[][] = [];
  /** guards against runaway function-term recursion */
  maxTermDepth = 40;
  maxAnswers = 2_000_000;
  /** answers a static relation's whole table may hold; past it the relation is tabled per call pattern */
  wholeTableBudget = 200_000;
  /** the same for a state-dependent relation's whole table, built once per state */
  stateWholeBudget = 20_000;
  /** call patterns of one state-dependent relation in one state past which it gets whole tables (0: never) */
  wholeAfterPatterns = 12;
  private answersMade = 0;
  /** > 0 while a whole table is being built: entries made then, to drop them if it fails */
  private building = 0;
  private readonly buildLog: Array<[CallTable, string, ITerm[]]> = [];

  constructor(rules: Rule[]) {
    for (const r of rules) {
      if (!this.byRel.has(r.head.rel)) this.byRel.set(r.head.rel, []);
      this.byRel.get(r.head.rel)!.push(compileRule(r, this.terms));
    }
    const g = dependencyGraph(rules);
    const reach = new Map([...g.keys()].map((k) => [k, reachable(g, [k])]));
    this.staticRels = new Set([...reach].filter(([, s]) => !s.has('true') && !s.has('does')).map(([k]) => k));
    this.moveRels = new Set([...reach].filter(([, s]) => s.has('does')).map(([k]) => k));
  }

  /** Sets the context: the state's fluents and the joint move as (role, move) pairs; clears per-state tables. */
  setContext(state: Ground[], moves: Ground[][]): void {
    this.state = state.map((t) => this.terms.own(t));
    this.stateTuples = this.state.map((t) => [t]);
    this.stateSet = new Set(this.state);
    this.stateByF = new Map();
    for (const tu of this.stateTuples) {
      const t = tu[0]!;
      const f = typeof t === 'string' ? t : t.f;
      const l = this.stateByF.get(f);
      if (l) l.push(tu);
      else this.stateByF.set(f, [tu]);
    }
    this.trueIndex = new Map();
    this.stateTable = new CallTable();
    this.stateWhole = new Map();
    this.decide();
    this.setMoves(moves);
  }

  /** Changes only the joint move (the state stays): clears the tables of relations that depend on `does`. */
  setMoves(moves: Ground[][]): void {
    this.moves = moves.map((t) => t.map((a) => this.terms.own(a)));
    this.moveTable = new CallTable();
    this.moveWhole = new Map();
  }

  /**
   * At the end of a state: a state-dependent relation asked with more than `wholeAfterPatterns` call patterns is
   * timed for a state as it is (tabled per call pattern), then for a state with whole tables; it keeps whole
   * tables where they took less than half the time, and is tabled per call pattern for good otherwise (a whole
   * table enumerates what the calls never asked for, which pays only where they ask for most of it). The choice
   * changes the time, never the answers.
   */
  private decide(): void {
    for (const [rel, c] of this.candidates) {
      const t = this.timeIn.get(rel);
      if (t === undefined) continue; // not asked in this state
      if (c.phase === 'measure') {
        c.before = t;
        c.phase = 'trial';
        this.wholePerState.add(rel);
      } else {
        this.candidates.delete(rel);
        if (t * 2 > c.before) {
          this.wholePerState.delete(rel);
          this.perPattern.add(rel);
        }
      }
    }
    if (this.wholeAfterPatterns > 0)
      for (const [rel, n] of this.patternCount)
        if (n > this.wholeAfterPatterns && !this.perPattern.has(rel) && !this.wholePerState.has(rel))
          if (!this.candidates.has(rel)) this.candidates.set(rel, { phase: 'measure', before: 0 });
    this.patternCount = new Map();
    this.timeIn = new Map();
  }

  /** All ground answers of `rel` matching `pattern` (pattern variables are numbers 0..). */
  ask(rel: string, pattern: ITerm[]): Ground[][] {
    this.answersMade = 0;
    const pat = pattern.map((t) => this.terms.pattern(t));
    try {
      return matching(pat, this.solve(rel, pat));
    } catch (err) {
      // a query stopped by an error leaves unfinished tables: drop them so that the next query starts clean
      this.stack.length = 0;
      this.pending.length = 0;
      TRAIL.length = 0;
      for (const t of [this.staticTable, this.stateTable, this.moveTable]) t.dropUnfinished();
      throw err;
    }
  }

  /**
   * Answers of a call: every tuple that matches `pat`, possibly among others that do not (an unfinished table,
   * an index on some arguments only), so callers match each tuple against the call.
   */
  private solve(rel: string, pat: ITerm[]): Ground[][] {
    if (rel === 'true') return this.trueAnswers(pat[0]!);
    if (rel === 'does') return this.moves;
    if (this.candidates.has(rel) && !this.active.has(rel)) {
      // a relation weighed by `decide`: the time of its calls, with what they call
      this.active.add(rel);
      const t0 = performance.now();
      try {
        return this.solveIn(rel, pat);
      } finally {
        this.active.delete(rel);
        this.timeIn.set(rel, (this.timeIn.get(rel) ?? 0) + performance.now() - t0);
      }
    }
    return this.solveIn(rel, pat);
  }

  private solveIn(rel: string, pat: ITerm[]): Ground[][] {
    const isStatic = this.staticRels.has(rel);
    if ((isStatic || this.wholePerState.has(rel)) && !this.perPattern.has(rel)) {
      const e = this.whole(rel, pat.length);
      if (e !== null) return this.lookup(e, pat);
    }
    const tbl = isStatic ? this.staticTable : this.moveRels.has(rel) ? this.moveTable : this.stateTable;
    const e = tbl.get(rel, pat);
    if (e?.status === COMPLETE) return e.answers;
    // many distinct calls of one relation in one state (a board scanned square by square) may be cheaper as one
    // whole table per state: counted here, weighed in `decide`
    if (!isStatic && this.wholeAfterPatterns > 0 && e === undefined)
      this.patternCount.set(rel, (this.patternCount.get(rel) ?? 0) + 1);
    return this.evaluate(rel, pat, tbl, e).answers;
  }

  /**
   * A relation's whole table (every argument free): once per game for a static relation, once per state (or
   * joint move) for one in `wholePerState`; built on first use, null where it cannot be.
   */
  private whole(rel: string, arity: number): Entry | null {
    const isStatic = this.staticRels.has(rel);
    const onMoves = !isStatic && this.moveRels.has(rel);
    const cache = isStatic ? this.staticWhole : onMoves ? this.moveWhole : this.stateWhole;
    const done = cache.get(rel)?.[arity];
    if (done !== undefined) return done;
    const tbl = isStatic ? this.staticTable : onMoves ? this.moveTable : this.stateTable;
    const free = freePattern(arity);
    const e = tbl.get(rel, free);
    if (e?.status === COMPLETE) {
      let byArity = cache.get(rel);
      if (!byArity) cache.set(rel, (byArity = []));
      byArity[arity] = e;
      return e;
    }
    if (e) return this.evaluate(rel, free, tbl, e); // still being built: a recursive call
    const mark = {
      stack: this.stack.length,
      pending: this.pending.length,
      log: this.buildLog.length,
      trail: TRAIL.length,
    };
    const made = this.answersMade;
    const max = this.maxAnswers;
    this.answersMade = 0;
    this.maxAnswers = Math.min(max, isStatic ? this.wholeTableBudget : this.stateWholeBudget);
    this.building++;
    try {
      return this.evaluate(rel, free, tbl, undefined);
    } catch (err) {
      if (!(err instanceof ReasonerError || err instanceof RangeError)) throw err;
      // too large, too deep or unsafe without bound arguments: forget the unfinished tables, table per pattern
      this.stack.length = mark.stack;
      this.pending.length = mark.pending;
      TRAIL.length = mark.trail; // bindings of the abandoned frames, whose environments are gone
      for (const [t, r, p] of this.buildLog.splice(mark.log)) if (t.get(r, p)?.status !== COMPLETE) t.delete(r, p);
      this.perPattern.add(rel);
      this.wholePerState.delete(rel);
      return null;
    } finally {
      this.building--;
      if (this.building === 0) this.buildLog.length = 0;
      this.answersMade = made;
      this.maxAnswers = max;
    }
  }

  /**
   * The answers of a whole table that can match `pat`, through an index on its ground arguments. A table still
   * being built (a recursive relation) only grows, so its index catches up with the answers added since it was
   * last used; the fixpoint loop re-runs the rules until no table grows.
   */
  private lookup(e: Entry, pat: ITerm[]): Ground[][] {
    const mask = groundMask(pat);
    if (mask === 0) return e.answers;
    if (pat.length < 31 && mask === 2 ** pat.length - 1)
      return hasAnswer(e, pat as Ground[]) ? [pat as Ground[]] : EMPTY;
    return this.indexOf(e, mask).get(maskKey(pat, mask)) ?? EMPTY;
  }

  private indexOf(e: Entry, mask: number): Map<string, Ground[][]> {
    e.index ??= new Map();
    let ix = e.index.get(mask);
    if (!ix) {
      ix = { byKey: new Map(), n: 0 };
      e.index.set(mask, ix);
    }
    for (; ix.n < e.answers.length; ix.n++) {
      const t = e.answers[ix.n]!;
      const k = maskKey(t, mask);
      const l = ix.byKey.get(k);
      if (l) l.push(t);
      else ix.byKey.set(k, [t]);
    }
    return ix.byKey;
  }

  /**
   * The order a rule's body runs in, given the variables bound when it starts (cached per rule and bound set).
   * Literals answered from an index (`true`, `does`, a static relation's whole table) are joined most selective
   * first, by an estimate of the answers per call; any other literal (a relation tabled per call pattern) keeps
   * its written place and nothing is moved across it. not / distinct run as soon as their variables are bound.
   * The order changes how much is enumerated, not the answers (a conjunction of positive literals commutes).
   */
  private plan(r: IRule, env: Array<Ground | undefined>): IBody[] {
    let key: number | string = 0;
    if (r.nvars <= 30) {
      for (let i = 0; i < r.nvars; i++) if (env[i] !== undefined) key |= 1 << i;
    } else {
      key = '';
      for (let i = 0; i < r.nvars; i++) key += env[i] === undefined ? '0' : '1';
    }
    const cached = r.plans.get(key);
    if (cached) return cached;
    const bound = new Set<number>();
    for (let i = 0; i < r.nvars; i++) if (env[i] !== undefined) bound.add(i);
    const out: IBody[] = [];
    const neg = [...r.neg];
    const flush = () => {
      for (let i = 0; i < neg.length; i++)
        if (r.vars.get(neg[i]!)!.every((v) => bound.has(v))) {
          out.push(neg[i]!);
          neg.splice(i--, 1);
        }
    };
    flush();
    const rest = [...r.pos];
    while (rest.length) {
      let pick = 0;
      if (this.indexed(rest[0]!)) {
        let best = this.estimate(rest[0]!, bound);
        for (let j = 1; j < rest.length && this.indexed(rest[j]!); j++) {
          const e = this.estimate(rest[j]!, bound);
          if (e < best) {
            best = e;
            pick = j;
          }
        }
      }
      const l = rest.splice(pick, 1)[0]!;
      out.push(l);
      for (const v of r.vars.get(l)!) bound.add(v);
      flush();
    }
    out.push(...neg); // unsafe leftovers (lenient mode): evaluated with unbound variables as existential
    r.plans.set(key, out);
    return out;
  }

  /** Is the literal answered from an index: `true`, `does`, or a static relation whose whole table is built? */
  private indexed(l: IBody): boolean {
    if (l.k !== 'atom') return false;
    if (l.rel === 'true' || l.rel === 'does') return true;
    if (!this.staticRels.has(l.rel) || this.perPattern.has(l.rel)) return false;
    const e = this.staticTable.get(l.rel, freePattern(l.args.length));
    if (e) return e.status === COMPLETE;
    return this.whole(l.rel, l.args.length)?.status === COMPLETE;
  }

  /** Answers per call of an indexed literal with the variables in `bound` bound (0.5: a test of a ground call). */
  private estimate(l: IBody, bound: Set<number>): number {
    if (l.k !== 'atom') return 0.5;
    const ground = (t: ITerm): boolean =>
      typeof t === 'string' || (typeof t === 'number' ? bound.has(t) : t.args.every(ground));
    if (l.rel === 'true') {
      const a = l.args[0];
      if (a === undefined || ground(a)) return 0.5;
      if (typeof a !== 'object') return Math.max(4, this.state.length);
      // a state holds some facts of each functor; each ground argument narrows them
      const n = Math.max(4, this.stateByF.get(a.f)?.length ?? 0);
      const k = a.args.length;
      return n ** ((k - a.args.filter(ground).length) / k);
    }
    if (l.rel === 'does') return l.args.every(ground) ? 0.5 : l.args.some(ground) ? 1 : 4;
    const e = this.staticTable.get(l.rel, freePattern(l.args.length))!;
    let mask = 0;
    for (let i = 0; i < l.args.length && i < 31; i++) if (ground(l.args[i]!)) mask |= 1 << i;
    if (l.args.length < 31 && mask === 2 ** l.args.length - 1) return 0.5;
    if (mask === 0) return e.answers.length;
    return e.answers.length / Math.max(1, this.indexOf(e, mask).size);
  }

  /** The tabled evaluation of one subgoal (`e`: its entry in `tbl`, if any), with the fixpoint over its strongly
   * connected set. */
  private evaluate(rel: string, pat: ITerm[], tbl: CallTable, e: Entry | undefined): Entry {
    if (e && e.status === COMPLETE) return e;
    if (e && e.status === EVALUATING) {
      const top = this.stack[this.stack.length - 1]!;
      top.low = Math.min(top.low, e.depth);
      e.leader = true;
      return e;
    }
    if (!e) {
      e = { answers: [], keys: null, status: EVALUATING, depth: 0, low: 0, leader: false };
      tbl.set(rel, pat, e);
      if (this.building > 0) this.buildLog.push([tbl, rel, pat]);
    }
    e.status = EVALUATING;
    e.depth = this.stack.length;
    e.low = e.depth;
    const mark = this.pending.length;
    this.stack.push(e);
    const rules = this.byRel.get(rel) ?? [];
    const terms = this.terms;
    for (;;) {
      const before = this.changes;
      for (const r of rules) {
        if (r.head.length !== pat.length || !r.head.every((h, i) => compatible(h, pat[i]!))) continue;
        const env: Array<Ground | undefined> = new Array(r.nvars);
        // bind the rule's variables from the ground parts of the call pattern before running the body
        let ok = true;
        for (let i = 0; i < pat.length && ok; i++)
          if (isGroundI(pat[i]!)) ok = match(r.head[i]!, pat[i] as Ground, env, []);
        if (!ok) continue;
        this.body(this.plan(r, env), 0, env, () => {
          const tuple = r.head.map((h) => subst(h, env, null, terms) as Ground);
          if (!matchesPattern(pat, tuple)) return;
          if (hasAnswer(e!, tuple)) return;
          for (const t of tuple)
            if (typeof t === 'object' && t.d! > this.maxTermDepth)
              throw new ReasonerError(`function terms nest deeper than ${this.maxTermDepth} in '${rel}'`);
          if (++this.answersMade > this.maxAnswers)
            throw new ReasonerError(`more than ${this.maxAnswers} answers in one query (at '${rel}')`);
          e!.answers.push(tuple);
          e!.keys?.add(tuple);
          this.changes++;
        });
      }
      if (!(e.low === e.depth && e.leader && this.changes !== before)) break;
    }
    this.stack.pop();
    if (e.low === e.depth) {
      e.status = COMPLETE;
      for (let i = mark; i < this.pending.length; i++) this.pending[i]!.status = COMPLETE;
      this.pending.length = mark;
    } else {
      e.status = INCOMPLETE;
      this.pending.push(e);
      const parent = this.stack[this.stack.length - 1]!;
      parent.low = Math.min(parent.low, e.low);
    }
    return e;
  }

  private trueAnswers(p: ITerm): Ground[][] {
    if (typeof p === 'number') return this.stateTuples;
    if (isGroundI(p)) return this.stateSet.has(p as Ground) ? [[p as Ground]] : EMPTY;
    if (typeof p === 'string') return EMPTY;
    const all = this.stateByF.get(p.f) ?? EMPTY;
    const mask = groundMask(p.args);
    if (mask === 0) return all;
    const k0 = `${p.f}/${p.args.length}/${mask}`;
    let ix = this.trueIndex.get(k0);
    if (!ix) {
      ix = buildIndex(all, mask, p.args.length, (t) => (typeof t[0] === 'object' ? t[0].args : null));
      this.trueIndex.set(k0, ix);
    }
    return ix.get(maskKey(p.args, mask)) ?? EMPTY;
  }

  private body(plan: IBody[], i: number, env: Array<Ground | undefined>, k: () => void): void {
    if (i === plan.length) {
      k();
      return;
    }
    const l = plan[i]!;
    if (l.k === 'atom') {
      FRESH.reset();
      const pat = l.args.map((a) => subst(a, env, FRESH, this.terms));
      const answers = this.solve(l.rel, pat);
      // answers may grow while we iterate (recursive calls): take the length now, the fixpoint loop redoes it
      const n = answers.length;
      const mark = TRAIL.length;
      for (let j = 0; j < n; j++) {
        if (matchTuple(l.args, answers[j]!, env, TRAIL)) this.body(plan, i + 1, env, k);
        while (TRAIL.length > mark) env[TRAIL.pop()!] = undefined;
      }
    } else if (this.holds(l, env)) this.body(plan, i + 1, env, k);
  }

  private holds(l: IBody, env: Array<Ground | undefined>): boolean {
    if (l.k === 'distinct') {
      FRESH.reset();
      const a = subst(l.a, env, FRESH, this.terms);
      const b = subst(l.b, env, FRESH, this.terms);
      return a !== b && gtext(a) !== gtext(b);
    }
    if (l.k === 'not') return !this.holds(l.inner, env);
    FRESH.reset();
    const pat = l.args.map((a) => subst(a, env, FRESH, this.terms));
    return this.solve(l.rel, pat).some((t) => matchesPattern(pat, t));
  }
}

// ---- the state machine on top of the prover

export interface IState {
  fluents: Ground[];
  key: string;
}

const sortUnique = (ts: Ground[]): Ground[] => {
  const m = new Map<string, Ground>();
  for (const t of ts) m.set(gtext(t), t);
  return [...m.keys()].sort().map((k) => m.get(k)!);
};

function toGround(t: Term, terms: Terms): Ground {
  if (typeof t === 'string') return t;
  if (isCompound(t))
    return terms.mk(
      t.f,
      t.args.map((a) => toGround(a, terms)),
    );
  throw new IllegalMoveError(`a move must be ground, got variable ${t.v}`);
}

export class InterpreterMachine implements GameMachine<IState, Ground> {
  readonly kind = 'interpreter';
  /** the prover underneath (its limits can be set: `maxAnswers`, `wholeTableBudget`) */
  readonly prover: Prover;
  private readonly roleNames: string[];
  private ctxState: IState | null = null;
  private ctxMoves: ReadonlyArray<Ground> | null = null;

  constructor(roles: string[], rules: Rule[]) {
    this.prover = new Prover(rules);
    this.roleNames = roles;
  }

  private ctx(s: IState, moves: ReadonlyArray<Ground> | null): void {
    if (this.ctxState === s && this.ctxMoves === moves) return;
    const does = moves ? moves.map((m, i) => [this.roleNames[i]!, m]) : [];
    // the same state with another joint move keeps the tables that do not depend on `does`
    if (this.ctxState === s) this.prover.setMoves(does);
    else this.prover.setContext(s.fluents, does);
    this.ctxState = s;
    this.ctxMoves = moves;
  }

  roles(): string[] {
    return [...this.roleNames];
  }
  initialState(): IState {
    const empty: IState = { fluents: [], key: '' };
    this.ctx(empty, null);
    return this.mkState(this.prover.ask('init', [0]).map((t) => t[0]!));
  }
  private mkState(fs: Ground[]): IState {
    const fluents = sortUnique(fs);
    return { fluents, key: fluents.map(gtext).join(' ') };
  }
  legal(s: IState, r: number): Ground[] {
    this.ctx(s, null);
    const ms = this.prover.ask('legal', [this.roleNames[r]!, 0]).map((t) => t[1]!);
    return sortUnique(ms);
  }
  legalMoves(s: IState, role: string): string[] {
    return this.legal(s, this.roleIndex(role)).map(gtext);
  }
  next(s: IState, joint: ReadonlyArray<Ground>): IState {
    this.ctx(s, joint);
    const fs = this.prover.ask('next', [0]).map((t) => t[0]!);
    this.ctx(s, null);
    return this.mkState(fs);
  }
  /** Move texts or terms, one per role; IllegalMoveError for a wrong count or a text that is not a term. */
  private parseJoint(jointMoves: ReadonlyArray<string | Ground>): Ground[] {
    const joint = jointMoves.map((m) => {
      if (typeof m !== 'string') return m;
      const g = this.parseMove(m);
      if (g === undefined) throw new IllegalMoveError(`'${m}' is not a GDL term`);
      return g;
    });
    if (joint.length !== this.roleNames.length)
      throw new IllegalMoveError(`expected ${this.roleNames.length} moves (one per role), got ${joint.length}`);
    return joint;
  }
  nextState(s: IState, jointMoves: ReadonlyArray<string | Ground>): IState {
    return this.next(s, this.parseJoint(jointMoves));
  }
  percepts(s: IState, jointMoves: ReadonlyArray<string | Ground>, role: string): string[] {
    this.ctx(s, this.parseJoint(jointMoves));
    const out = this.prover.ask('sees', [this.roleNames[this.roleIndex(role)]!, 0]).map((t) => gtext(t[1]!));
    this.ctx(s, null);
    return [...new Set(out)].sort();
  }
  isTerminal(s: IState): boolean {
    this.ctx(s, null);
    return this.prover.ask('terminal', []).length > 0;
  }
  goalValues(s: IState, r: number): number[] {
    this.ctx(s, null);
    const vs = this.prover.ask('goal', [this.roleNames[r]!, 0]).map((t) => Number(t[1]));
    return [...new Set(vs.filter((v) => Number.isFinite(v)))].sort((a, b) => a - b);
  }
  goal(s: IState, role: string): number | null {
    const v = this.goalValues(s, this.roleIndex(role));
    return v.length ? v[v.length - 1]! : null;
  }
  fluents(s: IState): string[] {
    return s.fluents.map(gtext);
  }
  moveText(m: Ground): string {
    return gtext(m);
  }
  parseMove(text: string): Ground | undefined {
    try {
      return toGround(parseTerm(text), this.prover.terms);
    } catch {
      return undefined;
    }
  }
  stateKey(s: IState): string {
    return s.key;
  }
  private roleIndex(role: string): number {
    const i = this.roleNames.indexOf(role.toLowerCase());
    if (i < 0) throw new IllegalMoveError(`unknown role '${role}'; roles are ${this.roleNames.join(', ')}`);
    return i;
  }
}

/** Loads a sheet on the reference interpreter. */
export function loadInterpreter(kif: string, opts: LoadOptions = {}): InterpreterMachine {
  const g = prepareGame(kif, opts);
  return new InterpreterMachine(g.roles, g.rules);
}

export function interpreterFromRules(rules: Rule[], opts: LoadOptions = {}): InterpreterMachine {
  const g = prepareRules(rules, opts);
  return new InterpreterMachine(g.roles, g.rules);
}
