// Training checkpoints: model and optimizer state, step, RNG state and config in one safetensors file
// (so Python can read the tensors too), with a CRC-32 over the tensor bytes so a damaged file is refused.
// `saveCheckpoint` writes atomically — temp file, fsync, rename — so an interrupted save never damages
// the previous checkpoint.
import { FormatError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { getRngState, setRngState } from '../ops/random.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';
import { loadSafetensors, saveSafetensors, saveSafetensorsAsync } from './index.js';
import { parseSafetensors, type RawTensor, serializeSafetensors } from './safetensors.js';

const FORMAT = 'tessera.checkpoint';
const VERSION = 1;

export interface Checkpoint {
  model: Module;
  optimizer?: Optimizer<{ lr: number }>;
  step: number;
  config?: unknown;
  /** Anything JSON-serialisable the training loop wants back (scheduler step, data position, …). */
  extra?: Record<string, unknown>;
}

let crcTable: Int32Array | null = null;
function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function checkpointToBytes(ck: Checkpoint): Uint8Array {
  const { tensors, meta } = checkpointTensors(ck);
  return withHead(ck, meta, tensors, saveSafetensors(tensors));
}

/**
 * `checkpointToBytes` for models on any backend: tensors are read back asynchronously, so a model training on
 * WebGPU checkpoints without moving to the CPU. Same bytes as the synchronous form.
 */
export async function checkpointToBytesAsync(ck: Checkpoint): Promise<Uint8Array> {
  const { tensors, meta } = checkpointTensors(ck);
  const body = await saveSafetensorsAsync(tensors);
  // The body's bytes are all read now; the second serialisation only adds the metadata, so it reads from them.
  return withHead(ck, meta, tensors, body, parseSafetensors(body).tensors);
}

function checkpointTensors(ck: Checkpoint): { tensors: Map<string, Tensor>; meta: unknown } {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of ck.model.stateDict()) tensors.set(`model.${k}`, t);
  const opt = ck.optimizer?.stateDict();
  if (opt) for (const [k, t] of opt.tensors) tensors.set(`optim.${k}`, t);
  return { tensors, meta: opt?.meta ?? null };
}

/** The file: the tensors again, with the head (and the CRC of `body`, the file without metadata) as metadata. */
function withHead(
  ck: Checkpoint,
  meta: unknown,
  tensors: Map<string, Tensor>,
  body: Uint8Array,
  raw?: Map<string, RawTensor>,
): Uint8Array {
  const head = {
    format: FORMAT,
    version: VERSION,
    step: ck.step,
    rng: getRngState(),
    config: ck.config ?? null,
    optimizer: meta,
    extra: ck.extra ?? {},
    crc32: crc32(body),
  };
  const metadata = { [FORMAT]: JSON.stringify(head) };
  return raw ? serializeSafetensors(raw, metadata) : saveSafetensors(tensors, { metadata });
}

export interface LoadedCheckpoint {
  step: number;
  config: unknown;
  extra: Record<string, unknown>;
}

/** Restores model, optimizer and RNG state from bytes; refuses anything damaged or of another format. */
export function checkpointFromBytes(
  bytes: Uint8Array,
  target: { model: Module; optimizer?: Optimizer<{ lr: number }> },
): LoadedCheckpoint {
  const { tensors, metadata } = loadSafetensors(bytes);
  try {
    const raw = metadata[FORMAT];
    if (!raw) throw new FormatError('checkpoint: not a Tessera checkpoint (no tessera.checkpoint metadata)');
    let head: {
      version: number;
      step: number;
      rng: number[];
      config: unknown;
      optimizer: Parameters<Optimizer<{ lr: number }>['loadStateDict']>[0]['meta'] | null;
      extra: Record<string, unknown>;
      crc32: number;
    };
    try {
      head = JSON.parse(raw);
    } catch {
      throw new FormatError('checkpoint: metadata is not valid JSON');
    }
    if (head.version !== VERSION)
      throw new FormatError(`checkpoint: version ${head.version} is not supported (expected ${VERSION})`);
    // The CRC covers the file as it would be without metadata; rebuilt from the parsed bytes, not from the
    // loaded tensors, so that no tensor is read back (a synchronous read fails on WebGPU).
    const body = serializeSafetensors(parseSafetensors(bytes).tensors);
    if (crc32(body) !== head.crc32) throw new FormatError('checkpoint: CRC-32 mismatch; the tensor data is damaged');
    const model = new Map<string, Tensor>();
    const optim = new Map<string, Tensor>();
    for (const [k, t] of tensors) {
      if (k.startsWith('model.')) model.set(k.slice(6), t);
      else if (k.startsWith('optim.')) optim.set(k.slice(6), t);
    }
    target.model.loadStateDict(model);
    if (target.optimizer && head.optimizer) target.optimizer.loadStateDict({ tensors: optim, meta: head.optimizer });
    setRngState(head.rng);
    return { step: head.step, config: head.config, extra: head.extra ?? {} };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/**
 * `node:fs/promises`, imported through a variable specifier so that browser bundlers (esbuild, Vite) do not try to
 * resolve a Node built-in when they bundle the package: checkpoints in browsers go through the byte functions.
 */
async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  const spec = 'node:fs/promises';
  try {
    return (await import(/* @vite-ignore */ spec)) as typeof import('node:fs/promises');
  } catch {
    throw new Error(
      'saveCheckpoint/loadCheckpoint need Node file system access; use checkpointToBytes/checkpointFromBytes here',
    );
  }
}

/** Writes a checkpoint file atomically (Node): temp file in the same folder, fsync, rename over `path`. */
export async function saveCheckpoint(path: string, ck: Checkpoint): Promise<void> {
  const fs = await nodeFs();
  const bytes = await checkpointToBytesAsync(ck);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function loadCheckpoint(
  path: string,
  target: { model: Module; optimizer?: Optimizer<{ lr: number }> },
): Promise<LoadedCheckpoint> {
  const fs = await nodeFs();
  const bytes = new Uint8Array(await fs.readFile(path));
  return checkpointFromBytes(bytes, target);
}
