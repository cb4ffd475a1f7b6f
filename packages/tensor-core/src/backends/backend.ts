// The backend interface: one kernels table per backend, typed so a missing kernel fails to compile.
// Kernels read strided views and always write a fresh contiguous output; views (reshape, permute,
// expand, slice, flip) never reach a kernel as work, only as strides.
import type { ComputeDType, DType } from '../dtype.js';

export type UnaryOp =
  | 'neg'
  | 'abs'
  | 'sign'
  | 'exp'
  | 'log'
  | 'log1p'
  | 'expm1'
  | 'sqrt'
  | 'rsqrt'
  | 'sin'
  | 'cos'
  | 'tanh'
  | 'sigmoid'
  | 'relu'
  | 'gelu'
  | 'geluTanh'
  | 'silu'
  | 'softplus'
  | 'erf'
  | 'reciprocal'
  | 'floor'
  | 'round'
  | 'logicalNot'
  // Derivatives of the activations, so their VJPs are one pass instead of a chain of elementwise ops.
  | 'geluGrad'
  | 'geluTanhGrad'
  | 'siluGrad';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ReduceOp = 'sum' | 'max' | 'min' | 'prod';
export type ArgReduceOp = 'argmax' | 'argmin';

/** Backend-owned memory. Tensors that are views of each other share one Storage; `refs` counts owners. */
export interface Storage {
  readonly backend: BackendName;
  readonly dtype: DType;
  readonly length: number;
  /** Backend payload: a typed array on the CPU, a GPUBuffer on WebGPU. */
  buf: unknown;
  refs: number;
  /** Bumped by every in-place write, so autograd can refuse gradients through edited saved tensors. */
  version: number;
}

export interface View {
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
}

export type BackendName = 'cpu' | 'webgpu';

/** Scalars of one Adam/AdamW step (PyTorch's order): bias corrections are folded in by the caller. */
export interface AdamScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 decay added to the gradient (Adam) or decoupled p·(1 − lr·wd) first (AdamW). */
  weightDecay: number;
  decoupled: boolean;
  /** lr / (1 − β1^t) */
  stepSize: number;
  /** √(1 − β2^t) */
  bc2Sqrt: number;
}

/** A convolution's geometry, one entry per spatial dim (1 or 2): x [N, C, ...S], w [O, C/groups, ...K]. */
export interface ConvGeometry {
  stride: readonly number[];
  /** zeros [before, after] per spatial dim */
  padding: readonly (readonly [number, number])[];
  dilation: readonly number[];
  groups: number;
}

