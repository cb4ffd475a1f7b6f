// Host-side index arithmetic for strided kernels: dims of size 1 dropped and dims that are
// contiguous for every operand merged, so a shader's per-element index loop is as short as it can be;
// and the 32-bit parameter words the shaders read.

export interface Collapsed {
  shape: number[];
  /** Per operand, one stride per collapsed dim. */
  strides: number[][];
}

export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): Collapsed {
  const out: Collapsed = { shape: [], strides: strides.map(() => []) };
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 1) continue;
    const last = out.shape.length - 1;
    if (last >= 0 && strides.every((s, o) => out.strides[o]![last] === s[d]! * n)) {
      out.shape[last] = out.shape[last]! * n;
      strides.forEach((s, o) => {
        out.strides[o]![last] = s[d]!;
      });
    } else {
      out.shape.push(n);
      strides.forEach((s, o) => {
        out.strides[o]!.push(s[d]!);
      });
    }
  }
  return out;
}

/** Parameter words: u32, i32 (two's complement) and f32 (bit pattern) packed in one Uint32Array. */
export class Params {
  private readonly words: number[] = [];
  u(...vs: number[]): this {
    for (const v of vs) this.words.push(v >>> 0);
    return this;
  }
  i(...vs: number[]): this {
    for (const v of vs) this.words.push(v | 0);
    return this;
  }
  f(v: number): this {
    f32[0] = v;
    this.words.push(u32[0]!);
    return this;
  }
  get length(): number {
    return this.words.length;
  }
  build(): Uint32Array {
    return Uint32Array.from(this.words.length ? this.words : [0], (w) => w >>> 0);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
