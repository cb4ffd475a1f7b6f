// HourglassLM on tensor-core's WebGPU backend: forwardAsync / lossAsync (which read the shortened length, the
// entropy targets and the boundary count back with `await t.data()`) give the same loss as the synchronous CPU
// path, for one forward and after one training step, for every boundary source; `train` runs on webgpu;
// evaluateAsync / generateAsync and the CLI's --backend webgpu give the CPU's BPC and characters.
// Runs wherever an adapter exists (CI: Dawn on Mesa lavapipe); skipped with the reason elsewhere, never
// under CI=true.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  manualSeed,
  memory,
  noGrad,
  optim,
  SyncReadError,
  setBackend,
  type Tensor,
  tensor,
  tidy,
} from '@tessera/tensor-core';
import { afterAll, describe, expect, onTestFinished, test } from 'vitest';
import { makeProgram } from '../src/cli.js';
import {
  BOUNDARY_SOURCES,
  type BoundarySource,
  evaluate,
  evaluateAsync,
  generate,
  generateAsync,
  type HourglassConfig,
  HourglassDecoder,
  HourglassLM,
  loadTrained,
  prepareCorpus,
  train,
} from '../src/index.js';

const skip = await setBackend('webgpu').then(
  () => null,
  (e: Error) => {
    if (process.env.CI) throw e;
    return e.message;
  },
);
await setBackend('cpu');
if (skip) console.warn(`dyn-pool webgpu tests skipped (no WebGPU adapter): ${skip}`);

afterAll(() => setBackend('cpu'));

const V = 11;
const SPACE = 3;
const B = 2;
const T = 16;
function config(boundary: BoundarySource, positions: 'rotary' | 'relative' = 'rotary'): HourglassConfig {
  return {
    positions,
    vocabSize: V,
    dModel: 16,
    nHeads: 2,
    dFF: 32,
    layers: [1, 1, 1],
    boundary,
    maxSeqLen: 32,
    fixedK: 3,
    spaceIds: [SPACE],
  };
}

// Fixed data (host arrays), so both backends see the same batch.
const IDS = Int32Array.from({ length: B * (T + 1) }, (_, i) => (i % 5 === 4 ? SPACE : (i * 7 + 1) % V));
const UNIGRAM = Float32Array.from({ length: B * T }, (_, i) => (i % 4 === 3 ? 1 : 0));

interface Run {
  loss0: number;
  loss1: number;
  shortLength: number;
  nBoundaries: number;
}

/** One loss, one Adam step, the loss again; sync (`loss`) or async (`lossAsync`) on the current backend. */
async function run(
  backend: 'cpu' | 'webgpu',
  source: BoundarySource,
  mode: 'sync' | 'async',
  positions: 'rotary' | 'relative' = 'rotary',
): Promise<Run> {
  await setBackend(backend);
  manualSeed(7);
  const model = new HourglassLM(config(source, positions)).train();
  const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
  const ids = tensor(IDS, { shape: [B, T + 1], dtype: 'int32' });
  const targets = tensor(UNIGRAM, { shape: [B, T] });
  const opts = { boundaryTargets: targets };
  const lossOf = async () => {
    if (mode === 'sync') return tidy(() => model.loss(ids, opts));
    return model.lossAsync(ids, opts);
  };
  const p0 = await lossOf();
  const shortLength = p0.output.shortLength;
  const nBoundaries = p0.nBoundaries;
  if (mode === 'sync') tidy(() => p0.loss.backward());
  else await model.backwardAsync(p0.loss);
  tidy(() => optim.clipGradNorm(model.parameters(), 0.25).dispose());
  opt.step();
  opt.zeroGrad();
  const loss0 = await p0.loss.item();
  const p1 = await lossOf();
  const loss1 = await p1.loss.item();
  for (const p of [p0, p1]) {
    HourglassLM.disposeOutput(p.output);
    for (const t of new Set<Tensor | null>([p.loss, p.lm, p.boundary])) t?.dispose();
  }
  ids.dispose();
  targets.dispose();
  return { loss0, loss1, shortLength, nBoundaries };
}

