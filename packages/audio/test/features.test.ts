import {
  addDeltas,
  amplitudeToDb,
  applyMel,
  cmvn,
  deltas,
  type Frames,
  frameEnergy,
  frameNorm,
  hzToMel,
  logCompress,
  melFilterbank,
  melFilterbankDense,
  melSpectrogram,
  melToHz,
  mfcc,
  powerToDb,
  rms,
  spectrogram,
} from '@tessera/audio';
import { describe, expect, test } from 'vitest';
import { golden, maxAbsErr, maxRelErr } from './golden.js';

const x16 = golden('x16').data;
const x22 = golden('x22').data;
const asFrames = (name: string): Frames => {
  const g = golden(name);
  return { data: g.data, nFrames: g.shape[0]!, dim: g.shape[1]! };
};

describe('mel scales', () => {
  test('Slaney: linear below 1 kHz, 15 mel at 1 kHz; HTK: 1000 Hz ~ 1000 mel', () => {
    expect(hzToMel(200 / 3)).toBeCloseTo(1, 12);
    expect(hzToMel(1000)).toBeCloseTo(15, 12);
    expect(hzToMel(1000, true)).toBeCloseTo(999.99, 1);
    for (const f of [0, 50, 999, 1000, 4000, 11025])
      for (const htk of [false, true]) expect(melToHz(hzToMel(f, htk), htk)).toBeCloseTo(f, 8);
  });

  for (const name of ['fb_slaney', 'fb_htk']) {
    test(`${name} matches torchaudio.functional.melscale_fbanks`, () => {
      const g = golden(name);
      const m = g.meta as {
        nFft: number;
        sampleRate: number;
        nMels: number;
        fMin: number;
        fMax: number;
        htk: boolean;
        norm: 'slaney' | null;
      };
      const fb = melFilterbank(m);
      expect([fb.nMels, fb.nBins]).toEqual(g.shape);
      expect(maxRelErr(melFilterbankDense(fb), g.data, 1e-5, 1e-9)).toBeLessThan(1);
    });
  }
});

describe('mel spectrogram, log-mel, MFCC against torchaudio', () => {
  test('power mel, Slaney, zero padding', () => {
    const m = melSpectrogram(x16, { sampleRate: 16000, nFft: 512, winLength: 400, hopLength: 160, nMels: 40 });
    const g = golden('mel_slaney');
    expect([m.nFrames, m.dim]).toEqual(g.shape);
    expect(maxRelErr(m.data, g.data, 1e-4, 1e-7)).toBeLessThan(1);
    // the fused path equals spectrogram + applyMel
    const lin = spectrogram(x16, { nFft: 512, winLength: 400, hopLength: 160 });
    const fb = melFilterbank({ sampleRate: 16000, nFft: 512, nMels: 40 });
    expect(maxRelErr(applyMel(lin, fb).data, m.data, 1e-5, 1e-9)).toBeLessThan(1);
  });

  test("FastPitch's log-mel (22.05 kHz, 1024/256, 80 bands to 8 kHz, magnitude, reflect)", () => {
    const m = melSpectrogram(x22, {
      sampleRate: 22050,
      nFft: 1024,
      hopLength: 256,
      nMels: 80,
      fMax: 8000,
      power: 1,
      padMode: 'reflect',
    });
    const g = golden('logmel_fastpitch');
    expect([m.nFrames, m.dim]).toEqual(g.shape);
    expect(maxAbsErr(logCompress(m).data, g.data)).toBeLessThan(1e-4);
  });

  test('MFCC, torchaudio defaults (HTK mel, no norm, reflect)', () => {
    const c = mfcc(x16, {
      sampleRate: 16000,
      nMfcc: 13,
      nFft: 400,
      hopLength: 160,
      nMels: 40,
      htk: true,
      norm: null,
      padMode: 'reflect',
    });
    const g = golden('mfcc_torchaudio');
    expect([c.nFrames, c.dim]).toEqual(g.shape);
    expect(maxAbsErr(c.data, g.data)).toBeLessThan(2e-3); // values are O(100) dB-cepstra
  });

  test('MFCC, librosa definition', () => {
    const c = mfcc(x16, { sampleRate: 16000, nFft: 512, hopLength: 160, nMels: 40 });
    const g = golden('mfcc_librosa');
    expect([c.nFrames, c.dim]).toEqual(g.shape);
    expect(maxAbsErr(c.data, g.data)).toBeLessThan(2e-3);
  });

  test('power_to_db with ref=max and top_db=60', () => {
    const m = melSpectrogram(x16, { sampleRate: 16000, nFft: 512, winLength: 400, hopLength: 160, nMels: 40 });
    expect(maxAbsErr(powerToDb(m, { ref: 'max', topDb: 60 }).data, golden('db_refmax_top60').data)).toBeLessThan(1e-3);
    const a = amplitudeToDb({ data: Float32Array.of(10, 1, 0), nFrames: 1, dim: 3 }, { topDb: null });
    expect(Array.from(a.data).map((v) => Math.round(v))).toEqual([20, 0, -100]);
  });
});

