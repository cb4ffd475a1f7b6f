import { manualSeed, nn, optim, randn, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import {
  BoundaryPredictor,
  binomialPriorLoss,
  entropySpikes,
  gumbelSigmoid,
  predictiveEntropy,
  whitespaceBoundaries,
} from '../src/index.js';

// float64 references: Lanczos lgamma (g = 7, n = 9) and digamma by recurrence + asymptotic series.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
function lgamma64(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma64(1 - x);
  x -= 1;
  let a = LANCZOS[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
function digamma64(x: number): number {
  let r = 0;
  while (x < 8) r -= 1 / x++;
  const f = 1 / (x * x);
  return r + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f / 240)));
}

describe('boundary sources', () => {
  it('whitespace: the space closes its group', () => {
    const ids = tensor([[5, 0, 6, 6, 0, 0, 7]], { dtype: 'int32' });
    expect(Array.from(whitespaceBoundaries(ids, [0]).dataSync())).toEqual([0, 1, 0, 0, 1, 1, 0]);
  });

  it('entropy spikes: H_t above the k previous entropies, position 0 always', () => {
    const H = [0.5, 0.9, 0.7, 1.2, 1.1, 1.3, 0.2, 0.4];
    expect(Array.from(entropySpikes(H, 1, 8, 2))).toEqual([1, 1, 0, 1, 0, 1, 0, 0]);
    expect(Array.from(entropySpikes(H, 1, 8, 1))).toEqual([1, 1, 0, 1, 0, 1, 0, 1]);
    expect(Array.from(entropySpikes([1, 1, 1], 1, 3, 2))).toEqual([1, 0, 0]); // ties are not spikes
  });

  it('predictive entropy matches the hand value (uniform over V is log V)', () => {
    const l = tensor([
      [
        [0, 0, 0, 0],
        [100, 0, 0, 0],
      ],
    ]);
    const H = Array.from(predictiveEntropy(l).dataSync());
    expect(H[0]).toBeCloseTo(Math.log(4), 5);
    expect(H[1]).toBeCloseTo(0, 5);
  });

  it('Binomial prior: value and gradient against float64 lgamma/digamma', () => {
    const T = 40;
    const alpha = 0.2;
    const rows = [3, 8, 17];
    const b = tensor(
      rows.flatMap((k) => Array.from({ length: T }, (_, t) => (t < k ? 1 : 0))),
      { shape: [3, T], requiresGrad: true },
    );
    const loss = binomialPriorLoss(b, alpha);
    const want =
      rows
        .map(
          (k) =>
            -(
              lgamma64(T + 1) -
              lgamma64(k + 1) -
              lgamma64(T - k + 1) +
              k * Math.log(alpha) +
              (T - k) * Math.log(1 - alpha)
            ) / T,
        )
        .reduce((a, v) => a + v) / 3;
    expect(loss.itemSync()).toBeCloseTo(want, 4);
    loss.backward();
    const g = b.grad!.dataSync();
    rows.forEach((k, r) => {
      const dk = (digamma64(k + 1) - digamma64(T - k + 1) - Math.log(alpha / (1 - alpha))) / T / 3;
      for (let t = 0; t < T; t++) expect(g[r * T + t]).toBeCloseTo(dk, 5);
    });
    // the prior pulls k towards αT = 8: the gradient is negative below, positive above
    expect(g[0]).toBeLessThan(0);
    expect(g[2 * T]).toBeGreaterThan(0);
    expect(() => binomialPriorLoss(b, 1)).toThrow(/alpha/);
  });

  it('Gumbel-sigmoid: hard 0/1 values, soft straight-through gradient, no noise in eval', () => {
    manualSeed(0);
    const z = tensor([[-3, -0.2, 0.1, 4]], { requiresGrad: true });
    const hard = gumbelSigmoid(z, { noise: false });
    expect(Array.from(hard.dataSync())).toEqual([0, 0, 1, 1]);
    hard.sum().backward();
    const g = Array.from(z.grad!.dataSync());
    // d/dz σ(z/τ) = σ(1−σ)/τ with τ = 0.5
    g.forEach((v, i) => {
      const s = 1 / (1 + Math.exp(-[-3, -0.2, 0.1, 4][i]! / 0.5));
      expect(v).toBeCloseTo((s * (1 - s)) / 0.5, 5);
    });
    // with noise, the rate of ones follows σ(z): z = 0 gives about one half
    const noisy = gumbelSigmoid(tensor(new Float32Array(4000), { shape: [1, 4000] }));
    const rate = noisy.sum().itemSync() / 4000;
    expect(rate).toBeGreaterThan(0.45);
    expect(rate).toBeLessThan(0.55);
  });

  it('the prior alone drives a boundary predictor to the rate α (SF ≈ 1/α)', () => {
    manualSeed(1);
    const bp = new BoundaryPredictor(8, 16);
    const opt = new optim.Adam(bp.parameters(), { lr: 3e-2 });
    const h = randn([4, 50, 8]);
    let rate = 0;
    for (let s = 0; s < 120; s++)
      tidy(() => {
        const b = gumbelSigmoid(bp.forward(h));
        rate = b.sum().itemSync() / 200;
        binomialPriorLoss(b, 0.25).backward();
        opt.step();
        opt.zeroGrad();
      });
    expect(rate).toBeGreaterThan(0.15);
    expect(rate).toBeLessThan(0.35);
    expect(bp).toBeInstanceOf(nn.Module);
  });
});
