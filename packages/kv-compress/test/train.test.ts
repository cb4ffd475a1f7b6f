import { manualSeed, nn } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { collectKV } from '../src/collect.js';
import { loadModel, saveModel } from '../src/eval/model.js';
import {
  curriculumSequence,
  decodeText,
  encodeText,
  FUSED_BASE,
  FUSED_VOCAB_SIZE,
  kvLookup,
  passkey,
  TEXT_BASE,
  TEXT_VOCAB_SIZE,
  VOCAB,
} from '../src/eval/tasks.js';
import {
  curriculumBatch,
  RETRIEVAL_MODEL,
  RETRIEVAL_MODEL_DEEP,
  RETRIEVAL_MODEL_WIDE,
  type Stage,
  stageAt,
  trainCurriculum,
} from '../src/eval/train.js';
import { Rng } from '../src/linalg.js';

const text = encodeText(
  'The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs! '.repeat(8),
);

describe('curriculum data', () => {
  it('text ids round-trip printable ASCII and newlines, and stay inside the vocabulary', () => {
    const s = 'Hello, world!\n~ {x} 42';
    expect(decodeText(encodeText(s))).toBe(s);
    expect(encodeText('é')[0]).toBe(TEXT_VOCAB_SIZE - 1);
    for (const t of text) expect(t).toBeGreaterThanOrEqual(TEXT_BASE);
  });
  it('compact queries end at the key, whose earlier occurrence is followed by the answer', () => {
    const s = kvLookup(new Rng(1), { pairs: 8, maxFiller: 4, queries: 5, compact: true });
    for (const q of s.queries) {
      expect(q.prompt).toHaveLength(2);
      expect(s.context[s.context.indexOf(q.prompt[1]!) + 1]).toBe(q.answer[0]);
    }
  });
  it('fused pairs: one token per pair, the query names its key, every pair asked once', () => {
    const s = kvLookup(new Rng(3), { pairs: 10, maxFiller: 4, compact: true, fused: true, allPairs: true });
    const pairs = s.context.filter((t) => t >= FUSED_BASE);
    expect(pairs).toHaveLength(10);
    expect(s.queries).toHaveLength(10);
    const asked = new Set<number>();
    for (const q of s.queries) {
      const k = q.prompt[1]! - VOCAB.keyStart;
      asked.add(k);
      const tok = pairs.find((t) => Math.floor((t - FUSED_BASE) / VOCAB.values) === k)!;
      expect(q.answer[0]).toBe(VOCAB.valueStart + ((tok - FUSED_BASE) % VOCAB.values));
    }
    expect(asked.size).toBe(10);
    const p = passkey(new Rng(4), { length: 50, depth: 0.5, fused: true });
    expect(p.context.findIndex((t) => t >= FUSED_BASE)).toBe(26);
    const c = curriculumSequence(new Rng(5), 128, 1, text, 'all', true);
    expect(Math.max(...c.ids)).toBeLessThan(FUSED_VOCAB_SIZE);
  });
  it('targets predict the next token: answers where marked, corpus text in lmTargets', () => {
    const rng = new Rng(2);
    let answers = 0;
    let lm = 0;
    for (let i = 0; i < 200; i++) {
      const s = curriculumSequence(rng, 64, (i % 5) / 4, text);
      expect(s.ids).toHaveLength(64);
      for (let t = 0; t < 63; t++) {
        if (s.targets[t] !== -100) {
          expect(s.targets[t]).toBe(s.ids[t + 1]);
          expect(s.lmTargets[t]).toBe(-100);
          answers++;
        }
        if (s.lmTargets[t] !== -100) {
          expect(s.lmTargets[t]).toBe(s.ids[t + 1]);
          expect(s.ids[t + 1]).toBeGreaterThanOrEqual(TEXT_BASE);
          lm++;
        }
      }
      for (const t of s.ids) expect(t).toBeLessThan(TEXT_VOCAB_SIZE);
    }
    expect(answers).toBeGreaterThan(200);
    expect(lm).toBeGreaterThan(1000);
    // without a corpus: no text targets and only task tokens
    const s = curriculumSequence(rng, 64, 1);
    expect(s.lmTargets.every((x) => x === -100)).toBe(true);
    expect(Math.max(...s.ids)).toBeLessThan(VOCAB.size);
  });
  it('stages and batches follow the schedule and are pure functions of (seed, step)', () => {
    const stages: Stage[] = [
      { steps: 3, length: 16, batch: 2, level: [0, 0.5] },
      { steps: 2, length: 32, batch: 1, level: [0.5, 1] },
    ];
    expect(stageAt(stages, 4)).toEqual({ stage: stages[1], level: 0.75 });
    expect(stageAt(stages, 9).level).toBe(1);
    const a = curriculumBatch(stages, 5, 3, text);
    expect([a.B, a.T]).toEqual([1, 32]);
    expect(curriculumBatch(stages, 5, 3, text)).toEqual(a);
    expect(curriculumBatch(stages, 6, 3, text).ids).not.toEqual(a.ids);
  });
});

