// Transformer blocks (pre- and post-LN), positional embeddings, and a small decoder-only causal LM
// (configurable depth, width, heads, KV heads, RoPE) that dyn-pool and kv-compress build on.

import { noGrad } from '../autograd.js';
import { checkChoice, checkInt, checkNonNegative } from '../checks.js';
import { fmtShape, ShapeError, ValueError } from '../errors.js';
import { cat } from '../ops/movement.js';
import { fromHost } from '../ops/prims.js';
import { multinomial } from '../ops/random.js';
import { tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { CausalSelfAttention, type PositionBias, type SelfAttentionOptions } from './attention.js';
import { KVCache } from './kv-cache.js';
import { Dropout, Embedding, GELU, type Layer, LayerNorm, Linear, ModuleList, ReLU, RMSNorm, SiLU } from './layers.js';
import { Module } from './module.js';

/** sin/cos table [T, d]: PE[p, 2i] = sin(p / 10000^{2i/d}), PE[p, 2i+1] = cos(…) (Vaswani et al., 2017). */
export function sinusoidalPositions(like: Tensor, T: number, d: number, offset = 0): Tensor {
  const pe = new Float32Array(T * d);
  for (let p = 0; p < T; p++)
    for (let i = 0; i < d; i += 2) {
      const a = (offset + p) / 10000 ** (i / d);
      pe[p * d + i] = Math.sin(a);
      if (i + 1 < d) pe[p * d + i + 1] = Math.cos(a);
    }
  return fromHost(like, pe, [T, d], 'float32');
}

export interface BlockOptions extends SelfAttentionOptions {
  dFF?: number;
  activation?: 'gelu' | 'relu' | 'silu';
  norm?: 'layernorm' | 'rmsnorm';
  /** 'pre': x + f(norm(x)) (GPT-2 style); 'post': norm(x + f(x)) (the original Transformer). */
  ln?: 'pre' | 'post';
}

export class TransformerBlock extends Module {
  readonly attn: CausalSelfAttention;
  readonly norm1: Layer;
  readonly norm2: Layer;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly act: Layer;
  readonly drop: Dropout;

  constructor(readonly opts: BlockOptions) {
    super();
    const d = opts.dModel;
    // A typo in a choice would otherwise build the default silently (another norm, activation or layout).
    if (opts.norm !== undefined) checkChoice('TransformerBlock', 'norm', opts.norm, ['layernorm', 'rmsnorm']);
    if (opts.activation !== undefined)
      checkChoice('TransformerBlock', 'activation', opts.activation, ['gelu', 'relu', 'silu']);
    if (opts.ln !== undefined) checkChoice('TransformerBlock', 'ln', opts.ln, ['pre', 'post']);
    if (opts.dFF !== undefined) checkInt('TransformerBlock', 'dFF', opts.dFF, 1);
    const mkNorm = () => (opts.norm === 'rmsnorm' ? new RMSNorm(d) : new LayerNorm(d));
    this.norm1 = this.registerModule('norm1', mkNorm());
    this.attn = this.registerModule('attn', new CausalSelfAttention(opts));
    this.norm2 = this.registerModule('norm2', mkNorm());
    this.fc1 = this.registerModule('fc1', new Linear(d, opts.dFF ?? 4 * d));
    this.fc2 = this.registerModule('fc2', new Linear(opts.dFF ?? 4 * d, d));
    this.act = opts.activation === 'relu' ? new ReLU() : opts.activation === 'silu' ? new SiLU() : new GELU();
    this.drop = this.registerModule('drop', new Dropout(opts.dropout ?? 0));
  }

  forward(x: Tensor, ctx: { cache?: KVCache; layer?: number; positionBias?: PositionBias } = {}): Tensor {
    return tidy(() => {
      // relu goes into fc1's epilogue (Linear.forwardAct); other activations run as their own op.
      const fc1 = (h: Tensor) =>
        this.act instanceof ReLU ? this.fc1.forwardAct(h, true) : this.act.forward(this.fc1.forward(h));
      const mlp = (h: Tensor) => this.drop.forward(this.fc2.forward(fc1(h)));
      if (this.opts.ln === 'post') {
        const h = this.norm1.forward(x.add(this.drop.forward(this.attn.forward(x, ctx))));
        return this.norm2.forward(h.add(mlp(h)));
      }
      const h = x.add(this.drop.forward(this.attn.forward(this.norm1.forward(x), ctx)));
      return h.add(mlp(this.norm2.forward(h)));
    });
  }
}

export interface CausalLMConfig {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads?: number;
  dFF?: number;
  maxSeqLen?: number;
  /** 'rope' (default), 'learned' or 'sinusoidal' absolute positions. */
  positions?: 'rope' | 'learned' | 'sinusoidal';
  norm?: 'layernorm' | 'rmsnorm';
  activation?: 'gelu' | 'relu' | 'silu';
  dropout?: number;
  tieEmbeddings?: boolean;
}

/** A small decoder-only language model: embeddings, pre-LN blocks, final norm, LM head. */
export class CausalLM extends Module {
  readonly embed: Embedding;
  readonly pos: Embedding | null;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly normF: Layer;
  readonly head: Linear | null;

  constructor(readonly config: CausalLMConfig) {
    super();
    const c = config;
    for (const k of ['vocabSize', 'dModel', 'nLayers', 'nHeads'] as const)
      if (!(Number.isInteger(c[k]) && c[k] >= 1))
        throw new ValueError(`CausalLM: ${k} must be an integer ≥ 1; got ${c[k]}`);
    if (c.maxSeqLen !== undefined && !(Number.isInteger(c.maxSeqLen) && c.maxSeqLen >= 1))
      throw new ValueError(`CausalLM: maxSeqLen must be an integer ≥ 1; got ${c.maxSeqLen}`);
    // an unknown kind would build a model without positions, or another norm or activation, without a word
    if (c.positions !== undefined) checkChoice('CausalLM', 'positions', c.positions, ['rope', 'learned', 'sinusoidal']);
    if (c.norm !== undefined) checkChoice('CausalLM', 'norm', c.norm, ['layernorm', 'rmsnorm']);
    if (c.activation !== undefined) checkChoice('CausalLM', 'activation', c.activation, ['gelu', 'relu', 'silu']);
    const positions = c.positions ?? 'rope';
    this.embed = this.registerModule('embed', new Embedding(c.vocabSize, c.dModel));
    noGrad(() => this.embed.weight.mul_(0.02)); // GPT-2's N(0, 0.02)
    this.pos = this.registerModule(
      'pos',
      positions === 'learned' ? new Embedding(c.maxSeqLen ?? 1024, c.dModel) : null,
    );
    if (this.pos) noGrad(() => this.pos!.weight.mul_(0.01));
    const blocks = Array.from(
      { length: c.nLayers },
      () =>
        new TransformerBlock({
          dModel: c.dModel,
          nHeads: c.nHeads,
          nKvHeads: c.nKvHeads,
          dFF: c.dFF,
          rope: positions === 'rope',
          norm: c.norm,
          activation: c.activation,
          dropout: c.dropout,
        }),
    );
    this.blocks = this.registerModule('blocks', new ModuleList(blocks));
    this.normF = this.registerModule('norm_f', c.norm === 'rmsnorm' ? new RMSNorm(c.dModel) : new LayerNorm(c.dModel));
    this.head = this.registerModule(
      'head',
      c.tieEmbeddings ? null : new Linear(c.dModel, c.vocabSize, { bias: false }),
    );
  }

  /** Hidden states [B, T, dModel] before the LM head (dyn-pool and kv-compress read these). */
  hidden(ids: Tensor, ctx: { cache?: KVCache } = {}): Tensor {
    if (ids.ndim !== 2 || ids.dtype !== 'int32')
      throw new ShapeError(`CausalLM expects int32 ids [B, T]; got ${ids.dtype} ${fmtShape(ids.shape)}`);
    return tidy(() => {
      const T = ids.shape[1]!;
      const start = ctx.cache ? ctx.cache.position(0) : 0;
      let h = this.embed.forward(ids);
      const kind = this.config.positions ?? 'rope';
      if (kind === 'learned') {
        const max = this.config.maxSeqLen ?? 1024;
        if (start + T > max) throw new ValueError(`CausalLM: position ${start + T} exceeds maxSeqLen ${max}`);
        const idx = fromHost(
          ids,
          Int32Array.from({ length: T }, (_, i) => start + i),
          [T],
          'int32',
        );
        h = h.add(this.pos!.forward(idx));
      } else if (kind === 'sinusoidal') h = h.add(sinusoidalPositions(h, T, this.config.dModel, start));
      this.blocks.items.forEach((b, layer) => {
        h = b.forward(h, { cache: ctx.cache, layer });
      });
      return this.normF.forward(h);
    });
  }

  /** Logits [B, T, vocab]. With a cache, `ids` holds only the new tokens. */
  forward(ids: Tensor, ctx: { cache?: KVCache } = {}): Tensor {
    return tidy(() => {
      const h = this.hidden(ids, ctx);
      return this.head ? this.head.forward(h) : h.matmul(this.embed.weight.transpose(0, 1));
    });
  }

  /**
   * Autoregressive sampling with a KV cache: prefill the prompt, then one token per step. temperature 0
   * is greedy; topK keeps the k most likely tokens.
   */
  generate(
    prompt: Tensor,
    opts: { maxNewTokens: number; temperature?: number; topK?: number; cache?: KVCache },
  ): Tensor {
    const { maxNewTokens, temperature = 1, topK } = opts;
    checkInt('CausalLM.generate', 'maxNewTokens', maxNewTokens, 0);
    checkNonNegative('CausalLM.generate', 'temperature', temperature);
    if (topK !== undefined) checkInt('CausalLM.generate', 'topK', topK, 1);
    const cache = opts.cache ?? new KVCache();
    const out: Tensor[] = [prompt.detach()];
    noGrad(() => {
      let next = prompt;
      for (let s = 0; s < maxNewTokens; s++) {
        const tok = tidy(() => {
          const logits = this.forward(next, { cache });
          const last = logits.select(1, logits.shape[1]! - 1); // [B, V]
          if (temperature === 0) return last.argmax(-1, true);
          let l = last.div(temperature);
          if (topK !== undefined && topK < l.shape[1]!) {
            const kth = l.topk(topK, -1).values.slice(1, topK - 1, topK);
            l = l.where(l.ge(kth), Number.NEGATIVE_INFINITY);
          }
          return multinomial(l.softmax(-1), 1, { replacement: true });
        });
        out.push(tok);
        next = tok;
      }
    });
    if (!opts.cache) cache.reset();
    const ids = cat(out, 1);
    for (const t of out) t.dispose();
    return ids;
  }
}
