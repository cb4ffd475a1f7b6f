// Training-step benchmarks: the MLP step (784-256-256-10, batch 64, cross-entropy, Adam) and the 2-layer pre-LN
// transformer step (d 128, 4 heads, T 128, B 16, FFN 512 ReLU, vocab 256, learned positions, AdamW). Ours runs on
// the CPU backend's fastest path (WASM SIMD where it loads) and on the TypeScript kernels. The same graphs run in
// @tensorflow/tfjs 4.22 on tfjs-backend-cpu and tfjs-backend-wasm (1 thread: its threaded build cannot start in
// Node), with the same initial weights and batch. Every implementation trains from the same state on one fixed
// batch. The checks:
// - the first-step loss equals a float64 forward pass in plain JS (MLP) or tfjs's (transformer);
// - the second-step loss (after one optimizer update) equals ours across implementations (where two steps run);
// - the loss decreases over the steps each implementation takes.
// Medians of a few steps; tfjs-cpu's transformer step takes ~30 s, so it gets one timed step.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { median, record, type Timing, timeit } from '@tessera/bench-kit';
import { F, manualSeed, nn, optim, randint, randn, type Tensor, tidy } from '@tessera/tensor-core';
import { cpuPath, setCpuPath } from '../src/backends/cpu/wasm.js';

const PKG = 'tensor-core';
const host = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);
const ints = (t: Tensor) => Int32Array.from(t.dataSync() as Int32Array);

interface Run {
  impl: string;
  timing: Timing;
  /** Median CPU time of the timed steps (robust to other load on a shared machine; every impl is 1 thread). */
  cpuMs: number;
  /** Losses of every step taken, in order (warm-up included). */
  losses: number[];
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
}

/**
 * Rows for every run: time per step, with the CPU time and the ratio to ours in the note. Checks: the first loss
 * against `firstRef`; the second loss (after one update) against ours; the loss decreases. The last two need at
 * least two steps.
 */
function report(name: string, runs: Run[], firstRef: { value: number; what: string }, tol: number): void {
  const ours = runs[0]!;
  for (const r of runs) {
    const [first, second] = r.losses as [number, number | undefined];
    const last = r.losses[r.losses.length - 1]!;
    const okFirst = rel(first, firstRef.value) < tol;
    const okSecond = second === undefined || rel(second, ours.losses[1]!) < 10 * tol;
    const okDecrease = r.losses.length < 2 || last < first;
    const ratio =
      r === ours
        ? ''
        : `; ${(r.timing.medianMs / ours.timing.medianMs).toFixed(1)}× ours wall, ${(r.cpuMs / ours.cpuMs).toFixed(1)}× CPU`;
    const vsSecond = second === undefined ? '' : `, second vs ours ${rel(second, ours.losses[1]!).toExponential(1)}`;
    record({
      package: PKG,
      case: name,
      impl: r.impl,
      unit: 'ms/step',
      value: r.timing.medianMs,
      higherIsBetter: false,
      check: okFirst && okSecond && okDecrease ? 'ok' : 'fail',
      note:
        `median of ${r.timing.reps}, CPU ${r.cpuMs.toFixed(0)} ms${ratio}; loss ${first.toFixed(5)} → ${last.toFixed(5)} ` +
        `in ${r.losses.length} steps (first vs ${firstRef.what} ${rel(first, firstRef.value).toExponential(1)}${vsSecond})`,
    });
  }
}

/** Runs `step` (which returns the loss) warmup + reps times, keeping every loss and each step's CPU time. */
function timeSteps(impl: string, step: () => number, reps: number, warmup: number): Run {
  const losses: number[] = [];
  const cpu: number[] = [];
  const timing = timeit(
    () => {
      const c0 = process.cpuUsage();
      losses.push(step());
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    },
    { reps, warmup, minMs: 0 },
  );
  return { impl, timing, cpuMs: median(cpu.slice(warmup)), losses };
}

// ------------------------------------------------------------------ tfjs setup
const require = createRequire(import.meta.url);
setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);

async function useTf(backend: 'cpu' | 'wasm'): Promise<void> {
  await tf.setBackend(backend);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`tfjs backend ${backend} did not start`);
}

/** A Linear weight [out, in] of ours as a tfjs variable [in, out] (tfjs's own layout, its fastest matmul). */
const tfLinear = (w: Tensor) => tf.variable(tf.tensor2d(host(w), w.shape as [number, number]).transpose());
const tfVec = (t: Tensor) => tf.variable(tf.tensor(host(t), [...t.shape]));

/** AdamW for tfjs (it has none): decoupled decay first, then Adam on the gradients of the undecayed weights. */
function tfAdamWStep(opt: tf.AdamOptimizer, vars: tf.Variable[], lr: number, wd: number, loss: () => tf.Scalar) {
  const { value, grads } = tf.variableGrads(loss, vars);
  tf.tidy(() => {
    for (const v of vars) v.assign(v.mul(1 - lr * wd));
  });
  opt.applyGradients(grads as unknown as Record<string, tf.Variable>);
  const l = value.dataSync()[0]!;
  value.dispose();
  tf.dispose(grads);
  return l;
}

