// Phase reconstruction from a magnitude spectrogram.
// Griffin & Lim, "Signal estimation from modified short-time Fourier transform", IEEE TASSP 1984; with the
// momentum of Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", WASPAA 2013 (momentum 0.99 as
// torchaudio.functional.griffinlim and librosa.griffinlim). Mel input is first mapped to a non-negative linear
// spectrogram by multiplicative NNLS updates (Lee & Seung 2001), in the role of librosa.feature.inverse.mel_to_stft.
import { check, checkInt } from './errors.js';
import type { Frames } from './framing.js';
import { type MelFilterbank, type MelOptions, melFilterbank } from './mel.js';
import { type StftOptions, StftPlan } from './stft.js';

export interface GriffinLimOptions extends StftOptions {
  /** Iterations, default 32 (torchaudio, librosa). */
  nIter?: number;
  /** Fast Griffin-Lim momentum in [0, 1), default 0.99; 0 is the original algorithm. */
  momentum?: number;
  /** Output length in samples, default hop * (frames - 1) (a centred STFT). */
  length?: number;
  /** Initial phases: 'random' (default, seeded) or 'zeros'. */
  init?: 'random' | 'zeros';
  seed?: number;
  /** The input is |STFT|^power; default 1 (magnitude). */
  power?: number;
  /** Called after each iteration with the spectral convergence of the current estimate. */
  onIteration?: (iteration: number, spectralConvergence: number) => void;
}

/** ||S - |STFT(x)|||_F / ||S||_F for a magnitude spectrogram S [T x nBins] and a signal x. */
export function spectralConvergence(mag: Frames, x: ArrayLike<number>, opts: StftOptions = {}): number {
  const plan = new StftPlan({ ...opts, nFft: opts.nFft ?? 2 * (mag.dim - 1) }, 'spectralConvergence');
  check(plan.nBins === mag.dim, 'spectralConvergence', `spectrogram has ${mag.dim} bins; nFft needs ${plan.nBins}`);
  let num = 0;
  let den = 0;
  for (let t = 0; t < mag.nFrames; t++) {
    const s = plan.analyze(x, t);
    for (let k = 0; k < mag.dim; k++) {
      const m = mag.data[t * mag.dim + k]!;
      const r = Math.sqrt(s[2 * k]! * s[2 * k]! + s[2 * k + 1]! * s[2 * k + 1]!);
      num += (m - r) ** 2;
      den += m * m;
    }
  }
  return Math.sqrt(num / (den || 1));
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * Estimates a signal whose STFT magnitude is `mag` [T x nBins] (nFft = 2 (nBins - 1) unless given), by
 * alternating projections with momentum (torchaudio.functional.griffinlim with rand_init=False is `init: 'zeros',
 * padMode: 'reflect'`). The STFT settings must be those that made `mag`.
 */
export function griffinLim(mag: Frames, opts: GriffinLimOptions = {}): Float32Array {
  const nFft = opts.nFft ?? 2 * (mag.dim - 1);
  const plan = new StftPlan({ ...opts, nFft }, 'griffinLim');
  const B = plan.nBins;
  check(B === mag.dim, 'griffinLim', `spectrogram has ${mag.dim} bins; nFft = ${nFft} needs ${B}`);
  const T = mag.nFrames;
  check(mag.data.length === T * B, 'griffinLim', 'data must hold nFrames x dim values');
  const nIter = opts.nIter ?? 32;
  checkInt(nIter, 0, 'griffinLim', 'nIter');
  const momentum = opts.momentum ?? 0.99;
  check(momentum >= 0 && momentum < 1, 'griffinLim', `momentum must be in [0, 1); got ${momentum}`);
  const power = opts.power ?? 1;
  check(power > 0, 'griffinLim', `power must be > 0; got ${power}`);
  const hop = plan.hopLength;
  const center = plan.center;
  const half = center ? nFft >> 1 : 0;
  const length = opts.length ?? (center ? hop * (T - 1) : nFft + hop * (T - 1));
  checkInt(length, 0, 'griffinLim', 'length');

  const S = new Float64Array(T * B);
  for (let i = 0; i < S.length; i++) S[i] = power === 1 ? mag.data[i]! : mag.data[i]! ** (1 / power);
  // Unit phasors (re, im) of the current estimate and the previous rebuilt spectrogram (for momentum).
  const pr = new Float64Array(T * B);
  const pi = new Float64Array(T * B);
  const prevR = new Float64Array(T * B);
  const prevI = new Float64Array(T * B);
  if ((opts.init ?? 'random') === 'random') {
    const r = rng(opts.seed ?? 0);
    for (let i = 0; i < pr.length; i++) {
      const a = 2 * Math.PI * r();
      pr[i] = Math.cos(a);
      pi[i] = Math.sin(a);
    }
  } else pr.fill(1);

  const w = plan.window;
  const full = nFft + hop * (T - 1);
  const wss = new Float64Array(full);
  for (let t = 0; t < T; t++) for (let i = plan.w0; i < plan.w1; i++) wss[t * hop + i] += w[i]! * w[i]!;
  const ola = new Float64Array(full);
  const x = new Float64Array(length);
  const buf = new Float64Array(2 * B);
  const frame = new Float64Array(nFft);
  const alpha = momentum / (1 + momentum);

  const synthesize = () => {
    ola.fill(0);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < B; k++) {
        const s = S[t * B + k]!;
        buf[2 * k] = s * pr[t * B + k]!;
        buf[2 * k + 1] = s * pi[t * B + k]!;
      }
      plan.fft.irfft(frame, buf);
      const o = t * hop;
      for (let i = plan.w0; i < plan.w1; i++) ola[o + i] += frame[i]! * w[i]!;
    }
    x.fill(0);
    for (let i = 0; i < length; i++) {
      const j = i + half;
      if (j >= full) break;
      x[i] = wss[j]! > 1e-11 ? ola[j]! / wss[j]! : ola[j]!;
    }
  };

  for (let it = 0; it < nIter; it++) {
    synthesize();
    let num = 0;
    let den = 0;
    for (let t = 0; t < T; t++) {
      const s = plan.analyze(x, t);
      for (let k = 0; k < B; k++) {
        const q = t * B + k;
        const rr = s[2 * k]!;
        const ri = s[2 * k + 1]!;
        if (opts.onIteration) {
          num += (S[q]! - Math.sqrt(rr * rr + ri * ri)) ** 2;
          den += S[q]! ** 2;
        }
        const ar = rr - alpha * prevR[q]!;
        const ai = ri - alpha * prevI[q]!;
        const m = Math.sqrt(ar * ar + ai * ai) + 1e-16;
        pr[q] = ar / m;
        pi[q] = ai / m;
        prevR[q] = rr;
        prevI[q] = ri;
      }
    }
    opts.onIteration?.(it, Math.sqrt(num / (den || 1)));
  }
  synthesize();
  return Float32Array.from(x);
}

