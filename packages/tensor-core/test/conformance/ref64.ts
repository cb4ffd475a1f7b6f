// A tiny float64 ndarray used only as the conformance table's independent reference: direct loops,
// no strides, no cleverness, so each reference reads like its textbook definition.

export class Nd {
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`Nd: ${data.length} values for [${shape}]`);
  }
  get size(): number {
    return this.data.length;
  }
  at(...ix: number[]): number {
    return this.data[flatIndex(this.shape, ix)]!;
  }
}

export const nd = (shape: number[], data: ArrayLike<number>) => new Nd([...shape], Float64Array.from(data));
export const zerosNd = (shape: number[]) => new Nd([...shape], new Float64Array(shape.reduce((a, b) => a * b, 1)));

export function flatIndex(shape: readonly number[], ix: readonly number[]): number {
  let f = 0;
  for (let i = 0; i < shape.length; i++) f = f * shape[i]! + ix[i]!;
  return f;
}

export function coords(shape: readonly number[], flat: number): number[] {
  const c = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    c[i] = flat % shape[i]!;
    flat = Math.floor(flat / shape[i]!);
  }
  return c;
}

export function map(a: Nd, f: (x: number) => number): Nd {
  return new Nd([...a.shape], a.data.map(f));
}

export function broadcast(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[i - (n - a.length)] ?? 1;
    const y = b[i - (n - b.length)] ?? 1;
    return x === 1 ? y : x;
  });
}

/** Reads `a` at output coordinates of a broadcast shape. */
export function bget(a: Nd, out: readonly number[], c: readonly number[]): number {
  const lead = out.length - a.shape.length;
  let f = 0;
  for (let i = 0; i < a.shape.length; i++) f = f * a.shape[i]! + (a.shape[i] === 1 ? 0 : c[i + lead]!);
  return a.data[f]!;
}

export function zip(a: Nd, b: Nd, f: (x: number, y: number) => number): Nd {
  const shape = broadcast(a.shape, b.shape);
  const out = zerosNd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = coords(shape, i);
    out.data[i] = f(bget(a, shape, c), bget(b, shape, c));
  }
  return out;
}

export function zip3(a: Nd, b: Nd, c: Nd, f: (x: number, y: number, z: number) => number): Nd {
  const shape = broadcast(broadcast(a.shape, b.shape), c.shape);
  const out = zerosNd(shape);
  for (let i = 0; i < out.size; i++) {
    const k = coords(shape, i);
    out.data[i] = f(bget(a, shape, k), bget(b, shape, k), bget(c, shape, k));
  }
  return out;
}

/** Reduces `dims` with `f` over the list of values of each group. */
export function reduceNd(a: Nd, dims: number[], keepdim: boolean, f: (vals: number[]) => number): Nd {
  const ds = dims.map((d) => (d < 0 ? d + a.shape.length : d));
  const kshape = a.shape.map((s, i) => (ds.includes(i) ? 1 : s));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < a.size; i++) {
    const c = coords(a.shape, i).map((v, j) => (ds.includes(j) ? 0 : v));
    const k = flatIndex(kshape, c);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(a.data[i]!);
  }
  const out = zerosNd(kshape);
  for (const [k, v] of groups) out.data[k] = f(v);
  return keepdim
    ? out
    : new Nd(
        kshape.filter((_, i) => !ds.includes(i)),
        out.data,
      );
}

export const sumOf = (v: number[]) => v.reduce((a, b) => a + b, 0);

/** Moves `dim` last, applies `f` to each row (a list), and moves it back. */
export function alongDim(a: Nd, dim: number, f: (row: number[]) => number[]): Nd {
  const d = dim < 0 ? dim + a.shape.length : dim;
  const out = zerosNd(a.shape);
  const n = a.shape[d]!;
  for (let i = 0; i < a.size; i++) {
    const c = coords(a.shape, i);
    if (c[d] !== 0) continue;
    const idx = Array.from({ length: n }, (_, j) =>
      flatIndex(
        a.shape,
        c.map((v, k) => (k === d ? j : v)),
      ),
    );
    const r = f(idx.map((p) => a.data[p]!));
    idx.forEach((p, j) => {
      out.data[p] = r[j]!;
    });
  }
  return out;
}

/** Double-precision erf: Taylor series near 0, continued fraction for erfc in the tails. */
export function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** erfc in float64 with its relative accuracy kept in the right tail (1 − erf64 cancels there). */
export function erfc64(x: number): number {
  if (x < 2.5) return 1 - erf64(x);
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export function matmul64(a: Nd, b: Nd): Nd {
  const a2 = a.shape.length === 1 ? new Nd([1, a.shape[0]!], a.data) : a;
  const b2 = b.shape.length === 1 ? new Nd([b.shape[0]!, 1], b.data) : b;
  const m = a2.shape[a2.shape.length - 2]!;
  const k = a2.shape[a2.shape.length - 1]!;
  const n = b2.shape[b2.shape.length - 1]!;
  const batch = broadcast(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const nb = batch.reduce((x, y) => x * y, 1);
  const out = zerosNd([...batch, m, n]);
  const ab = new Nd([...a2.shape.slice(0, -2), 1], new Float64Array(a2.shape.slice(0, -2).reduce((x, y) => x * y, 1)));
  const bb = new Nd([...b2.shape.slice(0, -2), 1], new Float64Array(b2.shape.slice(0, -2).reduce((x, y) => x * y, 1)));
  ab.data.forEach((_, i) => {
    ab.data[i] = i;
  });
  bb.data.forEach((_, i) => {
    bb.data[i] = i;
  });
  for (let t = 0; t < nb; t++) {
    const c = [...coords(batch, t), 0];
    const ia = bget(ab, [...batch, 1], c);
    const ib = bget(bb, [...batch, 1], c);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a2.data[ia * m * k + i * k + p]! * b2.data[ib * k * n + p * n + j]!;
        out.data[t * m * n + i * n + j] = s;
      }
  }
  let shape = [...batch, m, n];
  if (a.shape.length === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (b.shape.length === 1) shape = shape.slice(0, -1);
  return new Nd(shape, out.data);
}