// ------------------------------------------------------------------ MLP
async function benchMlp(): Promise<void> {
  const name = 'train step MLP 784-256-256-10 B64 Adam';
  const [B, D, H, C] = [64, 784, 256, 10];
  const lr = 1e-3;
  manualSeed(0);
  const init = new nn.Sequential(
    new nn.Linear(D, H),
    new nn.ReLU(),
    new nn.Linear(H, H),
    new nn.ReLU(),
    new nn.Linear(H, C),
  );
  const x = randn([B, D]);
  const y = randint(0, C, [B]);
  const X = host(x);
  const Y = ints(y);
  const W = [...init.stateDict()].map(([, t]) => t); // 0.weight, 0.bias, 2.weight, 2.bias, 4.weight, 4.bias

  // float64 reference of the first loss, in plain JS.
  let h: Float64Array = Float64Array.from(X);
  let width = D;
  for (let l = 0; l < 3; l++) {
    const w = host(W[2 * l]!);
    const b = host(W[2 * l + 1]!);
    const out = W[2 * l]!.shape[0]!;
    const next = new Float64Array(B * out);
    for (let i = 0; i < B; i++)
      for (let o = 0; o < out; o++) {
        let s = b[o]!;
        for (let k = 0; k < width; k++) s += h[i * width + k]! * w[o * width + k]!;
        next[i * out + o] = l < 2 ? Math.max(0, s) : s;
      }
    h = next;
    width = out;
  }
  let ref = 0;
  for (let i = 0; i < B; i++) {
    const row = h.subarray(i * C, (i + 1) * C);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    ref += (lse - row[Y[i]!]!) / B;
  }

  const runs: Run[] = [];
  for (const path of ['auto', 'ts'] as const) {
    setCpuPath(path);
    const m = new nn.Sequential(
      new nn.Linear(D, H),
      new nn.ReLU(),
      new nn.Linear(H, H),
      new nn.ReLU(),
      new nn.Linear(H, C),
    );
    m.loadStateDict(init.stateDict());
    const opt = new optim.Adam(m.parameters(), { lr });
    const step = () => {
      opt.zeroGrad();
      const l = tidy(() => {
        const loss = F.crossEntropy(m.forward(x), y);
        loss.backward();
        return loss.itemSync();
      });
      opt.step();
      return l;
    };
    runs.push(timeSteps(`tessera cpu (${cpuPath()})`, step, path === 'ts' ? 5 : 10, 2));
  }
  setCpuPath('auto');

  for (const backend of ['wasm', 'cpu'] as const) {
    await useTf(backend);
    const vars = W.map((t) => (t.ndim === 2 ? tfLinear(t) : tfVec(t)));
    const tx = tf.tensor2d(X, [B, D]);
    const ty = tf.oneHot(tf.tensor1d(Y, 'int32'), C);
    const opt = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    const loss = () =>
      tf.tidy(() => {
        let a: tf.Tensor = tx;
        for (let l = 0; l < 3; l++) {
          a = tf.add(tf.matMul(a, vars[2 * l]!), vars[2 * l + 1]!);
          if (l < 2) a = tf.relu(a);
        }
        return tf.losses.softmaxCrossEntropy(ty, a) as tf.Scalar;
      });
    const step = () => {
      const l = opt.minimize(loss, true, vars)!;
      const v = l.dataSync()[0]!;
      l.dispose();
      return v;
    };
    runs.push(timeSteps(`tfjs-${backend}`, step, backend === 'cpu' ? 3 : 7, 1));
    tf.dispose([...vars, tx, ty]);
    opt.dispose();
  }
  report(name, runs, { value: ref, what: 'float64 JS' }, 1e-5);
  for (const t of [x, y, ...init.parameters()]) t.dispose();
}

