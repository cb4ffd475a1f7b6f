// @tessera/kv-compress: the public surface (re-exports only).
export {
  type Calibration,
  type CalibrationOptions,
  calibrate,
  derotate,
  type FitOptions,
  fitPlan,
  type KVRows,
  type KvtcPlan,
  project,
  type Segment,
  type SegmentKind,
  segmentRows,
} from './calibration.js';
export {
  type AllocateOptions,
  type AllocateResult,
  allocateBits,
  type BitPlan,
  DEFAULT_SIZES,
  DEFAULT_TYPES,
  type Group,
  makePlan,
  PAPER_SIZES,
  planBits,
  planError,
} from './dp.js';
export {
  CalibrationMismatchError,
  ChecksumError,
  KVFormatError,
  TruncatedStreamError,
  UnsupportedVersionError,
} from './errors.js';
export { ChunkDecoder, chunkBytes, encodeChunk, roundTrip, segmentBytes } from './kvtc.js';
export { gemm, type PcaOptions, type PcaResult, pca, Rng, symEig } from './linalg.js';
export { crc32, fnv1a64, fromFp8, fromHalf, toFp8, toHalf } from './numeric.js';
export {
  dequantizeGroup,
  QUANT_TYPES,
  type QuantType,
  quantizeGroup,
  SIDE_BITS,
  TYPE_BITS,
} from './quant.js';
export { ropeRows } from './rope.js';
