// PyTorch goldens for nn layers, optimizer steps and state-dict safetensors (test/fixtures/nn-goldens/generate.py,
// torch 1.13; its README says how to regenerate). Every layer is built here with torch's state_dict loaded through
// loadStateDict — so our keys must equal torch's, in torch's order — then run on the same input; the outputs, the
// gradients of Σ sum(output · cot) w.r.t. every parameter and float input, and (BatchNorm) the running statistics
// are compared with torch's float64 reference. Training cases start from torch's initial weights, take the same
// optimizer steps on the same batches and must end at torch's parameters.
import { readFileSync, writeFileSync } from 'node:fs';
import { F, io, manualSeed, nn, noGrad, optim, randn, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';

type DT = 'float32' | 'int32' | 'bool';
interface GT {
  dtype: DT;
  shape: number[];
  data: (number | boolean)[];
  grad?: number[];
  cot?: number[];
}
type Args = Record<string, number | boolean | string | number[] | undefined>;
interface LayerCase {
  name: string;
  layer: string;
  args: Args;
  mode: 'train' | 'eval';
  state: Record<string, GT>;
  inputs: Record<string, GT>;
  outputs: GT[];
  paramGrads: Record<string, number[]>;
  buffersAfter?: Record<string, GT>;
}
interface TrainingCase {
  name: string;
  model: Args | null;
  optimizer: Args;
  steps: number;
  clip: number | null;
  /** Micro-batches per step (gradient accumulation; each loss divided by accum). */
  accum: number;
  init: Record<string, GT>;
  batches: { x: GT; y: GT }[];
  losses: number[];
  /** Each step's learning rate, per parameter group. */
  lrs: number[][];
  gradNorms?: number[];
  final: Record<string, GT>;
  float32Spread: Record<string, number>;
}

const FIX = new URL('./fixtures/nn-goldens/', import.meta.url);
const json = <T>(f: string) => JSON.parse(readFileSync(new URL(f, FIX), 'utf8')) as T;
const G = json<{ torch: string; layers: LayerCase[]; training: TrainingCase[] }>('nn-goldens.json');

function build(g: GT, requiresGrad = false): Tensor {
  return tensor(g.data.map(Number), { shape: g.shape, dtype: g.dtype, requiresGrad });
}
const stateOf = (s: Record<string, GT>) => new Map(Object.entries(s).map(([k, g]) => [k, build(g)]));

/** Mismatch lines of got vs want: |got − want| ≤ atol + rtol·|want| (names the worst element). */
function compare(what: string, got: ArrayLike<number>, want: readonly number[], rtol: number, atol: number): string[] {
  if (got.length !== want.length) return [`${what}: ${got.length} values, want ${want.length}`];
  let worst = -1;
  let excess = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) - (atol + rtol * Math.abs(want[i]!));
    if (!(e <= excess)) {
      excess = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
      worst = i;
    }
  }
  return worst < 0
    ? []
    : [`${what}[${worst}]: got ${got[worst]}, want ${want[worst]} (excess ${excess.toExponential(2)})`];
}
const num = (t: Tensor) => Array.from(t.dataSync(), Number);

// ------------------------------------------------------------------ layers
type Inputs = Record<string, Tensor>;
interface Built {
  m: nn.Module;
  run: (x: Inputs) => Tensor[];
}
const a = <T>(v: unknown) => v as T;

