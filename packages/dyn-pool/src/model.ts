// The hourglass character-level language model of "Efficient Transformers with Dynamic Token Pooling"
// (Nawrot, Chorowski, Łańcucki, Ponti; ACL 2023; arXiv 2211.09761; reference code
// github.com/PiotrNawrot/dynamic-pooling). Pre blocks at full resolution; their output is kept as a
// residual, pooled over segments (with a learned null group first), layer-normed and run through the
// shortened blocks; the result is up-sampled, added to the residual and run through the post blocks.
// Positions are rotary (relative) in every block, or Transformer-XL relative attention as in the reference
// code (`positions: 'relative'`); either way the shortened block counts them over the shortened sequence.
// The vanilla model (boundary 'none') runs the same blocks without shortening.
import {
  F,
  getBackend,
  isGradEnabled,
  nn,
  noGrad,
  randn,
  type Tensor,
  tensor,
  tidy,
  ValueError,
  zeros,
} from '@tessera/tensor-core';
import {
  BoundaryPredictor,
  binomialPriorLoss,
  entropySpikes,
  gumbelSigmoid,
  predictiveEntropy,
  whitespaceBoundaries,
} from './boundaries.js';
import { downsample, fixedBoundaries, numSegments, numSegmentsAsync, upsample } from './pooling.js';
import { positionTable, RelativeTransformerBlock } from './relative-attention.js';

type Block = nn.TransformerBlock | RelativeTransformerBlock;

export type BoundarySource = 'none' | 'fixed' | 'whitespace' | 'unigram' | 'entropy' | 'gumbel';

export const BOUNDARY_SOURCES: readonly BoundarySource[] = [
  'none',
  'fixed',
  'whitespace',
  'unigram',
  'entropy',
  'gumbel',
];

export interface HourglassConfig {
  vocabSize: number;
  dModel: number;
  nHeads: number;
  dFF?: number;
  /** [pre, shortened, post] block counts, e.g. [2, 8, 2] (the paper's "[2, (8,), 2]"). */
  layers: [number, number, number];
  boundary: BoundarySource;
  /** Longest sequence the model accepts (the training length). */
  maxSeqLen: number;
  dropout?: number;
  /**
   * 'post' (the paper, the default) or 'pre' LayerNorm blocks; 'pre' adds a final norm. Post-LN matters for
   * the hourglass: it keeps the residual (pre-block output) and the up-sampled shortened stream at the same
   * scale where they are added; with pre-LN the residual grew to ≈ 2.5× the shortened stream and the
   * shortened models lost 0.13 BPC to vanilla instead of 0.03 (REPRODUCTION.md).
   */
  ln?: 'pre' | 'post';
  /** Fixed pooling: group size k (the shortening factor). */
  fixedK?: number;
  /** Whitespace source: token ids that close a group. */
  spaceIds?: number[];
  /** Gumbel: prior rate α (SF ≈ 1/α) and temperature τ. */
  priorAlpha?: number;
  temperature?: number;
  /**
   * Gumbel at evaluation: 'sample' draws noisy boundaries as in training (the reference code does, so the
   * shortening matches training; outputs are then random), 'threshold' takes 1[logit > 0] (deterministic).
   */
  gumbelEval?: 'sample' | 'threshold';
  /** Entropy: a spike must exceed the k previous entropies. */
  entropyK?: number;
  /** Hidden width of the boundary predictor (default dFF). */
  bpHidden?: number;
  /**
   * Linear-layer initialisation: 'normal' draws weights from N(0, initStd²) with zero biases, as the reference
   * code (Transformer-XL's `weights_init`, `--init normal --init_std 0.02`); 'torch' keeps tensor-core's
   * PyTorch-style U(±1/√fan_in) for weights and biases. The embedding is N(0, 0.02²) and the null group N(0, 1)
   * either way.
   */
  init?: 'normal' | 'torch';
  /** Standard deviation of the 'normal' initialisation (default 0.02, the reference's `init_std`). */
  initStd?: number;
  /**
   * 'rotary' (RoPE in every block; the default) or 'relative': Transformer-XL relative attention, as the
   * reference code — sinusoidal R_{i−j} through a per-block W_R and global learned biases u, v (zero at
   * the start, shared by all blocks).
   */
  positions?: 'rotary' | 'relative';
}

export interface HourglassOutput {
  /** [B, T, vocab] */
  logits: Tensor;
  /** The hard boundaries the model pooled with, [B, T] 0/1 (detached); null for the vanilla model. */
  boundaries: Tensor | null;
  /** The boundary predictor's logits [B, T], where the source has one. */
  bpLogits: Tensor | null;
  /** The straight-through boundaries (Gumbel in training), which carry the gradient to the BP. */
  softBoundaries: Tensor | null;
  /** Length of the shortened sequence, null group included (T for the vanilla model). */
  shortLength: number;
}

