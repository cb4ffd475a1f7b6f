// Adapter and device acquisition: `navigator.gpu` in browsers, the optional `webgpu` package (Dawn)
// in Node. Errors the GPU reports asynchronously (validation, out of memory, device loss) are kept
// and rethrown as typed errors at the next call that can throw, with the driver's message.
import { DeviceLostError, GPUOutOfMemoryError, NoAdapterError, ShaderCompileError, WebGPUError } from './errors.js';

export interface AdapterDescription {
  /** What the adapter calls itself: "llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA GeForce RTX 4090", ... */
  name: string;
  vendor: string;
  architecture: string;
  /** A CPU implementation (lavapipe, SwiftShader, WARP): fast kernels differ there, and timings mean little. */
  software: boolean;
  /** The device has `shader-f16` (f16 arithmetic in WGSL), so f16 compute can be turned on. */
  f16: boolean;
}

export interface WebGPUOptions {
  /** A `GPU` to use instead of `navigator.gpu` or the `webgpu` package (tests inject fakes here). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
}

export interface Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  /** Set once the device is lost; every later kernel throws DeviceLostError. */
  lost: string | null;
  /** Errors reported asynchronously, rethrown (first one) by the next kernel or read. */
  errors: WebGPUError[];
}

let nodeGpu: Promise<GPU> | null = null;

async function findGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!isNode)
    throw new NoAdapterError(
      'WebGPU: this browser has no navigator.gpu (it needs a secure context; headless Chromium needs --enable-unsafe-webgpu)',
    );
  nodeGpu ??= (async () => {
    // A variable specifier keeps bundlers from pulling Dawn's native addon into browser builds.
    const spec = 'webgpu';
    let mod: { create(flags: string[]): GPU; globals: Record<string, unknown> };
    try {
      mod = await import(/* @vite-ignore */ spec);
    } catch (e) {
      nodeGpu = null;
      throw new NoAdapterError(
        `WebGPU: Node has no navigator.gpu and the optional package 'webgpu' did not load (npm install webgpu): ${(e as Error).message}`,
      );
    }
    return mod.create([]);
  })();
  return nodeGpu;
}

function describe(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const parts = [info?.vendor, info?.architecture, info?.device].filter((p) => p);
  const name = info?.description || parts.join(' ') || 'unknown adapter';
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const fallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const text = `${name} ${vendor} ${architecture}`.toLowerCase();
  const software = fallback || /llvmpipe|lavapipe|swiftshader|warp|software|cpu/.test(text);
  return { name, vendor, architecture, software, f16: false };
}

/** Requests an adapter and a device with the adapter's larger limits. */
export async function acquire(opts: WebGPUOptions = {}): Promise<Gpu> {
  const gpu = opts.gpu ?? (await findGpu());
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new NoAdapterError(`WebGPU: requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter)
    throw new NoAdapterError(
      'WebGPU: no adapter available (requestAdapter returned null); on Linux install Vulkan drivers (mesa-vulkan-drivers), in Chromium pass --enable-unsafe-webgpu',
    );
  const want: (keyof GPUSupportedLimits)[] = [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxStorageBuffersPerShaderStage',
    'maxComputeInvocationsPerWorkgroup',
  ];
  const requiredLimits: Record<string, number> = {};
  for (const k of want) {
    const v = adapter.limits[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  // f16 arithmetic where the adapter has it (used only when f16 compute is turned on).
  const f16 = adapter.features?.has('shader-f16') === true;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures: f16 ? ['shader-f16'] : [] });
  } catch (e) {
    throw new NoAdapterError(`WebGPU: requestDevice failed on ${describe(adapter).name}: ${(e as Error).message}`);
  }
  const g: Gpu = { device, adapter: { ...describe(adapter), f16 }, lost: null, errors: [] };
  device.lost.then((info) => {
    g.lost = `${info.reason}: ${info.message}`;
  });
  device.addEventListener('uncapturederror', (ev) => {
    g.errors.push(typed((ev as GPUUncapturedErrorEvent).error));
  });
  return g;
}

/** The typed error for a GPUError (validation → shader/pipeline, out-of-memory, internal). */
export function typed(err: GPUError, context = ''): WebGPUError {
  const where = context ? `${context}: ` : '';
  const name = (err as { constructor?: { name?: string } }).constructor?.name ?? '';
  if (name === 'GPUOutOfMemoryError' || /out of memory/i.test(err.message))
    return new GPUOutOfMemoryError(`WebGPU: ${where}out of GPU memory: ${err.message}`);
  if (/shader|wgsl|pipeline/i.test(err.message)) return new ShaderCompileError(`WebGPU: ${where}${err.message}`);
  return new WebGPUError(`WebGPU: ${where}${err.message}`);
}

/** Throws the first pending asynchronous error, or DeviceLostError once the device is gone. */
export function check(g: Gpu, op: string): void {
  if (g.lost !== null)
    throw new DeviceLostError(
      `${op}: the WebGPU device was lost (${g.lost}); call setBackend('webgpu') again for a new device, and recreate tensors`,
    );
  const e = g.errors.shift();
  if (e) {
    g.errors.length = 0;
    throw e;
  }
}