// ------------------------------------------------------------------ transformer
async function benchTransformer(): Promise<void> {
  const name = 'train step transformer 2L d128 T128 B16 AdamW';
  const cfg: nn.CausalLMConfig = {
    vocabSize: 256,
    dModel: 128,
    nLayers: 2,
    nHeads: 4,
    dFF: 512,
    maxSeqLen: 128,
    positions: 'learned',
    activation: 'relu',
  };
  const [B, T, D, NH, V] = [16, 128, 128, 4, 256];
  const HD = D / NH;
  const [lr, wd] = [1e-3, 0.01];
  manualSeed(1);
  const init = new nn.CausalLM(cfg);
  const ids = randint(0, V, [B, T + 1]);
  const inp = ids.slice(1, 0, T).contiguous();
  const tgt = ids.slice(1, 1).contiguous();
  const sd = init.stateDict();

  const runs: Run[] = [];
  for (const path of ['auto', 'ts'] as const) {
    setCpuPath(path);
    const m = new nn.CausalLM(cfg);
    m.loadStateDict(sd);
    const opt = new optim.AdamW(m.parameters(), { lr, weightDecay: wd });
    const step = () => {
      opt.zeroGrad();
      const l = tidy(() => {
        const loss = F.crossEntropy(m.forward(inp).reshape([B * T, V]), tgt.reshape([B * T]));
        loss.backward();
        return loss.itemSync();
      });
      opt.step();
      return l;
    };
    // The wasm path still warms up over its first steps (JIT, arena size classes): 3 warm-up steps, 7 timed.
    runs.push(timeSteps(`tessera cpu (${cpuPath()})`, step, path === 'ts' ? 3 : 7, path === 'ts' ? 1 : 3));
  }
  setCpuPath('auto');

  for (const backend of ['wasm', 'cpu'] as const) {
    await useTf(backend);
    const v = new Map<string, tf.Variable>();
    for (const [k, t] of sd)
      v.set(k, t.ndim === 2 && !k.startsWith('embed') && !k.startsWith('pos') ? tfLinear(t) : tfVec(t));
    const P = (k: string) => v.get(k)!;
    const tIds = tf.oneHot(tf.tensor1d(ints(inp), 'int32'), V).toFloat(); // [B·T, V]
    const tTgt = tf.oneHot(tf.tensor1d(ints(tgt), 'int32'), V);
    const causal = tf.tensor2d(
      Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e9 : 0)),
      [T, T],
    );
    const ln = (x: tf.Tensor, p: string) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), P(`${p}.weight`)), P(`${p}.bias`));
    };
    const lin = (x: tf.Tensor, p: string, bias = true): tf.Tensor => {
      const y = tf.matMul(x, P(`${p}.weight`));
      return bias ? tf.add(y, P(`${p}.bias`)) : y;
    };
    const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, NH, HD]), [0, 2, 1, 3]); // [B, H, T, hd]
    const loss = () =>
      tf.tidy(() => {
        // The embedding lookup as oneHot · table: tfjs-wasm has no UnsortedSegmentSum, the gradient of gather.
        const e = tf.reshape(tf.matMul(tIds, P('embed.weight')), [B, T, D]);
        let h: tf.Tensor = tf.reshape(tf.add(e, tf.slice(P('pos.weight'), [0, 0], [T, D])), [B * T, D]);
        for (let l = 0; l < cfg.nLayers; l++) {
          const p = `blocks.${l}`;
          const a = ln(h, `${p}.norm1`);
          const q = heads(lin(a, `${p}.attn.q_proj`));
          const k = heads(lin(a, `${p}.attn.k_proj`));
          const vv = heads(lin(a, `${p}.attn.v_proj`));
          const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(HD)), causal);
          const o = tf.reshape(tf.transpose(tf.matMul(tf.softmax(s), vv), [0, 2, 1, 3]), [B * T, D]);
          h = tf.add(h, lin(o, `${p}.attn.o_proj`));
          const f = lin(tf.relu(lin(ln(h, `${p}.norm2`), `${p}.fc1`)), `${p}.fc2`);
          h = tf.add(h, f);
        }
        const logits = lin(ln(h, 'norm_f'), 'head', false);
        return tf.losses.softmaxCrossEntropy(tTgt, logits) as tf.Scalar;
      });
    const vars = [...v.values()];
    const opt = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    const step = () => tfAdamWStep(opt, vars, lr, wd, loss);
    // tfjs-cpu takes ~30 s a step on a quiet machine: one step, timed, with only its first loss checked.
    runs.push(timeSteps(`tfjs-${backend}`, step, backend === 'cpu' ? 1 : 2, backend === 'cpu' ? 0 : 1));
    tf.dispose([...vars, tIds, tTgt, causal]);
    opt.dispose();
  }
  report(name, runs, { value: runs[2]!.losses[0]!, what: 'tfjs-wasm' }, 2e-5);
  for (const t of [ids, inp, tgt, ...init.parameters()]) t.dispose();
}

// '@tessera/tensor-core' must resolve to the sources (tessera-bench runs node --conditions=@tessera/source): a
// plain `tsx` resolves it to dist/, a stale build whose CPU path `setCpuPath` (imported from src) does not switch.
if (!import.meta.resolve('@tessera/tensor-core').endsWith('/src/index.ts'))
  throw new Error(
    'train.bench: @tessera/tensor-core resolved to its build; run node --conditions=@tessera/source --import tsx (as tessera-bench does)',
  );
// TESSERA_BENCH_ONLY=mlp or =transformer runs one of the two.
const ONLY = process.env.TESSERA_BENCH_ONLY;
if (!ONLY || 'mlp'.includes(ONLY)) await benchMlp();
if (!ONLY || 'transformer'.includes(ONLY)) await benchTransformer();
