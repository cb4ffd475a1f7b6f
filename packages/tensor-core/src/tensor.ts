// Tensor: a strided view (shape, strides, offset) of a backend Storage, a dtype, and an autograd node.
// Methods are thin: each forwards to the one function in ops/ that implements it.
import { type GradNode, isGradEnabled, backward as runBackward } from './autograd.js';
import type { BackendName, Storage, View } from './backends/backend.js';
import type { DType } from './dtype.js';
import { isFloat } from './dtype.js';
import { AutogradError, DisposedError, DTypeError } from './errors.js';
import * as S from './ops/composite/softmax.js';
import * as SP from './ops/composite/special.js';
import * as E from './ops/elementwise.js';
import * as L from './ops/linalg.js';
import * as M from './ops/movement.js';
import * as P from './ops/prims.js';
import * as R from './ops/reduce.js';
import { countTensor, kernelsFor, leakRegistry, release, retain, track } from './runtime.js';
import { contiguousStrides, isContiguous, numel } from './shape.js';

export type Scalar = number | boolean;
export type TensorLike = Tensor | Scalar;
export type Dims = number | readonly number[];

let nextId = 1;

export class Tensor implements View {
  readonly isTensor = true;
  readonly id = nextId++;
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  /** Accumulated gradient of a leaf (or of a tensor that called retainGrad()). */
  grad: Tensor | null = null;
  gradNode: GradNode | null = null;
  retainsGrad = false;
  private _requiresGrad = false;
  private disposed = false;
  private readonly internal: boolean;
  /** Internal (runtime's `watch`): registered with the leak registry, so dispose must unregister it. */
  leakWatched = false;

