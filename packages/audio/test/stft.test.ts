import {
  deEmphasis,
  FFT,
  frame,
  getWindow,
  istft,
  numFrames,
  pad,
  preEmphasis,
  spectrogram,
  stft,
  ValueError,
} from '@tessera/audio';
import { describe, expect, test } from 'vitest';
import { golden, maxAbsErr, maxRelErr } from './golden.js';

function naiveDft(re: Float64Array, im: Float64Array, inverse: boolean): [Float64Array, Float64Array] {
  const n = re.length;
  const or = new Float64Array(n);
  const oi = new Float64Array(n);
  const s = inverse ? 1 : -1;
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++) {
      const a = (s * 2 * Math.PI * ((k * j) % n)) / n;
      or[k] += re[j]! * Math.cos(a) - im[j]! * Math.sin(a);
      oi[k] += re[j]! * Math.sin(a) + im[j]! * Math.cos(a);
    }
  if (inverse)
    for (let k = 0; k < n; k++) {
      or[k] /= n;
      oi[k] /= n;
    }
  return [or, oi];
}

describe('FFT', () => {
  // powers of two (fft.js), smooth sizes (mixed radix, packed real), large primes (Bluestein)
  const sizes = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 16, 17, 30, 37, 45, 49, 60, 62, 64, 100, 127, 143, 400, 1000, 1024,
  ];
  for (const n of sizes) {
    test(`n = ${n}: complex, inverse, rfft and irfft match a float64 DFT`, () => {
      let seed = n;
      const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
      const re = Float64Array.from({ length: n }, r);
      const im = Float64Array.from({ length: n }, r);
      const inter = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) {
        inter[2 * i] = re[i]!;
        inter[2 * i + 1] = im[i]!;
      }
      const f = new FFT(n);
      for (const inverse of [false, true]) {
        const out = new Float64Array(2 * n);
        f.complex(out, inter, inverse);
        const [er, ei] = naiveDft(re, im, inverse);
        for (let k = 0; k < n; k++) {
          expect(Math.abs(out[2 * k]! - er[k]!)).toBeLessThan(1e-10 * n);
          expect(Math.abs(out[2 * k + 1]! - ei[k]!)).toBeLessThan(1e-10 * n);
        }
      }
      const spec = new Float64Array(2 * ((n >> 1) + 1));
      f.rfft(spec, re);
      const [er, ei] = naiveDft(re, new Float64Array(n), false);
      for (let k = 0; k <= n >> 1; k++) {
        expect(Math.abs(spec[2 * k]! - er[k]!)).toBeLessThan(1e-10 * n);
        expect(Math.abs(spec[2 * k + 1]! - ei[k]!)).toBeLessThan(1e-10 * n);
      }
      const back = new Float64Array(n);
      f.irfft(back, spec);
      expect(maxAbsErr(back, re)).toBeLessThan(1e-12 * n);
    });
  }
  test('rejects size 0', () => expect(() => new FFT(0)).toThrow(ValueError));
});

describe('windows and framing', () => {
  test('periodic Hann of length N is the symmetric one of N + 1 without its last sample', () => {
    const p = getWindow('hann', 8);
    const s = getWindow('hann', 9, { periodic: false });
    expect(maxAbsErr(p, s.subarray(0, 8))).toBeLessThan(1e-15);
    expect(s[4]).toBeCloseTo(1, 15);
    expect(getWindow('hamming', 5, { periodic: false })[0]).toBeCloseTo(0.08, 15);
    expect(getWindow('blackman', 5, { periodic: false })[2]).toBeCloseTo(1, 15);
    expect(() => getWindow('kaiser' as 'hann', 4)).toThrow(/unknown window/);
  });

  test('pad modes follow numpy', () => {
    const x = [1, 2, 3, 4];
    expect(Array.from(pad(x, 3, 3, 'reflect'))).toEqual([4, 3, 2, 1, 2, 3, 4, 3, 2, 1]);
    expect(Array.from(pad(x, 2, 1, 'edge'))).toEqual([1, 1, 1, 2, 3, 4, 4]);
    expect(Array.from(pad(x, 1, 2))).toEqual([0, 1, 2, 3, 4, 0, 0]);
    // long reflect pads keep reflecting (numpy does the same)
    expect(Array.from(pad([1, 2], 3, 0, 'reflect'))).toEqual([2, 1, 2, 1, 2]);
  });

  test('frame counts and contents', () => {
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const f = frame(x, 4, 3);
    expect(f.nFrames).toBe(3);
    expect(Array.from(f.data.subarray(8, 12))).toEqual([6, 7, 8, 9]);
    const c = frame(x, 4, 3, { center: true });
    expect(c.nFrames).toBe(numFrames(10, 4, 3, true));
    expect(Array.from(c.data.subarray(0, 4))).toEqual([0, 0, 0, 1]);
    expect(frame(x, 11, 1).nFrames).toBe(0);
  });

  test('pre-emphasis inverts', () => {
    const x = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    expect(maxAbsErr(deEmphasis(preEmphasis(x, 0.97), 0.97), x)).toBeLessThan(1e-6);
    expect(preEmphasis([1, 1], 0.5)[1]).toBe(0.5);
  });
});

