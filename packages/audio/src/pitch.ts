// Fundamental frequency estimation.
// YIN: de Cheveigné & Kawahara, "YIN, a fundamental frequency estimator for speech and music", JASA 2002.
// pYIN: Mauch & Dixon, "pYIN: A fundamental frequency estimator using probabilistic threshold
// distributions", ICASSP 2014. Both follow librosa.yin / librosa.pyin (0.10), which FastPitch 1.1 uses for its
// pitch targets (fmin C2 = 65.4 Hz, fmax C7 = 2093 Hz, frame 1024, hop 256 at 22.05 kHz); differences are noted
// inline. Checked on sines, chirps and glottal pulse trains of known F0 (test/pitch.test.ts).
import { check, checkInt, checkPositive, ValueError } from './errors.js';
import { FFT } from './fft.js';
import { numFrames, type PadMode, padIndex } from './framing.js';

export interface YinOptions {
  sampleRate: number;
  /** Lowest F0 searched, default 65.41 Hz (C2). */
  fMin?: number;
  /** Highest F0 searched, default 2093 Hz (C7). */
  fMax?: number;
  /** Samples per analysis frame, default 2048. */
  frameLength?: number;
  /** Integration window of the difference function, default frameLength / 2. */
  winLength?: number;
  /** Default frameLength / 4. */
  hopLength?: number;
  /** Centre frames on t * hop by padding frameLength / 2 on both sides; default true. */
  center?: boolean;
  /** Default 'constant' (librosa). */
  padMode?: PadMode;
}

export interface PitchTrack {
  /** F0 per frame in Hz. YIN: the estimate of every frame; pYIN: `fillNa` (NaN) where unvoiced. */
  f0: Float32Array;
  /** 1 where the frame is voiced. */
  voiced: Uint8Array;
  /** YIN: 1 - the CMND trough depth (periodicity); pYIN: the voicing probability. */
  voicedProb: Float32Array;
  /** Centre time of each frame in seconds. */
  times: Float32Array;
}

interface Resolved {
  sr: number;
  N: number;
  W: number;
  hop: number;
  center: boolean;
  padMode: PadMode;
  minPeriod: number;
  maxPeriod: number;
  fMin: number;
  fMax: number;
}

function resolve(opts: YinOptions, fn: string): Resolved {
  const sr = opts.sampleRate;
  checkPositive(sr, fn, 'sampleRate');
  const fMin = opts.fMin ?? 65.40639132514966;
  const fMax = opts.fMax ?? 2093.004522404789;
  check(fMin > 0 && fMax > fMin && fMax <= sr / 2, fn, `needs 0 < fMin < fMax <= sampleRate / 2; got ${fMin}, ${fMax}`);
  const N = opts.frameLength ?? 2048;
  checkInt(N, 4, fn, 'frameLength');
  const W = opts.winLength ?? N >> 1;
  checkInt(W, 1, fn, 'winLength');
  const hop = opts.hopLength ?? N >> 2;
  checkInt(hop, 1, fn, 'hopLength');
  const minPeriod = Math.max(1, Math.floor(sr / fMax));
  const maxPeriod = Math.ceil(sr / fMin);
  // librosa silently clips the longest period to the frame; an fMin that cannot be reached is an error here.
  check(
    maxPeriod <= N - W - 1,
    fn,
    `fMin ${fMin} Hz needs periods up to ${maxPeriod} samples, so frameLength >= winLength + ${maxPeriod + 1}; got frameLength ${N}, winLength ${W}`,
  );
  check(maxPeriod - minPeriod >= 2, fn, `period range [${minPeriod}, ${maxPeriod}] is too small`);
  return {
    sr,
    N,
    W,
    hop,
    center: opts.center ?? true,
    padMode: opts.padMode ?? 'constant',
    minPeriod,
    maxPeriod,
    fMin,
    fMax,
  };
}