const LAYERS: Record<string, (g: Args) => Built> = {
  Linear: (g) => {
    const m = new nn.Linear(a(g.in), a(g.out), { bias: g.bias !== false });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  Conv1d: (g) => {
    const m = new nn.Conv1d(a(g.in), a(g.out), a(g.k), {
      stride: a(g.stride),
      padding: a(g.padding),
      dilation: a(g.dilation),
      groups: a(g.groups),
      bias: g.bias !== false,
    });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  Conv2d: (g) => {
    const m = new nn.Conv2d(a(g.in), a(g.out), a(g.k), {
      stride: a(g.stride),
      padding: a(g.padding),
      dilation: a(g.dilation),
      groups: a(g.groups),
    });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  ConvTranspose1d: (g) => {
    const m = new nn.ConvTranspose1d(a(g.in), a(g.out), a(g.k), {
      stride: a(g.stride),
      padding: a(g.padding),
      outputPadding: a(g.outputPadding),
      dilation: a(g.dilation),
      groups: a(g.groups),
    });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  Embedding: (g) => {
    const m = new nn.Embedding(a(g.num), a(g.dim), { paddingIdx: a(g.paddingIdx) });
    return { m, run: ({ ids }) => [m.forward(ids!)] };
  },
  LayerNorm: (g) => {
    const m = new nn.LayerNorm(a(g.shape), { eps: a(g.eps), elementwiseAffine: g.elementwiseAffine !== false });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  RMSNorm: (g) => {
    const m = new nn.RMSNorm(a(g.shape), { eps: a(g.eps) });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  BatchNorm1d: (g) => {
    const m = new nn.BatchNorm1d(a(g.num), { momentum: a(g.momentum), eps: a(g.eps), affine: g.affine !== false });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  GroupNorm: (g) => {
    const m = new nn.GroupNorm(a(g.groups), a(g.channels), { eps: a(g.eps), affine: g.affine !== false });
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  GRU: (g) => {
    const m = new nn.GRU(a(g.in), a(g.hidden), {
      numLayers: a(g.layers),
      bidirectional: a(g.bidirectional),
      batchFirst: a(g.batchFirst),
      bias: g.bias !== false,
    });
    return {
      m,
      run: ({ x, h0 }) => {
        const r = m.forward(x!, h0);
        return [r.output, r.h];
      },
    };
  },
  LSTM: (g) => {
    const m = new nn.LSTM(a(g.in), a(g.hidden), {
      numLayers: a(g.layers),
      bidirectional: a(g.bidirectional),
      batchFirst: a(g.batchFirst),
      bias: g.bias !== false,
    });
    return {
      m,
      run: ({ x, h0, c0 }) => {
        const r = m.forward(x!, h0 && c0 ? { h: h0, c: c0 } : undefined);
        return [r.output, r.h, r.c];
      },
    };
  },
  MultiheadAttention: (g) => {
    const m = new nn.MultiheadAttention(a(g.embed), a(g.heads), {
      batchFirst: a(g.batchFirst),
      bias: g.bias !== false,
    });
    return {
      m,
      run: ({ q, k, v, kpm, am }) => {
        const r = m.forward(q!, k!, v!, { keyPaddingMask: kpm, attnMask: am });
        return [r.output, r.weights!];
      },
    };
  },
  TransformerBlock: (g) => {
    const m = new nn.TransformerBlock(g as unknown as nn.BlockOptions);
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
  CausalLM: (g) => {
    const m = new nn.CausalLM(g as unknown as nn.CausalLMConfig);
    return { m, run: ({ ids }) => [m.forward(ids!)] };
  },
  /** generate.py's Sequential of Linears and every activation module. */
  Sequential: () => {
    const m = new nn.Sequential(
      new nn.Linear(5, 6),
      new nn.GELU('tanh'),
      new nn.Linear(6, 6),
      new nn.SiLU(),
      new nn.Linear(6, 6),
      new nn.Softplus({ beta: 2, threshold: 3 }),
      new nn.Linear(6, 6),
      new nn.GELU(),
      new nn.Linear(6, 4),
      new nn.Sigmoid(),
      new nn.Linear(4, 4),
      new nn.Tanh(),
      new nn.Identity(),
    );
    return { m, run: ({ x }) => [m.forward(x!)] };
  },
};

/**
 * Tolerances by case name (default: outputs rtol 1e-5 / atol 5e-6, gradients 1e-4 / 1e-5). On the TS kernels every
 * case is within 2e-6 / 1e-6 and 1e-5 / 1e-6 (float32 rounding); the margin is for other backends' summation orders.
 */
const TOL: Record<string, { rtol: number; atol: number; grtol: number; gatol: number }> = {
  default: { rtol: 1e-5, atol: 5e-6, grtol: 1e-4, gatol: 1e-5 },
};

/** Known engine bugs: case name → what torch gives and what we give. Listed cases run as test.fails. */
const LAYER_BUGS: Record<string, string> = {};

function runLayer(c: LayerCase): string[] {
  const p: string[] = [];
  manualSeed(1);
  const { m, run } = LAYERS[c.layer]!(c.args);
  // The point: our state-dict keys are torch's, in torch's order.
  const keys = [...m.stateDict().keys()];
  if (keys.join() !== Object.keys(c.state).join())
    return [`state keys [${keys.join(', ')}], torch has [${Object.keys(c.state).join(', ')}]`];
  m.loadStateDict(stateOf(c.state));
  m.train(c.mode === 'train');
  const tol = TOL[c.name] ?? TOL.default!;
  const xs: Inputs = {};
  for (const [k, g] of Object.entries(c.inputs)) xs[k] = build(g, g.grad !== undefined);
  const outs = run(xs);
  if (outs.length !== c.outputs.length) return [`${outs.length} outputs, torch has ${c.outputs.length}`];
  let loss: Tensor | null = null;
  c.outputs.forEach((w, i) => {
    const o = outs[i]!;
    if (o.shape.join() !== w.shape.join()) {
      p.push(`output ${i}: shape [${o.shape}], want [${w.shape}]`);
      return;
    }
    p.push(...compare(`output ${i}`, num(o), w.data as number[], tol.rtol, tol.atol));
    const term = o.mul(tensor(w.cot!, { shape: w.shape })).sum();
    loss = loss ? loss.add(term) : term;
  });
  if (p.length) return p;
  (loss as unknown as Tensor).backward();
  const params = new Map(m.namedParameters());
  for (const [k, want] of Object.entries(c.paramGrads)) {
    const grad = params.get(k)?.grad;
    if (!grad) p.push(`grad ${k}: none`);
    else p.push(...compare(`grad ${k}`, num(grad), want, tol.grtol, tol.gatol));
  }
  for (const [k, g] of Object.entries(c.inputs)) {
    if (!g.grad) continue;
    const grad = xs[k]!.grad;
    if (!grad) p.push(`grad ${k}: none`);
    else p.push(...compare(`grad ${k}`, num(grad), g.grad, tol.grtol, tol.gatol));
  }
  if (c.buffersAfter) {
    const bufs = new Map(m.namedBuffers());
    for (const [k, want] of Object.entries(c.buffersAfter)) {
      const b = bufs.get(k);
      if (!b) p.push(`buffer ${k}: none`);
      else p.push(...compare(`buffer ${k}`, num(b), want.data as number[], tol.rtol, tol.atol));
    }
  }
  return p;
}

describe(`nn layers vs PyTorch ${G.torch}`, () => {
  test('every layer kind in the fixture is built here, and every builder is used', () => {
    const used = new Set(G.layers.map((c) => c.layer));
    expect([...used].filter((l) => !(l in LAYERS))).toEqual([]);
    expect(Object.keys(LAYERS).filter((l) => !used.has(l))).toEqual([]);
  });
  const ok = G.layers.filter((c) => !(c.name in LAYER_BUGS));
  const broken = G.layers.filter((c) => c.name in LAYER_BUGS);
  test.each(ok.map((c) => [c.name, c] as const))('%s', (_, c) => {
    expect(tidy(() => runLayer(c))).toEqual([]);
  });
  // Incremental decoding with a KV cache (prefill 2 tokens, then one at a time) gives torch's full-pass logits.
  const lms = G.layers.filter((c) => c.layer === 'CausalLM');
  test.each(lms.map((c) => [c.name, c] as const))('%s, decoded token by token with a KV cache', (_, c) => {
    manualSeed(1);
    const m = new nn.CausalLM(c.args as unknown as nn.CausalLMConfig);
    m.loadStateDict(stateOf(c.state));
    m.eval();
    const ids = build(c.inputs.ids!);
    const T = ids.shape[1]!;
    const cache = new nn.KVCache();
    const parts: number[][] = [];
    noGrad(() =>
      tidy(() => {
        for (let t = 0; t < T; t = t === 0 ? 2 : t + 1) {
          const n = t === 0 ? 2 : 1;
          parts.push(num(m.forward(ids.slice(1, t, t + n).contiguous(), { cache })));
        }
      }),
    );
    // parts[k] is [B, n, V]; reassemble [B, T, V] and compare with torch's output.
    const [B, , V] = c.outputs[0]!.shape as [number, number, number];
    const got = new Float64Array(B * T * V);
    let t0 = 0;
    for (const p of parts) {
      const n = p.length / (B * V);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < n; i++) for (let v = 0; v < V; v++) got[(b * T + t0 + i) * V + v] = p[(b * n + i) * V + v]!;
      t0 += n;
    }
    expect(t0).toBe(T);
    expect(compare('logits', got, c.outputs[0]!.data as number[], 1e-5, 5e-6)).toEqual([]);
  });
  if (broken.length)
    test.fails.each(broken.map((c) => [c.name, LAYER_BUGS[c.name]!, c] as const))('%s (BUG: %s)', (_, _b, c) => {
      expect(tidy(() => runLayer(c))).toEqual([]);
    });
});

// ------------------------------------------------------------------ training
/** generate.py's CNN: conv2d → relu → mean over H → conv1d → batchnorm → relu → maxPool1d(2) → avgPool1d(2) → fc. */
class CNN extends nn.Module {
  readonly c2 = this.registerModule('c2', new nn.Conv2d(2, 4, 3, { padding: 1 }));
  readonly c1 = this.registerModule('c1', new nn.Conv1d(4, 6, 3, { padding: 1 }));
  readonly bn = this.registerModule('bn', new nn.BatchNorm1d(6));
  readonly fc = this.registerModule('fc', new nn.Linear(12, 3));
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = F.relu(this.c2.forward(x)).mean(2);
      const h2 = F.relu(this.bn.forward(this.c1.forward(h)));
      const p = F.avgPool1d(F.maxPool1d(h2, 2), 2);
      return this.fc.forward(p.flatten(1));
    });
  }
}

/** generate.py's RNNClassifier: 2-layer bidirectional batch-first GRU, the last step's output → fc. */
class RNNClassifier extends nn.Module {
  readonly rnn = this.registerModule('rnn', new nn.GRU(4, 6, { numLayers: 2, bidirectional: true, batchFirst: true }));
  readonly fc = this.registerModule('fc', new nn.Linear(12, 3));
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const o = this.rnn.forward(x).output;
      return this.fc.forward(o.select(1, o.shape[1]! - 1));
    });
  }
}

function makeModel(c: TrainingCase): { m: nn.Module; forward: (x: Tensor) => Tensor } {
  if (c.name.startsWith('mlp')) {
    const m = new nn.Sequential(
      new nn.Linear(12, 16),
      new nn.ReLU(),
      new nn.Linear(16, 16),
      new nn.Tanh(),
      new nn.Linear(16, 5),
    );
    return { m, forward: (x) => m.forward(x) };
  }
  if (c.name.startsWith('cnn')) {
    const m = new CNN();
    return { m, forward: (x) => m.forward(x) };
  }
  if (c.name.startsWith('gru')) {
    const m = new RNNClassifier();
    return { m, forward: (x) => m.forward(x) };
  }
  const m = new nn.CausalLM(c.model as unknown as nn.CausalLMConfig);
  return { m, forward: (x) => m.forward(x) };
}

type GroupSpec = { keys: string[]; lr?: number; weightDecay?: number; momentum?: number; dampening?: number };

function makeOptimizer(c: TrainingCase, m: nn.Module) {
  const o = c.optimizer;
  const named = new Map(m.namedParameters());
  // Parameter groups by state-dict key, in the fixture's order, each with its own options.
  const groups = (o.groups as unknown as GroupSpec[] | undefined)?.map(({ keys, ...opts }) => ({
    ...opts,
    params: keys.map((k) => named.get(k)!),
  }));
  const params = groups ?? m.parameters();
  // Only the options the fixture sets.
  const { kind, groups: _g, warmup: _w, total: _t, stepSize: _s, gamma: _m, ...opts } = o;
  if (kind === 'Adam') return new optim.Adam(params, opts as unknown as optim.AdamOptions);
  if (kind === 'AdamW') return new optim.AdamW(params, opts as unknown as optim.AdamOptions);
  return new optim.SGD(params, opts as unknown as optim.SGDOptions);
}

function makeSchedule(o: Args): optim.Schedule | null {
  if (o.warmup !== undefined) return optim.warmupCosine(a(o.warmup), a(o.total));
  if (o.stepSize !== undefined) return optim.stepDecay(a(o.stepSize), a(o.gamma));
  return null;
}

const TRAIN_BUGS: Record<string, string> = {};

/**
 * Runs the case; returns the mismatch lines. Parameters must be within max(5e-6, 10 × torch-float32's own drift
 * from float64 on that key) + 1e-5·|want| (the TS kernels are within max(1e-6, 3 × drift)). (In the learned-position transformer, k_proj.bias has an exactly-zero
 * gradient — softmax ignores a shift of every score in a row — so Adam turns rounding noise into ±lr steps and
 * float32 torch itself drifts by ~2e-3 there; the per-key spread carries that.)
 */
function runTraining(c: TrainingCase): string[] {
  const p: string[] = [];
  manualSeed(2);
  const { m, forward } = makeModel(c);
  const keys = [...m.stateDict().keys()];
  if (keys.join() !== Object.keys(c.init).join())
    return [`state keys [${keys.join(', ')}], torch has [${Object.keys(c.init).join(', ')}]`];
  m.loadStateDict(stateOf(c.init));
  m.train();
  const opt = makeOptimizer(c, m);
  const schedule = makeSchedule(c.optimizer);
  const sched = schedule ? new optim.LRScheduler(opt, schedule) : null;
  for (let s = 0; s < c.steps; s++) {
    opt.zeroGrad();
    const lrs = opt.paramGroups.map((g) => g.lr);
    if (lrs.some((lr, i) => Math.abs(lr - c.lrs[s]![i]!) > 1e-12 * c.lrs[s]![i]!))
      p.push(`step ${s}: lr ${lrs}, torch ${c.lrs[s]}`);
    let total = 0;
    for (let j = 0; j < c.accum; j++) {
      const { x: bx, y: by } = c.batches[s * c.accum + j]!;
      tidy(() => {
        const logits = forward(build(bx));
        const V = logits.shape[logits.ndim - 1]!;
        const loss = F.crossEntropy(logits.reshape([-1, V]), build(by).reshape([-1])).div(c.accum);
        total += loss.itemSync();
        loss.backward(); // accumulates into .grad
      });
    }
    p.push(...compare(`step ${s} loss`, [total], [c.losses[s]!], 1e-5, 1e-6));
    if (c.clip !== null) {
      const norm = optim.clipGradNorm(m.parameters(), c.clip);
      p.push(...compare(`step ${s} grad norm`, [norm.itemSync()], [c.gradNorms![s]!], 1e-4, 1e-6));
      norm.dispose();
    }
    opt.step();
    sched?.step();
  }
  const state = m.stateDict();
  for (const [k, want] of Object.entries(c.final)) {
    const got = state.get(k)!;
    const atol = Math.max(5e-6, 10 * (c.float32Spread[k] ?? 0));
    p.push(...compare(`param ${k}`, num(got), want.data as number[], want.dtype === 'float32' ? 1e-5 : 0, atol));
  }
  return p;
}

describe(`training steps vs PyTorch ${G.torch}`, () => {
  const ok = G.training.filter((c) => !(c.name in TRAIN_BUGS));
  const broken = G.training.filter((c) => c.name in TRAIN_BUGS);
  test.each(ok.map((c) => [c.name, c] as const))('%s', (_, c) => {
    expect(runTraining(c)).toEqual([]);
  });
  if (broken.length)
    test.fails.each(broken.map((c) => [c.name, TRAIN_BUGS[c.name]!, c] as const))('%s (BUG: %s)', (_, _b, c) => {
      expect(runTraining(c)).toEqual([]);
    });
});

describe('optimizer options', () => {
  /** One step from w = [1, −2, 3] with loss sum(w²), built with the given optimizer; returns w after the step. */
  const stepWith = (make: (ps: Tensor[]) => optim.Optimizer<{ lr: number }>) => {
    const w = tensor([1, -2, 3], { requiresGrad: true });
    const opt = make([w]);
    tidy(() => w.mul(w).sum().backward());
    opt.step();
    return num(w);
  };
  // An option passed as undefined takes its default, as it does for the layers (e.g. Conv1d's stride).
  test('an option given as undefined takes its default (Adam eps, SGD dampening)', () => {
    expect(stepWith((ps) => new optim.Adam(ps, { lr: 0.1, eps: undefined }))).toEqual(
      stepWith((ps) => new optim.Adam(ps, { lr: 0.1 })),
    );
    expect(stepWith((ps) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9, dampening: undefined }))).toEqual(
      stepWith((ps) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9 })),
    );
  });
});

