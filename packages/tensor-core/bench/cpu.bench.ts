// The fast CPU backend against its peers, side by side in one run: matmul 256² and 1024², a decode-step GEMV
// 1×1024·(1024×1024)ᵀ, the batched QKᵀ
// of attention 64×(128×32·32×128), conv1d B8 64→64 L1024 k3/k5 'same', conv2d B8 32→32 64×64 3×3.
// Ours: the wasm SIMD128 path, the relaxed-SIMD FMA path (a child process with the flag Node 20 needs),
// the TypeScript reference path. Peers: tfjs 4.22 with tfjs-backend-wasm and tfjs-backend-cpu,
// onnxruntime-web 1.30 (wasm, 1 thread), PyTorch in a python3 subprocess when torch is installed
// (OPENBLAS_CORETYPE=Cooperlake for that subprocess only, as the research note explains).
// Every answer is checked against float64 sums at sampled output points. The machines are shared, so each
// row is a median; the headline number is GFLOP per CPU-second of this process (robust to other
// tenants for one-thread code), the note gives wall-clock GFLOP/s.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { allClose, type BenchRow, median, record } from '@tessera/bench-kit';
import { F, manualSeed, nn, noGrad, optim, randn, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { cpuPath, setCpuPath } from '../src/backends/cpu/wasm.js';
import { onnxModel } from './onnx-graph.js';

const PART = process.env.TESSERA_BENCH_PART; // 'fma': the child that runs only our relaxed-SIMD rows
const PKG = 'tensor-core';

interface Case {
  name: string;
  flops: number;
  /** inputs in our layout */
  inputs: { shape: number[]; data: Float32Array }[];
  ours: (xs: Tensor[]) => Tensor;
  /** float64 reference of output element `i` (our layout) */
  ref: (i: number) => number;
  outSize: number;
  /** tfjs: takes our inputs, returns a function producing a tensor, and maps our output index to theirs */
  tf: (tf: typeof import('@tensorflow/tfjs'), xs: Float32Array[]) => { run: () => unknown; at: (i: number) => number };
  onnx: { bytes: Uint8Array; names: string[]; feeds: (xs: Float32Array[]) => Float32Array[]; note?: string };
  torch: string;
  slow?: boolean;
  /** What `flops` counts, when not floating-point operations (elementwise rows count elements). */
  unit?: 'G elements';
}

function rnd(shape: number[], std = 1): { shape: number[]; data: Float32Array } {
  const t = randn(shape, { std });
  const data = Float32Array.from(t.dataSync());
  t.dispose();
  return { shape, data };
}

function transpose(data: Float32Array, outer: number, r: number, c: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[o * r * c + j * r + i] = data[o * r * c + i * c + j]!;
  return out;
}

function matmulCase(n: number): Case {
  const a = rnd([n, n]);
  const b = rnd([n, n]);
  return {
    name: `matmul ${n}²`,
    flops: 2 * n ** 3,
    inputs: [a, b],
    ours: ([x, y]) => x!.matmul(y!),
    ref: (i) => {
      const r = Math.floor(i / n);
      const c = i % n;
      let s = 0;
      for (let p = 0; p < n; p++) s += a.data[r * n + p]! * b.data[p * n + c]!;
      return s;
    },
    outSize: n * n,
    tf: (tf, [x, y]) => {
      const A = tf.tensor2d(x!, [n, n]);
      const B = tf.tensor2d(y!, [n, n]);
      return { run: () => tf.matMul(A, B), at: (i) => i };
    },
    onnx: {
      bytes: onnxModel(
        'MatMul',
        [
          ['a', [n, n]],
          ['b', [n, n]],
        ],
        [n, n],
      ),
      names: ['a', 'b'],
      feeds: (xs) => xs,
    },
    torch: `a=torch.randn(${n},${n}); b=torch.randn(${n},${n}); f=lambda: a@b; ref=lambda: (a.double()@b.double())`,
    slow: n >= 1024,
  };
}

/**
 * One row through a Linear weight, x [1, n] · Wᵀ with W [n, n] as nn.Linear stores it: the product of every
 * decoding step, one pass over W (ours: the gemv kernel, no packing).
 */
function gemvCase(n: number): Case {
  const x = rnd([1, n]);
  const w = rnd([n, n]);
  return {
    name: `gemv 1×${n}·(${n}×${n})ᵀ`,
    flops: 2 * n * n,
    inputs: [x, w],
    ours: ([a, b]) => a!.matmul(b!.transpose(0, 1)),
    ref: (c) => {
      let s = 0;
      for (let p = 0; p < n; p++) s += x.data[p]! * w.data[c * n + p]!;
      return s;
    },
    outSize: n,
    tf: (tf, [a, b]) => {
      const X = tf.tensor2d(a!, [1, n]);
      const W = tf.tensor2d(b!, [n, n]);
      return { run: () => tf.matMul(X, W, false, true), at: (i) => i };
    },
    onnx: {
      // ONNX MatMul has no transpose flag: Wᵀ is fed materialised.
      bytes: onnxModel(
        'MatMul',
        [
          ['x', [1, n]],
          ['wt', [n, n]],
        ],
        [1, n],
      ),
      names: ['x', 'wt'],
      feeds: ([a, b]) => [a!, transpose(b!, 1, n, n)],
      note: 'Wᵀ materialised',
    },
    torch: `a=torch.randn(1,${n}); b=torch.randn(${n},${n}); f=lambda: a@b.t(); ref=lambda: (a.double()@b.double().t())`,
  };
}

function attentionCase(): Case {
  // B16·H4 = 64 heads, T128, dh 32: q [64, 128, 32] · kᵀ; k stays [64, 128, 32] (a transposed operand).
  const q = rnd([64, 128, 32]);
  const k = rnd([64, 128, 32]);
  return {
    name: 'bmm attention 64×(128×32·32×128)',
    flops: 2 * 64 * 128 * 128 * 32,
    inputs: [q, k],
    ours: ([x, y]) => x!.matmul(y!.transpose(-2, -1)),
    ref: (i) => {
      const b = Math.floor(i / (128 * 128));
      const r = Math.floor(i / 128) % 128;
      const c = i % 128;
      let s = 0;
      for (let p = 0; p < 32; p++) s += q.data[(b * 128 + r) * 32 + p]! * k.data[(b * 128 + c) * 32 + p]!;
      return s;
    },
    outSize: 64 * 128 * 128,
    tf: (tf, [x, y]) => {
      const Q = tf.tensor3d(x!, [64, 128, 32]);
      const K = tf.tensor3d(y!, [64, 128, 32]);
      return { run: () => tf.matMul(Q, K, false, true), at: (i) => i };
    },
    onnx: {
      // ONNX MatMul has no transpose flag: kᵀ is fed materialised, which favours onnxruntime.
      bytes: onnxModel(
        'MatMul',
        [
          ['q', [64, 128, 32]],
          ['kt', [64, 32, 128]],
        ],
        [64, 128, 128],
      ),
      names: ['q', 'kt'],
      feeds: ([x, y]) => [x!, transpose(y!, 64, 128, 32)],
      note: 'kᵀ fed pre-transposed',
    },
    torch: `q=torch.randn(64,128,32); k=torch.randn(64,128,32); f=lambda: q@k.transpose(-2,-1); ref=lambda: q.double()@k.double().transpose(-2,-1)`,
  };
}

function conv1dCase(ks: number): Case {
  const [B, C, O, L] = [8, 64, 64, 1024];
  const x = rnd([B, C, L]);
  const w = rnd([O, C, ks], 0.1);
  const pad = (ks - 1) / 2;
  return {
    name: `conv1d B8 64→64 L1024 k${ks}`,
    flops: 2 * B * O * C * ks * L,
    inputs: [x, w],
    ours: ([a, b]) => F.conv1d(a!, b!, { padding: 'same' }),
    ref: (i) => {
      const n = Math.floor(i / (O * L));
      const o = Math.floor(i / L) % O;
      const l = i % L;
      let s = 0;
      for (let c = 0; c < C; c++)
        for (let j = 0; j < ks; j++) {
          const p = l + j - pad;
          if (p >= 0 && p < L) s += x.data[(n * C + c) * L + p]! * w.data[(o * C + c) * ks + j]!;
        }
      return s;
    },
    outSize: B * O * L,
    tf: (tf, [a, b]) => {
      const X = tf.tensor3d(transpose(a!, B, C, L), [B, L, C]); // NWC
      // filter [k, Cin, Cout] from [Cout, Cin, k]
      const wt = new Float32Array(ks * C * O);
      for (let o = 0; o < O; o++)
        for (let c = 0; c < C; c++) for (let j = 0; j < ks; j++) wt[(j * C + c) * O + o] = b![(o * C + c) * ks + j]!;
      const W = tf.tensor3d(wt, [ks, C, O]);
      return {
        run: () => tf.conv1d(X, W, 1, 'same'),
        at: (i) => {
          const n = Math.floor(i / (O * L));
          const o = Math.floor(i / L) % O;
          return (n * L + (i % L)) * O + o;
        },
      };
    },
    onnx: {
      bytes: onnxModel(
        'Conv',
        [
          ['x', [B, C, L]],
          ['w', [O, C, ks]],
        ],
        [B, O, L],
        [
          ['kernel_shape', [ks]],
          ['pads', [pad, pad]],
        ],
      ),
      names: ['x', 'w'],
      feeds: (xs) => xs,
    },
    torch: `x=torch.randn(${B},${C},${L}); w=torch.randn(${O},${C},${ks}); f=lambda: torch.nn.functional.conv1d(x,w,padding=${pad}); ref=lambda: torch.nn.functional.conv1d(x.double(),w.double(),padding=${pad})`,
  };
}

function conv2dCase(): Case {
  const [B, C, O, H, W] = [8, 32, 32, 64, 64];
  const x = rnd([B, C, H, W]);
  const w = rnd([O, C, 3, 3], 0.1);
  return {
    name: 'conv2d B8 32→32 64×64 3×3',
    flops: 2 * B * O * C * 9 * H * W,
    inputs: [x, w],
    ours: ([a, b]) => F.conv2d(a!, b!, { padding: 1 }),
    ref: (i) => {
      const n = Math.floor(i / (O * H * W));
      const o = Math.floor(i / (H * W)) % O;
      const h = Math.floor(i / W) % H;
      const v = i % W;
      let s = 0;
      for (let c = 0; c < C; c++)
        for (let dy = 0; dy < 3; dy++)
          for (let dx = 0; dx < 3; dx++) {
            const y = h + dy - 1;
            const z = v + dx - 1;
            if (y >= 0 && y < H && z >= 0 && z < W)
              s += x.data[((n * C + c) * H + y) * W + z]! * w.data[((o * C + c) * 3 + dy) * 3 + dx]!;
          }
      return s;
    },
    outSize: B * O * H * W,
    tf: (tf, [a, b]) => {
      const Xc = tf.tensor4d(a!, [B, C, H, W]).transpose<import('@tensorflow/tfjs').Tensor4D>([0, 2, 3, 1]); // NHWC
      const Wc = tf.tensor4d(b!, [O, C, 3, 3]).transpose<import('@tensorflow/tfjs').Tensor4D>([2, 3, 1, 0]); // [kh, kw, Cin, Cout]
      return {
        run: () => tf.conv2d(Xc, Wc, 1, 'same'),
        at: (i) => {
          const n = Math.floor(i / (O * H * W));
          const o = Math.floor(i / (H * W)) % O;
          const hw = i % (H * W);
          return (n * H * W + hw) * O + o;
        },
      };
    },
    onnx: {
      bytes: onnxModel(
        'Conv',
        [
          ['x', [B, C, H, W]],
          ['w', [O, C, 3, 3]],
        ],
        [B, O, H, W],
        [
          ['kernel_shape', [3, 3]],
          ['pads', [1, 1, 1, 1]],
        ],
      ),
      names: ['x', 'w'],
      feeds: (xs) => xs,
    },
    torch: `x=torch.randn(${B},${C},${H},${W}); w=torch.randn(${O},${C},3,3); f=lambda: torch.nn.functional.conv2d(x,w,padding=1); ref=lambda: torch.nn.functional.conv2d(x.double(),w.double(),padding=1)`,
    slow: true,
  };
}

// A full GC before each timed run (the flag is set before the first context that uses it), so that garbage
// earlier cases left is not collected by V8's helper threads, billed to the process, while the next case runs.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Times {
  wall: number;
  /** CPU time of the process per run */
  cpu: number;
}

