// mGDL (Łańcucki 2014): GDL whose function terms are flat and appear only as the fluent of
// true/next/init/base and the move of legal/does/input (and the percept of sees). Then fluents and moves are
// tuples of symbols and every other relation a table of symbols. The checker says why a sheet is not mGDL;
// the normaliser removes `or` and spreads one level of function terms out of helper relations
// (`(legal2 ?r (move ?x ?y))` → `(legal2~move ?r ?x ?y)`), specialising rules whose variables stand for them.
import type { GdlIssue } from './errors.js';
import { type Atom, atomText, isCompound, isVar, type Literal, type Rule, ruleText, type Term } from './gdl.js';
import { deOr } from './validate.js';

/** Relation → argument position that may hold one flat function term. */
const TERM_SLOTS: Record<string, number> = { true: 0, next: 0, init: 0, base: 0, legal: 1, does: 1, input: 1, sees: 1 };

const isFlat = (t: Term): boolean => !isCompound(t) || t.args.every((a) => !isCompound(a));

function atomsOf(l: Literal, out: Atom[]): Atom[] {
  if (l.kind === 'atom') out.push(l.atom);
  else if (l.kind === 'not') atomsOf(l.lit, out);
  else if (l.kind === 'or') for (const x of l.lits) atomsOf(x, out);
  return out;
}

/** Reasons a rule set is not mGDL (empty: it conforms). */
export function checkMgdl(rules: Rule[]): GdlIssue[] {
  const issues: GdlIssue[] = [];
  const seen = new Set<string>();
  const add = (message: string, r: Rule) => {
    if (seen.has(message)) return;
    seen.add(message);
    issues.push({ kind: 'mgdl', message, pos: r.pos, rule: ruleText(r) });
  };
  for (const r of rules) {
    for (const a of [r.head, ...r.body.flatMap((l) => atomsOf(l, []))]) {
      a.args.forEach((t, i) => {
        if (!isCompound(t)) return;
        if (TERM_SLOTS[a.rel] === i) {
          if (!isFlat(t)) add(`nested function term in ${a.rel}: ${atomText(a)}`, r);
        } else add(`function term '${t.f}' as argument ${i + 1} of '${a.rel}'`, r);
      });
    }
    for (const l of r.body) {
      if (l.kind === 'or') add(`'or' in the rule for ${atomText(r.head)}`, r);
      if (l.kind === 'distinct' && (isCompound(l.a) || isCompound(l.b)))
        add(`function term in distinct (rule for ${atomText(r.head)})`, r);
    }
  }
  return issues;
}

function substTerm(t: Term, v: string, by: Term): Term {
  if (isVar(t)) return t.v === v ? by : t;
  if (isCompound(t)) return { f: t.f, args: t.args.map((a) => substTerm(a, v, by)) };
  return t;
}
function substLit(l: Literal, v: string, by: Term): Literal {
  switch (l.kind) {
    case 'atom':
      return { kind: 'atom', atom: { ...l.atom, args: l.atom.args.map((a) => substTerm(a, v, by)) } };
    case 'not':
      return { kind: 'not', lit: substLit(l.lit, v, by) };
    case 'distinct':
      return { kind: 'distinct', a: substTerm(l.a, v, by), b: substTerm(l.b, v, by) };
    case 'or':
      return { kind: 'or', lits: l.lits.map((x) => substLit(x, v, by)) };
  }
}
const substRule = (r: Rule, v: string, by: Term): Rule => ({
  head: { ...r.head, args: r.head.args.map((a) => substTerm(a, v, by)) },
  body: r.body.map((l) => substLit(l, v, by)),
  pos: r.pos,
});

export interface NormaliseResult {
  rules: Rule[];
  /** helper relation positions spread, as `rel/arg` */
  spread: string[];
  /** what is still not mGDL afterwards */
  remaining: GdlIssue[];
  /**
   * each spread relation (`legal2~move/6`) → its arity as written (2): the compiler sizes views by it, so that
   * spreading a term out of a relation does not change how the relation is evaluated
   */
  writtenArity: Record<string, number>;
}

/**
 * Removes `or` and spreads flat function terms out of helper relations. A position is spread only where every
 * rule head puts an explicit function term there (then the terms it can hold are exactly those shapes);
 * variables in rule bodies at that position are specialised per shape.
 */
