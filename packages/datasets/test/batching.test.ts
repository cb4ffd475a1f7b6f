import {
  batches,
  bucketByLength,
  groupedBatches,
  lmWindow,
  lmWindowStarts,
  padBatch,
  shuffle,
  shuffleBuffer,
  ValueError,
} from '@tessera/datasets';
import { describe, expect, test } from 'vitest';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('shuffle and batches', () => {
  test('seeded shuffle is a permutation, repeatable, and seed-dependent', () => {
    const a = shuffle(range(100), 1);
    expect([...a].sort((x, y) => x - y)).toEqual(range(100));
    expect(shuffle(range(100), 1)).toEqual(a);
    expect(shuffle(range(100), 2)).not.toEqual(a);
    expect(a).not.toEqual(range(100));
  });

  test('batches', () => {
    expect([...batches(range(7), 3)]).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect([...batches(range(7), 3, { dropLast: true })]).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(() => [...batches(range(3), 0)]).toThrow(ValueError);
  });
});

describe('bucketByLength', () => {
  const lengths = shuffle(
    range(1000).map((i) => 5 + ((i * 37) % 200)),
    9,
  );
  const padded = (bs: number[][]) => bs.reduce((s, b) => s + b.length * Math.max(...b), 0);

  test('every item once, fixed batch sizes, far less padding than random batches', () => {
    const bs = bucketByLength(lengths, (x) => x, { batchSize: 16, seed: 1, poolSize: 256 });
    expect(bs.flat().sort((a, b) => a - b)).toEqual([...lengths].sort((a, b) => a - b));
    expect(bs.filter((b) => b.length !== 16).length).toBeLessThanOrEqual(4); // one short batch per pool at most
    const randomBatches = [...batches(shuffle(lengths, 1), 16)];
    const total = lengths.reduce((a, b) => a + b, 0);
    expect(padded(bs) - total).toBeLessThan(0.25 * (padded(randomBatches) - total));
    expect(bucketByLength(lengths, (x) => x, { batchSize: 16, seed: 1, poolSize: 256 })).toEqual(bs);
  });

  test('token budget: no batch exceeds maxTokens unless a single item does', () => {
    const bs = bucketByLength([...lengths, 5000], (x) => x, { maxTokens: 2048, seed: 4 });
    for (const b of bs) if (b.length > 1) expect(b.length * Math.max(...b)).toBeLessThanOrEqual(2048);
    expect(bs.some((b) => b.length === 1 && b[0] === 5000)).toBe(true);
    expect(bucketByLength([...lengths, 5000], (x) => x, { maxTokens: 2048, maxLength: 1000 }).flat()).not.toContain(
      5000,
    );
    expect(() => bucketByLength(lengths, (x) => x, {})).toThrow(/exactly one/);
  });
});

describe('groupedBatches', () => {
  test('every batch from one group, every item once, repeatable', () => {
    const items = range(103).map((i) => ({ i, spk: `s${i % 4}` }));
    const bs = groupedBatches(items, (x) => x.spk, 8, { seed: 2 });
    for (const b of bs) expect(new Set(b.map((x) => x.spk)).size).toBe(1);
    expect(
      bs
        .flat()
        .map((x) => x.i)
        .sort((a, b) => a - b),
    ).toEqual(range(103));
    expect(bs.filter((b) => b.length < 8).length).toBeLessThanOrEqual(4);
    expect(groupedBatches(items, (x) => x.spk, 8, { seed: 2 })).toEqual(bs);
    expect(groupedBatches(items, (x) => x.spk, 8, { seed: 2, dropLast: true }).every((b) => b.length === 8)).toBe(true);
  });
});

describe('streams', () => {
  test('shuffleBuffer: a permutation, repeatable, never holds more than the buffer', async () => {
    let pulled = 0;
    let maxAhead = 0;
    let yielded = 0;
    function* src() {
      for (let i = 0; i < 500; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - yielded);
        yield i;
      }
    }
    const out: number[] = [];
    for await (const x of shuffleBuffer(src(), 32, 5)) {
      out.push(x);
      yielded++;
    }
    expect([...out].sort((a, b) => a - b)).toEqual(range(500));
    expect(out).not.toEqual(range(500));
    expect(maxAhead).toBeLessThanOrEqual(33);
    const again: number[] = [];
    for await (const x of shuffleBuffer(range(500), 32, 5)) again.push(x);
    expect(again).toEqual(out);
  });

  test('padBatch', () => {
    const p = padBatch([[1, 2, 3], [4]], -1);
    expect(p.shape).toEqual([2, 3]);
    expect(Array.from(p.data)).toEqual([1, 2, 3, 4, -1, -1]);
    expect(Array.from(p.lengths)).toEqual([3, 1]);
    expect(() => padBatch([[1, 2, 3]], 0, 2)).toThrow(ValueError);
  });

  test('LM windows: shifted target overlap, full coverage of the rolled stream, new roll per epoch', () => {
    const ids = Int32Array.from(range(1001));
    const { offset, starts } = lmWindowStarts(ids.length, 100, 3, 0);
    expect(starts.length).toBe(10);
    expect([...starts].sort((a, b) => a - b)).toEqual(range(10).map((i) => i * 100));
    const w = lmWindow(ids, offset, starts[0]!, 100);
    expect(w.length).toBe(101);
    for (let t = 1; t < w.length; t++) expect(w[t]).toBe((w[t - 1]! + 1) % 1001);
    expect(lmWindowStarts(ids.length, 100, 3, 1).offset).not.toBe(offset);
  });
});
