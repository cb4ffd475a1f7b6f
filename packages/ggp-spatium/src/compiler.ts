// (m)GDL → JavaScript. After Łańcucki, "GGP with Advanced Reasoning and Board Knowledge Discovery" (2014,
// arXiv:1401.5813): each rule becomes a function of nested loops over the state's fluents, the joint move and
// the tables of other relations, with body literals ordered at compile time (bound literals first, `not` and
// `distinct` right after their variables are bound). Symbols are interned (terms.ts), a state is a sorted array
// of fluent ids, and each relation is evaluated bottom-up on demand, once per state (or per joint move for
// relations that depend on `does`); recursive relations iterate their strongly connected component to a
// fixpoint. State-independent relations are computed once at load. Checked against interpreter.ts.
import { createHash } from 'node:crypto';
import { CompileError, IllegalMoveError } from './errors.js';
import {
  isCompound,
  isGround,
  isVar,
  type Literal,
  parseTerm,
  type Rule,
  rulesText,
  type Term,
  termText,
} from './gdl.js';
import { LruCache } from './lru.js';
import type { GameMachine } from './machine.js';
import { type LoadOptions, type PreparedGame, prepareGame, prepareRules } from './prepare.js';
import { TermTable, TupleSet } from './terms.js';
import { dependencyGraph, reachable, sccs } from './validate.js';

type Cls = 0 | 1 | 2; // static, state, move
const STATIC = 0;
const STATE = 1;
const MOVE = 2;

interface RelInfo {
  key: string; // name/arity
  name: string;
  arity: number;
  idx: number;
  cls: Cls;
  scc: number;
}

/** What the generated code needs to rebuild its constants in a fresh term table, in order. */
export interface CompiledProgram {
  hash: string;
  roles: string[];
  source: string;
  /** names interned in this order get ids 1.. */
  names: string[];
  /** ground terms (name, argument ids) interned in this order: their ids are 1.. */
  ground: Array<[string, number[]]>;
  functors: Array<[string, number]>;
  rels: Array<{ name: string; arity: number; cls: Cls }>;
  staticOrder: number[];
  /** compute-function index per relation */
  computeOf: number[];
  compileMs: number;
}

// bounded (see lru.ts); an evicted program's factory is rebuilt from its source by CompiledMachine
const cache = new LruCache<string, { program: CompiledProgram; factory: (...a: unknown[]) => unknown }>(64);

class Gen {
  names = new Map<string, number>();
  functors = new Map<string, number>(); // "name/arity" → fid
  nameList: string[] = [];
  functorList: Array<[string, number]> = [];
  private lab = 0;

  name(s: string): number {
    let id = this.names.get(s);
    if (id === undefined) {
      id = this.names.size + 1;
      this.names.set(s, id);
      this.nameList.push(s);
    }
    return id;
  }
  /** Ground terms interned at load in this order (post-order), so their ids are compile-time constants. */
  groundList: Array<[string, number[]]> = [];
  private groundIds = new Map<string, number>();
  constant(s: string): number {
    return this.ground(s);
  }
  ground(t: Term): number {
    if (isVar(t)) throw new CompileError('ground() of a variable');
    const key = termText(t);
    let id = this.groundIds.get(key);
    if (id === undefined) {
      const f = typeof t === 'string' ? t : t.f;
      const args = typeof t === 'string' ? [] : t.args.map((a) => this.ground(a));
      this.name(f);
      id = this.groundList.length + 1;
      this.groundList.push([f, args]);
      this.groundIds.set(key, id);
    }
    return id;
  }
  functor(f: string, n: number): number {
    const k = `${f}/${n}`;
    let id = this.functors.get(k);
    if (id === undefined) {
      id = this.functors.size + 1;
      this.functors.set(k, id);
      this.functorList.push([f, n]);
    }
    return id;
  }
  label(): number {
    return this.lab++;
  }
}

