// GDL abstract syntax: terms, sentences, literals and rules, built from KIF S-expressions; canonical printing.
import { KifSyntaxError, type SourcePos } from './errors.js';
import { isAtom, parseKif, type SExpr } from './kif.js';

/** A constant is a plain string; variables and compound (function) terms are objects. */
export type Term = string | Var | Compound;
export interface Var {
  v: string;
}
export interface Compound {
  f: string;
  args: Term[];
}

/** A relation sentence `(rel a1 .. an)`; `rel` alone for arity 0. */
export interface Atom {
  rel: string;
  args: Term[];
  pos?: SourcePos;
}

export type Literal =
  | { kind: 'atom'; atom: Atom }
  | { kind: 'not'; lit: Literal }
  | { kind: 'distinct'; a: Term; b: Term }
  | { kind: 'or'; lits: Literal[] };

export interface Rule {
  head: Atom;
  body: Literal[];
  pos?: SourcePos;
}

export const KEYWORDS = new Set([
  'role',
  'init',
  'true',
  'does',
  'next',
  'legal',
  'goal',
  'terminal',
  'distinct',
  'not',
  'or',
  'base',
  'input',
  'sees',
]);

export const isVar = (t: Term): t is Var => typeof t === 'object' && 'v' in t;
export const isCompound = (t: Term): t is Compound => typeof t === 'object' && 'f' in t;

function toTerm(e: SExpr): Term {
  if (isAtom(e)) return e.atom.startsWith('?') ? { v: e.atom } : e.atom;
  if (!e.list.length) throw new KifSyntaxError("empty list '()' is not a term", e.pos);
  const [f, ...rest] = e.list;
  if (!isAtom(f!) || f.atom.startsWith('?'))
    throw new KifSyntaxError(`a function term must start with a constant, got '${printTermS(f!)}'`, e.pos);
  if (!rest.length) return f.atom;
  return { f: f.atom, args: rest.map(toTerm) };
}

const printTermS = (e: SExpr): string => (isAtom(e) ? e.atom : `(${e.list.map(printTermS).join(' ')})`);

function toAtom(e: SExpr): Atom {
  if (isAtom(e)) {
    if (e.atom.startsWith('?')) throw new KifSyntaxError(`a variable '${e.atom}' cannot be a sentence`, e.pos);
    return { rel: e.atom, args: [], pos: e.pos };
  }
  if (!e.list.length) throw new KifSyntaxError("empty list '()' is not a sentence", e.pos);
  const [r, ...rest] = e.list;
  if (!isAtom(r!) || r.atom.startsWith('?'))
    throw new KifSyntaxError(`a sentence must start with a relation constant, got '${printTermS(r!)}'`, e.pos);
  return { rel: r.atom, args: rest.map(toTerm), pos: e.pos };
}

function toLiteral(e: SExpr): Literal {
  if (!isAtom(e) && e.list.length && isAtom(e.list[0]!)) {
    const op = (e.list[0] as { atom: string }).atom;
    if (op === 'not') {
      if (e.list.length !== 2) throw new KifSyntaxError(`'not' takes 1 argument, got ${e.list.length - 1}`, e.pos);
      return { kind: 'not', lit: toLiteral(e.list[1]!) };
    }
    if (op === 'distinct') {
      if (e.list.length !== 3)
        throw new KifSyntaxError(`'distinct' takes 2 arguments, got ${e.list.length - 1}`, e.pos);
      return { kind: 'distinct', a: toTerm(e.list[1]!), b: toTerm(e.list[2]!) };
    }
    if (op === 'or') return { kind: 'or', lits: e.list.slice(1).map(toLiteral) };
  }
  return { kind: 'atom', atom: toAtom(e) };
}

/** Converts parsed KIF into rules; facts are rules with an empty body. */
export function toRules(exprs: SExpr[]): Rule[] {
  const rules: Rule[] = [];
  for (const e of exprs) {
    if (!isAtom(e) && e.list.length && isAtom(e.list[0]!) && e.list[0].atom === '<=') {
      if (e.list.length < 2) throw new KifSyntaxError("rule '<=' has no head", e.pos);
      const head = toAtom(e.list[1]!);
      rules.push({ head, body: e.list.slice(2).map(toLiteral), pos: e.pos });
    } else {
      if (!isAtom(e) && e.list.length && isAtom(e.list[0]!) && ['not', 'or', 'distinct'].includes(e.list[0].atom))
        throw new KifSyntaxError(`'${e.list[0].atom}' cannot be a fact`, e.pos);
      rules.push({ head: toAtom(e), body: [], pos: e.pos });
    }
  }
  return rules;
}

/** Parses KIF text into GDL rules (throws KifSyntaxError with line:column). */
export function parseGdl(text: string): Rule[] {
  return toRules(parseKif(text));
}

// ---- canonical printing: lower case, one space between tokens, no space inside parentheses

export function termText(t: Term): string {
  if (typeof t === 'string') return t;
  if (isVar(t)) return t.v;
  return `(${t.f} ${t.args.map(termText).join(' ')})`;
}

export function atomText(a: Atom): string {
  return a.args.length ? `(${a.rel} ${a.args.map(termText).join(' ')})` : a.rel;
}

export function literalText(l: Literal): string {
  switch (l.kind) {
    case 'atom':
      return atomText(l.atom);
    case 'not':
      return `(not ${literalText(l.lit)})`;
    case 'distinct':
      return `(distinct ${termText(l.a)} ${termText(l.b)})`;
    case 'or':
      return `(or ${l.lits.map(literalText).join(' ')})`;
  }
}

export function ruleText(r: Rule): string {
  return r.body.length ? `(<= ${atomText(r.head)} ${r.body.map(literalText).join(' ')})` : atomText(r.head);
}

export const rulesText = (rules: Rule[]): string => rules.map(ruleText).join('\n');

// ---- variables

export function termVars(t: Term, out: Set<string>): Set<string> {
  if (isVar(t)) out.add(t.v);
  else if (isCompound(t)) for (const a of t.args) termVars(a, out);
  return out;
}

export function atomVars(a: Atom, out = new Set<string>()): Set<string> {
  for (const t of a.args) termVars(t, out);
  return out;
}

export function literalVars(l: Literal, out = new Set<string>()): Set<string> {
  switch (l.kind) {
    case 'atom':
      return atomVars(l.atom, out);
    case 'not':
      return literalVars(l.lit, out);
    case 'distinct':
      termVars(l.a, out);
      return termVars(l.b, out);
    case 'or':
      for (const x of l.lits) literalVars(x, out);
      return out;
  }
}

export const isGround = (t: Term): boolean =>
  typeof t === 'string' ? true : isVar(t) ? false : t.args.every(isGround);

export const termEquals = (a: Term, b: Term): boolean => termText(a) === termText(b);

/** Parses one ground term (a move such as `(mark 1 1)`) from text. */
export function parseTerm(text: string): Term {
  const es = parseKif(text);
  if (es.length !== 1) throw new KifSyntaxError(`expected one term, got ${es.length}`, { line: 1, col: 1, offset: 0 });
  return toTerm(es[0]!);
}

export const relKey = (a: Atom): string => `${a.rel}/${a.args.length}`;
