// The evaluation in miniature (research note §5): prefill a retrieval context through a cache, then answer
// teacher-forced queries one token at a time (so eviction and re-compression act as while generating), and
// measure accuracy, answer NLL, real compression ratios, and the attention-output error against the exact cache
// on the same token stream (real queries, through the observe hook).
import { nn, noGrad, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { inflateSync } from 'fflate';
import type { CompressedStorage } from '../caches/host.js';
import { KVTCStorage } from '../caches/kvtc-storage.js';
import { rangeEncodePayload } from '../entropy.js';
import { chunkBytes } from '../kvtc.js';
import type { Sample } from './tasks.js';

/** Wraps a storage and records each layer's attention output at the last query position (host arrays). */
class ProbeStorage implements nn.KVCacheStorage {
  readonly outputs: Float64Array[] = [];
  record = false;
  constructor(readonly inner: nn.KVCacheStorage) {}
  append(layer: number, kv: nn.KV, position: number): void {
    this.inner.append(layer, kv, position);
  }
  read(layer: number): nn.KV | null {
    return this.inner.read(layer);
  }
  length(layer: number): number {
    return this.inner.length(layer);
  }
  observe(layer: number, probs: Tensor): void {
    this.inner.observe?.(layer, probs);
    if (!this.record) return;
    const v = this.inner.read(layer)!.v;
    const [, Hq, Tq, L] = probs.shape as number[];
    const [, H, , d] = v.shape as number[];
    const p = probs.contiguous().dataSync();
    const vd = v.contiguous().dataSync();
    const o = new Float64Array(Hq! * d!);
    const g = Hq! / H!;
    for (let h = 0; h < Hq!; h++) {
      const kvh = Math.floor(h / g);
      const po = (h * Tq! + Tq! - 1) * L!;
      for (let j = 0; j < L!; j++) {
        const w = p[po + j]!;
        if (w === 0) continue;
        for (let c = 0; c < d!; c++) o[h * d! + c]! += w * vd[(kvh * L! + j) * d! + c]!;
      }
    }
    this.outputs.push(o);
  }
  reset(): void {
    this.inner.reset();
  }
}

export interface RetrievalResult {
  /** queries answered exactly (every answer token the arg-max under teacher forcing) */
  correct: number;
  /** queries */
  total: number;
  /** per query, in order: 1 if answered exactly (for paired intervals against the exact cache) */
  hits: number[];
  /** answer tokens, and the summed NLL over them */
  tokens: number;
  nll: number;
  /** per-query-step attention outputs (for the error against the exact cache) */
  outputs: Float64Array[];
  /** fp16 bytes of all tokens seen / bytes held, summed over samples */
  fp16Bytes: number;
  bytes: number;
  /** KVTC only: compressed-token bytes before and after DEFLATE, and their fp16 size */
  kvtc?: {
    fp16: number;
    packed: number;
    deflated: number;
    /** the same chunks through the adaptive range coder instead of DEFLATE */
    ranged: number;
    container: number;
    containerFp16: number;
  };
}

/** Runs the samples through fresh storages from `make`. */
export function runRetrieval(
  model: nn.CausalLM,
  samples: Sample[],
  make: () => nn.KVCacheStorage,
  probe = true,
): RetrievalResult {
  const res: RetrievalResult = {
    correct: 0,
    total: 0,
    hits: [],
    tokens: 0,
    nll: 0,
    outputs: [],
    fp16Bytes: 0,
    bytes: 0,
  };
  noGrad(() => {
    for (const s of samples) {
      const inner = make();
      const storage = probe ? new ProbeStorage(inner) : inner;
      const cache = new nn.KVCache(storage);
      const step = (ids: number[]) =>
        tidy(() => {
          const logits = model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), {
            cache,
          });
          const V = logits.shape[2]!;
          return Float32Array.from(logits.dataSync()).slice((ids.length - 1) * V);
        });
      step(s.context);
      for (const q of s.queries) {
        let last: Float32Array | null = null;
        let exact = 1;
        for (const t of q.prompt) {
          if (storage instanceof ProbeStorage) storage.record = t === q.prompt[q.prompt.length - 1];
          last = step([t]);
        }
        for (const a of q.answer) {
          const l = last!;
          let arg = 0;
          let mx = Number.NEGATIVE_INFINITY;
          for (let i = 0; i < l.length; i++) if (l[i]! > mx) [mx, arg] = [l[i]!, i];
          let z = 0;
          for (let i = 0; i < l.length; i++) z += Math.exp(l[i]! - mx);
          res.nll += -(l[a]! - mx - Math.log(z));
          if (arg !== a) exact = 0;
          res.tokens++;
          if (storage instanceof ProbeStorage) storage.record = true;
          last = step([a]);
        }
        if (storage instanceof ProbeStorage) storage.record = false;
        res.hits.push(exact);
        res.correct += exact;
        res.total++;
      }
      if (storage instanceof ProbeStorage) res.outputs.push(...storage.outputs);
      if ('stats' in inner) {
        const st = (inner as CompressedStorage).stats();
        res.fp16Bytes += st.fp16Bytes;
        res.bytes += st.bytes;
      }
      if (inner instanceof KVTCStorage) {
        const k = (res.kvtc ??= { fp16: 0, packed: 0, deflated: 0, ranged: 0, container: 0, containerFp16: 0 });
        const perToken = inner.cal.layers * inner.cal.heads * inner.cal.headDim * 4;
        for (const c of inner.chunks) {
          k.fp16 += c.count * perToken;
          k.packed += chunkBytes(inner.plan, c.count);
          k.deflated += c.bytes.length;
          const payload = c.deflated ? inflateSync(c.bytes) : c.bytes;
          k.ranged += Math.min(payload.length, rangeEncodePayload(inner.plan, c.count, payload).length);
        }
        k.container += inner.serialize().length;
        k.containerFp16 += inner.stats().fp16Bytes;
      }
      cache.reset();
    }
  });
  return res;
}

