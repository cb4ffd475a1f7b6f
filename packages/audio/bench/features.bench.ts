// STFT + log-mel of one hour of 16 kHz audio (ASR front end: 25 ms Hann window in a 512-point FFT, 10 ms hop,
// 80 Slaney mel bands, ln(max(., 1e-5))), checked against a float64 direct DFT on sampled frames, and the same
// on 5 minutes with a 400-point FFT (mixed radix). Peer: torchaudio's MelSpectrogram, 1 thread, when available.

import { hzToMel, logCompress, melFilterbank, melFilterbankDense, melSpectrogram } from '@tessera/audio';
import { record, timeit } from '@tessera/bench-kit';
import { cpuSeconds, runPeer } from './peer.js';

const sr = 16000;
const hour = sr * 3600;
// A 440 Hz tone whose level moves slowly, plus a 2.5 kHz partial: peaks are known per frame.
function signal(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    x[i] = (0.3 + 0.2 * Math.sin(0.5 * t)) * Math.sin(2 * Math.PI * 440 * t) + 0.05 * Math.sin(2 * Math.PI * 2500 * t);
  }
  return x;
}
const opts = { sampleRate: sr, nFft: 512, winLength: 400, hopLength: 160, nMels: 80 };

/** Independent log-mel of frame t: float64 direct DFT of the zero-padded, centred, windowed frame. */
function referenceFrame(
  x: Float32Array,
  t: number,
  nFft: number,
  win: number,
  hop: number,
  fb: Float64Array,
): Float64Array {
  const B = (nFft >> 1) + 1;
  const off = (nFft - win) >> 1;
  const frame = new Float64Array(nFft);
  for (let i = 0; i < win; i++) {
    const j = t * hop - (nFft >> 1) + off + i;
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / win);
    frame[off + i] = j >= 0 && j < x.length ? x[j]! * w : 0;
  }
  const p = new Float64Array(B);
  for (let k = 0; k < B; k++) {
    let re = 0;
    let im = 0;
    for (let i = 0; i < nFft; i++) {
      const a = (-2 * Math.PI * k * i) / nFft;
      re += frame[i]! * Math.cos(a);
      im += frame[i]! * Math.sin(a);
    }
    p[k] = re * re + im * im;
  }
  const M = fb.length / B;
  const out = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let acc = 0;
    for (let k = 0; k < B; k++) acc += fb[m * B + k]! * p[k]!;
    out[m] = Math.log(Math.max(acc, 1e-5));
  }
  return out;
}

function check(
  x: Float32Array,
  lm: { data: Float32Array; nFrames: number; dim: number },
  nFft: number,
  win: number,
): boolean {
  const fb = melFilterbankDense(melFilterbank({ sampleRate: sr, nFft, nMels: 80 }));
  const frames = [1, 777, Math.floor(lm.nFrames / 2), lm.nFrames - 2];
  let worst = 0;
  for (const t of frames) {
    const ref = referenceFrame(x, t, nFft, win, 160, fb);
    for (let m = 0; m < 80; m++) worst = Math.max(worst, Math.abs(ref[m]! - lm.data[t * 80 + m]!));
  }
  // and the loudest band of every 1000th frame is the one around 440 Hz
  const mels = Array.from({ length: 82 }, (_, i) => (i * hzToMel(8000)) / 81);
  let peaksOk = true;
  for (let t = 1; t < lm.nFrames - 1; t += 1000) {
    let best = 0;
    for (let m = 1; m < 80; m++) if (lm.data[t * 80 + m]! > lm.data[t * 80 + best]!) best = m;
    if (Math.abs(mels[best + 1]! - hzToMel(440)) > mels[2]! - mels[0]!) peaksOk = false;
  }
  console.log(
    `  check: max |log-mel - float64 DFT reference| = ${worst.toExponential(2)} over ${frames.length} frames`,
  );
  return worst < 1e-3 && peaksOk;
}