/**
 * Medians of wall and CPU time (ms) per run over `reps` samples. Each sample times enough back-to-back runs to
 * last about 100 ms: the process CPU time that Node reads (getrusage) is not exact over a few milliseconds on
 * this machine's kernel — a 2.5 ms busy loop read anywhere from 0.5 to 8 ms — and a median of such short samples
 * is biased (it once gave attention twice its wall time in CPU time on an idle machine). Before timing: `warmup`
 * runs, then with `warmMs` more until that much time has passed (at most 50 runs), so that a fast case's new
 * code paths are compiled before the timing starts; then a GC and a short pause.
 */
async function measure(fn: () => unknown, reps: number, warmup = 1, warmMs = 0): Promise<Times> {
  const w0 = performance.now();
  let runs = 0;
  for (; runs < warmup || (runs < 50 && performance.now() - w0 < warmMs); runs++) await fn();
  const per = runs ? (performance.now() - w0) / runs : 100;
  const inner = Math.max(1, Math.min(200, Math.ceil(100 / Math.max(per, 0.01))));
  gc();
  await new Promise((r) => setTimeout(r, 50));
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let j = 0; j < inner; j++) await fn();
    const t1 = performance.now();
    const d = process.cpuUsage(c0);
    wall.push((t1 - t0) / inner);
    cpu.push((d.user + d.system) / 1000 / inner);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

