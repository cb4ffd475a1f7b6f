// Transformer-XL relative attention (positions: 'relative'): the scores against a float64 evaluation of the
// definition score(i, j) = [(q_i + u)·k_j + (q_i + v)·W_R R_{i−j}] / √d_head, the rel-shift against its
// index formula, gradients against central differences of the float64 reference, the model's causality
// (the reference test.py) for every boundary source, the shortened stack's own position count, and the
// checkpoint round trip.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, noGrad, randint, randn, type Tensor, tensor, tidy, ValueError } from '@tessera/tensor-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { makeProgram } from '../src/cli.js';
import {
  BOUNDARY_SOURCES,
  evaluate,
  HourglassLM,
  loadTrained,
  prepareCorpus,
  RelativeMultiHeadAttention,
  RelativeTransformerBlock,
  relativePositionTable,
  relShift,
  train,
} from '../src/index.js';
import { expectCausal } from './causality.js';

const B = 2;
const T = 6;
const D = 8;
const H = 2;
const DH = D / H;

interface Params {
  x: Float64Array; // [B, T, D]
  wq: Float64Array; // [D, D] (out, in), as torch.nn.Linear
  bq: Float64Array;
  wk: Float64Array;
  bk: Float64Array;
  wv: Float64Array;
  bv: Float64Array;
  wo: Float64Array;
  bo: Float64Array;
  wr: Float64Array;
  br: Float64Array;
  u: Float64Array; // [H, DH]
  v: Float64Array;
}

const f64 = (t: Tensor) => Float64Array.from(t.dataSync());

function paramsOf(m: RelativeMultiHeadAttention, x: Tensor, u: Tensor, v: Tensor): Params {
  return {
    x: f64(x),
    wq: f64(m.qProj.weight),
    bq: f64(m.qProj.bias!),
    wk: f64(m.kProj.weight),
    bk: f64(m.kProj.bias!),
    wv: f64(m.vProj.weight),
    bv: f64(m.vProj.bias!),
    wo: f64(m.oProj.weight),
    bo: f64(m.oProj.bias!),
    wr: f64(m.rNet.weight),
    br: f64(m.rNet.bias!),
    u: f64(u),
    v: f64(v),
  };
}

/** y = W a + b for one row a of length D. */
function lin(w: Float64Array, b: Float64Array, a: ArrayLike<number>): Float64Array {
  const y = new Float64Array(D);
  for (let o = 0; o < D; o++) {
    let s = b[o]!;
    for (let i = 0; i < D; i++) s += w[o * D + i]! * a[i]!;
    y[o] = s;
  }
  return y;
}

/** R for a distance p, written from Transformer-XL's definition (sines, then cosines; f_i = 10000^(−2i/D)). */
function sinusoid(p: number): Float64Array {
  const r = new Float64Array(D);
  for (let i = 0; i < D / 2; i++) {
    r[i] = Math.sin(p / 10000 ** ((2 * i) / D));
    r[D / 2 + i] = Math.cos(p / 10000 ** ((2 * i) / D));
  }
  return r;
}

/** Scores [B, H, T, T] (−∞ above the diagonal) and the attention output [B, T, D], in float64, directly. */
function reference(p: Params): { scores: Float64Array; out: Float64Array } {
  const scores = new Float64Array(B * H * T * T);
  const out = new Float64Array(B * T * D);
  const rk = Array.from({ length: T }, (_, dist) => lin(p.wr, p.br, sinusoid(dist))); // W_R R_dist
  for (let b = 0; b < B; b++) {
    const row = (t: number) => p.x.subarray((b * T + t) * D, (b * T + t + 1) * D);
    const q = Array.from({ length: T }, (_, t) => lin(p.wq, p.bq, row(t)));
    const k = Array.from({ length: T }, (_, t) => lin(p.wk, p.bk, row(t)));
    const v = Array.from({ length: T }, (_, t) => lin(p.wv, p.bv, row(t)));
    for (let i = 0; i < T; i++) {
      const ctx = new Float64Array(D);
      for (let h = 0; h < H; h++) {
        const s = new Float64Array(T).fill(Number.NEGATIVE_INFINITY);
        for (let j = 0; j <= i; j++) {
          let acc = 0;
          for (let e = 0; e < DH; e++) {
            const c = h * DH + e;
            acc += (q[i]![c]! + p.u[c]!) * k[j]![c]! + (q[i]![c]! + p.v[c]!) * rk[i - j]![c]!;
          }
          s[j] = acc / Math.sqrt(DH);
        }
        for (let j = 0; j < T; j++) scores[((b * H + h) * T + i) * T + j] = s[j]!;
        let mx = Number.NEGATIVE_INFINITY;
        for (let j = 0; j <= i; j++) mx = Math.max(mx, s[j]!);
        let z = 0;
        for (let j = 0; j <= i; j++) z += Math.exp(s[j]! - mx);
        for (let j = 0; j <= i; j++)
          for (let e = 0; e < DH; e++) ctx[h * DH + e]! += (Math.exp(s[j]! - mx) / z) * v[j]![h * DH + e]!;
      }
      out.set(lin(p.wo, p.bo, ctx), (b * T + i) * D);
    }
  }
  return { scores, out };
}

