import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeWav, encodeWav, toMono, ValueError, type WavEncoding, WavFormatError } from '@tessera/audio';
import { describe, expect, test } from 'vitest';

const dir = join(import.meta.dirname, 'fixtures', 'wav');
const expected: Record<string, { channels: number; sampleRate: number; interleaved: number[] }> = JSON.parse(
  readFileSync(join(dir, 'expected.json'), 'utf8'),
);

describe('decodeWav against sox', () => {
  for (const [file, ref] of Object.entries(expected)) {
    test(file, () => {
      const wav = decodeWav(new Uint8Array(readFileSync(join(dir, file))), { dtype: 'float64' });
      expect(wav.sampleRate).toBe(ref.sampleRate);
      expect(wav.channelData.length).toBe(ref.channels);
      const frames = ref.interleaved.length / ref.channels;
      expect(wav.channelData[0]!.length).toBe(frames);
      let maxErr = 0;
      for (let i = 0; i < frames; i++)
        for (let c = 0; c < ref.channels; c++)
          maxErr = Math.max(maxErr, Math.abs(wav.channelData[c]![i]! - ref.interleaved[i * ref.channels + c]!));
      expect(maxErr).toBeLessThan(1e-12);
      expect(file.startsWith(wav.encoding)).toBe(true);
    });
  }

  test('re-encoding a sox PCM file at its depth gives back its sample bytes', () => {
    for (const [file, enc] of [
      ['pcm16-mono.wav', 'pcm16'],
      ['pcm8-mono.wav', 'pcm8'],
      ['pcm24-stereo.wav', 'pcm24'],
      ['pcm32-mono.wav', 'pcm32'],
      ['float64-stereo.wav', 'float64'],
    ] as const) {
      const bytes = new Uint8Array(readFileSync(join(dir, file)));
      const wav = decodeWav(bytes, { dtype: 'float64' });
      const again = encodeWav(wav.channelData, wav.sampleRate, { encoding: enc });
      const n = wav.channelData[0]!.length * wav.channelData.length * (Number(enc.replace(/\D/g, '')) / 8);
      const tail = (b: Uint8Array) => b.subarray(b.length - n - (n & 1), b.length - (n & 1));
      expect(Buffer.from(tail(again)).equals(Buffer.from(tail(bytes)))).toBe(true);
    }
  });
});

describe('encodeWav', () => {
  const encodings: WavEncoding[] = ['pcm8', 'pcm16', 'pcm24', 'pcm32', 'float32', 'float64'];
  const x = Float64Array.from({ length: 101 }, (_, i) => 0.9 * Math.sin(i * 0.37));
  const y = Float64Array.from({ length: 101 }, (_, i) => 0.5 * Math.cos(i * 0.11));
  for (const enc of encodings) {
    for (const extensible of [false, true]) {
      test(`${enc} round trip, extensible=${extensible}`, () => {
        const bytes = encodeWav([x, y], 22050, { encoding: enc, extensible });
        const wav = decodeWav(bytes, { dtype: 'float64' });
        expect(wav.encoding).toBe(enc);
        expect(wav.sampleRate).toBe(22050);
        const bits = Number(enc.replace(/\D/g, ''));
        const tol = enc === 'float64' ? 0 : enc === 'float32' ? 1e-7 : 2 ** -(bits - 1);
        for (let i = 0; i < x.length; i++) {
          expect(Math.abs(wav.channelData[0]![i]! - x[i]!)).toBeLessThanOrEqual(tol);
          expect(Math.abs(wav.channelData[1]![i]! - y[i]!)).toBeLessThanOrEqual(tol);
        }
      });
    }
  }

  test('clips out-of-range PCM and writes NaN as 0', () => {
    const wav = decodeWav(encodeWav([[2, -2, Number.NaN]], 8000));
    expect(Array.from(wav.channelData[0]!)).toEqual([32767 / 32768, -1, 0]);
  });

  test('multi-channel files are WAVE_FORMAT_EXTENSIBLE with a channel mask', () => {
    const bytes = encodeWav([x, y, x, y, x, y], 48000);
    expect(new DataView(bytes.buffer).getUint16(20, true)).toBe(0xfffe);
    const wav = decodeWav(bytes);
    expect(wav.channelData.length).toBe(6);
    expect(wav.channelMask).toBe(0x3f);
  });

  test('odd-sized data chunk is padded', () => {
    const bytes = encodeWav([[0.1, 0.2, 0.3]], 8000, { encoding: 'pcm8' });
    expect(bytes.length % 2).toBe(0);
    expect(decodeWav(bytes).channelData[0]!.length).toBe(3);
  });

  test('bad arguments are ValueErrors', () => {
    expect(() => encodeWav([], 8000)).toThrow(ValueError);
    expect(() => encodeWav([[0]], 0)).toThrow(ValueError);
    expect(() => encodeWav([[0], [0, 1]], 8000)).toThrow(/differ in length/);
    expect(() => encodeWav([[0]], 8000, { encoding: 'mp3' as WavEncoding })).toThrow(ValueError);
  });

  test('toMono averages channels', () => {
    expect(
      Array.from(
        toMono([
          [1, 0],
          [0, 0.5],
        ]),
      ),
    ).toEqual([0.5, 0.25]);
  });
});

