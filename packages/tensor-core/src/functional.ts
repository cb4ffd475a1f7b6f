// `F`: functional forms, as in torch.nn.functional.

export { type SdpaOptions, scaledDotProductAttention } from './ops/composite/attention.js';
export {
  binaryCrossEntropyWithLogits,
  type CrossEntropyOptions,
  crossEntropy,
  klDiv,
  l1Loss,
  mseLoss,
  nllLoss,
  type Reduction,
} from './ops/composite/losses.js';
export { batchNorm, dropout, embedding, groupNorm, layerNorm, rmsNorm } from './ops/composite/norm.js';
export { logSoftmax, softmax } from './ops/composite/softmax.js';
export { digamma, lgamma } from './ops/composite/special.js';
export {
  abs,
  clamp,
  cos,
  erf,
  exp,
  gelu,
  log,
  relu,
  sigmoid,
  silu,
  sin,
  softplus,
  tanh,
} from './ops/elementwise.js';
export {
  avgPool1d,
  type ConvOptions,
  type ConvTransposeOptions,
  conv1d,
  conv2d,
  convTranspose1d,
  maxPool1d,
  type Pool1dOptions,
} from './ops/linalg.js';
export { oneHot, pad } from './ops/movement.js';
