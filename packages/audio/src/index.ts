export { AudioError, ValueError, WavFormatError } from './errors.js';
export type { DecodeWavOptions, EncodeWavOptions, Wav, WavEncoding } from './wav.js';
export { decodeWav, encodeWav, toMono } from './wav.js';