/** Compares `at(i)` of the output with the float64 reference at 48 sampled points. */
function check(c: Case, get: (i: number) => number): boolean {
  const have: number[] = [];
  const want: number[] = [];
  for (let s = 0; s < 48; s++) {
    const i = (s * 2654435761) % c.outSize;
    have.push(get(i));
    want.push(c.ref(i));
  }
  return allClose(have, want, 2e-3, 2e-3);
}

const rows: BenchRow[] = [];
function emit(c: Case, impl: string, t: Times, ok: boolean, note = ''): void {
  const row: BenchRow = {
    package: PKG,
    case: c.name,
    impl,
    unit: `${c.unit ?? 'GFLOP'}/CPU-s`,
    value: c.flops / (t.cpu * 1e6),
    higherIsBetter: true,
    check: ok ? 'ok' : 'fail',
    note: `${(c.flops / (t.wall * 1e6)).toFixed(2)} ${c.unit ?? 'GFLOP'}/s wall${note ? `; ${note}` : ''}`,
  };
  if (PART === 'fma') console.log(`ROW ${JSON.stringify(row)}`);
  else {
    rows.push(row);
    record(row);
  }
}

async function ours(c: Case, impl: string): Promise<void> {
  const xs = c.inputs.map((x) => tensor(x.data).reshape(x.shape));
  let out: Tensor | undefined;
  const reps = impl.includes('ts') ? (c.slow ? 1 : 3) : c.slow ? 5 : 9;
  const t = await measure(
    () => {
      out?.dispose();
      out = tidy(() => c.ours(xs));
    },
    reps,
    impl.includes('ts') && c.slow ? 0 : 1,
    impl.includes('ts') ? 0 : 100,
  );
  const y = out!.dataSync();
  emit(
    c,
    impl,
    t,
    check(c, (i) => y[i]!),
  );
  out!.dispose();
  for (const x of xs) x.dispose();
}

async function tfjs(c: Case, backend: 'wasm' | 'cpu'): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(backend);
  await tf.ready();
  const slow = backend === 'cpu';
  const { run, at } = c.tf(
    tf,
    c.inputs.map((x) => x.data),
  );
  let out: import('@tensorflow/tfjs').Tensor | undefined;
  const t = await measure(
    () => {
      out?.dispose();
      out = run() as import('@tensorflow/tfjs').Tensor;
      out.dataSync(); // forces the computation
    },
    slow ? (c.slow ? 1 : 3) : c.slow ? 5 : 9,
    slow && c.slow ? 0 : 1,
    slow ? 0 : 100,
  );
  const y = out!.dataSync();
  emit(
    c,
    `tfjs-${backend}`,
    t,
    check(c, (i) => y[at(i)]!),
    backend === 'wasm' ? '1 thread (threads fail in Node)' : '',
  );
  tf.disposeVariables();
  tf.engine().reset();
}

