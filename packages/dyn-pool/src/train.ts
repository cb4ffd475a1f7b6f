// Training, evaluation (bits per character), checkpoints with resume, and generation for HourglassLM,
// following the paper's recipe at small scale: Adam, linear warm-up then cosine, gradient clipping, random
// windows of the character stream, total loss = LM cross-entropy + boundary loss (weight 1).
import {
  checkpointFromBytes,
  F,
  getBackend,
  io,
  memory,
  multinomial,
  noGrad,
  optim,
  Progress,
  randint,
  saveCheckpoint,
  type Tensor,
  tensor,
  tidy,
  ValueError,
} from '@tessera/tensor-core';
import {
  type BoundarySource,
  type HourglassConfig,
  HourglassLM,
  type HourglassOutput,
  type LossParts,
} from './model.js';
import { UnigramTokenizer } from './unigram.js';
import { CharVocab, TextInputError } from './vocab.js';

export interface Corpus {
  vocab: CharVocab;
  train: Int32Array;
  valid: Int32Array;
  /** Unigram boundary targets per token (unigram source only). */
  trainTargets: Uint8Array | null;
  validTargets: Uint8Array | null;
  tokenizer: UnigramTokenizer | null;
  /** Characters of the validation text outside the vocabulary (mapped to the unknown symbol). */
  unknownInValid: number;
}

/**
 * Splits text into train (first 1 − validFraction of the code points) and validation, builds the character
 * vocabulary from the training part, and for the unigram source trains the tokenizer on it.
 */
export function prepareCorpus(
  text: string,
  opts: {
    validFraction?: number;
    source?: BoundarySource;
    unigramVocab?: number;
    /** Reuse a vocabulary and tokenizer (resuming, or evaluating a checkpoint). */
    vocab?: CharVocab;
    tokenizer?: UnigramTokenizer | null;
    /** Held-out text; when given, all of `text` is training text. */
    validText?: string;
  } = {},
): Corpus {
  const { validFraction = 0.05, source = 'none', unigramVocab = 1000 } = opts;
  const cs = [...text];
  if (cs.length < 16) throw new TextInputError(`text has ${cs.length} characters; at least 16 are needed`);
  const cut =
    opts.validText !== undefined
      ? cs.length
      : validFraction >= 1
        ? 0
        : Math.max(1, Math.min(cs.length - 1, Math.round(cs.length * (1 - validFraction))));
  const trainText = cs.slice(0, cut).join('');
  const validText = opts.validText ?? cs.slice(cut).join('');
  if (cut === 0 && !opts.vocab) throw new ValueError('prepareCorpus: an all-validation split needs a vocabulary');
  const vocab = opts.vocab ?? CharVocab.fromText(trainText);
  const train = vocab.encode(trainText).ids;
  const valid = vocab.encode(validText);
  let tokenizer: UnigramTokenizer | null = null;
  let trainTargets: Uint8Array | null = null;
  let validTargets: Uint8Array | null = null;
  if (source === 'unigram') {
    const nChars = new Set(trainText.replace(/\s/gu, '')).size + 1;
    tokenizer = opts.tokenizer ?? UnigramTokenizer.train(trainText, { vocabSize: Math.max(unigramVocab, nChars) });
    trainTargets = tokenizer.boundaries(trainText);
    validTargets = tokenizer.boundaries(validText);
  }
  return { vocab, train, valid: valid.ids, trainTargets, validTargets, tokenizer, unknownInValid: valid.unknown };
}

export interface TrainOptions {
  /** Length of the run (the schedule's horizon). */
  steps: number;
  /** Stop (with a checkpoint) after this step, to continue later with resume. */
  stopAt?: number;
  batchSize: number;
  /** Training window length (the model's maxSeqLen). */
  seqLen: number;
  lr?: number;
  warmup?: number;
  clip?: number;
  /** Write a checkpoint here every checkpointEvery steps and at the end. */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Validation BPC every evalEvery steps on at most evalTokens tokens. */
  evalEvery?: number;
  evalTokens?: number;
  /** Show a progress line (stderr). */
  progress?: boolean;
  log?: (line: string) => void;
}

export interface TrainStats {
  step: number;
  /** Mean LM loss of the last 10 % of steps, in bits per character. */
  trainBpc: number;
  /** tokens / boundaries over training (1 for the vanilla model). */
  shorteningFactor: number;
  tokensPerSecond: number;
  /** Tokens per second of this process's CPU time (robust to other load on a shared machine). */
  tokensPerCpuSecond: number;
  seconds: number;
  /** Peak resident set size of the process during training, and peak bytes held by tensors. */
  peakRssBytes: number;
  peakTensorBytes: number;
  history: { step: number; bpc: number; validBpc?: number }[];
}