export function normaliseMgdl(input: Rule[]): NormaliseResult {
  let rules = deOr(input);
  const spread: string[] = [];
  const writtenArity: Record<string, number> = {};
  for (let round = 0; round < 20; round++) {
    const target = findSpreadable(rules, new Set(spread));
    if (!target) break;
    const { rel, pos, shapes } = target;
    spread.push(`${rel}/${pos + 1}`);
    for (const [f, n] of shapes) {
      const arity = arityOf(rules, rel);
      if (arity === undefined) continue;
      // a relation spread twice keeps the arity its first form was written with
      writtenArity[`${rel}~${f}/${arity - 1 + n}`] = writtenArity[`${rel}/${arity}`] ?? arity;
    }
    const out: Rule[] = [];
    for (const r of rules) {
      // specialise variables standing at rel[pos] in this rule, one shape at a time
      let variants = [r];
      for (;;) {
        const next: Rule[] = [];
        let changed = false;
        for (const v of variants) {
          const a = [v.head, ...v.body.flatMap((l) => atomsOf(l, []))].find(
            (x) => x.rel === rel && x.args.length > pos && isVar(x.args[pos]!),
          );
          if (!a) {
            next.push(v);
            continue;
          }
          changed = true;
          const name = (a.args[pos] as { v: string }).v;
          for (const [f, n] of shapes) {
            const by: Term = { f, args: Array.from({ length: n }, (_, k) => ({ v: `${name}~${f}~${k}` })) };
            next.push(substRule(v, name, by));
          }
        }
        variants = next;
        if (!changed || variants.length > 4096) break;
      }
      for (const v of variants) out.push(renameSpread(v, rel, pos));
    }
    rules = out;
  }
  return { rules, spread, remaining: checkMgdl(rules), writtenArity };
}

/** The arity of a relation's rule heads (validation rejects sheets that use two). */
function arityOf(rules: Rule[], rel: string): number | undefined {
  return rules.find((r) => r.head.rel === rel)?.head.args.length;
}

function renameAtom(a: Atom, rel: string, pos: number): Atom {
  if (a.rel !== rel || a.args.length <= pos) return a;
  const t = a.args[pos]!;
  if (!isCompound(t)) return a; // a constant here cannot match any head: keep (it stays false)
  return { rel: `${rel}~${t.f}`, args: [...a.args.slice(0, pos), ...t.args, ...a.args.slice(pos + 1)], pos: a.pos };
}
function renameLit(l: Literal, rel: string, pos: number): Literal {
  if (l.kind === 'atom') return { kind: 'atom', atom: renameAtom(l.atom, rel, pos) };
  if (l.kind === 'not') return { kind: 'not', lit: renameLit(l.lit, rel, pos) };
  return l;
}
const renameSpread = (r: Rule, rel: string, pos: number): Rule => ({
  head: renameAtom(r.head, rel, pos),
  body: r.body.map((l) => renameLit(l, rel, pos)),
  pos: r.pos,
});

function findSpreadable(
  rules: Rule[],
  done: Set<string>,
): { rel: string; pos: number; shapes: Array<[string, number]> } | undefined {
  const cand = new Map<string, { rel: string; pos: number; shapes: Map<string, [string, number]>; ok: boolean }>();
  for (const r of rules)
    for (const a of [r.head, ...r.body.flatMap((l) => atomsOf(l, []))])
      a.args.forEach((t, i) => {
        if (TERM_SLOTS[a.rel] !== undefined || !isCompound(t)) return;
        const key = `${a.rel}/${i}`;
        if (!cand.has(key)) cand.set(key, { rel: a.rel, pos: i, shapes: new Map(), ok: true });
        if (!isFlat(t)) cand.get(key)!.ok = false; // nested terms are beyond one level of spreading
      });
  for (const c of cand.values()) {
    if (done.has(`${c.rel}/${c.pos + 1}`)) continue;
    for (const r of rules) {
      if (r.head.rel !== c.rel || r.head.args.length <= c.pos) continue;
      const t = r.head.args[c.pos]!;
      if (!isCompound(t)) c.ok = false;
      else c.shapes.set(`${t.f}/${t.args.length}`, [t.f, t.args.length]);
    }
    if (c.ok && c.shapes.size) return { rel: c.rel, pos: c.pos, shapes: [...c.shapes.values()] };
  }
  return undefined;
}
