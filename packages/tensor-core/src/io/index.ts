// Tensor-level safetensors: state dicts to bytes and back, compatible with Python's `safetensors`.
import { DTypeError, FormatError } from '../errors.js';
import { getBackend, kernelsFor } from '../runtime.js';
import { Tensor } from '../tensor.js';
import { bf16ToF32, f16ToF32, i32ToI64, i64ToI32 } from './half.js';
import {
  parseSafetensors,
  type RawTensor,
  type SafetensorsDType,
  serializeSafetensors,
  typedArrayOf,
} from './safetensors.js';

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, i32ToI64, i64ToI32 } from './half.js';
export { parseSafetensors, type RawTensor, type SafetensorsDType, serializeSafetensors } from './safetensors.js';

const toST = { float32: 'F32', int32: 'I32', bool: 'BOOL', float16: 'F16', bfloat16: 'BF16' } as const;

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
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of entries) {
    t.assertUsable(`saveSafetensors('${name}')`);
    raw.set(name, rawTensor(name, t, t.dataSync(), opts));
  }
  return serializeSafetensors(raw, opts.metadata);
}

/**
 * `saveSafetensors` for tensors on any backend: reads each tensor back with `await t.data()`, so WebGPU tensors
 * (whose synchronous read throws) serialise without a move to the CPU first. Same bytes as the synchronous form.
 */
export async function saveSafetensorsAsync(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  opts: SaveOptions = {},
): Promise<Uint8Array> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of entries) {
    t.assertUsable(`saveSafetensorsAsync('${name}')`);
    raw.set(name, rawTensor(name, t, await t.data(), opts));
  }
  return serializeSafetensors(raw, opts.metadata);
}

function rawTensor(name: string, t: Tensor, data: ArrayLike<number>, opts: SaveOptions): RawTensor {
  const host = data as Float32Array | Int32Array | Uint8Array | Uint16Array;
  const asI64 =
    t.dtype === 'int32' && (opts.int64 === true || (Array.isArray(opts.int64) && opts.int64.includes(name)));
  const bytes = asI64 ? i32ToI64(host as Int32Array) : new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
  return { dtype: asI64 ? 'I64' : (toST[t.dtype] as SafetensorsDType), shape: [...t.shape], data: bytes };
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
  const k = kernelsFor(getBackend());
  const out = new Map<string, Tensor>();
  for (const [name, r] of tensors) {
    let data: ArrayLike<number>;
    let dtype: Tensor['dtype'];
    switch (r.dtype) {
      case 'F32':
      case 'F64':
        data = typedArrayOf(r) as Float32Array | Float64Array;
        dtype = 'float32';
        break;
      case 'F16':
      case 'BF16': {
        const u = typedArrayOf(r) as Uint16Array;
        if (opts.keepHalf) {
          data = u;
          dtype = r.dtype === 'F16' ? 'float16' : 'bfloat16';
        } else {
          data = r.dtype === 'F16' ? f16ToF32(u) : bf16ToF32(u);
          dtype = 'float32';
        }
        break;
      }
      case 'I64':
        try {
          data = i64ToI32(r.data, `tensor '${name}'`);
        } catch (e) {
          throw new FormatError((e as Error).message);
        }
        dtype = 'int32';
        break;
      case 'I32':
      case 'I16':
      case 'I8':
      case 'U8':
        data = typedArrayOf(r) as Int32Array;
        dtype = 'int32';
        break;
      case 'BOOL':
        data = typedArrayOf(r) as Uint8Array;
        dtype = 'bool';
        break;
      default:
        throw new DTypeError(`loadSafetensors: tensor '${name}' has unsupported dtype ${String(r.dtype)}`);
    }
    out.set(name, new Tensor(k.fromArray(data, dtype), r.shape));
  }
  return { tensors: out, metadata };
}
