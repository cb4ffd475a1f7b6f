// WebGPU kernel benchmarks on whatever adapter is present, named in every row: the matmul kernels side
// by side (register-tiled without barriers, workgroup-memory vec4 tiles, GEMV, and the per-adapter
// choice), the batched QKᵀ of attention, elementwise and reduction bandwidth, and whole training steps.
// Every answer is checked (float64 dot products at sampled points, or the CPU backend); times include
// waiting for the GPU. On software adapters (lavapipe, SwiftShader) sizes stay small: they prove
// correctness, not speed.
import { allClose, record, timeitAsync } from '@tessera/bench-kit';
import { F, manualSeed, nn, optim, randint, randn, setBackend, type Tensor, tidy } from '@tessera/tensor-core';
import { type MatmulVariant, webgpu } from '../src/backends/webgpu/index.js';

try {
  await setBackend('webgpu');
} catch (e) {
  console.log(`webgpu benchmarks skipped: ${(e as Error).message}`);
  process.exit(0);
}
const adapter = webgpu.adapter();
const soft = adapter.software;
const impl = (what: string) => `webgpu ${what}`;
const note = `${adapter.name}${soft ? ' (software)' : ''}`;
console.log(`adapter: ${note}`);
manualSeed(0);

/** `got` [batch, m, n] at 64 sampled points against float64 dot products of host copies. */
function sampled(
  got: ArrayLike<number>,
  dot: (b: number, i: number, j: number) => number,
  B: number,
  m: number,
  n: number,
) {
  const want: number[] = [];
  const have: number[] = [];
  for (let s = 0; s < 64; s++) {
    const b = (s * 7919) % B;
    const i = (s * 104729) % m;
    const j = (s * 1299709) % n;
    want.push(dot(b, i, j));
    have.push(got[(b * m + i) * n + j]!);
  }
  return allClose(have, want, 1e-3, 1e-3);
}

async function time(fn: () => Tensor, reps: number) {
  let out: Tensor | null = null;
  const t = await timeitAsync(
    async () => {
      out?.dispose();
      out = fn();
      // Kernels are lazy (fused chains, matmul epilogues): run this one now, then wait for the GPU.
      await webgpu.sync(out);
    },
    { reps, warmup: 1, minMs: 100 },
  );
  return { t, out: out! as Tensor };
}

async function benchMatmul(m: number, k: number, n: number, variant: MatmulVariant) {
  const a = randn([m, k]);
  const b = randn([k, n]);
  const A = await a.data();
  const B = await b.data();
  webgpu.setMatmulVariant(variant);
  const { t, out } = await time(() => a.matmul(b), m * n * k > 2 ** 27 ? 3 : 5);
  webgpu.setMatmulVariant('auto');
  const ok = sampled(
    await out.data(),
    (_b, i, j) => {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[i * k + p]! * B[p * n + j]!;
      return s;
    },
    1,
    m,
    n,
  );
  record({
    package: 'tensor-core',
    case: m === n && n === k ? `matmul ${n}²` : `matmul ${m}×${k}·${k}×${n}`,
    impl: impl(variant),
    unit: 'GFLOP/s',
    value: (2 * m * n * k) / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note,
  });
  for (const v of [a, b, out]) v.dispose();
}

async function benchAttention() {
  // QKᵀ of B16 H4 T128 dh32: 64 × (128×32 · 32×128), K transposed as a view.
  const q = randn([64, 128, 32]);
  const kk = randn([64, 128, 32]);
  const Q = await q.data();
  const K = await kk.data();
  const { t, out } = await time(() => q.matmul(kk.transpose(-2, -1)), 5);
  const ok = sampled(
    await out.data(),
    (b, i, j) => {
      let s = 0;
      for (let p = 0; p < 32; p++) s += Q[(b * 128 + i) * 32 + p]! * K[(b * 128 + j) * 32 + p]!;
      return s;
    },
    64,
    128,
    128,
  );
  record({
    package: 'tensor-core',
    case: 'bmm attention 64×(128×32·32×128)',
    impl: impl('auto'),
    unit: 'GFLOP/s',
    value: (2 * 64 * 128 * 128 * 32) / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note,
  });
  for (const v of [q, kk, out]) v.dispose();
}

