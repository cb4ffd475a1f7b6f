import { manualSeed, randn, type Tensor, tensor, tidy, zeros } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { downsample, fixedBoundaries, numSegments, upsample } from '../src/index.js';

const bits = (s: string) =>
  tensor(
    Float32Array.from(s, (c) => Number(c)),
    { shape: [1, s.length] },
  );
const arr = (t: Tensor) => Array.from(t.dataSync());

describe('pooling and up-sampling (shortening.py conventions)', () => {
  it('reproduces the research note toy example: b = 0010100100, h_t = t', () => {
    tidy(() => {
      const b = bits('0010100100');
      const h = tensor(
        Float32Array.from({ length: 10 }, (_, t) => t),
        { shape: [1, 10, 1] },
      );
      const nul = tensor([-7]);
      const s = downsample(h, b, nul);
      expect(s.shape).toEqual([1, 4, 1]);
      const got = arr(s);
      expect(got[0]).toBe(-7);
      expect(got.slice(1)).toEqual([expect.closeTo(1, 6), expect.closeTo(3.5, 6), expect.closeTo(6, 6)]);
      const u = arr(upsample(s, b));
      const want = [-7, -7, 1, 1, 3.5, 3.5, 3.5, 6, 6, 6];
      u.forEach((v, i) => {
        expect(v).toBeCloseTo(want[i]!, 5);
      });
    });
  });

  it('keeps the partial trailing group of shorter rows and drops the fullest row’s trailing group', () => {
    tidy(() => {
      const b = tensor([1, 0, 1, 0, 0, 0, 0, 1, 0, 0], { shape: [2, 5] }); // row sums 2 and 1 → S = 2
      const h = tensor(
        Float32Array.from({ length: 10 }, (_, i) => i % 5),
        { shape: [2, 5, 1] },
      );
      const s = downsample(h, b, tensor([0]));
      expect(numSegments(b)).toBe(2);
      // row 0: groups {0}, {1, 2} (the trailing {3, 4} dropped); row 1: {0, 1, 2}, then partial {3, 4}
      expect(arr(s).map((v) => +v.toFixed(5))).toEqual([0, 0, 1.5, 0, 1, 3.5]);
    });
  });

  it('is causal: token t reads only groups closed at or before t', () => {
    tidy(() => {
      manualSeed(1);
      const T = 12;
      const b = bits('010011000101');
      const h = randn([1, T, 3]);
      const full = arr(upsample(downsample(h, b, zeros([3])), b));
      for (let t = 0; t < T; t++) {
        const hp = h.slice(1, 0, t + 1).contiguous();
        const bp = b.slice(1, 0, t + 1).contiguous();
        const part = arr(upsample(downsample(hp, bp, zeros([3])), bp));
        for (let c = 0; c < 3; c++) expect(part[t * 3 + c]).toBeCloseTo(full[t * 3 + c]!, 6);
      }
    });
  });

  it('carries the straight-through gradient to the boundaries through the cumsum (Bhati et al. weights)', () => {
    // d pooled_j / d b_i = Σ_{t ∈ group j, t > i} (h_t − pooled_j) / n_j: derived by hand from the weights
    // w_tj = 1 − (j − g_t), g_t = Σ_{i<t} b_i, normalised over t.
    const pattern = [0, 1, 0, 0, 1, 0, 1, 0];
    const hv = [0.3, -1.2, 2.0, 0.5, -0.7, 1.1, 0.4, 0.9];
    const r = [0.7, -0.4, 1.3]; // loss = Σ_j r_j pooled_j over the 3 groups
    tidy(() => {
      const b = tensor(pattern, { shape: [1, 8], requiresGrad: true });
      const h = tensor(hv, { shape: [1, 8, 1] });
      const s = downsample(h, b, zeros([1]));
      s.slice(1, 1).reshape([3]).mul(tensor(r)).sum().backward();
      const g = arr(b.grad!);
      const groups: number[][] = [[], [], []];
      let acc = 0;
      for (let t = 0; t < 8; t++) {
        if (acc < 3) groups[acc]!.push(t);
        acc += pattern[t]!;
      }
      const pooled = groups.map((ts) => ts.reduce((a, t) => a + hv[t]!, 0) / ts.length);
      for (let i = 0; i < 8; i++) {
        let want = 0;
        groups.forEach((ts, j) => {
          for (const t of ts) if (t > i) want += (r[j]! * (hv[t]! - pooled[j]!)) / ts.length;
        });
        expect(g[i]).toBeCloseTo(want, 4);
      }
    });
  });

  it('fixed boundaries close a group every k tokens; an all-zero row pools to the null group only', () => {
    expect(Array.from(fixedBoundaries(1, 9, 3))).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0]);
    expect(() => fixedBoundaries(1, 4, 0)).toThrow(/positive integer/);
    tidy(() => {
      const b = zeros([2, 4]);
      const s = downsample(randn([2, 4, 2]), b, tensor([5, 6]));
      expect(s.shape).toEqual([2, 1, 2]);
      expect(arr(upsample(s, b))).toEqual([5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5, 6]);
    });
  });
});
