// Interleaved timing of several models on one batch: every round times one training step (forward,
// backward, Adam) and one inference forward of each model in turn, so that the load of a shared machine
// falls on all of them alike; medians over rounds.
import { median } from '@tessera/bench-kit';
import { memory, noGrad, optim, type Tensor, tidy } from '@tessera/tensor-core';
import { HourglassLM } from '../src/index.js';

export interface Throughput {
  trainMs: number;
  evalMs: number;
  /** The same steps in CPU time of this process (process.cpuUsage, user + system), medians over rounds. */
  trainCpuMs: number;
  evalCpuMs: number;
  /** Peak bytes of tensors a training step adds (activations kept for backward, gradients). */
  peakTrainBytes: number;
}

/** `targets[i]`: unigram boundary targets [B, T] for model i, where it needs them. */
export function interleavedTiming(
  models: HourglassLM[],
  ids: Tensor,
  rounds: number,
  targets: (Tensor | undefined)[] = [],
): Throughput[] {
  const opts = models.map((m) => new optim.Adam(m.parameters(), { lr: 1e-5 }));
  const train: number[][] = models.map(() => []);
  const evals: number[][] = models.map(() => []);
  const trainCpu: number[][] = models.map(() => []);
  const evalCpu: number[][] = models.map(() => []);
  const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
  const peak = models.map(() => 0);
  for (let r = 0; r <= rounds; r++)
    models.forEach((m, i) => {
      m.train();
      let t0 = performance.now();
      let c0 = process.cpuUsage();
      const before = memory().numBytes;
      tidy(() => {
        const parts = m.loss(ids, { boundaryTargets: targets[i] });
        const afterForward = memory().numBytes;
        parts.loss.backward();
        peak[i] = Math.max(peak[i]!, afterForward - before, memory().numBytes - before);
        HourglassLM.disposeOutput(parts.output);
        opts[i]!.step();
        opts[i]!.zeroGrad();
      });
      const tTrain = performance.now() - t0;
      const cTrain = cpuMs(process.cpuUsage(c0));
      m.eval();
      t0 = performance.now();
      c0 = process.cpuUsage();
      noGrad(() => tidy(() => HourglassLM.disposeOutput(m.forward(ids.slice(1, 0, ids.shape[1]! - 1).contiguous()))));
      const tEval = performance.now() - t0;
      const cEval = cpuMs(process.cpuUsage(c0));
      if (r > 0) {
        // round 0 warms up
        train[i]!.push(tTrain);
        evals[i]!.push(tEval);
        trainCpu[i]!.push(cTrain);
        evalCpu[i]!.push(cEval);
      }
    });
  return models.map((_, i) => ({
    trainMs: median(train[i]!),
    evalMs: median(evals[i]!),
    trainCpuMs: median(trainCpu[i]!),
    evalCpuMs: median(evalCpu[i]!),
    peakTrainBytes: peak[i]!,
  }));
}
