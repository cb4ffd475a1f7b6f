import { keep, memory, randn, tensor, tidy, zeros } from '@tessera/tensor-core';
import { expect, test } from 'vitest';

test('tidy disposes what the function created, except what it returns or keeps', () => {
  const before = memory();
  let kept: ReturnType<typeof zeros> | undefined;
  const out = tidy(() => {
    const a = randn([100]);
    const b = a.exp().add(1);
    kept = keep(zeros([10]));
    return { b, list: [a.mul(2)] };
  });
  const after = memory();
  expect(after.numTensors - before.numTensors).toBe(3); // b, list[0], kept
  expect(out.b.isDisposed).toBe(false);
  expect(out.list[0]!.isDisposed).toBe(false);
  expect(kept!.isDisposed).toBe(false);
  out.b.dispose();
  out.list[0]!.dispose();
  kept!.dispose();
  expect(memory()).toMatchObject({ numTensors: before.numTensors, numBytes: before.numBytes });
});

test('nested tidy returns to the outer scope; views share storage and free it with the last owner', () => {
  const before = memory();
  tidy(() => {
    const inner = tidy(() => randn([4, 4]).transpose(0, 1));
    expect(inner.isDisposed).toBe(false);
    const v = inner.slice(0, 1, 3);
    inner.dispose();
    expect(v.dataSync().length).toBe(8); // storage alive through the view
  });
  expect(memory()).toMatchObject({
    numTensors: before.numTensors,
    numStorages: before.numStorages,
    numBytes: before.numBytes,
  });
});

test('a training-like loop does not grow memory', () => {
  const w = randn([16, 8], { requiresGrad: true });
  const step = () =>
    tidy(() => {
      const x = randn([4, 16]);
      x.matmul(w).tanh().pow(2).mean().backward();
      w.grad!.zero_();
    });
  for (let i = 0; i < 3; i++) step();
  const before = memory();
  for (let i = 0; i < 100; i++) step();
  expect(memory()).toMatchObject({ numTensors: before.numTensors, numBytes: before.numBytes });
});

test('tidy refuses async functions', () => {
  expect(() => tidy(async () => tensor([1]) as never)).toThrow(/synchronous/);
});
