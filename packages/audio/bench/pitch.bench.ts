// Pitch tracking speed at FastPitch's settings (22.05 kHz, frame 1024, hop 256, C2..C7) on a glottal pulse
// train with vibrato (5 minutes for YIN, the first 2 for pYIN); each run checks its F0 against the known curve.

import { type PitchTrack, pyin, yin } from '@tessera/audio';
import { record, timeit } from '@tessera/bench-kit';
import { glottal } from '../test/signals.js';
import { cpuSeconds } from './peer.js';

const sr = 22050;
const seconds = 300;
const f0 = (t: number) => 120 + 15 * Math.sin(2 * Math.PI * 3 * t) + 20 * Math.sin((2 * Math.PI * t) / 60);
const x = glottal(f0, sr, seconds);
const opts = { sampleRate: sr, frameLength: 1024, hopLength: 256 };
// librosa's framing sees samples (frameLength - winLength - period) / 2 before the frame centre
const truth = (t: number) => f0(t - (512 - sr / f0(t)) / 2 / sr);

function score(tr: PitchTrack, minVoiced: number, seconds: number): { ok: boolean; note: string } {
  const rel: number[] = [];
  let frames = 0;
  for (let i = 0; i < tr.f0.length; i++) {
    const t = tr.times[i]!;
    if (t < 0.05 || t > seconds - 0.05) continue;
    frames++;
    if (tr.voiced[i]) rel.push(Math.abs(tr.f0[i]! - truth(t)) / truth(t));
  }
  rel.sort((a, b) => a - b);
  const voiced = rel.length / frames;
  const med = rel[rel.length >> 1]!;
  const gross = rel.filter((r) => r > 0.2).length / rel.length;
  const ok = voiced > minVoiced && med < 0.01 && gross < 0.001;
  return {
    ok,
    note: `voiced ${(100 * voiced).toFixed(1)}%, median err ${(100 * med).toFixed(2)}%, gross ${(100 * gross).toFixed(2)}%`,
  };
}

// YIN's fixed 0.1 threshold drops some frames where F0 moves fast; pYIN's HMM keeps them.
const x2 = x.subarray(0, sr * 120);
for (const [name, fn, minVoiced, seconds] of [
  ['YIN', () => yin(x, opts), 0.9, 300],
  ['pYIN', () => pyin(x2, opts), 0.98, 120],
] as const) {
  const w = name === 'YIN' ? yin : pyin;
  w(x.subarray(0, sr * 5), opts); // warm-up
  let tr: PitchTrack | undefined;
  let cpu = 0;
  const t = timeit(
    () => {
      cpu = cpuSeconds(() => {
        tr = fn();
      });
    },
    { reps: 1, warmup: 0, minMs: 0 },
  );
  const s = score(tr!, minVoiced, seconds);
  const secs = t.medianMs / 1000;
  record({
    package: 'audio',
    case: `${name}, ${seconds / 60} min @22.05k (1024/256)`,
    impl: 'tessera (ts, fft.js)',
    unit: 's',
    value: secs,
    higherIsBetter: false,
    check: s.ok ? 'ok' : 'fail',
    note: `${(seconds / secs).toFixed(0)}x RT; ${s.note}; cpu ${cpu.toFixed(2)} s (${(seconds / cpu).toFixed(0)}x RT)`,
  });
}
