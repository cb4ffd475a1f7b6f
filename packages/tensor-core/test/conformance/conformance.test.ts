// Runs the conformance table (cases.ts) on every available backend: forward against the float64
// reference, gradients against central finite differences of that reference, and a view property:
// an op applied to a strided view equals the op applied to its contiguous copy.
import { F, getBackend, manualSeed, memory, setBackend, type Tensor, tensor, tidy } from '@tessera/tensor-core';
import { describe, expect, test } from 'vitest';
import { type Case, cases, type Input } from './cases.js';
import { Nd } from './ref64.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeInput(inp: Input, r: () => number): Nd {
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  const kind = inp.kind ?? 'float';
  for (let i = 0; i < n; i++) {
    const u = r();
    let v: number;
    switch (kind) {
      case 'float':
        v = (u - 0.5) * 4;
        break;
      case 'positive':
        v = 0.2 + u * 2;
        break;
      case 'unit':
        v = 0.05 + u * 0.9;
        break;
      case 'away':
        v = (0.3 + u * 1.7) * (r() < 0.5 ? -1 : 1);
        break;
      case 'distinct':
        v = (u - 0.5) * 4;
        break;
      case 'int': {
        const [lo, hi] = inp.int!;
        v = lo + Math.floor(u * (hi - lo));
        break;
      }
      case 'bool':
        v = u < 0.5 ? 1 : 0;
        break;
    }
    data[i] = Math.fround(v);
  }
  if (kind === 'distinct') {
    // Spread values so no two are within the finite-difference step (max, sort, pooling ties).
    const order = Array.from(data.keys()).sort((a, b) => data[a]! - data[b]!);
    order.forEach((idx, rank) => {
      data[idx] = Math.fround(-2 + (4 * rank) / Math.max(1, n - 1) + (r() - 0.5) * 0.01);
    });
  }
  return new Nd([...inp.shape], data);
}

