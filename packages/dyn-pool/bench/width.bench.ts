// Throughput at the issue's miniature size (d 256, 2 + 4 + 2 blocks, sequence 512), where matmuls rather than
// per-op overhead dominate: vanilla against fixed pooling SF 2 / 4 and whitespace pooling (boundaries defined
// by the data, so untrained models pool exactly as trained ones would). Training step and inference forward,
// interleaved, medians. Check: each shortened model's inference logits are causal at a sampled position.
import { record } from '@tessera/bench-kit';
import { manualSeed, noGrad, tensor, tidy } from '@tessera/tensor-core';
import type { BoundarySource } from '../src/index.js';
import { englishText, issueSizeModel, SEQ_LEN as T } from './issue-size.js';
import { interleavedTiming } from './timing.js';

const { text, vocab } = englishText();
const ids = tensor(vocab.encode(text).ids.slice(0, T + 1), { shape: [1, T + 1], dtype: 'int32' });

const configs: [string, BoundarySource, number][] = [
  ['vanilla', 'none', 0],
  ['fixed SF=2', 'fixed', 2],
  ['fixed SF=4', 'fixed', 4],
  ['whitespace', 'whitespace', 0],
];
manualSeed(0);
const models = configs.map(([, boundary, k]) => issueSizeModel(vocab, boundary, k || undefined));
const times = interleavedTiming(models, ids, Number(process.env.DYN_POOL_BENCH_ROUNDS ?? 2));
const base = times[0]!;
configs.forEach(([name], i) => {
  const m = models[i]!.eval();
  let causal = true;
  noGrad(() =>
    tidy(() => {
      const x = ids.slice(1, 0, 96).contiguous();
      const full = m.forward(x).logits.dataSync();
      const part = m.forward(x.slice(1, 0, 61).contiguous()).logits.dataSync();
      for (let v = 0; v < vocab.size; v++)
        if (Math.abs(part[60 * vocab.size + v]! - full[60 * vocab.size + v]!) > 1e-4) causal = false;
    }),
  );
  const t = times[i]!;
  record({
    package: 'dyn-pool',
    case: `d256 2+4+2 T512 ${name} train`,
    impl: 'tessera cpu',
    unit: 'tok/s',
    value: (T / t.trainMs) * 1000,
    higherIsBetter: true,
    check: causal ? 'ok' : 'fail',
    note: `× vanilla: train ${(base.trainMs / t.trainMs).toFixed(2)}, inference ${(base.evalMs / t.evalMs).toFixed(2)} (${((T / t.evalMs) * 1000).toFixed(0)} tok/s), step tensors ${(t.peakTrainBytes / base.peakTrainBytes).toFixed(2)} (${(t.peakTrainBytes / 2 ** 20).toFixed(0)} MiB)`,
  });
});