export interface LossParts {
  /** LM loss + BP loss (weight 1, as in the paper). */
  loss: Tensor;
  /** Mean next-character cross-entropy in nats. */
  lm: Tensor;
  /** BCE of the BP (unigram, entropy) or the Binomial prior (Gumbel); null otherwise. */
  boundary: Tensor | null;
  /** Number of boundaries and of tokens in the batch: the shortening factor is tokens / boundaries. */
  nBoundaries: number;
  nTokens: number;
}

export function needsPredictor(source: BoundarySource): boolean {
  return source === 'unigram' || source === 'entropy' || source === 'gumbel';
}

export class HourglassLM extends nn.Module {
  readonly embed: nn.Embedding;
  readonly pre: nn.ModuleList<Block>;
  readonly short: nn.ModuleList<Block>;
  readonly post: nn.ModuleList<Block>;
  /** Transformer-XL's u and v [H, d_head] (relative positions only). */
  readonly rWBias: Tensor | null;
  readonly rRBias: Tensor | null;
  readonly nullGroup: Tensor | null;
  readonly downNorm: nn.LayerNorm | null;
  readonly bp: BoundaryPredictor | null;
  readonly normF: nn.LayerNorm | null;
  readonly head: nn.Linear;

  readonly config: HourglassConfig;

  constructor(config: HourglassConfig) {
    super();
    // Defaults written into the config, so that a checkpoint records what the model was built with.
    const c: HourglassConfig = {
      ...config,
      ln: config.ln ?? 'post',
      init: config.init ?? 'torch',
      positions: config.positions ?? 'rotary',
    };
    this.config = c;
    if (!BOUNDARY_SOURCES.includes(c.boundary))
      throw new ValueError(`HourglassLM: boundary must be one of ${BOUNDARY_SOURCES.join(', ')}; got '${c.boundary}'`);
    if (c.layers.length !== 3 || c.layers.some((n) => !Number.isInteger(n) || n < 0))
      throw new ValueError(`HourglassLM: layers must be [pre, short, post] non-negative integers; got [${c.layers}]`);
    if (!(Number.isInteger(c.maxSeqLen) && c.maxSeqLen >= 1))
      throw new ValueError(`HourglassLM: maxSeqLen must be an integer ≥ 1; got ${c.maxSeqLen}`);
    if (c.ln !== 'pre' && c.ln !== 'post')
      throw new ValueError(`HourglassLM: ln must be 'pre' or 'post'; got '${c.ln}'`);
    if (c.temperature !== undefined && !(c.temperature > 0 && Number.isFinite(c.temperature)))
      throw new ValueError(`HourglassLM: the Gumbel temperature must be a positive number; got ${c.temperature}`);
    if (c.gumbelEval !== undefined && c.gumbelEval !== 'sample' && c.gumbelEval !== 'threshold')
      throw new ValueError(`HourglassLM: gumbelEval must be 'sample' or 'threshold'; got '${c.gumbelEval}'`);
    if (c.entropyK !== undefined && !(Number.isInteger(c.entropyK) && c.entropyK >= 1))
      throw new ValueError(`HourglassLM: entropyK must be an integer ≥ 1; got ${c.entropyK}`);
    if (c.priorAlpha !== undefined && !(c.priorAlpha > 0 && c.priorAlpha < 1))
      throw new ValueError(`HourglassLM: priorAlpha must be in (0, 1); got ${c.priorAlpha}`);
    if (c.init !== 'normal' && c.init !== 'torch')
      throw new ValueError(`HourglassLM: init must be 'normal' or 'torch'; got '${c.init}'`);
    if (c.positions !== 'rotary' && c.positions !== 'relative')
      throw new ValueError(`HourglassLM: positions must be 'rotary' or 'relative'; got '${c.positions}'`);
    if (c.initStd !== undefined && !(Number.isFinite(c.initStd) && c.initStd > 0))
      throw new ValueError(`HourglassLM: initStd must be a positive number; got ${c.initStd}`);
    if (c.boundary === 'fixed' && !(Number.isInteger(c.fixedK) && c.fixedK! >= 1))
      throw new ValueError(`HourglassLM: fixed pooling needs an integer fixedK ≥ 1; got ${c.fixedK}`);
    if (c.boundary === 'whitespace' && !c.spaceIds?.length)
      throw new ValueError('HourglassLM: whitespace pooling needs spaceIds (the ids of whitespace characters)');
    const shortening = c.boundary !== 'none';
    if (shortening && c.layers[1] === 0)
      throw new ValueError(`HourglassLM: boundary '${c.boundary}' needs at least one shortened block`);
    const blockOpts = {
      dModel: c.dModel,
      nHeads: c.nHeads,
      dFF: c.dFF ?? 4 * c.dModel,
      dropout: c.dropout ?? 0,
      ln: c.ln,
    };
    const relative = c.positions === 'relative';
    const block = (): Block =>
      relative ? new RelativeTransformerBlock(blockOpts) : new nn.TransformerBlock({ ...blockOpts, rope: true });
    const blocks = (n: number) => new nn.ModuleList(Array.from({ length: n }, block));
    this.embed = this.registerModule('embed', new nn.Embedding(c.vocabSize, c.dModel));
    noGrad(() => this.embed.weight.mul_(0.02));
    this.pre = this.registerModule('pre', blocks(c.layers[0]));
    this.short = this.registerModule('short', blocks(c.layers[1]));
    this.post = this.registerModule('post', blocks(c.layers[2]));
    const dh = c.dModel / c.nHeads;
    // Zero at the start, as the reference code.
    this.rWBias = this.registerParameter('r_w_bias', relative ? zeros([c.nHeads, dh]) : null);
    this.rRBias = this.registerParameter('r_r_bias', relative ? zeros([c.nHeads, dh]) : null);
    // N(0, 1) as the reference code (nn.init.normal_); the LayerNorm after pooling makes its scale a matter
    // of how fast Adam turns it, not of its size in the forward pass.
    this.nullGroup = this.registerParameter('null_group', shortening ? randn([c.dModel]) : null);
    this.downNorm = this.registerModule('down_norm', shortening ? new nn.LayerNorm(c.dModel) : null);
    this.bp = this.registerModule(
      'boundary_predictor',
      needsPredictor(c.boundary) ? new BoundaryPredictor(c.dModel, c.bpHidden ?? c.dFF ?? 4 * c.dModel) : null,
    );
    this.normF = this.registerModule('norm_f', c.ln === 'pre' ? new nn.LayerNorm(c.dModel) : null);
    this.head = this.registerModule('head', new nn.Linear(c.dModel, c.vocabSize));
    if (c.init === 'normal') {
      const std = c.initStd ?? 0.02;
      noGrad(() =>
        this.apply((m) => {
          if (!(m instanceof nn.Linear)) return;
          const w = randn(m.weight.shape, { std });
          m.weight.copy_(w);
          w.dispose();
          m.bias?.zero_();
        }),
      );
    }
  }

