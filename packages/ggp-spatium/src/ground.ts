// Grounded reasoner: for sheets whose ground program is small, a propositional network evaluated by
// propagating only changes, in the manner of Sancho's "forward dead-reckoning" propnet (Draper & Rose) and
// ggplib's trigger-based propagator, written from their published descriptions.
//
// Grounding: a relaxed fixpoint over the prepared rules. State-independent relations are computed exactly
// (stratified, `not` exact); state-dependent ones over-approximately: `true` ranges over every fluent reachable
// so far, `does` over every move legal so far, and `not` of a state-dependent literal is assumed to hold, which
// makes the computation monotone. It repeats until neither the fluents (from `next`) nor the moves (from `legal`)
// grow. Every rule whose head is state-dependent is then instantiated over the relaxed model: each instance is
// an AND of ground literals (static ones are folded away), each ground atom an OR of its instances.
//
// Evaluation: every node keeps a counter of satisfied inputs (a negated input is satisfied while false) and is
// true while the counter reaches its threshold (all inputs for an AND, one for an OR). Changing a fluent or a
// move adds ±1 to its targets' counters and recurses only into nodes whose value flips, so a ply of
// breakthrough touches about fifty counters, not the whole net (with the rewrites in buildNet). This is exact on
// acyclic nets, so positive recursion whose ground atoms form cycles is unrolled into layers first
// (unrollRecursion); sheets past the size budget are refused: `loadGame` then uses the relational compiler.
// States are bitsets over the reachable fluents; moves are ids. Checked against the interpreter by the
// conformance harness.
import { createHash } from 'node:crypto';
import { CompileError, IllegalMoveError } from './errors.js';
import {
  type Atom,
  atomVars,
  isVar,
  type Literal,
  literalVars,
  parseTerm,
  type Rule,
  rulesText,
  type Term,
} from './gdl.js';
import { LruCache } from './lru.js';
import { cpuNowMs, type GameMachine, type PlayoutResult, rng } from './machine.js';
import { type LoadOptions, type PreparedGame, prepareGame } from './prepare.js';
import { sccs } from './validate.js';

/** The sheet's ground program is too large for the grounded reasoner, or not acyclic (the compiler takes it). */
export class GroundingError extends CompileError {}
/** (the refusal that splitting large rules may cure: see groundNet) */
class TooManyInstances extends GroundingError {}

export interface GroundOptions {
  /** rows visited while grounding before giving up (default 4e6) */
  maxSteps?: number;
  /** nodes of the net before giving up (default 400,000) */
  maxNodes?: number;
  /**
   * recursive components of more atoms than this are evaluated in place, a fixpoint whenever the net settles,
   * instead of unrolled into layers (default: every component is unrolled while the layers fit `maxNodes`; see
   * unrollRecursion and InPlaceComp)
   */
  unrollMax?: number;
  /**
   * milliseconds of the process's CPU time spent grounding before giving up (default 5000): a refusal must leave
   * the startclock to the compiler; CPU time so that foreign load does not decide (other busy threads of this
   * process do count)
   */
  maxMs?: number;
  /**
   * a rule with more ground instances than this is split by variable elimination (`projectBodies`) and its
   * helpers grounded instead (default: none, and an eighth of `maxNodes`, 50,000, where the sheet has more than
   * `maxNodes` instances: hex, shogi_ctk; `Infinity`: never)
   */
  projectAbove?: number;
  /**
   * random plies the net is profiled on before it chooses which literals its nodes watch (default 2000; 0: no
   * watched literals; see watchNet)
   */
  watchPlies?: number;
  /** the share of the profile's edge visits that watches and demuxes must save to be kept (default 0.4) */
  watchMin?: number;
}

// ---- ground terms: interned ids ≥ 1; a constant has no arguments

class Terms {
  private ids = new Map<string, number>();
  fn: string[] = [''];
  args: number[][] = [[]];
  private texts: Array<string | undefined> = [''];
  intern(f: string, a: number[]): number {
    const k = a.length ? `${f}(${a.join(',')}` : f;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.fn.length;
      this.ids.set(k, id);
      this.fn.push(f);
      this.args.push(a);
      this.texts.push(undefined);
    }
    return id;
  }
  find(f: string, a: number[]): number {
    return this.ids.get(a.length ? `${f}(${a.join(',')}` : f) ?? 0;
  }
  text(id: number): string {
    let t = this.texts[id];
    if (t === undefined) {
      const a = this.args[id]!;
      t = a.length ? `(${this.fn[id]} ${a.map((x) => this.text(x)).join(' ')})` : this.fn[id]!;
      this.texts[id] = t;
    }
    return t;
  }
  /** the id of a ground term, or 0 if it was never built */
  lookup(t: Term): number {
    if (typeof t === 'string') return this.find(t, []);
    if (isVar(t)) return 0;
    const a: number[] = [];
    for (const x of t.args) {
      const id = this.lookup(x);
      if (!id) return 0;
      a.push(id);
    }
    return this.find(t.f, a);
  }
}

// ---- relation tables with hash indexes on bound-column masks

class Table {
  /** rows in insertion order; each carries its ordinal after the columns (semi-naive ranges use it) */
  rows: number[][] = [];
  private keys = new Set<string>();
  private idx = new Map<number, Map<string, number[][]>>();
  constructor(readonly arity: number) {}
  has(t: number[]): boolean {
    return this.keys.has(t.join(','));
  }
  add(t: number[]): boolean {
    const k = t.join(',');
    if (this.keys.has(k)) return false;
    this.keys.add(k);
    t.push(this.rows.length);
    this.rows.push(t);
    for (const [mask, m] of this.idx) {
      const kk = keyOf(t, mask);
      const l = m.get(kk);
      if (l) l.push(t);
      else m.set(kk, [t]);
    }
    return true;
  }
  lookup(mask: number, key: string): number[][] {
    let m = this.idx.get(mask);
    if (!m) {
      m = new Map();
      for (const t of this.rows) {
        const kk = keyOf(t, mask);
        const l = m.get(kk);
        if (l) l.push(t);
        else m.set(kk, [t]);
      }
      this.idx.set(mask, m);
    }
    return m.get(key) ?? EMPTY;
  }
}
const EMPTY: number[][] = [];
function keyOf(t: number[], mask: number): string {
  let k = '';
  for (let i = 0; i < 31 && mask >>> i; i++) if (mask & (1 << i)) k += `${t[i]},`;
  return k;
}

// ---- rules with numbered variables: a pattern is a constant id (> 0), a variable -(i+1), or a compound

type Pat = number | { f: string; a: Pat[] };
interface GLit {
  /** 'same': a negated distinct */
  kind: 'pos' | 'neg' | 'distinct' | 'same';
  rel: string; // relation key name/arity ('true/1', 'does/2'; 'true/1#cell/3' for a flattened fluent, below)
  /** a flattened `true`/`does` literal: the functor and arity of the fluent or move it stands for */
  fn?: { f: string; n: number };
  args: Pat[];
  vars: number[];
}
interface GRule {
  head: string;
  hargs: Pat[];
  lits: GLit[];
  nvars: number;
  src: Rule;
}

const patVars = (p: Pat, out: number[]) => {
  if (typeof p === 'number') {
    if (p < 0 && !out.includes(-p - 1)) out.push(-p - 1);
  } else for (const x of p.a) patVars(x, out);
  return out;
};

/** What the grounder hands to the net builder. */
interface GroundProgram {
  terms: Terms;
  roles: number[];
  fluents: number[]; // reachable fluents (base index = position)
  moves: number[][]; // per role: reachable moves
  init: number[];
  /** instances: head atom key → list of bodies; a body literal is [sign, atomKey] */
  instances: Map<string, Array<Array<[boolean, string]>>>;
  /** state-dependent relations (name/arity) */
  dynamic: Set<string>;
  /** whether a state-dependent relation is recursive (else no ground atoms form a cycle) */
  recursive: boolean;
  tables: Map<string, Table>;
}

const atomKey = (rel: string, t: number[]) => `${rel}|${t.join(',')}`;

/**
 * Body projection (variable elimination, as grounders such as gringo do it): a body variable that is not in the
 * head is eliminated by moving the literals that mention it into a helper rule whose head keeps only the
 * variables the rest of the rule (or the head) still needs. hex's transfer frame rule
 * `(next (connected ?k ?m ?n)) <= (transfer ?e) (true (connected ?e ?m ?n)) (true (step ?k))` then grounds as
 * 81² helper instances over (?m ?n) and 82·81 heads instead of 82·81·82 instances, and `transfer` reads a helper
 * over (?k ?x ?y) instead of joining every cell of a group with every neighbour of every move. Literal sets that
 * mention `does` are left in place: the net's move-set rewrites (buildNet) read whole bodies with their `does`.
 * Equivalent for stratified rules: a helper is defined only over literals of the rule it came from.
 */
export function projectBodies(
  rules: Rule[],
  opts: {
    /** relation names helpers must not take (filled with the helpers made) */
    taken?: Set<string>;
    /** whether a relation depends on the state; by default worked out from `rules` */
    dynamic?: (rel: string, arity: number) => boolean;
  } = {},
): Rule[] {
  const rels = opts.taken ?? new Set<string>();
  for (const r of rules) rels.add(r.head.rel);
  let fresh = 0;
  const name = (base: string) => {
    let n: string;
    do n = `${base}~proj${++fresh}`;
    while (rels.has(n));
    rels.add(n);
    return n;
  };
  const atomOf = (l: Literal): Atom | undefined =>
    l.kind === 'atom' ? l.atom : l.kind === 'not' ? atomOf(l.lit) : undefined;
  const relOf = (l: Literal) => atomOf(l)?.rel;
  // state-dependent relations: only literal sets with one of them are worth a helper (static joins are folded
  // away before the net is built)
  let isDynamic = opts.dynamic;
  if (!isDynamic) {
    const dynamic = new Set(['true', 'does']);
    for (let changed = true; changed; ) {
      changed = false;
      for (const r of rules)
        if (!dynamic.has(r.head.rel) && r.body.some((l) => dynamic.has(relOf(l) ?? ''))) {
          dynamic.add(r.head.rel);
          changed = true;
        }
    }
    isDynamic = (rel) => dynamic.has(rel);
  }
  const dyn = (l: Literal) => {
    const a = atomOf(l);
    return a !== undefined && isDynamic(a.rel, a.args.length);
  };
  const out: Rule[] = [];
  // a rule and its helpers stay where the rule was, so a sheet with nothing to project grounds as before
  const work: Rule[] = [];
  for (const r0 of rules) work.push(r0);
  work.reverse();
  while (work.length) {
    const r = work.pop()!;
    const lv = r.body.map((l) => literalVars(l));
    const head = atomVars(r.head);
    const cands = new Set<string>();
    for (const vs of lv) for (const v of vs) if (!head.has(v)) cands.add(v);
    let best: { s: number[]; iface: string[]; gone: number } | undefined;
    for (const v of cands) {
      const s = r.body.flatMap((_, i) => (lv[i]!.has(v) ? [i] : []));
      if (s.length === r.body.length || s.some((i) => relOf(r.body[i]!) === 'does')) continue;
      if (!s.some((i) => dyn(r.body[i]!))) continue;
      const inS = new Set<string>();
      const bound = new Set<string>();
      for (const i of s) {
        for (const x of lv[i]!) inS.add(x);
        const l = r.body[i]!;
        if (l.kind === 'atom') for (const x of lv[i]!) bound.add(x);
      }
      // the helper must be safe on its own: every variable of its `not`/`distinct` bound by its atoms
      if ([...inS].some((x) => !bound.has(x))) continue;
      const rest = new Set<string>(head);
      r.body.forEach((_, i) => {
        if (!s.includes(i)) for (const x of lv[i]!) rest.add(x);
      });
      const iface = [...inS].filter((x) => rest.has(x)).sort();
      // no helper wider than the widest literal it replaces: that would be a cross product (reversi's
      // "two cells of one colour" without the adjacency that joined them)
      if (iface.length > Math.max(...s.map((i) => lv[i]!.size))) continue;
      const gone = inS.size - iface.length;
      if (!best || s.length < best.s.length || (s.length === best.s.length && gone > best.gone))
        best = { s, iface, gone };
    }
    if (!best) {
      out.push(r);
      continue;
    }
    const aux = { rel: name(r.head.rel), args: best.iface.map((v) => ({ v })) };
    const sel = new Set(best.s);
    work.push({
      head: r.head,
      body: [...r.body.filter((_, i) => !sel.has(i)), { kind: 'atom', atom: aux }],
      pos: r.pos,
    });
    work.push({ head: aux, body: best.s.map((i) => r.body[i]!), pos: r.pos });
  }
  return out;
}

const TOO_MANY = new Error('too many instances');

