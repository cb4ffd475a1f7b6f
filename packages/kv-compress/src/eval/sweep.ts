// A grid search over KVTC's levers (calibration draw and size, row sampling, PCA mode, the DP's menu, side
// information, K/V split, sinks and window) with one evaluated row per combination. Every row goes through the
// suite's own code paths (suiteContext, calibrationSet, attentionSampledSet, fitPlan, MethodEvaluator), so a
// sweep row equals the `eval` row of the same settings bit for bit, with the same paired intervals against the
// exact cache. Rows are keyed by their full lever assignment, so an interrupted or extended sweep recomputes
// only the rows its output does not hold yet.
import type { nn } from '@tessera/tensor-core';
import { HostStorage } from '../caches/host.js';
import { KVTCStorage } from '../caches/kvtc-storage.js';
import { type Calibration, calibrate, fitPlan, type KVRows } from '../calibration.js';
import { DEFAULT_SIZES, DEFAULT_TYPES, PAPER_SIZES } from '../dp.js';
import { ValueError } from '../errors.js';
import { QUANT_TYPES, type QuantType, TYPE_BITS } from '../quant.js';
import {
  attentionSampledSet,
  calibrationSet,
  errorQualityPearson,
  fusedCalibrationTokens,
  MethodEvaluator,
  type MethodRow,
  type SuiteOptions,
  type SuiteResult,
  suiteContext,
  untimed,
} from './suite.js';

export type LeverValue = string | number;

/** How a lever's value reaches the evaluation: which calibration, which plan, which cache. */
type Stage = 'calibration' | 'plan' | 'cache';

interface LeverSpec {
  stage: Stage;
  /** the allowed values, in words, for error messages and the CLI's help */
  allowed: string;
  /** a written value → its canonical form (throws ValueError naming `allowed` otherwise) */
  parse: (raw: string) => LeverValue;
  /** the value when the grid does not set the lever, from the sweep's base options */
  base: (o: SuiteOptions) => LeverValue;
}

const bad = (name: string, raw: string, allowed: string) =>
  new ValueError(`sweep: lever ${name} takes ${allowed}; got '${raw}'`);

/** A real-valued lever: `ok` says which numbers it takes, `allowed` says so in the error. */
function numberLever(name: string, ok: (x: number) => boolean, allowed: string): (raw: string) => number {
  return (raw) => {
    const x = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(x) || !ok(x)) throw bad(name, raw, allowed);
    return x;
  };
}

function intLever(name: string, min: number): (raw: string) => number {
  return (raw) => {
    const x = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(x) || x < min) throw bad(name, raw, `an integer ≥ ${min}`);
    return x;
  };
}

const TYPE_ALIASES: Record<string, readonly QuantType[]> = {
  paper: DEFAULT_TYPES,
  'int1-4': ['int1', 'int2', 'int3', 'int4', 'fp8'],
};
const SIZE_ALIASES: Record<string, readonly number[]> = { paper: PAPER_SIZES, default: DEFAULT_SIZES };

/** '+'-joined quantisation types or an alias, canonical: sorted by width (the order the suite lists them in). */
function parseTypes(raw: string): string {
  const allowed = `'+'-joined types from ${QUANT_TYPES.filter((t) => t !== 'none').join(', ')}, or ${Object.keys(TYPE_ALIASES).join(' / ')}`;
  const out = new Set<QuantType>();
  for (const part of raw.split('+')) {
    const alias = TYPE_ALIASES[part];
    if (alias) for (const t of alias) out.add(t);
    else if ((QUANT_TYPES as readonly string[]).includes(part) && part !== 'none') out.add(part as QuantType);
    else throw bad('types', raw, allowed);
  }
  return [...out].sort((a, b) => TYPE_BITS[a] - TYPE_BITS[b]).join('+');
}

/** '+'-joined group sizes and aliases (`default+2+32` adds 2 and 32 to the default sizes), canonical: ascending. */
function parseSizes(raw: string): string {
  const allowed = `'+'-joined integers ≥ 1 and ${Object.keys(SIZE_ALIASES).join(' / ')} (e.g. default+2+32)`;
  const out = new Set<number>();
  for (const part of raw.split('+')) {
    const alias = SIZE_ALIASES[part];
    const x = Number(part);
    if (alias) for (const s of alias) out.add(s);
    else if (part.trim() !== '' && Number.isInteger(x) && x >= 1) out.add(x);
    else throw bad('sizes', raw, allowed);
  }
  return [...out].sort((a, b) => a - b).join('+');
}

