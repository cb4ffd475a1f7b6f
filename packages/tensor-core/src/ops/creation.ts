// Creating tensors from host data and constants.
import type { DType } from '../dtype.js';
import { checkDType } from '../dtype.js';
import { fmtShape, ShapeError, ValueError } from '../errors.js';
import { f32ToBf16, f32ToF16 } from '../io/half.js';
import { getBackend, kernelsFor } from '../runtime.js';
import { checkShape, numel } from '../shape.js';
import { Tensor } from '../tensor.js';

export interface TensorOptions {
  shape?: readonly number[];
  dtype?: DType;
  requiresGrad?: boolean;
}

type Nested = number | boolean | readonly Nested[];

/** Values as a backend stores them: float16/bfloat16 as their bit patterns (rounded to nearest even, like torch). */
function asStored(data: ArrayLike<number>, dtype: DType): ArrayLike<number> {
  if (dtype === 'float16') return f32ToF16(Float32Array.from(data));
  if (dtype === 'bfloat16') return f32ToBf16(Float32Array.from(data));
  return data;
}

function flattenNested(data: Nested, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length)
      throw new ShapeError(`tensor: ragged nested array (dim ${depth} has lengths ${shape[depth]} and ${data.length})`);
    for (const d of data) flattenNested(d, shape, out, depth + 1);
  } else {
    if (depth !== shape.length)
      throw new ShapeError('tensor: ragged nested array (a number where an array was expected)');
    if (typeof data !== 'number' && typeof data !== 'boolean')
      throw new ValueError(`tensor: expected numbers; got ${typeof data}`);
    out.push(Number(data));
  }
}

/**
 * `tensor([[1, 2], [3, 4]])`, `tensor(float32Array, { shape: [2, 2] })`, `tensor(3)`. Data are values for every
 * dtype, as in torch.tensor: `tensor([0.5], { dtype: 'float16' })` holds 0.5 (raw half bits load through io).
 */
export function tensor(data: Nested | ArrayLike<number>, opts: TensorOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  let shape: number[];
  const isTyped = ArrayBuffer.isView(data);
  if (isTyped) {
    flat = data as ArrayLike<number>;
    shape = opts.shape ? checkShape(opts.shape, 'tensor') : [flat.length];
  } else {
    const out: number[] = [];
    const inferred: number[] = [];
    flattenNested(data as Nested, inferred, out, 0);
    flat = out;
    shape = opts.shape ? checkShape(opts.shape, 'tensor') : inferred;
  }
  if (numel(shape) !== flat.length)
    throw new ShapeError(`tensor: ${flat.length} values do not fill shape ${fmtShape(shape)}`);
  const dtype =
    opts.dtype !== undefined
      ? checkDType(opts.dtype, 'tensor')
      : data instanceof Int32Array
        ? 'int32'
        : data instanceof Uint8Array && !isTyped
          ? 'bool'
          : typeof (Array.isArray(data) ? deepFirst(data) : data) === 'boolean'
            ? 'bool'
            : 'float32';
  const t = new Tensor(kernelsFor(getBackend()).fromArray(asStored(flat, dtype), dtype), shape);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function deepFirst(d: readonly Nested[]): Nested | undefined {
  let x: Nested | undefined = d;
  while (Array.isArray(x)) x = (x as readonly Nested[])[0];
  return x;
}

export function full(shape: readonly number[], value: number, opts: Omit<TensorOptions, 'shape'> = {}): Tensor {
  const s = checkShape(shape, 'full');
  const dtype = opts.dtype ?? 'float32';
  const t = new Tensor(kernelsFor(getBackend()).full(numel(s), value, dtype), s);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export const zeros = (shape: readonly number[], opts: Omit<TensorOptions, 'shape'> = {}) => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: Omit<TensorOptions, 'shape'> = {}) => full(shape, 1, opts);
export const zerosLike = (t: Tensor, opts: Omit<TensorOptions, 'shape'> = {}) =>
  full(t.shape, 0, { dtype: t.dtype, ...opts });
export const onesLike = (t: Tensor, opts: Omit<TensorOptions, 'shape'> = {}) =>
  full(t.shape, 1, { dtype: t.dtype, ...opts });
export const fullLike = (t: Tensor, v: number, opts: Omit<TensorOptions, 'shape'> = {}) =>
  full(t.shape, v, { dtype: t.dtype, ...opts });

/** [start, end) with `step`; int32 when all arguments are integers, like torch.arange. */
export function arange(start: number, end?: number, step = 1, opts: { dtype?: DType } = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  if (step === 0 || !Number.isFinite(step))
    throw new ValueError(`arange: step must be non-zero and finite; got ${step}`);
  const n = Math.max(0, Math.ceil((e - s) / step));
  if (n > 2 ** 30) throw new ValueError(`arange: ${n} elements is too many`);
  const dtype =
    opts.dtype ?? (Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step) ? 'int32' : 'float32');
  const data = Array.from({ length: n }, (_, i) => s + i * step);
  return new Tensor(kernelsFor(getBackend()).fromArray(asStored(data, dtype), dtype), [n]);
}

export function linspace(start: number, end: number, steps: number): Tensor {
  if (!Number.isInteger(steps) || steps < 0)
    throw new ValueError(`linspace: steps must be a non-negative integer; got ${steps}`);
  const data = Array.from({ length: steps }, (_, i) =>
    steps === 1 ? start : start + ((end - start) * i) / (steps - 1),
  );
  return new Tensor(kernelsFor(getBackend()).fromArray(data, 'float32'), [steps]);
}

export function eye(n: number, m = n): Tensor {
  const data = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
  return new Tensor(kernelsFor(getBackend()).fromArray(data, 'float32'), [n, m]);
}