function ground(g: PreparedGame, opts: GroundOptions): GroundProgram {
  const maxSteps = opts.maxSteps ?? 4e6;
  // CPU time, not wall time: on a loaded machine a wall-clock limit refused even breakthrough at random
  const cpuMs = cpuNowMs;
  const deadline = cpuMs() + (opts.maxMs ?? 5000);
  let steps = 0;
  const tick = () => {
    if (++steps > maxSteps) throw new GroundingError(`grounding exceeds ${maxSteps} steps`);
    if ((steps & 4095) === 0 && cpuMs() > deadline)
      throw new GroundingError(`grounding exceeds ${opts.maxMs ?? 5000} ms of CPU time`);
  };
  const T = new Terms();
  if (g.rules.some((r) => r.head.rel === 'sees'))
    throw new GroundingError('GDL-II percepts (sees) are left to the compiler');
  const key = (rel: string, n: number) => `${rel}/${n}`;
  // number variables per rule and turn terms into patterns
  const toPat = (t: Term, vars: Map<string, number>): Pat => {
    if (typeof t === 'string') return T.intern(t, []);
    if (isVar(t)) {
      let i = vars.get(t.v);
      if (i === undefined) {
        i = vars.size;
        vars.set(t.v, i);
      }
      return -(i + 1);
    }
    return { f: t.f, a: t.args.map((x) => toPat(x, vars)) };
  };
  const toGRule = (r: Rule): GRule => {
    const vars = new Map<string, number>();
    const lits: GLit[] = [];
    const lit = (l: Literal, neg: boolean) => {
      if (l.kind === 'atom') {
        let args = l.atom.args.map((a) => toPat(a, vars));
        const vs: number[] = [];
        for (const a of args) patVars(a, vs);
        let rel = key(l.atom.rel, l.atom.args.length);
        // `(true (cell ?m ?n red))` reads a table of `cell` fluents by their arguments, not the table of every
        // fluent by whole terms: the planner then sees its real size and its arguments get indexes (hex's
        // `(true (control ?role))` had scanned every one of its 7,052 fluents per legal move)
        const last = args[args.length - 1];
        if ((rel === 'true/1' || rel === 'does/2') && last !== undefined && typeof last !== 'number') {
          const fn = { f: last.f, n: last.a.length };
          rel = `${rel}#${fn.f}/${fn.n}`;
          args = [...args.slice(0, -1), ...last.a];
          lits.push({ kind: neg ? 'neg' : 'pos', rel, args, vars: vs, fn });
          return;
        }
        lits.push({ kind: neg ? 'neg' : 'pos', rel, args, vars: vs });
      } else if (l.kind === 'not') lit(l.lit, !neg);
      else if (l.kind === 'distinct') {
        const args = [toPat(l.a, vars), toPat(l.b, vars)];
        const vs: number[] = [];
        for (const a of args) patVars(a, vs);
        lits.push({ kind: neg ? 'same' : 'distinct', rel: '', args, vars: vs });
      } else throw new GroundingError('`or` should have been removed before grounding');
    };
    // positive literals first so that their variables are numbered first (not needed for correctness)
    for (const l of r.body) lit(l, false);
    const hargs = r.head.args.map((a) => toPat(a, vars));
    return { head: key(r.head.rel, r.head.args.length), hargs, lits, nvars: vars.size, src: r };
  };
  const rules = g.rules.map(toGRule);
  // relation classes: dynamic = depends on true/does
  const isInput = (rel: string) => rel.startsWith('true/1') || rel.startsWith('does/2');
  const deps = new Map<string, Set<string>>();
  for (const r of rules) {
    let s = deps.get(r.head);
    if (!s) deps.set(r.head, (s = new Set()));
    for (const l of r.lits) if (l.rel) s.add(l.rel);
  }
  const dynamic = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const [h, s] of deps)
      if (!dynamic.has(h) && [...s].some((x) => isInput(x) || dynamic.has(x))) {
        dynamic.add(h);
        changed = true;
      }
  }
  const tables = new Map<string, Table>();
  const tab = (k: string) => {
    let t = tables.get(k);
    if (!t) tables.set(k, (t = new Table(Number(k.slice(k.lastIndexOf('/') + 1)))));
    return t;
  };
  const isStatic = (rel: string) => !isInput(rel) && !dynamic.has(rel);
  const TRUE = tab('true/1');
  const DOES = tab('does/2');
  /** adds a fluent (or a role's move) to the whole-term table and to its functor's flattened table */
  const addInput = (whole: Table, rel: string, lead: number[], t: number): boolean => {
    if (!whole.add([...lead, t])) return false;
    const a = T.args[t]!;
    if (a.length) tab(`${rel}#${T.fn[t]}/${a.length}`).add([...lead, ...a]);
    return true;
  };

  // build a bound pattern's id (interning it: a term built here may appear in a table later)
  const build = (p: Pat, env: Int32Array): number => {
    if (typeof p === 'number') return p > 0 ? p : env[-p - 1]!;
    return T.intern(
      p.f,
      p.a.map((x) => build(x, env)),
    );
  };
  const match = (p: Pat, id: number, env: Int32Array, trail: number[]): boolean => {
    if (typeof p === 'number') {
      if (p > 0) return p === id;
      const v = -p - 1;
      const cur = env[v]!;
      if (cur) return cur === id;
      env[v] = id;
      trail.push(v);
      return true;
    }
    const a = T.args[id]!;
    if (T.fn[id] !== p.f || a.length !== p.a.length) return false;
    for (let i = 0; i < a.length; i++) if (!match(p.a[i]!, a[i]!, env, trail)) return false;
    return true;
  };

  /**
   * Literal order: greedily the positive literal with the fewest expected rows (the delta literal of a
   * semi-naive step first), tests as soon as their variables are bound.
   */
  const plan = (r: GRule, first: GLit | undefined): Array<{ l: GLit; mask: number }> => {
    const out: Array<{ l: GLit; mask: number }> = [];
    const bound = new Set<number>();
    const pos = r.lits.filter((l) => l.kind === 'pos');
    const tests = r.lits.filter((l) => l.kind !== 'pos');
    const placeTests = () => {
      for (let i = 0; i < tests.length; i++)
        if (tests[i]!.vars.every((v) => bound.has(v))) {
          out.push({ l: tests[i]!, mask: 0 });
          tests.splice(i--, 1);
        }
    };
    const boundArg = (a: Pat) => patVars(a, []).every((v) => bound.has(v));
    placeTests();
    while (pos.length) {
      let best = 0;
      let bc = Number.POSITIVE_INFINITY;
      pos.forEach((l, i) => {
        const n = Math.max(1, tables.get(l.rel)?.rows.length ?? 0);
        const nb = l.args.filter(boundArg).length;
        const c = l === first ? -1 : nb === l.args.length ? 0 : n ** ((l.args.length - nb) / l.args.length);
        if (c < bc) {
          bc = c;
          best = i;
        }
      });
      const l = pos.splice(best, 1)[0]!;
      let mask = 0;
      // (no index on columns past 30: masks are 31-bit)
      l.args.forEach((a, i) => {
        if (i < 30 && boundArg(a)) mask |= 1 << i;
      });
      out.push({ l, mask });
      for (const v of l.vars) bound.add(v);
      placeTests();
    }
    if (tests.length) throw new GroundingError(`unsafe rule ${rulesText([r.src])}`);
    return out;
  };

  /**
   * Enumerates the bindings of a rule's body over the tables; `exactNeg` decides which negative literals are
   * tested (the others are assumed to hold). `range` limits a positive literal to rows with ordinals in
   * [lo, hi) (semi-naive evaluation); `first` is planned first.
   */
  const solve = (
    r: GRule,
    exactNeg: (rel: string) => boolean,
    emit: (env: Int32Array) => void,
    range?: Map<GLit, [number, number]>,
    first?: GLit,
  ) => {
    const order = plan(r, first);
    const env = new Int32Array(r.nvars);
    const trail: number[] = [];
    const go = (i: number): void => {
      if (i === order.length) {
        tick();
        emit(env);
        return;
      }
      const { l, mask } = order[i]!;
      if (l.kind === 'distinct' || l.kind === 'same') {
        if ((build(l.args[0]!, env) !== build(l.args[1]!, env)) === (l.kind === 'distinct')) go(i + 1);
        return;
      }
      if (l.kind === 'neg') {
        tick();
        if (!exactNeg(l.rel) || !tables.get(l.rel)?.has(l.args.map((a) => build(a, env)))) go(i + 1);
        return;
      }
      const t = tables.get(l.rel);
      if (!t) return;
      let rows: number[][];
      if (mask === 0) rows = t.rows;
      else {
        let k = '';
        for (let c = 0; c < l.args.length; c++) if (mask & (1 << c)) k += `${build(l.args[c]!, env)},`;
        rows = t.lookup(mask, k);
      }
      const rg = range?.get(l);
      const lo = rg ? rg[0] : 0;
      const hi = rg ? rg[1] : Number.POSITIVE_INFINITY;
      const na = l.args.length;
      // rows may grow while we iterate (recursive relations): the fixpoint loop catches up
      for (let j = 0, n = rows.length; j < n; j++) {
        const row = rows[j]!;
        const ord = row[na]!;
        if (ord < lo) continue;
        if (ord >= hi) break;
        tick();
        const t0 = trail.length;
        let ok = true;
        for (let c = 0; c < na && ok; c++) if (!(mask & (1 << c))) ok = match(l.args[c]!, row[c]!, env, trail);
        if (ok) go(i + 1);
        while (trail.length > t0) env[trail.pop()!] = 0;
      }
    };
    go(0);
  };

  /** rows of each positive literal's table already joined (semi-naive bookkeeping), per rule */
  const seenRows = new Map<GRule, number[]>();
  const evalRule = (r: GRule, add: (env: Int32Array) => void) => {
    const pos = r.lits.filter((l) => l.kind === 'pos');
    const now = pos.map((l) => tables.get(l.rel)?.rows.length ?? 0);
    const seen = seenRows.get(r);
    seenRows.set(r, now);
    if (!seen) {
      solve(r, isStatic, add);
      return;
    }
    // new bindings use at least one new row: literal i new, those before it old, those after it any
    pos.forEach((li, i) => {
      if (now[i]! <= seen[i]!) return;
      const range = new Map<GLit, [number, number]>();
      pos.forEach((lj, j) => {
        range.set(lj, j < i ? [0, seen[j]!] : j === i ? [seen[i]!, now[i]!] : [0, now[j]!]);
      });
      solve(r, isStatic, add, range, li);
    });
  };

  const rulesOf = new Map<string, GRule[]>();
  for (const r of rules) rulesOf.set(r.head, [...(rulesOf.get(r.head) ?? []), r]);
  const rels = [...new Set([...rules.map((r) => r.head)])];
  const comps = sccs(rels, (n) => [...(deps.get(n) ?? [])].filter((x) => rulesOf.has(x)));
  const evalComp = (c: string[]): boolean => {
    let any = false;
    for (let changed = true; changed; ) {
      changed = false;
      for (const h of c)
        for (const r of rulesOf.get(h) ?? [])
          evalRule(r, (env) => {
            if (tab(h).add(r.hargs.map((p) => build(p, env)))) changed = any = true;
          });
    }
    return any;
  };
  for (const c of comps) if (!dynamic.has(c[0]!)) evalComp(c);
  const roles = g.roles.map((r) => T.intern(r, []));
  const init = tab('init/1').rows.map((t) => t[0]!);
  for (const f of init) addInput(TRUE, 'true/1', [], f);
  const dynComps = comps.filter((c) => dynamic.has(c[0]!));
  // ground atoms can form cycles only where state-dependent relations are recursive (splitting a rule later adds
  // helpers over its own literals, no recursion): elsewhere buildNet skips the atom-level search for them
  const recursive = dynComps.some(
    (c) =>
      c.length > 1 || (rulesOf.get(c[0]!) ?? []).some((r) => r.lits.some((l) => l.kind === 'pos' && l.rel === c[0])),
  );
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of dynComps) if (evalComp(c)) grew = true;
    for (const [f] of tab('next/1').rows) if (addInput(TRUE, 'true/1', [], f!)) grew = true;
    for (const [r, m] of tab('legal/2').rows) if (addInput(DOES, 'does/2', [r!], m!)) grew = true;
  }
  // instances of state-dependent rules; static literals are satisfied by construction and dropped
  const instances = new Map<string, Array<Array<[boolean, string]>>>();
  const seen = new Set<string>();
  let bodies = 0;
  const maxBodies = opts.maxNodes ?? 400_000;
  /** adds the instances of `r` */
  const instantiate = (r: GRule) => {
    const dyn = r.lits.filter((l) => l.rel && !isStatic(l.rel));
    solve(r, isStatic, (env) => {
      const head = atomKey(
        r.head,
        r.hargs.map((p) => build(p, env)),
      );
      const body: Array<[boolean, string]> = dyn.map((l) => {
        const t = l.args.map((a) => build(a, env));
        if (!l.fn) return [l.kind === 'pos', atomKey(l.rel, t)];
        // a flattened literal stands for the whole-term atom the net knows
        const k = t.length - l.fn.n;
        return [
          l.kind === 'pos',
          atomKey(l.rel.slice(0, l.rel.indexOf('#')), [...t.slice(0, k), T.intern(l.fn.f, t.slice(k))]),
        ];
      });
      const k = `${head}<=${body.map(([s, a]) => (s ? a : `~${a}`)).join(';')}`;
      if (seen.has(k)) return;
      seen.add(k);
      // (the counts below make this a safety net: they bound the instances before any is built)
      if (++bodies > maxBodies) throw new TooManyInstances(`the ground rules have more than ${maxBodies} instances`);
      const l = instances.get(head);
      if (l) l.push(body);
      else instances.set(head, [body]);
    });
  };
  /**
   * Solutions of `r`'s body over the relaxed model, counted up to `cap` + 1 without building keys (hex's refusal
   * took 3 s of CPU building 400,000 instances, 0.5 s counting them). A count bounds the instances from above
   * (equal ones are kept once). Its rows are not charged to the step budget (the instances' are).
   */
  const count = (r: GRule, cap: number): number => {
    let n = 0;
    const s0 = steps;
    try {
      solve(r, isStatic, () => {
        if (++n > cap) throw TOO_MANY;
      });
    } catch (e) {
      if (e !== TOO_MANY) throw e;
    }
    steps = s0;
    return n;
  };
  const dynRules = rules.filter((r) => dynamic.has(r.head));
  const tooMany = (how: string) => new TooManyInstances(`the ground rules have more than ${maxBodies} instances${how}`);
  // A rule with more instances than `projectAbove` is split by variable elimination (projectBodies) and its
  // helpers are evaluated over the relaxed model; only such rules, since a split adds a layer of OR nodes that
  // made smaller nets slower (connectFour's lines 1.5×, pentago's 1.4× when every rule was split). The split
  // program is counted before any instance is built, so that a sheet it does not bring within the node budget
  // is refused at the cost of counts (endgame's frame rules read `does` and cannot be split: its split grounding
  // had built 340,000 instances and run past the step budget, 3.3 s of CPU after the refusal it would repeat).
  const taken = new Set(rules.map((r) => r.src.head.rel));
  const splitPlan = (projectAbove: number, known: Map<GRule, number>): GRule[] => {
    const plan: GRule[] = [];
    let total = 0;
    const add = (r: GRule, n: number) => {
      total += n;
      if (total > maxBodies) throw tooMany(` with the rules above ${projectAbove} split`);
      plan.push(r);
    };
    for (const r of dynRules) {
      // (a count past max(projectAbove, what is left) decides as well as the exact one: split, else refused)
      const n = known.get(r) ?? count(r, Math.max(projectAbove, maxBodies - total));
      if (n <= projectAbove) {
        add(r, n);
        continue;
      }
      const split = projectBodies([r.src], { taken, dynamic: (rel, n) => !isStatic(key(rel, n)) });
      if (split.length === 1 && split[0] === r.src) {
        add(r, n); // nothing to eliminate (its variables meet in a `does` literal)
        continue;
      }
      for (const pr of split) {
        const gr = toGRule(pr);
        if (gr.head !== r.head) {
          // a helper: its relaxed table over the relaxed model (its body reads only relations complete by now)
          if (gr.lits.some((l) => l.rel && !isStatic(l.rel))) dynamic.add(gr.head);
          solve(gr, isStatic, (env) => {
            tab(gr.head).add(gr.hargs.map((p) => build(p, env)));
          });
          if (!dynamic.has(gr.head)) continue;
        }
        add(gr, count(gr, maxBodies - total));
      }
    }
    return plan;
  };
  let todo: GRule[];
  const projectAbove = opts.projectAbove ?? Number.POSITIVE_INFINITY;
  if (projectAbove !== Number.POSITIVE_INFINITY) todo = splitPlan(projectAbove, new Map());
  else {
    // every rule counted first, nothing built until the whole program fits
    const known = new Map<GRule, number>();
    let total = 0;
    for (const r of dynRules) {
      const n = count(r, maxBodies - total);
      total += n;
      if (total > maxBodies) break;
      known.set(r, n);
    }
    if (total <= maxBodies) todo = dynRules;
    else if (opts.projectAbove !== undefined) throw tooMany('');
    // Too many instances and no split asked for: the rules with more than an eighth of the budget (50,000) are
    // split, over the same relaxed model (its fixpoint is most of a refusal's time). Hex grounds so (74,786
    // nodes), and its net, with the watched literals and demultiplexers of watchNet, runs ≈1.9× the compiled
    // reasoner.
    else todo = splitPlan(Math.floor(maxBodies / 8), known);
  }
  for (const r of todo) instantiate(r);
  const moves = roles.map((r) => DOES.rows.filter((t) => t[0] === r).map((t) => t[1]!));
  return { terms: T, roles, fluents: TRUE.rows.map((t) => t[0]!), moves, init, instances, dynamic, recursive, tables };
}