async function onnx(c: Case): Promise<void> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(c.onnx.bytes, { executionProviders: ['wasm'] });
  const data = c.onnx.feeds(c.inputs.map((x) => x.data));
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  c.onnx.names.forEach((n, i) => {
    feeds[n] = new ort.Tensor('float32', data[i]!, c.inputs[i]!.shape);
  });
  if (c.name.startsWith('bmm')) feeds.kt = new ort.Tensor('float32', data[1]!, [64, 32, 128]);
  let y!: Float32Array;
  const t = await measure(
    async () => {
      const r = await session.run(feeds);
      y = r.y!.data as Float32Array;
    },
    c.slow ? 5 : 9,
    1,
    100,
  );
  emit(
    c,
    'onnxruntime-web wasm',
    t,
    check(c, (i) => y[i]!),
    `1 thread${c.onnx.note ? `; ${c.onnx.note}` : ''}`,
  );
  await session.release();
}

function torch(cases: Case[]): void {
  const py = `
import json, time, resource, sys
try:
    import torch
except ImportError:
    print(json.dumps({"missing": True})); sys.exit(0)
torch.set_num_threads(1); torch.manual_seed(0)
out = []
for name, code, flops in json.loads(sys.stdin.read()):
    env = {"torch": torch}
    exec(code, env)
    f, ref = env["f"], env["ref"]
    y = f(); ok = bool(torch.allclose(y.double(), ref(), rtol=2e-3, atol=2e-3))
    walls, cpus = [], []
    for _ in range(7):
        t0 = time.perf_counter(); c0 = time.process_time(); f(); cpus.append(time.process_time() - c0); walls.append(time.perf_counter() - t0)
    walls.sort(); cpus.sort()
    out.append({"name": name, "wall": walls[3] * 1e3, "cpu": cpus[3] * 1e3, "ok": ok, "version": torch.__version__})
print(json.dumps(out))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], {
    input: JSON.stringify(cases.map((c) => [c.name, c.torch, c.flops])),
    env: { ...process.env, OPENBLAS_CORETYPE: 'Cooperlake', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  let res: unknown;
  try {
    res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    console.log(`pytorch: skipped (python3 failed: ${(r.stderr || String(r.error)).slice(0, 200)})`);
    return;
  }
  if (!Array.isArray(res)) {
    console.log('pytorch: skipped (torch is not installed for /usr/bin/python3)');
    return;
  }
  for (const x of res as { name: string; wall: number; cpu: number; ok: boolean; version: string }[]) {
    const c = cases.find((k) => k.name === x.name)!;
    emit(c, `pytorch ${x.version} (1 thread)`, x, x.ok, 'OPENBLAS_CORETYPE=Cooperlake');
  }
}

// ---- MLP training step: 784-256-256-10, batch 64, cross-entropy, Adam (lr 1e-3), the same graph everywhere.
const MLP = { B: 64, sizes: [784, 256, 256, 10], steps: 3 };
const MLP_CASE = 'MLP train step 784-256-256-10 B64 Adam';

function mlpData(): { x: Float32Array; y: Int32Array; ws: Float32Array[] } {
  manualSeed(42);
  const { B, sizes } = MLP;
  const t = randn([B, sizes[0]!]);
  const x = Float32Array.from(t.dataSync());
  t.dispose();
  const y = Int32Array.from({ length: B }, (_, i) => (i * 7) % 10);
  const ws = sizes.slice(1).map((o, i) => {
    const w = randn([o, sizes[i]!], { std: 1 / Math.sqrt(sizes[i]!) });
    const d = Float32Array.from(w.dataSync());
    w.dispose();
    return d;
  });
  return { x, y, ws };
}

/** Our step on the current path; returns the losses of the first `MLP.steps` steps and a step function. */
function oursMlp(): { losses: number[]; step: () => number } {
  const { B, sizes } = MLP;
  const d = mlpData();
  const layers: nn.Linear[] = [];
  for (let i = 0; i < 3; i++) {
    const l = new nn.Linear(sizes[i]!, sizes[i + 1]!);
    noGrad(() => {
      l.weight.copy_(tensor(d.ws[i]!).reshape([sizes[i + 1]!, sizes[i]!]));
      l.bias!.copy_(tensor(new Float32Array(sizes[i + 1]!)));
    });
    layers.push(l);
  }
  const model = new nn.Sequential(layers[0]!, new nn.ReLU(), layers[1]!, new nn.ReLU(), layers[2]!);
  const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
  const x = tensor(d.x).reshape([B, sizes[0]!]);
  const y = tensor(d.y, { dtype: 'int32' });
  const step = () => {
    const loss = tidy(() => {
      const l = F.crossEntropy(model.forward(x), y);
      opt.zeroGrad();
      l.backward();
      return l.itemSync();
    });
    opt.step();
    return loss;
  };
  const losses: number[] = [];
  for (let i = 0; i < MLP.steps; i++) losses.push(step());
  return { losses, step };
}

async function tfjsMlp(backend: 'wasm' | 'cpu'): Promise<{ losses: number[]; step: () => number }> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(backend);
  await tf.ready();
  const { B, sizes } = MLP;
  const d = mlpData();
  const x = tf.tensor2d(d.x, [B, sizes[0]!]);
  const y = tf.oneHot(tf.tensor1d(d.y, 'int32'), 10);
  // tfjs wants [in, out] weights: ours are [out, in].
  const ws = d.ws.map((w, i) => tf.variable(tf.tensor2d(w, [sizes[i + 1]!, sizes[i]!]).transpose()));
  const bs = sizes.slice(1).map((o) => tf.variable(tf.zeros([o])));
  const opt = tf.train.adam(1e-3);
  const step = () => {
    const loss = opt.minimize(
      () => {
        let h: import('@tensorflow/tfjs').Tensor = x;
        for (let i = 0; i < 3; i++) {
          h = tf.add(tf.matMul(h, ws[i]!), bs[i]!);
          if (i < 2) h = tf.relu(h);
        }
        return tf.losses.softmaxCrossEntropy(y, h) as import('@tensorflow/tfjs').Scalar;
      },
      true,
      [...ws, ...bs],
    )!;
    const v = loss.dataSync()[0]!;
    loss.dispose();
    return v;
  };
  const losses: number[] = [];
  for (let i = 0; i < MLP.steps; i++) losses.push(step());
  return { losses, step };
}

function emitRow(row: BenchRow): void {
  if (PART === 'fma') console.log(`ROW ${JSON.stringify(row)}`);
  else {
    rows.push(row);
    record(row);
  }
}

let refLosses: number[] | undefined;
async function benchMlp(impl: string, make: () => Promise<{ losses: number[]; step: () => number }>): Promise<void> {
  const { losses, step } = await make();
  // The answer check: the first steps' losses match our TypeScript path (float32 tolerance), and fall.
  const ok =
    losses.every(Number.isFinite) &&
    losses[losses.length - 1]! < losses[0]! &&
    (!refLosses || allClose(losses, refLosses, 1e-3, 1e-3));
  const t = await measure(step, impl.startsWith('tfjs-cpu') || impl.endsWith(' ts') ? 3 : 9, 1);
  emitRow({
    package: PKG,
    case: MLP_CASE,
    impl,
    unit: 'ms/step (CPU)',
    value: t.cpu,
    higherIsBetter: false,
    check: ok ? 'ok' : 'fail',
    note: `${t.wall.toFixed(1)} ms wall; losses ${losses.map((l) => l.toFixed(4)).join(' ')}`,
  });
}

function torchMlp(): void {
  const py = `
import json, time, sys
try:
    import torch
except ImportError:
    print(json.dumps({"missing": True})); sys.exit(0)
torch.set_num_threads(1); torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(784,256), torch.nn.ReLU(), torch.nn.Linear(256,256), torch.nn.ReLU(), torch.nn.Linear(256,10))
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
x = torch.randn(64,784); y = torch.arange(64) * 7 % 10
def step():
    opt.zero_grad(); l = torch.nn.functional.cross_entropy(m(x), y); l.backward(); opt.step(); return l.item()
