// The README's example, on a WAV made here: it must keep working as written.
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
