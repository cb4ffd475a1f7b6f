// Reader and batching throughput: TextGrid parsing (long format, 20k intervals), JSON-lines manifests (2k
// utterances with phones), bucketing 100k utterances by length, and CharVocab encoding of 4 MB of text. Each case
// checks its answer (interval count and last label, entry count, every item batched once, round trip).
import { record, timeit } from '@tessera/bench-kit';
import {
  bucketByLength,
  CharVocab,
  formatManifest,
  formatTextGrid,
  parseManifest,
  parseTextGrid,
  type TextGrid,
} from '@tessera/datasets';

const N = 20_000;
const tg: TextGrid = {
  xmin: 0,
  xmax: N * 0.05,
  tiers: [
    {
      kind: 'interval',
      name: 'phones',
      xmin: 0,
      xmax: N * 0.05,
      intervals: Array.from({ length: N }, (_, i) => ({ start: i * 0.05, end: (i + 1) * 0.05, label: `p${i % 50}` })),
    },
  ],
};
const tgText = formatTextGrid(tg, 'long');
let parsed: TextGrid | undefined;
const t1 = timeit(() => {
  parsed = parseTextGrid(tgText);
});
const iv = parsed!.tiers[0]!.kind === 'interval' ? parsed!.tiers[0]!.intervals : [];
record({
  package: 'datasets',
  case: `parseTextGrid long, ${N / 1000}k intervals`,
  impl: 'tessera',
  unit: 'MB/s',
  value: tgText.length / 1e6 / (t1.medianMs / 1000),
  higherIsBetter: true,
  check: iv.length === N && iv[N - 1]!.label === `p${(N - 1) % 50}` ? 'ok' : 'fail',
});

const entries = Array.from({ length: 2000 }, (_, i) => ({
  audio: `wav/u${i}.wav`,
  text: 'the quick brown fox jumps over the lazy dog',
  speaker: `s${i % 8}`,
  duration: 3,
  phones: Array.from({ length: 40 }, (_, k) => ({ start: k * 0.075, end: (k + 1) * 0.075, label: 'ə' })),
}));
const manText = formatManifest(entries);
let man: ReturnType<typeof parseManifest> = [];
const t2 = timeit(() => {
  man = parseManifest(manText);
});
record({
  package: 'datasets',
  case: 'parseManifest 2k utterances × 40 phones',
  impl: 'tessera',
  unit: 'MB/s',
  value: manText.length / 1e6 / (t2.medianMs / 1000),
  higherIsBetter: true,
  check: man.length === 2000 && man[1999]!.phones!.length === 40 ? 'ok' : 'fail',
});

const lengths = Array.from({ length: 100_000 }, (_, i) => 50 + ((i * 7919) % 1500));
let bs: number[][] = [];
const t3 = timeit(() => {
  bs = bucketByLength(lengths, (x) => x, { maxTokens: 16_000, poolSize: 4096, seed: 1 });
});
record({
  package: 'datasets',
  case: 'bucketByLength 100k items, 16k-token batches',
  impl: 'tessera',
  unit: 'Mitem/s',
  value: lengths.length / 1e6 / (t3.medianMs / 1000),
  higherIsBetter: true,
  check:
    bs.reduce((s, b) => s + b.length, 0) === lengths.length && bs.every((b) => b.length * Math.max(...b) <= 16_000)
      ? 'ok'
      : 'fail',
});

const text = 'It is a way I have of driving off the spleen, and regulating the circulation. '.repeat(50_000);
const vocab = CharVocab.fromText(text);
let ids: Int32Array = new Int32Array(0);
const t4 = timeit(
  () => {
    ids = vocab.encode(text);
  },
  { reps: 3 },
);
record({
  package: 'datasets',
  case: `CharVocab.encode ${(text.length / 1e6).toFixed(1)} MB`,
  impl: 'tessera',
  unit: 'MB/s',
  value: text.length / 1e6 / (t4.medianMs / 1000),
  higherIsBetter: true,
  check: ids.length === text.length && vocab.decode(ids.subarray(0, 79)) === text.slice(0, 79) ? 'ok' : 'fail',
});
