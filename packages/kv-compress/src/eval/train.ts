// Curriculum training of the evaluation LM (tensor-core CausalLM: RoPE, grouped KV heads): synthetic retrieval
// (key–value lookup, passkey, variable tracking, repeated strings) mixed with corpus text, short sequences and
// easy samples first, then longer ones. Every step's batch is a pure function of (seed, step), and checkpoints
// hold the weights, AdamW's moments and the step, so a run that stops resumes to the same bytes.
import { F, io, manualSeed, nn, optim, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';
import { Rng } from '../linalg.js';
import { fnv1a64 } from '../numeric.js';
import { curriculumSequence, FUSED_VOCAB_SIZE, type MixOptions } from './tasks.js';

/** One curriculum stage: `steps` steps of `batch` sequences of `length` tokens, the level rising linearly. */
export interface Stage {
  steps: number;
  length: number;
  batch: number;
  level: [number, number];
}

/** 2 500 steps, 2.6 M tokens: short sequences while the induction heads form, then the evaluation's lengths. */
export const INDUCTION_CURRICULUM: Stage[] = [
  { steps: 800, length: 64, batch: 16, level: [0, 0.5] },
  { steps: 1200, length: 128, batch: 8, level: [0.5, 0.9] },
  { steps: 500, length: 256, batch: 4, level: [0.9, 1] },
];

/** 1 200 steps, 1.2 M tokens: enough for one-hop lookups of fused pairs (RETRIEVAL_MODEL's default). */
export const DEFAULT_CURRICULUM: Stage[] = [
  { steps: 300, length: 64, batch: 16, level: [0, 0.5] },
  { steps: 600, length: 128, batch: 8, level: [0.5, 0.9] },
  { steps: 300, length: 256, batch: 4, level: [0.9, 1] },
];

/**
 * d 128, 2 layers, 4 query / 2 KV heads of d_head 32 (grouped-query attention), RoPE: p = 2·2·32 = 128 per K
 * and V; reads the tasks and corpus text. Few wide heads train faster on the CPU than many narrow ones.
 */
export const RETRIEVAL_MODEL: nn.CausalLMConfig = {
  vocabSize: FUSED_VOCAB_SIZE,
  dModel: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  dFF: 256,
};

/**
 * RETRIEVAL_MODEL with 4 KV heads instead of 2 (4 query heads, so plain multi-head attention): p = 2·4·32 = 256
 * per K and V, the research note's LM-S cache width, at nearly the same training cost (only the K and V
 * projections grow). At p = 128 the per-group side information and the few coefficients a 32× or 64× budget
 * leaves dominate; a wider cache gives the DP room at those ratios.
 */
export const RETRIEVAL_MODEL_WIDE: nn.CausalLMConfig = { ...RETRIEVAL_MODEL, nKvHeads: 4 };

/**
 * RETRIEVAL_MODEL_WIDE with 4 layers instead of 2: p = 4·4·32 = 512 per K and V. KVTC's gains at 32× and 64×
 * come from concatenating many layers × heads into one row (p in the thousands for real LLMs), where
 * cross-layer redundancy lets a few principal components carry a large share of the energy; going from
 * p = 128 to p = 256 cut the 32× retrieval loss to a quarter, so this tests the next doubling.
 */
export const RETRIEVAL_MODEL_DEEP: nn.CausalLMConfig = { ...RETRIEVAL_MODEL_WIDE, nLayers: 4 };

export interface CurriculumOptions {
  config?: nn.CausalLMConfig;
  stages?: Stage[];
  lr?: number;
  seed?: number;
  /** corpus text as ids (encodeText); without it the mix is retrieval only */
  text?: Int32Array;
  /** weight of the text loss against the answer loss */
  textWeight?: number;
  /** symbols of the repeated strings: every non-special id (default) or the task symbols only */
  repeatVocab?: 'tasks' | 'all';
  /** fused key–value tokens (tasks.ts); default: when the model's vocabulary has them */
  fused?: boolean;
  /**
   * Start every sequence with BOS, pure text too (default false: task samples start with it, pure text does
   * not): the fixed first token LLMs are pre-trained with, where attention sinks form. Kept in the checkpoint;
   * resuming with another setting is a ValueError.
   */
  bos?: boolean;
  /**
   * Next-token targets on the task tokens too (default false: only answers and corpus text have targets), under
   * the text loss's weight: an LLM's loss at every position. Kept in the checkpoint like `bos`.
   */
  taskLm?: boolean;
  /** a checkpoint to resume from (bytes written by `checkpoint.save`) */
  resume?: Uint8Array;
  checkpoint?: { every: number; save: (bytes: Uint8Array) => void };
  /** stop (after checkpointing) once this many seconds have passed; run again with `resume` to continue */
  maxSeconds?: number;
  /** stop (after checkpointing) once this many steps are done: a deterministic point of the schedule */
  stopAt?: number;
  log?: (s: { step: number; steps: number; length: number; loss: number; textLoss: number; seconds: number }) => void;
}

function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;
}

