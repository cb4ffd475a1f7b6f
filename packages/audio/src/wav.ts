// WAV (RIFF WAVE) decoding and encoding: PCM 8/16/24/32-bit, IEEE float 32/64, any channel count,
// WAVE_FORMAT_EXTENSIBLE. Spec: Microsoft "Multimedia Programming Interface and Data Specifications 1.0"
// (1991) and "Multiple channel audio data and WAVE files" (WAVEFORMATEXTENSIBLE). Checked against files
// written by sox (test/fixtures/wav).
//
// Our own codec rather than a general one because the bad-input contract is the point: every malformed
// stream raises WavFormatError naming the field and byte offset, and allocation is bounded by the bytes
// actually present (never by a size field the file claims).
import { ValueError, WavFormatError } from './errors.js';

export type WavEncoding = 'pcm8' | 'pcm16' | 'pcm24' | 'pcm32' | 'float32' | 'float64';

export interface Wav<T extends Float32Array | Float64Array = Float32Array> {
  sampleRate: number;
  /** One array per channel (planar), samples in [-1, 1) for PCM. */
  channelData: T[];
  /** The stored sample encoding. */
  encoding: WavEncoding;
  /** Significant bits (WAVE_FORMAT_EXTENSIBLE's wValidBitsPerSample; the container size otherwise). */
  validBits: number;
  /** Speaker-position mask of WAVE_FORMAT_EXTENSIBLE, 0 otherwise. */
  channelMask: number;
  /** True when `lenient` read a data chunk whose size was wrong (more than the stream held, or 0) to the end. */
  truncated: boolean;
}

