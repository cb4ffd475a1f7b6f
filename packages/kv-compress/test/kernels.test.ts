import { afterEach, describe, expect, it } from 'vitest';
import { codecGemm, setCodecKernels } from '../src/kernels.js';
import { gemm, Rng } from '../src/linalg.js';
import { relErr } from './helpers.js';

describe('codec GEMM on tensor-core kernels', () => {
  afterEach(() => setCodecKernels('tensor-core'));
  const rng = new Rng(4);
  const [m, k, n] = [96, 80, 48]; // 368 640 multiply-adds: above the host-loop threshold
  const a = new Float32Array(m * k).map(() => rng.normal());
  const b = new Float32Array(k * n).map(() => rng.normal());
  it('matches the host loop (both layouts) to float32 rounding', () => {
    expect(relErr(codecGemm(a, m, k, b, n), gemm(a, m, k, b, n))).toBeLessThan(1e-6);
    expect(relErr(codecGemm(a, m, k, b, n, true), gemm(a, m, k, b, n, true))).toBeLessThan(1e-6);
    // a float64 reference of one entry, hand-summed
    let s = 0;
    for (let q = 0; q < k; q++) s += a[5 * k + q]! * b[q * n + 7]!;
    expect(codecGemm(a, m, k, b, n)[5 * n + 7]).toBeCloseTo(s, 4);
  });
  it("'ts' is the host loop exactly; bad names are a typed error", () => {
    setCodecKernels('ts');
    expect(Array.from(codecGemm(a, m, k, b, n))).toEqual(Array.from(gemm(a, m, k, b, n)));
    expect(() => setCodecKernels('gpu' as 'ts')).toThrow(/tensor-core/);
  });
});
