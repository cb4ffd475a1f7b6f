// Every code example of README.md, run as written (sizes shrunk only where noted), and the API claims
// the README makes in prose, so the README cannot drift from the package.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AutogradError,
  arenaStats,
  checkpointFromBytes,
  checkpointToBytes,
  DisposedError,
  DTypeError,
  F,
  FormatError,
  getBackend,
  getRngState,
  io,
  keep,
  loadCheckpoint,
  manualSeed,
  memory,
  NoAdapterError,
  nn,
  noGrad,
  optim,
  Progress,
  randint,
  randn,
  ShapeError,
  SyncReadError,
  saveCheckpoint,
  setBackend,
  setCpuPath,
  setCpuThreads,
  setRngState,
  TesseraError,
  tensor,
  tidy,
  ValueError,
  WebGPUError,
} from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';

describe('README examples', () => {
  test('quick start: cross-entropy through matmul + gelu, backward inside tidy', () => {
    manualSeed(0);
    const w = randn([16, 4], { std: 0.1, requiresGrad: true });
    const x = randn([8, 16]);
    const y = tensor([0, 1, 2, 3, 0, 1, 2, 3], { dtype: 'int32' });

    let lossValue = Number.NaN;
    tidy(() => {
      const loss = F.crossEntropy(x.matmul(w).gelu(), y, { labelSmoothing: 0.1 });
      loss.backward(); // w.grad now holds dloss/dw
      lossValue = loss.itemSync();
    }); // every intermediate is freed here; w.grad is kept

    // Small weights: logits near 0, so the loss is near ln(4).
    expect(lossValue).toBeGreaterThan(Math.log(4) - 0.5);
    expect(lossValue).toBeLessThan(Math.log(4) + 0.5);
    expect(w.grad).not.toBeNull();
    expect(w.grad!.isDisposed).toBe(false);
    expect(w.grad!.shape).toEqual([16, 4]);
    const g = Array.from(w.grad!.dataSync());
    expect(g.every(Number.isFinite)).toBe(true);
    expect(g.some((v) => v !== 0)).toBe(true);

    // A step against the gradient lowers the loss.
    const lossAt = (wt: typeof w) =>
      tidy(() => F.crossEntropy(x.matmul(wt).gelu(), y, { labelSmoothing: 0.1 }).itemSync());
    const stepped = noGrad(() => w.sub(w.grad!.mul(0.5)));
    expect(lossAt(stepped)).toBeLessThan(lossValue);
    stepped.dispose();
    w.dispose();
    x.dispose();
    y.dispose();
  });

  test('nn, optim, checkpoints: CausalLM training loop, checkpoint, generate', async () => {
    // The README trains 2000 steps of B16 x T129 (about 0.3 s a step on the CPU); here the same loop
    // runs 6 steps of B2 x T17 and checkpoints every 3 steps, so it takes about a second.
    const STEPS = 6;
    const EVERY = 3;
    const B = 2;
    const T = 16;
    const dir = await mkdtemp(join(tmpdir(), 'tessera-readme-'));
    const path = join(dir, 'lm.safetensors');
    try {
      manualSeed(0);
      const lm = new nn.CausalLM({ vocabSize: 256, dModel: 128, nLayers: 2, nHeads: 4, nKvHeads: 2 }); // RoPE + GQA
      const opt = new optim.AdamW(lm.parameters(), { lr: 3e-4, weightDecay: 0.1 });
      const sched = new optim.LRScheduler(opt, optim.warmupCosine(100, 2000));
      const losses: number[] = [];
      const before = lm.parameters().map((p) => Array.from(p.dataSync()));
      for (let step = 0; step < STEPS; step++) {
        tidy(() => {
          const ids = randint(0, 256, [B, T + 1]);
          const logits = lm.forward(ids.slice(1, 0, T));
          const loss = F.crossEntropy(logits.transpose(1, 2), ids.slice(1, 1));
          loss.backward();
          losses.push(loss.itemSync());
        });
        optim.clipGradNorm(lm.parameters(), 1).dispose();
        opt.step();
        opt.zeroGrad();
        sched.step();
        if (step % EVERY === 0) await saveCheckpoint(path, { model: lm, optimizer: opt, step });
      }
      const tokens = lm.generate(randint(0, 256, [1, 8]), { maxNewTokens: 32, temperature: 0.8, topK: 40 });

      // Random tokens: the loss sits at ln(256) and stays finite.
      for (const l of losses) {
        expect(Number.isFinite(l)).toBe(true);
        expect(Math.abs(l - Math.log(256))).toBeLessThan(0.5);
      }
      // The optimizer moved the weights, and warm-up set the rate: 3e-4 * STEPS/100.
      const after = lm.parameters().map((p) => Array.from(p.dataSync()));
      expect(after.some((a, i) => a.some((v, j) => v !== before[i]![j]))).toBe(true);
      expect(opt.paramGroups[0]!.lr).toBeCloseTo((3e-4 * (STEPS + 1)) / 100, 10);
      // generate returns token ids (prompt + new tokens), not text.
      expect(tokens.shape).toEqual([1, 8 + 32]);
      expect(tokens.dtype).toBe('int32');
      const ids = Array.from(tokens.dataSync());
      expect(ids.every((t) => Number.isInteger(t) && t >= 0 && t < 256)).toBe(true);
      tokens.dispose();

      // The last checkpoint (step 3) loads into a fresh model and optimizer; no temp files are left.
      expect(await readdir(dir)).toEqual(['lm.safetensors']);
      const lm2 = new nn.CausalLM({ vocabSize: 256, dModel: 128, nLayers: 2, nHeads: 4, nKvHeads: 2 });
      const opt2 = new optim.AdamW(lm2.parameters(), { lr: 3e-4, weightDecay: 0.1 });
      const loaded = await loadCheckpoint(path, { model: lm2, optimizer: opt2 });
      expect(loaded.step).toBe(3);
      // checkpointToBytes / checkpointFromBytes: the browser form, the same round trip.
      const bytes = checkpointToBytes({ model: lm, optimizer: opt, step: STEPS });
      const lm3 = new nn.CausalLM({ vocabSize: 256, dModel: 128, nLayers: 2, nHeads: 4, nKvHeads: 2 });
      expect(checkpointFromBytes(bytes, { model: lm3 }).step).toBe(STEPS);
      const [k0, p0] = [...lm.namedParameters()][0]!;
      const p3 = lm3.stateDict().get(k0)!;
      expect(Array.from(p3.dataSync())).toEqual(Array.from(p0.dataSync()));
      // A damaged file is refused.
      const bad = bytes.slice();
      bad[bad.length - 1]! ^= 0xff;
      expect(() => checkpointFromBytes(bad, { model: lm3 })).toThrow(TesseraError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('checkpoints resume bit-exactly (the scheduler step is restored by hand)', async () => {
    const cfg = { vocabSize: 32, dModel: 32, nLayers: 1, nHeads: 4, nKvHeads: 2 };
    const dir = await mkdtemp(join(tmpdir(), 'tessera-readme-'));
    const path = join(dir, 'lm.safetensors');
    const setup = () => {
      const lm = new nn.CausalLM(cfg);
      const opt = new optim.AdamW(lm.parameters(), { lr: 1e-2, weightDecay: 0.1 });
      const sched = new optim.LRScheduler(opt, optim.warmupCosine(2, 6));
      return { lm, opt, sched };
    };
    const train = async (r: ReturnType<typeof setup>, from: number, to: number, save?: number) => {
      for (let step = from; step < to; step++) {
        tidy(() => {
          const ids = randint(0, 32, [2, 9]);
          F.crossEntropy(r.lm.forward(ids.slice(1, 0, 8)).transpose(1, 2), ids.slice(1, 1)).backward();
        });
        optim.clipGradNorm(r.lm.parameters(), 1).dispose();
        r.opt.step();
        r.opt.zeroGrad();
        r.sched.step();
        if (step === save) await saveCheckpoint(path, { model: r.lm, optimizer: r.opt, step });
      }
    };
    try {
      manualSeed(3);
      const a = setup();
      await train(a, 0, 6, 2);
      manualSeed(99); // a different model and RNG stream, overwritten by the checkpoint
      const b = setup();
      const { step } = await loadCheckpoint(path, { model: b.lm, optimizer: b.opt });
      b.sched.setStep(step + 1);
      await train(b, step + 1, 6);
      const pa = a.lm.parameters();
      const pb = b.lm.parameters();
      pa.forEach((p, i) => {
        expect(Array.from(pb[i]!.dataSync())).toEqual(Array.from(p.dataSync()));
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test('WebGPU: setBackend, async readback, SyncReadError, moves', async (ctx) => {
    const err = await setBackend('webgpu').then(
      () => null,
      (e: unknown) => e,
    );
    if (err !== null) {
      // No adapter here: a typed NoAdapterError, and the active backend stays as it was.
      expect(err).toBeInstanceOf(NoAdapterError);
      expect(err).toBeInstanceOf(WebGPUError);
      expect(getBackend()).toBe('cpu');
      ctx.skip(`no WebGPU adapter: ${(err as Error).message}`);
      return;
    }
    try {
      const y = randn([256, 256])
        .matmul(randn([256, 256]))
        .gelu();
      const data = await y.data(); // readback is async
      expect(data.length).toBe(256 * 256);
      expect(() => y.dataSync()).toThrow(SyncReadError);
      const onCpu = await y.to('cpu'); // moves are async too (detached copies)
      expect(onCpu.backend).toBe('cpu');
      expect(Array.from(onCpu.dataSync())).toEqual(Array.from(data));
      const back = await onCpu.to('webgpu');
      expect(back.backend).toBe('webgpu');
      const pool = memory().webgpu!;
      for (const k of ['buffers', 'bytes', 'pooledBuffers', 'pooledBytes'] as const)
        expect(typeof pool[k], k).toBe('number');
    } finally {
      await setBackend('cpu');
    }
  }, 60_000);
});

describe('README claims', () => {
  test('weak JS numbers keep the dtype; float16 as storage; views', () => {
    tidy(() => {
      expect(randn([2]).mul(2).dtype).toBe('float32');
      expect(tensor([1, 2], { dtype: 'int32' }).add(1).dtype).toBe('int32');
      expect(randn([2]).to('float16').dtype).toBe('float16');
      const x = tensor([0, 1, 2, 3, 4, 5]);
      expect(Array.from(x.slice(0, 0, 6, 2).dataSync())).toEqual([0, 2, 4]);
      expect(Array.from(x.flip(0).dataSync())).toEqual([5, 4, 3, 2, 1, 0]);
      expect(x.reshape([2, 3]).transpose(0, 1).shape).toEqual([3, 2]);
      expect(x.view([3, 2]).permute([1, 0]).shape).toEqual([2, 3]);
      expect(x.unsqueeze(0).expand([4, 6]).shape).toEqual([4, 6]);
      expect(x.narrow(0, 1, 2).dataSync()[0]).toBe(1);
      expect(x.split(2).length).toBe(3);
      expect(x.chunk(3).length).toBe(3);
      expect(x.reshape([2, 3]).select(0, 1).shape).toEqual([3]);
      expect(x.unsqueeze(1).squeeze(1).shape).toEqual([6]);
    });
  });

  test('elementwise, reduction and movement ops the README lists exist on Tensor', () => {
    const x = randn([3, 4]);
    const unary = [
      'neg',
      'abs',
      'sign',
      'exp',
      'log',
      'log1p',
      'expm1',
      'sqrt',
      'rsqrt',
      'sin',
      'cos',
      'tanh',
      'sigmoid',
      'relu',
      'gelu',
      'silu',
      'softplus',
      'erf',
      'reciprocal',
    ] as const;
    for (const op of unary) expect(typeof x[op], op).toBe('function');
    for (const op of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'where', 'clamp'] as const)
      expect(typeof x[op], op).toBe('function');
    const red = [
      'sum',
      'mean',
      'max',
      'min',
      'amax',
      'amin',
      'argmax',
      'argmin',
      'logsumexp',
      'var',
      'std',
      'prod',
      'cumsum',
    ] as const;
    for (const op of red) expect(typeof x[op], op).toBe('function');
    for (const op of [
      'split',
      'chunk',
      'flip',
      'repeat',
      'gather',
      'indexSelect',
      'scatterAdd',
      'tril',
      'triu',
      'sort',
      'topk',
      'softmax',
      'logSoftmax',
    ] as const)
      expect(typeof x[op], op).toBe('function');
    tidy(() => {
      expect(x.gelu('tanh').shape).toEqual([3, 4]);
      expect(x.sum([0, 1], true).shape).toEqual([1, 1]);
      expect(x.topk(2).values.shape).toEqual([3, 2]);
    });
    x.dispose();
  });

  test('F has the functions the README names', () => {
    const names = [
      'conv1d',
      'conv2d',
      'convTranspose1d',
      'avgPool1d',
      'maxPool1d',
      'softmax',
      'logSoftmax',
      'layerNorm',
      'rmsNorm',
      'batchNorm',
      'dropout',
      'embedding',
      'scaledDotProductAttention',
      'crossEntropy',
      'nllLoss',
      'mseLoss',
      'l1Loss',
      'binaryCrossEntropyWithLogits',
      'klDiv',
      'lgamma',
      'digamma',
    ];
    for (const n of names) expect(typeof (F as Record<string, unknown>)[n], n).toBe('function');
    expect(typeof F.gelu).toBe('function');
  });

  test('nn and optim have the classes and functions the README names', () => {
    const layers = [
      'Module',
      'Sequential',
      'ModuleList',
      'Linear',
      'Conv1d',
      'Conv2d',
      'ConvTranspose1d',
      'Embedding',
      'LayerNorm',
      'RMSNorm',
      'BatchNorm1d',
      'GroupNorm',
      'Dropout',
      'GRU',
      'LSTM',
      'MultiheadAttention',
      'CausalSelfAttention',
      'KVCache',
      'TransformerBlock',
      'CausalLM',
    ];
    for (const n of layers) expect(typeof (nn as Record<string, unknown>)[n], n).toBe('function');
    const opt = [
      'SGD',
      'Adam',
      'AdamW',
      'linearWarmup',
      'cosine',
      'stepDecay',
      'warmupCosine',
      'LRScheduler',
      'clipGradNorm',
    ];
    for (const n of opt) expect(typeof (optim as Record<string, unknown>)[n], n).toBe('function');
    const m = new nn.Sequential(new nn.Linear(4, 8), new nn.BatchNorm1d(8));
    expect([...m.stateDict().keys()]).toContain('0.weight');
    expect([...m.stateDict().keys()]).toContain('1.running_mean');
    expect(m.numParameters()).toBe(4 * 8 + 8 + 8 + 8);
    expect([...m.children()].length).toBe(2);
    expect([...m.namedParameters()].length).toBe(m.parameters().length);
    // train()/eval() switch modes: Dropout is the identity in eval mode.
    const drop = new nn.Sequential(new nn.Dropout(0.5));
    tidy(() => {
      const ones = tensor([1, 1, 1, 1, 1, 1, 1, 1]);
      expect(Array.from(drop.eval().forward(ones).dataSync())).toEqual(Array.from(ones.dataSync()));
      const t = Array.from(drop.train().forward(ones).dataSync());
      expect(t.every((v) => v === 0 || v === 2)).toBe(true);
    });
    expect(typeof m.apply).toBe('function');
    const gru = new nn.GRU(3, 4, { bidirectional: true });
    expect([...gru.stateDict().keys()]).toContain('weight_ih_l0_reverse');
    const mha = new nn.MultiheadAttention(8, 2);
    expect([...mha.stateDict().keys()]).toContain('in_proj_weight');
    const bad = new Map(m.stateDict());
    bad.delete('0.bias');
    expect(() => m.loadStateDict(bad)).toThrow(/0\.bias/);
  });

  test('gradient accumulation: two backward() calls sum into .grad', () => {
    const w = tensor([1, 2, 3], { requiresGrad: true });
    tidy(() => w.mul(2).sum().backward());
    tidy(() => w.mul(3).sum().backward());
    expect(Array.from(w.grad!.dataSync())).toEqual([5, 5, 5]);
    w.dispose();
  });

  test('memory: tidy frees intermediates, keep() survives, memory() counts', () => {
    const before = memory().numTensors;
    const kept = tidy(() => {
      const a = randn([4]);
      keep(a.mul(2));
      return a.add(1);
    });
    // The returned tensor and the keep()-ed one survive; `a` is freed.
    expect(memory().numTensors).toBe(before + 2);
    expect(typeof memory().numLeaked).toBe('number');
    kept.dispose();
    expect(() => kept.dataSync()).toThrow(DisposedError);
  });

  test('autograd: non-scalar backward with a gradient, retainGraph, retainGrad, detach, noGrad', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    tidy(() => {
      const y = x.mul(x).mul(2);
      y.backward(tensor([1, 1, 1]), { retainGraph: true });
      y.backward(tensor([1, 0, 0]));
      expect(Array.from(x.grad!.dataSync())).toEqual([8, 8, 12]);
      // Backward through a non-differentiable path is an error.
      expect(() => x.argmax().float().backward()).toThrow(AutogradError);
      // A second backward without retainGraph is an AutogradError, not a wrong gradient.
      expect(() => y.backward(tensor([1, 1, 1]))).toThrow(AutogradError);
      const h = x.mul(x).retainGrad();
      h.mul(2).backward(tensor([1, 1, 1]));
      expect(Array.from(h.grad!.dataSync())).toEqual([2, 2, 2]);
      expect(x.detach().requiresGrad).toBe(false);
      expect(noGrad(() => x.mul(2)).requiresGrad).toBe(false);
    });
    x.dispose();
  });

  // A retained non-leaf gradient accumulates across backward() calls, and the inputs still get theirs.
  test('autograd: retainGrad() + accumulation', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    try {
      tidy(() => {
        const h = x.mul(x).retainGrad();
        const y = h.mul(2);
        y.backward(tensor([1, 1, 1]), { retainGraph: true });
        y.backward(tensor([1, 1, 1]));
        expect(Array.from(h.grad!.dataSync())).toEqual([4, 4, 4]);
        expect(Array.from(x.grad!.dataSync())).toEqual([8, 16, 24]); // 2 × (2 · 2x)
      });
    } finally {
      x.dispose();
    }
  });

  test('autograd: disposing a user handle keeps backward working; in-place edits of saved tensors throw', () => {
    const x = tensor([0.5, 1, 2], { requiresGrad: true });
    tidy(() => {
      const a = x.mul(3);
      const b = a.exp();
      a.dispose();
      b.sum().backward();
      expect(Array.from(x.grad!.dataSync()).every(Number.isFinite)).toBe(true);
    });
    tidy(() => {
      // A tensor in the graph refuses the edit at once ...
      const a = x.mul(1);
      a.exp();
      expect(() => a.mul_(2)).toThrow(AutogradError);
      // ... and a plain tensor saved by an op makes the later backward an error.
      const w = tensor([1, 2, 3]);
      const c = x.mul(w);
      w.mul_(2);
      expect(() => c.sum().backward()).toThrow(AutogradError);
    });
    x.dispose();
  });

  test('optim: parameter groups with their own options; SGD momentum/Nesterov/weight decay', () => {
    const a = tensor([1, 1], { requiresGrad: true });
    const b = tensor([1, 1], { requiresGrad: true });
    const opt = new optim.SGD([{ params: [a] }, { params: [b], lr: 0 }], {
      lr: 0.1,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 0.01,
    });
    tidy(() => a.add(b).sum().backward());
    opt.step();
    expect(a.dataSync()[0]).toBeLessThan(1);
    expect(Array.from(b.dataSync())).toEqual([1, 1]);
    a.dispose();
    b.dispose();
  });

  test('F.scaledDotProductAttention: causal and grouped-query', () => {
    tidy(() => {
      const q = randn([1, 4, 3, 8]);
      const kv = randn([1, 2, 3, 8]);
      const o = F.scaledDotProductAttention(q, kv, kv, { isCausal: true });
      expect(o.shape).toEqual([1, 4, 3, 8]);
      // Causal: the first query attends only to the first key, so its output is v[0].
      const first = Array.from(o.select(1, 0).select(1, 0).dataSync());
      const v0 = Array.from(kv.select(1, 0).select(1, 0).dataSync());
      first.forEach((v, i) => {
        expect(v).toBeCloseTo(v0[i]!, 5);
      });
    });
  });

  test('KV cache: incremental decoding gives the full forward pass logits', () => {
    manualSeed(2);
    const lm = new nn.CausalLM({ vocabSize: 32, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2 });
    noGrad(() =>
      tidy(() => {
        const ids = randint(0, 32, [1, 6]);
        const full = lm.forward(ids);
        const cache = new nn.KVCache();
        for (let t = 0; t < 6; t++) {
          const step = lm.forward(ids.slice(1, t, t + 1), { cache });
          const a = Array.from(step.dataSync());
          const b = Array.from(full.select(1, t).dataSync());
          a.forEach((v, i) => {
            expect(v).toBeCloseTo(b[i]!, 4);
          });
        }
      }),
    );
  });

  test('special functions: lgamma and digamma', () => {
    tidy(() => {
      const x = tensor([1, 2, 5]);
      const lg = Array.from(F.lgamma(x).dataSync());
      [0, 0, Math.log(24)].forEach((v, i) => {
        expect(lg[i]).toBeCloseTo(v, 4);
      });
      expect(F.digamma(tensor([1])).dataSync()[0]).toBeCloseTo(-0.5772157, 4);
    });
  });

  test('random state is resumable', () => {
    manualSeed(1);
    const s = getRngState();
    const a = Array.from(randn([5]).dataSync());
    setRngState(s);
    expect(Array.from(randn([5]).dataSync())).toEqual(a);
  });

  test('errors are typed, and the matmul message reads as the README quotes it', () => {
    const a = randn([2, 3]);
    const b = randn([4, 5]);
    let e: unknown;
    try {
      a.matmul(b);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(ShapeError);
    expect(e).toBeInstanceOf(TesseraError);
    expect(String(e)).toBe('ShapeError: matmul expects [..., m, k] x [..., k, n]; got [2, 3] x [4, 5]');
    for (const C of [DTypeError, ValueError, AutogradError, DisposedError, FormatError])
      expect(new C('x')).toBeInstanceOf(TesseraError);
    a.dispose();
    b.dispose();
  });

  test('io: safetensors round trip with int64 and metadata; malformed bytes are a FormatError', () => {
    const sd = { w: tensor([1.5, -2]), ids: tensor([1, 2, 3], { dtype: 'int32' }) };
    const bytes = io.saveSafetensors(sd, { int64: true, metadata: { note: 'hi' } });
    const { tensors, metadata } = io.loadSafetensors(bytes, { keepHalf: true });
    expect(metadata.note).toBe('hi');
    expect(Array.from(tensors.get('w')!.dataSync())).toEqual([1.5, -2]);
    expect(tensors.get('ids')!.dtype).toBe('int32');
    expect(() => io.loadSafetensors(bytes.slice(0, 12))).toThrow(FormatError);
  });

  test('Progress and CPU controls are exported', () => {
    expect(typeof Progress).toBe('function');
    expect(typeof setCpuPath).toBe('function');
    expect(typeof setCpuThreads).toBe('function');
    expect(typeof arenaStats).toBe('function');
  });
});
