import { FormatError, readWavInfo } from '@tessera/datasets';
import { describe, expect, test } from 'vitest';
import { createRng } from '../src/random.js';

/** A canonical 44-byte-header PCM WAV (or WAVE_FORMAT_EXTENSIBLE) with `frames` frames of zeros. */
function wav(
  opts: {
    rate?: number;
    channels?: number;
    bits?: number;
    frames?: number;
    extensible?: boolean;
    dataSize?: number;
  } = {},
): Uint8Array {
  const { rate = 16000, channels = 1, bits = 16, frames = 100, extensible = false } = opts;
  const block = channels * (bits / 8);
  const fmtSize = extensible ? 40 : 16;
  const data = frames * block;
  const b = new Uint8Array(12 + 8 + fmtSize + 8 + data);
  const dv = new DataView(b.buffer);
  const tag = (o: number, s: string) => {
    for (let i = 0; i < s.length; i++) b[o + i] = s.charCodeAt(i);
  };
  tag(0, 'RIFF');
  dv.setUint32(4, b.length - 8, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  dv.setUint32(16, fmtSize, true);
  dv.setUint16(20, extensible ? 0xfffe : 1, true);
  dv.setUint16(22, channels, true);
  dv.setUint32(24, rate, true);
  dv.setUint32(28, rate * block, true);
  dv.setUint16(32, block, true);
  dv.setUint16(34, bits, true);
  if (extensible) {
    dv.setUint16(36, 22, true);
    dv.setUint16(44, 3, true); // sub-format GUID starts with the format code: IEEE float
  }
  const d = 20 + fmtSize;
  tag(d, 'data');
  dv.setUint32(d + 4, opts.dataSize ?? data, true);
  return b;
}

describe('readWavInfo', () => {
  test('PCM and extensible headers', () => {
    expect(readWavInfo(wav({ frames: 16000 }))).toMatchObject({
      format: 1,
      channels: 1,
      sampleRate: 16000,
      bitsPerSample: 16,
      dataOffset: 44,
      frames: 16000,
      duration: 1,
    });
    expect(readWavInfo(wav({ extensible: true, bits: 32, channels: 2, rate: 22050, frames: 2205 }))).toMatchObject({
      format: 3,
      channels: 2,
      frames: 2205,
      duration: 0.1,
    });
  });

  test('lying and malformed headers are typed errors', () => {
    // data size larger than the file: frames counted from the bytes present
    expect(readWavInfo(wav({ frames: 10, dataSize: 0x7fffffff })).frames).toBe(10);
    const zeroCh = wav();
    new DataView(zeroCh.buffer).setUint16(22, 0, true);
    expect(() => readWavInfo(zeroCh, 'z.wav')).toThrow(/^z\.wav: fmt chunk says 0 channels/);
    const absurd = wav();
    new DataView(absurd.buffer).setUint32(24, 4e9, true);
    expect(() => readWavInfo(absurd)).toThrow(/absurd sample rate/);
    expect(() => readWavInfo(new Uint8Array(8))).toThrow(/not a RIFF/);
    expect(() => readWavInfo(wav().slice(0, 30))).toThrow(FormatError);
  });

  test('fuzz: random corruption never throws anything but FormatError', () => {
    const good = wav({ frames: 50 });
    const rng = createRng(11);
    for (let k = 0; k < 5000; k++) {
      const b = good.slice(0, 12 + Math.floor(rng() * (good.length - 12)));
      for (let e = 0; e < 3; e++) b[Math.floor(rng() * b.length)] = Math.floor(rng() * 256);
      try {
        const info = readWavInfo(b);
        expect(info.dataOffset + info.dataBytes).toBeLessThanOrEqual(b.length);
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
      }
    }
  });
});