/**
 * The cumulative mean normalised difference d'(tau) for tau in [minPeriod, maxPeriod] of every frame, row-major
 * [T x (maxPeriod - minPeriod + 1)]. As librosa: d(tau) = sum_{j=1..W} (x_j - x_{j+tau})^2 = E_0 + E_tau - 2 r(tau)
 * with r from one FFT cross-correlation per frame, and r and E below 1e-6 set to 0 (a silence gate: a silent
 * frame then has no trough at all).
 */
export function cmndf(x: ArrayLike<number>, opts: YinOptions): { data: Float32Array; nFrames: number; dim: number } {
  const r = resolve(opts, 'cmndf');
  return cmndInternal(x, r);
}

/**
 * Computes the CMND frame by frame into one row buffer: handed to `onFrame` when given (so YIN and pYIN never hold
 * the [T x D] matrix: 400 MB for an hour), or gathered into the returned matrix.
 */
function cmndInternal(
  x: ArrayLike<number>,
  r: Resolved,
  onFrame?: (t: number, row: Float32Array) => void,
): { data: Float32Array; nFrames: number; dim: number } {
  const { N, W, hop, minPeriod, maxPeriod } = r;
  const n = x.length;
  const T = numFrames(n, N, hop, r.center);
  const D = maxPeriod - minPeriod + 1;
  const out = new Float32Array(onFrame ? 0 : T * D);
  const row = new Float32Array(D);
  let P = 1;
  while (P < N) P <<= 1;
  const fft = new FFT(P);
  const frame = new Float64Array(P);
  const head = new Float64Array(P);
  const A = new Float64Array(P + 2);
  const B = new Float64Array(P + 2);
  const corr = new Float64Array(P);
  const cum = new Float64Array(N + 1);
  const d = new Float64Array(maxPeriod + 1);
  const off = r.center ? N >> 1 : 0;
  const gate = (v: number) => (Math.abs(v) < 1e-6 ? 0 : v);
  for (let t = 0; t < T; t++) {
    const s = t * hop - off;
    for (let i = 0; i < N; i++) {
      const j = padIndex(s + i, n, r.padMode);
      frame[i] = j < 0 ? 0 : x[j]!;
    }
    for (let i = 0; i < W; i++) head[i] = frame[W - i]!;
    fft.rfft(A, frame);
    fft.rfft(B, head);
    for (let k = 0; k < A.length; k += 2) {
      const ar = A[k]!;
      const ai = A[k + 1]!;
      const br = B[k]!;
      const bi = B[k + 1]!;
      A[k] = ar * br - ai * bi;
      A[k + 1] = ar * bi + ai * br;
    }
    fft.irfft(corr, A); // corr[W + tau] = sum_{j=1..W} x_j x_{j+tau}
    cum[0] = 0;
    for (let i = 0; i < N; i++) cum[i + 1] = cum[i]! + frame[i]! * frame[i]!;
    // E_tau = sum_{j=tau+1..tau+W} x_j^2 = cum[tau + W + 1] - cum[tau + 1]
    const e0 = gate(cum[W + 1]! - cum[1]!);
    for (let tau = 1; tau <= maxPeriod; tau++)
      d[tau] = e0 + gate(cum[tau + W + 1]! - cum[tau + 1]!) - 2 * gate(corr[W + tau]!);
    let acc = 0;
    for (let tau = 1; tau <= maxPeriod; tau++) {
      acc += d[tau]!;
      if (tau >= minPeriod) row[tau - minPeriod] = d[tau]! / (acc / tau + 1e-300);
    }
    if (onFrame) onFrame(t, row);
    else out.set(row, t * D);
  }
  return { data: out, nFrames: T, dim: D };
}

