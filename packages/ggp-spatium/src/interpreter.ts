// The reference reasoner: top-down evaluation with tabling. Every subgoal (a relation and a call pattern, with
// variables renamed in order) gets a table of ground answers; a call that meets a subgoal still being evaluated
// marks the strongly connected set of subgoals, whose leader re-evaluates until no table grows (a fixpoint, as
// ggp-base's AimaProver recursion handler does). Tables of state-independent relations live for the whole game,
// the others for one (state, joint move) context. Plain and slow on purpose: it is what the compiler is checked
// against, and it runs the sheets the compiler refuses.
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
}
type Ground = string | ICompound;

type IBody =
  | { k: 'atom'; rel: string; args: ITerm[] }
  | { k: 'not'; inner: IBody }
  | { k: 'distinct'; a: ITerm; b: ITerm };

interface IRule {
  head: ITerm[];
  body: IBody[];
  nvars: number;
}

export function gtext(t: ITerm): string {
  if (typeof t === 'string') return t;
  if (typeof t === 'number') return `?${t}`;
  let s = `(${t.f}`;
  for (const a of t.args) s += ` ${gtext(a)}`;
  return `${s})`;
}

const isGroundI = (t: ITerm): boolean =>
  typeof t === 'string' ? true : typeof t === 'number' ? false : t.args.every(isGroundI);

const depth = (t: ITerm): number => (typeof t === 'object' ? 1 + Math.max(0, ...t.args.map(depth)) : 0);

function compileRule(r: Rule): IRule {
  const slots = new Map<string, number>();
  const tr = (t: Term): ITerm => {
    if (typeof t === 'string') return t;
    if (isVar(t)) {
      if (!slots.has(t.v)) slots.set(t.v, slots.size);
      return slots.get(t.v)!;
    }
    return { f: t.f, args: t.args.map(tr) };
  };
  const lit = (l: Literal): IBody => {
    if (l.kind === 'atom') return { k: 'atom', rel: l.atom.rel, args: l.atom.args.map(tr) };
    if (l.kind === 'not') return { k: 'not', inner: lit(l.lit) };
    if (l.kind === 'distinct') return { k: 'distinct', a: tr(l.a), b: tr(l.b) };
    throw new ReasonerError('or must be removed before compiling rules');
  };
  const head = r.head.args.map(tr);
  // positive literals in written order; not/distinct right after the literal that binds their last variable
  const pos = r.body.filter((l) => l.kind === 'atom').map(lit);
  const neg = r.body.filter((l) => l.kind !== 'atom').map(lit);
  const body: IBody[] = [];
  const bound = new Set<number>();
  const varsOf = (b: IBody, out: Set<number>): Set<number> => {
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
  };
  const flush = () => {
    for (let i = 0; i < neg.length; i++) {
      if ([...varsOf(neg[i]!, new Set())].every((v) => bound.has(v))) {
        body.push(neg[i]!);
        neg.splice(i--, 1);
      }
    }
  };
  flush();
  for (const p of pos) {
    body.push(p);
    varsOf(p, bound);
    flush();
  }
  body.push(...neg); // unsafe leftovers (lenient mode): evaluated with unbound variables as existential
  return { head, body, nvars: slots.size };
}

const COMPLETE = 0;
const EVALUATING = 1;
const INCOMPLETE = 2;

interface Entry {
  answers: Ground[][];
  keys: Set<string>;
  status: number;
  depth: number;
  low: number;
  leader: boolean;
}

/** Instantiates a rule-local term under `env`; unbound slots become pattern variables via `fresh`. */
function subst(t: ITerm, env: Array<Ground | undefined>, fresh: Map<number, number> | null): ITerm {
  if (typeof t === 'string') return t;
  if (typeof t === 'number') {
    const v = env[t];
    if (v !== undefined) return v;
    if (!fresh) throw new ReasonerError('unbound variable in a ground position');
    if (!fresh.has(t)) fresh.set(t, fresh.size);
    return fresh.get(t)!;
  }
  return { f: t.f, args: t.args.map((a) => subst(a, env, fresh)) };
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
    return v === g || (typeof v === 'object' && gtext(v) === gtext(g));
  }
  if (typeof g !== 'object' || g.f !== p.f || g.args.length !== p.args.length) return false;
  for (let i = 0; i < p.args.length; i++) if (!match(p.args[i]!, g.args[i] as Ground, env, trail)) return false;
  return true;
}

