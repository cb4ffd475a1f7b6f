// Parameter initialisation with PyTorch's default distributions (values differ, distributions match).
import { noGrad } from '../autograd.js';
import { rand, randn } from '../ops/random.js';
import { tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';

/** U(-bound, bound) of the given shape. */
export function uniform(shape: readonly number[], bound: number): Tensor {
  return noGrad(() =>
    tidy(() =>
      rand(shape)
        .mul(2 * bound)
        .sub(bound),
    ),
  );
}

export function normal(shape: readonly number[], std = 1, mean = 0): Tensor {
  return randn(shape, { mean, std });
}

/** PyTorch's Linear/Conv default: kaiming_uniform(a=√5) on the weight, i.e. U(±1/√fan_in). */
export function defaultWeight(shape: readonly number[], fanIn: number): Tensor {
  return uniform(shape, fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0);
}

export function xavierUniform(shape: readonly number[], fanIn: number, fanOut: number, gain = 1): Tensor {
  return uniform(shape, gain * Math.sqrt(6 / (fanIn + fanOut)));
}
