import {
  cat,
  io,
  manualSeed,
  memory,
  nn,
  noGrad,
  randint,
  randn,
  ShapeError,
  type Tensor,
  tensor,
  tidy,
} from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';

const arr = (t: Tensor) => Array.from(t.dataSync());
const maxDiff = (a: Tensor, b: Tensor) => {
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
};

describe('Module state dicts use PyTorch names', () => {
  test('keys and shapes of common layers', () => {
    const m = new nn.Sequential(
      new nn.Linear(4, 8),
      new nn.BatchNorm1d(8),
      new nn.ReLU(),
      new nn.Linear(8, 2, { bias: false }),
    );
    expect([...m.stateDict()].map(([k, t]) => `${k}:${t.shape}`)).toEqual([
      '0.weight:8,4',
      '0.bias:8',
      '1.weight:8',
      '1.bias:8',
      '1.running_mean:8',
      '1.running_var:8',
      '1.num_batches_tracked:',
      '3.weight:2,8',
    ]);
    expect(m.numParameters()).toBe(8 * 4 + 8 + 8 + 8 + 16);
    const lstm = new nn.LSTM(3, 5, { numLayers: 2, bidirectional: true });
    const keys = [...lstm.stateDict().keys()];
    expect(keys.slice(0, 4)).toEqual(['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']);
    expect(keys).toContain('weight_ih_l1_reverse');
    expect(lstm.stateDict().get('weight_ih_l1')!.shape).toEqual([20, 10]);
    const mha = new nn.MultiheadAttention(8, 2);
    expect([...mha.stateDict().keys()]).toEqual(['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']);
  });

  test('loadStateDict is strict and names every missing, unexpected and mis-shaped key', () => {
    const a = new nn.Sequential(new nn.Linear(4, 3), new nn.Linear(3, 2));
    const state = new Map(a.stateDict());
    state.delete('1.bias');
    state.set('2.weight', randn([1]));
    state.set('0.weight', randn([3, 5]));
    const b = new nn.Sequential(new nn.Linear(4, 3), new nn.Linear(3, 2));
    const before = arr(b.stateDict().get('0.bias')!);
    let msg = '';
    try {
      b.loadStateDict(state);
    } catch (e) {
      expect(e).toBeInstanceOf(ShapeError);
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/missing keys: 1\.bias/);
    expect(msg).toMatch(/unexpected keys: 2\.weight/);
    expect(msg).toMatch(/0\.weight: expected \[3, 4\], got \[3, 5\]/);
    expect(arr(b.stateDict().get('0.bias')!)).toEqual(before); // nothing changed
  });

  test('a model round-trips through safetensors into a fresh model', () => {
    manualSeed(1);
    const a = new nn.Sequential(new nn.Conv1d(2, 4, 3, { padding: 1 }), new nn.GELU(), new nn.LayerNorm([4, 6]));
    const bytes = io.saveSafetensors(a.stateDict());
    const b = new nn.Sequential(new nn.Conv1d(2, 4, 3, { padding: 1 }), new nn.GELU(), new nn.LayerNorm([4, 6]));
    b.loadStateDict(io.loadSafetensors(bytes).tensors);
    const x = randn([3, 2, 6]);
    expect(maxDiff(a.forward(x), b.forward(x))).toBe(0);
  });
});

