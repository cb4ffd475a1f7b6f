// Typed WebGPU errors. Each carries the adapter's or the driver's own message, so a user sees what
// the GPU said and not only what we expected.
import { TesseraError } from '../../errors.js';

/** Base of every WebGPU failure; the CPU backend stays usable after any of them. */
export class WebGPUError extends TesseraError {}

/** No WebGPU implementation (no `navigator.gpu`, no `webgpu` package) or no adapter. */
export class NoAdapterError extends WebGPUError {}

/** The device was lost (driver reset, `destroy()`, too long a dispatch): tensors on it are gone. */
export class DeviceLostError extends WebGPUError {}

/** A buffer larger than the device allows, or the device ran out of memory. */
export class GPUOutOfMemoryError extends WebGPUError {}

/** A WGSL shader failed to compile or a pipeline failed validation; the message is the compiler's. */
export class ShaderCompileError extends WebGPUError {}

/** A synchronous read of GPU memory, which WebGPU cannot do: use `await t.data()`. */
export class SyncReadError extends WebGPUError {}

/** An option that needs a WebGPU feature the adapter lacks (f16 compute without `shader-f16`). */
export class FeatureUnsupportedError extends WebGPUError {}
