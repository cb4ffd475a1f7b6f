// The README's example, on a WAV made here: it must keep working as written.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeWav, encodeWav, logCompress, melSpectrogram, pyin, resample, toMono } from '@tessera/audio';
import { expect, test } from 'vitest';
import { glottal } from './signals.js';

test('README example: WAV -> 22.05 kHz -> FastPitch log-mel and pYIN F0', () => {
  const left = glottal(() => 150, 16000, 1);
  const bytes = encodeWav([left, left], 16000, { encoding: 'pcm24' });

  const wav = decodeWav(bytes);
  const x = resample(toMono(wav.channelData), wav.sampleRate, 22050);
  const mel = logCompress(
    melSpectrogram(x, {
      sampleRate: 22050,
      nFft: 1024,
      hopLength: 256,
      nMels: 80,
      fMax: 8000,
      power: 1,
      padMode: 'reflect',
    }),
  );
  const { f0, voiced } = pyin(x, { sampleRate: 22050, frameLength: 1024, hopLength: 256 });

  expect(mel.dim).toBe(80);
  expect(mel.nFrames).toBe(f0.length);
  const mid = Math.floor(f0.length / 2);
  expect(voiced[mid]).toBe(1);
  expect(Math.abs(f0[mid]! - 150)).toBeLessThan(1.5);
});

test('README example, from a file as written (speech.wav under os.tmpdir())', () => {
  const path = join(tmpdir(), `audio-readme-${process.pid}-speech.wav`);
  // 0.5 s keeps pYIN quick; the README's file can be any length
  writeFileSync(path, encodeWav([glottal(() => 120, 16000, 0.5)], 16000));
  try {
    const wav = decodeWav(new Uint8Array(readFileSync(path))); // throws WavFormatError on a bad file
    const x = resample(toMono(wav.channelData), wav.sampleRate, 22050);
    const mel = logCompress(
      melSpectrogram(x, {
        sampleRate: 22050,
        nFft: 1024,
        hopLength: 256,
        nMels: 80,
        fMax: 8000,
        power: 1,
        padMode: 'reflect',
      }),
    );
    const { f0, voiced } = pyin(x, { sampleRate: 22050, frameLength: 1024, hopLength: 256 });
    console.log(mel.nFrames, mel.dim, f0.length); // [T x 80] time-major, T frames of F0
    expect(mel.data.length).toBe(mel.nFrames * 80);
    expect(f0.length).toBe(mel.nFrames);
    const mid = Math.floor(f0.length / 2);
    expect(voiced[mid]).toBe(1);
    expect(Math.abs(f0[mid]! - 120)).toBeLessThan(1.5);
  } finally {
    rmSync(path, { force: true });
  }
});

test("README: pYIN's default Viterbi limit (2^29 cells) is about 86 min at 22.05 kHz, hop 256", () => {
  // 2^29 / 1202 states = 446,648 frames = 86.4 min; checked on the error message at 1/4096 of the limit
  expect(Math.floor(2 ** 29 / 1202)).toBe(446648);
  expect((446648 * 256) / 22050 / 60).toBeCloseTo(86.4, 1);
  const opts = { sampleRate: 22050, frameLength: 1024, hopLength: 256, maxViterbiCells: 2 ** 29 / 4096 };
  const tone = (seconds: number) =>
    new Float32Array(Math.round(22050 * seconds)).map((_, i) => Math.sin((2 * Math.PI * 200 * i) / 22050));
  // floor(446,648 / 4096) = 109 frames may be tracked at once: 1 s (87 frames) fits, 2 s (173) does not
  expect(() => pyin(tone(1), opts)).not.toThrow();
  expect(() => pyin(tone(2), opts)).toThrow('track in chunks of at most 109 frames');
});
