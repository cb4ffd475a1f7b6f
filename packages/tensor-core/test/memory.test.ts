import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { keep, memory, randn, type Tensor, tensor, tidy, zeros } from '@tessera/tensor-core';
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

test('tidy disposes what a throwing function created, keeps what it kept, and leaves outer tensors alone', () => {
  const outer = randn([3]);
  let kept: Tensor | null = null;
  let dropped: Tensor | null = null;
  const before = memory().numTensors;
  expect(() =>
    tidy(() => {
      dropped = outer.add(1).mul(2);
      kept = keep(outer.sub(1));
      tidy(() => outer.exp()); // an inner scope's result moves to this scope and must be freed too
      throw new Error('boom');
    }),
  ).toThrow('boom');
  expect(memory().numTensors).toBe(before + 1);
  expect((dropped as unknown as Tensor).isDisposed).toBe(true);
  expect((kept as unknown as Tensor).isDisposed).toBe(false);
  expect(outer.isDisposed).toBe(false);
  // the scope stack is back where it was: a later tidy still frees its intermediates
  tidy(() => {
    outer.add(3);
  });
  expect(memory().numTensors).toBe(before + 1);
  (kept as unknown as Tensor).dispose();
});

test('tidy refuses async functions', () => {
  expect(() => tidy(async () => tensor([1]) as never)).toThrow(/synchronous/);
});

test('every op releases its intermediates: outside tidy, only the output stays alive', async () => {
  const { F, randint, stack } = await import('@tessera/tensor-core');
  const x3 = () => randn([2, 3, 8]);
  const ops: [string, () => Tensor[], (...a: Tensor[]) => Tensor | Tensor[]][] = [
    ['add scalar', () => [randn([3])], (a) => a.add(1)],
    ['where scalar', () => [randn([3]), tensor([true, false, true])], (a, c) => a.where(c, 0)],
    ['layerNorm', () => [x3(), randn([8]), randn([8])], (x, w, b) => F.layerNorm(x, [8], { weight: w, bias: b })],
    ['rmsNorm', () => [x3(), randn([8])], (x, w) => F.rmsNorm(x, [8], { weight: w })],
    ['batchNorm', () => [x3(), zeros([3]), zeros([3]).add(1)], (x, m, v) => F.batchNorm(x, m, v, { training: true })],
    ['groupNorm', () => [randn([2, 4, 5])], (x) => F.groupNorm(x, 2)],
    [
      'crossEntropy',
      () => [randn([4, 5]), randint(0, 5, [4]), randn([5]).abs()],
      (x, t, w) => F.crossEntropy(x, t, { weight: w, labelSmoothing: 0.1, ignoreIndex: 2 }),
    ],
    ['crossEntropy probs', () => [randn([4, 5]), randn([4, 5]).softmax(1)], (x, p) => F.crossEntropy(x, p)],
    ['nllLoss', () => [randn([4, 5]), randint(0, 5, [4])], (x, t) => F.nllLoss(x, t)],
    ['mse', () => [randn([4]), randn([4])], (a, b) => F.mseLoss(a, b)],
    ['l1', () => [randn([4]), randn([4])], (a, b) => F.l1Loss(a, b)],
    [
      'bce',
      () => [randn([4]), randn([4]).sigmoid(), randn([4]).abs()],
      (x, y, pw) => F.binaryCrossEntropyWithLogits(x, y, { posWeight: pw }),
    ],
    ['klDiv', () => [randn([3, 4]), randn([3, 4]).softmax(1)], (x, p) => F.klDiv(x, p, { reduction: 'batchmean' })],
    [
      'sdpa causal gqa',
      () => [randn([1, 4, 5, 8]), randn([1, 2, 5, 8]), randn([1, 2, 5, 8])],
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }),
    ],
    ['conv1d', () => [x3(), randn([4, 3, 3]), randn([4])], (x, w, b) => F.conv1d(x, w, { bias: b, padding: 'same' })],
    ['conv2d', () => [randn([1, 2, 5, 5]), randn([3, 2, 3, 3])], (x, w) => F.conv2d(x, w, { stride: 2, padding: 1 })],
    [
      'convTranspose1d',
      () => [x3(), randn([3, 2, 3]), randn([2])],
      (x, w, b) => F.convTranspose1d(x, w, { bias: b, stride: 2, padding: 1 }),
    ],
    ['maxPool1d', () => [x3()], (x) => F.maxPool1d(x, 2)],
    ['avgPool1d', () => [x3()], (x) => F.avgPool1d(x, 3, { padding: 1 })],
    ['softmax', () => [x3()], (x) => x.softmax(-1)],
    ['logSoftmax', () => [x3()], (x) => x.logSoftmax(1)],
    ['logsumexp', () => [x3()], (x) => x.logsumexp(-1)],
    ['var/std/mean', () => [x3()], (x) => [x.var(1), x.std(), x.mean(2)]],
    ['matmul 1-D', () => [randn([8]), randn([2, 8, 3])], (a, b) => a.matmul(b)],
    [
      'embedding paddingIdx',
      () => [randint(0, 5, [2, 3]), randn([5, 4], { requiresGrad: true })],
      (i, w) => F.embedding(i, w, { paddingIdx: 0 }),
    ],
    ['dropout', () => [x3()], (x) => F.dropout(x, 0.3)],
    [
      'repeat/indexSelect/stack/tril',
      () => [randn([3, 3]), randint(0, 3, [4])],
      (x, i) => [x.repeat([2, 1]), x.indexSelect(0, i), stack([x, x]), x.tril()],
    ],
    [
      'topk / max(dim)',
      () => [x3()],
      (x) => {
        const t = x.topk(2);
        const m = x.max(1);
        return [t.values, t.indices, m.values, m.indices];
      },
    ],
  ];
  for (const [name, make, op] of ops) {
    const inputs = make();
    const before = memory().numTensors;
    const out = op(...inputs);
    const outs = Array.isArray(out) ? out : [out];
    expect(memory().numTensors - before, name).toBe(outs.length);
    for (const t of [...outs, ...inputs]) t.dispose();
  }
});

test('the garbage collector reports tensors dropped outside every tidy() scope, and only those', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const collect = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await collect();
  const base = memory().numLeaked;
  // Watched from the start (made outside any scope), from leaving the outermost scope, from keep().
  const drop = () => {
    randn([4]);
    tidy(() => randn([4]).add(1));
    tidy(() => {
      keep(randn([4]));
    });
    const inner = tidy(() => tidy(() => randn([4])));
    expect(inner.leakWatched).toBe(true);
  };
  drop();
  await collect();
  expect(memory().numLeaked - base).toBe(4);
  // Intermediates a scope disposes are never registered, so never reported.
  tidy(() => {
    const t = randn([4]).exp();
    expect(t.leakWatched).toBe(false);
    const nested = tidy(() => t.mul(2)); // returned into the outer scope: still inside one
    expect(nested.leakWatched).toBe(false);
  });
  await collect();
  expect(memory().numLeaked - base).toBe(4);
});
