// DeviceCacheReader: containers decoded with the arithmetic on tensor-core's backend — the CPU kernels always,
// and WebGPU wherever an adapter exists (CI: Dawn on Mesa lavapipe; skipped with the reason elsewhere, never
// under CI=true) — give the host decoder's values to float32 rounding, attention over them gives a float64
// reference's outputs, and a restored prefix continues a CausalLM with the host-restored cache's logits.
// Streams cover cross-layer and per-layer calibrations, every quantisation type (int1–int4, FP8), dropped
// coefficients, token groups that do not divide the chunks, the three entropy stages and raw-only streams.
import { F, manualSeed, memory, nn, noGrad, setBackend, tensor, tidy } from '@tessera/tensor-core';
import { afterAll, describe, expect, it } from 'vitest';
import { KVTCStorage } from '../src/caches/kvtc-storage.js';
import { type Calibration, calibrate, fitPlan, type KVRows, type KvtcPlan } from '../src/calibration.js';
import { collectKV, concatRows } from '../src/collect.js';
import { DeviceCacheReader, DeviceCalibration, decodeCacheAsync } from '../src/device-reader.js';
import { makePlan } from '../src/dp.js';
import { CalibrationMismatchError, KVFormatError, ValueError } from '../src/errors.js';
import { decodeCache, type EncodeOptions, encodeCache, readHeader } from '../src/format.js';
import { unpackSegment } from '../src/kvtc.js';
import { Rng } from '../src/linalg.js';
import { crc32 } from '../src/numeric.js';
import { lowRankRows, relErr } from './helpers.js';

const gpuSkip = await setBackend('webgpu').then(
  () => null,
  (e: Error) => {
    if (process.env.CI) throw e;
    return e.message;
  },
);
await setBackend('cpu');
if (gpuSkip) console.warn(`kv-compress webgpu decode tests skipped (no WebGPU adapter): ${gpuSkip}`);
/** on the CPU backend both paths: the host decoder's kernels ('auto') and WebGPU's tensor-op code */
// The WebGPU variant stays in the list without an adapter, and is reported as skipped (describe.skipIf).
const variants: { backend: 'cpu' | 'webgpu'; arithmetic: 'auto' | 'tensor-ops' }[] = [
  { backend: 'cpu', arithmetic: 'auto' },
  { backend: 'cpu', arithmetic: 'tensor-ops' },
  { backend: 'webgpu', arithmetic: 'auto' },
];
afterAll(() => setBackend('cpu'));

const dims = { layers: 2, heads: 2, headDim: 8 };
const calRows = lowRankRows({ ...dims, n: 256, rank: 5, noise: 0.02 });
const rows = lowRankRows({ ...dims, n: 90, rank: 5, noise: 0.02, seed: 7, start: 0 });
const shifted = lowRankRows({ ...dims, n: 90, rank: 5, noise: 0.02, seed: 7, start: 37 });
const crossCal = calibrate(calRows);
const perLayerCal = calibrate(calRows, { mode: 'per-layer' });
const noRopeCal = calibrate(calRows, { rope: false });
/** every type, a dropped gap [8, 10), shift/scale shared over 3 tokens (chunks of 10 and 25 are not multiples) */
const handPlan = (cal: Calibration): KvtcPlan => ({
  targetRatio: 0,
  plans: cal.segments.map((s) =>
    makePlan(
      s.pca.p,
      [
        { start: 0, size: 2, type: 'fp8' },
        { start: 2, size: 3, type: 'int4' },
        { start: 5, size: 3, type: 'int3' },
        { start: 10, size: 3, type: 'int2' },
        { start: 13, size: 3, type: 'int1' },
      ],
      3,
    ),
  ),
});

interface Case {
  name: string;
  cal: Calibration | null;
  rows: KVRows;
  bytes: Uint8Array;
}
const mk = (name: string, cal: Calibration, plan: KvtcPlan, opts: EncodeOptions, r = rows): Case => ({
  name,
  cal,
  rows: r,
  bytes: encodeCache(r, cal, plan, opts),
});
const cases: Case[] = [
  mk('cross-layer, DP plan 8×, DEFLATE', crossCal, fitPlan(crossCal, calRows, { ratio: 8 }), {
    sinks: 4,
    window: 16,
    chunkTokens: 32,
  }),
  mk('per-layer, every type and a gap, m = 3, range coder', perLayerCal, handPlan(perLayerCal), {
    sinks: 4,
    window: 6,
    chunkTokens: 25,
    coder: 'range',
  }),
  mk(
    'cross-layer, every type, packed, first position 37',
    crossCal,
    handPlan(crossCal),
    { sinks: 2, window: 8, chunkTokens: 10, level: 0 },
    shifted,
  ),
  mk('no RoPE undone, DP plan 4×, no sinks', noRopeCal, fitPlan(noRopeCal, calRows, { ratio: 4 }), {
    sinks: 0,
    window: 5,
    chunkTokens: 40,
  }),
  {
    name: 'raw only (no KVTC sections, no calibration)',
    cal: null,
    rows,
    bytes: encodeCache(rows, crossCal, fitPlan(crossCal, calRows, { ratio: 8 }), { sinks: 4, window: 200 }),
  },
];
const host = cases.map((c) => decodeCache(c.bytes, c.cal));

