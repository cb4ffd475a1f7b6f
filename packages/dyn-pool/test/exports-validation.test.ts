// The exported building blocks on bad input: each refused with a typed error where it used to return NaN, all
// ones, zeros for missing rows, or a SyntaxError from a corrupt file.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShapeError, tensor, ValueError } from '@tessera/tensor-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  binomialPriorLoss,
  CharVocab,
  downsample,
  entropySpikes,
  fixedBoundaries,
  gumbelSigmoid,
  HourglassLM,
  predictiveEntropy,
  UnigramTokenizer,
  upsample,
} from '../src/index.js';
import { checkRecipe, parseRunLog, ReproduceError, readCheckpointHead } from '../src/reproduce.js';

const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-exports-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('building blocks refuse what they cannot compute', () => {
  it('boundary sources: k, temperature, empty batches, masked logits', () => {
    const e = [1, 2, 3, 1, 5, 6];
    expect(Array.from(entropySpikes(e, 1, 6, 1))).toEqual([1, 1, 1, 0, 1, 1]);
    for (const k of [0, -1, Number.NaN, 1.5])
      expect(() => entropySpikes(e, 1, 6, k), String(k)).toThrow(/k must be an integer ≥ 1/);
    expect(() => entropySpikes(e, 2, 6)).toThrow(/6 entropies for B 2 × T 6/);
    expect(
      () =>
        new HourglassLM({
          vocabSize: 5,
          dModel: 8,
          nHeads: 2,
          layers: [1, 1, 1],
          boundary: 'entropy',
          maxSeqLen: 8,
          entropyK: 0,
        }),
    ).toThrow(/entropyK must be an integer ≥ 1/);
    for (const temperature of [0, -1, Number.NaN])
      expect(() => gumbelSigmoid(tensor([[1, -1, 0]]), { temperature, noise: false })).toThrow(/temperature must be/);
    expect(() => binomialPriorLoss(tensor(new Float32Array(0), { shape: [2, 0] }), 0.2)).toThrow(/hold no tokens/);
    expect(() => binomialPriorLoss(tensor(new Float32Array(0), { shape: [0, 4] }), 0.2)).toThrow(/hold no tokens/);
    // two live classes of equal logit, two masked: ln 2 (0·(−∞) used to make it NaN)
    const h = predictiveEntropy(tensor([[0, 0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]])).dataSync()[0]!;
    expect(h).toBeCloseTo(Math.LN2, 6);
  });

  it('pooling: a known group count is checked, boundaries are made from integers', () => {
    const b = tensor([[1, 0, 1, 0]]);
    const h = tensor(new Float32Array(8).fill(1), { shape: [1, 4, 2] });
    const s = downsample(h, b, tensor([0, 0]), 2);
    expect(s.shape).toEqual([1, 3, 2]);
    expect(() => upsample(s.slice(1, 0, 2), b, 2)).toThrow(ShapeError);
    expect(upsample(s, b, 2).shape).toEqual([1, 4, 2]);
    expect(() => downsample(h, b, tensor([0, 0]), 1.5)).toThrow(/segments must be an integer ≥ 0/);
    expect(() => fixedBoundaries(1, 4, 2, 0.5)).toThrow(/offset must be an integer ≥ 0/);
    expect(() => fixedBoundaries(-1, 4, 2)).toThrow(/B must be an integer ≥ 0/);
    expect(Array.from(fixedBoundaries(1, 5, 2, 1))).toEqual([0, 1, 0, 1, 0]);
  });

  it('vocabularies and tokenizers refuse sizes and pieces that would lose characters', () => {
    expect(() => CharVocab.fromText('abc', { maxSize: 0 })).toThrow(/maxSize must be an integer ≥ 1/);
    expect(() => CharVocab.fromText('abc', { maxSize: -1 })).toThrow(ValueError);
    expect(CharVocab.fromText('aab', { maxSize: 2 }).symbols).toEqual(['\uFFFD', 'a']);
    const ok = [
      { piece: 'a', score: -1 },
      { piece: 'b', score: -2 },
    ];
    expect(() => new UnigramTokenizer([{ piece: 'a', score: Number.NaN }, ok[1]!])).toThrow(/score NaN/);
    expect(() => new UnigramTokenizer([...ok, { piece: 'a', score: -3 }])).toThrow(/appears twice/);
    expect(() => new UnigramTokenizer([...ok, { piece: '', score: -3 }])).toThrow(/not a non-empty string/);
    expect(() => new UnigramTokenizer(ok, { maxPieceLength: 0 })).toThrow(/maxPieceLength/);
    expect(() =>
      UnigramTokenizer.fromJSON(JSON.parse('{"pieces":[{"piece":"a","score":null}],"maxPieceLength":1}')),
    ).toThrow(/score null/);
  });

  it('reproduce: a run that never closed a group is read (SF ∞), corrupt files are ReproduceErrors naming them', () => {
    const summary = {
      steps: 3,
      validBpc: 4.2,
      shorteningFactor: null, // JSON's Infinity
      trainTokensPerCpuSecond: 10,
      evalTokensPerCpuSecond: 20,
      peakRssBytes: 1,
      peakTensorBytes: 1,
    };
    expect(parseRunLog(`${JSON.stringify(summary)}\n`, 'g', 0)?.shorteningFactor).toBe(Number.POSITIVE_INFINITY);
    const cut = join(dir, 'cut.ckpt');
    const b = Buffer.alloc(8 + 10);
    b.writeBigUInt64LE(100n, 0); // says 100 header bytes, holds 10
    writeFileSync(cut, b);
    expect(() => readCheckpointHead(cut)).toThrow(ReproduceError);
    expect(() => readCheckpointHead(cut)).toThrow(/cut\.ckpt: not a checkpoint \(its header is cut short\)/);
    const bad = join(dir, 'bad.ckpt');
    const head = Buffer.from('{"__metadata__": {"tessera.checkpoint": "{oops"}}');
    const c = Buffer.alloc(8 + head.length);
    c.writeBigUInt64LE(BigInt(head.length), 0);
    head.copy(c, 8);
    writeFileSync(bad, c);
    expect(() => readCheckpointHead(bad)).toThrow(/bad\.ckpt: not a checkpoint \(the checkpoint head is not JSON/);
    const runs = join(dir, 'runs');
    rmSync(runs, { recursive: true, force: true });
    mkdirSync(runs);
    writeFileSync(join(runs, 'reproduce.recipe.json'), '{"text": "a.t');
    expect(() => checkRecipe(runs, { text: 'a.txt', flags: [] })).toThrow(/reproduce\.recipe\.json is not JSON/);
  });
});