function enumLever(name: string, values: readonly string[]): (raw: string) => string {
  return (raw) => {
    if (!values.includes(raw)) throw bad(name, raw, `one of ${values.join(', ')}`);
    return raw;
  };
}

/**
 * The levers, in the order rows are grouped (calibration first, so each calibration is computed once for all
 * the plans and caches that use it). Each maps onto one option of the suite (SuiteOptions, fitPlan's options
 * or KVTCStorage's).
 */
export const LEVERS = {
  'cal-seed': {
    stage: 'calibration',
    allowed: 'an integer ≥ 0 (seed of the calibration sequences; SuiteOptions.calibrationSeed)',
    parse: intLever('cal-seed', 0),
    base: (o) => o.calibrationSeed ?? (o.seed ?? 2026) + 1,
  },
  'cal-sequences': {
    stage: 'calibration',
    allowed: 'an integer ≥ 1 (calibrationSequences)',
    parse: intLever('cal-sequences', 1),
    base: (o) => o.calibrationSequences ?? 24,
  },
  'cal-length': {
    stage: 'calibration',
    allowed: 'an integer ≥ 8 (calibrationLength)',
    parse: intLever('cal-length', 8),
    base: (o) => o.calibrationLength ?? 128,
  },
  'cal-text': {
    stage: 'calibration',
    allowed: 'corpus (held-out text mixed into the calibration sequences) or none (task sequences alone)',
    parse: enumLever('cal-text', ['corpus', 'none']),
    base: (o) => (o.text && o.calibrationText !== false ? 'corpus' : 'none'),
  },
  calibration: {
    stage: 'calibration',
    allowed: 'uniform (the paper) or attention (attention-sampled rows)',
    parse: enumLever('calibration', ['uniform', 'attention']),
    base: () => 'uniform',
  },
  mix: {
    stage: 'calibration',
    allowed: 'a number in [0, 1] (attentionMix; only with calibration=attention)',
    parse: numberLever('mix', (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    base: (o) => o.attentionMix ?? 0.9,
  },
  pca: {
    stage: 'calibration',
    allowed: 'cross-layer (the paper) or per-layer',
    parse: enumLever('pca', ['cross-layer', 'per-layer']),
    base: () => 'cross-layer',
  },
  ratio: {
    stage: 'plan',
    allowed: 'a number > 1 (the DP target)',
    parse: numberLever('ratio', (x) => x > 1, 'a number > 1'),
    base: () => {
      throw new ValueError('sweep: the grid must set ratio (e.g. ratio=64)');
    },
  },
  types: {
    stage: 'plan',
    allowed: `'+'-joined types from int1, int2, int3, int4, fp8, or paper (int2+int4+fp8) / int1-4`,
    parse: parseTypes,
    base: () => DEFAULT_TYPES.join('+'),
  },
  sizes: {
    stage: 'plan',
    allowed: `'+'-joined group sizes and default / paper (e.g. default+2+32)`,
    parse: parseSizes,
    base: () => DEFAULT_SIZES.join('+'),
  },
  'dp-rows': {
    stage: 'plan',
    allowed: 'an integer ≥ 2 or all (calibration rows the DP simulates)',
    parse: (raw) => (raw === 'all' ? 'all' : intLever('dp-rows', 2)(raw)),
    base: (o) => o.dpRows ?? 512,
  },
  'token-group': {
    stage: 'plan',
    allowed: 'an integer ≥ 1 (tokens sharing one shift/scale; 1 = the paper)',
    parse: intLever('token-group', 1),
    base: (o) => o.tokenGroup ?? 16,
  },
  'key-share': {
    stage: 'plan',
    allowed: "a number in (0, 1) (keys' share of the bits) or weighted (split by the DP)",
    parse: (raw) =>
      raw === 'weighted' ? raw : numberLever('key-share', (x) => x > 0 && x < 1, 'a number in (0, 1) or weighted')(raw),
    base: () => 0.5,
  },
  sinks: {
    stage: 'cache',
    allowed: 'an integer ≥ 0 (raw sink tokens of the cache; calibration keeps the base sinks)',
    parse: intLever('sinks', 0),
    base: (o) => o.sinks ?? 4,
  },
  window: {
    stage: 'cache',
    allowed: 'an integer ≥ 1 (raw recent window of the cache; calibration keeps the base window)',
    parse: intLever('window', 1),
    base: (o) => o.window ?? 16,
  },
} satisfies Record<string, LeverSpec>;

export type LeverName = keyof typeof LEVERS;
export const LEVER_NAMES = Object.keys(LEVERS) as LeverName[];

/** Values of the levers a grid sets, as written (`cal-seed=2027,2028` → { 'cal-seed': ['2027', '2028'] }). */
export type LeverGrid = Partial<Record<LeverName, string[]>>;

/** One combination: every lever resolved (those the grid leaves out at their base value). */
export type SweepPoint = Record<LeverName, LeverValue>;

function checkName(name: string): LeverName {
  if (!(name in LEVERS))
    throw new ValueError(`sweep: unknown lever '${name}'; the levers are ${LEVER_NAMES.join(', ')}`);
  return name as LeverName;
}

/**
 * Parses `name=v1,v2` arguments (or a JSON object of name → values) into a grid; a lever given twice is a
 * ValueError, as is an unknown name or an empty value list.
 */
export function parseGrid(spec: string[] | Record<string, unknown>): LeverGrid {
  const grid: LeverGrid = {};
  const entries: [string, unknown[]][] = Array.isArray(spec)
    ? spec.map((a) => {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new ValueError(`sweep: a lever is written name=value[,value…]; got '${a}'`);
        return [a.slice(0, eq), a.slice(eq + 1).split(',')];
      })
    : Object.entries(spec).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]);
  for (const [rawName, values] of entries) {
    const name = checkName(rawName);
    if (grid[name]) throw new ValueError(`sweep: lever ${name} is given twice`);
    if (!values.length || values.some((v) => (typeof v !== 'string' && typeof v !== 'number') || `${v}` === ''))
      throw new ValueError(`sweep: lever ${name} needs one or more values (${LEVERS[name].allowed})`);
    grid[name] = values.map((v) => `${v}`);
  }
  return grid;
}

