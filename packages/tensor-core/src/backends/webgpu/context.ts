// The command stream of one device: a buffer pool keyed by size class and usage, a pipeline cache
// keyed by shader source, dispatches batched into one encoder, and pooled readback buffers.
//
// Ordering rule that makes the pool safe without fences: a buffer freed while the open encoder may
// still use it goes back to the pool only when that encoder is submitted. Every later
// queue.writeBuffer into a reused buffer is then ordered after the work that read it.

import { ValueError } from '../../errors.js';
import { acquire, check, type Gpu, typed, type WebGPUOptions } from './device.js';
import { GPUOutOfMemoryError } from './errors.js';

// GPUBufferUsage / GPUMapMode values, spelled out so no global is needed (Node has none).
export const MAP_READ = 0x1;
export const COPY_SRC = 0x4;
export const COPY_DST = 0x8;
export const STORAGE = 0x80;
const MAP_MODE_READ = 0x1;
const STORAGE_USAGE = STORAGE | COPY_SRC | COPY_DST;

/** Dispatches per submit: enough to amortise the submit, few enough that freed buffers come back soon. */
const BATCH = 48;

/** Size classes: powers of two split in quarters, so a reused buffer wastes at most 25 %. */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(4, p / 4);
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** Buffers created on the device and their bytes (live + pooled). */
  buffers: number;
  bytes: number;
  /** Of those, idle in the pool. */
  pooledBuffers: number;
  pooledBytes: number;
}

export interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly name: string;
}

