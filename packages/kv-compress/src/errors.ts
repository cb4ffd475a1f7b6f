// Typed errors of kv-compress. Stream errors extend tensor-core's FormatError and name the field and offset.
import { FormatError, ValueError } from '@tessera/tensor-core';

/** A compressed-cache or calibration stream that cannot be decoded. */
export class KVFormatError extends FormatError {}
/** The stream ends before a field or section the header announces. */
export class TruncatedStreamError extends KVFormatError {}
/** A CRC-32 over the header, a section or a file does not match: the bytes were corrupted. */
export class ChecksumError extends KVFormatError {}
/** The stream was written with another calibration (fingerprint) or another model shape. */
export class CalibrationMismatchError extends KVFormatError {}
/** Magic or version this decoder does not read. */
export class UnsupportedVersionError extends KVFormatError {}
/** An option or argument outside its domain (re-exported for convenience). */
export { ValueError };
