// Shared by the tests that run on every compute path: the WebGPU adapter probe (skip with the reason where
// there is no adapter, never under CI), path switching, and a small seeded generator for inputs.
import { setCpuPath } from '../src/backends/cpu/wasm.js';
import { setBackend } from '../src/index.js';

/** null when a WebGPU adapter exists; otherwise the reason (and CI fails instead of skipping). */
export async function probeWebgpu(label: string): Promise<string | null> {
  const skip = await setBackend('webgpu').then(
    () => null,
    (e: Error) => {
      if (process.env.CI) throw e;
      return e.message;
    },
  );
  await setBackend('cpu');
  if (skip) console.warn(`${label} webgpu tests skipped: ${skip}`);
  return skip;
}

export type Path = 'cpu-wasm' | 'cpu-ts' | 'webgpu';

export const pathsFor = (gpuSkip: string | null): Path[] =>
  gpuSkip ? ['cpu-wasm', 'cpu-ts'] : ['cpu-wasm', 'cpu-ts', 'webgpu'];

export async function usePath(path: Path): Promise<void> {
  setCpuPath(path === 'cpu-ts' ? 'ts' : 'auto');
  await setBackend(path === 'webgpu' ? 'webgpu' : 'cpu');
}

/** mulberry32: uniform [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [−scale/2, scale/2). */
export const randArr = (n: number, seed: number, scale = 4): Float32Array => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * scale);
};

/** layerNorm (or rmsNorm, `rms`) of rows of n with weight w and bias b in float64, and the gradients of Σ y·G. */
export interface Ln64 {
  y: Float64Array;
  dx: Float64Array;
  dw: Float64Array;
  db: Float64Array;
}

export function layerNorm64(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  G: ArrayLike<number>,
  n: number,
  eps: number,
  rms: boolean,
): Ln64 {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(n);
  const db = new Float64Array(n);
  for (let r = 0; r < x.length; r += n) {
    let mu = 0;
    if (!rms) for (let i = 0; i < n; i++) mu += x[r + i]! / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r + i]! - mu) ** 2 / n;
    const rs = 1 / Math.sqrt(v + eps);
    let sg = 0;
    let sgx = 0;
    for (let i = 0; i < n; i++) {
      const xh = (x[r + i]! - mu) * rs;
      sg += G[r + i]! * w[i]!;
      sgx += G[r + i]! * w[i]! * xh;
    }
    const a = rms ? 0 : sg / n;
    const c = sgx / n;
    for (let i = 0; i < n; i++) {
      const xh = (x[r + i]! - mu) * rs;
      y[r + i] = xh * w[i]! + b[i]!;
      dx[r + i] = rs * (G[r + i]! * w[i]! - a - xh * c);
      dw[i] = dw[i]! + G[r + i]! * xh;
      db[i] = db[i]! + G[r + i]!;
    }
  }
  return { y, dx, dw, db };
}
