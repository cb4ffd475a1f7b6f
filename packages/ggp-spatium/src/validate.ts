// The validity checks of the GDL specification (Love et al. 2008, §3–4): keyword use and arities, arity
// consistency, safety, stratified negation, the recursion restriction, and the role/init/legal/goal/terminal
// dependency restrictions. Problems in relations that no game relation can reach are only warnings
// (ggp-base's test_case_3b carries such an unsafe, unused rule).
import type { GdlIssue } from './errors.js';
import {
  type Atom,
  atomText,
  atomVars,
  isCompound,
  isVar,
  type Literal,
  literalVars,
  type Rule,
  ruleText,
  type Term,
} from './gdl.js';

/** Arity of each GDL keyword relation. */
export const KEYWORD_ARITY: Record<string, number> = {
  role: 1,
  init: 1,
  true: 1,
  does: 2,
  next: 1,
  legal: 2,
  goal: 2,
  terminal: 0,
  base: 1,
  input: 2,
  sees: 2,
};

/** Relations the game itself asks for; everything else matters only if one of these depends on it. */
export const GAME_RELATIONS = ['role', 'init', 'legal', 'next', 'goal', 'terminal', 'base', 'input', 'sees'];

/** Splits rules with `or` into one rule per disjunct combination (ggp-base's DeORer); `(not (or a b))` → `(not a) (not b)`. */
export function deOr(rules: Rule[]): Rule[] {
  const out: Rule[] = [];
  const expand = (l: Literal): Literal[][] => {
    if (l.kind === 'or') return l.lits.flatMap(expand);
    if (l.kind === 'not' && l.lit.kind === 'or') {
      // De Morgan: every disjunct negated, all in one conjunction
      return [l.lit.lits.flatMap((x) => expand(x).map((c) => ({ kind: 'not', lit: conj(c) }) as Literal))];
    }
    if (l.kind === 'not' && l.lit.kind === 'not') return expand(l.lit.lit);
    return [[l]];
  };
  const conj = (c: Literal[]): Literal => {
    if (c.length !== 1) throw new Error('deOr: a conjunction under not is unsupported');
    return c[0]!;
  };
  for (const r of rules) {
    if (!r.body.some(hasOr)) {
      out.push(r);
      continue;
    }
    let bodies: Literal[][] = [[]];
    for (const l of r.body) {
      const alts = expand(l);
      const next: Literal[][] = [];
      for (const b of bodies) for (const a of alts) next.push([...b, ...a]);
      bodies = next;
    }
    for (const b of bodies) out.push({ head: r.head, body: b, pos: r.pos });
  }
  return out;
}

const hasOr = (l: Literal): boolean => l.kind === 'or' || (l.kind === 'not' && hasOr(l.lit));

/** Positive relation atoms of a body (after deOr). */
export function positiveAtoms(body: Literal[]): Atom[] {
  return body.filter((l) => l.kind === 'atom').map((l) => (l as { atom: Atom }).atom);
}

export interface DepEdge {
  from: string;
  to: string;
  negative: boolean;
}

/** Relation dependency graph: head relation → body relation, negative through `not`. */
export function dependencyGraph(rules: Rule[]): Map<string, DepEdge[]> {
  const g = new Map<string, DepEdge[]>();
  const add = (from: string, to: string, negative: boolean) => {
    if (!g.has(from)) g.set(from, []);
    g.get(from)!.push({ from, to, negative });
  };
  const walk = (head: string, l: Literal, neg: boolean) => {
    if (l.kind === 'atom') add(head, l.atom.rel, neg);
    else if (l.kind === 'not') walk(head, l.lit, true);
    else if (l.kind === 'or') for (const x of l.lits) walk(head, x, neg);
  };
  for (const r of rules) {
    if (!g.has(r.head.rel)) g.set(r.head.rel, []);
    for (const l of r.body) walk(r.head.rel, l, false);
  }
  return g;
}

/** Strongly connected components (Tarjan), in reverse topological order (dependencies first). */
export function sccs(nodes: Iterable<string>, succ: (n: string) => Iterable<string>): string[][] {
  // Tarjan's algorithm with an explicit stack of iterators: ground atom graphs (grounded nets) have chains far
  // deeper than the call stack allows
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let i = 0;
  const frames: Array<{ v: string; it: Iterator<string> }> = [];
  const open = (v: string) => {
    index.set(v, i);
    low.set(v, i);
    i++;
    stack.push(v);
    onStack.add(v);
    frames.push({ v, it: succ(v)[Symbol.iterator]() });
  };
  for (const root of nodes) {
    if (index.has(root)) continue;
    open(root);
    while (frames.length) {
      const f = frames[frames.length - 1]!;
      const step = f.it.next();
      if (!step.done) {
        const w = step.value;
        if (!index.has(w)) open(w);
        else if (onStack.has(w)) low.set(f.v, Math.min(low.get(f.v)!, index.get(w)!));
        continue;
      }
      frames.pop();
      const v = f.v;
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        out.push(comp);
      }
      const parent = frames[frames.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(v)!));
    }
  }
  return out;
}

