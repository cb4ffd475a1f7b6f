// What the benches at the issue's miniature size share: the model (d 256, 4 heads, 2 + 4 + 2 blocks, sequence
// 512) and English text to feed it (en-slice's validation text when `npm run data` has built it).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BoundarySource, CharVocab, HourglassLM } from '../src/index.js';

export const SEQ_LEN = 512;

/** About 4,000 characters of English, and its character vocabulary. */
export function englishText(): { text: string; vocab: CharVocab } {
  const dir = fileURLToPath(new URL('../../../data/text/en-slice/', import.meta.url));
  const text = existsSync(`${dir}valid.txt`)
    ? readFileSync(`${dir}valid.txt`, 'utf8').slice(0, 4000)
    : 'the quick brown fox jumps over the lazy dog and runs far away into the woods '.repeat(60);
  return { text, vocab: CharVocab.fromText(text) };
}

/** An untrained model of the issue's size; whitespace and fixed pooling need no training to pool as trained. */
export function issueSizeModel(vocab: CharVocab, boundary: BoundarySource, fixedK?: number): HourglassLM {
  return new HourglassLM({
    vocabSize: vocab.size,
    dModel: 256,
    nHeads: 4,
    layers: [2, 4, 2],
    boundary,
    maxSeqLen: SEQ_LEN,
    fixedK,
    spaceIds: vocab.spaceIds(),
  });
}