export interface SavedConfig {
  model: HourglassConfig;
  vocab: string[];
  tokenizer: ReturnType<UnigramTokenizer['toJSON']> | null;
  train: { batchSize: number; seqLen: number; lr: number; warmup: number; steps: number; clip: number };
}

/** Builds the optimizer and schedule for a model (Adam (0.9, 0.999), warm-up then cosine, as the paper). */
export function makeOptimizer(model: HourglassLM, o: { lr: number; warmup: number; steps: number }) {
  const opt = new optim.Adam(model.parameters(), { lr: o.lr });
  const sched = new optim.LRScheduler(opt, optim.warmupCosine(o.warmup, o.steps, 0.1));
  return { opt, sched };
}

async function sampleBatch(
  data: Int32Array,
  targets: Uint8Array | null,
  B: number,
  T: number,
): Promise<{ ids: Tensor; targets?: Tensor }> {
  if (data.length < T + 1)
    throw new ValueError(`training text has ${data.length} characters; a window of ${T + 1} is needed`);
  const starts = randint(0, data.length - T, [B]);
  const s = await starts.data();
  starts.dispose();
  const ids = new Int32Array(B * (T + 1));
  const tg = targets ? new Float32Array(B * T) : null;
  for (let r = 0; r < B; r++) {
    ids.set(data.subarray(s[r]!, s[r]! + T + 1), r * (T + 1));
    if (tg) for (let t = 0; t < T; t++) tg[r * T + t] = targets![s[r]! + t]!;
  }
  return {
    ids: tensor(ids, { shape: [B, T + 1], dtype: 'int32' }),
    targets: tg ? tensor(tg, { shape: [B, T] }) : undefined,
  };
}

/**
 * Trains `model` on `corpus`, resuming from `resume` (the state `loadTrained` returned) when given. The RNG,
 * optimizer and schedule are part of every checkpoint, so an interrupted run resumes bit-exactly.
 */
