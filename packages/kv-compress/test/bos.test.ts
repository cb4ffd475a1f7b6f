// The options of the training mix (tasks.ts, train.ts). `bos`: every sequence starts with VOCAB.bos, the rest of
// the mix is drawn exactly as without it (pure text shifted one place to the right). `taskLm`: next-token targets
// on the task tokens, the answers and the text unchanged. Both are off by default, and a checkpoint remembers
// them so that a run cannot resume under other settings.
import { describe, expect, it } from 'vitest';
import { ValueError } from '../src/errors.js';
import { curriculumSequence, encodeText, TEXT_BASE, TEXT_VOCAB_SIZE, VOCAB } from '../src/eval/tasks.js';
import { curriculumBatch, type Stage, trainCurriculum } from '../src/eval/train.js';
import { Rng } from '../src/linalg.js';

const text = encodeText(
  'The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs! '.repeat(8),
);

describe('bos in the curriculum mix', () => {
  it('every sequence starts with BOS; the others are unchanged and pure text is shifted by one', () => {
    let pure = 0;
    let tasks = 0;
    for (let i = 0; i < 200; i++) {
      const fused = i % 2 === 0;
      const a = curriculumSequence(new Rng(100 + i), 64, (i % 5) / 4, text, 'all', fused);
      const b = curriculumSequence(new Rng(100 + i), 64, (i % 5) / 4, text, 'all', fused, { bos: true });
      expect(b.ids[0]).toBe(VOCAB.bos);
      expect(b.ids).toHaveLength(64);
      if (a.ids[0] === VOCAB.bos) {
        tasks++;
        expect(b).toEqual(a);
      } else {
        pure++;
        // pure text: the same window of the corpus, one place later; BOS itself predicts nothing
        expect(a.ids[0]).toBeGreaterThanOrEqual(TEXT_BASE);
        expect(Array.from(b.ids.subarray(1))).toEqual(Array.from(a.ids.subarray(0, 63)));
        expect(b.lmTargets[0]).toBe(-100);
        expect(Array.from(b.lmTargets.subarray(1, 62))).toEqual(Array.from(a.lmTargets.subarray(0, 61)));
        expect(b.targets.every((x) => x === -100)).toBe(true);
      }
    }
    // both kinds were drawn (the fused mix has 25% pure text)
    expect(pure).toBeGreaterThan(20);
    expect(tasks).toBeGreaterThan(100);
  });
  it('without text, a sequence of filler starts with BOS too', () => {
    for (let i = 0; i < 50; i++) {
      const b = curriculumSequence(new Rng(7 + i), 32, 1, undefined, 'all', false, { bos: true });
      expect(b.ids[0]).toBe(VOCAB.bos);
    }
  });
  it('curriculumBatch passes it on, and is off by default', () => {
    const stages: Stage[] = [{ steps: 4, length: 32, batch: 6, level: [0, 1] }];
    const on = curriculumBatch(stages, 1, 2, text, 'all', true, { bos: true });
    for (let b = 0; b < 6; b++) expect(on.ids[b * 32]).toBe(VOCAB.bos);
    expect(curriculumBatch(stages, 1, 2, text, 'all', true)).toEqual(
      curriculumBatch(stages, 1, 2, text, 'all', true, { bos: false }),
    );
  });
});

