// gather / scatterAdd / indexSelect on the CPU kernels' row paths: an embedding lookup (one index per
// contiguous row: a block copy), the same lookup from a transposed table (strided rows), duplicate indices
// summed in row-major order, strided sources, index errors on both paths, and the wasm row kernel of an
// embedding's gradient at widths 1–255. References in plain JS.
import { describe, expect, test } from 'vitest';
import { F, tensor } from '../src/index.js';
import { randArr, usePath } from './support.js';

const host = (t: { dataSync(): ArrayLike<number> }) => Array.from(t.dataSync());

describe.each(['cpu-wasm', 'cpu-ts'] as const)('gather and scatterAdd on %s', (path) => {
  test('embedding rows from a contiguous and from a transposed table', async () => {
    await usePath(path);
    const [V, D] = [7, 5];
    const W = randArr(V * D, 1);
    const ids = [3, 0, 6, 3, 1, 6];
    const want = ids.flatMap((i) => Array.from(W.subarray(i * D, (i + 1) * D)));
    const w = tensor(W, { shape: [V, D] });
    const id = tensor(ids, { shape: [2, 3], dtype: 'int32' });
    expect(host(F.embedding(id, w))).toEqual(want);
    // The same table stored [D, V] and viewed transposed: rows with stride V.
    const wt = tensor(w.transpose(0, 1).contiguous().dataSync() as Float32Array, { shape: [D, V] }).transpose(0, 1);
    expect(host(F.embedding(id, wt))).toEqual(want);
    expect(() => F.embedding(tensor([1, V], { dtype: 'int32' }), w)).toThrow(/index 7 out of range/);
    expect(() => F.embedding(tensor([-1], { dtype: 'int32' }), wt)).toThrow(/out of range/);
  });

  test('embedding gradient: duplicate ids sum into their rows', async () => {
    await usePath(path);
    const [V, D] = [4, 3];
    const w = tensor(randArr(V * D, 2), { shape: [V, D], requiresGrad: true });
    const ids = [2, 0, 2, 2];
    const G = randArr(ids.length * D, 3);
    F.embedding(tensor(ids, { dtype: 'int32' }), w)
      .mul(tensor(G, { shape: [ids.length, D] }))
      .sum()
      .backward();
    const want = new Float32Array(V * D);
    ids.forEach((i, r) => {
      for (let c = 0; c < D; c++) want[i * D + c] = want[i * D + c]! + G[r * D + c]!;
    });
    expect(host(w.grad!)).toEqual(Array.from(want));
  });

  test('gather along dim 0 and scatterAdd from a strided source, against loops', async () => {
    await usePath(path);
    const X = randArr(4 * 3, 4);
    const I = [3, 0, 1, 1, 2, 3, 0, 0, 2, 3, 3, 1]; // [4, 3] of rows 0..3
    const x = tensor(X, { shape: [4, 3] });
    const idx = tensor(I, { shape: [4, 3], dtype: 'int32' });
    expect(host(x.gather(0, idx))).toEqual(I.map((r, e) => X[r * 3 + (e % 3)]!));
    // src [4, 3] as the transpose of a [3, 4] tensor: a strided view.
    const S = randArr(12, 5);
    const src = tensor(S, { shape: [3, 4] }).transpose(0, 1);
    const base = tensor(randArr(12, 6), { shape: [4, 3] });
    const want = Float32Array.from(base.dataSync() as Float32Array);
    for (let e = 0; e < 12; e++) {
      const [r, c] = [Math.floor(e / 3), e % 3];
      want[I[e]! * 3 + c] = want[I[e]! * 3 + c]! + S[c * 4 + r]!;
    }
    expect(host(base.scatterAdd(0, idx, src))).toEqual(Array.from(want));
    expect(() => base.scatterAdd(0, tensor([[4, 0, 0]], { dtype: 'int32' }), src.slice(0, 0, 1))).toThrow(
      /scatterAdd: index 4 out of range/,
    );
  });

  // Lookups past the wasm row kernel's 4096 elements: widths 1–255, tables with rows ld > D apart or flipped (the
  // kernel declines negative strides), float32 and int32, and a bad id on the row path.
  test.each([1, 3, 17, 33, 255])('embedding lookups of width %i against the plain JS loop', async (D) => {
    await usePath(path);
    const R = Math.ceil(4100 / D) + 1;
    const V = 9;
    const ids = Array.from({ length: R }, (_, r) => (r * 7 + (r >> 3)) % V);
    const id = tensor(ids, { shape: [R], dtype: 'int32' });
    for (const ld of [D, D + 5]) {
      const W = randArr(V * ld, 30 + ld);
      const table = tensor(W, { shape: [V, ld] }).slice(1, 0, D);
      const want = ids.flatMap((i) => Array.from(W.subarray(i * ld, i * ld + D)));
      expect(host(F.embedding(id, table))).toEqual(want);
      const flipped = ids.flatMap((i) => Array.from(W.subarray((V - 1 - i) * ld, (V - 1 - i) * ld + D)));
      expect(host(F.embedding(id, table.flip([0])))).toEqual(flipped);
    }
    const Wi = Int32Array.from({ length: V * D }, (_, i) => i * 3 - 7);
    const ti = tensor(Wi, { shape: [V, D], dtype: 'int32' });
    const idx = id.reshape([R, 1]).expand([R, D]);
    expect(host(ti.gather(0, idx))).toEqual(ids.flatMap((i) => Array.from(Wi.subarray(i * D, (i + 1) * D))));
    const bad = tensor(
      ids.map((i, r) => (r === R - 1 ? -1 : i)),
      { shape: [R], dtype: 'int32' },
    );
    expect(() => F.embedding(bad, tensor(randArr(V * D, 40), { shape: [V, D] }))).toThrow(
      /gather: index -1 out of range for dim 0 of size 9/,
    );
  });

  // Past the wasm row kernel's 4096 elements: widths 1, 3, 17, 33 and 255 (vector loop and scalar tail), rows
  // with repeated ids (summed in row order), a source whose rows sit ld > D apart, and a bad id on the row path.
  test.each([1, 3, 17, 33, 255])('embedding-gradient rows of width %i against the plain JS loop', async (D) => {
    await usePath(path);
    const R = Math.ceil(4100 / D) + 1;
    const V = 7;
    const ids = Array.from({ length: R }, (_, r) => (r * 5 + (r >> 2)) % V);
    const base = tensor(randArr(V * D, 7), { shape: [V, D] });
    const idx = tensor(ids, { shape: [R, 1], dtype: 'int32' }).expand([R, D]);
    for (const ld of [D, D + 3]) {
      const S = randArr(R * ld, 8 + ld);
      const src = tensor(S, { shape: [R, ld] }).slice(1, 0, D);
      const want = Float32Array.from(base.dataSync() as Float32Array);
      ids.forEach((i, r) => {
        for (let c = 0; c < D; c++) want[i * D + c] = want[i * D + c]! + S[r * ld + c]!;
      });
      expect(host(base.scatterAdd(0, idx, src))).toEqual(Array.from(want));
    }
    const bad = tensor(
      ids.map((i, r) => (r === R - 2 ? V : i)),
      { shape: [R, 1], dtype: 'int32' },
    ).expand([R, D]);
    expect(() => base.scatterAdd(0, bad, tensor(randArr(R * D, 9), { shape: [R, D] }))).toThrow(
      /scatterAdd: index 7 out of range for dim 0 of size 7/,
    );
  });
});