/** ‖o − ô‖ / ‖o‖ over all recorded attention outputs (same token stream). */
export function attentionError(exact: Float64Array[], got: Float64Array[]): number {
  let num = 0;
  let den = 0;
  const n = Math.min(exact.length, got.length);
  for (let i = 0; i < n; i++) {
    const a = exact[i]!;
    const b = got[i]!;
    for (let j = 0; j < a.length; j++) {
      num += (a[j]! - b[j]!) ** 2;
      den += a[j]! ** 2;
    }
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function pearson(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Ranks 1..n of x, ties sharing their mean rank (the convention Spearman's ρ needs to stay in [−1, 1]). */
export function ranks(x: number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman's ρ: Pearson's r of the ranks (monotone, not only linear, association). */
export function spearman(x: number[], y: number[]): number {
  return pearson(ranks(x), ranks(y));
}

/** Wilson score interval for k successes in n trials (95% at z = 1.96), in [0, 1]. */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const den = 1 + (z * z) / n;
  const mid = (p + (z * z) / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / den;
  return [Math.max(0, mid - half), Math.min(1, mid + half)];
}

/**
 * Paired difference of two hit vectors on the same queries (b − a), with a 95% normal interval on the mean of
 * the per-query differences — much tighter than two independent intervals when both methods mostly agree.
 */
export function pairedDiff(a: number[], b: number[], z = 1.96): { diff: number; lo: number; hi: number } {
  const n = Math.min(a.length, b.length);
  if (n === 0) return { diff: 0, lo: 0, hi: 0 };
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const d = b[i]! - a[i]!;
    s += d;
    s2 += d * d;
  }
  const mean = s / n;
  const sd = n > 1 ? Math.sqrt(Math.max(0, (s2 - n * mean * mean) / (n - 1))) : 0;
  const half = (z * sd) / Math.sqrt(n);
  // a difference of proportions lies in [−1, 1]; the normal interval can overshoot at small n
  return { diff: mean, lo: Math.max(-1, mean - half), hi: Math.min(1, mean + half) };
}

/** Mean NLL of teacher-forced text continuations: prefill `context` tokens, then step one token at a time. */
export function textNll(
  model: nn.CausalLM,
  docs: { context: number[]; continuation: number[] }[],
  make: () => nn.KVCacheStorage,
): { nll: number; tokens: number; fp16Bytes: number; bytes: number } {
  let nll = 0;
  let tokens = 0;
  let fp16Bytes = 0;
  let bytes = 0;
  noGrad(() => {
    for (const d of docs) {
      const storage = make();
      const cache = new nn.KVCache(storage);
      const step = (ids: number[]) =>
        tidy(() => {
          const logits = model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), {
            cache,
          });
          const V = logits.shape[2]!;
          return Float32Array.from(logits.dataSync()).slice((ids.length - 1) * V);
        });
      let last = step(d.context);
      for (const a of d.continuation) {
        let mx = Number.NEGATIVE_INFINITY;
        for (let i = 0; i < last.length; i++) if (last[i]! > mx) mx = last[i]!;
        let z = 0;
        for (let i = 0; i < last.length; i++) z += Math.exp(last[i]! - mx);
        nll += -(last[a]! - mx - Math.log(z));
        tokens++;
        last = step([a]);
      }
      if ('stats' in storage) {
        const st = (storage as CompressedStorage).stats();
        fp16Bytes += st.fp16Bytes;
        bytes += st.bytes;
      }
      cache.reset();
    }
  });
  return { nll: nll / Math.max(1, tokens), tokens, fp16Bytes, bytes };
}
