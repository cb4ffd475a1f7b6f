// AssemblyScript source of the WASM SIMD128 kernels of the CPU backend, built by scripts/build-wasm.mjs into
// kernels.wasm.ts four times: plain SIMD128 and relaxed-SIMD (where `madd` is one fused multiply-add), each
// with a private and a shared (threads) memory.
//
// gemm: B is packed into 16-column panels (kc × 16, contiguous); A is read in place when row-major, else packed
// into 2-row strips (kc × 2, interleaved). K is blocked by KC (384: the K of a 3×3×32 or 5×64 im2col fits one
// block) so a panel stays in L1, N by NC so the packed block stays in L2. The 2×16 micro-kernel keeps 8 f32x4
// accumulators; A comes in as load32_splat, B as four v128 loads. Packing reads any strides (transposed,
// broadcast, negative), so the micro-kernel never sees them. gemmx: the same loops with B (and C) addressed
// through offset tables, the implicit GEMM of convolutions, on the same 2×16 kernel (the older 4×8 tile for its
// scattered store and GEMVs). gemv: one row of A (a decoding step) straight over an unpacked B. Also: strided
// copy, fill, and float32
// elementwise binary/unary loops. Pointers are byte addresses in the imported memory; strides are in elements.

const KC: i32 = 384;
const NC: i32 = 256;

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** 1 when this build uses relaxed-SIMD fused multiply-add. */
export function fma(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

// Packs B[p, j] for p < kc, j < nc (rows `brs`, cols `bcs` apart) into ceil(nc/8) panels, zero padded.
function packB(b: usize, brs: i32, bcs: i32, kc: i32, nc: i32, pb: usize): void {
  for (let q = 0; q < nc; q += 8) {
    const nr = min(8, nc - q);
    let dst = pb + <usize>(q * kc) * 4;
    if (nr == 8 && bcs == 1) {
      let src = b + <usize>q * 4;
      for (let p = 0; p < kc; p++) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        src += <usize>brs * 4;
        dst += 32;
      }
    } else if (nr == 8 && brs == 1) {
      // Transposed B (ABᵀ: attention scores, backward passes): each panel column is contiguous along p, so
      // 4×4 blocks are loaded as columns and transposed with shuffles.
      const c0 = b + <usize>(q * bcs) * 4;
      const cs = <usize>bcs * 4;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p * 4;
        const d = dst + <usize>p * 32;
        for (let h: usize = 0; h < 2; h++) {
          const base = c0 + 4 * h * cs + o;
          const v0 = v128.load(base);
          const v1 = v128.load(base + cs);
          const v2 = v128.load(base + 2 * cs);
          const v3 = v128.load(base + 3 * cs);
          const t0 = i32x4.shuffle(v0, v1, 0, 4, 1, 5);
          const t1 = i32x4.shuffle(v2, v3, 0, 4, 1, 5);
          const t2 = i32x4.shuffle(v0, v1, 2, 6, 3, 7);
          const t3 = i32x4.shuffle(v2, v3, 2, 6, 3, 7);
          const dh = d + h * 16;
          v128.store(dh, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
          v128.store(dh, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 32);
          v128.store(dh, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 64);
          v128.store(dh, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 96);
        }
      }
      for (; p < kc; p++)
        for (let jj = 0; jj < 8; jj++)
          store<f32>(dst + <usize>(p * 8 + jj) * 4, load<f32>(c0 + <usize>jj * cs + <usize>p * 4));
    } else {
      for (let p = 0; p < kc; p++) {
        const row = b + <usize>(p * brs) * 4;
        for (let jj = 0; jj < 8; jj++)
          store<f32>(dst + <usize>jj * 4, jj < nr ? load<f32>(row + <usize>((q + jj) * bcs) * 4) : 0);
        dst += 32;
      }
    }
  }
}

// Packs A[i, p] for i < mr (≤ 4), p < kc into kc × 4, zero padded.
function packA(a: usize, ars: i32, acs: i32, mr: i32, kc: i32, pa: usize): void {
  if (mr == 4) {
    const r1 = <usize>ars * 4;
    if (acs == 1) {
      for (let p = 0; p < kc; p++) {
        const s = a + <usize>p * 4;
        const d = pa + <usize>p * 16;
        store<f32>(d, load<f32>(s));
        store<f32>(d, load<f32>(s + r1), 4);
        store<f32>(d, load<f32>(s + 2 * r1), 8);
        store<f32>(d, load<f32>(s + 3 * r1), 12);
      }
      return;
    }
    if (ars == 1) {
      // Transposed A: the 4 rows are adjacent.
      for (let p = 0; p < kc; p++) v128.store(pa + <usize>p * 16, v128.load(a + <usize>(p * acs) * 4));
      return;
    }
  }
  for (let p = 0; p < kc; p++) {
    const d = pa + <usize>p * 16;
    for (let ii = 0; ii < 4; ii++)
      store<f32>(d + <usize>ii * 4, ii < mr ? load<f32>(a + <usize>(ii * ars + p * acs) * 4) : 0);
  }
}

// C[0:mr, 0:nr] (+)= packed A strip · packed B panel. `ldc` in elements.
// A[ii, p] is read at pa + ii * ai + p * ap (bytes): packed (ai 4, ap 16) or, for a row-major A, in place
// (ai = row stride, ap 4), which skips packing A altogether.
function micro(
  pa: usize,
  ai: usize,
  ap: usize,
  pb: usize,
  kc: i32,
  c: usize,
  ldc: i32,
  mr: i32,
  nr: i32,
  acc: bool,
  tile: usize,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  let a0p = pa;
  let bp = pb;
  const a1o = ai;
  const a2o = 2 * ai;
  const a3o = 3 * ai;
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(a0p);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(a0p + a1o);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(a0p + a2o);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(a0p + a3o);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    a0p += ap;
    bp += 32;
  }
  const ld = <usize>ldc * 4;
  if (mr == 4 && nr == 8) {
    if (acc) {
      c00 = f32x4.add(c00, v128.load(c));
      c01 = f32x4.add(c01, v128.load(c, 16));
      c10 = f32x4.add(c10, v128.load(c + ld));
      c11 = f32x4.add(c11, v128.load(c + ld, 16));
      c20 = f32x4.add(c20, v128.load(c + 2 * ld));
      c21 = f32x4.add(c21, v128.load(c + 2 * ld, 16));
      c30 = f32x4.add(c30, v128.load(c + 3 * ld));
      c31 = f32x4.add(c31, v128.load(c + 3 * ld, 16));
    }
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c + ld, c10);
    v128.store(c + ld, c11, 16);
    v128.store(c + 2 * ld, c20);
    v128.store(c + 2 * ld, c21, 16);
    v128.store(c + 3 * ld, c30);
    v128.store(c + 3 * ld, c31, 16);
    return;
  }
  // Edge tile: through a 4×8 scratch tile, then only the live part.
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  for (let ii = 0; ii < mr; ii++) {
    const row = c + <usize>ii * ld;
    const t = tile + <usize>ii * 32;
    for (let jj = 0; jj < nr; jj++) {
      const d = row + <usize>jj * 4;
      const v = load<f32>(t + <usize>jj * 4);
      store<f32>(d, acc ? load<f32>(d) + v : v);
    }
  }
}

// Packs B[p, j] for p < kc, j < nc into ceil(nc/16) panels of kc × 16, zero padded.
function packB16(b: usize, brs: i32, bcs: i32, kc: i32, nc: i32, pb: usize): void {
  for (let q = 0; q < nc; q += 16) {
    const nr = min(16, nc - q);
    let dst = pb + <usize>(q * kc) * 4;
    if (nr == 16 && bcs == 1) {
      let src = b + <usize>q * 4;
      for (let p = 0; p < kc; p++) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        v128.store(dst, v128.load(src, 32), 32);
        v128.store(dst, v128.load(src, 48), 48);
        src += <usize>brs * 4;
        dst += 64;
      }
    } else if (nr == 16 && brs == 1) {
      const c0 = b + <usize>(q * bcs) * 4;
      const cs = <usize>bcs * 4;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p * 4;
        const d = dst + <usize>p * 64;
        for (let h: usize = 0; h < 4; h++) {
          const base = c0 + 4 * h * cs + o;
          const v0 = v128.load(base);
          const v1 = v128.load(base + cs);
          const v2 = v128.load(base + 2 * cs);
          const v3 = v128.load(base + 3 * cs);
          const t0 = i32x4.shuffle(v0, v1, 0, 4, 1, 5);
          const t1 = i32x4.shuffle(v2, v3, 0, 4, 1, 5);
          const t2 = i32x4.shuffle(v0, v1, 2, 6, 3, 7);
          const t3 = i32x4.shuffle(v2, v3, 2, 6, 3, 7);
          const dh = d + h * 16;
          v128.store(dh, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
          v128.store(dh, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 64);
          v128.store(dh, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 128);
          v128.store(dh, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 192);
        }
      }
      for (; p < kc; p++)
        for (let jj = 0; jj < 16; jj++)
          store<f32>(dst + <usize>(p * 16 + jj) * 4, load<f32>(c0 + <usize>jj * cs + <usize>p * 4));
    } else {
      for (let p = 0; p < kc; p++) {
        const row = b + <usize>(p * brs) * 4;
        for (let jj = 0; jj < 16; jj++)
          store<f32>(dst + <usize>jj * 4, jj < nr ? load<f32>(row + <usize>((q + jj) * bcs) * 4) : 0);
        dst += 64;
      }
    }
  }
}

// A transposed (4 adjacent rows at each p, `acs` apart): one v128 load per p packs two 2-row strips at once,
// the first at d0 and the second at d1 (kc × 2 each).
function packA4T(a: usize, acs: i32, kc: i32, d0: usize, d1: usize): void {
  const s = <usize>acs * 4;
  for (let p = 0; p < kc; p++) {
    const v = v128.load(a + <usize>p * s);
    store<u64>(d0 + <usize>p * 8, i64x2.extract_lane(v, 0));
    store<u64>(d1 + <usize>p * 8, i64x2.extract_lane(v, 1));
  }
}

// Packs A[i, p] for i < mr (≤ 2), p < kc into kc × 2, zero padded.
function packA2(a: usize, ars: i32, acs: i32, mr: i32, kc: i32, pa: usize): void {
  if (mr == 2 && ars == 1) {
    // Transposed A: the 2 rows are adjacent.
    for (let p = 0; p < kc; p++) store<u64>(pa + <usize>p * 8, load<u64>(a + <usize>(p * acs) * 4));
    return;
  }
  for (let p = 0; p < kc; p++) {
    const d = pa + <usize>p * 8;
    store<f32>(d, load<f32>(a + <usize>(p * acs) * 4));
    store<f32>(d, mr > 1 ? load<f32>(a + <usize>(ars + p * acs) * 4) : 0, 4);
  }
}