// ---- the net

/** Immutable description of a net, shared by every machine built from it (cached per rule sheet). */
interface Net {
  terms: Terms;
  roleNames: string[];
  roles: number[];
  nNodes: number;
  need: Int32Array;
  /** outgoing edges, CSR: target * 4 + (2 if the target watches a literal) + (1 if negated) */
  outStart: Int32Array;
  out: Int32Array;
  /**
   * node → the one input literal it watches (src * 2 + negated; -1: none): that input is not in its counter and
   * has no edge to it; the node sits in the source's armed list while its counter is one short (see watchNet)
   */
  watch: Int32Array;
  /** source → its region of armed-list slots (CSR over sources: how many nodes watch it) */
  armStart: Int32Array;
  /** demultiplexers (see applyDemux): node → its group (-1: none) and index there; each group's member slots */
  memberGroup: Int32Array;
  memberIdx: Int32Array;
  groupStart: Int32Array;
  /** per family: its X literal, its group, its outputs by member index (CSR; -1: none) */
  famX: Int32Array;
  famGroup: Int32Array;
  famOutStart: Int32Array;
  famOut: Int32Array;
  /** per group: slots for its families (CSR); per node: the families whose X it is (CSR) */
  gFamStart: Int32Array;
  xFamStart: Int32Array;
  xFam: Int32Array;
  /** initial values with every fluent and move false */
  value0: Uint8Array;
  count0: Int32Array;
  fluents: Int32Array; // base index → fluent term id
  fluentIndex: Map<number, number>;
  baseNode: Int32Array; // base index → node
  nextNode: Int32Array; // base index → node of (next f), or -1
  moveIds: Int32Array[]; // per role: legal entry → move term id
  legalNode: Int32Array[]; // per role: legal entry → node (or -1 when the move is never legal)
  inputNode: Array<Map<number, number>>; // per role: move term id → node
  inputOf: Int32Array[]; // the same as arrays indexed by move term id (-1: none)
  /** base and next nodes of fluent i → i + 1: their flips keep "next differs from now" as a bitset */
  diffIdx: Int32Array;
  diff0: Uint32Array;
  /** input node → its class + 1 (0: none); a class's targets (node * 2 + negated) */
  inputClass: Int32Array;
  classTargets: Int32Array[];
  /** node → legal entry + 1 (0: not a legal node); the role is legalRole[node] */
  legalEntry: Int32Array;
  legalRole: Int32Array;
  /** per role: up to two literals (node * 2 + negated) taken out of legal entries (see buildNet) */
  gates: Int32Array[];
  /** per role: legal entry → the gates it needs (bit i: gates[r][i]) */
  entryClass: Uint8Array[];
  terminalNode: number; // -1: never terminal
  /** goal-only nodes in topological order, with their inputs (src * 2 + negated) as CSR */
  lazyOrder: Int32Array;
  lazyInStart: Int32Array;
  lazyIn: Int32Array;
  goalNodes: Int32Array[];
  goalValues: Int32Array[];
  init: Uint32Array;
  words: number;
  /** atoms added by unrolling recursive components into layers (0: the ground rules had no cycle) */
  unrolled: number;
  /** layers of the largest unrolled component (its atoms; 0: none) */
  unrolledDepth: number;
  /** recursive components evaluated in place, dependencies first */
  comps: InPlaceComp[];
}

/**
 * A recursive component evaluated in place: its atoms are nodes without inputs, set from a least fixpoint the
 * machine computes whenever the net settles (after a state loads, after moves are set or taken back). Bodies:
 * `head` (an atom's index), the literals from outside the component (`ext`, node * 2 + negated, CSR by
 * `extStart`) and the atoms of the component it needs (`int`, indices, CSR by `intStart`); `seeds` are the bodies
 * that need no atom of the component, `cons` (CSR by `consStart`) the bodies that need each atom.
 */
export interface InPlaceComp {
  atoms: Int32Array;
  head: Int32Array;
  extStart: Int32Array;
  ext: Int32Array;
  intStart: Int32Array;
  int: Int32Array;
  seeds: Int32Array;
  consStart: Int32Array;
  cons: Int32Array;
  /** whether it reads a move, directly or through other nodes (it settles again when moves change) */
  readsMoves: boolean;
}

/**
 * Positive recursion in the ground rules (linesOfAction's connected groups, atariGo's liberties through a chain)
 * makes cycles of atoms, which a counter net cannot evaluate: a loop would keep itself true after its support
 * went. Each strongly connected component S of the ground atoms is unrolled into |S| layers, layer j holding what
 * the naive fixpoint derives in j + 1 rounds within S (layer 0: the bodies with no atom of S; layer j: every body,
 * its atoms of S read from layer j − 1). The rounds grow monotonically and each one before the fixpoint adds an
 * atom of S, so layer |S| − 1 — kept under the atoms' own names, which the rest of the net reads — is the least
 * fixpoint. No negation enters a component (the rules are stratified). The net grows with |S| × the component's
 * bodies: where that would take more than a quarter of `maxBodies` (or a component has more than `unrollMax`
 * atoms), components are left to be evaluated in place instead, and returned.
 */
function unrollRecursion(
  inst: GroundProgram['instances'],
  maxBodies: number,
  unrollMax = Number.POSITIVE_INFINITY,
): {
  added: number;
  depth: number;
  inPlace: Array<{ atoms: string[]; bodies: Array<Array<Array<[boolean, string]>>> }>;
} {
  const inS = (h: string) => inst.has(h);
  const comps = sccs(inst.keys(), function* (h) {
    for (const body of inst.get(h)!) for (const [sign, a] of body) if (sign && inS(a)) yield a;
  });
  let added = 0;
  let depth = 0;
  const inPlace: Array<{ atoms: string[]; bodies: Array<Array<Array<[boolean, string]>>> }> = [];
  const recursive = comps.filter(
    (c) => c.length > 1 || inst.get(c[0]!)!.some((b) => b.some(([sign, a]) => sign && a === c[0])),
  );
  // Unrolling costs |S| × the component's bodies. Every component is unrolled while the total stays within a
  // quarter of the budget (amazonsTorus: 800 components, 88,000 layered bodies); past it every one is evaluated in
  // place (linesOfAction: 2 × 64 components of 64 atoms, 4.7 million), so the nodes left fit the rest of the net.
  const cost = (c: string[]) => c.length * c.reduce((x, a) => x + inst.get(a)!.length, 0);
  const unrollAll = recursive.reduce((x, c) => x + cost(c), 0) <= maxBodies / 4;
  for (const comp of recursive) {
    const S = new Set(comp);
    const bodies = comp.map((a) => inst.get(a)!);
    const n = comp.length;
    for (const own of bodies)
      for (const b of own)
        for (const [sign, x] of b)
          if (!sign && S.has(x)) throw new GroundingError(`negation within recursion at ${x.split('|')[0]}`);
    if (!unrollAll || n > unrollMax) {
      // the atoms stay, without bodies, as nodes the machine sets from the component's fixpoint (InPlaceComp)
      inPlace.push({ atoms: comp, bodies });
      for (const a of comp) inst.set(a, []);
      continue;
    }
    const layer = (a: string, j: number) => (j === n - 1 ? a : `${a}\u0001${j}`);
    added += n * (n - 1);
    depth = Math.max(depth, n);
    comp.forEach((a, i) => {
      const own = bodies[i]!;
      const rec = own.filter((b) => b.some(([, x]) => S.has(x)));
      const base = own.filter((b) => !b.some(([, x]) => S.has(x)));
      // layer 0's bodies (those without atoms of S) recur in every layer: read through layer 0's atom where that
      // is cheaper than building them again (more than one body, or one of several literals: atariGo's liberty
      // "a neighbour is empty", ×2.2 its net's playouts), else as they are
      const again = base.length > 1 || (base.length === 1 && base[0]!.length > 1) ? [[[true, layer(a, 0)]]] : base;
      for (let j = 0; j < n; j++)
        inst.set(
          layer(a, j),
          j === 0
            ? base
            : [
                ...(again as Array<Array<[boolean, string]>>),
                ...rec.map((b) => b.map(([sign, x]): [boolean, string] => [sign, S.has(x) ? layer(x, j - 1) : x])),
              ],
        );
    });
  }
  return { added, depth, inPlace };
}

// bounded: nets of large sheets are tens of megabytes (see lru.ts)
const netCache = new LruCache<string, Net | GroundingError>(16);

