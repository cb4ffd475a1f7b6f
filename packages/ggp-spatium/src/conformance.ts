// Conformance as the research note defines it: seeded random playouts driven by the reference; at every
// visited state the legal move set of each role, terminality, every goal value at terminal states ("undefined"
// comparable) and the next state's fluents must be equal. Pass = zero mismatches.
import { CompiledMachine, compileProgram } from './compiler.js';
import { fmtIssue } from './errors.js';
import { parseGdl, type Rule } from './gdl.js';
import { GroundingError, groundedFromPrepared } from './ground.js';
import { InterpreterMachine } from './interpreter.js';
import { type GameMachine, rng } from './machine.js';
import { checkMgdl, normaliseMgdl } from './mgdl.js';
import { prepareRules } from './prepare.js';
import { validateRules } from './validate.js';

export interface Mismatch {
  playout: number;
  ply: number;
  what: string;
  expected: string;
  got: string;
}

export interface ConformanceResult {
  playouts: number;
  states: number;
  mismatches: Mismatch[];
  /** the time limit ended the check early (what was checked still counts) */
  timedOut: boolean;
}

export interface ConformanceOptions {
  playouts?: number;
  seed?: number;
  maxPlies?: number;
  timeLimitMs?: number;
  /** stop at the first mismatch (default true) */
  stopEarly?: boolean;
  /** conformSheet: also check the grounded reasoner where it builds (default true) */
  grounded?: boolean;
}

