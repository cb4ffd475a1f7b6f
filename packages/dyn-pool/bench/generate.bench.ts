// Generation speed at the issue's miniature size (d 256, 2 + 4 + 2 blocks, maxSeqLen 512): characters per
// second of `generate` with the cached decoder (HourglassDecoder: one position per block and character) against
// re-running the window (one forward pass over the whole context per character), for vanilla and whitespace
// pooling, from a 256-character prompt. Interleaved rounds, medians. Check: greedy decoding draws the same
// characters both ways. The reference code has no generation to compare with.
import { median, record } from '@tessera/bench-kit';
import { manualSeed } from '@tessera/tensor-core';
import { type BoundarySource, generate, type HourglassLM } from '../src/index.js';
import { englishText, issueSizeModel } from './issue-size.js';

const P = 256;
const { text, vocab } = englishText();
const prompt = vocab.encode(text).ids.slice(0, P);
const rounds = Number(process.env.DYN_POOL_BENCH_ROUNDS ?? 3);
const N_WINDOW = 8;
const N_CACHED = 128;

const configs: [string, BoundarySource][] = [
  ['vanilla', 'none'],
  ['whitespace', 'whitespace'],
];
manualSeed(0);
const models = configs.map(([, boundary]) => issueSizeModel(vocab, boundary).eval());

const checks = models.map((m) => {
  const a = generate(m, prompt, { maxNewTokens: 12, temperature: 0 });
  const b = generate(m, prompt, { maxNewTokens: 12, temperature: 0, context: 'window' });
  return a.every((x, i) => x === b[i]);
});

const perChar = (m: HourglassLM, n: number, context: 'cached' | 'window') => {
  const t0 = performance.now();
  generate(m, prompt, { maxNewTokens: n, temperature: 0.8, context });
  return (performance.now() - t0) / n;
};
const cached: number[][] = models.map(() => []);
const window: number[][] = models.map(() => []);
for (let r = 0; r <= rounds; r++)
  models.forEach((m, i) => {
    const w = perChar(m, N_WINDOW, 'window');
    const c = perChar(m, N_CACHED, 'cached');
    if (r > 0) {
      // round 0 warms up
      window[i]!.push(w);
      cached[i]!.push(c);
    }
  });

configs.forEach(([name], i) => {
  const c = median(cached[i]!);
  const w = median(window[i]!);
  const check = checks[i] ? 'ok' : 'fail';
  record({
    package: 'dyn-pool',
    case: `d256 2+4+2 generate ${name}`,
    impl: 'tessera cpu cached',
    unit: 'char/s',
    value: 1000 / c,
    higherIsBetter: true,
    check,
    note: `${(w / c).toFixed(1)}× the window re-run; ${N_CACHED} characters after a ${P}-character prompt, prefill included`,
  });
  record({
    package: 'dyn-pool',
    case: `d256 2+4+2 generate ${name}`,
    impl: 'tessera cpu window',
    unit: 'char/s',
    value: 1000 / w,
    higherIsBetter: true,
    check,
    note: `one forward pass over the ${P}+ characters of context per character`,
  });
});
