// Learning-rate schedules as factor functions of the step, and a scheduler that applies one to every
// group's base rate; gradient clipping by global norm.
import { noGrad } from '../autograd.js';
import { checkInt, checkNonNegative, checkPositive } from '../checks.js';
import { ValueError } from '../errors.js';
import { full } from '../ops/creation.js';
import { tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import type { Optimizer } from './optimizer.js';

export type Schedule = (step: number) => number;

export const constant = (): Schedule => () => 1;

/** Linear warm-up from 0 to 1 over `warmup` steps, then `after` (default constant). */
export function linearWarmup(warmup: number, after: Schedule = constant()): Schedule {
  checkInt('linearWarmup', 'warmup', warmup, 0);
  return (s) => (s < warmup ? (s + 1) / warmup : after(s - warmup));
}

/** Cosine decay from 1 to `minFactor` over `total` steps, flat afterwards. */
export function cosine(total: number, minFactor = 0): Schedule {
  if (!(total > 0)) throw new ValueError(`cosine: total steps must be positive; got ${total}`);
  checkNonNegative('cosine', 'minFactor', minFactor);
  return (s) => minFactor + ((1 - minFactor) * (1 + Math.cos((Math.PI * Math.min(s, total)) / total))) / 2;
}

/** Multiplies by `gamma` every `stepSize` steps (StepLR). */
export function stepDecay(stepSize: number, gamma = 0.1): Schedule {
  checkInt('stepDecay', 'stepSize', stepSize, 1);
  checkPositive('stepDecay', 'gamma', gamma);
  return (s) => gamma ** Math.floor(s / stepSize);
}

/** Warm-up then cosine: the usual transformer schedule. */
export const warmupCosine = (warmup: number, total: number, minFactor = 0): Schedule => {
  checkInt('warmupCosine', 'warmup', warmup, 0);
  if (!(Number.isInteger(total) && total >= Math.max(1, warmup)))
    throw new ValueError(`warmupCosine: total must be an integer ≥ warmup (${warmup}) and ≥ 1; got ${total}`);
  return linearWarmup(warmup, cosine(Math.max(1, total - warmup), minFactor));
};

export class LRScheduler {
  private readonly base: number[];
  private n = 0;
  constructor(
    private readonly opt: Optimizer<{ lr: number }>,
    private readonly schedule: Schedule,
  ) {
    this.base = opt.paramGroups.map((g) => g.lr);
    this.apply();
  }
  /** Call after optimizer.step(). */
  step(): void {
    this.n++;
    this.apply();
  }
  get lastStep(): number {
    return this.n;
  }
  /** Restores the step count (from a checkpoint). */
  setStep(n: number): void {
    checkInt('LRScheduler.setStep', 'step', n, 0);
    this.n = n;
    this.apply();
  }
  private apply(): void {
    const f = this.schedule(this.n);
    // a custom schedule's NaN or negative factor would reach the weights through the learning rate
    if (!(Number.isFinite(f) && f >= 0))
      throw new ValueError(`LRScheduler: the schedule gave ${f} at step ${this.n}; factors must be finite and ≥ 0`);
    this.opt.paramGroups.forEach((g, i) => {
      g.lr = this.base[i]! * f;
    });
  }
}

/**
 * Scales gradients in place so their global L2 norm is at most maxNorm, without reading back to the
 * host (so it stays on the GPU); returns the norm before clipping as a 0-d tensor, like PyTorch.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, eps = 1e-6): Tensor {
  // A negative bound would flip every gradient (training climbs the loss) and 0 would erase them: refuse both.
  if (!(maxNorm > 0)) throw new ValueError(`clipGradNorm: maxNorm must be a positive number; got ${maxNorm}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  return noGrad(() =>
    tidy(() => {
      if (grads.length === 0) return full([], 0);
      const total = grads
        .map((g) => g.mul(g).sum())
        .reduce((a, b) => a.add(b))
        .sqrt();
      const coef = total.add(eps).reciprocal().mul(maxNorm).clamp(null, 1);
      for (const g of grads) g.mul_(coef);
      return total;
    }),
  );
}
