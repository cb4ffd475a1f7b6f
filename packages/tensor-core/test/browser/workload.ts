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
  // A line longer than the bitonic sort's workgroup tile (global merge steps), with ties; argsort, topk.
  const long = T.randint(0, 50, [2, 2500]).float();
  const sorted = long.sort(-1, true);
  await put('sort long values', sorted.values);
  await put('sort long indices', sorted.indices);
  await put('argsort', T.argsort(a, 0));
  await put('topk', a.topk(3, 1).indices);
  // A decode-step product: one row times a transposed weight with a long, odd K; bias and SiLU fused.
  const wd = T.randn([7, 301]);
  await put(
    'gemv',
    T.randn([1, 301])
      .matmul(wd.transpose(0, 1))
      .add(T.randn([7]))
      .silu(),
  );
  await put('argmax', a.argmax(1));
  await put('where', a.where(a.gt(0).logicalNot(), a.mul(-2)));
  await put('conv1d', T.F.conv1d(T.randn([2, 3, 10]), T.randn([4, 3, 3]), { padding: 1 }));
  await put('embedding', T.F.embedding(T.tensor([3, 0, 3], { dtype: 'int32' }), T.randn([4, 5])));

  const y = T.tensor([0, 2, 1, 1, 0], { dtype: 'int32' });
  const w = T.randn([8, 3], { requiresGrad: true });
  T.F.crossEntropy(a.matmul(w).tanh(), y).backward();
  await put('gradient', w.grad!);
  // Linear + activation while autograd records (one matmul dispatch storing the pre-activation too).
  const lw = T.randn([8, 4], { requiresGrad: true });
  const lb = T.randn([4], { requiresGrad: true });
  a.matmul(lw)
    .add(lb)
    .silu()
    .mul(T.randn([5, 4]))
    .sum()
    .backward();
  await put('linear silu grad w', lw.grad!);
  await put('linear silu grad b', lb.grad!);

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

/** One row of the conformance table as the browser sees it (test/conformance/cases.ts, compiled). */
interface Row {
  name: string;
  inputs: { shape: number[]; kind?: string; int?: [number, number]; grad?: boolean }[];
  run: (...xs: TC.Tensor[]) => TC.Tensor;
  ref: (...xs: never[]) => { shape: readonly number[]; data: Float64Array; size: number };
  tol?: number;
  gradTol?: number;
  noGrad?: boolean;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every `every`-th row of the table on `backend`: forward against the float64 reference and gradients
 * against central differences of it (the conformance runner's method, compacted). Returns failures.
 */
export async function tableSubset(
  T: typeof TC,
  rows: readonly Row[],
  Nd: new (shape: number[], data: Float64Array) => unknown,
  backend: 'cpu' | 'webgpu',
  every: number,
): Promise<{ ran: string[]; failures: string[] }> {
  await T.setBackend(backend);
  const ran: string[] = [];
  const failures: string[] = [];
  const close = (g: ArrayLike<number>, w: ArrayLike<number>, tol: number) => {
    for (let i = 0; i < w.length; i++)
      if (Number.isNaN(w[i]!) ? !Number.isNaN(g[i]!) : !(Math.abs(g[i]! - w[i]!) <= tol + tol * Math.abs(w[i]!)))
        return `element ${i}: got ${g[i]}, want ${w[i]}`;
    return g.length === w.length ? null : `length ${g.length} vs ${w.length}`;
  };
  for (let ci = 0; ci < rows.length; ci += every) {
    const c = rows[ci]!;
    ran.push(c.name);
    const r = rng(1000 + ci);
    const dtypes = c.inputs.map((i) => (i.kind === 'int' ? 'int32' : i.kind === 'bool' ? 'bool' : 'float32'));
    const data = c.inputs.map((inp) => {
      const n = inp.shape.reduce((a, b) => a * b, 1);
      const d = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const u = r();
        const k = inp.kind ?? 'float';
        const v =
          k === 'positive'
            ? 0.2 + u * 2
            : k === 'unit'
              ? 0.05 + u * 0.9
              : k === 'away'
                ? (0.3 + u * 1.7) * (r() < 0.5 ? -1 : 1)
                : k === 'int'
                  ? inp.int![0] + Math.floor(u * (inp.int![1] - inp.int![0]))
                  : k === 'bool'
                    ? Number(u < 0.5)
                    : (u - 0.5) * 4;
        d[i] = Math.fround(v);
      }
      if (inp.kind === 'distinct') {
        const order = Array.from(d.keys()).sort((a, b) => d[a]! - d[b]!);
        order.forEach((idx, rank) => {
          d[idx] = Math.fround(-2 + (4 * rank) / Math.max(1, n - 1) + (r() - 0.5) * 0.01);
        });
      }
      return d;
    });
    const grads = c.inputs.map((inp, k) => !c.noGrad && inp.grad !== false && dtypes[k] === 'float32');
    const ts = data.map((d, k) =>
      T.tensor(d, { shape: c.inputs[k]!.shape, dtype: dtypes[k] as 'float32', requiresGrad: grads[k] }),
    );
    const nds = () => data.map((d, k) => new Nd([...c.inputs[k]!.shape], d.slice()) as never);
    try {
      const y = c.run(...ts);
      const want = c.ref(...nds());
      const err = close(await y.data(), want.data, c.tol ?? 2e-5);
      if (err) failures.push(`${c.name} forward: ${err}`);
      if (grads.some((g) => g)) {
        const cot = Float64Array.from(want.data, () => Math.fround(r() - 0.5));
        y.mul(T.tensor(cot, { shape: [...want.shape] }))
          .sum()
          .backward();
        for (let k = 0; k < ts.length; k++) {
          if (!grads[k]) continue;
          const x = data[k]!;
          const fd = new Float64Array(x.length);
          for (let j = 0; j < x.length; j++) {
            const h = 1e-6 * Math.max(1, Math.abs(x[j]!));
            const at = (delta: number) => {
              const xs = nds();
              (xs[k] as unknown as { data: Float64Array }).data[j]! += delta;
              const o = c.ref(...xs);
              let s = 0;
              for (let i = 0; i < o.size; i++) s += o.data[i]! * cot[i]!;
              return s;
            };
            fd[j] = (at(h) - at(-h)) / (2 * h);
          }
          const gerr = close(await ts[k]!.grad!.data(), fd, c.gradTol ?? 2e-3);
          if (gerr) failures.push(`${c.name} gradient of input ${k}: ${gerr}`);
        }
      }
    } catch (e) {
      failures.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  return { ran, failures };
}