/** Sub-sample shift of the minimum at i by a parabola through i-1, i, i+1 (0 at the ends), as librosa. */
function parabolicShift(y: Float32Array, o: number, i: number, D: number): number {
  if (i <= 0 || i >= D - 1) return 0;
  const a = y[o + i + 1]! + y[o + i - 1]! - 2 * y[o + i]!;
  const b = (y[o + i + 1]! - y[o + i - 1]!) / 2;
  if (Math.abs(b) >= Math.abs(a)) return 0;
  return -b / a;
}

/**
 * Troughs of a CMND row as librosa.util.localmin (x[i] < x[i-1] and x[i] <= x[i+1], edge-padded, so the last
 * point counts when below its neighbour), with i = 0 a trough when below i = 1.
 */
function troughs(y: Float32Array, o: number, D: number, out: number[]): void {
  out.length = 0;
  if (y[o]! < y[o + 1]!) out.push(0);
  for (let i = 1; i < D - 1; i++) if (y[o + i]! < y[o + i - 1]! && y[o + i]! <= y[o + i + 1]!) out.push(i);
  if (y[o + D - 1]! < y[o + D - 2]!) out.push(D - 1);
}

function frameTimes(T: number, r: Resolved): Float32Array {
  const times = new Float32Array(T);
  for (let t = 0; t < T; t++) times[t] = (t * r.hop + (r.center ? 0 : r.N / 2)) / r.sr;
  return times;
}

/**
 * YIN pitch per frame (librosa.yin): the first CMND trough below `threshold` (default 0.1), else the global minimum,
 * refined by parabolic interpolation. `voiced` marks frames with a trough below the threshold.
 */
export function yin(x: ArrayLike<number>, opts: YinOptions & { threshold?: number }): PitchTrack {
  const r = resolve(opts, 'yin');
  const threshold = opts.threshold ?? 0.1;
  const T = numFrames(x.length, r.N, r.hop, r.center);
  const D = r.maxPeriod - r.minPeriod + 1;
  const f0 = new Float32Array(T);
  const voiced = new Uint8Array(T);
  const prob = new Float32Array(T);
  const tr: number[] = [];
  cmndInternal(x, r, (t, row) => {
    troughs(row, 0, D, tr);
    let best = -1;
    for (const i of tr)
      if (row[i]! < threshold) {
        best = i;
        break;
      }
    if (best >= 0) voiced[t] = 1;
    else {
      best = 0;
      for (let i = 1; i < D; i++) if (row[i]! < row[best]!) best = i;
    }
    f0[t] = r.sr / (r.minPeriod + best + parabolicShift(row, 0, best, D));
    prob[t] = Math.max(0, 1 - row[best]!);
  });
  return { f0, voiced, voicedProb: prob, times: frameTimes(T, r) };
}

export interface PyinOptions extends YinOptions {
  /** Number of thresholds the Beta prior is discretised into, default 100. */
  nThresholds?: number;
  /** Beta distribution over thresholds, default [2, 18] (mean 0.1). */
  betaParameters?: [number, number];
  /** Boltzmann prior favouring earlier (shorter-period) troughs, default 2. */
  boltzmannParameter?: number;
  /** Pitch bin width in semitones, default 0.1. */
  resolution?: number;
  /** Largest pitch change in octaves per second, default 35.92. */
  maxTransitionRate?: number;
  /** Probability of switching between voiced and unvoiced, default 0.01. */
  switchProb?: number;
  /** Probability mass given to the global minimum when no trough is below a threshold, default 0.01. */
  noTroughProb?: number;
  /** F0 written for unvoiced frames, default NaN. */
  fillNa?: number;
  /** Largest frames x states for the Viterbi back-pointers (int16 each), default 2^29 (1 GiB: ~35 min at FastPitch's settings). */
  maxViterbiCells?: number;
}

