import { cmndf, pyin, ValueError, yin } from '@tessera/audio';
import { describe, expect, test } from 'vitest';
import { golden } from './golden.js';
import { chirp, glottal, noise, sine } from './signals.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

/** F0 errors over frames whose analysis window lies inside [lo, hi] seconds and that the tracker calls voiced. */
function errors(
  track: { f0: Float32Array; voiced: Uint8Array; times: Float32Array },
  truth: (t: number) => number,
  lo: number,
  hi: number,
) {
  const rel: number[] = [];
  let frames = 0;
  for (let i = 0; i < track.f0.length; i++) {
    const t = track.times[i]!;
    if (t < lo || t > hi) continue;
    frames++;
    if (!track.voiced[i]) continue;
    rel.push(Math.abs(track.f0[i]! - truth(t)) / truth(t));
  }
  return {
    voicedRate: rel.length / frames,
    medianRel: median(rel),
    gross: rel.filter((r) => r > 0.2).length / Math.max(1, rel.length),
    rmsRel: Math.sqrt(rel.reduce((a, b) => a + b * b, 0) / rel.length),
  };
}

const FP = { sampleRate: 22050, frameLength: 1024, hopLength: 256 }; // FastPitch's settings

/**
 * As in librosa, frame t compares x[s + j] with x[s + j + tau] for j < winLength, s = t * hop - frameLength / 2:
 * the samples it sees are centred (frameLength - winLength - period) / 2 before the frame centre. The truth of
 * a moving F0 is taken there.
 */
const analysed =
  (f: (t: number) => number, sr: number, frameLength: number, winLength = frameLength / 2) =>
  (t: number) =>
    f(t - (frameLength - winLength - sr / f(t)) / 2 / sr);

describe('YIN', () => {
  for (const f of [80, 110, 220, 440, 1000]) {
    test(`sine at ${f} Hz (22.05 kHz, FastPitch framing)`, () => {
      const tr = yin(sine(f, 22050, 0.5), FP);
      const e = errors(tr, () => f, 0.05, 0.45);
      expect(e.voicedRate).toBe(1);
      expect(e.medianRel).toBeLessThan(0.002);
      expect(e.gross).toBe(0);
    });
  }

  test('a chirp 90 -> 260 Hz is tracked within 1% RMS', () => {
    const { x, freqAt } = chirp(90, 260, 16000, 2);
    const tr = yin(x, { sampleRate: 16000, frameLength: 1024, hopLength: 160 });
    const e = errors(tr, analysed(freqAt, 16000, 1024), 0.05, 1.95);
    expect(e.voicedRate).toBeGreaterThan(0.98);
    expect(e.rmsRel).toBeLessThan(0.01);
  });

  test('glottal pulse trains of 100 and 180 Hz, no octave errors', () => {
    for (const f of [100, 180]) {
      const tr = yin(
        glottal(() => f, 22050, 1),
        FP,
      );
      const e = errors(tr, () => f, 0.05, 0.95);
      expect(e.voicedRate).toBeGreaterThan(0.95);
      expect(e.medianRel).toBeLessThan(0.005);
      expect(e.gross).toBe(0);
    }
  });

  test('noise is not voiced; CMND is 1-normalised', () => {
    const tr = yin(noise(22050, 3, 0.3), FP);
    const rate = tr.voiced.reduce((a, b) => a + b, 0) / tr.voiced.length;
    expect(rate).toBeLessThan(0.05);
    const c = cmndf(noise(4096, 5), FP);
    let mean = 0;
    for (const v of c.data) mean += v / c.data.length;
    expect(mean).toBeGreaterThan(0.8);
    expect(mean).toBeLessThan(1.2);
  });

  test('arguments', () => {
    expect(() => yin(sine(100, 8000, 0.1), { sampleRate: 8000, fMax: 5000 })).toThrow(ValueError);
    expect(() => yin(sine(100, 8000, 0.1), { sampleRate: 8000, frameLength: 64, fMin: 50 })).toThrow(
      /fMin 50 Hz needs periods up to 160 samples, so frameLength >= winLength \+ 161/,
    );
  });
});

