// Optimizers and schedules on bad input: options PyTorch refuses, gradients of another shape or dtype, schedules
// that would give NaN or negative rates, and an optimizer reloading its own state dict.
import { describe, expect, test } from 'vitest';
import { DTypeError, optim, ShapeError, type Tensor, tensor } from '../src/index.js';

const param = (x: number[]) => tensor(x, { requiresGrad: true });

describe('optimizers refuse what PyTorch refuses', () => {
  test('options outside their domain', () => {
    const p = () => [param([1, 2])];
    for (const [make, msg] of [
      [() => new optim.SGD(p(), { lr: -0.1 }), /SGD: lr must be a finite number ≥ 0; got -0.1/],
      [() => new optim.SGD(p(), { lr: Number.NaN }), /SGD: lr must be/],
      [() => new optim.SGD(p(), { lr: '0.1' as unknown as number }), /SGD: lr must be/],
      [() => new optim.SGD(p(), { lr: 0.1, momentum: -0.5 }), /momentum must be/],
      [() => new optim.SGD(p(), { lr: 0.1, weightDecay: -1 }), /weightDecay must be/],
      [() => new optim.Adam(p(), { lr: Number.POSITIVE_INFINITY }), /Adam: lr must be a finite number ≥ 0/],
      [() => new optim.Adam(p(), { lr: 0.1, eps: -1 }), /eps must be/],
      [() => new optim.AdamW(p(), { lr: 0.1, weightDecay: Number.NaN }), /weightDecay must be/],
      [() => new optim.Adam(p(), { lr: 0.1, betas: 0.9 as unknown as [number, number] }), /betas must be two numbers/],
      [() => new optim.Adam(p(), { lr: 0.1, betas: [0.9, 0.99, 0.9] as unknown as [number, number] }), /betas must be/],
      [() => new optim.Adam(p(), { lr: 0.1, betas: [0.9, 1] }), /betas must be/],
      [() => new optim.SGD([{ params: p(), lr: 'x' as unknown as number }], { lr: 0.1 }), /lr must be/],
    ] as [() => unknown, RegExp][])
      expect(make, String(msg)).toThrow(msg);
  });

  test('a gradient of another shape or dtype is refused before any update', () => {
    const p = param([1, 2, 3]);
    const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9 });
    p.grad = tensor([1]);
    expect(() => opt.step()).toThrow(ShapeError);
    p.grad = tensor([[1, 1, 1]]);
    expect(() => opt.step()).toThrow(/gradient of shape \[1, 3\] for a parameter of \[3\]/);
    p.grad = tensor(Int32Array.from([1, 1, 1]), { dtype: 'int32' });
    expect(() => opt.step()).toThrow(DTypeError);
    expect(Array.from(p.dataSync())).toEqual([1, 2, 3]);
    p.grad = tensor([1, 1, 1]);
    opt.step();
    expect(Array.from(p.dataSync()).map((x) => +x.toFixed(5))).toEqual([0.9, 1.9, 2.9]);
  });

  test('loading its own state dict keeps the state; a saved group it cannot use is refused whole', () => {
    const p = param([1, 2]);
    const opt = new optim.Adam([p], { lr: 0.1 });
    p.grad = tensor([1, 1]);
    opt.step();
    const moments = () => [...opt.stateDict().tensors.values()].map((t: Tensor) => Array.from(t.dataSync()));
    const before = moments();
    opt.loadStateDict(opt.stateDict()); // the same tensors it holds: copied before the old ones are freed
    expect(moments()).toEqual(before);
    const st = opt.stateDict();
    const bad = (edit: (m: optim.OptimizerState['meta']) => void) => {
      const meta = JSON.parse(JSON.stringify(st.meta)) as optim.OptimizerState['meta'];
      edit(meta);
      return { tensors: st.tensors, meta };
    };
    expect(() => opt.loadStateDict(bad((m) => void (m.groups[0]!.lr = -5)))).toThrow(/group 0: Adam: lr must be/);
    expect(() => opt.loadStateDict(bad((m) => void (m.groups[0]!.betas = [1.5, 2])))).toThrow(/betas must be/);
    expect(() => opt.loadStateDict(bad((m) => void (m.scalars[0]!.step = -1)))).toThrow(
      /a step count is an integer ≥ 0/,
    );
    expect(moments()).toEqual(before);
    expect(opt.paramGroups[0]!.lr).toBe(0.1);
  });
});

describe('schedules never give a NaN or negative rate', () => {
  test('bad arguments are refused where the schedule is made or the step is set', () => {
    expect(() => optim.stepDecay(0)).toThrow(/stepSize must be an integer ≥ 1/);
    expect(() => optim.stepDecay(2, 0)).toThrow(/gamma must be a finite number > 0/);
    expect(() => optim.stepDecay(2, -0.5)).toThrow(/gamma/);
    expect(() => optim.linearWarmup(-3)).toThrow(/warmup must be an integer ≥ 0/);
    expect(() => optim.linearWarmup(Number.NaN)).toThrow(/warmup/);
    expect(() => optim.cosine(10, Number.NaN)).toThrow(/minFactor/);
    expect(() => optim.warmupCosine(10, 5)).toThrow(/total must be an integer ≥ warmup/);
    const p = param([1]);
    const opt = new optim.SGD([p], { lr: 1 });
    const sched = new optim.LRScheduler(opt, optim.warmupCosine(2, 10));
    for (const n of [Number.NaN, -20, 2.5, '3' as unknown as number])
      expect(() => sched.setStep(n), String(n)).toThrow(/step must be an integer ≥ 0/);
    sched.setStep(3);
    expect(opt.paramGroups[0]!.lr).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 8)), 6);
    expect(() => new optim.LRScheduler(new optim.SGD([param([1])], { lr: 1 }), () => Number.NaN)).toThrow(
      /the schedule gave NaN at step 0/,
    );
  });
});