losses = [step() for _ in range(3)]
walls, cpus = [], []
for _ in range(15):
    t0 = time.perf_counter(); c0 = time.process_time(); step(); cpus.append(time.process_time() - c0); walls.append(time.perf_counter() - t0)
walls.sort(); cpus.sort()
print(json.dumps({"wall": walls[7] * 1e3, "cpu": cpus[7] * 1e3, "ok": losses[-1] < losses[0], "version": torch.__version__}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], {
    env: { ...process.env, OPENBLAS_CORETYPE: 'Cooperlake', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  let x: { missing?: boolean; wall: number; cpu: number; ok: boolean; version: string };
  try {
    x = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    console.log(`pytorch MLP: skipped (${(r.stderr || String(r.error)).slice(0, 200)})`);
    return;
  }
  if (x.missing) console.log('pytorch MLP: skipped (torch is not installed for /usr/bin/python3)');
  else
    emitRow({
      package: PKG,
      case: MLP_CASE,
      impl: `pytorch ${x.version} (1 thread)`,
      unit: 'ms/step (CPU)',
      value: x.cpu,
      higherIsBetter: false,
      check: x.ok ? 'ok' : 'fail',
      note: `${x.wall.toFixed(1)} ms wall; OPENBLAS_CORETYPE=Cooperlake`,
    });
}

// 2 threads vs 1 on matmul 1024² is bench/threads.bench.ts (wall and CPU time, load, others' CPU).

// ---- Transformer training step: 2 pre-LN blocks, d128, 4 heads, T128, B16, FFN 512 ReLU, vocab 256, causal,
// learned positions, LM head without bias, cross-entropy; AdamW (tfjs has no AdamW: Adam there). 6.0 GFLOP/step.
const TR_CASE = 'transformer train step d128 L2 T128 B16';

function trIds(): { ids: Int32Array; tgt: Int32Array } {
  const ids = Int32Array.from({ length: 16 * 128 }, (_, i) => (i * 31 + 7) % 256);
  const tgt = Int32Array.from({ length: 16 * 128 }, (_, i) => (i * 17 + 3) % 256);
  return { ids, tgt };
}

function oursTransformer(): { losses: number[]; step: () => number } {
  manualSeed(5);
  const model = new nn.CausalLM({
    vocabSize: 256,
    dModel: 128,
    nLayers: 2,
    nHeads: 4,
    dFF: 512,
    maxSeqLen: 128,
    positions: 'learned',
    activation: 'relu',
  });
  const opt = new optim.AdamW(model.parameters(), { lr: 1e-3 });
  const d = trIds();
  const ids = tensor(d.ids, { dtype: 'int32' }).reshape([16, 128]);
  const tgt = tensor(d.tgt, { dtype: 'int32' });
  const step = () => {
    const l = tidy(() => {
      const loss = F.crossEntropy(model.forward(ids).reshape([-1, 256]), tgt);
      opt.zeroGrad();
      loss.backward();
      return loss.itemSync();
    });
    opt.step();
    return l;
  };
  return { losses: [step(), step()], step };
}

async function tfjsTransformer(): Promise<{ losses: number[]; step: () => number }> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  type T = import('@tensorflow/tfjs').Tensor;
  const [B, S, D, H, Dh, FF, V] = [16, 128, 128, 4, 32, 512, 256];
  const w = (shape: number[], std: number) => tf.variable(tf.randomNormal(shape, 0, std, 'float32', 5));
  const ones = (n: number) => tf.variable(tf.ones([n]));
  const zeros = (n: number) => tf.variable(tf.zeros([n]));
  const tok = w([V, D], 0.02);
  const pos = w([S, D], 0.01);
  const blocks = [0, 1].map(() => ({
    g1: ones(D),
    b1: zeros(D),
    wqkv: w([D, 3 * D], 1 / Math.sqrt(D)),
    bqkv: zeros(3 * D),
    wo: w([D, D], 1 / Math.sqrt(D)),
    bo: zeros(D),
    g2: ones(D),
    b2: zeros(D),
    w1: w([D, FF], 1 / Math.sqrt(D)),
    c1: zeros(FF),
    w2: w([FF, D], 1 / Math.sqrt(FF)),
    c2: zeros(D),
  }));
  const gf = ones(D);
  const bf = zeros(D);
  const head = w([D, V], 1 / Math.sqrt(D));
  const vars = [tok, pos, gf, bf, head, ...blocks.flatMap((b) => Object.values(b))];
  const d = trIds();
  const idsHot = tf.oneHot(tf.tensor1d(d.ids, 'int32'), V).toFloat();
  const onehot = tf.oneHot(tf.tensor1d(d.tgt, 'int32'), V);
  const mask = tf.linalg
    .bandPart(tf.ones([S, S]), -1, 0)
    .sub(1)
    .mul(1e9); // 0 on/below the diagonal, -1e9 above
  const ln = (x: T, g: T, b: T) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).div(variance.add(1e-5).sqrt()).mul(g).add(b);
  };
  const heads = (x: T) => x.reshape([B, S, H, Dh]).transpose([0, 2, 1, 3]);
  const opt = tf.train.adam(1e-3);
  const step = () => {
    const loss = opt.minimize(
      () => {
        // one-hot matmul: tfjs-wasm has no UnsortedSegmentSum, the gradient of gather
        let h: T = tf.matMul(idsHot, tok).reshape([B, S, D]).add(pos);
        for (const p of blocks) {
          const x = ln(h, p.g1, p.b1).reshape([B * S, D]);
          const [q, k, v] = tf.split(tf.matMul(x, p.wqkv).add(p.bqkv), 3, -1) as [T, T, T];
          const att = tf.softmax(tf.matMul(heads(q!), heads(k!), false, true).div(Math.sqrt(Dh)).add(mask));
          const o = tf
            .matMul(att, heads(v!))
            .transpose([0, 2, 1, 3])
            .reshape([B * S, D]);
          h = h.add(tf.matMul(o, p.wo).add(p.bo).reshape([B, S, D]));
          const y = ln(h, p.g2, p.b2).reshape([B * S, D]);
          const f = tf.matMul(tf.relu(tf.matMul(y, p.w1).add(p.c1)), p.w2).add(p.c2);
          h = h.add(f.reshape([B, S, D]));
        }
        const logits = tf.matMul(ln(h, gf, bf).reshape([B * S, D]), head);
        return tf.losses.softmaxCrossEntropy(onehot, logits) as import('@tensorflow/tfjs').Scalar;
      },
      true,
      vars,
    )!;
    const v = loss.dataSync()[0]!;
    loss.dispose();
    return v;
  };
  return { losses: [step(), step()], step };
}

