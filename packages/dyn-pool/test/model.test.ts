import { manualSeed, noGrad, optim, randint, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { BOUNDARY_SOURCES, type BoundarySource, type HourglassConfig, HourglassLM } from '../src/index.js';
import { expectCausal } from './causality.js';

const V = 11;
const SPACE = 3;
function config(boundary: BoundarySource, extra: Partial<HourglassConfig> = {}): HourglassConfig {
  return {
    vocabSize: V,
    dModel: 16,
    nHeads: 2,
    dFF: 32,
    layers: [1, 1, 1],
    boundary,
    maxSeqLen: 64,
    fixedK: 2,
    spaceIds: [SPACE],
    ...extra,
  };
}

describe('HourglassLM', () => {
  // The reference test.py: the logit at position i equals the last logit of the model run on ids[0..i].
  for (const source of BOUNDARY_SOURCES)
    it(`is causal with ${source} boundaries`, () => {
      manualSeed(3);
      const model = new HourglassLM(config(source, { gumbelEval: 'threshold' })).eval();
      expectCausal(model, source, V);
    });

  it('a change at the last position (a new space closing a group) changes only the last logit', () => {
    manualSeed(4);
    const model = new HourglassLM(config('whitespace')).eval();
    noGrad(() =>
      tidy(() => {
        const a = tensor([[1, 2, SPACE, 4, 5, SPACE, 6, 7]], { dtype: 'int32' });
        const b = tensor([[1, 2, SPACE, 4, 5, SPACE, 6, SPACE]], { dtype: 'int32' });
        const la = model.forward(a).logits.dataSync();
        const lb = model.forward(b).logits.dataSync();
        for (let v = 0; v < 6 * V + V; v++) expect(la[v]).toBeCloseTo(lb[v]!, 6);
        let diff = 0;
        for (let v = 7 * V; v < 8 * V; v++) diff += Math.abs(la[v]! - lb[v]!);
        expect(diff).toBeGreaterThan(1e-4);
      }),
    );
  });

  it('Gumbel boundaries are sampled at evaluation by default (as the reference code), thresholded on request', () => {
    manualSeed(6);
    noGrad(() =>
      tidy(() => {
        const ids = randint(0, V, [1, 64]);
        const sampled = new HourglassLM(config('gumbel')).eval();
        const a = Array.from(sampled.forward(ids).boundaries!.dataSync());
        const b = Array.from(sampled.forward(ids).boundaries!.dataSync());
        expect(a).not.toEqual(b);
        const th = new HourglassLM(config('gumbel', { gumbelEval: 'threshold' })).eval();
        const c = Array.from(th.forward(ids).boundaries!.dataSync());
        const logits = Array.from(th.forward(ids).bpLogits!.dataSync());
        expect(c).toEqual(logits.map((z) => (z > 0 ? 1 : 0)));
      }),
    );
  });

  it('shortens by the fixed factor and by whitespace', () => {
    noGrad(() =>
      tidy(() => {
        const ids = randint(0, V, [2, 24]);
        expect(new HourglassLM(config('fixed', { fixedK: 4 })).eval().forward(ids).shortLength).toBe(1 + 6);
        expect(new HourglassLM(config('none')).forward(ids).shortLength).toBe(24);
        const ws = tensor([[1, SPACE, 2, 2, SPACE, 4, 4, 4, SPACE, 1]], { dtype: 'int32' });
        const out = new HourglassLM(config('whitespace')).eval().forward(ws);
        expect(Array.from(out.boundaries!.dataSync())).toEqual([0, 1, 0, 0, 1, 0, 0, 0, 1, 0]);
        expect(out.shortLength).toBe(4);
      }),
    );
  });

  it('the vanilla model is the plain stack of all blocks; parameters follow PyTorch-style names', () => {
    const m = new HourglassLM(config('none', { layers: [1, 2, 1] }));
    const keys = [...m.stateDict().keys()];
    expect(keys).toContain('short.1.attn.q_proj.weight');
    expect(keys).not.toContain('null_group');
    const g = new HourglassLM(config('gumbel'));
    expect([...g.stateDict().keys()]).toEqual(
      expect.arrayContaining(['null_group', 'down_norm.weight', 'boundary_predictor.fc2.weight']),
    );
    expect(() => new HourglassLM(config('fixed', { fixedK: 0 }))).toThrow(/fixedK/);
    expect(() => new HourglassLM(config('whitespace', { spaceIds: [] }))).toThrow(/spaceIds/);
    expect(() => new HourglassLM(config('fixed', { layers: [1, 0, 1] }))).toThrow(/shortened block/);
    // config values that used to pass and misbehave later (no length limit, flipped Gumbel decisions, a typo
    // taken as the other mode)
    for (const [extra, msg] of [
      [{ maxSeqLen: Number.NaN }, /maxSeqLen must be an integer ≥ 1/],
      [{ maxSeqLen: 2.5 }, /maxSeqLen must be/],
      [{ ln: 'prelayer' }, /ln must be 'pre' or 'post'/],
      [{ temperature: -0.5 }, /temperature must be a positive number/],
      [{ temperature: 0 }, /temperature must be/],
      [{ gumbelEval: 'thresh' }, /gumbelEval must be 'sample' or 'threshold'/],
      [{ priorAlpha: 2 }, /priorAlpha must be in \(0, 1\)/],
    ] as [Partial<HourglassConfig>, RegExp][])
      expect(() => new HourglassLM(config('gumbel', extra)), JSON.stringify(extra)).toThrow(msg);
  });

  it("init 'normal' draws linear weights from N(0, initStd²) with zero biases (the reference's weights_init)", () => {
    manualSeed(5);
    const std = 0.02;
    const m = new HourglassLM(config('gumbel', { dModel: 32, dFF: 128, init: 'normal' }));
    expect(m.config.init).toBe('normal');
    let n = 0;
    let sum = 0;
    let sq = 0;
    let fourth = 0;
    let linears = 0;
    for (const [name, p] of m.namedParameters()) {
      const isLinear = /(proj|fc1|fc2|head)\.(weight|bias)$/.test(name);
      if (!isLinear) continue;
      const d = Array.from(p.dataSync());
      if (name.endsWith('.weight')) linears++;
      if (name.endsWith('.bias')) {
        expect(Math.max(...d.map(Math.abs)), name).toBe(0);
        continue;
      }
      for (const v of d) {
        n++;
        sum += v;
        sq += v * v;
        fourth += v ** 4;
      }
    }
    // every block's q/k/v/o and fc1/fc2 (3 blocks), the BP's two layers and the head
    expect(linears).toBe(3 * 6 + 2 + 1);
    // a Gaussian of std 0.02: mean 0 (SE std/√n), variance std² and kurtosis 3 (a uniform's is 1.8)
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan((4 * std) / Math.sqrt(n));
    expect(Math.sqrt(variance) / std).toBeCloseTo(1, 1);
    expect(fourth / n / variance ** 2).toBeGreaterThan(2.7);
    // the default stays tensor-core's PyTorch-style uniform: bounded by 1/√fan_in, kurtosis ≈ 1.8
    const t = new HourglassLM(config('none', { dModel: 32, dFF: 128 }));
    expect(t.config.init).toBe('torch');
    const w = [...t.namedParameters()].find(([k]) => k === 'pre.0.fc1.weight')![1];
    const wd = Array.from(w.dataSync());
    expect(Math.max(...wd.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(32));
    const v2 = wd.reduce((a, v) => a + v * v, 0) / wd.length;
    expect(wd.reduce((a, v) => a + v ** 4, 0) / wd.length / v2 ** 2).toBeLessThan(2);
    expect(() => new HourglassLM(config('none', { init: 'xavier' as 'normal' }))).toThrow(/init must be/);
    expect(() => new HourglassLM(config('none', { init: 'normal', initStd: -1 }))).toThrow(/initStd/);
  });

  it('rejects sequences longer than trained, empty ones and ids outside the vocabulary', () => {
    const m = new HourglassLM(config('fixed', { maxSeqLen: 8 }));
    expect(() => m.forward(randint(0, V, [1, 9]))).toThrow(/longer than the trained maxSeqLen 8/);
    expect(() => m.forward(tensor([[1, V]], { dtype: 'int32' }))).toThrow(/token ids must be in \[0, 11\)/);
    expect(() => m.forward(tensor([[0.5, 1]]))).toThrow(/int32/);
    expect(() => m.forward(tensor(new Int32Array(0), { shape: [0, 4], dtype: 'int32' }))).toThrow(
      /empty batch or sequence/,
    );
  });

  it('learns: a few Adam steps lower the loss for every source, and gradients reach the boundary predictor', () => {
    for (const source of ['fixed', 'gumbel', 'entropy', 'unigram'] as BoundarySource[]) {
      manualSeed(5);
      const m = new HourglassLM(config(source));
      const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
      // a periodic sequence is easy to predict
      const ids = tensor([Array.from({ length: 25 }, (_, i) => [1, 2, SPACE, 5][i % 4]!)], { dtype: 'int32' });
      const targets = tensor([Array.from({ length: 24 }, (_, i) => (i % 4 === 2 ? 1 : 0))]);
      const losses: number[] = [];
      for (let s = 0; s < 12; s++)
        tidy(() => {
          const r = m.loss(ids, { boundaryTargets: targets });
          r.loss.backward();
          losses.push(r.lm.itemSync());
          if (s === 0 && m.bp) {
            const g = m.bp!.fc1.weight.grad as Tensor;
            expect(g.abs().sum().itemSync()).toBeGreaterThan(0);
          }
          opt.step();
          opt.zeroGrad();
        });
      expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.7);
    }
  });

  it('the BCE-trained boundary predictor learns its unigram targets, and the model then pools at them', () => {
    manualSeed(7);
    const m = new HourglassLM(config('unigram'));
    const opt = new optim.Adam(m.parameters(), { lr: 3e-2 });
    // targets: a boundary after every token 2 (a learnable, content-defined rule)
    const seq = Array.from({ length: 33 }, (_, i) => [1, 2, 4, 2, 5, 6, 2][(i * 3) % 7]!);
    const ids = tensor([seq], { dtype: 'int32' });
    const y = seq.slice(0, 32).map((v) => (v === 2 ? 1 : 0));
    const targets = tensor([y]);
    for (let s = 0; s < 12; s++)
      tidy(() => {
        m.loss(ids, { boundaryTargets: targets }).loss.backward();
        opt.step();
        opt.zeroGrad();
      });
    m.eval();
    const got = noGrad(() =>
      tidy(() => Array.from(m.forward(ids.slice(1, 0, 32).contiguous()).boundaries!.dataSync())),
    );
    expect(got).toEqual(y);
  });
});
