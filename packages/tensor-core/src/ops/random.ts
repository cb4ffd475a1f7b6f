// Seeded, reproducible random numbers: xoshiro128** (32-bit state, exact in JS integers) on the host,
// uploaded to the tensor's backend. The state can be saved and restored for bit-exact resumption.
import type { DType } from '../dtype.js';
import { ValueError } from '../errors.js';
import { getBackend, kernelsFor } from '../runtime.js';
import { checkShape, numel } from '../shape.js';
import { Tensor } from '../tensor.js';

const state = new Uint32Array(4);

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeds the global generator (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed)) throw new ValueError(`manualSeed: seed must be a finite number; got ${seed}`);
  const hi = Math.floor(seed / 2 ** 32);
  const sm = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
  for (let i = 0; i < 4; i++) state[i] = sm();
  if (state.every((v) => v === 0)) state[0] = 1;
}
manualSeed(0);

export function getRngState(): number[] {
  return Array.from(state);
}

/** Throws unless `s` is a state `setRngState` takes (as `getRngState` returns: 4 uint32, not all zero). */
export function checkRngState(s: unknown): asserts s is number[] {
  if (
    !Array.isArray(s) ||
    s.length !== 4 ||
    s.some((v) => typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
  )
    throw new ValueError('setRngState: expected 4 unsigned 32-bit integers from getRngState()');
  // All zeros is xoshiro's fixed point: every draw after it would be 0 (manualSeed never makes it).
  if (s.every((v) => v === 0)) throw new ValueError('setRngState: the all-zero state is not a generator state');
}

export function setRngState(s: readonly number[]): void {
  checkRngState(s);
  state.set(s);
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Next uniform 32-bit integer. */
export function nextU32(): number {
  const r = Math.imul(rotl(Math.imul(state[1]!, 5) >>> 0, 7), 9) >>> 0;
  const t = (state[1]! << 9) >>> 0;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= t;
  state[3] = rotl(state[3]!, 11);
  return r;
}

/** Uniform in [0, 1) with 24 random bits, so it is exact in float32 and never rounds up to 1. */
export function nextFloat(): number {
  return (nextU32() >>> 8) / 16777216;
}

function make(data: ArrayLike<number>, shape: readonly number[], dtype: DType, requiresGrad = false): Tensor {
  const t = new Tensor(kernelsFor(getBackend()).fromArray(data, dtype), shape);
  if (requiresGrad) t.requiresGrad = true;
  return t;
}

export interface RandOptions {
  requiresGrad?: boolean;
}

export function rand(shape: readonly number[], opts: RandOptions = {}): Tensor {
  const n = numel(checkShape(shape, 'rand'));
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = nextFloat();
  return make(d, shape, 'float32', opts.requiresGrad);
}

/** Standard normal (Box–Muller), optionally scaled: mean + std·z. */
export function randn(shape: readonly number[], opts: RandOptions & { mean?: number; std?: number } = {}): Tensor {
  const n = numel(checkShape(shape, 'randn'));
  const { mean = 0, std = 1 } = opts;
  const d = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - nextFloat(); // (0, 1]
    const u2 = nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    d[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) d[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
  return make(d, shape, 'float32', opts.requiresGrad);
}

/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: readonly number[]): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low || high - low > 2 ** 32)
    throw new ValueError(`randint: need integers low < high; got [${low}, ${high})`);
  const n = numel(checkShape(shape, 'randint'));
  const range = high - low;
  const d = new Int32Array(n);
  // Rejection sampling keeps every value equally likely.
  const limit = 2 ** 32 - (2 ** 32 % range);
  for (let i = 0; i < n; i++) {
    let u = nextU32();
    while (u >= limit) u = nextU32();
    d[i] = low + (u % range);
  }
  return make(d, shape, 'int32');
}

/** 1 with probability p (a number, or a tensor of probabilities), as float32. */
export function bernoulli(p: number | Tensor, shape?: readonly number[]): Tensor {
  if (typeof p === 'number') {
    if (!(p >= 0 && p <= 1)) throw new ValueError(`bernoulli: p must be in [0, 1]; got ${p}`);
    const s = checkShape(shape ?? [], 'bernoulli');
    const n = numel(s);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = nextFloat() < p ? 1 : 0;
    return make(d, s, 'float32');
  }
  const probs = p.dataSync();
  const d = new Float32Array(probs.length);
  for (let i = 0; i < probs.length; i++) {
    const q = probs[i]!;
    if (!(q >= 0 && q <= 1)) throw new ValueError(`bernoulli: probability ${q} at index ${i} is outside [0, 1]`);
    d[i] = nextFloat() < q ? 1 : 0;
  }
  return make(d, p.shape, 'float32');
}

/** A float32 keep-mask like `x` with P(1) = keep, on x's backend. */
export function bernoulliMask(x: Tensor, keep: number): Tensor {
  const n = x.size;
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = nextFloat() < keep ? 1 : 0;
  return new Tensor(kernelsFor(x.backend).fromArray(d, 'float32'), x.shape);
}

/**
 * Samples `numSamples` class indices per row of non-negative weights [C] or [N, C] (int32), with or
 * without replacement, like torch.multinomial.
 */
export function multinomial(probs: Tensor, numSamples: number, opts: { replacement?: boolean } = {}): Tensor {
  const { replacement = false } = opts;
  if (probs.ndim !== 1 && probs.ndim !== 2)
    throw new ValueError(`multinomial: expected [C] or [N, C]; got [${probs.shape}]`);
  const C = probs.shape[probs.ndim - 1]!;
  const N = probs.ndim === 2 ? probs.shape[0]! : 1;
  if (!replacement && numSamples > C)
    throw new ValueError(`multinomial: cannot draw ${numSamples} samples without replacement from ${C} classes`);
  const w = probs.dataSync();
  const out = new Int32Array(N * numSamples);
  for (let r = 0; r < N; r++) {
    const row = Array.from({ length: C }, (_, c) => w[r * C + c]!);
    if (row.some((v) => !(v >= 0) || !Number.isFinite(v)))
      throw new ValueError(`multinomial: weights must be finite and non-negative (row ${r})`);
    for (let s = 0; s < numSamples; s++) {
      const total = row.reduce((a, b) => a + b, 0);
      if (!(total > 0)) throw new ValueError(`multinomial: row ${r} has no positive weight left`);
      let u = nextFloat() * total;
      let c = 0;
      while (c < C - 1 && (u >= row[c]! || row[c] === 0)) {
        u -= row[c]!;
        c++;
      }
      out[r * numSamples + s] = c;
      if (!replacement) row[c] = 0;
    }
  }
  return make(out, probs.ndim === 2 ? [N, numSamples] : [numSamples], 'int32');
}

/** Standard Gumbel noise −log(−log U), for Gumbel-softmax / Gumbel-sigmoid. */
export function gumbel(shape: readonly number[]): Tensor {
  const n = numel(checkShape(shape, 'gumbel'));
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = (nextFloat() * 16777215 + 0.5) / 16777216; // (0, 1) strictly
    d[i] = -Math.log(-Math.log(u));
  }
  return make(d, shape, 'float32');
}