function close(got: Run, want: Run, what: string): void {
  expect(got.shortLength, `${what}: shortened length`).toBe(want.shortLength);
  expect(got.nBoundaries, `${what}: boundaries`).toBe(want.nBoundaries);
  expect(Math.abs(got.loss0 - want.loss0) / Math.abs(want.loss0), `${what}: loss`).toBeLessThan(1e-5);
  expect(Math.abs(got.loss1 - want.loss1) / Math.abs(want.loss1), `${what}: loss after a step`).toBeLessThan(1e-4);
}

describe('HourglassLM async entry points on the CPU', () => {
  test('forwardAsync / lossAsync equal forward / loss, for every boundary source', async () => {
    for (const source of BOUNDARY_SOURCES) {
      const want = await run('cpu', source, 'sync');
      const got = await run('cpu', source, 'async');
      expect(got, source).toEqual(want);
      expect(want.loss1, source).toBeLessThan(want.loss0);
      const rel = await run('cpu', source, 'async', 'relative');
      expect(rel, `${source} relative`).toEqual(await run('cpu', source, 'sync', 'relative'));
      expect(rel.loss1, `${source} relative`).toBeLessThan(rel.loss0);
    }
  });
});

const TEXT = 'the cat sat on the mat and the dog ate the hat '.repeat(20);

/** A small model of `source` with random weights, on the current backend, and its corpus. */
function small(source: BoundarySource) {
  manualSeed(5);
  const corpus = prepareCorpus(TEXT, { source, validFraction: 0.2 });
  const model = new HourglassLM({ ...config(source), vocabSize: corpus.vocab.size, spaceIds: corpus.vocab.spaceIds() });
  return { corpus, model };
}

describe('evaluateAsync and generateAsync on the CPU', () => {
  test('equal evaluate and generate exactly', async () => {
    for (const source of ['whitespace', 'gumbel'] as const) {
      const { corpus, model } = small(source);
      manualSeed(3);
      const want = evaluate(model, corpus, { seqLen: 16, stride: 8, batchSize: 3 });
      manualSeed(3);
      const got = await evaluateAsync(model, corpus, { seqLen: 16, stride: 8, batchSize: 3 });
      expect(got.bpc, source).toBe(want.bpc);
      expect(got.tokens, source).toBe(want.tokens);
      expect(got.shorteningFactor, source).toBe(want.shorteningFactor);
      const prompt = corpus.vocab.encode('the ').ids;
      for (const o of [{ temperature: 0 }, { temperature: 0.8, topK: 4 }]) {
        manualSeed(9);
        const g1 = generate(model, prompt, { maxNewTokens: 12, ...o });
        manualSeed(9);
        const g2 = await generateAsync(model, prompt, { maxNewTokens: 12, ...o });
        expect(Array.from(g2), `${source} ${JSON.stringify(o)}`).toEqual(Array.from(g1));
      }
    }
  });
});