// Warm up the JIT on 10 s, then one timed pass over the hour (it takes seconds; repeats would only cost time).
const warm = signal(sr * 10);
logCompress(melSpectrogram(warm, opts));
const x = signal(hour);
let lm = logCompress(melSpectrogram(warm, opts));
let cpu = 0;
const tHour = timeit(
  () => {
    cpu = cpuSeconds(() => {
      lm = logCompress(melSpectrogram(x, opts));
    });
  },
  { reps: 1, warmup: 0, minMs: 0 },
);
const ok = check(x, lm, 512, 400);
const secs = tHour.medianMs / 1000;
// One row per case (apps/bench compares the rows of a case): the hour in seconds, real-time factors in the note.
record({
  package: 'audio',
  case: 'STFT+log-mel, 1 h @16k (512/400/160, 80)',
  impl: 'tessera (ts, fft.js)',
  unit: 's',
  value: secs,
  higherIsBetter: false,
  check: ok ? 'ok' : 'fail',
  note: `${(3600 / secs).toFixed(0)}x RT; cpu ${cpu.toFixed(1)} s (${(3600 / cpu).toFixed(0)}x RT in CPU time)`,
});

// The same settings on the first 5 minutes, ours then torchaudio's, in one case so that they are compared. Both
// are timed in CPU seconds (best of 2): wall clocks of two processes on a loaded shared machine do not compare.
const five = x.subarray(0, sr * 300);
let lm5 = lm;
let cpu5 = Number.POSITIVE_INFINITY;
for (let i = 0; i < 2; i++)
  cpu5 = Math.min(
    cpu5,
    cpuSeconds(() => {
      lm5 = logCompress(melSpectrogram(five, opts));
    }),
  );
const ok5 = check(five, lm5, 512, 400);
const ours5 = 300 / cpu5;
record({
  package: 'audio',
  case: 'STFT+log-mel, 5 min @16k (512/400/160, 80), CPU time',
  impl: 'tessera (ts, fft.js)',
  unit: 'x RT',
  value: ours5,
  higherIsBetter: true,
  check: ok5 ? 'ok' : 'fail',
});

// 400-point FFT (Whisper/torchaudio's default size): mixed radix on 5 minutes.
const o400 = { ...opts, nFft: 400 };
let lm4 = logCompress(melSpectrogram(five.subarray(0, sr), o400));
const cpu4 = cpuSeconds(() => {
  lm4 = logCompress(melSpectrogram(five, o400));
});
const ok4 = check(five, lm4, 400, 400);
record({
  package: 'audio',
  case: 'STFT+log-mel, 5 min @16k (400/400/160, 80), CPU time',
  impl: 'tessera (ts, mixed radix)',
  unit: 'x RT',
  value: 300 / cpu4,
  higherIsBetter: true,
  check: ok4 ? 'ok' : 'fail',
});

// Peer: torchaudio on the same 5 minutes (same settings: Slaney mel, zero padding, power 2), one thread, CPU time.
const peer = runPeer(`
import json, math, time, torch, torchaudio
torch.set_num_threads(1)
sr = 16000
t = torch.arange(sr * 300, dtype=torch.float64) / sr
x = ((0.3 + 0.2 * torch.sin(0.5 * t)) * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.sin(2 * math.pi * 2500 * t)).float()
m = torchaudio.transforms.MelSpectrogram(sr, n_fft=512, win_length=400, hop_length=160, n_mels=80, norm='slaney', mel_scale='slaney', pad_mode='constant')
torch.log(torch.clamp(m(x[:sr]), min=1e-5))
best = 1e9
for _ in range(2):
    t0 = time.process_time(); torch.log(torch.clamp(m(x), min=1e-5)); best = min(best, time.process_time() - t0)
print(json.dumps({"seconds": best, "torch": torch.__version__}))
`);
if (peer) {
  const theirs = 300 / peer.seconds!;
  record({
    package: 'audio',
    case: 'STFT+log-mel, 5 min @16k (512/400/160, 80), CPU time',
    impl: 'torchaudio 0.13 (1 thr)',
    unit: 'x RT',
    value: theirs,
    higherIsBetter: true,
    check: 'n/a',
    note: `tessera / torchaudio = ${(ours5 / theirs).toFixed(2)}`,
  });
} else console.log('  (no python3 with torchaudio: peer row skipped)');
