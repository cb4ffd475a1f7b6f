// FFT plans for any size: powers of two use fft.js (radix-4, pure JS); sizes whose prime factors are all small
// (n_fft = 400 is the 25 ms window at 16 kHz) use our mixed-radix Stockham FFT; others use Bluestein's chirp-z
// algorithm on a power-of-two plan. Real transforms of even size pack two real samples into one complex one.
// Stockham autosort: Cochran et al., "What is the fast Fourier transform?", Proc. IEEE 1967; Bluestein, "A linear
// filtering approach to the computation of discrete Fourier transform", 1970.
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

const MAX_RADIX = 31;

/** Prime factors of n with 4s first (fewer passes), or null when a factor exceeds MAX_RADIX. */
function factorize(n: number): number[] | null {
  const f: number[] = [];
  while (n % 4 === 0) {
    f.push(4);
    n /= 4;
  }
  for (let p = 2; p <= MAX_RADIX && n > 1; p++) {
    while (n % p === 0) {
      f.push(p);
      n /= p;
    }
  }
  return n === 1 ? f : null;
}

interface Stage {
  radix: number;
  /** length of the sub-transform at this stage (n / product of earlier radices) */
  len: number;
  /** stride = product of earlier radices */
  stride: number;
  /** twiddles w^(p k), w = exp(-2 pi i / len), p < len / radix, k < radix; interleaved */
  tw: Float64Array;
}

/** Mixed-radix decimation-in-frequency Stockham FFT: natural order in and out, no bit reversal. */
class MixedRadixPlan implements ComplexPlan {
  readonly n: number;
  readonly stages: Stage[];
  readonly bufA: Float64Array;
  readonly bufB: Float64Array;
  /** exp(-2 pi i j / r) for the generic radix butterflies, per radix */
  readonly roots = new Map<number, Float64Array>();
  readonly acc: Float64Array;

  constructor(n: number, factors: number[]) {
    this.n = n;
    this.stages = [];
    let len = n;
    let stride = 1;
    for (const r of factors) {
      const m = len / r;
      const tw = new Float64Array(2 * m * r);
      for (let p = 0; p < m; p++)
        for (let k = 0; k < r; k++) {
          const a = (-2 * Math.PI * ((p * k) % len)) / len;
          tw[2 * (p * r + k)] = Math.cos(a);
          tw[2 * (p * r + k) + 1] = Math.sin(a);
        }
      this.stages.push({ radix: r, len, stride, tw });
      if (r !== 2 && r !== 3 && r !== 4 && r !== 5 && !this.roots.has(r)) {
        const w = new Float64Array(2 * r);
        for (let j = 0; j < r; j++) {
          w[2 * j] = Math.cos((-2 * Math.PI * j) / r);
          w[2 * j + 1] = Math.sin((-2 * Math.PI * j) / r);
        }
        this.roots.set(r, w);
      }
      len = m;
      stride *= r;
    }
    this.bufA = new Float64Array(2 * n);
    this.bufB = new Float64Array(2 * n);
    this.acc = new Float64Array(2 * MAX_RADIX);
  }

  transform(out: Float64Array, inp: Float64Array, inverse: boolean): void {
    const n = this.n;
    let x = this.bufA;
    let y = this.bufB;
    // The inverse is conj(DFT(conj(x))) / n.
    if (inverse)
      for (let i = 0; i < 2 * n; i += 2) {
        x[i] = inp[i]!;
        x[i + 1] = -inp[i + 1]!;
      }
    else x.set(inp.subarray(0, 2 * n));
    for (const st of this.stages) {
      this.stage(st, x, y);
      const t = x;
      x = y;
      y = t;
    }
    if (inverse)
      for (let i = 0; i < 2 * n; i += 2) {
        out[i] = x[i]! / n;
        out[i + 1] = -x[i + 1]! / n;
      }
    else out.set(x.subarray(0, 2 * n));
  }