function buildNet(g: PreparedGame, opts: GroundOptions): Net {
  const maxNodes = opts.maxNodes ?? 400_000;
  const gp = ground(g, opts);
  const {
    added: unrolled,
    depth: unrolledDepth,
    inPlace,
  } = gp.recursive
    ? unrollRecursion(gp.instances, maxNodes, opts.unrollMax ?? Number.POSITIVE_INFINITY)
    : { added: 0, depth: 0, inPlace: [] };
  const T = gp.terms;
  const nodeOf = new Map<string, number>();
  const need: number[] = [];
  const inputs: number[][] = []; // src * 2 + neg
  const newNode = (n: number) => {
    if (need.length >= maxNodes) throw new GroundingError(`the ground net exceeds ${maxNodes} nodes`);
    need.push(n);
    inputs.push([]);
    return need.length - 1;
  };
  const fluents = Int32Array.from(gp.fluents);
  const fluentIndex = new Map<number, number>();
  const baseNode = new Int32Array(fluents.length);
  fluents.forEach((f, i) => {
    fluentIndex.set(f, i);
    baseNode[i] = newNode(1);
    nodeOf.set(atomKey('true/1', [f]), baseNode[i]!);
  });
  const inputNode = gp.roles.map(() => new Map<number, number>());
  gp.roles.forEach((r, ri) => {
    for (const m of gp.moves[ri]!) {
      const n = newNode(1);
      inputNode[ri]!.set(m, n);
      nodeOf.set(atomKey('does/2', [r, m]), n);
    }
  });
  // derived atoms: an OR node each; static atoms of game relations are constant-true nodes
  for (const h of gp.instances.keys()) nodeOf.set(h, newNode(1));
  // in-place components in node terms; their atoms and the nodes they read are kept eager and unmerged below
  const compRead = new Set<number>();
  const comps: InPlaceComp[] = inPlace.map(({ atoms, bodies }) => {
    const index = new Map(atoms.map((a, i) => [a, i]));
    const head: number[] = [];
    const extStart = [0];
    const ext: number[] = [];
    const intStart = [0];
    const int: number[] = [];
    bodies.forEach((own, i) => {
      for (const b of own) {
        const e: number[] = [];
        const ins = new Set<number>();
        let possible = true;
        for (const [sign, a] of b) {
          const k = index.get(a);
          if (k !== undefined) ins.add(k);
          else {
            const x = nodeOf.get(a);
            // (an atom with no instance is always false)
            if (x === undefined) possible &&= !sign;
            else e.push(x * 2 + (sign ? 0 : 1));
          }
        }
        if (!possible) continue;
        head.push(i);
        ext.push(...e);
        extStart.push(ext.length);
        int.push(...ins);
        intStart.push(int.length);
      }
    });
    const nb = head.length;
    const seeds: number[] = [];
    const consCount = new Int32Array(atoms.length + 1);
    for (let b = 0; b < nb; b++) {
      if (intStart[b] === intStart[b + 1]) seeds.push(b);
      for (let k = intStart[b]!; k < intStart[b + 1]!; k++) consCount[int[k]! + 1]!++;
    }
    for (let i = 0; i < atoms.length; i++) consCount[i + 1] = consCount[i + 1]! + consCount[i]!;
    const cons = new Int32Array(consCount[atoms.length]!);
    const fillC = consCount.slice(0, atoms.length);
    for (let b = 0; b < nb; b++) for (let k = intStart[b]!; k < intStart[b + 1]!; k++) cons[fillC[int[k]!]!++] = b;
    const nodes = Int32Array.from(atoms, (a) => nodeOf.get(a)!);
    for (const x of nodes) compRead.add(x);
    for (const e of ext) compRead.add(e >> 1);
    return {
      atoms: nodes,
      head: Int32Array.from(head),
      extStart: Int32Array.from(extStart),
      ext: Int32Array.from(ext),
      intStart: Int32Array.from(intStart),
      int: Int32Array.from(int),
      seeds: Int32Array.from(seeds),
      consStart: consCount,
      cons,
      readsMoves: false,
    };
  });
  const doesOf = new Map<number, [number, number]>(); // does node → [role index, move id]
  gp.roles.forEach((_, ri) => {
    for (const [m, n] of inputNode[ri]!) doesOf.set(n, [ri, m]);
  });
  const addBody = (or: number, lits: number[]) => {
    if (lits.length === 0) need[or] = 0;
    else if (lits.length === 1) inputs[or]!.push(lits[0]!);
    else {
      const and = newNode(lits.length);
      inputs[and]!.push(...lits);
      inputs[or]!.push(and * 2);
    }
  };
  const moveSets = new Map<string, number>();
  const moveSet = (k: number, ns: number[]) => {
    ns.sort((x, y) => x - y);
    const key = `${k}:${ns.join(',')}`;
    let n = moveSets.get(key);
    if (n === undefined) {
      n = newNode(k);
      for (const x of ns) inputs[n]!.push(x * 2);
      moveSets.set(key, n);
    }
    return n;
  };
  for (const [h, bodies] of gp.instances) {
    const or = nodeOf.get(h)!;
    // Bodies equal but for one positive `does` are grouped: (rest) ∧ OR(those does). Every role makes exactly
    // one move per step, so when the group covers most of its roles' moves (frame rules: "any move but those
    // touching this cell") the OR is written over the other moves C instead: it holds unless every role of the
    // group plays a move in C, a threshold node (count of C's inputs ≥ number of roles) negated. A few edges per
    // move instead of one per cell, and a pass (noop) changes counters but flips nothing.
    const groups = new Map<string, { rest: number[]; moves: Set<number> }>();
    for (const body of bodies) {
      const lits: number[] = [];
      let possible = true;
      for (const [sign, a] of body) {
        const n = nodeOf.get(a);
        if (n === undefined) {
          // an atom with no instance is always false
          if (sign) possible = false;
          continue;
        }
        lits.push(n * 2 + (sign ? 0 : 1));
      }
      if (!possible) continue;
      const does = lits.filter((l) => !(l & 1) && doesOf.has(l >> 1));
      if (does.length !== 1) {
        addBody(or, lits);
        continue;
      }
      const rest = lits.filter((l) => l !== does[0]).sort((x, y) => x - y);
      const k = rest.join(',');
      const gr = groups.get(k);
      if (gr) gr.moves.add(does[0]! >> 1);
      else groups.set(k, { rest, moves: new Set([does[0]! >> 1]) });
    }
    for (const { rest, moves } of groups.values()) {
      if (moves.size === 1) {
        addBody(or, [...rest, [...moves][0]! * 2]);
        continue;
      }
      const rs = new Set([...moves].map((n) => doesOf.get(n)![0]));
      const others: number[] = [];
      for (const r of rs) for (const n of inputNode[r]!.values()) if (!moves.has(n)) others.push(n);
      if (others.length === 0) {
        addBody(or, rest); // every role of the group always plays one of these
        continue;
      }
      // (the same move set recurs for every head about one cell: one node serves them all)
      if (moves.size <= others.length) addBody(or, [...rest, moveSet(1, [...moves]) * 2]);
      else addBody(or, [...rest, moveSet(rs.size, others) * 2 + 1]);
    }
  }
  const constNode = () => newNode(0);
  const staticAtom = (rel: string, t: number[]) => gp.tables.get(rel)?.has(t) ?? false;
  const nodeFor = (rel: string, t: number[]): number => {
    const n = nodeOf.get(atomKey(rel, t));
    if (n !== undefined) return n;
    if (!gp.dynamic.has(rel) && staticAtom(rel, t)) return constNode();
    return -1;
  };
  // roles' legal entries, goals, terminal, next
  const moveIds: Int32Array[] = [];
  const legalNode: Int32Array[] = [];
  gp.roles.forEach((r, ri) => {
    const ms = gp.moves[ri]!;
    moveIds.push(Int32Array.from(ms));
    legalNode.push(Int32Array.from(ms, (m) => nodeFor('legal/2', [r, m])));
  });
  const terminalNode = nodeFor('terminal/0', []);
  const goalRows = (gp.tables.get('goal/2')?.rows ?? []).map((t) => t.slice(0, 2));
  const goalNodes: Int32Array[] = [];
  const goalValues: Int32Array[] = [];
  gp.roles.forEach((r) => {
    const rows = goalRows.filter((t) => t[0] === r && /^\d+$/.test(T.text(t[1]!)));
    const ns = rows.map((t) => nodeFor('goal/2', t));
    goalNodes.push(Int32Array.from(ns.filter((n) => n >= 0)));
    goalValues.push(Int32Array.from(rows.filter((_, i) => ns[i]! >= 0).map((t) => Number(T.text(t[1]!)))));
  });
  const nextNode = Int32Array.from(fluents, (f) => nodeFor('next/1', [f]));
  // An OR whose one input is an AND read by nobody else becomes that AND (one flip per change instead of two).
  const firstDerived = fluents.length + gp.moves.reduce((a, m) => a + m.length, 0);
  const observed = new Set<number>([terminalNode, ...nextNode, ...goalNodes.flatMap((g) => [...g]), ...compRead]);
  for (const ns of legalNode) for (const n of ns) observed.add(n);
  const consumers = new Int32Array(need.length);
  for (const ins of inputs) for (const e of ins) consumers[e >> 1]!++;
  for (let o = firstDerived; o < need.length; o++) {
    for (;;) {
      const ins = inputs[o]!;
      if (need[o] !== 1 || ins.length !== 1 || ins[0]! & 1) break;
      const x = ins[0]! >> 1;
      if (x < firstDerived || consumers[x] !== 1 || observed.has(x) || need[x] === 0) break;
      need[o] = need[x]!;
      inputs[o] = inputs[x]!;
      inputs[x] = [];
      need[x] = 1;
      consumers[x] = 0;
    }
  }
  // Gates: the literal most of a role's legal moves share (whose turn it is) is taken out of their ANDs and
  // tested once when moves are listed, so a change of turn does not flip every legal move of both roles. Then
  // a second one the same way (englishDraughts: "no capture is available" in every plain move, which flipped
  // ~170 edges each time a capture appeared or went).
  const gates: number[][] = gp.roles.map(() => []);
  const entryClass: Uint8Array[] = legalNode.map((ns) => new Uint8Array(ns.length));
  // An entry that is an OR of ANDs read by nobody else (englishDraughts' captures: two rules, both needing
  // `control`) is gated by a literal all of its ANDs share: (g ∧ a) ∨ (g ∧ b) = g ∧ (a ∨ b).
  const isAnd = (n: number) => n >= firstDerived && need[n] === inputs[n]!.length && need[n]! > 0;
  const gateAnds = (n: number): number[] | undefined => {
    if (n < firstDerived || consumers[n] !== 0) return undefined;
    if (isAnd(n)) return [n];
    if (need[n] !== 1 || inputs[n]!.length < 2) return undefined;
    const xs = inputs[n]!.map((e) => (e & 1 ? -1 : e >> 1));
    return xs.every((x) => x >= 0 && isAnd(x) && consumers[x] === 1 && !observed.has(x)) ? xs : undefined;
  };
  for (let round = 0; round < 2; round++)
    legalNode.forEach((ns, r) => {
      const freq = new Map<number, number>();
      for (const n of ns) {
        const xs = gateAnds(n);
        if (!xs) continue;
        // the literals every AND of the entry has
        let common = new Set(inputs[xs[0]!]);
        for (const x of xs.slice(1)) common = new Set(inputs[x]!.filter((e) => common.has(e)));
        for (const e of common) freq.set(e, (freq.get(e) ?? 0) + 1);
      }
      let g = -1;
      // (a second gate only where it serves many entries: each costs a test when moves are listed)
      let best = round === 0 ? 1 : Math.max(1, ns.length >> 2);
      for (const [e, c] of freq) if (c > best) [g, best] = [e, c];
      if (g < 0) return;
      const bit = 1 << gates[r]!.length;
      gates[r]!.push(g);
      ns.forEach((n, i) => {
        const xs = gateAnds(n);
        if (!xs?.every((x) => inputs[x]!.includes(g))) return;
        for (const x of xs) {
          inputs[x]!.splice(inputs[x]!.indexOf(g), 1);
          need[x]!--;
          consumers[g >> 1]!--;
        }
        entryClass[r]![i]! |= bit;
      });
    });
  // CSR of outgoing edges and a topological sweep for the values with everything off
  const nNodes = need.length;
  const outCount = new Int32Array(nNodes + 1);
  for (const ins of inputs) for (const e of ins) outCount[e >> 1]!++;
  const outStart = new Int32Array(nNodes + 1);
  for (let i = 0; i < nNodes; i++) outStart[i + 1] = outStart[i]! + outCount[i]!;
  let out = new Int32Array(outStart[nNodes]!);
  const fill = outStart.slice(0, nNodes);
  inputs.forEach((ins, t) => {
    for (const e of ins) out[fill[e >> 1]!++] = t * 2 + (e & 1);
  });
  const indeg = Int32Array.from(inputs, (x) => x.length);
  const queue: number[] = [];
  for (let i = 0; i < nNodes; i++) if (!indeg[i]) queue.push(i);
  const value0 = new Uint8Array(nNodes);
  const count0 = new Int32Array(nNodes);
  const needA = Int32Array.from(need);
  // base and input nodes are off; their threshold of 1 with no inputs keeps them off in the sweep
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q]!;
    value0[i] = count0[i]! >= needA[i]! ? 1 : 0;
    for (let k = outStart[i]!; k < outStart[i + 1]!; k++) {
      const e = out[k]!;
      const t = e >> 1;
      if ((value0[i]! ^ (e & 1)) === 1) count0[t]!++;
      if (--indeg[t]! === 0) queue.push(t);
    }
  }
  if (queue.length !== nNodes) throw new GroundingError('the ground rules are recursive (a cycle in the net)');
  // which in-place components read the moves (through any node): only those settle again when moves are set or
  // taken back; the rest settle when a state loads (atoms of a component count as reading what it reads)
  if (comps.length) {
    const depIn = new Uint8Array(nNodes);
    for (const mp of inputNode) for (const x of mp.values()) depIn[x] = 1;
    for (let changed = true; changed; ) {
      changed = false;
      for (const t of queue) {
        if (depIn[t]) continue;
        for (const e of inputs[t]!)
          if (depIn[e >> 1]) {
            depIn[t] = 1;
            break;
          }
      }
      for (const c of comps) {
        if (c.readsMoves) continue;
        for (const e of c.ext)
          if (depIn[e >> 1]) {
            c.readsMoves = true;
            for (const x of c.atoms) depIn[x] = 1;
            changed = true;
            break;
          }
      }
    }
  }
  // rebuilds the CSR from the inputs, keeping the edges `keep` accepts
  const rebuild = (keep: (src: number, t: number) => boolean) => {
    const cnt = new Int32Array(nNodes + 1);
    inputs.forEach((ins, t) => {
      for (const e of ins) if (keep(e >> 1, t)) cnt[e >> 1]!++;
    });
    outStart[0] = 0;
    for (let i = 0; i < nNodes; i++) outStart[i + 1] = outStart[i]! + cnt[i]!;
    const f2 = outStart.slice(0, nNodes);
    inputs.forEach((ins, t) => {
      for (const e of ins) if (keep(e >> 1, t)) out[f2[e >> 1]!++] = t * 2 + (e & 1);
    });
    out = out.slice(0, outStart[nNodes]!);
  };
  // Nodes that only goals read (no path to terminal, a next, a legal entry or a gate: reversi's piece-count
  // chain, which flipped ~1,700 nodes a ply) are left out of the propagation; the machine computes them in
  // topological order when goals are read.
  const eager = new Uint8Array(nNodes);
  {
    const stack: number[] = [];
    const mark = (n: number) => {
      if (n >= 0 && !eager[n]) {
        eager[n] = 1;
        stack.push(n);
      }
    };
    mark(terminalNode);
    for (const x of compRead) mark(x);
    for (const n of nextNode) mark(n);
    for (const ns of legalNode) for (const n of ns) mark(n);
    for (const gs of gates) for (const gt of gs) mark(gt >> 1);
    while (stack.length) for (const e of inputs[stack.pop()!]!) mark(e >> 1);
  }
  const isLazy = (t: number) => t >= firstDerived && !eager[t];
  // (one with no inputs keeps its initial value: nothing to compute)
  const lazyOrder = Int32Array.from(queue.filter((t) => isLazy(t) && inputs[t]!.length > 0));
  const lazyInStart = new Int32Array(lazyOrder.length + 1);
  lazyOrder.forEach((t, i) => {
    lazyInStart[i + 1] = lazyInStart[i]! + inputs[t]!.length;
  });
  const lazyIn = Int32Array.from(Array.from(lazyOrder).flatMap((t) => inputs[t]!));
  if (lazyOrder.length) rebuild((_, t) => !isLazy(t));
  // Moves whose edges go to exactly the same targets (each role's pass: in every frame threshold node) form a
  // class: their edges move to the class, and a step applies the class's net change once. With the joint move
  // kept set between steps, one role's pass ending as the other's begins nets to zero: nothing to propagate.
  const inputClass = new Int32Array(nNodes);
  const classTargets: Int32Array[] = [];
  {
    const byTargets = new Map<string, number[]>();
    for (const mp of inputNode)
      for (const x of mp.values()) {
        if (outStart[x + 1]! - outStart[x]! < 4) continue;
        const k = Array.from(out.subarray(outStart[x]!, outStart[x + 1]!))
          .sort((a, b) => a - b)
          .join(',');
        const l = byTargets.get(k);
        if (l) l.push(x);
        else byTargets.set(k, [x]);
      }
    for (const xs of byTargets.values()) {
      if (xs.length < 2) continue;
      classTargets.push(out.slice(outStart[xs[0]!]!, outStart[xs[0]! + 1]!));
      for (const x of xs) inputClass[x] = classTargets.length;
    }
  }
  // without the classed inputs' edges
  if (classTargets.length) rebuild((x, t) => !inputClass[x] && !isLazy(t));
  const legalEntry = new Int32Array(nNodes);
  const legalRole = new Int32Array(nNodes);
  legalNode.forEach((ns, r) => {
    ns.forEach((n, i) => {
      if (n < 0) return;
      legalEntry[n] = i + 1;
      legalRole[n] = r;
    });
  });
  const words = Math.max(1, Math.ceil(fluents.length / 32));
  const init = new Uint32Array(words);
  for (const f of gp.init) {
    const b = fluentIndex.get(f)!;
    init[b >> 5]! |= 1 << (b & 31);
  }
  const inputOf = inputNode.map((mp) => {
    const a = new Int32Array(T.fn.length).fill(-1);
    for (const [m, n] of mp) a[m] = n;
    return a;
  });
  const diffIdx = new Int32Array(nNodes);
  const diff0 = new Uint32Array(words);
  baseNode.forEach((n, i) => {
    diffIdx[n] = i + 1;
    const x = nextNode[i]!;
    if (x >= 0) {
      diffIdx[x] = i + 1;
      if (value0[x]) diff0[i >> 5]! |= 1 << (i & 31);
    }
  });
  const net: Net = {
    terms: T,
    roleNames: g.roles,
    roles: gp.roles,
    nNodes,
    need: needA,
    outStart,
    out: out.map((e) => (e >> 1) * 4 + (e & 1)),
    watch: new Int32Array(nNodes).fill(-1),
    armStart: new Int32Array(nNodes + 1),
    memberGroup: new Int32Array(nNodes).fill(-1),
    memberIdx: new Int32Array(nNodes),
    groupStart: new Int32Array(1),
    famX: new Int32Array(0),
    famGroup: new Int32Array(0),
    famOutStart: new Int32Array(1),
    famOut: new Int32Array(0),
    gFamStart: new Int32Array(1),
    xFamStart: new Int32Array(nNodes + 1),
    xFam: new Int32Array(0),
    value0,
    count0,
    fluents,
    fluentIndex,
    baseNode,
    nextNode,
    moveIds,
    legalNode,
    inputNode,
    inputOf,
    diffIdx,
    diff0,
    inputClass,
    classTargets: [],
    legalEntry,
    legalRole,
    gates: gates.map((gs) => Int32Array.from(gs)),
    entryClass,
    terminalNode,
    lazyOrder,
    lazyInStart,
    lazyIn,
    goalNodes,
    goalValues,
    init,
    words,
    unrolled,
    unrolledDepth,
    comps,
  };
  net.classTargets = classTargets.map((ts) => ts.map((e) => (e >> 1) * 4 + (e & 1)));
  return watchNet(net, (t) => (isLazy(t) ? EMPTY_INPUTS : inputs[t]!), opts.watchPlies ?? 2000, opts.watchMin ?? 0.4);
}
const EMPTY_INPUTS: number[] = [];