function matchTuple(pat: ITerm[], tuple: Ground[], env: Array<Ground | undefined>, trail: number[]): boolean {
  for (let i = 0; i < pat.length; i++) if (!match(pat[i]!, tuple[i]!, env, trail)) return false;
  return true;
}

/** Can a head argument (rule-local) match a call pattern argument? Only constants and functors are compared. */
function compatible(h: ITerm, c: ITerm): boolean {
  if (typeof h === 'number' || typeof c === 'number') return true;
  if (typeof h === 'string' || typeof c === 'string') return h === c;
  return h.f === c.f && h.args.length === c.args.length && h.args.every((a, i) => compatible(a, c.args[i]!));
}

export class Prover {
  private readonly byRel = new Map<string, IRule[]>();
  private readonly staticRels: Set<string>;
  private readonly staticTable = new Map<string, Entry>();
  private table = new Map<string, Entry>();
  private readonly stack: Entry[] = [];
  private readonly pending: Entry[] = [];
  private changes = 0;
  private state: Ground[] = [];
  private stateKeys = new Set<string>();
  private stateByF = new Map<string, Ground[]>();
  private moves: Ground[][] = [];
  /** guards against runaway function-term recursion */
  maxTermDepth = 40;
  maxAnswers = 2_000_000;
  private answersMade = 0;

  constructor(rules: Rule[]) {
    for (const r of rules) {
      if (!this.byRel.has(r.head.rel)) this.byRel.set(r.head.rel, []);
      this.byRel.get(r.head.rel)!.push(compileRule(r));
    }
    const g = dependencyGraph(rules);
    this.staticRels = new Set(
      [...g.keys()].filter((k) => {
        const seen = reachable(g, [k]);
        return !seen.has('true') && !seen.has('does');
      }),
    );
  }

  /** Sets the context: the state's fluents and the joint move as (role, move) pairs; clears per-state tables. */
  setContext(state: Ground[], moves: Ground[][]): void {
    this.state = state;
    this.moves = moves;
    this.stateKeys = new Set(state.map(gtext));
    this.stateByF = new Map();
    for (const t of state) {
      const f = typeof t === 'string' ? t : t.f;
      if (!this.stateByF.has(f)) this.stateByF.set(f, []);
      this.stateByF.get(f)!.push(t);
    }
    this.table = new Map();
  }

  /** All ground answers of `rel` matching `pattern` (pattern variables are numbers 0..). */
  ask(rel: string, pattern: ITerm[]): Ground[][] {
    this.answersMade = 0;
    return this.solve(rel, pattern);
  }

