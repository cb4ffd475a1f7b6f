// Bad input gets a typed error that names the op, what it expected and what it got.
import {
  AutogradError,
  DisposedError,
  DTypeError,
  F,
  noGrad,
  randn,
  ShapeError,
  tensor,
  ValueError,
  zeros,
} from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';

const int = (v: number[]) => tensor(v, { dtype: 'int32' });

describe('shape and dtype errors name the op, the expectation and the input', () => {
  test.each([
    [
      'matmul',
      () => randn([2, 3]).matmul(randn([4, 5])),
      ShapeError,
      /matmul expects \[\.\.\., m, k\] x \[\.\.\., k, n\]; got \[2, 3\] x \[4, 5\]/,
    ],
    [
      'broadcast',
      () => randn([2, 3]).add(randn([4, 3])),
      ShapeError,
      /add: shapes \[2, 3\] and \[4, 3\] cannot be broadcast/,
    ],
    [
      'reshape',
      () => randn([2, 3]).reshape([4, 2]),
      ShapeError,
      /reshape: shape \[4, 2\] has 8 elements; input \[2, 3\] has 6/,
    ],
    ['view of non-contiguous', () => randn([2, 3]).transpose(0, 1).view([6]), ShapeError, /use reshape/],
    ['dim out of range', () => randn([2, 3]).sum(2), ValueError, /sum: dim 2 out of range for a tensor of rank 2/],
    ['conv1d channels', () => F.conv1d(randn([1, 3, 8]), randn([4, 2, 3])), ShapeError, /conv1d: input channels 3/],
    ['conv1d too small', () => F.conv1d(randn([1, 1, 2]), randn([1, 1, 5])), ShapeError, /too small for kernel/],
    [
      "conv 'same' with stride",
      () => F.conv1d(randn([1, 1, 8]), randn([1, 1, 3]), { padding: 'same', stride: 2 }),
      ValueError,
      /'same' needs stride 1/,
    ],
    [
      'crossEntropy target shape',
      () => F.crossEntropy(randn([4, 5]), int([1, 2])),
      ShapeError,
      /targets for input \[4, 5\] must be \[4\]; got \[2\]/,
    ],
    [
      'crossEntropy target dtype',
      () => F.crossEntropy(randn([2, 5]), tensor([true, false])),
      DTypeError,
      /int32 classes/,
    ],
    [
      'gather index dtype',
      () => randn([2, 3]).gather(1, randn([2, 3])),
      DTypeError,
      /gather: index must be int32; got float32/,
    ],
    [
      'gather out of range',
      () => randn([2, 3]).gather(1, int([0, 5, 1, 1, 1, 1]).reshape([2, 3])),
      ValueError,
      /index 5 out of range/,
    ],
    [
      'requiresGrad on int',
      () => tensor([1, 2], { dtype: 'int32', requiresGrad: true }),
      DTypeError,
      /only floating-point/,
    ],
    ['ragged nested array', () => tensor([[1, 2], [3]]), ShapeError, /ragged/],
    [
      'values do not fill shape',
      () => tensor(new Float32Array(5), { shape: [2, 3] }),
      ShapeError,
      /5 values do not fill shape \[2, 3\]/,
    ],
    ['negative shape', () => zeros([2, -1]), ValueError, /non-negative integers/],
    ['unknown dtype', () => tensor([1], { dtype: 'float64' as never }), DTypeError, /unknown dtype "float64"/],
    ['half compute', () => randn([2]).to('float16').exp(), DTypeError, /float16 is a storage dtype/],
    [
      'cat shapes',
      () => F.pad(randn([2, 2]), [1, 1]) && F.embedding(tensor([0], { dtype: 'int32' }), randn([2])),
      ShapeError,
      /embedding: weight must be \[V, D\]/,
    ],
    [
      'layerNorm shape',
      () => F.layerNorm(randn([2, 3]), [4]),
      ShapeError,
      /normalizedShape \[4\] does not end input \[2, 3\]/,
    ],
    ['topk k', () => randn([3]).topk(4), ValueError, /topk: k = 4 out of range/],
    ['multiple -1', () => randn([4]).reshape([-1, -1]), ShapeError, /only one dimension can be -1/],
  ])('%s', (_n, fn, type, msg) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(msg);
  });
});

