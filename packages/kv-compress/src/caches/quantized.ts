// Quantising and low-rank baselines. Values are stored dequantised for attention ("fake quantisation"), while
// stats() counts the bytes the packed representation takes, side information included.
//  - KIVI: Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache", ICML 2024, arXiv 2402.02750
//    (keys per channel over groups of G tokens, values per token, the last R tokens in full precision)
//  - FP8: OCP E4M3 with one fp16 scale per token and head
//  - low rank: a per-prompt SVD of each head's keys and values (the paper's "per-prompt basis" baseline)
// Left-padded batches (`padding`): each (sequence, head) row quantises, and counts, only its real tokens.
import { ValueError } from '../errors.js';
import { symEig } from '../linalg.js';
import { type QuantType, quantizeGroup } from '../quant.js';
import { checkInt, HostStorage, type HostStorageOptions, type LayerBuf } from './host.js';

export class KIVIStorage extends HostStorage {
  override readonly name: string;
  /** per layer buffer and (sequence, head) row: real tokens quantised so far (the row's first ones) */
  private readonly quantized = new Map<LayerBuf, Int32Array>();
  readonly type: QuantType;
  constructor(readonly opts: { bits: 2 | 4; group?: number; residual?: number } & HostStorageOptions) {
    super(opts);
    if (opts.bits !== 2 && opts.bits !== 4) throw new ValueError(`KIVIStorage: bits must be 2 or 4; got ${opts.bits}`);
    if (opts.group !== undefined) checkInt('KIVIStorage', 'group', opts.group, 1);
    if (opts.residual !== undefined) checkInt('KIVIStorage', 'residual', opts.residual, 0);
    this.type = opts.bits === 2 ? 'int2' : 'int4';
    this.name = `kivi-${opts.bits}`;
  }
  private get G(): number {
    return this.opts.group ?? 32;
  }
  protected override afterAppend(_layer: number, b: LayerBuf): void {
    const G = this.G;
    const R = this.opts.residual ?? 128;
    const quantized = this.quantized.get(b) ?? new Int32Array(b.B * b.H);
    this.quantized.set(b, quantized);
    const col = new Float64Array(G);
    const rec = new Float64Array(Math.max(G, b.d));
    for (let bh = 0; bh < b.B * b.H; bh++) {
      // slots are the row's real tokens: padding [0, pad) is never quantised
      const pad = b.pad[bh]!;
      let q = quantized[bh]!;
      while (b.held(bh) - q > R && b.held(bh) - q >= G) {
        const s0 = pad + q;
        // keys: per channel across the G tokens
        for (let j = 0; j < b.d; j++) {
          for (let t = 0; t < G; t++) col[t] = b.k[b.at(bh, s0 + t) + j]!;
          quantizeGroup(col, 0, G, this.type, undefined, 0, rec, 0);
          for (let t = 0; t < G; t++) b.k[b.at(bh, s0 + t) + j] = rec[t]!;
        }
        // values: per token across channels in groups of min(G, d)
        const gv = Math.min(G, b.d);
        for (let t = 0; t < G; t++)
          for (let j = 0; j < b.d; j += gv)
            quantizeGroup(
              b.v,
              b.at(bh, s0 + t) + j,
              Math.min(gv, b.d - j),
              this.type,
              undefined,
              0,
              b.v,
              b.at(bh, s0 + t) + j,
            );
        q += G;
      }
      quantized[bh] = q;
    }
  }
  protected override layerBytes(b: LayerBuf): number {
    const bits = this.opts.bits;
    const gv = Math.min(this.G, b.d);
    let vPerToken = 0;
    for (let j = 0; j < b.d; j += gv) vPerToken += Math.min(gv, b.d - j) * bits + 32;
    let bytes = 0;
    for (let bh = 0; bh < b.B * b.H; bh++) {
      const q = this.quantized.get(b)?.[bh] ?? 0;
      const kBits = (q / this.G) * b.d * (this.G * bits + 32);
      bytes += (kBits + q * vPerToken) / 8 + (b.held(bh) - q) * b.d * 4;
    }
    return bytes;
  }
  override reset(): void {
    super.reset();
    this.quantized.clear();
  }
}

export class FP8Storage extends HostStorage {
  override readonly name = 'fp8';
  constructor(opts: HostStorageOptions = {}) {
    super(opts);
  }
  protected override afterAppend(_l: number, b: LayerBuf, from: number): void {
    for (let bh = 0; bh < b.B * b.H; bh++)
      for (let t = Math.max(from, b.pad[bh]!); t < b.L; t++) {
        quantizeGroup(b.k, b.at(bh, t), b.d, 'fp8', undefined, 0, b.k, b.at(bh, t));
        quantizeGroup(b.v, b.at(bh, t), b.d, 'fp8', undefined, 0, b.v, b.at(bh, t));
      }
  }
  protected override layerBytes(b: LayerBuf): number {
    let n = 0;
    for (let bh = 0; bh < b.B * b.H; bh++) n += b.held(bh);
    return n * (b.d + 2) * 2;
  }
}

/**
 * Rank-r reconstruction of each head's prefill keys and values (a sequence's prefill: the append that brings
 * its first real tokens); decoded tokens are kept in fp16.
 */
export class LowRankStorage extends HostStorage {
  override readonly name: string;
  /** per layer buffer and (sequence, head) row: prefill tokens held at rank r (0: not yet) */
  private readonly lowRank = new Map<LayerBuf, Int32Array>();
  constructor(readonly opts: { rank: number } & HostStorageOptions) {
    super(opts);
    checkInt('LowRankStorage', 'rank', opts.rank, 1);
    this.name = `svd-r${opts.rank}`;
  }
  protected override afterAppend(_l: number, b: LayerBuf, from: number): void {
    const r = Math.min(this.opts.rank, b.d);
    const done = this.lowRank.get(b) ?? new Int32Array(b.B * b.H);
    this.lowRank.set(b, done);
    for (let bh = 0; bh < b.B * b.H; bh++) {
      const pad = b.pad[bh]!;
      const T = b.held(bh);
      // only the append that brought the row's first real tokens is its prefill
      if (from > pad || T <= r) continue;
      done[bh] = T;
      for (const x of [b.k, b.v]) {
        const d = b.d;
        const g = new Float64Array(d * d);
        for (let t = pad; t < b.L; t++) {
          const o = b.at(bh, t);
          for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j]! += x[o + i]! * x[o + j]!;
        }
        const { vectors } = symEig(g, d);
        for (let t = pad; t < b.L; t++) {
          const o = b.at(bh, t);
          const c = new Float64Array(r);
          for (let k = 0; k < r; k++) for (let i = 0; i < d; i++) c[k]! += x[o + i]! * vectors[k * d + i]!;
          for (let i = 0; i < d; i++) {
            let s = 0;
            for (let k = 0; k < r; k++) s += c[k]! * vectors[k * d + i]!;
            x[o + i] = s;
          }
        }
      }
    }
  }
  protected override layerBytes(b: LayerBuf): number {
    const r = Math.min(this.opts.rank, b.d);
    let bytes = 0;
    for (let bh = 0; bh < b.B * b.H; bh++) {
      const T = this.lowRank.get(b)?.[bh] ?? 0;
      bytes += 2 * ((T > 0 ? (T * r + r * b.d) * 2 : 0) + (b.held(bh) - T) * b.d * 2);
    }
    return bytes;
  }
  override reset(): void {
    super.reset();
    this.lowRank.clear();
  }
}
