// Bad configurations and inputs of the nn layer: each refused with a typed error where it used to build something
// else silently (no positions, another norm), compute NaN, read past a row, or change a model it then refused.
import { describe, expect, test } from 'vitest';
import { DisposedError, DTypeError, F, manualSeed, nn, randn, ShapeError, tensor, zeros } from '../src/index.js';

const i32 = (xs: number[]) => tensor(Int32Array.from(xs), { dtype: 'int32' });

describe('nn refuses what it cannot honour', () => {
  test('a refused loadStateDict changes nothing (a disposed or non-tensor entry is found before any copy)', () => {
    const m = new nn.Linear(2, 1);
    const before = Array.from(m.weight.dataSync());
    const gone = tensor([7]);
    gone.dispose();
    expect(() => m.loadStateDict({ weight: tensor([[5, 6]]), bias: gone })).toThrow(DisposedError);
    expect(Array.from(m.weight.dataSync())).toEqual(before);
    expect(() => m.loadStateDict({ weight: tensor([[5, 6]]), bias: [1] as never })).toThrow(/'bias' is not a tensor/);
    expect(Array.from(m.weight.dataSync())).toEqual(before);
    // and a good one still loads, with a dtype conversion
    m.loadStateDict({ weight: tensor([[5, 6]]), bias: i32([2]) });
    expect(Array.from(m.weight.dataSync())).toEqual([5, 6]);
    expect(Array.from(m.bias!.dataSync())).toEqual([2]);
  });

  test('configurations: counts, choices, RoPE base, eps and momentum', () => {
    const lm = { vocabSize: 10, dModel: 8, nLayers: 1, nHeads: 2 };
    for (const [cfg, msg] of [
      [{ positions: 'Rope' }, /positions must be 'rope', 'learned', 'sinusoidal'; got "Rope"/],
      [{ norm: 'RMSNorm' }, /norm must be 'layernorm', 'rmsnorm'/],
      [{ activation: 'swish' }, /activation must be/],
      [{ nLayers: Number.NaN }, /nLayers must be an integer ≥ 1/],
      [{ nLayers: 1.5 }, /nLayers must be/],
      [{ vocabSize: 0 }, /vocabSize must be/],
      [{ maxSeqLen: Number.NaN }, /maxSeqLen must be/],
      [{ dFF: 0 }, /dFF must be an integer ≥ 1/],
    ] as [object, RegExp][])
      expect(() => new nn.CausalLM({ ...lm, ...cfg } as nn.CausalLMConfig), JSON.stringify(cfg)).toThrow(msg);
    for (const base of [0, -1, Number.NaN])
      expect(() => new nn.CausalSelfAttention({ dModel: 8, nHeads: 2, rope: true, ropeBase: base })).toThrow(
        /ropeBase must be a finite number > 0/,
      );
    expect(() => nn.applyRope(randn([1, 1, 2, 4]), 0, 0)).toThrow(/ropeBase/);
    expect(() => nn.applyRope(randn([4]))).toThrow(ShapeError);
    expect(() => new nn.CausalSelfAttention({ dModel: 8, nHeads: 2.5 })).toThrow(/nHeads must be an integer ≥ 1/);
    expect(() => new nn.CausalSelfAttention({ dModel: 8, nHeads: 2, dropout: 1.5 })).toThrow(
      /dropout must be in \[0, 1\)/,
    );
    expect(() => new nn.MultiheadAttention(8, -2)).toThrow(/numHeads must be/);
    expect(() => new nn.MultiheadAttention(8, 2, { dropout: 2 })).toThrow(/dropout must be/);
    expect(() => new nn.LayerNorm(4, { eps: -1 })).toThrow(/eps must be a finite number ≥ 0/);
    expect(() => new nn.RMSNorm(4, { eps: Number.NaN })).toThrow(/eps must be/);
    expect(() => new nn.BatchNorm1d(4, { momentum: Number.NaN })).toThrow(/momentum must be in \[0, 1\]/);
    expect(() => new nn.GroupNorm(-2, 4)).toThrow(/numGroups must be an integer ≥ 1/);
    expect(() => new nn.Embedding(3, 2, { paddingIdx: 1.5 })).toThrow(/paddingIdx must be an integer/);
  });

  test('MultiheadAttention applies its dropout while training (it was ignored), not in eval', () => {
    manualSeed(1);
    const m = new nn.MultiheadAttention(8, 2, { dropout: 0.5 });
    const q = randn([3, 1, 8]);
    const run = () => Array.from(m.forward(q, q, q).output.dataSync());
    const a = run();
    expect(run()).not.toEqual(a);
    m.eval();
    const c = run();
    expect(run()).toEqual(c);
  });

  test('fractional indices are refused instead of making a view across rows', () => {
    const x = tensor([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(() => x.select(0, 1.5)).toThrow(/select: index must be an integer; got 1.5/);
    expect(() => x.slice(0, 0.5, 2)).toThrow(/slice: start must be an integer/);
    expect(Array.from(x.slice(0, 1, Number.POSITIVE_INFINITY).dataSync())).toEqual([3, 4, 5, 6]);
  });

  test('nllLoss checks its targets and class weights as crossEntropy does', () => {
    const logp = randn([3, 4]).logSoftmax(1);
    expect(() => F.nllLoss(logp, i32([0, 1]))).toThrow(ShapeError);
    expect(() => F.nllLoss(randn([2, 4, 3]).logSoftmax(1), i32([0, 1, 2, 3, 0, 1]).reshape([3, 2]))).toThrow(
      ShapeError,
    );
    expect(() => F.nllLoss(logp, i32([0, 1, 2]), { weight: tensor([1, 1, 1, 1, 1, 1]) })).toThrow(
      /weight must be \[4\]/,
    );
    expect(() => F.nllLoss(logp, tensor([0, 1, 2]))).toThrow(DTypeError);
    // an independent value: −mean of the picked log-probabilities
    const lp = Array.from(logp.dataSync());
    expect(F.nllLoss(logp, i32([0, 1, 3])).itemSync()).toBeCloseTo(-(lp[0]! + lp[5]! + lp[11]!) / 3, 5);
  });

  test('GRU and LSTM refuse an initial state of another layer count, batch or size', () => {
    const gru = new nn.GRU(3, 4, { numLayers: 2 });
    const x = randn([5, 2, 3]);
    expect(() => gru.forward(x, zeros([1, 2, 4]))).toThrow(/GRU: h0 must be \[2, 2, 4\]; got \[1, 2, 4\]/);
    expect(() => new nn.GRU(3, 4).forward(x, zeros([2, 2, 4]))).toThrow(ShapeError);
    const lstm = new nn.LSTM(3, 4);
    expect(() => lstm.forward(x, { h: zeros([1, 2, 4]), c: zeros([1, 3, 4]) })).toThrow(/c0 must be \[1, 2, 4\]/);
    expect(gru.forward(x, zeros([2, 2, 4])).h.shape).toEqual([2, 2, 4]);
  });

  test('KVCache takes keys and values of one shape and keeps one dtype per layer; SDPA pairs K and V', () => {
    const cache = new nn.KVCache();
    expect(() => cache.append(0, randn([1, 2, 3, 4]), randn([1, 1, 3, 4]))).toThrow(/of one shape/);
    expect(cache.position(0)).toBe(0);
    cache.append(0, randn([1, 2, 3, 4]), randn([1, 2, 3, 4]));
    const k = i32(Array.from({ length: 8 }, (_, i) => i)).reshape([1, 2, 1, 4]);
    expect(() => cache.append(0, k, k)).toThrow(DTypeError);
    expect(cache.position(0)).toBe(3);
    cache.reset();
    cache.append(0, k, k); // after reset() a layer may start over in another dtype
    expect(() => F.scaledDotProductAttention(randn([1, 2, 3, 4]), randn([1, 2, 3, 4]), randn([1, 1, 3, 4]))).toThrow(
      /must agree in every dim but the last/,
    );
  });

  test('generate refuses token counts, temperatures and top-k it cannot honour', () => {
    manualSeed(2);
    const lm = new nn.CausalLM({ vocabSize: 10, dModel: 8, nLayers: 1, nHeads: 2 });
    const p = i32([1, 2]).reshape([1, 2]);
    expect(() => lm.generate(p, { maxNewTokens: 1.5 })).toThrow(/maxNewTokens must be an integer ≥ 0/);
    expect(() => lm.generate(p, { maxNewTokens: 2, temperature: -1 })).toThrow(/temperature must be/);
    expect(() => lm.generate(p, { maxNewTokens: 2, topK: 0 })).toThrow(/topK must be an integer ≥ 1/);
    expect(lm.generate(p, { maxNewTokens: 2, temperature: 0 }).shape).toEqual([1, 4]);
  });
});
