import {
  addNoise,
  biquad,
  biquadResponseDb,
  designBiquad,
  equalize,
  gain,
  normalizePeak,
  pitchShift,
  speedPerturb,
  timeStretch,
  ValueError,
  yin,
} from '@tessera/audio';
import { describe, expect, test } from 'vitest';
import { glottal, noise, sine } from './signals.js';

const sr = 16000;
const power = (x: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! ** 2;
  return s / x.length;
};
const snrOf = (clean: ArrayLike<number>, noisy: ArrayLike<number>) => {
  const d = Float64Array.from(noisy, (v, i) => v - clean[i]!);
  return 10 * Math.log10(power(clean) / power(d));
};
/** Median YIN F0 of the voiced frames of x. */
const medianF0 = (x: Float32Array) => {
  const t = yin(x, { sampleRate: sr, frameLength: 1024, hopLength: 160 });
  const v = Array.from(t.f0)
    .filter((_, i) => t.voiced[i])
    .sort((a, b) => a - b);
  return v[v.length >> 1]!;
};

describe('noise and gain', () => {
  const speech = glottal(() => 150, sr, 1);
  for (const snr of [-5, 0, 10, 20, 40]) {
    test(`white noise at ${snr} dB SNR measures ${snr} dB`, () => {
      const y = addNoise(speech, snr, { seed: snr + 100 });
      expect(snrOf(speech, y)).toBeCloseTo(snr, 2);
    });
  }

  test('given noise, shorter than the signal, is looped; longer is cut at a seeded offset', () => {
    const n = noise(3000, 4);
    const y = addNoise(speech, 15, { noise: n });
    expect(snrOf(speech, y)).toBeCloseTo(15, 2);
    const long = noise(40000, 5);
    const a = addNoise(speech, 10, { noise: long, seed: 1 });
    const b = addNoise(speech, 10, { noise: long, seed: 2 });
    expect(snrOf(speech, a)).toBeCloseTo(10, 2);
    expect(a[100]).not.toBe(b[100]);
  });

  test('silence stays silent; bad arguments', () => {
    expect(Array.from(addNoise(new Float32Array(10), 10))).toEqual(new Array(10).fill(0));
    expect(() => addNoise(speech, Number.NaN)).toThrow(ValueError);
    expect(() => addNoise(speech, 10, { noise: [] })).toThrow(/empty/);
  });

  test('gain and peak normalisation', () => {
    const x = sine(100, sr, 0.1, 0.25);
    expect(10 * Math.log10(power(gain(x, 6)) / power(x))).toBeCloseTo(6, 4);
    const p = normalizePeak(x, -3);
    expect(Math.max(...Array.from(p, Math.abs))).toBeCloseTo(10 ** (-3 / 20), 4);
  });
});

describe('speed and pitch', () => {
  const x = glottal(() => 200, sr, 1);

  test('speed 1.1: length / 1.1, F0 x 1.1; speed 0.9: length / 0.9, F0 x 0.9', () => {
    for (const f of [1.1, 0.9]) {
      const y = speedPerturb(x, f, sr);
      expect(Math.abs(y.length - x.length / f)).toBeLessThanOrEqual(1);
      expect(medianF0(y) / (200 * f)).toBeCloseTo(1, 2);
    }
  });

  test('time stretch keeps pitch and scales length, slower and faster', () => {
    for (const rate of [0.8, 1.25]) {
      const y = timeStretch(x, rate);
      expect(y.length).toBe(Math.round(x.length / rate));
      expect(medianF0(y) / 200).toBeCloseTo(1, 2);
    }
  });

  test('pitch shift +3 and -2 semitones keeps length and moves F0', () => {
    for (const s of [3, -2]) {
      const y = pitchShift(x, s, sr);
      expect(y.length).toBe(x.length);
      expect(medianF0(y) / (200 * 2 ** (s / 12))).toBeCloseTo(1, 2);
      expect(power(y) / power(x)).toBeGreaterThan(0.5);
    }
  });
});

describe('EQ', () => {
  const measure = (c: ReturnType<typeof designBiquad>, f: number) => {
    const x = sine(f, sr, 0.5);
    const y = biquad(x, c);
    return 10 * Math.log10(power(y.subarray(4000)) / power(x.subarray(4000)));
  };

  test('peaking +6 dB at 1 kHz: +6 dB there, ~0 dB far away, measured on sines', () => {
    const c = designBiquad({ type: 'peaking', frequency: 1000, q: 2, gainDb: 6 }, sr);
    expect(measure(c, 1000)).toBeCloseTo(6, 1);
    expect(Math.abs(measure(c, 100))).toBeLessThan(0.1);
    expect(Math.abs(measure(c, 6000))).toBeLessThan(0.2);
    expect(biquadResponseDb(c, 1000, sr)).toBeCloseTo(6, 6);
  });

  test('Butterworth low/high-pass are -3 dB at the corner; shelves reach their gain', () => {
    const lp = designBiquad({ type: 'lowpass', frequency: 2000 }, sr);
    expect(biquadResponseDb(lp, 2000, sr)).toBeCloseTo(-3.01, 2);
    expect(measure(lp, 2000)).toBeCloseTo(-3.01, 1);
    expect(measure(lp, 7000)).toBeLessThan(-20);
    const hp = designBiquad({ type: 'highpass', frequency: 300 }, sr);
    expect(biquadResponseDb(hp, 300, sr)).toBeCloseTo(-3.01, 2);
    expect(measure(hp, 50)).toBeLessThan(-25);
    const ls = designBiquad({ type: 'lowshelf', frequency: 300, gainDb: -9 }, sr);
    expect(biquadResponseDb(ls, 20, sr)).toBeCloseTo(-9, 1);
    expect(biquadResponseDb(ls, 6000, sr)).toBeCloseTo(0, 1);
    const hs = designBiquad({ type: 'highshelf', frequency: 3000, gainDb: 4 }, sr);
    expect(biquadResponseDb(hs, 7900, sr)).toBeCloseTo(4, 1);
    expect(biquadResponseDb(hs, 50, sr)).toBeCloseTo(0, 1);
    const notch = designBiquad({ type: 'notch', frequency: 1000, q: 5 }, sr);
    expect(measure(notch, 1000)).toBeLessThan(-30);
  });

  test('equalize chains sections', () => {
    const x = sine(1000, sr, 0.5);
    const y = equalize(x, sr, [
      { type: 'peaking', frequency: 1000, q: 1, gainDb: 3 },
      { type: 'peaking', frequency: 1000, q: 1, gainDb: 3 },
    ]);
    expect(10 * Math.log10(power(y.subarray(4000)) / power(x.subarray(4000)))).toBeCloseTo(6, 1);
    expect(() => equalize(x, sr, [{ type: 'peaking', frequency: 9000 }])).toThrow(/frequency must be in/);
    expect(() => designBiquad({ type: 'comb' as 'notch', frequency: 100 }, sr)).toThrow(/unknown type/);
  });
});