describe('deltas and CMVN', () => {
  test('deltas match torchaudio.functional.compute_deltas (width 5 and 9)', () => {
    const c = asFrames('mfcc_torchaudio');
    expect(maxAbsErr(deltas(c).data, golden('deltas5').data)).toBeLessThan(1e-4);
    expect(maxAbsErr(deltas(c, 9).data, golden('deltas9').data)).toBeLessThan(1e-4);
  });

  test('deltas of a linear ramp are its slope away from the edges; addDeltas stacks', () => {
    const f: Frames = { data: Float32Array.from({ length: 20 }, (_, t) => 3 * t), nFrames: 20, dim: 1 };
    const d = deltas(f);
    for (let t = 2; t < 18; t++) expect(d.data[t]).toBeCloseTo(3, 5);
    const s = addDeltas(f, 2);
    expect(s.dim).toBe(3);
    expect(s.data[10 * 3]).toBe(30);
    expect(s.data[10 * 3 + 1]).toBeCloseTo(3, 5);
    expect(s.data[10 * 3 + 2]).toBeCloseTo(0, 5);
    expect(() => deltas(f, 4)).toThrow(/odd/);
  });

  test('CMVN gives zero mean and unit variance per dimension', () => {
    const c = asFrames('mfcc_torchaudio');
    const n = cmvn(c);
    for (let d = 0; d < c.dim; d++) {
      let s = 0;
      let s2 = 0;
      for (let t = 0; t < c.nFrames; t++) {
        s += n.data[t * c.dim + d]!;
        s2 += n.data[t * c.dim + d]! ** 2;
      }
      expect(s / c.nFrames).toBeCloseTo(0, 4);
      expect(s2 / c.nFrames).toBeCloseTo(1, 3);
    }
    const m = cmvn(c, { variance: false });
    expect(m.data[5]! - m.data[5 + c.dim]!).toBeCloseTo(c.data[5]! - c.data[5 + c.dim]!, 4);
  });

  test('sliding CMVN equals utterance CMVN on each window', () => {
    const c = asFrames('mfcc_torchaudio');
    const w = 7;
    const s = cmvn(c, { window: w, variance: false });
    const t = 12;
    for (let d = 0; d < c.dim; d++) {
      let mean = 0;
      for (let u = t - 3; u <= t + 3; u++) mean += c.data[u * c.dim + d]! / w;
      expect(s.data[t * c.dim + d]).toBeCloseTo(c.data[t * c.dim + d]! - mean, 3);
    }
  });
});

describe('energy', () => {
  test('rms matches librosa.feature.rms (numpy reference)', () => {
    expect(maxRelErr(rms(x16, { frameLength: 512, hopLength: 128 }), golden('rms512').data, 1e-5, 1e-8)).toBeLessThan(
      1,
    );
  });
  test('frame energy of a constant, its log, and frame norms', () => {
    const e = frameEnergy(new Float32Array(100).fill(0.5), { frameLength: 10, hopLength: 10, center: false });
    expect(e.length).toBe(10);
    expect(e[3]).toBeCloseTo(2.5, 6);
    const l = frameEnergy(new Float32Array(20), { frameLength: 10, hopLength: 10, center: false, log: true });
    expect(l[0]).toBeCloseTo(Math.log(1e-10), 4);
    expect(Array.from(frameNorm({ data: Float32Array.of(3, 4, 0, 0), nFrames: 2, dim: 2 }))).toEqual([5, 0]);
  });
});
