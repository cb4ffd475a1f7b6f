// Token-eviction baselines behind tensor-core's KVCacheStorage. Budgets count tokens kept per layer and KV head.
// Eviction happens before new tokens are appended (or, for SnapKV, right after the prefill's attention), so the
// chunk being processed is always attended in full — the kvpress convention (prefill attends everything, the
// cache that remains is compressed). RoPE positions stay absolute (tensor-core rotates keys before caching).
//  - StreamingLLM: Xiao et al., "Efficient Streaming Language Models with Attention Sinks", ICLR 2024, arXiv 2309.17453
//  - H2O: Zhang et al., "H2O: Heavy-Hitter Oracle", NeurIPS 2023, arXiv 2306.14048
//  - TOVA: Oren et al., "Transformers are Multi-State RNNs", 2024, arXiv 2401.06104
//  - SnapKV: Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", 2024, arXiv 2404.14469
import type { Tensor } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';
import { HostStorage, hostProbs, type LayerBuf, topIndices } from './host.js';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

function checkBudget(name: string, budget: number): void {
  if (!(Number.isInteger(budget) && budget >= 1))
    throw new ValueError(`${name}: budget must be an integer ≥ 1; got ${budget}`);
}

/** Attention sinks + a rolling window of recent tokens. */
export class StreamingLLMStorage extends HostStorage {
  override readonly name = 'streaming-llm';
  constructor(readonly opts: { sinks?: number; window: number }) {
    super();
    checkBudget('StreamingLLMStorage', opts.window);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, T: number): void {
    const sinks = this.opts.sinks ?? 4;
    const allowed = Math.max(0, sinks + this.opts.window - T);
    if (b.L <= allowed) return;
    const s = Math.min(sinks, allowed);
    const keep = [...range(0, s), ...range(b.L - (allowed - s), b.L)];
    b.compact(() => keep);
  }
}

/** Heavy hitters (accumulated attention, per KV head) + the most recent tokens. */
export class H2OStorage extends HostStorage {
  override readonly name = 'h2o';
  constructor(readonly opts: { budget: number; recentRatio?: number }) {
    super();
    checkBudget('H2OStorage', opts.budget);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, T: number): void {
    const { budget } = this.opts;
    const allowed = Math.max(0, budget - T);
    if (b.L <= allowed) return;
    const recent = Math.floor(budget * (this.opts.recentRatio ?? 0.5));
    const recentOld = Math.max(0, Math.min(allowed, recent - T));
    b.compact((bh) => {
      const rest = range(0, b.L - recentOld);
      const heavy = topIndices(b.score.subarray(bh * b.cap, bh * b.cap + b.L), rest, allowed - recentOld);
      return [...heavy, ...range(b.L - recentOld, b.L)];
    });
  }
  observe(layer: number, probs: Tensor): void {
    const b = this.layers.get(layer);
    if (!b) return;
    const p = hostProbs(probs);
    const g = p.Hq / b.H;
    for (let bi = 0; bi < p.B; bi++)
      for (let hq = 0; hq < p.Hq; hq++) {
        const bh = bi * b.H + Math.floor(hq / g);
        for (let q = 0; q < p.Tq; q++) {
          const o = ((bi * p.Hq + hq) * p.Tq + q) * p.L;
          for (let j = 0; j < p.L; j++) b.score[bh * b.cap + j]! += p.data[o + j]!;
        }
      }
  }
}

/** Token Omission Via Attention: keep the tokens the last query attends to most (mean over heads). */
export class TOVAStorage extends HostStorage {
  override readonly name = 'tova';
  constructor(readonly opts: { budget: number }) {
    super();
    checkBudget('TOVAStorage', opts.budget);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, T: number): void {
    const allowed = Math.max(0, this.opts.budget - T);
    if (b.L <= allowed) return;
    const keep = topIndices(b.score.subarray(0, b.L), range(0, b.L), allowed);
    // one decision per layer (scores are head-averaged); batch rows use their own scores
    b.compact((bh) =>
      b.B === 1 ? keep : topIndices(b.score.subarray(bh * b.cap, bh * b.cap + b.L), range(0, b.L), allowed),
    );
  }
  observe(layer: number, probs: Tensor): void {
    const b = this.layers.get(layer);
    if (!b) return;
    const p = hostProbs(probs);
    for (let bi = 0; bi < p.B; bi++) {
      const mean = new Float64Array(p.L);
      for (let hq = 0; hq < p.Hq; hq++) {
        const o = ((bi * p.Hq + hq) * p.Tq + p.Tq - 1) * p.L;
        for (let j = 0; j < p.L; j++) mean[j]! += p.data[o + j]! / p.Hq;
      }
      for (let h = 0; h < b.H; h++) b.score.set(mean, (bi * b.H + h) * b.cap);
    }
  }
}

/** SnapKV: after the prefill, keep per KV head the prefix tokens the last `window` queries vote for (pooled). */
export class SnapKVStorage extends HostStorage {
  override readonly name = 'snapkv';
  private readonly done = new Set<number>();
  /** selections made while attention is still using this step's tensors; applied before the next append */
  private readonly pending = new Map<number, number[][]>();
  constructor(readonly opts: { budget: number; window?: number; kernel?: number }) {
    super();
    checkBudget('SnapKVStorage', opts.budget);
  }
  protected override beforeAppend(layer: number, b: LayerBuf): void {
    const sel = this.pending.get(layer);
    if (!sel) return;
    this.pending.delete(layer);
    b.compact((bh) => sel[bh]!);
  }
  override stats(): ReturnType<HostStorage['stats']> {
    for (const [l, sel] of this.pending) {
      this.layers.get(l)!.compact((bh) => sel[bh]!);
      this.dirty(l);
    }
    this.pending.clear();
    return super.stats();
  }
  observe(layer: number, probs: Tensor): void {
    const b = this.layers.get(layer);
    if (!b || this.done.has(layer)) return;
    const p = hostProbs(probs);
    if (p.Tq < 2) return;
    this.done.add(layer);
    const { budget } = this.opts;
    if (b.L <= budget) return;
    const w = Math.min(this.opts.window ?? 32, p.Tq, budget);
    const kernel = this.opts.kernel ?? 5;
    const g = p.Hq / b.H;
    const prefix = b.L - w;
    const sel: number[][] = [];
    for (let bh = 0; bh < b.B * b.H; bh++) {
      const bi = Math.floor(bh / b.H);
      const h = bh % b.H;
      const votes = new Float64Array(prefix);
      for (let hq = h * g; hq < (h + 1) * g; hq++)
        for (let q = p.Tq - w; q < p.Tq; q++) {
          const o = ((bi * p.Hq + hq) * p.Tq + q) * p.L;
          for (let j = 0; j < prefix; j++) votes[j]! += p.data[o + j]!;
        }
      const pooled = new Float64Array(prefix);
      const r = kernel >> 1;
      for (let j = 0; j < prefix; j++) {
        let s = 0;
        for (let t = j - r; t <= j + r; t++) if (t >= 0 && t < prefix) s += votes[t]!;
        pooled[j] = s / kernel;
      }
      sel.push([...topIndices(pooled, range(0, prefix), budget - w), ...range(prefix, b.L)]);
    }
    this.pending.set(layer, sel);
  }
  override reset(): void {
    super.reset();
    this.done.clear();
    this.pending.clear();
  }
}
