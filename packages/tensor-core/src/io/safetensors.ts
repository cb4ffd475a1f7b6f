// safetensors read/write on raw bytes: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}), then the tensors' bytes,
// little-endian and C-order, with offsets relative to the end of the header.
// Reference: huggingface/safetensors, safetensors/src/tensor.rs (`serialize`, `read_metadata`, `validate`).
//
// Reading is as strict as the reference: the tensors, sorted by offset, must tile the byte buffer exactly (no gap,
// no overlap, nothing after the last one), and each tensor's byte span must equal numel × itemsize. Unknown header
// fields are ignored, as serde does. Stricter than the reference: the product of a shape's nonzero dims must be a
// safe integer even when another dim is 0, so no caller can overflow computing strides.
// Writing reproduces the reference layout byte for byte: `__metadata__` first, tensors sorted by dtype alignment
// (descending, the reference's Dtype order) then name, contiguous offsets, JSON with no spaces, padded with spaces
// to a multiple of 8 bytes so every tensor starts aligned. Metadata keys are sorted (the reference's order is a
// HashMap's, i.e. arbitrary).

import { DTypeError, FormatError, fmtShape, ValueError } from '../errors.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor: little-endian C-order bytes. After `parseSafetensors`, `data` is a view into the input (no copy). */
export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsContents {
  /** In file order (by data offset). */
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

// Position in the reference's Dtype enum, which is ordered by increasing alignment; the writer sorts descending.
const DTYPE_RANK: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  I16: 5,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
  F64: 12,
  I64: 13,
};

/** The reference's limit (100 MB); a longer header is refused before anything is decoded. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const isDType = (s: unknown): s is SafetensorsDType => typeof s === 'string' && Object.hasOwn(DTYPE_SIZE, s);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// Values and names quoted in messages are clipped: a hostile header must not make a megabyte-long error.
const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s);
const show = (v: unknown): string => {
  try {
    return clip(JSON.stringify(v) ?? String(v));
  } catch {
    return kindOf(v); // BigInt, cycles
  }
};
const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
function fail(msg: string): never {
  throw new FormatError(`safetensors: ${msg}`);
}

/** numel of a validated shape, or -1 when the product of its nonzero dims is not a safe integer. */
function checkedNumel(shape: readonly number[]): number {
  let nonzero = 1;
  let zero = false;
  for (const d of shape) {
    if (d === 0) zero = true;
    else if ((nonzero *= d) > Number.MAX_SAFE_INTEGER) return -1;
  }
  return zero ? 0 : nonzero;
}

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

