// The README's example, run as written with the imports it shows. `text` is left to the reader there; here it
// is a small pseudo-word stream, and the sizes are shrunk (marked) so the example trains in a few seconds.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  evaluate,
  evaluateAsync,
  generate,
  generateAsync,
  HourglassDecoder,
  HourglassLM,
  loadTrainedAsync,
  prepareCorpus,
  train,
} from '@tessera/dyn-pool';
import { manualSeed, noGrad, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';

const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'then', 'ran', 'off', 'to', 'see', 'The', 'dog'];
let seed = 1;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const text = Array.from({ length: 3000 }, () => words[Math.floor(rand() * words.length)]).join(' ');

describe('README example', () => {
  it('prepares a corpus, trains, evaluates and generates', async () => {
    const ckpt = join(tmpdir(), `dyn-pool-readme-${process.pid}.ckpt`);
    try {
      manualSeed(0);
      const corpus = prepareCorpus(text, { source: 'whitespace' }); // 95/5 split, character vocabulary
      const model = new HourglassLM({
        vocabSize: corpus.vocab.size,
        dModel: 32, // README: 128 (shrunk for the test)
        nHeads: 4,
        layers: [1, 2, 1],
        boundary: 'whitespace',
        spaceIds: corpus.vocab.spaceIds(),
        maxSeqLen: 64, // README: 256
      });
      // README: steps 1000, batchSize 8, seqLen 256, checkpoint 'ws.ckpt'
      const stats = await train(model, corpus, {
        steps: 5,
        batchSize: 2,
        seqLen: 64,
        checkpoint: ckpt,
        progress: true,
      });
      const { bpc, shorteningFactor } = evaluate(model, corpus, { seqLen: 64 }); // README: 256
      const ids = generate(model, corpus.vocab.encode('The ').ids, { maxNewTokens: 100, temperature: 0.8 });
      console.log(bpc, shorteningFactor, corpus.vocab.decode(ids));
      const dec = new HourglassDecoder(model);
      const logits = dec.append(corpus.vocab.encode('The ').ids); // [4, vocab]
      expect(logits.shape).toEqual([4, corpus.vocab.size]);
      const prompt = tensor(corpus.vocab.encode('The ').ids, { shape: [1, 4], dtype: 'int32' });
      const want = noGrad(() => model.forward(prompt)).logits.dataSync();
      const got = logits.dataSync();
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
      dec.dispose();

      expect(stats.step).toBe(5);
      expect(existsSync(ckpt)).toBe(true);
      expect(Number.isFinite(bpc)).toBe(true);
      expect(bpc).toBeGreaterThan(0);
      // whitespace pooling: one group per word (≈ 3.2 characters per word + the space)
      expect(shorteningFactor).toBeGreaterThan(2.5);
      expect(shorteningFactor).toBeLessThan(6);
      // generate returns the prompt followed by the new characters
      expect(ids.length).toBe(4 + 100);
      expect(corpus.vocab.decode(ids).startsWith('The ')).toBe(true);

      // README: "A sequence longer than the trained maxSeqLen is an error in forward"; generate slides its window
      expect(() => model.forward(tensor(new Int32Array(65), { shape: [1, 65], dtype: 'int32' }))).toThrow();
      // README: "Token ids outside the vocabulary ... are errors"
      expect(() =>
        model.forward(tensor(Int32Array.from([corpus.vocab.size]), { shape: [1, 1], dtype: 'int32' })),
      ).toThrow();
      // README: the Async entry points (here on the CPU, where they equal the synchronous ones)
      expect((await evaluateAsync(model, corpus, { seqLen: 64 })).bpc).toBe(bpc);
      const ids2 = await generateAsync(model, corpus.vocab.encode('The ').ids, { maxNewTokens: 100, temperature: 0.8 });
      expect(ids2.length).toBe(104);
      const { model: m2 } = await loadTrainedAsync(readFileSync(ckpt));
      expect(m2.config.ln).toBe('post');
      // README: PyTorch-style state-dict names
      const names = [...model.stateDict().keys()];
      expect(names).toContain('pre.0.attn.q_proj.weight');
      expect(names).toContain('null_group');
    } finally {
      rmSync(ckpt, { force: true });
    }
  });
});
