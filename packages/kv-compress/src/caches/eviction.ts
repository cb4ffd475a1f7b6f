// Token-eviction baselines behind tensor-core's KVCacheStorage. Budgets count tokens kept per layer and KV head.
// Eviction happens before new tokens are appended (or, for SnapKV, right after the prefill's attention), so the
// chunk being processed is always attended in full — the kvpress convention (prefill attends everything, the
// cache that remains is compressed). RoPE positions stay absolute (tensor-core rotates keys before caching).
// Left-padded batches (`padding`): budgets count each sequence's real tokens, the sinks are its first real
// tokens, and neither padding keys nor padding queries are ever scored or kept.
//  - StreamingLLM: Xiao et al., "Efficient Streaming Language Models with Attention Sinks", ICLR 2024, arXiv 2309.17453
//  - H2O: Zhang et al., "H2O: Heavy-Hitter Oracle", NeurIPS 2023, arXiv 2306.14048
//  - TOVA: Oren et al., "Transformers are Multi-State RNNs", 2024, arXiv 2401.06104
//  - SnapKV: Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", 2024, arXiv 2404.14469
import type { Tensor } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';
import { checkInt, HostStorage, type HostStorageOptions, hostProbs, type LayerBuf, topIndices } from './host.js';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

function checkBudget(name: string, budget: number): void {
  if (!(Number.isInteger(budget) && budget >= 1))
    throw new ValueError(`${name}: budget must be an integer ≥ 1; got ${budget}`);
}

/**
 * Runs `choose(bh, allowed)` for every (sequence, head) row holding more than `allowed(b)` real tokens and
 * compacts to the choices (rows within budget keep everything). No row over budget: nothing moves.
 */
function evict(b: LayerBuf, allowed: (seq: number) => number, choose: (bh: number, allowed: number) => number[]): void {
  const rows = b.B * b.H;
  const over = (bh: number) => b.held(bh) > allowed(Math.floor(bh / b.H));
  if (!Array.from({ length: rows }, (_, bh) => over(bh)).some(Boolean)) return;
  b.compact((bh) => (over(bh) ? choose(bh, allowed(Math.floor(bh / b.H))) : b.slots(bh)));
}

/** Attention sinks + a rolling window of recent tokens. */
export class StreamingLLMStorage extends HostStorage {
  override readonly name = 'streaming-llm';
  constructor(readonly opts: { sinks?: number; window: number } & HostStorageOptions) {
    super(opts);
    checkBudget('StreamingLLMStorage', opts.window);
    if (opts.sinks !== undefined) checkInt('StreamingLLMStorage', 'sinks', opts.sinks, 0);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, _T: number, incoming: Int32Array): void {
    const sinks = this.opts.sinks ?? 4;
    evict(
      b,
      // The sinks stay even when the incoming chunk alone fills the window: they are the sequence's first real
      // tokens, which no later token can stand in for.
      (i) => Math.max(sinks, sinks + this.opts.window - incoming[i]!),
      (bh, allowed) => {
        const s = Math.min(sinks, allowed);
        const p = b.pad[bh]!;
        return [...range(p, p + s), ...range(b.L - (allowed - s), b.L)];
      },
    );
  }
}

/** Heavy hitters (accumulated attention, per KV head) + the most recent tokens. */
export class H2OStorage extends HostStorage {
  override readonly name = 'h2o';
  constructor(readonly opts: { budget: number; recentRatio?: number } & HostStorageOptions) {
    super(opts);
    checkBudget('H2OStorage', opts.budget);
    const r = opts.recentRatio;
    if (r !== undefined && !(r >= 0 && r <= 1))
      throw new ValueError(`H2OStorage: recentRatio must be in [0, 1]; got ${r}`);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, _T: number, incoming: Int32Array): void {
    const { budget } = this.opts;
    const recent = Math.floor(budget * (this.opts.recentRatio ?? 0.5));
    evict(
      b,
      (i) => Math.max(0, budget - incoming[i]!),
      (bh, allowed) => {
        const recentOld = Math.max(0, Math.min(allowed, recent - incoming[Math.floor(bh / b.H)]!));
        const rest = range(b.pad[bh]!, b.L - recentOld);
        const heavy = topIndices(b.score.subarray(bh * b.cap, bh * b.cap + b.L), rest, allowed - recentOld);
        return [...heavy, ...range(b.L - recentOld, b.L)];
      },
    );
  }
  observe(layer: number, probs: Tensor): void {
    const b = this.layers.get(layer);
    if (!b) return;
    const p = hostProbs(probs);
    const g = p.Hq / b.H;
    for (let bi = 0; bi < p.B; bi++)
      for (let hq = 0; hq < p.Hq; hq++) {
        const bh = bi * b.H + Math.floor(hq / g);
        const pad = b.pad[bh]!;
        // padding queries (the prefill's first rows) and padding keys score nothing
        for (let q = Math.max(0, pad - (p.L - p.Tq)); q < p.Tq; q++) {
          const o = ((bi * p.Hq + hq) * p.Tq + q) * p.L;
          for (let j = pad; j < p.L; j++) b.score[bh * b.cap + j]! += p.data[o + j]!;
        }
      }
  }
}

