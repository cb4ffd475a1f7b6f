// Training checkpoints: model and optimizer state, step, RNG state and config in one safetensors file
// (so Python can read the tensors too), with a CRC-32 over the tensor bytes so a damaged file is refused.
// `saveCheckpoint` writes atomically — temp file, fsync, rename — so an interrupted save never damages
// the previous checkpoint.
import { FormatError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { checkRngState, getRngState, setRngState } from '../ops/random.js';
import type { Optimizer, OptimizerState } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';
import { rawTensors, rawTensorsAsync, tensorFromRaw } from './convert.js';
import { parseSafetensors, type RawTensor, safetensorsPieces, serializeSafetensors } from './safetensors.js';

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

// CRC-32 (IEEE, zlib's) by slicing-by-4: four bytes per step through four tables, ×3–4 the bytewise loop's speed.
let crcTables: Int32Array | null = null;
function tables(): Int32Array {
  if (crcTables) return crcTables;
  const t = new Int32Array(1024);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++)
    for (let j = 1; j < 4; j++) t[j * 256 + n] = (t[(j - 1) * 256 + n]! >>> 8) ^ t[t[(j - 1) * 256 + n]! & 0xff]!;
  crcTables = t;
  return t;
}

/** CRC-32 of `bytes`, continuing from `crc` (the CRC of what came before): crc32(b, crc32(a)) = crc32(a ‖ b). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = tables();
  let c = ~crc;
  let i = 0;
  for (const end = bytes.length - 3; i < end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The CRC of the file the tensors make without metadata, over its pieces (no concatenated copy). */
function bodyCrc(raw: Map<string, RawTensor>): number {
  let c = 0;
  for (const piece of safetensorsPieces(raw)) c = crc32(piece, c);
  return c;
}

export function checkpointToBytes(ck: Checkpoint): Uint8Array {
  const { tensors, head } = checkpointState(ck);
  return withHead(head, rawTensors(tensors));
}

/**
 * `checkpointToBytes` for models on any backend: tensors are read back asynchronously, so a model training on
 * WebGPU checkpoints without moving to the CPU. Same bytes as the synchronous form. The checkpoint is the state
 * at the call: every tensor read, the RNG state, the optimizer's counters and `config`/`extra` are taken before
 * the first await, so a training loop that steps on while the promise is pending does not leak into it.
 */
export async function checkpointToBytesAsync(ck: Checkpoint): Promise<Uint8Array> {
  const { tensors, head } = checkpointState(ck);
  return withHead(head, await rawTensorsAsync(tensors));
}

/** The head without its CRC, as JSON-ready values taken now. */
interface Head {
  format: string;
  version: number;
  step: number;
  rng: number[];
  config: unknown;
  optimizer: unknown;
  extra: Record<string, unknown>;
}

function checkpointState(ck: Checkpoint): { tensors: Map<string, Tensor>; head: Head } {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of ck.model.stateDict()) tensors.set(`model.${k}`, t);
  const opt = ck.optimizer?.stateDict();
  if (opt) for (const [k, t] of opt.tensors) tensors.set(`optim.${k}`, t);
  // A copy through JSON: what the file will say, fixed now even if the caller's objects change while we read.
  const head: Head = JSON.parse(
    JSON.stringify({
      format: FORMAT,
      version: VERSION,
      step: ck.step,
      rng: getRngState(),
      config: ck.config ?? null,
      optimizer: opt?.meta ?? null,
      extra: ck.extra ?? {},
    }),
  );
  return { tensors, head };
}

/** The file: the tensors with the head (and the CRC of the file as it would be without metadata) as metadata. */
function withHead(head: Head, raw: Map<string, RawTensor>): Uint8Array {
  return serializeSafetensors(raw, { [FORMAT]: JSON.stringify({ ...head, crc32: bodyCrc(raw) }) });
}

export interface LoadedCheckpoint {
  step: number;
  config: unknown;
  extra: Record<string, unknown>;
}

interface StoredHead {
  version: number;
  step: number;
  rng: number[];
  config: unknown;
  optimizer: OptimizerState['meta'] | null;
  extra: Record<string, unknown>;
  crc32: number;
}

/**
 * The head's fields, each of the kind the writer writes, or a FormatError naming the first that is not (the
 * CRC covers the tensors, not the head, so the head is checked field by field). The RNG state and the
 * optimizer's meta are checked against their targets later, before anything is restored.
 */