describe.skipIf(skip !== null)('HourglassLM on webgpu', () => {
  test('the synchronous forward refuses with a typed error (use forwardAsync)', async () => {
    await setBackend('webgpu');
    manualSeed(1);
    const model = new HourglassLM(config('whitespace'));
    const ids = tensor(IDS.subarray(0, T), { shape: [1, T], dtype: 'int32' });
    expect(() => model.forward(ids)).toThrow(SyncReadError);
    const out = await model.forwardAsync(ids);
    expect(out.logits.backend).toBe('webgpu');
    expect(out.logits.shape).toEqual([1, T, V]);
    HourglassLM.disposeOutput(out);
    ids.dispose();
    await expect(model.forwardAsync(tensor([[0, V]], { dtype: 'int32' }))).rejects.toThrow(/token ids must be in/);
  });

  for (const source of BOUNDARY_SOURCES)
    test(`${source}: one forward and one training step give the CPU's loss`, async () => {
      const want = await run('cpu', source, 'sync');
      const got = await run('webgpu', source, 'async');
      close(got, want, source);
    });

  // Transformer-XL relative attention is composed from tensor-core ops (pad / reshape / slice rel-shift).
  for (const source of ['none', 'fixed', 'gumbel'] as const)
    test(`${source}, relative positions: one forward and one training step give the CPU's loss`, async () => {
      const want = await run('cpu', source, 'sync', 'relative');
      const got = await run('webgpu', source, 'async', 'relative');
      close(got, want, `${source} relative`);
    });

  test('async training steps leave the tensor count flat, for every source', async () => {
    await setBackend('webgpu');
    const ids = tensor(IDS, { shape: [B, T + 1], dtype: 'int32' });
    const targets = tensor(UNIGRAM, { shape: [B, T] });
    for (const source of BOUNDARY_SOURCES) {
      manualSeed(2);
      const model = new HourglassLM(config(source)).train();
      const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
      const counts: number[] = [];
      for (let k = 0; k < 3; k++) {
        const p = await model.lossAsync(ids, { boundaryTargets: targets });
        await model.backwardAsync(p.loss);
        HourglassLM.disposeOutput(p.output);
        for (const t of new Set<Tensor | null>([p.loss, p.lm, p.boundary])) t?.dispose();
        tidy(() => optim.clipGradNorm(model.parameters(), 0.25).dispose());
        opt.step();
        opt.zeroGrad();
        counts.push(memory().numTensors);
      }
      // (≤: tensors of earlier tests that the garbage collector reclaims may leave the count meanwhile)
      expect(counts[2], source).toBeLessThanOrEqual(counts[1]!);
    }
    ids.dispose();
    targets.dispose();
  });

  for (const source of ['whitespace', 'gumbel'] as const)
    test(`train() runs on webgpu as on the CPU (${source})`, async () => {
      const text = 'the cat sat on the mat and the dog ate the hat '.repeat(20);
      const once = async (backend: 'cpu' | 'webgpu') => {
        await setBackend(backend);
        manualSeed(5);
        const corpus = prepareCorpus(text, { source });
        const model = new HourglassLM({
          ...config(source),
          vocabSize: corpus.vocab.size,
          spaceIds: corpus.vocab.spaceIds(),
        });
        return train(model, corpus, { steps: 2, batchSize: 2, seqLen: 16 });
      };
      const want = await once('cpu');
      const got = await once('webgpu');
      expect(got.shorteningFactor).toBe(want.shorteningFactor);
      expect(Math.abs(got.trainBpc - want.trainBpc) / want.trainBpc).toBeLessThan(1e-4);
    });

  test('evaluateAsync and generateAsync give the CPU BPC and characters', async () => {
    // (one source keeps it short: entropy, run here after the other tests on lavapipe, took ≈ 30 s)
    for (const source of ['whitespace'] as const) {
      await setBackend('cpu');
      const cpu = small(source);
      const want = evaluate(cpu.model, cpu.corpus, { seqLen: 16, stride: 8 });
      const prompt = cpu.corpus.vocab.encode('the ').ids;
      manualSeed(9);
      const wantGen = generate(cpu.model, prompt, { maxNewTokens: 10, temperature: 0.8 });
      await setBackend('webgpu');
      const gpu = small(source);
      const got = await evaluateAsync(gpu.model, gpu.corpus, { seqLen: 16, stride: 8 });
      expect(got.tokens).toBe(want.tokens);
      expect(got.shorteningFactor, source).toBe(want.shorteningFactor);
      expect(Math.abs(got.bpc - want.bpc) / want.bpc, source).toBeLessThan(1e-5);
      manualSeed(9);
      const gotGen = await generateAsync(gpu.model, prompt, { maxNewTokens: 10, temperature: 0.8 });
      expect(Array.from(gotGen), source).toEqual(Array.from(wantGen));
    }
  });

  test('HourglassDecoder.appendAsync gives the CPU forward logits (BP boundaries, relative positions)', async () => {
    const n = 24;
    const ids = Int32Array.from(IDS.subarray(0, n));
    const build = () => {
      manualSeed(5);
      return new HourglassLM({ ...config('entropy', 'relative'), gumbelEval: 'threshold' }).eval();
    };
    await setBackend('cpu');
    const cpu = build();
    const x = tensor(ids, { shape: [1, n], dtype: 'int32' });
    // Centre the untrained predictor's logits so that some characters close groups and some do not.
    const z = Array.from(noGrad(() => cpu.forward(x)).bpLogits!.dataSync()).sort((a, b) => a - b);
    const shift = z[n >> 1]! + 1e-3;
    noGrad(() => cpu.bp!.fc2.bias!.sub_(shift));
    const full = noGrad(() => cpu.forward(x));
    const want = full.logits.dataSync();
    const nb = full.boundaries!.sum().itemSync();
    expect(nb).toBeGreaterThan(1);
    expect(nb).toBeLessThan(n - 1);
    await setBackend('webgpu');
    const gpu = build();
    noGrad(() => gpu.bp!.fc2.bias!.sub_(shift));
    const dec = new HourglassDecoder(gpu);
    // The synchronous append cannot read the predictor's decisions here: a typed error, and the decoder then
    // refuses to go on from a half-taken step until reset().
    expect(() => dec.append(ids.subarray(0, 3))).toThrow(SyncReadError);
    await expect(dec.appendAsync(ids.subarray(0, 3))).rejects.toThrow(/failed part-way; reset\(\)/);
    dec.reset();
    let at = 0;
    let worst = 0;
    for (const k of [10, 1, 1, 12]) {
      const got = await dec.appendAsync(ids.subarray(at, at + k));
      const g = await got.data();
      got.dispose();
      for (let i = 0; i < k * V; i++) worst = Math.max(worst, Math.abs(g[i]! - want[at * V + i]!));
      at += k;
    }
    expect(dec.groups).toBe(nb);
    expect(worst).toBeLessThan(1e-4);
    dec.dispose();
  });

  test('the CLI trains, checkpoints, evaluates and samples with --backend webgpu as on the CPU', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-gpu-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'text.txt');
    writeFileSync(file, TEXT);
    const cli = async (args: string[]) => {
      const lines: string[] = [];
      await makeProgram((l) => lines.push(l), { exitOverride: true }).parseAsync(['node', 'dyn-pool', ...args]);
      return lines;
    };
    const args = (ckpt: string) => [
      'train',
      file,
      '-o',
      ckpt,
      '-b',
      'whitespace',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--layers',
      '1,1,1',
      '--seq-len',
      '16',
      '--batch',
      '2',
      '--steps',
      '3',
      '--eval-tokens',
      '64',
      '--no-progress',
      '--json',
    ];
    const c = join(dir, 'cpu.ckpt');
    const g = join(dir, 'gpu.ckpt');
    const cpu = JSON.parse((await cli(args(c))).at(-1)!);
    const gpu = JSON.parse((await cli([...args(g), '--backend', 'webgpu'])).at(-1)!);
    expect(Math.abs(gpu.validBpc - cpu.validBpc) / cpu.validBpc).toBeLessThan(1e-4);
    await setBackend('cpu');
    // the checkpoint written from webgpu holds the same weights (read back on the CPU)
    const mc = loadTrained(readFileSync(c)).model.stateDict();
    const mg = loadTrained(readFileSync(g)).model.stateDict();
    for (const [k, t] of mc) {
      const a = t.dataSync();
      const b = mg.get(k)!.dataSync();
      for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]! - a[i]!), k).toBeLessThan(1e-4);
    }
    const ev = async (backend: string) =>
      JSON.parse((await cli(['eval', g, file, '--json', '--backend', backend])).at(-1)!).bpc as number;
    const evCpu = await ev('cpu');
    expect(Math.abs((await ev('webgpu')) - evCpu) / evCpu).toBeLessThan(1e-5);
    const gen = async (backend: string) =>
      (await cli(['generate', g, '-p', 'the ', '-n', '12', '--backend', backend]))[0];
    const genCpu = await gen('cpu');
    expect(genCpu).toMatch(/^the /);
    expect(await gen('webgpu')).toBe(genCpu);
    await setBackend('cpu');
  });
});