// ------------------------------------------------------------------ safetensors in PyTorch's layout
/** generate.py's Net: conv → batchnorm → relu → 2-layer bidirectional LSTM → self-attention + residual → head. */
class Net extends nn.Module {
  readonly conv = this.registerModule('conv', new nn.Conv1d(3, 8, 3, { padding: 1 }));
  readonly bn = this.registerModule('bn', new nn.BatchNorm1d(8));
  readonly rnn = this.registerModule('rnn', new nn.LSTM(8, 6, { numLayers: 2, bidirectional: true, batchFirst: true }));
  readonly mha = this.registerModule('mha', new nn.MultiheadAttention(12, 3, { batchFirst: true }));
  readonly head = this.registerModule('head', new nn.Linear(12, 4));
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = F.relu(this.bn.forward(this.conv.forward(x))).transpose(1, 2);
      const r = this.rnn.forward(h).output;
      const att = this.mha.forward(r, r, r, { needWeights: false }).output;
      return this.head.forward(r.add(att));
    });
  }
}

/** Our Net as saved to tessera_net.safetensors: seeded weights, running statistics from two training batches. */
function tesseraNet(): Net {
  manualSeed(20261127);
  const net = new Net();
  tidy(() => {
    net.train();
    noGrad(() => {
      net.forward(randn([4, 3, 6]));
      net.forward(randn([4, 3, 6], { mean: 0.5, std: 2 }));
    });
    net.eval();
  });
  return net;
}

