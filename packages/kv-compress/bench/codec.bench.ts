// KVTC codec throughput on synthetic KV-like rows shaped like the research note's LM-S (4 layers × 2 KV heads ×
// d_head 32, p = 256): calibration (PCA + DP), encode and decode MB/s of fp16-equivalent input, DEFLATE gain,
// against the KIVI-2-style plain quantisation of the same rows. Each case checks its reconstruction error.
// The device decoder (DeviceCacheReader) is timed on tensor-core's CPU backend (its default path, the host
// decoder's kernels, and WebGPU's tensor-op code) and, where an adapter exists,
// on WebGPU, interleaved with the host decoder in one process. On Dawn/lavapipe (a CPU rasteriser) that row
// proves the GPU path decodes correctly, not how fast a real GPU is.
import { allClose, median, record, timeit } from '@tessera/bench-kit';
import { setBackend, webgpuAdapter } from '@tessera/tensor-core';
import { calibrate, fitPlan, type KVRows } from '../src/calibration.js';
import { DeviceCacheReader, DeviceCalibration } from '../src/device-reader.js';
import { CacheReader, encodeCache, readHeader } from '../src/format.js';
import { setCodecKernels } from '../src/kernels.js';
import { Rng } from '../src/linalg.js';
import { quantizeGroup } from '../src/quant.js';
import { ropeRows } from '../src/rope.js';

function rows(n: number, seed: number, start = 0): KVRows {
  const L = 4;
  const H = 2;
  const d = 32;
  const P = L * H * d;
  const rank = 24;
  const basis = new Rng(99);
  const w = [0, 1].map(() => new Float32Array(rank * P).map(() => basis.normal()));
  const rng = new Rng(seed);
  const mk = (wk: Float32Array) => {
    const x = new Float32Array(n * P);
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: rank }, (_, c) => rng.normal() / (1 + 0.3 * c));
      for (let j = 0; j < P; j++) {
        let s = 0.02 * rng.normal();
        for (let c = 0; c < rank; c++) s += z[c]! * wk[c * P + j]!;
        x[i * P + j] = s;
      }
    }
    return x;
  };
  const k = mk(w[0]!);
  const v = mk(w[1]!);
  const positions = Int32Array.from({ length: n }, (_, i) => start + i);
  ropeRows(k, n, P, 0, L * H, d, positions);
  return { layers: L, heads: H, headDim: d, n, k, v, positions };
}

const cal = rows(1024, 1);
const t0 = performance.now();
const calibration = calibrate(cal);
const pcaMs = performance.now() - t0;
const test = rows(1024, 2);
const fp16MB = (test.n * 256 * 2 * 2) / 1e6;
record({
  package: 'kv-compress',
  case: 'calibrate PCA p=256, 1024 rows',
  impl: 'tridiagonal QL',
  unit: 'ms',
  value: pcaMs,
  higherIsBetter: false,
  check: pcaOk() ? 'ok' : 'fail',
  note: 'basis rows orthonormal, energies descending',
});

/** Every segment's basis has orthonormal rows (VVᵀ = I) and its energies are sorted, non-negative. */
function pcaOk(): boolean {
  for (const { pca } of calibration.segments) {
    const { p, rank, basis, energies } = pca;
    for (let i = 0; i < rank; i++) {
      if (!(energies[i]! >= 0) || (i > 0 && energies[i]! > energies[i - 1]! * (1 + 1e-6))) return false;
      for (let j = i; j < rank; j++) {
        let d = 0;
        for (let k = 0; k < p; k++) d += basis[i * p + k]! * basis[j * p + k]!;
        if (Math.abs(d - (i === j ? 1 : 0)) > 1e-3) return false;
      }
    }
  }
  return true;
}