describe('layers', () => {
  test('Linear computes x Wᵀ + b', () => {
    const l = new nn.Linear(2, 2);
    l.loadStateDict({
      weight: tensor([
        [1, 2],
        [3, 4],
      ]),
      bias: tensor([0.5, -1]),
    });
    expect(arr(l.forward(tensor([[1, 1]])))).toEqual([3.5, 6]);
  });

  test('BatchNorm1d updates running statistics in training and uses them in eval', () => {
    const bn = new nn.BatchNorm1d(2, { momentum: 0.5 });
    const x = tensor([
      [1, 10],
      [3, 30],
    ]);
    bn.forward(x);
    expect(arr(bn.runningMean)).toEqual([1, 10]); // 0.5·0 + 0.5·[2, 20]
    // unbiased batch var: [2, 200]; 0.5·1 + 0.5·var
    expect(arr(bn.runningVar)).toEqual([1.5, 100.5]);
    expect(arr(bn.numBatchesTracked)).toEqual([1]);
    bn.eval();
    const y = bn.forward(tensor([[1, 10]]));
    expect(arr(y)[0]).toBeCloseTo(0, 5);
    expect(arr(y)[1]).toBeCloseTo(0, 5);
  });

  test('Dropout is identity in eval and scales kept units by 1/(1-p) in training', () => {
    manualSeed(2);
    const d = new nn.Dropout(0.25);
    const x = tensor(new Float32Array(4000).fill(1));
    const y = arr(d.forward(x));
    expect(new Set(y.map((v) => Math.round(v * 1e4) / 1e4))).toEqual(new Set([0, 1.3333]));
    expect(Math.abs(y.filter((v) => v === 0).length / 4000 - 0.25)).toBeLessThan(0.03);
    d.eval();
    expect(arr(d.forward(x))).toEqual(arr(x));
  });

  test('LSTM and GRU: shapes, batch-first equals time-first, reverse direction reads the sequence backwards', () => {
    manualSeed(3);
    const lstm = new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true });
    const x = randn([5, 2, 3]);
    const { output, h, c } = lstm.forward(x);
    expect(output.shape).toEqual([5, 2, 8]);
    expect(h.shape).toEqual([4, 2, 4]);
    expect(c.shape).toEqual([4, 2, 4]);
    // Final forward state of the last layer = output at the last step (first half); reverse = at step 0.
    expect(maxDiff(h.select(0, 2), output.select(0, 4).slice(1, 0, 4))).toBe(0);
    expect(maxDiff(h.select(0, 3), output.select(0, 0).slice(1, 4))).toBe(0);
    const bf = new nn.GRU(3, 4, { batchFirst: true });
    const tf = new nn.GRU(3, 4);
    tf.loadStateDict(bf.stateDict());
    expect(maxDiff(bf.forward(x.transpose(0, 1)).output.transpose(0, 1), tf.forward(x).output)).toBeLessThan(1e-6);
  });

  test('GRU cell matches a hand-written float64 GRU step', () => {
    manualSeed(4);
    const g = new nn.GRU(2, 3);
    const x = randn([1, 1, 2]);
    const { h } = g.forward(x);
    const sd = g.stateDict();
    const W = arr(sd.get('weight_ih_l0')!);
    const bi = arr(sd.get('bias_ih_l0')!);
    const bh = arr(sd.get('bias_hh_l0')!);
    const xv = arr(x);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const want = [0, 1, 2].map((j) => {
      const gx = (k: number) => W[k * 2]! * xv[0]! + W[k * 2 + 1]! * xv[1]! + bi[k]!;
      const r = sig(gx(j) + bh[j]!);
      const z = sig(gx(3 + j) + bh[3 + j]!);
      const n = Math.tanh(gx(6 + j) + r * bh[6 + j]!);
      return (1 - z) * n; // h0 = 0
    });
    for (const [j, v] of arr(h).entries()) expect(v).toBeCloseTo(want[j]!, 5);
  });

  test('MultiheadAttention: causal and key-padding masks hide what they should', () => {
    manualSeed(5);
    const mha = new nn.MultiheadAttention(8, 2, { batchFirst: true });
    const x = randn([2, 4, 8]);
    const { weights } = mha.forward(x, x, x, { isCausal: true });
    const w = weights!.dataSync();
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) expect(w[(b * 4 + i) * 4 + j]).toBe(0);
    const pad = tensor([
      [false, false, true, true],
      [false, false, false, false],
    ]);
    const r = mha.forward(x, x, x, { keyPaddingMask: pad });
    const w2 = r.weights!.dataSync();
    for (let i = 0; i < 4; i++) expect(w2[i * 4 + 2]! + w2[i * 4 + 3]!).toBe(0);
  });
});

