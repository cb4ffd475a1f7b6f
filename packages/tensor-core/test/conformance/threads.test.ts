// The conformance table on the threaded path: with the pool's size threshold at 0, every matmul and
// convolution of the table that runs in wasm goes to the 2-thread pool, and each case's forward and input
// gradients must equal the 1-thread results bit for bit. (conformance.test.ts checks the 1-thread path
// against float64 references and finite differences, so equal bits carry those checks over.)
import { afterAll, expect, test } from 'vitest';
import { cpuPoolJobs, cpuPoolWorkerUnits, setCpuThreads, setPoolMinFlops } from '../../src/backends/cpu/pool.js';
import { manualSeed, randn, type Tensor, tensor, tidy } from '../../src/index.js';
import { type Case, cases, type Input } from './cases.js';

afterAll(async () => {
  setPoolMinFlops();
  await setCpuThreads(1);
});

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    return (Math.imul(s ^ (s >>> 15), s | 1) >>> 0) / 4294967296;
  };
}

const dtypeOf = (inp: Input) => (inp.kind === 'int' ? 'int32' : inp.kind === 'bool' ? 'bool' : 'float32');

/** Inputs the case accepts: positive where it asks, ints in range, else in (-2, 2). */
function value(inp: Input, u: number): number {
  switch (inp.kind ?? 'float') {
    case 'int':
      return inp.int![0] + Math.floor(u * (inp.int![1] - inp.int![0]));
    case 'bool':
      return u < 0.5 ? 0 : 1;
    case 'positive':
      return 0.2 + u * 2;
    case 'unit':
      return 0.05 + u * 0.9;
    case 'away':
      return (0.3 + u * 1.7) * (u < 0.5 ? -1 : 1);
    default:
      return (u - 0.5) * 4;
  }
}

/** Forward values and the gradients of Σ y·cot for every float input, as plain arrays. */
function runCase(c: Case, i: number): number[][] {
  manualSeed(i);
  const r = rng(2000 + i);
  return tidy(() => {
    const ts = c.inputs.map((inp) => {
      const n = inp.shape.reduce((a, b) => a * b, 1);
      const data = Float64Array.from({ length: n }, () => value(inp, r()));
      const grad = !c.noGrad && inp.grad !== false && dtypeOf(inp) === 'float32';
      return tensor(data, { shape: inp.shape, dtype: dtypeOf(inp), requiresGrad: grad });
    });
    const y: Tensor = c.run(...ts);
    const out = [Array.from(y.dataSync())];
    if (y.requiresGrad) {
      const cot = tensor(
        Float64Array.from({ length: y.size }, () => r() - 0.5),
        { shape: y.shape },
      );
      y.mul(cot).sum().backward();
      for (const t of ts) if (t.grad) out.push(Array.from(t.grad.dataSync()));
    }
    return out;
  });
}

test('every conformance case gives the same bits on 2 threads (pool threshold 0) as on 1', async () => {
  await setCpuThreads(1);
  const one = cases.map(runCase);
  expect(await setCpuThreads(2)).toBe(2);
  setPoolMinFlops(0);
  const j0 = cpuPoolJobs();
  const u0 = cpuPoolWorkerUnits();
  const same = (a: number[][], b: number[][]) =>
    a.length === b.length && a.every((x, k) => x.length === b[k]!.length && x.every((v, j) => Object.is(v, b[k]![j])));
  // Units are taken dynamically, so on a loaded machine the calling thread can finish a whole small table before
  // the worker wakes: run the table again (each time checked) until the worker has taken part, a few times at most.
  for (let round = 0; round < 5 && (round === 0 || cpuPoolWorkerUnits() === u0); round++) {
    const two = cases.map(runCase);
    const differ = cases.filter((_, i) => !same(two[i]!, one[i]!)).map((c) => c.name);
    expect(differ).toEqual([]);
  }
  // Small ops are a single unit, which the calling thread usually takes itself; if the worker has still taken
  // none, a large matmul (many units) shows it computes its share with the same bits.
  if (cpuPoolWorkerUnits() === u0) {
    manualSeed(7);
    const a = randn([512, 256]);
    const b = randn([256, 384]);
    setPoolMinFlops(Number.POSITIVE_INFINITY); // serial on this thread: the 1-thread bits
    const want = Array.from(a.matmul(b).dataSync());
    setPoolMinFlops(0);
    for (let i = 0; i < 50 && cpuPoolWorkerUnits() === u0; i++)
      expect(tidy(() => Array.from(a.matmul(b).dataSync()))).toEqual(want);
    a.dispose();
    b.dispose();
  }
  // The table's matmuls, linear layers, attention and convolutions went through the pool, and the worker
  // computed part of the pool's work.
  console.info(`pool: ${cpuPoolJobs() - j0} ops, ${cpuPoolWorkerUnits() - u0} units on the worker`);
  expect(cpuPoolJobs() - j0).toBeGreaterThan(0);
  expect(cpuPoolWorkerUnits() - u0).toBeGreaterThan(0);
}, 180_000);
