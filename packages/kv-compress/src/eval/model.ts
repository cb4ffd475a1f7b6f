// The evaluation's tiny language model: RoPE + grouped KV heads (tensor-core CausalLM), trained for a few
// minutes on the synthetic retrieval mix with AdamW. Seeded, so `tessera-kv-compress train` reproduces it.
import { F, FormatError, io, manualSeed, nn, optim, tensor, tidy } from '@tessera/tensor-core';
import { Rng } from '../linalg.js';
import { trainingSequence, VOCAB } from './tasks.js';

export const EVAL_MODEL: nn.CausalLMConfig = {
  vocabSize: VOCAB.size,
  dModel: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  dFF: 128,
};

/** A wider variant: 4 layers × 4 KV heads × d_head 16, p = 256 per K and V (the research note's LM-S size of p). */
export const EVAL_MODEL_WIDE: nn.CausalLMConfig = { ...EVAL_MODEL, nLayers: 4, nKvHeads: 4 };

export interface TrainOptions {
  config?: nn.CausalLMConfig;
  steps?: number;
  batch?: number;
  length?: number;
  lr?: number;
  seed?: number;
  /** stop early after this many seconds */
  maxSeconds?: number;
  log?: (s: { step: number; loss: number; seconds: number }) => void;
  /** continue from these weights (safetensors) instead of a fresh initialisation */
  init?: Uint8Array;
}

export function trainModel(o: TrainOptions = {}): nn.CausalLM {
  manualSeed(o.seed ?? 0);
  const model = o.init ? loadModel(o.init) : new nn.CausalLM(o.config ?? EVAL_MODEL);
  model.train();
  const steps = o.steps ?? 1200;
  const lr = o.lr ?? 3e-3;
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0.01 });
  const rng = new Rng(o.seed ?? 0);
  const B = o.batch ?? 8;
  const T = o.length ?? 128;
  const t0 = performance.now();
  let ema = 0;
  for (let step = 0; step < steps; step++) {
    const seqs = Array.from({ length: B }, () => trainingSequence(rng, T));
    const ids = new Int32Array(B * T);
    const tg = new Int32Array(B * T);
    seqs.forEach((s, i) => {
      ids.set(s.ids, i * T);
      tg.set(s.targets, i * T);
    });
    // cosine decay after a short warm-up
    const warm = Math.min(1, (step + 1) / 30);
    for (const g of opt.paramGroups) g.lr = lr * warm * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
    const loss = tidy(() => {
      const logits = model.forward(tensor(ids, { shape: [B, T], dtype: 'int32' }));
      const l = F.crossEntropy(logits.reshape([B * T, VOCAB.size]), tensor(tg, { shape: [B * T], dtype: 'int32' }), {
        ignoreIndex: -100,
      });
      l.backward();
      return l.dataSync()[0]!;
    });
    optim.clipGradNorm(model.parameters(), 1).dispose();
    opt.step();
    opt.zeroGrad();
    ema = step === 0 ? loss : 0.95 * ema + 0.05 * loss;
    const seconds = (performance.now() - t0) / 1000;
    if (o.log && (step % 20 === 0 || step === steps - 1)) o.log({ step, loss: ema, seconds });
    if (o.maxSeconds !== undefined && seconds > o.maxSeconds) break;
  }
  model.eval();
  return model;
}

export function saveModel(model: nn.CausalLM): Uint8Array {
  return io.saveSafetensors(model.stateDict(), { metadata: { config: JSON.stringify(model.config) } });
}

/** Loads saved weights, or the weights of a curriculum checkpoint (train.ts: tensors under "model."). */
export function loadModel(bytes: Uint8Array): nn.CausalLM {
  const state = io.loadSafetensors(bytes);
  let config: nn.CausalLMConfig = EVAL_MODEL;
  if (state.metadata.config)
    try {
      config = JSON.parse(state.metadata.config) as nn.CausalLMConfig;
    } catch {
      throw new FormatError("loadModel: the weights' config metadata is not JSON");
    }
  const model = new nn.CausalLM(config);
  const checkpoint = state.metadata.step !== undefined;
  const tensors = checkpoint
    ? new Map([...state.tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice(6), t]))
    : state.tensors;
  model.loadStateDict(tensors);
  model.eval();
  return model;
}
