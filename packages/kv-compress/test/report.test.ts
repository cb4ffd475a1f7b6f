// The error ↔ quality statistics (src/eval/report.ts, evaluate.ts): Pearson r and Spearman ρ against values worked
// out by hand, the point sets' membership, and the report over evaluation results; the sweep table's columns.
import { describe, expect, it } from 'vitest';
import { pearson, ranks, spearman } from '../src/eval/evaluate.js';
import {
  correlate,
  correlationReport,
  ERROR_QUALITY_SETS,
  type ErrorQualityPoint,
  errorQualityPoints,
  sweepReport,
} from '../src/eval/report.js';
import type { MethodRow, SuiteResult } from '../src/eval/suite.js';
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
