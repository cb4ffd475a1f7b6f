// Features built on spectra: log compression, MFCC (DCT-II of log-mel), deltas, CMVN and energy.
// Definitions follow librosa (power_to_db, mfcc, rms) and torchaudio (compute_deltas), cited per function.
import { check, checkInt, ValueError } from './errors.js';
import { type Frames, numFrames, type PadMode, padIndex } from './framing.js';
import { type MelSpectrogramOptions, melSpectrogram } from './mel.js';

function map(f: Frames, fn: (v: number) => number): Frames {
  const data = new Float32Array(f.data.length);
  for (let i = 0; i < data.length; i++) data[i] = fn(f.data[i]!);
  return { data, nFrames: f.nFrames, dim: f.dim };
}

/** ln(max(x, floor)): the log compression of FastPitch / Tacotron 2 / HiFi-GAN mels (floor 1e-5). */
export function logCompress(f: Frames, floor = 1e-5): Frames {
  check(floor > 0, 'logCompress', `floor must be > 0; got ${floor}`);
  return map(f, (v) => Math.log(Math.max(v, floor)));
}

export interface DbOptions {
  /** Reference power (0 dB), default 1; 'max' takes the largest value (librosa's ref=np.max). */
  ref?: number | 'max';
  /** Smallest power before the log, default 1e-10. */
  amin?: number;
  /** Clip everything more than topDb below the peak, default 80; null keeps all. */
  topDb?: number | null;
}

/** 10 log10(max(S, amin) / ref), floored at max - topDb (librosa.power_to_db). */
export function powerToDb(f: Frames, opts: DbOptions = {}): Frames {
  let ref = opts.ref ?? 1;
  if (ref === 'max') {
    ref = 0;
    for (const v of f.data) if (v > ref) ref = v;
  }
  const amin = opts.amin ?? 1e-10;
  const topDb = opts.topDb === undefined ? 80 : opts.topDb;
  check(amin > 0, 'powerToDb', `amin must be > 0; got ${amin}`);
  const off = 10 * Math.log10(Math.max(amin, ref));
  const out = map(f, (v) => 10 * Math.log10(Math.max(v, amin)) - off);
  if (topDb !== null) {
    check(topDb >= 0, 'powerToDb', `topDb must be >= 0; got ${topDb}`);
    let mx = Number.NEGATIVE_INFINITY;
    for (const v of out.data) if (v > mx) mx = v;
    const lo = mx - topDb;
    for (let i = 0; i < out.data.length; i++) if (out.data[i]! < lo) out.data[i] = lo;
  }
  return out;
}

/** 20 log10 of a magnitude spectrogram (librosa.amplitude_to_db): powerToDb(S^2, ref^2, amin^2, topDb). */
export function amplitudeToDb(f: Frames, opts: DbOptions = {}): Frames {
  const ref = opts.ref ?? 1;
  const amin = opts.amin ?? 1e-5;
  return powerToDb(
    map(f, (v) => v * v),
    { ref: ref === 'max' ? 'max' : ref * ref, amin: amin * amin, topDb: opts.topDb },
  );
}

/** Orthonormal DCT-II matrix [nOut x n]: row k = sqrt(2/n) cos(pi k (m + 1/2) / n), row 0 scaled by 1/sqrt(2). */
export function dctMatrix(nOut: number, n: number): Float64Array {
  checkInt(n, 1, 'dctMatrix', 'n');
  checkInt(nOut, 1, 'dctMatrix', 'nOut');
  check(nOut <= n, 'dctMatrix', `nOut (${nOut}) must be <= n (${n})`);
  const d = new Float64Array(nOut * n);
  for (let k = 0; k < nOut; k++) {
    const s = k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
    for (let m = 0; m < n; m++) d[k * n + m] = s * Math.cos((Math.PI * k * (m + 0.5)) / n);
  }
  return d;
}

/**
 * Cepstra from log-mel frames: the first nMfcc coefficients of the orthonormal DCT-II of each frame, optionally
 * liftered by 1 + (L/2) sin(pi (k+1) / L) (librosa.feature.mfcc's `lifter`).
 */
