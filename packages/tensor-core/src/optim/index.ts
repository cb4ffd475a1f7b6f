export { Optimizer, type OptimizerState, type ParamGroup } from './optimizer.js';
export {
  clipGradNorm,
  constant,
  cosine,
  LRScheduler,
  linearWarmup,
  type Schedule,
  stepDecay,
  warmupCosine,
} from './schedule.js';
export { Adam, type AdamOptions, AdamW, SGD, type SGDOptions } from './sgd-adam.js';