function readHead(h: unknown): StoredHead {
  const bad = (why: string): never => {
    throw new FormatError(`checkpoint: ${why}`);
  };
  if (!h || typeof h !== 'object' || Array.isArray(h)) bad('its head is not a JSON object');
  const o = h as Record<string, unknown>;
  if (o.version !== VERSION) bad(`version ${JSON.stringify(o.version)} is not supported (expected ${VERSION})`);
  if (typeof o.crc32 !== 'number') bad('its head has no CRC-32');
  if (!Number.isSafeInteger(o.step) || (o.step as number) < 0) bad(`step ${JSON.stringify(o.step)} is not a count`);
  if (!Array.isArray(o.rng)) bad('its head has no RNG state');
  const extra = o.extra ?? {};
  if (typeof extra !== 'object' || Array.isArray(extra)) bad(`extra ${JSON.stringify(o.extra)} is not an object`);
  const opt = o.optimizer ?? null;
  if (opt !== null && (typeof opt !== 'object' || Array.isArray(opt))) bad('its optimizer state is not an object');
  return {
    version: VERSION,
    step: o.step as number,
    rng: o.rng as number[],
    config: o.config ?? null,
    optimizer: opt as StoredHead['optimizer'],
    extra: extra as Record<string, unknown>,
    crc32: o.crc32 as number,
  };
}

/** Restores model, optimizer and RNG state from bytes; refuses anything damaged or of another format. */
export function checkpointFromBytes(
  bytes: Uint8Array,
  target: { model: Module; optimizer?: Optimizer<{ lr: number }> },
): LoadedCheckpoint {
  const { tensors: raw, metadata } = parseSafetensors(bytes);
  // Tensors are made only for what is restored (an optimizer's moments are most of a training checkpoint,
  // and evaluation and generation load without one), and only once the CRC has passed.
  const tensors = new Map<string, Tensor>();
  try {
    const headJson = metadata[FORMAT];
    if (!headJson) throw new FormatError('checkpoint: not a Tessera checkpoint (no tessera.checkpoint metadata)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(headJson);
    } catch {
      throw new FormatError('checkpoint: metadata is not valid JSON');
    }
    const head = readHead(parsed);
    // The CRC covers the file as it would be without metadata, computed over the parsed bytes (no tensor is
    // read back: a synchronous read fails on WebGPU).
    let crc: number;
    try {
      crc = bodyCrc(raw);
    } catch (e) {
      throw new FormatError(
        `checkpoint: its tensor table cannot be re-serialised for the CRC (${(e as Error).message})`,
      );
    }
    if (crc !== head.crc32) throw new FormatError('checkpoint: CRC-32 mismatch; the tensor data is damaged');
    const withOptimizer = Boolean(target.optimizer && head.optimizer);
    const model = new Map<string, Tensor>();
    const optim = new Map<string, Tensor>();
    for (const [k, r] of raw) {
      const into = k.startsWith('model.') ? model : withOptimizer && k.startsWith('optim.') ? optim : null;
      if (!into) continue;
      const t = tensorFromRaw(k, r);
      tensors.set(k, t);
      into.set(k.slice(6), t);
    }
    // All or nothing: everything that can refuse is checked before anything changes. The model's own load is
    // all-or-nothing and goes first; after it the optimizer's state and the RNG state are known to fit.
    const optimState = withOptimizer ? { tensors: optim, meta: head.optimizer! } : null;
    if (optimState) target.optimizer!.checkStateDict(optimState);
    try {
      checkRngState(head.rng);
    } catch (e) {
      throw new FormatError(`checkpoint: its RNG state is not one (${(e as Error).message})`);
    }
    target.model.loadStateDict(model);
    if (optimState) target.optimizer!.loadStateDict(optimState);
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
  try {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    // A full disk or a failed rename leaves neither a half-written temp file nor a changed checkpoint.
    await fs.rm(tmp, { force: true });
    throw e;
  }
  // The rename is durable once the folder's entry is on disk too (POSIX); where a folder cannot be opened
  // for that (Windows), the file's own fsync is what there is.
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const dir = cut < 0 ? '.' : cut === 0 ? path[0]! : path.slice(0, cut);
  try {
    const dh = await fs.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // best effort, as above
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
