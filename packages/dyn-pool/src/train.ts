// Training, evaluation (bits per character), checkpoints with resume, and generation for HourglassLM,
// following the paper's recipe at small scale: Adam, linear warm-up then cosine, gradient clipping, random
// windows of the character stream, total loss = LM cross-entropy + boundary loss (weight 1).
import {
  type Checkpoint,
  checkpointFromBytes,
  F,
  getBackend,
  getRngState,
  gumbel,
  io,
  memory,
  noGrad,
  optim,
  Progress,
  randint,
  saveCheckpoint,
  setBackend,
  setRngState,
  type Tensor,
  tensor,
  tidy,
  ValueError,
} from '@tessera/tensor-core';
import { HourglassDecoder } from './decoder.js';
import {
  type BoundarySource,
  type HourglassConfig,
  HourglassLM,
  type HourglassOutput,
  type LossParts,
} from './model.js';
import { UnigramTokenizer } from './unigram.js';
import { CharVocab, codePointLength, codeUnitOffset, TextInputError } from './vocab.js';

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
  /**
   * Characters of the training text outside the vocabulary: 0 when the vocabulary was built from it; more when
   * a given vocabulary (a checkpoint's) does not cover it — resuming on another text.
   */
  unknownInTrain: number;
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
  // Counted and cut by code point without an array of characters (a 40M-character corpus made ~1 GB of
  // short-lived strings and arrays that way).
  const n = codePointLength(text);
  if (n < 16) throw new TextInputError(`text has ${n} characters; at least 16 are needed`);
  const cut =
    opts.validText !== undefined
      ? n
      : validFraction >= 1
        ? 0
        : Math.max(1, Math.min(n - 1, Math.round(n * (1 - validFraction))));
  const cutAt = codeUnitOffset(text, cut);
  const trainText = text.slice(0, cutAt);
  const validText = opts.validText ?? text.slice(cutAt);
  if (cut === 0 && !opts.vocab) throw new ValueError('prepareCorpus: an all-validation split needs a vocabulary');
  const vocab = opts.vocab ?? CharVocab.fromText(trainText);
  const encodedTrain = vocab.encode(trainText);
  const train = encodedTrain.ids;
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
  return {
    vocab,
    train,
    valid: valid.ids,
    trainTargets,
    validTargets,
    tokenizer,
    unknownInValid: valid.unknown,
    unknownInTrain: encodedTrain.unknown,
  };
}

/**
 * Which text a run trains and validates on, as lengths and a 53-bit hash of the ids (two 32-bit multiply–xor
 * lanes, cyrb53's construction): saved with every checkpoint so that `--resume` on another text — or another
 * split of it — is refused instead of continuing on data the run never saw.
 */
export function corpusFingerprint(corpus: Pick<Corpus, 'train' | 'valid'>): CorpusFingerprint {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const mix = (ids: Int32Array) => {
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i]!;
      h1 = Math.imul(h1 ^ v, 2654435761);
      h2 = Math.imul(h2 ^ v, 1597334677);
    }
    h1 = Math.imul(h1 ^ ids.length, 2246822507);
    h2 = Math.imul(h2 ^ ids.length, 3266489909);
  };
  mix(corpus.train);
  mix(corpus.valid);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hash = (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  return { trainChars: corpus.train.length, validChars: corpus.valid.length, hash };
}

export interface CorpusFingerprint {
  trainChars: number;
  validChars: number;
  hash: string;
}

