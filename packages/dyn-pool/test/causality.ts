// The reference test.py's causality check, shared by the rotary and the relative-position tests: the logit at
// position i equals the last logit of the model run on ids[0..i] (pooling must not let a group see its future).
import { noGrad, randint, tidy } from '@tessera/tensor-core';
import { expect } from 'vitest';
import { type BoundarySource, HourglassLM } from '../src/index.js';

export function expectCausal(model: HourglassLM, source: BoundarySource, vocabSize: number, T = 32): void {
  const V = vocabSize;
  noGrad(() =>
    tidy(() => {
      const ids = randint(0, V, [1, T]);
      const full = model.forward(ids);
      const fl = full.logits.dataSync();
      if (source !== 'none') {
        const nb = full.boundaries!.sum().itemSync();
        expect(nb).toBeGreaterThan(0); // the test must exercise pooling
        expect(nb).toBeLessThan(T);
      }
      for (let i = 0; i < T; i++) {
        const part = model.forward(ids.slice(1, 0, i + 1).contiguous());
        const pl = part.logits.dataSync();
        for (let v = 0; v < V; v++) expect(pl[i * V + v]).toBeCloseTo(fl[i * V + v]!, 5);
        HourglassLM.disposeOutput(part);
      }
    }),
  );
}
