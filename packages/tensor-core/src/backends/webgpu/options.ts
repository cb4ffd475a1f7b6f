// Public WebGPU switches. The backend's module loads on demand (as setBackend does), so these are async.
import { initBackend } from '../../runtime.js';
import type { AdapterDescription } from './device.js';

/**
 * f16 compute for WebGPU matmuls: operands rounded to f16, products in f16, sums in f32 — up to twice
 * the arithmetic rate on GPUs with packed f16, at f16's 11-bit precision per product. Needs the
 * adapter's `shader-f16` (FeatureUnsupportedError otherwise); a new device starts without it.
 */
export async function setWebgpuF16Compute(on: boolean): Promise<void> {
  await initBackend('webgpu');
  const { webgpu } = await import('./index.js');
  webgpu.setF16Compute(on);
}

/** The adapter in use (initialising the backend): name, vendor, whether it is software, whether it has f16. */
export async function webgpuAdapter(): Promise<AdapterDescription> {
  await initBackend('webgpu');
  const { webgpu } = await import('./index.js');
  return webgpu.adapter();
}
