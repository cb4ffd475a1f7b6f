// Shared WGSL pieces. Every dtype lives on the GPU as one 32-bit word per element (float16/bfloat16
// keep their bits in the low half, bool is 0/1), so one `array<u32>` binding type serves every
// kernel and a dtype is only a load and a store function.
import type { DType } from '../../../dtype.js';

/** The WGSL type an expression computes in: float, int, or bool kept as u32 0/1. */
export type CType = 'f32' | 'i32' | 'u32';

export const ctypeOf = (d: DType): CType => (d === 'int32' ? 'i32' : d === 'bool' ? 'u32' : 'f32');

/** Word `w` of dtype `d` as a value of ctype `c`. */
export function load(d: DType, c: CType, w: string): string {
  const native =
    d === 'float32'
      ? `bitcast<f32>(${w})`
      : d === 'float16'
        ? `unpack2x16float(${w}).x`
        : d === 'bfloat16'
          ? `bitcast<f32>((${w}) << 16u)`
          : d === 'int32'
            ? `bitcast<i32>(${w})`
            : `(${w})`;
  const from = ctypeOf(d);
  if (from === c) return native;
  if (c === 'u32') return `select(0u, 1u, ${native} != ${from === 'f32' ? '0.0' : from === 'i32' ? '0' : '0u'})`;
  if (c === 'i32' && from === 'f32') return `i32(trunc(${native}))`;
  return `${c}(${native})`;
}

/** A value `v` of ctype `c` as a word of dtype `d`. */
export function store(d: DType, c: CType, v: string): string {
  switch (d) {
    case 'float32':
      return `bitcast<u32>(${c === 'f32' ? v : `f32(${v})`})`;
    case 'int32':
      return c === 'i32' ? `bitcast<u32>(${v})` : c === 'u32' ? `(${v})` : `bitcast<u32>(i32(trunc(${v})))`;
    case 'bool':
      return `select(0u, 1u, ${v} != ${c === 'f32' ? '0.0' : c === 'i32' ? '0' : '0u'})`;
    case 'float16':
      return `(pack2x16float(vec2<f32>(${c === 'f32' ? v : `f32(${v})`}, 0.0)) & 0xffffu)`;
    case 'bfloat16':
      return `bf16(${c === 'f32' ? v : `f32(${v})`})`;
  }
}

/** Helper functions, appended to a shader only when its code names them. */
const HELPERS: Record<string, string> = {
  // Round to nearest even, NaN stays NaN (as io/half.ts does on the CPU).
  bf16: `fn bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}`,
  // erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), the CPU backend's formula.
  erf_: `fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}`,
  // Φ(x), the standard normal CDF, as erfc(−x/√2)/2 by the same fit (the CPU backend's \`normalCdf\`): erfc is
  // computed, never 1 + erf, which in f32 cancels to 0 below x ≈ −5.5 and took GELU's left tail with it.
  normalCdf_: `fn normalCdf_(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * abs(x) * 0.70710678118654752);
  let h = 0.5 * t * exp(-0.5 * x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(h, 1.0 - h, x >= 0.0);
}`,
  // log1p and expm1 by the Kahan/Goldberg correction: exact at the rounding of 1 + x.
  log1p_: `fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * (x / (u - 1.0));
}`,
  expm1_: `fn expm1_(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  if (abs(x) < 0.5) {
    let u = exp(x);
    return (u - 1.0) * (x / log(u));
  }
  return exp(x) - 1.0;
}`,
  tanh_: `fn tanh_(x: f32) -> f32 {
  if (abs(x) < 0.55) {
    let x2 = x * x;
    return x * (1.0 + x2 * (-0.333333333 + x2 * (0.133333333 + x2 * (-0.053968254 + x2 * (0.021869489 + x2 * -0.008863236)))));
  }
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}`,
  sigmoid_: `fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}`,
  // d/dx of the tanh-form GELU.
  geluTanhGrad_: `fn geluTanhGrad_(x: f32) -> f32 {
  let t = tanh_(0.79788456080286536 * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.79788456080286536 * (1.0 + 0.134145 * x * x);
}`,
  // a^b with the sign rules of Math.pow for negative bases and integer exponents.
  pow_: `fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (a == 0.0) { return select(0.0, inf_(), b < 0.0); }
  let r = exp2(b * log2(abs(a)));
  if (a > 0.0) { return r; }
  if (b != floor(b)) { return nan_(); }
  return select(r, -r, (abs(b) % 2.0) == 1.0);
}`,
  // Runtime NaN and infinity: a constant expression may not evaluate to either in WGSL.
  nan_: `var<private> kNaN: u32 = 0x7fc00000u;
fn nan_() -> f32 { return bitcast<f32>(kNaN); }`,
  inf_: `var<private> kInf: u32 = 0x7f800000u;
fn inf_() -> f32 { return bitcast<f32>(kInf); }`,
  // sin and cos to ~1 ulp for moderate |x|: WGSL only promises 2^-11 absolute error (SwiftShader's is
  // ~4e-5). Cody-Waite reduction by pi/2, then Cephes' sinf/cosf polynomials on [-pi/4, pi/4].
  sincos_: `fn sincos_(x: f32, shift: i32) -> f32 {
  let q = round(x * 0.63661977236758134);
  let r = (x - q * 1.5707963705062866) - q * -4.3711390001862412e-8;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  let i = (i32(q) + shift) & 3;
  let v = select(s, c, (i & 1) == 1);
  return select(v, -v, (i & 2) == 2);
}`,
  isnan_: `fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
};

/** Appends the helpers that `body` calls (helpers may call helpers). */
export function withHelpers(body: string): string {
  const used: string[] = [];
  let text = body;
  for (let again = true; again; ) {
    again = false;
    for (const [name, src] of Object.entries(HELPERS))
      if (!used.includes(name) && new RegExp(`\\b${name}\\(`).test(text)) {
        used.push(name);
        text += `\n${src}`;
        again = true;
      }
  }
  return `${used.map((n) => HELPERS[n]).join('\n')}\n${body}`;
}

export const WG = 64;

/** The invocation's linear index, for dispatches split over x·y workgroups of WG threads. */
export const LINEAR = `@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`;
export const LINEAR_INDEX = `gid.x + gid.y * nwg.x * ${WG}u`;

/** Storage declarations: inputs read-only, the output read-write, the params last. */
export function bindings(inputs: number, out: 'plain' | 'atomic' | 'none' = 'plain', outputs = 1): string {
  const lines: string[] = [];
  for (let i = 0; i < inputs; i++) lines.push(`@group(0) @binding(${i}) var<storage, read> in${i}: array<u32>;`);
  let b = inputs;
  if (out !== 'none')
    for (let o = 0; o < outputs; o++)
      lines.push(
        `@group(0) @binding(${b++}) var<storage, read_write> out${o}: array<${out === 'atomic' ? 'atomic<u32>' : 'u32'}>;`,
      );
  lines.push(`@group(0) @binding(${b}) var<storage, read> P: array<u32>;`);
  return lines.join('\n');
}
