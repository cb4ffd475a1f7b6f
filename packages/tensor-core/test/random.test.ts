import {
  bernoulli,
  getRngState,
  gumbel,
  manualSeed,
  multinomial,
  rand,
  randint,
  randn,
  setRngState,
  tensor,
} from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
const varOf = (a: ArrayLike<number>) => {
  const m = mean(a);
  return Array.from(a).reduce((s, v) => s + (v - m) ** 2, 0) / a.length;
};

describe('seeded random numbers', () => {
  test('manualSeed makes sequences reproducible; different seeds differ', () => {
    manualSeed(42);
    const a = Array.from(randn([64]).dataSync());
    manualSeed(42);
    const b = Array.from(randn([64]).dataSync());
    manualSeed(43);
    const c = Array.from(randn([64]).dataSync());
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  test('getRngState/setRngState resume a stream exactly', () => {
    manualSeed(1);
    rand([10]);
    const s = getRngState();
    const x = Array.from(rand([10]).dataSync());
    setRngState(s);
    expect(Array.from(rand([10]).dataSync())).toEqual(x);
    expect(() => setRngState([1, 2])).toThrow(/4 unsigned 32-bit integers/);
  });

  test('moments: rand U[0,1), randn N(0,1), gumbel (mean γ, var π²/6) within 5 standard errors', () => {
    manualSeed(7);
    const n = 200_000;
    const u = rand([n]).dataSync();
    expect(Array.from(u).every((v) => v >= 0 && v < 1)).toBe(true);
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    const z = randn([n]).dataSync();
    expect(Math.abs(mean(z))).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(varOf(z) - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    const g = gumbel([n]).dataSync();
    expect(Math.abs(mean(g) - 0.5772156649)).toBeLessThan(5 * Math.sqrt(Math.PI ** 2 / 6 / n));
    expect(Math.abs(varOf(g) - Math.PI ** 2 / 6)).toBeLessThan(0.05);
  });

  test('randint covers [low, high) uniformly (chi-square)', () => {
    manualSeed(3);
    const n = 60_000;
    const r = randint(-3, 3, [n]).dataSync();
    const counts = new Array(6).fill(0);
    for (const v of Array.from(r)) counts[v + 3]++;
    const chi2 = counts.reduce((s, c) => s + (c - n / 6) ** 2 / (n / 6), 0);
    expect(chi2).toBeLessThan(20.5); // p ≈ 0.001 for 5 degrees of freedom
  });

  test('bernoulli and multinomial follow their probabilities', () => {
    manualSeed(5);
    expect(Math.abs(mean(bernoulli(0.3, [50_000]).dataSync()) - 0.3)).toBeLessThan(0.01);
    const p = tensor([0.1, 0.0, 0.6, 0.3]);
    const s = multinomial(p, 20_000, { replacement: true }).dataSync();
    const freq = [0, 1, 2, 3].map((c) => Array.from(s).filter((v) => v === c).length / s.length);
    expect(freq[1]).toBe(0);
    expect(Math.abs(freq[2]! - 0.6)).toBeLessThan(0.015);
    const w = multinomial(tensor([[1, 1, 1, 1]]), 4).dataSync();
    expect([...Array.from(w)].sort()).toEqual([0, 1, 2, 3]);
    expect(() => multinomial(p, 5)).toThrow(/without replacement/);
    expect(() => bernoulli(tensor([0.5, 1.5]))).toThrow(/outside \[0, 1\]/);
  });
});