/** Whether a generated on-demand rule function is loop-free and asks no other view or relation computation. */
const straight = (code: string) => !/for \(|\bQ\d+_\d+\(|F\[|\.rows\(|IX\(/.test(code);

const vn = (v: string) => `v_${v.slice(1).replace(/[^a-zA-Z0-9_]/g, (c) => `$${c.charCodeAt(0)}`)}`;

function termVarsOf(t: Term, out: Set<string>): Set<string> {
  if (isVar(t)) out.add(t.v);
  else if (isCompound(t)) for (const a of t.args) termVarsOf(a, out);
  return out;
}
function litVars(l: Literal, out = new Set<string>()): Set<string> {
  if (l.kind === 'atom') for (const a of l.atom.args) termVarsOf(a, out);
  else if (l.kind === 'not') litVars(l.lit, out);
  else if (l.kind === 'distinct') {
    termVarsOf(l.a, out);
    termVarsOf(l.b, out);
  }
  return out;
}
const allBound = (t: Term, b: Set<string>) => [...termVarsOf(t, new Set())].every((v) => b.has(v));

/** Suffix of a relaxed relation's name: `|` cannot occur in a KIF symbol, so it names no relation of a sheet. */
const RELAXED = '|rx';
/** Rows past which a relaxation is given up (its view is then asked every question). */
const RXMAX = 262_144;
/** Questions passed by a relaxation's gate after which it is kept only if it turned away one in eight. */
const RXTRY = 1024;

/**
 * The state-independent relaxation of the views in `want` (relation keys) and of the views they ask: each rule
 * without its `true`, `does` and `not` literals, a view it asks replaced by that view's relaxation (or dropped
 * where that view has none), and a `distinct` kept only where its variables stay bound. Every derivation in any
 * state keeps its head in the relaxation, so a question outside it is answered "no" without evaluating the rules
 * (chess's line views asked from a piece that stands on no line with the king).
 *
 * A relaxation keeps only some of its view's columns (`cols`; a projection is as sound a filter): not a column
 * that some rule fills from one-argument static guards alone (chess's `(coordinate ?ignorex)` in the base rules
 * of its `*_ig` line views, which would multiply the table by every coordinate twice and filter nothing), nor one
 * whose head variable no kept literal binds any more. A view left with no column gets no relaxation.
 */
export function relaxRules(
  rules: Rule[],
  want: Iterable<string>,
): { rules: Rule[]; relaxed: Set<string>; cols: Map<string, number[]> } {
  const key = (a: { rel: string; args: Term[] }) => `${a.rel}/${a.args.length}`;
  const byKey = new Map<string, Rule[]>();
  for (const r of rules) {
    const k = key(r.head);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(r);
  }
  const depG = dependencyGraph(rules);
  const stateName = new Map<string, boolean>();
  const isState = (rel: string) => {
    let s = stateName.get(rel);
    if (s === undefined) {
      const seen = reachable(depG, [rel]);
      s = seen.has('true') || seen.has('does');
      stateName.set(rel, s);
    }
    return s;
  };
  const isView = (a: { rel: string; args: Term[] }) => byKey.has(key(a)) && isState(a.rel);
  const kept = (l: Literal): l is { kind: 'atom'; atom: { rel: string; args: Term[] } } =>
    l.kind === 'atom' && l.atom.rel !== 'true' && l.atom.rel !== 'does';
  // the views asked, transitively, through positive literals
  const ok = new Set<string>();
  const todo = [...want];
  while (todo.length) {
    const k = todo.pop()!;
    if (ok.has(k) || !byKey.has(k) || k.endsWith('/0')) continue;
    if (!isState(k.slice(0, k.lastIndexOf('/')))) continue;
    ok.add(k);
    for (const r of byKey.get(k)!) for (const l of r.body) if (kept(l)) todo.push(key(l.atom));
  }
  const cols = new Map<string, number[]>();
  for (const k of ok) {
    const rs = byKey.get(k)!;
    const n = rs[0]!.head.args.length;
    const guardOnly = (c: number) =>
      rs.some((r) => {
        const t = r.head.args[c]!;
        if (!isVar(t)) return false;
        if (r.head.args.filter((u) => termVarsOf(u, new Set()).has(t.v)).length !== 1) return false;
        const uses = r.body.filter((l) => litVars(l).has(t.v));
        return uses.length > 0 && uses.every((l) => kept(l) && l.atom.args.length === 1 && !isView(l.atom));
      });
    cols.set(
      k,
      Array.from({ length: n }, (_, c) => c).filter((c) => !guardOnly(c)),
    );
  }
  const relaxBody = (r: Rule): { rule: Rule; unbound: number[] } => {
    const body: Literal[] = [];
    for (const l of r.body) {
      if (!kept(l)) continue;
      const k = key(l.atom);
      if (!isView(l.atom)) body.push(l);
      else if (ok.has(k))
        body.push({
          kind: 'atom',
          atom: { rel: l.atom.rel + RELAXED, args: cols.get(k)!.map((c) => l.atom.args[c]!) },
        });
    }
    const head = cols.get(key(r.head))!.map((c) => r.head.args[c]!);
    // A literal with a variable used nowhere else only tests that some row exists, and enumerating its rows
    // derives the same head again for each (chess's `(different_cells ?cx ?cy ?u ?v)`, once the projection has
    // dropped ?cx and ?cy: 255 times per capture square); where its other variables are bound by other literals
    // it binds nothing the head needs and is dropped (a relaxation may lose tests, never rows)
    for (let again = true; again; ) {
      again = false;
      for (let i = 0; i < body.length; i++) {
        const vs = litVars(body[i]!);
        if (!vs.size) continue;
        const inHead = new Set<string>();
        for (const t of head) termVarsOf(t, inHead);
        const elsewhere = new Set<string>();
        body.forEach((l, j) => {
          if (j !== i) litVars(l, elsewhere);
        });
        const local = [...vs].filter((v) => !inHead.has(v) && !elsewhere.has(v));
        if (!local.length || ![...vs].every((v) => local.includes(v) || elsewhere.has(v))) continue;
        body.splice(i, 1);
        again = true;
        break;
      }
    }
    const bound = new Set<string>();
    for (const l of body) litVars(l, bound);
    const cs = cols.get(key(r.head))!;
    const unbound = cs.filter((c) => ![...termVarsOf(r.head.args[c]!, new Set())].every((v) => bound.has(v)));
    for (const l of r.body) if (l.kind === 'distinct' && [...litVars(l)].every((v) => bound.has(v))) body.push(l);
    return { rule: { head: { rel: r.head.rel + RELAXED, args: head }, body }, unbound };
  };
  // a column whose head variable a rule no longer binds is given up, and a view with no column left: to a fixpoint
  for (let changed = true; changed; ) {
    changed = false;
    for (const k of [...ok]) {
      for (const r of byKey.get(k)!) {
        const { unbound } = relaxBody(r);
        if (!unbound.length) continue;
        cols.set(
          k,
          cols.get(k)!.filter((c) => !unbound.includes(c)),
        );
        changed = true;
      }
      if (!cols.get(k)!.length) {
        ok.delete(k);
        changed = true;
      }
    }
  }
  const out: Rule[] = [];
  for (const k of ok) for (const r of byKey.get(k)!) out.push(relaxBody(r).rule);
  return { rules: out, relaxed: ok, cols };
}

/** Compiles prepared rules to a program (cached by the SHA-256 of the canonical rule text). */
export function compileProgram(g: PreparedGame): CompiledProgram {
  const t0 = performance.now();
  const text = rulesText(g.rules);
  // the written arities change which views are answered on demand, so they are part of the program's identity
  const written = Object.entries(g.writtenArity ?? {})
    .map(([k, n]) => `${k}=${n}`)
    .sort()
    .join(' ');
  const hash = createHash('sha256')
    .update(`${g.roles.join(' ')}\n${written ? `${written}\n` : ''}${text}`)
    .digest('hex');
  const hit = cache.get(hash);
  if (hit) return hit.program;
  // two passes: the first program computes the state-independent relations and the initial state, whose sizes
  // then guide the literal order of the second
  const first = generate(g, `${hash}:1`, undefined);
  const m = new CompiledMachine(first.program);
  const stats: Stats = { rel: new Map(), bucket: new Map(), distinct: new Map(), count: new Map() };
  first.program.rels.forEach((r, i) => {
    if (r.cls !== STATIC) return;
    const R = m.R[i]!;
    const distinct = Array.from({ length: r.arity }, (_, c) => {
      const set = new Set<number>();
      for (let k = 0; k < R.n; k++) set.add(R.d[k * r.arity + c]!);
      return set.size;
    });
    stats.rel.set(`${r.name}/${r.arity}`, { n: R.n, distinct });
  });
  const init = m.initialState();
  const seen = new Map<string, Array<Set<number>>>();
  for (const id of init.ids) {
    const k = `${m.T.names[m.T.tn[id]!]}/${m.T.ta[id]}`;
    stats.bucket.set(k, (stats.bucket.get(k) ?? 0) + 1);
    const n = m.T.ta[id]!;
    if (!seen.has(k))
      seen.set(
        k,
        Array.from({ length: n }, () => new Set<number>()),
      );
    for (let c = 0; c < n; c++) {
      const a = m.T.args[m.T.to[id]! + c]!;
      seen.get(k)![c]!.add(a);
      if (m.T.ta[a] === 0) {
        const ck = `${k}/${c}/${m.T.text(a)}`;
        stats.count.set(ck, (stats.count.get(ck) ?? 0) + 1);
      }
    }
  }
  for (const [k, cs] of seen)
    stats.distinct.set(
      k,
      cs.map((c) => c.size),
    );
  cache.delete(`${hash}:1`);
  // the second program also filters the yes/no questions of the first through their views' relaxations
  const second = generate(g, hash, stats, first.fullAsked);
  second.program.compileMs = performance.now() - t0;
  cache.set(hash, second);
  return second.program;
}

interface Stats {
  rel: Map<string, { n: number; distinct: number[] }>;
  bucket: Map<string, number>;
  /** distinct values per argument of a functor's fluents in the initial state */
  distinct: Map<string, number[]>;
  /** fluents of a functor in the initial state with a constant at an argument ("name/arity/argument/constant") */
  count: Map<string, number>;
}

function generate(
  g: PreparedGame,
  hash: string,
  statsIn: Stats | undefined,
  relaxFor?: Iterable<string>,
): { program: CompiledProgram; factory: (...a: unknown[]) => unknown; fullAsked: string[] } {
  let stats = statsIn;
  const gen = new Gen();
  for (const r of g.roles) gen.constant(r);
  // without measured sizes, tables made only of ground facts are measured from the sheet itself; derived
  // state-independent relations are assumed large (arithmetic tables such as sum/lt often are)
  if (!stats) {
    stats = { rel: new Map(), bucket: new Map(), distinct: new Map(), count: new Map() };
    const facts = new Map<string, Rule[]>();
    const derived = new Set<string>();
    for (const r of g.rules) {
      const k = `${r.head.rel}/${r.head.args.length}`;
      if (r.body.length || !r.head.args.every(isGround)) derived.add(k);
      else facts.set(k, [...(facts.get(k) ?? []), r]);
    }
    for (const [k, rs] of facts) {
      if (derived.has(k)) continue;
      const n = rs[0]!.head.args.length;
      const distinct = Array.from({ length: n }, (_, c) => new Set(rs.map((r) => termText(r.head.args[c]!))).size);
      stats.rel.set(k, { n: rs.length, distinct });
    }
    for (const k of derived) {
      const n = Number(k.slice(k.lastIndexOf('/') + 1));
      stats.rel.set(k, { n: 64 ** Math.min(n, 2), distinct: Array.from({ length: n }, () => 64) });
    }
  }

  // relations and their classes
  const rels = new Map<string, RelInfo>();
  const relOf = (name: string, arity: number): RelInfo => {
    const key = `${name}/${arity}`;
    let r = rels.get(key);
    if (!r) {
      r = { key, name, arity, idx: rels.size, cls: STATIC, scc: -1 };
      rels.set(key, r);
    }
    return r;
  };
  // relaxations of the views asked with every argument given: static relations like any other, computed on
  // first use (see RXE below) and tested before each such question
  const rx = relaxFor ? relaxRules(g.rules, relaxFor) : { rules: [], relaxed: new Set<string>(), cols: new Map() };
  const keyed: Rule[] = rx.rules.length ? [...g.rules, ...rx.rules] : g.rules;
  const depG = dependencyGraph(keyed);
  for (const r of keyed) relOf(r.head.rel, r.head.args.length);
  // classes by reachability of true/does, on names (arity conflicts are validation errors)
  const clsOfName = new Map<string, Cls>();
  for (const n of depG.keys()) {
    const seen = reachable(depG, [n]);
    clsOfName.set(n, seen.has('does') ? MOVE : seen.has('true') ? STATE : STATIC);
  }
  for (const r of rels.values()) r.cls = clsOfName.get(r.name) ?? STATIC;
  // SCCs over relation keys
  const succ = new Map<string, string[]>();
  const walk = (l: Literal, out: string[]) => {
    if (l.kind === 'atom' && l.atom.rel !== 'true' && l.atom.rel !== 'does') {
      const k = `${l.atom.rel}/${l.atom.args.length}`;
      if (rels.has(k)) out.push(k);
    } else if (l.kind === 'not') walk(l.lit, out);
  };
  for (const r of keyed) {
    const k = `${r.head.rel}/${r.head.args.length}`;
    if (!succ.has(k)) succ.set(k, []);
    for (const l of r.body) walk(l, succ.get(k)!);
  }
  const comps = sccs(rels.keys(), (n) => succ.get(n) ?? []);
  comps.forEach((c, i) => {
    for (const k of c) rels.get(k)!.scc = i;
  });
  const recursive = comps.map((c) => c.length > 1 || (succ.get(c[0]!) ?? []).includes(c[0]!));

  // declare functors of every compound appearing in rules (for state buckets)
  const declTerm = (t: Term) => {
    if (typeof t === 'string') gen.constant(t);
    else if (isCompound(t)) {
      gen.name(t.f);
      gen.functor(t.f, t.args.length);
      t.args.forEach(declTerm);
    }
  };
  const declLit = (l: Literal) => {
    if (l.kind === 'atom') l.atom.args.forEach(declTerm);
    else if (l.kind === 'not') declLit(l.lit);
    else if (l.kind === 'distinct') {
      declTerm(l.a);
      declTerm(l.b);
    }
  };
  for (const r of keyed) {
    r.head.args.forEach(declTerm);
    r.body.forEach(declLit);
  }

  const roleIndex = new Map(g.roles.map((r, i) => [r, i]));

  // term expression for a fully bound term
  const texpr = (t: Term, bound?: Set<string>, findOnly = false): string => {
    if (typeof t === 'string') return String(gen.constant(t));
    if (isVar(t)) return vn(t.v);
    if (isGround(t)) return String(gen.ground(t));
    if (bound) {
      // a term already matched in an enclosing loop: reuse its id instead of rebuilding it
      const pre = `\u0001${termText(t)}\u0001`;
      for (const b of bound) if (b.startsWith(pre)) return b.slice(pre.length);
    }
    const a = t.args.map((x) => texpr(x, bound, findOnly));
    const f = gen.name(t.f);
    // membership tests look terms up without interning them (an unknown term is in no state; mark[-1] is undefined)
    const op = findOnly ? 'f' : 'mk';
    // up to 8 arguments through a scratch array per arity (MK5 …: a function, so nested terms are built first), not
    // an array literal per call (chess's `(move ?p ?u ?v ?x ?y)` in every legal move)
    const plain =
      a.length <= 4
        ? `T.${op}${a.length}(${f}, ${a.join(', ')})`
        : a.length <= 8
          ? `${op.toUpperCase()}${a.length}(${f}, ${a.join(', ')})`
          : `T.${op}A(${f}, [${a.join(', ')}])`;
    // the cache's own function sees only the term's variables: it rebuilds the term without the caller's
    // matched ids or nested caches (which name the caller's loop counters)
    return (bound && cachedTerm(t, bound, texpr(t, undefined, findOnly))) || plain;
  };

  // A term whose variables all come from scans of complete static tables has the same id for the same rows in
  // every state: its id is kept in a table indexed by those rows (hex's legal rule looked up (cell ?m ?n red),
  // (cell ?m ?n blue) and built (place ?m ?n) by hashing, 243 times a ply). Lookups that find no term are not
  // kept: the term may be made later.
  let termCaches: string[] = [];
  let cacheOK = false;
  const cachedTerm = (t: Term, bound: Set<string>, plain: string): string | null => {
    if (!cacheOK) return null;
    const vars = [...termVarsOf(t, new Set())];
    if (!vars.length) return null;
    const loops = new Map<number, number>(); // loop label → relation index
    for (const v of vars) {
      const pre = `\u0002${v}\u0002`;
      let hit: string | undefined;
      for (const b of bound) if (b.startsWith(pre)) hit = b.slice(pre.length);
      if (hit === undefined) return null;
      const [k, idx] = hit.split('\u0002').map(Number) as [number, number];
      loops.set(k, idx);
    }
    const ks = [...loops.keys()].sort((x, y) => x - y);
    const c = termCaches.length;
    const size = ks.map((k) => `R[${loops.get(k)}].n`).join(' * ');
    const key = ks.reduce((q, k, j) => (j === 0 ? `i${k}` : `(${q}) * R[${loops.get(k)}].n + i${k}`), '');
    const ps = vars.map(vn);
    termCaches.push(
      [
        `let CT${c} = null;`,
        `function ct${c}(q, ${ps.join(', ')}) {`,
        `const c = CT${c} || (CT${c} = CTA(${size}));`,
        `if (c === null) return ${plain};`,
        'let x = c[q];',
        `if (x <= 0) { x = ${plain}; if (x > 0) c[q] = x; }`,
        'return x;',
        '}',
      ].join('\n'),
    );
    return `ct${c}(${key}, ${ps.join(', ')})`;
  };

  /** Code that matches term id expression `x` against pattern `p`, binding free variables; fails with `fail`. */
  const matchCode = (x: string, p: Term, bound: Set<string>, fail: string, out: string[]) => {
    if (typeof p === 'string') out.push(`if (${x} !== ${gen.constant(p)}) ${fail};`);
    else if (isVar(p)) {
      if (bound.has(p.v)) out.push(`if (${x} !== ${vn(p.v)}) ${fail};`);
      else {
        out.push(`const ${vn(p.v)} = ${x};`);
        bound.add(p.v);
      }
    } else if (allBound(p, bound)) out.push(`if (${x} !== ${texpr(p, bound)}) ${fail};`);
    else {
      const k = gen.label();
      out.push(`const x${k} = ${x};`);
      out.push(`if (T.tn[x${k}] !== ${gen.name(p.f)} || T.ta[x${k}] !== ${p.args.length}) ${fail};`);
      out.push(`const o${k} = T.to[x${k}];`);
      p.args.forEach((a, i) => {
        matchCode(`T.args[o${k} + ${i}]`, a, bound, fail, out);
      });
      bound.add(`\u0001${termText(p)}\u0001x${k}`);
    }
  };

  const rel = (l: { rel: string; args: Term[] }) => rels.get(`${l.rel}/${l.args.length}`);

  /**
   * The argument of a `true` pattern whose per-state index is walked (a constant or a bound variable), or -1:
   * not for buckets that start small but not empty (ticTacToe's 9 cells: a scan costs what building the index
   * does).
   */
  const indexArg = (p: Term, bound: Set<string>): number => {
    if (!isCompound(p)) return -1;
    const size0 = stats?.bucket.get(`${p.f}/${p.args.length}`) ?? 0;
    if (size0 !== 0 && size0 < 16) return -1;
    return p.args.findIndex((t) => typeof t === 'string' || (isVar(t) && bound.has(t.v)));
  };

  /**
   * Estimated work of a positive literal given the bound variables: `iter` rows visited per call and `fan` rows
   * that pass. A `true` pattern scans its functor's bucket unless fully bound (then one membership test);
   * static relations are indexed on bound columns; other derived relations are scanned.
   */
  const estimate = (l: Literal, bound: Set<string>): { iter: number; fan: number } => {
    const a = (l as { atom: { rel: string; args: Term[] } }).atom;
    const nb = a.args.filter((t) => allBound(t, bound)).length;
    if (nb === a.args.length) return { iter: 1, fan: 0.5 };
    if (a.rel === 'does') return allBound(a.args[0]!, bound) ? { iter: 1, fan: 0.7 } : { iter: 2, fan: 1.5 };
    if (a.rel === 'true') {
      const p = a.args[0]!;
      if (!isCompound(p)) return { iter: 40, fan: 40 };
      const b = p.args.filter((t) => allBound(t, bound)).length;
      const fk = `${p.f}/${p.args.length}`;
      const size = Math.max(8, stats?.bucket.get(fk) ?? 16);
      const dist = stats?.distinct.get(fk);
      // the rows that pass: from the initial state's distinct values per given argument where measured
      let fan = size / 4 ** b;
      // a constant argument selects the rows holding it in the initial state (chess's 32 blank cells of 64), not
      // a uniform share of the distinct values (64 / 13)
      const share = (t: Term, i: number) =>
        typeof t === 'string' && stats?.count !== undefined && stats.bucket.has(fk)
          ? Math.max(1, stats.count.get(`${fk}/${i}/${t}`) ?? 0) / size
          : 1 / Math.max(1, dist![i]!);
      if (dist) {
        fan = size;
        p.args.forEach((t, i) => {
          if (allBound(t, bound)) fan *= share(t, i);
        });
      }
      fan = Math.max(0.3, fan);
      // a given plain argument walks the per-state index (see emitAtom): only the rows sharing that argument
      // are visited
      const j = indexArg(p, bound);
      const iter = j < 0 ? size : dist ? Math.max(1, size * share(p.args[j]!, j)) : Math.max(1, size / 4);
      return { iter, fan };
    }
    const r = rel(a);
    if (!r) return { iter: 0.1, fan: 0 };
    const n = 8 * Math.max(1, a.args.length);
    if (r.cls === STATIC) {
      const st = stats?.rel.get(r.key);
      if (st) {
        let f = st.n;
        a.args.forEach((t, i) => {
          if (allBound(t, bound)) f /= Math.max(1, st.distinct[i]!);
        });
        f = Math.max(st.n ? 0.5 : 0.01, f);
        return { iter: f, fan: f };
      }
      const f = Math.max(0.5, n / 8 ** nb);
      return { iter: f, fan: f };
    }
    if (lazy.has(r.idx)) {
      // an on-demand view builds its answers for each binding: the work is the answer set, and an answer set
      // with few arguments bound can be most of a wide relation (chess's `queen_move_ig` asked with only the
      // ignored cell bound is every queen move on the board), so fewer bound arguments must cost much more.
      // A view the mGDL normaliser widened (`legal2~move/6`, chess's `legal2/2`: the moves of the pieces on the
      // board) is sized by its width as written, each given argument taking its share: asked with the player
      // alone it is that player's moves, one answer set a state, where costing it as a 6-wide view made the
      // planner ask it ~500 times a state fully bound (once per own piece and empty square). Asked with nothing
      // given it keeps the wide cost: a free use would make it a table of every role's moves, which the
      // on-demand form avoids (englishDraughts asks for the player in control only).
      const w = g.writtenArity?.[r.key];
      const f =
        w === undefined || nb === 0
          ? Math.max(0.5, 8 ** Math.min(a.args.length, 5) / 8 ** nb)
          : Math.max(0.5, 8 ** ((Math.min(w, 5) * (a.args.length - nb)) / a.args.length));
      return { iter: f, fan: f };
    }
    return { iter: n, fan: Math.max(0.5, n / 4 ** nb) };
  };

  const safeEstimate = (l: Literal, bound: Set<string>) => {
    const e = estimate(l, bound);
    return Number.isFinite(e.iter) && Number.isFinite(e.fan) ? e : { iter: 1e6, fan: 1e3 };
  };

  /** Orders positive literals by least estimated work (exhaustive over subsets up to 12 literals, else greedy). */
  const planOrder = (pos: Literal[], bound0: Set<string>): Literal[] => {
    const n = pos.length;
    if (n <= 1) return pos;
    const varsOf = pos.map((l) => litVars(l));
    const boundOf = (mask: number) => {
      const b = new Set(bound0);
      for (let i = 0; i < n; i++) if (mask & (1 << i)) for (const v of varsOf[i]!) b.add(v);
      return b;
    };
    if (n > 12) {
      // greedy (bodies can be long: bit masks would overflow past 31 literals)
      const out: Literal[] = [];
      const used = new Array<boolean>(n).fill(false);
      const b = new Set(bound0);
      while (out.length < n) {
        let best = -1;
        let bc = Number.POSITIVE_INFINITY;
        for (let i = 0; i < n; i++) {
          if (used[i]) continue;
          const e = safeEstimate(pos[i]!, b);
          const c = e.iter * Math.max(1, e.fan);
          if (best < 0 || c < bc) {
            bc = c;
            best = i;
          }
        }
        used[best] = true;
        out.push(pos[best]!);
        for (const v of varsOf[best]!) b.add(v);
      }
      return out;
    }
    const full = (1 << n) - 1;
    const cost = new Float64Array(1 << n).fill(Number.POSITIVE_INFINITY);
    const fan = new Float64Array(1 << n);
    const last = new Int32Array(1 << n).fill(-1);
    cost[0] = 0;
    fan[0] = 1;
    for (let m = 0; m < full; m++) {
      if (cost[m] === Number.POSITIVE_INFINITY) continue;
      const b = boundOf(m);
      for (let i = 0; i < n; i++) {
        if (m & (1 << i)) continue;
        const e = safeEstimate(pos[i]!, b);
        const m2 = m | (1 << i);
        const c = cost[m]! + fan[m]! * e.iter;
        if (c < cost[m2]! - 1e-9) {
          cost[m2] = c;
          fan[m2] = fan[m]! * e.fan;
          last[m2] = i;
        }
      }
    }
    const order: Literal[] = [];
    for (let m = full; m; m &= ~(1 << last[m]!)) {
      if (last[m]! < 0) return pos; // no finite plan (cannot happen with finite estimates): keep the written order
      order.unshift(pos[last[m]!]!);
    }
    return order;
  };

  /** Emits the body from literal i with the remaining literals, then `tail`. */
  const emitBody = (
    pos: Literal[],
    negs: Literal[],
    bound: Set<string>,
    tail: (b: Set<string>) => string,
    curScc: number,
  ): string => {
    // negations/distincts whose variables are all bound go first
    for (let i = 0; i < negs.length; i++) {
      if ([...litVars(negs[i]!)].every((v) => bound.has(v))) {
        const l = negs[i]!;
        const rest = [...negs.slice(0, i), ...negs.slice(i + 1)];
        return emitCheck(l, bound, (b) => emitBody(pos, rest, b, tail, curScc), curScc);
      }
    }
    if (!pos.length) {
      // leftover negations with unbound variables (lenient loading): existential inside the negation
      if (negs.length) {
        const [l, ...rest] = negs;
        return emitCheck(l!, bound, (b) => emitBody(pos, rest, b, tail, curScc), curScc);
      }
      return tail(bound);
    }
    // positives come in planned order (planOrder)
    const [l, ...rest] = pos as [Literal, ...Literal[]];
    return emitAtom(
      (l as { atom: { rel: string; args: Term[] } }).atom,
      new Set(bound),
      (b) => emitBody(rest, negs, b, tail, curScc),
      curScc,
    );
  };

  /** A positive atom: loops binding its free variables, calling `inner` with the extended bound set. */
  let deltaAtom: unknown = null;
  const emitAtom = (
    a: { rel: string; args: Term[] },
    bound: Set<string>,
    inner: (b: Set<string>) => string,
    curScc: number,
  ): string => {
    const k = gen.label();
    const L = `L${k}`;
    const fail = `continue ${L}`;
    const out: string[] = [];
    if (a.rel === 'true') {
      const p = a.args[0]!;
      if (allBound(p, bound)) return `if (C.mark[${texpr(p, bound, true)}] === C.stamp) {\n${inner(bound)}\n}`;
      if (isVar(p)) {
        out.push(`${L}: for (let i${k} = 0, a${k} = C.ids, n${k} = a${k}.length; i${k} < n${k}; i${k}++) {`);
        matchCode(`a${k}[i${k}]`, p, bound, fail, out);
      } else if (isCompound(p)) {
        const fid = gen.functor(p.f, p.args.length);
        // an argument given (a constant or a bound variable): walk the state's per-argument index of this
        // functor's fluents (built once per state on first use) instead of scanning the whole bucket
        const j = indexArg(p, bound);
        if (j >= 0) {
          const v = texpr(p.args[j]!, bound);
          out.push(
            `const X${k} = IX(${fid}, ${j});`,
            `${L}: for (let i${k} = X${k}.st[${v}] === C.s ? X${k}.hd[${v}] : -1, a${k} = C.b[${fid}]; i${k} >= 0; i${k} = X${k}.nx[i${k}]) {`,
          );
        } else
          out.push(`${L}: for (let i${k} = 0, a${k} = C.b[${fid}], n${k} = C.bn[${fid}]; i${k} < n${k}; i${k}++) {`);
        out.push(`const x${k} = a${k}[i${k}]; const o${k} = T.to[x${k}];`);
        p.args.forEach((t, i) => {
          matchCode(`T.args[o${k} + ${i}]`, t, bound, fail, out);
        });
        bound.add(`\u0001${termText(p)}\u0001x${k}`);
      } else return '';
      out.push(inner(bound), '}');
      return out.join('\n');
    }
    if (a.rel === 'does') {
      const [rt, mt] = a.args as [Term, Term];
      if (typeof rt === 'string') {
        const ri = roleIndex.get(rt);
        if (ri === undefined) return '';
        out.push(`${L}: do {`, `const x${k} = C.joint[${ri}];`);
        matchCode(`x${k}`, mt, bound, fail, out);
        out.push(inner(bound), '} while (false);');
        return out.join('\n');
      }
      if (!isVar(rt)) return '';
      out.push(`${L}: for (let i${k} = 0; i${k} < ${g.roles.length}; i${k}++) {`);
      matchCode(`C.roleT[i${k}]`, rt, bound, fail, out);
      matchCode(`C.joint[i${k}]`, mt, bound, fail, out);
      out.push(inner(bound), '}');
      return out.join('\n');
    }
    const r = rel(a);
    if (!r) return ''; // never defined: false
    const R = `R[${r.idx}]`;
    const fullyBound = a.args.every((t) => allBound(t, bound));
    let mask = 0;
    a.args.forEach((t, i) => {
      if (allBound(t, bound)) mask |= 1 << i;
    });
    if (mask === 0 && r.arity > 0) unboundUse.add(r.idx);
    if (!masksOf.has(r.idx)) masksOf.set(r.idx, new Set());
    masksOf.get(r.idx)!.add(mask);
    if (lazy.has(r.idx)) {
      // demand-driven: a memoised top-down query for these bound arguments
      const argsB = a.args.filter((_, i) => mask & (1 << i)).map((t) => texpr(t, bound));
      const call = `Q${r.idx}_${mask}(${argsB.join(', ')})`;
      if (fullyBound) return `if (${call}) {\n${inner(bound)}\n}`;
      out.push(`const r${k} = ${call};`, `${L}: for (let i${k} = 0; i${k} < r${k}.n; i${k}++) {`);
      out.push(`const d${k} = r${k}.d, o${k} = i${k} * ${r.arity};`);
      a.args.forEach((t, i) => {
        if (!(mask & (1 << i))) matchCode(`d${k}[o${k} + ${i}]`, t, bound, fail, out);
      });
      out.push(inner(bound), '}');
      return out.join('\n');
    }
    if (r.cls !== STATIC && r.scc !== curScc)
      out.push(`if (${R}.v !== ${r.cls === MOVE ? 'C.m' : 'C.s'}) F[${r.scc}]();`);
    if (r.arity === 0) {
      out.push(`if (${R}.n > 0) {`, inner(bound), '}');
      return out.join('\n');
    }
    const nb = a.args.map((t) => allBound(t, bound));
    const isDelta = a === deltaAtom;
    if (nb.every(Boolean) && r.cls === STATIC && r.scc !== curScc && !isDelta) {
      // a complete state-independent table: a dense bit map over its columns' values, built on first use (SBM)
      staticHas.add(r.idx);
      out.push(`if (sb${r.idx}(${a.args.map((t) => texpr(t, bound)).join(', ')})) {`, inner(bound), '}');
      return out.join('\n');
    }
    if (nb.every(Boolean)) {
      a.args.forEach((t, i) => {
        out.push(`${R}.t[${i}] = ${texpr(t, bound)};`);
      });
      if (isDelta)
        out.push(`const f${k} = ${R}.find();`, `if (f${k} >= ${R}.lo && f${k} < ${R}.hi) {`, inner(bound), '}');
      else out.push(`if (${R}.has()) {`, inner(bound), '}');
      return out.join('\n');
    }
    const cols = nb.map((b, i) => (b ? i : -1)).filter((i) => i >= 0);
    const n = r.arity;
    // static tables are indexed once; a recursive relation keeps its index up to date while its component grows
    const useIx = cols.length > 0 && (r.cls === STATIC || (r.scc === curScc && recursive[curScc]!));
    if (useIx && r.cls === STATIC && r.scc !== curScc && !isDelta) {
      // a complete static table: its rows grouped by the given columns' values once (SRM), looked up densely
      const c1 = cols[0]!;
      const c2 = cols.length > 1 ? cols[1]! : -1;
      const S = `SR${r.idx}_${c1}_${c2 + 1}`;
      staticRows.add(`${r.idx}_${c1}_${c2}`);
      out.push(
        `const S${k} = ${S} || (${S} = SRM(${R}, ${c1}, ${c2}));`,
        `const q${k} = SRK(S${k}, ${texpr(a.args[c1]!, bound)}, ${c2 >= 0 ? texpr(a.args[c2]!, bound) : 0});`,
        `if (q${k} >= 0) ${L}: for (let i${k} = S${k}.st[q${k}], e${k} = S${k}.st[q${k} + 1]; i${k} < e${k}; i${k}++) {`,
        `const d${k} = ${R}.d, o${k} = S${k}.rw[i${k}] * ${n};`,
      );
    } else if (useIx) {
      const c1 = cols[0]!;
      const c2 = cols.length > 1 ? cols[1]! : -1;
      out.push(
        `const r${k} = ${R}.rows(${c1}, ${c2}, ${texpr(a.args[c1]!, bound)}, ${c2 >= 0 ? texpr(a.args[c2]!, bound) : 0});`,
        `if (r${k} !== undefined) ${L}: for (let i${k} = 0; i${k} < r${k}.length; i${k}++) {`,
        `const d${k} = ${R}.d, o${k} = r${k}[i${k}] * ${n};`,
      );
      if (isDelta) out.push(`if (r${k}[i${k}] < ${R}.lo || r${k}[i${k}] >= ${R}.hi) continue ${L};`);
    } else if (isDelta) {
      out.push(
        `${L}: for (let i${k} = ${R}.lo; i${k} < ${R}.hi; i${k}++) {`,
        `const d${k} = ${R}.d, o${k} = i${k} * ${n};`,
      );
    } else {
      // live length: recursive relations grow while their component iterates
      out.push(`${L}: for (let i${k} = 0; i${k} < ${R}.n; i${k}++) {`, `const d${k} = ${R}.d, o${k} = i${k} * ${n};`);
    }
    const before = new Set(bound);
    a.args.forEach((t, i) => {
      if (useIx && (i === cols[0] || i === cols[1])) return;
      matchCode(`d${k}[o${k} + ${i}]`, t, bound, fail, out);
    });
    // variables read from row i<k> of a complete static table (for cachedTerm)
    if (!useIx && !isDelta && r.cls === STATIC && r.scc !== curScc)
      for (const v of [...bound])
        if (!before.has(v) && v.startsWith('?')) bound.add(`\u0002${v}\u0002${k}\u0002${r.idx}`);
    out.push(inner(bound), '}');
    return out.join('\n');
  };

  /** not / distinct with all variables bound (or existential leftovers). */
  const emitCheck = (l: Literal, bound: Set<string>, inner: (b: Set<string>) => string, curScc: number): string => {
    if (l.kind === 'distinct') {
      if (!allBound(l.a, bound) || !allBound(l.b, bound)) throw new CompileError('distinct with unbound variables');
      return `if (${texpr(l.a, bound)} !== ${texpr(l.b, bound)}) {\n${inner(bound)}\n}`;
    }
    if (l.kind === 'not') {
      const x = l.lit;
      if (x.kind === 'distinct') {
        if (!allBound(x.a, bound) || !allBound(x.b, bound)) throw new CompileError('distinct with unbound variables');
        return `if (${texpr(x.a, bound)} === ${texpr(x.b, bound)}) {\n${inner(bound)}\n}`;
      }
      if (x.kind === 'not') return emitBody([x.lit], [], new Set(bound), () => inner(bound), curScc);
      if (x.kind === 'atom') {
        const k = gen.label();
        return `let f${k} = false;\nN${k}: {\n${emitAtom(x.atom, new Set(bound), () => `f${k} = true; break N${k};`, curScc)}\n}\nif (!f${k}) {\n${inner(bound)}\n}`;
      }
    }
    throw new CompileError(`unexpected literal ${l.kind} (or must be removed first)`);
  };

  // A yes/no question to a view with a relaxation: "no" at once when its arguments are not a row of the
  // relaxation. The relaxation's components (its own and those it reads) are computed on first use, in dependency
  // order; one that outgrows RXMAX rows is given up (RangeError), and the views leaning on it ask every question.
  let rxGates: string[] = [];
  const relaxedGate = (m: RelInfo, ps: string[]): string[] => {
    const cs: number[] | undefined = rx.cols.get(m.key);
    const x = cs && rels.get(`${m.name}${RELAXED}/${cs.length}`);
    if (!x || !rx.relaxed.has(m.key)) return [];
    const need = new Set<string>();
    for (const todo = [x.key]; todo.length; ) {
      const k = todo.pop()!;
      if (need.has(k)) continue;
      need.add(k);
      todo.push(...(succ.get(k) ?? []).filter((to) => rels.get(to)!.name.endsWith(RELAXED)));
    }
    const list = [...new Set([...need].map((k) => rels.get(k)!.scc))].sort((a, b) => a - b);
    staticHas.add(x.idx);
    // a gate that turns away fewer than one question in eight of its first RXTRY that pass is switched off: a
    // view whose questions almost all lie in its relaxation (chess's `threatened`) only pays for the test
    rxGates.push(`let RX${m.idx} = 0, RXP${m.idx} = 0, RXN${m.idx} = 0;`);
    return [
      `if (RX${m.idx} === 0) RX${m.idx} = RXE([${list.join(', ')}]);`,
      `if (RX${m.idx} === 1) {`,
      `if (!sb${x.idx}(${cs.map((c) => ps[c]).join(', ')})) { RXN${m.idx}++; return false; }`,
      `if (++RXP${m.idx} === ${RXTRY} && RXN${m.idx} * 7 < ${RXTRY}) RX${m.idx} = -1;`,
      '}',
    ];
  };
  const pos_ = (r: Rule) => r.body.filter((l) => l.kind === 'atom');
  const negs_ = (r: Rule) => r.body.filter((l) => l.kind !== 'atom');
  let lazy = new Set<number>();
  let unboundUse = new Set<number>();
  /** static relations tested with every argument given (sb<idx> functions) */
  let staticHas = new Set<number>();
  /** static relations enumerated with one or two columns given: "idx_c1_c2" (SR… groupings) */
  let staticRows = new Set<string>();
  const masksOf = new Map<number, Set<number>>();
  let ruleFns: string[] = [];
  let computeFns: string[] = [];
  const rulesOfRel = new Map<number, number[]>();
  const emitAll = () => {
    ruleFns = [];
    computeFns = [];
    termCaches = [];
    rulesOfRel.clear();
    unboundUse = new Set();
    staticHas = new Set();
    rxGates = [];
    staticRows = new Set();
    // rule functions; in a recursive component one variant per recursive body literal, which reads only the
    // previous round's new rows (semi-naive evaluation)
    const variantsOf = new Map<number, string[]>();
    const lazyRules = new Map<string, string[]>();
    const qCode = new Map<string, string>();
    keyed.forEach((r, ri) => {
      const hr = rel(r.head)!;
      // static rules run while their own inputs may still grow; the rest run after every static table is complete
      cacheOK = hr.cls !== STATIC;
      if (lazy.has(hr.idx)) {
        // one function per binding pattern asked: bound head arguments are given, the body enumerates the rest
        for (const mask of masksOf.get(hr.idx) ?? []) {
          const out: string[] = [];
          const b = new Set<string>();
          const params: string[] = [];
          r.head.args.forEach((t, i) => {
            if (!(mask & (1 << i))) return;
            params.push(`a${i}`);
            matchCode(`a${i}`, t, b, 'return', out);
          });
          const tail = (bb: Set<string>) => {
            const lines = r.head.args.map((t, i) => {
              if (!allBound(t, bb))
                throw new CompileError(`unsafe rule for '${r.head.rel}': a head variable is unbound`);
              return `O.t[${i}] = ${texpr(t, bb)};`;
            });
            return `${lines.join(' ')} O.add();${mask === (1 << r.head.args.length) - 1 ? ' return;' : ''}`;
          };
          const code = emitBody(planOrder(pos_(r), b), negs_(r), b, tail, hr.scc);
          const fn = `function q${ri}_${mask}(O${params.map((x) => `, ${x}`).join('')}) { // ${r.head.rel} (on demand)\n${out.join('\n')}\n${code}\n}`;
          ruleFns.push(fn);
          qCode.set(`q${ri}_${mask}`, fn);
          const key = `${hr.idx}_${mask}`;
          if (!lazyRules.has(key)) lazyRules.set(key, []);
          lazyRules.get(key)!.push(`q${ri}_${mask}`);
        }
        return;
      }
      const pos = pos_(r);
      const negs = negs_(r);
      // `next` is read only by the machine's next(), which sorts and dedups: its rows skip the hash set
      const bag = hr.name === 'next' && hr.arity === 1 && !recursive[hr.scc];
      const head = (b: Set<string>) => {
        if (bag) {
          if (!allBound(r.head.args[0]!, b))
            throw new CompileError(`unsafe rule for '${r.head.rel}': a head variable is unbound`);
          return `H.push(${texpr(r.head.args[0]!, b)});`;
        }
        const lines = r.head.args.map((t, i) => {
          if (!allBound(t, b)) throw new CompileError(`unsafe rule for '${r.head.rel}': a head variable is unbound`);
          return `H.t[${i}] = ${texpr(t, b)};`;
        });
        return `${lines.join(' ')} H.add();`;
      };
      const plan = planOrder(pos, new Set());
      const recLits = recursive[hr.scc]
        ? pos.map((l) => (l as { atom: { rel: string; args: Term[] } }).atom).filter((a) => rel(a)?.scc === hr.scc)
        : [];
      if (!recLits.length) {
        deltaAtom = null;
        const code = emitBody(plan, negs, new Set(), head, hr.scc);
        ruleFns.push(`function rule${ri}() { // ${r.head.rel}\nconst H = R[${hr.idx}];\n${code}\n}`);
      } else {
        const names: string[] = [];
        recLits.forEach((a, j) => {
          deltaAtom = a;
          // the delta literal goes first (it is the smallest table); the rest is planned given its bindings
          const first = pos.find((l) => (l as { atom: unknown }).atom === a)!;
          const order = [
            first,
            ...planOrder(
              pos.filter((l) => l !== first),
              litVars(first),
            ),
          ];
          const code = emitBody(order, negs, new Set(), head, hr.scc);
          ruleFns.push(
            `function rule${ri}_${j}() { // ${r.head.rel} (delta ${j})\nconst H = R[${hr.idx}];\n${code}\n}`,
          );
          names.push(`rule${ri}_${j}`);
        });
        deltaAtom = null;
        variantsOf.set(ri, names);
      }
      if (!rulesOfRel.has(hr.idx)) rulesOfRel.set(hr.idx, []);
      rulesOfRel.get(hr.idx)!.push(ri);
    });

    // compute functions per SCC
    comps.forEach((c, ci) => {
      const members = c.map((k) => rels.get(k)!);
      if (members.every((m) => lazy.has(m.idx))) {
        computeFns.push(`function comp${ci}() {}`);
        for (const m of members) {
          const n = m.arity;
          for (const mask of masksOf.get(m.idx) ?? []) {
            const ps = Array.from({ length: n }, (_, i) => `a${i}`).filter((_, i) => mask & (1 << i));
            const fns = lazyRules.get(`${m.idx}_${mask}`) ?? [];
            const stamp = m.cls === MOVE ? 'C.m' : 'C.s';
            const M = `MM${m.idx}_${mask}`;
            if (mask === (1 << n) - 1 && !recursive[m.scc] && fns.every((f) => straight(qCode.get(f) ?? 'for ('))) {
              // every argument given and every rule a straight run of look-ups (no loop, no other view asked):
              // asking again costs less than the three tuple-set look-ups of a memo (chess's pawn_advance,
              // asked once per pawn and empty cell)
              computeFns.push(
                `const ${M} = { ok: false, t: new Int32Array(${Math.max(1, n)}), add() { this.ok = true; } };`,
                `function Q${m.idx}_${mask}(${ps.join(', ')}) { // ${m.name}/${n}: straight look-ups, not memoised`,
                `const O = ${M}; O.ok = false;`,
                ...fns.map((f) => `if (!O.ok) ${f}(O${ps.map((x) => `, ${x}`).join('')});`),
                'return O.ok;',
                '}',
              );
              continue;
            }
            if (mask === (1 << n) - 1) {
              // every argument given: a yes/no answer, memoised in two tuple sets per state; the answer object is
              // one per query function (saved and restored around a nested call of the same function) and the
              // in-progress stack a flat array, so a query allocates nothing
              computeFns.push(
                `const ${M} = { ok: false, t: new Int32Array(${Math.max(1, n)}), add() { this.ok = true; } };`,
                `const ${M}q = new QM(${n});`,
                `function Q${m.idx}_${mask}(${ps.join(', ')}) { // ${m.name}/${n}: memoised per ${m.cls === MOVE ? 'joint move' : 'state'}`,
                // (not for the straight views above: their look-ups cost what the gate's test does)
                ...relaxedGate(m, ps),
                `const Y = ${M}q;`,
                `if (Y.v !== ${stamp}) { Y.clear(); Y.v = ${stamp}; }`,
                `${ps.map((x, i) => `Y.t[${i}] = ${x};`).join(' ')} const r = Y.row();`,
                // a call already in progress (a cycle) proves nothing; a "no" that met one is not remembered
                'if (!Y.fresh) { const x = Y.val[r]; if (x === 1) return true; if (x === 0) return false; if (x === 2) { C.hit++; return false; } }',
                'Y.val[r] = 2;',
                'const h0 = C.hit;',
                `const O = ${M}, saved = O.ok; O.ok = false;`,
                ...fns.map((f) => `if (!O.ok) ${f}(O${ps.map((x) => `, ${x}`).join('')});`),
                'const ok = O.ok; O.ok = saved;',
                'Y.val[r] = ok ? 1 : C.hit === h0 ? 0 : 3;',
                'return ok;',
                '}',
              );
              continue;
            }
            // answer sets per binding, keyed by a tuple set over the bound arguments whose row numbers index the
            // entries: no string keys, and the entries and their answer sets are reused from state to state
            const k0 = ps.length;
            computeFns.push(
              `const ${M} = new QM(${k0}); const ${M}e = [];`,
              `function Q${m.idx}_${mask}(${ps.join(', ')}) { // ${m.name}/${n}, memoised per ${m.cls === MOVE ? 'joint move' : 'state'}`,
              `if (${M}.v !== ${stamp}) { ${M}.v = ${stamp}; ${M}.clear(); }`,
              `${ps.map((x, i) => `${M}.t[${i}] = ${x};`).join(' ')}`,
              `const f = ${M}.row();`,
              'let e;',
              `if (!${M}.fresh) {`,
              `e = ${M}e[f];`,
              // a call in progress (a cycle): hand back what it has so far and make it iterate
              'if (!e.stale) { if (!e.done) { C.hit++; e.own++; } return e.rows; }',
              // answers forgotten (they leaned on an outer call): a fresh set, since a caller may still hold the old
              `e.rows = new TS(${n}, '${m.name}', 2); e.done = false; e.own = 0; e.stale = false;`,
              '} else {',
              `e = ${M}e[f];`,
              `if (e === undefined) ${M}e[f] = e = { rows: new TS(${n}, '${m.name}', 2), done: false, own: 0, stale: false };`,
              'else { e.rows.clear(); e.done = false; e.own = 0; e.stale = false; }',
              '}',
              'const h0 = C.hit;',
              'for (;;) {',
              'const n0 = e.rows.n, own0 = e.own;',
              ...fns.map((f) => `${f}(e.rows${ps.map((x) => `, ${x}`).join('')});`),
              'if (e.own === own0 || e.rows.n === n0) break;',
              '}',
              // answers that leaned on an outer call still in progress are not final: forget them
              'if (C.hit - h0 === e.own) e.done = true; else e.stale = true;',
              'return e.rows;',
              '}',
            );
          }
        }
        return;
      }
      const ris = members.flatMap((m) => rulesOfRel.get(m.idx) ?? []);
      const stamp = (m: RelInfo) => (m.cls === MOVE ? 'C.m' : m.cls === STATE ? 'C.s' : '-2');
      const lines = members.map((m) => `R[${m.idx}].clear(); R[${m.idx}].v = ${stamp(m)}; R[${m.idx}].lo = 0;`);
      if (recursive[ci]) {
        const base = ris.filter((ri) => !variantsOf.has(ri)).map((ri) => `rule${ri}();`);
        const rec = ris.flatMap((ri) => (variantsOf.get(ri) ?? []).map((f) => `${f}();`));
        const setHi = members.map((m) => `R[${m.idx}].hi = R[${m.idx}].n;`).join(' ');
        const empty = members.map((m) => `R[${m.idx}].lo === R[${m.idx}].hi`).join(' && ');
        const setLo = members.map((m) => `R[${m.idx}].lo = R[${m.idx}].hi;`).join(' ');
        lines.push(...base, `for (;;) {`, setHi, `if (${empty}) break;`, ...rec, setLo, '}');
      } else lines.push(...ris.map((ri) => `rule${ri}();`));
      computeFns.push(`function comp${ci}() {\n${lines.join('\n')}\n}`);
    });
  };
  // Relations only ever asked with every argument bound (chess's `threatened`, `different_cells`-style views)
  // are not materialised but answered on demand, memoised per state: full tables of such views can be huge.
  const relList0 = [...rels.values()];
  const KEEP = new Set(['legal', 'next', 'goal', 'terminal', 'init', 'role', 'base', 'input', 'sees']);
  // (binding patterns are bit masks: relations wider than 30 arguments are always materialised)
  lazy = new Set(
    [...rels.values()].filter((r) => r.cls !== STATIC && !KEEP.has(r.name) && r.arity <= 30).map((r) => r.idx),
  );
  let masksSeen = -1;
  for (let round = 0; round < 50; round++) {
    emitAll();
    // recursive components are answered on demand only if no one asks them with every argument free
    // on demand: views only ever asked with every argument given, and wide views (4+ arguments: chess's
    // `queen_move_ig`-style tables, whose full extension is huge, and its `queen_move`/`rook_move` lines, which
    // legal2 asks only from the squares its pieces stand on) that no one asks with every argument free
    const next = new Set(
      [...lazy].filter((i) => {
        const ms = masksOf.get(i) ?? new Set<number>();
        const n = relList0[i]!.arity;
        const allFull = [...ms].every((m) => m === (1 << n) - 1);
        return allFull || (n >= 4 && !unboundUse.has(i));
      }),
    );
    // a component is evaluated one way: all on demand, or all materialised
    for (const [ci, c] of comps.entries()) {
      const ms = c.map((k) => rels.get(k)!.idx);
      if (ms.some((i) => !next.has(i))) for (const i of ms) next.delete(i);
      void ci;
    }
    const nm = [...masksOf.values()].reduce((a, m) => a + m.size, 0);
    if (next.size === lazy.size && nm === masksSeen) break;
    masksSeen = nm;
    lazy = next;
  }
  emitAll();
  const relList = [...rels.values()];
  // relaxations are computed on first use (RXE), not at load
  const staticOrder = comps
    .map((c, ci) => ({ c, ci }))
    .filter(({ c }) => rels.get(c[0]!)!.cls === STATIC && !c[0]!.includes(RELAXED))
    .map(({ ci }) => ci);
  const fullAsked = [...lazy]
    .filter((i) => masksOf.get(i)?.has((1 << relList[i]!.arity) - 1))
    .map((i) => relList[i]!.key);

  const source = [
    '"use strict";',
    'const TS = R[0].constructor;',
    'const NO = R.map((r) => new TS(r.arity, r.name));',
    // memo of a yes/no query: one find-or-insert per call (rows hold the arguments, val 0 no, 1 yes, 2 in progress,
    // 3 unknown: a no that leaned on a call in progress); cleared per state by a generation stamp
    // a complete static table as a dense bit map: per column, argument id → value index (m) and value count (w);
    // bits null when the product of the counts is too large
    'function SBM(X) {',
    'const a = X.arity, n = X.n, d = X.d, m = [], w = [];',
    'let size = 1;',
    'for (let c = 0; c < a; c++) { let mx = 0; for (let r = 0; r < n; r++) mx = Math.max(mx, d[r * a + c]); const mc = new Int32Array(mx + 1).fill(-1); let k = 0; for (let r = 0; r < n; r++) { const v = d[r * a + c]; if (mc[v] < 0) mc[v] = k++; } m.push(mc); w.push(k); size *= Math.max(1, k); }',
    'if (size > 4194304) return { bits: null, m, w };',
    'const bits = new Uint8Array(size);',
    'for (let r = 0; r < n; r++) { let i = 0; for (let c = 0; c < a; c++) i = i * w[c] + m[c][d[r * a + c]]; bits[i] = 1; }',
    'return { bits, m, w };',
    '}',
    // a complete static table's rows grouped by the values of one or two columns (counting sort, so each group
    // keeps insertion order): dense keys m1[k1] * w2 + m2[k2], or a map when that range is too large
    'function SRM(X, c1, c2) {',
    'const a = X.arity, n = X.n, d = X.d;',
    'const col = (c) => { let mx = 0; for (let r = 0; r < n; r++) mx = Math.max(mx, d[r * a + c]); const m = new Int32Array(mx + 1).fill(-1); let k = 0; for (let r = 0; r < n; r++) { const v = d[r * a + c]; if (m[v] < 0) m[v] = k++; } return { m, k }; };',
    'const A = col(c1), B = c2 >= 0 ? col(c2) : null;',
    'const w2 = B ? B.k : 1;',
    'let map = null, K = A.k * w2;',
    'if (K > 1048576) { map = new Map(); K = 0; for (let r = 0; r < n; r++) { const key = d[r * a + c1] * 67108864 + (c2 >= 0 ? d[r * a + c2] : 0); if (!map.has(key)) map.set(key, K++); } }',
    'const S = { m1: A.m, m2: B ? B.m : null, w2, map, st: new Int32Array(K + 1), rw: new Int32Array(n) };',
    'const keys = new Int32Array(n);',
    'for (let r = 0; r < n; r++) { keys[r] = SRK(S, d[r * a + c1], c2 >= 0 ? d[r * a + c2] : 0); S.st[keys[r] + 1]++; }',
    'for (let q = 0; q < K; q++) S.st[q + 1] += S.st[q];',
    'const fill = S.st.slice(0, K);',
    'for (let r = 0; r < n; r++) S.rw[fill[keys[r]]++] = r;',
    'return S;',
    '}',
    'function SRK(S, k1, k2) {',
    'if (S.map !== null) { const x = S.map.get(k1 * 67108864 + k2); return x === undefined ? -1 : x; }',
    'if (k1 < 0 || k1 >= S.m1.length) return -1;',
    'const a = S.m1[k1]; if (a < 0) return -1;',
    'if (S.m2 === null) return a;',
    'if (k2 < 0 || k2 >= S.m2.length) return -1;',
    'const b = S.m2[k2]; return b < 0 ? -1 : a * S.w2 + b;',
    '}',
    'function qmHash(k, o, a) { let h = 0x811c9dc5; for (let i = 0; i < a; i++) { h = Math.imul(h ^ k[o + i], 0xcc9e2d51); h = Math.imul((h << 15) | (h >>> 17), 0x1b873593); } h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; return h >>> 0; }',
    'class QM {',
    'constructor(a) { this.a = a; this.v = -1; this.n = 0; this.gen = 1; this.fresh = false; this.t = new Int32Array(Math.max(1, a)); this.k = new Int32Array(Math.max(1, a) * 16); this.val = new Int8Array(16); this.sl = new Int32Array(64); this.sg = new Int32Array(64); }',
    'clear() { this.n = 0; this.gen++; }',
    'row() {',
    'const a = this.a, t = this.t, sl = this.sl, sg = this.sg, gen = this.gen, mask = sl.length - 1;',
    'let k = this.k, i = qmHash(t, 0, a) & mask;',
    'for (;;) { if (sg[i] !== gen) break; const r = sl[i], o = r * a; let j = 0; while (j < a && k[o + j] === t[j]) j++; if (j === a) { this.fresh = false; return r; } i = (i + 1) & mask; }',
    'const r = this.n;',
    'if ((r + 1) * a > k.length) { const g = new Int32Array(k.length * 2); g.set(k); this.k = k = g; }',
    'if (r + 1 > this.val.length) { const g = new Int8Array(this.val.length * 2); g.set(this.val); this.val = g; }',
    'for (let j = 0; j < a; j++) k[r * a + j] = t[j];',
    'this.n = r + 1; sl[i] = r; sg[i] = gen; this.fresh = true;',
    'if (this.n * 2 > sl.length) this.rehash();',
    'return r;',
    '}',
    'rehash() {',
    'const a = this.a, k = this.k, size = this.sl.length * 2, sl = new Int32Array(size), sg = new Int32Array(size), mask = size - 1, gen = this.gen;',
    'for (let r = 0; r < this.n; r++) { let i = qmHash(k, r * a, a) & mask; while (sg[i] === gen) i = (i + 1) & mask; sl[i] = r; sg[i] = gen; }',
    'this.sl = sl; this.sg = sg;',
    '}',
    '}',
    // per-state indexes of a functor's fluents by one argument: chains through the bucket (hd: first row per
    // argument id, nx: next row), valid while st[id] / v equal the state counter C.s
    'const IXS = [];',
    'function IX(f, j) {',
    'const L = IXS[f] || (IXS[f] = []);',
    'let X = L[j];',
    'if (X === undefined) L[j] = X = { v: -1, st: new Int32Array(0), hd: new Int32Array(0), nx: new Int32Array(16) };',
    'if (X.v === C.s) return X;',
    'X.v = C.s;',
    'const a = C.b[f], n = C.bn[f], s = C.s;',
    'if (X.nx.length < n) X.nx = new Int32Array(n * 2);',
    'if (X.st.length < T.size + 1) { X.st = new Int32Array(T.size * 2 + 16); X.hd = new Int32Array(T.size * 2 + 16); }',
    'const st = X.st, hd = X.hd, nx = X.nx;',
    // built from the end, so each chain lists rows in bucket order (the order a scan would meet them)
    'for (let i = n - 1; i >= 0; i--) { const v = T.args[T.to[a[i]] + j]; if (st[v] !== s) { st[v] = s; hd[v] = -1; } nx[i] = hd[v]; hd[v] = i; }',
    'return X;',
    '}',
    ...[...staticRows].map((x) => {
      const [i, c1, c2] = x.split('_').map(Number) as [number, number, number];
      return `let SR${i}_${c1}_${c2 + 1} = null;`;
    }),
    ...[...staticHas].map((i) => {
      const n = relList[i]!.arity;
      const ps = Array.from({ length: n }, (_, c) => `a${c}`);
      const dense = ps
        .map((x, c) => `if (${x} >= M[${c}].length || (c = M[${c}][${x}]) < 0) return false; i = i * W[${c}] + c;`)
        .join(' ');
      return [
        `let SB${i} = null;`,
        `function sb${i}(${ps.join(', ')}) {`,
        `const S = SB${i} || (SB${i} = SBM(R[${i}]));`,
        `if (S.bits === null) { const X = R[${i}];${ps.map((x, c) => ` X.t[${c}] = ${x};`).join('')} return X.has(); }`,
        `const M = S.m, W = S.w; let i = 0, c = 0; ${dense}`,
        'return S.bits[i] === 1;',
        '}',
      ].join('\n');
    }),
    'function CTA(n) { return n <= 1048576 ? new Int32Array(n) : null; }',
    // relaxations (relaxedGate): 0 not computed, 1 complete, -1 given up
    `const RXST = new Int8Array(${comps.length});`,
    ...relList.filter((r) => r.name.endsWith(RELAXED)).map((r) => `R[${r.idx}].maxRows = ${RXMAX};`),
    'function RXE(L) {',
    'for (let j = 0; j < L.length; j++) {',
    'const ci = L[j];',
    'if (RXST[ci] === -1) return -1;',
    'if (RXST[ci] === 1) continue;',
    'try { F[ci](); RXST[ci] = 1; } catch (e) { if (!(e instanceof RangeError)) throw e; RXST[ci] = -1; return -1; }',
    '}',
    'return 1;',
    '}',
    ...rxGates,
    ...[5, 6, 7, 8].flatMap((n) => {
      const ps = Array.from({ length: n }, (_, i) => `a${i}`);
      const fill = ps.map((x, i) => `s[${i}] = ${x};`).join(' ');
      return [
        `const TA${n} = new Int32Array(${n});`,
        `function MK${n}(f, ${ps.join(', ')}) { const s = TA${n}; ${fill} return T.mkA(f, s); }`,
        `function F${n}(f, ${ps.join(', ')}) { const s = TA${n}; ${fill} return T.fA(f, s); }`,
      ];
    }),
    ...termCaches,
    ...ruleFns,
    ...computeFns,
    `const F = [${comps.map((_, ci) => `comp${ci}`).join(', ')}];`,
    'return F;',
  ].join('\n');
  const program: CompiledProgram = {
    hash,
    roles: g.roles,
    source,
    names: gen.nameList,
    ground: gen.groundList,
    functors: gen.functorList,
    rels: relList.map((r) => ({ name: r.name, arity: r.arity, cls: r.cls })),
    staticOrder,
    computeOf: relList.map((r) => r.scc),
    compileMs: 0,
  };
  let factory: (...a: unknown[]) => unknown;
  try {
    factory = new Function('T', 'C', 'R', source) as (...a: unknown[]) => unknown;
  } catch (e) {
    throw new CompileError(`generated code does not parse: ${(e as Error).message}`);
  }
  cache.set(hash, { program, factory });
  return { program, factory, fullAsked };
}

/** The per-machine evaluation context the generated code reads. */
export class Context {
  ids: Int32Array = new Int32Array(0);
  mark = new Int32Array(1024);
  stamp = 0;
  /** state stamp and move stamp (validity of per-state / per-joint-move relations) */
  s = 0;
  m = 0;
  /** cycles met by on-demand queries (see Q functions) */
  hit = 0;
  b: Int32Array[] = [];
  bn: Int32Array;
  joint: Int32Array;
  roleT: Int32Array;
  cur: CState | null = null;
  constructor(nf: number, nroles: number) {
    for (let i = 0; i <= nf; i++) this.b.push(new Int32Array(16));
    this.bn = new Int32Array(nf + 1);
    this.joint = new Int32Array(nroles);
    this.roleT = new Int32Array(nroles);
  }
}

export interface CState {
  ids: Int32Array;
}

export class CompiledMachine implements GameMachine<CState, number> {
  readonly kind = 'compiled';
  readonly T = new TermTable();
  readonly C: Context;
  readonly R: TupleSet[];
  private readonly F: Array<() => void>;
  private readonly roleNames: string[];
  private readonly legalRel: number;
  private readonly nextRel: number;
  private readonly terminalRel: number;
  private readonly goalRel: number;
  private readonly initRel: number;
  private readonly seesRel: number;
  private readonly sc: number[];

  constructor(readonly program: CompiledProgram) {
    const T = this.T;
    for (const n of program.names) T.name(n);
    program.functors.forEach(([f, n], i) => {
      T.declareFunctor(T.name(f), n, i + 1);
    });
    program.ground.forEach(([f, args], i) => {
      if (T.mkA(T.name(f), args) !== i + 1) throw new CompileError('ground term ids out of order');
    });
    this.roleNames = program.roles;
    this.C = new Context(program.functors.length, program.roles.length);
    program.roles.forEach((r, i) => {
      this.C.roleT[i] = T.constant(r);
    });
    this.R = program.rels.map((r) => new TupleSet(r.arity, `${r.name}/${r.arity}`));
    const hit = cache.get(program.hash);
    const factory = hit ? hit.factory : (new Function('T', 'C', 'R', program.source) as (...a: unknown[]) => unknown);
    this.F = factory(T, this.C, this.R) as Array<() => void>;
    const find = (name: string, arity: number) => program.rels.findIndex((r) => r.name === name && r.arity === arity);
    this.legalRel = find('legal', 2);
    this.nextRel = find('next', 1);
    this.terminalRel = find('terminal', 0);
    this.goalRel = find('goal', 2);
    this.initRel = find('init', 1);
    this.seesRel = find('sees', 2);
    this.sc = program.computeOf;
    // state-independent relations, once (with an empty state loaded)
    this.load({ ids: new Int32Array(0) });
    for (const ci of program.staticOrder) this.F[ci]!();
  }

  private load(s: CState): void {
    const C = this.C;
    if (C.cur === s) return;
    C.cur = s;
    C.s++;
    C.m++;
    C.stamp++;
    C.ids = s.ids;
    if (this.T.size > C.mark.length) {
      C.mark = new Int32Array(Math.max(this.T.size * 2, 1024));
      C.stamp = 1;
    }
    const mark = C.mark;
    const st = C.stamp;
    C.bn.fill(0);
    const tf = this.T.tf;
    for (let i = 0; i < s.ids.length; i++) {
      const id = s.ids[i]!;
      mark[id] = st;
      const f = tf[id]!;
      if (f) {
        const n = C.bn[f]!;
        let b = C.b[f]!;
        if (n >= b.length) {
          const g = new Int32Array(b.length * 2);
          g.set(b);
          C.b[f] = b = g;
        }
        b[n] = id;
        C.bn[f] = n + 1;
      }
    }
  }

  private ensure(rel: number, cls: 'C.s' | 'C.m'): TupleSet | undefined {
    if (rel < 0) return undefined;
    const R = this.R[rel]!;
    const want = cls === 'C.m' ? this.C.m : this.C.s;
    if (this.program.rels[rel]!.cls !== STATIC && R.v !== want) this.F[this.sc[rel]!]!();
    return R;
  }

  roles(): string[] {
    return [...this.roleNames];
  }
  initialState(): CState {
    const R = this.initRel >= 0 ? this.R[this.initRel]! : undefined;
    const ids = R ? Int32Array.from(R.d.subarray(0, R.n)) : new Int32Array(0);
    return { ids: sortUnique(ids) };
  }
  legal(s: CState, r: number): number[] {
    this.load(s);
    const R = this.ensure(this.legalRel, 'C.s');
    const out: number[] = [];
    if (!R) return out;
    const role = this.C.roleT[r]!;
    const d = R.d;
    for (let i = 0, n = R.n * 2; i < n; i += 2) if (d[i] === role) out.push(d[i + 1]!);
    return out;
  }
  legalMoves(s: CState, role: string): string[] {
    return this.legal(s, this.roleIndex(role))
      .map((m) => this.T.text(m))
      .sort();
  }
  /** Loads state `s` and the joint move (move ids per role); relations that read `does` recompute on change. */
  private loadJoint(s: CState, joint: ReadonlyArray<number>): void {
    this.load(s);
    const C = this.C;
    let changed = false;
    for (let i = 0; i < joint.length; i++)
      if (C.joint[i] !== joint[i]) {
        C.joint[i] = joint[i]!;
        changed = true;
      }
    if (changed) C.m++;
  }
  /** Move texts or ids, one per role, to ids; IllegalMoveError for a wrong count or a text that is not a term. */
  private parseJoint(jointMoves: ReadonlyArray<string | number>): number[] {
    if (jointMoves.length !== this.roleNames.length)
      throw new IllegalMoveError(`expected ${this.roleNames.length} moves (one per role), got ${jointMoves.length}`);
    return jointMoves.map((m) => {
      if (typeof m === 'number') return m;
      const id = this.parseMove(m);
      if (id === undefined) throw new IllegalMoveError(`'${m}' is not a GDL term`);
      return id;
    });
  }
  next(s: CState, joint: ReadonlyArray<number>): CState {
    this.loadJoint(s, joint);
    const R = this.ensure(this.nextRel, 'C.m');
    if (!R) return { ids: new Int32Array(0) };
    const n = R.n;
    const d = R.d;
    const words = (this.T.size + 31) >>> 5;
    if (words > 4 * n) return { ids: sortUnique(d.slice(0, n)) };
    // few terms for the rows: set bits by id and read them back in order (sorted and deduplicated in one pass,
    // instead of the typed-array sort, which was a tenth of hex's playout time)
    let bm = this.bits;
    if (bm.length < words) this.bits = bm = new Int32Array(words * 2);
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      bm[x >>> 5] |= 1 << (x & 31);
    }
    const out = this.rowsOut.length >= n ? this.rowsOut : (this.rowsOut = new Int32Array(n * 2));
    let w = 0;
    for (let j = 0; j < words; j++) {
      let b = bm[j]!;
      if (b === 0) continue;
      bm[j] = 0;
      while (b !== 0) {
        const t = b & -b;
        out[w++] = (j << 5) + 31 - Math.clz32(t);
        b ^= t;
      }
    }
    return { ids: out.slice(0, w) };
  }
  /** scratch of next(): a bit per term id (kept all zero between calls) and the ids read back */
  private bits = new Int32Array(0);
  private rowsOut = new Int32Array(0);
  nextState(s: CState, jointMoves: ReadonlyArray<string | number>): CState {
    return this.next(s, this.parseJoint(jointMoves));
  }
  percepts(s: CState, jointMoves: ReadonlyArray<string | number>, role: string): string[] {
    const r = this.roleIndex(role);
    this.loadJoint(s, this.parseJoint(jointMoves));
    const C = this.C;
    const R = this.ensure(this.seesRel, 'C.m');
    if (!R) return [];
    const out = new Set<string>();
    for (let i = 0; i < R.n; i++) if (R.d[2 * i] === C.roleT[r]) out.add(this.T.text(R.d[2 * i + 1]!));
    return [...out].sort();
  }
  isTerminal(s: CState): boolean {
    this.load(s);
    const R = this.ensure(this.terminalRel, 'C.s');
    return !!R && R.n > 0;
  }
  goalValues(s: CState, r: number): number[] {
    this.load(s);
    const R = this.ensure(this.goalRel, 'C.s');
    if (!R) return [];
    const role = this.C.roleT[r]!;
    const vs = new Set<number>();
    for (let i = 0; i < R.n; i++)
      if (R.d[2 * i] === role) {
        const v = this.T.num[R.d[2 * i + 1]!]!;
        if (!Number.isNaN(v)) vs.add(v);
      }
    return [...vs].sort((a, b) => a - b);
  }
  goal(s: CState, role: string): number | null {
    const v = this.goalValues(s, this.roleIndex(role));
    return v.length ? v[v.length - 1]! : null;
  }
  fluents(s: CState): string[] {
    return [...s.ids].map((id) => this.T.text(id)).sort();
  }
  moveText(m: number): string {
    return this.T.text(m);
  }
  parseMove(text: string): number | undefined {
    let t: Term;
    try {
      t = parseTerm(text);
    } catch {
      return undefined;
    }
    const build = (x: Term): number => {
      if (typeof x === 'string') return this.T.constant(x);
      if (isVar(x)) throw new IllegalMoveError('a move must be ground');
      return this.T.mkA(this.T.name(x.f), x.args.map(build));
    };
    try {
      return build(t);
    } catch {
      return undefined;
    }
  }
  stateKey(s: CState): string {
    return s.ids.join(',');
  }
  /** Fluent ids of a state (for features and hashing). */
  termText(id: number): string {
    return this.T.text(id);
  }
  private roleIndex(role: string): number {
    const i = this.roleNames.indexOf(role.toLowerCase());
    if (i < 0) throw new IllegalMoveError(`unknown role '${role}'; roles are ${this.roleNames.join(', ')}`);
    return i;
  }
}

function sortUnique(a: Int32Array): Int32Array {
  a.sort();
  let w = 0;
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[i - 1]) a[w++] = a[i]!;
  return w === a.length ? a : a.slice(0, w);
}

/** Loads a sheet on the compiled reasoner (throws CompileError where it refuses). */
export function loadCompiled(kif: string, opts: LoadOptions = {}): CompiledMachine {
  return new CompiledMachine(compileProgram(prepareGame(kif, opts)));
}

export function compiledFromRules(rules: Rule[], opts: LoadOptions = {}): CompiledMachine {
  return new CompiledMachine(compileProgram(prepareRules(rules, opts)));
}