export class Context {
  readonly gpu: Gpu;
  private readonly pool = new Map<string, GPUBuffer[]>();
  private pendingFree: GPUBuffer[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private queued = 0;
  private readonly pipelines = new Map<string, Kernel>();
  private readonly usageOf = new WeakMap<GPUBuffer, number>();
  readonly stats: PoolStats = { buffers: 0, bytes: 0, pooledBuffers: 0, pooledBytes: 0 };
  /** Compute dispatches encoded so far (fusion tests and profiling count them). */
  dispatches = 0;
  readonly maxBinding: number;

  private constructor(gpu: Gpu) {
    this.gpu = gpu;
    const l = gpu.device.limits;
    this.maxBinding = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
  }

  static async create(opts?: WebGPUOptions): Promise<Context> {
    return new Context(await acquire(opts));
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  check(op: string): void {
    check(this.gpu, op);
  }

  // ------------------------------------------------------------------ buffers

  alloc(bytes: number, usage = STORAGE_USAGE, op = 'alloc'): GPUBuffer {
    this.check(op);
    const size = sizeClass(bytes);
    if (usage !== MAP_READ + COPY_DST && size > this.maxBinding)
      throw new GPUOutOfMemoryError(
        `${op}: a buffer of ${bytes} bytes exceeds this adapter's limit of ${this.maxBinding} bytes per storage binding (${this.gpu.adapter.name})`,
      );
    const key = `${usage}:${size}`;
    const free = this.pool.get(key);
    const reused = free?.pop();
    if (reused) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
      return reused;
    }
    const dev = this.device;
    dev.pushErrorScope('out-of-memory');
    let buf: GPUBuffer;
    try {
      buf = dev.createBuffer({ size, usage });
    } catch (e) {
      void dev.popErrorScope();
      throw new GPUOutOfMemoryError(`${op}: createBuffer(${size}) failed: ${(e as Error).message}`);
    }
    dev.popErrorScope().then((err) => {
      if (err) this.gpu.errors.push(typed(err, `${op} (${size} bytes)`));
    });
    this.usageOf.set(buf, usage);
    this.stats.buffers++;
    this.stats.bytes += size;
    return buf;
  }

  /** Returns a buffer to the pool (after the open encoder is submitted, if one is open). */
  release(buf: GPUBuffer): void {
    if (this.encoder) this.pendingFree.push(buf);
    else this.toPool(buf);
  }

  private toPool(buf: GPUBuffer): void {
    const key = `${this.usageOf.get(buf) ?? STORAGE_USAGE}:${buf.size}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push(buf);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += buf.size;
  }

  /** Destroys every idle pooled buffer (memory goes back to the driver). */
  trim(): void {
    this.flush();
    for (const list of this.pool.values())
      for (const b of list) {
        this.stats.buffers--;
        this.stats.bytes -= b.size;
        b.destroy();
      }
    this.pool.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }

  upload(buf: GPUBuffer, data: ArrayBufferView): void {
    this.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  // ------------------------------------------------------------------ pipelines

  /** A compute pipeline for `code` (entry point `main`), cached by its source. */
  kernel(name: string, code: string): Kernel {
    const hit = this.pipelines.get(code);
    if (hit) return hit;
    const dev = this.device;
    dev.pushErrorScope('validation');
    const module = dev.createShaderModule({ code, label: name });
    const pipeline = dev.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
      label: name,
    });
    dev.popErrorScope().then((err) => {
      if (err) this.gpu.errors.push(typed(err, `shader '${name}'`));
    });
    const k = { pipeline, name };
    this.pipelines.set(code, k);
    return k;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // ------------------------------------------------------------------ commands

  private enc(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /**
   * Encodes one dispatch. `buffers` bind in order to @binding(0..); `params` (32-bit words) binds
   * last, as a read-only storage array. `groups` is split into x·y when it exceeds the per-dimension limit.
   */
  dispatch(
    k: Kernel,
    buffers: GPUBuffer[],
    params: Uint32Array | null,
    groups: number | [number, number, number],
  ): void {
    this.check(k.name);
    const [gx, gy, gz] = typeof groups === 'number' ? split(groups) : groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
    let pbuf: GPUBuffer | null = null;
    if (params) {
      pbuf = this.alloc(params.byteLength, STORAGE_USAGE, k.name);
      this.upload(pbuf, params);
      entries.push({ binding: buffers.length, resource: { buffer: pbuf } });
    }
    const group = this.device.createBindGroup({ layout: k.pipeline.getBindGroupLayout(0), entries });
    this.enc();
    this.pass ??= this.encoder!.beginComputePass();
    this.pass.setPipeline(k.pipeline);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(gx, gy, gz);
    this.dispatches++;
    if (pbuf) this.release(pbuf);
    if (++this.queued >= BATCH) this.flush();
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.check('copy');
    if (bytes === 0) return;
    this.endPass();
    this.enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.queued++;
  }

  clear(buf: GPUBuffer): void {
    this.endPass();
    this.enc().clearBuffer(buf);
    this.queued++;
  }

  /** Submits the open encoder and returns the buffers it kept from the pool. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const cmd = this.encoder.finish();
    this.encoder = null;
    this.queued = 0;
    this.device.queue.submit([cmd]);
    const freed = this.pendingFree;
    this.pendingFree = [];
    for (const b of freed) this.toPool(b);
  }

  /** Reads `bytes` at `offset` of `buf` through a pooled MAP_READ buffer. */
  /**
   * Reads `bytes` at `offset` of `buf` through a pooled MAP_READ buffer, and with it the 16-byte index
   * error flag that gather and scatter kernels raise (see `indexFlag`).
   */
  async read(buf: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.check('read');
    const staging = this.alloc(bytes + 16, MAP_READ | COPY_DST, 'read');
    this.endPass();
    if (bytes > 0) this.enc().copyBufferToBuffer(buf, offset, staging, 0, bytes);
    if (this.flag) this.enc().copyBufferToBuffer(this.flag, 0, staging, bytes, 16);
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, staging.size);
    } catch (e) {
      this.check('read');
      throw typed(e as GPUError, 'read');
    }
    const mapped = staging.getMappedRange(0, staging.size);
    const out = mapped.slice(0, bytes);
    const flag = this.flag ? new Int32Array(mapped.slice(bytes, bytes + 16)) : null;
    staging.unmap();
    this.toPool(staging);
    if (flag && flag[0] !== 0) {
      this.upload(this.flag!, new Uint32Array(4));
      throw new ValueError(
        `${['gather', 'scatterAdd'][flag[0]! - 1] ?? 'index'}: index ${flag[1]} out of range for a dim of size ${flag[2]} (raised by an earlier GPU kernel)`,
      );
    }
    // Validation errors of the work just read surface here, with the driver's message.
    await new Promise((r) => setTimeout(r, 0));
    this.check('read');
    return out;
  }

  private flag: GPUBuffer | null = null;

  /** Four words that index kernels set on an out-of-range index: [kernel (1 gather, 2 scatterAdd), index, size, 0]. */
  indexFlag(): GPUBuffer {
    if (!this.flag) {
      this.flag = this.alloc(16, STORAGE_USAGE, 'indexFlag');
      this.upload(this.flag, new Uint32Array(4));
    }
    return this.flag;
  }

  /** Waits until the device has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check('sync');
  }
}

const MAX_GROUPS = 65535;

function split(n: number): [number, number, number] {
  if (n <= MAX_GROUPS) return [n, 1, 1];
  const y = Math.ceil(n / MAX_GROUPS);
  return [Math.ceil(n / y), y, 1];
}
