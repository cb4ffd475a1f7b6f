import { manualSeed, memory, noGrad, optim, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { type BoundarySource, evaluate, generate, HourglassLM, prepareCorpus, train } from '../src/index.js';

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

  it('loss() outside tidy() leaves nothing once its parts are disposed; generate and evaluate give the mode back', () => {
    manualSeed(1);
    const m = new HourglassLM({
      vocabSize: 10,
      dModel: 16,
      nHeads: 2,
      layers: [1, 1, 1],
      boundary: 'whitespace',
      maxSeqLen: 16,
      spaceIds: [1],
      dropout: 0.1,
    });
    const ids = tensor(
      Int32Array.from({ length: 34 }, (_, i) => i % 10),
      { shape: [2, 17], dtype: 'int32' },
    );
    for (const grad of [false, true]) {
      const n0 = memory().numTensors;
      const parts = grad ? m.loss(ids) : noGrad(() => m.loss(ids));
      HourglassLM.disposeOutput(parts.output);
      for (const t of new Set([parts.loss, parts.lm, parts.boundary])) t?.dispose();
      expect(memory().numTensors - n0, grad ? 'with grad' : 'noGrad').toBe(0);
    }
    m.train();
    generate(m, Int32Array.from([2, 3]), { maxNewTokens: 3 });
    expect(m.isTraining).toBe(true);
    evaluate(m, { valid: Int32Array.from({ length: 40 }, (_, i) => i % 10) }, { seqLen: 16 });
    expect(m.isTraining).toBe(true);
    m.eval();
    generate(m, Int32Array.from([2, 3]), { maxNewTokens: 3 });
    expect(m.isTraining).toBe(false);
    ids.dispose();
  });
});