// C[0:mr, 0:nr] (+)= A strip (2 rows) · packed B panel (16 columns), as `micro` with a 2×16 tile: per step of
// p, 2 splat loads and 4 vector loads feed 16 vector operations (the 4×8 tile needs 4 splats for as many). V8
// emits ~29 instructions a step against ~33, and the 8 accumulators plus 4 B vectors still fit its 15 xmm
// registers. Each C element sums its p in the same order as `micro`, so the two give the same bits. Inlined
// into gemmTri: the call (11 arguments, V8's prologue and stack check) cost ~5 % of a K = 128 product.
// @ts-ignore: decorator
@inline
function micro16(
  pa: usize,
  ai: usize,
  ap: usize,
  pb: usize,
  kc: i32,
  c: usize,
  ldc: i32,
  mr: i32,
  nr: i32,
  acc: bool,
  tile: usize,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c02 = f32x4.splat(0);
  let c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c12 = f32x4.splat(0);
  let c13 = f32x4.splat(0);
  let a0p = pa;
  let bp = pb;
  const a1o = ai;
  // Bounded by the B pointer, not a counter: one instruction less per step (×0.96 on the products).
  const bend = pb + <usize>kc * 64;
  while (bp < bend) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    const b2 = v128.load(bp, 32);
    const b3 = v128.load(bp, 48);
    let a = v128.load32_splat(a0p);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    c02 = madd(a, b2, c02);
    c03 = madd(a, b3, c03);
    a = v128.load32_splat(a0p + a1o);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    c12 = madd(a, b2, c12);
    c13 = madd(a, b3, c13);
    a0p += ap;
    bp += 64;
  }
  const ld = <usize>ldc * 4;
  if (mr == 2 && nr == 16) {
    if (acc) {
      c00 = f32x4.add(c00, v128.load(c));
      c01 = f32x4.add(c01, v128.load(c, 16));
      c02 = f32x4.add(c02, v128.load(c, 32));
      c03 = f32x4.add(c03, v128.load(c, 48));
      c10 = f32x4.add(c10, v128.load(c + ld));
      c11 = f32x4.add(c11, v128.load(c + ld, 16));
      c12 = f32x4.add(c12, v128.load(c + ld, 32));
      c13 = f32x4.add(c13, v128.load(c + ld, 48));
    }
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c, c02, 32);
    v128.store(c, c03, 48);
    v128.store(c + ld, c10);
    v128.store(c + ld, c11, 16);
    v128.store(c + ld, c12, 32);
    v128.store(c + ld, c13, 48);
    return;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c02, 32);
  v128.store(tile, c03, 48);
  v128.store(tile, c10, 64);
  v128.store(tile, c11, 80);
  v128.store(tile, c12, 96);
  v128.store(tile, c13, 112);
  for (let ii = 0; ii < mr; ii++) {
    const row = c + <usize>ii * ld;
    const t = tile + <usize>ii * 64;
    for (let jj = 0; jj < nr; jj++) {
      const d = row + <usize>jj * 4;
      const v = load<f32>(t + <usize>jj * 4);
      store<f32>(d, acc ? load<f32>(d) + v : v);
    }
  }
}

/** Bytes of scratch `gemm`/`gemmx` need at `work`: a packed B block, a packed A strip and two 4×8 tiles. */
export function gemmWorkBytes(): i32 {
  return (KC * NC + KC * 4 + 64) * 4;
}

/**
 * C[i, j] = Σ_p A[i, p] B[p, j] for an m×k A (rows `ars`, cols `acs` apart), a k×n B and a row-major
 * m×n C with row stride `ldc`. Rows [i0, i1) only, so threads can split M.
 */
export function gemm(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  c: usize,
  ldc: i32,
  i0: i32,
  i1: i32,
  n: i32,
  k: i32,
  work: usize,
): void {
  gemmTri(a, ars, acs, b, brs, bcs, c, ldc, i0, i1, n, k, work, 0, 0);
}

/**
 * C[0, j] = Σ_p A[0, p] B[p, j] for a single row of A (elements `acs` apart), without packing B. Packing pays
 * for itself over the rows of A that reuse a panel; with one row (decoding a position at a time through every
 * weight) it is a second pass over B. Two layouts: columns of B contiguous (bcs 1: rows of B are accumulated
 * into C, four at a time) or rows contiguous (brs 1, Bᵀ row-major as a Linear weight: four dot products at a
 * time, one f32x4 accumulator each). Returns 0, doing nothing, for any other layout or when A (copied to `work`
 * when strided) would not fit there; the caller then runs `gemm`.
 */
export function gemv(a: usize, acs: i32, b: usize, brs: i32, bcs: i32, c: usize, n: i32, k: i32, work: usize): i32 {
  if (bcs != 1 && brs != 1) return 0;
  if (k > KC * NC) return 0;
  let x = a;
  if (acs != 1) {
    x = work;
    for (let p = 0; p < k; p++) store<f32>(work + <usize>p * 4, load<f32>(a + <usize>(p * acs) * 4));
  }
  if (bcs == 1) {
    memory.fill(c, 0, <usize>n * 4);
    const rs = <usize>brs * 4;
    // Columns in blocks of 1024, so the block of C being summed into stays in L1 for every p.
    for (let j0 = 0; j0 < n; j0 += 1024) {
      const cb = c + <usize>j0 * 4;
      const bb = b + <usize>j0 * 4;
      gemvRows(x, bb, rs, cb, min(1024, n - j0), k);
    }
    return 1;
  }
  return gemvCols(x, b, <usize>bcs * 4, c, n, k);
}

/** C[j] += Σ_p x[p] B[p, j] for j < n, B's rows `rs` bytes apart: p in order, four rows at a time. */
function gemvRows(x: usize, b: usize, rs: usize, c: usize, n: i32, k: i32): void {
  let p = 0;
  for (; p + 4 <= k; p += 4) {
    const a0 = f32x4.splat(load<f32>(x + <usize>p * 4));
    const a1 = f32x4.splat(load<f32>(x + <usize>p * 4, 4));
    const a2 = f32x4.splat(load<f32>(x + <usize>p * 4, 8));
    const a3 = f32x4.splat(load<f32>(x + <usize>p * 4, 12));
    const r0 = b + <usize>p * rs;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j * 4;
      let y = v128.load(c + o);
      y = madd(a0, v128.load(r0 + o), y);
      y = madd(a1, v128.load(r0 + rs + o), y);
      y = madd(a2, v128.load(r0 + 2 * rs + o), y);
      y = madd(a3, v128.load(r0 + 3 * rs + o), y);
      v128.store(c + o, y);
    }
    for (; j < n; j++) {
      const o = <usize>j * 4;
      let y = load<f32>(c + o);
      y += f32x4.extract_lane(a0, 0) * load<f32>(r0 + o);
      y += f32x4.extract_lane(a1, 0) * load<f32>(r0 + rs + o);
      y += f32x4.extract_lane(a2, 0) * load<f32>(r0 + 2 * rs + o);
      y += f32x4.extract_lane(a3, 0) * load<f32>(r0 + 3 * rs + o);
      store<f32>(c + o, y);
    }
  }
  for (; p < k; p++) {
    const ap = load<f32>(x + <usize>p * 4);
    const r = b + <usize>p * rs;
    for (let j = 0; j < n; j++) {
      const o = <usize>j * 4;
      store<f32>(c + o, load<f32>(c + o) + ap * load<f32>(r + o));
    }
  }
}

/** C[j] = Σ_p x[p] B[p, j] for j < n, B's columns `cs` bytes apart and contiguous along p: four dots at a time. */
function gemvCols(x: usize, b: usize, cs: usize, c: usize, n: i32, k: i32): i32 {
  const k4 = k & ~3;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b0 = b + <usize>j * cs;
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    let s3 = f32x4.splat(0);
    for (let p = 0; p < k4; p += 4) {
      const o = <usize>p * 4;
      const av = v128.load(x + o);
      s0 = madd(av, v128.load(b0 + o), s0);
      s1 = madd(av, v128.load(b0 + cs + o), s1);
      s2 = madd(av, v128.load(b0 + 2 * cs + o), s2);
      s3 = madd(av, v128.load(b0 + 3 * cs + o), s3);
    }
    // Lane sums of the four accumulators, as one vector: transpose by shuffles, then add the rows.
    const t0 = i32x4.shuffle(s0, s1, 0, 4, 1, 5);
    const t1 = i32x4.shuffle(s2, s3, 0, 4, 1, 5);
    const t2 = i32x4.shuffle(s0, s1, 2, 6, 3, 7);
    const t3 = i32x4.shuffle(s2, s3, 2, 6, 3, 7);
    let y = f32x4.add(
      f32x4.add(i64x2.shuffle(t0, t1, 0, 2), i64x2.shuffle(t0, t1, 1, 3)),
      f32x4.add(i64x2.shuffle(t2, t3, 0, 2), i64x2.shuffle(t2, t3, 1, 3)),
    );
    if (k4 < k) {
      let e0: f32 = 0;
      let e1: f32 = 0;
      let e2: f32 = 0;
      let e3: f32 = 0;
      for (let p = k4; p < k; p++) {
        const o = <usize>p * 4;
        const ap = load<f32>(x + o);
        e0 += ap * load<f32>(b0 + o);
        e1 += ap * load<f32>(b0 + cs + o);
        e2 += ap * load<f32>(b0 + 2 * cs + o);
        e3 += ap * load<f32>(b0 + 3 * cs + o);
      }
      let e = f32x4.splat(e0);
      e = f32x4.replace_lane(e, 1, e1);
      e = f32x4.replace_lane(e, 2, e2);
      e = f32x4.replace_lane(e, 3, e3);
      y = f32x4.add(y, e);
    }
    v128.store(c + <usize>j * 4, y);
  }
  for (; j < n; j++) {
    const col = b + <usize>j * cs;
    let s = f32x4.splat(0);
    for (let p = 0; p < k4; p += 4) s = madd(v128.load(x + <usize>p * 4), v128.load(col + <usize>p * 4), s);
    // The same order as the columns above: lanes (0 + 1) + (2 + 3), then the tail's own sum.
    let y: f32 =
      f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
    if (k4 < k) {
      let e: f32 = 0;
      for (let p = k4; p < k; p++) e += load<f32>(x + <usize>p * 4) * load<f32>(col + <usize>p * 4);
      y += e;
    }
    store<f32>(c + <usize>j * 4, y);
  }
  return 1;
}