for (const ratio of [16, 32]) {
  const t1 = performance.now();
  const plan = fitPlan(calibration, cal, { ratio });
  const dpMs = performance.now() - t1;
  const opts = { sinks: 4, window: 0, chunkTokens: 256 };
  let stream = encodeCache(test, calibration, plan, opts);
  const enc = timeit(() => (stream = encodeCache(test, calibration, plan, opts)), { reps: 3, warmup: 1, minMs: 0 });
  let back = new CacheReader(stream, calibration).rows();
  const dec = timeit(() => (back = new CacheReader(stream, calibration).rows()), { reps: 3, warmup: 1, minMs: 0 });
  if (ratio === 16) {
    await deviceDecode(stream, back);
    // A real GPU is wasted on 1K tokens (launches and read-back dominate): 16K more, where one is present.
    const hw = await setBackend('webgpu').then(
      async () => !(await webgpuAdapter()).software,
      () => false,
    );
    await setBackend('cpu');
    if (hw) {
      const long = rows(16384, 3);
      const s16 = encodeCache(long, calibration, plan, opts);
      await deviceDecode(s16, new CacheReader(s16, calibration).rows());
    }
  }
  const h = readHeader(stream);
  const compressedBytes = h.sections.filter((s) => s.kind === 3).reduce((a, s) => a + s.length, 0);
  const real = ((test.n - 4) * 256 * 4) / compressedBytes;
  // the answer: low-rank data reconstructs within a few percent, and the DP kept its budget
  let num = 0;
  let den = 0;
  for (let i = 4 * 256; i < test.v.length; i++) {
    num += (test.v[i]! - back.v[i]!) ** 2;
    den += test.v[i]! ** 2;
  }
  const err = Math.sqrt(num / den);
  const ok = real >= ratio && err < 0.25 && allClose(back.v.subarray(0, 256), test.v.subarray(0, 256), 1e-3, 1e-3);
  const check = ok ? 'ok' : 'fail';
  record({
    package: 'kv-compress',
    case: `kvtc ${ratio}× encode p=256, 1K tokens`,
    impl: 'tensor-core kernels',
    unit: 'MB/s',
    value: fp16MB / (enc.medianMs / 1000),
    higherIsBetter: true,
    check,
    note: `real ${real.toFixed(1)}×, V rel err ${err.toFixed(3)}, DP ${dpMs.toFixed(0)} ms`,
  });
  record({
    package: 'kv-compress',
    case: `kvtc ${ratio}× decode p=256, 1K tokens`,
    impl: 'tensor-core kernels',
    unit: 'MB/s',
    value: fp16MB / (dec.medianMs / 1000),
    higherIsBetter: true,
    check,
  });
  // the same encode and decode with the host GEMM loop, in the same process (the kernels' gain)
  setCodecKernels('ts');
  const encTs = timeit(() => encodeCache(test, calibration, plan, opts), { reps: 3, warmup: 1, minMs: 0 });
  let backTs = back;
  const decTs = timeit(() => (backTs = new CacheReader(stream, calibration).rows()), { reps: 3, warmup: 1, minMs: 0 });
  setCodecKernels('tensor-core');
  let diff = 0;
  for (let i = 0; i < back.v.length; i++) diff = Math.max(diff, Math.abs(back.v[i]! - backTs.v[i]!));
  record({
    package: 'kv-compress',
    case: `kvtc ${ratio}× decode p=256, 1K tokens`,
    impl: 'host loop',
    unit: 'MB/s',
    value: fp16MB / (decTs.medianMs / 1000),
    higherIsBetter: true,
    check: diff < 1e-3 ? 'ok' : 'fail',
    note: `encode ${(fp16MB / (encTs.medianMs / 1000)).toFixed(1)} MB/s; max |Δ| vs kernels ${diff.toExponential(1)}`,
  });
  // the entropy stage: packed vs DEFLATE vs the adaptive range coder, on the same chunks; the range-coded
  // stream must decode to exactly what the DEFLATE one does
  const chunkBytesOf = (st: Uint8Array) =>
    readHeader(st)
      .sections.filter((s) => s.kind === 3)
      .reduce((a, s) => a + s.length, 0);
  const packed = chunkBytesOf(encodeCache(test, calibration, plan, { ...opts, level: 0 }));
  let ranged = encodeCache(test, calibration, plan, { ...opts, coder: 'range' });
  const renc = timeit(() => (ranged = encodeCache(test, calibration, plan, { ...opts, coder: 'range' })), {
    reps: 3,
    warmup: 1,
    minMs: 0,
  });
  const same = (() => {
    const a = new CacheReader(ranged, calibration).rows();
    for (let i = 0; i < a.v.length; i++) if (a.v[i] !== back.v[i] || a.k[i] !== back.k[i]) return false;
    return true;
  })();
  record({
    package: 'kv-compress',
    case: `kvtc ${ratio}× entropy stage over packing, p=256`,
    impl: 'range coder',
    unit: '×',
    value: packed / chunkBytesOf(ranged),
    higherIsBetter: true,
    check: same ? 'ok' : 'fail',
    note: `DEFLATE ${(packed / compressedBytes).toFixed(3)}×; range-coded encode ${(fp16MB / (renc.medianMs / 1000)).toFixed(1)} MB/s`,
  });
}

