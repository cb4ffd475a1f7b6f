// Tensor-level safetensors: state dicts to bytes and back, compatible with Python's `safetensors`.
import type { Tensor } from '../tensor.js';
import { rawTensors, rawTensorsAsync, tensorFromRaw } from './convert.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, i32ToI64, i64ToI32 } from './half.js';
export { parseSafetensors, type RawTensor, type SafetensorsDType, serializeSafetensors } from './safetensors.js';

export interface SaveOptions {
  metadata?: Record<string, string>;
  /** Save these int32 tensors (or all, with `true`) as I64, as PyTorch's token ids and indices are. */
  int64?: boolean | readonly string[];
}

/** Serialises named tensors (e.g. `model.stateDict()`) to safetensors bytes. */
export function saveSafetensors(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  opts: SaveOptions = {},
): Uint8Array {
  return serializeSafetensors(rawTensors(tensors, opts), opts.metadata);
}

/**
 * `saveSafetensors` for tensors on any backend: reads each tensor back with `await t.data()`, so WebGPU tensors
 * (whose synchronous read throws) serialise without a move to the CPU first. Same bytes as the synchronous form.
 */
export async function saveSafetensorsAsync(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  opts: SaveOptions = {},
): Promise<Uint8Array> {
  return serializeSafetensors(await rawTensorsAsync(tensors, opts), opts.metadata);
}

export interface LoadOptions {
  /** Keep F16/BF16 as half-precision storage tensors instead of converting to float32. */
  keepHalf?: boolean;
  maxHeaderBytes?: number;
}

/**
 * Reads safetensors bytes into tensors on the current backend. F16/BF16/F64 become float32, I64/I16/I8/U8
 * int32 (an I64 value outside int32 is a FormatError naming the tensor), BOOL bool.
 */
export function loadSafetensors(
  bytes: Uint8Array,
  opts: LoadOptions = {},
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = parseSafetensors(bytes, { maxHeaderBytes: opts.maxHeaderBytes });
  const out = new Map<string, Tensor>();
  for (const [name, r] of tensors) out.set(name, tensorFromRaw(name, r, opts));
  return { tensors: out, metadata };
}