/** Regularised incomplete beta I_x(a, b): a binomial sum for integer parameters, numeric integration otherwise. */
function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (Number.isInteger(a) && Number.isInteger(b)) {
    const n = a + b - 1;
    let s = 0;
    let c = 1; // C(n, j), built incrementally
    for (let j = 0; j <= n; j++) {
      if (j >= a) s += c * x ** j * (1 - x) ** (n - j);
      c = (c * (n - j)) / (j + 1);
    }
    return s;
  }
  const steps = 20000;
  let num = 0;
  let den = 0;
  for (let i = 0; i < steps; i++) {
    const u = (i + 0.5) / steps;
    const p = u ** (a - 1) * (1 - u) ** (b - 1);
    den += p;
    if (u < x) num += p;
  }
  return num / den;
}

/**
 * Probabilistic YIN with an HMM over pitch bins and voicing, decoded by Viterbi (librosa.pyin); checked frame by
 * frame against a numpy re-implementation of librosa 0.10. Candidates above fMax are dropped (what librosa's
 * clipping amounts to); candidates that fall in one pitch bin add up (librosa keeps one: it never happens for
 * distinct troughs).
 * Memory grows as frames x states (int16 back-pointers, 2 x 601 states for C2..C7): track long recordings in chunks
 * of minutes; past `maxViterbiCells` it throws a ValueError that says how long a chunk may be.
 */