/**
 * `gemm` for causal attention's products, where entry (i, j) of an [L, L'] matrix is live when j ≤ i + off:
 * tri 1 keeps only the live entries of C (the others 0) and skips the 16-column panels right of a strip's
 * last live column (q kᵀ, and dO vᵀ, whose dead entries nobody reads); tri 2 takes A as 0 past its live
 * entries (p > i + off: the probabilities and their gradient) and stops each strip's sum there (p v, dS k);
 * tri 3 takes A as the transpose of such a matrix, 0 before p = i − off, and starts each strip's sum there
 * (pᵀ dO, dSᵀ q). The skipped products are exact zeros: a sum that starts at +0 never becomes −0, so leaving
 * them out gives the bits of the full sum. About half the multiply-adds of these products at L = 128. tri 4 is
 * tri 1 without zeroing the dead entries, for the fused attention kernels, whose softmax (or its VJP) reads
 * only the live ones and writes the rest.
 */
export function gemmTri(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  c: usize,
  ldc: i32,
  i0: i32,
  i1: i32,
  n: i32,
  k: i32,
  work: usize,
  tri: i32,
  off: i32,
): void {
  if (k == 0) {
    for (let i = i0; i < i1; i++) memory.fill(c + <usize>(i * ldc) * 4, 0, <usize>n * 4);
    return;
  }
  const pb = work;
  const pa = work + <usize>(KC * NC) * 4;
  const tile = pa + <usize>KC * 16;
  // Even K blocks (300 → 150 + 150, not 256 + 44): a short last block wastes the C loads and stores.
  const kb = (k + KC - 1) / KC;
  const kstep = (k + kb - 1) / kb;
  for (let k0 = 0; k0 < k; k0 += kstep) {
    const kc = min(kstep, k - k0);
    for (let j0 = 0; j0 < n; j0 += NC) {
      const nc = min(NC, n - j0);
      packB16(b + <usize>(k0 * brs + j0 * bcs) * 4, brs, bcs, kc, nc, pb);
      // The second strip of a pair packed by packA4T (0: none) and the p its packing starts at.
      let paired: usize = 0;
      let pairedLo = 0;
      for (let i = i0; i < i1; i += 2) {
        const mr = min(2, i1 - i);
        // This strip's live range of p within the block [plo, phi), and of columns [0, ncl).
        let plo = 0;
        let phi = kc;
        let ncl = nc;
        if (tri == 1 || tri == 4) ncl = max(0, min(nc, i + mr + off - j0));
        else if (tri == 2) phi = max(0, min(kc, i + mr + off - k0));
        else if (tri == 3) plo = min(kc, max(0, i - off - k0));
        if (ncl == 0) {
          paired = 0;
          continue;
        }
        if (phi < plo) phi = plo;
        // A from p = k0 + plo on: read in place, or only the live part packed.
        const a0 = a + <usize>(i * ars + (k0 + plo) * acs) * 4;
        let ap: usize = pa;
        let ai: usize = 4;
        let as: usize = 8;
        if (mr == 2 && acs == 1) {
          ap = a0;
          ai = <usize>ars * 4;
          as = 4;
        } else if (paired != 0) {
          ap = paired + <usize>(plo - pairedLo) * 8;
          paired = 0;
        } else if (ars == 1 && i + 4 <= i1) {
          // Transposed A (weight gradients, pᵀ dO): this strip and the next in one pass, over both p ranges
          // (the next one's reaches 2 further under tri 2 and starts 2 later under tri 3).
          const hi = tri == 2 ? max(phi, min(kc, i + 4 + off - k0)) : phi;
          paired = pa + <usize>KC * 8;
          pairedLo = plo;
          packA4T(a0, acs, hi - plo, pa, paired);
        } else packA2(a0, ars, acs, mr, phi - plo, pa);
        const crow = c + <usize>(i * ldc + j0) * 4;
        for (let q = 0; q < ncl; q += 16)
          micro16(ap, ai, as, pb + <usize>((q * kc + plo * 16) * 4), phi - plo, crow + <usize>q * 4, ldc, mr, min(16, nc - q), k0 > 0, tile);
      }
    }
  }
  if (tri == 1)
    for (let i = i0; i < i1; i++) {
      const j = max(0, i + off + 1);
      if (j < n) zero(c + <usize>(i * ldc + j) * 4, <usize>(n - j) * 4);
    }
}

// ---------------------------------------------------------------- implicit GEMM (convolutions)
//
// gemmx is gemm with B and (optionally) C addressed through offset tables instead of two strides:
// B[p, j] = b[bro[p] + bco[j]], C[i, j] = c[cro[i] + cco[j]] (element offsets, i32 tables). A convolution's
// im2col matrix has exactly this form — row p = (channel, tap) gives one offset, column j = output position
// another — so the packing step reads the input in place and the im2col matrix is never written
// (implicit GEMM). The same tables with roles swapped give the weight gradient (B = im2colᵀ) and, as the
// scatter-add store of C, the input gradient (col2im). Columns that are 8 consecutive elements pack with
// v128 loads; rows that are 4 consecutive elements pack as transposed 4×4 blocks; anything else by element.

// Packs B[p, j] = b[ro[p] + co[j]] for p < kc, j < nr (≤ 8; zeros for j ≥ nr) into 8 columns at dst, rows `rs`
// bytes apart: a whole 8-column panel (rs 32) or one half of a 16-column one (rs 64).
function packBx8(b: usize, ro: usize, cq: usize, kc: i32, nr: i32, dst: usize, rs: usize): void {
  if (nr <= 0) {
    for (let p = 0; p < kc; p++) {
      v128.store(dst + <usize>p * rs, f32x4.splat(0));
      v128.store(dst + <usize>p * rs, f32x4.splat(0), 16);
    }
    return;
  }
  const c0 = load<i32>(cq);
  let dense = nr == 8;
  for (let jj = 1; dense && jj < 8; jj++) dense = load<i32>(cq + <usize>jj * 4) == c0 + jj;
  if (dense) {
    for (let p = 0; p < kc; p++) {
      const src = b + <usize>((load<i32>(ro + <usize>p * 4) + c0) * 4);
      v128.store(dst, v128.load(src));
      v128.store(dst, v128.load(src, 16), 16);
      dst += rs;
    }
    return;
  }
  let p = 0;
  if (nr == 8) {
    // Columns that are not adjacent (weight gradient: j = channel·tap): 4 rows at a time when the rows
    // are adjacent elements (p = output position), each column loaded as a v128 and transposed.
    for (; p + 4 <= kc; p += 4) {
      const rp = ro + <usize>p * 4;
      const r0 = load<i32>(rp);
      if (load<i32>(rp, 4) != r0 + 1 || load<i32>(rp, 8) != r0 + 2 || load<i32>(rp, 12) != r0 + 3) {
        for (let pp = 0; pp < 4; pp++) {
          const r = load<i32>(rp + <usize>pp * 4);
          const d = dst + <usize>(p + pp) * rs;
          for (let jj = 0; jj < 8; jj++)
            store<f32>(d + <usize>jj * 4, load<f32>(b + <usize>((r + load<i32>(cq + <usize>jj * 4)) * 4)));
        }
        continue;
      }
      const d = dst + <usize>p * rs;
      for (let h: usize = 0; h < 2; h++) {
        const ch = cq + h * 16;
        const v0 = v128.load(b + <usize>((r0 + load<i32>(ch)) * 4));
        const v1 = v128.load(b + <usize>((r0 + load<i32>(ch, 4)) * 4));
        const v2 = v128.load(b + <usize>((r0 + load<i32>(ch, 8)) * 4));
        const v3 = v128.load(b + <usize>((r0 + load<i32>(ch, 12)) * 4));
        const t0 = i32x4.shuffle(v0, v1, 0, 4, 1, 5);
        const t1 = i32x4.shuffle(v2, v3, 0, 4, 1, 5);
        const t2 = i32x4.shuffle(v0, v1, 2, 6, 3, 7);
        const t3 = i32x4.shuffle(v2, v3, 2, 6, 3, 7);
        const dh = d + h * 16;
        v128.store(dh, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
        v128.store(dh + rs, i32x4.shuffle(t0, t1, 2, 3, 6, 7));
        v128.store(dh + 2 * rs, i32x4.shuffle(t2, t3, 0, 1, 4, 5));
        v128.store(dh + 3 * rs, i32x4.shuffle(t2, t3, 2, 3, 6, 7));
      }
    }
  }
  for (; p < kc; p++) {
    const r = load<i32>(ro + <usize>p * 4);
    const d = dst + <usize>p * rs;
    for (let jj = 0; jj < 8; jj++)
      store<f32>(d + <usize>jj * 4, jj < nr ? load<f32>(b + <usize>((r + load<i32>(cq + <usize>jj * 4)) * 4)) : 0);
  }
}

// Packs B[p, j] = b[ro[p] + co[j]] for p < kc, j < nc into ceil(nc/8) panels of kc × 8, zero padded.
function packBx(b: usize, ro: usize, co: usize, kc: i32, nc: i32, pb: usize): void {
  for (let q = 0; q < nc; q += 8) packBx8(b, ro, co + <usize>q * 4, kc, min(8, nc - q), pb + <usize>(q * kc) * 4, 32);
}

// The same into ceil(nc/16) panels of kc × 16, each as two 8-column halves, so a half that is 8 adjacent
// elements (an output row of 8 but not 16 positions) still packs with v128 loads.
function packBx16(b: usize, ro: usize, co: usize, kc: i32, nc: i32, pb: usize): void {
  for (let q = 0; q < nc; q += 16) {
    const dst = pb + <usize>(q * kc) * 4;
    packBx8(b, ro, co + <usize>q * 4, kc, min(8, nc - q), dst, 64);
    packBx8(b, ro, co + <usize>(q + 8) * 4, kc, min(8, nc - q - 8), dst + 32, 64);
  }
}

// C[cro[i] + cco[j]] += tile[i, j] for i < mr, j < nr (a 4×8 tile, rows 32 bytes apart). Rows one after
// another, so overlapping targets (col2im: neighbouring taps hit the same input element) add up correctly.
function scatterTile(t: usize, c: usize, cro: usize, cco: usize, mr: i32, nr: i32): void {
  const c0 = load<i32>(cco);
  let dense = nr == 8;
  for (let jj = 1; dense && jj < 8; jj++) dense = load<i32>(cco + <usize>jj * 4) == c0 + jj;
  for (let ii = 0; ii < mr; ii++) {
    const r = load<i32>(cro + <usize>ii * 4);
    const row = t + <usize>ii * 32;
    if (dense) {
      const d = c + <usize>((r + c0) * 4);
      v128.store(d, f32x4.add(v128.load(d), v128.load(row)));
      v128.store(d, f32x4.add(v128.load(d, 16), v128.load(row, 16)), 16);
    } else
      for (let jj = 0; jj < nr; jj++) {
        const d = c + <usize>((r + load<i32>(cco + <usize>jj * 4)) * 4);
        store<f32>(d, load<f32>(d) + load<f32>(row + <usize>jj * 4));
      }
  }
}

/**
 * C = A·B (or C += A·B when `accum`) with A an m×k strided matrix, B[p, j] = b[bro[p] + bco[j]], and C either
 * row-major (cro = 0: row stride `ldc`) or scattered: A·B[i, j] is added to c[cro[i] + cco[j]] (always accumulated).
 * Rows [i0, i1) only. Tables are i32 element offsets (negative ones allowed); pointers are byte addresses.
 */
export function gemmx(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  bro: usize,
  bco: usize,
  c: usize,
  ldc: i32,
  cro: usize,
  cco: usize,
  i0: i32,
  i1: i32,
  n: i32,
  k: i32,
  accum: i32,
  work: usize,
): void {
  if (k == 0) return;
  const pb = work;
  const pa = work + <usize>(KC * NC) * 4;
  const tile = pa + <usize>KC * 16;
  const kb = (k + KC - 1) / KC;
  const kstep = (k + kb - 1) / kb;
  if (cro != 0 || n < 16) {
    gemmx48(a, ars, acs, b, bro, bco, c, ldc, cro, cco, i0, i1, n, k, accum, pb, pa, tile, kstep);
    return;
  }
  // The 2×16 kernel of gemm: the same sums in the same order per output (so the same bits as the 4×8 one).
  for (let k0 = 0; k0 < k; k0 += kstep) {
    const kc = min(kstep, k - k0);
    const acc = accum != 0 || k0 > 0;
    for (let j0 = 0; j0 < n; j0 += NC) {
      const nc = min(NC, n - j0);
      packBx16(b, bro + <usize>k0 * 4, bco + <usize>j0 * 4, kc, nc, pb);
      let paired: usize = 0;
      for (let i = i0; i < i1; i += 2) {
        const mr = min(2, i1 - i);
        const a0 = a + <usize>(i * ars + k0 * acs) * 4;
        let ap: usize = pa;
        let ai: usize = 4;
        let as: usize = 8;
        if (mr == 2 && acs == 1) {
          ap = a0;
          ai = <usize>ars * 4;
          as = 4;
        } else if (paired != 0) {
          ap = paired;
          paired = 0;
        } else if (ars == 1 && i + 4 <= i1) {
          // Transposed A (the input gradient's Wᵀ): this strip and the next from one v128 load per p.
          paired = pa + <usize>KC * 8;
          packA4T(a0, acs, kc, pa, paired);
        } else packA2(a0, ars, acs, mr, kc, pa);
        const crow = c + <usize>(i * ldc + j0) * 4;
        for (let q = 0; q < nc; q += 16)
          micro16(ap, ai, as, pb + <usize>(q * kc) * 4, kc, crow + <usize>q * 4, ldc, mr, min(16, nc - q), acc, tile);
      }
    }
  }
}

// gemmx on the 4×8 kernel, for the scattered store (col2im: the order in which overlapping targets receive
// their adds is part of the result's bits, and it follows the tile shape) and for GEMVs (n < 16: the bias
// gradient, where a 16-column panel would be mostly zeros).
function gemmx48(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  bro: usize,
  bco: usize,
  c: usize,
  ldc: i32,
  cro: usize,
  cco: usize,
  i0: i32,
  i1: i32,
  n: i32,
  k: i32,
  accum: i32,
  pb: usize,
  pa: usize,
  tile: usize,
  kstep: i32,
): void {
  const tile2 = tile + 128;
  for (let k0 = 0; k0 < k; k0 += kstep) {
    const kc = min(kstep, k - k0);
    for (let j0 = 0; j0 < n; j0 += NC) {
      const nc = min(NC, n - j0);
      packBx(b, bro + <usize>k0 * 4, bco + <usize>j0 * 4, kc, nc, pb);
      for (let i = i0; i < i1; i += 4) {
        const mr = min(4, i1 - i);
        const a0 = a + <usize>(i * ars + k0 * acs) * 4;
        let ap: usize = pa;
        let ai: usize = 4;
        let as: usize = 16;
        if (mr == 4 && acs == 1) {
          ap = a0;
          ai = <usize>ars * 4;
          as = 4;
        } else packA(a0, ars, acs, mr, kc, pa);
        if (cro == 0) {
          const crow = c + <usize>(i * ldc + j0) * 4;
          for (let q = 0; q < nc; q += 8)
            micro(ap, ai, as, pb + <usize>(q * kc) * 4, kc, crow + <usize>q * 4, ldc, mr, min(8, nc - q), accum != 0 || k0 > 0, tile);
        } else {
          const ri = cro + <usize>i * 4;
          for (let q = 0; q < nc; q += 8) {
            micro(ap, ai, as, pb + <usize>(q * kc) * 4, kc, tile2, 8, 4, 8, false, tile);
            scatterTile(tile2, c, ri, cco + <usize>(j0 + q) * 4, mr, min(8, nc - q));
          }
        }
      }
    }
  }
}

/**
 * Zeroes `bytes` (a multiple of 4) at p with v128 stores, for the short per-row fills of the masked kernels: on
 * shared memory V8 makes memory.fill a runtime call (a causal [128, 128] block took 128 of them per head).
 */
function zero(p: usize, bytes: usize): void {
  const z = i32x4.splat(0);
  let o: usize = 0;
  for (; o + 16 <= bytes; o += 16) v128.store(p + o, z);
  for (; o < bytes; o += 4) store<i32>(p + o, 0);
}

/** Fills n 4-byte words at dst with `bits` (a float32 or int32 bit pattern). */
export function fill32(dst: usize, bits: i32, n: i32): void {
  if (bits == 0) {
    memory.fill(dst, 0, <usize>n * 4);
    return;
  }
  const v = i32x4.splat(bits);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + <usize>i * 4, v);
  for (; i < n; i++) store<i32>(dst + <usize>i * 4, bits);
}