  private solve(rel: string, pat: ITerm[]): Ground[][] {
    if (rel === 'true') return this.trueAnswers(pat[0]!);
    if (rel === 'does') return this.edb(this.moves, pat);
    const key = `${rel}|${pat.map(gtext).join(' ')}`;
    const tbl = this.staticRels.has(rel) ? this.staticTable : this.table;
    let e = tbl.get(key);
    if (e && e.status === COMPLETE) return e.answers;
    if (e && e.status === EVALUATING) {
      const top = this.stack[this.stack.length - 1]!;
      top.low = Math.min(top.low, e.depth);
      e.leader = true;
      return e.answers;
    }
    if (!e) {
      e = { answers: [], keys: new Set(), status: EVALUATING, depth: 0, low: 0, leader: false };
      tbl.set(key, e);
    }
    e.status = EVALUATING;
    e.depth = this.stack.length;
    e.low = e.depth;
    const mark = this.pending.length;
    this.stack.push(e);
    const rules = this.byRel.get(rel) ?? [];
    for (;;) {
      const before = this.changes;
      for (const r of rules) {
        if (!r.head.every((h, i) => compatible(h, pat[i]!))) continue;
        const env: Array<Ground | undefined> = new Array(r.nvars);
        // bind the rule's variables from the ground parts of the call pattern before running the body
        let ok = true;
        for (let i = 0; i < pat.length && ok; i++)
          if (isGroundI(pat[i]!)) ok = match(r.head[i]!, pat[i] as Ground, env, []);
        if (!ok) continue;
        this.body(r, 0, env, () => {
          const tuple = r.head.map((h) => subst(h, env, null) as Ground);
          if (!matchTuple(pat, tuple, [], [])) return;
          const k = tuple.map(gtext).join(' ');
          if (e!.keys.has(k)) return;
          if (tuple.some((t) => depth(t) > this.maxTermDepth))
            throw new ReasonerError(`function terms nest deeper than ${this.maxTermDepth} in '${rel}'`);
          if (++this.answersMade > this.maxAnswers)
            throw new ReasonerError(`more than ${this.maxAnswers} answers in one query (at '${rel}')`);
          e!.keys.add(k);
          e!.answers.push(tuple);
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
    return e.answers;
  }

  private trueAnswers(p: ITerm): Ground[][] {
    if (typeof p === 'number') return this.state.map((f) => [f]);
    if (isGroundI(p)) return this.stateKeys.has(gtext(p)) ? [[p as Ground]] : [];
    const f = typeof p === 'string' ? p : p.f;
    const out: Ground[][] = [];
    for (const t of this.stateByF.get(f) ?? []) if (match(p, t, [], [])) out.push([t]);
    return out;
  }

  private edb(tuples: Ground[][], pat: ITerm[]): Ground[][] {
    const out: Ground[][] = [];
    for (const t of tuples) if (t.length === pat.length && matchTuple(pat, t, [], [])) out.push(t);
    return out;
  }

  private body(r: IRule, i: number, env: Array<Ground | undefined>, k: () => void): void {
    if (i === r.body.length) {
      k();
      return;
    }
    const l = r.body[i]!;
    if (l.k === 'atom') {
      const fresh = new Map<number, number>();
      const pat = l.args.map((a) => subst(a, env, fresh));
      const answers = this.solve(l.rel, pat);
      // answers may grow while we iterate (recursive calls): take the length now, the fixpoint loop redoes it
      const n = answers.length;
      const trail: number[] = [];
      for (let j = 0; j < n; j++) {
        if (matchTuple(l.args, answers[j]!, env, trail)) this.body(r, i + 1, env, k);
        for (const s of trail) env[s] = undefined;
        trail.length = 0;
      }
    } else if (this.holds(l, env)) this.body(r, i + 1, env, k);
  }

  private holds(l: IBody, env: Array<Ground | undefined>): boolean {
    if (l.k === 'distinct') {
      const fresh = new Map<number, number>();
      return gtext(subst(l.a, env, fresh)) !== gtext(subst(l.b, env, fresh));
    }
    if (l.k === 'not') return !this.holds(l.inner, env);
    const fresh = new Map<number, number>();
    const pat = l.args.map((a) => subst(a, env, fresh));
    return this.solve(l.rel, pat).length > 0;
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

function toGround(t: Term): Ground {
  if (typeof t === 'string') return t;
  if (isCompound(t)) return { f: t.f, args: t.args.map(toGround) };
  throw new IllegalMoveError(`a move must be ground, got variable ${t.v}`);
}

export class InterpreterMachine implements GameMachine<IState, Ground> {
  readonly kind = 'interpreter';
  private readonly prover: Prover;
  private readonly roleNames: string[];
  private ctxState: IState | null = null;
  private ctxMoves: ReadonlyArray<Ground> | null = null;

  constructor(roles: string[], rules: Rule[]) {
    this.prover = new Prover(rules);
    this.roleNames = roles;
  }

  private ctx(s: IState, moves: ReadonlyArray<Ground> | null): void {
    if (this.ctxState === s && this.ctxMoves === moves) return;
    this.prover.setContext(s.fluents, moves ? moves.map((m, i) => [this.roleNames[i]!, m]) : []);
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
      return toGround(parseTerm(text));
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
