// Short-time Fourier transform and its inverse (weighted overlap-add), with librosa's / torch.stft's framing:
// frame t starts at t * hop (minus nFft/2 when `center`), the window of winLength samples is centred in nFft.
// Griffin & Lim (1984) give the least-squares inverse used by istft: sum_t w * frame_t / sum_t w^2.
import { check, checkInt, ValueError } from './errors.js';
import { FFT } from './fft.js';
import { type Frames, numFrames, type PadMode, padIndex } from './framing.js';
import { getWindow, padCenter, type WindowName } from './windows.js';

export interface StftOptions {
  /** FFT size, default 2048 (librosa). */
  nFft?: number;
  /** Samples between frames, default floor(winLength / 4). */
  hopLength?: number;
  /** Window length <= nFft, default nFft; the window is zero-padded to nFft, centred. */
  winLength?: number;
  /** A window name (periodic) or the window's samples; default 'hann'. */
  window?: WindowName | ArrayLike<number>;
  /** Pad nFft/2 on both sides so frame t is centred on sample t * hop; default true. */
  center?: boolean;
  /**
   * How `center` pads: default 'constant' (zeros), as librosa >= 0.10; torch.stft, torchaudio and FastPitch
   * use 'reflect'.
   */
  padMode?: PadMode;
}

/** A one-sided complex spectrogram, time-major: bin k of frame t is at [t * nBins + k]. */
export interface ComplexSpectrogram {
  re: Float32Array;
  im: Float32Array;
  nFrames: number;
  nBins: number;
}

/** Resolved STFT settings plus scratch: analyses one frame at a time, so long inputs never hold a full STFT. */
export class StftPlan {
  readonly nFft: number;
  readonly hopLength: number;
  readonly winLength: number;
  readonly center: boolean;
  readonly padMode: PadMode;
  readonly nBins: number;
  /** The window, zero-padded to nFft. */
  readonly window: Float64Array;
  readonly fft: FFT;
  /** Non-zero range of the padded window. */
  readonly w0: number;
  readonly w1: number;
  readonly frameBuf: Float64Array;
  /** Interleaved re, im of bins 0..nFft/2 after `analyze`. */
  readonly spec: Float64Array;

  constructor(opts: StftOptions = {}, fn = 'stft') {
    const nFft = opts.nFft ?? 2048;
    checkInt(nFft, 1, fn, 'nFft');
    const winLength = opts.winLength ?? nFft;
    checkInt(winLength, 1, fn, 'winLength');
    check(winLength <= nFft, fn, `winLength must be <= nFft; got winLength ${winLength}, nFft ${nFft}`);
    const hopLength = opts.hopLength ?? Math.max(1, Math.floor(winLength / 4));
    checkInt(hopLength, 1, fn, 'hopLength');
    const padMode = opts.padMode ?? 'constant';
    if (padMode !== 'constant' && padMode !== 'reflect' && padMode !== 'edge')
      throw new ValueError(`${fn}: padMode must be 'constant', 'reflect' or 'edge'; got ${JSON.stringify(padMode)}`);
    const win = opts.window ?? 'hann';
    const w = typeof win === 'string' ? getWindow(win, winLength) : Float64Array.from(win);
    check(w.length === winLength, fn, `window has ${w.length} samples; winLength is ${winLength}`);
    this.nFft = nFft;
    this.hopLength = hopLength;
    this.winLength = winLength;
    this.center = opts.center ?? true;
    this.padMode = padMode;
    this.nBins = (nFft >> 1) + 1;
    this.window = padCenter(w, nFft);
    let w0 = 0;
    let w1 = nFft;
    while (w0 < nFft && this.window[w0] === 0) w0++;
    while (w1 > w0 && this.window[w1 - 1] === 0) w1--;
    this.w0 = w0;
    this.w1 = w1;
    this.fft = new FFT(nFft);
    this.frameBuf = new Float64Array(nFft);
    this.spec = new Float64Array(2 * this.nBins + 2);
  }

  numFrames(n: number): number {
    return numFrames(n, this.nFft, this.hopLength, this.center);
  }

  /** Windows frame t of x and transforms it into `this.spec`. */
  analyze(x: ArrayLike<number>, t: number): Float64Array {
    const { nFft, w0, w1, window: w, frameBuf: buf } = this;
    const n = x.length;
    const start = t * this.hopLength - (this.center ? nFft >> 1 : 0);
    if (start + w0 >= 0 && start + w1 <= n) {
      for (let i = w0; i < w1; i++) buf[i] = x[start + i]! * w[i]!;
    } else {
      for (let i = w0; i < w1; i++) {
        const j = padIndex(start + i, n, this.padMode);
        buf[i] = j < 0 ? 0 : x[j]! * w[i]!;
      }
    }
    this.fft.rfft(this.spec, buf);
    return this.spec;
  }
}