/** Bandwidth of a memory-bound kernel: bytes read + written per second, checked against the CPU. */
async function benchBandwidth(name: string, n: number, f: (x: Tensor, y: Tensor) => Tensor, bytes: number) {
  const x = randn([n / 1024, 1024]);
  const y = randn([n / 1024, 1024]);
  const { t, out } = await time(() => f(x, y), 5);
  const got = await out.data();
  const xc = await x.to('cpu');
  const yc = await y.to('cpu');
  await setBackend('cpu');
  const want = f(xc, yc);
  const ok = allClose(got, await want.data(), 1e-4, 1e-4);
  await setBackend('webgpu');
  record({
    package: 'tensor-core',
    case: `${name} ${n / 2 ** 20}M`,
    impl: impl('kernel'),
    unit: 'GB/s',
    value: bytes / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note,
  });
  for (const v of [x, y, out, xc, yc, want]) v.dispose();
}

/** Milliseconds per training step (forward, backward, AdamW), on the GPU and on the CPU for the ratio. */
async function benchStep(
  name: string,
  make: () => nn.Module & { forward(x: Tensor): Tensor },
  data: () => [Tensor, Tensor],
  loss: (o: Tensor, y: Tensor) => Tensor,
) {
  const ms: Record<string, number> = {};
  const losses: Record<string, number> = {};
  for (const backend of ['webgpu', 'cpu'] as const) {
    await setBackend(backend);
    manualSeed(5);
    const model = make();
    const opt = new optim.AdamW(model.parameters(), { lr: 1e-3 });
    const [x, y] = data();
    let last = 0;
    const step = async () => {
      const l = tidy(() => {
        const l = loss(model.forward(x), y);
        l.backward();
        return l;
      });
      opt.step();
      opt.zeroGrad();
      last = await l.item();
      l.dispose();
    };
    const t = await timeitAsync(step, { reps: 3, warmup: 1, minMs: 100 });
    ms[backend] = t.medianMs;
    losses[backend] = last;
  }
  await setBackend('webgpu');
  record({
    package: 'tensor-core',
    case: `${name} train step`,
    impl: impl('auto'),
    unit: 'ms',
    value: ms.webgpu!,
    higherIsBetter: false,
    check: Number.isFinite(losses.webgpu) ? 'ok' : 'fail',
    note: `${note}; cpu ${ms.cpu!.toFixed(1)} ms (${(ms.cpu! / ms.webgpu!).toFixed(2)}× cpu/gpu)`,
  });
}

const sizes = soft ? [128, 256] : [256, 1024, 2048, 4096];
for (const n of sizes)
  for (const v of ['register', 'register4', 'tiled', 'auto'] as const) {
    if (v === 'tiled' && soft && n > 128) continue; // barriers are slow on CPU "GPUs"; one size shows it
    await benchMatmul(n, n, n, v);
  }
await benchMatmul(1, soft ? 256 : 4096, soft ? 256 : 4096, 'gemv');
await benchMatmul(1, soft ? 256 : 4096, soft ? 256 : 4096, 'register');
await benchAttention();
const N = soft ? 2 ** 20 : 2 ** 24;
await benchBandwidth('add', N, (x, y) => x.add(y), 12 * N);
await benchBandwidth('gelu', N, (x) => x.gelu(), 8 * N);
await benchBandwidth('sum rows', N, (x) => x.sum(1), 4 * N + 4 * (N / 1024));
await benchStep(
  'MLP 784-256-256-10 B64',
  () =>
    new nn.Sequential(
      new nn.Linear(784, 256),
      new nn.ReLU(),
      new nn.Linear(256, 256),
      new nn.ReLU(),
      new nn.Linear(256, 10),
    ),
  () => [randn([64, 784]), randint(0, 10, [64])],
  (o, y) => F.crossEntropy(o, y),
);
if (!soft)
  await benchStep(
    'transformer d128 L2 T128 B16',
    () => new nn.CausalLM({ vocabSize: 256, dModel: 128, nLayers: 2, nHeads: 4, dFF: 512, maxSeqLen: 128 }),
    () => [randint(0, 256, [16, 128]), randint(0, 256, [16, 128])],
    (o, y) => F.crossEntropy(o.reshape([-1, 256]), y.reshape([-1])),
  );
process.exit(process.exitCode ?? 0);
