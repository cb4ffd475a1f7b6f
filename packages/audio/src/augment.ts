// Data augmentation for speech: additive noise at a set SNR, gain, speed perturbation (Ko et al., "Audio
// augmentation for speech recognition", Interspeech 2015: resample, so tempo and pitch move together), pitch
// shift and time stretch by phase vocoder (Flanagan & Golden 1966; librosa.effects.pitch_shift / time_stretch),
// and biquad equalisation (R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients").
import { check, checkPositive, ValueError } from './errors.js';
import { resample } from './resample.js';
import { type ComplexSpectrogram, istft, stft } from './stft.js';

function meanSquare(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return x.length ? s / x.length : 0;
}

/** A seeded standard normal generator (xorshift32 + Box-Muller). */
export function gaussian(seed = 0): () => number {
  let s = seed >>> 0 || 0x2545f491;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 2 ** 32;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(u()));
    const a = 2 * Math.PI * u();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

export interface AddNoiseOptions {
  /** Noise to mix in (looped from a seeded random offset when shorter than x); default white Gaussian noise. */
  noise?: ArrayLike<number>;
  seed?: number;
}

/**
 * x + g * noise with g chosen so that 10 log10(mean(x^2) / mean((g * noise)^2)) over the length of x equals snrDb
 * exactly. A silent x is returned unchanged.
 */
export function addNoise(x: ArrayLike<number>, snrDb: number, opts: AddNoiseOptions = {}): Float32Array {
  check(Number.isFinite(snrDb), 'addNoise', `snrDb must be finite; got ${snrDb}`);
  const n = x.length;
  const nz = new Float64Array(n);
  if (opts.noise) {
    const src = opts.noise;
    check(src.length > 0, 'addNoise', 'noise is empty');
    const g = gaussian(opts.seed ?? 0);
    const off = src.length > n ? Math.floor(((g() * 1e6) >>> 0) % (src.length - n + 1)) : 0;
    for (let i = 0; i < n; i++) nz[i] = src[(off + i) % src.length]!;
  } else {
    const g = gaussian(opts.seed ?? 0);
    for (let i = 0; i < n; i++) nz[i] = g();
  }
  const px = meanSquare(x);
  const pn = meanSquare(nz);
  const out = Float32Array.from(x);
  if (px === 0 || pn === 0) return out;
  const scale = Math.sqrt(px / (pn * 10 ** (snrDb / 10)));
  for (let i = 0; i < n; i++) out[i] = x[i]! + scale * nz[i]!;
  return out;
}

/** Multiplies by 10^(db / 20). */
export function gain(x: ArrayLike<number>, db: number): Float32Array {
  const g = 10 ** (db / 20);
  return Float32Array.from(x, (v) => v * g);
}

/** Scales x so that its peak magnitude is 10^(peakDb / 20) (default 0 dBFS); silent input is returned as is. */
export function normalizePeak(x: ArrayLike<number>, peakDb = 0): Float32Array {
  let peak = 0;
  for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]!));
  const out = Float32Array.from(x);
  if (peak === 0) return out;
  const g = 10 ** (peakDb / 20) / peak;
  for (let i = 0; i < out.length; i++) out[i] *= g;
  return out;
}

/**
 * Speed perturbation as Kaldi's and sox's `speed`: plays x `factor` times faster (length / factor, pitch x factor)
 * by band-limited resampling from round(sampleRate * factor) to sampleRate.
 */
export function speedPerturb(x: ArrayLike<number>, factor: number, sampleRate: number): Float32Array {
  checkPositive(factor, 'speedPerturb', 'factor');
  checkPositive(sampleRate, 'speedPerturb', 'sampleRate');
  const from = Math.round(sampleRate * factor);
  check(from >= 1, 'speedPerturb', `factor ${factor} is too small for ${sampleRate} Hz`);
  return resample(x, from, sampleRate);
}

