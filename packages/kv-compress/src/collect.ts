// Gathers a CausalLM's keys and values for a token sequence as KVRows (calibration data, evaluation inputs).
import { nn, noGrad, ShapeError, tensor, tidy } from '@tessera/tensor-core';
import type { KVRows } from './calibration.js';
import { ValueError } from './errors.js';

/** Runs `model` over `ids` (one sequence) with an exact cache; returns every layer's keys (RoPE applied) and values. */
export function collectKV(model: nn.CausalLM, ids: ArrayLike<number>): KVRows {
  const storage = new nn.ConcatStorage();
  const cache = new nn.KVCache(storage);
  const L = model.config.nLayers;
  try {
    return noGrad(() =>
      tidy(() => {
        model.forward(tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'int32' }), { cache });
        const first = storage.read(0)!;
        const [, H, T, d] = first.k.shape as [number, number, number, number];
        const f = H * d;
        const P = L * f;
        const k = new Float32Array(T * P);
        const v = new Float32Array(T * P);
        for (let l = 0; l < L; l++) {
          const kv = storage.read(l)!;
          const kd = kv.k.contiguous().dataSync();
          const vd = kv.v.contiguous().dataSync();
          for (let h = 0; h < H; h++)
            for (let t = 0; t < T; t++)
              for (let j = 0; j < d; j++) {
                k[t * P + l * f + h * d + j] = kd[(h * T + t) * d + j]!;
                v[t * P + l * f + h * d + j] = vd[(h * T + t) * d + j]!;
              }
        }
        return { layers: L, heads: H, headDim: d, n: T, k, v, positions: Int32Array.from({ length: T }, (_, i) => i) };
      }),
    );
  } finally {
    cache.reset();
  }
}

/** Concatenates rows of several sequences (calibration over many documents). */
export function concatRows(parts: KVRows[]): KVRows {
  if (parts.length === 0) throw new ValueError('concatRows: no rows to join');
  const first = parts[0]!;
  for (const p of parts)
    if (p.layers !== first.layers || p.heads !== first.heads || p.headDim !== first.headDim)
      throw new ShapeError(
        `concatRows: rows of ${p.layers}×${p.heads}×${p.headDim} and ${first.layers}×${first.heads}×${first.headDim} cannot be joined`,
      );
  const P = first.layers * first.heads * first.headDim;
  const n = parts.reduce((a, p) => a + p.n, 0);
  const k = new Float32Array(n * P);
  const v = new Float32Array(n * P);
  const positions = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    k.set(p.k, at * P);
    v.set(p.v, at * P);
    positions.set(p.positions, at);
    at += p.n;
  }
  return { ...first, n, k, v, positions };
}
