// The error ↔ quality statistics (src/eval/report.ts, evaluate.ts): Pearson r and Spearman ρ against values worked
// out by hand, the point sets' membership, and the report over evaluation results; the sweep table's columns.
import { describe, expect, it } from 'vitest';
import { pearson, ranks, spearman } from '../src/eval/evaluate.js';
import {
  compareRows,
  comparisonReport,
  correlate,
  correlationReport,
  ERROR_QUALITY_SETS,
  type ErrorQualityPoint,
  errorQualityPoints,
  mcnemarExact,
  sweepReport,
} from '../src/eval/report.js';
import { type MethodRow, mergeResults, type SuiteResult } from '../src/eval/suite.js';
import { expandGrid, parseGrid, pointKey, pointName, type SweepResult } from '../src/eval/sweep.js';

describe('rank correlation', () => {
  it('ranks ties at their mean rank', () => {
    expect(ranks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    expect(ranks([3, 3, 3])).toEqual([2, 2, 2]);
  });
  it('matches hand-computed Pearson and Spearman values', () => {
    // x = 1..4, y = (1, 3, 2, 5): Sxy = 5.5, Sxx = 5, Syy = 8.75 → r = 5.5 / √43.75
    expect(pearson([1, 2, 3, 4], [1, 3, 2, 5])).toBeCloseTo(5.5 / Math.sqrt(43.75), 14);
    // no ties: ρ = 1 − 6Σd² / (n(n² − 1)); d = (−1, 1, −1, 1, 0) → 1 − 24/120 = 0.8
    expect(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 14);
    // monotone but not linear: ρ = 1 while r < 1 (the shape of PPL against error at high ratios)
    const x = [0.02, 0.05, 0.1, 0.2, 0.4];
    const y = x.map((e) => Math.exp(20 * e));
    expect(spearman(x, y)).toBe(1);
    expect(pearson(x, y)).toBeLessThan(0.95);
    // ties in y: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Sxy = 4.5, Sxx = 5, Syy = 4.5 → √(4.5/5)
    expect(spearman([1, 2, 3, 4], [1, 7, 7, 9])).toBeCloseTo(Math.sqrt(4.5 / 5), 14);
  });
});

const point = (method: string, keyErr: number, pplRatio: number, extra: Partial<ErrorQualityPoint> = {}) =>
  ({
    source: 'a.json',
    method,
    keyErr,
    valueErr: 2 * keyErr,
    attnErr: 3 * keyErr,
    pplRatio,
    ...extra,
  }) as ErrorQualityPoint;

describe('error ↔ quality', () => {
  it('correlates each error with each quality measure over the points that have both', () => {
    const pts = [
      point('kvtc 4×', 1, 1, { textPplRatio: 1.01 }),
      point('kvtc 8×', 2, 3, { textPplRatio: 1.02 }),
      point('kvtc 16×', 3, 2),
      point('kvtc 32×', 4, 5, { textPplRatio: 1.5 }),
    ];
    const r = correlate(pts, 'key error', 'answer PPL ratio');
    expect(r.n).toBe(4);
    expect(r.pearson).toBeCloseTo(5.5 / Math.sqrt(43.75), 14);
    // value = 2·key and attn = 3·key: a linear change of the error leaves r unchanged
    expect(correlate(pts, 'mean K/V error', 'answer PPL ratio').pearson).toBeCloseTo(r.pearson, 14);
    expect(correlate(pts, 'attn-out error', 'answer PPL ratio').pearson).toBeCloseTo(r.pearson, 14);
    // log PPL: a float64 reference written out here
    const ly = [1, 3, 2, 5].map(Math.log);
    const my = ly.reduce((a, b) => a + b) / 4;
    const sxy = [-1.5, -0.5, 0.5, 1.5].reduce((a, dx, i) => a + dx * (ly[i]! - my), 0);
    const syy = ly.reduce((a, y) => a + (y - my) ** 2, 0);
    expect(correlate(pts, 'key error', 'log answer PPL ratio').pearson).toBeCloseTo(sxy / Math.sqrt(5 * syy), 14);
    // text PPL exists on three points only: key (1, 2, 4) against (1.01, 1.02, 1.5)
    const t = correlate(pts, 'key error', 'text PPL ratio');
    expect(t.n).toBe(3);
    expect(t.pearson).toBeCloseTo(pearson([1, 2, 4], [1.01, 1.02, 1.5]), 14);
    expect(t.spearman).toBe(1);
    // fewer than three points: undefined, not a number
    expect(correlate(pts.slice(0, 2), 'key error', 'answer PPL ratio').pearson).toBeNaN();
  });

  it('selects the stated point sets', () => {
    const [paper, plain, coded] = ERROR_QUALITY_SETS.map((s) => s.test);
    const names = [
      'kvtc 4×',
      'kvtc 6×',
      'kvtc 64×',
      'kvtc 16× per-layer PCA',
      'pca truncation 32×',
      'kvtc 64× attention-sampled',
      'kvtc 64× no sinks',
      'kvtc 64× attention-sampled window 4',
      'kvtc 64× calibration=attention mix=0.9 window=4',
    ];
    expect(names.filter(paper!)).toEqual(['kvtc 4×', 'kvtc 64×']);
    expect(names.filter(plain!)).toEqual(['kvtc 4×', 'kvtc 6×', 'kvtc 64×']);
    expect(names.filter(coded!)).toEqual([
      'kvtc 4×',
      'kvtc 6×',
      'kvtc 64×',
      'kvtc 16× per-layer PCA',
      'pca truncation 32×',
      'kvtc 64× attention-sampled',
      'kvtc 64× calibration=attention mix=0.9 window=4',
    ]);
  });

  it('reports every set from evaluation results, rows of several files kept apart', () => {
    const row = (method: string, keyErr?: number, pplRatio = 1) =>
      ({ method, keyErr, valueErr: keyErr, attnErr: keyErr ?? 0, pplRatio }) as unknown as MethodRow;
    const res = (rows: MethodRow[]) => ({ rows }) as unknown as SuiteResult;
    const files = [
      { source: 'one.json', result: res([row('exact'), row('kvtc 4×', 1, 1), row('kvtc 8×', 2, 3)]) },
      // the same method name in another file is another point (another calibration)
      {
        source: 'two.json',
        result: res([row('kvtc 8×', 3, 2), row('kvtc 16×', 4, 5), row('kvtc 16× no sinks', 4, 9)]),
      },
    ];
    const pts = errorQualityPoints(files);
    expect(pts.map((p) => `${p.source} ${p.method}`)).toEqual([
      'one.json kvtc 4×',
      'one.json kvtc 8×',
      'two.json kvtc 8×',
      'two.json kvtc 16×',
      'two.json kvtc 16× no sinks',
    ]);
    const md = correlationReport(files);
    const r = (5.5 / Math.sqrt(43.75)).toFixed(3);
    // paper targets and all plain targets: the four plain rows; every coded cache: the ablation left out
    expect(md).toContain(`| paper targets (kvtc 4, 8, 16, 32, 64×) | 4 | answer PPL ratio | ${r} (0.800) |`);
    expect(md).toContain(`| every coded cache but sink/window ablations | 4 | answer PPL ratio | ${r} (0.800) |`);
  });
});

describe('sweep table', () => {
  it('has a column per varying lever and states the fixed ones', () => {
    const pts = expandGrid(parseGrid(['ratio=64', 'cal-seed=1,2', 'calibration=uniform,attention']));
    const score = { n: 10, acc: 90, lo: 80, hi: 95, diff: -10, diffLo: -15, diffHi: -5 };
    const rows = pts.map((p, i) => ({
      method: pointName(p),
      key: pointKey(p),
      levers: p,
      scores: { kv: score, passkey: score, vt: score },
      ratio: 2.9,
      ratioPacked: 64,
      ratioDeflated: 70 + i,
      kvAcc: 90,
      passkeyAcc: 90,
      vtAcc: 90,
      acc: 90,
      nll: 1,
      pplRatio: 1.5,
      attnErr: 0.6,
      keyErr: 0.2,
      valueErr: 0.4,
    }));
    const md = sweepReport({ rows, sweep: { version: 1, base: {}, grids: [] } } as unknown as SweepResult);
    expect(md).toContain('| cal-seed | calibration | mix | ratio (packed → DEFLATE) |');
    expect(md).toContain('| 1 | uniform | – | 64.0× → 70.0× | 0.200 | 0.400 | 0.600 | 1.500 | -10.0 [-15.0, -5.0] |');
    expect(md).toContain('| 2 | attention | 0.9 | 64.0× → 73.0× |');
    expect(md).toMatch(/Fixed in every row: .*ratio=64/);
  });
});

describe('paired comparison of two rows', () => {
  it('exact McNemar p against hand-derived binomial tails', () => {
    // 0 vs 6 discordant: 2 · (1/2)⁶ = 1/32
    expect(mcnemarExact(0, 6)).toBeCloseTo(1 / 32, 15);
    // 1 vs 7: 2 · (C(8,0) + C(8,1)) / 2⁸ = 18/256
    expect(mcnemarExact(7, 1)).toBeCloseTo(18 / 256, 15);
    // 3 vs 3 (and none at all): no evidence, p capped at 1
    expect(mcnemarExact(3, 3)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
    // large n, past where 2ⁿ overflows a double: 20 vs 60 against a float64 sum of C(80, i)/2⁸⁰ by BigInt
    let c = 1n;
    let tail = 0n;
    for (let i = 0; i <= 20; i++) {
      if (i > 0) c = (c * BigInt(80 - i + 1)) / BigInt(i);
      tail += c;
    }
    expect(mcnemarExact(20, 60)).toBeCloseTo((2 * Number(tail)) / 2 ** 80, 12);
    expect(mcnemarExact(500, 600)).toBeGreaterThan(0);
  });

  const score = (hits: string) => ({ n: hits.length, acc: 0, lo: 0, hi: 0, diff: 0, diffLo: 0, diffHi: 0, hits });
  const row = (method: string, kv: string, pk = '11', vt = '0') =>
    ({ method, scores: { kv: score(kv), passkey: score(pk), vt: score(vt) } }) as unknown as MethodRow;
  const result = (rows: MethodRow[]): SuiteResult => ({
    rows,
    timings: {
      context: 0,
      prefillMs: 0,
      decompressMs: 0,
      speedup: 0,
      encodeMBs: 0,
      decodeMBs: 0,
      calibrationMs: 0,
      dpMs: 0,
    },
    errorPplPearson: Number.NaN,
  });

  it('counts discordant queries and takes Δ = b − a per task', () => {
    const r = result([row('a', '11110000'), row('b', '01111110', '10')]);
    const [kv, pk, vt] = compareRows(r, 'a', 'b');
    expect(kv).toMatchObject({ task: 'kv', n: 8, accA: 50, accB: 75, onlyA: 1, onlyB: 3 });
    // per-query differences (−1, 0, 0, 0, +1, +1, +1, 0): mean 0.25, as the accuracies' 75 − 50
    expect(kv!.diff).toBeCloseTo(25, 12);
    expect(kv!.p).toBeCloseTo((2 * (1 + 4)) / 16, 15);
    expect(pk).toMatchObject({ onlyA: 1, onlyB: 0, diff: -50 });
    expect(vt).toMatchObject({ onlyA: 0, onlyB: 0, diff: 0, p: 1 });
    const md = comparisonReport(r, 'a', 'b');
    expect(md).toContain('| kv | 8 | 50.0 | 75.0 | +25.0 [');
    expect(md).toContain('| 1 | 3 | 0.625 |');
  });

  it('rejects missing rows, rows without hits and mismatched hits with a ValueError', () => {
    const r = result([row('a', '1100'), row('b', '110'), row('old', '1')]);
    delete (r.rows[2]!.scores.kv as { hits?: string }).hits;
    expect(() => compareRows(r, 'a', 'zz')).toThrow(/no row 'zz' \(rows: a, b, old\)/);
    expect(() => compareRows(r, 'a', 'old')).toThrow(/'old' has no per-query hits/);
    expect(() => compareRows(r, 'a', 'b')).toThrow(/not two 0\/1 strings of one length/);
    r.rows[1]!.scores.kv.hits = '11x0';
    expect(() => compareRows(r, 'a', 'b')).toThrow(/not two 0\/1 strings/);
  });

  it('files whose exact caches answered differently are not joined', () => {
    const one = result([row('exact', '1111'), row('a', '1100')]);
    const two = result([row('exact', '1110'), row('b', '1000')]);
    expect(() => mergeResults([one, two])).toThrow(/answered the kv queries differently/);
    const same = result([row('exact', '1111'), row('b', '1000')]);
    expect(mergeResults([one, same]).rows.map((x) => x.method)).toEqual(['exact', 'a', 'b']);
  });
});
