// What Transformer-XL relative attention (positions: 'relative', the reference code's scheme) costs against
// rotary positions, at the first set's size in REPRODUCTION.md (d 64, 4 heads, 1 + 2 + 1 blocks, batch 4 × 128): one
// training step (forward, backward, Adam) and one inference forward of each model, timed interleaved
// (every round runs each model once, so the load of the shared machine falls on all alike), medians over
// rounds, in CPU time of the process (on a loaded machine wall-clock mostly measures the scheduler) and in
// wall-clock. Relative attention adds a W_R projection and a second T × T score matrix per block, and replaces
// the fused causal attention with the composite softmax. Checks: the relative models are causal (prefix logits
// equal the full run's), and both schemes start at the uniform-prediction loss (ln V within 0.5).
import { record } from '@tessera/bench-kit';
import { manualSeed, noGrad, tensor, tidy } from '@tessera/tensor-core';
import { type BoundarySource, HourglassLM } from '../src/index.js';
import { interleavedTiming } from './timing.js';

const ROUNDS = Number(process.env.DYN_POOL_BENCH_ROUNDS ?? 7);
const V = 96;
const T = 128;
const B = 4;
const SPACE = 1;

manualSeed(0);
// ~1 character in 6 is whitespace, as in English text (SF ≈ 6 for the whitespace source)
let seed = 12345;
const host = Int32Array.from({ length: B * (T + 1) }, () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  const r = seed / 2147483648;
  return r < 1 / 6 ? SPACE : 2 + Math.floor(((r - 1 / 6) / (5 / 6)) * (V - 2));
});
const ids = tensor(host, { shape: [B, T + 1], dtype: 'int32' });
const models: [string, BoundarySource, Record<string, number>][] = [
  ['vanilla', 'none', {}],
  ['fixed SF=2', 'fixed', { fixedK: 2 }],
  ['fixed SF=4', 'fixed', { fixedK: 4 }],
  ['whitespace', 'whitespace', {}],
];
const built: { name: string; positions: string; model: HourglassLM; ok: boolean }[] = [];
for (const [name, boundary, extra] of models)
  for (const positions of ['rotary', 'relative'] as const) {
    manualSeed(1);
    const model = new HourglassLM({
      vocabSize: V,
      dModel: 64,
      nHeads: 4,
      layers: [1, 2, 1],
      boundary,
      maxSeqLen: T,
      spaceIds: [SPACE],
      positions,
      ...extra,
    });
    let ok = true;
    noGrad(() =>
      tidy(() => {
        model.eval();
        const x = ids.slice(1, 0, 48).slice(0, 0, 1).contiguous();
        const full = model.forward(x).logits.dataSync();
        const part = model.forward(x.slice(1, 0, 31).contiguous()).logits.dataSync();
        for (let v = 0; v < V; v++) if (Math.abs(part[30 * V + v]! - full[30 * V + v]!) > 1e-4) ok = false;
        const lm = model.loss(ids).lm.itemSync();
        if (!(Math.abs(lm - Math.log(V)) < 0.5)) ok = false;
      }),
    );
    built.push({ name, positions, model, ok });
  }
const times = interleavedTiming(
  built.map((b) => b.model),
  ids,
  ROUNDS,
);
console.log(
  '\n| model | positions | train CPU ms | relative / rotary (train, CPU) | inference CPU ms | relative / rotary (inference, CPU) | relative / rotary (train, inference; wall) |',
);
console.log('|---|---|---|---|---|---|---|');
for (let i = 0; i < built.length; i += 2) {
  const [rot, rel] = [times[i]!, times[i + 1]!];
  const b = built[i + 1]!;
  for (const [k, t] of [
    [i, rot],
    [i + 1, rel],
  ] as const)
    console.log(
      `| ${built[k]!.name} | ${built[k]!.positions} | ${t.trainCpuMs.toFixed(0)} | ${k === i ? '1.00' : (rel.trainCpuMs / rot.trainCpuMs).toFixed(2)} | ${t.evalCpuMs.toFixed(0)} | ${k === i ? '1.00' : (rel.evalCpuMs / rot.evalCpuMs).toFixed(2)} | ${k === i ? '1.00, 1.00' : `${(rel.trainMs / rot.trainMs).toFixed(2)}, ${(rel.evalMs / rot.evalMs).toFixed(2)}`} |`,
    );
  record({
    package: 'dyn-pool',
    case: `${b.name} relative / rotary step time`,
    impl: 'tessera cpu',
    unit: 'x',
    value: rel.trainCpuMs / rot.trainCpuMs,
    higherIsBetter: false,
    check: b.ok && built[i]!.ok ? 'ok' : 'fail',
    note: `CPU time; inference ${(rel.evalCpuMs / rot.evalCpuMs).toFixed(2)}x, wall ${(rel.trainMs / rot.trainMs).toFixed(2)}x / ${(rel.evalMs / rot.evalMs).toFixed(2)}x, step tensors ${(rel.peakTrainBytes / rot.peakTrainBytes).toFixed(2)}x; medians of ${ROUNDS} interleaved rounds`,
  });
}
