// Resampling (16 -> 22.05 kHz and 48 -> 16 kHz, default 'high' quality) and Griffin-Lim (32 iterations,
// momentum 0.99) speed, each checked: resampled sines against the ideal, Griffin-Lim by spectral convergence.

import { griffinLim, resample, spectralConvergence, spectrogram } from '@tessera/audio';
import { record, timeit } from '@tessera/bench-kit';
import { glottal } from '../test/signals.js';
import { cpuSeconds } from './peer.js';

function sine(f: number, sr: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / sr));
}

function errDb(y: Float32Array, f: number, sr: number): number {
  let e = 0;
  let s = 0;
  for (let i = sr; i < y.length - sr; i++) {
    const r = 0.5 * Math.sin((2 * Math.PI * f * i) / sr);
    e += (y[i]! - r) ** 2;
    s += r * r;
  }
  return 10 * Math.log10(e / s);
}

const seconds = 60;
for (const [from, to, f] of [
  [16000, 22050, 3000],
  [48000, 16000, 3000],
] as const) {
  const x = sine(f, from, from * seconds);
  resample(x.subarray(0, from), from, to);
  let y: Float32Array = new Float32Array(0);
  let cpu = 0;
  const t = timeit(
    () => {
      cpu = cpuSeconds(() => {
        y = resample(x, from, to);
      });
    },
    { reps: 1, warmup: 0, minMs: 0 },
  );
  const e = errDb(y, f, to);
  const ok = e < -100;
  record({
    package: 'audio',
    case: `resample ${from / 1000}k -> ${to / 1000}k, 1 min`,
    impl: 'tessera (ts)',
    unit: 'x RT',
    value: seconds / (t.medianMs / 1000),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note: `3 kHz sine error ${e.toFixed(1)} dB; cpu ${(seconds / cpu).toFixed(0)}x RT`,
  });
}

const sr = 22050;
const voice = glottal((t) => 110 + 40 * Math.sin(2 * Math.PI * 0.7 * t), sr, 10);
const stftOpts = { nFft: 1024, hopLength: 256 };
const mag = spectrogram(voice, { ...stftOpts, power: 1 });
griffinLim(mag, { ...stftOpts, nIter: 2 });
const sc: number[] = [];
let y: Float32Array = new Float32Array(0);
let cpu = 0;
const t = timeit(
  () => {
    sc.length = 0;
    cpu = cpuSeconds(() => {
      y = griffinLim(mag, { ...stftOpts, nIter: 32, onIteration: (_, c) => sc.push(c) });
    });
  },
  { reps: 1, warmup: 0, minMs: 0 },
);
const final = spectralConvergence(mag, y, stftOpts);
const ok = final < 0.15 && final < sc[0]! * 0.5;
record({
  package: 'audio',
  case: 'Griffin-Lim 32 it, 10 s @22.05k (1024/256)',
  impl: 'tessera (ts, fft.js)',
  unit: 'x RT',
  value: 10 / (t.medianMs / 1000),
  higherIsBetter: true,
  check: ok ? 'ok' : 'fail',
  note: `spectral convergence ${sc[0]!.toFixed(3)} -> ${final.toFixed(3)}; cpu ${(10 / cpu).toFixed(1)}x RT`,
});
