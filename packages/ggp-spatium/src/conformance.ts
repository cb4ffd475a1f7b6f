// Conformance as the research note defines it: seeded random playouts driven by the reference; at every
// visited state the legal move set of each role, terminality, every goal value at terminal states ("undefined"
// comparable) and the next state's fluents must be equal. Pass = zero mismatches.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childArgs } from './child.js';
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
  /**
   * what `timeLimitMs` counts: 'wall' (default) or 'cpu', this process's CPU time — a sweep on a loaded machine
   * then checks as much as on a quiet one
   */
  clock?: 'wall' | 'cpu';
  /** called after each completed playout (a sweep's child reports its progress through it) */
  onPlayout?: (playouts: number, states: number) => void;
  /** conformSheet: called as each phase starts, with the report so far */
  onPhase?: (phase: string, report: SheetReport) => void;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const eq = (a: unknown[], b: unknown[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function checkConformance<S, T>(
  ref: GameMachine<S, unknown>,
  test: GameMachine<T, unknown>,
  opts: ConformanceOptions = {},
): ConformanceResult {
  const { playouts = 100, seed = 1, maxPlies = 1000, timeLimitMs = Number.POSITIVE_INFINITY, stopEarly = true } = opts;
  const now = opts.clock === 'cpu' ? cpuNow : () => performance.now();
  const t0 = now();
  const rand = rng(seed);
  const roles = ref.roles();
  const mismatches: Mismatch[] = [];
  let states = 0;
  let done = 0;
  const bad = (playout: number, ply: number, what: string, expected: unknown, got: unknown) =>
    mismatches.push({ playout, ply, what, expected: JSON.stringify(expected), got: JSON.stringify(got) });
  if (!eq(roles, test.roles())) bad(0, 0, 'roles', roles, test.roles());
  for (let p = 0; p < playouts && !(stopEarly && mismatches.length); p++) {
    if (now() - t0 > timeLimitMs) return { playouts: done, states, mismatches, timedOut: true };
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
      if (now() - t0 > timeLimitMs) return { playouts: done, states, mismatches, timedOut: true };
    }
    done++;
    opts.onPlayout?.(done, states);
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
  /** a sweep stopped this sheet's child (CPU or memory limit, or a crash): where and why */
  killed?: string;
}

/** A report with nothing established yet; every phase that succeeds sets its own field. */
function emptyReport(name: string, timedOut: boolean): SheetReport {
  return {
    name,
    parse: false,
    valid: false,
    mgdl: false,
    normalised: false,
    compile: false,
    pass: null,
    playouts: 0,
    states: 0,
    timedOut,
    compileMs: 0,
    grounded: false,
    groundPass: null,
  };
}

/** Parse → validate → mGDL check → normalise → compile → conformance of compiled (normalised) vs interpreter. */
export function conformSheet(name: string, kif: string, opts: ConformanceOptions = {}): SheetReport {
  const rep = emptyReport(name, false);
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
  opts.onPhase?.('compile', rep);
  try {
    const t0 = performance.now();
    const g = prepareRules(norm.rules, { strict: rep.valid });
    compiled = new CompiledMachine(compileProgram({ ...g, writtenArity: norm.writtenArity }));
    rep.compileMs = performance.now() - t0;
    rep.compile = true;
  } catch (e) {
    rep.error = `${rep.error ? `${rep.error}; ` : ''}compile: ${(e as Error).message.split('\n')[0]}`;
    return rep;
  }
  try {
    const g = prepareRules(rules, { strict: rep.valid });
    ref = new InterpreterMachine(g.roles, g.rules);
    opts.onPhase?.('compiled vs interpreter', rep);
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
      opts.onPhase?.('grounding', rep);
      try {
        // the step budget bounds grounding; the time limit only guards against a loaded machine here
        const gm = groundedFromPrepared(g, { maxMs: 30_000 });
        rep.grounded = true;
        opts.onPhase?.('grounded vs interpreter', rep);
        const q = checkConformance(ref, gm, { ...opts, onPlayout: undefined });
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

export interface SweepOptions {
  /** a folder of .kif sheets (and its test/ subfolder) */
  dir: string;
  playouts?: number;
  /** CPU seconds per check (compiled, and grounded where it builds) */
  seconds?: number;
  /** also check the grounded reasoner (default true) */
  grounded?: boolean;
  /**
   * only these sheets: a comma-separated list; a part that is a sheet's exact name (`chess`, `test/ticTacToe`)
   * selects that sheet, any other part the sheets whose names contain it
   */
  only?: string;
  /** 1-based range of the sorted sheet list */
  from?: number;
  to?: number;
  /** run each sheet in this process (no hard limits; for tests) */
  inprocess?: boolean;
  /** reports of sheets already done (a resumed sweep): those sheets are not run again */
  done?: SheetReport[];
  /** heap limit of each child process in MB (default 4096) */
  heapMb?: number;
  /** CPU seconds a child may use in all (default: `seconds` per check plus 60 for compiling and grounding) */
  cpuLimitS?: number;
  /** called after each sheet with the reports so far (the CLI rewrites its report file here) */
  onSheet?: (r: SheetReport, index: number, total: number, all: SheetReport[]) => void;
}

export interface SweepSummary {
  sheets: number;
  parse: number;
  valid: number;
  mgdlAsIs: number;
  mgdlNormalised: number;
  compile: number;
  /** compiled ≡ interpreter over every playout asked for */
  pass: number;
  /** no mismatch, but the time limit ended the check early */
  passPartial: number;
  fail: number;
  /** stopped by the CPU or memory limit (what it had checked still counts in pass/passPartial) */
  killed: number;
  playouts: number;
  timeLimitS: number;
}

export function sweepSummary(reports: SheetReport[], playouts: number, seconds: number): SweepSummary {
  const c = (p: (r: SheetReport) => boolean) => reports.filter(p).length;
  return {
    sheets: reports.length,
    parse: c((r) => r.parse),
    valid: c((r) => r.valid),
    mgdlAsIs: c((r) => r.mgdl),
    mgdlNormalised: c((r) => r.normalised),
    compile: c((r) => r.compile),
    pass: c((r) => r.pass === true && !r.timedOut),
    passPartial: c((r) => r.pass === true && r.timedOut),
    fail: c((r) => r.pass === false),
    killed: c((r) => r.killed !== undefined),
    playouts,
    timeLimitS: seconds,
  };
}

/** The sheets of a sweep: `dir`'s .kif files, then those of `dir/test`, filtered (see `only`) and sliced. */
export function sweepSheets(dir: string, only?: string, from = 1, to = Number.POSITIVE_INFINITY): string[] {
  const all = [
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.kif'))
      .sort(),
    ...(existsSync(join(dir, 'test'))
      ? readdirSync(join(dir, 'test'))
          .filter((f) => f.endsWith('.kif'))
          .sort()
          .map((f) => `test/${f}`)
      : []),
  ];
  const parts = (only ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const names = new Set(all.map((f) => f.replace(/\.kif$/, '')));
  const picked = (f: string) => {
    const name = f.replace(/\.kif$/, '');
    return parts.some((p) => (names.has(p) ? name === p : name.includes(p)));
  };
  return (parts.length ? all.filter(picked) : all).slice(from - 1, to);
}

/**
 * Conformance over a folder of sheets, each in a child process whose CPU time and heap are bounded: the limit on
 * CPU time (not wall-clock time) makes a sweep on a loaded machine check what it checks on a quiet one, where a
 * wall-clock limit used to kill children that were merely waiting for a core. A sheet that passes its limit is
 * reported with what it had checked (`killed` says where it was stopped).
 */
export async function conformanceSweep(opts: SweepOptions): Promise<{ summary: SweepSummary; reports: SheetReport[] }> {
  const playouts = opts.playouts ?? 100;
  const seconds = opts.seconds ?? 20;
  const names = sweepSheets(opts.dir, opts.only, opts.from, opts.to);
  const prior = new Map((opts.done ?? []).map((r) => [r.name, r]));
  const reports: SheetReport[] = [];
  for (const [i, f] of names.entries()) {
    const name = f.replace(/\.kif$/, '');
    const file = join(opts.dir, f);
    const r =
      prior.get(name) ??
      (opts.inprocess
        ? conformSheet(name, readFileSync(file, 'utf8'), {
            playouts,
            timeLimitMs: seconds * 1000,
            seed: 1,
            clock: 'cpu',
            grounded: opts.grounded,
          })
        : await conformIsolated(
            file,
            name,
            playouts,
            seconds,
            opts.grounded !== false,
            opts.heapMb ?? 4096,
            opts.cpuLimitS,
          ));
    reports.push(r);
    opts.onSheet?.(r, i, names.length, reports);
  }
  return { summary: sweepSummary(reports, playouts, seconds), reports };
}

/** CPU seconds (user + system) of a child process, from /proc; undefined where that cannot be read. */
function childCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat (utime, stime) in clock ticks; Linux reports 100 ticks a second
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

function conformIsolated(
  file: string,
  name: string,
  playouts: number,
  seconds: number,
  grounded: boolean,
  heapMb: number,
  cpuLimitS?: number,
): Promise<SheetReport> {
  // compile and grounding get a minute of CPU on top of the checks; the wall-clock limit only catches a child
  // that stopped using CPU at all (it never should), so it is generous enough for a machine at load 30
  const cpuCap = cpuLimitS ?? seconds * (grounded ? 2 : 1) + 60;
  const wallCap = cpuCap * 30;
  const args = [
    ...childArgs('conform-child', [`--max-old-space-size=${heapMb}`]),
    file,
    name,
    String(playouts),
    String(seconds),
    grounded ? '1' : '0',
  ];
  return new Promise((res) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    let phase = 'start';
    let progress: [number, number] = [0, 0];
    let killed: string | undefined;
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      const text = errTail + d;
      for (const line of text.split('\n')) {
        if (line.startsWith('phase ')) {
          phase = line.slice(6);
          progress = [0, 0];
        } else if (line.startsWith('progress ')) {
          const [, n, s] = line.split(' ');
          progress = [Number(n), Number(s)];
        }
      }
      errTail = text.slice(-2000);
    });
    const t0 = performance.now();
    const watch = setInterval(() => {
      const cpu = child.pid === undefined ? undefined : childCpuSeconds(child.pid);
      const wall = (performance.now() - t0) / 1000;
      if ((cpu !== undefined && cpu > cpuCap) || wall > wallCap) {
        killed = `killed in phase '${phase}' after ${cpu?.toFixed(0) ?? '?'} s of CPU (limit ${cpuCap} s), ${wall.toFixed(0)} s of wall clock`;
        child.kill('SIGKILL');
      }
    }, 500);
    child.on('close', (code, signal) => {
      clearInterval(watch);
      const lines = out.trim().split('\n');
      let rep: SheetReport | undefined;
      for (let k = lines.length - 1; k >= 0 && !rep; k--) {
        try {
          rep = JSON.parse(lines[k]!) as SheetReport;
        } catch {
          /* a line cut by the kill */
        }
      }
      const oom = /heap out of memory|Allocation failed/i.test(errTail);
      if (!killed && (code !== 0 || signal))
        killed = oom
          ? `out of memory in phase '${phase}' (heap limit ${heapMb} MB)`
          : `crashed in phase '${phase}' (exit ${code ?? signal}): ${crashLine(errTail)}`;
      if (!rep) rep = cheapReport(file, name);
      if (killed) {
        rep.killed = killed;
        rep.timedOut = true;
        // stopped during the compiled check: the playouts it completed had no mismatch (it stops at the first)
        if (phase === 'compiled vs interpreter' && rep.pass === null) {
          rep.playouts = progress[0];
          rep.states = progress[1];
          rep.pass = progress[0] > 0 ? true : null;
        }
      }
      res(rep);
    });
  });
}

/** The line of a crashed child's stderr that says what went wrong (its last error line, else its last line). */
function crashLine(err: string): string {
  const lines = err.split('\n').filter((l) => l.trim() && !/^(phase|progress) /.test(l));
  const e = lines.filter((l) => /error/i.test(l)).pop() ?? lines.pop() ?? '';
  return e.trim().slice(0, 200);
}

/** What is cheap is still reported for a child that left nothing: parse, validity and mGDL, from this process. */
function cheapReport(file: string, name: string): SheetReport {
  const rep = emptyReport(name, true);
  try {
    const rules = parseGdl(readFileSync(file, 'utf8'));
    rep.parse = true;
    rep.valid = validateRules(rules).errors.length === 0;
    rep.mgdl = checkMgdl(rules).length === 0;
    rep.normalised = normaliseMgdl(rules).remaining.length === 0;
  } catch {
    /* stays false */
  }
  return rep;
}
