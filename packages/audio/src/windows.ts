// Analysis windows. Periodic by default ("fftbins=True" in scipy/librosa, torch.hann_window's default):
// a periodic window of length N is the symmetric window of length N + 1 without its last sample.
import { ValueError } from './errors.js';

export type WindowName = 'hann' | 'hamming' | 'blackman' | 'povey' | 'rectangular';

/** A window of length n; `periodic` (default true) suits spectral analysis, false gives the symmetric window. */
export function getWindow(name: WindowName, n: number, opts: { periodic?: boolean } = {}): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new ValueError(`getWindow: length must be an integer >= 1; got ${n}`);
  const periodic = opts.periodic ?? true;
  const w = new Float64Array(n);
  if (n === 1) {
    w[0] = 1;
    return w;
  }
  const d = periodic ? n : n - 1;
  const c = (2 * Math.PI) / d;
  for (let i = 0; i < n; i++) {
    switch (name) {
      case 'hann':
        w[i] = 0.5 - 0.5 * Math.cos(c * i);
        break;
      case 'hamming':
        w[i] = 0.54 - 0.46 * Math.cos(c * i);
        break;
      case 'blackman':
        w[i] = 0.42 - 0.5 * Math.cos(c * i) + 0.08 * Math.cos(2 * c * i);
        break;
      case 'povey': // Kaldi: a Hann window raised to 0.85, always symmetric
        w[i] = (0.5 - 0.5 * Math.cos(((2 * Math.PI) / (n - 1)) * i)) ** 0.85;
        break;
      case 'rectangular':
        w[i] = 1;
        break;
      default:
        throw new ValueError(
          `getWindow: unknown window ${JSON.stringify(name)}; expected hann, hamming, blackman, povey or rectangular`,
        );
    }
  }
  return w;
}

/** Zero-pads `w` on both sides to length `size`, centred (librosa.util.pad_center). */
export function padCenter(w: ArrayLike<number>, size: number): Float64Array {
  if (w.length > size) throw new ValueError(`padCenter: window length ${w.length} exceeds target size ${size}`);
  const out = new Float64Array(size);
  const left = (size - w.length) >> 1;
  for (let i = 0; i < w.length; i++) out[left + i] = w[i]!;
  return out;
}