function setup(seed: number) {
  manualSeed(seed);
  const m = new RelativeMultiHeadAttention({ dModel: D, nHeads: H });
  const x = randn([B, T, D]);
  // u and v start at zero in the model; random here so that both bias terms are exercised.
  const u = randn([H, DH], { std: 0.5 });
  const v = randn([H, DH], { std: 0.5 });
  const r = tensor(relativePositionTable(T, D), { shape: [T, D] });
  return { m, x, u, v, r };
}

describe('relative attention (Transformer-XL)', () => {
  it('R lists distances T − 1 … 0 as sines then cosines; bad sizes are typed errors', () => {
    const R = relativePositionTable(5, D);
    for (let m = 0; m < 5; m++) {
      const want = sinusoid(4 - m);
      for (let c = 0; c < D; c++) expect(R[m * D + c]).toBeCloseTo(want[c]!, 6);
    }
    expect(() => relativePositionTable(0, D)).toThrow(ValueError);
    expect(() => relativePositionTable(4, 7)).toThrow(ValueError);
  });

  it('relShift puts the term of distance i − j at (i, j) for every j ≤ i', () => {
    const n = 5;
    const x = Float32Array.from({ length: 2 * n * n }, (_, k) => k); // value encodes (batch, row, column)
    const y = relShift(tensor(x, { shape: [2, n, n] })).dataSync();
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < n; i++)
        for (let j = 0; j <= i; j++) expect(y[(b * n + i) * n + j]).toBe(x[(b * n + i) * n + (n - 1 - (i - j))]);
    expect(() => relShift(tensor(new Float32Array(6), { shape: [3, 2] }))).toThrow(/relShift expects/);
  });

  it('relShift of T queries over L ≥ T positions (a cache): (i, j) holds distance (L − T + i) − j', () => {
    const [T, L] = [3, 7];
    const x = Float32Array.from({ length: 2 * T * L }, (_, k) => k);
    const y = relShift(tensor(x, { shape: [2, T, L] })).dataSync();
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j <= L - T + i; j++) {
          const dist = L - T + i - j; // column m of x holds distance L − 1 − m
          expect(y[(b * T + i) * L + j]).toBe(x[(b * T + i) * L + (L - 1 - dist)]);
        }
  });

  it('scores and output equal a float64 evaluation of the definition', () => {
    const { m, x, u, v, r } = setup(11);
    const want = reference(paramsOf(m, x, u, v));
    noGrad(() =>
      tidy(() => {
        const got = m.scores(x, r, u, v).scores.dataSync();
        for (let k = 0; k < want.scores.length; k++) {
          if (want.scores[k] === Number.NEGATIVE_INFINITY) expect(got[k]).toBe(Number.NEGATIVE_INFINITY);
          else expect(Math.abs(got[k]! - want.scores[k]!)).toBeLessThan(1e-5 * (1 + Math.abs(want.scores[k]!)));
        }
        const out = m.forward(x, r, u, v).dataSync();
        for (let k = 0; k < want.out.length; k++) expect(Math.abs(out[k]! - want.out[k]!)).toBeLessThan(1e-5);
      }),
    );
    // The position term matters: the same weights without it (R = 0 and v = 0) give other scores.
    const plain = reference({ ...paramsOf(m, x, u, v), wr: new Float64Array(D * D), br: new Float64Array(D) });
    let diff = 0;
    for (let k = 0; k < plain.out.length; k++) diff = Math.max(diff, Math.abs(plain.out[k]! - want.out[k]!));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('gradients equal central differences of the float64 reference', () => {
    const { m, x, u, v, r } = setup(12);
    const xg = x.detach().requiresGrad_();
    const ug = u.detach().requiresGrad_();
    const vg = v.detach().requiresGrad_();
    const g = Float64Array.from(randn([B, T, D]).dataSync()); // L = Σ out ⊙ g
    const gT = tensor(Float32Array.from(g), { shape: [B, T, D] });
    tidy(() => m.forward(xg, r, ug, vg).mul(gT).sum().backward());
    const p0 = paramsOf(m, x, u, v);
    const loss = (p: Params) => reference(p).out.reduce((s, o, k) => s + o * g[k]!, 0);
    const checks: [keyof Params, Tensor][] = [
      ['x', xg.grad!],
      ['u', ug.grad!],
      ['v', vg.grad!],
      ['wr', m.rNet.weight.grad!],
      ['wq', m.qProj.weight.grad!],
      ['wk', m.kProj.weight.grad!],
    ];
    // W_R's bias adds (q_i + v)·b_R to every score of row i alike, and softmax ignores that: its gradient is 0.
    for (const gb of Array.from(m.rNet.bias!.grad!.dataSync())) expect(Math.abs(gb)).toBeLessThan(1e-5);
    const eps = 1e-6;
    for (const [name, grad] of checks) {
      const an = grad.dataSync();
      const n = p0[name].length;
      // every coordinate of the small ones, a spread of the rest
      const idx = n <= 16 ? Array.from({ length: n }, (_, k) => k) : Array.from({ length: 16 }, (_, k) => (k * 37) % n);
      let scale = 0;
      for (const k of idx) scale = Math.max(scale, Math.abs(an[k]!));
      expect(scale, name).toBeGreaterThan(1e-4); // the check must see a gradient
      for (const k of idx) {
        const plus = { ...p0, [name]: Float64Array.from(p0[name]) };
        const minus = { ...p0, [name]: Float64Array.from(p0[name]) };
        plus[name][k]! += eps;
        minus[name][k]! -= eps;
        const fd = (loss(plus) - loss(minus)) / (2 * eps);
        expect(Math.abs(an[k]! - fd), `${name}[${k}]: ${an[k]} vs ${fd}`).toBeLessThan(2e-4 * (1 + Math.abs(fd)));
      }
    }
  });

  it('the block is post-LN by default and rejects widths it cannot split', () => {
    expect(() => new RelativeMultiHeadAttention({ dModel: 10, nHeads: 4 })).toThrow(ValueError);
    expect(() => new RelativeMultiHeadAttention({ dModel: 9, nHeads: 3 })).toThrow(ValueError);
    const { x, u, v, r } = setup(13);
    const blk = new RelativeTransformerBlock({ dModel: D, nHeads: H, dFF: 16 });
    const y = noGrad(() => blk.forward(x, r, u, v)).dataSync();
    // post-LN: every output row is normalised (LayerNorm weight 1, bias 0 at the start)
    for (let row = 0; row < B * T; row++) {
      let mean = 0;
      for (let c = 0; c < D; c++) mean += y[row * D + c]! / D;
      expect(Math.abs(mean)).toBeLessThan(1e-5);
    }
    expect(() => noGrad(() => blk.attn.forward(x, r.slice(0, 0, T - 1), u, v))).toThrow(/R must be/);
  });
});

