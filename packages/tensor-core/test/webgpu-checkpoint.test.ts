// Checkpoints of a model that trains on WebGPU: saved without moving it to the CPU (tensors read back
// asynchronously), loaded on WebGPU (the CRC is checked on the file's bytes, no tensor read back), byte-equal to
// the synchronous writer on the CPU, and loadable on the CPU with the same values.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  checkpointFromBytes,
  checkpointToBytes,
  checkpointToBytesAsync,
  F,
  loadCheckpoint,
  manualSeed,
  nn,
  optim,
  randint,
  randn,
  saveCheckpoint,
  setBackend,
  tidy,
} from '../src/index.js';
import { probeWebgpu } from './support.js';

let gpuSkip: string | null = null;
const dir = mkdtempSync(join(tmpdir(), 'tessera-ck-gpu-'));
beforeAll(async () => {
  gpuSkip = await probeWebgpu('webgpu-checkpoint');
});
afterAll(async () => {
  await setBackend('cpu');
  rmSync(dir, { recursive: true, force: true });
});

const make = () => {
  const model = new nn.Sequential(new nn.Linear(5, 8), new nn.ReLU(), new nn.Linear(8, 3));
  const opt = new optim.AdamW(model.parameters(), { lr: 0.01 });
  return { model, opt };
};
const step = (m: ReturnType<typeof make>) =>
  tidy(() => {
    F.crossEntropy(m.model.forward(randn([4, 5])), randint(0, 3, [4])).backward();
    m.opt.step();
    m.opt.zeroGrad();
  });
const values = async (m: ReturnType<typeof make>) =>
  Promise.all([...m.model.stateDict().values()].map(async (t) => Array.from(await t.data())));

test('the async writer gives the synchronous writer’s bytes on the CPU', async () => {
  manualSeed(3);
  const a = make();
  step(a);
  const ck = { model: a.model, optimizer: a.opt, step: 1, extra: { k: 1 } };
  expect(await checkpointToBytesAsync(ck)).toEqual(checkpointToBytes(ck));
});

test('a model training on WebGPU saves and loads there, and its checkpoint loads on the CPU', async () => {
  if (gpuSkip) return;
  await setBackend('webgpu');
  manualSeed(4);
  const a = make();
  for (let i = 0; i < 2; i++) step(a);
  const want = await values(a);
  const path = join(dir, 'gpu.safetensors');
  await saveCheckpoint(path, { model: a.model, optimizer: a.opt, step: 2 });

  const b = make();
  expect((await loadCheckpoint(path, { model: b.model, optimizer: b.opt })).step).toBe(2);
  const got = await values(b);
  for (let i = 0; i < want.length; i++) expect(got[i]).toEqual(want[i]);
  // the optimizer state came back too: one more step from a and from b lands on the same weights
  manualSeed(9);
  step(a);
  manualSeed(9);
  step(b);
  const [wa, wb] = [await values(a), await values(b)];
  for (let i = 0; i < wa.length; i++) expect(wb[i]).toEqual(wa[i]);

  const bytes = await checkpointToBytesAsync({ model: a.model, optimizer: a.opt, step: 3 });
  await setBackend('cpu');
  const c = make();
  checkpointFromBytes(bytes, { model: c.model, optimizer: c.opt });
  const wc = await values(c);
  for (let i = 0; i < wa.length; i++) expect(wc[i]).toEqual(wa[i]);
  // a damaged file is still refused on the byte path
  const flipped = bytes.slice();
  flipped[flipped.length - 3]! ^= 0x40;
  expect(() => checkpointFromBytes(flipped, { model: make().model })).toThrow(/CRC-32 mismatch/);
}, 120_000);

test('on WebGPU an async save is the state at the call: a step queued while it reads does not enter it', async () => {
  if (gpuSkip) return;
  await setBackend('webgpu');
  try {
    manualSeed(5);
    const a = make();
    step(a);
    const ck = { model: a.model, optimizer: a.opt, step: 1 };
    const want = await checkpointToBytesAsync(ck);
    const pending = checkpointToBytesAsync(ck);
    step(a); // queued behind the reads' copies
    expect(await pending).toEqual(want);
    expect(await checkpointToBytesAsync(ck)).not.toEqual(want);
  } finally {
    await setBackend('cpu');
  }
}, 120_000);
