// Blocked, register-tiled matmul in TypeScript (the reference CPU path; the WASM SIMD kernel of the
// fast-backend issue replaces it on the hot path). Both operands are packed, so any strides —
// transposed, broadcast, sliced — cost nothing extra: A into 4-row micro-panels, B into 4-column
// panels, K in blocks of KC so a B block stays in L2, and a 4×4 micro-kernel keeps 16 accumulators
// in registers.

const KC = 256;
const MR = 4;
const NR = 4;

const packA = new Float32Array(MR * KC);
let packB = new Float32Array(KC * 64);
const tile = new Float64Array(MR * NR);

export interface MatOperand {
  data: Float32Array;
  offset: number;
  /** stride between rows, stride between columns */
  rs: number;
  cs: number;
}

/** out[outOff + i*n + j] = sum_p A[i,p] B[p,j], for an m×k A and a k×n B. */
export function gemm(out: Float32Array, outOff: number, A: MatOperand, B: MatOperand, m: number, n: number, k: number) {
  if (k === 0) {
    out.fill(0, outOff, outOff + m * n);
    return;
  }
  const nPanels = Math.ceil(n / NR);
  if (packB.length < KC * nPanels * NR) packB = new Float32Array(KC * nPanels * NR);
  const pb = packB;
  const pa = packA;
  const a = A.data;
  const b = B.data;
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = Math.min(KC, k - k0);
    // Pack B[k0:k0+kc, :] into panels: panel q holds kc rows of 4 columns.
    for (let q = 0; q < nPanels; q++) {
      const j0 = q * NR;
      const base = q * kc * NR;
      const jn = Math.min(NR, n - j0);
      for (let p = 0; p < kc; p++) {
        const src = B.offset + (k0 + p) * B.rs + j0 * B.cs;
        const dst = base + p * NR;
        for (let jj = 0; jj < jn; jj++) pb[dst + jj] = b[src + jj * B.cs]!;
        for (let jj = jn; jj < NR; jj++) pb[dst + jj] = 0;
      }
    }
    for (let i0 = 0; i0 < m; i0 += MR) {
      const im = Math.min(MR, m - i0);
      for (let p = 0; p < kc; p++) {
        const src = A.offset + i0 * A.rs + (k0 + p) * A.cs;
        const dst = p * MR;
        for (let ii = 0; ii < im; ii++) pa[dst + ii] = a[src + ii * A.rs]!;
        for (let ii = im; ii < MR; ii++) pa[dst + ii] = 0;
      }
      for (let q = 0; q < nPanels; q++) {
        const bb = q * kc * NR;
        let c00 = 0,
          c01 = 0,
          c02 = 0,
          c03 = 0;
        let c10 = 0,
          c11 = 0,
          c12 = 0,
          c13 = 0;
        let c20 = 0,
          c21 = 0,
          c22 = 0,
          c23 = 0;
        let c30 = 0,
          c31 = 0,
          c32 = 0,
          c33 = 0;
        for (let p = 0; p < kc; p++) {
          const ap = p * MR;
          const bp = bb + p * NR;
          const a0 = pa[ap]!,
            a1 = pa[ap + 1]!,
            a2 = pa[ap + 2]!,
            a3 = pa[ap + 3]!;
          const b0 = pb[bp]!,
            b1 = pb[bp + 1]!,
            b2 = pb[bp + 2]!,
            b3 = pb[bp + 3]!;
          c00 += a0 * b0;
          c01 += a0 * b1;
          c02 += a0 * b2;
          c03 += a0 * b3;
          c10 += a1 * b0;
          c11 += a1 * b1;
          c12 += a1 * b2;
          c13 += a1 * b3;
          c20 += a2 * b0;
          c21 += a2 * b1;
          c22 += a2 * b2;
          c23 += a2 * b3;
          c30 += a3 * b0;
          c31 += a3 * b1;
          c32 += a3 * b2;
          c33 += a3 * b3;
        }
        const j0 = q * NR;
        const jn = Math.min(NR, n - j0);
        const acc = k0 > 0;
        const t = tile;
        t[0] = c00;
        t[1] = c01;
        t[2] = c02;
        t[3] = c03;
        t[4] = c10;
        t[5] = c11;
        t[6] = c12;
        t[7] = c13;
        t[8] = c20;
        t[9] = c21;
        t[10] = c22;
        t[11] = c23;
        t[12] = c30;
        t[13] = c31;
        t[14] = c32;
        t[15] = c33;
        for (let ii = 0; ii < im; ii++) {
          const o = outOff + (i0 + ii) * n + j0;
          for (let jj = 0; jj < jn; jj++) out[o + jj] = (acc ? out[o + jj]! : 0) + t[ii * 4 + jj]!;
        }
      }
    }
  }
}