/** The canonical identity of a point: every lever, in LEVERS order (mix only with attention sampling). */
export function pointKey(p: SweepPoint): string {
  return LEVER_NAMES.filter((n) => n !== 'mix' || p.calibration === 'attention')
    .map((n) => `${n}=${p[n]}`)
    .join(' ');
}

/**
 * Every combination of the grid's values (a Cartesian product; levers outside the grid at their base value),
 * validated and canonical, grouped calibration-first. Combinations that name the same point — mix under uniform
 * calibration, or two spellings of one value — appear once. A mix without calibration=attention anywhere in the
 * sweep is a ValueError (it would change nothing).
 */
export function expandGrid(grid: LeverGrid, base: SuiteOptions = {}): SweepPoint[] {
  for (const name of Object.keys(grid)) checkName(name);
  const values = LEVER_NAMES.map((name) => {
    const raw = grid[name];
    if (!raw) return [LEVERS[name].base(base)];
    if (!raw.length) throw new ValueError(`sweep: lever ${name} needs one or more values (${LEVERS[name].allowed})`);
    return [...new Set(raw.map((v) => LEVERS[name].parse(v)))];
  });
  const ci = LEVER_NAMES.indexOf('calibration');
  if (grid.mix && !values[ci]!.includes('attention'))
    throw new ValueError('sweep: mix acts only on attention-sampled rows; add calibration=attention to the grid');
  const textIdx = LEVER_NAMES.indexOf('cal-text');
  if (!base.text && values[textIdx]!.includes('corpus'))
    throw new ValueError('sweep: cal-text=corpus needs held-out text (--text)');
  const points: SweepPoint[] = [];
  const seen = new Set<string>();
  const rec = (i: number, acc: LeverValue[]) => {
    if (i === LEVER_NAMES.length) {
      const p = Object.fromEntries(LEVER_NAMES.map((n, j) => [n, acc[j]!])) as SweepPoint;
      const key = pointKey(p);
      if (!seen.has(key)) {
        seen.add(key);
        points.push(p);
      }
      return;
    }
    for (const v of values[i]!) rec(i + 1, [...acc, v]);
  };
  rec(0, []);
  return points;
}

