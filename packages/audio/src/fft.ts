// FFT plans for any size: powers of two use fft.js (radix-4, pure JS); other sizes (n_fft = 400 is the
// 25 ms window at 16 kHz) use Bluestein's chirp-z algorithm on top of a power-of-two plan.
// Bluestein, "A linear filtering approach to the computation of discrete Fourier transform", 1970.
// Conventions as numpy.fft: forward unnormalised, inverse scaled by 1/n; spectra are interleaved re, im.
import FFTJS from 'fft.js';
import { ValueError } from './errors.js';

const isPow2 = (n: number) => (n & (n - 1)) === 0;

interface ComplexPlan {
  /** out = DFT(inp) (or the inverse, scaled by 1/n); both interleaved, length 2n; inp is left untouched. */
  transform(out: Float64Array, inp: Float64Array, inverse: boolean): void;
}

class Pow2Plan implements ComplexPlan {
  readonly f: FFTJS;
  constructor(n: number) {
    this.f = new FFTJS(n);
  }
  transform(out: Float64Array, inp: Float64Array, inverse: boolean): void {
    if (inverse) this.f.inverseTransform(out, inp);
    else this.f.transform(out, inp);
  }
}

class BluesteinPlan implements ComplexPlan {
  readonly n: number;
  readonly m: number;
  readonly inner: Pow2Plan;
  /** chirp w_k = exp(-i pi k^2 / n), interleaved */
  readonly w: Float64Array;
  /** FFT of the conjugate chirp, wrapped to length m */
  readonly bHat: Float64Array;
  readonly a: Float64Array;
  readonly aHat: Float64Array;
  constructor(n: number) {
    this.n = n;
    let m = 1;
    while (m < 2 * n - 1) m <<= 1;
    this.m = m;
    this.inner = new Pow2Plan(m);
    this.w = new Float64Array(2 * n);
    for (let k = 0; k < n; k++) {
      // k^2 mod 2n keeps the angle small and exact for large k
      const ang = (Math.PI * ((k * k) % (2 * n))) / n;
      this.w[2 * k] = Math.cos(ang);
      this.w[2 * k + 1] = -Math.sin(ang);
    }
    const b = new Float64Array(2 * m);
    for (let k = 0; k < n; k++) {
      b[2 * k] = this.w[2 * k]!;
      b[2 * k + 1] = -this.w[2 * k + 1]!;
      if (k > 0) {
        b[2 * (m - k)] = this.w[2 * k]!;
        b[2 * (m - k) + 1] = -this.w[2 * k + 1]!;
      }
    }
    this.bHat = new Float64Array(2 * m);
    this.inner.transform(this.bHat, b, false);
    this.a = new Float64Array(2 * m);
    this.aHat = new Float64Array(2 * m);
  }
  transform(out: Float64Array, inp: Float64Array, inverse: boolean): void {
    const { n, m, w, a, aHat, bHat } = this;
    // The inverse is conj(DFT(conj(x))) / n.
    const s = inverse ? -1 : 1;
    a.fill(0);
    for (let k = 0; k < n; k++) {
      const xr = inp[2 * k]!;
      const xi = s * inp[2 * k + 1]!;
      const wr = w[2 * k]!;
      const wi = w[2 * k + 1]!;
      a[2 * k] = xr * wr - xi * wi;
      a[2 * k + 1] = xr * wi + xi * wr;
    }
    this.inner.transform(aHat, a, false);
    for (let k = 0; k < m; k++) {
      const ar = aHat[2 * k]!;
      const ai = aHat[2 * k + 1]!;
      const br = bHat[2 * k]!;
      const bi = bHat[2 * k + 1]!;
      aHat[2 * k] = ar * br - ai * bi;
      aHat[2 * k + 1] = ar * bi + ai * br;
    }
    this.inner.transform(a, aHat, true);
    const scale = inverse ? 1 / n : 1;
    for (let k = 0; k < n; k++) {
      const cr = a[2 * k]!;
      const ci = a[2 * k + 1]!;
      const wr = w[2 * k]!;
      const wi = w[2 * k + 1]!;
      out[2 * k] = (cr * wr - ci * wi) * scale;
      out[2 * k + 1] = s * (cr * wi + ci * wr) * scale;
    }
  }
}

