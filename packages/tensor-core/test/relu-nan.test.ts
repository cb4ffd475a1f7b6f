// relu keeps NaN (PyTorch: relu(nan) = nan) on every path: the wasm SIMD lanes and its scalar tail, the
// TypeScript contiguous loop and the generic strided kernel, and WebGPU. A NaN input turned into 0 would hide a
// diverged activation from the user, which is why this is pinned rather than left to each kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBackend, tensor } from '../src/index.js';
import { type Path, pathsFor, probeWebgpu, usePath } from './support.js';

let gpuSkip: string | null = null;
beforeAll(async () => {
  gpuSkip = await probeWebgpu('relu-nan');
});
afterAll(async () => {
  await usePath('cpu-wasm');
  await setBackend('cpu');
});

// 11 values: two full SIMD groups of 4 and a scalar tail of 3, with NaN in both parts.
const xs = [
  Number.NaN,
  -1,
  2,
  -0,
  0.5,
  -3,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  7,
  Number.NaN,
];
const want = [Number.NaN, 0, 2, 0, 0.5, 0, Number.NaN, Number.POSITIVE_INFINITY, 0, 7, Number.NaN];

describe.each(['cpu-wasm', 'cpu-ts', 'webgpu'] as Path[])('relu on %s', (path) => {
  it('propagates NaN, contiguous and strided', async () => {
    if (!pathsFor(gpuSkip).includes(path)) return;
    await usePath(path);
    const x = tensor(xs);
    const y = x.relu();
    expect(Array.from(await y.data())).toEqual(want);
    // a strided view (every other element of a doubled row) goes through the generic kernel
    const x2 = tensor(xs.flatMap((v) => [v, 123])).reshape([xs.length, 2]);
    const col = x2.narrow(1, 0, 1).reshape([xs.length]);
    expect(Array.from(await col.relu().data())).toEqual(want);
    for (const t of [x, y, x2, col]) t.dispose();
  });
});
