// float16/bfloat16 tensors on the CPU backend: creation takes values (as torch.tensor does), and sort orders
// by value. References: the io/half.ts conversions (checked against torch in io-half.test.ts) and a float64
// stable sort in plain JS with PyTorch's NaN-as-largest rule.
import { arange, full, ones, type Tensor, tensor } from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/io/half.js';

const HALF = ['float16', 'bfloat16'] as const;
const encode = (d: (typeof HALF)[number], v: number[]) =>
  d === 'float16' ? f32ToF16(Float32Array.from(v)) : f32ToBf16(Float32Array.from(v));
const decode = (d: (typeof HALF)[number], b: Uint16Array) => (d === 'float16' ? f16ToF32(b) : bf16ToF32(b));
const bits = (t: Tensor) => Array.from(t.dataSync() as Uint16Array);

/** Stable argsort by value, NaN largest (so first when descending), as torch.sort(stable=True). */
function refArgsort(v: ArrayLike<number>, descending: boolean): number[] {
  const key = (x: number) => (Number.isNaN(x) ? [1, 0] : [0, x]);
  return Array.from(v, (_, i) => i).sort((p, q) => {
    const [np, vp] = key(v[p]!);
    const [nq, vq] = key(v[q]!);
    const d = np! - nq! || vp! - vq!;
    return descending ? -d : d;
  });
}

describe.each(HALF)('%s', (dtype) => {
  // Exact in both formats except 65504 (bfloat16 rounds it to 65536) and 1/3 (rounded in both).
  const values = [0.5, 1.5, 65504, -0.25, -2, Number.NaN, 1 / 3, 0, -0, Number.POSITIVE_INFINITY, 1.5, -2];

  test('tensor() and arange() take values, rounded to nearest even like .to()', () => {
    const want = Array.from(encode(dtype, values));
    expect(bits(tensor(values, { dtype }))).toEqual(want);
    expect(bits(tensor(Float32Array.from(values), { dtype }))).toEqual(want);
    expect(bits(tensor(values).to(dtype))).toEqual(want);
    expect(Array.from(tensor([0.5, 1.5, -0.25, -2], { dtype }).float().dataSync())).toEqual([0.5, 1.5, -0.25, -2]);
    expect(Array.from(arange(0, 3, 1, { dtype }).float().dataSync())).toEqual([0, 1, 2]);
  });

  test('full() and ones() hold the value, not its bits', () => {
    expect(Array.from(full([3], -2.5, { dtype }).float().dataSync())).toEqual([-2.5, -2.5, -2.5]);
    expect(Array.from(ones([2], { dtype }).float().dataSync())).toEqual([1, 1]);
  });

  test('sort orders by value (NaN last ascending, first descending), stable, on a strided view', () => {
    const stored = decode(dtype, encode(dtype, values));
    for (const descending of [false, true]) {
      const order = refArgsort(stored, descending);
      // 3 copies along dim 0 of a transposed, expanded view.
      const x = tensor(values, { dtype }).reshape([values.length, 1]).expand([values.length, 3]).transpose(0, 1);
      const { values: v, indices } = x.sort(1, descending);
      expect(v.dtype).toBe(dtype);
      expect(Array.from(indices.dataSync())).toEqual([0, 1, 2].flatMap(() => order));
      const got = Array.from(v.float().dataSync());
      const want = [0, 1, 2].flatMap(() => order.map((i) => stored[i]!));
      expect(got.map((g) => (Number.isNaN(g) ? 'NaN' : Object.is(g, -0) ? '-0' : g))).toEqual(
        want.map((g) => (Number.isNaN(g) ? 'NaN' : Object.is(g, -0) ? '-0' : g)),
      );
    }
  });
});