describe('curriculum training', () => {
  const config = { vocabSize: TEXT_VOCAB_SIZE, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 32 };
  const stages: Stage[] = [
    { steps: 2, length: 16, batch: 2, level: [0, 0.5] },
    { steps: 2, length: 24, batch: 1, level: [0.5, 1] },
  ];
  it('a run stopped at a checkpoint and resumed ends with the same weights as an uninterrupted run', () => {
    const full = trainCurriculum({ config, stages, text, seed: 3 });
    expect(full.done).toBe(true);
    let ckpt: Uint8Array | undefined;
    const first = trainCurriculum({
      config,
      stages,
      text,
      seed: 3,
      maxSeconds: -1,
      checkpoint: { every: 100, save: (b) => (ckpt = b) },
    });
    expect(first).toMatchObject({ step: 1, done: false });
    const mid = trainCurriculum({
      config,
      stages,
      text,
      seed: 3,
      stopAt: 3,
      checkpoint: { every: 100, save: () => {} },
    });
    expect(mid).toMatchObject({ step: 3, done: false });
    const rest = trainCurriculum({ config, stages, text, seed: 3, resume: ckpt });
    expect(rest.done).toBe(true);
    const a = full.model.stateDict();
    const b = rest.model.stateDict();
    expect(a.size).toBeGreaterThan(5);
    for (const [k, t] of a) expect(Array.from(b.get(k)!.dataSync())).toEqual(Array.from(t.dataSync()));
    // The same checkpoint under another recipe is refused: another seed, learning rate, text or model; a stop
    // behind it too.
    const again = (o: object) => () => trainCurriculum({ config, stages, text, seed: 3, resume: ckpt, ...o });
    expect(again({ seed: 7 })).toThrow(/trained with seed 3; resumed with seed 7/);
    expect(again({ lr: 0.01 })).toThrow(/trained with lr 0.003; resumed with lr 0.01/);
    expect(again({ textWeight: 0.9 })).toThrow(/textWeight 0.5; resumed with textWeight 0.9/);
    expect(again({ text: text!.slice(1) })).toThrow(/trained with text [0-9a-f]+; resumed with text [0-9a-f]+/);
    expect(again({ config: { ...config, nLayers: config.nLayers + 1 } })).toThrow(/the checkpoint's model is/);
    expect(again({ stopAt: 1 })).toThrow(/stopAt 1, but the checkpoint is already at step 1/);
  });
});

describe('evaluation model sizes', () => {
  const count = (c: nn.CausalLMConfig) => {
    manualSeed(0);
    let n = 0;
    for (const t of new nn.CausalLM(c).stateDict().values()) n += t.shape.reduce((a, b) => a * b, 1);
    return n;
  };
  it('deep: 4 layers × 4 KV heads of d_head 32 give cache rows of p = 512 per K and V', () => {
    expect(RETRIEVAL_MODEL_DEEP).toEqual({ ...RETRIEVAL_MODEL_WIDE, nLayers: 4 });
    manualSeed(1);
    const model = new nn.CausalLM(RETRIEVAL_MODEL_DEEP);
    const rows = collectKV(model, [1, 2, 3, 4, 5]);
    expect([rows.layers, rows.heads, rows.headDim, rows.n]).toEqual([4, 4, 32, 5]);
    expect(rows.k.length).toBe(5 * 512);
    // the cached width doubles with each step v2 → wide → deep
    const p = (c: nn.CausalLMConfig) => c.nLayers * (c.nKvHeads ?? c.nHeads) * (c.dModel / c.nHeads);
    expect([p(RETRIEVAL_MODEL), p(RETRIEVAL_MODEL_WIDE), p(RETRIEVAL_MODEL_DEEP)]).toEqual([128, 256, 512]);
    // parameters are affine in the layer count: two more layers cost twice what the second layer costs
    const oneLayer = count({ ...RETRIEVAL_MODEL_WIDE, nLayers: 1 });
    const wide = count(RETRIEVAL_MODEL_WIDE);
    const deep = count(RETRIEVAL_MODEL_DEEP);
    expect(deep - wide).toBe(2 * (wide - oneLayer));
    // float32 weights fit the 5 MB fixture limit, and the saved config comes back
    const bytes = saveModel(model);
    expect(bytes.length).toBeLessThan(5e6);
    expect(bytes.length).toBeGreaterThan(4 * deep);
    expect(loadModel(bytes).config).toEqual(RETRIEVAL_MODEL_DEEP);
  });
});
