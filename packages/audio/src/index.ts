export type { AddNoiseOptions, Biquad, BiquadSpec, BiquadType, StretchOptions } from './augment.js';
export {
  addNoise,
  biquad,
  biquadResponseDb,
  designBiquad,
  equalize,
  gain,
  gaussian,
  normalizePeak,
  phaseVocoder,
  pitchShift,
  speedPerturb,
  timeStretch,
} from './augment.js';
export { AudioError, ValueError, WavFormatError } from './errors.js';
export type { CmvnOptions, DbOptions, FrameOptions, MfccOptions } from './features.js';
export {
  addDeltas,
  amplitudeToDb,
  cepstra,
  cmvn,
  dctMatrix,
  deltas,
  frameEnergy,
  frameNorm,
  logCompress,
  mfcc,
  powerToDb,
  rms,
} from './features.js';
export { FFT } from './fft.js';
export type { Frames, PadMode } from './framing.js';
export { deEmphasis, frame, numFrames, pad, preEmphasis } from './framing.js';
export type { GriffinLimOptions, MelToLinearOptions } from './griffin-lim.js';
export { griffinLim, griffinLimFromMel, melToLinear, spectralConvergence } from './griffin-lim.js';
export type { MelFilterbank, MelOptions, MelSpectrogramOptions } from './mel.js';
export {
  applyMel,
  hzToMel,
  melFilterbank,
  melFilterbankDense,
  melFrequencies,
  melSpectrogram,
  melToHz,
} from './mel.js';
export type { PitchTrack, PyinOptions, YinOptions } from './pitch.js';
export { cmndf, pyin, yin } from './pitch.js';
export type { ResampleDesign, ResampleOptions, ResampleQuality } from './resample.js';
export { designResampler, resample } from './resample.js';
export type { ComplexSpectrogram, IstftOptions, StftOptions } from './stft.js';
export { istft, StftPlan, spectrogram, stft } from './stft.js';
export type { DecodeWavOptions, EncodeWavOptions, Wav, WavEncoding } from './wav.js';
export { decodeWav, encodeWav, toMono } from './wav.js';
export type { WindowName } from './windows.js';
export { getWindow, padCenter } from './windows.js';
