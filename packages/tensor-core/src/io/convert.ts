// Between tensors and parsed safetensors entries (RawTensor), for the io functions and checkpoints; not public.
import { DTypeError, FormatError } from '../errors.js';
import { getBackend, kernelsFor } from '../runtime.js';
import { Tensor } from '../tensor.js';
import { bf16ToF32, f16ToF32, i32ToI64, i64ToI32 } from './half.js';
import type { SaveOptions } from './index.js';
import { type RawTensor, type SafetensorsDType, typedArrayOf } from './safetensors.js';

const toST = { float32: 'F32', int32: 'I32', bool: 'BOOL', float16: 'F16', bfloat16: 'BF16' } as const;

/** The tensors' bytes as `saveSafetensors` would write them (read synchronously), by name. */
export function rawTensors(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  opts: SaveOptions = {},
): Map<string, RawTensor> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of entries) {
    t.assertUsable(`saveSafetensors('${name}')`);
    raw.set(name, rawTensor(name, t, t.dataSync(), opts));
  }
  return raw;
}

/**
 * `rawTensors` reading each tensor with `t.data()` (any backend). Every read starts before the first await: the
 * CPU backend copies when `data()` is called and WebGPU queues its copy then, so the bytes are the values at this
 * call even if the caller goes on changing the tensors (a training step) while the reads complete.
 */
export async function rawTensorsAsync(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  opts: SaveOptions = {},
): Promise<Map<string, RawTensor>> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) t.assertUsable(`saveSafetensorsAsync('${name}')`);
  const reads = entries.map(([, t]) => t.data());
  const data = await Promise.all(reads);
  return new Map(entries.map(([name, t], i) => [name, rawTensor(name, t, data[i]!, opts)]));
}

function rawTensor(name: string, t: Tensor, data: ArrayLike<number>, opts: SaveOptions): RawTensor {
  const host = data as Float32Array | Int32Array | Uint8Array | Uint16Array;
  const asI64 =
    t.dtype === 'int32' && (opts.int64 === true || (Array.isArray(opts.int64) && opts.int64.includes(name)));
  const bytes = asI64 ? i32ToI64(host as Int32Array) : new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
  return { dtype: asI64 ? 'I64' : (toST[t.dtype] as SafetensorsDType), shape: [...t.shape], data: bytes };
}

/** One parsed safetensors tensor as a tensor on the current backend, converted as `loadSafetensors` says. */
export function tensorFromRaw(name: string, r: RawTensor, opts: { keepHalf?: boolean } = {}): Tensor {
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
  return new Tensor(kernelsFor(getBackend()).fromArray(data, dtype), r.shape);
}