/** @internal Throws when a signal cannot be framed with this plan. */
export function checkSignal(x: ArrayLike<number>, plan: StftPlan, fn: string): void {
  if (plan.center && plan.padMode !== 'constant' && x.length === 0)
    throw new ValueError(`${fn}: cannot ${plan.padMode}-pad an empty signal`);
  if (!plan.center && x.length < plan.nFft)
    throw new ValueError(`${fn}: signal of ${x.length} samples is shorter than nFft = ${plan.nFft} (center: false)`);
}

/** Complex STFT of a mono signal (librosa.stft / torch.stft with return_complex, one-sided). */
export function stft(x: ArrayLike<number>, opts: StftOptions = {}): ComplexSpectrogram {
  const plan = new StftPlan(opts, 'stft');
  checkSignal(x, plan, 'stft');
  const T = plan.numFrames(x.length);
  const B = plan.nBins;
  const re = new Float32Array(T * B);
  const im = new Float32Array(T * B);
  for (let t = 0; t < T; t++) {
    const s = plan.analyze(x, t);
    for (let k = 0; k < B; k++) {
      re[t * B + k] = s[2 * k]!;
      im[t * B + k] = s[2 * k + 1]!;
    }
  }
  return { re, im, nFrames: T, nBins: B };
}

/** |STFT|^power per frame and bin; power 2 (default, as librosa and torchaudio) or 1 (magnitude). */
export function spectrogram(x: ArrayLike<number>, opts: StftOptions & { power?: number } = {}): Frames {
  const plan = new StftPlan(opts, 'spectrogram');
  checkSignal(x, plan, 'spectrogram');
  const power = opts.power ?? 2;
  check(power > 0, 'spectrogram', `power must be > 0; got ${power}`);
  const T = plan.numFrames(x.length);
  const B = plan.nBins;
  const data = new Float32Array(T * B);
  for (let t = 0; t < T; t++) {
    const s = plan.analyze(x, t);
    for (let k = 0; k < B; k++) {
      const p = s[2 * k]! * s[2 * k]! + s[2 * k + 1]! * s[2 * k + 1]!;
      data[t * B + k] = power === 2 ? p : power === 1 ? Math.sqrt(p) : p ** (power / 2);
    }
  }
  return { data, nFrames: T, dim: B };
}

export interface IstftOptions extends Omit<StftOptions, 'padMode'> {
  /** Trim or zero-pad the output to exactly this many samples. */
  length?: number;
}

/**
 * Inverse STFT by weighted overlap-add, divided by the summed squared window where it exceeds 1e-11
 * (torch.istft / librosa.istft). nFft defaults to 2 * (nBins - 1).
 */
export function istft(spec: ComplexSpectrogram, opts: IstftOptions = {}): Float32Array {
  const nFft = opts.nFft ?? 2 * (spec.nBins - 1);
  const plan = new StftPlan({ ...opts, nFft }, 'istft');
  check(plan.nBins === spec.nBins, 'istft', `spectrogram has ${spec.nBins} bins; nFft = ${nFft} needs ${plan.nBins}`);
  check(spec.re.length === spec.nFrames * spec.nBins, 'istft', 're must hold nFrames x nBins values');
  const { hopLength: hop, window: w } = plan;
  const T = spec.nFrames;
  const B = spec.nBins;
  const full = nFft + hop * (T - 1);
  const y = new Float64Array(Math.max(0, full));
  const wss = new Float64Array(y.length);
  const buf = new Float64Array(2 * B);
  const frameOut = new Float64Array(nFft);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < B; k++) {
      buf[2 * k] = spec.re[t * B + k]!;
      buf[2 * k + 1] = spec.im[t * B + k]!;
    }
    plan.fft.irfft(frameOut, buf);
    const o = t * hop;
    for (let i = plan.w0; i < plan.w1; i++) {
      y[o + i] += frameOut[i]! * w[i]!;
      wss[o + i] += w[i]! * w[i]!;
    }
  }
  const start = plan.center ? nFft >> 1 : 0;
  let len = opts.length ?? (plan.center ? Math.max(0, full - 2 * start) : full);
  len = Math.max(0, len);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    const j = start + i;
    if (j >= y.length) break;
    out[i] = wss[j]! > 1e-11 ? y[j]! / wss[j]! : y[j]!;
  }
  return out;
}