describe('CausalLM with a KV cache', () => {
  test.each([
    ['rope, GQA', { positions: 'rope', nHeads: 4, nKvHeads: 2 }],
    ['learned positions', { positions: 'learned', nHeads: 2 }],
    ['sinusoidal, rmsnorm', { positions: 'sinusoidal', nHeads: 2, norm: 'rmsnorm' }],
  ] as const)('incremental decoding gives the logits of the full forward pass (%s)', (_n, extra) => {
    manualSeed(6);
    const lm = new nn.CausalLM({ vocabSize: 17, dModel: 16, nLayers: 2, dFF: 32, maxSeqLen: 32, ...extra });
    lm.eval();
    const ids = randint(0, 17, [2, 9]);
    noGrad(() =>
      tidy(() => {
        const full = lm.forward(ids);
        const cache = new nn.KVCache();
        const parts = [lm.forward(ids.slice(1, 0, 4), { cache })];
        for (let t = 4; t < 9; t++) parts.push(lm.forward(ids.slice(1, t, t + 1), { cache }));
        expect(cache.length(0)).toBe(9);
        expect(cache.position(1)).toBe(9);
        const inc = cat(parts, 1);
        expect(maxDiff(full, inc)).toBeLessThan(1e-5);
      }),
    );
  });

  test('causality: the logit at position i equals the last logit of the model run on the prefix [0..i]', () => {
    manualSeed(7);
    const lm = new nn.CausalLM({ vocabSize: 11, dModel: 8, nLayers: 1, nHeads: 2 });
    const ids = randint(0, 11, [1, 6]);
    const full = lm.forward(ids);
    for (const i of [0, 3, 5]) {
      const p = lm.forward(ids.slice(1, 0, i + 1));
      expect(maxDiff(full.select(1, i), p.select(1, i))).toBeLessThan(1e-5);
    }
  });

  test('a storage policy plugs in through the cache interface and sees attention probabilities', () => {
    manualSeed(8);
    const seen: number[][] = [];
    class Recording extends nn.ConcatStorage {
      observe(layer: number, probs: Tensor) {
        seen.push([layer, ...probs.shape]);
      }
    }
    const lm = new nn.CausalLM({ vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 2 });
    const cache = new nn.KVCache(new Recording());
    lm.generate(randint(0, 9, [1, 3]), { maxNewTokens: 2, temperature: 0, cache });
    expect(seen.slice(0, 2)).toEqual([
      [0, 1, 2, 3, 3],
      [1, 1, 2, 3, 3],
    ]);
    expect(seen[2]).toEqual([0, 1, 2, 1, 4]);
    expect(cache.length(0)).toBe(4);
  });

  test('a storage that returns fewer keys than the step has tokens is a ValueError, not NaN rows', () => {
    manualSeed(9);
    // Keeps only the last 2 positions at append (evicting inside the step, before its attention ran).
    class Window2 extends nn.ConcatStorage {
      override read(layer: number) {
        const kv = super.read(layer);
        if (!kv || kv.k.shape[2]! <= 2) return kv;
        const L = kv.k.shape[2]!;
        return { k: kv.k.slice(2, L - 2, L), v: kv.v.slice(2, L - 2, L) };
      }
    }
    const lm = new nn.CausalLM({ vocabSize: 9, dModel: 8, nLayers: 1, nHeads: 2 });
    noGrad(() => {
      expect(() => lm.forward(randint(0, 9, [1, 4]), { cache: new nn.KVCache(new Window2()) })).toThrow(
        /returned 2 keys for 4 new tokens at layer 0/,
      );
      // One token a step over the same policy is fine: every query has its own key and the window's.
      const cache = new nn.KVCache(new Window2());
      for (let t = 0; t < 4; t++) {
        const y = lm.forward(randint(0, 9, [1, 1]), { cache });
        expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
      }
    });
  });
});