describe('pYIN', () => {
  for (const f of [80, 150, 440]) {
    test(`sine at ${f} Hz: within half a pitch bin (0.05 semitone)`, () => {
      const tr = pyin(sine(f, 22050, 0.6), FP);
      const e = errors(tr, () => f, 0.06, 0.54);
      expect(e.voicedRate).toBe(1);
      expect(e.medianRel).toBeLessThan(2 ** (0.05 / 12) - 1 + 1e-4);
    });
  }

  test('glottal pulses with vibrato (120 Hz +- 10 Hz at 5 Hz): voiced, within 1% RMS, no gross errors', () => {
    const f0 = (t: number) => 120 + 10 * Math.sin(2 * Math.PI * 5 * t);
    const tr = pyin(glottal(f0, 22050, 1.5), FP);
    const e = errors(tr, analysed(f0, 22050, 1024), 0.05, 1.45);
    expect(e.voicedRate).toBeGreaterThan(0.95);
    expect(e.rmsRel).toBeLessThan(0.01);
    expect(e.gross).toBe(0);
  });

  test('voicing: noise, then a pulse train, then silence', () => {
    const sr = 16000;
    const a = noise(sr / 2, 9, 0.05);
    const b = glottal(() => 200, sr, 1);
    const x = new Float32Array(sr * 2);
    x.set(a);
    x.set(b, sr / 2);
    const tr = pyin(x, { sampleRate: sr, frameLength: 1024, hopLength: 160 });
    let vIn = 0;
    let nIn = 0;
    let vOut = 0;
    let nOut = 0;
    tr.times.forEach((t, i) => {
      if (t > 0.56 && t < 1.44) {
        nIn++;
        vIn += tr.voiced[i]!;
        expect(Math.abs(tr.f0[i]! - 200)).toBeLessThan(2);
      } else if (t < 0.44 || t > 1.56) {
        nOut++;
        vOut += tr.voiced[i]!;
        expect(Number.isNaN(tr.f0[i]!)).toBe(true);
      }
    });
    expect(vIn / nIn).toBe(1);
    expect(vOut / nOut).toBe(0);
    expect(tr.voicedProb[Math.round(1 / 0.01)]!).toBeGreaterThan(0.5);
  });

  test('a fast glide 100 -> 400 Hz in 1 s is followed (transition limit 35.92 oct/s allows it)', () => {
    const { x, freqAt } = chirp(100, 400, 22050, 1);
    const tr = pyin(x, { ...FP, fillNa: 0 });
    const e = errors(tr, analysed(freqAt, 22050, 1024), 0.05, 0.95);
    expect(e.voicedRate).toBeGreaterThan(0.95);
    expect(e.rmsRel).toBeLessThan(0.01);
  });
});

describe('against librosa 0.10 (numpy re-implementation in test/fixtures/generate.py)', () => {
  const x = golden('x_pitch').data;
  test('yin: the same F0 on every frame', () => {
    const ref = golden('yin_f0').data;
    const tr = yin(x, FP);
    expect(tr.f0.length).toBe(ref.length);
    let same = 0;
    for (let i = 0; i < ref.length; i++) if (Math.abs(tr.f0[i]! - ref[i]!) / ref[i]! < 1e-4) same++;
    expect(same / ref.length).toBe(1);
  });

  test('pyin: the same voicing decisions, F0 and voicing probabilities', () => {
    const tr = pyin(x, { ...FP, fillNa: 0 });
    const f0 = golden('pyin_f0').data;
    const v = golden('pyin_voiced').data;
    const p = golden('pyin_prob').data;
    expect(tr.f0.length).toBe(f0.length);
    let agree = 0;
    let f0Same = 0;
    let both = 0;
    for (let i = 0; i < f0.length; i++) {
      if (tr.voiced[i] === v[i]) agree++;
      if (tr.voiced[i] && v[i]) {
        both++;
        if (Math.abs(tr.f0[i]! - f0[i]!) / f0[i]! < 1e-4) f0Same++;
      }
      expect(Math.abs(tr.voicedProb[i]! - p[i]!)).toBeLessThan(1e-5);
    }
    expect(agree / f0.length).toBe(1);
    expect(both).toBeGreaterThan(60);
    expect(f0Same / both).toBe(1);
  });
});

test('pyin refuses a Viterbi that would not fit, saying how long a chunk may be', () => {
  expect(() => pyin(sine(200, 22050, 2), { ...FP, maxViterbiCells: 100_000 })).toThrow(
    /pyin: 173 frames x 1202 states need 0.4 MB of back-pointers \(limit maxViterbiCells = 100000\); track in chunks of at most 83 frames \(1 s\)/,
  );
});