/** Where a global step falls in the curriculum. */
export function stageAt(stages: Stage[], step: number): { stage: Stage; level: number } {
  let s = step;
  for (const st of stages) {
    if (s < st.steps) return { stage: st, level: st.level[0] + ((st.level[1] - st.level[0]) * s) / st.steps };
    s -= st.steps;
  }
  const last = stages[stages.length - 1]!;
  return { stage: last, level: last.level[1] };
}

/** The batch of a step: deterministic in (seed, step). */
export function curriculumBatch(
  stages: Stage[],
  seed: number,
  step: number,
  text?: Int32Array,
  repeatVocab: 'tasks' | 'all' = 'all',
  fused = false,
  data: MixOptions = {},
): { B: number; T: number; ids: Int32Array; targets: Int32Array; lmTargets: Int32Array } {
  const { stage, level } = stageAt(stages, step);
  const rng = new Rng(stepSeed(seed, step));
  const B = stage.batch;
  const T = stage.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const lmTargets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = curriculumSequence(rng, T, level, text, repeatVocab, fused, data);
    ids.set(s.ids, b * T);
    targets.set(s.targets, b * T);
    lmTargets.set(s.lmTargets, b * T);
  }
  return { B, T, ids, targets, lmTargets };
}

interface Checkpoint {
  model: nn.CausalLM;
  opt: optim.AdamW;
  step: number;
  /** the data options that change every batch: a run must not resume under others */
  bos: boolean;
  taskLm: boolean;
  /**
   * The rest of the recipe a resume must repeat (seed, learning rate, text weight, repeat-vocab, the text's
   * hash); written since these checks exist, so older checkpoints resume unchecked on these.
   */
  recipe?: Record<string, string>;
}

function saveCheckpoint(c: Checkpoint): Uint8Array {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of c.model.stateDict()) tensors.set(`model.${k}`, t);
  const st = c.opt.stateDict();
  for (const [k, t] of st.tensors) tensors.set(`opt.${k}`, t);
  return io.saveSafetensors(tensors, {
    metadata: {
      config: JSON.stringify(c.model.config),
      step: String(c.step),
      opt: JSON.stringify(st.meta),
      // written only when set, so checkpoints of the default mix keep their bytes
      ...(c.bos ? { bos: '1' } : {}),
      ...(c.taskLm ? { taskLm: '1' } : {}),
      ...(c.recipe ? { recipe: JSON.stringify(c.recipe) } : {}),
    },
  });
}

function loadCheckpoint(bytes: Uint8Array, lr: number): Checkpoint {
  const { tensors, metadata } = io.loadSafetensors(bytes);
  const model = new nn.CausalLM(JSON.parse(metadata.config!) as nn.CausalLMConfig);
  const m = new Map<string, Tensor>();
  const o = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith('model.')) m.set(k.slice(6), t);
    else if (k.startsWith('opt.')) o.set(k.slice(4), t);
  }
  model.loadStateDict(m);
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0.01 });
  opt.loadStateDict({ tensors: o, meta: JSON.parse(metadata.opt!) });
  let recipe: Record<string, string> | undefined;
  try {
    recipe = metadata.recipe ? (JSON.parse(metadata.recipe) as Record<string, string>) : undefined;
  } catch {
    throw new ValueError("trainCurriculum: the checkpoint's recipe metadata is not JSON");
  }
  return {
    model,
    opt,
    step: Number(metadata.step),
    bos: metadata.bos === '1',
    taskLm: metadata.taskLm === '1',
    recipe,
  };
}

