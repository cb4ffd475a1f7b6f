// A minimal RIFF/WAVE header reader: enough to list a folder of audio with durations and to locate the samples.
// Decoding (and everything else about audio) belongs to @tessera/audio; this only reads the `fmt ` and `data`
// chunks, checks every size against the bytes present, and never allocates from a declared size.
import { FormatError } from './errors.js';

export interface WavInfo {
  /** 1 = PCM integer, 3 = IEEE float, 6/7 = A-law/µ-law; WAVE_FORMAT_EXTENSIBLE reports its sub-format. */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Byte offset of the first sample and byte length of the sample data present. */
  dataOffset: number;
  dataBytes: number;
  frames: number;
  duration: number;
}

/** Reads the header of a WAV file from its first bytes (the whole file or at least up to the `data` chunk). */
export function readWavInfo(bytes: Uint8Array, source = '<input>', fileSize = bytes.length): WavInfo {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number): string => String.fromCharCode(bytes[o]!, bytes[o + 1]!, bytes[o + 2]!, bytes[o + 3]!);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE')
    throw new FormatError(source, undefined, 'not a RIFF/WAVE file');
  let o = 12;
  let fmt: Omit<WavInfo, 'dataOffset' | 'dataBytes' | 'frames' | 'duration'> | undefined;
  let blockAlign = 0;
  while (o + 8 <= bytes.length) {
    const id = tag(o);
    const size = dv.getUint32(o + 4, true);
    const body = o + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length)
        throw new FormatError(source, undefined, `fmt chunk of ${size} bytes is too short`);
      let format = dv.getUint16(body, true);
      const channels = dv.getUint16(body + 2, true);
      const sampleRate = dv.getUint32(body + 4, true);
      blockAlign = dv.getUint16(body + 12, true);
      const bitsPerSample = dv.getUint16(body + 14, true);
      if (format === 0xfffe) {
        if (size < 40 || body + 26 > bytes.length)
          throw new FormatError(source, undefined, 'WAVE_FORMAT_EXTENSIBLE fmt chunk is too short');
        format = dv.getUint16(body + 24, true);
      }
      if (channels === 0) throw new FormatError(source, undefined, 'fmt chunk says 0 channels');
      if (sampleRate === 0 || sampleRate > 10_000_000)
        throw new FormatError(source, undefined, `absurd sample rate ${sampleRate}`);
      if (bitsPerSample === 0 || blockAlign === 0)
        throw new FormatError(source, undefined, `bad fmt chunk: ${bitsPerSample} bits, block align ${blockAlign}`);
      fmt = { format, channels, sampleRate, bitsPerSample };
    } else if (id === 'data') {
      if (!fmt) throw new FormatError(source, undefined, 'data chunk before fmt chunk');
      // a streamed file may say 0 or 0xffffffff: trust the bytes that exist
      const dataBytes = Math.min(size === 0 || size === 0xffffffff ? fileSize - body : size, fileSize - body);
      const frames = Math.floor(dataBytes / blockAlign);
      return { ...fmt, dataOffset: body, dataBytes, frames, duration: frames / fmt.sampleRate };
    }
    o = body + size + (size & 1);
  }
  throw new FormatError(source, undefined, fmt ? 'no data chunk' : 'no fmt chunk');
}
