// Markdown tables of an evaluation (the README's bench table is pasted from this).
import { ValueError } from '../errors.js';
import { pairedDiff, pearson, spearman } from './evaluate.js';
import type { SuiteResult, TaskScore } from './suite.js';
import { LEVER_NAMES, type LeverName, type SweepResult, type SweepRow } from './sweep.js';

// null too: results read back from JSON carry NaN as null
const f = (x: number | undefined | null, d = 2) => (x == null || Number.isNaN(x) ? '–' : x.toFixed(d));

export function markdownReport(r: SuiteResult): string {
  const lines = [
    '| method | ratio (all tokens) | ratio (compressed tokens, packed → DEFLATE / range) | container ratio | key err | value err | attn-out err | PPL ratio | KV lookup | passkey | VT |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of r.rows)
    lines.push(
      `| ${m.method} | ${f(m.ratio)}× | ${m.ratioPacked ? `${f(m.ratioPacked, 1)}× → ${f(m.ratioDeflated, 1)}× / ${f(m.ratioRange, 1)}×` : '–'} | ${m.ratioContainer ? `${f(m.ratioContainer)}×` : '–'} | ${f(m.keyErr, 3)} | ${f(m.valueErr, 3)} | ${f(m.attnErr, 3)} | ${f(m.pplRatio, 3)} | ${f(m.kvAcc, 1)} | ${f(m.passkeyAcc, 1)} | ${f(m.vtAcc, 1)} |`,
    );
  if (r.rows[0]?.scores) {
    const sc = (x: TaskScore) =>
      `${f(x.acc, 1)} [${f(x.lo, 1)}, ${f(x.hi, 1)}] | ${x.diff >= 0 ? '+' : ''}${f(x.diff, 1)} [${f(x.diffLo, 1)}, ${f(x.diffHi, 1)}]`;
    const s0 = r.rows[0].scores;
    lines.push(
      '',
      `Retrieval, exact match per query with 95% Wilson intervals, and the paired difference to the exact cache (points, 95% interval); n = ${s0.kv.n} / ${s0.passkey.n} / ${s0.vt.n} queries:`,
      '',
      '| method | KV lookup | Δ | passkey | Δ | VT | Δ | text PPL ratio |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const m of r.rows)
      lines.push(
        `| ${m.method} | ${sc(m.scores.kv)} | ${sc(m.scores.passkey)} | ${sc(m.scores.vt)} | ${f(m.textPplRatio, 3)} |`,
      );
  }
  const t = r.timings;
  lines.push(
    '',
    `Context ${t.context}: re-prefill ${f(t.prefillMs, 0)} ms vs decompress + restore ${f(t.decompressMs, 1)} ms (${f(t.speedup, 1)}× faster${t.repeats ? `; medians of ${t.repeats} interleaved runs, ${t.clock === 'cpu' ? 'CPU' : 'wall'} time` : ''}); KVTC 16× encode ${f(t.encodeMBs, 1)} MB/s, decode ${f(t.decodeMBs, 1)} MB/s (fp16-equivalent); calibration PCA ${f(t.calibrationMs, 0)} ms, DP ${f(t.dpMs, 0)} ms; Pearson r(reconstruction error, log PPL ratio) over KVTC ratios = ${f(r.errorPplPearson, 3)}.`,
  );
  return lines.join('\n');
}

/** One table of a lever sweep (sweep.ts): a column per lever that varies, then the row's costs and quality. */
export function sweepReport(r: SweepResult): string {
  const rows = r.rows.filter((x): x is SweepRow => 'levers' in x);
  const exact = r.rows.find((x) => x.method === 'exact');
  // mix means nothing under uniform calibration: shown as '–' there
  const cell = (x: SweepRow, n: LeverName) =>
    n === 'mix' && x.levers.calibration !== 'attention' ? '–' : `${x.levers[n]}`;
  const varying = LEVER_NAMES.filter((n) => new Set(rows.map((x) => cell(x, n))).size > 1);
  const shown = varying.length ? varying : (['ratio'] as LeverName[]);
  const delta = (x: TaskScore) => `${x.diff >= 0 ? '+' : ''}${f(x.diff, 1)} [${f(x.diffLo, 1)}, ${f(x.diffHi, 1)}]`;
  const lines = [
    `Lever sweep: ${rows.length} rows${exact ? ` against the exact cache (KV lookup ${f(exact.kvAcc, 1)}, passkey ${f(exact.passkeyAcc, 1)}, VT ${f(exact.vtAcc, 1)}; n = ${exact.scores.kv.n} / ${exact.scores.passkey.n} / ${exact.scores.vt.n} queries)` : ''}. Δ: paired difference to the exact cache in points, 95% interval.`,
    '',
    `| ${shown.join(' | ')} | ratio (packed → DEFLATE) | key err | value err | attn-out err | answer PPL | KV lookup Δ | passkey Δ | VT Δ | text PPL |`,
    `|${'---|'.repeat(shown.length + 9)}`,
  ];
  for (const x of rows)
    lines.push(
      `| ${shown.map((n) => cell(x, n)).join(' | ')} | ${f(x.ratioPacked, 1)}× → ${f(x.ratioDeflated, 1)}× | ${f(x.keyErr, 3)} | ${f(x.valueErr, 3)} | ${f(x.attnErr, 3)} | ${f(x.pplRatio, 3)} | ${delta(x.scores.kv)} | ${delta(x.scores.passkey)} | ${delta(x.scores.vt)} | ${f(x.textPplRatio, 3)} |`,
    );
  const fixed = LEVER_NAMES.filter((n) => !shown.includes(n) && rows.length).map((n) => `${n}=${cell(rows[0]!, n)}`);
  if (fixed.length) lines.push('', `Fixed in every row: ${fixed.join(', ')}.`);
  return lines.join('\n');
}

/** A point of the error ↔ quality relation: one evaluated cache with its reconstruction errors. */
export interface ErrorQualityPoint {
  /** where the row came from (file name) and its method */
  source: string;
  method: string;
  keyErr: number;
  valueErr: number;
  attnErr: number;
  pplRatio: number;
  textPplRatio?: number;
}

/**
 * The point sets the error ↔ quality relation is reported over, fixed before looking at the numbers:
 * `paper targets` — the plain DP rows `kvtc N×` at N = 4, 8, 16, 32, 64 (the research note's targets);
 * `all targets` — every plain `kvtc N×` row; `every coded cache` — every row with reconstruction errors
 * (ablations of the plan, other calibrations, truncation) except the sink and window ablations, which share
 * their plan's errors and change the cache policy instead.
 */
export const ERROR_QUALITY_SETS: { name: string; test: (method: string) => boolean }[] = [
  {
    name: 'paper targets (kvtc 4, 8, 16, 32, 64×)',
    test: (m) => /^kvtc (4|8|16|32|64)×$/.test(m),
  },
  { name: 'all plain targets (kvtc N×)', test: (m) => /^kvtc \d+(\.\d+)?×$/.test(m) },
  { name: 'every coded cache but sink/window ablations', test: (m) => !/ (no sinks|window \d+)$/.test(m) },
];

/** Every row of the results that has key and value errors, labelled by its source. */
export function errorQualityPoints(results: { source: string; result: SuiteResult }[]): ErrorQualityPoint[] {
  return results.flatMap(({ source, result }) =>
    result.rows
      .filter((r) => r.keyErr != null && r.valueErr != null)
      .map((r) => ({
        source,
        method: r.method,
        keyErr: r.keyErr!,
        valueErr: r.valueErr!,
        attnErr: r.attnErr,
        pplRatio: r.pplRatio,
        textPplRatio: r.textPplRatio ?? undefined,
      })),
  );
}

export interface Correlation {
  n: number;
  pearson: number;
  spearman: number;
}

const ERRORS = {
  'key error': (p: ErrorQualityPoint) => p.keyErr,
  'mean K/V error': (p: ErrorQualityPoint) => (p.keyErr + p.valueErr) / 2,
  'attn-out error': (p: ErrorQualityPoint) => p.attnErr,
} as const;
const QUALITIES = {
  'answer PPL ratio': (p: ErrorQualityPoint) => p.pplRatio,
  'log answer PPL ratio': (p: ErrorQualityPoint) => Math.log(p.pplRatio),
  'text PPL ratio': (p: ErrorQualityPoint) => p.textPplRatio,
} as const;
export type ErrorMeasure = keyof typeof ERRORS;
export type QualityMeasure = keyof typeof QUALITIES;

/** Pearson r and Spearman ρ of one error measure against one quality measure over the points that have both. */
export function correlate(points: ErrorQualityPoint[], error: ErrorMeasure, quality: QualityMeasure): Correlation {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const p of points) {
    const y = QUALITIES[quality](p);
    if (y == null || !Number.isFinite(y)) continue;
    xs.push(ERRORS[error](p));
    ys.push(y);
  }
  return xs.length > 2
    ? { n: xs.length, pearson: pearson(xs, ys), spearman: spearman(xs, ys) }
    : { n: xs.length, pearson: Number.NaN, spearman: Number.NaN };
}

/**
 * The error ↔ quality report: for each point set, Pearson r and Spearman ρ of every error measure against every
 * quality measure. The paper's statistic (research note §1) is Pearson r of the key reconstruction error against
 * perplexity; PPL ratios share the exact cache's PPL as divisor within one evaluation, so r(key error, PPL
 * ratio) is that statistic. Spearman's ρ is the same for PPL and log PPL, so it is shown once per error.
 */
export function correlationReport(results: { source: string; result: SuiteResult }[]): string {
  const points = errorQualityPoints(results);
  const lines = [
    `Error ↔ quality over ${results.map((r) => r.source).join(', ')}: Pearson r (Spearman ρ in brackets).`,
    '',
    `| point set | n | quality | ${Object.keys(ERRORS).join(' | ')} |`,
    `|---|---|---|${'---|'.repeat(Object.keys(ERRORS).length)}`,
  ];
  for (const set of ERROR_QUALITY_SETS) {
    const pts = points.filter((p) => set.test(p.method));
    for (const q of Object.keys(QUALITIES) as QualityMeasure[]) {
      const cs = (Object.keys(ERRORS) as ErrorMeasure[]).map((e) => correlate(pts, e, q));
      if (!cs[0]!.n) continue;
      const showRho = q !== 'log answer PPL ratio';
      lines.push(
        `| ${set.name} | ${cs[0]!.n} | ${q} | ${cs.map((c) => `${f(c.pearson, 3)}${showRho ? ` (${f(c.spearman, 3)})` : ''}`).join(' | ')} |`,
      );
    }
  }
  lines.push('', 'Points:', '');
  for (const p of points)
    lines.push(
      `- ${p.source}: ${p.method} — key ${f(p.keyErr, 3)}, value ${f(p.valueErr, 3)}, attn-out ${f(p.attnErr, 3)}, answer PPL ${f(p.pplRatio, 3)}, text PPL ${f(p.textPplRatio, 3)}`,
    );
  return lines.join('\n');
}

/** One task of a paired comparison of two rows scored on the same queries (`compareRows`). */
export interface PairedTask {
  task: 'kv' | 'passkey' | 'vt';
  n: number;
  /** accuracy % of a and of b */
  accA: number;
  accB: number;
  /** b − a in points, with the 95% normal interval on the per-query differences (as against the exact cache) */
  diff: number;
  lo: number;
  hi: number;
  /** discordant queries: only a answered, only b answered */
  onlyA: number;
  onlyB: number;
  /** exact McNemar test, two-sided: 2 · P(X ≤ min(onlyA, onlyB)) for X ~ Binomial(onlyA + onlyB, ½), at most 1 */
  p: number;
}

/** Two-sided exact McNemar p-value of discordant counts b and c (the binomial sign test on them). */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // Σ_{i ≤ k} C(n, i) / 2ⁿ in log space: n reaches the query count (hundreds), where 2ⁿ overflows.
  let logC = 0;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

/**
 * Rows `a` and `b` of an evaluation compared with each other query by query (retrieval only): both must carry
 * per-query hits over the same samples (results of `eval` from this version on; `mergeResults` has checked
 * that joined files scored the same queries).
 */
export function compareRows(r: SuiteResult, a: string, b: string): PairedTask[] {
  const find = (name: string) => {
    const row = r.rows.find((x) => x.method === name);
    if (!row) throw new ValueError(`compare: no row '${name}' (rows: ${r.rows.map((x) => x.method).join(', ')})`);
    return row;
  };
  const ra = find(a);
  const rb = find(b);
  return (['kv', 'passkey', 'vt'] as const).map((task) => {
    const ha = ra.scores?.[task]?.hits;
    const hb = rb.scores?.[task]?.hits;
    if (ha === undefined || hb === undefined)
      throw new ValueError(
        `compare: '${ha === undefined ? a : b}' has no per-query hits (written before they were stored): run eval again`,
      );
    if (ha.length !== hb.length || /[^01]/.test(ha + hb))
      throw new ValueError(`compare: the ${task} hits of '${a}' and '${b}' are not two 0/1 strings of one length`);
    const xa = Array.from(ha, Number);
    const xb = Array.from(hb, Number);
    const d = pairedDiff(xa, xb);
    let onlyA = 0;
    let onlyB = 0;
    for (let i = 0; i < xa.length; i++) {
      if (xa[i]! > xb[i]!) onlyA++;
      else if (xb[i]! > xa[i]!) onlyB++;
    }
    const acc = (x: number[]) => (100 * x.reduce((s, v) => s + v, 0)) / Math.max(1, x.length);
    return {
      task,
      n: xa.length,
      accA: acc(xa),
      accB: acc(xb),
      diff: 100 * d.diff,
      lo: 100 * d.lo,
      hi: 100 * d.hi,
      onlyA,
      onlyB,
      p: mcnemarExact(onlyA, onlyB),
    };
  });
}

/** Markdown table of `compareRows`. */
export function comparisonReport(r: SuiteResult, a: string, b: string): string {
  const lines = [
    `'${b}' against '${a}', paired on the same queries: Δ = b − a in points with its 95% interval; discordant queries; exact McNemar p (two-sided).`,
    '',
    `| task | n | ${a} | ${b} | Δ | only ${a} | only ${b} | McNemar p |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const t of compareRows(r, a, b))
    lines.push(
      `| ${t.task} | ${t.n} | ${f(t.accA, 1)} | ${f(t.accB, 1)} | ${t.diff >= 0 ? '+' : ''}${f(t.diff, 1)} [${f(t.lo, 1)}, ${f(t.hi, 1)}] | ${t.onlyA} | ${t.onlyB} | ${t.p < 0.001 ? t.p.toExponential(1) : f(t.p, 3)} |`,
    );
  return lines.join('\n');
}