/** Trains (or resumes) the curriculum; returns the model in eval mode and whether every step ran. */
export function trainCurriculum(o: CurriculumOptions = {}): { model: nn.CausalLM; step: number; done: boolean } {
  const stages = o.stages ?? DEFAULT_CURRICULUM;
  const steps = stages.reduce((a, s) => a + s.steps, 0);
  const lr = o.lr ?? 3e-3;
  const seed = o.seed ?? 0;
  const textWeight = o.textWeight ?? 0.5;
  let c: Checkpoint;
  const bos = o.bos ?? false;
  const taskLm = o.taskLm ?? false;
  // Everything else the batches and updates depend on: a resumed run must be the same run.
  const recipe: Record<string, string> = {
    seed: String(seed),
    lr: String(lr),
    textWeight: String(textWeight),
    repeatVocab: o.repeatVocab ?? 'all',
    text: o.text ? fnv1a64(new Uint8Array(o.text.buffer, o.text.byteOffset, o.text.byteLength)) : 'none',
    stages: JSON.stringify(stages),
  };
  if (o.resume) {
    c = loadCheckpoint(o.resume, lr);
    if (c.bos !== bos || c.taskLm !== taskLm)
      throw new ValueError(
        `trainCurriculum: the checkpoint was trained with bos ${c.bos}, taskLm ${c.taskLm}; resumed with bos ${bos}, taskLm ${taskLm}: resume with the same settings`,
      );
    if (o.config && JSON.stringify(o.config) !== JSON.stringify(c.model.config))
      throw new ValueError(
        `trainCurriculum: the checkpoint's model is ${JSON.stringify(c.model.config)}; the options ask for ${JSON.stringify(o.config)}`,
      );
    const differ = c.recipe ? Object.keys(recipe).filter((k) => c.recipe![k] !== recipe[k]) : [];
    if (differ.length)
      throw new ValueError(
        `trainCurriculum: the checkpoint was trained with ${differ.map((k) => `${k} ${c.recipe![k]}`).join(', ')}; resumed with ${differ.map((k) => `${k} ${recipe[k]}`).join(', ')}: resume with the same settings`,
      );
    if (o.stopAt !== undefined && o.stopAt <= c.step)
      throw new ValueError(`trainCurriculum: stopAt ${o.stopAt}, but the checkpoint is already at step ${c.step}`);
    c.recipe = recipe;
  } else {
    manualSeed(seed);
    const model = new nn.CausalLM(o.config ?? RETRIEVAL_MODEL);
    c = { model, opt: new optim.AdamW(model.parameters(), { lr, weightDecay: 0.01 }), step: 0, bos, taskLm, recipe };
  }
  const { model, opt } = c;
  const V = model.config.vocabSize;
  const fused = o.fused ?? V >= FUSED_VOCAB_SIZE;
  model.train();
  const t0 = performance.now();
  let ema = 0;
  let emaText = 0;
  for (; c.step < steps; c.step++) {
    const step = c.step;
    const { B, T, ids, targets, lmTargets } = curriculumBatch(stages, seed, step, o.text, o.repeatVocab, fused, {
      bos,
      taskLm,
    });
    const hasText = lmTargets.some((x) => x !== -100);
    // a batch of pure text (rare at batch 4) has no answers: its answer loss would be 0/0, so it is left out
    const hasAnswers = targets.some((x) => x !== -100);
    // linear warm-up, then cosine decay to a tenth over the whole curriculum
    const warm = Math.min(1, (step + 1) / 50);
    for (const g of opt.paramGroups) g.lr = lr * warm * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
    const [loss, textLoss] = tidy(() => {
      const logits = model.forward(tensor(ids, { shape: [B, T], dtype: 'int32' })).reshape([B * T, V]);
      const la = hasAnswers
        ? F.crossEntropy(logits, tensor(targets, { shape: [B * T], dtype: 'int32' }), { ignoreIndex: -100 })
        : null;
      let total = la;
      let lt = Number.NaN;
      if (hasText) {
        const l2 = F.crossEntropy(logits, tensor(lmTargets, { shape: [B * T], dtype: 'int32' }), {
          ignoreIndex: -100,
        }).mul(textWeight);
        total = total ? total.add(l2) : l2;
        lt = l2.dataSync()[0]! / textWeight;
      }
      total?.backward();
      return [la ? la.dataSync()[0]! : Number.NaN, lt];
    });
    optim.clipGradNorm(model.parameters(), 1).dispose();
    opt.step();
    opt.zeroGrad();
    if (!Number.isNaN(loss)) ema = ema === 0 ? loss : 0.98 * ema + 0.02 * loss;
    if (!Number.isNaN(textLoss)) emaText = emaText === 0 ? textLoss : 0.98 * emaText + 0.02 * textLoss;
    const seconds = (performance.now() - t0) / 1000;
    if (o.log && (step % 50 === 0 || step === steps - 1))
      o.log({ step, steps, length: T, loss: ema, textLoss: emaText, seconds });
    const stop =
      (o.maxSeconds !== undefined && seconds > o.maxSeconds) || (o.stopAt !== undefined && step + 1 >= o.stopAt);
    if (o.checkpoint && ((step + 1) % o.checkpoint.every === 0 || stop || step === steps - 1)) {
      c.step = step + 1;
      o.checkpoint.save(saveCheckpoint(c));
      c.step = step;
    }
    if (stop) {
      c.step++;
      break;
    }
  }
  model.eval();
  return { model, step: c.step, done: c.step >= steps };
}
