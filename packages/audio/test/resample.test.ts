import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeWav, designResampler, resample, ValueError } from '@tessera/audio';
import { describe, expect, test } from 'vitest';

const sine = (f: number, sr: number, n: number, a = 0.5) =>
  Float64Array.from({ length: n }, (_, i) => a * Math.sin((2 * Math.PI * f * i) / sr));

/** Error of y against the ideal sine at the new rate, in dB relative to the sine, away from the edges. */
function errorDb(y: Float32Array, f: number, sr: number, a: number, edge: number): number {
  let e = 0;
  let s = 0;
  for (let i = edge; i < y.length - edge; i++) {
    const ref = a * Math.sin((2 * Math.PI * f * i) / sr);
    e += (y[i]! - ref) ** 2;
    s += ref * ref;
  }
  return 10 * Math.log10(e / s);
}

function levelDb(y: Float32Array, a: number, edge: number): number {
  let s = 0;
  for (let i = edge; i < y.length - edge; i++) s += y[i]! ** 2;
  return 10 * Math.log10(s / (y.length - 2 * edge) / ((a * a) / 2));
}

describe('resample', () => {
  test('passband: sines up to 95% of the lower Nyquist come through with error below -100 dB', () => {
    for (const [from, to, f] of [
      [16000, 22050, 1000],
      [16000, 22050, 7500],
      [22050, 16000, 440],
      [22050, 16000, 7500],
      [48000, 16000, 3000],
      [8000, 16000, 3700],
      [44100, 48000, 20000],
    ] as const) {
      const x = sine(f, from, from / 2);
      const y = resample(x, from, to);
      expect(y.length).toBe(Math.ceil((x.length * to) / from));
      expect(errorDb(y, f, to, 0.5, Math.floor(to / 20)), `${from}->${to} @ ${f} Hz`).toBeLessThan(-100);
    }
  });

  test('stopband: tones above the new Nyquist are rejected by > 120 dB (default quality)', () => {
    for (const [from, to, f] of [
      [48000, 16000, 8200],
      [48000, 16000, 10000],
      [48000, 16000, 20000],
      [22050, 16000, 9000],
      [44100, 8000, 4500],
    ] as const) {
      const y = resample(sine(f, from, from / 2), from, to);
      expect(levelDb(y, 0.5, Math.floor(to / 20)), `${from}->${to} @ ${f} Hz`).toBeLessThan(-120);
    }
  });

  test('upsampling leaves no images: a 7 kHz tone at 16 -> 48 kHz has nothing above 8 kHz', () => {
    const y = resample(sine(7000, 16000, 8000), 16000, 48000);
    // remove the 7 kHz tone by least squares; what remains must be tiny
    let c = 0;
    let s = 0;
    let ss = 0;
    let cc = 0;
    let sc = 0;
    const edge = 2400;
    for (let i = edge; i < y.length - edge; i++) {
      const si = Math.sin((2 * Math.PI * 7000 * i) / 48000);
      const ci = Math.cos((2 * Math.PI * 7000 * i) / 48000);
      s += y[i]! * si;
      c += y[i]! * ci;
      ss += si * si;
      cc += ci * ci;
      sc += si * ci;
    }
    const det = ss * cc - sc * sc;
    const a = (s * cc - c * sc) / det;
    const b = (c * ss - s * sc) / det;
    let e = 0;
    for (let i = edge; i < y.length - edge; i++) {
      const r = y[i]! - a * Math.sin((2 * Math.PI * 7000 * i) / 48000) - b * Math.cos((2 * Math.PI * 7000 * i) / 48000);
      e += r * r;
    }
    expect(10 * Math.log10(e / (y.length - 2 * edge) / 0.125)).toBeLessThan(-100);
    expect(Math.hypot(a, b)).toBeCloseTo(0.5, 4);
  });

  test('lower presets are shorter filters with less rejection; a non-table ratio still works', () => {
    const hi = designResampler(48000, 16000);
    const lo = designResampler(48000, 16000, { quality: 'low' });
    expect(lo.halfWidth).toBeLessThan(hi.halfWidth);
    const y = resample(sine(10000, 48000, 24000), 48000, 16000, { quality: 'low' });
    expect(levelDb(y, 0.5, 800)).toBeLessThan(-70);
    // 44100 -> 44101 has 44101 phases: the interpolated-kernel path
    const z = resample(sine(1000, 44100, 4410), 44100, 44101);
    expect(errorDb(z, 1000, 44101, 0.5, 1000)).toBeLessThan(-80);
  });

  test('identity and arguments', () => {
    expect(Array.from(resample([1, 2, 3], 8000, 8000))).toEqual([1, 2, 3]);
    expect(resample([], 8000, 16000).length).toBe(0);
    expect(() => resample([1], 0, 8000)).toThrow(ValueError);
    expect(() => resample([1], 8000.5, 8000)).toThrow(/integers/);
    expect(() => resample([1], 8000, 16000, { bandwidth: 1.2 })).toThrow(/bandwidth/);
  });
});

describe('resample against sox (rate, default quality)', () => {
  const dir = join(import.meta.dirname, 'fixtures', 'resample');
  const load = (f: string) => decodeWav(new Uint8Array(readFileSync(join(dir, f))));
  for (const [name, edge] of [
    ['up', 300],
    ['down', 300],
  ] as const) {
    test(`${name}: our output and sox's differ by less than -120 dB away from the ends`, () => {
      const input = load(`${name}-in.wav`);
      const ref = load(`${name}-out.wav`);
      const y = resample(input.channelData[0]!, input.sampleRate, ref.sampleRate);
      const r = ref.channelData[0]!;
      expect(Math.abs(y.length - r.length)).toBeLessThanOrEqual(1);
      let e = 0;
      let s = 0;
      for (let i = edge; i < Math.min(y.length, r.length) - edge; i++) {
        e += (y[i]! - r[i]!) ** 2;
        s += r[i]! ** 2;
      }
      expect(10 * Math.log10(e / s)).toBeLessThan(-120);
    });
  }
});