describe('malformed WAV', () => {
  const good = encodeWav([Float32Array.from({ length: 64 }, (_, i) => Math.sin(i))], 16000);
  const patch = (f: (dv: DataView, b: Uint8Array) => void) => {
    const b = good.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /too short/],
    ['not RIFF', patch((_, b) => b.set([0x4f, 0x67, 0x67, 0x53], 0)), /expected 'RIFF'/],
    ['RIFX', patch((_, b) => b.set([0x52, 0x49, 0x46, 0x58], 0)), /RIFX/],
    ['not WAVE', patch((_, b) => b.set([0x41, 0x56, 0x49, 0x20], 8)), /'WAVE'/],
    ['truncated in the header', good.slice(0, 30), /'fmt ' chunk claims 16 bytes but 10 remain/],
    ['truncated data', good.slice(0, 60), /'data' chunk claims 128 bytes but 16 remain/],
    ['lying data size', patch((dv) => dv.setUint32(40, 0xffffffff, true)), /'data' chunk claims 4294967295/],
    ['0 channels', patch((dv) => dv.setUint16(22, 0, true)), /channel count must be in 1..1024; got 0/],
    ['absurd sample rate', patch((dv) => dv.setUint32(24, 4e9, true)), /sample rate must be in 1..3072000 Hz/],
    ['0 Hz', patch((dv) => dv.setUint32(24, 0, true)), /sample rate/],
    ['mu-law', patch((dv) => dv.setUint16(20, 7, true)), /unsupported format tag 0x0007 \(mu-law\)/],
    ['unknown tag', patch((dv) => dv.setUint16(20, 0x1234, true)), /unsupported format tag 0x1234/],
    ['12-bit PCM', patch((dv) => dv.setUint16(34, 12, true)), /must be 8, 16, 24 or 32; got 12/],
    ['bad block align', patch((dv) => dv.setUint16(32, 3, true)), /block align must be .* = 2; got 3/],
    ['no data chunk', good.slice(0, 36), /no 'data' chunk/],
    ['fmt chunk too small', patch((dv) => dv.setUint32(16, 8, true)), /at least 16 bytes; got 8/],
    ['data before fmt', patch((_, b) => b.set([0x64, 0x61, 0x74, 0x61], 12)), /'data' chunk before/],
  ];
  for (const [name, bytes, msg] of cases) {
    test(name, () => {
      let err: unknown;
      try {
        decodeWav(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WavFormatError);
      expect((err as Error).message).toMatch(msg);
    });
  }

  test('lenient mode keeps the bytes present of a truncated data chunk', () => {
    const wav = decodeWav(good.slice(0, 61), { lenient: true });
    expect(wav.truncated).toBe(true);
    expect(wav.channelData[0]!.length).toBe(8);
  });

  test('lenient mode reads a data chunk of size 0 (streamed) to the end; ArrayBuffer input', () => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(40, 0, true);
    expect(decodeWav(b).channelData[0]!.length).toBe(0);
    const wav = decodeWav(b.buffer, { lenient: true });
    expect(wav.truncated).toBe(true);
    expect(wav.channelData[0]!.length).toBe(64);
  });

  test('maxFrames bounds the output', () => {
    expect(() => decodeWav(good, { maxFrames: 10 })).toThrow(/64 sample frames exceed maxFrames = 10/);
  });

  test('unknown chunks are skipped, odd sizes padded', () => {
    const extra = new Uint8Array([0x4c, 0x49, 0x53, 0x54, 3, 0, 0, 0, 1, 2, 3, 0]); // 'LIST', 3 bytes + pad
    const b = new Uint8Array(good.length + extra.length);
    b.set(good.subarray(0, 36));
    b.set(extra, 36);
    b.set(good.subarray(36), 36 + extra.length);
    expect(decodeWav(b).channelData[0]!.length).toBe(64);
  });

  test('fuzz: mutated and truncated streams either decode within bounds or throw WavFormatError', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const seeds = [
      good,
      encodeWav([new Float32Array(10), new Float32Array(10), new Float32Array(10)], 8000, { encoding: 'pcm24' }),
      encodeWav([new Float32Array(7)], 44100, { encoding: 'float32' }),
      new Uint8Array(readFileSync(join(dir, 'pcm24-mono.wav'))),
    ];
    let threw = 0;
    for (let it = 0; it < 4000; it++) {
      const src = seeds[it % seeds.length]!;
      let b = src.slice();
      const kind = rand();
      if (kind < 0.3) b = b.slice(0, Math.floor(rand() * b.length));
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) {
        const pos = rand() < 0.7 ? Math.floor(rand() * Math.min(64, b.length)) : Math.floor(rand() * b.length);
        if (pos < b.length) b[pos] = rand() < 0.5 ? b[pos]! ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
      }
      try {
        const wav = decodeWav(b, { lenient: rand() < 0.5 });
        let total = 0;
        for (const ch of wav.channelData) total += ch.length;
        expect(total).toBeLessThanOrEqual(b.length); // never more samples than bytes
      } catch (e) {
        if (!(e instanceof WavFormatError)) throw e;
        threw++;
      }
    }
    expect(threw).toBeGreaterThan(100);
  });
});