/**
 * Strided copy of 4-byte elements: an `nd`-dim view (sizes at `shape`, element strides at `dstStrides` and
 * `srcStrides`, i32 arrays, innermost last) from `src` to `dst`. The three innermost dims run as plain
 * loops (im2col windows have short rows: k, then kh·kw); the outer ones through an odometer in `idx`.
 */
export function copyStrided(
  dst: usize,
  src: usize,
  nd: i32,
  shape: usize,
  dstStrides: usize,
  srcStrides: usize,
  idx: usize,
): void {
  const n2 = nd >= 1 ? load<i32>(shape + <usize>(nd - 1) * 4) : 1;
  const s2 = nd >= 1 ? <usize>load<i32>(srcStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const d2 = nd >= 1 ? <usize>load<i32>(dstStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const n1 = nd >= 2 ? load<i32>(shape + <usize>(nd - 2) * 4) : 1;
  const s1 = nd >= 2 ? <usize>load<i32>(srcStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const d1 = nd >= 2 ? <usize>load<i32>(dstStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const n0 = nd >= 3 ? load<i32>(shape + <usize>(nd - 3) * 4) : 1;
  const s0 = nd >= 3 ? <usize>load<i32>(srcStrides + <usize>(nd - 3) * 4) * 4 : 0;
  const d0 = nd >= 3 ? <usize>load<i32>(dstStrides + <usize>(nd - 3) * 4) * 4 : 0;
  const outer = nd - 3;
  for (let d = 0; d < outer; d++) store<i32>(idx + <usize>d * 4, 0);
  const rowBytes = <usize>n2 * 4;
  const dense = s2 == 4 && d2 == 4 && n2 >= 16;
  // Short contiguous rows written back to back (im2col windows, k ≤ 4): one v128 per row; its spare lanes
  // are overwritten by the next row, and the last row of each run goes element by element.
  const short = s2 == 4 && d2 == 4 && n2 <= 4 && d1 == rowBytes && n1 > 1;
  let sb = src;
  let db = dst;
  for (;;) {
    let sa = sb;
    let da = db;
    for (let a = 0; a < n0; a++) {
      let sr = sa;
      let dr = da;
      if (short) {
        for (let i = 0; i < n1 - 1; i++) {
          v128.store(dr, v128.load(sr));
          sr += s1;
          dr += d1;
        }
        for (let j: usize = 0; j < rowBytes; j += 4) store<i32>(dr + j, load<i32>(sr + j));
      } else if (dense) {
        // A v128 loop, not memory.copy: on shared memory V8 makes memory.copy a runtime call (~0.5 µs).
        for (let i = 0; i < n1; i++) {
          let o: usize = 0;
          for (; o + 16 <= rowBytes; o += 16) v128.store(dr + o, v128.load(sr + o));
          for (; o < rowBytes; o += 4) store<i32>(dr + o, load<i32>(sr + o));
          sr += s1;
          dr += d1;
        }
      } else {
        for (let i = 0; i < n1; i++) {
          let ss = sr;
          let dd = dr;
          for (let j = 0; j < n2; j++) {
            store<i32>(dd, load<i32>(ss));
            ss += s2;
            dd += d2;
          }
          sr += s1;
          dr += d1;
        }
      }
      sa += s0;
      da += d0;
    }
    let d = outer - 1;
    for (; d >= 0; d--) {
      const ip = idx + <usize>d * 4;
      const ss = <usize>load<i32>(srcStrides + <usize>d * 4) * 4;
      const ds = <usize>load<i32>(dstStrides + <usize>d * 4) * 4;
      const v = load<i32>(ip) + 1;
      if (v < load<i32>(shape + <usize>d * 4)) {
        store<i32>(ip, v);
        sb += ss;
        db += ds;
        break;
      }
      store<i32>(ip, 0);
      sb -= ss * <usize>(v - 1);
      db -= ds * <usize>(v - 1);
    }
    if (d < 0) return;
  }
}

// Elementwise float32 binary ops: 0 add, 1 sub, 2 mul, 3 div, 4 maximum, 5 minimum (NaN-propagating, as
// torch). f32 arithmetic gives the same bits as JS's double arithmetic rounded to float32 for these.
// @ts-ignore: decorator
@inline function vop(op: i32, x: v128, y: v128): v128 {
  switch (op) {
    case 0:
      return f32x4.add(x, y);
    case 1:
      return f32x4.sub(x, y);
    case 2:
      return f32x4.mul(x, y);
    case 3:
      return f32x4.div(x, y);
    case 4:
      return f32x4.max(x, y);
    default:
      return f32x4.min(x, y);
  }
}

// @ts-ignore: decorator
@inline function sop(op: i32, x: f32, y: f32): f32 {
  switch (op) {
    case 0:
      return x + y;
    case 1:
      return x - y;
    case 2:
      return x * y;
    case 3:
      return x / y;
    case 4:
      return max<f32>(x, y);
    default:
      return min<f32>(x, y);
  }
}

// One row of n elements; sa, sb are byte strides (4 = contiguous, 0 = broadcast).
function binaryRow(op: i32, d: usize, a: usize, sa: usize, b: usize, sb: usize, n: i32): void {
  let i = 0;
  if (sa == 4 && sb == 4) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      v128.store(d + o, vop(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (sa == 4 && sb == 0) {
    const y = v128.load32_splat(b);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      v128.store(d + o, vop(op, v128.load(a + o), y));
    }
  } else if (sa == 0 && sb == 4) {
    const x = v128.load32_splat(a);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      v128.store(d + o, vop(op, x, v128.load(b + o)));
    }
  }
  for (; i < n; i++) store<f32>(d + <usize>i * 4, sop(op, load<f32>(a + <usize>i * sa), load<f32>(b + <usize>i * sb)));
}

/** dst (contiguous) = a op b over an nd-dim view; strides (elements) at `aStrides`, `bStrides`. */
export function binary(
  op: i32,
  dst: usize,
  a: usize,
  b: usize,
  nd: i32,
  shape: usize,
  aStrides: usize,
  bStrides: usize,
  idx: usize,
): void {
  const n1 = nd >= 1 ? load<i32>(shape + <usize>(nd - 1) * 4) : 1;
  const sa1 = nd >= 1 ? <usize>load<i32>(aStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const sb1 = nd >= 1 ? <usize>load<i32>(bStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const n0 = nd >= 2 ? load<i32>(shape + <usize>(nd - 2) * 4) : 1;
  const sa0 = nd >= 2 ? <usize>load<i32>(aStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const sb0 = nd >= 2 ? <usize>load<i32>(bStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const outer = nd - 2;
  for (let d = 0; d < outer; d++) store<i32>(idx + <usize>d * 4, 0);
  const rowBytes = <usize>n1 * 4;
  let ab = a;
  let bb = b;
  for (;;) {
    let ar = ab;
    let br = bb;
    for (let r = 0; r < n0; r++) {
      binaryRow(op, dst, ar, sa1, br, sb1, n1);
      dst += rowBytes;
      ar += sa0;
      br += sb0;
    }
    let d = outer - 1;
    for (; d >= 0; d--) {
      const ip = idx + <usize>d * 4;
      const sa = <usize>load<i32>(aStrides + <usize>d * 4) * 4;
      const sb = <usize>load<i32>(bStrides + <usize>d * 4) * 4;
      const v = load<i32>(ip) + 1;
      if (v < load<i32>(shape + <usize>d * 4)) {
        store<i32>(ip, v);
        ab += sa;
        bb += sb;
        break;
      }
      store<i32>(ip, 0);
      ab -= sa * <usize>(v - 1);
      bb -= sb * <usize>(v - 1);
    }
    if (d < 0) return;
  }
}

// exp(x) = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln2 / 2: r is reduced with ln 2 split in two (the
// Cody–Waite trick), e^r is 1 + r + r²·P(r) with the degree-5 minimax P of Cephes' expf (≈ 1 ulp), and 2^n
// is applied as two exact powers so results down to the denormals and up to the overflow to +inf are right.
// x is clamped to [-104, 89]; NaN stays NaN through min/max.
// @ts-ignore: decorator
@inline function vexp(x: v128): v128 {
  // pmin/pmax (one x64 instruction each; min/max need ~7 for IEEE NaN and ±0 rules) with x first: a NaN x
  // compares false and passes through, as it does through min/max, so the bits are the same.
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(89)), f32x4.splat(-104));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504089)));
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let q = f32x4.splat(1.9875691500e-4);
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(1.3981999507e-3));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(8.3334519073e-3));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(4.1665795894e-2));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(1.6666665459e-1));
  q = f32x4.add(f32x4.mul(q, r), f32x4.splat(5.0000001201e-1));
  const er = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(q, r), r), r), f32x4.splat(1));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(er, s1), s2);
}

