// Mel scales and filterbanks as librosa.filters.mel (defaults: Slaney's Auditory Toolbox scale, linear below
// 1 kHz and logarithmic above, with area ("slaney") normalisation) and, with `htk: true, norm: null`,
// torchaudio.functional.melscale_fbanks' defaults (O'Shaughnessy / HTK: 2595 log10(1 + f / 700)).
// Checked against torchaudio 0.13 in test/fixtures/features.json.
import { check, checkInt, checkPositive } from './errors.js';
import type { Frames } from './framing.js';
import { checkSignal, type StftOptions, StftPlan } from './stft.js';

const F_SP = 200 / 3;
const MIN_LOG_HZ = 1000;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP;
const LOGSTEP = Math.log(6.4) / 27;

export function hzToMel(hz: number, htk = false): number {
  if (htk) return 2595 * Math.log10(1 + hz / 700);
  return hz >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(hz / MIN_LOG_HZ) / LOGSTEP : hz / F_SP;
}

export function melToHz(mel: number, htk = false): number {
  if (htk) return 700 * (10 ** (mel / 2595) - 1);
  return mel >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOGSTEP * (mel - MIN_LOG_MEL)) : F_SP * mel;
}

/** n frequencies equally spaced on the mel scale from fMin to fMax (librosa.mel_frequencies). */
export function melFrequencies(n: number, fMin: number, fMax: number, htk = false): Float64Array {
  const a = hzToMel(fMin, htk);
  const b = hzToMel(fMax, htk);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = melToHz(n === 1 ? a : a + ((b - a) * i) / (n - 1), htk);
  return out;
}

export interface MelOptions {
  sampleRate: number;
  /** Number of mel bands, default 128 (librosa, torchaudio). */
  nMels?: number;
  /** Lowest band edge in Hz, default 0. */
  fMin?: number;
  /** Highest band edge in Hz, default sampleRate / 2. */
  fMax?: number;
  /** HTK mel scale instead of Slaney's; default false (librosa). */
  htk?: boolean;
  /** 'slaney' (default, librosa) divides each triangle by its width in Hz so bands have equal area; null: peak 1. */
  norm?: 'slaney' | null;
}

/** A mel filterbank [nMels x nBins], stored sparsely: band m covers bins [start[m], start[m] + weights[m].length). */
export interface MelFilterbank {
  nMels: number;
  nBins: number;
  start: Int32Array;
  weights: Float64Array[];
}

/** librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm). */
export function melFilterbank(opts: MelOptions & { nFft: number }): MelFilterbank {
  const sr = opts.sampleRate;
  checkPositive(sr, 'melFilterbank', 'sampleRate');
  checkInt(opts.nFft, 1, 'melFilterbank', 'nFft');
  const nMels = opts.nMels ?? 128;
  checkInt(nMels, 1, 'melFilterbank', 'nMels');
  const fMin = opts.fMin ?? 0;
  const fMax = opts.fMax ?? sr / 2;
  check(
    fMin >= 0 && fMax > fMin && fMax <= sr / 2 + 1e-9,
    'melFilterbank',
    `needs 0 <= fMin < fMax <= sampleRate / 2; got fMin ${fMin}, fMax ${fMax}, sampleRate ${sr}`,
  );
  const htk = opts.htk ?? false;
  const norm = opts.norm === undefined ? 'slaney' : opts.norm;
  const nBins = (opts.nFft >> 1) + 1;
  const fftFreq = (k: number) => (k * sr) / opts.nFft;
  const f = melFrequencies(nMels + 2, fMin, fMax, htk);
  const start = new Int32Array(nMels);
  const weights: Float64Array[] = [];
  for (let m = 0; m < nMels; m++) {
    const lo = f[m]!;
    const mid = f[m + 1]!;
    const hi = f[m + 2]!;
    const enorm = norm === 'slaney' ? 2 / (hi - lo) : 1;
    const row: number[] = [];
    let first = -1;
    for (let k = 0; k < nBins; k++) {
      const fk = fftFreq(k);
      const lower = (fk - lo) / (mid - lo);
      const upper = (hi - fk) / (hi - mid);
      const v = Math.max(0, Math.min(lower, upper));
      if (v > 0) {
        if (first < 0) first = k;
        // keep interior zeros (none occur for a triangle, but stay exact)
        while (first + row.length < k) row.push(0);
        row.push(v * enorm);
      }
    }
    start[m] = Math.max(first, 0);
    weights.push(Float64Array.from(row));
  }
  return { nMels, nBins, start, weights };
}

/** The filterbank as a dense row-major [nMels x nBins] matrix. */
export function melFilterbankDense(fb: MelFilterbank): Float64Array {
  const out = new Float64Array(fb.nMels * fb.nBins);
  for (let m = 0; m < fb.nMels; m++) {
    const w = fb.weights[m]!;
    for (let j = 0; j < w.length; j++) out[m * fb.nBins + fb.start[m]! + j] = w[j]!;
  }
  return out;
}

/** Applies the filterbank to each frame of a linear spectrogram [T x nBins] -> [T x nMels]. */
export function applyMel(spec: Frames, fb: MelFilterbank): Frames {
  check(spec.dim === fb.nBins, 'applyMel', `spectrogram has ${spec.dim} bins; the filterbank expects ${fb.nBins}`);
  const T = spec.nFrames;
  const out = new Float32Array(T * fb.nMels);
  for (let t = 0; t < T; t++) {
    const row = t * spec.dim;
    for (let m = 0; m < fb.nMels; m++) {
      const w = fb.weights[m]!;
      const s = row + fb.start[m]!;
      let acc = 0;
      for (let j = 0; j < w.length; j++) acc += w[j]! * spec.data[s + j]!;
      out[t * fb.nMels + m] = acc;
    }
  }
  return { data: out, nFrames: T, dim: fb.nMels };
}

export type MelSpectrogramOptions = StftOptions & MelOptions & { power?: number };

/**
 * Mel spectrogram [T x nMels] of a mono signal, frame by frame (never holding the linear spectrogram):
 * librosa.feature.melspectrogram, or torchaudio.transforms.MelSpectrogram with `htk: true, norm: null`.
 * power 2 (default) gives power, 1 magnitude (FastPitch, HiFi-GAN).
 */
export function melSpectrogram(x: ArrayLike<number>, opts: MelSpectrogramOptions): Frames {
  const plan = new StftPlan(opts, 'melSpectrogram');
  checkSignal(x, plan, 'melSpectrogram');
  const fb = melFilterbank({ ...opts, nFft: plan.nFft });
  const power = opts.power ?? 2;
  check(power > 0, 'melSpectrogram', `power must be > 0; got ${power}`);
  const T = plan.numFrames(x.length);
  const B = plan.nBins;
  const M = fb.nMels;
  const out = new Float32Array(T * M);
  const mag = new Float64Array(B);
  for (let t = 0; t < T; t++) {
    const s = plan.analyze(x, t);
    for (let k = 0; k < B; k++) {
      const p = s[2 * k]! * s[2 * k]! + s[2 * k + 1]! * s[2 * k + 1]!;
      mag[k] = power === 2 ? p : power === 1 ? Math.sqrt(p) : p ** (power / 2);
    }
    for (let m = 0; m < M; m++) {
      const w = fb.weights[m]!;
      const st = fb.start[m]!;
      let acc = 0;
      for (let j = 0; j < w.length; j++) acc += w[j]! * mag[st + j]!;
      out[t * M + m] = acc;
    }
  }
  return { data: out, nFrames: T, dim: M };
}