  /**
   * ids [B, T] int32. `boundaryTargets` [B, T] (unigram) are only needed for the loss; the model always pools
   * at the BP's own hard decisions for the unigram, entropy and Gumbel sources. Reads the shortened length back
   * synchronously, so it needs a backend with synchronous reads (CPU); `forwardAsync` runs on every backend.
   */
  forward(ids: Tensor): HourglassOutput {
    const c = this.config;
    const T = this.checkIds(ids)[1];
    return tidy(() => {
      if (getBackend() === 'cpu') {
        // (a host check; other backends skip it rather than read back)
        const vmax = ids.max().itemSync();
        const vmin = ids.min().itemSync();
        if (vmin < 0 || vmax >= c.vocabSize)
          throw new ValueError(`HourglassLM: token ids must be in [0, ${c.vocabSize}); got [${vmin}, ${vmax}]`);
      }
      const front = this.front(ids);
      const pool = front.soft ?? front.boundaries;
      return this.back(front, pool ? numSegments(pool) : T);
    });
  }

  /**
   * `forward` for every backend: the few host-side values (the token-id range and the shortened length) are
   * read back with `await t.data()`. Same result as `forward` on the same backend and seed. The gradient
   * mode is the caller's at the call: `noGrad(() => model.forwardAsync(ids))` records no graph in any of
   * the steps between the awaits (noGrad itself only covers the synchronous part).
   */
  async forwardAsync(ids: Tensor): Promise<HourglassOutput> {
    const c = this.config;
    const T = this.checkIds(ids)[1];
    const grad = isGradEnabled();
    const run = <R>(f: () => R): R => (grad ? f() : noGrad(f));
    const [lo, hi] = tidy(() => [ids.min(), ids.max()]);
    const vmin = await lo.item();
    const vmax = await hi.item();
    lo.dispose();
    hi.dispose();
    if (vmin < 0 || vmax >= c.vocabSize)
      throw new ValueError(`HourglassLM: token ids must be in [0, ${c.vocabSize}); got [${vmin}, ${vmax}]`);
    const front = run(() => tidy(() => this.front(ids)));
    const pool = front.soft ?? front.boundaries;
    let S: number;
    try {
      S = pool ? await numSegmentsAsync(pool) : T;
    } catch (e) {
      for (const t of [front.h, front.boundaries, front.soft, front.bpLogits]) t?.dispose();
      throw e;
    }
    return run(() =>
      tidy(() => {
        const out = this.back(front, S);
        front.h.dispose();
        return out;
      }),
    );
  }