// Φ(x), the standard normal CDF, as 0.5·erfc(−x/√2) with erfc from Numerical Recipes' Chebyshev fit
// (|relative error| < 1.2e-7, the TypeScript kernel's `erf`): erfc(z) = t·exp(−z² + c(t)), t = 1/(1 + z/2) for
// z = |x|/√2 ≥ 0, and Φ = 1 − erfc/2 for x ≥ 0, erfc/2 below. Computing erfc, never 1 + erf, keeps the
// relative accuracy in the left tail, where GELU(x) = x·Φ(x) is a small product (a float32 1 + erf would cancel).
// z² is 0.5·x·x: one rounding, so the exponent is off by at most z²·2⁻²⁴ (≈ 1e-6 relative in the tail).
// NaN passes through every step; ±inf give Φ = 1 / 0.
// @ts-ignore: decorator
@inline function vphi(x: v128): v128 {
  const z = f32x4.mul(f32x4.abs(x), f32x4.splat(<f32>Math.SQRT1_2));
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(z, f32x4.splat(0.5))));
  let c = f32x4.splat(0.17087277);
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(-0.82215223));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(1.48851587));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(-1.13520398));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(0.27886807));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(-0.18628806));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(0.09678418));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(0.37409196));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(1.00002368));
  c = f32x4.add(f32x4.mul(c, t), f32x4.splat(-1.26551223));
  const z2 = f32x4.mul(f32x4.mul(x, x), f32x4.splat(0.5));
  const half = f32x4.mul(f32x4.mul(t, vexp(f32x4.sub(c, z2))), f32x4.splat(0.5));
  return v128.bitselect(f32x4.sub(f32x4.splat(1), half), half, f32x4.ge(x, f32x4.splat(0)));
}

// The unary ops built on vexp: 6 exp, 7 gelu x·Φ(x), 8 gelu's derivative Φ(x) + x·φ(x) (φ = e^(−x²/2)/√(2π)),
// 9 sigmoid s = 1/(1 + e^−x), 10 silu x·s, 11 silu's derivative s·(1 + x·(1 − s)). 1 − s is taken as e^−x·s for
// x ≥ 0, where 1 − s would cancel, and as 1 − s below (e^−x may overflow there; 1 − s ≥ 1/2 is exact enough).
// @ts-ignore: decorator
@inline function vpoly(op: i32, x: v128): v128 {
  if (op == 6) return vexp(x);
  if (op <= 8) {
    const phi = vphi(x);
    if (op == 7) return f32x4.mul(x, phi);
    const density = f32x4.mul(vexp(f32x4.mul(f32x4.mul(x, x), f32x4.splat(-0.5))), f32x4.splat(<f32>0.3989422804014327));
    return f32x4.add(phi, f32x4.mul(x, density));
  }
  const one = f32x4.splat(1);
  const e = vexp(f32x4.neg(x));
  const s = f32x4.div(one, f32x4.add(one, e));
  if (op == 9) return s;
  if (op == 10) return f32x4.mul(x, s);
  const oneMinusS = v128.bitselect(f32x4.mul(e, s), f32x4.sub(one, s), f32x4.ge(x, f32x4.splat(0)));
  return f32x4.mul(s, f32x4.add(one, f32x4.mul(x, oneMinusS)));
}

/**
 * Contiguous float32 unary ops: 0 neg, 1 abs, 2 sqrt, 3 relu (x > 0 or NaN ? x : 0: NaN propagates, as in
 * PyTorch and the other kernels), 4 reciprocal, 5 floor — each equal to JS's double result rounded to float32 — and
 * 6 exp (≈ 1 ulp), 7 gelu, 8 its derivative, 9 sigmoid, 10 silu, 11 its derivative (`vpoly`).
 */
export function unary(op: i32, dst: usize, src: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    const x = v128.load(src + o);
    let y: v128;
    switch (op) {
      case 0:
        y = f32x4.neg(x);
        break;
      case 1:
        y = f32x4.abs(x);
        break;
      case 2:
        y = f32x4.sqrt(x);
        break;
      case 3:
        y = v128.and(x, v128.or(f32x4.gt(x, zero), f32x4.ne(x, x)));
        break;
      case 4:
        y = f32x4.div(one, x);
        break;
      case 5:
        y = f32x4.floor(x);
        break;
      default:
        y = vpoly(op, x);
    }
    v128.store(dst + o, y);
  }
  if (op >= 6) {
    // The tail through the same vector code, so every element gets the same function: arena blocks are
    // 16-byte multiples, so the spare lanes stay inside dst's block (and the load inside the memory).
    if (i < n) v128.store(dst + <usize>i * 4, vpoly(op, v128.load(src + <usize>i * 4)));
    return;
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    const x = load<f32>(src + o);
    let y: f32;
    switch (op) {
      case 0:
        y = -x;
        break;
      case 1:
        y = abs<f32>(x);
        break;
      case 2:
        y = sqrt<f32>(x);
        break;
      case 3:
        y = x > 0 || x != x ? x : 0;
        break;
      case 4:
        y = 1 / x;
        break;
      default:
        y = floor<f32>(x);
    }
    store<f32>(dst + o, y);
  }
}

// float32 comparisons into bytes (0/1): 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge (NaN compares false, ne true).
// @ts-ignore: decorator
@inline function cop(op: i32, x: f32, y: f32): u8 {
  switch (op) {
    case 0:
      return <u8>(x == y);
    case 1:
      return <u8>(x != y);
    case 2:
      return <u8>(x < y);
    case 3:
      return <u8>(x <= y);
    case 4:
      return <u8>(x > y);
    default:
      return <u8>(x >= y);
  }
}

// The same comparisons on four lanes (all-ones or zero masks; NaN as in `cop`).
// @ts-ignore: decorator
@inline function vcop(op: i32, x: v128, y: v128): v128 {
  switch (op) {
    case 0:
      return f32x4.eq(x, y);
    case 1:
      return f32x4.ne(x, y);
    case 2:
      return f32x4.lt(x, y);
    case 3:
      return f32x4.le(x, y);
    case 4:
      return f32x4.gt(x, y);
    default:
      return f32x4.ge(x, y);
  }
}

