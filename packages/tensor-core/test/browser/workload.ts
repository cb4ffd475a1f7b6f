// A subset of the op table and one full training step, written once and run twice: in Node on the CPU
// backend (the reference) and in headless Chromium on WebGPU (webgpu.browser.test.ts). It takes the
// library as an argument, so the browser build needs no bundler and no import map.
import type * as TC from '../../src/index.js';

export type Results = Record<string, number[]>;

export async function workload(T: typeof TC, backend: 'cpu' | 'webgpu'): Promise<Results> {
  await T.setBackend(backend);
  const out: Results = {};
  const put = async (name: string, t: TC.Tensor) => {
    out[name] = Array.from(await t.data());
  };
  T.manualSeed(7);
  const a = T.randn([5, 8]);
  const b = T.randn([8, 6]);
  await put('matmul', a.matmul(b));
  await put('matmul transposed', a.matmul(T.randn([6, 8]).transpose(0, 1)));
  await put('softmax', a.softmax(-1));
  await put('layerNorm', T.F.layerNorm(a, [8]));
  await put('gelu', a.gelu());
  await put('sum', a.sum(0));
  await put('amax', a.amax(1));
  await put('cumsum', a.cumsum(1));
  await put('sort', a.sort(-1).values);
  await put('argmax', a.argmax(1));
  await put('where', a.where(a.gt(0).logicalNot(), a.mul(-2)));
  await put('conv1d', T.F.conv1d(T.randn([2, 3, 10]), T.randn([4, 3, 3]), { padding: 1 }));
  await put('embedding', T.F.embedding(T.tensor([3, 0, 3], { dtype: 'int32' }), T.randn([4, 5])));

  const y = T.tensor([0, 2, 1, 1, 0], { dtype: 'int32' });
  const w = T.randn([8, 3], { requiresGrad: true });
  T.F.crossEntropy(a.matmul(w).tanh(), y).backward();
  await put('gradient', w.grad!);

  // One full training step: forward, backward, AdamW update.
  const model = new T.nn.Sequential(new T.nn.Linear(8, 16), new T.nn.GELU(), new T.nn.Linear(16, 3));
  const opt = new T.optim.AdamW(model.parameters(), { lr: 0.01 });
  const loss = T.F.crossEntropy(model.forward(a), y);
  loss.backward();
  opt.step();
  await put('loss', loss);
  out.parameters = [];
  for (const p of model.parameters()) out.parameters.push(...Array.from(await p.data()));
  return out;
}
