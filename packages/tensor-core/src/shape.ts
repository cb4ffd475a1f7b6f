// Shapes, strides and broadcasting (numpy rules: right-aligned, size-1 or missing dims expand).
import { fmtShape, ShapeError, ValueError } from './errors.js';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i]!;
  }
  return st;
}

export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i]!;
  }
  return true;
}

export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = n - s.length + i;
      const d = s[i]!;
      if (d === out[j] || d === 1) continue;
      if (out[j] === 1) out[j] = d;
      else throw new ShapeError(`${op}: shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together`);
    }
  }
  return out;
}

/** Normalises a possibly negative dim against a rank; throws naming the op. */
export function normDim(dim: number, rank: number, op: string): number {
  if (!Number.isInteger(dim)) throw new ValueError(`${op}: dim must be an integer; got ${dim}`);
  const d = dim < 0 ? dim + rank : dim;
  if (d < 0 || d >= rank) throw new ValueError(`${op}: dim ${dim} out of range for a tensor of rank ${rank}`);
  return d;
}

export function normDims(dims: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (dims === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  const out = list.map((d) => normDim(d, rank, op));
  if (new Set(out).size !== out.length) throw new ValueError(`${op}: repeated dim in ${fmtShape(list)}`);
  return out.sort((a, b) => a - b);
}

export function checkShape(shape: readonly number[], op: string): number[] {
  if (!Array.isArray(shape)) throw new ValueError(`${op}: shape must be an array of sizes; got ${String(shape)}`);
  for (const s of shape)
    if (!Number.isInteger(s) || s < 0)
      throw new ValueError(`${op}: shape sizes must be non-negative integers; got ${fmtShape(shape)}`);
  return [...shape];
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
