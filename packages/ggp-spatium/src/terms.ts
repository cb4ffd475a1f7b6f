// Hash-consed ground terms: every constant and every ground function term gets one integer id, so equal terms
// have equal ids (`distinct` is `!==`), a flat fluent is a (name, args) record, and states are sorted id arrays.
// Function terms nested to any depth intern the same way, so sheets outside mGDL still compile.

import { cpuNowMs } from './machine.js';

/** MurmurHash3's finaliser: every input bit affects every output bit (linear probing needs good low bits). */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class TermTable {
  /** name id per term */
  tn = new Int32Array(1024);
  /** arity per term */
  ta = new Int32Array(1024);
  /** offset of the term's argument ids in `args` */
  to = new Int32Array(1024);
  /** functor id (a (name, arity) pair the compiler indexes by), 0 if none */
  tf = new Int32Array(1024);
  args = new Int32Array(4096);
  size = 1; // id 0 is "no term"
  private argsUsed = 0;
  private slots = new Int32Array(4096);
  readonly names: string[] = [''];
  private readonly nameIds = new Map<string, number>();
  /** (name id, arity) → functor id */
  private readonly functors = new Map<number, number>();
  /** numeric value of a constant term, NaN otherwise */
  num = new Float64Array(1024);
  maxTerms = 50_000_000;

  name(s: string): number {
    let id = this.nameIds.get(s);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(s);
      this.nameIds.set(s, id);
    }
    return id;
  }

  /** Declares a functor id for (name, arity); terms of that shape record it in `tf`. */
  declareFunctor(nameId: number, arity: number, fid: number): void {
    this.functors.set(nameId * 64 + arity, fid);
    for (let i = 1; i < this.size; i++) if (this.tn[i] === nameId && this.ta[i] === arity) this.tf[i] = fid;
  }

  constant(s: string): number {
    return this.mk0(this.name(s));
  }

  private hash(f: number, n: number, a: ArrayLike<number>): number {
    let h = Math.imul(f ^ (n << 24), 0x9e3779b1);
    for (let i = 0; i < n; i++) {
      h = Math.imul(h ^ a[i]!, 0xcc9e2d51);
      h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    }
    return fmix(h);
  }

  private readonly scratch = new Int32Array(64);

  mk0(f: number): number {
    return this.intern(f, 0, this.scratch);
  }
  mk1(f: number, a: number): number {
    this.scratch[0] = a;
    return this.intern(f, 1, this.scratch);
  }
  mk2(f: number, a: number, b: number): number {
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    return this.intern(f, 2, s);
  }
  mk3(f: number, a: number, b: number, c: number): number {
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    s[2] = c;
    return this.intern(f, 3, s);
  }
  mk4(f: number, a: number, b: number, c: number, d: number): number {
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
    return this.intern(f, 4, s);
  }
  mkA(f: number, a: ArrayLike<number>): number {
    return this.intern(f, a.length, a);
  }

  f1(f: number, a: number): number {
    if (a < 0) return -1;
    this.scratch[0] = a;
    return this.find(f, this.scratch, 1);
  }
  f2(f: number, a: number, b: number): number {
    if (a < 0 || b < 0) return -1;
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    return this.find(f, s, 2);
  }
  f3(f: number, a: number, b: number, c: number): number {
    if (a < 0 || b < 0 || c < 0) return -1;
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    s[2] = c;
    return this.find(f, s, 3);
  }
  f4(f: number, a: number, b: number, c: number, d: number): number {
    if (a < 0 || b < 0 || c < 0 || d < 0) return -1;
    const s = this.scratch;
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
    return this.find(f, s, 4);
  }
  fA(f: number, a: ArrayLike<number>): number {
    for (let i = 0; i < a.length; i++) if (a[i]! < 0) return -1;
    return this.find(f, a, a.length);
  }

  /** The id of (f a...) or -1 if no such term was ever built. */
  find(f: number, a: ArrayLike<number>, n = a.length): number {
    const mask = this.slots.length - 1;
    let i = this.hash(f, n, a) & mask;
    for (;;) {
      const id = this.slots[i]!;
      if (id === 0) return -1;
      if (this.same(id, f, n, a)) return id;
      i = (i + 1) & mask;
    }
  }

  private same(id: number, f: number, n: number, a: ArrayLike<number>): boolean {
    if (this.tn[id] !== f || this.ta[id] !== n) return false;
    const o = this.to[id]!;
    const args = this.args;
    for (let k = 0; k < n; k++) if (args[o + k] !== a[k]) return false;
    return true;
  }

  private intern(f: number, n: number, a: ArrayLike<number>): number {
    const mask = this.slots.length - 1;
    let i = this.hash(f, n, a) & mask;
    for (;;) {
      const id = this.slots[i]!;
      if (id === 0) break;
      if (this.same(id, f, n, a)) return id;
      i = (i + 1) & mask;
    }
    const id = this.size++;
    if (id >= this.maxTerms) throw new RangeError(`more than ${this.maxTerms} distinct terms`);
    if (id >= this.tn.length) this.growTerms();
    if (this.argsUsed + n > this.args.length) {
      const g = new Int32Array(Math.max(this.args.length * 2, this.argsUsed + n));
      g.set(this.args);
      this.args = g;
    }
    this.tn[id] = f;
    this.ta[id] = n;
    this.to[id] = this.argsUsed;
    for (let k = 0; k < n; k++) this.args[this.argsUsed + k] = a[k]!;
    this.argsUsed += n;
    this.tf[id] = this.functors.get(f * 64 + n) ?? 0;
    this.num[id] = n === 0 && /^-?\d+$/.test(this.names[f]!) ? Number(this.names[f]) : Number.NaN;
    this.slots[i] = id;
    if (this.size * 2 > this.slots.length) this.rehash();
    return id;
  }

  private growTerms(): void {
    const cap = this.tn.length * 2;
    const g = (x: Int32Array) => {
      const y = new Int32Array(cap);
      y.set(x);
      return y;
    };
    this.tn = g(this.tn);
    this.ta = g(this.ta);
    this.to = g(this.to);
    this.tf = g(this.tf);
    const num = new Float64Array(cap);
    num.set(this.num);
    this.num = num;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let id = 1; id < this.size; id++) {
      const o = this.to[id]!;
      let i = this.hash(this.tn[id]!, this.ta[id]!, this.args.subarray(o, o + this.ta[id]!)) & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = id;
    }
    this.slots = slots;
  }

  /** Canonical GDL text of a term. */
  text(id: number): string {
    const n = this.ta[id]!;
    if (n === 0) return this.names[this.tn[id]!]!;
    const o = this.to[id]!;
    let s = `(${this.names[this.tn[id]!]}`;
    for (let k = 0; k < n; k++) s += ` ${this.text(this.args[o + k]!)}`;
    return `${s})`;
  }
}

