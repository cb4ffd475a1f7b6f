// RoPE on host rows, matching tensor-core's applyRope (rotate-half, angle = pos · base^(−2i/d)). KVTC undoes
// the rotation before PCA, since rotated keys of one head spread over position-dependent directions, and
// re-applies it after decoding.

/**
 * Rotates, in place, `heads` consecutive heads of size d that start at `offset` in each row of `x`
 * (rows of length `stride`), row i at absolute position positions[i]. inverse = true undoes applyRope.
 */
export function ropeRows(
  x: Float32Array,
  n: number,
  stride: number,
  offset: number,
  heads: number,
  d: number,
  positions: ArrayLike<number>,
  base = 10000,
  inverse = false,
): void {
  const half = d >> 1;
  const freq = new Float64Array(half);
  for (let i = 0; i < half; i++) freq[i] = base ** (-(2 * i) / d);
  const sgn = inverse ? -1 : 1;
  for (let r = 0; r < n; r++) {
    const pos = positions[r]!;
    for (let i = 0; i < half; i++) {
      const a = pos * freq[i]!;
      // tensor-core stores cos/sin in float32; round the same way so a round trip is exact to float32.
      const c = Math.fround(Math.cos(a));
      const s = sgn * Math.fround(Math.sin(a));
      for (let h = 0; h < heads; h++) {
        const o = r * stride + offset + h * d;
        const x1 = x[o + i]!;
        const x2 = x[o + i + half]!;
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}