/** dst (contiguous bytes) = a cmp b over an nd-dim float32 view; strides (elements) at `aStrides`, `bStrides`. */
export function compare(
  op: i32,
  dst: usize,
  a: usize,
  b: usize,
  nd: i32,
  shape: usize,
  aStrides: usize,
  bStrides: usize,
  idx: usize,
): void {
  const n1 = nd >= 1 ? load<i32>(shape + <usize>(nd - 1) * 4) : 1;
  const sa1 = nd >= 1 ? <usize>load<i32>(aStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const sb1 = nd >= 1 ? <usize>load<i32>(bStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const n0 = nd >= 2 ? load<i32>(shape + <usize>(nd - 2) * 4) : 1;
  const sa0 = nd >= 2 ? <usize>load<i32>(aStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const sb0 = nd >= 2 ? <usize>load<i32>(bStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const outer = nd - 2;
  for (let d = 0; d < outer; d++) store<i32>(idx + <usize>d * 4, 0);
  let ab = a;
  let bb = b;
  for (;;) {
    let ar = ab;
    let br = bb;
    for (let r = 0; r < n0; r++) {
      let x = ar;
      let y = br;
      let i = 0;
      if (sa1 == 4 && (sb1 == 4 || sb1 == 0)) {
        // Contiguous a, contiguous or broadcast b: 16 lanes, masks narrowed to bytes and masked to 0/1.
        const ys = f32x4.splat(load<f32>(y));
        const yv: usize = sb1 * 4;
        for (; i + 16 <= n1; i += 16) {
          const m0 = vcop(op, v128.load(x), yv ? v128.load(y) : ys);
          const m1 = vcop(op, v128.load(x, 16), yv ? v128.load(y + yv) : ys);
          const m2 = vcop(op, v128.load(x, 32), yv ? v128.load(y + 2 * yv) : ys);
          const m3 = vcop(op, v128.load(x, 48), yv ? v128.load(y + 3 * yv) : ys);
          const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(m0, m1), i16x8.narrow_i32x4_s(m2, m3));
          v128.store(dst, v128.and(bytes, i8x16.splat(1)));
          dst += 16;
          x += 64;
          y += 4 * yv;
        }
      }
      for (; i < n1; i++) {
        store<u8>(dst, cop(op, load<f32>(x), load<f32>(y)));
        dst += 1;
        x += sa1;
        y += sb1;
      }
      ar += sa0;
      br += sb0;
    }
    let d = outer - 1;
    for (; d >= 0; d--) {
      const ip = idx + <usize>d * 4;
      const sa = <usize>load<i32>(aStrides + <usize>d * 4) * 4;
      const sb = <usize>load<i32>(bStrides + <usize>d * 4) * 4;
      const v = load<i32>(ip) + 1;
      if (v < load<i32>(shape + <usize>d * 4)) {
        store<i32>(ip, v);
        ab += sa;
        bb += sb;
        break;
      }
      store<i32>(ip, 0);
      ab -= sa * <usize>(v - 1);
      bb -= sb * <usize>(v - 1);
    }
    if (d < 0) return;
  }
}

/**
 * dst[c] = Σ_r src[r, c] for a contiguous R×C float32 matrix, accumulated in f64 in row order, so the result
 * equals the TypeScript kernel's bit for bit. Rows are streamed in order, each adding into f64 accumulators in
 * `work` (8 bytes per column of a panel): walking one column strip down all rows instead (one cache line per
 * row, a row apart) missed cache on every row once the matrix outgrew L2 (2048×512: ≈ 4 ms). Panels of at most
 * COLSUM_PANEL columns keep the accumulators in L1.
 */
const COLSUM_PANEL = 1024;
export function colsum(dst: usize, src: usize, R: i32, C: i32, work: usize): void {
  const ld = <usize>C * 4;
  for (let c0 = 0; c0 < C; c0 += COLSUM_PANEL) {
    const w = min(COLSUM_PANEL, C - c0);
    const w8 = w & ~7;
    memory.fill(work, 0, <usize>w * 8);
    let row = src + <usize>c0 * 4;
    for (let r = 0; r < R; r++) {
      let p = row;
      let a = work;
      const end = row + <usize>w8 * 4;
      for (; p < end; p += 32, a += 64) {
        const lo = v128.load(p);
        const hi = v128.load(p, 16);
        v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(lo)));
        v128.store(a, f64x2.add(v128.load(a, 16), f64x2.promote_low_f32x4(i32x4.shuffle(lo, lo, 2, 3, 0, 1))), 16);
        v128.store(a, f64x2.add(v128.load(a, 32), f64x2.promote_low_f32x4(hi)), 32);
        v128.store(a, f64x2.add(v128.load(a, 48), f64x2.promote_low_f32x4(i32x4.shuffle(hi, hi, 2, 3, 0, 1))), 48);
      }
      for (let c = w8; c < w; c++, p += 4, a += 8) store<f64>(a, load<f64>(a) + <f64>load<f32>(p));
      row += ld;
    }
    const d = dst + <usize>c0 * 4;
    for (let c = 0; c < w; c++) store<f32>(d + <usize>c * 4, <f32>load<f64>(work + <usize>c * 8));
  }
}

/**
 * nn.Linear's epilogue, in place on its product y [rows, n]: y = y + bias[j], then relu (x > 0 or NaN ? x : 0,
 * unary op 3) when `relu`. The same f32 add and select as the separate add and relu kernels, so the same bits,
 * in one pass over y instead of two passes that each write a new array.
 */
export function biasAct(y: usize, bias: usize, rows: i32, n: i32, relu: i32): void {
  const zero = f32x4.splat(0);
  const n4 = n & ~3;
  let row = y;
  for (let r = 0; r < rows; r++, row += <usize>n * 4) {
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j * 4;
      let x = f32x4.add(v128.load(row + o), v128.load(bias + o));
      if (relu) x = v128.and(x, v128.or(f32x4.gt(x, zero), f32x4.ne(x, x)));
      v128.store(row + o, x);
    }
    for (; j < n; j++) {
      const o = <usize>j * 4;
      let x = load<f32>(row + o) + load<f32>(bias + o);
      if (relu && !(x > 0 || x != x)) x = 0;
      store<f32>(row + o, x);
    }
  }
}

/**
 * relu's VJP from its output: dst = y > 0 ? g : 0 (y > 0 exactly where relu's input was > 0; NaN gives 0), the
 * values of where(x > 0, g, 0) in one kernel instead of a compare and a select.
 */
export function reluBackward(dst: usize, g: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(dst + o, v128.and(v128.load(g + o), f32x4.gt(v128.load(y + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(dst + o, load<f32>(y + o) > 0 ? load<f32>(g + o) : 0);
  }
}

/**
 * out[r, :] = x[idx[r], :] (an embedding lookup: gather along dim 0 with one index per row): rows of n 4-byte
 * elements, out contiguous, x's rows `ldx` apart; the indices checked by the caller. A vector loop, since on shared
 * memory memory.copy is a runtime call per row.
 */
export function gatherRows(out: usize, x: usize, idx: usize, rows: i32, n: i32, ldx: i32): void {
  const n4 = n & ~3;
  for (let r = 0; r < rows; r++) {
    const s = x + <usize>load<i32>(idx + <usize>r * 4) * <usize>ldx * 4;
    const d = out + <usize>r * <usize>n * 4;
    let j = 0;
    for (; j < n4; j += 4) v128.store(d + <usize>j * 4, v128.load(s + <usize>j * 4));
    for (; j < n; j++) store<i32>(d + <usize>j * 4, load<i32>(s + <usize>j * 4));
  }
}

/**
 * out[idx[r], :] += src[r, :] for r = 0, 1, … in order (an embedding's gradient: scatterAdd along dim 0 with one
 * index per row): rows of n float32, out's rows contiguous, src's `ld` apart; the indices checked by the caller.
 * The TypeScript loop's f32 adds in its order, so the same bits.
 */
export function scatterRows(out: usize, src: usize, idx: usize, rows: i32, n: i32, ld: i32): void {
  const n4 = n & ~3;
  for (let r = 0; r < rows; r++) {
    const d = out + <usize>load<i32>(idx + <usize>r * 4) * <usize>n * 4;
    const s = src + <usize>r * <usize>ld * 4;
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j * 4;
      v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
    }
    for (; j < n; j++) {
      const o = <usize>j * 4;
      store<f32>(d + o, load<f32>(d + o) + load<f32>(s + o));
    }
  }
}

/** dst (contiguous f32) = cond ? a : b over an nd-dim view; cond is bytes; strides in elements. */
export function select(
  dst: usize,
  cond: usize,
  a: usize,
  b: usize,
  nd: i32,
  shape: usize,
  cStrides: usize,
  aStrides: usize,
  bStrides: usize,
  idx: usize,
): void {
  const n1 = nd >= 1 ? load<i32>(shape + <usize>(nd - 1) * 4) : 1;
  const sc1 = nd >= 1 ? <usize>load<i32>(cStrides + <usize>(nd - 1) * 4) : 0;
  const sa1 = nd >= 1 ? <usize>load<i32>(aStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const sb1 = nd >= 1 ? <usize>load<i32>(bStrides + <usize>(nd - 1) * 4) * 4 : 0;
  const n0 = nd >= 2 ? load<i32>(shape + <usize>(nd - 2) * 4) : 1;
  const sc0 = nd >= 2 ? <usize>load<i32>(cStrides + <usize>(nd - 2) * 4) : 0;
  const sa0 = nd >= 2 ? <usize>load<i32>(aStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const sb0 = nd >= 2 ? <usize>load<i32>(bStrides + <usize>(nd - 2) * 4) * 4 : 0;
  const outer = nd - 2;
  for (let d = 0; d < outer; d++) store<i32>(idx + <usize>d * 4, 0);
  let cb = cond;
  let ab = a;
  let bb = b;
  for (;;) {
    let cr = cb;
    let ar = ab;
    let br = bb;
    for (let r = 0; r < n0; r++) {
      let z = cr;
      let x = ar;
      let y = br;
      let i = 0;
      if (sc1 == 1 && (sa1 == 4 || sa1 == 0) && (sb1 == 4 || sb1 == 0)) {
        // Contiguous condition bytes, a and b contiguous or broadcast: 4 lanes, the bytes widened to a mask.
        const as = i32x4.splat(load<i32>(x));
        const bs = i32x4.splat(load<i32>(y));
        for (; i + 4 <= n1; i += 4) {
          const c = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(z)));
          const m = i32x4.ne(c, i32x4.splat(0));
          v128.store(dst, v128.bitselect(sa1 ? v128.load(x) : as, sb1 ? v128.load(y) : bs, m));
          dst += 16;
          z += 4;
          x += sa1 * 4;
          y += sb1 * 4;
        }
      }
      for (; i < n1; i++) {
        store<i32>(dst, load<u8>(z) ? load<i32>(x) : load<i32>(y));
        dst += 4;
        z += sc1;
        x += sa1;
        y += sb1;
      }
      cr += sc0;
      ar += sa0;
      br += sb0;
    }
    let d = outer - 1;
    for (; d >= 0; d--) {
      const ip = idx + <usize>d * 4;
      const sc = <usize>load<i32>(cStrides + <usize>d * 4);
      const sa = <usize>load<i32>(aStrides + <usize>d * 4) * 4;
      const sb = <usize>load<i32>(bStrides + <usize>d * 4) * 4;
      const v = load<i32>(ip) + 1;
      if (v < load<i32>(shape + <usize>d * 4)) {
        store<i32>(ip, v);
        cb += sc;
        ab += sa;
        bb += sb;
        break;
      }
      store<i32>(ip, 0);
      cb -= sc * <usize>(v - 1);
      ab -= sa * <usize>(v - 1);
      bb -= sb * <usize>(v - 1);
    }
    if (d < 0) return;
  }
}

/**
 * One in-place Adam/AdamW step over n contiguous float32 elements, every operation rounded to float32 in the
 * same order as the TypeScript kernel (no fused multiply-add), so both give the same bits. flags: 1 weight
 * decay, 2 decoupled (AdamW).
 */
export function adam(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  decay: f32,
  wd: f32,
  b1: f32,
  c1: f32,
  b2: f32,
  c2: f32,
  bc2: f32,
  eps: f32,
  step: f32,
  flags: i32,
): void {
  const useWd = (flags & 1) != 0;
  const decoupled = (flags & 2) != 0;
  const vdecay = f32x4.splat(decay);
  const vwd = f32x4.splat(wd);
  const vb1 = f32x4.splat(b1);
  const vc1 = f32x4.splat(c1);
  const vb2 = f32x4.splat(b2);
  const vc2 = f32x4.splat(c2);
  const vbc2 = f32x4.splat(bc2);
  const veps = f32x4.splat(eps);
  const vstep = f32x4.splat(step);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    let pv = v128.load(p + o);
    let d = v128.load(g + o);
    if (useWd) {
      if (decoupled) pv = f32x4.mul(pv, vdecay);
      else d = f32x4.add(d, f32x4.mul(pv, vwd));
    }
    const mv = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(d, vc1));
    const vv = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(d, d), vc2));
    v128.store(m + o, mv);
    v128.store(v + o, vv);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vv), vbc2), veps);
    v128.store(p + o, f32x4.sub(pv, f32x4.mul(f32x4.div(mv, denom), vstep)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    let pv = load<f32>(p + o);
    let d = load<f32>(g + o);
    if (useWd) {
      if (decoupled) pv = pv * decay;
      else d = d + pv * wd;
    }
    const mv = load<f32>(m + o) * b1 + d * c1;
    const vv = load<f32>(v + o) * b2 + d * d * c2;
    store<f32>(m + o, mv);
    store<f32>(v + o, vv);
    const denom = sqrt<f32>(vv) / bc2 + eps;
    store<f32>(p + o, pv - (mv / denom) * step);
  }
}