/** The evaluation's own requirements, checked before a run that will evaluate spends its training time. */
export function checkEvaluable(validChars: number, seqLen: number, stride = seqLen): void {
  if (!Number.isInteger(stride) || stride < 1 || stride > seqLen)
    throw new ValueError(`evaluate: stride must be an integer in [1, ${seqLen}]; got ${stride}`);
  if (validChars < seqLen + 1)
    throw new ValueError(
      `evaluate: the validation text has ${validChars} characters; ${seqLen + 1} are needed (a window of the sequence length and its next character)`,
    );
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
  /** Mean LM loss of the last 10 % of steps, in bits per character (NaN when no step ran: a resume at the end). */
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
  train: {
    batchSize: number;
    seqLen: number;
    lr: number;
    warmup: number;
    steps: number;
    clip: number;
    /** The text trained and validated on (checkpoints from before it have none, and are not checked). */
    corpus?: CorpusFingerprint;
  };
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
 * The default peak learning rate, for `train()` and the CLI alike: the best of the lr screen at the CLI's
 * default size (README, "The default learning rate"). Wider models want less: at d 256 with 2 + 4 + 2 blocks
 * 3e-3 collapsed after warm-up and 1e-3 trained (REPRODUCTION.md, the size).
 */
export const DEFAULT_LR = 6e-3;

/**
 * Trains `model` on `corpus`, resuming from `resume` (the state `loadTrained` returned) when given. The RNG,
 * optimizer and schedule are part of every checkpoint, so an interrupted run resumes bit-exactly.
 */
export async function train(
  model: HourglassLM,
  corpus: Corpus,
  o: TrainOptions,
  resume?: { step: number; opt: optim.Adam; sched: optim.LRScheduler; config?: SavedConfig },
): Promise<TrainStats> {
  const fingerprint = corpusFingerprint(corpus);
  const was = resume?.config?.train.corpus;
  if (was && (was.hash !== fingerprint.hash || was.trainChars !== fingerprint.trainChars))
    throw new ValueError(
      `resume: this run trained on another text (${was.trainChars} training / ${was.validChars} validation characters, hash ${was.hash}); ` +
        `this one has ${fingerprint.trainChars} / ${fingerprint.validChars} (hash ${fingerprint.hash}). Resume with the same text, --valid and --valid-fraction, or start a new run`,
    );
  if (o.evalEvery) checkEvaluable(corpus.valid.length, o.seqLen);
  const lr = o.lr ?? DEFAULT_LR;
  const warmup = o.warmup ?? Math.min(100, Math.floor(o.steps / 10));
  const clip = o.clip ?? 0.25;
  const { opt, sched } = resume ?? makeOptimizer(model, { lr, warmup, steps: o.steps });
  const start = resume?.step ?? 0;
  const log = o.log ?? (() => {});
  const cfg: SavedConfig = {
    model: model.config,
    vocab: [...corpus.vocab.symbols],
    tokenizer: corpus.tokenizer?.toJSON() ?? null,
    train: { batchSize: o.batchSize, seqLen: o.seqLen, lr, warmup, steps: o.steps, clip, corpus: fingerprint },
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
      const eo = { seqLen: o.seqLen, maxTokens: o.evalTokens };
      entry.validBpc = (
        getBackend() === 'cpu' ? evaluate(model, corpus, eo) : await evaluateAsync(model, corpus, eo)
      ).bpc;
      model.train();
      const c1 = process.cpuUsage(c0);
      evalCpu += (c1.user + c1.system) / 1e6;
      log(`step ${step}: train ${bpc.toFixed(3)} bpc, valid ${entry.validBpc.toFixed(3)} bpc`);
    }
    history.push(entry);
    if (o.checkpoint && ((o.checkpointEvery && step % o.checkpointEvery === 0) || step === last))
      await writeCheckpoint(o.checkpoint, {
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
    // Where the model is now: a resume past an earlier stop-at trains nothing and stays where it was.
    step: Math.max(start, last),
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

/**
 * Writes a training checkpoint atomically (tensor-core's `saveCheckpoint`). Its serialiser reads tensors
 * synchronously, so the state of a model on another backend (WebGPU) is first copied to the CPU with
 * `await t.to('cpu')`; the bytes are the same either way.
 */
export async function writeCheckpoint(path: string, ck: Checkpoint): Promise<void> {
  if (ck.model.parameters().every((p) => p.backend === 'cpu')) return saveCheckpoint(path, ck);
  const toCpu = async (m: Map<string, Tensor>) =>
    new Map(await Promise.all([...m].map(async ([k, t]) => [k, await t.to('cpu')] as const)));
  const m = await toCpu(ck.model.stateDict());
  const optState = ck.optimizer?.stateDict();
  const t = optState ? await toCpu(optState.tensors) : new Map<string, Tensor>();
  try {
    // Stand-ins that hand the serialiser the CPU copies.
    const model = { stateDict: () => m } as unknown as Checkpoint['model'];
    const optimizer = optState
      ? ({ stateDict: () => ({ tensors: t, meta: optState.meta }) } as unknown as Checkpoint['optimizer'])
      : undefined;
    await saveCheckpoint(path, { ...ck, model, optimizer });
  } finally {
    for (const x of [...m.values(), ...t.values()]) x.dispose();
  }
}

export interface EvalResult {
  bpc: number;
  tokens: number;
  shorteningFactor: number;
  tokensPerSecond: number;
  tokensPerCpuSecond: number;
  /** With `EvalOptions.byWordPosition`: the same score split by where the scored character sits in its word. */
  byWordPosition?: WordPositionBpc[];
}

/**
 * One bucket of `EvalResult.byWordPosition`: `label` is `'whitespace'` (the scored character is whitespace),
 * `'1'`, `'2'`, … (the n-th character after the last whitespace) or `'n+'` for the last bucket.
 */
export interface WordPositionBpc {
  label: string;
  characters: number;
  bpc: number;
}

/**
 * Bits per character on the validation split. Windows of seqLen + 1 characters start every `stride` characters
 * (default seqLen: consecutive windows); the first window scores all its positions, later ones only their last
 * `stride`, so each character is scored at most once, with at least seqLen − stride characters of context — the
 * paper evaluates with 2048-character windows and stride 512. Windows are whole: the last characters after the
 * final window (fewer than `stride`) are not scored; `tokens` in the result says how many were. The model is in
 * eval mode for the run and back in its own mode after. Synchronous reads (CPU); `evaluateAsync` runs on every
 * backend.
 */
export function evaluate(model: HourglassLM, corpus: Pick<Corpus, 'valid'>, o: EvalOptions): EvalResult {
  const wasTraining = model.isTraining;
  try {
    const ev = new Evaluation(model, corpus, o);
    noGrad(() => {
      for (const batch of ev.batches()) {
        tidy(() => {
          const out = model.forward(batch.ids);
          ev.add(batch, ev.score(batch, out).dataSync(), out.boundaries?.dataSync() ?? null);
          HourglassLM.disposeOutput(out);
        });
        batch.ids.dispose();
        batch.targets.dispose();
      }
    });
    return ev.result();
  } finally {
    // eval mode for the run, then the caller's mode back (a training loop that samples keeps its dropout)
    if (wasTraining) model.train();
  }
}

/** `evaluate` for every backend (WebGPU included): the same windows and sums, read back with `await`. */
export async function evaluateAsync(
  model: HourglassLM,
  corpus: Pick<Corpus, 'valid'>,
  o: EvalOptions,
): Promise<EvalResult> {
  const wasTraining = model.isTraining;
  try {
    const ev = new Evaluation(model, corpus, o);
    for (const batch of ev.batches()) {
      try {
        const out = await noGrad(() => model.forwardAsync(batch.ids));
        try {
          const ce = noGrad(() => tidy(() => ev.score(batch, out)));
          try {
            ev.add(batch, await ce.data(), out.boundaries ? await out.boundaries.data() : null);
          } finally {
            ce.dispose();
          }
        } finally {
          HourglassLM.disposeOutput(out);
        }
      } finally {
        batch.ids.dispose();
        batch.targets.dispose();
      }
    }
    return ev.result();
  } finally {
    // eval mode for the run, then the caller's mode back (a training loop that samples keeps its dropout)
    if (wasTraining) model.train();
  }
}

export interface EvalOptions {
  seqLen: number;
  maxTokens?: number;
  batchSize?: number;
  stride?: number;
  /**
   * Split the score by the scored character's position in its word, counted from the last whitespace
   * (`vocab.spaceIds()`), positions ≥ `maxPosition` (default 5) in one bucket. A pooling model's shortened block
   * sees a word only once it has ended (whitespace pooling: at its space), so its later characters lean on the
   * pre and post blocks alone; this shows where a pooled model gains or loses against vanilla.
   */
  byWordPosition?: { spaceIds: readonly number[]; maxPosition?: number };
}

interface EvalBatch {
  /** Index of the first window of the batch, and the number of windows in it. */
  w0: number;
  nb: number;
  ids: Tensor;
  targets: Tensor;
}

/** Windows, batches and running sums of an evaluation; the backends differ only in how they read back. */
class Evaluation {
  private readonly T: number;
  private readonly stride: number;
  private readonly starts: number[] = [];
  private nats = 0;
  private tokens = 0;
  private boundaries = 0;
  private pooled = 0;
  /** Bucket of each validation character (byWordPosition), with nats and counts per bucket. */
  private readonly bucket: Uint8Array | null = null;
  private readonly bucketNats: Float64Array = new Float64Array(0);
  private readonly bucketCount: Float64Array = new Float64Array(0);
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();

  constructor(
    private readonly model: HourglassLM,
    private readonly corpus: Pick<Corpus, 'valid'>,
    private readonly o: EvalOptions,
  ) {
    const T = o.seqLen;
    const stride = o.stride ?? T;
    const data = corpus.valid;
    checkEvaluable(data.length, T, stride);
    const limit = Math.min(data.length - 1, o.maxTokens ?? Number.POSITIVE_INFINITY);
    for (let s = 0; s + T + 1 <= data.length && (s === 0 || s + T - stride < limit); s += stride) this.starts.push(s);
    this.T = T;
    this.stride = stride;
    if (o.byWordPosition) {
      const { spaceIds, maxPosition = 5 } = o.byWordPosition;
      if (!Number.isInteger(maxPosition) || maxPosition < 1 || maxPosition > 254)
        throw new ValueError(`evaluate: byWordPosition.maxPosition must be an integer in [1, 254]; got ${maxPosition}`);
      if (spaceIds.length === 0)
        throw new ValueError('evaluate: byWordPosition needs the whitespace ids (vocab.spaceIds())');
      const space = new Set(spaceIds);
      // Bucket 0: whitespace; k ≥ 1: the k-th character since the last whitespace (or the text's start).
      this.bucket = new Uint8Array(data.length);
      let since = 0;
      for (let j = 0; j < data.length; j++) {
        if (space.has(data[j]!)) since = 0;
        else this.bucket[j] = Math.min(++since, maxPosition);
      }
      this.bucketNats = new Float64Array(maxPosition + 1);
      this.bucketCount = new Float64Array(maxPosition + 1);
    }
    model.eval();
  }

  *batches(): Generator<EvalBatch> {
    const { T } = this;
    const B = this.o.batchSize ?? 8;
    const data = this.corpus.valid;
    for (let w0 = 0; w0 < this.starts.length; w0 += B) {
      const nb = Math.min(B, this.starts.length - w0);
      const ids = new Int32Array(nb * T);
      const tgt = new Int32Array(nb * T);
      for (let r = 0; r < nb; r++) {
        const at = this.starts[w0 + r]!;
        ids.set(data.subarray(at, at + T), r * T);
        tgt.set(data.subarray(at + 1, at + T + 1), r * T);
      }
      yield {
        w0,
        nb,
        ids: tensor(ids, { shape: [nb, T], dtype: 'int32' }),
        targets: tensor(tgt, { shape: [nb * T], dtype: 'int32' }),
      };
    }
  }

  /** Per-position cross-entropy (nats) [nb · T] of a forward output. */
  score(batch: EvalBatch, out: HourglassOutput): Tensor {
    const V = this.model.config.vocabSize;
    return F.crossEntropy(out.logits.reshape([batch.nb * this.T, V]), batch.targets, { reduction: 'none' });
  }

  add(batch: EvalBatch, ce: ArrayLike<number>, b: ArrayLike<number> | null): void {
    const { T, stride } = this;
    for (let r = 0; r < batch.nb; r++) {
      const first = batch.w0 + r === 0 ? 0 : T - stride;
      for (let t = first; t < T; t++) {
        this.nats += ce[r * T + t]!;
        this.tokens++;
      }
      if (this.bucket) {
        // Position t predicts the character at start + t + 1.
        const at = this.starts[batch.w0 + r]! + 1;
        for (let t = first; t < T; t++) {
          const k = this.bucket[at + t]!;
          this.bucketNats[k]! += ce[r * T + t]!;
          this.bucketCount[k]!++;
        }
      }
      for (let t = 0; t < T; t++) this.boundaries += b ? b[r * T + t]! : 1;
      this.pooled += T;
    }
  }

  result(): EvalResult {
    const seconds = (performance.now() - this.t0) / 1000;
    const c = process.cpuUsage(this.cpu0);
    return {
      bpc: this.nats / this.tokens / Math.LN2,
      tokens: this.tokens,
      shorteningFactor: this.boundaries > 0 ? this.pooled / this.boundaries : Number.POSITIVE_INFINITY,
      tokensPerSecond: this.pooled / seconds,
      tokensPerCpuSecond: this.pooled / ((c.user + c.system) / 1e6),
      ...(this.bucket && {
        byWordPosition: [...this.bucketCount].map((n, k) => ({
          label: k === 0 ? 'whitespace' : k === this.bucketCount.length - 1 ? `${k}+` : String(k),
          characters: n,
          bpc: n > 0 ? this.bucketNats[k]! / n / Math.LN2 : Number.NaN,
        })),
      }),
    };
  }
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
  // Checkpoints written while pre-LN was the default carry no `ln`; the model now records it.
  config.model.ln ??= 'pre';
  // Checkpoints written before `init` existed were built with tensor-core's PyTorch-style uniform layers.
  config.model.init ??= 'torch';
  // Checkpoints written before `positions` existed used rotary positions.
  config.model.positions ??= 'rotary';
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
 * `loadTrained` onto the active backend, whichever it is: tensor-core's checkpoint reader checks its CRC with
 * synchronous reads, so on another backend (WebGPU) the checkpoint is read on the CPU and its state moved
 * with `await t.to(backend)`. The RNG ends in the checkpoint's state, as with `loadTrained`.
 */
export async function loadTrainedAsync(
  bytes: Uint8Array,
  opts: { steps?: number } = {},
): Promise<ReturnType<typeof loadTrained>> {
  const backend = getBackend();
  if (backend === 'cpu') return loadTrained(bytes, opts);
  await setBackend('cpu');
  let cpu: ReturnType<typeof loadTrained>;
  try {
    cpu = loadTrained(bytes, opts);
  } finally {
    await setBackend(backend);
  }
  const rng = getRngState(); // building the model below draws initial weights; the checkpoint's RNG wins
  const model = new HourglassLM(cpu.config.model);
  const { opt, sched } = makeOptimizer(model, cpu.config.train);
  setRngState(rng);
  const move = async (m: Map<string, Tensor>) =>
    new Map(await Promise.all([...m].map(async ([k, t]) => [k, await t.to(backend)] as const)));
  const weights = await move(cpu.model.stateDict());
  const optState = cpu.opt.stateDict();
  const moments = await move(optState.tensors);
  try {
    model.loadStateDict(weights);
    opt.loadStateDict({ tensors: moments, meta: optState.meta });
  } finally {
    for (const x of [...weights.values(), ...moments.values()]) x.dispose();
    for (const x of cpu.model.stateDict().values()) x.dispose();
    for (const x of cpu.opt.stateDict().tensors.values()) x.dispose();
  }
  sched.setStep(cpu.sched.lastStep);
  return { ...cpu, model, opt, sched };
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Softmax temperature; 0 is greedy (argmax). Default 1. */
  temperature?: number;
  /** Sample from the k most likely characters only. */
  topK?: number;
  /**
   * 'cached' (the default): an `HourglassDecoder` keeps every stack's keys and values and the open group, so a
   * character costs one position per block; when the context reaches maxSeqLen it is re-read from its last
   * ⌈maxSeqLen / 2⌉ characters, so every character still sees at least half a window. 'window': the model
   * re-reads its last maxSeqLen characters at every step (a sliding window: a whole window's work per
   * character; ≈ 30× slower in bench/generate.bench.ts). The
   * two draw the same characters for a seed while the prompt and the new characters fit in maxSeqLen (Gumbel
   * boundaries in 'sample' mode aside: they draw their noise differently).
   */
  context?: 'cached' | 'window';
  /** Called with each new id as soon as it is drawn (to stream the text), before the next step runs. */
  onToken?: (id: number) => void;
}

/**
 * Samples maxNewTokens characters after the prompt ids (prompts longer than maxSeqLen are cut from the left).
 * Sampling is Gumbel-max on the host — argmax_c (l_c / τ + g_c) over the top-k logits, g standard Gumbel
 * noise from tensor-core's seeded generator — so every backend draws the same characters for a seed.
 * Synchronous reads (CPU); `generateAsync` runs on every backend.
 */
export function generate(model: HourglassLM, prompt: Int32Array, o: GenerateOptions): Int32Array {
  const wasTraining = model.isTraining;
  try {
    const g = new Sampling(model, prompt, o);
    // The last row's logits → an id (the logits are disposed).
    const drawLast = (logits: Tensor): number => {
      try {
        return noGrad(() =>
          tidy(() =>
            g.pick(logits.select(0, logits.shape[0]! - 1).dataSync(), g.noisy ? gumbel([g.V]).dataSync() : null),
          ),
        );
      } finally {
        logits.dispose();
      }
    };
    if (o.context === 'window') {
      for (let s = 0; s < o.maxNewTokens; s++) {
        const ctx = g.window();
        g.take(drawLast(noGrad(() => tidy(() => model.forward(g.ids(ctx)).logits.reshape([ctx.length, g.V])))));
      }
      return g.result();
    }
    const dec = new HourglassDecoder(model);
    try {
      for (let s = 0; s < o.maxNewTokens; s++) g.take(drawLast(dec.append(g.feed(dec))));
    } finally {
      dec.dispose();
    }
    return g.result();
  } finally {
    // eval mode for the run, then the caller's mode back (a training loop that samples keeps its dropout)
    if (wasTraining) model.train();
  }
}

/** `generate` for every backend (WebGPU included): the same draws, read back with `await`. */
export async function generateAsync(model: HourglassLM, prompt: Int32Array, o: GenerateOptions): Promise<Int32Array> {
  const wasTraining = model.isTraining;
  try {
    const g = new Sampling(model, prompt, o);
    const drawLast = async (logits: Tensor): Promise<number> => {
      const last = tidy(() => logits.select(0, logits.shape[0]! - 1).contiguous());
      logits.dispose();
      const noise = g.noisy ? gumbel([g.V]) : null;
      try {
        return g.pick(await last.data(), noise ? await noise.data() : null);
      } finally {
        last.dispose();
        noise?.dispose();
      }
    };
    if (o.context === 'window') {
      for (let s = 0; s < o.maxNewTokens; s++) {
        const ctx = g.window();
        const ids = g.ids(ctx);
        const res = await noGrad(() => model.forwardAsync(ids)).finally(() => ids.dispose());
        const logits = tidy(() => res.logits.reshape([ctx.length, g.V]));
        HourglassLM.disposeOutput(res);
        g.take(await drawLast(logits));
      }
      return g.result();
    }
    const dec = new HourglassDecoder(model);
    try {
      for (let s = 0; s < o.maxNewTokens; s++) g.take(await drawLast(await dec.appendAsync(g.feed(dec))));
    } finally {
      dec.dispose();
    }
    return g.result();
  } finally {
    // eval mode for the run, then the caller's mode back (a training loop that samples keeps its dropout)
    if (wasTraining) model.train();
  }
}

/** What generate and generateAsync share: the checked options, the text so far, streaming, what to feed next. */
class Sampling {
  readonly out: number[];
  readonly V: number;
  readonly L: number;
  readonly temperature: number;
  private fed = false;

  constructor(
    model: HourglassLM,
    prompt: Int32Array,
    readonly o: GenerateOptions,
  ) {
    if (prompt.length === 0) throw new ValueError('generate: empty prompt');
    const { temperature = 1, topK } = o;
    if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 0))
      throw new ValueError(`generate: maxNewTokens must be a non-negative integer; got ${o.maxNewTokens}`);
    if (!(Number.isFinite(temperature) && temperature >= 0))
      throw new ValueError(`generate: temperature must be a finite number ≥ 0; got ${temperature}`);
    if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1))
      throw new ValueError(`generate: topK must be an integer ≥ 1; got ${topK}`);
    if (o.context !== undefined && o.context !== 'cached' && o.context !== 'window')
      throw new ValueError(`generate: context must be 'cached' or 'window'; got '${o.context}'`);
    model.eval();
    this.out = Array.from(prompt);
    this.V = model.config.vocabSize;
    this.L = model.config.maxSeqLen;
    this.temperature = temperature;
  }

  get noisy(): boolean {
    return this.temperature !== 0;
  }

  pick(logits: ArrayLike<number>, noise: ArrayLike<number> | null): number {
    // The unknown symbol (id 0) is never written: in the output it would be a U+FFFD that no text had.
    return pickToken(logits, noise, this.temperature, this.o.topK, this.V > 1 ? 0 : undefined);
  }

  take(id: number): void {
    this.out.push(id);
    this.o.onToken?.(id);
  }

  /** The sliding window: the last maxSeqLen ids. */
  window(): number[] {
    return this.out.slice(-this.L);
  }

  ids(ctx: number[]): Tensor {
    return tensor(Int32Array.from(ctx), { shape: [1, ctx.length], dtype: 'int32' });
  }

  /**
   * What the decoder reads next: the prompt's last window first, then each new id; with the window full, the
   * last ⌈maxSeqLen / 2⌉ ids afresh.
   */
  feed(dec: HourglassDecoder): number[] {
    if (!this.fed) {
      this.fed = true;
      return this.window();
    }
    if (dec.length < this.L) return this.out.slice(-1);
    dec.reset();
    return this.out.slice(-Math.ceil(this.L / 2));
  }

  result(): Int32Array {
    return Int32Array.from(this.out);
  }
}

/**
 * The next token from the last position's logits: argmax when `noise` is null (temperature 0), otherwise
 * Gumbel-max, argmax_c (l_c / τ + g_c), which draws c with probability softmax(l / τ)_c; with topK only
 * logits ≥ the k-th largest take part (ties included). `exclude` (an id) never takes part: `generate` passes
 * the unknown symbol, which stands for characters the model never saw, not for a character to write.
 */
export function pickToken(
  logits: ArrayLike<number>,
  noise: ArrayLike<number> | null,
  temperature: number,
  topK?: number,
  exclude?: number,
): number {
  const V = logits.length;
  let kth = Number.NEGATIVE_INFINITY;
  if (topK !== undefined) {
    const rest = Array.from(logits).filter((_, c) => c !== exclude);
    if (topK < rest.length) kth = rest.sort((a, b) => b - a)[topK - 1]!;
  }
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < V; c++) {
    if (c === exclude) continue;
    const l = logits[c]!;
    if (!(l >= kth)) continue;
    const score = noise ? l / temperature + noise[c]! : l;
    if (best < 0 || score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  if (best < 0) throw new ValueError('generate: the logits are not finite');
  return best;
}