export interface MelToLinearOptions {
  /** Multiplicative NNLS iterations, default 30. */
  nIter?: number;
}

/**
 * A non-negative linear spectrogram S [T x nBins] with fb S ~= mel, by multiplicative updates
 * S <- S * (fb^T mel) / (fb^T fb S), started from fb^T mel. Bins no band covers stay 0.
 */
export function melToLinear(mel: Frames, fb: MelFilterbank, opts: MelToLinearOptions = {}): Frames {
  check(mel.dim === fb.nMels, 'melToLinear', `mel has ${mel.dim} bands; the filterbank has ${fb.nMels}`);
  const nIter = opts.nIter ?? 30;
  checkInt(nIter, 0, 'melToLinear', 'nIter');
  const { nMels: M, nBins: B } = fb;
  const T = mel.nFrames;
  const out = new Float32Array(T * B);
  const s = new Float64Array(B);
  const num = new Float64Array(B);
  const fs = new Float64Array(M);
  const den = new Float64Array(B);
  const mulT = (v: ArrayLike<number>, o: number, dst: Float64Array) => {
    dst.fill(0);
    for (let m = 0; m < M; m++) {
      const wts = fb.weights[m]!;
      const st = fb.start[m]!;
      const vm = v[o + m]!;
      for (let j = 0; j < wts.length; j++) dst[st + j] += wts[j]! * vm;
    }
  };
  for (let t = 0; t < T; t++) {
    mulT(mel.data, t * M, num);
    for (let k = 0; k < B; k++) s[k] = Math.max(num[k]!, 0);
    for (let it = 0; it < nIter; it++) {
      for (let m = 0; m < M; m++) {
        const wts = fb.weights[m]!;
        const st = fb.start[m]!;
        let acc = 0;
        for (let j = 0; j < wts.length; j++) acc += wts[j]! * s[st + j]!;
        fs[m] = acc;
      }
      mulT(fs, 0, den);
      for (let k = 0; k < B; k++) s[k] = den[k]! > 0 ? (s[k]! * num[k]!) / den[k]! : 0;
    }
    out.set(s, t * B);
  }
  return { data: out, nFrames: T, dim: B };
}

/**
 * Griffin-Lim from a mel spectrogram: melToLinear (NNLS) then fast Griffin-Lim. `power` is that of the mel
 * (2 for melSpectrogram's default, 1 for FastPitch's magnitude mels after exp of the log-mel).
 */
export function griffinLimFromMel(
  mel: Frames,
  opts: GriffinLimOptions & MelOptions & { nnlsIter?: number },
): Float32Array {
  const nFft = opts.nFft ?? 2048;
  const fb = melFilterbank({ ...opts, nFft, nMels: mel.dim });
  const power = opts.power ?? 2;
  const lin = melToLinear(mel, fb, { nIter: opts.nnlsIter }); // same power as the mel
  return griffinLim(lin, { ...opts, nFft, power });
}
