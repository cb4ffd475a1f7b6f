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
export { downsample, fixedBoundaries, numSegments, upsample } from './pooling.js';