/** A reusable FFT plan of size n (any n >= 1). Not safe to share between concurrent callers: it owns scratch. */
export class FFT {
  readonly n: number;
  readonly plan: ComplexPlan | null;
  readonly pow2: boolean;
  readonly tmpIn: Float64Array;
  readonly tmpOut: Float64Array;
  /** For power-of-two n >= 4: a plan of size n/2 and twiddles exp(+2 pi i k / n), for the packed inverse. */
  readonly half: Pow2Plan | null;
  readonly twiddle: Float64Array | null;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new ValueError(`FFT: size must be an integer >= 1; got ${n}`);
    this.n = n;
    this.pow2 = n >= 2 && isPow2(n);
    this.plan = n === 1 ? null : this.pow2 ? new Pow2Plan(n) : new BluesteinPlan(n);
    this.tmpIn = new Float64Array(2 * n);
    this.tmpOut = new Float64Array(2 * n);
    if (this.pow2 && n >= 4) {
      this.half = new Pow2Plan(n >> 1);
      this.twiddle = new Float64Array(n);
      for (let k = 0; k < n >> 1; k++) {
        this.twiddle[2 * k] = Math.cos((2 * Math.PI * k) / n);
        this.twiddle[2 * k + 1] = Math.sin((2 * Math.PI * k) / n);
      }
    } else {
      this.half = null;
      this.twiddle = null;
    }
  }

  /** Complex DFT (or inverse DFT scaled by 1/n) of interleaved `inp` (length 2n) into `out`. */
  complex(out: Float64Array, inp: Float64Array, inverse = false): void {
    if (!this.plan) {
      out[0] = inp[0]!;
      out[1] = inp[1]!;
      return;
    }
    this.plan.transform(out, inp, inverse);
  }

  /** Real-input DFT: `out` (length >= n + 2) receives bins 0..n/2 interleaved, like numpy.fft.rfft. */
  rfft(out: Float64Array, inp: ArrayLike<number>): void {
    const n = this.n;
    const half = n >> 1;
    if (this.pow2) {
      const p = this.plan as Pow2Plan;
      const src = inp instanceof Float64Array ? inp : Float64Array.from(inp as ArrayLike<number>);
      p.f.realTransform(this.tmpOut, src);
      for (let i = 0; i < 2 * (half + 1); i++) out[i] = this.tmpOut[i]!;
      return;
    }
    const t = this.tmpIn;
    for (let i = 0; i < n; i++) {
      t[2 * i] = inp[i]!;
      t[2 * i + 1] = 0;
    }
    this.complex(this.tmpOut, t, false);
    for (let i = 0; i < 2 * (half + 1); i++) out[i] = this.tmpOut[i]!;
  }

  /**
   * Inverse of rfft: `spec` holds bins 0..n/2 interleaved; writes n real samples (scaled by 1/n) into `out`.
   * Like numpy.fft.irfft, the imaginary parts of DC (and of Nyquist, for even n) are ignored.
   */
  irfft(out: Float64Array, spec: ArrayLike<number>): void {
    const n = this.n;
    const half = n >> 1;
    const t = this.tmpIn;
    if (this.half) {
      // Packed inverse: with E = (X[k] + conj X[h-k]) / 2 and O = (X[k] - conj X[h-k]) / 2 * exp(2 pi i k / n),
      // the size-h inverse of E + iO is x[2m] + i x[2m+1] (h = n/2).
      const tw = this.twiddle!;
      for (let k = 0; k < half; k++) {
        const ar = spec[2 * k]!;
        const ai = k === 0 ? 0 : spec[2 * k + 1]!;
        const br = spec[2 * (half - k)]!;
        const bi = k === 0 ? 0 : -spec[2 * (half - k) + 1]!; // conj X[h-k]; DC and Nyquist imag ignored
        const er = (ar + br) / 2;
        const ei = (ai + bi) / 2;
        const dr = (ar - br) / 2;
        const di = (ai - bi) / 2;
        const wr = tw[2 * k]!;
        const wi = tw[2 * k + 1]!;
        const or = dr * wr - di * wi;
        const oi = dr * wi + di * wr;
        t[2 * k] = er - oi;
        t[2 * k + 1] = ei + or;
      }
      this.half.transform(this.tmpOut, t, true);
      for (let m = 0; m < half; m++) {
        out[2 * m] = this.tmpOut[2 * m]!;
        out[2 * m + 1] = this.tmpOut[2 * m + 1]!;
      }
      return;
    }
    t[0] = spec[0]!;
    t[1] = 0;
    for (let k = 1; k < n; k++) {
      if (k <= half) {
        t[2 * k] = spec[2 * k]!;
        t[2 * k + 1] = spec[2 * k + 1]!;
      } else {
        t[2 * k] = spec[2 * (n - k)]!;
        t[2 * k + 1] = -spec[2 * (n - k) + 1]!;
      }
    }
    if (n % 2 === 0) t[2 * half + 1] = 0;
    this.complex(this.tmpOut, t, true);
    for (let i = 0; i < n; i++) out[i] = this.tmpOut[2 * i]!;
  }
}
