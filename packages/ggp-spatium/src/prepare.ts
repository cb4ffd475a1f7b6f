// Front end shared by both reasoners: parse, validate, remove `or`, add role guards, drop unused relations.
import { type GdlIssue, GdlValidationError } from './errors.js';
import { type Atom, atomVars, isVar, type Literal, parseGdl, type Rule } from './gdl.js';
import { deOr, dependencyGraph, GAME_RELATIONS, positiveAtoms, reachable, validateRules } from './validate.js';

export interface PreparedGame {
  roles: string[];
  /** rules after deOr and role guards, restricted to relations the game relations reach */
  rules: Rule[];
  warnings: GdlIssue[];
  /** relations the mGDL normaliser spread (`legal2~move/6`) → their arity as written (see `normaliseMgdl`) */
  writtenArity?: Record<string, number>;
}

export interface LoadOptions {
  /** throw GdlValidationError on spec violations (default true); false loads what it can */
  strict?: boolean;
}

/**
 * `(legal ?p ?p)` or `(goal ?p 100)` without a positive literal binding ?p (ggp-base test_case_3e/3f) are
 * answered by ggp-base's prover for each role; we make that explicit with a leading `(role ?p)`.
 */
export function addRoleGuards(rules: Rule[]): Rule[] {
  return rules.map((r) => {
    if (!['legal', 'goal', 'sees', 'input'].includes(r.head.rel) || r.head.args.length !== 2) return r;
    const p = r.head.args[0]!;
    if (!isVar(p)) return r;
    const bound = new Set<string>();
    for (const a of positiveAtoms(r.body)) atomVars(a, bound);
    if (bound.has(p.v)) return r;
    const guard: Literal = { kind: 'atom', atom: { rel: 'role', args: [p] } as Atom };
    return { ...r, body: [guard, ...r.body] };
  });
}

export function prepareRules(rules: Rule[], opts: LoadOptions = {}): PreparedGame {
  const report = validateRules(rules);
  if (report.errors.length && opts.strict !== false) throw new GdlValidationError(report.errors);
  let rs = addRoleGuards(deOr(rules));
  const used = reachable(dependencyGraph(rs), GAME_RELATIONS);
  rs = rs.filter((r) => used.has(r.head.rel));
  return { roles: report.roles, rules: rs, warnings: report.warnings };
}

export function prepareGame(kif: string, opts: LoadOptions = {}): PreparedGame {
  return prepareRules(parseGdl(kif), opts);
}