function readEntry(name: string, info: unknown, dataLen: number, dataStart: number): Entry {
  const t = `tensor '${clip(name)}' (header at byte offset 8)`;
  if (!isRecord(info)) return fail(`${t}: expected an object with dtype, shape and data_offsets; got ${kindOf(info)}`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (dtype === undefined) fail(`${t}: missing "dtype"`);
  if (typeof dtype !== 'string') fail(`${t}: "dtype" must be a string; got ${kindOf(dtype)}`);
  if (!isDType(dtype)) {
    return fail(`${t}: unknown dtype '${clip(dtype)}'; supported: ${Object.keys(DTYPE_SIZE).join(', ')}`);
  }
  if (shape === undefined) fail(`${t}: missing "shape"`);
  if (!Array.isArray(shape)) return fail(`${t}: "shape" must be an array; got ${kindOf(shape)}`);
  shape.forEach((d, i) => {
    if (!isCount(d)) fail(`${t}: shape[${i}] must be a non-negative integer; got ${show(d)}`);
  });
  if (offsets === undefined) fail(`${t}: missing "data_offsets"`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    return fail(`${t}: "data_offsets" must be [begin, end] of non-negative integers; got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const at = `data_offsets [${begin}, ${end}]`;
  if (begin > end) fail(`${t}: ${at} are reversed`);
  if (end > dataLen) {
    fail(`${t}: ${at} out of range: the data section has ${dataLen} bytes (file byte offsets ${dataStart}..)`);
  }
  const numel = checkedNumel(shape);
  const nbytes = numel * DTYPE_SIZE[dtype];
  if (numel < 0 || nbytes > Number.MAX_SAFE_INTEGER)
    fail(`${t}: shape ${fmtShape(shape)} overflows (too many elements)`);
  if (end - begin !== nbytes) {
    fail(`${t}: ${at} span ${end - begin} bytes but ${dtype} ${fmtShape(shape)} needs ${nbytes}`);
  }
  return { name, dtype, shape: shape.slice(), begin, end };
}

function readMetadata(value: unknown): Record<string, string> {
  if (!isRecord(value))
    return fail(`"${METADATA_KEY}" (header at byte offset 8) must be an object; got ${kindOf(value)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(`"${METADATA_KEY}"[${show(k)}] must be a string; got ${kindOf(v)}`);
    // defineProperty, so that a key named "__proto__" is data and not a prototype change.
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Parses a whole safetensors file. Every malformation throws `FormatError` naming the field or tensor and the byte
 * offset; nothing is allocated beyond the header's string and the result objects (tensor data are views).
 */
export function parseSafetensors(bytes: Uint8Array, opts: { maxHeaderBytes?: number } = {}): SafetensorsContents {
  const limit = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (!isCount(limit))
    throw new ValueError(`parseSafetensors: maxHeaderBytes must be a non-negative integer; got ${show(limit)}`);
  if (!(bytes instanceof Uint8Array)) fail(`expected the file as a Uint8Array; got ${kindOf(bytes)}`);
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes; the 8-byte header length at byte offset 0 is missing`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const n = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true); // inexact past 2^53, but only compared
  const exact = view.getBigUint64(0, true);
  if (n > limit) fail(`header length ${exact} (byte offset 0) exceeds the limit of ${limit} bytes`);
  if (n > bytes.length - 8) {
    fail(`header length ${exact} (byte offset 0) runs past the end of the file (${bytes.length} bytes)`);
  }
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(`header (byte offsets 8..${8 + n}) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header (byte offsets 8..${8 + n}) is not valid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(header)) fail(`header (byte offset 8) must be a JSON object; got ${kindOf(header)}`);

  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) metadata = readMetadata(info);
    else entries.push(readEntry(name, info, dataLen, dataStart));
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const tensors = new Map<string, RawTensor>();
  let pos = 0;
  let prev: string | undefined;
  for (const e of entries) {
    const at = `tensor '${clip(e.name)}': data_offsets [${e.begin}, ${e.end}] (file byte offset ${dataStart + e.begin})`;
    if (e.begin < pos) fail(`${at} overlap tensor '${clip(prev!)}', which ends at ${pos}`);
    if (e.begin > pos)
      fail(
        `${at} leave a gap of ${e.begin - pos} bytes after ${prev === undefined ? 'the header' : `tensor '${clip(prev)}'`}`,
      );
    pos = e.end;
    prev = e.name;
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: bytes.subarray(dataStart + e.begin, dataStart + e.end),
    });
  }
  if (pos !== dataLen) {
    fail(`${dataLen - pos} bytes at file byte offset ${dataStart + pos} (after the last tensor) belong to no tensor`);
  }
  return { tensors, metadata };
}

// Rust sorts names by UTF-8 bytes, which is code point order; JS `<` compares UTF-16 units, which differs for
// astral characters against U+E000..U+FFFF.
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;
const checkString = (what: string, s: unknown): string => {
  if (typeof s !== 'string') throw new ValueError(`serializeSafetensors: ${what} must be a string; got ${kindOf(s)}`);
  if (LONE_SURROGATE.test(s)) throw new ValueError(`serializeSafetensors: ${what} ${show(s)} is not valid UTF-16`);
  return s;
};

/**
 * Serializes tensors to a safetensors file laid out as the reference writes it (see the file header). Bad input
 * throws: `DTypeError` for an unknown dtype, `ValueError` for a bad shape, a data length that is not
 * numel × itemsize, a non-string metadata value, or a tensor named "__metadata__".
 */
export function serializeSafetensors(
  tensors: Record<string, RawTensor> | Map<string, RawTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const pieces = safetensorsPieces(tensors, metadata);
  const out = new Uint8Array(pieces.reduce((n, b) => n + b.length, 0));
  let pos = 0;
  for (const b of pieces) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/**
 * The bytes `serializeSafetensors` writes, in pieces and without copying the data: the 8-byte length with the
 * padded JSON header, then each tensor's data in file order (checked and ordered as there). A checksum over
 * the file can run over these instead of a concatenated copy.
 */
export function safetensorsPieces(
  tensors: Record<string, RawTensor> | Map<string, RawTensor>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const list = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  for (const [name, t] of list) {
    checkString('a tensor name', name);
    const what = `serializeSafetensors: tensor '${clip(name)}'`;
    if (name === METADATA_KEY) throw new ValueError(`${what}: the name is reserved for metadata`);
    if (!isDType(t?.dtype)) {
      throw new DTypeError(
        `${what}: unknown dtype ${show(t?.dtype)}; expected one of ${Object.keys(DTYPE_SIZE).join(', ')}`,
      );
    }
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
      throw new ValueError(`${what}: shape must be an array of non-negative integers; got ${show(t.shape)}`);
    }
    if (!(t.data instanceof Uint8Array))
      throw new ValueError(`${what}: data must be a Uint8Array; got ${kindOf(t.data)}`);
    const numel = checkedNumel(t.shape);
    const nbytes = numel * DTYPE_SIZE[t.dtype];
    if (numel < 0) throw new ValueError(`${what}: shape ${fmtShape(t.shape)} overflows (too many elements)`);
    if (t.data.length !== nbytes) {
      throw new ValueError(`${what}: ${t.dtype} ${fmtShape(t.shape)} needs ${nbytes} bytes; got ${t.data.length}`);
    }
  }
  list.sort(([an, a], [bn, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareCodePoints(an, bn));

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isRecord(metadata))
      throw new ValueError(`serializeSafetensors: metadata must be an object; got ${kindOf(metadata)}`);
    const keys = Object.keys(metadata).sort(compareCodePoints);
    const kv = keys.map((k) => {
      const value = checkString(`metadata[${show(k)}]`, metadata[k]);
      return `${JSON.stringify(checkString('a metadata key', k))}:${JSON.stringify(value)}`;
    });
    parts.push(`"${METADATA_KEY}":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of list) {
    const info = `{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + t.data.length}]}`;
    parts.push(`${JSON.stringify(name)}:${info}`);
    offset += t.data.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;

  const head = new Uint8Array(8 + headerLen);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLen), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length, 8 + headerLen);
  return [head, ...list.map(([, t]) => t.data)];
}

export type SafetensorsTypedArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/**
 * The tensor's elements as a typed array (F16/BF16 as Uint16 bit patterns, BOOL as Uint8, I64 as BigInt64): a view
 * when `data` is aligned for the element size, else a copy. Assumes a little-endian host, as every JS platform is.
 */
export function typedArrayOf(t: RawTensor): SafetensorsTypedArray {
  const size = DTYPE_SIZE[t.dtype];
  const d = t.data.byteOffset % size === 0 ? t.data : t.data.slice();
  const n = d.length / size;
  switch (t.dtype) {
    case 'F64':
      return new Float64Array(d.buffer, d.byteOffset, n);
    case 'F32':
      return new Float32Array(d.buffer, d.byteOffset, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(d.buffer, d.byteOffset, n);
    case 'I64':
      return new BigInt64Array(d.buffer, d.byteOffset, n);
    case 'I32':
      return new Int32Array(d.buffer, d.byteOffset, n);
    case 'I16':
      return new Int16Array(d.buffer, d.byteOffset, n);
    case 'I8':
      return new Int8Array(d.buffer, d.byteOffset, n);
    case 'U8':
    case 'BOOL':
      return d;
  }
}
