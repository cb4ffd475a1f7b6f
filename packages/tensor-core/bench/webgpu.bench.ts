// WebGPU kernel benchmarks on whatever adapter is present, named in every row: the matmul kernels side
// by side (register-tiled without barriers, workgroup-memory vec4 tiles, GEMV, split-K GEMV for decode
// steps, f16 compute where the adapter has shader-f16, and the per-adapter choice), the batched QKᵀ of
// attention, the bitonic sort, elementwise and reduction bandwidth, and whole training steps. Matmul rows
// give GFLOP/s and, in the note, GB/s of their minimum traffic (operands read once, output written once).
// Every answer is checked (float64 dot products at sampled points, or the CPU backend); times include
// waiting for the GPU. On software adapters (lavapipe, SwiftShader) sizes stay small: they prove
// correctness, not speed.
import { spawnSync } from 'node:child_process';
import { allClose, type BenchRow, record as recordRow, timeitAsync } from '@tessera/bench-kit';
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

/** Our fastest checked value per case (GFLOP/s, GB/s), for the PyTorch CUDA peer's ratios at the end. */
const best = new Map<string, number>();
function record(row: BenchRow) {
  recordRow(row);
  if (row.check === 'ok' && row.value > (best.get(row.case) ?? 0)) best.set(row.case, row.value);
}

/** `got` [batch, m, n] at 64 sampled points against float64 dot products of host copies. */
function sampled(
  got: ArrayLike<number>,
  dot: (b: number, i: number, j: number) => number,
  B: number,
  m: number,
  n: number,
  tol = 1e-3,
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
  return allClose(have, want, tol, tol);
}

/**
 * Wall-clock median of `fn` (waiting for the GPU), and its mean CPU time per call after a warm-up: a
 * software adapter computes in this process's threads, so CPU time measures its work even on a machine
 * shared with other jobs, where wall-clock times mostly measure the load.
 */
async function time(fn: () => Tensor, reps: number) {
  // One call first, outside the measures: it compiles the pipelines (LLVM's work, on a software adapter).
  let out: Tensor | null = fn();
  await webgpu.sync(out);
  let calls = 0;
  const c0 = process.cpuUsage();
  const t = await timeitAsync(
    async () => {
      out?.dispose();
      out = fn();
      calls++;
      // Kernels are lazy (fused chains, matmul epilogues): run this one now, then wait for the GPU.
      await webgpu.sync(out);
    },
    { reps, warmup: 0, minMs: 100 },
  );
  const c = process.cpuUsage(c0);
  return { t, out: out! as Tensor, cpuMs: (c.user + c.system) / 1e3 / calls };
}

/** " · 12.3 GFLOP per CPU-s" on software adapters (see `time`), nothing on GPUs. */
const perCpu = (work: number, unit: string, cpuMs: number) =>
  soft ? `; ${(work / (cpuMs * 1e6)).toPrecision(3)} ${unit} per CPU-s` : '';

/**
 * `a` [m, k] · `b` [k, n] with one kernel; `weightT`: b is the transposed view of a row-major [n, k]
 * weight, as nn.Linear passes it (the decode-step GEMV's layout); `f16`: f16 compute on.
 */
async function benchMatmul(m: number, k: number, n: number, variant: MatmulVariant, weightT = false, f16 = false) {
  const a = randn([m, k]);
  const w = weightT ? randn([n, k]) : null;
  const b = w ? w.transpose(0, 1) : randn([k, n]);
  const A = await a.data();
  const B = await (await b.to('cpu')).contiguous().data();
  webgpu.setMatmulVariant(variant);
  if (f16) webgpu.setF16Compute(true);
  const { t, out, cpuMs } = await time(() => a.matmul(b), soft ? (m * n * k > 2 ** 27 ? 3 : 5) : 20);
  const ran = webgpu.lastMatmul();
  webgpu.setF16Compute(false);
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
    // f16 products: 2^-11 relative per term.
    f16 ? 2e-2 : 1e-3,
  );
  const gbs = (4 * (m * k + k * n + m * n)) / (t.medianMs * 1e6);
  record({
    package: 'tensor-core',
    case: `${m === n && n === k ? `matmul ${n}²` : `matmul ${m}×${k}·${k}×${n}`}${weightT ? ' (Wᵀ)' : ''}`,
    impl: impl(`${variant === 'auto' ? `auto→${ran}` : ran}${f16 ? ' f16' : ''}`),
    unit: 'GFLOP/s',
    value: (2 * m * n * k) / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note: `${gbs.toPrecision(3)} GB/s${perCpu(2 * m * n * k, 'GFLOP', cpuMs)}; ${note}`,
  });
  for (const v of [a, b, out, ...(w ? [w] : [])]) v.dispose();
}