/** max |a − b| / max |b| */
const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
};

/** Float64 attention of queries q [Hq, Tq, d] over one layer's rows [N, H·d] (GQA: query head h reads h / g). */
function attention64(q: Float32Array, Hq: number, Tq: number, k: Float32Array, v: Float32Array, N: number) {
  const { heads: H, headDim: d } = dims;
  const g = Hq / H;
  const out = new Float64Array(Hq * Tq * d);
  for (let h = 0; h < Hq; h++)
    for (let i = 0; i < Tq; i++) {
      const kh = Math.floor(h / g);
      const s = new Float64Array(N);
      let mx = -Infinity;
      for (let t = 0; t < N; t++) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += q[(h * Tq + i) * d + j]! * k[t * H * d + kh * d + j]!;
        s[t] = dot / Math.sqrt(d);
        mx = Math.max(mx, s[t]!);
      }
      let z = 0;
      for (let t = 0; t < N; t++) z += s[t] = Math.exp(s[t]! - mx);
      for (let t = 0; t < N; t++)
        for (let j = 0; j < d; j++) out[(h * Tq + i) * d + j]! += (s[t]! / z) * v[t * H * d + kh * d + j]!;
    }
  return out;
}

for (const { backend, arithmetic } of variants)
  describe.skipIf(backend === 'webgpu' && gpuSkip)(
    `DeviceCacheReader on ${backend} (arithmetic: ${arithmetic})`,
    () => {
      for (const [ci, c] of cases.entries())
        it(`${c.name}: the host decoder's values, layer by layer, and attention over them`, async () => {
          await setBackend(backend);
          const r = new DeviceCacheReader(c.bytes, c.cal, { arithmetic });
          try {
            const viaHost = backend === 'cpu' && arithmetic === 'auto';
            expect(r.arithmetic).toBe(viaHost ? 'host' : 'tensor-ops');
            const got = await r.rows();
            expect(got.positions).toEqual(host[ci]!.positions);
            // the host path is the host decoder's own arithmetic: equal, not merely close
            const tol = viaHost ? 0 : 2e-6;
            expect(maxRel(got.k, host[ci]!.k)).toBeLessThanOrEqual(tol);
            expect(maxRel(got.v, host[ci]!.v)).toBeLessThanOrEqual(tol);
            // the decoder is lossy: against the original rows it sits at the codec's error, not at zero
            if (c.cal) expect(relErr(got.v, c.rows.v)).toBeGreaterThan(1e-4);
            const rng = new Rng(31 + ci);
            const Hq = 4;
            const Tq = 3;
            const q = new Float32Array(Hq * Tq * dims.headDim).map(() => rng.normal());
            const N = c.rows.n;
            const f = dims.heads * dims.headDim;
            for (let l = 0; l < dims.layers; l++) {
              const kv = r.layer(l);
              expect(kv.k.shape).toEqual([1, dims.heads, N, dims.headDim]);
              expect(kv.k.backend).toBe(backend);
              const o = tidy(() =>
                F.scaledDotProductAttention(tensor(q, { shape: [1, Hq, Tq, dims.headDim] }), kv.k, kv.v),
              );
              const od = await o.data();
              o.dispose();
              kv.k.dispose();
              kv.v.dispose();
              // reference: float64 attention over the host decoder's layer l
              const hk = new Float32Array(N * f);
              const hv = new Float32Array(N * f);
              const P = dims.layers * f;
              for (let t = 0; t < N; t++) {
                hk.set(host[ci]!.k.subarray(t * P + l * f, t * P + (l + 1) * f), t * f);
                hv.set(host[ci]!.v.subarray(t * P + l * f, t * P + (l + 1) * f), t * f);
              }
              expect(maxRel(od, attention64(q, Hq, Tq, hk, hv, N))).toBeLessThan(1e-5);
            }
          } finally {
            r.dispose();
            await setBackend('cpu');
          }
        });

      it('shares one uploaded calibration across readers; mismatched calibrations are typed errors', async () => {
        await setBackend(backend);
        const dcal = new DeviceCalibration(crossCal);
        try {
          for (const ci of [0, 2]) {
            const r = new DeviceCacheReader(cases[ci]!.bytes, dcal, { arithmetic });
            expect(maxRel((await r.layerData(1)).k, hostLayerKeys(ci, 1))).toBeLessThan(2e-6);
            r.dispose();
          }
          expect(() => new DeviceCacheReader(cases[1]!.bytes, dcal, { arithmetic })).toThrow(CalibrationMismatchError);
          expect(() => new DeviceCacheReader(cases[0]!.bytes, null, { arithmetic })).toThrow(CalibrationMismatchError);
          const r = new DeviceCacheReader(cases[0]!.bytes, dcal, { arithmetic });
          expect(() => r.layer(2)).toThrow(/layer 2 of 2/);
          await expect(r.layerData(2)).rejects.toThrow(/layer 2 of 2/);
          r.dispose();
          expect(() => r.layer(0)).toThrow(/after dispose/);
          await expect(r.layerData(0)).rejects.toThrow(/after dispose/);
        } finally {
          dcal.dispose();
          await setBackend('cpu');
        }
      });

      it('decodeCacheAsync gives the host decoder’s rows', async () => {
        await setBackend(backend);
        try {
          const got = await decodeCacheAsync(cases[2]!.bytes, cases[2]!.cal);
          expect(maxRel(got.k, host[2]!.k)).toBeLessThan(2e-6);
          expect(maxRel(got.v, host[2]!.v)).toBeLessThan(2e-6);
          expect(got.positions).toEqual(host[2]!.positions);
        } finally {
          await setBackend('cpu');
        }
      });

      it('frees what it uploads: tensors return to their count after rows(), layer() + dispose and toCache() + reset', async () => {
        await setBackend(backend);
        try {
          const before = memory().numTensors;
          const r = new DeviceCacheReader(cases[1]!.bytes, cases[1]!.cal, { arithmetic });
          await r.rows();
          const kv = r.layer(1);
          kv.k.dispose();
          kv.v.dispose();
          const cache = r.toCache();
          r.dispose();
          cache.reset();
          expect(memory().numTensors).toBe(before);
        } finally {
          await setBackend('cpu');
        }
      });

      it('fuzz: truncated, corrupted or lying streams are typed errors and leave no tensors behind', async () => {
        await setBackend(backend);
        try {
          const rng = new Rng(41);
          const before = memory().numTensors;
          for (const ci of [0, 1, 2]) {
            const s = cases[ci]!.bytes;
            for (let n = 0; n < s.length; n += 1 + rng.int(60))
              expect(
                () => new DeviceCacheReader(s.subarray(0, n), cases[ci]!.cal, { arithmetic }),
                `length ${n}`,
              ).toThrow(KVFormatError);
            for (let trial = 0; trial < 60; trial++) {
              const b = Uint8Array.from(s);
              b[rng.int(b.length)]! ^= 1 + rng.int(255);
              let threw: unknown = null;
              let r: DeviceCacheReader | null = null;
              try {
                r = new DeviceCacheReader(b, cases[ci]!.cal, { arithmetic });
                await r.rows();
              } catch (e) {
                threw = e;
              } finally {
                r?.dispose();
              }
              expect(threw, `case ${ci} trial ${trial}`).toBeInstanceOf(KVFormatError);
            }
            // a header that claims far more tokens than the stream holds, with a valid CRC
            const h = readHeader(s);
            const b = Uint8Array.from(s);
            const dv = new DataView(b.buffer);
            dv.setUint32(28, 0x7fffffff, true); // tokens
            dv.setUint32(40, 0x7fffffff - h.sinks - h.window, true); // compressed
            dv.setUint32(h.headerBytes, crc32(b, 0, h.headerBytes), true);
            expect(() => new DeviceCacheReader(b, cases[ci]!.cal, { arithmetic })).toThrow(KVFormatError);
          }
          expect(memory().numTensors).toBe(before);
        } finally {
          await setBackend('cpu');
        }
      });
    },
  );

