// Transformer-XL relative attention ("Transformer-XL: Attentive Language Models Beyond a Fixed-Length
// Context", Dai et al., ACL 2019, arXiv 1901.02860, §3.3), the position scheme of the dynamic-pooling
// reference code (github.com/PiotrNawrot/dynamic-pooling, hourglass.py), composed from tensor-core ops so
// that it runs on every backend. Without memory (the hourglass has none) the score of query i and key j is
//   score(i, j) = [(q_i + u)·k_j + (q_i + v)·W_R R_{i−j}] / √d_head,   j ≤ i,
// with R the sinusoidal embedding of the distance i − j and u, v learned biases shared by every block of the
// model (the reference's r_w_bias and r_r_bias, initialised to zero).
import { F, nn, ShapeError, type Tensor, tensor, tidy, ValueError } from '@tessera/tensor-core';

// Host tables are the same for every call of one length; a small LRU keeps them out of the training step.
const tables = new Map<string, Float32Array>();
function memo(key: string, make: () => Float32Array): Float32Array {
  let v = tables.get(key);
  if (v) tables.delete(key);
  else {
    v = make();
    if (tables.size >= 32) tables.delete(tables.keys().next().value as string);
  }
  tables.set(key, v);
  return v;
}

/**
 * The relative position embeddings R [T, d] in the order the rel-shift expects: row m is distance T − 1 − m
 * (T − 1 down to 0), laid out [sin(p·f_0), …, sin(p·f_{d/2−1}), cos(p·f_0), …] with f_i = 10000^(−2i/d)
 * (Transformer-XL's PositionalEmbedding: sines then cosines, not interleaved). d must be even.
 */
export function relativePositionTable(T: number, d: number): Float32Array {
  return positionTable(T, d).slice(); // a copy: the cached table is shared by every forward pass
}

/** The cached table (not to be written to). */
export function positionTable(T: number, d: number): Float32Array {
  if (!Number.isInteger(T) || T < 1)
    throw new ValueError(`relativePositionTable: T must be a positive integer; got ${T}`);
  if (!Number.isInteger(d) || d < 2 || d % 2 !== 0)
    throw new ValueError(`relativePositionTable: d must be a positive even integer; got ${d}`);
  return memo(`R${T},${d}`, () => {
    const half = d / 2;
    const r = new Float32Array(T * d);
    for (let m = 0; m < T; m++) {
      const p = T - 1 - m;
      for (let i = 0; i < half; i++) {
        const a = p * 10000 ** (-(2 * i) / d);
        r[m * d + i] = Math.sin(a);
        r[m * d + half + i] = Math.cos(a);
      }
    }
    return r;
  });
}

const masks = new Map<string, Uint8Array>();
/** Causal mask [T, L] for T queries that are the last T of L positions: query i sees keys j ≤ L − T + i. */
function causalMask(T: number, L: number): Uint8Array {
  const key = `${T},${L}`;
  let m = masks.get(key);
  if (!m) {
    m = new Uint8Array(T * L);
    for (let i = 0; i < T; i++) for (let j = 0; j <= L - T + i; j++) m[i * L + j] = 1;
    if (masks.size >= 32) masks.delete(masks.keys().next().value as string);
    masks.set(key, m);
  }
  return m;
}

/**
 * The rel-shift of Transformer-XL by pad, reshape and slice: x [..., T, L] (L ≥ T; the T queries are the last T
 * of L positions) holds, in row i and column m, the term for distance L − 1 − m; the result holds in (i, j) the
 * term for distance (L − T + i) − j, for every j ≤ L − T + i. Entries past that come from the next row and are
 * garbage, which the causal mask removes.
 */
export function relShift(x: Tensor): Tensor {
  const T = x.shape[x.ndim - 2]!;
  const L = x.shape[x.ndim - 1]!;
  if (x.ndim < 2 || L < T) throw new ShapeError(`relShift expects [..., T, L] with L ≥ T; got [${x.shape}]`);
  return tidy(() => {
    const lead = x.shape.slice(0, -2);
    // Left-pad one zero column: flat index of (i, c) is i(L + 1) + c. Dropping the first T of the flat values
    // and reading rows of L, (i, j) lands on i(L + 1) + (T − i + j), padded column c = T − i + j, i.e.
    // x[i, T − 1 − i + j], whose distance L − 1 − (T − 1 − i + j) = (L − T + i) − j.
    return F.pad(x, [1, 0])
      .reshape([...lead, L + 1, T])
      .slice(-2, 1)
      .reshape([...lead, T, L]);
  });
}

export interface RelativeAttentionOptions {
  dModel: number;
  nHeads: number;
  dropout?: number;
}

/**
 * Causal multi-head self-attention with Transformer-XL relative positions (no memory). Projections keep
 * tensor-core's names (q_proj, k_proj, v_proj, o_proj, with biases, as the rotary blocks) so that the two
 * position schemes differ only in positions; `r_net` is W_R (the reference's name; a Linear with bias, as
 * there).
 */
export class RelativeMultiHeadAttention extends nn.Module {
  readonly qProj: nn.Linear;
  readonly kProj: nn.Linear;
  readonly vProj: nn.Linear;
  readonly oProj: nn.Linear;
  readonly rNet: nn.Linear;
  readonly headDim: number;

  constructor(readonly opts: RelativeAttentionOptions) {
    super();
    const { dModel, nHeads } = opts;
    if (dModel % nHeads !== 0)
      throw new ValueError(`RelativeMultiHeadAttention: dModel ${dModel} is not divisible by nHeads ${nHeads}`);
    if (dModel % 2 !== 0)
      throw new ValueError(`RelativeMultiHeadAttention: dModel must be even (sinusoidal R); got ${dModel}`);
    this.headDim = dModel / nHeads;
    this.qProj = this.registerModule('q_proj', new nn.Linear(dModel, dModel));
    this.kProj = this.registerModule('k_proj', new nn.Linear(dModel, dModel));
    this.vProj = this.registerModule('v_proj', new nn.Linear(dModel, dModel));
    this.oProj = this.registerModule('o_proj', new nn.Linear(dModel, dModel));
    this.rNet = this.registerModule('r_net', new nn.Linear(dModel, dModel));
  }

