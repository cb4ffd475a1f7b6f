import { manualSeed, memory, optim } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { type BoundarySource, HourglassLM, prepareCorpus, train } from '../src/index.js';

describe('memory', () => {
  it('a training step leaves no tensors behind, for every source and both position schemes', async () => {
    const text = 'the cat sat on the mat and the dog sat on the log '.repeat(20);
    const runs = (['none', 'fixed', 'whitespace', 'entropy', 'gumbel', 'unigram'] as BoundarySource[]).flatMap((b) =>
      (['rotary', 'relative'] as const).map((positions) => [b, positions] as const),
    );
    for (const [boundary, positions] of runs) {
      manualSeed(0);
      const corpus = prepareCorpus(text, { source: boundary, unigramVocab: 30 });
      const model = new HourglassLM({
        vocabSize: corpus.vocab.size,
        dModel: 8,
        nHeads: 2,
        layers: [1, 1, 1],
        boundary,
        maxSeqLen: 16,
        fixedK: 2,
        spaceIds: corpus.vocab.spaceIds(),
        positions,
      });
      const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
      const sched = new optim.LRScheduler(opt, optim.constant());
      const counts: number[] = [];
      for (let s = 1; s <= 3; s++) {
        await train(model, corpus, { steps: s, batchSize: 2, seqLen: 16 }, { step: s - 1, opt, sched });
        counts.push(memory().numTensors);
      }
      expect(counts[2], `${boundary} ${positions}`).toBe(counts[1]);
    }
  });
});