/**
 * A set of fixed-arity tuples of term ids, in insertion order, with O(1) clearing (generation stamps on the
 * hash slots) and lazily built indexes on one or two bound columns (used for state-independent relations).
 */
/**
 * A CPU-time budget for the tables built while a sheet loads: `loadGame` gives its compile attempt one, so that a
 * sheet whose static tables grow without bound (laikLee_hex's `islist`: 27 s of CPU to reach the row limit) is
 * refused in seconds and handed to the interpreter within a startclock. Checked every 65,536 new rows of any
 * relation (a syscall, too dear per row); 0 = no budget.
 */
let tableDeadline = 0;
const cpuMs = cpuNowMs;

/** Runs `f` with a budget of `ms` ms of CPU time for building tables; past it a table's growth throws RangeError. */
export function withTableBudget<T>(ms: number, f: () => T): T {
  const outer = tableDeadline;
  tableDeadline = cpuMs() + ms;
  try {
    return f();
  } finally {
    tableDeadline = outer;
  }
}

function checkTableBudget(name: string): void {
  if (tableDeadline !== 0 && cpuMs() > tableDeadline)
    throw new RangeError(`relation ${name}: tables still growing past the load budget of CPU time`);
}

export class TupleSet {
  n = 0;
  d: Int32Array;
  /** scratch tuple for add/has */
  readonly t: Int32Array;
  /** validity stamp, managed by the compiled code */
  v = -1;
  private slots: Int32Array;
  private gens: Int32Array;
  private gen = 1;
  private indexes: Array<{ code: number; c1: number; c2: number; ix: Map<number, number[]> }> = [];
  /** the delta window [lo, hi) of the current semi-naive round */
  lo = 0;
  hi = 0;
  maxRows = 5_000_000;

  constructor(
    readonly arity: number,
    readonly name: string,
    /** initial row capacity (a power of two); small for the many per-query answer sets */
    cap = 16,
  ) {
    this.d = new Int32Array(Math.max(1, arity) * cap);
    this.t = new Int32Array(Math.max(1, arity));
    this.slots = new Int32Array(cap * 4);
    this.gens = new Int32Array(cap * 4);
  }

  clear(): void {
    this.n = 0;
    this.gen++;
    if (this.indexes.length) this.indexes = [];
  }