  /**
   * Pre-softmax scores [B, H, T, L] (scaled, causal positions −∞): the definition above with the rel-shift.
   * x [B, T, d], u and v [H, d_head]. Without a cache L = T; with one (`ctx.cache`, `ctx.layer`), x holds the
   * T new positions, their keys and values are appended, and the queries attend over all L held. r [L, d] is
   * the position table for L (`relativePositionTable` order). Keys carry no position, so a cache holds them as
   * they are.
   */
  scores(
    x: Tensor,
    r: Tensor,
    u: Tensor,
    v: Tensor,
    ctx: { cache?: nn.KVCache; layer?: number } = {},
  ): { scores: Tensor; value: Tensor } {
    const { dModel, nHeads } = this.opts;
    if (x.ndim !== 3 || x.shape[2] !== dModel)
      throw new ShapeError(`RelativeMultiHeadAttention expects [B, T, ${dModel}]; got [${x.shape}]`);
    const [B, T] = x.shape as [number, number, number];
    const L = T + (ctx.cache?.length(ctx.layer ?? 0) ?? 0);
    if (r.ndim !== 2 || r.shape[0] !== L || r.shape[1] !== dModel)
      throw new ShapeError(`RelativeMultiHeadAttention: R must be [${L}, ${dModel}]; got [${r.shape}]`);
    const dh = this.headDim;
    return tidy(() => {
      const split = (t: Tensor) => t.reshape([B, T, nHeads, dh]).transpose(1, 2); // [B, H, T, dh]
      const q = split(this.qProj.forward(x));
      let k = split(this.kProj.forward(x));
      let value = split(this.vProj.forward(x));
      if (ctx.cache) ({ k, v: value } = ctx.cache.append(ctx.layer ?? 0, k.contiguous(), value.contiguous()));
      const rk = this.rNet.forward(r).reshape([L, nHeads, dh]).permute([1, 2, 0]); // [H, dh, L]
      const ac = q.add(u.unsqueeze(1)).matmul(k.transpose(-2, -1)); // content: (q_i + u)·k_j
      const bd = relShift(q.add(v.unsqueeze(1)).matmul(rk)); // position: (q_i + v)·W_R R_{i−j}
      const mask = tensor(causalMask(T, L), { shape: [T, L], dtype: 'bool' });
      const scores = ac
        .add(bd)
        .mul(1 / Math.sqrt(dh))
        .where(mask, Number.NEGATIVE_INFINITY);
      return { scores, value };
    });
  }

  forward(x: Tensor, r: Tensor, u: Tensor, v: Tensor, ctx: { cache?: nn.KVCache; layer?: number } = {}): Tensor {
    return tidy(() => {
      const [B, T] = x.shape as [number, number, number];
      const { scores, value } = this.scores(x, r, u, v, ctx);
      const p = F.dropout(F.softmax(scores, -1), this.opts.dropout ?? 0, this.training);
      const o = p.matmul(value).transpose(1, 2).reshape([B, T, this.opts.dModel]);
      return this.oProj.forward(o);
    });
  }
}

export interface RelativeBlockOptions extends RelativeAttentionOptions {
  dFF?: number;
  ln?: 'pre' | 'post';
}

/**
 * tensor-core's TransformerBlock (LayerNorm, GELU feed-forward, the same module names) with relative
 * attention: post-LN norm(x + attn(x)) then norm(h + ff(h)) as the reference's decoder layer, or pre-LN.
 */
export class RelativeTransformerBlock extends nn.Module {
  readonly norm1: nn.LayerNorm;
  readonly attn: RelativeMultiHeadAttention;
  readonly norm2: nn.LayerNorm;
  readonly fc1: nn.Linear;
  readonly fc2: nn.Linear;
  readonly act: nn.GELU;
  readonly drop: nn.Dropout;

  constructor(readonly opts: RelativeBlockOptions) {
    super();
    const d = opts.dModel;
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(d));
    this.attn = this.registerModule('attn', new RelativeMultiHeadAttention(opts));
    this.norm2 = this.registerModule('norm2', new nn.LayerNorm(d));
    this.fc1 = this.registerModule('fc1', new nn.Linear(d, opts.dFF ?? 4 * d));
    this.fc2 = this.registerModule('fc2', new nn.Linear(opts.dFF ?? 4 * d, d));
    this.act = new nn.GELU();
    this.drop = this.registerModule('drop', new nn.Dropout(opts.dropout ?? 0));
  }

  /** x [B, T, d]; with `ctx.cache` as `RelativeMultiHeadAttention.scores` (r then covers the cached positions). */
  forward(x: Tensor, r: Tensor, u: Tensor, v: Tensor, ctx: { cache?: nn.KVCache; layer?: number } = {}): Tensor {
    return tidy(() => {
      const mlp = (h: Tensor) => this.drop.forward(this.fc2.forward(this.act.forward(this.fc1.forward(h))));
      if (this.opts.ln === 'pre') {
        const h = x.add(this.drop.forward(this.attn.forward(this.norm1.forward(x), r, u, v, ctx)));
        return h.add(mlp(this.norm2.forward(h)));
      }
      const h = this.norm1.forward(x.add(this.drop.forward(this.attn.forward(x, r, u, v, ctx))));
      return this.norm2.forward(h.add(mlp(h)));
    });
  }
}
