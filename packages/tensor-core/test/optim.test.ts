import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkpointFromBytes,
  checkpointToBytes,
  checkpointToBytesAsync,
  F,
  FormatError,
  getRngState,
  io,
  loadCheckpoint,
  manualSeed,
  memory,
  nn,
  optim,
  Progress,
  randint,
  randn,
  saveCheckpoint,
  type Tensor,
  tensor,
  tidy,
} from '@tessera/tensor-core';
import { afterAll, describe, expect, test } from 'vitest';
import { crc32 } from '../src/io/checkpoint.js';

const arr = (t: Tensor) => Array.from(t.dataSync());

/** Runs `steps` updates of f(p) = Σ c·p² (gradient 2cp) and returns p. */
function run(make: (p: Tensor) => optim.Optimizer<{ lr: number }>, steps: number, p0 = [1, -2, 0.5]) {
  const p = tensor(p0, { requiresGrad: true });
  const c = tensor([1, 0.5, 3]);
  const opt = make(p);
  for (let i = 0; i < steps; i++) {
    tidy(() => p.mul(p).mul(c).sum().backward());
    opt.step();
    opt.zeroGrad();
  }
  return arr(p);
}

/** The same updates in float64 by hand, following PyTorch's documented algorithms. */
function ref(kind: 'sgd' | 'nesterov' | 'adam' | 'adamw', steps: number, o: Record<string, number>) {
  const p = [1, -2, 0.5];
  const c = [1, 0.5, 3];
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  const buf: number[] = [];
  for (let t = 1; t <= steps; t++)
    for (let i = 0; i < 3; i++) {
      let g = 2 * c[i]! * p[i]!;
      if (kind === 'sgd' || kind === 'nesterov') {
        g += (o.wd ?? 0) * p[i]!;
        buf[i] = t === 1 ? g : o.mom! * buf[i]! + g;
        p[i]! -= o.lr! * (kind === 'nesterov' ? g + o.mom! * buf[i]! : buf[i]!);
      } else {
        if (kind === 'adamw') p[i]! *= 1 - o.lr! * o.wd!;
        else g += (o.wd ?? 0) * p[i]!;
        m[i] = 0.9 * m[i]! + 0.1 * g;
        v[i] = 0.999 * v[i]! + 0.001 * g * g;
        const mh = m[i]! / (1 - 0.9 ** t);
        const vh = v[i]! / (1 - 0.999 ** t);
        p[i]! -= (o.lr! * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
  return p;
}

describe('optimizers follow PyTorch update rules', () => {
  test.each([
    [
      'SGD momentum + weight decay',
      (p: Tensor) => new optim.SGD([p], { lr: 0.05, momentum: 0.9, weightDecay: 0.1 }),
      ref('sgd', 7, { lr: 0.05, mom: 0.9, wd: 0.1 }),
    ],
    [
      'SGD Nesterov',
      (p: Tensor) => new optim.SGD([p], { lr: 0.05, momentum: 0.8, nesterov: true }),
      ref('nesterov', 7, { lr: 0.05, mom: 0.8 }),
    ],
    [
      'Adam + L2',
      (p: Tensor) => new optim.Adam([p], { lr: 0.1, weightDecay: 0.05 }),
      ref('adam', 7, { lr: 0.1, wd: 0.05 }),
    ],
    [
      'AdamW',
      (p: Tensor) => new optim.AdamW([p], { lr: 0.1, weightDecay: 0.1 }),
      ref('adamw', 7, { lr: 0.1, wd: 0.1 }),
    ],
  ])('%s', (_n, make, want) => {
    const got = run(make, 7);
    for (const [i, g] of got.entries()) expect(g).toBeCloseTo(want[i]!, 5);
  });

  test('parameter groups carry their own learning rate', () => {
    const a = tensor([1], { requiresGrad: true });
    const b = tensor([1], { requiresGrad: true });
    const opt = new optim.SGD([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1 });
    a.add(b).sum().backward();
    opt.step();
    expect(arr(a)[0]).toBeCloseTo(0.9, 6);
    expect(arr(b)[0]).toBeCloseTo(0.99, 6);
    expect(() => new optim.SGD([a, a], { lr: 1 })).toThrow(/appears more than once/);
    expect(() => new optim.SGD([{ params: [a] }, { params: [a] }], { lr: 1 })).toThrow(/appears more than once/);
  });

  test('schedules: warm-up, cosine, step decay', () => {
    const wc = optim.warmupCosine(10, 110, 0.1);
    expect(wc(0)).toBeCloseTo(0.1);
    expect(wc(9)).toBeCloseTo(1);
    expect(wc(10)).toBeCloseTo(1);
    expect(wc(60)).toBeCloseTo(0.55);
    expect(wc(110)).toBeCloseTo(0.1);
    expect(optim.stepDecay(5, 0.5)(12)).toBe(0.25);
    const p = tensor([1], { requiresGrad: true });
    const opt = new optim.SGD([p], { lr: 2 });
    const s = new optim.LRScheduler(opt, optim.linearWarmup(4));
    expect(opt.paramGroups[0]!.lr).toBe(0.5);
    s.step();
    s.step();
    expect(opt.paramGroups[0]!.lr).toBe(1.5);
  });

  test('clipGradNorm scales gradients to the max norm and returns the norm before', () => {
    const a = tensor([3, 0], { requiresGrad: true });
    const b = tensor([4], { requiresGrad: true });
    a.mul(a).sum().mul(0.5).add(b.mul(b).sum().mul(0.5)).backward(); // grads = values, norm 5
    const n = optim.clipGradNorm([a, b], 1);
    expect(n.itemSync()).toBeCloseTo(5, 5);
    expect(arr(a.grad!)[0]).toBeCloseTo(0.6, 5);
    expect(arr(b.grad!)[0]).toBeCloseTo(0.8, 5);
  });

  test('clipGradNorm refuses a bound that would flip or erase the gradients; Infinity leaves them', () => {
    const a = tensor([3, 4], { requiresGrad: true });
    a.mul(a).sum().mul(0.5).backward(); // grad = [3, 4], norm 5
    for (const bad of [0, -1, Number.NaN, Number.NEGATIVE_INFINITY])
      expect(() => optim.clipGradNorm([a], bad), String(bad)).toThrow(/maxNorm must be a positive number/);
    expect(arr(a.grad!)).toEqual([3, 4]);
    expect(optim.clipGradNorm([a], Number.POSITIVE_INFINITY).itemSync()).toBeCloseTo(5, 5);
    expect(arr(a.grad!)).toEqual([3, 4]);
  });
});

describe('checkpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ck-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const make = () => {
    const model = new nn.Sequential(new nn.Linear(6, 16), new nn.GELU(), new nn.Dropout(0.2), new nn.Linear(16, 3));
    const opt = new optim.AdamW(model.parameters(), { lr: 0.01 });
    return { model, opt };
  };
  const step = (m: ReturnType<typeof make>) =>
    tidy(() => {
      const x = randn([8, 6]);
      const y = randint(0, 3, [8]);
      F.crossEntropy(m.model.forward(x), y).backward();
      m.opt.step();
      m.opt.zeroGrad();
    });

  test('save, load into fresh objects and resume bit-exactly (model, optimizer, RNG)', async () => {
    manualSeed(10);
    const a = make();
    for (let i = 0; i < 6; i++) step(a);
    const straight = [...a.model.stateDict().values()].map(arr);

    manualSeed(10);
    const b = make();
    for (let i = 0; i < 3; i++) step(b);
    const path = join(dir, 'ck.safetensors');
    await saveCheckpoint(path, { model: b.model, optimizer: b.opt, step: 3, config: { d: 16 }, extra: { epoch: 1 } });
    for (let i = 0; i < 5; i++) randn([3]); // disturb the RNG: the checkpoint must restore it
    const c = make();
    const info = await loadCheckpoint(path, { model: c.model, optimizer: c.opt });
    expect(info).toEqual({ step: 3, config: { d: 16 }, extra: { epoch: 1 } });
    for (let i = 0; i < 3; i++) step(c);
    const resumed = [...c.model.stateDict().values()].map(arr);
    expect(resumed).toEqual(straight);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('an async save is the state at the call: a step taken while it is pending does not enter it', async () => {
    manualSeed(11);
    const m = make();
    step(m);
    const extra = { epoch: 1 };
    const ck = { model: m.model, optimizer: m.opt, step: 1, extra };
    const want = checkpointToBytes(ck);
    const wantWeights = io.saveSafetensors(m.model.stateDict());
    const pending = checkpointToBytesAsync(ck);
    const pendingWeights = io.saveSafetensorsAsync(m.model.stateDict());
    // Changes every weight and moment, the optimizer's step count and the RNG (dropout, the batch), and the
    // caller's extra: none of it may reach the bytes being written.
    step(m);
    extra.epoch = 2;
    expect(await pending).toEqual(want);
    expect(await pendingWeights).toEqual(wantWeights);
    expect(checkpointToBytes(ck)).not.toEqual(want);
  });

  test('a truncated or damaged checkpoint is refused; another file format is refused', async () => {
    const m = make();
    const bytes = checkpointToBytes({ model: m.model, optimizer: m.opt, step: 0 });
    expect(() => checkpointFromBytes(bytes.subarray(0, bytes.length - 10), { model: make().model })).toThrow(
      FormatError,
    );
    const flipped = bytes.slice();
    flipped[flipped.length - 3]! ^= 0xff;
    expect(() => checkpointFromBytes(flipped, { model: make().model })).toThrow(/CRC-32 mismatch/);
    const { io } = await import('@tessera/tensor-core');
    expect(() => checkpointFromBytes(io.saveSafetensors(m.model.stateDict()), { model: make().model })).toThrow(
      /not a Tessera checkpoint/,
    );
  });

  test("the CRC is zlib's CRC-32 (slicing-by-4 against node:zlib, chained, at odd offsets) over the file without metadata", async () => {
    const { crc32: zlibCrc } = await import('node:zlib');
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
    for (let len = 0; len < 40; len++)
      for (const off of [0, 1, 3]) {
        const b = big.subarray(off, off + len);
        expect(crc32(b), `${len} at ${off}`).toBe(zlibCrc(b));
      }
    expect(crc32(big)).toBe(zlibCrc(big));
    expect(crc32(big.subarray(777), crc32(big.subarray(0, 777)))).toBe(zlibCrc(big));
    const m = make();
    step(m);
    const bytes = checkpointToBytes({ model: m.model, optimizer: m.opt, step: 1 });
    const { io } = await import('@tessera/tensor-core');
    const head = JSON.parse(io.parseSafetensors(bytes).metadata['tessera.checkpoint']!);
    expect(head.crc32).toBe(zlibCrc(io.serializeSafetensors(io.parseSafetensors(bytes).tensors)));
    // A model-only load (evaluation, generation) restores the same weights from a file with optimizer state,
    // and builds no tensor for that state: while the weights are loaded, only the model's entries are live.
    const fresh = make();
    const nModel = fresh.model.stateDict().size;
    const before = memory().numTensors;
    let during = -1;
    const load = fresh.model.loadStateDict.bind(fresh.model);
    fresh.model.loadStateDict = (sd) => {
      during = memory().numTensors - before;
      return load(sd);
    };
    checkpointFromBytes(bytes, { model: fresh.model });
    expect(during).toBe(nModel);
    expect(memory().numTensors).toBe(before);
    expect([...fresh.model.stateDict().values()].map(arr)).toEqual([...m.model.stateDict().values()].map(arr));
  });

  test('a refused load changes nothing: model, optimizer and RNG stay as they were', () => {
    manualSeed(12);
    const a = make();
    step(a);
    const bytes = checkpointToBytes({ model: a.model, optimizer: a.opt, step: 1, extra: { k: 1 } });
    const { tensors, metadata } = io.parseSafetensors(bytes);
    // The CRC covers the tensors, not the head: rewrite only the head.
    const withHead = (edit: (h: Record<string, any>) => unknown) => {
      const h = JSON.parse(metadata['tessera.checkpoint']!);
      const out = edit(h);
      return io.serializeSafetensors(tensors, { 'tessera.checkpoint': JSON.stringify(out === undefined ? h : out) });
    };
    const b = make();
    step(b);
    step(b);
    const state = () => ({
      weights: [...b.model.stateDict().values()].map(arr),
      moments: [...b.opt.stateDict().tensors.values()].map(arr),
      groups: JSON.stringify(b.opt.stateDict().meta),
      rng: getRngState(),
    });
    const before = state();
    const cases: [string, (h: Record<string, any>) => unknown, RegExp][] = [
      ['a head that is not an object', () => null, /head is not a JSON object/],
      ['a step that is not a count', (h) => void (h.step = 'x'), /step "x" is not a count/],
      ['extra that is not an object', (h) => void (h.extra = 5), /extra 5 is not an object/],
      ['no RNG state', (h) => void delete h.rng, /no RNG state/],
      ['an RNG state of 3 numbers', (h) => void (h.rng = [1, 2, 3]), /RNG state is not one/],
      ['the all-zero RNG state', (h) => void (h.rng = [0, 0, 0, 0]), /all-zero state/],
      ['optimizer state that is not an object', (h) => void (h.optimizer = 7), /optimizer state is not an object/],
      [
        'another number of groups',
        (h) => void h.optimizer.groups.push(h.optimizer.groups[0]),
        /2 groups saved, 1 here/,
      ],
      ['a learning rate that is a string', (h) => void (h.optimizer.groups[0].lr = 'abc'), /option 'lr' is "abc"/],
      ['betas of another length', (h) => void (h.optimizer.groups[0].betas = [0.9]), /option 'betas'/],
      ['parameters in a group', (h) => void (h.optimizer.groups[0].params = 5), /carries 'params'/],
      [
        'a step count that is a string',
        (h) => void (h.optimizer.scalars[0].step = '1'),
        /scalar 'step' of parameter 0/,
      ],
      [
        'scalars of an unknown parameter',
        (h) => void (h.optimizer.scalars[99] = { step: 1 }),
        /unknown parameter index '99'/,
      ],
    ];
    for (const [what, edit, msg] of cases) {
      expect(() => checkpointFromBytes(withHead(edit), { model: b.model, optimizer: b.opt }), what).toThrow(msg);
      expect(state(), what).toEqual(before);
    }
    // An optimizer moment of the wrong shape (a model that matches, an optimizer that does not): refused whole.
    const other = new nn.Sequential(new nn.Linear(6, 16), new nn.GELU(), new nn.Dropout(0.2), new nn.Linear(16, 3));
    const small = new optim.AdamW(
      [...other.parameters()].slice(0, 2).concat([...other.parameters()].slice(2).reverse()),
      {
        lr: 0.01,
      },
    );
    const weights = [...other.stateDict().values()].map(arr);
    expect(() => checkpointFromBytes(bytes, { model: other, optimizer: small })).toThrow(/has shape/);
    expect([...other.stateDict().values()].map(arr)).toEqual(weights);
    // and the untouched file still loads
    expect(
      checkpointFromBytes(
        withHead(() => undefined),
        { model: b.model, optimizer: b.opt },
      ).step,
    ).toBe(1);
  });

  test('a failed save leaves the previous checkpoint intact', async () => {
    const m = make();
    const path = join(dir, 'keep.safetensors');
    await saveCheckpoint(path, { model: m.model, step: 1 });
    const before = readFileSync(path);
    // A model whose state cannot be serialised (a disposed parameter) makes the save throw midway.
    const bad = make();
    bad.model.parameters()[0]!.dispose();
    await expect(saveCheckpoint(path, { model: bad.model, step: 2 })).rejects.toThrow();
    expect(readFileSync(path).equals(before)).toBe(true);
    // A rename that fails (the path is a non-empty folder) leaves no temp file behind.
    const folder = join(dir, 'folder.safetensors');
    mkdirSync(folder);
    writeFileSync(join(folder, 'x'), 'x');
    await expect(saveCheckpoint(folder, { model: m.model, step: 3 })).rejects.toThrow();
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    writeFileSync(join(dir, 'garbage.bin'), 'not a checkpoint');
    await expect(loadCheckpoint(join(dir, 'garbage.bin'), { model: m.model })).rejects.toThrow(FormatError);
  });
});

test('Progress reports step, smoothed loss, throughput and time left', () => {
  const lines: string[] = [];
  const p = new Progress(4, { label: 'train', write: (l) => lines.push(l) });
  for (let s = 1; s <= 4; s++) p.update(s, 1 / s);
  expect(lines.at(-1)).toMatch(/^train █+ 4\/4 loss \d\.\d{4} [\d.]+ it\/s eta/);
});
