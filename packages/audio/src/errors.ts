// Typed errors. Every message names the function, says what it expected and what it got.

export class AudioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A malformed or unsupported WAV byte stream: names the field and its byte offset. */
export class WavFormatError extends AudioError {
  /** Byte offset of the offending field, or -1 when the problem is the stream as a whole. */
  readonly offset: number;
  constructor(message: string, offset = -1) {
    super(offset >= 0 ? `${message} (at byte ${offset})` : message);
    this.offset = offset;
  }
}

/** An argument out of its domain (a negative hop, an FFT size below the window, an unknown option). */
export class ValueError extends AudioError {}

export function check(cond: boolean, fn: string, what: string): asserts cond {
  if (!cond) throw new ValueError(`${fn}: ${what}`);
}

export function checkInt(x: number, min: number, fn: string, name: string): void {
  if (!Number.isInteger(x) || x < min) throw new ValueError(`${fn}: ${name} must be an integer >= ${min}; got ${x}`);
}

export function checkPositive(x: number, fn: string, name: string): void {
  if (!(x > 0) || !Number.isFinite(x)) throw new ValueError(`${fn}: ${name} must be a finite number > 0; got ${x}`);
}
