// Pre-emphasis, padding and framing: the time-domain steps before a spectrum.
import { checkInt, ValueError } from './errors.js';

export type PadMode = 'constant' | 'reflect' | 'edge';

/** y[n] = x[n] - coef * x[n-1], y[0] = x[0] (torchaudio.functional.preemphasis). */
export function preEmphasis(x: ArrayLike<number>, coef = 0.97): Float32Array {
  const y = new Float32Array(x.length);
  if (x.length) y[0] = x[0]!;
  for (let i = 1; i < x.length; i++) y[i] = x[i]! - coef * x[i - 1]!;
  return y;
}

/** Inverse of preEmphasis: y[n] = x[n] + coef * y[n-1]. */
export function deEmphasis(x: ArrayLike<number>, coef = 0.97): Float32Array {
  const y = new Float32Array(x.length);
  let prev = 0;
  for (let i = 0; i < x.length; i++) y[i] = prev = x[i]! + coef * prev;
  return y;
}

/**
 * The sample at index i (possibly outside [0, n)) of x extended by `mode`: 'constant' gives 0, 'edge' repeats the
 * end samples, 'reflect' mirrors without repeating the edge (numpy's 'reflect'), repeated for long pads.
 */
export function padIndex(i: number, n: number, mode: PadMode): number {
  if (i >= 0 && i < n) return i;
  if (mode === 'constant') return -1;
  if (mode === 'edge' || n === 1) return i < 0 ? 0 : n - 1;
  const period = 2 * (n - 1);
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

/** Pads x with `left` and `right` samples. */
export function pad(x: ArrayLike<number>, left: number, right: number, mode: PadMode = 'constant'): Float32Array {
  checkInt(left, 0, 'pad', 'left');
  checkInt(right, 0, 'pad', 'right');
  const n = x.length;
  if (n === 0 && mode !== 'constant') throw new ValueError(`pad: cannot ${mode}-pad an empty signal`);
  const out = new Float32Array(n + left + right);
  for (let i = 0; i < out.length; i++) {
    const j = padIndex(i - left, n, mode);
    out[i] = j < 0 ? 0 : x[j]!;
  }
  return out;
}

/** Number of frames: with `center`, 1 + floor(n / hop); otherwise 1 + floor((n - frameLength) / hop), or 0. */
export function numFrames(n: number, frameLength: number, hopLength: number, center: boolean): number {
  if (center) return 1 + Math.floor(n / hopLength);
  return n < frameLength ? 0 : 1 + Math.floor((n - frameLength) / hopLength);
}

/** A row-major matrix of per-frame features: `data[t * dim + k]`. */
export interface Frames {
  data: Float32Array;
  nFrames: number;
  dim: number;
}

/**
 * Slices x into frames of `frameLength` every `hopLength` samples. With `center` (default false here, as
 * librosa.util.frame), x is first padded by frameLength/2 on both sides so frame t is centred on t * hop.
 */
export function frame(
  x: ArrayLike<number>,
  frameLength: number,
  hopLength: number,
  opts: { center?: boolean; padMode?: PadMode } = {},
): Frames {
  checkInt(frameLength, 1, 'frame', 'frameLength');
  checkInt(hopLength, 1, 'frame', 'hopLength');
  const center = opts.center ?? false;
  const mode = opts.padMode ?? 'constant';
  const n = x.length;
  const T = numFrames(n, frameLength, hopLength, center);
  const off = center ? frameLength >> 1 : 0;
  const data = new Float32Array(T * frameLength);
  for (let t = 0; t < T; t++) {
    const s = t * hopLength - off;
    for (let i = 0; i < frameLength; i++) {
      const j = padIndex(s + i, n, mode);
      data[t * frameLength + i] = j < 0 ? 0 : x[j]!;
    }
  }
  return { data, nFrames: T, dim: frameLength };
}
