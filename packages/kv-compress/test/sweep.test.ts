// The lever sweep (src/eval/sweep.ts): the grid expands to exactly the Cartesian product asked for (canonical
// values, base values for levers left out, calibration levers outermost), every sweep row is the `eval` row of the
// same settings bit for bit (both go through the suite's own code), a resumed sweep computes only the missing rows,
// and bad lever names and values are ValueErrors that name what is allowed.
import { manualSeed, nn } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SIZES } from '../src/dp.js';
import { ValueError } from '../src/errors.js';
import { compareRows } from '../src/eval/report.js';
import {
  calibrationSet,
  fusedCalibrationTokens,
  type MethodRow,
  runSuite,
  type SuiteOptions,
} from '../src/eval/suite.js';
import {
  expandGrid,
  joinPoints,
  LEVER_NAMES,
  LEVERS,
  parseGrid,
  pointKey,
  pointName,
  runSweep,
  type SweepResult,
  type SweepRow,
} from '../src/eval/sweep.js';
import { FUSED_BASE, FUSED_VOCAB_SIZE, VOCAB } from '../src/eval/tasks.js';
import { tinySuite } from './helpers.js';

describe('lever grid', () => {
  it('expands to the Cartesian product, calibration levers outermost, mix only under attention sampling', () => {
    const grid = parseGrid(['ratio=16,64', 'cal-seed=1,2', 'calibration=uniform,attention', 'mix=0.5,0.9']);
    const pts = expandGrid(grid, { calibrationSequences: 3, window: 8 });
    // per ratio and seed: one uniform row (mix does not apply) and one attention row per mix
    expect(pts.length).toBe(2 * 2 * (1 + 2));
    expect(new Set(pts.map(pointKey)).size).toBe(pts.length);
    const want = new Set<string>();
    for (const seed of [1, 2])
      for (const [cal, mixes] of [
        ['uniform', [null]],
        ['attention', [0.5, 0.9]],
      ] as const)
        for (const mix of mixes) for (const ratio of [16, 64]) want.add(`${seed} ${cal} ${mix} ${ratio}`);
    expect(
      new Set(
        pts.map((p) => `${p['cal-seed']} ${p.calibration} ${p.calibration === 'attention' ? p.mix : null} ${p.ratio}`),
      ),
    ).toEqual(want);
    // every lever outside the grid sits at its base value (the suite's options or defaults)
    for (const p of pts) {
      expect(p['cal-sequences']).toBe(3);
      expect(p.window).toBe(8);
      expect(p.sinks).toBe(4);
      expect(p['token-group']).toBe(16);
      expect(p['dp-rows']).toBe(512);
      expect(p.pca).toBe('cross-layer');
      expect(p.types).toBe('int2+int4+fp8');
      expect(p.sizes).toBe(DEFAULT_SIZES.join('+'));
    }
    // points that share a calibration are adjacent: the calibration changes 2 · 3 − 1 times, not more
    const calKey = (p: (typeof pts)[0]) => `${p['cal-seed']} ${p.calibration} ${p.mix}`;
    let changes = 0;
    for (let i = 1; i < pts.length; i++) if (calKey(pts[i]!) !== calKey(pts[i - 1]!)) changes++;
    expect(changes).toBe(2 * 3 - 1);
  });

  it('joins several grids: each point once, grouped by calibration in order of first appearance', () => {
    const a = expandGrid(parseGrid(['ratio=64', 'cal-seed=1,2']));
    const b = expandGrid(parseGrid(['ratio=64', 'types=int1-4', 'cal-seed=2,1']));
    const c = expandGrid(parseGrid(['ratio=64,32', 'cal-seed=1']));
    const joined = joinPoints([a, b, c]);
    const short = (p: (typeof joined)[0]) =>
      `${p['cal-seed']} ${p.ratio} ${p.types === 'int2+int4+fp8' ? '' : 'int1-4'}`;
    // seed 1's points, then seed 2's; the plain 64× points of a and c are one
    expect(joined.map(short)).toEqual(['1 64 ', '1 64 int1-4', '1 32 ', '2 64 ', '2 64 int1-4']);
  });

  it('canonicalises spellings of one value, so they make one row', () => {
    const pts = expandGrid(
      parseGrid(['ratio=32,32.0', 'types=paper,int4+fp8+int2,int1-4', 'sizes=default+2+32,32+default+2']),
    );
    expect(pts.map((p) => p.types)).toEqual(['int2+int4+fp8', 'int1+int2+int3+int4+fp8']);
    expect(new Set(pts.map((p) => p.sizes))).toEqual(new Set(['1+2+4+8+16+32+64+256+1024']));
    expect(pts.map((p) => p.ratio)).toEqual([32, 32]);
    // names list what differs from the base; a point at every default is the eval row's name
    expect(pointName(expandGrid(parseGrid(['ratio=64']))[0]!)).toBe('kvtc 64×');
    expect(pointName(pts[1]!)).toBe('kvtc 32× types=int1+int2+int3+int4+fp8 sizes=1+2+4+8+16+32+64+256+1024');
    // a JSON grid reads the same as the arguments
    expect(parseGrid({ ratio: [16, 64], 'cal-seed': 5 })).toEqual(parseGrid(['ratio=16,64', 'cal-seed=5']));
  });

  it('rejects unknown levers and bad values with a ValueError that names what is allowed', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ValueError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    const unknown = err(() => parseGrid(['menu=int1-4']));
    for (const n of LEVER_NAMES) expect(unknown).toContain(n);
    expect(err(() => expandGrid({ ratio: ['1'] }))).toMatch(/ratio takes a number > 1; got '1'/);
    expect(err(() => expandGrid({ ratio: ['Infinity'] }))).toMatch(/ratio takes a number > 1/);
    expect(err(() => expandGrid({ ratio: ['64'], 'key-share': [' '] }))).toMatch(/\(0, 1\) or weighted/);
    expect(err(() => expandGrid({ ratio: ['64'], types: ['int5'] }))).toMatch(/int1, int2, int3, int4, fp8/);
    expect(err(() => expandGrid({ ratio: ['64'], sizes: ['default+0'] }))).toMatch(/integers ≥ 1/);
    expect(err(() => expandGrid({ ratio: ['64'], 'cal-seed': ['-1'] }))).toMatch(/integer ≥ 0/);
    expect(err(() => expandGrid({ ratio: ['64'], 'cal-sequences': ['1.5'] }))).toMatch(/integer ≥ 1/);
    expect(err(() => expandGrid({ ratio: ['64'], 'dp-rows': ['most'] }))).toMatch(/integer ≥ 2/);
    expect(err(() => expandGrid({ ratio: ['64'], 'key-share': ['1'] }))).toMatch(/\(0, 1\) or weighted/);
    expect(err(() => expandGrid({ ratio: ['64'], calibration: ['attended'] }))).toMatch(/uniform, attention/);
    expect(err(() => expandGrid({ ratio: ['64'], pca: ['per-head'] }))).toMatch(/cross-layer, per-layer/);
    expect(err(() => expandGrid({ ratio: ['64'], mix: ['2'] }))).toMatch(/\[0, 1\]/);
    // a lever that would change nothing, or needs what the sweep lacks
    expect(err(() => expandGrid({ ratio: ['64'], mix: ['0.5'] }))).toMatch(/calibration=attention/);
    expect(err(() => expandGrid({ ratio: ['64'], 'cal-text': ['corpus'] }))).toMatch(/--text/);
    expect(err(() => expandGrid({ 'cal-seed': ['1'] }))).toMatch(/must set ratio/);
    expect(err(() => parseGrid(['ratio=16', 'ratio=32']))).toMatch(/given twice/);
    expect(err(() => parseGrid(['ratio']))).toMatch(/name=value/);
    expect(err(() => parseGrid(['ratio=']))).toMatch(/one or more values/);
    // every lever documents its values
    for (const n of LEVER_NAMES) expect(LEVERS[n].allowed.length).toBeGreaterThan(5);
  });
});

