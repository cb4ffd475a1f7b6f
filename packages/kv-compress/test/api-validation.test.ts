// The KVTC library API on bad input: rows that do not hold what they say, options outside their domain, and the
// reverse DP's error cap when the calibration keeps fewer components than the rows have.
import { ShapeError } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { calibrate, fitPlan } from '../src/calibration.js';
import { concatRows } from '../src/collect.js';
import { CalibrationMismatchError, ValueError } from '../src/errors.js';
import { decodeCache, encodeCache } from '../src/format.js';
import { ChunkDecoder } from '../src/kvtc.js';
import { lowRankRows } from './helpers.js';

const dims = { layers: 2, heads: 2, headDim: 8 };
const rows = lowRankRows({ ...dims, n: 300, rank: 12, noise: 0.02 });

/** Relative error of the decoded rows against the rows, both centred on the rows' own mean per column. */
function centredRelErr(got: Float32Array, want: Float32Array, n: number): number {
  const P = want.length / n;
  let num = 0;
  let den = 0;
  for (let j = 0; j < P; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += want[i * P + j]!;
    mean /= n;
    for (let i = 0; i < n; i++) {
      num += (got[i * P + j]! - want[i * P + j]!) ** 2;
      den += (want[i * P + j]! - mean) ** 2;
    }
  }
  return Math.sqrt(num / den);
}

describe('KVTC API on bad input', () => {
  it('maxRelError bounds the reconstruction even when the calibration keeps fewer components than the rows have', () => {
    // Rank 10 of 12: the basis alone loses a few per cent, which the DP used to leave out of both its error and
    // its total, so the cap held only within the kept components.
    const cal = calibrate(rows, { rank: 10 });
    const cap = 0.1;
    const plan = fitPlan(cal, rows, { maxRelError: cap }, { maxRows: 300 });
    const back = decodeCache(encodeCache(rows, cal, plan, { sinks: 0, window: 0 }), cal);
    expect(centredRelErr(back.k, rows.k, rows.n)).toBeLessThanOrEqual(cap * 1.02);
    expect(centredRelErr(back.v, rows.v, rows.n)).toBeLessThanOrEqual(cap * 1.02);
    // a cap the basis itself cannot meet is an error that says so, not the largest plan
    expect(() => fitPlan(calibrate(rows, { rank: 3 }), rows, { maxRelError: 0.02 })).toThrow(
      /cannot be met.*the basis alone loses .*calibrate with a larger rank/,
    );
  });

  it('rows must hold what their header says, finite, and of the calibration shape', () => {
    const short = { ...rows, k: rows.k.subarray(0, rows.k.length - 1) };
    expect(() => calibrate(short)).toThrow(ShapeError);
    const nan = { ...rows, k: Float32Array.from(rows.k) };
    nan.k[5] = Number.NaN;
    expect(() => calibrate(nan)).toThrow(/keys hold NaN at 5; every value must be finite/);
    const cal = calibrate(rows);
    expect(() => fitPlan(cal, nan, { ratio: 4 })).toThrow(/must be finite/);
    const other = lowRankRows({ layers: 2, heads: 2, headDim: 4, n: 40, rank: 3 });
    expect(() => fitPlan(cal, other, { ratio: 4 })).toThrow(CalibrationMismatchError);
    const plan = fitPlan(cal, rows, { ratio: 4 });
    expect(() => encodeCache(other, cal, plan)).toThrow(CalibrationMismatchError);
    expect(() => new ChunkDecoder(cal, plan, new Uint8Array(0), 4, new Int32Array(3))).toThrow(
      /4 tokens need 4 positions/,
    );
    const negative = { ...rows, positions: Int32Array.from(rows.positions, (p) => p - 3) };
    expect(() => encodeCache(negative, cal, plan)).toThrow(/positions must lie in \[0, 2\^31\)/);
    expect(() => concatRows([])).toThrow(ValueError);
    expect(() => concatRows([rows, other])).toThrow(ShapeError);
  });

  it('options outside their domain are ValueErrors before any work', () => {
    const bad: [() => unknown, RegExp][] = [
      [() => calibrate(rows, { rank: 2.5 }), /rank must be an integer ≥ 1/],
      [() => calibrate(rows, { mode: 'bogus' as 'per-layer' }), /mode must be/],
      [() => calibrate(rows, { method: 'bogus' as 'exact' }), /method must be/],
      [() => calibrate(rows, { maxRows: 1 }), /maxRows must be an integer ≥ 2/],
      [() => calibrate(rows, { ropeBase: 0 }), /ropeBase must be a finite number > 0/],
    ];
    const cal = calibrate(rows);
    bad.push(
      [() => fitPlan(cal, rows, { maxRelError: 1 }), /maxRelError must be in \(0, 1\)/],
      [() => fitPlan(cal, rows, { maxRelError: Number.NaN }), /maxRelError must be/],
      [() => fitPlan(cal, rows, {} as { ratio: number }), /needs a ratio or a maxRelError/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { keyShare: 1.5 }), /keyShare must be in \[0, 1\] or 'weighted'/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { tokenGroup: 0 }), /tokenGroup must be an integer in \[1, 65535\]/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { tokenGroup: 2.5 }), /tokenGroup must be/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { sizes: [] }), /sizes must be a non-empty list/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { types: ['int7' as 'int4'] }), /types must be a non-empty list of/],
      [() => fitPlan(cal, rows, { ratio: 4 }, { maxRows: 0 }), /maxRows must be an integer ≥ 1/],
    );
    const plan = fitPlan(cal, rows, { ratio: 4 });
    bad.push(
      [() => encodeCache(rows, cal, plan, { sinks: -1 }), /sinks must be an integer ≥ 0/],
      [() => encodeCache(rows, cal, plan, { window: 2.5 }), /window must be/],
      [() => encodeCache(rows, cal, plan, { level: 10 }), /level must be an integer in \[0, 9\]/],
      [() => encodeCache(rows, cal, plan, { coder: 'zstd' as 'range' }), /coder must be one of/],
    );
    for (const [f, msg] of bad) expect(f, String(msg)).toThrow(msg);
  });
});