  private checkIds(ids: Tensor): [number, number] {
    const c = this.config;
    if (ids.ndim !== 2 || ids.dtype !== 'int32')
      throw new ValueError(`HourglassLM expects int32 ids [B, T]; got ${ids.dtype} [${ids.shape}]`);
    const [B, T] = ids.shape as [number, number];
    if (T > c.maxSeqLen)
      throw new ValueError(
        `HourglassLM: sequence of ${T} tokens is longer than the trained maxSeqLen ${c.maxSeqLen}; evaluate in windows (see evaluate) or slide the context`,
      );
    if (T === 0 || B === 0) throw new ValueError(`HourglassLM: empty batch or sequence [${ids.shape}]`);
    return [B, T];
  }

  /**
   * Runs one stack of blocks; with relative positions R is built for this stack's own length, so the
   * shortened stack counts distances between groups, not characters. With a cache (HourglassDecoder; one per
   * stack, layer i for block i), h holds only the new positions and attends over the cached ones too.
   * @internal
   */
  runBlocks(list: nn.ModuleList<Block>, h: Tensor, cache?: nn.KVCache): Tensor {
    if (list.items.length === 0) return h;
    const ctx = (i: number) => (cache ? { cache, layer: i } : {});
    if (this.config.positions !== 'relative') {
      list.items.forEach((b, i) => {
        h = (b as nn.TransformerBlock).forward(h, ctx(i));
      });
      return h;
    }
    const L = h.shape[1]! + (cache?.length(0) ?? 0);
    const d = this.config.dModel;
    // The reference applies dropout to R as well (`self.drop(pos_emb)`).
    const r = F.dropout(tensor(positionTable(L, d), { shape: [L, d] }), this.config.dropout ?? 0, this.training);
    list.items.forEach((b, i) => {
      h = (b as RelativeTransformerBlock).forward(h, r, this.rWBias!, this.rRBias!, ctx(i));
    });
    return h;
  }

  /** Embedding, pre blocks and boundaries: everything before the data-dependent shortened length. */
  private front(ids: Tensor): { h: Tensor; boundaries: Tensor | null; soft: Tensor | null; bpLogits: Tensor | null } {
    const c = this.config;
    const [B, T] = ids.shape as [number, number];
    let h = this.embed.forward(ids);
    h = this.runBlocks(this.pre, h);
    let boundaries: Tensor | null = null;
    let soft: Tensor | null = null;
    let bpLogits: Tensor | null = null;
    if (c.boundary !== 'none') {
      if (this.bp) bpLogits = this.bp.forward(h);
      if (c.boundary === 'fixed') boundaries = tensor(fixedBoundaries(B, T, c.fixedK!), { shape: [B, T] });
      else if (c.boundary === 'whitespace') boundaries = whitespaceBoundaries(ids, c.spaceIds!);
      else if (c.boundary === 'gumbel') {
        const noise = this.training || (c.gumbelEval ?? 'sample') === 'sample';
        soft = gumbelSigmoid(bpLogits!, { temperature: c.temperature ?? 0.5, noise });
        boundaries = soft.detach();
      } else boundaries = bpLogits!.detach().gt(0).float(); // unigram, entropy: the BP's hard decisions
    }
    return { h, boundaries, soft, bpLogits };
  }

  /** Pooling (with S = numSegments of the boundaries), shortened blocks, up-sampling, post blocks, head. */
  private back(
    front: { h: Tensor; boundaries: Tensor | null; soft: Tensor | null; bpLogits: Tensor | null },
    segments: number,
  ): HourglassOutput {
    const c = this.config;
    const { boundaries, soft, bpLogits } = front;
    let h = front.h;
    let shortLength = h.shape[1]!;
    if (c.boundary === 'none') {
      h = this.runBlocks(this.short, h);
    } else {
      const residual = h;
      let s = downsample(h, soft ?? boundaries!, this.nullGroup!, segments);
      shortLength = s.shape[1]!;
      s = this.downNorm!.forward(s);
      s = this.runBlocks(this.short, s);
      h = upsample(s, soft ?? boundaries!, segments).add(residual);
    }
    h = this.runBlocks(this.post, h);
    if (this.normF) h = this.normF.forward(h);
    const logits = this.head.forward(h);
    return { logits, boundaries, bpLogits, softBoundaries: soft, shortLength };
  }