/** Decode-step attention P·V: heads × ([1, T] · [T, dh]), few columns and a long K; checked against the CPU. */
async function benchDecodePV(heads: number, T: number, dh: number, variant: MatmulVariant) {
  const p = randn([heads, 1, T]).softmax(-1);
  const v = randn([heads, T, dh]);
  webgpu.setMatmulVariant(variant);
  const { t, out, cpuMs } = await time(() => p.matmul(v), 5);
  const ran = webgpu.lastMatmul();
  webgpu.setMatmulVariant('auto');
  const got = await out.data();
  const [pc, vc] = [await p.to('cpu'), await v.to('cpu')];
  await setBackend('cpu');
  const want = pc.matmul(vc);
  const ok = allClose(got, await want.data(), 1e-4, 1e-5);
  await setBackend('webgpu');
  record({
    package: 'tensor-core',
    case: `decode P·V ${heads}×(1×${T}·${T}×${dh})`,
    impl: impl(`${variant === 'auto' ? `auto→${ran}` : ran}`),
    unit: 'GFLOP/s',
    value: (2 * heads * T * dh) / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note: `${((4 * heads * (T + T * dh + dh)) / (t.medianMs * 1e6)).toPrecision(3)} GB/s${perCpu(2 * heads * T * dh, 'GFLOP', cpuMs)}; ${note}`,
  });
  for (const x of [p, v, out, pc, vc, want]) x.dispose();
}

