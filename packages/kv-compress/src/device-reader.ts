// Decoding a TKVC container (FORMAT.md) with its arithmetic on tensor-core's current backend — the WebGPU
// backend's WGSL kernels where it is active. The host does what is sequential and byte-level: CRCs, DEFLATE or
// range decoding, bit-unpacking and fp16 side information. The backend does what scales with tokens × features:
// dequantisation (level·scale + shift per group and token block, the FP8 table look-up), the inverse PCA
// projection of each layer (D·Vᵀ[0:width, layer columns] + μ) and RoPE on the keys. Layers are produced one at a
// time as [1, H, N, d] tensors that attention can use directly; reading them back is asynchronous (`layerData`),
// since WebGPU has no synchronous read-back. On the CPU backend a layer comes from the host decoder instead
// (`CacheReader.layerHeads`: its GEMMs run on the same wasm kernels, without the tensor ops' gathers and copies,
// ≈ 3× faster there in the codec bench); `arithmetic: 'tensor-ops'` runs WebGPU's code on any backend, which is
// how the CPU checks it.
// The host decoder (CacheReader) stays the reference: the two agree to float32 rounding.
import { type BackendName, cat, getBackend, keep, nn, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import type { Calibration, KVRows } from './calibration.js';
import { ValueError } from './errors.js';
import { type CacheHeader, CacheReader, interleaveLayers, SectionKind } from './format.js';
import { unpackSegment } from './kvtc.js';
import { fromFp8 } from './numeric.js';

type KV = nn.KV;

/** Level table: entries 0–255 are the integer levels themselves, 256–511 the FP8 E4M3 values of codes 0–255. */
function levelTable(): Float32Array {
  const t = new Float32Array(512);
  for (let c = 0; c < 256; c++) {
    t[c] = c;
    t[256 + c] = fromFp8(c);
  }
  return t;
}

/**
 * A calibration's means and bases uploaded once to the current backend, to be shared by every container decoded
 * with it. Dispose it when done (GPU buffers are invisible to the garbage collector).
 */
export class DeviceCalibration {
  /** per segment: μ [p] and Vᵀ [rank, p] */
  readonly segments: { mean: Tensor; basis: Tensor }[];
  readonly levels: Tensor;
  /** the backend its tensors live on (the current one when it was made) */
  readonly backend: BackendName = getBackend();
  constructor(readonly cal: Calibration) {
    this.segments = cal.segments.map((s) => ({
      mean: keep(tensor(s.pca.mean, { shape: [s.pca.p] })),
      basis: keep(tensor(s.pca.basis.subarray(0, s.pca.rank * s.pca.p), { shape: [s.pca.rank, s.pca.p] })),
    }));
    this.levels = keep(tensor(levelTable(), { shape: [512] }));
  }
  dispose(): void {
    for (const s of this.segments) {
      s.mean.dispose();
      s.basis.dispose();
    }
    this.levels.dispose();
  }
}

export interface DeviceReaderOptions {
  /**
   * Where the arithmetic runs. `'auto'` (default): tensor ops on WebGPU; on the CPU backend the host decoder's
   * kernels, which are faster there. `'tensor-ops'`: tensor ops on any backend (what WebGPU runs).
   */
  arithmetic?: 'auto' | 'tensor-ops';
}

/**
 * Layer-by-layer decoder of a container on the current tensor-core backend. The header, calibration and every
 * section are validated exactly as `CacheReader` does (same typed errors), before anything is uploaded.
 */
export class DeviceCacheReader {
  readonly header: CacheHeader;
  /** how layers are computed: the host decoder's kernels (CPU backend, `'auto'`) or tensor ops on the backend */
  readonly arithmetic: 'host' | 'tensor-ops';
  private readonly host: CacheReader;
  private readonly dcal: DeviceCalibration | null;
  private readonly ownsCal: boolean;
  /** per segment: dequantised coefficients D [compressed tokens, width] of every chunk, in token order */
  private readonly coeffs = new Map<number, Tensor>();
  private disposed = false;
  /** the backend its tensors live on (the current one when it was made) */
  readonly backend: BackendName = getBackend();

  /** `cal`: the calibration or its uploaded form (shared across readers; otherwise uploaded here and owned). */
  constructor(
    readonly bytes: Uint8Array,
    cal: Calibration | DeviceCalibration | null,
    options: DeviceReaderOptions = {},
  ) {
    const mode = options.arithmetic ?? 'auto';
    if (mode !== 'auto' && mode !== 'tensor-ops')
      throw new ValueError(`DeviceCacheReader: arithmetic must be 'auto' or 'tensor-ops'; got ${String(mode)}`);
    this.arithmetic = mode === 'auto' && this.backend === 'cpu' ? 'host' : 'tensor-ops';
    const c = cal instanceof DeviceCalibration ? cal.cal : cal;
    if (cal instanceof DeviceCalibration && cal.backend !== this.backend)
      throw new ValueError(
        `DeviceCacheReader: the calibration was uploaded to ${cal.backend}; the backend is ${this.backend}`,
      );
    this.host = new CacheReader(bytes, c);
    this.header = this.host.header;
    // the host path reads the calibration's host arrays: nothing to upload
    this.ownsCal = !(cal instanceof DeviceCalibration) && this.header.plan !== null && this.arithmetic !== 'host';
    this.dcal = cal instanceof DeviceCalibration ? cal : this.ownsCal ? new DeviceCalibration(c!) : null;
  }

  /** Coefficients of segment si for all chunks: unpacked on the host, dequantised on the backend. */
  private segmentCoeffs(si: number): Tensor {
    const hit = this.coeffs.get(si);
    if (hit) return hit;
    const h = this.header;
    const plan = h.plan!;
    const bp = plan.plans[si]!;
    const w = bp.width;
    const G1 = bp.groups.length + 1;
    const chunks = h.sections
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.kind === SectionKind.kvtcChunk)
      .sort((a, b) => a.s.tokenStart - b.s.tokenStart);
    const M = h.compressed;
    const blocks = chunks.reduce((a, { s }) => a + Math.ceil(s.tokenCount / bp.tokenGroup), 0);
    const levels = new Int32Array(M * w);
    const shift = new Float32Array(blocks * G1);
    const scale = new Float32Array(blocks * G1);
    const blockOf = new Int32Array(M);
    // columns outside every group were dropped by the plan: they read the zero column `groups`
    const groupOf = new Int32Array(w).fill(G1 - 1);
    bp.groups.forEach((g, gi) => {
      groupOf.fill(gi, g.start, g.start + g.size);
    });
    let row = 0;
    let block = 0;
    for (const { s, i } of chunks) {
      const nb = unpackSegment(plan, this.host.payload(i), s.tokenCount, si, { levels, shift, scale, row, block });
      for (let t = 0; t < s.tokenCount; t++) blockOf[row + t] = block + Math.floor(t / bp.tokenGroup);
      row += s.tokenCount;
      block += nb;
    }
    const d = tidy(() => {
      const full = (side: Float32Array) =>
        tensor(side, { shape: [blocks, G1] })
          .indexSelect(0, tensor(blockOf, { shape: [M], dtype: 'int32' }))
          .indexSelect(1, tensor(groupOf, { shape: [w], dtype: 'int32' }));
      const lv = this.dcal!.levels.gather(0, tensor(levels, { shape: [M * w], dtype: 'int32' })).reshape([M, w]);
      return lv.mul(full(scale)).add(full(shift));
    });
    keep(d);
    this.coeffs.set(si, d);
    return d;
  }

  /**
   * Keys (RoPE applied, as attention caches them) and values of layer l as [1, H, tokens, d] tensors on the
   * current backend. The caller owns (and disposes) them.
   */
  layer(l: number): KV {
    this.check(l);
    const h = this.header;
    const { heads: H, headDim: dh } = h;
    if (this.arithmetic === 'host') {
      // CRCs, decoding and the inverse projection all on the host: a corrupt section throws before a tensor exists
      const { k, v } = this.host.layerHeads(l);
      const shape = [1, H, h.tokens, dh];
      return { k: keep(tensor(k, { shape })), v: keep(tensor(v, { shape })) };
    }
    const f = H * dh;
    const cal = this.dcal?.cal;
    // [n, H·d] rows → [1, H, n, d]
    const heads = (x: Tensor, n: number) => x.reshape([n, H, dh]).permute([1, 0, 2]).unsqueeze(0);
    // host work first (CRCs, entropy decoding, unpacking), so a corrupt section throws before any tensor exists
    const raws = h.sections.flatMap((s, i) =>
      s.kind === SectionKind.kvtcChunk || s.layer !== l ? [] : [{ s, x: this.host.raw(i) }],
    );
    const segs =
      h.compressed > 0
        ? cal!.segments.flatMap((seg, si) => (seg.layers.includes(l) ? [{ seg, si, d: this.segmentCoeffs(si) }] : []))
        : [];
    const out = tidy(() => {
      const parts: Record<'k' | 'v', { start: number; x: Tensor }[]> = { k: [], v: [] };
      for (const { s, x } of raws)
        parts[s.kind === SectionKind.rawKeys ? 'k' : 'v'].push({
          start: s.tokenStart,
          x: heads(tensor(x, { shape: [s.tokenCount, f] }), s.tokenCount),
        });
      for (const { seg, si, d } of segs) {
        const j = seg.layers.indexOf(l);
        const w = h.plan!.plans[si]!.width;
        const { mean, basis } = this.dcal!.segments[si]!;
        // the layer's columns of Vᵀ[0:w], and of μ
        const sub = basis.slice(0, 0, w).slice(1, j * f, (j + 1) * f);
        let x = heads(d.matmul(sub).add(mean.slice(0, j * f, (j + 1) * f)), h.compressed);
        if (seg.kind === 'k' && cal!.rope) x = nn.applyRope(x, h.firstPosition + h.sinks, cal!.ropeBase);
        parts[seg.kind].push({ start: h.sinks, x });
      }
      const join = (p: { start: number; x: Tensor }[]) => {
        p.sort((a, b) => a.start - b.start);
        return p.length === 1
          ? p[0]!.x.contiguous()
          : cat(
              p.map((e) => e.x),
              2,
            );
      };
      return { k: join(parts.k), v: join(parts.v) };
    });
    return { k: keep(out.k), v: keep(out.v) };
  }

  private check(l: number): void {
    if (this.disposed) throw new ValueError('DeviceCacheReader: used after dispose()');
    if (getBackend() !== this.backend)
      throw new ValueError(`DeviceCacheReader: made on ${this.backend}; the backend is now ${getBackend()}`);
    const h = this.header;
    if (!(Number.isInteger(l) && l >= 0 && l < h.layers))
      throw new ValueError(`DeviceCacheReader.layer: layer ${l} of ${h.layers}`);
  }

  /** Layer l read back to the host, [tokens, H·d] each — the layout of `CacheReader.layer`. */
  async layerData(l: number): Promise<{ k: Float32Array; v: Float32Array }> {
    if (this.arithmetic === 'host') {
      // already on the host: no tensors and no transposes there and back
      this.check(l);
      return this.host.layer(l);
    }
    const kv = this.layer(l);
    try {
      const flat = (t: Tensor) => tidy(() => t.squeeze(0).permute([1, 0, 2]).contiguous());
      const [k, v] = [flat(kv.k), flat(kv.v)];
      try {
        const [kd, vd] = await Promise.all([k.data(), v.data()]);
        return { k: Float32Array.from(kd), v: Float32Array.from(vd) };
      } finally {
        k.dispose();
        v.dispose();
      }
    } finally {
      kv.k.dispose();
      kv.v.dispose();
    }
  }

  /** Every layer as host rows (what `decodeCache` returns). */
  async rows(): Promise<KVRows> {
    const h = this.header;
    const layers = [];
    for (let l = 0; l < h.layers; l++) layers.push(await this.layerData(l));
    return interleaveLayers(h, layers, this.host.positions(0, h.tokens));
  }

  /**
   * A KVCache (tensor-core's exact ConcatStorage) holding every layer of the stream on the current backend,
   * continuing at position firstPosition + tokens: restore a stored prefix and keep generating on the GPU.
   */
  toCache(): nn.KVCache {
    const cache = new nn.KVCache(new nn.ConcatStorage(), { startPosition: this.header.firstPosition });
    for (let l = 0; l < this.header.layers; l++) {
      const kv = this.layer(l);
      cache.append(l, kv.k, kv.v);
      kv.k.dispose();
      kv.v.dispose();
    }
    return cache;
  }

  /** Frees the dequantised coefficients (and the uploaded calibration when this reader uploaded it). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.coeffs.values()) t.dispose();
    this.coeffs.clear();
    if (this.ownsCal) this.dcal?.dispose();
  }
}

/**
 * Decodes a whole container to host rows through `DeviceCacheReader`: its arithmetic on WebGPU, the host
 * decoder's (tensor-core's CPU kernels) on the CPU backend.
 */
export async function decodeCacheAsync(
  bytes: Uint8Array,
  cal: Calibration | DeviceCalibration | null,
): Promise<KVRows> {
  const r = new DeviceCacheReader(bytes, cal);
  try {
    return await r.rows();
  } finally {
    r.dispose();
  }
}