export function cepstra(logMel: Frames, nMfcc = 20, lifter = 0): Frames {
  const n = logMel.dim;
  const D = dctMatrix(nMfcc, n);
  const lift = new Float64Array(nMfcc).fill(1);
  if (lifter > 0) for (let k = 0; k < nMfcc; k++) lift[k] = 1 + (lifter / 2) * Math.sin((Math.PI * (k + 1)) / lifter);
  const T = logMel.nFrames;
  const out = new Float32Array(T * nMfcc);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < nMfcc; k++) {
      let acc = 0;
      for (let m = 0; m < n; m++) acc += D[k * n + m]! * logMel.data[t * n + m]!;
      out[t * nMfcc + k] = acc * lift[k]!;
    }
  return { data: out, nFrames: T, dim: nMfcc };
}

export interface MfccOptions extends MelSpectrogramOptions {
  /** Number of coefficients, default 20 (librosa). */
  nMfcc?: number;
  /** Cepstral liftering coefficient, default 0 (none). */
  lifter?: number;
  /** dB clipping below the peak of the log-mel, default 80 (librosa, torchaudio); null keeps all. */
  topDb?: number | null;
}

/**
 * MFCC [T x nMfcc] as librosa.feature.mfcc: DCT-II (ortho) of power_to_db(mel power spectrogram). With
 * `htk: true, norm: null, nFft: 400, padMode: 'reflect'` and nMfcc 40 this is torchaudio.transforms.MFCC.
 */
export function mfcc(x: ArrayLike<number>, opts: MfccOptions): Frames {
  const nMels = opts.nMels ?? 128;
  const nMfcc = opts.nMfcc ?? 20;
  check(nMfcc <= nMels, 'mfcc', `nMfcc (${nMfcc}) must be <= nMels (${nMels})`);
  const mel = melSpectrogram(x, { ...opts, nMels });
  return cepstra(powerToDb(mel, { topDb: opts.topDb }), nMfcc, opts.lifter ?? 0);
}

/**
 * Regression deltas along time (HTK, Kaldi, torchaudio.functional.compute_deltas):
 * d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum n^2), edges repeated; width = 2N + 1, default 5.
 */
export function deltas(f: Frames, width = 5): Frames {
  checkInt(width, 3, 'deltas', 'width');
  check(width % 2 === 1, 'deltas', `width must be odd; got ${width}`);
  const N = (width - 1) >> 1;
  let denom = 0;
  for (let n = 1; n <= N; n++) denom += n * n;
  denom *= 2;
  const { nFrames: T, dim: D } = f;
  const out = new Float32Array(T * D);
  const at = (t: number) => (t < 0 ? 0 : t >= T ? T - 1 : t);
  for (let t = 0; t < T; t++)
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let n = 1; n <= N; n++) acc += n * (f.data[at(t + n) * D + d]! - f.data[at(t - n) * D + d]!);
      out[t * D + d] = acc / denom;
    }
  return { data: out, nFrames: T, dim: D };
}

/** [c, delta(c), delta(delta(c)), ...] concatenated per frame: order 2 gives the classic 39-dim MFCC from 13. */
export function addDeltas(f: Frames, order = 2, width = 5): Frames {
  checkInt(order, 0, 'addDeltas', 'order');
  const parts: Frames[] = [f];
  for (let i = 0; i < order; i++) parts.push(deltas(parts[i]!, width));
  const D = f.dim * parts.length;
  const out = new Float32Array(f.nFrames * D);
  for (let t = 0; t < f.nFrames; t++)
    parts.forEach((p, i) => {
      out.set(p.data.subarray(t * f.dim, (t + 1) * f.dim), t * D + i * f.dim);
    });
  return { data: out, nFrames: f.nFrames, dim: D };
}

export interface CmvnOptions {
  /** Also divide by the standard deviation; default true. */
  variance?: boolean;
  /** Sliding window in frames, centred (Kaldi apply-cmvn-sliding --center); default: whole utterance. */
  window?: number;
  eps?: number;
}