// the suite's smallest set-up (test/helpers.ts), two KV-lookup samples of two queries
const { model, base: tiny } = tinySuite(2);
const base: SuiteOptions = { ...tiny, samples: { kv: 2, passkey: 1, vt: 1 } };

describe('sweep rows through the suite', () => {
  it('equal the eval rows of the same settings bit for bit', () => {
    const evalRows = runSuite(model, {
      ...base,
      ratios: [16, 32],
      methods:
        /^kvtc (16|32)×$|^kvtc 16× (attention-sampled|per-layer PCA|per-token side info|no sinks|window 4)$|^kvtc 32× (int1–int4|keys 70%|K\/V split by DP, unweighted)$/,
    }).rows;
    const sweep = (levers: string[], o: SuiteOptions = {}) =>
      runSweep(model, { ...base, ...o, grid: parseGrid(levers) }).rows;
    const rows = [
      ...sweep(['ratio=16,32']),
      ...sweep(['ratio=16', 'calibration=attention']),
      ...sweep(['ratio=16', 'pca=per-layer']),
      ...sweep(['ratio=16', 'token-group=1']),
      ...sweep(['ratio=16', 'sinks=0,4', 'window=8,4']),
      ...sweep(['ratio=32', 'types=int1-4']),
      ...sweep(['ratio=32', 'key-share=0.7,weighted']),
    ];
    const pairs: [string, string][] = [
      ['kvtc 16×', 'kvtc 16×'],
      ['kvtc 32×', 'kvtc 32×'],
      ['kvtc 16× calibration=attention mix=0.9', 'kvtc 16× attention-sampled'],
      ['kvtc 16× pca=per-layer', 'kvtc 16× per-layer PCA'],
      ['kvtc 16× token-group=1', 'kvtc 16× per-token side info'],
      ['kvtc 16× sinks=0', 'kvtc 16× no sinks'],
      ['kvtc 16× window=4', 'kvtc 16× window 4'],
      ['kvtc 32× types=int1+int2+int3+int4+fp8', 'kvtc 32× int1–int4'],
      ['kvtc 32× key-share=0.7', 'kvtc 32× keys 70%'],
      ['kvtc 32× key-share=weighted', 'kvtc 32× K/V split by DP, unweighted'],
    ];
    const strip = ({
      method: _m,
      key: _k,
      levers: _l,
      fusedCalibrationTokens: _f,
      ...rest
    }: MethodRow & { key?: string; levers?: unknown; fusedCalibrationTokens?: number }) => rest;
    for (const [sweepName, evalName] of pairs) {
      const s = rows.find((r) => r.method === sweepName);
      const e = evalRows.find((r) => r.method === evalName);
      expect(s, sweepName).toBeDefined();
      expect(e, evalName).toBeDefined();
      // every field: accuracies, paired intervals, NLL, errors, byte ratios
      expect(strip(s!), `${sweepName} vs ${evalName}`).toStrictEqual(strip(e!));
    }
    // and the exact row (first of every sweep)
    expect(strip(rows[0]!)).toStrictEqual(strip(evalRows[0]!));
    // the attention-sampled and per-layer rows do differ from the plain one: the comparison can fail
    const plain = strip(rows.find((r) => r.method === 'kvtc 16×')!);
    expect(strip(rows.find((r) => r.method === 'kvtc 16× pca=per-layer')!)).not.toStrictEqual(plain);
  });

  it('each row counts the fused key–value tokens of its calibration draw, past the sinks', () => {
    // by hand: positions ≥ sinks whose id is a fused pair
    const docs = [
      [VOCAB.bos, FUSED_BASE + 3, 5, FUSED_BASE],
      [FUSED_BASE, 1],
    ];
    expect(fusedCalibrationTokens(docs, 1)).toBe(2);
    expect(fusedCalibrationTokens(docs, 0)).toBe(3);
    // a model with the fused vocabulary draws fused pairs into its calibration sequences
    manualSeed(3);
    const fusedModel = new nn.CausalLM({
      vocabSize: FUSED_VOCAB_SIZE,
      dModel: 16,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      dFF: 32,
    });
    const rows = runSweep(fusedModel, { ...base, grid: parseGrid(['ratio=16', 'cal-seed=5,6']) }).rows.slice(
      1,
    ) as SweepRow[];
    expect(rows).toHaveLength(2);
    const counts = rows.map((r) => {
      const { docs: d } = calibrationSet(fusedModel, { ...base, calibrationSeed: r.levers['cal-seed'] as number }, 4);
      expect(r.fusedCalibrationTokens, r.method).toBe(fusedCalibrationTokens(d, 4));
      return r.fusedCalibrationTokens!;
    });
    expect(Math.max(...counts)).toBeGreaterThan(0);
  });

  it('resumes: rows already in the output are kept, only new combinations run', () => {
    const saves: SweepResult[] = [];
    const lines: string[] = [];
    const first = runSweep(model, { ...base, grid: parseGrid(['ratio=16,32']), save: (r) => saves.push(r) });
    // saved after the exact row and after each new row
    expect(saves.map((s) => s.rows.length)).toEqual([1, 2, 3]);
    const grown = runSweep(model, {
      ...base,
      // a list of grids: their points joined
      grid: [parseGrid(['ratio=16,32']), parseGrid(['ratio=64'])],
      previous: JSON.parse(JSON.stringify(first)) as SweepResult,
      log: (l) => lines.push(l),
    });
    expect(lines[0]).toMatch(/3 combinations, 2 already in the output, 1 to run/);
    expect(grown.rows.map((r) => r.method)).toEqual(['exact', 'kvtc 16×', 'kvtc 32×', 'kvtc 64×']);
    // the kept rows are the stored ones, and the new row is what a fresh sweep computes
    expect(grown.rows.slice(0, 3)).toEqual(JSON.parse(JSON.stringify(first.rows)));
    const fresh = runSweep(model, { ...base, grid: parseGrid(['ratio=64']) });
    expect(grown.rows[3]).toStrictEqual(fresh.rows[1]);
    expect(grown.sweep.grids).toEqual([{ ratio: ['16', '32'] }, { ratio: ['16', '32'] }, { ratio: ['64'] }]);
    // nothing left to run: the model is not touched (a stand-in that cannot run proves it)
    const again = runSweep({} as nn.CausalLM, { ...base, grid: parseGrid(['ratio=16,64']), previous: grown });
    expect(again.rows.map((r) => r.method)).toEqual(['exact', 'kvtc 16×', 'kvtc 32×', 'kvtc 64×']);
    // other base settings than the file's: refused, not mixed in
    expect(() => runSweep(model, { ...base, seed: 7, grid: parseGrid(['ratio=16']), previous: grown })).toThrow(
      ValueError,
    );
    expect(() =>
      runSweep(model, { ...base, grid: parseGrid(['ratio=16']), previous: { rows: [] } as unknown as SweepResult }),
    ).toThrow(/not a sweep file/);
  });
});