export interface Kernels {
  unary(op: UnaryOp, x: View): Storage;
  /** `a` and `b` are already broadcast to one shape (stride-0 dims). */
  binary(op: BinaryOp, a: View, b: View, out: ComputeDType): Storage;
  compare(op: CompareOp, a: View, b: View): Storage;
  where(cond: View, a: View, b: View): Storage;
  cast(x: View, dtype: DType): Storage;
  /** Strided view → contiguous copy. */
  copy(x: View): Storage;
  /** Reduces `dims` (sorted) to size 1. */
  reduce(op: ReduceOp, x: View, dims: readonly number[]): Storage;
  argReduce(op: ArgReduceOp, x: View, dim: number): Storage;
  cumsum(x: View, dim: number): Storage;
  /** `a` [...batch, m, k] x `b` [...batch, k, n], batch dims already broadcast (strides may be 0). */
  matmul(a: View, b: View): Storage;
  gather(x: View, dim: number, index: View): Storage;
  /** A copy of `base` with `src` added at `index` along `dim`. */
  scatterAdd(base: View, dim: number, index: View, src: View): Storage;
  /**
   * Zeros of `baseShape`, then `src` (contiguous-shaped like the view) accumulated into the strided view
   * (`viewShape`, `viewStrides`, `viewOffset`) of it: the adjoint of `asStrided`. Overlaps add up (col2im).
   */
  asStridedScatter(
    src: View,
    baseShape: readonly number[],
    viewStrides: readonly number[],
    viewOffset: number,
  ): Storage;
  /** Constant padding: `pads[i] = [before, after]` per dim, both ≥ 0. */
  pad(x: View, pads: readonly (readonly [number, number])[], value: number): Storage;
  cat(xs: readonly View[], dim: number): Storage;
  /** Stable sort along `dim`: values and int32 indices. */
  sort(x: View, dim: number, descending: boolean): [Storage, Storage];
  /** Uploads host data (contiguous), as stored: float16/bfloat16 data are bit patterns. */
  fromArray(data: ArrayLike<number>, dtype: DType): Storage;
  /** `length` copies of `value` (a value for every dtype; half dtypes store its rounded bits). */
  full(length: number, value: number, dtype: DType): Storage;
  /** Contiguous host copy of a view. */
  read(x: View): Promise<ArrayLike<number>>;
  readSync(x: View): ArrayLike<number>;
  /** In-place write of `src` (same shape) into the strided view `dst`. */
  assign(dst: View, src: View): void;
  free(s: Storage): void;
  // Fused kernels (float32 only; callers fall back to composites for other dtypes).
  /** softmax (or log-softmax) over the last dim: row max, exp-sum and normalise in one pass per row. */
  softmax(x: View, log: boolean): Storage;
  /** The VJP of `softmax` from its output `y`: y·(g − Σg·y), or for log-softmax g − exp(y)·Σg. */
  softmaxBackward(y: View, g: View, log: boolean): Storage;
  /**
   * Layer norm (or RMS norm) of rows of the last `n` elements, with optional affine `weight`/`bias` [n]:
   * [y, mean, rstd], the last two one per row (mean is 0 for RMS norm).
   */
  layerNorm(
    x: View,
    n: number,
    weight: View | null,
    bias: View | null,
    eps: number,
    rms: boolean,
  ): [Storage, Storage, Storage];
  /** dx, and dweight/dbias [n] (column sums) when `needW`/`needB`, of `layerNorm` from its saved statistics. */
  layerNormBackward(
    g: View,
    x: View,
    mean: View,
    rstd: View,
    weight: View | null,
    rms: boolean,
    needW: boolean,
    needB: boolean,
  ): [Storage, Storage | null, Storage | null];
  /**
   * Cross-entropy of logits rows `x` [N, C] at int32 `target` [N]: [loss, logsumexp] per row, the loss 0 where
   * the target is `ignoreIndex`. A target outside [0, C) is an index error (CPU at once, WebGPU at the next read).
   */
  crossEntropy(x: View, target: View, ignoreIndex: number): [Storage, Storage];
  /** (softmax(x) − onehot(target))·g per row, 0 on ignored rows, from the saved logsumexp. */
  crossEntropyBackward(x: View, target: View, lse: View, g: View, ignoreIndex: number): Storage;
  /**
   * One LSTM step from the gate pre-activations `gates` [B, 4H] (i, f, g, o, biases added) and the cell `c`
   * [B, H]: [2, B, H] = [h, c'] with c' = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c').
   */
  lstmCell(gates: View, c: View): Storage;
  /** The VJP of `lstmCell` from the output gradient `g` [2, B, H]: B·5H values, dgates [B, 4H] then dc [B, H]. */
  lstmCellBackward(gates: View, c: View, g: View): Storage;
  /**
   * One GRU step from the input projection `xp` [B, 3H] (r, z, n, with bias_ih), the hidden projection `hh`
   * [B, 3H] (with bias_hh) and `h` [B, H]: h' [B, H] = (1 − z)·n + z·h, n = tanh(xp_n + r·hh_n).
   */
  gruCell(xp: View, hh: View, h: View): Storage;
  /** The VJP of `gruCell` from `g` [B, H]: B·7H values, dxp [B, 3H] then dhh [B, 3H] then dh [B, H]. */
  gruCellBackward(xp: View, hh: View, h: View, g: View): Storage;
  // Optional: a backend without them (or returning null from `conv`) runs convolutions as the im2col composite.
  /**
   * float32 convolution [N, O, ...out] in one kernel (no im2col matrix), plus `bias` [O] when given; null where the
   * composite should run.
   */
  conv?(x: View, w: View, bias: View | null, geo: ConvGeometry): Storage | null;
  /** The VJP of `conv` for its bias: g summed over images and positions, [O]. */
  convBackwardBias?(g: View): Storage;
  /**
   * The transposed convolution of x [N, O, ...] with w [O, C/groups, ...k] into `outShape` [N, C, ...] (the VJP of
   * `conv` for its input, run forward); null where the composite should run.
   */
  convTranspose?(x: View, w: View, outShape: readonly number[], geo: ConvGeometry): Storage | null;
  /** The VJP of `conv` for its input (a transposed convolution, col2im fused): [N, C, ...S]. */
  convBackwardInput?(g: View, w: View, xShape: readonly number[], geo: ConvGeometry): Storage;
  /** The VJP of `conv` for its weight: Σ over the batch of g · im2col(x)ᵀ, [O, C/groups, ...K]. */
  convBackwardWeight?(g: View, x: View, wShape: readonly number[], geo: ConvGeometry): Storage;
  // Optional: attention's softmax(scale·s + causal mask) in one pass; without them attention runs mul, where
  // and softmax.
  /**
   * softmax(fl(scale·x)) over the last dim of x [..., Lq, Lk], where with `causal` = c the row i (within its
   * [Lq, Lk] matrix) keeps keys j ≤ i + c and gives the others probability 0 (a row with none is NaN).
   */
  scaledSoftmax?(x: View, scale: number, causal: number | null): Storage;
  /** The VJP of `scaledSoftmax` from its output `y`: scale·y·(g − Σg·y), 0 on masked keys. */
  scaledSoftmaxBackward?(y: View, g: View, scale: number, causal: number | null): Storage;
  /**
   * a·b (float32, batched as `matmul`) for causal attention, where entry (i, j) of an [L, L'] matrix is live when
   * j ≤ i + off: `tri` 1 gives the product's live entries and 0 elsewhere; 2 takes a as 0 past its live entries
   * and 3 as the transpose of such a matrix (the caller guarantees those zeros), so the kernel may skip them.
   */
  causalMatmul?(a: View, b: View, tri: 1 | 2 | 3, off: number): Storage;
  /**
   * Causal self-attention softmax(fl(scale·q kᵀ) under the mask j ≤ i) v of float32 q, k, v [B, H, L, d] (equal
   * shapes, unit column stride) in one kernel, with the results `scaledSoftmax` and `causalMatmul` give: o laid
   * out as [B, L, H, d] (`oStrides`: the strides of its [B, H, L, d] view) and the probabilities p [B, H, L, L] for
   * the VJP. Null where the backend declines (the caller composes those ops).
   */
  causalAttention?(q: View, k: View, v: View, scale: number): { o: Storage; oStrides: number[]; p: Storage } | null;
  /** Its VJP from p and the output gradient g [B, H, L, d]: [dq, dk, dv], each laid out as o is. */
  causalAttentionBackward?(q: View, k: View, v: View, p: View, g: View, scale: number): [Storage, Storage, Storage];
  /**
   * nn.Linear's epilogue in place on its fresh float32 product `y` [rows, n] (contiguous, held by nobody else):
   * y = y + bias (bias contiguous [n]), then relu when `relu`; the bits of the separate add and relu kernels.
   */
  biasAct?(y: View, bias: View, relu: boolean): void;
  /** relu's VJP from its output: y > 0 ? g : 0 for contiguous float32 g and y of one shape (where(x > 0, g, 0)). */
  reluBackward?(g: View, y: View): Storage;
  /** One in-place Adam/AdamW step of contiguous float32 `p`, `m` (exp_avg), `v` (exp_avg_sq) from `grad`. */
  adam(p: View, grad: View, m: View, v: View, s: AdamScalars): void;
}