/** The calibration levers of a point: points that share them share one calibration. */
function calibrationKey(p: SweepPoint): string {
  return LEVER_NAMES.filter((n) => LEVERS[n].stage === 'calibration')
    .map((n) => `${n}=${p[n]}`)
    .join(' ');
}

/**
 * The union of several grids' points, each point once, grouped by calibration in order of first appearance
 * (so that every calibration is computed once).
 */
export function joinPoints(lists: SweepPoint[][]): SweepPoint[] {
  const groups = new Map<string, Map<string, SweepPoint>>();
  for (const list of lists)
    for (const p of list) {
      const ck = calibrationKey(p);
      if (!groups.has(ck)) groups.set(ck, new Map());
      groups.get(ck)!.set(pointKey(p), p);
    }
  return [...groups.values()].flatMap((g) => [...g.values()]);
}

/** `kvtc 64×` followed by every lever that differs from the base (mix always with attention sampling). */
export function pointName(p: SweepPoint, base: SuiteOptions = {}): string {
  const parts = LEVER_NAMES.filter((n) => {
    if (n === 'ratio') return false;
    if (n === 'mix') return p.calibration === 'attention';
    return p[n] !== LEVERS[n].base(base);
  }).map((n) => `${n}=${p[n]}`);
  return [`kvtc ${p.ratio}×`, ...parts].join(' ');
}

export interface SweepRow extends MethodRow {
  /** pointKey of the row's lever assignment (what resuming matches on) */
  key: string;
  levers: SweepPoint;
  /** fused key–value tokens among the calibration sequences' rows (fusedCalibrationTokens; absent in older files) */
  fusedCalibrationTokens?: number;
}

/** A sweep's output: a SuiteResult (the exact cache first; `report` and `correlate` read it) plus its grid. */
export interface SweepResult extends SuiteResult {
  sweep: {
    version: 1;
    /** the settings every row shares; resuming with other settings is refused */
    base: Record<string, unknown>;
    /** the levers each grid of this file set, latest last */
    grids: LeverGrid[];
  };
}

export interface SweepOptions extends SuiteOptions {
  /** one grid, or several whose points are joined (one-lever variations around a base point, say) */
  grid: LeverGrid | LeverGrid[];
  /** a previous output of the same sweep: rows with the same key are kept, not recomputed */
  previous?: SweepResult;
  /** called after the exact row and after each new row, with everything so far (the CLI writes the file) */
  save?: (r: SweepResult) => void;
  /** identifies the model in the base settings (the CLI passes the weights file's FNV-1a hash) */
  modelId?: string;
  /** identifies the held-out text in the base settings */
  textId?: string;
}

/** The settings a sweep's rows share (everything but the levers), compared when resuming. */
export function sweepBase(o: SweepOptions): Record<string, unknown> {
  return {
    model: o.modelId ?? null,
    text: o.text ? (o.textId ?? `${o.text.length} ids`) : null,
    seed: o.seed ?? 2026,
    samples: o.samples ?? null,
    sizes: o.sizes ?? null,
    textDocs: o.textDocs ?? null,
    every: o.every ?? 16,
    // the defaults of the levers (base sinks and window also place the calibration rows and the sampling offset)
    defaults: Object.fromEntries(LEVER_NAMES.filter((n) => n !== 'ratio').map((n) => [n, LEVERS[n].base(o)] as const)),
  };
}

const stable = (x: unknown) => JSON.stringify(x);

/**
 * Runs the grid: the exact cache, then one KVTC row per combination not yet in `previous`, calibrations shared
 * between the combinations that use them. Rows are the suite's (MethodEvaluator) with the key and levers added.
 */
