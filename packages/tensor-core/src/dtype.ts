// Data types and promotion. Compute happens in float32, int32 and bool; float16 and bfloat16 exist as
// storage for I/O (safetensors) and are cast to float32 before compute.
// Promotion follows the JAX lattice for JS numbers: a number is "weak" and never widens a tensor's
// dtype within its category (bool < int < float), so `x.mul(2)` stays float32 and `i.add(1)` stays int32.
import { DTypeError } from './errors.js';

export type DType = 'float32' | 'int32' | 'bool' | 'float16' | 'bfloat16';
export type ComputeDType = 'float32' | 'int32' | 'bool';

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'int32'
    ? Int32Array
    : D extends 'bool'
      ? Uint8Array
      : Uint16Array;

export type AnyTypedArray = Float32Array | Int32Array | Uint8Array | Uint16Array;

export const DTYPES: readonly DType[] = ['float32', 'int32', 'bool', 'float16', 'bfloat16'];

export function itemSize(d: DType): number {
  return d === 'float32' || d === 'int32' ? 4 : d === 'bool' ? 1 : 2;
}

export function allocArray(d: DType, n: number): AnyTypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(n);
  }
}

export function checkDType(d: unknown, op: string): DType {
  if (typeof d === 'string' && (DTYPES as readonly string[]).includes(d)) return d as DType;
  throw new DTypeError(`${op}: unknown dtype ${JSON.stringify(d)}; expected one of ${DTYPES.join(', ')}`);
}

const rank: Record<ComputeDType, number> = { bool: 0, int32: 1, float32: 2 };

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16';
}

/** The dtype two tensor operands compute in. */
export function promote(a: DType, b: DType): ComputeDType {
  const ca = computeOf(a);
  const cb = computeOf(b);
  return rank[ca] >= rank[cb] ? ca : cb;
}

/** The dtype a tensor and a weak JS number compute in. */
export function promoteScalar(a: DType, v: number | boolean): ComputeDType {
  const ca = computeOf(a);
  const cv: ComputeDType = typeof v === 'boolean' ? 'bool' : Number.isInteger(v) ? 'int32' : 'float32';
  return rank[ca] >= rank[cv] ? ca : cv;
}

export function computeOf(d: DType): ComputeDType {
  return d === 'float16' || d === 'bfloat16' ? 'float32' : d;
}