// Every implementation of the transformer step is timed the same way, so the ratios compare steady steps: the
// first TR_WARM steps are untimed (the first two give the checked losses; a fresh process's early steps run
// 10–30 % slower while V8 compiles and the arenas grow), then the median of TR_TIMED steps, each timed on its own
// (a step lasts ≥ 100 ms, long enough for getrusage), ours and tfjs-wasm alternating step by step. tfjs-wasm's step takes ~3 s of CPU, so its 10 steps set the
// case's run time: ≈ 38 s of CPU for the whole case (all four implementations), 1.5–2 min wall at load 7–13.
const TR_WARM = 3;
const TR_TIMED = 7;

async function benchTransformer(impls: [string, () => Promise<{ losses: number[]; step: () => number }>][]) {
  const runs: {
    impl: string;
    losses: number[];
    step: () => number;
    ok: boolean;
    wall: number[];
    cpu: number[];
  }[] = [];
  for (const [impl, make] of impls) {
    const { losses, step } = await make();
    const ok = losses.every(Number.isFinite) && Math.abs(losses[0]! - Math.log(256)) < 1 && losses[1]! < losses[0]!;
    for (let i = losses.length; i < TR_WARM; i++) step();
    runs.push({ impl, losses, step, ok, wall: [], cpu: [] });
  }
  gc();
  await new Promise((r) => setTimeout(r, 50));
  // The implementations' steps alternate, so the load of the shared machine (which changes CPU time too: the
  // other hyperthread of the core) falls on all of them alike; the ratio of each round's steps is then robust.
  for (let i = 0; i < TR_TIMED; i++)
    for (const r of runs) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      r.step();
      r.wall.push(performance.now() - t0);
      const d = process.cpuUsage(c0);
      r.cpu.push((d.user + d.system) / 1000);
    }
  for (const r of runs) {
    const paired =
      r === runs[0] || runs.length < 2
        ? ''
        : `; per round ÷ ${runs[0]!.impl}: median ${median(r.cpu.map((c, i) => c / runs[0]!.cpu[i]!)).toFixed(2)}× ` +
          `(${r.cpu.map((c, i) => (c / runs[0]!.cpu[i]!).toFixed(1)).join(' ')})`;
    emitRow({
      package: PKG,
      case: TR_CASE,
      impl: r.impl,
      unit: 'ms/step (CPU)',
      value: median(r.cpu),
      higherIsBetter: false,
      check: r.ok ? 'ok' : 'fail',
      note:
        `median of ${TR_TIMED} steps after ${TR_WARM} (CPU ${r.cpu.map((c) => c.toFixed(0)).join(' ')}); ` +
        `${median(r.wall).toFixed(0)} ms wall; losses ${r.losses.map((l) => l.toFixed(4)).join(' ')}${paired}`,
    });
  }
}

