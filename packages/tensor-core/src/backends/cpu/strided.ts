// Row-wise iteration over strided views: dims of size 1 are dropped and adjacent dims that are
// contiguous for every operand are merged, so the inner loop is as long as it can be.

export interface Rows {
  /** Sizes of the outer dims (all but the innermost), after collapsing. */
  outer: number[];
  /** Per operand, the strides of the outer dims. */
  outerStrides: number[][];
  /** Innermost row length and per-operand inner stride. */
  n: number;
  inner: number[];
}

export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): Rows {
  const keep: number[] = [];
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1) keep.push(i);
  const k = strides.length;
  if (keep.length === 0) return { outer: [], outerStrides: strides.map(() => []), n: 1, inner: new Array(k).fill(0) };
  const sh: number[] = [shape[keep[0]!]!];
  const st: number[][] = strides.map((s) => [s[keep[0]!]!]);
  for (let j = 1; j < keep.length; j++) {
    const d = keep[j]!;
    const last = sh.length - 1;
    let merge = true;
    for (let o = 0; o < k; o++) if (st[o]![last] !== strides[o]![d]! * shape[d]!) merge = false;
    if (merge) {
      sh[last] = sh[last]! * shape[d]!;
      for (let o = 0; o < k; o++) st[o]![last] = strides[o]![d]!;
    } else {
      sh.push(shape[d]!);
      for (let o = 0; o < k; o++) st[o]!.push(strides[o]![d]!);
    }
  }
  const n = sh.pop()!;
  const inner = st.map((s) => s.pop()!);
  return { outer: sh, outerStrides: st, n, inner };
}

/**
 * Calls `row(offsets, n, innerStrides)` once per innermost row. `offsets` is reused between calls
 * (read it, don't keep it).
 */
export function forEachRow(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  offsets: readonly number[],
  row: (offs: number[], n: number, inner: number[]) => void,
): void {
  for (const s of shape) if (s === 0) return;
  const { outer, outerStrides, n, inner } = collapse(shape, strides);
  const k = strides.length;
  const offs = [...offsets];
  const nd = outer.length;
  if (nd === 0) {
    row(offs, n, inner);
    return;
  }
  const idx = new Array<number>(nd).fill(0);
  for (;;) {
    row(offs, n, inner);
    let d = nd - 1;
    for (; d >= 0; d--) {
      idx[d]!++;
      for (let o = 0; o < k; o++) offs[o] = offs[o]! + outerStrides[o]![d]!;
      if (idx[d]! < outer[d]!) break;
      for (let o = 0; o < k; o++) offs[o] = offs[o]! - outerStrides[o]![d]! * outer[d]!;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}