// peer in the same process: KIVI-2-style per-token int2 groups of 32 (no transform), error and ratio
{
  let num = 0;
  let den = 0;
  const rec = new Float32Array(32);
  const t = timeit(
    () => {
      num = 0;
      den = 0;
      for (let i = 0; i < test.v.length; i += 32) {
        const q = quantizeGroup(test.v, i, 32, 'int2', undefined, 0, rec, 0);
        num += q.err;
        for (let j = 0; j < 32; j++) den += test.v[i + j]! ** 2;
      }
    },
    { reps: 3, warmup: 1, minMs: 0 },
  );
  const err = Math.sqrt(num / den);
  record({
    package: 'kv-compress',
    case: 'int2 g32 per-token quantise (KIVI-style V)',
    impl: 'ts',
    unit: 'MB/s',
    value: fp16MB / 2 / (t.medianMs / 1000),
    higherIsBetter: true,
    check: err < 0.6 ? 'ok' : 'fail',
    note: `ratio ${(512 / (64 + 32)).toFixed(2)}×, V rel err ${err.toFixed(3)}`,
  });
}

/**
 * Host decoder vs DeviceCacheReader on the CPU backend and on WebGPU, rounds interleaved; medians of wall time
 * and of process CPU time (all threads: lavapipe's included), since the shared box's load moves wall time.
 */
async function deviceDecode(stream: Uint8Array, ref: KVRows): Promise<void> {
  const mb = (ref.n * 256 * 2 * 2) / 1e6;
  const gpu = await setBackend('webgpu').then(
    async () => await webgpuAdapter(),
    (e: Error) => {
      console.warn(`webgpu decode row skipped: ${e.message}`);
      return null;
    },
  );
  await setBackend('cpu');
  // on the CPU backend the device reader takes the host decoder's kernels by default; 'tensor-ops' is WebGPU's code
  const impls: { name: string; backend: 'cpu' | 'webgpu' | null; arithmetic?: 'tensor-ops' }[] = [
    { name: 'host decoder', backend: null },
    { name: 'device decoder, cpu', backend: 'cpu' },
    { name: 'device decoder, cpu, tensor ops', backend: 'cpu', arithmetic: 'tensor-ops' },
    ...(gpu ? [{ name: 'device decoder, webgpu', backend: 'webgpu' as const }] : []),
  ];
  const dcal = new Map<string, DeviceCalibration>();
  const ms = new Map<string, number[]>(impls.map((i) => [i.name, []]));
  const cpu = new Map<string, number[]>(impls.map((i) => [i.name, []]));
  const ROUNDS = 13;
  const diff = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++)
    for (const impl of impls) {
      await setBackend(impl.backend ?? 'cpu');
      if (impl.backend && !dcal.has(impl.backend)) dcal.set(impl.backend, new DeviceCalibration(calibration));
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      let got: KVRows;
      if (impl.backend) {
        const r = new DeviceCacheReader(stream, dcal.get(impl.backend)!, { arithmetic: impl.arithmetic ?? 'auto' });
        got = await r.rows();
        r.dispose();
      } else got = new CacheReader(stream, calibration).rows();
      const dt = performance.now() - t0;
      const dc = process.cpuUsage(c0);
      // round 0 compiles shaders and warms caches
      if (round > 0) {
        ms.get(impl.name)!.push(dt);
        cpu.get(impl.name)!.push((dc.user + dc.system) / 1000);
      }
      let m = 0;
      for (let i = 0; i < ref.v.length; i++)
        m = Math.max(m, Math.abs(got.v[i]! - ref.v[i]!), Math.abs(got.k[i]! - ref.k[i]!));
      diff.set(impl.name, Math.max(diff.get(impl.name) ?? 0, m));
    }
  for (const [b, d] of dcal) {
    await setBackend(b as 'cpu' | 'webgpu');
    d.dispose();
  }
  await setBackend('cpu');
  const hostMs = median(ms.get('host decoder')!);
  const hostCpu = median(cpu.get('host decoder')!);
  for (const impl of impls) {
    const med = median(ms.get(impl.name)!);
    const d = diff.get(impl.name)!;
    record({
      package: 'kv-compress',
      case: `kvtc 16× decode p=256, ${ref.n / 1024}K tokens, to host`,
      impl: impl.name,
      unit: 'MB/s',
      value: mb / (med / 1000),
      higherIsBetter: true,
      check: d < 1e-3 ? 'ok' : 'fail',
      note: `${(hostMs / med).toFixed(2)}× the host decoder's wall time, ${(hostCpu / median(cpu.get(impl.name)!)).toFixed(2)}× its CPU time (medians of ${ROUNDS - 1} interleaved rounds); max |Δ| ${d.toExponential(1)}${impl.backend === 'webgpu' && gpu ? `; ${gpu.name}${gpu.software ? ' (software: correctness, not GPU speed)' : ''}` : ''}`,
    });
  }
}
