// The codec's GEMMs (projection into the PCA basis when encoding, the inverse projection when decoding) on
// tensor-core's CPU kernels — the wasm SIMD matmul, 3–9× faster here than the scalar host loop — when the
// product is big enough to pay for the tensor round trip. The host `gemm` stays the reference (and the path for
// small products, other backends, or `setCodecKernels('ts')`). Results agree to float32 rounding, not bit for
// bit, so a stream decodes to values within ~1e-6 relative of what the other path gives.
import { getBackend, noGrad, tensor, tidy } from '@tessera/tensor-core';
import { ValueError } from './errors.js';
import { gemm } from './linalg.js';

export type CodecKernels = 'tensor-core' | 'ts';
let kernels: CodecKernels = 'tensor-core';
/** Multiply-adds below which the host loop wins (tensor creation and read-back cost ~0.1 ms). */
const MIN_MACS = 1 << 15;

/** Picks the codec's GEMM: tensor-core's CPU kernels (default) or the host TypeScript loop. */
export function setCodecKernels(k: CodecKernels): void {
  if (k !== 'tensor-core' && k !== 'ts') throw new ValueError(`setCodecKernels: 'tensor-core' or 'ts'; got ${k}`);
  kernels = k;
}

export function codecKernels(): CodecKernels {
  return kernels;
}

/** c[m, n] = a[m, k] · b[k, n] (or · b[n, k]ᵀ with transB), float32, row-major. */
export function codecGemm(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  n: number,
  transB = false,
): Float32Array {
  // WebGPU reads back asynchronously; the codec is synchronous, so it stays on the host there
  if (kernels === 'ts' || m * k * n < MIN_MACS || getBackend() !== 'cpu') return gemm(a, m, k, b, n, transB);
  return noGrad(() =>
    tidy(() => {
      const bt = transB ? tensor(b, { shape: [n, k] }).transpose(0, 1) : tensor(b, { shape: [k, n] });
      // a copy: the product's storage goes back to the pool when tidy ends (slice, not the iterating .from)
      const c = tensor(a, { shape: [m, k] })
        .matmul(bt)
        .dataSync();
      return c instanceof Float32Array ? c.slice() : Float32Array.from(c);
    }),
  );
}
