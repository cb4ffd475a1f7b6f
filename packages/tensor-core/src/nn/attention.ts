// Attention layers: rotary embeddings (RoPE, rotate-half convention of GPT-NeoX/Llama), grouped-query
// causal self-attention with a KV cache and a relative-position bias hook, and torch.nn.MultiheadAttention.
import { noGrad } from '../autograd.js';
import { checkInt, checkInterval, checkPositive } from '../checks.js';
import { fmtShape, ShapeError, ValueError } from '../errors.js';
import { scaledDotProductAttention } from '../ops/composite/attention.js';
import { dropout } from '../ops/composite/norm.js';
import { softmax } from '../ops/composite/softmax.js';
import { cat } from '../ops/movement.js';
import { fromHost } from '../ops/prims.js';
import { tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { uniform, xavierUniform } from './init.js';
import type { KVCache } from './kv-cache.js';
import { Linear } from './layers.js';
import { Module } from './module.js';

// Host-side tables are rebuilt for every call otherwise; a small LRU keyed by their arguments keeps the
// trigonometry and mask loops out of the training step.
const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();
const maskCache = new Map<string, Uint8Array>();

function memo<V>(cache: Map<string, V>, key: string, make: () => V): V {
  let v = cache.get(key);
  if (v) {
    cache.delete(key);
  } else {
    v = make();
    if (cache.size >= 64) cache.delete(cache.keys().next().value as string);
  }
  cache.set(key, v);
  return v;
}

/**
 * cos and a signed sin per position: sin is negated on the first half, so rotate_half(x)·sin is [x₂, x₁]·sin — the
 * same products (a sign flip is exact), one op fewer than negating x₂ each call.
 */
function ropeTables(T: number, d: number, offset: number, base: number) {
  return memo(ropeCache, `${T},${d},${offset},${base}`, () => {
    const half = d / 2;
    const cos = new Float32Array(T * d);
    const sin = new Float32Array(T * d);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        const a = (offset + t) * base ** (-(2 * i) / d);
        cos[t * d + i] = cos[t * d + i + half] = Math.cos(a);
        sin[t * d + i] = -(sin[t * d + i + half] = Math.fround(Math.sin(a)));
      }
    return { cos, sin };
  });
}

/**
 * Applies RoPE to x [B, H, T, d] for absolute positions offset, offset+1, … (d even). `inverse` rotates back
 * (kv-compress undoes RoPE on keys before its PCA).
 */
export function applyRope(x: Tensor, offset = 0, base = 10000, inverse = false): Tensor {
  if (x.ndim < 2) throw new ShapeError(`applyRope: expects [..., T, d]; got ${fmtShape(x.shape)}`);
  // θ = base^(−2i/d): 0, a negative or a NaN base makes every angle NaN
  checkPositive('applyRope', 'ropeBase', base);
  if (!(Number.isInteger(offset) && offset >= 0))
    throw new ValueError(`applyRope: offset must be a non-negative integer; got ${offset}`);
  const d = x.shape[x.ndim - 1]!;
  const T = x.shape[x.ndim - 2]!;
  if (d % 2 !== 0) throw new ShapeError(`applyRope: head dim must be even; got ${d}`);
  const half = d / 2;
  const { cos, sin } = ropeTables(T, d, offset, base);
  return tidy(() => {
    const c = fromHost(x, cos, [T, d], 'float32');
    const s = fromHost(x, sin, [T, d], 'float32');
    const x1 = x.slice(-1, 0, half);
    const x2 = x.slice(-1, half);
    const rot = cat([x2, x1], -1); // rotate_half, its sign in the table
    return inverse ? x.mul(c).sub(rot.mul(s)) : x.mul(c).add(rot.mul(s));
  });
}

export interface SelfAttentionOptions {
  dModel: number;
  nHeads: number;
  /** Fewer key/value heads than query heads: grouped-query attention (nHeads % nKvHeads == 0). */
  nKvHeads?: number;
  rope?: boolean;
  ropeBase?: number;
  bias?: boolean;
  dropout?: number;
}

/**
 * Returns an additive bias [H or 1, Tq, Tk] for queries at absolute positions qStart.. and keys at kStart..
 * (e.g. ALiBi, T5 buckets): the relative-position hook.
 */
export type PositionBias = (tq: number, tk: number, qStart: number, kStart: number) => Tensor;

