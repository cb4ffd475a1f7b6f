// The wasm path with a private (non-shared) memory, as in a browser page that is not cross-origin isolated:
// no arena storages (results are copied out), no threads, and the same answers as the TypeScript path.
import { beforeAll, expect, test } from 'vitest';

process.env.TESSERA_WASM_SHARED = '0';

type Core = typeof import('../src/index.js');
type Wasm = typeof import('../src/backends/cpu/wasm.js');
let core: Core;
let w: Wasm;

beforeAll(async () => {
  // Imported after the variable is set: this file has its own module graph.
  w = await import('../src/backends/cpu/wasm.js');
  core = await import('../src/index.js');
});

test('private memory: matmul, conv, copy, pad, elementwise agree with the TypeScript path', () => {
  expect(w.wasm()?.shared).toBe(false);
  expect(['wasm', 'wasm-fma']).toContain(w.cpuPath());
  const { F, manualSeed, randn, tidy } = core;
  manualSeed(21);
  const a = randn([67, 130]);
  const b = randn([130, 45]);
  const x = randn([2, 5, 300]);
  const k = randn([7, 5, 3]);
  const ops = [
    () => a.matmul(b),
    () => a.transpose(0, 1).matmul(a),
    () => F.conv1d(x, k, { padding: 'same' }),
    () => x.permute([2, 0, 1]).contiguous(),
    () =>
      x
        .add(x.flip([2]))
        .sqrt()
        .relu(),
    () => x.gt(0),
  ];
  for (const f of ops) {
    w.setCpuPath('auto');
    const got = tidy(() => Array.from(f().dataSync()));
    w.setCpuPath('ts');
    const want = tidy(() => Array.from(f().dataSync()));
    w.setCpuPath('auto');
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++)
      if (Number.isNaN(want[i]!))
        expect(got[i]).toBeNaN(); // sqrt of a negative sum, kept by relu
      else expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(want[i]!)));
  }
  expect(w.arenaStats()!.liveBytes).toBe(0); // nothing kept in wasm memory between ops
});

test('private memory: no thread pool; setCpuThreads falls back to 1 thread and says why', async () => {
  const { cpuThreads, cpuThreadsUnavailableReason, setCpuThreads } = await import('../src/backends/cpu/pool.js');
  await expect(setCpuThreads(2)).resolves.toBe(1);
  expect(cpuThreads()).toBe(1);
  expect(cpuThreadsUnavailableReason()).toMatch(/not shared/);
  await setCpuThreads(1);
  expect(cpuThreadsUnavailableReason()).toBeNull();
});