/** Keys of layer l from the host decoder, [N, H·d]. */
const hostLayerKeys = (ci: number, l: number) => {
  const all = host[ci]!;
  const f = dims.heads * dims.headDim;
  const P = dims.layers * f;
  const k = new Float32Array(all.n * f);
  for (let t = 0; t < all.n; t++) k.set(all.k.subarray(t * P + l * f, t * P + (l + 1) * f), t * f);
  return k;
};

// ---------------------------------------------------------------- a stored prefix continues a CausalLM

const lmConfig = { vocabSize: 20, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 64 };
const lmRng = new Rng(12);
const prompt = Array.from({ length: 40 }, () => lmRng.int(20));
const rest = Array.from({ length: 5 }, () => lmRng.int(20));
const ids = (x: number[]) => tensor(Int32Array.from(x), { shape: [1, x.length], dtype: 'int32' });
manualSeed(3);
const lm = new nn.CausalLM(lmConfig);
lm.eval();
const lmRows = concatRows(
  Array.from({ length: 4 }, (_, s) =>
    collectKV(
      lm,
      Array.from({ length: 48 }, (_, i) => (i * 7 + s * 3 + ((i * i) % 5)) % 20),
    ),
  ),
);
const lmCal = calibrate(lmRows);
const lmPlan = fitPlan(lmCal, lmRows, { ratio: 4 });
const lmStream = encodeCache(collectKV(lm, prompt), lmCal, lmPlan, { sinks: 4, window: 8, chunkTokens: 16 });
/** logits of `rest` fed after the restored prefix, one forward */
const continueFrom = async (cache: nn.KVCache, model: nn.CausalLM): Promise<Float32Array> => {
  const out = noGrad(() => tidy(() => model.forward(ids(rest), { cache })));
  const d = Float32Array.from(await out.data());
  out.dispose();
  return d;
};
// reset after use: an undisposed cache is freed by the garbage collector whenever it runs, which would move
// the tensor counts that the tests above compare.
const hostRestored = KVTCStorage.restore(lmStream, lmCal, lmPlan).cache;
const hostLogits = await continueFrom(hostRestored, lm);
hostRestored.reset();