const dtypeOf = (inp: Input) => (inp.kind === 'int' ? 'int32' : inp.kind === 'bool' ? 'bool' : 'float32');
const wantsGrad = (c: Case, inp: Input) => !c.noGrad && inp.grad !== false && dtypeOf(inp) === 'float32';

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): string | null {
  if (got.length !== want.length) return `length ${got.length} ≠ ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= tol + tol * Math.abs(w)))
      return `element ${i}: got ${g}, want ${w} (tol ${tol})`;
  }
  return null;
}

function runCase(c: Case, seed: number) {
  const r = rng(seed);
  const nds = c.inputs.map((i) => makeInput(i, r));
  const ts = nds.map((x, i) =>
    tensor(x.data, { shape: x.shape, dtype: dtypeOf(c.inputs[i]!), requiresGrad: wantsGrad(c, c.inputs[i]!) }),
  );
  return { nds, ts, r };
}

// WebGPU runs wherever an adapter exists (in CI: Dawn on Mesa lavapipe, installed by .ci/run). Without
// one the suite is skipped with the reason, except under CI=true, where a missing adapter fails.
const webgpuSkip = await setBackend('webgpu').then(
  () => null,
  (e: Error) => {
    if (process.env.CI) throw e;
    return e.message;
  },
);
await setBackend('cpu');
if (webgpuSkip) console.warn(`conformance on webgpu skipped: ${webgpuSkip}`);
const backends = ['cpu', 'webgpu'] as const;

for (const backend of backends) {
  describe.skipIf(backend === 'webgpu' && webgpuSkip !== null)(`conformance on ${backend}`, () => {
    test.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
      await setBackend(backend);
      expect(getBackend()).toBe(backend);
      manualSeed(i);
      const { nds, ts, r } = runCase(c, 1000 + i);
      const y = c.run(...ts);
      const want = c.ref(...nds);
      expect(y.shape).toEqual(want.shape);
      const err = close(await y.data(), want.data, c.tol ?? 2e-5);
      expect(err, `forward of ${c.name}`).toBeNull();

      const gradInputs = c.inputs.map((inp, k) => (wantsGrad(c, inp) ? k : -1)).filter((k) => k >= 0);
      if (gradInputs.length === 0) return;
      // L = Σ y · cot with a random cotangent, so every output element matters.
      const cot = new Nd(
        [...want.shape],
        Float64Array.from(want.data, () => Math.fround(r() - 0.5)),
      );
      const cotT = tensor(cot.data, { shape: cot.shape });
      y.mul(cotT).sum().backward();
      const L = (xs: Nd[]) => {
        const o = c.ref(...xs);
        let s = 0;
        for (let j = 0; j < o.size; j++) s += o.data[j]! * cot.data[j]!;
        return s;
      };
      for (const k of gradInputs) {
        const x = nds[k]!;
        const fd = new Float64Array(x.size);
        for (let j = 0; j < x.size; j++) {
          const h = 1e-6 * Math.max(1, Math.abs(x.data[j]!));
          const plus = nds.map((v, m) => (m === k ? new Nd(v.shape, v.data.slice()) : v));
          plus[k]!.data[j]! += h;
          const minus = nds.map((v, m) => (m === k ? new Nd(v.shape, v.data.slice()) : v));
          minus[k]!.data[j]! -= h;
          fd[j] = (L(plus) - L(minus)) / (2 * h);
        }
        const g = ts[k]!.grad;
        expect(g, `gradient of input ${k} of ${c.name}`).not.toBeNull();
        const gerr = close(await g!.data(), fd, c.gradTol ?? 2e-3);
        expect(gerr, `gradient of input ${k} of ${c.name}`).toBeNull();
      }
      for (const t of [...ts, y, cotT]) t.dispose();
    });

    test('a strided view and its contiguous copy agree under every unary and binary op', async () => {
      await setBackend(backend);
      const r = rng(7);
      const base = makeInput({ shape: [4, 6, 5], kind: 'positive' }, r);
      const x = tensor(base.data, { shape: base.shape });
      const views: [string, (t: Tensor) => Tensor][] = [
        ['transpose', (t) => t.transpose(0, 2)],
        ['slice step', (t) => t.slice(1, 1, 6, 2)],
        ['flip', (t) => t.flip([1])],
        ['expand', (t) => t.slice(0, 0, 1).expand([3, 6, 5])],
        ['permute+slice', (t) => t.permute([2, 0, 1]).slice(0, 1, 4)],
      ];
      const ops: [string, (t: Tensor) => Tensor][] = [
        ['exp', (t) => t.exp()],
        ['log', (t) => t.log()],
        ['sqrt', (t) => t.sqrt()],
        ['gelu', (t) => t.gelu()],
        ['sum(1)', (t) => t.sum(1)],
        ['amax(-1)', (t) => t.amax(-1)],
        ['softmax(0)', (t) => t.softmax(0)],
        ['cumsum(1)', (t) => t.cumsum(1)],
        ['add self^T-broadcast', (t) => t.add(t.slice(0, 0, 1))],
        ['mul 2', (t) => t.mul(2)],
        ['matmul', (t) => t.matmul(t.transpose(-2, -1))],
        ['argmax(1)', (t) => t.argmax(1)],
        ['sort(-1)', (t) => t.sort(-1).values],
      ];
      for (const [vn, v] of views)
        for (const [on, op] of ops) {
          const view = v(x);
          const copy = view.contiguous();
          const a = await op(view).data();
          const b = await op(copy).data();
          expect(close(a, b, 1e-6), `${on} on ${vn} view`).toBeNull();
        }
    });

    test('random broadcasting shapes: add/mul/where agree with the float64 reference', async () => {
      await setBackend(backend);
      const r = rng(11);
      for (let trial = 0; trial < 40; trial++) {
        const rank = 1 + Math.floor(r() * 4);
        const full = Array.from({ length: rank }, () => 1 + Math.floor(r() * 3));
        const drop = (s: number[]) => s.slice(Math.floor(r() * s.length)).map((d) => (r() < 0.3 ? 1 : d));
        const sa = drop(full);
        const sb = drop(full);
        const a = makeInput({ shape: sa }, r);
        const b = makeInput({ shape: sb }, r);
        const ta = tensor(a.data, { shape: sa });
        const tb = tensor(b.data, { shape: sb });
        const { zip } = await import('./ref64.js');
        expect(
          close(
            await ta.mul(tb).add(ta).data(),
            zip(
              zip(a, b, (x, y) => x * y),
              a,
              (x, y) => x + y,
            ).data,
            1e-5,
          ),
        ).toBeNull();
      }
    });

    test('memory stays flat across repeated forward/backward steps', async () => {
      await setBackend(backend);
      const w = tensor(new Float32Array(12).fill(0.1), { shape: [4, 3], requiresGrad: true });
      const step = () =>
        tidy(() => {
          const x = tensor(new Float32Array(8).fill(1), { shape: [2, 4] });
          const h = F.layerNorm(x.matmul(w).gelu(), [3]);
          F.crossEntropy(h, tensor([0, 2], { dtype: 'int32' })).backward();
          w.grad!.zero_();
        });
      step();
      const before = memory();
      for (let i = 0; i < 50; i++) step();
      const after = memory();
      expect(after.numTensors).toBe(before.numTensors);
      expect(after.numBytes).toBe(before.numBytes);
    });
  });
}