/** librosa.phase_vocoder: a spectrogram `rate` times faster (rate > 1 shortens), phases advanced per bin. */
export function phaseVocoder(spec: ComplexSpectrogram, rate: number, hopLength: number): ComplexSpectrogram {
  checkPositive(rate, 'phaseVocoder', 'rate');
  const { nFrames: T, nBins: B } = spec;
  const nFft = 2 * (B - 1);
  const steps: number[] = [];
  for (let s = 0; s < T; s += rate) steps.push(s);
  const To = steps.length;
  const re = new Float32Array(To * B);
  const im = new Float32Array(To * B);
  const acc = new Float64Array(B);
  for (let k = 0; k < B; k++) acc[k] = Math.atan2(spec.im[k] ?? 0, spec.re[k] ?? 0);
  const at = (t: number, k: number): [number, number] => (t < T ? [spec.re[t * B + k]!, spec.im[t * B + k]!] : [0, 0]);
  for (let o = 0; o < To; o++) {
    const step = steps[o]!;
    const t0 = Math.floor(step);
    const alpha = step - t0;
    for (let k = 0; k < B; k++) {
      const [ar, ai] = at(t0, k);
      const [br, bi] = at(t0 + 1, k);
      const mag = (1 - alpha) * Math.sqrt(ar * ar + ai * ai) + alpha * Math.sqrt(br * br + bi * bi);
      re[o * B + k] = mag * Math.cos(acc[k]!);
      im[o * B + k] = mag * Math.sin(acc[k]!);
      const adv = (2 * Math.PI * k * hopLength) / nFft;
      let d = Math.atan2(bi, br) - Math.atan2(ai, ar) - adv;
      d -= 2 * Math.PI * Math.round(d / (2 * Math.PI));
      acc[k] += adv + d;
    }
  }
  return { re, im, nFrames: To, nBins: B };
}

export interface StretchOptions {
  nFft?: number;
  hopLength?: number;
}

/** Changes tempo by `rate` (> 1 faster) keeping pitch (librosa.effects.time_stretch); length round(n / rate). */
export function timeStretch(x: ArrayLike<number>, rate: number, opts: StretchOptions = {}): Float32Array {
  checkPositive(rate, 'timeStretch', 'rate');
  const nFft = opts.nFft ?? 1024;
  const hop = opts.hopLength ?? nFft >> 2;
  const s = stft(x, { nFft, hopLength: hop });
  return istft(phaseVocoder(s, rate, hop), { nFft, hopLength: hop, length: Math.round(x.length / rate) });
}

/**
 * Shifts pitch by `semitones` keeping duration (librosa.effects.pitch_shift): time-stretch by 2^(-s/12), then
 * resample back to the original length. The source rate is rounded to whole Hz (a pitch error below 0.1 cent).
 */
export function pitchShift(
  x: ArrayLike<number>,
  semitones: number,
  sampleRate: number,
  opts: StretchOptions = {},
): Float32Array {
  check(Number.isFinite(semitones), 'pitchShift', `semitones must be finite; got ${semitones}`);
  checkPositive(sampleRate, 'pitchShift', 'sampleRate');
  const rate = 2 ** (-semitones / 12);
  const stretched = timeStretch(x, rate, opts);
  const y = resample(stretched, Math.round(sampleRate / rate), sampleRate);
  const out = new Float32Array(x.length);
  out.set(y.subarray(0, Math.min(y.length, out.length)));
  return out;
}

export type BiquadType = 'lowpass' | 'highpass' | 'bandpass' | 'notch' | 'peaking' | 'lowshelf' | 'highshelf';

export interface BiquadSpec {
  type: BiquadType;
  /** Centre or corner frequency in Hz. */
  frequency: number;
  /** Quality factor, default 0.7071 (Butterworth for low/high-pass). */
  q?: number;
  /** Gain in dB for peaking and shelving filters. */
  gainDb?: number;
}

/** Normalised biquad coefficients: y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2. */
export interface Biquad {
  b0: number;
  b1: number;
  b2: number;
  a1: number;
  a2: number;
}