/** Cepstral mean (and variance) normalisation per dimension, over the utterance or a sliding window. */
export function cmvn(f: Frames, opts: CmvnOptions = {}): Frames {
  const variance = opts.variance ?? true;
  const eps = opts.eps ?? 1e-10;
  const { nFrames: T, dim: D } = f;
  const out = new Float32Array(T * D);
  if (T === 0) return { data: out, nFrames: 0, dim: D };
  const win = opts.window;
  if (win !== undefined) checkInt(win, 1, 'cmvn', 'window');
  const s1 = new Float64Array(D);
  const s2 = new Float64Array(D);
  const add = (t: number, sign: number) => {
    for (let d = 0; d < D; d++) {
      const v = f.data[t * D + d]!;
      s1[d] += sign * v;
      s2[d] += sign * v * v;
    }
  };
  // Window [lo, hi) for frame t; the whole utterance when no window is given.
  const range = (t: number): [number, number] => {
    if (win === undefined || win >= T) return [0, T];
    let lo = t - (win >> 1);
    lo = Math.max(0, Math.min(lo, T - win));
    return [lo, lo + win];
  };
  let [clo, chi] = [0, 0];
  for (let t = 0; t < T; t++) {
    const [lo, hi] = range(t);
    while (chi < hi) add(chi++, 1);
    while (clo < lo) add(clo++, -1);
    const n = hi - lo;
    for (let d = 0; d < D; d++) {
      const mean = s1[d]! / n;
      let v = f.data[t * D + d]! - mean;
      if (variance) v /= Math.sqrt(Math.max(s2[d]! / n - mean * mean, 0) + eps);
      out[t * D + d] = v;
    }
  }
  return { data: out, nFrames: T, dim: D };
}

export interface FrameOptions {
  frameLength?: number;
  hopLength?: number;
  center?: boolean;
  padMode?: PadMode;
}

function frameReduce(
  x: ArrayLike<number>,
  opts: FrameOptions,
  fn: string,
  reduce: (sumSq: number, len: number) => number,
): Float32Array {
  const L = opts.frameLength ?? 2048;
  const hop = opts.hopLength ?? 512;
  checkInt(L, 1, fn, 'frameLength');
  checkInt(hop, 1, fn, 'hopLength');
  const center = opts.center ?? true;
  const mode = opts.padMode ?? 'constant';
  if (mode !== 'constant' && x.length === 0) throw new ValueError(`${fn}: cannot ${mode}-pad an empty signal`);
  const T = numFrames(x.length, L, hop, center);
  const off = center ? L >> 1 : 0;
  const out = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let acc = 0;
    const s = t * hop - off;
    for (let i = 0; i < L; i++) {
      const j = padIndex(s + i, x.length, mode);
      if (j >= 0) acc += x[j]! * x[j]!;
    }
    out[t] = reduce(acc, L);
  }
  return out;
}

/** Root-mean-square per frame (librosa.feature.rms; defaults frameLength 2048, hop 512, centred, zero pad). */
export function rms(x: ArrayLike<number>, opts: FrameOptions = {}): Float32Array {
  return frameReduce(x, opts, 'rms', (s, n) => Math.sqrt(s / n));
}

/** Energy per frame, sum of x^2; with `log`, ln(max(energy, floor)) as Kaldi's log-energy. */
export function frameEnergy(
  x: ArrayLike<number>,
  opts: FrameOptions & { log?: boolean; floor?: number } = {},
): Float32Array {
  const floor = opts.floor ?? 1e-10;
  return frameReduce(x, opts, 'frameEnergy', (s) => (opts.log ? Math.log(Math.max(s, floor)) : s));
}

/** L2 norm of each frame: FastPitch 1.1's energy target is this over the log-mel frame, averaged per token. */
export function frameNorm(f: Frames): Float32Array {
  const out = new Float32Array(f.nFrames);
  for (let t = 0; t < f.nFrames; t++) {
    let acc = 0;
    for (let d = 0; d < f.dim; d++) acc += f.data[t * f.dim + d]! ** 2;
    out[t] = Math.sqrt(acc);
  }
  return out;
}