/**
 * Watched literals (the two-watched-literal idea of SAT solvers, in the form of one literal per threshold node).
 * A node true while at least `need` of its inputs hold gets one input w taken out of its counter: then w decides
 * its value only while the counter is exactly need − 1, so w's flips need to visit only the nodes in that state
 * (its armed list), and the others keep their counters. Hex's net is where it pays: the frame that relabels a
 * group puts a helper over each cell into 82 ANDs, one per `(step ?k)`, of which only the current step's can be
 * true; watching the helper makes a relabelled cell visit one AND instead of 82, at the price of arming 81 when
 * the step changes. Which input to watch is decided from a profile: `plies` seeded random plies of the net as
 * built, counting per input how often its source flips, how often it flips while the node is one short (then
 * the watched node must still be visited) and how often the others move the node in or out of that state (an
 * arm or a disarm). A node watches the input with the best saving if it saves; the net keeps no watches at all
 * unless they save 40% of the profile's edge visits (nets that would gain little stay as they were). Answers do not depend on
 * the choice: a watched node's value is always f(counter, w).
 */
function watchNet(net: Net, inputsOf: (t: number) => number[], plies: number, watchMin: number): Net {
  if (plies <= 0) return net;
  const n = net.nNodes;
  const need = net.need;
  // inputs of every propagated node (CSR), and for each source the input slots it feeds
  const inStart = new Int32Array(n + 1);
  for (let t = 0; t < n; t++) inStart[t + 1] = inStart[t]! + inputsOf(t).length;
  const inE = new Int32Array(inStart[n]!);
  const tOf = new Int32Array(inStart[n]!);
  const srcCount = new Int32Array(n + 1);
  for (let t = 0; t < n; t++)
    inputsOf(t).forEach((e, i) => {
      inE[inStart[t]! + i] = e;
      tOf[inStart[t]! + i] = t;
      srcCount[e >> 1]!++;
    });
  const pStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) pStart[i + 1] = pStart[i]! + srcCount[i]!;
  const pOut = new Int32Array(pStart[n]!);
  const fill = pStart.slice(0, n);
  for (let j = 0; j < inE.length; j++) pOut[fill[inE[j]! >> 1]!++] = j;
  // (nodes with many inputs are not profiled per input: a flip of one would scan them all)
  const MAX_IN = 64;
  const value = net.value0.slice();
  const count = net.count0.slice();
  const flips = new Float64Array(n);
  const hit = new Float64Array(inE.length);
  const cross = new Float64Array(inE.length);
  let work = 0;
  // Candidate mutex groups (see demux below): the fluents of one functor (hex's `step`, `control`) and the moves
  // of one role outside classes; a group counts as one if the profile never saw two of them true between plies.
  const groupOf = new Int32Array(n).fill(-1);
  let nGroups = 0;
  {
    const byFn = new Map<string, number>();
    net.fluents.forEach((f, i) => {
      const k = `${net.terms.fn[f]}/${net.terms.args[f]!.length}`;
      let g = byFn.get(k);
      if (g === undefined) byFn.set(k, (g = nGroups++));
      groupOf[net.baseNode[i]!] = g;
    });
    for (const mv of net.inputNode) {
      const g = nGroups++;
      for (const x of mv.values()) if (!net.inputClass[x]) groupOf[x] = g;
    }
  }
  const gTrue = new Int32Array(nGroups);
  const gMax = new Int32Array(nGroups);
  for (let x = 0; x < n; x++) if (groupOf[x]! >= 0 && value[x]) gTrue[groupOf[x]!]!++;
  const gCheck = () => {
    for (let g = 0; g < nGroups; g++) if (gTrue[g]! > gMax[g]!) gMax[g] = gTrue[g]!;
  };
  const apply = (x: number, v: number): void => {
    value[x] = v;
    flips[x]!++;
    if (groupOf[x]! >= 0) gTrue[groupOf[x]!]! += v ? 1 : -1;
    // (every edge counts towards the work cap, with the input scans below: the profile's cost is bounded)
    work += pStart[x + 1]! - pStart[x]!;
    for (let k = pStart[x]!; k < pStart[x + 1]!; k++) {
      const j = pOut[k]!;
      const t = tOf[j]!;
      const neg = inE[j]! & 1;
      const old = count[t]!;
      const nw = old + ((v ^ neg) === 1 ? 1 : -1);
      const nd = need[t]!;
      const a = inStart[t]!;
      const b = inStart[t + 1]!;
      if (b - a <= MAX_IN) {
        work += b - a;
        for (let i = a; i < b; i++) {
          if (i === j) {
            // armed when x flips: the others make the counter one short (x's old contribution is (1 - v) ^ neg)
            if (old - ((1 - v) ^ neg) === nd - 1) hit[i]!++;
            continue;
          }
          const c = value[inE[i]! >> 1]! ^ (inE[i]! & 1);
          if ((old - c === nd - 1) !== (nw - c === nd - 1)) cross[i]!++;
        }
      }
      count[t] = nw;
      const nv = nw >= nd ? 1 : 0;
      if (nv !== value[t]) apply(t, nv);
    }
  };
  // drive the profile with the machine of the net as built; the profile's own counters follow its states
  const m = new GroundMachine(net);
  const rand = rng(0x5eed);
  const cur = new Uint32Array(net.words);
  const pick = new Int32Array(net.roles.length).fill(-1);
  const loadP = (s: GState) => {
    for (let w = 0; w < cur.length; w++) {
      let x = (cur[w]! ^ s[w]!) >>> 0;
      while (x) {
        const b = 31 - Math.clz32(x & -x);
        x &= x - 1;
        apply(net.baseNode[(w << 5) | b]!, (s[w]! >>> b) & 1);
      }
      cur[w] = s[w]!;
    }
  };
  let s = m.initialState();
  loadP(s);
  gCheck();
  const joint: number[] = new Array(net.roles.length);
  // (the work cap bounds the profile of a net with hub nodes; counts, not time, so the net is deterministic)
  for (let ply = 0, fresh = 0; ply < plies && work < 4e7; ) {
    let stuck = m.isTerminal(s) || fresh >= 400;
    for (let r = 0; r < joint.length && !stuck; r++) {
      const l = m.legal(s, r);
      if (!l.length) stuck = true;
      else joint[r] = l[(rand() * l.length) | 0]!;
    }
    if (stuck) {
      if (fresh === 0) break; // the initial state itself: nothing to play
      s = m.initialState();
      loadP(s);
      fresh = 0;
      continue;
    }
    for (let r = 0; r < joint.length; r++) {
      const x = net.inputOf[r]![joint[r]!]!;
      if (pick[r] === x) continue;
      if (pick[r]! >= 0) apply(pick[r]!, 0);
      apply(x, 1);
      pick[r] = x;
    }
    gCheck();
    s = m.next(s, joint);
    // (as the machine does: moves outside classes are taken back before the successor loads)
    for (let r = 0; r < joint.length; r++)
      if (pick[r]! >= 0 && !net.inputClass[pick[r]!]) {
        apply(pick[r]!, 0);
        pick[r] = -1;
      }
    loadP(s);
    gCheck();
    ply++;
    fresh++;
  }
  // choose: per node the input with the largest saving (arms, disarms and armed visits cost about two visits)
  const watch = new Int32Array(n).fill(-1);
  let base = 0;
  let saved = 0;
  // Families for the demux: two-input ANDs that pair a member of a mutex group with the same other literal X
  // (hex: the relabelling helper of a cell, the move set of a cell and each role's `control` with every
  // `(step ?k)`); a family of at least 8 becomes one demux (see applyDemux).
  const gSize = new Int32Array(nGroups);
  for (let x = 0; x < n; x++) if (groupOf[x]! >= 0) gSize[groupOf[x]!]!++;
  const fams = new Map<string, { x: number; g: number; outs: Array<[number, number]>; ms: Set<number> }>();
  for (let t = 0; t < n; t++) {
    if (inStart[t + 1]! - inStart[t]! !== 2 || need[t] !== 2) continue;
    const e0 = inE[inStart[t]!]!;
    const e1 = inE[inStart[t]! + 1]!;
    const member = (e: number) => (!(e & 1) && groupOf[e >> 1]! >= 0 && gMax[groupOf[e >> 1]!]! <= 1 ? e >> 1 : -1);
    let mm = member(e1);
    let x = e0;
    const m0 = member(e0);
    if (m0 >= 0 && (mm < 0 || gSize[groupOf[m0]!]! > gSize[groupOf[mm]!]!)) [mm, x] = [m0, e1];
    // (a classed move flips through its class, not through set(): no demux hears it)
    if (mm < 0 || groupOf[x >> 1] === groupOf[mm] || net.inputClass[x >> 1]) continue;
    const k = `${x}:${groupOf[mm]}`;
    const f = fams.get(k);
    // (one output per member: a second AND of the same two literals stays a counted node — test_case_2b's
    // snake has `(next (pos ?xn))` and `(next (cell ?x ?move))` both from (does ?move) ∧ (true (pos ?x)))
    if (f?.ms.has(mm)) continue;
    if (f) {
      f.outs.push([t, mm]);
      f.ms.add(mm);
    } else fams.set(k, { x, g: groupOf[mm]!, outs: [[t, mm]], ms: new Set([mm]) });
  }
  const driven = new Uint8Array(n);
  const demux = [...fams.values()].filter((f) => f.outs.length >= 8);
  for (const f of demux)
    for (const [t, mm] of f.outs) {
      driven[t] = 1;
      // (the demux visits an output only when both inputs allow it: counted as all saved but two visits)
      base += flips[f.x >> 1]! + flips[mm]!;
      saved += Math.max(0, flips[f.x >> 1]! + flips[mm]! - 2);
    }
  for (let t = 0; t < n; t++) {
    const a = inStart[t]!;
    const b = inStart[t + 1]!;
    if (b - a > MAX_IN || need[t]! <= 0 || driven[t]) continue;
    let best = -1;
    let gain = 0;
    for (let i = a; i < b; i++) {
      const src = inE[i]! >> 1;
      base += flips[src]!;
      // (a classed move's edges live in its class, not in its own list: not watched)
      if (net.inputClass[src]) continue;
      let dup = false;
      for (let q = a; q < b; q++) if (q !== i && inE[q]! >> 1 === src) dup = true;
      if (dup) continue;
      const g = flips[src]! - 2 * hit[i]! - 2 * cross[i]!;
      if (g > gain) [best, gain] = [i, g];
    }
    if (best >= 0 && gain >= 4) {
      watch[t] = inE[best]!;
      saved += gain;
    }
  }
  // (measured: predicted savings of 15–26% of the edge visits made connectFour, breakthrough, reversi and pentago
  // no faster, 0.95–1.05×; 56–70% made englishDraughts 1.2× and checkers 1.9× faster)
  if (saved < watchMin * base || saved === 0) return net;
  const members = new Int32Array(n).fill(-1);
  for (const f of demux) for (const [, mm] of f.outs) members[mm] = f.g;
  return applyDemux(applyWatches(net, watch), demux, groupOf, members);
}

