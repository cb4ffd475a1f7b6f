// Typed errors. Every message says what the op expected and what it got, and names the op.

export class TesseraError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit the op: `ShapeError: matmul expects [..., m, k] x [..., k, n]; got [2, 3] x [4, 5]`. */
export class ShapeError extends TesseraError {}

/** A dtype the op does not accept, or an unknown dtype name. */
export class DTypeError extends TesseraError {}

/** A tensor used after `dispose()` (directly, or as a saved input of a backward pass). */
export class DisposedError extends TesseraError {}

/** Backward through a path that has no gradient, or through a tensor edited in place after it was saved. */
export class AutogradError extends TesseraError {}

/** An argument out of its domain (a negative dim size, a dim out of range, an unknown option). */
export class ValueError extends TesseraError {}

/** A malformed file or byte stream (safetensors, checkpoints): names the offending field and byte offset. */
export class FormatError extends TesseraError {}

export const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;