function torchTransformer(): void {
  const py = `
import json, time, sys, math
try:
    import torch
except ImportError:
    print(json.dumps({"missing": True})); sys.exit(0)
torch.set_num_threads(1); torch.manual_seed(0)
B, S, D, H, FF, V = 16, 128, 128, 4, 512, 256
WARM, TIMED = ${TR_WARM}, ${TR_TIMED}
class Block(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.n1 = torch.nn.LayerNorm(D); s.qkv = torch.nn.Linear(D, 3*D); s.o = torch.nn.Linear(D, D)
        s.n2 = torch.nn.LayerNorm(D); s.f1 = torch.nn.Linear(D, FF); s.f2 = torch.nn.Linear(FF, D)
    def forward(s, h, mask):
        q, k, v = s.qkv(s.n1(h)).view(B, S, 3, H, D // H).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // H) + mask, -1)
        h = h + s.o((a @ v).transpose(1, 2).reshape(B, S, D))
        return h + s.f2(torch.relu(s.f1(s.n2(h))))
tok = torch.nn.Embedding(V, D); pos = torch.nn.Embedding(S, D); blocks = torch.nn.ModuleList([Block(), Block()])
nf = torch.nn.LayerNorm(D); head = torch.nn.Linear(D, V, bias=False)
params = [p for m in (tok, pos, blocks, nf, head) for p in m.parameters()]
opt = torch.optim.AdamW(params, lr=1e-3)
ids = (torch.arange(B * S) * 31 + 7) % 256; tgt = (torch.arange(B * S) * 17 + 3) % 256; ids = ids.view(B, S)
mask = torch.triu(torch.full((S, S), float('-inf')), 1)
def step():
    h = tok(ids) + pos.weight
    for b in blocks: h = b(h, mask)
    l = torch.nn.functional.cross_entropy(head(nf(h)).view(-1, V), tgt)
    opt.zero_grad(); l.backward(); opt.step(); return l.item()
losses = [step(), step()]
for _ in range(WARM - 2): step()
walls, cpus = [], []
for _ in range(TIMED):
    t0 = time.perf_counter(); c0 = time.process_time(); step(); cpus.append(time.process_time() - c0); walls.append(time.perf_counter() - t0)
steps = [round(c * 1e3) for c in cpus]; walls.sort(); cpus.sort()
print(json.dumps({"wall": walls[TIMED // 2] * 1e3, "cpu": cpus[TIMED // 2] * 1e3, "steps": steps, "losses": losses, "version": torch.__version__}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], {
    env: { ...process.env, OPENBLAS_CORETYPE: 'Cooperlake', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  let x: { missing?: boolean; wall: number; cpu: number; steps: number[]; losses: number[]; version: string };
  try {
    x = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    console.log(`pytorch transformer: skipped (${(r.stderr || String(r.error)).slice(0, 200)})`);
    return;
  }
  if (x.missing) {
    console.log('pytorch transformer: skipped (torch is not installed for /usr/bin/python3)');
    return;
  }
  const ok = Math.abs(x.losses[0]! - Math.log(256)) < 0.5 && x.losses[1]! < x.losses[0]!;
  emitRow({
    package: PKG,
    case: TR_CASE,
    impl: `pytorch ${x.version} (1 thread)`,
    unit: 'ms/step (CPU)',
    value: x.cpu,
    higherIsBetter: false,
    check: ok ? 'ok' : 'fail',
    note:
      `median of ${TR_TIMED} steps after ${TR_WARM} (CPU ${x.steps.join(' ')}); ${x.wall.toFixed(0)} ms wall; ` +
      `OPENBLAS_CORETYPE=Cooperlake; losses ${x.losses.map((l) => l.toFixed(4)).join(' ')}`,
  });
}

/**
 * Exact (erf) GELU over 1024 × 1024 elements, forward: the activation of every default transformer block. tfjs
 * has no GELU op, so its row composes 0.5·x·(1 + erf(x/√2)); onnxruntime runs ONNX's Gelu (opset 20).
 */
function geluCase(): Case {
  const n = 1024;
  const x = rnd([n, n], 2);
  const erf = (v: number) => {
    // float64 erf by its Maclaurin series (|v| < 3 here almost surely) or 1 beyond.
    if (Math.abs(v) > 5) return Math.sign(v);
    let term = v;
    let sum = v;
    for (let k = 1; k < 200 && Math.abs(term) > 1e-17; k++) {
      term *= (-v * v) / k;
      sum += term / (2 * k + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  return {
    name: `gelu ${n}×${n}`,
    unit: 'G elements',
    flops: n * n,
    inputs: [x],
    ours: ([a]) => a!.gelu(),
    ref: (i) => 0.5 * x.data[i]! * (1 + erf(x.data[i]! / Math.SQRT2)),
    outSize: n * n,
    tf: (tf, [a]) => {
      const A = tf.tensor2d(a!, [n, n]);
      return { run: () => tf.tidy(() => A.mul(0.5).mul(tf.erf(A.mul(Math.SQRT1_2)).add(1))), at: (i) => i };
    },
    onnx: {
      bytes: onnxModel('Gelu', [['x', [n, n]]], [n, n], [], 20),
      names: ['x'],
      feeds: (xs) => xs,
    },
    torch: `a=torch.randn(${n},${n})*2; f=lambda: torch.nn.functional.gelu(a); ref=lambda: torch.nn.functional.gelu(a.double())`,
  };
}

manualSeed(0);
const cases = [
  matmulCase(256),
  matmulCase(1024),
  gemvCase(1024),
  attentionCase(),
  conv1dCase(3),
  conv1dCase(5),
  conv2dCase(),
  geluCase(),
];

// TESSERA_BENCH_ONLY=<substring of a case name> runs only the matching cases (e.g. 'conv', 'transformer').
const ONLY = process.env.TESSERA_BENCH_ONLY;
const want = (name: string) => !ONLY || name.includes(ONLY);
const selected = cases.filter((c) => want(c.name));

if (PART === 'fma') {
  if (cpuPath() === 'wasm-fma') {
    for (const c of selected) await ours(c, 'tessera wasm+fma');
    if (want(MLP_CASE)) await benchMlp('tessera wasm+fma', async () => oursMlp());
    if (want(TR_CASE)) await benchTransformer([['tessera wasm+fma', async () => oursTransformer()]]);
  } else console.log('relaxed SIMD does not validate here; no FMA rows');
} else {
  const path = cpuPath();
  const label = path === 'wasm-fma' ? 'tessera wasm+fma' : 'tessera wasm';
  for (const c of selected) {
    await ours(c, label);
    setCpuPath('ts');
    await ours(c, 'tessera ts');
    setCpuPath('auto');
    await tfjs(c, 'wasm');
    await tfjs(c, 'cpu');
    await onnx(c);
  }
  if (selected.length) torch(selected);
  if (want(MLP_CASE)) {
    setCpuPath('ts');
    refLosses = oursMlp().losses;
    await benchMlp('tessera ts', async () => oursMlp());
    setCpuPath('auto');
    await benchMlp(label, async () => oursMlp());
    await benchMlp('tfjs-wasm', () => tfjsMlp('wasm'));
    await benchMlp('tfjs-cpu', () => tfjsMlp('cpu'));
    torchMlp();
  }
  if (want(TR_CASE)) {
    // (tfjs-cpu and our TypeScript path take 5–30 s per step here: left out to keep the run short.)
    await benchTransformer([
      [label, async () => oursTransformer()],
      ['tfjs-wasm', tfjsTransformer],
    ]);
    torchTransformer();
  }
  if (path !== 'wasm-fma') {
    // Node 20 validates relaxed SIMD only behind a flag: the FMA rows come from a child process with it.
    const r = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', ...process.execArgv, fileURLToPath(import.meta.url)],
      { env: { ...process.env, TESSERA_BENCH_PART: 'fma', TESSERA_BENCH_OUT: '' }, encoding: 'utf8', timeout: 240_000 },
    );
    for (const line of r.stdout.split('\n'))
      if (line.startsWith('ROW ')) {
        const row = JSON.parse(line.slice(4)) as BenchRow;
        rows.push(row);
        record(row);
      } else if (line.trim()) console.log(line);
    if (r.status !== 0) console.log(`fma child failed: ${r.stderr.slice(0, 400)}`);
  }
  // Ratios: ours ÷ each peer, per case.
  console.log('\nours ÷ peer (GFLOP per CPU-second; > 1 means ours is faster)');
  for (const name of [...cases.map((c) => c.name), MLP_CASE, TR_CASE]) {
    const mine = rows.filter((r) => r.case === name && r.impl.startsWith('tessera wasm'));
    const peers = rows.filter((r) => r.case === name && !r.impl.startsWith('tessera'));
    if (!mine.length || !peers.length) continue;
    const ratio = (m: BenchRow, p: BenchRow) => (m.higherIsBetter ? m.value / p.value : p.value / m.value);
    const parts = peers.map(
      (p) =>
        `${p.impl}: ${mine.map((m) => `${ratio(m, p).toFixed(2)}×${m.impl.endsWith('fma') ? ' (fma)' : ''}`).join(' / ')}`,
    );
    console.log(`${name.padEnd(34)} ${parts.join('  ')}`);
  }
}