export async function train(
  model: HourglassLM,
  corpus: Corpus,
  o: TrainOptions,
  resume?: { step: number; opt: optim.Adam; sched: optim.LRScheduler },
): Promise<TrainStats> {
  const lr = o.lr ?? 1e-3;
  const warmup = o.warmup ?? Math.min(100, Math.floor(o.steps / 10));
  const clip = o.clip ?? 0.25;
  const { opt, sched } = resume ?? makeOptimizer(model, { lr, warmup, steps: o.steps });
  const start = resume?.step ?? 0;
  const log = o.log ?? (() => {});
  const cfg: SavedConfig = {
    model: model.config,
    vocab: [...corpus.vocab.symbols],
    tokenizer: corpus.tokenizer?.toJSON() ?? null,
    train: { batchSize: o.batchSize, seqLen: o.seqLen, lr, warmup, steps: o.steps, clip },
  };
  const progress = o.progress
    ? new Progress(o.steps, {
        label: model.config.boundary,
        itemsPerStep: o.batchSize * o.seqLen,
        unit: 'tok',
        startStep: start,
      })
    : null;
  const history: TrainStats['history'] = [];
  let boundaries = 0;
  let tokens = 0;
  let peakRss = process.memoryUsage().rss;
  let peakTensor = memory().numBytes;
  const tail: number[] = [];
  const tailLen = Math.max(1, Math.ceil((Math.min(o.steps, o.stopAt ?? o.steps) - start) / 10));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let evalCpu = 0;
  model.train();
  const last = Math.min(o.steps, o.stopAt ?? o.steps);
  for (let step = start + 1; step <= last; step++) {
    const batch = await sampleBatch(corpus.train, corpus.trainTargets, o.batchSize, o.seqLen);
    const update = (parts: LossParts & { output: HourglassOutput }, backward = true) => {
      peakTensor = Math.max(peakTensor, memory().numBytes);
      if (backward) parts.loss.backward();
      peakTensor = Math.max(peakTensor, memory().numBytes);
      HourglassLM.disposeOutput(parts.output);
      optim.clipGradNorm(model.parameters(), clip).dispose();
      opt.step();
      sched.step();
      opt.zeroGrad();
    };
    let r: { lm: number; nb: number; nt: number };
    if (getBackend() === 'cpu')
      r = tidy(() => {
        const parts = model.loss(batch.ids, { boundaryTargets: batch.targets });
        update(parts);
        return { lm: parts.lm.itemSync(), nb: parts.nBoundaries, nt: parts.nTokens };
      });
    else {
      // backends without synchronous reads (WebGPU): the same step, reading back with await
      const parts = await model.lossAsync(batch.ids, { boundaryTargets: batch.targets });
      peakTensor = Math.max(peakTensor, memory().numBytes);
      await model.backwardAsync(parts.loss);
      tidy(() => update(parts, false));
      r = { lm: await parts.lm.item(), nb: parts.nBoundaries, nt: parts.nTokens };
      for (const t of new Set([parts.loss, parts.lm, parts.boundary])) t?.dispose();
    }
    batch.ids.dispose();
    batch.targets?.dispose();
    if (!Number.isFinite(r.lm)) throw new ValueError(`training diverged at step ${step} (loss ${r.lm})`);
    boundaries += r.nb;
    tokens += r.nt;
    const bpc = r.lm / Math.LN2;
    tail.push(bpc);
    if (tail.length > tailLen) tail.shift();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    progress?.update(step, bpc);
    const entry: TrainStats['history'][number] = { step, bpc };
    if (o.evalEvery && step % o.evalEvery === 0) {
      const c0 = process.cpuUsage();
      entry.validBpc = evaluate(model, corpus, { seqLen: o.seqLen, maxTokens: o.evalTokens }).bpc;
      model.train();
      const c1 = process.cpuUsage(c0);
      evalCpu += (c1.user + c1.system) / 1e6;
      log(`step ${step}: train ${bpc.toFixed(3)} bpc, valid ${entry.validBpc.toFixed(3)} bpc`);
    }
    history.push(entry);
    if (o.checkpoint && ((o.checkpointEvery && step % o.checkpointEvery === 0) || step === last))
      await saveCheckpoint(o.checkpoint, {
        model,
        optimizer: opt,
        step,
        config: cfg,
        extra: { schedulerStep: sched.lastStep },
      });
  }
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  const cpuSeconds = (c.user + c.system) / 1e6 - evalCpu;
  return {
    step: last,
    trainBpc: tail.length ? tail.reduce((a, b) => a + b) / tail.length : Number.NaN,
    shorteningFactor: boundaries > 0 ? tokens / boundaries : Number.POSITIVE_INFINITY,
    tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
    tokensPerCpuSecond: cpuSeconds > 0 ? tokens / cpuSeconds : 0,
    seconds,
    peakRssBytes: peakRss,
    peakTensorBytes: peakTensor,
    history,
  };
}

export interface EvalResult {
  bpc: number;
  tokens: number;
  shorteningFactor: number;
  tokensPerSecond: number;
  tokensPerCpuSecond: number;
}

/**
 * Bits per character on the validation split. Windows of seqLen + 1 characters start every `stride` characters
 * (default seqLen: consecutive windows); the first window scores all its positions, later ones only their last
 * `stride`, so each character is scored once, with at least seqLen − stride characters of context — the paper
 * evaluates with 2048-character windows and stride 512.
 */
