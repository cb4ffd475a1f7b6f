import { describe, expect, test } from 'vitest';
import { addNoise, resample, wavBytes } from '../src/dsp.js';
import { psdurToEvents } from '../src/flite.js';
import { eventsToAlignment } from '../src/speech.js';

const sine = (f: number, rate: number, n: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * f * i) / rate));
const rms = (x: Float32Array, from = 0, to = x.length) => {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! ** 2;
  return Math.sqrt(s / (to - from));
};

describe('dsp', () => {
  test('resample 22.05 kHz → 16 kHz keeps an in-band tone and removes one above the new Nyquist', () => {
    const n = 22050;
    const y = resample(sine(1000, 22050, n), 22050, 16000);
    expect(y.length).toBe(16000);
    const ref = sine(1000, 16000, 16000);
    let err = 0;
    for (let i = 500; i < 15500; i++) err = Math.max(err, Math.abs(y[i]! - ref[i]!));
    expect(err).toBeLessThan(2e-3);
    const alias = resample(sine(9500, 22050, n), 22050, 16000);
    expect(20 * Math.log10(rms(alias, 500, 15500) / Math.SQRT1_2)).toBeLessThan(-60);
  });

  test('noise at the asked SNR', () => {
    const x = sine(300, 16000, 32000);
    const y = addNoise(x, 15, 1);
    const noise = y.map((v, i) => v - x[i]!);
    expect(20 * Math.log10(rms(x) / rms(noise))).toBeCloseTo(15, 0);
  });

  test('16-bit WAV bytes', () => {
    const b = wavBytes(Float32Array.from([0, 0.5, -1, 2]), 8000);
    const dv = new DataView(b.buffer);
    expect(b.length).toBe(52);
    expect(dv.getUint32(24, true)).toBe(8000);
    expect([0, 1, 2, 3].map((i) => dv.getInt16(44 + 2 * i, true))).toEqual([0, 16384, -32767, 32767]);
  });
});

describe('espeak events → alignment', () => {
  test('events of "Hello, world." as espeak-ng 1.51 reports them', () => {
    const ev = (type: string, ms: number, tp: number, id: string | number = '', wl = 0) => ({
      type,
      audio_position: ms,
      text_position: tp,
      word_length: wl,
      id,
    });
    const events = [
      ev('sentence', 0, 1, 1),
      ev('word', 0, 1, 1, 5),
      ev('phoneme', 11, 1, 'h'),
      ev('phoneme', 62, 1, 'ə'),
      ev('phoneme', 115, 1, 'l'),
      ev('phoneme', 216, 1, 'ˈoʊ'),
      ev('phoneme', 418, 7),
      ev('phoneme', 568, 7),
      ev('end', 568, 7),
      ev('word', 568, 8, 2, 5),
      ev('phoneme', 568, 8, 'w'),
      ev('phoneme', 693, 8, 'ˈɜː'),
      ev('phoneme', 919, 8, 'l'),
      ev('phoneme', 943, 8, 'd'),
      ev('phoneme', 983, 14),
    ];
    const { phones, words } = eventsToAlignment(events, 'Hello, world.', 1.1);
    expect(phones.map((p) => [p.label, p.start, p.end])).toEqual([
      ['sil', 0, 0.011],
      ['h', 0.011, 0.062],
      ['ə', 0.062, 0.115],
      ['l', 0.115, 0.216],
      ['oʊ', 0.216, 0.418],
      ['sil', 0.418, 0.568],
      ['w', 0.568, 693 / 1000],
      ['ɜː', 693 / 1000, 0.919],
      ['l', 0.919, 0.943],
      ['d', 0.943, 0.983],
      ['sil', 0.983, 1.1],
    ]);
    expect(words).toEqual([
      { start: 0.011, end: 0.418, label: 'Hello' },
      { start: 0.568, end: 0.983, label: 'world' },
    ]);
  });
});

describe('flite segments → alignment', () => {
  test('-psdur end times become intervals', () => {
    const ev = psdurToEvents('pau:0.164 hh:0.255 ax:0.304 l:0.547 ow:0.661 pau:0.891 \n');
    const { phones, words } = eventsToAlignment(ev, 'Hello', 0.9);
    expect(phones.map((p) => [p.label, +p.start.toFixed(6), +p.end.toFixed(6)])).toEqual([
      ['sil', 0, 0.164],
      ['hh', 0.164, 0.255],
      ['ax', 0.255, 0.304],
      ['l', 0.304, 0.547],
      ['ow', 0.547, 0.661],
      ['sil', 0.661, 0.9],
    ]);
    expect(words).toEqual([]);
  });
});