// Layer norm (and RMS norm) in f64x2 lanes: the TypeScript kernel computes in doubles and rounds once per
// output, and float32 centring (x − mean) loses the digits of rows far from zero. Only the summation order
// differs from it (two accumulators per sum). No fused multiply-add, so the plain and relaxed builds agree.

// @ts-ignore: decorator
@inline function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
}

// Two f64x2 rounded to one f32x4.
// @ts-ignore: decorator
@inline function pack32(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/**
 * Rows of n contiguous float32 at x: y = (x − mean)·rstd (·w, +b), with mean and rstd per row.
 * flags: 1 weight, 2 bias, 4 RMS norm (mean 0).
 */
export function layerNorm(
  y: usize,
  mean: usize,
  rstd: usize,
  x: usize,
  w: usize,
  b: usize,
  rows: i32,
  n: i32,
  eps: f64,
  flags: i32,
): void {
  const hasW = (flags & 1) != 0;
  const hasB = (flags & 2) != 0;
  const rms = (flags & 4) != 0;
  const row = <usize>n * 4;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * row;
    const yr = y + <usize>r * row;
    let mu: f64 = 0;
    if (!rms) {
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        const v = v128.load(xr + <usize>i * 4);
        s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
        s1 = f64x2.add(s1, hi64(v));
      }
      const s = f64x2.add(s0, s1);
      let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
      for (; i < n; i++) t += <f64>load<f32>(xr + <usize>i * 4);
      mu = t / <f64>n;
    }
    // Two passes (mean, then centred squares) as the TypeScript kernel: no E[x²] − mean² cancellation.
    const vm = f64x2.splat(mu);
    let q0 = f64x2.splat(0);
    let q1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(xr + <usize>i * 4);
      const c0 = f64x2.sub(f64x2.promote_low_f32x4(v), vm);
      const c1 = f64x2.sub(hi64(v), vm);
      q0 = f64x2.add(q0, f64x2.mul(c0, c0));
      q1 = f64x2.add(q1, f64x2.mul(c1, c1));
    }
    const q = f64x2.add(q0, q1);
    let ss = f64x2.extract_lane(q, 0) + f64x2.extract_lane(q, 1);
    for (; i < n; i++) {
      const c = <f64>load<f32>(xr + <usize>i * 4) - mu;
      ss += c * c;
    }
    const rs = 1 / sqrt<f64>(<f64>(<f32>(ss / <f64>n)) + eps);
    store<f32>(mean + <usize>r * 4, <f32>mu);
    store<f32>(rstd + <usize>r * 4, <f32>rs);
    const vr = f64x2.splat(rs);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      const v = v128.load(xr + o);
      let y0 = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), vm), vr);
      let y1 = f64x2.mul(f64x2.sub(hi64(v), vm), vr);
      if (hasW) {
        const wv = v128.load(w + o);
        y0 = f64x2.mul(y0, f64x2.promote_low_f32x4(wv));
        y1 = f64x2.mul(y1, hi64(wv));
      }
      if (hasB) {
        const bv = v128.load(b + o);
        y0 = f64x2.add(y0, f64x2.promote_low_f32x4(bv));
        y1 = f64x2.add(y1, hi64(bv));
      }
      v128.store(yr + o, pack32(y0, y1));
    }
    for (; i < n; i++) {
      const o = <usize>i * 4;
      let v = (<f64>load<f32>(xr + o) - mu) * rs;
      if (hasW) v *= <f64>load<f32>(w + o);
      if (hasB) v += <f64>load<f32>(b + o);
      store<f32>(yr + o, <f32>v);
    }
  }
}

/**
 * The layer norm VJP from the saved mean and rstd: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w (RMS norm
 * drops the mean(ĝ) term), and the column sums dw = Σ g·x̂, db = Σ g accumulated in the f64 scratch `acc` (2n
 * doubles) and written to dw/db as float32. flags: 1 weight, 4 RMS norm, 8 dw, 16 db.
 */
export function layerNormBackward(
  dx: usize,
  dw: usize,
  db: usize,
  acc: usize,
  g: usize,
  x: usize,
  mean: usize,
  rstd: usize,
  w: usize,
  rows: i32,
  n: i32,
  flags: i32,
): void {
  const hasW = (flags & 1) != 0;
  const rms = (flags & 4) != 0;
  const needW = (flags & 8) != 0;
  const needB = (flags & 16) != 0;
  const aw = acc;
  const ab = acc + <usize>n * 8;
  memory.fill(acc, 0, <usize>n * 16);
  const row = <usize>n * 4;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * row;
    const gr = g + <usize>r * row;
    const m32 = load<f32>(mean + <usize>r * 4);
    const r32 = load<f32>(rstd + <usize>r * 4);
    const mu = <f64>m32;
    const rs = <f64>r32;
    const vm = f64x2.splat(mu);
    const vr = f64x2.splat(rs);
    let sg0 = f64x2.splat(0);
    let sg1 = f64x2.splat(0);
    let sx0 = f64x2.splat(0);
    let sx1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      const xv = v128.load(xr + o);
      const gv = v128.load(gr + o);
      const h0 = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(xv), vm), vr);
      const h1 = f64x2.mul(f64x2.sub(hi64(xv), vm), vr);
      const g0 = f64x2.promote_low_f32x4(gv);
      const g1 = hi64(gv);
      let e0 = g0;
      let e1 = g1;
      if (hasW) {
        const wv = v128.load(w + o);
        e0 = f64x2.mul(g0, f64x2.promote_low_f32x4(wv));
        e1 = f64x2.mul(g1, hi64(wv));
      }
      sg0 = f64x2.add(sg0, e0);
      sg1 = f64x2.add(sg1, e1);
      sx0 = f64x2.add(sx0, f64x2.mul(e0, h0));
      sx1 = f64x2.add(sx1, f64x2.mul(e1, h1));
      const d = <usize>i * 8;
      if (needW) {
        v128.store(aw + d, f64x2.add(v128.load(aw + d), f64x2.mul(g0, h0)));
        v128.store(aw + d, f64x2.add(v128.load(aw + d, 16), f64x2.mul(g1, h1)), 16);
      }
      if (needB) {
        v128.store(ab + d, f64x2.add(v128.load(ab + d), g0));
        v128.store(ab + d, f64x2.add(v128.load(ab + d, 16), g1), 16);
      }
    }
    const sgv = f64x2.add(sg0, sg1);
    const sxv = f64x2.add(sx0, sx1);
    let sg = f64x2.extract_lane(sgv, 0) + f64x2.extract_lane(sgv, 1);
    let sgx = f64x2.extract_lane(sxv, 0) + f64x2.extract_lane(sxv, 1);
    for (; i < n; i++) {
      const gi = <f64>load<f32>(gr + <usize>i * 4);
      const xh = (<f64>load<f32>(xr + <usize>i * 4) - mu) * rs;
      const gh = hasW ? gi * <f64>load<f32>(w + <usize>i * 4) : gi;
      sg += gh;
      sgx += gh * xh;
      const d = <usize>i * 8;
      if (needW) store<f64>(aw + d, load<f64>(aw + d) + gi * xh);
      if (needB) store<f64>(ab + d, load<f64>(ab + d) + gi);
    }
    const va = f64x2.splat(rms ? 0 : sg / <f64>n);
    const vb = f64x2.splat(sgx / <f64>n);
    const dr = dx + <usize>r * row;
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      const xv = v128.load(xr + o);
      const gv = v128.load(gr + o);
      const h0 = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(xv), vm), vr);
      const h1 = f64x2.mul(f64x2.sub(hi64(xv), vm), vr);
      let e0 = f64x2.promote_low_f32x4(gv);
      let e1 = hi64(gv);
      if (hasW) {
        const wv = v128.load(w + o);
        e0 = f64x2.mul(e0, f64x2.promote_low_f32x4(wv));
        e1 = f64x2.mul(e1, hi64(wv));
      }
      const d0 = f64x2.mul(vr, f64x2.sub(f64x2.sub(e0, va), f64x2.mul(h0, vb)));
      const d1 = f64x2.mul(vr, f64x2.sub(f64x2.sub(e1, va), f64x2.mul(h1, vb)));
      v128.store(dr + o, pack32(d0, d1));
    }
    const a = rms ? 0 : sg / <f64>n;
    const bb = sgx / <f64>n;
    for (; i < n; i++) {
      const o = <usize>i * 4;
      const xh = (<f64>load<f32>(xr + o) - mu) * rs;
      let gh = <f64>load<f32>(gr + o);
      if (hasW) gh *= <f64>load<f32>(w + o);
      store<f32>(dr + o, <f32>(rs * (gh - a - xh * bb)));
    }
  }
  for (let i = 0; i < n; i++) {
    if (needW) store<f32>(dw + <usize>i * 4, <f32>load<f64>(aw + <usize>i * 8));
    if (needB) store<f32>(db + <usize>i * 4, <f32>load<f64>(ab + <usize>i * 8));
  }
}

