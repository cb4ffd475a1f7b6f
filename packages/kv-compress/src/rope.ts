// RoPE on host rows, matching tensor-core's applyRope (rotate-half, angle = pos · base^(−2i/d)). KVTC undoes
// the rotation before PCA, since rotated keys of one head spread over position-dependent directions, and
// re-applies it after decoding.

/** Positions up to this get cached cos/sin rows; others (and non-integers) are computed per call. */
const TABLE_LIMIT = 1 << 16;

interface RopeTable {
  cos: Float32Array;
  sin: Float32Array;
  /** positions [0, rows) are filled */
  rows: number;
}
// cos/sin per (base, d) for positions 0..rows−1, grown by doubling: restoring a cache re-applies RoPE to every
// decoded key, and the same angles recur across layers, chunks and restores.
const TABLES = new Map<string, RopeTable>();

function ropeTable(base: number, d: number, freq: Float64Array, maxPos: number): RopeTable {
  const key = `${base}/${d}`;
  const half = d >> 1;
  let t = TABLES.get(key);
  if (t && t.rows > maxPos) return t;
  let rows = Math.max(256, t?.rows ?? 0);
  while (rows <= maxPos) rows *= 2;
  const cos = new Float32Array(rows * half);
  const sin = new Float32Array(rows * half);
  for (let p = 0; p < rows; p++)
    for (let i = 0; i < half; i++) {
      const a = p * freq[i]!;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  t = { cos, sin, rows };
  TABLES.set(key, t);
  return t;
}

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
  let maxPos = -1;
  let tabulable = true;
  for (let r = 0; r < n && tabulable; r++) {
    const pos = positions[r]!;
    if (!(Number.isInteger(pos) && pos >= 0 && pos < TABLE_LIMIT)) tabulable = false;
    else if (pos > maxPos) maxPos = pos;
  }
  // tensor-core stores cos/sin in float32; round the same way so a round trip is exact to float32. The table
  // holds exactly those float32 values, so both branches rotate identically.
  const table = tabulable && n > 0 ? ropeTable(base, d, freq, maxPos) : null;
  for (let r = 0; r < n; r++) {
    const pos = positions[r]!;
    const row = table ? pos * half : 0;
    for (let i = 0; i < half; i++) {
      let c: number;
      let s: number;
      if (table) {
        c = table.cos[row + i]!;
        s = sgn * table.sin[row + i]!;
      } else {
        const a = pos * freq[i]!;
        c = Math.fround(Math.cos(a));
        s = sgn * Math.fround(Math.sin(a));
      }
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