export function evaluate(
  model: HourglassLM,
  corpus: Pick<Corpus, 'valid'>,
  o: { seqLen: number; maxTokens?: number; batchSize?: number; stride?: number },
): EvalResult {
  const T = o.seqLen;
  const stride = o.stride ?? T;
  if (!Number.isInteger(stride) || stride < 1 || stride > T)
    throw new ValueError(`evaluate: stride must be an integer in [1, ${T}]; got ${stride}`);
  const data = corpus.valid;
  if (data.length < T + 1)
    throw new ValueError(`evaluate: the validation text has ${data.length} characters; ${T + 1} are needed`);
  const limit = Math.min(data.length - 1, o.maxTokens ?? Number.POSITIVE_INFINITY);
  const starts: number[] = [];
  for (let s = 0; s + T + 1 <= data.length && (s === 0 || s + T - stride < limit); s += stride) starts.push(s);
  const V = model.config.vocabSize;
  const B = o.batchSize ?? 8;
  model.eval();
  let nats = 0;
  let tokens = 0;
  let boundaries = 0;
  let pooled = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  noGrad(() => {
    for (let w0 = 0; w0 < starts.length; w0 += B) {
      const nb = Math.min(B, starts.length - w0);
      const ids = new Int32Array(nb * T);
      const tgt = new Int32Array(nb * T);
      for (let r = 0; r < nb; r++) {
        const at = starts[w0 + r]!;
        ids.set(data.subarray(at, at + T), r * T);
        tgt.set(data.subarray(at + 1, at + T + 1), r * T);
      }
      tidy(() => {
        const out = model.forward(tensor(ids, { shape: [nb, T], dtype: 'int32' }));
        const ce = F.crossEntropy(out.logits.reshape([nb * T, V]), tensor(tgt, { shape: [nb * T], dtype: 'int32' }), {
          reduction: 'none',
        }).dataSync();
        const b = out.boundaries?.dataSync();
        for (let r = 0; r < nb; r++) {
          const first = w0 + r === 0 ? 0 : T - stride;
          for (let t = first; t < T; t++) {
            nats += ce[r * T + t]!;
            tokens++;
          }
          for (let t = 0; t < T; t++) boundaries += b ? b[r * T + t]! : 1;
          pooled += T;
        }
        HourglassLM.disposeOutput(out);
      });
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  return {
    bpc: nats / tokens / Math.LN2,
    tokens,
    shorteningFactor: boundaries > 0 ? pooled / boundaries : Number.POSITIVE_INFINITY,
    tokensPerSecond: pooled / seconds,
    tokensPerCpuSecond: pooled / ((c.user + c.system) / 1e6),
  };
}

/** Reads a checkpoint's config without loading its tensors. */
export function readCheckpointConfig(bytes: Uint8Array): SavedConfig {
  const { metadata } = io.parseSafetensors(bytes);
  const raw = metadata['tessera.checkpoint'];
  if (!raw) throw new ValueError('not a Tessera checkpoint (no tessera.checkpoint metadata)');
  const head = JSON.parse(raw) as { config?: SavedConfig };
  if (!head.config?.model || !head.config.vocab) throw new ValueError('checkpoint was not written by dyn-pool');
  return head.config;
}

/**
 * Rebuilds model (and optimizer and schedule, for resuming) from checkpoint bytes; `steps` overrides the
 * saved run length (the schedule is stretched to it).
 */
export function loadTrained(
  bytes: Uint8Array,
  opts: { steps?: number } = {},
): {
  model: HourglassLM;
  vocab: CharVocab;
  tokenizer: UnigramTokenizer | null;
  config: SavedConfig;
  step: number;
  opt: optim.Adam;
  sched: optim.LRScheduler;
} {
  const config = readCheckpointConfig(bytes);
  if (opts.steps !== undefined && opts.steps > config.train.steps) config.train.steps = opts.steps;
  const model = new HourglassLM(config.model);
  const { opt, sched } = makeOptimizer(model, config.train);
  const loaded = checkpointFromBytes(bytes, { model, optimizer: opt });
  sched.setStep((loaded.extra.schedulerStep as number | undefined) ?? loaded.step);
  return {
    model,
    vocab: new CharVocab(config.vocab),
    tokenizer: config.tokenizer ? UnigramTokenizer.fromJSON(config.tokenizer) : null,
    config,
    step: loaded.step,
    opt,
    sched,
  };
}

/**
 * Samples maxNewTokens characters after the prompt ids. The model re-reads its last maxSeqLen tokens each step
 * (pooling boundaries depend on the whole window), so prompts longer than that are cut from the left.
 */
export function generate(
  model: HourglassLM,
  prompt: Int32Array,
  o: { maxNewTokens: number; temperature?: number; topK?: number },
): Int32Array {
  if (prompt.length === 0) throw new ValueError('generate: empty prompt');
  const { temperature = 1, topK } = o;
  const out = Array.from(prompt);
  const L = model.config.maxSeqLen;
  model.eval();
  noGrad(() => {
    for (let s = 0; s < o.maxNewTokens; s++) {
      const ctx = out.slice(-L);
      const next = tidy(() => {
        const res = model.forward(tensor(Int32Array.from(ctx), { shape: [1, ctx.length], dtype: 'int32' }));
        const last = res.logits.select(1, ctx.length - 1); // [1, V]
        if (temperature === 0) return last.argmax(-1).dataSync()[0]!;
        let l = last.div(temperature);
        if (topK !== undefined && topK < l.shape[1]!) {
          const kth = l.topk(topK, -1).values.slice(1, topK - 1, topK);
          l = l.where(l.ge(kth), Number.NEGATIVE_INFINITY);
        }
        return multinomial(l.softmax(-1), 1, { replacement: true }).dataSync()[0]!;
      });
      out.push(next);
    }
  });
  return Int32Array.from(out);
}