describe('ConcatStorage (the exact cache) grows in place', () => {
  // appends as a prefill then decoding would make them: one chunk, single positions, a second chunk, more singles
  const steps = [5, 1, 1, 3, 1, 1, 1, 1, 1, 7, 1];
  test.each([[{}], [{ capacity: 3 }], [{ capacity: 64 }]] as const)(
    'every read equals the concatenation of all appends so far, bit for bit (%o)',
    (opts) => {
      manualSeed(21);
      const s = new nn.ConcatStorage(opts);
      const ks: Tensor[] = [];
      const vs: Tensor[] = [];
      let pos = 0;
      noGrad(() => {
        for (const T of steps) {
          const k = randn([2, 3, T, 4]);
          const v = randn([2, 3, T, 4]);
          ks.push(k);
          vs.push(v);
          s.append(1, { k, v });
          pos += T;
          expect(s.length(1)).toBe(pos);
          expect(arr(s.read(1)!.k)).toEqual(arr(cat(ks, 2)));
          expect(arr(s.read(1)!.v)).toEqual(arr(cat(vs, 2)));
        }
      });
      expect(s.read(0)).toBeNull();
      s.reset();
      expect(s.length(1)).toBe(0);
    },
  );

  test('holds no tensors after reset, and none leak from appends', () => {
    const before = memory().numTensors;
    const s = new nn.ConcatStorage();
    noGrad(() => {
      for (const T of steps) {
        const k = randn([1, 2, T, 4]);
        const v = randn([1, 2, T, 4]);
        s.append(0, { k, v });
        k.dispose();
        v.dispose();
      }
    });
    // a buffer and the read view, for keys and values
    expect(memory().numTensors - before).toBe(4);
    s.reset();
    expect(memory().numTensors).toBe(before);
  });

  test('appends autograd records concatenate, so gradients reach the appended keys and values', () => {
    const s = new nn.ConcatStorage();
    const k0 = randn([1, 1, 2, 3]);
    const v0 = randn([1, 1, 2, 3]);
    s.append(0, { k: k0, v: v0 });
    const k1 = tensor(Float32Array.from([1, 2, 3]), { shape: [1, 1, 1, 3], requiresGrad: true });
    const v1 = tensor(Float32Array.from([4, 5, 6]), { shape: [1, 1, 1, 3], requiresGrad: true });
    s.append(0, { k: k1, v: v1 });
    const w = tensor(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), { shape: [1, 1, 3, 3] });
    const { k, v } = s.read(0)!;
    k.mul(w).sum().add(v.mul(w).sum().mul(2)).backward();
    expect(arr(k1.grad!)).toEqual([7, 8, 9]);
    expect(arr(v1.grad!)).toEqual([14, 16, 18]);
    // and the layer keeps concatenating afterwards (its values are part of a graph)
    noGrad(() => s.append(0, { k: k0.slice(2, 0, 1), v: v0.slice(2, 0, 1) }));
    expect(arr(s.read(0)!.k)).toEqual([...arr(k0), 1, 2, 3, ...arr(k0.slice(2, 0, 1))]);
    s.reset();
  });

  test('bad arguments are typed errors', () => {
    expect(() => new nn.ConcatStorage({ capacity: -1 })).toThrow(/capacity must be a non-negative integer/);
    expect(() => new nn.ConcatStorage({ capacity: 2.5 })).toThrow(/capacity/);
    const s = new nn.ConcatStorage();
    noGrad(() => s.append(0, { k: randn([1, 2, 3, 4]), v: randn([1, 2, 3, 4]) }));
    expect(() => noGrad(() => s.append(0, { k: randn([1, 3, 1, 4]), v: randn([1, 3, 1, 4]) }))).toThrow(ShapeError);
    expect(() => noGrad(() => s.append(0, { k: randn([1, 3, 1, 4]), v: randn([1, 3, 1, 4]) }))).toThrow(
      /holds keys \[1,2,3,4\]; cannot append \[1,3,1,4\] \(B, H and d must match\)/,
    );
    // values are checked too (their head dim may differ from the keys', not from their own)
    expect(() => noGrad(() => s.append(0, { k: randn([1, 2, 1, 4]), v: randn([1, 2, 1, 5]) }))).toThrow(
      /holds values \[1,2,3,4\]; cannot append \[1,2,1,5\]/,
    );
    expect(s.length(0)).toBe(3);
    s.reset();
  });
});

