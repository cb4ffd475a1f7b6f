// @tessera/kv-compress: the public surface (re-exports only).

export { H2OStorage, SnapKVStorage, StreamingLLMStorage, TOVAStorage } from './caches/eviction.js';
export {
  type CacheStats,
  type CompressedStorage,
  HostStorage,
  type HostStorageOptions,
  LayerBuf,
} from './caches/host.js';
export { KVTCStorage, type KVTCStorageOptions, PrefixKVCache } from './caches/kvtc-storage.js';
export { FP8Storage, KIVIStorage, LowRankStorage } from './caches/quantized.js';
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
export { collectKV, concatRows } from './collect.js';
export { DeviceCacheReader, DeviceCalibration, type DeviceReaderOptions, decodeCacheAsync } from './device-reader.js';
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
export { FreqModel, RangeDecoder, RangeEncoder, rangeDecodePayload, rangeEncodePayload } from './entropy.js';
export {
  CalibrationMismatchError,
  ChecksumError,
  KVFormatError,
  TruncatedStreamError,
  UnsupportedVersionError,
} from './errors.js';
export {
  type CacheHeader,
  CacheReader,
  Codec,
  calibrationFingerprint,
  decodeCache,
  type EncodeOptions,
  type EntropyCoder,
  encodeCache,
  packChunk,
  readCalibration,
  readHeader,
  type Section,
  SectionKind,
  type StoredChunk,
  sliceRows,
  writeCalibration,
  writeContainer,
} from './format.js';
export { IndexedDBBackend } from './idb.js';
export { type CodecKernels, codecGemm, codecKernels, setCodecKernels } from './kernels.js';
export {
  ChunkDecoder,
  chunkBytes,
  encodeChunk,
  roundTrip,
  segmentBytes,
  segmentOffset,
  type UnpackTarget,
  unpackSegment,
} from './kvtc.js';
export { gemm, type PcaOptions, type PcaResult, pca, pcaMethod, Rng, symEig } from './linalg.js';
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
export {
  type AttentionSampleOptions,
  attentionReceived,
  attentionSampledRows,
  gatherRows,
  systematicResample,
} from './row-sampling.js';
export {
  KVCacheStore,
  MemoryBackend,
  prefixKey,
  type StoreBackend,
  type StoreOptions,
  unwrapEntry,
  wrapEntry,
} from './store.js';
export {
  attentionOutputMoments,
  collectQueries,
  componentWeights,
  type HeadMoments,
  outputProjectionMoments,
  QueryMoments,
  queryMoments,
  weightCalibration,
} from './weights.js';
