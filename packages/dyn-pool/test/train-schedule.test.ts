// train()'s optimisation, against its closed forms: the learning rate of every step follows the linear warm-up
// and the cosine decay to a tenth, and the gradients Adam steps on have a global norm of at most `clip`.
import { manualSeed, optim } from '@tessera/tensor-core';
import { afterEach, describe, expect, it } from 'vitest';
import { HourglassLM, prepareCorpus, train } from '../src/index.js';

const step = optim.Adam.prototype.step;
afterEach(() => {
  optim.Adam.prototype.step = step;
});

describe('train', () => {
  it('steps at the warm-up-then-cosine rate, on gradients clipped to the global norm', async () => {
    manualSeed(0);
    const text = 'the cat sat on the mat and the dog sat on the log '.repeat(30);
    const corpus = prepareCorpus(text, { source: 'whitespace' });
    const model = new HourglassLM({
      vocabSize: corpus.vocab.size,
      dModel: 16,
      nHeads: 2,
      layers: [1, 1, 1],
      boundary: 'whitespace',
      maxSeqLen: 16,
      spaceIds: corpus.vocab.spaceIds(),
    });
    const seen: { lr: number; norm: number }[] = [];
    optim.Adam.prototype.step = function (this: optim.Adam) {
      let sq = 0;
      for (const g of this.paramGroups)
        for (const p of g.params) if (p.grad) for (const x of Array.from(p.grad.dataSync())) sq += x * x;
      seen.push({ lr: this.paramGroups[0]!.lr, norm: Math.sqrt(sq) });
      step.call(this);
    };
    const lr = 0.01;
    const clip = 0.05; // far below the untrained model's gradient norm, so every step is clipped
    await train(model, corpus, { steps: 6, batchSize: 2, seqLen: 16, lr, warmup: 2, clip });
    expect(seen.length).toBe(6);
    // warm-up (s + 1)/w for s < w, then 0.1 + 0.9·(1 + cos(π·(s − w)/(steps − w)))/2
    const want = (s: number) => (s < 2 ? (s + 1) / 2 : 0.1 + (0.9 * (1 + Math.cos((Math.PI * (s - 2)) / 4))) / 2);
    for (const [s, { lr: got }] of seen.entries()) expect(got, `step ${s}`).toBeCloseTo(lr * want(s), 10);
    for (const { norm } of seen) expect(norm).toBeLessThanOrEqual(clip * (1 + 1e-4));
    expect(Math.max(...seen.map((x) => x.norm))).toBeGreaterThan(clip * 0.99); // clipped to the bound, not below it
  });
});
