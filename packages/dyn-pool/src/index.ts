// @tessera/dyn-pool: the public surface (re-exports only).

export {
  BoundaryPredictor,
  binomialPriorLoss,
  entropySpikes,
  gumbelSigmoid,
  predictiveEntropy,
  whitespaceBoundaries,
} from './boundaries.js';
export { HourglassDecoder } from './decoder.js';
export {
  BOUNDARY_SOURCES,
  type BoundarySource,
  type HourglassConfig,
  HourglassLM,
  type HourglassOutput,
  type LossParts,
  needsPredictor,
} from './model.js';
export { downsample, fixedBoundaries, numSegments, numSegmentsAsync, upsample } from './pooling.js';
export {
  type RelativeAttentionOptions,
  type RelativeBlockOptions,
  RelativeMultiHeadAttention,
  RelativeTransformerBlock,
  relativePositionTable,
  relShift,
} from './relative-attention.js';
export {
  type Corpus,
  type CorpusFingerprint,
  checkEvaluable,
  corpusFingerprint,
  DEFAULT_LR,
  type EvalOptions,
  type EvalResult,
  evaluate,
  evaluateAsync,
  type GenerateOptions,
  generate,
  generateAsync,
  loadTrained,
  loadTrainedAsync,
  makeOptimizer,
  pickToken,
  prepareCorpus,
  readCheckpointConfig,
  type SavedConfig,
  type TrainOptions,
  type TrainStats,
  train,
  type WordPositionBpc,
  writeCheckpoint,
} from './train.js';
export { type UnigramPiece, UnigramTokenizer, type UnigramTrainOptions, WORD_PREFIX } from './unigram.js';
export { CharVocab, decodeUtf8, firstInvalidUtf8, TextInputError, UNK } from './vocab.js';
