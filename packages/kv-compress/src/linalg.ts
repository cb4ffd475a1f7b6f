// Dense linear algebra for calibration: mean and scatter matrix in float64, a tridiagonal QL eigensolver for
// the exact PCA (cyclic Jacobi as its test reference), and randomized subspace iteration (Halko, Martinsson &
// Tropp, 2011, arXiv 0909.4061) where p is large and the rank small. Encoding and decoding use a host GEMM (`gemm`).

/** Column means of x [n, p] (row-major float32) in float64. */
export function columnMeans(x: Float32Array, n: number, p: number): Float64Array {
  const mu = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let j = 0; j < p; j++) mu[j]! += x[o + j]!;
  }
  for (let j = 0; j < p; j++) mu[j]! /= Math.max(1, n);
  return mu;
}

/** Scatter matrix Σ_i (x_i − μ)(x_i − μ)ᵀ [p, p] in float64 (not divided by n: eigenvalues are energies). */
export function scatter(x: Float32Array, n: number, p: number, mu: Float64Array): Float64Array {
  const s = new Float64Array(p * p);
  const row = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let j = 0; j < p; j++) row[j] = x[o + j]! - mu[j]!;
    for (let a = 0; a < p; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      const so = a * p;
      for (let b = a; b < p; b++) s[so + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) s[a * p + b] = s[b * p + a]!;
  return s;
}

/**
 * Eigen-decomposition of a symmetric matrix [p, p]: Householder reduction to tridiagonal form and the implicit
 * QL iteration (the EISPACK tred2/tql2 pair, as in JAMA), O(p³). Returns eigenvalues in descending order and
 * the eigenvectors as rows (vectors[k·p + i] is component i of eigenvector k).
 */
export function symEig(a0: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const V = Float64Array.from(a0); // V[i*n + j]
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: V };
  // tred2
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
  // tql2
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) break;
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            h = V[k * n + i + 1]!;
            V[k * n + i + 1] = s * V[k * n + i]! + c * h;
            V[k * n + i] = c * V[k * n + i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = d[col]!;
    for (let i = 0; i < n; i++) vectors[k * n + i] = V[i * n + col]!;
  });
  return { values, vectors };
}

/**
 * Eigen-decomposition of a symmetric matrix [p, p] by cyclic Jacobi rotations (slower; the reference the
 * tridiagonal QL solver is tested against). Returns eigenvalues in
 * descending order and the eigenvectors as rows (vectors[k·p + i] is component i of eigenvector k).
 */
export function symEigJacobi(
  a0: Float64Array,
  p: number,
  opts: { maxSweeps?: number } = {},
): {
  values: Float64Array;
  vectors: Float64Array;
} {
  const a = Float64Array.from(a0);
  const v = new Float64Array(p * p); // columns are eigenvectors during the sweeps
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  let total = 0;
  for (let i = 0; i < p * p; i++) total += a[i]! * a[i]!;
  const maxSweeps = opts.maxSweeps ?? 60;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += a[i * p + j]! ** 2;
    if (off <= 1e-26 * total || off === 0) break;
    for (let P = 0; P < p; P++)
      for (let Q = P + 1; Q < p; Q++) {
        const apq = a[P * p + Q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[P * p + P]!;
        const aqq = a[Q * p + Q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < p; r++) {
          if (r === P || r === Q) continue;
          const arp = a[r * p + P]!;
          const arq = a[r * p + Q]!;
          const np = c * arp - s * arq;
          const nq = s * arp + c * arq;
          a[r * p + P] = a[P * p + r] = np;
          a[r * p + Q] = a[Q * p + r] = nq;
        }
        a[P * p + P] = app - t * apq;
        a[Q * p + Q] = aqq + t * apq;
        a[P * p + Q] = a[Q * p + P] = 0;
        for (let r = 0; r < p; r++) {
          const vrp = v[r * p + P]!;
          const vrq = v[r * p + Q]!;
          v[r * p + P] = c * vrp - s * vrq;
          v[r * p + Q] = s * vrp + c * vrq;
        }
      }
  }
  const order = Array.from({ length: p }, (_, i) => i).sort((x, y) => a[y * p + y]! - a[x * p + x]!);
  const values = new Float64Array(p);
  const vectors = new Float64Array(p * p);
  order.forEach((col, k) => {
    values[k] = a[col * p + col]!;
    for (let i = 0; i < p; i++) vectors[k * p + i] = v[i * p + col]!;
  });
  return { values, vectors };
}

/** A tiny seeded PRNG (mulberry32) with Box–Muller normals, so calibrations are reproducible. */
export class Rng {
  private s: number;
  constructor(seed = 1) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * Modified Gram–Schmidt (two passes) on the columns of m [rows, cols] (row-major), in place. The columns are
 * copied into contiguous rows of a transposed buffer first: walking a column of a row-major matrix strides by
 * `cols` doubles per element, which for 512 columns missed the cache on every access and made this the bulk of
 * a full-rank randomized PCA.
 */
export function orthonormalizeColumns(m: Float64Array, rows: number, cols: number): void {
  const t = new Float64Array(rows * cols); // t[j·rows + i] = m[i·cols + j]
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  for (let j = 0; j < cols; j++) {
    const oj = j * rows;
    for (let pass = 0; pass < 2; pass++)
      for (let k = 0; k < j; k++) {
        const ok = k * rows;
        let d = 0;
        for (let i = 0; i < rows; i++) d += t[oj + i]! * t[ok + i]!;
        for (let i = 0; i < rows; i++) t[oj + i]! -= d * t[ok + i]!;
      }
    let nrm = 0;
    for (let i = 0; i < rows; i++) nrm += t[oj + i]! ** 2;
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < rows; i++) t[oj + i] = nrm > 1e-300 ? t[oj + i]! / nrm : 0;
  }
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) m[i * cols + j] = t[j * rows + i]!;
}