/** Token Omission Via Attention: keep the tokens the last query attends to most (mean over heads). */
export class TOVAStorage extends HostStorage {
  override readonly name = 'tova';
  constructor(readonly opts: { budget: number } & HostStorageOptions) {
    super(opts);
    checkBudget('TOVAStorage', opts.budget);
  }
  protected override beforeAppend(_l: number, b: LayerBuf, _T: number, incoming: Int32Array): void {
    // one decision per sequence: observe() gives every KV head of a sequence the same head-averaged scores
    evict(
      b,
      (i) => Math.max(0, this.opts.budget - incoming[i]!),
      (bh, allowed) => topIndices(b.score.subarray(bh * b.cap, bh * b.cap + b.L), b.slots(bh), allowed),
    );
  }
  observe(layer: number, probs: Tensor): void {
    const b = this.layers.get(layer);
    if (!b) return;
    const p = hostProbs(probs);
    for (let bi = 0; bi < p.B; bi++) {
      const pad = b.pad[bi * b.H]!;
      const mean = new Float64Array(p.L);
      for (let hq = 0; hq < p.Hq; hq++) {
        const o = ((bi * p.Hq + hq) * p.Tq + p.Tq - 1) * p.L;
        for (let j = pad; j < p.L; j++) mean[j]! += p.data[o + j]! / p.Hq;
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
  constructor(readonly opts: { budget: number; window?: number; kernel?: number } & HostStorageOptions) {
    super(opts);
    checkBudget('SnapKVStorage', opts.budget);
    if (opts.window !== undefined) checkInt('SnapKVStorage', 'window', opts.window, 1);
    const k = opts.kernel;
    if (k !== undefined && !(Number.isInteger(k) && k >= 1 && k % 2 === 1))
      throw new ValueError(`SnapKVStorage: kernel (the pooling width) must be an odd integer ≥ 1; got ${k}`);
  }
  /**
   * Between the prefill and the next append the selection waits (attention may still read this step's tensors);
   * what the cache holds from then on is already decided, and is what these report.
   */
  override heldPositions(layer: number, seq = 0, head = 0): number[] {
    const sel = this.pending.get(layer);
    const b = this.layers.get(layer);
    if (!sel || !b) return super.heldPositions(layer, seq, head);
    if (!(seq >= 0 && seq < b.B && head >= 0 && head < b.H))
      throw new ValueError(`heldPositions: sequence ${seq}, head ${head} outside ${b.B} × ${b.H}`);
    const bh = seq * b.H + head;
    return sel[bh]!.map((t) => b.pos[bh * b.cap + t]!);
  }
  override length(layer: number): number {
    const sel = this.pending.get(layer);
    return sel ? Math.max(0, ...sel.map((s) => s.length)) : super.length(layer);
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
    const rows = b.B * b.H;
    if (!Array.from({ length: rows }, (_, bh) => b.held(bh) > budget).some(Boolean)) return;
    const kernel = this.opts.kernel ?? 5;
    const g = p.Hq / b.H;
    const sel: number[][] = [];
    for (let bh = 0; bh < rows; bh++) {
      const pad = b.pad[bh]!;
      if (b.held(bh) <= budget) {
        sel.push(b.slots(bh));
        continue;
      }
      const bi = Math.floor(bh / b.H);
      const h = bh % b.H;
      // the observation window: the sequence's last w real queries; the prefix: its real tokens before them
      const w = Math.min(this.opts.window ?? 32, p.Tq, b.held(bh), budget);
      const prefix = b.L - w;
      const votes = new Float64Array(prefix);
      for (let hq = h * g; hq < (h + 1) * g; hq++)
        for (let q = p.Tq - w; q < p.Tq; q++) {
          const o = ((bi * p.Hq + hq) * p.Tq + q) * p.L;
          for (let j = pad; j < prefix; j++) votes[j]! += p.data[o + j]!;
        }
      // pooling never reaches into the padding (votes there stay 0)
      const pooled = new Float64Array(prefix);
      const r = kernel >> 1;
      for (let j = pad; j < prefix; j++) {
        let s = 0;
        for (let t = j - r; t <= j + r; t++) if (t >= pad && t < prefix) s += votes[t]!;
        pooled[j] = s / kernel;
      }
      sel.push([...topIndices(pooled, range(pad, prefix), budget - w), ...range(prefix, b.L)]);
    }
    this.pending.set(layer, sel);
  }
  override reset(): void {
    super.reset();
    this.done.clear();
    this.pending.clear();
  }
}
