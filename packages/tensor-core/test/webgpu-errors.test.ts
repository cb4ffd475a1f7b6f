// Bad input on WebGPU: no adapter, out of memory, a shader that does not compile, a lost device. Each is
// a typed error carrying the adapter's or the compiler's message, and the CPU backend stays usable.
import {
  DeviceLostError,
  GPUOutOfMemoryError,
  getBackend,
  NoAdapterError,
  ShaderCompileError,
  setBackend,
  tensor,
  ValueError,
  WebGPUError,
  zeros,
} from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';
import { init, webgpu } from '../src/backends/webgpu/index.js';

const skip = await setBackend('webgpu').then(
  () => null,
  (e: Error) => {
    if (process.env.CI) throw e;
    return e.message;
  },
);
await setBackend('cpu');
if (skip) console.warn(`webgpu error tests skipped: ${skip}`);

async function cpuStillWorks() {
  await setBackend('cpu');
  expect(Array.from(tensor([1, 2]).mul(3).dataSync())).toEqual([3, 6]);
}

test('no adapter: NoAdapterError with the reason, and the active backend is unchanged', async () => {
  await setBackend('cpu');
  const none = { requestAdapter: async () => null } as unknown as GPU;
  await expect(init({ gpu: none })).rejects.toThrow(NoAdapterError);
  await expect(init({ gpu: none })).rejects.toThrow(/no adapter available/);
  const broken = {
    requestAdapter: async () => {
      throw new Error('driver says no');
    },
  } as unknown as GPU;
  await expect(init({ gpu: broken })).rejects.toThrow(/driver says no/);
  expect(getBackend()).toBe('cpu');
  await cpuStillWorks();
});

describe.skipIf(skip !== null)('with an adapter', () => {
  test('a tensor beyond the binding limit is GPUOutOfMemoryError naming the adapter; both backends go on', async () => {
    await setBackend('webgpu');
    const name = webgpu.adapter().name;
    let err: unknown;
    try {
      zeros([2 ** 30]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GPUOutOfMemoryError);
    expect(err).toBeInstanceOf(WebGPUError);
    expect((err as Error).message).toContain(name);
    expect(Array.from(await tensor([1, 2]).add(1).data())).toEqual([2, 3]);
    await cpuStillWorks();
  });

  test('an out-of-range index in gather or scatterAdd is a ValueError at the next read', async () => {
    await setBackend('webgpu');
    const x = tensor([1, 2, 3]);
    const bad = tensor([0, 5], { dtype: 'int32' });
    const y = x.gather(0, bad);
    await expect(y.data()).rejects.toThrow(ValueError);
    // Reported once; later reads are fine.
    expect(Array.from(await x.gather(0, tensor([2, 0], { dtype: 'int32' })).data())).toEqual([3, 1]);
    const z = x.scatterAdd(0, tensor([-1], { dtype: 'int32' }), tensor([1]));
    await expect(z.data()).rejects.toThrow(/scatterAdd: index -1 out of range for a dim of size 3/);
    await cpuStillWorks();
  });

  test("a WGSL compile failure is ShaderCompileError with the compiler's message", async () => {
    await setBackend('webgpu');
    webgpu.compile('broken', '@compute @workgroup_size(1) fn main() { let x: f32 = undefinedThing; }');
    const err = await webgpu.sync().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect((err as Error).message).toMatch(/undefinedThing/);
    expect((err as Error).message).toContain("shader 'broken'");
    // The error is reported once; the device and the CPU go on.
    expect(Array.from(await tensor([2, 3]).mul(2).data())).toEqual([4, 6]);
    await cpuStillWorks();
  });

  test('a lost device: DeviceLostError until setBackend re-acquires one; old tensors stay refused', async () => {
    await setBackend('webgpu');
    const old = tensor([1, 2, 3]);
    webgpu.device().destroy();
    for (let i = 0; i < 100 && !(await lost()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(() => old.add(1)).toThrow(DeviceLostError);
    expect(() => tensor([1])).toThrow(/device was lost/);
    await cpuStillWorks();
    await setBackend('webgpu');
    expect(Array.from(await tensor([1, 2]).add(1).data())).toEqual([2, 3]);
    expect(() => old.add(1)).toThrow(DeviceLostError);
    old.dispose();
  });
});

async function lost(): Promise<boolean> {
  try {
    webgpu.memory();
    tensor([0]).dispose();
    return false;
  } catch (e) {
    return e instanceof DeviceLostError;
  }
}