/** Relations reachable from `roots` in the dependency graph (including the roots). */
export function reachable(g: Map<string, DepEdge[]>, roots: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length) {
    const r = todo.pop()!;
    if (seen.has(r)) continue;
    seen.add(r);
    for (const e of g.get(r) ?? []) todo.push(e.to);
  }
  return seen;
}

export interface ValidationReport {
  errors: GdlIssue[];
  warnings: GdlIssue[];
  roles: string[];
}

function termFunctors(t: Term, out: Array<[string, number]>): void {
  if (isCompound(t)) {
    out.push([t.f, t.args.length]);
    for (const a of t.args) termFunctors(a, out);
  }
}

function literalAtoms(l: Literal, out: Atom[]): Atom[] {
  if (l.kind === 'atom') out.push(l.atom);
  else if (l.kind === 'not') literalAtoms(l.lit, out);
  else if (l.kind === 'or') for (const x of l.lits) literalAtoms(x, out);
  return out;
}

/** Variables a rule may treat as bound without a positive literal: the role argument of legal/goal/sees/input. */
export function roleBoundVars(head: Atom): Set<string> {
  const s = new Set<string>();
  if (['legal', 'goal', 'sees', 'input'].includes(head.rel) && head.args.length === 2 && isVar(head.args[0]!))
    s.add((head.args[0] as { v: string }).v);
  return s;
}