describe("HourglassLM with positions: 'relative'", () => {
  const V = 11;
  const SPACE = 3;
  const config = (boundary: (typeof BOUNDARY_SOURCES)[number]) => ({
    vocabSize: V,
    dModel: 16,
    nHeads: 2,
    dFF: 32,
    layers: [1, 1, 1] as [number, number, number],
    boundary,
    maxSeqLen: 64,
    fixedK: 2,
    spaceIds: [SPACE],
    positions: 'relative' as const,
    gumbelEval: 'threshold' as const,
  });

  // The reference test.py: the logit at position i equals the last logit of the model run on ids[0..i].
  for (const source of BOUNDARY_SOURCES)
    it(`is causal with ${source} boundaries`, () => {
      manualSeed(19); // a seed whose untrained predictor places some boundaries, but not everywhere
      const model = new HourglassLM(config(source)).eval();
      // u and v start at zero; move them so that their terms take part
      noGrad(() => {
        for (const p of [model.rWBias!, model.rRBias!]) p.copy_(randn(p.shape, { std: 0.5 }));
      });
      expectCausal(model, source, V);
    });

  it('the shortened blocks count positions over the shortened sequence; u, v are global and start at zero', () => {
    manualSeed(5);
    const model = new HourglassLM(config('fixed')).eval();
    const lengths: Record<string, number[]> = { pre: [], short: [], post: [] };
    for (const stack of ['pre', 'short', 'post'] as const)
      for (const b of model[stack].items) {
        const blk = b as RelativeTransformerBlock;
        const f = blk.forward.bind(blk);
        blk.forward = (x, r, u, v) => {
          lengths[stack]!.push(r.shape[0]!);
          expect(u).toBe(model.rWBias);
          expect(v).toBe(model.rRBias);
          return f(x, r, u, v);
        };
      }
    const out = noGrad(() => model.forward(randint(0, V, [2, 20])));
    expect(out.shortLength).toBe(1 + 10); // null group + 20 / 2
    expect(lengths).toEqual({ pre: [20], short: [11], post: [20] });
    expect(Array.from(model.rWBias!.dataSync())).toEqual(new Array(16).fill(0));
    const names = [...model.stateDict().keys()];
    for (const n of ['r_w_bias', 'r_r_bias', 'pre.0.attn.r_net.weight', 'short.0.attn.q_proj.weight'])
      expect(names).toContain(n);
    expect(() => new HourglassLM({ ...config('none'), positions: 'absolute' as 'relative' })).toThrow(
      /positions must be 'rotary' or 'relative'/,
    );
  });

  it('checkpoints round-trip the option and the weights; checkpoints from before it load as rotary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-rel-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const words = ['the', 'whale', 'ship', 'sea', 'a', 'and', 'of'];
    const text = Array.from({ length: 800 }, (_, i) => words[(i * 5 + (i >> 3)) % words.length]).join(' ');
    const file = join(dir, 'text.txt');
    writeFileSync(file, text);
    const ck = join(dir, 'rel.ckpt');
    const out: string[] = [];
    const program = makeProgram((l) => out.push(l), { exitOverride: true });
    const tiny = ['--d-model', '16', '--heads', '2', '--seq-len', '24', '--batch', '2', '--no-progress'];
    await program.parseAsync([
      'node',
      'dyn-pool',
      'train',
      file,
      '-o',
      ck,
      '--steps',
      '3',
      '--positions',
      'relative',
      '-b',
      'fixed',
      '--sf',
      '2',
      ...tiny,
      '--eval-tokens',
      '128',
    ]);
    const t = loadTrained(readFileSync(ck));
    expect(t.config.model.positions).toBe('relative');
    // u and v start at zero (as the reference code): non-zero after loading means they were trained, saved and
    // restored — a save that dropped either would load it as zeros
    expect(Array.from(t.model.rWBias!.dataSync()).some((a) => a !== 0)).toBe(true);
    expect(Array.from(t.model.rRBias!.dataSync()).some((a) => a !== 0)).toBe(true);
    const corpus = prepareCorpus(text, { source: 'fixed', vocab: t.vocab });
    const again = loadTrained(readFileSync(ck));
    for (const [k, w] of t.model.stateDict())
      expect(Array.from(again.model.stateDict().get(k)!.dataSync()), k).toEqual(Array.from(w.dataSync()));
    expect(evaluate(again.model, corpus, { seqLen: 24, maxTokens: 96 }).bpc).toBe(
      evaluate(t.model, corpus, { seqLen: 24, maxTokens: 96 }).bpc,
    );
    await expect(
      makeProgram(() => {}, { exitOverride: true }).parseAsync([
        'node',
        'dyn-pool',
        'train',
        file,
        '-o',
        ck,
        '--positions',
        'absolute',
        ...tiny,
      ]),
    ).rejects.toThrow(/positions must be/);
    // A checkpoint written before the option carries none: it was a rotary model.
    manualSeed(4);
    const old = new HourglassLM({
      ...config('fixed'),
      vocabSize: corpus.vocab.size,
      positions: 'rotary',
      maxSeqLen: 16,
    });
    delete (old.config as { positions?: string }).positions;
    const ck2 = join(dir, 'old.ckpt');
    await train(old, corpus, { steps: 1, batchSize: 2, seqLen: 16, checkpoint: ck2 });
    const back = loadTrained(readFileSync(ck2));
    expect(back.config.model.positions).toBe('rotary');
    expect(back.model.rWBias).toBeNull();
  });
});
