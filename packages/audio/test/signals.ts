// Known test signals: sines, linear chirps and glottal pulse trains with a known F0 at every sample.

export const sine = (f: number, sr: number, seconds: number, a = 0.5): Float32Array =>
  Float32Array.from({ length: Math.round(sr * seconds) }, (_, i) => a * Math.sin((2 * Math.PI * f * i) / sr));

/** Linear chirp f0 -> f1 over `seconds`; returns the signal and the instantaneous frequency at time t. */
export function chirp(f0: number, f1: number, sr: number, seconds: number, a = 0.5) {
  const n = Math.round(sr * seconds);
  const k = (f1 - f0) / seconds;
  const x = Float32Array.from({ length: n }, (_, i) => {
    const t = i / sr;
    return a * Math.sin(2 * Math.PI * (f0 * t + (k * t * t) / 2));
  });
  return { x, freqAt: (t: number) => f0 + k * t };
}

/** Deterministic uniform noise in [-1, 1). */
export function noise(n: number, seed = 1, a = 1): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return a * (s / 2 ** 31 - 1);
  });
}

/**
 * A glottal pulse train: Rosenberg (1971) pulses (opening quotient 0.4, closing 0.16 of the period) at F0(t),
 * differentiated (lip radiation), through two formant resonators (500 and 1500 Hz): a crude voiced vowel.
 */
export function glottal(f0At: (t: number) => number, sr: number, seconds: number, a = 0.3): Float32Array {
  const n = Math.round(sr * seconds);
  const g = new Float64Array(n);
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const tp = 0.4;
    const tn = 0.16;
    g[i] =
      phase < tp
        ? 0.5 * (1 - Math.cos((Math.PI * phase) / tp))
        : phase < tp + tn
          ? Math.cos((Math.PI * (phase - tp)) / (2 * tn))
          : 0;
    phase += f0At(i / sr) / sr;
    if (phase >= 1) phase -= 1;
  }
  let y: Float64Array = new Float64Array(n);
  for (let i = 1; i < n; i++) y[i] = g[i]! - g[i - 1]!;
  for (const [fc, bw] of [
    [500, 80],
    [1500, 120],
  ] as const) {
    const r = Math.exp((-Math.PI * bw) / sr);
    const c = 2 * r * Math.cos((2 * Math.PI * fc) / sr);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = y[i]! + c * (out[i - 1] ?? 0) - r * r * (out[i - 2] ?? 0);
    y = out;
  }
  let peak = 0;
  for (const v of y) peak = Math.max(peak, Math.abs(v));
  return Float32Array.from(y, (v) => (a * v) / peak);
}