const eq = (a: unknown[], b: unknown[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function checkConformance<S, T>(
  ref: GameMachine<S, unknown>,
  test: GameMachine<T, unknown>,
  opts: ConformanceOptions = {},
): ConformanceResult {
  const { playouts = 100, seed = 1, maxPlies = 1000, timeLimitMs = Number.POSITIVE_INFINITY, stopEarly = true } = opts;
  const t0 = performance.now();
  const rand = rng(seed);
  const roles = ref.roles();
  const mismatches: Mismatch[] = [];
  let states = 0;
  let done = 0;
  const bad = (playout: number, ply: number, what: string, expected: unknown, got: unknown) =>
    mismatches.push({ playout, ply, what, expected: JSON.stringify(expected), got: JSON.stringify(got) });
  if (!eq(roles, test.roles())) bad(0, 0, 'roles', roles, test.roles());
  for (let p = 0; p < playouts && !(stopEarly && mismatches.length); p++) {
    if (performance.now() - t0 > timeLimitMs) return { playouts: done, states, mismatches, timedOut: true };
    let s = ref.initialState();
    let t = test.initialState();
    if (!eq(ref.fluents(s), test.fluents(t))) bad(p, 0, 'initial fluents', ref.fluents(s), test.fluents(t));
    for (let ply = 0; ply <= maxPlies && !(stopEarly && mismatches.length); ply++) {
      states++;
      const term = ref.isTerminal(s);
      if (term !== test.isTerminal(t)) bad(p, ply, 'terminal', term, !term);
      const legal = roles.map((r) => ref.legalMoves(s, r));
      roles.forEach((r, i) => {
        const got = test.legalMoves(t, r);
        if (!eq(legal[i]!, got)) bad(p, ply, `legal ${r}`, legal[i], got);
      });
      if (term || legal.some((l) => !l.length)) {
        roles.forEach((_r, i) => {
          const a = ref.goalValues(s, i);
          const b = test.goalValues(t, i);
          if (!eq(a, b)) bad(p, ply, `goal ${roles[i]}`, a, b);
        });
        break;
      }
      if (ply === maxPlies) break;
      const joint = legal.map((l) => l[(rand() * l.length) | 0]!);
      s = ref.nextState(s, joint);
      t = test.nextState(t, joint);
      const fa = ref.fluents(s);
      const fb = test.fluents(t);
      if (!eq(fa, fb)) bad(p, ply + 1, `fluents after ${joint.join(' ')}`, fa, fb);
      if (performance.now() - t0 > timeLimitMs) return { playouts: done, states, mismatches, timedOut: true };
    }
    done++;
  }
  return { playouts: done, states, mismatches, timedOut: false };
}

export interface SheetReport {
  name: string;
  parse: boolean;
  /** no validity errors */
  valid: boolean;
  /** mGDL as written */
  mgdl: boolean;
  /** mGDL after the normaliser */
  normalised: boolean;
  compile: boolean;
  /** compiled ≡ interpreter over the seeded playouts (null: not run) */
  pass: boolean | null;
  playouts: number;
  states: number;
  timedOut: boolean;
  compileMs: number;
  /** the grounded net was built (false: refused, too large or cyclic; the compiler serves the sheet) */
  grounded?: boolean;
  /** grounded ≡ interpreter over the same seeded playouts (null: not built or not run) */
  groundPass?: boolean | null;
  groundError?: string;
  error?: string;
  mgdlReasons?: string[];
}

/** Parse → validate → mGDL check → normalise → compile → conformance of compiled (normalised) vs interpreter. */
export function conformSheet(name: string, kif: string, opts: ConformanceOptions = {}): SheetReport {
  const rep: SheetReport = {
    name,
    parse: false,
    valid: false,
    mgdl: false,
    normalised: false,
    compile: false,
    pass: null,
    playouts: 0,
    states: 0,
    timedOut: false,
    compileMs: 0,
    grounded: false,
    groundPass: null,
  };
  let rules: Rule[];
  try {
    rules = parseGdl(kif);
    rep.parse = true;
  } catch (e) {
    rep.error = (e as Error).message;
    return rep;
  }
  const v = validateRules(rules);
  rep.valid = v.errors.length === 0;
  if (!rep.valid) rep.error = v.errors.slice(0, 3).map(fmtIssue).join('; ');
  const reasons = checkMgdl(rules);
  rep.mgdl = reasons.length === 0;
  const norm = normaliseMgdl(rules);
  rep.normalised = norm.remaining.length === 0;
  if (!rep.normalised) rep.mgdlReasons = norm.remaining.slice(0, 3).map((i) => i.message);
  let compiled: CompiledMachine;
  let ref: InterpreterMachine;
  try {
    const t0 = performance.now();
    const g = prepareRules(norm.rules, { strict: rep.valid });
    compiled = new CompiledMachine(compileProgram(g));
    rep.compileMs = performance.now() - t0;
    rep.compile = true;
  } catch (e) {
    rep.error = `${rep.error ? `${rep.error}; ` : ''}compile: ${(e as Error).message.split('\n')[0]}`;
    return rep;
  }
  try {
    const g = prepareRules(rules, { strict: rep.valid });
    ref = new InterpreterMachine(g.roles, g.rules);
    const r = checkConformance(ref, compiled, opts);
    rep.playouts = r.playouts;
    rep.states = r.states;
    rep.timedOut = r.timedOut;
    rep.pass = r.mismatches.length === 0;
    if (!rep.pass) {
      const m = r.mismatches[0]!;
      rep.error = `playout ${m.playout} ply ${m.ply}: ${m.what}: expected ${m.expected.slice(0, 200)} got ${m.got.slice(0, 200)}`;
    }
    if (opts.grounded !== false) {
      try {
        // the step budget bounds grounding; the time limit only guards against a loaded machine here
        const gm = groundedFromPrepared(g, { maxMs: 30_000 });
        rep.grounded = true;
        const q = checkConformance(ref, gm, opts);
        rep.groundPass = q.mismatches.length === 0;
        if (!rep.groundPass) {
          const m = q.mismatches[0]!;
          rep.groundError = `playout ${m.playout} ply ${m.ply}: ${m.what}: expected ${m.expected.slice(0, 200)} got ${m.got.slice(0, 200)}`;
        }
      } catch (e) {
        // a refusal leaves groundPass null; any other error is a failure of the grounded reasoner
        if (!(e instanceof GroundingError || e instanceof RangeError)) rep.groundPass = false;
        rep.groundError = (e as Error).message.split('\n')[0];
      }
    }
  } catch (e) {
    rep.pass = false;
    rep.error = `${rep.error ? `${rep.error}; ` : ''}run: ${(e as Error).message.split('\n')[0]}`;
  }
  return rep;
}