describe('building and running modules leaks nothing', () => {
  test('constructing a model creates exactly its parameters and buffers', () => {
    const before = memory().numTensors;
    const builders: (() => nn.Module)[] = [
      () => new nn.Sequential(new nn.Linear(8, 16), new nn.Tanh(), new nn.Linear(16, 3)),
      () =>
        new nn.Sequential(
          new nn.Conv1d(2, 4, 3),
          new nn.BatchNorm1d(4),
          new nn.Conv2d(1, 2, 3),
          new nn.GroupNorm(2, 4),
        ),
      () => new nn.Sequential(new nn.Embedding(10, 4, { paddingIdx: 0 }), new nn.LayerNorm(4), new nn.RMSNorm(4)),
      () => new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true }),
      () => new nn.MultiheadAttention(8, 2),
      () => new nn.CausalLM({ vocabSize: 11, dModel: 8, nLayers: 2, nHeads: 2, positions: 'learned', maxSeqLen: 16 }),
    ];
    for (const make of builders) {
      const m = make();
      expect(memory().numTensors - before).toBe(m.stateDict().size);
      for (const t of m.stateDict().values()) t.dispose();
      expect(memory().numTensors).toBe(before);
    }
  });

  test('forward and backward inside tidy leave only the gradients', () => {
    const lm = new nn.CausalLM({ vocabSize: 11, dModel: 8, nLayers: 2, nHeads: 2, nKvHeads: 1 });
    const ids = randint(0, 11, [2, 5]);
    const step = () => tidy(() => lm.forward(ids).sum().backward());
    step();
    const before = memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(memory().numTensors).toBe(before);
  });
});

describe('KV cache hooks', () => {
  test('applyRope against a float64 rotation (rotate-half, angle = position · base^(−2i/d))', () => {
    const [T, d, off, base] = [3, 8, 5, 100];
    const x = randn([1, 2, T, d]);
    const xs = x.dataSync();
    for (const inverse of [false, true]) {
      const y = nn.applyRope(x, off, base, inverse).dataSync();
      for (let r = 0; r < 2 * T; r++)
        for (let k = 0; k < d; k++) {
          const i = k % (d / 2);
          const a = (off + (r % T)) * base ** ((-2 * i) / d);
          const rot = k < d / 2 ? -xs[r * d + k + d / 2]! : xs[r * d + k - d / 2]!;
          const want = xs[r * d + k]! * Math.cos(a) + (inverse ? -1 : 1) * rot * Math.sin(a);
          expect(Math.abs(y[r * d + k]! - want)).toBeLessThan(1e-6 * (1 + Math.abs(want)));
        }
    }
  });

  test('applyRope inverse undoes the rotation', () => {
    const x = randn([1, 2, 5, 8]);
    const back = nn.applyRope(nn.applyRope(x, 3), 3, 10000, true);
    const a = x.dataSync();
    const b = back.dataSync();
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i]!, 5);
  });

  test('a cache can start at a given position (a restored prefix)', () => {
    manualSeed(9);
    const lm = new nn.CausalLM({ vocabSize: 9, dModel: 8, nLayers: 1, nHeads: 2 });
    lm.eval();
    const ids = randint(0, 9, [1, 6]);
    const full = lm.forward(ids);
    // Restore the first 4 tokens' keys/values into a fresh cache that starts at position 4.
    const c1 = new nn.KVCache();
    lm.forward(ids.slice(1, 0, 4), { cache: c1 });
    const stored = new nn.ConcatStorage();
    stored.append(0, c1.read(0)!);
    const c2 = new nn.KVCache(stored, { startPosition: 4 });
    const tail = lm.forward(ids.slice(1, 4), { cache: c2 });
    expect(maxDiff(full.slice(1, 4), tail)).toBeLessThan(1e-5);
    expect(() => new nn.KVCache(undefined, { startPosition: -1 })).toThrow(/startPosition/);
  });
});