// Cross-entropy of logits rows [N, C] at int32 targets (element stride ts; targets already checked to be in
// [0, C) or `ignore`), with the same exp as `unary` (the TypeScript kernel's exp on this path): a tail element
// goes through vexp as a splat, so every element gets the same function.

// @ts-ignore: decorator
@inline function exp1(z: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(z)), 0);
}

/**
 * loss[r] = lse[r] − x[r, t] (0 where t is `ignore`) and lse[r] = max + log Σ exp(x − max), the max ignoring
 * NaN (a row of −inf or NaN gives NaN), the sum in f64 lanes as the TypeScript kernel sums in doubles.
 */
export function crossEntropy(
  loss: usize,
  lse: usize,
  x: usize,
  target: usize,
  ts: i32,
  N: i32,
  C: i32,
  ignore: i32,
): void {
  const row = <usize>C * 4;
  for (let r = 0; r < N; r++) {
    const xr = x + <usize>r * row;
    // pmax(acc, v) = acc < v ? v : acc: a NaN element is skipped, as `if (x > m) m = x` skips it.
    let mv = f32x4.splat(-Infinity);
    let i = 0;
    for (; i + 4 <= C; i += 4) mv = f32x4.pmax(mv, v128.load(xr + <usize>i * 4));
    let m = f32x4.extract_lane(mv, 0);
    for (let l = 1; l < 4; l++) {
      const v = l == 1 ? f32x4.extract_lane(mv, 1) : l == 2 ? f32x4.extract_lane(mv, 2) : f32x4.extract_lane(mv, 3);
      if (v > m) m = v;
    }
    for (; i < C; i++) {
      const v = load<f32>(xr + <usize>i * 4);
      if (v > m) m = v;
    }
    if (m == -Infinity) m = NaN;
    const m4 = f32x4.splat(m);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    i = 0;
    for (; i + 4 <= C; i += 4) {
      const e = vexp(f32x4.sub(v128.load(xr + <usize>i * 4), m4));
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
      s1 = f64x2.add(s1, hi64(e));
    }
    const sv = f64x2.add(s0, s1);
    let s = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    for (; i < C; i++) s += <f64>exp1(load<f32>(xr + <usize>i * 4) - m);
    const l = <f64>m + Math.log(s);
    store<f32>(lse + <usize>r * 4, <f32>l);
    const t = load<i32>(target + <usize>r * <usize>ts * 4);
    store<f32>(loss + <usize>r * 4, t == ignore ? 0 : <f32>(l - <f64>load<f32>(xr + <usize>t * 4)));
  }
}

/** dx[r] = g[r]·(exp(x[r] − lse[r]) − onehot(t)), 0 where t is `ignore`: the TypeScript kernel's float32 steps. */
export function crossEntropyBackward(
  dx: usize,
  x: usize,
  lse: usize,
  g: usize,
  target: usize,
  ts: i32,
  N: i32,
  C: i32,
  ignore: i32,
): void {
  const row = <usize>C * 4;
  for (let r = 0; r < N; r++) {
    const xr = x + <usize>r * row;
    const dr = dx + <usize>r * row;
    const t = load<i32>(target + <usize>r * <usize>ts * 4);
    if (t == ignore) {
      zero(dr, row);
      continue;
    }
    const l = load<f32>(lse + <usize>r * 4);
    const gr = load<f32>(g + <usize>r * 4);
    const l4 = f32x4.splat(l);
    const g4 = f32x4.splat(gr);
    let i = 0;
    for (; i + 4 <= C; i += 4) {
      const o = <usize>i * 4;
      v128.store(dr + o, f32x4.mul(vexp(f32x4.sub(v128.load(xr + o), l4)), g4));
    }
    for (; i < C; i++) {
      const o = <usize>i * 4;
      store<f32>(dr + o, exp1(load<f32>(xr + o) - l) * gr);
    }
    const pt = dr + <usize>t * 4;
    store<f32>(pt, load<f32>(pt) - gr);
  }
}

// ---------------------------------------------------------------- attention softmax

// Keys row r keeps: all n, or under a causal mask with offset c those j ≤ r % lq + c.
// @ts-ignore: decorator
@inline function kept(r: i32, n: i32, lq: i32, masked: i32, causal: i32): i32 {
  return masked ? max(0, min(n, (r % lq) + causal + 1)) : n;
}

/**
 * Attention's scaled, causally masked softmax over rows of n (row r is query r % lq): over the kept keys
 * y = exp(z)/Σexp(z) with z = fl(scale·x) − max, 0 past them, a row of NaN where none is kept: the TypeScript
 * kernel's float32 steps with the `unary` exp and the row sum in f64 lanes, so only the summation order differs.
 */
export function scaledSoftmax(y: usize, x: usize, rows: i32, n: i32, lq: i32, scale: f32, masked: i32, causal: i32): void {
  const row = <usize>n * 4;
  const sc = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * row;
    const yr = y + <usize>r * row;
    const nv = kept(r, n, lq, masked, causal);
    if (nv == 0) {
      for (let i = 0; i < n; i++) store<f32>(yr + <usize>i * 4, NaN);
      continue;
    }
    let mv = f32x4.splat(-Infinity);
    let i = 0;
    for (; i + 4 <= nv; i += 4) mv = f32x4.pmax(mv, f32x4.mul(v128.load(xr + <usize>i * 4), sc));
    let m = f32x4.extract_lane(mv, 0);
    for (let l = 1; l < 4; l++) {
      const v = l == 1 ? f32x4.extract_lane(mv, 1) : l == 2 ? f32x4.extract_lane(mv, 2) : f32x4.extract_lane(mv, 3);
      if (v > m) m = v;
    }
    for (; i < nv; i++) {
      const v = load<f32>(xr + <usize>i * 4) * scale;
      if (v > m) m = v;
    }
    if (m == -Infinity) m = NaN;
    const m4 = f32x4.splat(m);
    // e = exp(z) into y, summed in f64 lanes.
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    i = 0;
    for (; i + 4 <= nv; i += 4) {
      const o = <usize>i * 4;
      const e = vexp(f32x4.sub(f32x4.mul(v128.load(xr + o), sc), m4));
      v128.store(yr + o, e);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
      s1 = f64x2.add(s1, hi64(e));
    }
    const sv = f64x2.add(s0, s1);
    let s = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    if (i < nv && i + 4 <= n) {
      // The last 1–3 kept keys through one vexp (exp1 is vexp's lane 0, so the same bits; the lanes past them
      // are dead keys of this row, computed and dropped): a scalar exp1 costs as much as a whole vexp.
      const e = vexp(f32x4.sub(f32x4.mul(v128.load(xr + <usize>i * 4), sc), m4));
      const t = nv - i;
      const e0 = f32x4.extract_lane(e, 0);
      store<f32>(yr + <usize>i * 4, e0);
      s += <f64>e0;
      if (t > 1) {
        const e1 = f32x4.extract_lane(e, 1);
        store<f32>(yr + <usize>i * 4, e1, 4);
        s += <f64>e1;
      }
      if (t > 2) {
        const e2 = f32x4.extract_lane(e, 2);
        store<f32>(yr + <usize>i * 4, e2, 8);
        s += <f64>e2;
      }
      i = nv;
    }
    for (; i < nv; i++) {
      const e = exp1(load<f32>(xr + <usize>i * 4) * scale - m);
      store<f32>(yr + <usize>i * 4, e);
      s += <f64>e;
    }
    // y = e · (1/s), the product in doubles rounded once, as the TypeScript kernel's Float32Array store.
    const inv = 1 / s;
    const inv2 = f64x2.splat(inv);
    i = 0;
    for (; i + 4 <= nv; i += 4) {
      const o = <usize>i * 4;
      const e = v128.load(yr + o);
      v128.store(yr + o, pack32(f64x2.mul(f64x2.promote_low_f32x4(e), inv2), f64x2.mul(hi64(e), inv2)));
    }
    for (; i < nv; i++) store<f32>(yr + <usize>i * 4, <f32>(<f64>load<f32>(yr + <usize>i * 4) * inv));
    if (nv < n) zero(yr + <usize>nv * 4, <usize>(n - nv) * 4);
  }
}

/**
 * Its VJP from the saved probabilities y: dx = fl(y·(g − Σ g·y))·scale over the kept keys, 0 past them (the
 * TypeScript kernel's steps; the dot product in f64 lanes).
 */
export function scaledSoftmaxBackward(
  dx: usize,
  y: usize,
  g: usize,
  rows: i32,
  n: i32,
  lq: i32,
  scale: f32,
  masked: i32,
  causal: i32,
): void {
  const row = <usize>n * 4;
  const sc = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const o0 = <usize>r * row;
    const nv = kept(r, n, lq, masked, causal);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= nv; i += 4) {
      const o = o0 + <usize>i * 4;
      const gv = v128.load(g + o);
      const yv = v128.load(y + o);
      s0 = f64x2.add(s0, f64x2.mul(f64x2.promote_low_f32x4(gv), f64x2.promote_low_f32x4(yv)));
      s1 = f64x2.add(s1, f64x2.mul(hi64(gv), hi64(yv)));
    }
    const sv = f64x2.add(s0, s1);
    let s = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    for (; i < nv; i++) s += <f64>load<f32>(g + o0 + <usize>i * 4) * <f64>load<f32>(y + o0 + <usize>i * 4);
    const s2 = f64x2.splat(s);
    i = 0;
    for (; i + 4 <= nv; i += 4) {
      const o = o0 + <usize>i * 4;
      const gv = v128.load(g + o);
      const yv = v128.load(y + o);
      const lo = f64x2.mul(f64x2.promote_low_f32x4(yv), f64x2.sub(f64x2.promote_low_f32x4(gv), s2));
      const hi = f64x2.mul(hi64(yv), f64x2.sub(hi64(gv), s2));
      v128.store(dx + o, f32x4.mul(pack32(lo, hi), sc));
    }
    for (; i < nv; i++) {
      const o = o0 + <usize>i * 4;
      const t = <f32>(<f64>load<f32>(y + o) * (<f64>load<f32>(g + o) - s));
      store<f32>(dx + o, t * scale);
    }
    if (nv < n) zero(dx + o0 + <usize>nv * 4, <usize>(n - nv) * 4);
  }
}
