// The WebGPU backend's entry: `await setBackend('webgpu')` imports this module lazily and calls init().
// A lost device is replaced by the next init(); tensors of the old device then throw DeviceLostError.

import type { View } from '../backend.js';
import { Context, type PoolStats } from './context.js';
import type { AdapterDescription, WebGPUOptions } from './device.js';
import {
  getContext,
  lastMatmul,
  type MatmulVariant,
  realize,
  setContext,
  setF16Compute,
  setMatmulVariant,
  webgpuKernels,
} from './kernels.js';

export type { AdapterDescription, WebGPUOptions } from './device.js';
export type { MatmulVariant } from './kernels.js';
export { webgpuKernels };

let ctx: Context | null = null;
let pending: Promise<Context> | null = null;

/** Acquires (or reuses) the device. Throws NoAdapterError with the reason when there is none. */
export async function init(opts?: WebGPUOptions): Promise<void> {
  if (ctx && ctx.gpu.lost === null && !opts?.gpu) return;
  pending ??= Context.create(opts);
  try {
    ctx = await pending;
    setContext(ctx);
  } finally {
    pending = null;
  }
}

/** Tools for tests, benchmarks and diagnostics of the active WebGPU device. */
export const webgpu = {
  /** The adapter in use: name, vendor, architecture, and whether it is a software implementation. */
  adapter(): AdapterDescription {
    return getContext().gpu.adapter;
  },
  /** Buffers the pool holds (live and idle), cached pipelines, and compute dispatches so far. */
  memory(): PoolStats & { pipelines: number; dispatches: number } {
    const c = getContext();
    return { ...c.stats, pipelines: c.pipelineCount, dispatches: c.dispatches };
  },
  /**
   * Runs the pending (fused, lazy) work of `tensors`, then waits for everything submitted (for timing);
   * rethrows any error the GPU reported.
   */
  sync(...tensors: View[]): Promise<void> {
    for (const t of tensors) realize(t.storage);
    return getContext().sync();
  },
  /** Gives idle pooled buffers back to the driver. */
  trim(): void {
    getContext().trim();
  },
  /** Forces a matmul kernel ('auto' picks per adapter and shape). */
  setMatmulVariant(v: MatmulVariant): void {
    setMatmulVariant(v);
  },
  /** The kernel the last matmul ran ('gemvSplitK', 'tiled', ...). */
  lastMatmul,
  /**
   * f16 compute for matmuls: operands rounded to f16, f16 products, f32 sums. Needs the adapter's
   * `shader-f16` (see `adapter().f16`); FeatureUnsupportedError otherwise. A new device starts without it.
   */
  setF16Compute(on: boolean): void {
    setF16Compute(on);
  },
  /** The raw device (advanced use; e.g. `destroy()` in device-loss tests). */
  device(): GPUDevice {
    return getContext().device;
  },
  /** Compiles a WGSL compute shader through the pipeline cache (errors surface as ShaderCompileError). */
  compile(name: string, code: string): void {
    getContext().kernel(name, code);
  },
};

export function memoryStats(): PoolStats | null {
  return ctx ? { ...ctx.stats } : null;
}