export function pyin(x: ArrayLike<number>, opts: PyinOptions): PitchTrack {
  const r = resolve(opts, 'pyin');
  const nThr = opts.nThresholds ?? 100;
  checkInt(nThr, 1, 'pyin', 'nThresholds');
  const [ba, bb] = opts.betaParameters ?? [2, 18];
  check(ba > 0 && bb > 0, 'pyin', `betaParameters must be > 0; got [${ba}, ${bb}]`);
  const lambda = opts.boltzmannParameter ?? 2;
  const resolution = opts.resolution ?? 0.1;
  check(resolution > 0 && resolution <= 1, 'pyin', `resolution must be in (0, 1] semitones; got ${resolution}`);
  const switchProb = opts.switchProb ?? 0.01;
  check(switchProb > 0 && switchProb < 1, 'pyin', `switchProb must be in (0, 1); got ${switchProb}`);
  const noTroughProb = opts.noTroughProb ?? 0.01;
  const maxRate = opts.maxTransitionRate ?? 35.92;
  const fillNa = opts.fillNa ?? Number.NaN;

  const T = numFrames(x.length, r.N, r.hop, r.center);
  const D = r.maxPeriod - r.minPeriod + 1;
  // 1. Prior over thresholds: Beta(a, b) mass of each interval (k/nThr, (k+1)/nThr].
  const thresholds = Float64Array.from({ length: nThr + 1 }, (_, k) => k / nThr);
  const betaProbs = new Float64Array(nThr);
  for (let k = 0; k < nThr; k++) betaProbs[k] = betaCdf(thresholds[k + 1]!, ba, bb) - betaCdf(thresholds[k]!, ba, bb);
  const betaCum = new Float64Array(nThr + 1);
  for (let k = 0; k < nThr; k++) betaCum[k + 1] = betaCum[k]! + betaProbs[k]!;

  const binsPerSemitone = Math.ceil(1 / resolution);
  const nBins = Math.floor(12 * binsPerSemitone * Math.log2(r.fMax / r.fMin)) + 1;
  check(nBins <= 16000, 'pyin', `too many pitch bins (${nBins}); raise resolution or narrow [fMin, fMax]`);
  const S = 2 * nBins;
  // Viterbi back-pointers take T x S int16: refuse what would not fit rather than fail deep inside.
  const maxCells = opts.maxViterbiCells ?? 2 ** 29;
  if (T * S > maxCells) {
    const framesOk = Math.floor(maxCells / S);
    throw new ValueError(
      `pyin: ${T} frames x ${S} states need ${((T * S * 2) / 2 ** 20).toFixed(1)} MB of back-pointers (limit maxViterbiCells = ${maxCells}); track in chunks of at most ${framesOk} frames (${((framesOk * r.hop) / r.sr).toFixed(0)} s)`,
    );
  }

  // 2-5. Observation probabilities: sparse voiced entries per frame, one shared unvoiced value.
  const obsBins: number[][] = [];
  const obsProbs: number[][] = [];
  const voicedProb = new Float32Array(T);
  const tr: number[] = [];
  const ex = Math.exp(-lambda);
  cmndInternal(x, r, (t, row) => {
    troughs(row, 0, D, tr);
    const bins: number[] = [];
    const probs: number[] = [];
    if (tr.length > 0) {
      const p = new Float64Array(tr.length);
      // For threshold k, the troughs below it, in order, get Boltzmann(lambda, count) prior weights.
      // Trough m is below thresholds[k+1] for k >= first index where thresholds[k+1] > height.
      const firstK = tr.map((i) => {
        const h = row[i]!;
        let k = Math.floor(h * nThr); // thresholds[k+1] = (k+1)/nThr > h
        if (k < 0) k = 0;
        return k;
      });
      for (let k = 0; k < nThr; k++) {
        let count = 0;
        for (let m = 0; m < tr.length; m++) if (firstK[m]! <= k) count++;
        if (count === 0) continue;
        const norm = (1 - ex) / (1 - ex ** count);
        let pos = 0;
        for (let m = 0; m < tr.length; m++)
          if (firstK[m]! <= k) {
            p[m] += norm * ex ** pos * betaProbs[k]!;
            pos++;
          }
      }
      let gm = 0;
      for (let m = 1; m < tr.length; m++) if (row[tr[m]!]! < row[tr[gm]!]!) gm = m;
      p[gm] += noTroughProb * betaCum[Math.min(firstK[gm]!, nThr)]!;
      let vp = 0;
      for (let m = 0; m < tr.length; m++) {
        if (p[m]! <= 0) continue;
        const i = tr[m]!;
        const period = r.minPeriod + i + parabolicShift(row, 0, i, D);
        const f = r.sr / period;
        let bin = Math.round(12 * binsPerSemitone * Math.log2(f / r.fMin));
        // Above fMax: dropped (librosa clips such bins onto the first unvoiced state, which is then overwritten).
        if (bin >= nBins) continue;
        if (bin < 0) bin = 0;
        const at = bins.indexOf(bin);
        if (at >= 0) probs[at] += p[m]!;
        else {
          bins.push(bin);
          probs.push(p[m]!);
        }
        vp += p[m]!;
      }
      voicedProb[t] = Math.min(1, Math.max(0, vp));
    }
    obsBins.push(bins);
    obsProbs.push(probs);
  });

  // 6. Transitions: a triangular band of half-width `half` bins within a voicing state (librosa.sequence.
  // transition_local, rows normalised after truncation at the edges), times 1 - switchProb or switchProb.
  const maxSemis = Math.round((maxRate * 12 * r.hop) / r.sr);
  const width = maxSemis * binsPerSemitone + 1;
  const half = width >> 1;
  const triLog = new Float64Array(2 * half + 1);
  for (let dlt = -half; dlt <= half; dlt++) triLog[dlt + half] = 1 - Math.abs(dlt) / ((width + 1) / 2);
  const rowLogNorm = new Float64Array(nBins);
  for (let i = 0; i < nBins; i++) {
    let s = 0;
    for (let j = Math.max(0, i - half); j <= Math.min(nBins - 1, i + half); j++) s += triLog[j - i + half]!;
    rowLogNorm[i] = Math.log(s);
  }
  for (let k = 0; k < triLog.length; k++) triLog[k] = triLog[k]! > 0 ? Math.log(triLog[k]!) : Number.NEGATIVE_INFINITY;
  const logStay = Math.log(1 - switchProb);
  const logSwitch = Math.log(switchProb);

  // 7. Viterbi in the log domain. Voiced states with zero observation probability stay at -inf and are skipped.
  const f0 = new Float32Array(T).fill(fillNa);
  const voiced = new Uint8Array(T);
  if (T === 0) return { f0, voiced, voicedProb, times: frameTimes(0, r) };
  const back = S <= 32768 ? new Int16Array(T * S) : new Int32Array(T * S);
  let prev = new Float64Array(S).fill(Number.NEGATIVE_INFINITY);
  let cur = new Float64Array(S);
  const logUnvoiced = (t: number) => Math.log(Math.max((1 - voicedProb[t]!) / nBins, 1e-300));
  // p_init is uniform over the unvoiced states and zero on voiced ones (librosa): frame 0 is unvoiced.
  for (let j = 0; j < nBins; j++) prev[nBins + j] = Math.log(1 / nBins) + logUnvoiced(0);
  let active: number[] = []; // voiced bins with a finite score in `prev`
  const pu = new Float64Array(nBins);
  for (let t = 1; t < T; t++) {
    cur.fill(Number.NEGATIVE_INFINITY);
    const bo = t * S;
    // Unvoiced targets: stay within the unvoiced plane (banded max; the hot loop) ...
    for (let i = 0; i < nBins; i++) pu[i] = prev[nBins + i]! - rowLogNorm[i]!;
    for (let j = 0; j < nBins; j++) {
      let best = Number.NEGATIVE_INFINITY;
      let arg = j;
      const lo = j - half < 0 ? 0 : j - half;
      const hi = j + half >= nBins ? nBins - 1 : j + half;
      for (let i = lo, k = lo - j + half; i <= hi; i++, k++) {
        const v = pu[i]! + triLog[k]!;
        if (v > best) {
          best = v;
          arg = i;
        }
      }
      cur[nBins + j] = best + logStay;
      back[bo + nBins + j] = nBins + arg;
    }
    // ... or switch in from one of the few active voiced states.
    for (const i of active) {
      const base = prev[i]! - rowLogNorm[i]! + logSwitch;
      const lo = i - half < 0 ? 0 : i - half;
      const hi = i + half >= nBins ? nBins - 1 : i + half;
      for (let j = lo; j <= hi; j++) {
        const v = base + triLog[j - i + half]!;
        if (v > cur[nBins + j]!) {
          cur[nBins + j] = v;
          back[bo + nBins + j] = i;
        }
      }
    }
    const lu = logUnvoiced(t);
    for (let j = 0; j < nBins; j++) cur[nBins + j] += lu;
    // Voiced targets: only bins with a candidate this frame; predecessors within the band in either plane.
    const bins = obsBins[t]!;
    const probs = obsProbs[t]!;
    const next: number[] = [];
    for (let m = 0; m < bins.length; m++) {
      const j = bins[m]!;
      let best = Number.NEGATIVE_INFINITY;
      let arg = j;
      const lo = j - half < 0 ? 0 : j - half;
      const hi = j + half >= nBins ? nBins - 1 : j + half;
      for (let i = lo; i <= hi; i++) {
        const w = triLog[j - i + half]! - rowLogNorm[i]!;
        const a = prev[i]! + w + logStay;
        const b = prev[nBins + i]! + w + logSwitch;
        if (a > best) {
          best = a;
          arg = i;
        }
        if (b > best) {
          best = b;
          arg = nBins + i;
        }
      }
      if (best === Number.NEGATIVE_INFINITY) continue;
      cur[j] = best + Math.log(probs[m]!);
      back[bo + j] = arg;
      next.push(j);
    }
    active = next;
    [prev, cur] = [cur, prev];
  }
  let state = 0;
  for (let s = 1; s < S; s++) if (prev[s]! > prev[state]!) state = s;
  for (let t = T - 1; t >= 0; t--) {
    if (state < nBins) {
      voiced[t] = 1;
      f0[t] = r.fMin * 2 ** (state / (12 * binsPerSemitone));
    }
    if (t > 0) state = back[t * S + state]!;
  }
  return { f0, voiced, voicedProb, times: frameTimes(T, r) };
}