/**
 * Demultiplexers. A family of ANDs o_k = X ∧ M_k over the members M_k of a group that is (almost always) one-hot
 * — hex's `(step ?k)` — does not need counters: while X holds, only the true member's output is on. The outputs
 * lose their input edges; a flip of X visits the outputs of the group's true members (one), a flip of a member
 * visits the families whose X holds. Exact whatever the state (several true members just cost more visits): an
 * output is recomputed as X ∧ M_k from the current values each time it is visited.
 */
function applyDemux(
  net: Net,
  fams: Array<{ x: number; g: number; outs: Array<[number, number]> }>,
  groupOf: Int32Array,
  members: Int32Array,
): Net {
  const n = net.nNodes;
  if (!fams.length) return net;
  // dense group ids and member indexes (only members some family uses)
  const gid = new Map<number, number>();
  for (const f of fams) if (!gid.has(f.g)) gid.set(f.g, gid.size);
  const nG = gid.size;
  const memberGroup = new Int32Array(n).fill(-1);
  const memberIdx = new Int32Array(n);
  const groupStart = new Int32Array(nG + 1);
  for (let x = 0; x < n; x++) {
    if (members[x]! < 0) continue;
    const g = gid.get(groupOf[x]!)!;
    memberGroup[x] = g;
    memberIdx[x] = groupStart[g + 1]!++;
  }
  for (let g = 0; g < nG; g++) groupStart[g + 1] = groupStart[g + 1]! + groupStart[g]!;
  const famX = Int32Array.from(fams, (f) => f.x);
  const famGroup = Int32Array.from(fams, (f) => gid.get(f.g)!);
  const famOutStart = new Int32Array(fams.length + 1);
  for (let i = 0; i < fams.length; i++) {
    const g = famGroup[i]!;
    famOutStart[i + 1] = famOutStart[i]! + groupStart[g + 1]! - groupStart[g]!;
  }
  const famOut = new Int32Array(famOutStart[fams.length]!).fill(-1);
  const driven = new Uint8Array(n);
  fams.forEach((f, i) => {
    for (const [t, mm] of f.outs) {
      famOut[famOutStart[i]! + memberIdx[mm]!] = t;
      driven[t] = 1;
    }
  });
  const gFamStart = new Int32Array(nG + 1);
  for (const g of famGroup) gFamStart[g + 1]!++;
  for (let g = 0; g < nG; g++) gFamStart[g + 1] = gFamStart[g + 1]! + gFamStart[g]!;
  const xFamStart = new Int32Array(n + 1);
  for (const x of famX) xFamStart[(x >> 1) + 1]!++;
  for (let i = 0; i < n; i++) xFamStart[i + 1] = xFamStart[i + 1]! + xFamStart[i]!;
  const xFam = new Int32Array(fams.length);
  const fill = xFamStart.slice(0, n);
  famX.forEach((x, i) => {
    xFam[fill[x >> 1]!++] = i;
  });
  // the outputs' input edges go (their values come from the demux); so do watches they had
  const outStart = new Int32Array(n + 1);
  const out: number[] = [];
  for (let src = 0; src < n; src++) {
    for (let k = net.outStart[src]!; k < net.outStart[src + 1]!; k++)
      if (!driven[net.out[k]! >> 2]) out.push(net.out[k]!);
    outStart[src + 1] = out.length;
  }
  const watch = net.watch.map((w, t) => (driven[t] ? -1 : w));
  const armStart = new Int32Array(n + 1);
  for (let t = 0; t < n; t++) if (watch[t]! >= 0) armStart[(watch[t]! >> 1) + 1]!++;
  for (let i = 0; i < n; i++) armStart[i + 1] = armStart[i + 1]! + armStart[i]!;
  return {
    ...net,
    outStart,
    out: Int32Array.from(out),
    watch,
    armStart,
    classTargets: net.classTargets.map((ts) => ts.filter((e) => !driven[e >> 2])),
    memberGroup,
    memberIdx,
    groupStart,
    famX,
    famGroup,
    famOutStart,
    famOut,
    gFamStart,
    xFamStart,
    xFam,
  };
}

/** The net with `watch`'s literals taken out of their nodes' counters and edges (see watchNet). */
function applyWatches(net: Net, watch: Int32Array): Net {
  const n = net.nNodes;
  const count0 = net.count0.slice();
  const armStart = new Int32Array(n + 1);
  for (let t = 0; t < n; t++) {
    const w = watch[t]!;
    if (w < 0) continue;
    count0[t] = count0[t]! - (net.value0[w >> 1]! ^ (w & 1));
    armStart[(w >> 1) + 1]!++;
  }
  for (let i = 0; i < n; i++) armStart[i + 1] = armStart[i + 1]! + armStart[i]!;
  // the watched literals' edges go; the others say whether their target watches something
  const outStart = new Int32Array(n + 1);
  const out: number[] = [];
  for (let src = 0; src < n; src++) {
    for (let k = net.outStart[src]!; k < net.outStart[src + 1]!; k++) {
      const e = net.out[k]!;
      const t = e >> 2;
      if (watch[t]! >= 0 && watch[t]! >> 1 === src) continue;
      out.push((e & ~2) | (watch[t]! >= 0 ? 2 : 0));
    }
    outStart[src + 1] = out.length;
  }
  const classTargets = net.classTargets.map((ts) => ts.map((e) => (e & ~2) | (watch[e >> 2]! >= 0 ? 2 : 0)));
  return { ...net, outStart, out: Int32Array.from(out), watch, armStart, count0, classTargets };
}

/** Builds (or takes from the cache) the net of a prepared sheet; throws GroundingError where it refuses. */
export function groundNet(g: PreparedGame, opts: GroundOptions = {}): Net {
  const hash = createHash('sha256')
    .update(
      `${g.roles.join(' ')}\n${rulesText(g.rules)}\n${opts.maxSteps ?? ''}/${opts.maxNodes ?? ''}/${opts.maxMs ?? ''}/${opts.projectAbove ?? ''}/${opts.watchPlies ?? ''}/${opts.watchMin ?? ''}/${opts.unrollMax ?? ''}`,
    )
    .digest('hex');
  const hit = netCache.get(hash);
  if (hit instanceof GroundingError) throw hit;
  if (hit) return hit;
  try {
    const net = buildNet(g, opts);
    netCache.set(hash, net);
    return net;
  } catch (e) {
    if (e instanceof GroundingError) netCache.set(hash, e);
    throw e;
  }
}

const popcnt = (x: number) => {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};

/** A state: the set of true fluents as a bitset over the net's reachable fluents. */
export type GState = Uint32Array;

export class GroundMachine implements GameMachine<GState, number> {
  readonly kind = 'grounded';
  private readonly value: Uint8Array;
  private readonly count: Int32Array;
  private readonly out: Int32Array;
  private readonly outStart: Int32Array;
  private readonly legalEntry: Int32Array;
  private readonly legalRole: Int32Array;
  private readonly diffIdx: Int32Array;
  /** fluents whose next value differs from their current one */
  private readonly diff: Uint32Array;
  /** the fluents currently set in the net, and the state object they came from */
  private readonly cur: Uint32Array;
  private curRef: GState | null = null;
  /** scratch of the in-place components' fixpoint: values and a queue, sized for the largest */
  private compVal: Uint8Array;
  private compQueue: Int32Array;
  /**
   * per role: bitset over legal entries; per role and gate class (the gates an entry needs, 0–3) the bitset of
   * its entries (at r * 4 + class) and how many of them are set
   */
  private readonly legalBits: Uint32Array[];
  private readonly classBits: Uint32Array[];
  private readonly classCount: Int32Array;
  /** words of `diff` changed since the last playout ply (listed once each), and the snapshot a ply applies */
  private readonly dirty: Int32Array;
  private readonly dirtyMark: Uint8Array;
  private dirtyLen = 0;
  private readonly snapW: Int32Array;
  private readonly snapX: Uint32Array;
  private snapLen = 0;
  /** whether the state has more words than a playout should read every ply */
  private readonly big: boolean;
  /** the input node of each role's move in the last step (kept set), -1 before the first */
  private readonly pick: Int32Array;
  private readonly pending: Int32Array;
  private readonly entryClass: Uint8Array[];
  /** each role's first and second gate literal, -1 where none */
  private readonly gate0: Int32Array;
  private readonly gate1: Int32Array;
  /** watched literals (see watchNet): per source its armed nodes (in its armStart region) and their count */
  private readonly watch: Int32Array;
  private readonly armed: Int32Array;
  private readonly armStart: Int32Array;
  /** per node: 1 a next node (diffIdx), 2 a legal entry, 4 watched by some node, 8 a demux group's member, 16
   * a demux family's X */
  private readonly nodeKind: Uint8Array;
  /** demuxes: per group its true members and its families whose X holds (regions, lengths, slots) */
  private readonly gOn: Int32Array;
  private readonly gOnLen: Int32Array;
  private readonly gOnPos: Int32Array;
  private readonly fOn: Int32Array;
  private readonly fOnLen: Int32Array;
  private readonly fOnPos: Int32Array;
  private readonly armLen: Int32Array;
  /** a node's slot in its source's armed list */
  private readonly armPos: Int32Array;
  /** copies of armed lists being walked (one per source at most: a node does not flip inside its own flip) */
  private readonly walk: Int32Array;
  private sp = 0;