  private stage(st: Stage, x: Float64Array, y: Float64Array): void {
    const { radix: r, len, stride: s, tw } = st;
    const m = len / r;
    const sm = s * m;
    if (r === 4) {
      for (let p = 0; p < m; p++) {
        const w1r = tw[2 * (p * 4 + 1)]!;
        const w1i = tw[2 * (p * 4 + 1) + 1]!;
        const w2r = tw[2 * (p * 4 + 2)]!;
        const w2i = tw[2 * (p * 4 + 2) + 1]!;
        const w3r = tw[2 * (p * 4 + 3)]!;
        const w3i = tw[2 * (p * 4 + 3) + 1]!;
        for (let q = 0; q < s; q++) {
          const i0 = 2 * (q + s * p);
          const a0r = x[i0]!;
          const a0i = x[i0 + 1]!;
          const a1r = x[i0 + 2 * sm]!;
          const a1i = x[i0 + 2 * sm + 1]!;
          const a2r = x[i0 + 4 * sm]!;
          const a2i = x[i0 + 4 * sm + 1]!;
          const a3r = x[i0 + 6 * sm]!;
          const a3i = x[i0 + 6 * sm + 1]!;
          const t0r = a0r + a2r;
          const t0i = a0i + a2i;
          const t1r = a0r - a2r;
          const t1i = a0i - a2i;
          const t2r = a1r + a3r;
          const t2i = a1i + a3i;
          const t3r = a1r - a3r;
          const t3i = a1i - a3i;
          // A1 = t1 - i t3, A3 = t1 + i t3
          const b1r = t1r + t3i;
          const b1i = t1i - t3r;
          const b2r = t0r - t2r;
          const b2i = t0i - t2i;
          const b3r = t1r - t3i;
          const b3i = t1i + t3r;
          const o = 2 * (q + s * 4 * p);
          y[o] = t0r + t2r;
          y[o + 1] = t0i + t2i;
          y[o + 2 * s] = b1r * w1r - b1i * w1i;
          y[o + 2 * s + 1] = b1r * w1i + b1i * w1r;
          y[o + 4 * s] = b2r * w2r - b2i * w2i;
          y[o + 4 * s + 1] = b2r * w2i + b2i * w2r;
          y[o + 6 * s] = b3r * w3r - b3i * w3i;
          y[o + 6 * s + 1] = b3r * w3i + b3i * w3r;
        }
      }
      return;
    }
    if (r === 2) {
      for (let p = 0; p < m; p++) {
        const wr = tw[2 * (p * 2 + 1)]!;
        const wi = tw[2 * (p * 2 + 1) + 1]!;
        for (let q = 0; q < s; q++) {
          const i0 = 2 * (q + s * p);
          const ar = x[i0]!;
          const ai = x[i0 + 1]!;
          const br = x[i0 + 2 * sm]!;
          const bi = x[i0 + 2 * sm + 1]!;
          const o = 2 * (q + s * 2 * p);
          y[o] = ar + br;
          y[o + 1] = ai + bi;
          const dr = ar - br;
          const di = ai - bi;
          y[o + 2 * s] = dr * wr - di * wi;
          y[o + 2 * s + 1] = dr * wi + di * wr;
        }
      }
      return;
    }
    if (r === 3) {
      const c = -0.5;
      const sn = Math.sqrt(3) / 2;
      for (let p = 0; p < m; p++) {
        const w1r = tw[2 * (p * 3 + 1)]!;
        const w1i = tw[2 * (p * 3 + 1) + 1]!;
        const w2r = tw[2 * (p * 3 + 2)]!;
        const w2i = tw[2 * (p * 3 + 2) + 1]!;
        for (let q = 0; q < s; q++) {
          const i0 = 2 * (q + s * p);
          const a0r = x[i0]!;
          const a0i = x[i0 + 1]!;
          const a1r = x[i0 + 2 * sm]!;
          const a1i = x[i0 + 2 * sm + 1]!;
          const a2r = x[i0 + 4 * sm]!;
          const a2i = x[i0 + 4 * sm + 1]!;
          const sr = a1r + a2r;
          const si = a1i + a2i;
          const dr = a1r - a2r;
          const di = a1i - a2i;
          const mr = a0r + c * sr;
          const mi = a0i + c * si;
          const b1r = mr + sn * di;
          const b1i = mi - sn * dr;
          const b2r = mr - sn * di;
          const b2i = mi + sn * dr;
          const o = 2 * (q + s * 3 * p);
          y[o] = a0r + sr;
          y[o + 1] = a0i + si;
          y[o + 2 * s] = b1r * w1r - b1i * w1i;
          y[o + 2 * s + 1] = b1r * w1i + b1i * w1r;
          y[o + 4 * s] = b2r * w2r - b2i * w2i;
          y[o + 4 * s + 1] = b2r * w2i + b2i * w2r;
        }
      }
      return;
    }
    if (r === 5) {
      const c1 = Math.cos((2 * Math.PI) / 5);
      const c2 = Math.cos((4 * Math.PI) / 5);
      const s1 = Math.sin((2 * Math.PI) / 5);
      const s2 = Math.sin((4 * Math.PI) / 5);
      for (let p = 0; p < m; p++) {
        const tb = 2 * p * 5;
        for (let q = 0; q < s; q++) {
          const i0 = 2 * (q + s * p);
          const a0r = x[i0]!;
          const a0i = x[i0 + 1]!;
          const a1r = x[i0 + 2 * sm]!;
          const a1i = x[i0 + 2 * sm + 1]!;
          const a2r = x[i0 + 4 * sm]!;
          const a2i = x[i0 + 4 * sm + 1]!;
          const a3r = x[i0 + 6 * sm]!;
          const a3i = x[i0 + 6 * sm + 1]!;
          const a4r = x[i0 + 8 * sm]!;
          const a4i = x[i0 + 8 * sm + 1]!;
          const t1r = a1r + a4r;
          const t1i = a1i + a4i;
          const t2r = a2r + a3r;
          const t2i = a2i + a3i;
          const t3r = a1r - a4r;
          const t3i = a1i - a4i;
          const t4r = a2r - a3r;
          const t4i = a2i - a3i;
          const b1r = a0r + c1 * t1r + c2 * t2r;
          const b1i = a0i + c1 * t1i + c2 * t2i;
          const b2r = a0r + c2 * t1r + c1 * t2r;
          const b2i = a0i + c2 * t1i + c1 * t2i;
          const d1r = s1 * t3r + s2 * t4r;
          const d1i = s1 * t3i + s2 * t4i;
          const d2r = s2 * t3r - s1 * t4r;
          const d2i = s2 * t3i - s1 * t4i;
          // A1 = b1 - i d1, A4 = b1 + i d1, A2 = b2 - i d2, A3 = b2 + i d2; then twiddles w^(p k)
          const o = 2 * (q + s * 5 * p);
          y[o] = a0r + t1r + t2r;
          y[o + 1] = a0i + t1i + t2i;
          let vr = b1r + d1i;
          let vi = b1i - d1r;
          let wr = tw[tb + 2]!;
          let wi = tw[tb + 3]!;
          y[o + 2 * s] = vr * wr - vi * wi;
          y[o + 2 * s + 1] = vr * wi + vi * wr;
          vr = b2r + d2i;
          vi = b2i - d2r;
          wr = tw[tb + 4]!;
          wi = tw[tb + 5]!;
          y[o + 4 * s] = vr * wr - vi * wi;
          y[o + 4 * s + 1] = vr * wi + vi * wr;
          vr = b2r - d2i;
          vi = b2i + d2r;
          wr = tw[tb + 6]!;
          wi = tw[tb + 7]!;
          y[o + 6 * s] = vr * wr - vi * wi;
          y[o + 6 * s + 1] = vr * wi + vi * wr;
          vr = b1r - d1i;
          vi = b1i + d1r;
          wr = tw[tb + 8]!;
          wi = tw[tb + 9]!;
          y[o + 8 * s] = vr * wr - vi * wi;
          y[o + 8 * s + 1] = vr * wi + vi * wr;
        }
      }
      return;
    }
    // Generic odd prime radix: a direct r-point DFT per butterfly.
    const root = this.roots.get(r)!;
    const acc = this.acc;
    for (let p = 0; p < m; p++) {
      for (let q = 0; q < s; q++) {
        const i0 = 2 * (q + s * p);
        for (let k = 0; k < r; k++) {
          let ar = 0;
          let ai = 0;
          for (let j = 0; j < r; j++) {
            const xr = x[i0 + 2 * j * sm]!;
            const xi = x[i0 + 2 * j * sm + 1]!;
            const e = (j * k) % r;
            const wr = root[2 * e]!;
            const wi = root[2 * e + 1]!;
            ar += xr * wr - xi * wi;
            ai += xr * wi + xi * wr;
          }
          acc[2 * k] = ar;
          acc[2 * k + 1] = ai;
        }
        const o = 2 * (q + s * r * p);
        for (let k = 0; k < r; k++) {
          const wr = tw[2 * (p * r + k)]!;
          const wi = tw[2 * (p * r + k) + 1]!;
          const br = acc[2 * k]!;
          const bi = acc[2 * k + 1]!;
          y[o + 2 * k * s] = br * wr - bi * wi;
          y[o + 2 * k * s + 1] = br * wi + bi * wr;
        }
      }
    }
  }
}