for (const { backend, arithmetic } of variants)
  it.skipIf(backend === 'webgpu' && gpuSkip)(
    `a prefix restored on ${backend} (arithmetic: ${arithmetic}) continues the model with the host-restored cache's logits`,
    async () => {
      await setBackend(backend);
      try {
        manualSeed(3);
        const model = new nn.CausalLM(lmConfig);
        model.eval();
        const r = new DeviceCacheReader(lmStream, lmCal, { arithmetic });
        const cache = r.toCache();
        r.dispose();
        expect(cache.position(0)).toBe(40);
        expect(cache.length(1)).toBe(40);
        const got = await continueFrom(cache, model);
        cache.reset();
        expect(maxRel(got, hostLogits)).toBeLessThan(1e-4);
        // and the compressed prefix is not the exact one: the check above is not vacuous
        const exact = await continueFrom(
          (() => {
            const c = new nn.KVCache();
            noGrad(() => tidy(() => void model.forward(ids(prompt), { cache: c })));
            return c;
          })(),
          model,
        );
        expect(maxRel(exact, hostLogits)).toBeGreaterThan(1e-4);
      } finally {
        await setBackend('cpu');
      }
    },
  );

it.skipIf(gpuSkip !== null)('a reader or uploaded calibration is used on the backend it was made on', async () => {
  await setBackend('webgpu');
  const dcal = new DeviceCalibration(crossCal);
  const r = new DeviceCacheReader(cases[0]!.bytes, dcal);
  try {
    await setBackend('cpu');
    expect(() => r.layer(0)).toThrow(/made on webgpu; the backend is now cpu/);
    expect(() => new DeviceCacheReader(cases[0]!.bytes, dcal)).toThrow(/uploaded to webgpu/);
  } finally {
    await setBackend('webgpu');
    r.dispose();
    dcal.dispose();
    await setBackend('cpu');
  }
});

it('an unknown arithmetic option is a typed error', () => {
  const bad = () => new DeviceCacheReader(cases[0]!.bytes, crossCal, { arithmetic: 'gpu' as 'auto' });
  expect(bad).toThrow(ValueError);
  expect(bad).toThrow(/arithmetic must be 'auto' or 'tensor-ops'; got gpu/);
});

it('unpackSegment rejects a payload shorter than the plan implies', () => {
  const plan = handPlan(crossCal);
  const target = {
    levels: new Int32Array(10 * 16),
    shift: new Float32Array(40),
    scale: new Float32Array(40),
    row: 0,
    block: 0,
  };
  expect(() => unpackSegment(plan, new Uint8Array(3), 10, 1, target)).toThrow(KVFormatError);
});
