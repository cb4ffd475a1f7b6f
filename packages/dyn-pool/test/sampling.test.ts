// pickToken: Gumbel-max sampling on the host, shared by generate and generateAsync.
import { gumbel, manualSeed, noGrad, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { generate, HourglassLM, pickToken } from '../src/index.js';

describe('pickToken', () => {
  it('is the argmax without noise, and keeps to the top k', () => {
    expect(pickToken([0.1, 2, -1, 1.5], null, 0)).toBe(1);
    // huge noise on the two smallest logits: top-2 still only picks among logits 1 and 3
    for (let i = 0; i < 20; i++)
      expect([1, 3]).toContain(pickToken([0.1, 2, -1, 1.5], [50, Math.random(), 60, Math.random()], 1, 2));
  });

  it('draws softmax(l / τ) (Gumbel-max): frequencies within 4 standard errors over 20k draws', () => {
    manualSeed(1);
    const logits = [1, 0, -1, 0.5];
    const tau = 0.7;
    const e = logits.map((l) => Math.exp(l / tau));
    const p = e.map((v) => v / e.reduce((a, b) => a + b));
    const n = 20000;
    const counts = [0, 0, 0, 0];
    const g = Array.from(gumbel([n, 4]).dataSync());
    for (let i = 0; i < n; i++) counts[pickToken(logits, g.slice(4 * i, 4 * i + 4), tau)]!++;
    for (let c = 0; c < 4; c++) {
      const se = Math.sqrt((p[c]! * (1 - p[c]!)) / n);
      expect(Math.abs(counts[c]! / n - p[c]!), `class ${c}`).toBeLessThan(4 * se);
    }
  });

  it('an excluded id never takes part, in argmax, Gumbel-max or the top k', () => {
    expect(pickToken([9, 2, -1, 1.5], null, 0, undefined, 0)).toBe(1);
    // top-2 of the others: ids 1 and 3 (id 0's largest logit does not take a place)
    for (let i = 0; i < 20; i++)
      expect([1, 3]).toContain(pickToken([9, 2, -1, 1.5], [90, Math.random(), 60, Math.random()], 1, 2, 0));
  });

  it('generate never writes the unknown symbol, even where the model favours it', () => {
    manualSeed(4);
    const model = new HourglassLM({
      vocabSize: 6,
      dModel: 8,
      nHeads: 2,
      layers: [1, 1, 1],
      boundary: 'fixed',
      fixedK: 2,
      maxSeqLen: 16,
    });
    // The output layer's bias makes id 0 (the unknown symbol) by far the likeliest character.
    const bias = model.head.bias!;
    noGrad(() => bias.add_(tensor([30, 0, 0, 0, 0, 0])));
    for (const temperature of [0, 1])
      for (const context of ['cached', 'window'] as const) {
        const out = generate(model, Int32Array.from([1, 2]), { maxNewTokens: 30, temperature, topK: 3, context });
        expect(Array.from(out.slice(2)).includes(0), `${temperature} ${context}`).toBe(false);
      }
  });

  it('generate refuses bad options with clear errors', () => {
    const model = new HourglassLM({
      vocabSize: 5,
      dModel: 8,
      nHeads: 2,
      layers: [1, 1, 1],
      boundary: 'fixed',
      fixedK: 2,
      maxSeqLen: 8,
    });
    const p = Int32Array.from([1, 2]);
    expect(() => generate(model, p, { maxNewTokens: 2, temperature: -1 })).toThrow(/temperature must be/);
    expect(() => generate(model, p, { maxNewTokens: 2, topK: 0 })).toThrow(/topK must be/);
    expect(() => generate(model, p, { maxNewTokens: 1.5 })).toThrow(/maxNewTokens must be/);
    expect(generate(model, p, { maxNewTokens: 3, temperature: 0 }).length).toBe(5);
  });
});