/** Bitonic sort of `rows` lines of `len` along the last dim: indices checked against the CPU's sort. */
async function benchSort(rows: number, len: number) {
  const x = randn([rows, len]);
  const { t, out, cpuMs } = await time(() => x.sort(-1, true).indices, 3);
  const got = await out.data();
  const xc = await x.to('cpu');
  await setBackend('cpu');
  const cpuT = await timeitAsync(async () => xc.sort(-1, true).indices.dispose(), { reps: 3, warmup: 1, minMs: 100 });
  const want = xc.sort(-1, true).indices;
  const ok = allClose(got, await want.data(), 0, 0);
  await setBackend('webgpu');
  const n = rows * len;
  record({
    package: 'tensor-core',
    case: `sort ${rows}×${len} descending`,
    impl: impl('bitonic'),
    // Read once, values and indices written once.
    unit: 'GB/s',
    value: (12 * n) / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note: `${(n / (t.medianMs * 1e3)).toPrecision(3)} M elements/s${perCpu(12 * n, 'GB', cpuMs)}; cpu backend ${cpuT.medianMs.toFixed(1)} ms (${(cpuT.medianMs / t.medianMs).toFixed(2)}× cpu/gpu); ${note}`,
  });
  for (const v of [x, out, xc, want]) v.dispose();
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
// nn.Linear's layout at training sizes: x · Wᵀ with W row-major [out, in], read as it lies.
for (const n of sizes) await benchMatmul(n, n, n, 'auto', true);
// Decode steps: one token (and 4) times a transposed weight; GEMV vs split-K GEMV vs the register kernel.
const D = soft ? 1024 : 4096;
for (const m of [1, 4])
  for (const v of ['gemv', 'gemvSplitK', 'register', 'auto'] as const) await benchMatmul(m, D, D, v, true);
await benchMatmul(1, D, D, 'gemv');
await benchMatmul(1, D, D, 'gemvSplitK');
if (adapter.f16)
  for (const [m, n] of [
    [soft ? 128 : 1024, soft ? 128 : 1024],
    [1, D],
  ] as const) {
    await benchMatmul(m, n, n, 'auto', m === 1);
    await benchMatmul(m, n, n, 'auto', m === 1, true);
  }
for (const v of ['gemv', 'gemvSplitK', 'auto'] as const) await benchDecodePV(soft ? 8 : 32, soft ? 1024 : 4096, 64, v);
await benchAttention();
await benchSort(soft ? 64 : 1024, 1000);
await benchSort(1, soft ? 2 ** 16 : 2 ** 20);
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
/**
 * PyTorch on CUDA as the peer on a real GPU (a python3 subprocess, `$TESSERA_PYTHON` or `python3`): the same
 * cases in float32 with TF32 off (our kernels compute in float32), each answer checked against float64 on
 * the device, medians of 20 synchronised calls — the same "wait for the GPU" as ours. Rows give the peer's
 * value and, in the note, our fastest checked kernel's share of it. Skipped with the reason where torch or
 * CUDA is missing (software adapters never get here).
 */
function torchCudaPeer() {
  const py = `
import json, sys, time
try:
    import torch
except Exception as e:
    print(json.dumps({"skip": "torch: %s" % e})); sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"skip": "torch %s sees no CUDA device" % torch.__version__})); sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
g = torch.Generator(device=dev).manual_seed(0)
def timed(fn, reps=20):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort(); return ts[len(ts) // 2]
def relerr(got, want):
    return float((got.double() - want).abs().max() / want.abs().max())
out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
def mm(case, m, k, n, wt):
    a = torch.randn(m, k, device=dev, generator=g)
    b = torch.randn(n, k, device=dev, generator=g).t() if wt else torch.randn(k, n, device=dev, generator=g)
    ms = timed(lambda: a @ b)
    out["rows"].append({"case": case, "unit": "GFLOP/s", "value": 2 * m * n * k / (ms * 1e6), "ms": ms, "err": relerr(a @ b, a.double() @ b.double())})
for n in json.loads(sys.argv[1])["square"]: mm("matmul %d²" % n, n, n, n, False)
for n in json.loads(sys.argv[1])["square"]: mm("matmul %d² (Wᵀ)" % n, n, n, n, True)
D = json.loads(sys.argv[1])["D"]
for m in (1, 4): mm("matmul %d×%d·%d×%d (Wᵀ)" % (m, D, D, D), m, D, D, True)
p = torch.randn(32, 1, 4096, device=dev, generator=g).softmax(-1); v = torch.randn(32, 4096, 64, device=dev, generator=g)
ms = timed(lambda: p @ v)
out["rows"].append({"case": "decode P·V 32×(1×4096·4096×64)", "unit": "GFLOP/s", "value": 2 * 32 * 4096 * 64 / (ms * 1e6), "ms": ms, "err": relerr(p @ v, p.double() @ v.double())})
q = torch.randn(64, 128, 32, device=dev, generator=g); k = torch.randn(64, 128, 32, device=dev, generator=g)
ms = timed(lambda: q @ k.transpose(-2, -1))
out["rows"].append({"case": "bmm attention 64×(128×32·32×128)", "unit": "GFLOP/s", "value": 2 * 64 * 128 * 128 * 32 / (ms * 1e6), "ms": ms, "err": relerr(q @ k.transpose(-2, -1), q.double() @ k.double().transpose(-2, -1))})
N = 2 ** 24
x = torch.randn(N // 1024, 1024, device=dev, generator=g); y = torch.randn(N // 1024, 1024, device=dev, generator=g)
ms = timed(lambda: x + y)
out["rows"].append({"case": "add %dM" % (N // 2 ** 20), "unit": "GB/s", "value": 12 * N / (ms * 1e6), "ms": ms, "err": relerr(x + y, x.double() + y.double())})
print(json.dumps(out))
`;
  const python = process.env.TESSERA_PYTHON ?? 'python3';
  const r = spawnSync(python, ['-c', py, JSON.stringify({ square: sizes, D })], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0 || !r.stdout.trim()) {
    console.log(`pytorch cuda peer: skipped (${python} failed: ${(r.stderr || String(r.error)).slice(0, 200)})`);
    return;
  }
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  if (res.skip) {
    console.log(`pytorch cuda peer: skipped (${res.skip})`);
    return;
  }
  for (const row of res.rows as { case: string; unit: string; value: number; ms: number; err: number }[]) {
    const ours = best.get(row.case);
    recordRow({
      package: 'tensor-core',
      case: row.case,
      impl: `pytorch ${res.torch} cuda fp32`,
      unit: row.unit,
      value: row.value,
      higherIsBetter: true,
      // float32 against float64 on the device: the same 1e-3 relative tolerance as our sampled checks.
      check: row.err <= 1e-3 ? 'ok' : 'fail',
      note: `TF32 off; ${row.ms.toPrecision(3)} ms median of 20; ${ours === undefined ? 'no checked tessera row' : `tessera webgpu best ${(ours / row.value).toFixed(3)}× of it`}; ${res.device}`,
    });
  }
}
if (!soft) torchCudaPeer();
process.exit(process.exitCode ?? 0);
