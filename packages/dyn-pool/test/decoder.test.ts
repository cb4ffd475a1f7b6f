// HourglassDecoder: appending characters in any chunking gives the logits of one forward pass over the whole
// sequence — for every boundary source and both position schemes — and generate's cached context draws the
// characters of the re-run window while both fit.
import { manualSeed, memory, noGrad, randint, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import {
  BOUNDARY_SOURCES,
  type BoundarySource,
  generate,
  generateAsync,
  type HourglassConfig,
  HourglassDecoder,
  HourglassLM,
} from '../src/index.js';

const V = 12;
const SPACE = 1;
const T = 40;

function config(boundary: BoundarySource, extra: Partial<HourglassConfig> = {}): HourglassConfig {
  return {
    vocabSize: V,
    dModel: 16,
    nHeads: 2,
    layers: [1, 2, 1],
    boundary,
    maxSeqLen: T,
    fixedK: 3,
    spaceIds: [SPACE],
    gumbelEval: 'threshold',
    ...extra,
  };
}

/** The decoder's logits for ids fed in the given chunk sizes, against one forward pass. */
function expectChunkedEqualsForward(model: HourglassLM, chunks: number[], source: BoundarySource): void {
  noGrad(() =>
    tidy(() => {
      const ids = randint(0, V, [1, T]);
      if (model.bp) {
        // An untrained predictor may put a boundary everywhere or nowhere: centre its logits on this sequence.
        const z = Array.from(model.forward(ids).bpLogits!.dataSync()).sort((a, b) => a - b);
        model.bp.fc2.bias!.sub_(z[T >> 1]! + 1e-3);
      }
      const full = model.forward(ids);
      const want = full.logits.dataSync();
      const nb = full.boundaries ? full.boundaries.sum().itemSync() : 0;
      if (source !== 'none') {
        expect(nb, 'the test must exercise pooling').toBeGreaterThan(1);
        expect(nb).toBeLessThan(T - 1);
      }
      const flat = Array.from(ids.dataSync());
      const dec = new HourglassDecoder(model);
      let at = 0;
      let worst = 0;
      for (const n of chunks) {
        const got = dec.append(flat.slice(at, at + n));
        const g = got.dataSync();
        for (let i = 0; i < n * V; i++) worst = Math.max(worst, Math.abs(g[i]! - want[at * V + i]!));
        got.dispose();
        at += n;
      }
      expect(at).toBe(T);
      expect(worst, `${source}: max |Δ logit| over ${chunks.length} chunks`).toBeLessThan(2e-5);
      expect(dec.length).toBe(T);
      expect(dec.groups).toBe(nb);
      expect(() => dec.append([0])).toThrow(/exceed the trained maxSeqLen 40; reset\(\)/);
      dec.reset();
      const again = dec.append(flat.slice(0, 9)).dataSync();
      for (let i = 0; i < 9 * V; i++) expect(again[i]).toBeCloseTo(want[i]!, 4);
      dec.dispose();
      expect(() => dec.append([0])).toThrow(/after dispose/);
    }),
  );
}

describe('HourglassDecoder', () => {
  for (const positions of ['rotary', 'relative'] as const)
    for (const source of BOUNDARY_SOURCES)
      it(`${source}, ${positions} positions: chunked appends give one forward pass's logits`, () => {
        manualSeed(3);
        const model = new HourglassLM(config(source, { positions })).eval();
        expectChunkedEqualsForward(model, [7, 1, 1, 5, 1, 1, 1, 3, 1, 19], source);
        expectChunkedEqualsForward(model, Array(T).fill(1), source); // one character at a time
      });

  it('pre-LN blocks, and a prompt fed at once', () => {
    manualSeed(4);
    for (const positions of ['rotary', 'relative'] as const) {
      const model = new HourglassLM(config('whitespace', { ln: 'pre', positions })).eval();
      expectChunkedEqualsForward(model, [T], 'whitespace');
      expectChunkedEqualsForward(model, [20, 1, 19], 'whitespace');
    }
  });

  it('after an append that fails part-way, refuses to go on until reset()', () => {
    manualSeed(1);
    const model = new HourglassLM(config('whitespace')).eval();
    const dec = new HourglassDecoder(model);
    dec.append([2, 3]).dispose();
    const norm = model.downNorm!;
    const forward = norm.forward;
    norm.forward = () => {
      throw new Error('boom');
    };
    try {
      expect(() => dec.append([SPACE, 4])).toThrow('boom'); // the pre blocks' caches already hold the new positions
    } finally {
      norm.forward = forward;
    }
    expect(() => dec.append([4])).toThrow(/an earlier append failed part-way; reset\(\)/);
    dec.reset();
    const ids = [2, 3, SPACE, 4, 5];
    const got = dec.append(ids).dataSync();
    const want = noGrad(() =>
      model.forward(tensor(Int32Array.from(ids), { shape: [1, 5], dtype: 'int32' })),
    ).logits.dataSync();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
    dec.dispose();
  });

  it('a failure in the pre blocks or the boundary predictor also stops the decoder until reset()', () => {
    manualSeed(0);
    const model = new HourglassLM({
      vocabSize: 10,
      dModel: 16,
      nHeads: 2,
      layers: [2, 1, 1],
      boundary: 'entropy',
      maxSeqLen: 16,
    }).eval();
    const dec = new HourglassDecoder(model);
    dec.append([2, 3]).dispose();
    const bp = model.bp!;
    const forward = bp.forward;
    bp.forward = () => {
      throw new Error('boom in front');
    };
    try {
      expect(() => dec.append([4, 5])).toThrow('boom in front'); // after both pre blocks took [4, 5]
    } finally {
      bp.forward = forward;
    }
    expect(() => dec.append([4])).toThrow(/an earlier append failed part-way/);
    // bad ids are refused before anything runs, and leave the decoder usable
    dec.reset();
    dec.append([2, 3]).dispose();
    expect(() => dec.append([99])).toThrow(/token ids must be integers/);
    const got = dec.append([4]).dataSync();
    const want = noGrad(() =>
      model.forward(tensor(Int32Array.from([2, 3, 4]), { shape: [1, 3], dtype: 'int32' })),
    ).logits;
    const last = Array.from(want.dataSync()).slice(2 * 10);
    for (let i = 0; i < 10; i++) expect(got[i]).toBeCloseTo(last[i]!, 4);
    dec.dispose();
  });

  it('refuses bad ids and leaves no tensors behind', () => {
    manualSeed(0);
    const model = new HourglassLM(config('whitespace')).eval();
    const dec = new HourglassDecoder(model);
    expect(() => dec.append([])).toThrow(/no ids/);
    expect(() => dec.append([V])).toThrow(/token ids must be integers in \[0, 12\); got 12/);
    expect(() => dec.append([1.5])).toThrow(/token ids must be integers/);
    expect(() => dec.append([-1])).toThrow(/token ids must be integers/);
    expect(dec.length).toBe(0);
    const before = memory().numTensors;
    for (let i = 0; i < 3; i++) {
      dec.append([2, 3, SPACE, 4]).dispose();
      dec.append([SPACE]).dispose();
      dec.reset();
    }
    expect(memory().numTensors).toBe(before);
    dec.dispose();
  });
});

describe('generate with a cached context', () => {
  for (const source of ['none', 'fixed', 'whitespace', 'entropy'] as const)
    it(`${source}: the same characters as re-running the window while both fit; then it keeps going`, async () => {
      manualSeed(7);
      const model = new HourglassLM(config(source)).eval();
      const prompt = Int32Array.from([2, 3, SPACE, 4, 5, 6, SPACE, 2]);
      for (const temperature of [0, 0.9]) {
        manualSeed(11);
        const cached = generate(model, prompt, { maxNewTokens: T - prompt.length, temperature, topK: 6 });
        manualSeed(11);
        const window = generate(model, prompt, {
          maxNewTokens: T - prompt.length,
          temperature,
          topK: 6,
          context: 'window',
        });
        expect(Array.from(cached)).toEqual(Array.from(window));
      }
      const before = memory().numTensors;
      const streamed: number[] = [];
      const long = generate(model, prompt, {
        maxNewTokens: 3 * T,
        temperature: 0.9,
        onToken: (id) => streamed.push(id),
      });
      expect(streamed).toEqual(Array.from(long.slice(prompt.length)));
      for (const context of ['cached', 'window'] as const) {
        const seen: number[] = [];
        manualSeed(12);
        const a = generate(model, prompt, { maxNewTokens: 5, temperature: 0.9, context });
        manualSeed(12);
        const b = await generateAsync(model, prompt, {
          maxNewTokens: 5,
          temperature: 0.9,
          context,
          onToken: (id) => seen.push(id),
        });
        expect(Array.from(b)).toEqual(Array.from(a));
        expect(seen).toEqual(Array.from(a.slice(prompt.length)));
      }
      expect(long.length).toBe(prompt.length + 3 * T);
      expect(Array.from(long.slice(0, prompt.length))).toEqual(Array.from(prompt));
      expect(long.every((id) => id >= 0 && id < V)).toBe(true);
      expect(memory().numTensors).toBe(before);
      // Past maxSeqLen, greedily: each character is the argmax of one full forward pass over the context the
      // documented rule gives — the window grows to maxSeqLen, then restarts from the last ⌈maxSeqLen / 2⌉
      // characters — so the slide is checked against the model itself, not against the decoder.
      // (weights scaled up: an untrained model at its init scale predicts nearly the same character whatever the
      // context, which would let a wrong slide pass)
      manualSeed(13);
      const sharp = new HourglassLM(config(source)).eval();
      noGrad(() => {
        for (const p of sharp.parameters()) p.mul_(4);
      });
      const greedy = Array.from(generate(sharp, prompt, { maxNewTokens: 2 * T, temperature: 0 }));
      let ctx = greedy.slice(0, prompt.length);
      for (let j = prompt.length; j < greedy.length; j++) {
        const logits = noGrad(() =>
          tidy(() => {
            const out = sharp.forward(tensor(Int32Array.from(ctx), { shape: [1, ctx.length], dtype: 'int32' }));
            const last = Array.from(out.logits.dataSync()).slice((ctx.length - 1) * V);
            HourglassLM.disposeOutput(out);
            return last;
          }),
        );
        const best = Math.max(...logits.slice(1)); // the unknown symbol (id 0) is never drawn
        expect(logits[greedy[j]!]!, `character ${j} (context of ${ctx.length})`).toBeGreaterThan(best - 1e-4);
        ctx = ctx.length < T ? [...ctx, greedy[j]!] : greedy.slice(j + 1 - Math.ceil(T / 2), j + 1);
      }
      for (const [, t] of sharp.stateDict()) t.dispose();
      expect(() => generate(model, prompt, { maxNewTokens: 1, context: 'all' as 'cached' })).toThrow(
        /context must be 'cached' or 'window'/,
      );
    });
});
