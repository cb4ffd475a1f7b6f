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
  trainTokCpu: number;
  evalTokCpu: number;
  peakTensorMiB: number;
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
  const st = await train(model, corpus, { steps: STEPS, batchSize: B, seqLen: T, lr: 3e-3, warmup: 10 });
  const ev = evaluate(model, corpus, { seqLen: T, maxTokens: 8192 });
  // causality spot check on the trained model: logits of a prefix equal the full run's
  let causal = true;
  noGrad(() =>
    tidy(() => {
      const ids = tensor(corpus.valid.slice(0, 48), { shape: [1, 48], dtype: 'int32' });
      const full = model.forward(ids).logits.dataSync();
      const part = model.forward(ids.slice(1, 0, 31).contiguous()).logits.dataSync();
      for (let v = 0; v < V; v++) if (Math.abs(part[30 * V + v]! - full[30 * V + v]!) > 1e-4) causal = false;
    }),
  );
  let ok = causal && Number.isFinite(ev.bpc) && ev.bpc < Math.log2(V);
  if (boundary === 'fixed') ok &&= Math.abs(ev.shorteningFactor - extra.fixedK!) < 1e-9;
  if (boundary === 'whitespace')
    ok &&= Math.abs(ev.shorteningFactor - ev.tokens / spacesIn(ev.tokens)) / ev.shorteningFactor < 0.1;
  if (boundary === 'gumbel') ok &&= ev.shorteningFactor > 1.5 && ev.shorteningFactor < 10;
  rows.push({
    name,
    bpc: ev.bpc,
    sf: ev.shorteningFactor,
    trainTokCpu: st.tokensPerCpuSecond,
    evalTokCpu: ev.tokensPerCpuSecond,
    peakTensorMiB: st.peakTensorBytes / 2 ** 20,
  });
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
const base = rows[0]!;
for (const r of rows.slice(1)) {
  record({
    package: 'dyn-pool',
    case: `${r.name} train speed / vanilla`,
    impl: 'tessera cpu',
    unit: 'x',
    value: r.trainTokCpu / base.trainTokCpu,
    higherIsBetter: true,
    check: 'n/a',
    note: `inference ${(r.evalTokCpu / base.evalTokCpu).toFixed(2)}x, peak tensors ${(r.peakTensorMiB / base.peakTensorMiB).toFixed(2)}x, ΔBPC ${(r.bpc - base.bpc).toFixed(3)}`,
  });
}
console.log('\n| model | BPC | SF | train tok/CPU-s | × vanilla | eval tok/CPU-s | × vanilla | peak tensor MiB |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${r.bpc.toFixed(3)} | ${r.sf.toFixed(2)} | ${r.trainTokCpu.toFixed(0)} | ${(r.trainTokCpu / base.trainTokCpu).toFixed(2)} | ${r.evalTokCpu.toFixed(0)} | ${(r.evalTokCpu / base.evalTokCpu).toFixed(2)} | ${r.peakTensorMiB.toFixed(1)} |`,
  );