export interface DecodeWavOptions {
  /**
   * Read a data chunk that claims more bytes than present (streamed WAVs write 0xFFFFFFFF) or 0 bytes (some
   * streamers) up to the end of the stream; default false (a WavFormatError for the first, no samples for the second).
   */
  lenient?: boolean;
  /** Refuse streams with more sample frames than this (default: no limit beyond the bytes present). */
  maxFrames?: number;
  /** Highest sample rate accepted, default 3,072,000 Hz (anything above is taken as a corrupt header). */
  maxSampleRate?: number;
  /** Highest channel count accepted, default 1024. */
  maxChannels?: number;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
const FORMAT_NAMES: Record<number, string> = {
  2: 'MS ADPCM',
  6: 'A-law',
  7: 'mu-law',
  17: 'IMA ADPCM',
  49: 'GSM 6.10',
  85: 'MPEG layer 3',
};
// KSDATAFORMAT_SUBTYPE_{PCM,IEEE_FLOAT} = XXXXXXXX-0000-0010-8000-00aa00389b71, bytes after the 2-byte tag.
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourcc(b: Uint8Array, o: number): string {
  return String.fromCharCode(b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!);
}

function printable(id: string): string {
  return /^[\x20-\x7e]{4}$/.test(id) ? `'${id}'` : JSON.stringify(id);
}

interface Fmt {
  encoding: WavEncoding;
  channels: number;
  sampleRate: number;
  blockAlign: number;
  validBits: number;
  channelMask: number;
}

function parseFmt(b: Uint8Array, dv: DataView, o: number, size: number, opts: DecodeWavOptions): Fmt {
  if (size < 16) throw new WavFormatError(`decodeWav: 'fmt ' chunk must be at least 16 bytes; got ${size}`, o - 4);
  let tag = dv.getUint16(o, true);
  const channels = dv.getUint16(o + 2, true);
  const sampleRate = dv.getUint32(o + 4, true);
  const blockAlign = dv.getUint16(o + 12, true);
  const bits = dv.getUint16(o + 14, true);
  let validBits = bits;
  let channelMask = 0;
  const maxCh = opts.maxChannels ?? 1024;
  const maxSr = opts.maxSampleRate ?? 3_072_000;
  if (channels === 0 || channels > maxCh)
    throw new WavFormatError(`decodeWav: channel count must be in 1..${maxCh}; got ${channels}`, o + 2);
  if (sampleRate === 0 || sampleRate > maxSr)
    throw new WavFormatError(`decodeWav: sample rate must be in 1..${maxSr} Hz; got ${sampleRate}`, o + 4);
  if (tag === FORMAT_EXTENSIBLE) {
    if (size < 40) throw new WavFormatError(`decodeWav: WAVE_FORMAT_EXTENSIBLE needs a 40-byte 'fmt '; got ${size}`, o);
    const cbSize = dv.getUint16(o + 16, true);
    if (cbSize < 22)
      throw new WavFormatError(`decodeWav: WAVE_FORMAT_EXTENSIBLE cbSize must be >= 22; got ${cbSize}`, o + 16);
    validBits = dv.getUint16(o + 18, true) || bits;
    channelMask = dv.getUint32(o + 20, true);
    tag = dv.getUint16(o + 24, true);
    for (let i = 0; i < GUID_TAIL.length; i++) {
      if (b[o + 26 + i] !== GUID_TAIL[i])
        throw new WavFormatError('decodeWav: unknown WAVE_FORMAT_EXTENSIBLE sub-format GUID', o + 24);
    }
    if (validBits > bits)
      throw new WavFormatError(`decodeWav: valid bits (${validBits}) exceed the container size (${bits})`, o + 18);
  }
  let encoding: WavEncoding;
  if (tag === FORMAT_PCM) {
    if (bits !== 8 && bits !== 16 && bits !== 24 && bits !== 32)
      throw new WavFormatError(`decodeWav: PCM bits per sample must be 8, 16, 24 or 32; got ${bits}`, o + 14);
    encoding = `pcm${bits}` as WavEncoding;
  } else if (tag === FORMAT_FLOAT) {
    if (bits !== 32 && bits !== 64)
      throw new WavFormatError(`decodeWav: float bits per sample must be 32 or 64; got ${bits}`, o + 14);
    encoding = `float${bits}` as WavEncoding;
  } else {
    const name = FORMAT_NAMES[tag] ? ` (${FORMAT_NAMES[tag]})` : '';
    throw new WavFormatError(
      `decodeWav: unsupported format tag 0x${tag.toString(16).padStart(4, '0')}${name}; expected PCM (1), IEEE float (3) or WAVE_FORMAT_EXTENSIBLE`,
      o,
    );
  }
  const expectAlign = (channels * bits) / 8;
  if (blockAlign !== expectAlign)
    throw new WavFormatError(
      `decodeWav: block align must be channels x bytes per sample = ${expectAlign}; got ${blockAlign}`,
      o + 12,
    );
  return { encoding, channels, sampleRate, blockAlign, validBits, channelMask };
}

/** Decodes a RIFF WAVE byte stream into planar float channels. Throws WavFormatError on malformed input. */
export function decodeWav(
  bytes: Uint8Array | ArrayBuffer,
  opts?: DecodeWavOptions & { dtype?: 'float32' },
): Wav<Float32Array>;
export function decodeWav(
  bytes: Uint8Array | ArrayBuffer,
  opts: DecodeWavOptions & { dtype: 'float64' },
): Wav<Float64Array>;
export function decodeWav(
  input: Uint8Array | ArrayBuffer,
  opts: DecodeWavOptions & { dtype?: 'float32' | 'float64' } = {},
): Wav<Float32Array> | Wav<Float64Array> {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
  if (!(bytes instanceof Uint8Array))
    throw new ValueError('decodeWav: expects the file bytes as a Uint8Array (or Buffer) or an ArrayBuffer');
  const n = bytes.length;
  if (n < 12) throw new WavFormatError(`decodeWav: stream too short for a RIFF header: ${n} bytes`, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
  const riff = fourcc(bytes, 0);
  if (riff === 'RIFX' || riff === 'RF64')
    throw new WavFormatError(`decodeWav: ${riff} streams are not supported; expected little-endian 'RIFF'`, 0);
  if (riff !== 'RIFF') throw new WavFormatError(`decodeWav: expected 'RIFF'; got ${printable(riff)}`, 0);
  if (fourcc(bytes, 8) !== 'WAVE')
    throw new WavFormatError(`decodeWav: expected 'WAVE' form type; got ${printable(fourcc(bytes, 8))}`, 8);
  // The RIFF size is often wrong in streamed files; chunks are walked within the bytes present instead.
  let fmt: Fmt | undefined;
  let dataStart = -1;
  let dataBytes = 0;
  let truncated = false;
  let o = 12;
  while (o + 8 <= n) {
    const id = fourcc(bytes, o);
    const size = dv.getUint32(o + 4, true);
    const body = o + 8;
    const avail = n - body;
    if (id === 'fmt ') {
      if (fmt) throw new WavFormatError("decodeWav: a second 'fmt ' chunk", o);
      if (size > avail)
        throw new WavFormatError(`decodeWav: 'fmt ' chunk claims ${size} bytes but ${avail} remain`, o + 4);
      fmt = parseFmt(bytes, dv, body, size, opts);
    } else if (id === 'data') {
      if (!fmt) throw new WavFormatError("decodeWav: 'data' chunk before the 'fmt ' chunk", o);
      dataStart = body;
      dataBytes = size;
      if (size === 0 && avail > 0 && opts.lenient) {
        // Streamed files may leave the size at 0; sox then reads to the end of the file, and so do we.
        dataBytes = avail;
        truncated = true;
      } else if (size > avail) {
        if (!opts.lenient)
          throw new WavFormatError(
            `decodeWav: 'data' chunk claims ${size} bytes but ${avail} remain (truncated file or lying size; pass { lenient: true } to keep what is there)`,
            o + 4,
          );
        dataBytes = avail;
        truncated = true;
      }
      break;
    }
    // Chunks are word-aligned: an odd size is followed by one pad byte.
    o = body + size + (size & 1);
  }
  if (!fmt) throw new WavFormatError("decodeWav: no 'fmt ' chunk");
  if (dataStart < 0) throw new WavFormatError("decodeWav: no 'data' chunk");
  const frames = Math.floor(dataBytes / fmt.blockAlign); // a partial trailing frame is dropped
  if (opts.maxFrames !== undefined && frames > opts.maxFrames)
    throw new WavFormatError(`decodeWav: ${frames} sample frames exceed maxFrames = ${opts.maxFrames}`, dataStart - 4);
  const C = fmt.channels;
  const Ctor = opts.dtype === 'float64' ? Float64Array : Float32Array;
  const out = Array.from({ length: C }, () => new Ctor(frames));
  readSamples(dv, dataStart, frames, C, fmt.encoding, out);
  return {
    sampleRate: fmt.sampleRate,
    channelData: out as Float32Array[],
    encoding: fmt.encoding,
    validBits: fmt.validBits,
    channelMask: fmt.channelMask,
    truncated,
  };
}

function readSamples(
  dv: DataView,
  start: number,
  frames: number,
  C: number,
  enc: WavEncoding,
  out: (Float32Array | Float64Array)[],
): void {
  let p = start;
  switch (enc) {
    case 'pcm8':
      for (let i = 0; i < frames; i++) for (let c = 0; c < C; c++) out[c]![i] = (dv.getUint8(p++) - 128) / 128;
      return;
    case 'pcm16':
      for (let i = 0; i < frames; i++) for (let c = 0; c < C; c++, p += 2) out[c]![i] = dv.getInt16(p, true) / 32768;
      return;
    case 'pcm24':
      for (let i = 0; i < frames; i++)
        for (let c = 0; c < C; c++, p += 3) {
          const v = dv.getUint8(p) | (dv.getUint8(p + 1) << 8) | (dv.getInt8(p + 2) << 16);
          out[c]![i] = v / 8388608;
        }
      return;
    case 'pcm32':
      for (let i = 0; i < frames; i++)
        for (let c = 0; c < C; c++, p += 4) out[c]![i] = dv.getInt32(p, true) / 2147483648;
      return;
    case 'float32':
      for (let i = 0; i < frames; i++) for (let c = 0; c < C; c++, p += 4) out[c]![i] = dv.getFloat32(p, true);
      return;
    case 'float64':
      for (let i = 0; i < frames; i++) for (let c = 0; c < C; c++, p += 8) out[c]![i] = dv.getFloat64(p, true);
      return;
  }
}

export interface EncodeWavOptions {
  /** Sample encoding, default 'pcm16'. */
  encoding?: WavEncoding;
  /** Write WAVE_FORMAT_EXTENSIBLE; default true when there are more than 2 channels (as the spec asks). */
  extensible?: boolean;
  /** Speaker-position mask for WAVE_FORMAT_EXTENSIBLE; default the first `channels` standard positions. */
  channelMask?: number;
}

const BYTES: Record<WavEncoding, number> = { pcm8: 1, pcm16: 2, pcm24: 3, pcm32: 4, float32: 4, float64: 8 };

/**
 * Encodes planar channels as a WAV file. PCM quantises x * 2^(bits-1), rounded and clipped to the integer range,
 * so decoding a PCM file and encoding it again at the same depth gives back the same bytes.
 */
export function encodeWav(
  channelData: ArrayLike<number>[],
  sampleRate: number,
  opts: EncodeWavOptions = {},
): Uint8Array<ArrayBuffer> {
  const enc = opts.encoding ?? 'pcm16';
  const C = channelData.length;
  if (!(enc in BYTES)) throw new ValueError(`encodeWav: unknown encoding ${JSON.stringify(enc)}`);
  if (C < 1 || C > 65535) throw new ValueError(`encodeWav: channel count must be in 1..65535; got ${C}`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff)
    throw new ValueError(`encodeWav: sample rate must be a positive integer; got ${sampleRate}`);
  const frames = channelData[0]!.length;
  for (let c = 1; c < C; c++)
    if (channelData[c]!.length !== frames)
      throw new ValueError(
        `encodeWav: channels differ in length: ${frames} vs ${channelData[c]!.length} (channel ${c})`,
      );
  const bps = BYTES[enc];
  const isFloat = enc.startsWith('float');
  const ext = opts.extensible ?? C > 2;
  const fmtSize = ext ? 40 : isFloat ? 18 : 16;
  const factSize = isFloat && !ext ? 12 : 0; // non-PCM formats carry a 'fact' chunk with the frame count
  const dataBytes = frames * C * bps;
  const pad = dataBytes & 1;
  const total = 12 + 8 + fmtSize + factSize + 8 + dataBytes + pad;
  if (total > 0xffffffff) throw new ValueError(`encodeWav: ${total} bytes exceed the 4 GiB RIFF limit`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const str = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  str(0, 'RIFF');
  dv.setUint32(4, total - 8, true);
  str(8, 'WAVE');
  str(12, 'fmt ');
  dv.setUint32(16, fmtSize, true);
  const tag = isFloat ? FORMAT_FLOAT : FORMAT_PCM;
  dv.setUint16(20, ext ? FORMAT_EXTENSIBLE : tag, true);
  dv.setUint16(22, C, true);
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * C * bps, true);
  dv.setUint16(32, C * bps, true);
  dv.setUint16(34, bps * 8, true);
  let o = 36;
  if (ext) {
    dv.setUint16(36, 22, true);
    dv.setUint16(38, bps * 8, true);
    const mask = opts.channelMask ?? (C <= 18 ? 2 ** C - 1 : 0);
    dv.setUint32(40, mask, true);
    dv.setUint16(44, tag, true);
    out.set(GUID_TAIL, 46);
    o = 60;
  } else if (isFloat) {
    dv.setUint16(36, 0, true);
    o = 38;
  }
  if (factSize) {
    str(o, 'fact');
    dv.setUint32(o + 4, 4, true);
    dv.setUint32(o + 8, frames, true);
    o += 12;
  }
  str(o, 'data');
  dv.setUint32(o + 4, dataBytes, true);
  o += 8;
  writeSamples(dv, o, frames, channelData, enc);
  return out;
}

function quant(x: number, scale: number): number {
  const v = Math.round(x * scale);
  return v >= scale ? scale - 1 : v < -scale ? -scale : Number.isNaN(v) ? 0 : v;
}

function writeSamples(dv: DataView, p: number, frames: number, ch: ArrayLike<number>[], enc: WavEncoding): void {
  const C = ch.length;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < C; c++) {
      const x = ch[c]![i]!;
      switch (enc) {
        case 'pcm8':
          dv.setUint8(p, quant(x, 128) + 128);
          p += 1;
          break;
        case 'pcm16':
          dv.setInt16(p, quant(x, 32768), true);
          p += 2;
          break;
        case 'pcm24': {
          const v = quant(x, 8388608);
          dv.setUint8(p, v & 0xff);
          dv.setUint8(p + 1, (v >> 8) & 0xff);
          dv.setUint8(p + 2, (v >> 16) & 0xff);
          p += 3;
          break;
        }
        case 'pcm32':
          dv.setInt32(p, quant(x, 2147483648), true);
          p += 4;
          break;
        case 'float32':
          dv.setFloat32(p, x, true);
          p += 4;
          break;
        case 'float64':
          dv.setFloat64(p, x, true);
          p += 8;
          break;
      }
    }
  }
}

/** Mixes planar channels down to one by averaging. */
export function toMono(channelData: ArrayLike<number>[]): Float32Array {
  const C = channelData.length;
  if (C === 0) throw new ValueError('toMono: expects at least one channel');
  const n = channelData[0]!.length;
  const out = new Float32Array(n);
  for (const ch of channelData) for (let i = 0; i < n; i++) out[i] += ch[i]! / C;
  return out;
}
