// Dynamic token pooling in miniature (Nawrot et al., ACL 2023, Table 1 and §6 efficiency): vanilla, fixed
// pooling SF 2 and 4, whitespace and Gumbel boundaries, trained for the same number of steps on the same
// English text, then BPC, shortening factor and training/inference throughput relative to vanilla. Minutes
// on 2 shared cores, so the BPC columns are early-training numbers; the throughput ratios are the claim this
// size can test. Checks: every model beats the uniform-character baseline, fixed pooling shortens by exactly
// k, whitespace by (characters / whitespace), Gumbel's rate stays near its prior, and a causality spot check
// on each trained model. Text: data/text/en-slice from the corpus builder when present, else generated.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { record } from '@tessera/bench-kit';
import { manualSeed, noGrad, tensor, tidy } from '@tessera/tensor-core';
import { type BoundarySource, evaluate, HourglassLM, prepareCorpus, train } from '../src/index.js';
import { interleavedTiming } from './timing.js';

const STEPS = Number(process.env.DYN_POOL_BENCH_STEPS ?? 60);
const T = 128;
const B = 4;

function loadText(): { text: string; valid: string; source: string } {
  const dir = fileURLToPath(new URL('../../../data/text/en-slice/', import.meta.url));
  if (existsSync(`${dir}train.txt`) && existsSync(`${dir}valid.txt`))
    return {
      text: readFileSync(`${dir}train.txt`, 'utf8').slice(0, 400_000),
      valid: readFileSync(`${dir}valid.txt`, 'utf8').slice(0, 20_000),
      source: 'en-slice',
    };
  // Fallback: a Zipfian stream of pseudo-words (so whitespace boundaries mean something).
  const syll = ['ka', 'to', 're', 'mi', 'na', 'lo', 'su', 'pe', 'di', 'an', 'es', 'or'];
  const lex = Array.from({ length: 300 }, (_, i) => {
    let w = '';
    for (let k = 0, x = i * 7 + 3; k < 1 + (i % 4); k++, x = (x * 31 + 11) % 997) w += syll[x % syll.length];
    return w;
  });
  let x = 1;
  const words: string[] = [];
  for (let i = 0; i < 80_000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    words.push(lex[Math.floor(lex.length * (x / 2147483648) ** 3)]!);
  }
  const all = words.join(' ');
  return { text: all.slice(0, 400_000), valid: all.slice(400_000, 420_000), source: 'generated' };
}

const { text, valid, source } = loadText();
const corpus = prepareCorpus(text, { validText: valid });
const V = corpus.vocab.size;
const spaceIds = corpus.vocab.spaceIds();
/** Whitespace in the first n validation tokens (what evaluate scores). */
const spacesIn = (n: number) => corpus.valid.subarray(0, n).filter((c) => spaceIds.includes(c)).length;

interface Row {
  name: string;
  bpc: number;
  sf: number;
  model: HourglassLM;
}
const rows: Row[] = [];
const configs: [string, BoundarySource, Record<string, number>][] = [
  ['vanilla', 'none', {}],
  ['fixed SF=2', 'fixed', { fixedK: 2 }],
  ['fixed SF=4', 'fixed', { fixedK: 4 }],
  ['whitespace', 'whitespace', {}],
  ['gumbel α=0.25', 'gumbel', { priorAlpha: 0.25 }],
];
for (const [name, boundary, extra] of configs) {
  manualSeed(0);
  const model = new HourglassLM({
    vocabSize: V,
    dModel: 32,
    nHeads: 2,
    layers: [1, 2, 1],
    boundary,
    maxSeqLen: T,
    spaceIds,
    ...extra,
  });
  await train(model, corpus, { steps: STEPS, batchSize: B, seqLen: T, lr: 3e-3, warmup: 10 });
  const ev = evaluate(model, corpus, { seqLen: T, maxTokens: 8192 });
  // causality spot check on the trained model: logits of a prefix equal the full run's (Gumbel with
  // deterministic boundaries, since sampled ones differ between the two runs)
  let causal = true;
  const det = new HourglassLM({ ...model.config, gumbelEval: 'threshold' });
  det.loadStateDict(model.stateDict());
  det.eval();
  noGrad(() =>
    tidy(() => {
      const ids = tensor(corpus.valid.slice(0, 48), { shape: [1, 48], dtype: 'int32' });
      const full = det.forward(ids).logits.dataSync();
      const part = det.forward(ids.slice(1, 0, 31).contiguous()).logits.dataSync();
      for (let v = 0; v < V; v++) if (Math.abs(part[30 * V + v]! - full[30 * V + v]!) > 1e-4) causal = false;
    }),
  );
  let ok = causal && Number.isFinite(ev.bpc) && ev.bpc < Math.log2(V);
  if (boundary === 'fixed') ok &&= Math.abs(ev.shorteningFactor - extra.fixedK!) < 1e-9;
  if (boundary === 'whitespace')
    ok &&= Math.abs(ev.shorteningFactor - ev.tokens / spacesIn(ev.tokens)) / ev.shorteningFactor < 0.1;
  if (boundary === 'gumbel') ok &&= ev.shorteningFactor > 1.5 && ev.shorteningFactor < 10;
  rows.push({ name, bpc: ev.bpc, sf: ev.shorteningFactor, model });
  const check = ok ? 'ok' : 'fail';
  record({
    package: 'dyn-pool',
    case: `${name} BPC after ${STEPS} steps`,
    impl: 'tessera cpu',
    unit: 'bpc',
    value: ev.bpc,
    higherIsBetter: false,
    check,
    note: `SF ${ev.shorteningFactor.toFixed(2)}, ${source}`,
  });
}
// Throughput, interleaved over the trained models on one validation batch.
const batch = tensor(corpus.valid.slice(0, B * (T + 1)), { shape: [B, T + 1], dtype: 'int32' });
const times = interleavedTiming(
  rows.map((r) => r.model),
  batch,
  7,
);
const base = times[0]!;
rows.slice(1).forEach((r, k) => {
  const t = times[k + 1]!;
  record({
    package: 'dyn-pool',
    case: `${r.name} train speed / vanilla`,
    impl: 'tessera cpu',
    unit: 'x',
    value: base.trainMs / t.trainMs,
    higherIsBetter: true,
    check: 'n/a',
    note: `inference ${(base.evalMs / t.evalMs).toFixed(2)}x, peak tensors ${(t.peakTrainBytes / base.peakTrainBytes).toFixed(2)}x, ΔBPC ${(r.bpc - rows[0]!.bpc).toFixed(3)}`,
  });
});
const tok = B * T;
console.log(
  '\n| model | BPC | SF | train tok/s | × vanilla | inference tok/s | × vanilla | peak tensor MiB (train step) |',
);
console.log('|---|---|---|---|---|---|---|---|');
rows.forEach((r, k) => {
  const t = times[k]!;
  console.log(
    `| ${r.name} | ${r.bpc.toFixed(3)} | ${r.sf.toFixed(2)} | ${((tok / t.trainMs) * 1000).toFixed(0)} | ${(base.trainMs / t.trainMs).toFixed(2)} | ${((tok / t.evalMs) * 1000).toFixed(0)} | ${(base.evalMs / t.evalMs).toFixed(2)} | ${(t.peakTrainBytes / 2 ** 20).toFixed(1)} |`,
  );
});