/**
 * The method 'auto' resolves to for p columns and the requested rank. The exact path costs O(n·p² + p³) (scatter,
 * then a p×p eigensolver) whatever the rank; subspace iteration costs O(iters·(n·p·l + (n + p)·l²)) with
 * l = rank + oversample, so it only pays when l is a small fraction of p. Up to p = 384 the exact path is always
 * used (the bases of those calibrations are unchanged); above it, randomized only when rank ≤ p/8.
 */
export function pcaMethod(p: number, rank: number): 'exact' | 'randomized' {
  return p > 384 && rank * 8 <= p ? 'randomized' : 'exact';
}

export interface PcaResult {
  p: number;
  rank: number;
  /** μ [p] */
  mean: Float32Array;
  /** Vᵀ [rank, p]: row k is the k-th principal direction (orthonormal rows). */
  basis: Float32Array;
  /** Σ_k² (energy of the calibration rows along each direction), descending. */
  energies: Float64Array;
}

export interface PcaOptions {
  /** Components kept (default p, capped by p). */
  rank?: number;
  /**
   * 'exact' (scatter + tridiagonal QL), 'randomized' (subspace iteration), 'auto' (default): see `pcaMethod` —
   * randomized only above p = 384 and for rank ≤ p/8.
   */
  method?: 'auto' | 'exact' | 'randomized';
  /** Subspace iterations of the randomized SVD (the paper uses 8). */
  iters?: number;
  oversample?: number;
  seed?: number;
}

/** PCA of the rows of x [n, p]. */
export function pca(x: Float32Array, n: number, p: number, opts: PcaOptions = {}): PcaResult {
  const rank = Math.min(opts.rank ?? p, p);
  const mu = columnMeans(x, n, p);
  const method = opts.method === 'auto' || opts.method === undefined ? pcaMethod(p, rank) : opts.method;
  const basis = new Float32Array(rank * p);
  const energies = new Float64Array(rank);
  if (method === 'exact') {
    const { values, vectors } = symEig(scatter(x, n, p, mu), p);
    for (let k = 0; k < rank; k++) {
      energies[k] = Math.max(0, values[k]!);
      for (let i = 0; i < p; i++) basis[k * p + i] = vectors[k * p + i]!;
    }
  } else {
    const l = Math.min(p, rank + (opts.oversample ?? 10));
    const iters = opts.iters ?? 8;
    const rng = new Rng(opts.seed ?? 1234);
    const xc = new Float64Array(n * p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) xc[i * p + j] = x[i * p + j]! - mu[j]!;
    let q = new Float64Array(p * l);
    for (let i = 0; i < q.length; i++) q[i] = rng.normal();
    orthonormalizeColumns(q, p, l);
    const y = new Float64Array(n * l);
    const aq = () => {
      y.fill(0);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < p; j++) {
          const a = xc[i * p + j]!;
          if (a === 0) continue;
          for (let c = 0; c < l; c++) y[i * l + c]! += a * q[j * l + c]!;
        }
    };
    for (let it = 0; it < iters; it++) {
      aq();
      orthonormalizeColumns(y, n, l);
      const z = new Float64Array(p * l);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < p; j++) {
          const a = xc[i * p + j]!;
          if (a === 0) continue;
          for (let c = 0; c < l; c++) z[j * l + c]! += a * y[i * l + c]!;
        }
      orthonormalizeColumns(z, p, l);
      q = z;
    }
    aq(); // B = A Q [n, l]
    const m = new Float64Array(l * l);
    for (let i = 0; i < n; i++)
      for (let a = 0; a < l; a++) {
        const ya = y[i * l + a]!;
        for (let b = 0; b < l; b++) m[a * l + b]! += ya * y[i * l + b]!;
      }
    const { values, vectors } = symEig(m, l);
    for (let k = 0; k < rank; k++) {
      energies[k] = Math.max(0, values[k]!);
      for (let i = 0; i < p; i++) {
        let s = 0;
        for (let c = 0; c < l; c++) s += q[i * l + c]! * vectors[k * l + c]!;
        basis[k * p + i] = s;
      }
    }
  }
  return { p, rank, mean: Float32Array.from(mu), basis, energies };
}

/**
 * C [m, n] = A [m, k] · B [k, n], or A · Bᵀ with B stored [n, k] when transB. Plain TypeScript loops in the
 * cache-friendly order (i-k-j, or row dot products for Bᵀ): host arrays stay on the host, and the codec does not
 * depend on the tensor backend's state.
 */
export function gemm(a: Float32Array, m: number, k: number, b: Float32Array, n: number, transB = false): Float32Array {
  const c = new Float32Array(m * n);
  if (transB) {
    for (let i = 0; i < m; i++) {
      const ao = i * k;
      for (let j = 0; j < n; j++) {
        const bo = j * k;
        let s0 = 0;
        let s1 = 0;
        let q = 0;
        for (; q + 1 < k; q += 2) {
          s0 += a[ao + q]! * b[bo + q]!;
          s1 += a[ao + q + 1]! * b[bo + q + 1]!;
        }
        if (q < k) s0 += a[ao + q]! * b[bo + q]!;
        c[i * n + j] = s0 + s1;
      }
    }
    return c;
  }
  for (let i = 0; i < m; i++) {
    const co = i * n;
    for (let q = 0; q < k; q++) {
      const aiq = a[i * k + q]!;
      if (aiq === 0) continue;
      const bo = q * n;
      for (let j = 0; j < n; j++) c[co + j]! += aiq * b[bo + j]!;
    }
  }
  return c;
}
