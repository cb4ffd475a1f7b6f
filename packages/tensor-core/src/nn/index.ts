export {
  applyRope,
  CausalSelfAttention,
  MultiheadAttention,
  type PositionBias,
  type SelfAttentionOptions,
} from './attention.js';
export { defaultWeight, normal, uniform, xavierUniform } from './init.js';
export { ConcatStorage, type KV, KVCache, type KVCacheStorage } from './kv-cache.js';
export {
  BatchNorm1d,
  Conv1d,
  Conv2d,
  ConvTranspose1d,
  Dropout,
  Embedding,
  GELU,
  GroupNorm,
  Identity,
  Layer,
  LayerNorm,
  Linear,
  ModuleList,
  ReLU,
  RMSNorm,
  Sequential,
  Sigmoid,
  SiLU,
  Softplus,
  Tanh,
} from './layers.js';
export { Module } from './module.js';
export { GRU, LSTM, type RNNOptions } from './recurrent.js';
export {
  type BlockOptions,
  CausalLM,
  type CausalLMConfig,
  sinusoidalPositions,
  TransformerBlock,
} from './transformer.js';