describe('STFT against torch.stft', () => {
  const x = golden('x16').data;
  test('n_fft 400 (Bluestein), hop 160, reflect', () => {
    const s = stft(x, { nFft: 400, hopLength: 160, padMode: 'reflect' });
    const re = golden('stft400_re');
    expect([s.nFrames, s.nBins]).toEqual(re.shape);
    expect(maxRelErr(s.re, re.data, 1e-4, 2e-5)).toBeLessThan(1);
    expect(maxRelErr(s.im, golden('stft400_im').data, 1e-4, 2e-5)).toBeLessThan(1);
  });
  test('n_fft 512, win 400, hop 128, zero padding', () => {
    const s = stft(x, { nFft: 512, winLength: 400, hopLength: 128 });
    expect([s.nFrames, s.nBins]).toEqual(golden('stft512_re').shape);
    expect(maxRelErr(s.re, golden('stft512_re').data, 1e-4, 2e-5)).toBeLessThan(1);
    expect(maxRelErr(s.im, golden('stft512_im').data, 1e-4, 2e-5)).toBeLessThan(1);
  });
  test('istft of a non-STFT spectrogram matches torch.istft', () => {
    const re = golden('rand_re');
    const spec = { re: re.data, im: golden('rand_im').data, nFrames: re.shape[0]!, nBins: re.shape[1]! };
    const y = istft(spec, { nFft: 512, winLength: 400, hopLength: 128, length: 4000 });
    expect(maxAbsErr(y, golden('istft_rand').data)).toBeLessThan(2e-5);
  });
  test('power spectrogram is |stft|^2', () => {
    const s = stft(x, { nFft: 256, hopLength: 64 });
    const p = spectrogram(x, { nFft: 256, hopLength: 64 });
    const m = spectrogram(x, { nFft: 256, hopLength: 64, power: 1 });
    for (let i = 0; i < p.data.length; i += 37) {
      const e = s.re[i]! ** 2 + s.im[i]! ** 2;
      expect(p.data[i]).toBeCloseTo(e, 4);
      expect(m.data[i]).toBeCloseTo(Math.sqrt(e), 4);
    }
  });
});

describe('STFT -> iSTFT round trip', () => {
  const x = Float32Array.from({ length: 3001 }, (_, i) => Math.sin(i * 0.05) + 0.3 * Math.cos(i * 0.31));
  const configs = [
    { nFft: 512, hopLength: 128 },
    { nFft: 400, hopLength: 160 },
    { nFft: 512, winLength: 400, hopLength: 100, window: 'hamming' as const },
    { nFft: 256, hopLength: 64, center: false },
    { nFft: 1024, hopLength: 256, padMode: 'reflect' as const },
  ];
  for (const cfg of configs) {
    test(JSON.stringify(cfg), () => {
      const s = stft(x, cfg);
      const y = istft(s, { ...cfg, length: x.length });
      expect(y.length).toBe(x.length);
      const n = cfg.center === false ? s.nFrames * cfg.hopLength : x.length;
      const lo = cfg.center === false ? cfg.nFft : 0; // without centring the first samples lack overlap
      expect(maxAbsErr(y.subarray(lo, n - lo), x.subarray(lo, n - lo))).toBeLessThan(1e-5);
    });
  }
});

describe('STFT arguments', () => {
  test('typed errors', () => {
    expect(() => stft([1, 2, 3], { nFft: 8, winLength: 16 })).toThrow(/winLength must be <= nFft/);
    expect(() => stft([1, 2, 3], { nFft: 8, hopLength: 0 })).toThrow(ValueError);
    expect(() => stft([1, 2, 3], { nFft: 8, center: false })).toThrow(/shorter than nFft/);
    expect(() => stft([], { nFft: 8, padMode: 'reflect' })).toThrow(/empty signal/);
    expect(() => stft([1], { nFft: 8, window: [1, 2] })).toThrow(/window has 2 samples/);
    expect(stft([], { nFft: 8 }).nFrames).toBe(1);
  });
});

describe('STFT -> iSTFT round trip, random configurations', () => {
  test('40 seeded random sizes (powers of two, smooth, prime), windows, hops and pad modes', () => {
    let seed = 2024;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const windows = ['hann', 'hamming', 'blackman'] as const;
    const pads = ['constant', 'reflect', 'edge'] as const;
    for (let it = 0; it < 40; it++) {
      const nFft = 8 + Math.floor(rand() * 700);
      const winLength = Math.max(4, Math.floor(nFft * (0.5 + rand() * 0.5)));
      const hopLength = Math.max(1, Math.floor((winLength / 2) * (0.3 + rand() * 0.7)));
      const n = nFft + Math.floor(rand() * 3000);
      const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.013 * (1 + it)) + 0.2 * (rand() - 0.5));
      const cfg = { nFft, winLength, hopLength, window: windows[it % 3]!, padMode: pads[(it >> 1) % 3]! };
      const y = istft(stft(x, cfg), { ...cfg, length: n });
      expect(maxAbsErr(y, x), JSON.stringify(cfg)).toBeLessThan(1e-4);
    }
  });
});
