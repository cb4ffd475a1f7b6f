// Quantising and low-rank baselines. Values are stored dequantised for attention ("fake quantisation"), while
// stats() counts the bytes the packed representation takes, side information included.
//  - KIVI: Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache", ICML 2024, arXiv 2402.02750
//    (keys per channel over groups of G tokens, values per token, the last R tokens in full precision)
//  - FP8: OCP E4M3 with one fp16 scale per token and head
//  - low rank: a per-prompt SVD of each head's keys and values (the paper's "per-prompt basis" baseline)
import { ValueError } from '../errors.js';
import { symEig } from '../linalg.js';
import { type QuantType, quantizeGroup } from '../quant.js';
import { HostStorage, type LayerBuf } from './host.js';

export class KIVIStorage extends HostStorage {
  override readonly name: string;
  private readonly quantized = new Map<LayerBuf, number>();
  readonly type: QuantType;
  constructor(readonly opts: { bits: 2 | 4; group?: number; residual?: number }) {
    super();
    if (opts.bits !== 2 && opts.bits !== 4) throw new ValueError(`KIVIStorage: bits must be 2 or 4; got ${opts.bits}`);
    this.type = opts.bits === 2 ? 'int2' : 'int4';
    this.name = `kivi-${opts.bits}`;
  }
  private get G(): number {
    return this.opts.group ?? 32;
  }
  protected override afterAppend(_layer: number, b: LayerBuf): void {
    const G = this.G;
    const R = this.opts.residual ?? 128;
    let q = this.quantized.get(b) ?? 0;
    const col = new Float64Array(G);
    const rec = new Float64Array(Math.max(G, b.d));
    while (b.L - q > R && b.L - q >= G) {
      for (let bh = 0; bh < b.B * b.H; bh++) {
        // keys: per channel across the G tokens
        for (let j = 0; j < b.d; j++) {
          for (let t = 0; t < G; t++) col[t] = b.k[b.at(bh, q + t) + j]!;
          quantizeGroup(col, 0, G, this.type, undefined, 0, rec, 0);
          for (let t = 0; t < G; t++) b.k[b.at(bh, q + t) + j] = rec[t]!;
        }
        // values: per token across channels in groups of min(G, d)
        const gv = Math.min(G, b.d);
        for (let t = 0; t < G; t++)
          for (let j = 0; j < b.d; j += gv)
            quantizeGroup(
              b.v,
              b.at(bh, q + t) + j,
              Math.min(gv, b.d - j),
              this.type,
              undefined,
              0,
              b.v,
              b.at(bh, q + t) + j,
            );
      }
      q += G;
    }
    this.quantized.set(b, q);
  }
  protected override layerBytes(b: LayerBuf): number {
    const q = this.quantized.get(b) ?? 0;
    const bits = this.opts.bits;
    const gv = Math.min(this.G, b.d);
    const kBits = (q / this.G) * b.d * (this.G * bits + 32);
    let vPerToken = 0;
    for (let j = 0; j < b.d; j += gv) vPerToken += Math.min(gv, b.d - j) * bits + 32;
    const vBits = q * vPerToken;
    return b.B * b.H * ((kBits + vBits) / 8 + (b.L - q) * b.d * 4);
  }
  override reset(): void {
    super.reset();
    this.quantized.clear();
  }
}

export class FP8Storage extends HostStorage {
  override readonly name = 'fp8';
  protected override afterAppend(_l: number, b: LayerBuf, from: number): void {
    for (let bh = 0; bh < b.B * b.H; bh++)
      for (let t = from; t < b.L; t++) {
        quantizeGroup(b.k, b.at(bh, t), b.d, 'fp8', undefined, 0, b.k, b.at(bh, t));
        quantizeGroup(b.v, b.at(bh, t), b.d, 'fp8', undefined, 0, b.v, b.at(bh, t));
      }
  }
  protected override layerBytes(b: LayerBuf): number {
    return b.B * b.H * b.L * (b.d + 2) * 2;
  }
}

/** Rank-r reconstruction of each head's prefill keys and values; decoded tokens are kept in fp16. */
export class LowRankStorage extends HostStorage {
  override readonly name: string;
  private readonly lowRank = new Map<LayerBuf, number>();
  constructor(readonly opts: { rank: number }) {
    super();
    if (!(opts.rank >= 1)) throw new ValueError(`LowRankStorage: rank must be ≥ 1; got ${opts.rank}`);
    this.name = `svd-r${opts.rank}`;
  }
  protected override afterAppend(_l: number, b: LayerBuf, from: number): void {
    const T = b.L - from;
    const r = Math.min(this.opts.rank, b.d);
    if (from !== 0 || T <= r) return;
    for (let bh = 0; bh < b.B * b.H; bh++)
      for (const x of [b.k, b.v]) {
        const d = b.d;
        const g = new Float64Array(d * d);
        for (let t = 0; t < T; t++) {
          const o = b.at(bh, t);
          for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j]! += x[o + i]! * x[o + j]!;
        }
        const { vectors } = symEig(g, d);
        for (let t = 0; t < T; t++) {
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
    this.lowRank.set(b, T);
  }
  protected override layerBytes(b: LayerBuf): number {
    const T = this.lowRank.get(b) ?? 0;
    const r = Math.min(this.opts.rank, b.d);
    return b.B * b.H * 2 * ((T > 0 ? (T * r + r * b.d) * 2 : 0) + (b.L - T) * b.d * 2);
  }
  override reset(): void {
    super.reset();
    this.lowRank.clear();
  }
}
