// safetensors reader/writer: Python-side fixtures both ways (fixtures/safetensors, see its README), the
// reference's own byte vectors, round trips for every dtype, every malformation, and a seeded fuzz of the reader.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { DTypeError, FormatError, ValueError } from '../src/errors.js';
import { f16ToF32, f32ToBf16, f32ToF16, i32ToI64 } from '../src/io/half.js';
import {
  DTYPE_SIZE,
  parseSafetensors,
  type RawTensor,
  type SafetensorsDType,
  serializeSafetensors,
  typedArrayOf,
} from '../src/io/safetensors.js';

const FIXTURES = new URL('./fixtures/safetensors/', import.meta.url);
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const fixtureJson = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDType[];

/** A file from a header (object or raw JSON text) and a data section (its bytes, or a length of zeros). */
function fileOf(header: unknown, body: Uint8Array | number = 0): Uint8Array {
  const json = ascii(typeof header === 'string' ? header : JSON.stringify(header));
  const data = typeof body === 'number' ? new Uint8Array(body) : body;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Values as the fixtures write them: floats as bit patterns, ints and bools as numbers. */
function valuesOf(t: RawTensor): number[] {
  const a = typedArrayOf(t);
  if (t.dtype === 'F32') return [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
  if (t.dtype === 'I64') return [...(a as BigInt64Array)].map(Number);
  return [...(a as Exclude<typeof a, BigInt64Array>)];
}

function expectFormatError(file: Uint8Array, fragment: string | RegExp, opts?: { maxHeaderBytes?: number }): void {
  let err: unknown;
  try {
    parseSafetensors(file, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  expect((err as Error).message).toMatch(fragment);
}

interface Described {
  dtype: SafetensorsDType;
  shape: number[];
  values: number[];
}

describe('files written by the Python-side generator (torch bytes, reference layout)', () => {
  const file = fixture('python.safetensors');
  const want = fixtureJson<{
    metadata: Record<string, string>;
    tensors: Record<string, Described>;
    as_f32_bits: Record<string, number[]>;
  }>('python.expected.json');
  const parsed = parseSafetensors(file);

  test('every tensor has torch’s dtype, shape and values', () => {
    expect(parsed.metadata).toEqual(want.metadata);
    expect([...parsed.tensors.keys()].sort()).toEqual(Object.keys(want.tensors).sort());
    for (const [name, w] of Object.entries(want.tensors)) {
      const t = parsed.tensors.get(name)!;
      expect({ dtype: t.dtype, shape: t.shape, values: valuesOf(t) }, name).toEqual(w);
    }
  });

  test('tensor data are views into the input, in file order', () => {
    let end = 0;
    for (const t of parsed.tensors.values()) {
      expect(t.data.buffer).toBe(file.buffer);
      expect(t.data.byteOffset).toBeGreaterThanOrEqual(end);
      end = t.data.byteOffset + t.data.length;
    }
    expect(end).toBe(file.length);
  });

  test('F16 and BF16 widen to the same float32 as torch’s .float()', () => {
    const h = typedArrayOf(parsed.tensors.get('f16')!) as Uint16Array;
    expect([...new Uint32Array(f16ToF32(h).buffer)]).toEqual(want.as_f32_bits.f16);
    const b = typedArrayOf(parsed.tensors.get('bf16')!) as Uint16Array;
    const widened = new Uint32Array(b.length).map((_, i) => b[i]! << 16);
    expect([...widened]).toEqual(want.as_f32_bits.bf16);
  });

  test('our writer reproduces the file byte for byte', () => {
    expect(serializeSafetensors(parsed.tensors, parsed.metadata)).toEqual(file);
  });
});

/** The tensors of tessera.safetensors; generate.py rebuilds the same values with torch and checks the file. */
function tesseraFixture(): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  const t = (dtype: SafetensorsDType, shape: number[], data: ArrayBufferView): RawTensor => ({
    dtype,
    shape,
    data: bytesOf(data),
  });
  return {
    tensors: {
      weight: t('F32', [2, 3, 1], Float32Array.of(0.5, -1, 2.25, 1e-40, 3.4e38, -0)),
      h: t('F16', [4], f32ToF16(Float32Array.of(1 / 3, -65504, 1e-7, 0.1))),
      b: t('BF16', [3], f32ToBf16(Float32Array.of(1 / 3, -1e30, 0.1))),
      ids: t('I64', [2, 2], i32ToI64(Int32Array.of(-1, 0, 2147483647, -2147483648))),
      big: t('I64', [1], BigInt64Array.of(2n ** 40n)),
      count: t('I32', [], Int32Array.of(42)),
      mask: t('BOOL', [2, 2], Uint8Array.of(1, 0, 0, 1)),
      pix: t('U8', [3], Uint8Array.of(0, 127, 255)),
      empty: t('F32', [0, 4], new Float32Array(0)),
      pi: t('F64', [1], Float64Array.of(Math.PI)),
      short: t('I16', [2], Int16Array.of(-32768, 32767)),
      tiny: t('I8', [2], Int8Array.of(-128, 127)),
    },
    metadata: { format: 'pt', note: 'naïve "quoted"\nline', emoji: '🙂' },
  };
}

describe('a file our writer produced, read back by the Python-side generator', () => {
  const { tensors, metadata } = tesseraFixture();
  const ours = serializeSafetensors(tensors, metadata);
  if (process.env.TESSERA_WRITE_FIXTURES === '1') writeFileSync(new URL('tessera.safetensors', FIXTURES), ours);

  test('the committed file is what the writer produces today', () => {
    expect(ours).toEqual(fixture('tessera.safetensors'));
  });

  test('generate.py read it and found our values (and the reference layout)', () => {
    expect(existsSync(new URL('tessera.verified.json', FIXTURES))).toBe(true);
    const v = fixtureJson<{
      byte_identical_to_reference_layout: boolean;
      header: string;
      metadata: Record<string, string>;
      tensors: Record<string, Described>;
    }>('tessera.verified.json');
    expect(v.byte_identical_to_reference_layout).toBe(true);
    expect(v.metadata).toEqual(metadata);
    const headerLen = Number(new DataView(ours.buffer).getBigUint64(0, true));
    expect(new TextDecoder().decode(ours.subarray(8, 8 + headerLen))).toBe(v.header);
    for (const [name, t] of Object.entries(tensors)) {
      const w = v.tensors[name]!;
      expect({ dtype: w.dtype, shape: w.shape }, name).toEqual({ dtype: t.dtype, shape: t.shape });
      const got = t.dtype === 'F64' ? [...new Float64Array(t.data.slice().buffer)] : valuesOf(t);
      expect(got, name).toEqual(w.values);
    }
  });
});

describe('writer layout (the reference implementation’s own test vectors)', () => {
  const decode = (b: Uint8Array): { n: number; header: string; rest: Uint8Array } => {
    const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
    return { n, header: new TextDecoder().decode(b.subarray(8, 8 + n)), rest: b.subarray(8 + n) };
  };

  test('one F32 tensor: compact JSON, already 8-aligned, no padding', () => {
    const data = bytesOf(Float32Array.of(0, 1, 2, 3, 4, 5));
    const out = decode(serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data } }));
    expect(out.header).toBe('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(out.n).toBe(64);
    expect(out.rest).toEqual(data);
  });

  test('padding with spaces to a multiple of 8', () => {
    const data = bytesOf(Float32Array.of(0, 1, 2, 3, 4, 5));
    const out = decode(serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } }));
    expect(out.header).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
    expect(out.n).toBe(72);
  });

  test('empty file, with and without metadata', () => {
    expect(decode(serializeSafetensors({})).header).toBe('{}      ');
    expect(decode(serializeSafetensors(new Map(), { framework: 'pt' })).header).toBe(
      '{"__metadata__":{"framework":"pt"}}     ',
    );
    expect(parseSafetensors(serializeSafetensors({}))).toEqual({ tensors: new Map(), metadata: {} });
  });

  test('tensors sorted by dtype alignment (descending), then name by code point; offsets contiguous', () => {
    const one = (dtype: SafetensorsDType): RawTensor => ({
      dtype,
      shape: [1],
      data: new Uint8Array(DTYPE_SIZE[dtype]),
    });
    const input: Record<string, RawTensor> = {
      z: one('BOOL'),
      a: one('BOOL'),
      u: one('U8'),
      f16: one('F16'),
      bf: one('BF16'),
      i64: one('I64'),
      f64: one('F64'),
      f32: one('F32'),
      i32: one('I32'),
      i16: one('I16'),
      i8: one('I8'),
      '\u{1F600}': one('F32'),
      '\uFFFD': one('F32'),
    };
    const { header } = decode(serializeSafetensors(input, { b: '2', a: '1' }));
    const parsed = JSON.parse(header) as Record<string, { data_offsets: [number, number] }>;
    expect(Object.keys(parsed)).toEqual([
      '__metadata__',
      'i64',
      'f64',
      'f32',
      '\uFFFD',
      '\u{1F600}',
      'i32',
      'bf',
      'f16',
      'i16',
      'i8',
      'u',
      'a',
      'z',
    ]);
    expect(Object.keys(parsed.__metadata__!)).toEqual(['a', 'b']);
    let pos = 0;
    for (const [k, v] of Object.entries(parsed)) {
      if (k === '__metadata__') continue;
      expect(v.data_offsets[0]).toBe(pos);
      pos = v.data_offsets[1];
    }
  });

  test('a Map and a record give the same bytes', () => {
    const { tensors, metadata } = tesseraFixture();
    expect(serializeSafetensors(new Map(Object.entries(tensors)), metadata)).toEqual(
      serializeSafetensors(tensors, metadata),
    );
  });
});

