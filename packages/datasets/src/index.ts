// @tessera/datasets: readers for the formats speech and language models consume, and batching. Runs anywhere
// (no Node APIs here); file-system readers are in `@tessera/datasets/node`.

export {
  type AbxItem,
  type AlignmentOptions,
  formatFrameAlignments,
  formatIntervals,
  framesToIntervals,
  intervalsToFrames,
  parseAbxItems,
  parseFrameAlignments,
  parseIntervals,
} from './alignments.js';
export {
  type BucketOptions,
  batches,
  bucketByLength,
  groupedBatches,
  lmWindow,
  lmWindowStarts,
  type Padded,
  padBatch,
  shuffle,
  shuffleBuffer,
} from './batching.js';
export { DatasetError, FormatError, LimitError, ValueError } from './errors.js';
export {
  formatManifest,
  formatManifestLine,
  type ManifestEntry,
  type ManifestOptions,
  parseManifest,
  parseManifestLine,
} from './manifest.js';
export { createRng, hashString, randInt } from './random.js';
export {
  ByteVocab,
  CharVocab,
  type CleanOptions,
  cleanText,
  type Document,
  decodeText,
  dropHebrewPoints,
  SPLITS,
  type SplitName,
  splitDocuments,
  splitOf,
  type VocabJSON,
} from './text.js';
export {
  formatTextGrid,
  type Interval,
  intervalTier,
  type ParseOptions,
  type Point,
  parseTextGrid,
  type TextGrid,
  type Tier,
} from './textgrid.js';
export { readWavInfo, type WavInfo } from './wav-header.js';
