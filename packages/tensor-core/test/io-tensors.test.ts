import { FormatError, io, randn, tensor } from '@tessera/tensor-core';
import { expect, test } from 'vitest';

test('saveSafetensors → loadSafetensors round-trips every dtype, with I64 and half options', () => {
  const f = randn([3, 4]);
  const i = tensor([1, -2, 2147483647], { dtype: 'int32' });
  const b = tensor([true, false, true]);
  const h = randn([5]).to('bfloat16');
  const bytes = io.saveSafetensors(
    { f, i, b, h, 'f.T': f.transpose(0, 1) },
    { int64: ['i'], metadata: { format: 'pt' } },
  );
  const { tensors, metadata } = io.loadSafetensors(bytes, { keepHalf: true });
  expect(metadata).toEqual({ format: 'pt' });
  expect(Array.from(tensors.get('f')!.dataSync())).toEqual(Array.from(f.dataSync()));
  expect(Array.from(tensors.get('f.T')!.dataSync())).toEqual(Array.from(f.transpose(0, 1).dataSync()));
  expect(tensors.get('i')!.dtype).toBe('int32');
  expect(Array.from(tensors.get('i')!.dataSync())).toEqual([1, -2, 2147483647]);
  expect(Array.from(tensors.get('b')!.dataSync())).toEqual([1, 0, 1]);
  expect(tensors.get('h')!.dtype).toBe('bfloat16');
  expect(Array.from(tensors.get('h')!.float().dataSync())).toEqual(Array.from(h.float().dataSync()));
  // Without keepHalf the half tensor is float32, rounded to bfloat16 precision (8 bits of mantissa).
  const asF32 = io.loadSafetensors(bytes).tensors.get('h')!;
  expect(asF32.dtype).toBe('float32');
  const orig = h.float().dataSync();
  expect(Array.from(asF32.dataSync())).toEqual(Array.from(orig));
});

test('an I64 value outside int32 is a FormatError naming the tensor', () => {
  const raw = io.serializeSafetensors({
    ids: { dtype: 'I64', shape: [1], data: new Uint8Array(new BigInt64Array([2n ** 40n]).buffer) },
  });
  expect(() => io.loadSafetensors(raw)).toThrow(FormatError);
  expect(() => io.loadSafetensors(raw)).toThrow(/ids/);
});