/** Deterministic PRNG (mulberry32) so that every failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('round trips', () => {
  const rand = rng(7);
  const shapes = [[], [0], [3, 0, 2], [1], [7], [3, 5], [2, 1, 3], [1, 1, 1, 1, 5], [4, 3, 2, 1]];

  test('every dtype × odd shapes, scalars and zero-size tensors', () => {
    const tensors = new Map<string, RawTensor>();
    for (const dtype of DTYPES) {
      shapes.forEach((shape, i) => {
        const n = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
        let data = Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
        if (dtype === 'BOOL') data = data.map((v) => v & 1);
        tensors.set(`${dtype.toLowerCase()}.${i}`, { dtype, shape, data });
      });
    }
    const meta = { framework: 'tessera', ключ: 'значение' };
    const file = serializeSafetensors(tensors, meta);
    const back = parseSafetensors(file);
    expect(back.metadata).toEqual(meta);
    expect(back.tensors.size).toBe(tensors.size);
    for (const [name, t] of tensors) {
      const b = back.tensors.get(name)!;
      expect(b.dtype, name).toBe(t.dtype);
      expect(b.shape, name).toEqual(t.shape);
      expect(b.data, name).toEqual(t.data);
      // The writer's ordering keeps every tensor aligned for its element size, so the views are zero-copy.
      expect((b.data.byteOffset - file.byteOffset) % DTYPE_SIZE[b.dtype], name).toBe(0);
      expect(typedArrayOf(b).buffer, name).toBe(file.buffer);
    }
    expect(serializeSafetensors(back.tensors, back.metadata)).toEqual(file);
  });

  test('typedArrayOf copies when a view is misaligned, and reads the same values', () => {
    const file = serializeSafetensors({ x: { dtype: 'F32', shape: [2], data: bytesOf(Float32Array.of(1.5, -2)) } });
    const shifted = new Uint8Array(file.length + 1).subarray(1);
    shifted.set(file);
    const x = parseSafetensors(shifted).tensors.get('x')!;
    expect([...(typedArrayOf(x) as Float32Array)]).toEqual([1.5, -2]);
  });

  test('reads tensors listed in any order, and zero-size tensors at any offset', () => {
    const file = fileOf(
      {
        b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
        e1: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
        a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
        e2: { dtype: 'I64', shape: [2, 0], data_offsets: [6, 6] },
        e3: { dtype: 'F16', shape: [0, 5], data_offsets: [6, 6] },
        extra_fields_are_ignored: { dtype: 'BOOL', shape: [], data_offsets: [6, 7], foo: 1 },
      },
      Uint8Array.of(1, 0, 2, 0, 7, 8, 1),
    );
    const { tensors } = parseSafetensors(file);
    expect([...tensors.keys()]).toEqual(['a', 'e1', 'b', 'e2', 'e3', 'extra_fields_are_ignored']);
    expect([...(typedArrayOf(tensors.get('a')!) as Int16Array)]).toEqual([1, 2]);
    expect([...tensors.get('b')!.data]).toEqual([7, 8]);
  });

  test('a metadata key named __proto__ stays data', () => {
    const file = fileOf('{"__metadata__":{"__proto__":"x","k":"v"}}');
    const { metadata } = parseSafetensors(file);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.entries(metadata)).toEqual([
      ['__proto__', 'x'],
      ['k', 'v'],
    ]);
  });
});

describe('malformed files: a FormatError naming the field and byte offset', () => {
  const t = (extra: Record<string, unknown> = {}) => ({ dtype: 'F32', shape: [2], data_offsets: [0, 8], ...extra });

  test('shorter than 8 bytes', () => {
    expectFormatError(new Uint8Array(5), /file is 5 bytes; the 8-byte header length at byte offset 0/);
    expectFormatError(new Uint8Array(0), /file is 0 bytes/);
  });

  test('header length past the end of the file, or past the limit (no allocation)', () => {
    const file = fileOf({ x: t() }, 8);
    const v = new DataView(file.buffer);
    v.setBigUint64(0, BigInt(file.length - 7), true);
    expectFormatError(file, /runs past the end of the file/);
    v.setBigUint64(0, 2n ** 60n, true);
    expectFormatError(file, /header length 1152921504606846976 \(byte offset 0\) exceeds the limit of 100000000/);
    v.setBigUint64(0, 2n ** 64n - 1n, true);
    expectFormatError(file, /18446744073709551615/);
    expectFormatError(fileOf({ x: t() }, 8), /exceeds the limit of 16 bytes/, { maxHeaderBytes: 16 });
  });

  test('header not UTF-8, not JSON, or not an object', () => {
    const bad = fileOf('{"x":1}');
    bad[10] = 0xff;
    expectFormatError(bad, /header \(byte offsets 8\.\.15\) is not valid UTF-8/);
    expectFormatError(fileOf('{"x": '), /not valid JSON/);
    expectFormatError(fileOf(''), /not valid JSON/);
    expectFormatError(fileOf('\uFEFF{}'), /not valid JSON/);
    expectFormatError(fileOf('[1,2]'), /must be a JSON object; got array/);
    expectFormatError(fileOf('null'), /got null/);
    expectFormatError(fileOf('42'), /got number/);
  });

  test('entries: not an object, missing fields, wrong types', () => {
    expectFormatError(fileOf({ x: [1] }), /tensor 'x' \(header at byte offset 8\): expected an object .* got array/);
    const { dtype: _d, ...noDtype } = t();
    expectFormatError(fileOf({ x: noDtype }, 8), /tensor 'x'.*missing "dtype"/);
    const { shape: _s, ...noShape } = t();
    expectFormatError(fileOf({ x: noShape }, 8), /missing "shape"/);
    const { data_offsets: _o, ...noOffsets } = t();
    expectFormatError(fileOf({ x: noOffsets }, 8), /missing "data_offsets"/);
    expectFormatError(fileOf({ x: t({ dtype: 4 }) }, 8), /"dtype" must be a string; got number/);
    expectFormatError(fileOf({ x: t({ shape: '2' }) }, 8), /"shape" must be an array; got string/);
    expectFormatError(fileOf({ x: t({ data_offsets: [0] }) }, 8), /"data_offsets" must be \[begin, end\].*got \[0\]/);
    expectFormatError(fileOf({ x: t({ data_offsets: [0, 8, 9] }) }, 8), /"data_offsets" must be/);
    expectFormatError(fileOf({ x: t({ data_offsets: [0, 7.5] }) }, 8), /"data_offsets" must be/);
    expectFormatError(fileOf({ x: t({ data_offsets: [-8, 0] }) }, 8), /"data_offsets" must be/);
    expectFormatError(fileOf({ x: t({ data_offsets: { 0: 0, 1: 8 } }) }, 8), /"data_offsets" must be/);
  });

  test('unknown dtype names the tensor and the dtype', () => {
    expectFormatError(fileOf({ w: t({ dtype: 'F8_E4M3' }) }, 8), /tensor 'w'.*unknown dtype 'F8_E4M3'/);
    expectFormatError(fileOf({ w: t({ dtype: 'f32' }) }, 8), /unknown dtype 'f32'/);
  });

  test('shape entries must be non-negative safe integers', () => {
    expectFormatError(fileOf({ x: t({ shape: [-2] }) }, 8), /shape\[0\] must be a non-negative integer; got -2/);
    expectFormatError(fileOf({ x: t({ shape: [1, 2.5] }) }, 8), /shape\[1\] .* got 2\.5/);
    expectFormatError(fileOf({ x: t({ shape: ['2'] }) }, 8), /shape\[0\] .* got "2"/);
    expectFormatError(fileOf({ x: t({ shape: [null] }) }, 8), /shape\[0\] .* got null/);
    expectFormatError(fileOf('{"x":{"dtype":"U8","shape":[1e300],"data_offsets":[0,0]}}'), /shape\[0\]/);
    expectFormatError(fileOf({ x: t({ shape: [2 ** 53] }) }, 8), /shape\[0\]/);
  });

  test('absurd shapes: product overflow, or not matching the byte span', () => {
    expectFormatError(fileOf({ x: t({ shape: [2 ** 30, 2 ** 30, 2 ** 30] }) }, 8), /shape \[.*\] overflows/);
    // 2^50 elements × 8 bytes is past 2^53 even though the element count is not.
    expectFormatError(fileOf({ x: t({ dtype: 'F64', shape: [2 ** 50] }) }, 8), /overflows/);
    expectFormatError(fileOf({ x: t({ shape: [0, 2 ** 40, 2 ** 40] }) }, 8), /overflows/);
    expectFormatError(fileOf({ x: t({ shape: [3] }) }, 8), /data_offsets \[0, 8\] span 8 bytes but F32 \[3\] needs 12/);
    expectFormatError(fileOf({ x: t({ shape: [2 ** 40] }) }, 8), /needs 4398046511104/);
  });

  test('offsets reversed, out of range, overlapping, leaving gaps or trailing bytes', () => {
    expectFormatError(fileOf({ x: t({ data_offsets: [8, 0] }) }, 8), /tensor 'x'.*data_offsets \[8, 0\] are reversed/);
    expectFormatError(
      fileOf({ x: t({ data_offsets: [8, 16] }) }, 8),
      /\[8, 16\] out of range: the data section has 8 bytes/,
    );
    expectFormatError(fileOf({ x: t({ data_offsets: [0, 2 ** 52] }) }, 8), /out of range/);
    const two = (a: [number, number], b: [number, number], body: number) =>
      fileOf({ a: t({ data_offsets: a }), b: t({ data_offsets: b }) }, body);
    expectFormatError(
      two([0, 8], [4, 12], 12),
      /tensor 'b': data_offsets \[4, 12\] \(file byte offset \d+\) overlap tensor 'a', which ends at 8/,
    );
    expectFormatError(two([0, 8], [0, 8], 8), /overlap tensor 'a'/);
    expectFormatError(two([0, 8], [12, 20], 20), /tensor 'b'.*leave a gap of 4 bytes after tensor 'a'/);
    expectFormatError(fileOf({ x: t({ data_offsets: [4, 12] }) }, 12), /leave a gap of 4 bytes after the header/);
    const header = JSON.stringify({ x: t() });
    expectFormatError(
      fileOf({ x: t() }, 11),
      new RegExp(`3 bytes at file byte offset ${8 + header.length + 8} .* belong to no tensor`),
    );
    expectFormatError(fileOf({}, 1), /1 bytes at file byte offset \d+ .* belong to no tensor/);
  });

  test('__metadata__ must map strings to strings', () => {
    expectFormatError(
      fileOf({ __metadata__: [] }),
      /"__metadata__" \(header at byte offset 8\) must be an object; got array/,
    );
    expectFormatError(fileOf({ __metadata__: 'pt' }), /must be an object; got string/);
    expectFormatError(
      fileOf({ __metadata__: { format: 1 } }),
      /"__metadata__"\["format"\] must be a string; got number/,
    );
    expectFormatError(fileOf({ __metadata__: { a: 'x', b: { c: 'd' } } }), /\["b"\] must be a string; got object/);
  });

  test('not a Uint8Array', () => {
    expectFormatError([1, 2, 3] as unknown as Uint8Array, /expected the file as a Uint8Array; got array/);
  });
});

describe('writer input checks', () => {
  const f32 = (shape: number[], n: number): RawTensor => ({ dtype: 'F32', shape, data: new Uint8Array(n) });

  test('data length must be numel × itemsize', () => {
    expect(() => serializeSafetensors({ w: f32([2, 3], 20) })).toThrow(ValueError);
    expect(() => serializeSafetensors({ w: f32([2, 3], 20) })).toThrow(
      /tensor 'w': F32 \[2, 3\] needs 24 bytes; got 20/,
    );
    expect(() => serializeSafetensors({ w: f32([], 0) })).toThrow(/needs 4 bytes; got 0/);
  });

  test('bad dtype, shape, data, names and metadata', () => {
    const bad = { dtype: 'F8_E4M3', shape: [1], data: new Uint8Array(1) } as unknown as RawTensor;
    expect(() => serializeSafetensors({ w: bad })).toThrow(DTypeError);
    expect(() => serializeSafetensors({ w: bad })).toThrow(/tensor 'w': unknown dtype "F8_E4M3"/);
    expect(() => serializeSafetensors({ w: f32([-1], 0) })).toThrow(/shape must be an array of non-negative integers/);
    expect(() => serializeSafetensors({ w: f32([1.5], 0) })).toThrow(ValueError);
    const arr = { dtype: 'U8', shape: [1], data: [1] } as unknown as RawTensor;
    expect(() => serializeSafetensors({ w: arr })).toThrow(/data must be a Uint8Array; got array/);
    expect(() => serializeSafetensors({ __metadata__: f32([1], 4) })).toThrow(/reserved for metadata/);
    expect(() => serializeSafetensors({ 'a\uD800': f32([1], 4) })).toThrow(/not valid UTF-16/);
    expect(() => serializeSafetensors({}, { k: 1 } as unknown as Record<string, string>)).toThrow(
      /metadata\["k"\] must be a string; got number/,
    );
  });

  test('odd inputs still give typed errors with short messages', () => {
    const big = { dtype: 'U8', shape: [1n], data: new Uint8Array(1) } as unknown as RawTensor;
    expect(() => serializeSafetensors({ w: big })).toThrow(
      /shape must be an array of non-negative integers; got array/,
    );
    expect(() => serializeSafetensors({ w: f32([2 ** 30, 2 ** 30, 2 ** 30], 0) })).toThrow(/overflows/);
    const long = 'n'.repeat(100_000);
    let err: Error | undefined;
    try {
      parseSafetensors(fileOf({ [long]: { dtype: 'F8_E4M3', shape: ['x'.repeat(100_000)], data_offsets: [0, 0] } }));
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect(err!.message.length).toBeLessThan(400);
    expect(() => parseSafetensors(new Uint8Array(8), { maxHeaderBytes: -1 })).toThrow(ValueError);
  });

  test('copies data, so the file does not alias its inputs', () => {
    const data = Uint8Array.of(1, 2, 3, 4);
    const file = serializeSafetensors({ x: { dtype: 'U8', shape: [4], data } });
    data[0] = 9;
    expect([...parseSafetensors(file).tensors.get('x')!.data]).toEqual([1, 2, 3, 4]);
  });
});

describe('fuzz: mutated files parse to something consistent or throw FormatError', () => {
  const bases = [fixture('python.safetensors'), fixture('tessera.safetensors')];
  {
    const rand = rng(11);
    const tensors: Record<string, RawTensor> = {};
    for (let i = 0; i < 6; i++) {
      const dtype = DTYPES[i % DTYPES.length]!;
      const shape = [1 + Math.floor(rand() * 3), Math.floor(rand() * 3)];
      tensors[`t${i}`] = { dtype, shape, data: new Uint8Array(shape[0]! * shape[1]! * DTYPE_SIZE[dtype]) };
    }
    bases.push(serializeSafetensors(tensors, { seed: '11' }));
  }

  /** One random mutation; the header region is the target of most, since that is where the checks live. */
  function mutate(base: Uint8Array, rand: () => number): Uint8Array {
    const r = (n: number) => Math.floor(rand() * n);
    const headerEnd = Math.min(
      base.length,
      8 + Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true)),
    );
    let b = base.slice();
    const kind = r(8);
    if (kind === 0) b[r(b.length)] = r(256);
    else if (kind === 1) b = b.slice(0, r(b.length));
    else if (kind === 2) {
      const huge = [2n ** 60n, 2n ** 64n - 1n, 2n ** 53n, BigInt(b.length), BigInt(r(b.length)), 0n];
      new DataView(b.buffer).setBigUint64(0, huge[r(huge.length)]!, true);
    } else if (kind === 3 || kind === 4) {
      // Change one digit of the header: shapes and offsets move.
      const digits = [];
      for (let i = 8; i < headerEnd; i++) if (b[i]! >= 0x30 && b[i]! <= 0x39) digits.push(i);
      if (digits.length > 0) b[digits[r(digits.length)]!] = 0x30 + r(10);
    } else if (kind === 5) b[8 + r(headerEnd - 8)] = ' {}[]",:0-e.tfn\\'.charCodeAt(r(16));
    else if (kind === 6) {
      const extra = Uint8Array.from({ length: 1 + r(16) }, () => r(256));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      b = out;
    } else {
      const at = 8 + r(headerEnd - 8);
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + r(3))]);
    }
    return b;
  }

  test('2000 seeded cases, fast, no other error type', () => {
    const rand = rng(2024);
    const started = performance.now();
    let parsedOk = 0;
    let failed = 0;
    for (let i = 0; i < 2000; i++) {
      const file = mutate(bases[i % bases.length]!, rand);
      let result: ReturnType<typeof parseSafetensors> | undefined;
      try {
        result = parseSafetensors(file);
      } catch (e) {
        if (!(e instanceof FormatError)) throw new Error(`case ${i}: ${String(e)}`);
        failed++;
        continue;
      }
      parsedOk++;
      // Consistent: every tensor is a view into the input of exactly numel × itemsize bytes, and the views
      // tile the data section.
      const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
      let covered = 0;
      for (const t of result.tensors.values()) {
        expect(t.data.buffer).toBe(file.buffer);
        expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype]);
        covered += t.data.length;
      }
      expect(covered).toBe(file.length - 8 - n);
    }
    expect(parsedOk).toBeGreaterThan(50); // the fuzz reaches the success path too, not only early rejections
    expect(failed).toBeGreaterThan(1000);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
