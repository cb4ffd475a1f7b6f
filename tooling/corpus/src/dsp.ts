// The little signal processing the builder needs (it must not wait for @tessera/audio): 16-bit WAV writing,
// band-limited resampling by a Kaiser-windowed sinc in polyphase form, and seeded white noise at a given SNR.
import { createRng } from '@tessera/datasets';

/** Mono 16-bit PCM WAV. Samples in [-1, 1] (Float32Array) or already int16. */
export function wavBytes(samples: Float32Array | Int16Array, sampleRate: number): Uint8Array {
  const n = samples.length;
  const b = new Uint8Array(44 + 2 * n);
  const dv = new DataView(b.buffer);
  const tag = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) b[o + i] = s.charCodeAt(i);
  };
  tag(0, 'RIFF');
  dv.setUint32(4, 36 + 2 * n, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true);
  dv.setUint16(22, 1, true);
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * 2, true);
  dv.setUint16(32, 2, true);
  dv.setUint16(34, 16, true);
  tag(36, 'data');
  dv.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) {
    const v = samples instanceof Int16Array ? samples[i]! : Math.round(Math.max(-1, Math.min(1, samples[i]!)) * 32767);
    dv.setInt16(44 + 2 * i, v, true);
  }
  return b;
}

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/**
 * Resamples by L/M = to/from with a Kaiser-windowed sinc (β = 8.6, 32 zero crossings a side, cut-off at 0.95 of the
 * lower Nyquist frequency): about what sox's default quality gives for speech.
 */
export function resample(x: Float32Array, from: number, to: number, zeros = 32): Float32Array {
  if (from === to) return x.slice();
  const g = gcd(from, to);
  const L = to / g;
  const M = from / g;
  const cutoff = 0.95 * Math.min(1, to / from); // in units of the input Nyquist frequency
  const half = Math.ceil(zeros / cutoff); // taps a side, in input samples
  const beta = 8.6;
  const i0b = besselI0(beta);
  // table[p][k]: weight of input sample (base - half + 1 + k) for output phase p
  const taps = 2 * half;
  const table = new Float32Array(L * taps);
  for (let p = 0; p < L; p++) {
    const frac = p / L; // output time = base + frac, in input samples
    for (let k = 0; k < taps; k++) {
      const t = k - half + 1 - frac;
      const r = t / (half + 1);
      const w = Math.abs(r) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / i0b;
      const a = Math.PI * cutoff * t;
      table[p * taps + k] = cutoff * (t === 0 ? 1 : Math.sin(a) / a) * w;
    }
  }
  const n = Math.floor((x.length * L) / M);
  const y = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const pos = j * M;
    const base = Math.floor(pos / L);
    const p = pos - base * L;
    let acc = 0;
    const off = p * taps;
    const start = base - half + 1;
    for (let k = 0; k < taps; k++) {
      const i = start + k;
      if (i >= 0 && i < x.length) acc += x[i]! * table[off + k]!;
    }
    y[j] = acc;
  }
  return y;
}

/** Adds white Gaussian noise so that signal power / noise power = snrDb (signal power over non-silent samples). */
export function addNoise(x: Float32Array, snrDb: number, seed: number): Float32Array {
  let p = 0;
  let m = 0;
  for (const v of x) {
    if (Math.abs(v) > 1e-4) {
      p += v * v;
      m++;
    }
  }
  const sigma = m ? Math.sqrt(p / m / 10 ** (snrDb / 10)) : 0;
  const rng = createRng(seed);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += 2) {
    const u = Math.max(rng(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * sigma;
    const th = 2 * Math.PI * rng();
    y[i] = x[i]! + r * Math.cos(th);
    if (i + 1 < x.length) y[i + 1] = x[i + 1]! + r * Math.sin(th);
  }
  return y;
}