export function runSweep(model: nn.CausalLM, o: SweepOptions): SweepResult {
  const gridList = Array.isArray(o.grid) ? o.grid : [o.grid];
  if (!gridList.length) throw new ValueError('sweep: no grid given');
  const points = joinPoints(gridList.map((g) => expandGrid(g, o)));
  const base = sweepBase(o);
  const prev = o.previous;
  if (prev) {
    if (prev.sweep?.version !== 1) throw new ValueError('sweep: the previous output is not a sweep file (version 1)');
    if (stable(prev.sweep.base) !== stable(base))
      throw new ValueError(
        `sweep: the previous output was run with other base settings (${stable(prev.sweep.base)}), not ${stable(base)}; write to another file`,
      );
  }
  const done = new Map((prev?.rows ?? []).filter((r): r is SweepRow => 'key' in r).map((r) => [r.key, r]));
  const todo = points.filter((p) => !done.has(pointKey(p)));
  const log = o.log ?? (() => {});
  log(
    `sweep: ${points.length} combinations, ${points.length - todo.length} already in the output, ${todo.length} to run`,
  );
  const grids = [...(prev?.sweep.grids ?? []), ...gridList];
  const result = (exact: MethodRow | undefined, rows: SweepRow[]): SweepResult => {
    const all = [...(exact ? [exact] : []), ...rows];
    return {
      rows: all,
      timings: untimed(),
      errorPplPearson: errorQualityPearson(all),
      sweep: { version: 1, base, grids },
    };
  };
  const kept = [...done.values()];
  const prevExact = prev?.rows.find((r) => r.method === 'exact');
  if (!todo.length) return result(prevExact, kept);

  const ctx = suiteContext(model, o);
  const ev = new MethodEvaluator(ctx);
  const exact = ev.run('exact', () => new HostStorage());
  // the exact row is deterministic: a different one means the model or samples are not the previous ones
  if (prevExact && (prevExact.nll !== exact.nll || prevExact.kvAcc !== exact.kvAcc))
    throw new ValueError(
      `sweep: the exact cache now gives NLL ${exact.nll} (previously ${prevExact.nll}): not the same model or samples`,
    );
  const rows = [...kept];
  o.save?.(result(exact, rows));

  // calibrations shared by consecutive points (expandGrid orders calibration levers first)
  let calKey = '';
  let cal: { cal: Calibration; rows: KVRows } | null = null;
  let fused = 0;
  for (const p of todo) {
    const ck = calibrationKey(p);
    if (ck !== calKey || !cal) {
      cal = null; // free the previous calibration's rows first
      const t = performance.now();
      const so: SuiteOptions = {
        ...o,
        calibrationSeed: p['cal-seed'] as number,
        calibrationSequences: p['cal-sequences'] as number,
        calibrationLength: p['cal-length'] as number,
        calibrationText: p['cal-text'] === 'corpus',
      };
      const set = calibrationSet(model, so, ctx.sinks);
      const rows =
        p.calibration === 'attention' ? attentionSampledSet(ctx, set.docs, set.rows, p.mix as number) : set.rows;
      cal = { cal: calibrate(rows, { mode: p.pca as 'cross-layer' | 'per-layer' }), rows };
      calKey = ck;
      fused = fusedCalibrationTokens(set.docs, ctx.sinks);
      log(
        `calibration ${ck}: ${rows.n} rows (${fused} fused key–value tokens), ${(performance.now() - t).toFixed(0)} ms`,
      );
    }
    const dpRows = p['dp-rows'];
    const plan = fitPlan(
      cal.cal,
      cal.rows,
      { ratio: p.ratio as number },
      {
        tokenGroup: p['token-group'] as number,
        maxRows: dpRows === 'all' ? Number.POSITIVE_INFINITY : (dpRows as number),
        types: (p.types as string).split('+') as QuantType[],
        sizes: (p.sizes as string).split('+').map(Number),
        keyShare: p['key-share'] === 'weighted' ? 'weighted' : (p['key-share'] as number),
      },
    );
    const c = cal.cal;
    const opts = { sinks: p.sinks as number, window: p.window as number, every: ctx.every };
    const row = ev.run(pointName(p, o), () => new KVTCStorage(c, plan, opts), { cal: c, plan });
    rows.push({ ...row, key: pointKey(p), levers: p, fusedCalibrationTokens: fused });
    o.save?.(result(exact, rows));
  }
  return result(exact, rows);
}