describe('autograd misuse is an error, never a wrong gradient', () => {
  test('backward through a non-differentiable path', () => {
    const x = randn([3], { requiresGrad: true });
    const y = x.argmax().float();
    expect(() => y.backward()).toThrow(AutogradError);
    expect(() => y.backward()).toThrow(/does not require grad/);
  });

  test('backward under noGrad', () => {
    const x = randn([3], { requiresGrad: true });
    const y = noGrad(() => x.mul(2).sum());
    expect(() => y.backward()).toThrow(AutogradError);
  });

  test('backward of a non-scalar needs a gradient of the same shape', () => {
    const x = randn([3], { requiresGrad: true });
    expect(() => x.mul(2).backward()).toThrow(/a gradient is needed for a non-scalar output of shape \[3\]/);
    expect(() => x.mul(2).backward(randn([2]))).toThrow(ShapeError);
    const y = x.mul(2);
    y.backward(tensor([1, 1, 1]));
    expect(Array.from(x.grad!.dataSync())).toEqual([2, 2, 2]);
  });

  test('a disposed tensor cannot be used, nor can backward read a disposed saved tensor', () => {
    const x = randn([3]);
    x.dispose();
    expect(() => x.exp()).toThrow(DisposedError);
    expect(() => x.dataSync()).toThrow(/was disposed/);
    // Saved tensors survive the user's dispose: autograd holds its own reference.
    const w = randn([3], { requiresGrad: true });
    const h = w.mul(3);
    const l = h.mul(h).sum();
    h.dispose();
    l.backward();
    expect(w.grad).not.toBeNull();
  });

  test('editing a saved tensor in place before backward is refused', () => {
    const w = randn([3], { requiresGrad: true });
    const a = randn([3]);
    const l = w.mul(a).sum();
    a.add_(1);
    let err: unknown;
    try {
      l.backward();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AutogradError);
    expect((err as Error).message).toMatch(/modified in place after it was saved/);
  });

  test('in-place edit of a leaf that requires grad is refused outside noGrad', () => {
    const w = randn([3], { requiresGrad: true });
    expect(() => w.add_(1)).toThrow(/leaf that requires grad/);
    noGrad(() => w.add_(1));
  });

  test('a second backward without retainGraph is refused; with it, gradients accumulate', () => {
    const w = tensor([1, 2, 3], { requiresGrad: true });
    const l = w.mul(w).sum();
    l.backward();
    expect(() => l.backward()).toThrow(/already freed/);
    const w2 = tensor([1, 2, 3], { requiresGrad: true });
    const l2 = w2.mul(w2).sum();
    l2.backward(undefined, { retainGraph: true });
    l2.backward();
    expect(Array.from(w2.grad!.dataSync())).toEqual([4, 8, 12]);
  });

  test('detach cuts the graph', () => {
    const w = tensor([1, 2], { requiresGrad: true });
    const l = w.mul(w.detach()).sum();
    l.backward();
    expect(Array.from(w.grad!.dataSync())).toEqual([1, 2]);
  });

  test('gradient accumulates across backward calls', () => {
    const w = tensor([1, 2], { requiresGrad: true });
    w.mul(3).sum().backward();
    w.mul(3).sum().backward();
    expect(Array.from(w.grad!.dataSync())).toEqual([6, 6]);
  });

  test('a tensor used twice gets both contributions (x·x, x + x)', () => {
    const x = tensor([2, -1], { requiresGrad: true });
    x.mul(x).add(x.add(x)).sum().backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([6, 0]);
  });
});