  /**
   * Loss on ids [B, T + 1] (inputs are the first T, targets the last T): next-character cross-entropy plus,
   * with weight 1, the BP's BCE (unigram targets given in `boundaryTargets` [B, T] for the inputs; entropy
   * spikes of this forward pass) or the Binomial prior (Gumbel). BCE is taken on logits; the reference code
   * applies BCEWithLogits to probabilities, a quirk not copied. Synchronous reads (CPU); see `lossAsync`.
   */
  loss(ids: Tensor, opts: { boundaryTargets?: Tensor } = {}): LossParts & { output: HourglassOutput } {
    const c = this.config;
    const [B, T1] = ids.shape as [number, number];
    const T = T1 - 1;
    // Made inside a scope and disposed here (as lossAsync does): a loop that calls loss() outside tidy() must
    // not keep four tensors per step.
    const [input, target] = tidy(() => [ids.slice(1, 0, T).contiguous(), ids.slice(1, 1).contiguous()]);
    try {
      const output = this.forward(input);
      return tidy(() => {
        const spikes =
          c.boundary === 'entropy'
            ? entropySpikes(predictiveEntropy(output.logits).dataSync(), B, T, c.entropyK ?? 2)
            : null;
        const nBoundaries = output.boundaries ? output.boundaries.sum().itemSync() : B * T;
        return this.lossParts(output, target, opts, spikes, nBoundaries);
      });
    } finally {
      input.dispose();
      target.dispose();
    }
  }

  /**
   * `loss` for every backend (forward with `forwardAsync`; the entropy-spike targets and the boundary count are
   * read back with `await t.data()`). Call `backward()` on the returned `loss` as usual.
   */
  async lossAsync(
    ids: Tensor,
    opts: { boundaryTargets?: Tensor } = {},
  ): Promise<LossParts & { output: HourglassOutput }> {
    const c = this.config;
    const [B, T1] = ids.shape as [number, number];
    const T = T1 - 1;
    const [input, target] = tidy(() => [ids.slice(1, 0, T).contiguous(), ids.slice(1, 1).contiguous()]);
    try {
      const output = await this.forwardAsync(input);
      const [H, count] = tidy(() => [
        c.boundary === 'entropy' ? predictiveEntropy(output.logits) : null,
        output.boundaries ? output.boundaries.sum() : null,
      ]);
      const spikes = H ? entropySpikes(await H.data(), B, T, c.entropyK ?? 2) : null;
      const nBoundaries = count ? await count.item() : B * T;
      H?.dispose();
      count?.dispose();
      return tidy(() => this.lossParts(output, target, opts, spikes, nBoundaries));
    } finally {
      input.dispose();
      target.dispose();
    }
  }

  /**
   * `loss.backward()` for every backend (kept async so callers on WebGPU and CPU share one training loop).
   */
  async backwardAsync(loss: Tensor): Promise<void> {
    tidy(() => loss.backward());
  }

  private lossParts(
    output: HourglassOutput,
    target: Tensor,
    opts: { boundaryTargets?: Tensor },
    spikes: Float32Array | null,
    nBoundaries: number,
  ): LossParts & { output: HourglassOutput } {
    const c = this.config;
    const [B, T] = target.shape as [number, number];
    const lm = F.crossEntropy(output.logits.reshape([B * T, c.vocabSize]), target.reshape([B * T]));
    let boundary: Tensor | null = null;
    if (c.boundary === 'unigram') {
      if (!opts.boundaryTargets)
        throw new ValueError('HourglassLM.loss: the unigram source needs boundaryTargets from the tokenizer');
      boundary = F.binaryCrossEntropyWithLogits(output.bpLogits!, opts.boundaryTargets);
    } else if (c.boundary === 'entropy') {
      const y = tensor(spikes!, { shape: [B, T] });
      boundary = F.binaryCrossEntropyWithLogits(output.bpLogits!, y);
    } else if (c.boundary === 'gumbel') boundary = binomialPriorLoss(output.softBoundaries!, c.priorAlpha ?? 0.2);
    const loss = boundary ? lm.add(boundary) : lm;
    return { loss, lm, boundary, nBoundaries, nTokens: B * T, output };
  }

  /** Disposes the tensors of an output. */
  static disposeOutput(o: HourglassOutput): void {
    for (const t of [o.logits, o.boundaries, o.bpLogits, o.softBoundaries]) t?.dispose();
  }
}