  constructor(readonly net: Net) {
    this.value = net.value0.slice();
    // counters are kept relative to their thresholds (true from 0): the propagation then reads no `need`
    this.count = Int32Array.from(net.count0, (c, i) => c - net.need[i]!);
    this.out = net.out;
    this.outStart = net.outStart;
    this.legalEntry = net.legalEntry;
    this.legalRole = net.legalRole;
    this.diffIdx = net.diffIdx;
    this.diff = net.diff0.slice();
    this.cur = new Uint32Array(net.words);
    this.dirty = new Int32Array(net.words);
    this.dirtyMark = new Uint8Array(net.words);
    this.snapW = new Int32Array(net.words);
    this.snapX = new Uint32Array(net.words);
    this.big = net.words > 16;
    // the initial differences (diff0) are listed too
    for (let w = 0; w < net.words; w++)
      if (this.big && this.diff[w]) {
        this.dirtyMark[w] = 1;
        this.dirty[this.dirtyLen++] = w;
      }
    const words = (m: Int32Array) => new Uint32Array(Math.max(1, Math.ceil(m.length / 32)));
    this.legalBits = net.moveIds.map(words);
    this.classBits = net.moveIds.flatMap((m) => [words(m), words(m), words(m), words(m)]);
    this.classCount = new Int32Array(net.roles.length * 4);
    this.pick = new Int32Array(net.roles.length).fill(-1);
    this.pending = new Int32Array(net.classTargets.length);
    this.entryClass = net.entryClass;
    this.gate0 = Int32Array.from(net.gates, (gs) => gs[0] ?? -1);
    this.gate1 = Int32Array.from(net.gates, (gs) => gs[1] ?? -1);
    this.watch = net.watch;
    this.armStart = net.armStart;
    this.nodeKind = new Uint8Array(net.nNodes);
    for (let i = 0; i < net.nNodes; i++)
      this.nodeKind[i] =
        (net.diffIdx[i] ? 1 : 0) |
        (net.legalEntry[i] ? 2 : 0) |
        (net.armStart[i + 1]! > net.armStart[i]! ? 4 : 0) |
        (net.memberGroup[i]! >= 0 ? 8 : 0) |
        (net.xFamStart[i + 1]! > net.xFamStart[i]! ? 16 : 0);
    const nG = net.groupStart.length - 1;
    this.gOn = new Int32Array(net.groupStart[nG]!);
    this.gOnLen = new Int32Array(nG);
    this.gOnPos = new Int32Array(net.nNodes);
    this.fOn = new Int32Array(net.famX.length);
    this.fOnLen = new Int32Array(nG);
    this.fOnPos = new Int32Array(net.famX.length);
    for (let i = 0; i < net.nNodes; i++) if (net.memberGroup[i]! >= 0 && this.value[i]) this.groupOn(i, 1);
    net.famX.forEach((x, f) => {
      if (this.value[x >> 1]! ^ (x & 1)) this.famOn(f, 1);
    });
    // (snapshots of armed lists and of demux lists: each node has at most one of each kind on the stack)
    let walkLen = net.armStart[net.nNodes]!;
    for (let i = 0; i < net.nNodes; i++) {
      const g = net.memberGroup[i]!;
      if (g >= 0) walkLen += net.gFamStart[g + 1]! - net.gFamStart[g]!;
      for (let k = net.xFamStart[i]!; k < net.xFamStart[i + 1]!; k++) {
        const fg = net.famGroup[net.xFam[k]!]!;
        walkLen = walkLen + net.groupStart[fg + 1]! - net.groupStart[fg]!;
      }
    }
    this.walk = new Int32Array(walkLen);
    this.armed = new Int32Array(net.armStart[net.nNodes]!);
    this.armLen = new Int32Array(net.nNodes);
    this.armPos = new Int32Array(net.nNodes);
    for (let t = 0; t < net.nNodes; t++) if (this.watch[t]! >= 0 && this.count[t] === -1) this.arm(t);
    net.legalNode.forEach((ns, r) => {
      ns.forEach((n, i) => {
        const c = r * 4 + net.entryClass[r]![i]!;
        this.classBits[c]![i >> 5]! |= 1 << (i & 31);
        if (n >= 0 && this.value[n]) {
          this.legalBits[r]![i >> 5]! |= 1 << (i & 31);
          this.classCount[c]!++;
        }
      });
    });
    const largest = net.comps.reduce((x, c) => Math.max(x, c.atoms.length), 0);
    this.compVal = new Uint8Array(largest);
    this.compQueue = new Int32Array(largest);
    this.settle();
  }

  /**
   * Sets the in-place components' atoms to their least fixpoint under the net's values, dependencies first: all of
   * them (a state loaded) or those that read the moves (moves set or taken back).
   */
  private settle(moves = false): void {
    const comps = this.net.comps;
    for (let c = 0; c < comps.length; c++) if (!moves || comps[c]!.readsMoves) this.fixpoint(comps[c]!);
  }

  private fixpoint(c: InPlaceComp): void {
    const value = this.value;
    const val = this.compVal;
    const q = this.compQueue;
    const { atoms, head, extStart, ext, intStart, int, seeds, consStart, cons } = c;
    const n = atoms.length;
    val.fill(0, 0, n);
    let qn = 0;
    // a body holds when its outside literals hold and its atoms of the component are derived
    const holds = (b: number): boolean => {
      for (let k = intStart[b]!, end = intStart[b + 1]!; k < end; k++) if (!val[int[k]!]) return false;
      for (let k = extStart[b]!, end = extStart[b + 1]!; k < end; k++) {
        const e = ext[k]!;
        if ((value[e >> 1]! ^ (e & 1)) !== 1) return false;
      }
      return true;
    };
    for (let k = 0; k < seeds.length; k++) {
      const b = seeds[k]!;
      const h = head[b]!;
      if (!val[h] && holds(b)) {
        val[h] = 1;
        q[qn++] = h;
      }
    }
    for (let qi = 0; qi < qn; qi++) {
      const i = q[qi]!;
      for (let k = consStart[i]!, end = consStart[i + 1]!; k < end; k++) {
        const b = cons[k]!;
        const h = head[b]!;
        if (!val[h] && holds(b)) {
          val[h] = 1;
          q[qn++] = h;
        }
      }
    }
    // (downstream of the component only: no atom of it changes back)
    for (let i = 0; i < n; i++) if (value[atoms[i]!] !== val[i]) this.set(atoms[i]!, val[i]!);
  }

  /** Sets node `n` to `v` and propagates the change to every node whose value flips. */
  private set(n: number, v: number): void {
    const value = this.value;
    value[n] = v;
    // (one byte says whether n is a next or legal node or is watched: most nodes are none)
    const kind = this.nodeKind[n]!;
    if (kind & 1) {
      const di = this.diffIdx[n]! - 1;
      const w = di >> 5;
      this.diff[w]! ^= 1 << (di & 31);
      // every word whose difference may be non-zero is listed (a playout reads only those; a small state is
      // read whole)
      if (this.big && !this.dirtyMark[w]) {
        this.dirtyMark[w] = 1;
        this.dirty[this.dirtyLen++] = w;
      }
    }
    const le = kind & 2 ? this.legalEntry[n]! : 0;
    if (le) {
      const r = this.legalRole[n]!;
      const i = le - 1;
      const w = i >> 5;
      const bit = 1 << (i & 31);
      const c = r * 4 + this.entryClass[r]![i]!;
      if (v) {
        this.legalBits[r]![w]! |= bit;
        this.classCount[c]!++;
      } else {
        this.legalBits[r]![w]! &= ~bit;
        this.classCount[c]!--;
      }
    }
    const out = this.out;
    const count = this.count;
    for (let k = this.outStart[n]!, end = this.outStart[n + 1]!; k < end; k++) {
      const e = out[k]!;
      const t = e >> 2;
      if ((v ^ (e & 1)) === 1) {
        // (a node that watches nothing is true exactly while its counter is ≥ 0: no need to read its value)
        const c = ++count[t]!;
        if (e & 2) {
          const nv = this.watched(t, c, 1);
          if (nv !== value[t]) this.set(t, nv);
        } else if (c === 0) this.set(t, 1);
      } else {
        const c = --count[t]!;
        if (e & 2) {
          const nv = this.watched(t, c, -1);
          if (nv !== value[t]) this.set(t, nv);
        } else if (c === -1) this.set(t, 0);
      }
    }
    if (kind & 24) this.demux(n, v, kind);
    if (!(kind & 4)) return;
    // the nodes watching n that are one short now follow n
    const len = this.armLen[n]!;
    if (len) {
      const walk = this.walk;
      const armed = this.armed;
      const from = this.sp;
      const a0 = this.armStart[n]!;
      for (let i = 0; i < len; i++) walk[from + i] = armed[a0 + i]!;
      this.sp = from + len;
      for (let i = from; i < from + len; i++) {
        const t = walk[i]!;
        // (still armed: a flip on the way may have moved its counter, and then set it already)
        if (count[t] !== -1) continue;
        const nv = v ^ (this.watch[t]! & 1);
        if (nv !== value[t]) this.set(t, nv);
      }
      this.sp = from;
    }
  }

  /** Adds (v = 1) or removes member x to or from its group's true members. */
  private groupOn(x: number, v: number): void {
    const g = this.net.memberGroup[x]!;
    toggleSparse(this.gOn, this.gOnPos, this.gOnLen, this.net.groupStart[g]!, g, x, v);
  }

  /** Adds (v = 1) or removes family f to or from its group's families whose X holds. */
  private famOn(f: number, v: number): void {
    const g = this.net.famGroup[f]!;
    toggleSparse(this.fOn, this.fOnPos, this.fOnLen, this.net.gFamStart[g]!, g, f, v);
  }

  /** The demux side of a flip of n to v (see applyDemux): outputs recomputed as X ∧ member from current values. */
  private demux(n: number, v: number, kind: number): void {
    const net = this.net;
    const value = this.value;
    const walk = this.walk;
    if (kind & 8) {
      this.groupOn(n, v);
      const g = net.memberGroup[n]!;
      const idx = net.memberIdx[n]!;
      const from = this.sp;
      const a0 = net.gFamStart[g]!;
      const len = this.fOnLen[g]!;
      for (let i = 0; i < len; i++) walk[from + i] = this.fOn[a0 + i]!;
      this.sp = from + len;
      for (let i = from; i < from + len; i++) {
        const f = walk[i]!;
        const o = net.famOut[net.famOutStart[f]! + idx]!;
        if (o < 0) continue;
        const x = net.famX[f]!;
        const nv = v & (value[x >> 1]! ^ (x & 1));
        if (nv !== value[o]) this.set(o, nv);
      }
      this.sp = from;
    }
    if (kind & 16) {
      for (let k = net.xFamStart[n]!; k < net.xFamStart[n + 1]!; k++) {
        const f = net.xFam[k]!;
        const x = net.famX[f]!;
        const lit = v ^ (x & 1);
        this.famOn(f, lit);
        const g = net.famGroup[f]!;
        const from = this.sp;
        const a0 = net.groupStart[g]!;
        const len = this.gOnLen[g]!;
        for (let i = 0; i < len; i++) walk[from + i] = this.gOn[a0 + i]!;
        this.sp = from + len;
        const base = net.famOutStart[f]!;
        for (let i = from; i < from + len; i++) {
          const m = walk[i]!;
          const o = net.famOut[base + net.memberIdx[m]!]!;
          if (o < 0) continue;
          const nv = value[m]! & (value[x >> 1]! ^ (x & 1));
          if (nv !== value[o]) this.set(o, nv);
        }
        this.sp = from;
      }
    }
  }

  /** The value of node t, which watches a literal, after its counter moved by d to c (arming it or not). */
  private watched(t: number, c: number, d: number): number {
    if (c === -1) {
      if (c - d !== -1) this.arm(t);
      const w = this.watch[t]!;
      return this.value[w >> 1]! ^ (w & 1);
    }
    if (c - d === -1) this.disarm(t);
    return c >= 0 ? 1 : 0;
  }

