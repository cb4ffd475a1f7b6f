// @tessera/dyn-pool: the public surface (re-exports only).

export {
  BoundaryPredictor,
  binomialPriorLoss,
  entropySpikes,
  gumbelSigmoid,
  predictiveEntropy,
  whitespaceBoundaries,
} from './boundaries.js';
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
  type Corpus,
  type EvalResult,
  evaluate,
  generate,
  loadTrained,
  makeOptimizer,
  prepareCorpus,
  readCheckpointConfig,
  type SavedConfig,
  type TrainOptions,
  type TrainStats,
  train,
} from './train.js';
export { type UnigramPiece, UnigramTokenizer, type UnigramTrainOptions, WORD_PREFIX } from './unigram.js';
export { CharVocab, decodeUtf8, firstInvalidUtf8, TextInputError, UNK } from './vocab.js';