  /** Internal: ops create tensors through `Tensor.fromStorage`; users call `tensor()`, `zeros()`, ... */
  constructor(storage: Storage, shape: readonly number[], strides?: readonly number[], offset = 0, internal = false) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = storage.dtype;
    this.internal = internal;
    retain(storage);
    if (!internal) {
      countTensor(1);
      track(this);
    }
  }

  get backend(): BackendName {
    return this.storage.backend;
  }
  get size(): number {
    return numel(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }
  get isLeaf(): boolean {
    return this.gradNode === null;
  }

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  set requiresGrad(v: boolean) {
    if (v && !isFloat(this.dtype))
      throw new DTypeError(`requiresGrad: only floating-point tensors can require gradients; got ${this.dtype}`);
    if (!v && this.gradNode)
      throw new AutogradError('requiresGrad: cannot turn off gradients of a non-leaf; use detach()');
    this._requiresGrad = v;
  }
  requiresGrad_(v = true): this {
    this.requiresGrad = v;
    return this;
  }

  /** Internal: attach a node with no saved tensors (views) when recording and an input requires grad. */
  setNodeIfRecording(name: string, inputs: Tensor[], vjp: (g: Tensor) => (Tensor | null)[]): void {
    if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return;
    this.setNode({ name, inputs, saved: [], released: false, vjp });
  }

  /** A new handle on the same view that carries gradients through (identity). */
  detachedView(): Tensor {
    const y = new Tensor(this.storage, this.shape, this.strides, this.offset);
    y.setNodeIfRecording('alias', [this], (g) => [g]);
    return y;
  }

  /** Internal: attach an autograd node (only when grad mode is on and some input requires grad). */
  setNode(node: GradNode): void {
    this.gradNode = node;
    this._requiresGrad = true;
  }

  assertUsable(op: string): void {
    if (this.disposed) throw new DisposedError(`${op}: tensor #${this.id} of shape [${this.shape}] was disposed`);
  }

  // ---- lifetime ----
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.internal) {
      countTensor(-1);
      if (this.leakWatched) leakRegistry.unregister(this);
    }
    release(this.storage);
    if (this.grad && !this.internal) {
      this.grad.dispose();
      this.grad = null;
    }
  }
  /** Internal: dispose without touching .grad (autograd temporaries). */
  disposeInternal(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.internal) {
      countTensor(-1);
      if (this.leakWatched) leakRegistry.unregister(this);
    }
    release(this.storage);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Internal: a second handle on the same view, owned by autograd (not tracked by tidy scopes). */
  aliasInternal(): Tensor {
    this.assertUsable('save');
    return new Tensor(this.storage, this.shape, this.strides, this.offset, true);
  }
  onesLikeInternal(): Tensor {
    return new Tensor(kernelsFor(this.backend).full(this.size, 1, this.dtype), this.shape, undefined, 0, true);
  }

  accumulateGrad(g: Tensor): void {
    // Own a contiguous copy: optimizers update .grad in place, which a stride-0 view cannot take.
    const owned = g.internal || !isContiguous(g.shape, g.strides) || g.offset !== 0 ? P.contiguousCopy(g) : g;
    if (owned !== g) g.disposeInternal();
    untrackGrad(owned);
    if (this.grad) {
      const sum = this.grad.add(owned);
      untrackGrad(sum);
      this.grad.dispose();
      owned.dispose();
      this.grad = sum;
    } else this.grad = owned;
  }

  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    this.assertUsable('backward');
    runBackward(this, gradient, opts.retainGraph ?? false);
  }
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }
  detach(): Tensor {
    this.assertUsable('detach');
    return new Tensor(this.storage, this.shape, this.strides, this.offset);
  }

  // ---- data ----
  async data(): Promise<ArrayLike<number>> {
    this.assertUsable('data');
    return kernelsFor(this.backend).read(this);
  }
  dataSync(): ArrayLike<number> {
    this.assertUsable('dataSync');
    return kernelsFor(this.backend).readSync(this);
  }
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new DTypeError(`item: only one-element tensors convert to a number; shape [${this.shape}]`);
    return (await this.data())[0]!;
  }
  itemSync(): number {
    if (this.size !== 1)
      throw new DTypeError(`item: only one-element tensors convert to a number; shape [${this.shape}]`);
    return this.dataSync()[0]!;
  }
  /** Nested arrays, like torch's tolist(). */
  async tolist(): Promise<unknown> {
    const d = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.ndim) return d[off];
      const n = this.shape[dim]!;
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  }
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, backend=${this.backend}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- elementwise ----
  add(o: TensorLike, alpha?: number): Tensor {
    return E.add(this, o, alpha);
  }
  sub(o: TensorLike, alpha?: number): Tensor {
    return E.sub(this, o, alpha);
  }
  mul(o: TensorLike): Tensor {
    return E.mul(this, o);
  }
  div(o: TensorLike): Tensor {
    return E.div(this, o);
  }
  pow(o: TensorLike): Tensor {
    return E.pow(this, o);
  }
  maximum(o: TensorLike): Tensor {
    return E.maximum(this, o);
  }
  minimum(o: TensorLike): Tensor {
    return E.minimum(this, o);
  }
  neg(): Tensor {
    return E.neg(this);
  }
  abs(): Tensor {
    return E.abs(this);
  }
  sign(): Tensor {
    return E.sign(this);
  }
  exp(): Tensor {
    return E.exp(this);
  }
  log(): Tensor {
    return E.log(this);
  }
  log1p(): Tensor {
    return E.log1p(this);
  }
  expm1(): Tensor {
    return E.expm1(this);
  }
  sqrt(): Tensor {
    return E.sqrt(this);
  }
  rsqrt(): Tensor {
    return E.rsqrt(this);
  }
  sin(): Tensor {
    return E.sin(this);
  }
  cos(): Tensor {
    return E.cos(this);
  }
  tanh(): Tensor {
    return E.tanh(this);
  }
  sigmoid(): Tensor {
    return E.sigmoid(this);
  }
  relu(): Tensor {
    return E.relu(this);
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return E.gelu(this, { approximate });
  }
  silu(): Tensor {
    return E.silu(this);
  }
  softplus(): Tensor {
    return E.softplus(this);
  }
  erf(): Tensor {
    return E.erf(this);
  }
  reciprocal(): Tensor {
    return E.reciprocal(this);
  }
  /** log Γ(x), for x > 0. */
  lgamma(): Tensor {
    return SP.lgamma(this);
  }
  /** ψ(x), for x > 0. */
  digamma(): Tensor {
    return SP.digamma(this);
  }
  square(): Tensor {
    return E.mul(this, this);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return E.clamp(this, min, max);
  }
  eq(o: TensorLike): Tensor {
    return E.eq(this, o);
  }
  ne(o: TensorLike): Tensor {
    return E.ne(this, o);
  }
  lt(o: TensorLike): Tensor {
    return E.lt(this, o);
  }
  le(o: TensorLike): Tensor {
    return E.le(this, o);
  }
  gt(o: TensorLike): Tensor {
    return E.gt(this, o);
  }
  ge(o: TensorLike): Tensor {
    return E.ge(this, o);
  }
  logicalNot(): Tensor {
    return E.logicalNot(this);
  }
  /** torch's `x.where(cond, y)`: x where cond, else y. */
  where(cond: Tensor, other: TensorLike): Tensor {
    return E.where(cond, this, other);
  }
  /** A cast (`to('int32')`), or a detached copy on another backend (`await t.to('cpu')`). */
  to(dtype: DType): Tensor;
  to(backend: BackendName): Promise<Tensor>;
  to(target: DType | BackendName): Tensor | Promise<Tensor> {
    return target === 'cpu' || target === 'webgpu' ? P.toBackend(this, target) : P.cast(this, target);
  }
  float(): Tensor {
    return P.cast(this, 'float32');
  }
  int(): Tensor {
    return P.cast(this, 'int32');
  }
  bool(): Tensor {
    return P.cast(this, 'bool');
  }

  // ---- linear algebra ----
  matmul(o: Tensor): Tensor {
    return L.matmul(this, o);
  }

  // ---- reductions ----
  sum(dim?: Dims, keepdim = false): Tensor {
    return R.sum(this, dim, keepdim);
  }
  mean(dim?: Dims, keepdim = false): Tensor {
    return R.mean(this, dim, keepdim);
  }
  prod(dim?: Dims, keepdim = false): Tensor {
    return R.prod(this, dim, keepdim);
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? R.amax(this) : R.maxDim(this, dim, keepdim);
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? R.amin(this) : R.minDim(this, dim, keepdim);
  }
  amax(dim?: Dims, keepdim = false): Tensor {
    return R.amax(this, dim, keepdim);
  }
  amin(dim?: Dims, keepdim = false): Tensor {
    return R.amin(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return R.argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return R.argmin(this, dim, keepdim);
  }
  logsumexp(dim: Dims, keepdim = false): Tensor {
    return R.logsumexp(this, dim, keepdim);
  }
  var(dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return R.variance(this, dim, opts);
  }
  std(dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return R.std(this, dim, opts);
  }
  cumsum(dim: number): Tensor {
    return R.cumsum(this, dim);
  }
  softmax(dim: number): Tensor {
    return S.softmax(this, dim);
  }
  logSoftmax(dim: number): Tensor {
    return S.logSoftmax(this, dim);
  }

  // ---- movement ----
  reshape(shape: readonly number[]): Tensor {
    return M.reshape(this, shape);
  }
  view(shape: readonly number[]): Tensor {
    return M.view(this, shape);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return M.flatten(this, startDim, endDim);
  }
  transpose(d0: number, d1: number): Tensor {
    return M.transpose(this, d0, d1);
  }
  /** Transpose of the last two dims (`x.mT` in PyTorch). */
  get mT(): Tensor {
    return M.transpose(this, -2, -1);
  }
  permute(dims: readonly number[]): Tensor {
    return M.permute(this, dims);
  }
  unsqueeze(dim: number): Tensor {
    return M.unsqueeze(this, dim);
  }
  squeeze(dim?: Dims): Tensor {
    return M.squeeze(this, dim);
  }
  expand(shape: readonly number[]): Tensor {
    return M.expand(this, shape);
  }
  expandAs(o: Tensor): Tensor {
    return M.expand(this, o.shape);
  }
  /** `slice(dim, start, end, step)`, like `x[:, start:end:step]`; negative indices count from the end. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return M.slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return M.slice(this, dim, start, start + length);
  }
  select(dim: number, index: number): Tensor {
    return M.select(this, dim, index);
  }
  flip(dims: Dims): Tensor {
    return M.flip(this, dims);
  }
  contiguous(): Tensor {
    return M.contiguous(this);
  }
  clone(): Tensor {
    return P.contiguousCopy(this);
  }
  repeat(reps: readonly number[]): Tensor {
    return M.repeat(this, reps);
  }
  split(size: number | readonly number[], dim = 0): Tensor[] {
    return M.split(this, size, dim);
  }
  chunk(n: number, dim = 0): Tensor[] {
    return M.chunk(this, n, dim);
  }
  gather(dim: number, index: Tensor): Tensor {
    return M.gather(this, dim, index);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return M.indexSelect(this, dim, index);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return M.scatterAdd(this, dim, index, src);
  }
  tril(diagonal = 0): Tensor {
    return M.tril(this, diagonal);
  }
  triu(diagonal = 0): Tensor {
    return M.triu(this, diagonal);
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    return M.sort(this, dim, descending);
  }
  argsort(dim = -1, descending = false): Tensor {
    return M.argsort(this, dim, descending);
  }
  topk(k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
    return M.topk(this, k, dim, largest);
  }

  // ---- in place (bump the storage version so autograd can detect edits of saved tensors) ----
  copy_(src: TensorLike): this {
    P.assign(this, src);
    return this;
  }
  fill_(v: number): this {
    P.assign(this, v);
    return this;
  }
  zero_(): this {
    P.assign(this, 0);
    return this;
  }
  add_(o: TensorLike, alpha?: number): this {
    return this.inplace(() => E.add(this, o, alpha));
  }
  sub_(o: TensorLike, alpha?: number): this {
    return this.inplace(() => E.sub(this, o, alpha));
  }
  mul_(o: TensorLike): this {
    return this.inplace(() => E.mul(this, o));
  }
  div_(o: TensorLike): this {
    return this.inplace(() => E.div(this, o));
  }
  private inplace(f: () => Tensor): this {
    const r = P.withoutGrad(f);
    P.assign(this, r);
    r.dispose();
    return this;
  }
}

function untrackGrad(t: Tensor): void {
  // Gradients belong to their leaf, not to the tidy() scope that happened to run backward().
  P.keepInternal(t);
}

export function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && (v as Tensor).isTensor === true;
}

export { isGradEnabled };