/** Runs every check; errors in relations unreachable from the game relations become warnings. */
export function validateRules(rules: Rule[]): ValidationReport {
  const issues: Array<GdlIssue & { rel: string }> = [];
  const issue = (kind: GdlIssue['kind'], message: string, r: Rule | undefined, rel: string) =>
    issues.push({ kind, message, pos: r?.pos, rule: r ? ruleText(r) : undefined, rel });

  // keyword placement and arities
  const relArity = new Map<string, { n: number; r: Rule }>();
  const fnArity = new Map<string, { n: number; r: Rule }>();
  const defined = new Set<string>();
  for (const r of rules) {
    defined.add(r.head.rel);
    const h = r.head.rel;
    if (['true', 'does', 'distinct', 'not', 'or'].includes(h))
      issue('keyword', `'${h}' cannot be the head of a rule or a fact`, r, h);
    if (h === 'role' && r.body.length) issue('role', "'role' may appear only in ground facts", r, h);
    if (h === 'role' && !r.head.args.every((a) => typeof a === 'string'))
      issue('role', "'role' facts must be ground constants", r, h);
    const atoms = [r.head, ...r.body.flatMap((l) => literalAtoms(l, []))];
    for (const [k, a] of atoms.entries()) {
      if (k > 0 && (a.rel === 'next' || a.rel === 'init'))
        issue('keyword', `'${a.rel}' may appear only in rule heads, found in the body of ${atomText(r.head)}`, r, h);
      const want = KEYWORD_ARITY[a.rel];
      if (want !== undefined && a.args.length !== want)
        issue('arity', `'${a.rel}' takes ${want} argument(s), got ${a.args.length} in ${atomText(a)}`, r, h);
      const prev = relArity.get(a.rel);
      if (!prev) relArity.set(a.rel, { n: a.args.length, r });
      else if (prev.n !== a.args.length)
        issue(
          'arity',
          `relation '${a.rel}' used with ${a.args.length} argument(s) in ${atomText(a)} but with ${prev.n} at ${prev.r.pos?.line}:${prev.r.pos?.col}`,
          r,
          h,
        );
      const fns: Array<[string, number]> = [];
      for (const t of a.args) termFunctors(t, fns);
      for (const [f, n] of fns) {
        const pf = fnArity.get(f);
        if (!pf) fnArity.set(f, { n, r });
        else if (pf.n !== n)
          issue(
            'arity',
            `function '${f}' used with ${n} argument(s) but with ${pf.n} at ${pf.r.pos?.line}:${pf.r.pos?.col}`,
            r,
            h,
          );
      }
    }
  }
  const roles = rules.filter((r) => r.head.rel === 'role' && !r.body.length).map((r) => String(r.head.args[0]));
  if (!roles.length) issue('role', 'no (role ...) facts: a game needs at least one role', undefined, 'role');

  const flat = deOr(rules);
  // safety, per split rule
  for (const r of flat) {
    const bound = new Set<string>(roleBoundVars(r.head));
    for (const a of positiveAtoms(r.body)) atomVars(a, bound);
    const need = atomVars(r.head);
    for (const v of need)
      if (!bound.has(v))
        issue(
          'safety',
          `variable ${v} of the head ${atomText(r.head)} is not bound by a positive literal`,
          r,
          r.head.rel,
        );
    for (const l of r.body)
      if (l.kind !== 'atom')
        for (const v of literalVars(l))
          if (!bound.has(v))
            issue(
              'safety',
              `variable ${v} in ${l.kind === 'not' ? 'a negation' : 'distinct'} of ${atomText(r.head)} is not bound by a positive literal`,
              r,
              r.head.rel,
            );
  }

  // stratification and recursion restriction
  const g = dependencyGraph(flat);
  const comps = sccs(g.keys(), (n) => (g.get(n) ?? []).map((e) => e.to));
  const compOf = new Map<string, number>();
  comps.forEach((c, i) => {
    for (const n of c) compOf.set(n, i);
  });
  for (const [from, es] of g)
    for (const e of es)
      if (e.negative && compOf.get(e.to) === compOf.get(from))
        issue(
          'stratification',
          `'${from}' depends negatively on '${e.to}' within a recursive cycle (negation is not stratified)`,
          flat.find((r) => r.head.rel === from),
          from,
        );
  for (const r of flat) {
    const c = compOf.get(r.head.rel);
    const headVars = atomVars(r.head);
    const safeVars = new Set<string>();
    for (const a of positiveAtoms(r.body)) if (compOf.get(a.rel) !== c) atomVars(a, safeVars);
    for (const a of positiveAtoms(r.body)) {
      if (compOf.get(a.rel) !== c) continue;
      if (!isRecursive(a.rel, g, compOf, comps)) continue;
      for (const t of a.args) {
        if (!isVar(t)) continue; // constants are ground; function-term arguments are bounded by the reasoner's depth guard
        const v = t.v;
        if (!headVars.has(v) && !safeVars.has(v))
          issue(
            'recursion',
            `recursive literal ${atomText(a)} in the rule for ${atomText(r.head)}: ${v} is neither in the head nor bound by a non-recursive positive literal`,
            r,
            r.head.rel,
          );
      }
    }
  }

  // dependency restrictions
  const dependsOn = (root: string, bad: string[]): string | undefined => {
    const seen = reachable(g, [root]);
    return bad.find((b) => seen.has(b) && b !== root);
  };
  const initBad = dependsOn('init', ['true', 'does', 'next', 'legal', 'goal', 'terminal']);
  if (initBad)
    issue(
      'init',
      `'init' depends on '${initBad}'`,
      flat.find((r) => r.head.rel === 'init'),
      'init',
    );
  for (const rel of ['legal', 'goal', 'terminal']) {
    if (dependsOn(rel, ['does']))
      issue(
        'dependency',
        `'${rel}' depends on 'does'`,
        flat.find((r) => r.head.rel === rel),
        rel,
      );
  }
  for (const rel of ['base', 'input', 'role']) {
    const bad = dependsOn(rel, ['true', 'does']);
    if (bad)
      issue(
        'dependency',
        `'${rel}' depends on '${bad}'`,
        flat.find((r) => r.head.rel === rel),
        rel,
      );
  }

  // unknown relations (used, never defined): false everywhere, as in ggp-base's test_case_3c
  const warnOnly: GdlIssue[] = [];
  for (const r of rules)
    for (const l of r.body)
      for (const a of literalAtoms(l, []))
        if (!defined.has(a.rel) && !['true', 'does'].includes(a.rel))
          warnOnly.push({
            kind: 'unknown-relation',
            message: `relation '${a.rel}' is used in ${atomText(r.head)} but never defined (it is always false)`,
            pos: a.pos ?? r.pos,
            rule: ruleText(r),
          });

  const used = reachable(g, GAME_RELATIONS);
  const errors: GdlIssue[] = [];
  const warnings: GdlIssue[] = [...dedupe(warnOnly)];
  for (const { rel, ...i } of dedupe(issues)) {
    if (i.kind === 'safety' || i.kind === 'recursion' || i.kind === 'stratification') {
      if (!used.has(rel)) {
        warnings.push({ ...i, message: `${i.message} (relation '${rel}' is unused, so this is ignored)` });
        continue;
      }
    }
    errors.push(i);
  }
  return { errors, warnings, roles };
}

function isRecursive(rel: string, g: Map<string, DepEdge[]>, compOf: Map<string, number>, comps: string[][]): boolean {
  const c = compOf.get(rel)!;
  return comps[c]!.length > 1 || (g.get(rel) ?? []).some((e) => e.to === rel);
}

function dedupe<T extends GdlIssue>(xs: T[]): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = `${x.kind}|${x.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