  private hash(src: Int32Array, off: number): number {
    let h = 0x811c9dc5;
    const a = this.arity;
    for (let k = 0; k < a; k++) {
      h = Math.imul(h ^ src[off + k]!, 0xcc9e2d51);
      h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return h >>> 0;
  }

  /**
   * Appends the one-column row `x` without the duplicate check (no index, no hash slot): for `next`, which no rule
   * reads and whose reader sorts and dedups anyway; hashing each of hex's ≈ 250 next fluents a ply was a tenth of
   * its playout time.
   */
  push(x: number): void {
    let d = this.d;
    const n = this.n;
    if (n >= d.length) {
      if (n >= this.maxRows) throw new RangeError(`relation ${this.name} grew past ${this.maxRows} rows`);
      const g = new Int32Array(d.length * 2);
      g.set(d);
      this.d = d = g;
    }
    d[n] = x;
    this.n = n + 1;
    if ((n & 0xffff) === 0xffff) checkTableBudget(this.name);
  }

  /** Adds the scratch tuple `t`; true if it was new. */
  add(): boolean {
    const a = this.arity;
    if (a === 0) {
      if (this.n) return false;
      this.n = 1;
      return true;
    }
    const t = this.t;
    const slots = this.slots;
    const gens = this.gens;
    const gen = this.gen;
    const mask = slots.length - 1;
    let i = this.hash(t, 0) & mask;
    let d = this.d;
    for (;;) {
      if (gens[i] !== gen) break;
      const o = (slots[i]! - 1) * a;
      let k = 0;
      while (k < a && d[o + k] === t[k]) k++;
      if (k === a) return false;
      i = (i + 1) & mask;
    }
    const n = this.n;
    if ((n + 1) * a > d.length) {
      if (n >= this.maxRows) throw new RangeError(`relation ${this.name} grew past ${this.maxRows} rows`);
      const g = new Int32Array(d.length * 2);
      g.set(d);
      this.d = d = g;
    }
    const o = n * a;
    for (let k = 0; k < a; k++) d[o + k] = t[k]!;
    this.n = n + 1;
    slots[i] = n + 1;
    gens[i] = gen;
    if ((n & 0xffff) === 0xffff) checkTableBudget(this.name);
    if ((n + 1) * 2 > slots.length) this.rehash();
    // indexes are kept up to date: recursive relations are looked up while they grow
    for (let k = 0; k < this.indexes.length; k++) {
      const x = this.indexes[k]!;
      this.indexRow(x.c1, x.c2, x.ix, n);
    }
    return true;
  }

  private indexRow(c1: number, c2: number, ix: Map<number, number[]>, r: number): void {
    const a = this.arity;
    const key = c2 < 0 ? this.d[r * a + c1]! : this.d[r * a + c1]! * 67108864 + this.d[r * a + c2]!;
    const l = ix.get(key);
    if (l) l.push(r);
    else ix.set(key, [r]);
  }

  /** Row index of the scratch tuple `t`, or -1. */
  find(): number {
    const a = this.arity;
    if (a === 0) return this.n > 0 ? 0 : -1;
    const t = this.t;
    const mask = this.slots.length - 1;
    let i = this.hash(t, 0) & mask;
    const d = this.d;
    for (;;) {
      if (this.gens[i] !== this.gen) return -1;
      const o = (this.slots[i]! - 1) * a;
      let k = 0;
      while (k < a && d[o + k] === t[k]) k++;
      if (k === a) return this.slots[i]! - 1;
      i = (i + 1) & mask;
    }
  }

  /** Whether the scratch tuple `t` is present. */
  has(): boolean {
    const a = this.arity;
    if (a === 0) return this.n > 0;
    const t = this.t;
    const mask = this.slots.length - 1;
    let i = this.hash(t, 0) & mask;
    const d = this.d;
    for (;;) {
      if (this.gens[i] !== this.gen) return false;
      const o = (this.slots[i]! - 1) * a;
      let k = 0;
      while (k < a && d[o + k] === t[k]) k++;
      if (k === a) return true;
      i = (i + 1) & mask;
    }
  }

  has1(x: number): boolean {
    this.t[0] = x;
    return this.has();
  }
  has2(x: number, y: number): boolean {
    this.t[0] = x;
    this.t[1] = y;
    return this.has();
  }

  private rehash(): void {
    const cap = this.slots.length * 2;
    this.slots = new Int32Array(cap);
    this.gens = new Int32Array(cap);
    this.gen = 1;
    const mask = cap - 1;
    for (let r = 0; r < this.n; r++) {
      let i = this.hash(this.d, r * this.arity) & mask;
      while (this.gens[i] === this.gen) i = (i + 1) & mask;
      this.slots[i] = r + 1;
      this.gens[i] = this.gen;
    }
  }

  /** Rows whose columns c1 (and c2 if ≥ 0) equal k1 (and k2); the index is built on first use, then maintained. */
  rows(c1: number, c2: number, k1: number, k2: number): number[] | undefined {
    const code = c1 * 64 + c2 + 1;
    let ix: Map<number, number[]> | undefined;
    for (let k = 0; k < this.indexes.length; k++) if (this.indexes[k]!.code === code) ix = this.indexes[k]!.ix;
    if (!ix) {
      ix = new Map();
      for (let r = 0; r < this.n; r++) this.indexRow(c1, c2, ix, r);
      this.indexes.push({ code, c1, c2, ix });
    }
    return ix.get(c2 < 0 ? k1 : k1 * 67108864 + k2);
  }
}
