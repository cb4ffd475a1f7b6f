// @tessera/tensor-core: the public surface (re-exports only).

export { enableGrad, isGradEnabled, noGrad } from './autograd.js';
export type { BackendName, Kernels } from './backends/backend.js';
export {
  type CpuThreadsOptions,
  cpuThreads,
  cpuThreadsUnavailableReason,
  setCpuThreads,
  WorkerError,
} from './backends/cpu/pool.js';
export { arenaStats, type CpuPath, cpuPath, setCpuPath, WasmMemoryError } from './backends/cpu/wasm.js';
export type { AdapterDescription } from './backends/webgpu/device.js';
export {
  DeviceLostError,
  FeatureUnsupportedError,
  GPUOutOfMemoryError,
  NoAdapterError,
  ShaderCompileError,
  SyncReadError,
  WebGPUError,
} from './backends/webgpu/errors.js';
export { setWebgpuF16Compute, webgpuAdapter } from './backends/webgpu/options.js';
export type { DType } from './dtype.js';
export {
  AutogradError,
  DisposedError,
  DTypeError,
  FormatError,
  ShapeError,
  TesseraError,
  ValueError,
} from './errors.js';
export * as F from './functional.js';
export {
  type Checkpoint,
  checkpointFromBytes,
  checkpointToBytes,
  checkpointToBytesAsync,
  type LoadedCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from './io/checkpoint.js';
export * as io from './io/index.js';
export * as nn from './nn/index.js';
export {
  arange,
  eye,
  full,
  fullLike,
  linspace,
  ones,
  onesLike,
  type TensorOptions,
  tensor,
  zeros,
  zerosLike,
} from './ops/creation.js';
export {
  abs,
  add,
  clamp,
  cos,
  div,
  eq,
  exp,
  ge,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  sigmoid,
  sin,
  sqrt,
  sub,
  tanh,
  where,
} from './ops/elementwise.js';
export { matmul } from './ops/linalg.js';
export { argsort, cat, chunk, oneHot, pad, split, stack } from './ops/movement.js';
export {
  bernoulli,
  getRngState,
  gumbel,
  manualSeed,
  multinomial,
  rand,
  randint,
  randn,
  setRngState,
} from './ops/random.js';
export * as optim from './optim/index.js';
export { Progress, type ProgressState } from './progress.js';
export {
  type BackendMemory,
  getBackend,
  keep,
  type MemoryInfo,
  memory,
  registerBackend,
  setBackend,
  tidy,
} from './runtime.js';
export { isTensor, type Scalar, Tensor, type TensorLike } from './tensor.js';

export const version = '0.1.0';