describe('per-query hits and paired comparisons between rows', () => {
  it('each row stores its hits; a row against the exact cache compares as its own paired Δ does', () => {
    const r = runSuite(model, { ...base, ratios: [16], methods: /^kvtc 16×$|^pca truncation 16×$/ });
    for (const row of r.rows)
      for (const task of ['kv', 'passkey', 'vt'] as const) {
        const s = row.scores[task];
        expect(s.hits).toMatch(/^[01]+$/);
        expect(s.hits!.length).toBe(s.n);
        expect((100 * [...s.hits!].filter((c) => c === '1').length) / s.n).toBeCloseTo(s.acc, 12);
      }
    for (const name of ['kvtc 16×', 'pca truncation 16×']) {
      const row = r.rows.find((x) => x.method === name)!;
      for (const t of compareRows(r, 'exact', name)) {
        expect(t.diff).toBeCloseTo(row.scores[t.task].diff, 12);
        expect(t.lo).toBeCloseTo(row.scores[t.task].diffLo, 12);
        expect(t.accB).toBeCloseTo(row.scores[t.task].acc, 12);
      }
    }
    // a row against itself: no difference, no discordant query, p = 1
    for (const t of compareRows(r, 'kvtc 16×', 'kvtc 16×'))
      expect([t.diff, t.onlyA, t.onlyB, t.p]).toEqual([0, 0, 0, 1]);
  });
});