describe('taskLm in the curriculum mix', () => {
  it('adds next-token targets on every task position but the answers and the last, and changes nothing else', () => {
    let added = 0;
    let skipped = 0;
    for (let i = 0; i < 120; i++) {
      const fused = i % 2 === 1;
      const a = curriculumSequence(new Rng(300 + i), 96, (i % 5) / 4, text, 'all', fused);
      const b = curriculumSequence(new Rng(300 + i), 96, (i % 5) / 4, text, 'all', fused, { taskLm: true });
      expect(b.ids).toEqual(a.ids);
      expect(b.targets).toEqual(a.targets);
      // the task part ends where the corpus text's next-character targets begin (repeated strings may hold
      // character ids, so the ids cannot tell); a sequence with no text target leaves it open: skipped
      const taskLen = a.lmTargets.findIndex((t) => t !== -100);
      if (taskLen < 0) {
        skipped++;
        continue;
      }
      for (let t = 0; t < 96; t++) {
        if (t < taskLen - 1 && a.targets[t] === -100) {
          expect(b.lmTargets[t]).toBe(a.ids[t + 1]);
          added++;
        } else expect(b.lmTargets[t]).toBe(a.lmTargets[t]);
      }
    }
    expect(added).toBeGreaterThan(1000);
    expect(skipped).toBeLessThan(10);
    // and with bos: pure text gets nothing new (BOS predicts nothing, the text had its targets)
    let pure = 0;
    for (let i = 0; i < 40; i++) {
      if (curriculumSequence(new Rng(i), 32, 1, text, 'all', true).ids[0] === VOCAB.bos) continue;
      pure++;
      const p = curriculumSequence(new Rng(i), 32, 1, text, 'all', true, { bos: true, taskLm: true });
      const q = curriculumSequence(new Rng(i), 32, 1, text, 'all', true, { bos: true });
      expect(p.lmTargets).toEqual(q.lmTargets);
    }
    expect(pure).toBeGreaterThan(3);
  });
});

describe('mix options in checkpoints', () => {
  const config = { vocabSize: TEXT_VOCAB_SIZE, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 32 };
  const stages: Stage[] = [
    { steps: 2, length: 16, batch: 2, level: [0, 0.5] },
    { steps: 1, length: 24, batch: 1, level: [0.5, 1] },
  ];
  it('a stopped run resumes to the same weights with bos, and refuses to resume without it', () => {
    const full = trainCurriculum({ config, stages, text, seed: 4, bos: true });
    let ckpt: Uint8Array | undefined;
    const first = trainCurriculum({
      config,
      stages,
      text,
      seed: 4,
      bos: true,
      stopAt: 2,
      checkpoint: { every: 100, save: (b) => (ckpt = b) },
    });
    expect(first).toMatchObject({ step: 2, done: false });
    expect(() => trainCurriculum({ config, stages, text, seed: 4, resume: ckpt })).toThrow(ValueError);
    const rest = trainCurriculum({ config, stages, text, seed: 4, bos: true, resume: ckpt });
    expect(rest.done).toBe(true);
    for (const [k, t] of full.model.stateDict())
      expect(Array.from(rest.model.stateDict().get(k)!.dataSync())).toEqual(Array.from(t.dataSync()));
    // and the default mix trains other weights: this seed's batches hold pure text, which BOS changes
    const batchDiffers = [0, 1, 2].some(
      (st) =>
        curriculumBatch(stages, 4, st, text).ids.join() !==
        curriculumBatch(stages, 4, st, text, 'all', false, { bos: true }).ids.join(),
    );
    expect(batchDiffers).toBe(true);
    const plain = trainCurriculum({ config, stages, text, seed: 4 });
    const differs = [...plain.model.stateDict()].some(
      ([k, t]) => Array.from(t.dataSync()).join() !== Array.from(full.model.stateDict().get(k)!.dataSync()).join(),
    );
    expect(differs).toBe(true);
  });
  it('a checkpoint of the default mix refuses to resume with bos or taskLm, and one with taskLm without it', () => {
    let ckpt: Uint8Array | undefined;
    trainCurriculum({ config, stages, text, seed: 4, stopAt: 1, checkpoint: { every: 100, save: (b) => (ckpt = b) } });
    expect(() => trainCurriculum({ config, stages, text, seed: 4, bos: true, resume: ckpt })).toThrow(/bos/);
    expect(() => trainCurriculum({ config, stages, text, seed: 4, taskLm: true, resume: ckpt })).toThrow(ValueError);
    let lmCkpt: Uint8Array | undefined;
    const cp = { every: 100, save: (b: Uint8Array) => (lmCkpt = b) };
    trainCurriculum({ config, stages, text, seed: 4, taskLm: true, stopAt: 1, checkpoint: cp });
    expect(() => trainCurriculum({ config, stages, text, seed: 4, resume: lmCkpt })).toThrow(/taskLm/);
    expect(trainCurriculum({ config, stages, text, seed: 4, taskLm: true, resume: lmCkpt }).done).toBe(true);
  });
});