  private arm(t: number): void {
    const src = this.watch[t]! >> 1;
    const i = this.armStart[src]! + this.armLen[src]!++;
    this.armed[i] = t;
    this.armPos[t] = i;
  }

  private disarm(t: number): void {
    const src = this.watch[t]! >> 1;
    const last = this.armStart[src]! + --this.armLen[src]!;
    const moved = this.armed[last]!;
    const i = this.armPos[t]!;
    this.armed[i] = moved;
    this.armPos[moved] = i;
  }

  /** Computes the goal-only nodes from the current values of their inputs (see buildNet). */
  private evalLazy(): void {
    const { lazyOrder, lazyInStart, lazyIn, need } = this.net;
    const value = this.value;
    for (let i = 0; i < lazyOrder.length; i++) {
      let c = 0;
      for (let k = lazyInStart[i]!, end = lazyInStart[i + 1]!; k < end; k++) {
        const e = lazyIn[k]!;
        c += value[e >> 1]! ^ (e & 1);
      }
      value[lazyOrder[i]!] = c >= need[lazyOrder[i]!]! ? 1 : 0;
    }
  }

  /** Which of role r's gate classes count now (bit c: every gate of class c holds). */
  private open(r: number): number {
    // (classes no entry has count as open: their bits and counts are zero)
    const a = this.gate0[r]!;
    if (a < 0) return 15;
    const g0 = (this.value[a >> 1]! ^ (a & 1)) === 1;
    const b = this.gate1[r]!;
    if (b < 0) return g0 ? 15 : 1;
    const g1 = (this.value[b >> 1]! ^ (b & 1)) === 1;
    return 1 | (g0 ? 2 : 0) | (g1 ? 4 : 0) | (g0 && g1 ? 8 : 0);
  }

  /** Word w of role r's legal entries in the open classes. */
  private openWord(r: number, open: number, w: number): number {
    const bits = this.legalBits[r]![w]!;
    if (open === 15) return bits;
    const cb = this.classBits;
    const b = r * 4;
    let m = cb[b]![w]!;
    if (open & 2) m |= cb[b + 1]![w]!;
    if (open & 4) m |= cb[b + 2]![w]!;
    return bits & m;
  }

  /** How many of role r's legal entries are in the open classes. */
  private openCount(r: number, open: number): number {
    const cc = this.classCount;
    const b = r * 4;
    return cc[b]! + (open & 2 ? cc[b + 1]! : 0) + (open & 4 ? cc[b + 2]! : 0) + (open & 8 ? cc[b + 3]! : 0);
  }

  /** Makes the net's fluents equal to `s` (only the differing ones propagate). */
  private load(s: GState): void {
    if (s === this.curRef) return;
    const cur = this.cur;
    const base = this.net.baseNode;
    let changed = false;
    for (let w = 0; w < cur.length; w++) {
      let x = (cur[w]! ^ s[w]!) >>> 0;
      changed ||= x !== 0;
      while (x) {
        const b = 31 - Math.clz32(x & -x);
        x &= x - 1;
        const i = (w << 5) | b;
        this.set(base[i]!, (s[w]! >>> b) & 1);
      }
      cur[w] = s[w]!;
    }
    this.curRef = s;
    if (changed && this.net.comps.length) this.settle();
  }

  /**
   * Sets the joint move's inputs (the previous step's stay set until then) and writes the successor's fluents
   * into `dst`. Inputs of a class change the class's pending count; each class's net change is applied once.
   */
  private step(joint: ArrayLike<number>, dst: Uint32Array | null): void {
    const net = this.net;
    const n = net.roles.length;
    const cls = net.inputClass;
    const pending = this.pending;
    let anyClass = false;
    for (let r = 0; r < n; r++) {
      const node = net.inputOf[r]![joint[r]!] ?? -1;
      if (node < 0)
        throw new IllegalMoveError(
          `'${net.terms.text(joint[r]!)}' is never a legal move of ${net.roleNames[r]} in this game`,
        );
      const old = this.pick[r]!;
      if (old === node) continue;
      this.pick[r] = node;
      if (old >= 0) {
        const c = cls[old]!;
        if (c) {
          this.value[old] = 0;
          pending[c - 1]!--;
          anyClass = true;
        } else this.set(old, 0);
      }
      const c = cls[node]!;
      if (c) {
        this.value[node] = 1;
        pending[c - 1]!++;
        anyClass = true;
      } else this.set(node, 1);
    }
    if (anyClass) {
      for (let c = 0; c < pending.length; c++) {
        const p = pending[c]!;
        if (!p) continue;
        pending[c] = 0;
        const ts = net.classTargets[c]!;
        const count = this.count;
        const value = this.value;
        for (let k = 0; k < ts.length; k++) {
          const e = ts[k]!;
          const t = e >> 2;
          const d = e & 1 ? -p : p;
          const cnt = (count[t] = count[t]! + d);
          if (e & 2) {
            const nv = this.watched(t, cnt, d);
            if (nv !== value[t]) this.set(t, nv);
          } else if (cnt >= 0 !== cnt - d >= 0) this.set(t, cnt >= 0 ? 1 : 0);
        }
      }
    }
    const comps = this.net.comps.length > 0;
    if (comps) this.settle(true);
    const cur = this.cur;
    const diff = this.diff;
    if (dst) for (let w = 0; w < dst.length; w++) dst[w] = cur[w]! ^ diff[w]!;
    else if (!this.big) {
      for (let w = 0; w < diff.length; w++) {
        this.snapW[w] = w;
        this.snapX[w] = diff[w]!;
      }
      this.snapLen = diff.length;
    } else {
      // (playout: only the words whose difference changed since the last ply, see set())
      const dirty = this.dirty;
      for (let k = 0; k < this.dirtyLen; k++) {
        const w = dirty[k]!;
        this.snapW[k] = w;
        this.snapX[k] = diff[w]!;
        this.dirtyMark[w] = 0;
      }
      this.snapLen = this.dirtyLen;
      this.dirtyLen = 0;
    }
    // Moves outside classes are taken back now, in the state they were played in, rather than left set while the
    // successor loads: hex's last move, still set, made the grown group "transfer" again in the new state and its
    // every cell flip twice. (A classed pass stays: the next role's pass cancels it.)
    let back = false;
    for (let r = 0; r < n; r++) {
      const x = this.pick[r]!;
      if (x >= 0 && !cls[x]) {
        this.pick[r] = -1;
        this.set(x, 0);
        back = true;
      }
    }
    if (back && comps) this.settle(true);
  }

  roles(): string[] {
    return [...this.net.roleNames];
  }
  initialState(): GState {
    return this.net.init.slice();
  }
  legal(s: GState, r: number): number[] {
    this.load(s);
    const bits = this.legalBits[r]!;
    const open = this.open(r);
    const ids = this.net.moveIds[r]!;
    const out: number[] = [];
    for (let w = 0; w < bits.length; w++) {
      let x = this.openWord(r, open, w);
      while (x) {
        const b = 31 - Math.clz32(x & -x);
        x &= x - 1;
        out.push(ids[(w << 5) | b]!);
      }
    }
    return out;
  }
  legalMoves(s: GState, role: string): string[] {
    return this.legal(s, this.roleIndex(role))
      .map((m) => this.net.terms.text(m))
      .sort();
  }
  next(s: GState, joint: ReadonlyArray<number>): GState {
    this.load(s);
    const dst = new Uint32Array(this.net.words);
    this.step(joint, dst);
    return dst;
  }
  nextState(s: GState, jointMoves: ReadonlyArray<string | number>): GState {
    if (jointMoves.length !== this.net.roles.length)
      throw new IllegalMoveError(`expected ${this.net.roles.length} moves (one per role), got ${jointMoves.length}`);
    const joint = jointMoves.map((m, r) => {
      if (typeof m === 'number') return m;
      const id = this.parseMove(m);
      if (id === undefined)
        throw new IllegalMoveError(`'${m}' is never a legal move of ${this.net.roleNames[r]} in this game`);
      return id;
    });
    return this.next(s, joint);
  }
  isTerminal(s: GState): boolean {
    this.load(s);
    return this.net.terminalNode >= 0 && this.value[this.net.terminalNode] === 1;
  }
  goalValues(s: GState, r: number): number[] {
    this.load(s);
    this.evalLazy();
    const ns = this.net.goalNodes[r]!;
    const vs = this.net.goalValues[r]!;
    const out: number[] = [];
    for (let i = 0; i < ns.length; i++) if (this.value[ns[i]!] && !out.includes(vs[i]!)) out.push(vs[i]!);
    return out.sort((a, b) => a - b);
  }
  goal(s: GState, role: string): number | null {
    const v = this.goalValues(s, this.roleIndex(role));
    return v.length ? v[v.length - 1]! : null;
  }
  fluents(s: GState): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.net.fluents.length; i++)
      if ((s[i >> 5]! >>> (i & 31)) & 1) out.push(this.net.terms.text(this.net.fluents[i]!));
    return out.sort();
  }
  moveText(m: number): string {
    return this.net.terms.text(m);
  }
  parseMove(text: string): number | undefined {
    let t: Term;
    try {
      t = parseTerm(text);
    } catch {
      return undefined;
    }
    return this.net.terms.lookup(t) || undefined;
  }
  stateKey(s: GState): string {
    let k = '';
    for (let w = 0; w < s.length; w++) k += String.fromCharCode(s[w]! & 0xffff, s[w]! >>> 16);
    return k;
  }
  percepts(): string[] {
    // sheets with `sees` rules are not grounded (see ground())
    return [];
  }

  /**
   * gdl-perf's random playout from `s` inside the net, without building intermediate states: a uniformly random
   * legal move per role until terminal (or `maxPlies`), then every role's goal (null: undefined). The same
   * `rand` sequence from the same state gives the same playout.
   */
  playout(s: GState, rand: () => number, maxPlies = 10_000): PlayoutResult {
    this.load(s);
    this.curRef = null;
    const net = this.net;
    const n = net.roles.length;
    const joint = new Int32Array(n);
    const value = this.value;
    const cur = this.cur;
    const base = net.baseNode;
    let plies = 0;
    for (; plies < maxPlies; plies++) {
      if (net.terminalNode >= 0 && value[net.terminalNode]) break;
      let stuck = false;
      for (let r = 0; r < n; r++) {
        const open = this.open(r);
        const cnt = this.openCount(r, open);
        if (!cnt) {
          stuck = true;
          break;
        }
        // the k-th legal entry: deterministic for a state whatever the net's history
        let k = (rand() * cnt) | 0;
        let w = 0;
        let x = 0;
        for (; ; w++) {
          x = this.openWord(r, open, w);
          const c = popcnt(x);
          if (k < c) break;
          k -= c;
        }
        while (k-- > 0) x &= x - 1;
        joint[r] = net.moveIds[r]![(w << 5) | (31 - Math.clz32(x & -x))]!;
      }
      if (stuck) break;
      this.step(joint, null);
      for (let k = 0; k < this.snapLen; k++) {
        const w = this.snapW[k]!;
        const d = this.snapX[k]!;
        let x = d;
        while (x) {
          const b = 31 - Math.clz32(x & -x);
          x &= x - 1;
          this.set(base[(w << 5) | b]!, ((cur[w]! >>> b) & 1) ^ 1);
        }
        cur[w] = cur[w]! ^ d;
      }
      if (this.net.comps.length) this.settle();
    }
    this.evalLazy();
    const goals: Array<number | null> = [];
    for (let r = 0; r < n; r++) {
      const ns = net.goalNodes[r]!;
      let best: number | null = null;
      for (let i = 0; i < ns.length; i++)
        if (value[ns[i]!] && (best === null || net.goalValues[r]![i]! > best)) best = net.goalValues[r]![i]!;
      goals.push(best);
    }
    return { plies, goals };
  }

  private roleIndex(role: string): number {
    const i = this.net.roleNames.indexOf(role.toLowerCase());
    if (i < 0) throw new IllegalMoveError(`unknown role '${role}'; roles are ${this.net.roleNames.join(', ')}`);
    return i;
  }
}

/** The grounded machine of a prepared sheet (throws GroundingError where the net would be too large or cyclic). */
export function groundedFromPrepared(g: PreparedGame, opts: GroundOptions = {}): GroundMachine {
  return new GroundMachine(groundNet(g, opts));
}

/** Loads a sheet on the grounded reasoner (throws GroundingError where it refuses). */
export function loadGrounded(kif: string, opts: LoadOptions & GroundOptions = {}): GroundMachine {
  return groundedFromPrepared(prepareGame(kif, opts), opts);
}

/**
 * Adds (v = 1) or removes x to or from group g's slice of a sparse set: `items[start .. start + len[g])` holds the
 * members in any order and `pos[x]` is x's index there, so both are O(1) (a removal moves the last member into x's
 * slot). The group and family lists of the grounded net's demultiplexers share this.
 */
function toggleSparse(
  items: Int32Array,
  pos: Int32Array,
  len: Int32Array,
  start: number,
  g: number,
  x: number,
  v: number,
): void {
  if (v) {
    const i = start + len[g]!++;
    items[i] = x;
    pos[x] = i;
  } else {
    const moved = items[start + --len[g]!]!;
    const i = pos[x]!;
    items[i] = moved;
    pos[moved] = i;
  }
}