/** RBJ cookbook design of one biquad section. */
export function designBiquad(spec: BiquadSpec, sampleRate: number): Biquad {
  checkPositive(sampleRate, 'designBiquad', 'sampleRate');
  const f = spec.frequency;
  check(f > 0 && f < sampleRate / 2, 'designBiquad', `frequency must be in (0, ${sampleRate / 2}) Hz; got ${f}`);
  const q = spec.q ?? Math.SQRT1_2;
  checkPositive(q, 'designBiquad', 'q');
  const A = 10 ** ((spec.gainDb ?? 0) / 40);
  const w = (2 * Math.PI * f) / sampleRate;
  const cw = Math.cos(w);
  const alpha = Math.sin(w) / (2 * q);
  let b0: number;
  let b1: number;
  let b2: number;
  let a0: number;
  let a1: number;
  let a2: number;
  switch (spec.type) {
    case 'lowpass':
      [b0, b1, b2] = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2];
      [a0, a1, a2] = [1 + alpha, -2 * cw, 1 - alpha];
      break;
    case 'highpass':
      [b0, b1, b2] = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2];
      [a0, a1, a2] = [1 + alpha, -2 * cw, 1 - alpha];
      break;
    case 'bandpass': // constant 0 dB peak gain
      [b0, b1, b2] = [alpha, 0, -alpha];
      [a0, a1, a2] = [1 + alpha, -2 * cw, 1 - alpha];
      break;
    case 'notch':
      [b0, b1, b2] = [1, -2 * cw, 1];
      [a0, a1, a2] = [1 + alpha, -2 * cw, 1 - alpha];
      break;
    case 'peaking':
      [b0, b1, b2] = [1 + alpha * A, -2 * cw, 1 - alpha * A];
      [a0, a1, a2] = [1 + alpha / A, -2 * cw, 1 - alpha / A];
      break;
    case 'lowshelf':
    case 'highshelf': {
      const s = spec.type === 'lowshelf' ? 1 : -1;
      const r = 2 * Math.sqrt(A) * alpha;
      b0 = A * (A + 1 - s * (A - 1) * cw + r);
      b1 = 2 * s * A * (A - 1 - s * (A + 1) * cw);
      b2 = A * (A + 1 - s * (A - 1) * cw - r);
      a0 = A + 1 + s * (A - 1) * cw + r;
      a1 = -2 * s * (A - 1 + s * (A + 1) * cw);
      a2 = A + 1 + s * (A - 1) * cw - r;
      break;
    }
    default:
      throw new ValueError(
        `designBiquad: unknown type ${JSON.stringify(spec.type)}; expected lowpass, highpass, bandpass, notch, peaking, lowshelf or highshelf`,
      );
  }
  return { b0: b0 / a0, b1: b1 / a0, b2: b2 / a0, a1: a1 / a0, a2: a2 / a0 };
}

/** The magnitude response of a biquad at `frequency`, in dB. */
export function biquadResponseDb(c: Biquad, frequency: number, sampleRate: number): number {
  const w = (2 * Math.PI * frequency) / sampleRate;
  const [c1, s1, c2, s2] = [Math.cos(w), Math.sin(w), Math.cos(2 * w), Math.sin(2 * w)];
  const nr = c.b0 + c.b1 * c1 + c.b2 * c2;
  const ni = -(c.b1 * s1 + c.b2 * s2);
  const dr = 1 + c.a1 * c1 + c.a2 * c2;
  const di = -(c.a1 * s1 + c.a2 * s2);
  return 10 * Math.log10((nr * nr + ni * ni) / (dr * dr + di * di));
}

/** Runs x through a biquad (direct form I, float64 state). */
export function biquad(x: ArrayLike<number>, c: Biquad): Float32Array {
  const y = new Float32Array(x.length);
  let x1 = 0;
  let x2 = 0;
  let y1 = 0;
  let y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    const y0 = c.b0 * x0 + c.b1 * x1 + c.b2 * x2 - c.a1 * y1 - c.a2 * y2;
    x2 = x1;
    x1 = x0;
    y2 = y1;
    y1 = y0;
    y[i] = y0;
  }
  return y;
}

/** A simple EQ: the biquad sections in series (like a chain of sox `equalizer`, `bass`, `treble` effects). */
export function equalize(x: ArrayLike<number>, sampleRate: number, bands: BiquadSpec[]): Float32Array {
  let y: Float32Array = Float32Array.from(x);
  for (const b of bands) y = biquad(y, designBiquad(b, sampleRate));
  return y;
}