describe('safetensors state dicts in PyTorch layout', () => {
  test("torch's Net state_dict, written as safetensors, loads strictly into ours and gives torch's output", () => {
    const want = json<{ keys: string[]; x: GT; y: GT }>('torch_net.expected.json');
    const { tensors } = io.loadSafetensors(new Uint8Array(readFileSync(new URL('torch_net.safetensors', FIX))));
    manualSeed(3);
    const net = new Net();
    expect([...net.stateDict().keys()]).toEqual(want.keys);
    expect(tensors.get('bn.num_batches_tracked')!.dtype).toBe('int32'); // I64 in the file
    net.loadStateDict(tensors);
    net.eval();
    const y = tidy(() => net.forward(build(want.x)));
    expect(y.shape).toEqual(want.y.shape);
    expect(compare('y', num(y), want.y.data as number[], 1e-4, 1e-5)).toEqual([]);
  });

  test('our io.saveSafetensors(net.stateDict()) is read by the spec reader and loads into torch (verified JSON)', () => {
    const net = tesseraNet();
    const ours = io.saveSafetensors(net.stateDict(), { int64: ['bn.num_batches_tracked'], metadata: { format: 'pt' } });
    const file = new URL('tessera_net.safetensors', FIX);
    if (process.env.TESSERA_WRITE_FIXTURES === '1') writeFileSync(file, ours);
    expect(ours).toEqual(new Uint8Array(readFileSync(file)));
    const v = json<{ byte_identical_to_reference_layout: boolean; keys: string[]; x: GT; y: GT }>(
      'tessera_net.verified.json',
    );
    expect(v.byte_identical_to_reference_layout).toBe(true);
    expect([...net.stateDict().keys()]).toEqual(v.keys);
    const y = tidy(() => net.forward(build(v.x)));
    expect(y.shape).toEqual(v.y.shape);
    expect(compare('y', num(y), v.y.data as number[], 1e-4, 1e-5)).toEqual([]);
  });
});
