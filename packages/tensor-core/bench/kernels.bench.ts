// First CPU kernel benchmarks on the active CPU path (wasm SIMD by default; TESSERA_CPU=ts for the TypeScript
// kernels): matmul 256² and 1024², the batched QKᵀ of attention (64 × 128×32 · 32×128), and conv1d B8 64→64
// L1024 k5 'same', and a transformer's first FFN layer (nn.Linear 128→512 + relu over 2048 rows, forward and
// backward) with its bias and relu in the product's epilogue against matmul + add + relu. Every answer is checked at sampled points against a float64 dot product; a naive JS triple
// loop runs beside ours as the baseline.
import { allClose, record, timeit } from '@tessera/bench-kit';
import { cpuPath, F, manualSeed, nn, randn, type Tensor, tidy } from '@tessera/tensor-core';

manualSeed(0);

function naiveMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = s;
    }
  return c;
}

/** Checks `got` [batch, m, n] at 64 sampled points against float64 dot products. */
function sampledCheck(
  got: ArrayLike<number>,
  at: (bi: number, i: number, j: number) => number,
  batch: number,
  m: number,
  n: number,
): boolean {
  const want: number[] = [];
  const have: number[] = [];
  for (let s = 0; s < 64; s++) {
    const bi = (s * 7919) % batch;
    const i = (s * 104729) % m;
    const j = (s * 1299709) % n;
    want.push(at(bi, i, j));
    have.push(got[(bi * m + i) * n + j]!);
  }
  return allClose(have, want, 1e-4, 1e-4);
}

function benchMatmul(n: number) {
  const a = randn([n, n]);
  const b = randn([n, n]);
  const A = a.dataSync() as Float32Array;
  const B = b.dataSync() as Float32Array;
  let out!: Tensor;
  const t = timeit(
    () => {
      out?.dispose();
      out = a.matmul(b);
    },
    { reps: n >= 1024 ? 3 : 7, warmup: 1 },
  );
  const ok = sampledCheck(
    out.dataSync(),
    (_b, i, j) => {
      let s = 0;
      for (let p = 0; p < n; p++) s += A[i * n + p]! * B[p * n + j]!;
      return s;
    },
    1,
    n,
    n,
  );
  const gf = (2 * n ** 3) / (t.medianMs * 1e6);
  record({
    package: 'tensor-core',
    case: `matmul ${n}²`,
    impl: `tessera cpu (${cpuPath()})`,
    unit: 'GFLOP/s',
    value: gf,
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
  });
  if (n <= 256) {
    let ref!: Float32Array;
    const tn = timeit(() => (ref = naiveMatmul(A, B, n, n, n)), { reps: 3, warmup: 1 });
    const agree = allClose(out.dataSync(), ref, 1e-4, 1e-4);
    record({
      package: 'tensor-core',
      case: `matmul ${n}²`,
      impl: 'naive JS triple loop',
      unit: 'GFLOP/s',
      value: (2 * n ** 3) / (tn.medianMs * 1e6),
      higherIsBetter: true,
      check: agree ? 'ok' : 'fail',
    });
  }
  for (const x of [a, b, out]) x.dispose();
}

function benchAttention() {
  // B16·H4 = 64 heads, T128, dh 32: q [64, 128, 32] · kᵀ [64, 32, 128]
  const q = randn([64, 128, 32]);
  const k = randn([64, 128, 32]);
  const Q = q.dataSync() as Float32Array;
  const K = k.dataSync() as Float32Array;
  let out!: Tensor;
  const t = timeit(() => {
    out?.dispose();
    out = tidy(() => q.matmul(k.transpose(-2, -1)));
  });
  const ok = sampledCheck(
    out.dataSync(),
    (b, i, j) => {
      let s = 0;
      for (let p = 0; p < 32; p++) s += Q[(b * 128 + i) * 32 + p]! * K[(b * 128 + j) * 32 + p]!;
      return s;
    },
    64,
    128,
    128,
  );
  const flops = 2 * 64 * 128 * 128 * 32;
  record({
    package: 'tensor-core',
    case: 'bmm attention 64×(128×32·32×128)',
    impl: `tessera cpu (${cpuPath()})`,
    unit: 'GFLOP/s',
    value: flops / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
  });
  for (const x of [q, k, out]) x.dispose();
}

function benchConv1d() {
  const x = randn([8, 64, 1024]);
  const w = randn([64, 64, 5], { std: 0.1 });
  const X = x.dataSync() as Float32Array;
  const W = w.dataSync() as Float32Array;
  let out!: Tensor;
  const t = timeit(
    () => {
      out?.dispose();
      out = F.conv1d(x, w, { padding: 'same' });
    },
    { reps: 5 },
  );
  const ok = sampledCheck(
    out.dataSync(),
    (n, o, l) => {
      let s = 0;
      for (let c = 0; c < 64; c++)
        for (let j = 0; j < 5; j++) {
          const p = l + j - 2;
          if (p >= 0 && p < 1024) s += X[(n * 64 + c) * 1024 + p]! * W[(o * 64 + c) * 5 + j]!;
        }
      return s;
    },
    8,
    64,
    1024,
  );
  const flops = 2 * 8 * 64 * 64 * 5 * 1024;
  record({
    package: 'tensor-core',
    case: 'conv1d B8 64→64 L1024 k5',
    impl: `tessera cpu (${cpuPath()})`,
    unit: 'GFLOP/s',
    value: flops / (t.medianMs * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
  });
  for (const v of [x, w, out]) v.dispose();
}

// nn.Linear(128, 512) + relu over [2048, 128], forward and backward: forwardAct (bias and relu in place on the
// product, relu's VJP in one kernel) against the three composed ops, alternating call by call and timed in CPU
// time (the machine is shared), checked bit for bit (same sums in the same order).
function benchLinearEpilogue() {
  const [m, k, n] = [2048, 128, 512];
  const layer = new nn.Linear(k, n);
  const x = randn([m, k]).requiresGrad_();
  const g = randn([m, n]);
  const composed = (x: Tensor) => x.matmul(layer.weight.transpose(0, 1)).add(layer.bias!).relu();
  const run = (f: (x: Tensor) => Tensor, read: boolean) =>
    tidy(() => {
      for (const p of [x, ...layer.parameters()]) p.grad = null;
      const y = f(x);
      y.backward(g);
      return read ? [y, x.grad!, layer.weight.grad!, layer.bias!.grad!].map((t) => Array.from(t.dataSync())) : [];
    });
  const same = JSON.stringify(run((x) => layer.forwardAct(x, true), true)) === JSON.stringify(run(composed, true));
  const cpu = (f: () => unknown) => {
    const c = process.cpuUsage();
    f();
    const u = process.cpuUsage(c);
    return (u.user + u.system) / 1000;
  };
  const ts: [number[], number[]] = [[], []];
  for (let i = 0; i < 25; i++) {
    ts[0].push(cpu(() => run((x) => layer.forwardAct(x, true), false)));
    ts[1].push(cpu(() => run(composed, false)));
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  for (const [impl, t] of [
    ['tessera cpu: epilogue', ts[0]],
    ['tessera cpu: composed', ts[1]],
  ] as const)
    record({
      package: 'tensor-core',
      case: 'Linear 128→512 + relu, 2048 rows, fwd+bwd',
      impl,
      unit: 'ms (CPU)',
      value: med(t),
      higherIsBetter: false,
      check: same ? 'ok' : 'fail',
      note: 'median of 25, alternating',
    });
  for (const t of [x, g]) t.dispose();
}

benchMatmul(256);
benchMatmul(1024);
benchAttention();
benchConv1d();
benchLinearEpilogue();