/** The fastest complex plan for size n >= 2. */
function complexPlan(n: number): ComplexPlan {
  if (isPow2(n)) return new Pow2Plan(n);
  const f = factorize(n);
  return f ? new MixedRadixPlan(n, f) : new BluesteinPlan(n);
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
  /** For even n >= 4: a complex plan of size n/2 and twiddles exp(+2 pi i k / n), for packed real transforms. */
  readonly half: ComplexPlan | null;
  readonly twiddle: Float64Array | null;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new ValueError(`FFT: size must be an integer >= 1; got ${n}`);
    this.n = n;
    this.pow2 = n >= 2 && isPow2(n);
    this.plan = n === 1 ? null : complexPlan(n);
    this.tmpIn = new Float64Array(2 * n + 2);
    this.tmpOut = new Float64Array(2 * n + 2);
    if (n % 2 === 0 && n >= 4) {
      this.half = complexPlan(n >> 1);
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
    if (this.half) {
      // Packed: z[m] = x[2m] + i x[2m+1], Z = DFT_h(z); X[k] = E[k] + exp(-2 pi i k / n) O[k] with
      // E = (Z[k] + conj Z[h-k]) / 2 and O = (Z[k] - conj Z[h-k]) / 2i.
      for (let i = 0; i < n; i++) t[i] = inp[i]!;
      const Z = this.tmpOut;
      this.half.transform(Z, t, false);
      const tw = this.twiddle!;
      for (let k = 0; k <= half; k++) {
        const a = k === half ? 0 : k;
        const b = k === 0 ? 0 : half - k;
        const zr = Z[2 * a]!;
        const zi = Z[2 * a + 1]!;
        const cr = Z[2 * b]!;
        const ci = -Z[2 * b + 1]!;
        const er = (zr + cr) / 2;
        const ei = (zi + ci) / 2;
        // O = (Z - conj Z') / 2i = ((zi - ci) - i (zr - cr)) / 2
        const or = (zi - ci) / 2;
        const oi = -(zr - cr) / 2;
        // exp(-2 pi i k / n) = conj of the stored twiddle; at k = h it is -1
        const wr = k === half ? -1 : tw[2 * k]!;
        const wi = k === half ? 0 : -tw[2 * k + 1]!;
        out[2 * k] = er + or * wr - oi * wi;
        out[2 * k + 1] = ei + or * wi + oi * wr;
      }
      return;
    }
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