export class CausalSelfAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;

  constructor(readonly opts: SelfAttentionOptions) {
    super();
    const { dModel, nHeads, nKvHeads = nHeads, bias = true } = opts;
    checkInt('CausalSelfAttention', 'dModel', dModel, 1);
    checkInt('CausalSelfAttention', 'nHeads', nHeads, 1);
    checkInt('CausalSelfAttention', 'nKvHeads', nKvHeads, 1);
    if (opts.dropout !== undefined) checkInterval('CausalSelfAttention', 'dropout', opts.dropout, 0, 1, true);
    if (opts.rope) checkPositive('CausalSelfAttention', 'ropeBase', opts.ropeBase ?? 10000);
    if (dModel % nHeads !== 0)
      throw new ValueError(`CausalSelfAttention: dModel ${dModel} is not divisible by nHeads ${nHeads}`);
    if (nHeads % nKvHeads !== 0)
      throw new ValueError(`CausalSelfAttention: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
    this.nHeads = nHeads;
    this.nKvHeads = nKvHeads;
    this.headDim = dModel / nHeads;
    this.qProj = this.registerModule('q_proj', new Linear(dModel, dModel, { bias }));
    this.kProj = this.registerModule('k_proj', new Linear(dModel, nKvHeads * this.headDim, { bias }));
    this.vProj = this.registerModule('v_proj', new Linear(dModel, nKvHeads * this.headDim, { bias }));
    this.oProj = this.registerModule('o_proj', new Linear(dModel, dModel, { bias }));
  }

  /** x [B, T, dModel]. With a cache, x holds only the new tokens and attends over the cached ones too. */
  forward(x: Tensor, ctx: { cache?: KVCache; layer?: number; positionBias?: PositionBias } = {}): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.opts.dModel)
      throw new ShapeError(`CausalSelfAttention expects [B, T, ${this.opts.dModel}]; got ${fmtShape(x.shape)}`);
    return tidy(() => {
      const [B, T] = x.shape as [number, number, number];
      const split = (t: Tensor, h: number) => t.reshape([B, T, h, this.headDim]).transpose(1, 2); // [B, h, T, d]
      let q = split(this.qProj.forward(x), this.nHeads);
      let k = split(this.kProj.forward(x), this.nKvHeads);
      const v = split(this.vProj.forward(x), this.nKvHeads);
      const layer = ctx.layer ?? 0;
      const start = ctx.cache ? ctx.cache.position(layer) : 0;
      if (this.opts.rope) {
        q = applyRope(q, start, this.opts.ropeBase);
        k = applyRope(k, start, this.opts.ropeBase);
      }
      let kv = { k, v };
      if (ctx.cache) kv = ctx.cache.append(layer, k.contiguous(), v.contiguous());
      const L = kv.k.shape[2]!;
      // Fewer keys than new tokens would leave the first queries with no key at all (NaN rows under the causal
      // mask): a storage must hold at least the step's own tokens until their attention has run.
      if (L < T)
        throw new ValueError(
          `CausalSelfAttention: the KV cache returned ${L} keys for ${T} new tokens at layer ${layer}; a cache storage must keep at least the tokens of the current step`,
        );
      const needProbs = ctx.cache?.storage.observe !== undefined;
      // Causal, bottom-right aligned: query i (of T new ones) sees keys j ≤ L − T + i, which holds for full
      // caches and for policies that keep kept keys in order. Without a cache (L = T) that is plain isCausal;
      // a chunk over a cache is the lower-right variant. Both fuse with the softmax; a position bias or a policy
      // that reads the probabilities takes an explicit mask.
      const fusable = !ctx.positionBias && !needProbs;
      // One new token sees every cached key, so a decoding step needs no mask at all.
      const unmasked = fusable && T === 1 && L > 1;
      const causal = fusable && !unmasked;
      const mask = () =>
        memo(maskCache, `${T},${L}`, () => {
          const m = new Uint8Array(T * L);
          for (let i = 0; i < T; i++) for (let j = 0; j <= L - T + i; j++) m[i * L + j] = 1;
          return m;
        });
      let attnMask: Tensor | null = fusable ? null : fromHost(x, mask(), [T, L], 'bool');
      if (ctx.positionBias) {
        const bias = ctx.positionBias(T, L, start, start + T - L);
        attnMask = bias.where(attnMask!, Number.NEGATIVE_INFINITY);
      }
      let o: Tensor;
      if (needProbs) {
        // Policies that score tokens by attention need the probabilities: compute attention explicitly.
        const g = this.nHeads / this.nKvHeads;
        const rep = (t: Tensor) =>
          g === 1
            ? t
            : t.unsqueeze(2).expand([B, this.nKvHeads, g, L, this.headDim]).reshape([B, this.nHeads, L, this.headDim]);
        const s = q.matmul(rep(kv.k).transpose(-2, -1)).mul(1 / Math.sqrt(this.headDim));
        const masked = attnMask!.dtype === 'bool' ? s.where(attnMask!, Number.NEGATIVE_INFINITY) : s.add(attnMask!);
        const p = softmax(masked, -1);
        o = p.matmul(rep(kv.v));
        // After the output is computed, so a policy may evict inside observe().
        ctx.cache!.observe(layer, p.detach());
      } else
        o = scaledDotProductAttention(q, kv.k, kv.v, {
          attnMask,
          isCausal: causal,
          causalVariant: causal ? 'lower-right' : undefined,
          dropoutP: this.opts.dropout,
          training: this.training,
        });
      return this.oProj.forward(o.transpose(1, 2).reshape([B, T, this.opts.dModel]));
    });
  }
}

/** torch.nn.MultiheadAttention's parameters and semantics (in_proj_weight, out_proj), batch-first option. */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor | null;
  readonly outProj: Linear;
  readonly headDim: number;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    readonly opts: { bias?: boolean; batchFirst?: boolean; dropout?: number } = {},
  ) {
    super();
    checkInt('MultiheadAttention', 'embedDim', embedDim, 1);
    checkInt('MultiheadAttention', 'numHeads', numHeads, 1);
    if (opts.dropout !== undefined) checkInterval('MultiheadAttention', 'dropout', opts.dropout, 0, 1, true);
    if (embedDim % numHeads !== 0)
      throw new ValueError(`MultiheadAttention: ${embedDim} is not divisible by ${numHeads} heads`);
    this.headDim = embedDim / numHeads;
    this.inProjWeight = this.registerParameter(
      'in_proj_weight',
      xavierUniform([3 * embedDim, embedDim], embedDim, 3 * embedDim),
    );
    this.inProjBias = this.registerParameter('in_proj_bias', opts.bias === false ? null : uniform([3 * embedDim], 0));
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias: opts.bias !== false }));
    // PyTorch initialises both attention biases to zero.
    if (this.outProj.bias) noGrad(() => this.outProj.bias!.zero_());
  }

  /**
   * query [L, B, E] (or [B, L, E] batch-first), key/value [S, B, E]. keyPaddingMask [B, S]: true = ignore
   * (PyTorch's convention). attnMask [L, S]: bool true = ignore, or additive float. Returns the output and
   * the head-averaged attention weights [B, L, S].
   */
  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    o: { keyPaddingMask?: Tensor | null; attnMask?: Tensor | null; isCausal?: boolean; needWeights?: boolean } = {},
  ): { output: Tensor; weights: Tensor | null } {
    return tidy(() => {
      const bf = this.opts.batchFirst ?? false;
      const [q0, k0, v0] = [query, key, value].map((t) => (bf ? t : t.transpose(0, 1))) as [Tensor, Tensor, Tensor]; // [B, *, E]
      const [B, L, E] = q0.shape as [number, number, number];
      const S = k0.shape[1]!;
      if (E !== this.embedDim || k0.shape[2] !== E || v0.shape[2] !== E)
        throw new ShapeError(
          `MultiheadAttention: embedding dims must be ${this.embedDim}; got ${fmtShape(query.shape)}, ${fmtShape(key.shape)}`,
        );
      const [wq, wk, wv] = this.inProjWeight.chunk(3, 0) as [Tensor, Tensor, Tensor];
      const [bq, bk, bv] = (this.inProjBias ? this.inProjBias.chunk(3, 0) : [null, null, null]) as (Tensor | null)[];
      const proj = (t: Tensor, w: Tensor, b: Tensor | null, n: number) => {
        const y = t.matmul(w.transpose(0, 1));
        return (b ? y.add(b) : y).reshape([B, n, this.numHeads, this.headDim]).transpose(1, 2);
      };
      const q = proj(q0, wq, bq ?? null, L);
      const k = proj(k0, wk, bk ?? null, S);
      const v = proj(v0, wv, bv ?? null, S);
      let bias = fromHost(q, new Float32Array(L * S), [1, 1, L, S], 'float32');
      if (o.isCausal) {
        const m = new Float32Array(L * S);
        for (let i = 0; i < L; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = Number.NEGATIVE_INFINITY;
        bias = bias.add(fromHost(q, m, [1, 1, L, S], 'float32'));
      }
      if (o.attnMask)
        bias =
          o.attnMask.dtype === 'bool'
            ? bias.where(o.attnMask.logicalNot(), Number.NEGATIVE_INFINITY)
            : bias.add(o.attnMask);
      if (o.keyPaddingMask) {
        const kp = o.keyPaddingMask.reshape([B, 1, 1, S]);
        bias = bias.where(kp.logicalNot(), Number.NEGATIVE_INFINITY);
      }
      const s = q
        .matmul(k.transpose(-2, -1))
        .mul(1 / Math.sqrt(this.headDim))
        .add(bias);
      const p = softmax(s, -1);
      // As PyTorch: while training, dropout on the attention weights (after the softmax, before the values), and
      // the weights returned are those dropped ones, averaged over the heads.
      const pd = this.opts.dropout ? dropout(p, this.opts.dropout, this.isTraining) : p;
      const ctx = pd.matmul(v).transpose(1, 2).reshape([B, L, E]);
      const out = this.outProj.forward(ctx);
      return { output: bf ? out : out.transpose(0, 1), weights: o.needWeights === false ? null : pd.mean(1) };
    });
  }
}
